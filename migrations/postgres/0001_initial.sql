-- supportd on PostgreSQL: the same schema, column for column, as
-- migrations/sqlite/0001_initial.sql, so one set of row types reads both.
--
-- Conventions: NOT NULL with a default wherever the domain has no "unknown";
-- NULL only where "unknown" is an honest value; enums as slugs guarded by
-- CHECK; JSON as TEXT (kept byte for byte, so an export compares exactly);
-- times as Unix seconds (BIGINT); booleans as BOOLEAN; integers as BIGINT
-- (the Rust side reads every integer as i64). Every slug list below must match
-- the `slug()` of the supportd-core type.

-- Ticket numbers (CS-1001, ...) come from a sequence: never reused, even when
-- the transaction that drew a number rolls back. Several instances draw from it
-- concurrently, so numbers are unique but not always contiguous.
CREATE SEQUENCE tickets_number_seq AS BIGINT START WITH 1001 MINVALUE 1001;

CREATE TABLE tickets (
    number BIGINT PRIMARY KEY DEFAULT nextval('tickets_number_seq'),
    queue TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    status TEXT NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'pending_customer', 'resolved', 'closed')),
    priority TEXT NOT NULL DEFAULT 'normal'
        CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    subject TEXT NOT NULL DEFAULT '',
    requester_email TEXT,
    requester_name TEXT,
    tier TEXT CHECK (tier IN ('unmanaged', 'platform', 'managed_os')),
    category TEXT CHECK (category IN (
        'portal-users', 'account-setup', 'knowledge-base', 'service-availability',
        'billing', 'subscription-management', 'technical-support',
        'microsoft-escalation', 'config-review', 'control-portal', 'month-to-date',
        'estimates', 'terms', 'remote-administration', 'monitoring-remediation',
        'change-management', 'patching', 'other')),
    in_scope BOOLEAN,
    microsoft BOOLEAN,
    confidence DOUBLE PRECISION CHECK (confidence BETWEEN 0 AND 1),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    first_response_due BIGINT NOT NULL,
    -- Labels are all known or all unknown, never half.
    CHECK ((tier IS NULL) = (category IS NULL)
        AND (tier IS NULL) = (in_scope IS NULL)
        AND (tier IS NULL) = (microsoft IS NULL)
        AND (tier IS NULL) = (confidence IS NULL)),
    CHECK (requester_name IS NULL OR requester_email IS NOT NULL)
);

ALTER SEQUENCE tickets_number_seq OWNED BY tickets.number;

CREATE INDEX tickets_queue_status_number ON tickets (queue, status, number);

-- One stored mail. The idempotency keys are UNIQUE: (message_id, content_hash)
-- always, and the source position when the source has one (IMAP). Two
-- instances inserting the same mail at once: the second waits on the index
-- for the first to commit, then fails and retries its batch, which then finds
-- the mail stored (a duplicate).
CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    message_id TEXT NOT NULL,
    message_id_synthesized BOOLEAN NOT NULL DEFAULT FALSE,
    content_hash TEXT NOT NULL,
    in_reply_to TEXT NOT NULL DEFAULT '[]',
    message_references TEXT NOT NULL DEFAULT '[]',
    from_email TEXT,
    from_name TEXT,
    reply_to TEXT NOT NULL DEFAULT '[]',
    to_addresses TEXT NOT NULL DEFAULT '[]',
    cc_addresses TEXT NOT NULL DEFAULT '[]',
    subject TEXT NOT NULL DEFAULT '',
    sent_at BIGINT,
    received_at BIGINT NOT NULL,
    body_text TEXT NOT NULL DEFAULT '',
    body_html TEXT,
    new_text TEXT NOT NULL DEFAULT '',
    forwarded_text TEXT NOT NULL DEFAULT '',
    flags TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    size BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),
    -- Why the mail could not be parsed; NULL for a parsed mail.
    quarantine_reason TEXT,
    source_kind TEXT NOT NULL
        CHECK (source_kind IN ('file', 'maildir', 'mbox', 'stdin', 'imap')),
    source_mailbox TEXT NOT NULL DEFAULT '',
    source_uidvalidity BIGINT,
    source_uid BIGINT,
    CHECK (from_name IS NULL OR from_email IS NOT NULL),
    CHECK ((source_uidvalidity IS NULL) = (source_uid IS NULL))
);

CREATE UNIQUE INDEX messages_message_id_content_hash ON messages (message_id, content_hash);
CREATE UNIQUE INDEX messages_source_position
    ON messages (source_mailbox, source_uidvalidity, source_uid)
    WHERE source_uid IS NOT NULL;
CREATE INDEX messages_ticket_number ON messages (ticket_number, id);

-- The bytes as received, apart from `messages` so scans of messages stay small.
CREATE TABLE raw_messages (
    message_id BIGINT PRIMARY KEY REFERENCES messages (id),
    raw BYTEA NOT NULL
);

-- Attachment metadata; the bytes stay in the raw message.
CREATE TABLE attachments (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    position BIGINT NOT NULL CHECK (position >= 0),
    filename TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size BIGINT NOT NULL DEFAULT 0 CHECK (size >= 0),
    sha256 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, position)
);

CREATE TABLE classifications (
    message_id BIGINT PRIMARY KEY REFERENCES messages (id),
    tier TEXT NOT NULL CHECK (tier IN ('unmanaged', 'platform', 'managed_os')),
    category TEXT NOT NULL CHECK (category IN (
        'portal-users', 'account-setup', 'knowledge-base', 'service-availability',
        'billing', 'subscription-management', 'technical-support',
        'microsoft-escalation', 'config-review', 'control-portal', 'month-to-date',
        'estimates', 'terms', 'remote-administration', 'monitoring-remediation',
        'change-management', 'patching', 'other')),
    in_scope BOOLEAN NOT NULL,
    microsoft BOOLEAN NOT NULL,
    confidence DOUBLE PRECISION NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    reasons TEXT NOT NULL DEFAULT '[]',
    entities TEXT NOT NULL DEFAULT '{}',
    -- The account record that decided the tier (JSON), NULL when none matched.
    account TEXT
);

CREATE TABLE route_decisions (
    id BIGSERIAL PRIMARY KEY,
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    message_id BIGINT NOT NULL REFERENCES messages (id),
    decided_at BIGINT NOT NULL,
    queue TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    first_response_due BIGINT NOT NULL,
    rule TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '[]',
    actions TEXT NOT NULL DEFAULT '[]'
);

CREATE INDEX route_decisions_ticket_number ON route_decisions (ticket_number, id);

-- What happened to a ticket, append-only: the triggers refuse UPDATE, DELETE
-- and TRUNCATE.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    at BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (length(kind) > 0),
    actor TEXT NOT NULL DEFAULT 'supportd',
    detail TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_ticket_number ON audit_events (ticket_number, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;

CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- The account directory (accounts.csv), replaced whole on reload; `position`
-- keeps the file order, which decides the default record of a customer.
CREATE TABLE accounts (
    position BIGINT PRIMARY KEY,
    customer TEXT NOT NULL,
    domains TEXT NOT NULL DEFAULT '[]',
    contacts TEXT NOT NULL DEFAULT '[]',
    tenant_id TEXT,
    subscription_id TEXT,
    relationship TEXT NOT NULL
        CHECK (relationship IN ('elasticbox_arm', 'reseller_agreement', 'none')),
    managed_os BOOLEAN NOT NULL DEFAULT FALSE,
    is_default BOOLEAN NOT NULL DEFAULT FALSE,
    source TEXT NOT NULL DEFAULT ''
);
