-- The outbox: every mail supportd sends, written in the same transaction as the
-- ticket (or the staff action) that asks for it, then sent by the outbox worker.
--
-- Each row gets its Message-ID when it is written, and the worker stores the
-- rendered bytes before the first attempt: a crash between the SMTP send and the
-- `sent` mark re-sends the very same mail (same Message-ID, same bytes), never a
-- different second one.
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    -- What the mail is; decides the template.
    kind TEXT NOT NULL CHECK (kind IN
        ('acknowledge', 'scope_notice', 'microsoft_escalation', 'staff_reply')),
    -- queued: waiting to be (re)tried; sent; suppressed: never sent (reason says why);
    -- dead: the server refused it permanently or it ran out of attempts.
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sent', 'suppressed', 'dead')),
    recipient TEXT NOT NULL CHECK (length(recipient) > 0),
    -- Lower-case recipient: the key of the per-address rate limit and suppressions.
    recipient_key TEXT NOT NULL CHECK (length(recipient_key) > 0),
    -- Without angle brackets: outbox-<id>.<random>@<domain>.
    message_id TEXT NOT NULL UNIQUE CHECK (length(message_id) > 0),
    -- The customer message this mail answers (messages.id), NULL when none.
    source_message INTEGER REFERENCES messages (id),
    in_reply_to TEXT,
    message_references TEXT NOT NULL DEFAULT '[]',
    -- The text of a staff reply; NULL for templated mail.
    body TEXT,
    actor TEXT NOT NULL DEFAULT 'supportd',
    -- Why it was suppressed, or the last error / the server's final reply.
    reason TEXT,
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    -- A claimed row belongs to its worker until this time (Unix seconds).
    lease_until INTEGER NOT NULL DEFAULT 0,
    -- The message exactly as first sent; NULL until the first attempt renders it.
    rendered BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sent_at INTEGER,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CHECK (status <> 'suppressed' OR reason IS NOT NULL)
) STRICT;

-- The worker's claim: due queued rows in order.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, id);
-- The rate limit: recent automatic mail to one address.
CREATE INDEX outbox_recipient ON outbox (recipient_key, created_at);
CREATE INDEX outbox_ticket ON outbox (ticket_number, id);

-- Addresses that get no automatic mail until `until` (a permanent bounce).
CREATE TABLE mail_suppressions (
    recipient_key TEXT PRIMARY KEY CHECK (length(recipient_key) > 0),
    until INTEGER NOT NULL,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
