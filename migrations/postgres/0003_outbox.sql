-- The outbox (see migrations/sqlite/0003_outbox.sql for the meaning of each
-- column). Several instances claim rows with `FOR UPDATE SKIP LOCKED` and a
-- lease, so no row is handed to two workers.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    kind TEXT NOT NULL CHECK (kind IN
        ('acknowledge', 'scope_notice', 'microsoft_escalation', 'staff_reply')),
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'suppressed', 'dead')),
    recipient TEXT NOT NULL CHECK (length(recipient) > 0),
    recipient_key TEXT NOT NULL CHECK (length(recipient_key) > 0),
    -- Without angle brackets: outbox-<id>.<random>@<domain>.
    message_id TEXT NOT NULL UNIQUE CHECK (length(message_id) > 0),
    source_message BIGINT REFERENCES messages (id),
    in_reply_to TEXT,
    message_references TEXT NOT NULL DEFAULT '[]',
    body TEXT,
    actor TEXT NOT NULL DEFAULT 'supportd',
    reason TEXT,
    attempts BIGINT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at BIGINT NOT NULL,
    -- A claimed row belongs to its worker until this time (Unix seconds).
    lease_until BIGINT NOT NULL DEFAULT 0,
    -- The message exactly as first sent; NULL until the first attempt renders it.
    rendered BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sent_at BIGINT,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CHECK (status <> 'suppressed' OR reason IS NOT NULL)
);

CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_recipient ON outbox (recipient_key, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_number, id);

-- Addresses that get no automatic mail until `until` (a permanent bounce).
CREATE TABLE mail_suppressions (
    recipient_key TEXT PRIMARY KEY CHECK (length(recipient_key) > 0),
    until BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
