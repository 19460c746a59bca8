-- supportd on SQLite: tickets, their messages (raw bytes kept), classifications,
-- routing decisions, the append-only audit trail, and the account directory.
--
-- Conventions: STRICT tables; NOT NULL with a default wherever the domain has
-- no "unknown"; NULL only where "unknown" is an honest value (the labels of a
-- quarantined ticket, a missing sender); enums as slugs guarded by CHECK; JSON
-- as TEXT; times as Unix seconds (INTEGER); booleans as 0/1 with a CHECK.
-- Every slug list below must match the `slug()` of the supportd-core type.

-- A ticket. Its primary key is the customer-visible number (CS-1001, ...):
-- AUTOINCREMENT never reuses a number, and the sequence is seeded below so
-- the first ticket is 1001. Labels are copied from the classification that
-- created the ticket so the queue pages need no join; they are NULL for a
-- quarantined ticket, whose mail could not be classified.
CREATE TABLE tickets (
    number INTEGER PRIMARY KEY AUTOINCREMENT,
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
    in_scope INTEGER CHECK (in_scope IN (0, 1)),
    microsoft INTEGER CHECK (microsoft IN (0, 1)),
    confidence REAL CHECK (confidence BETWEEN 0 AND 1),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    first_response_due INTEGER NOT NULL,
    -- Labels are all known or all unknown, never half.
    CHECK ((tier IS NULL) = (category IS NULL)
        AND (tier IS NULL) = (in_scope IS NULL)
        AND (tier IS NULL) = (microsoft IS NULL)
        AND (tier IS NULL) = (confidence IS NULL)),
    CHECK (requester_name IS NULL OR requester_email IS NOT NULL)
) STRICT;

INSERT INTO sqlite_sequence (name, seq) VALUES ('tickets', 1000);

-- Queue pages: one queue, one status, ordered by number (keyset paging).
CREATE INDEX tickets_queue_status_number ON tickets (queue, status, number);

-- One stored mail. The idempotency keys are UNIQUE: (message_id, content_hash)
-- always, and the source position when the source has one (IMAP).
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    message_id TEXT NOT NULL,
    message_id_synthesized INTEGER NOT NULL DEFAULT 0
        CHECK (message_id_synthesized IN (0, 1)),
    content_hash TEXT NOT NULL,
    in_reply_to TEXT NOT NULL DEFAULT '[]',
    message_references TEXT NOT NULL DEFAULT '[]',
    from_email TEXT,
    from_name TEXT,
    reply_to TEXT NOT NULL DEFAULT '[]',
    to_addresses TEXT NOT NULL DEFAULT '[]',
    cc_addresses TEXT NOT NULL DEFAULT '[]',
    subject TEXT NOT NULL DEFAULT '',
    sent_at INTEGER,
    received_at INTEGER NOT NULL,
    body_text TEXT NOT NULL DEFAULT '',
    body_html TEXT,
    new_text TEXT NOT NULL DEFAULT '',
    forwarded_text TEXT NOT NULL DEFAULT '',
    flags TEXT NOT NULL DEFAULT '{}',
    warnings TEXT NOT NULL DEFAULT '[]',
    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    -- Why the mail could not be parsed; NULL for a parsed mail.
    quarantine_reason TEXT,
    source_kind TEXT NOT NULL
        CHECK (source_kind IN ('file', 'maildir', 'mbox', 'stdin', 'imap')),
    source_mailbox TEXT NOT NULL DEFAULT '',
    source_uidvalidity INTEGER,
    source_uid INTEGER,
    CHECK (from_name IS NULL OR from_email IS NOT NULL),
    CHECK ((source_uidvalidity IS NULL) = (source_uid IS NULL))
) STRICT;

-- Idempotency, and threading by Message-ID (the index's first column).
CREATE UNIQUE INDEX messages_message_id_content_hash ON messages (message_id, content_hash);
CREATE UNIQUE INDEX messages_source_position
    ON messages (source_mailbox, source_uidvalidity, source_uid)
    WHERE source_uid IS NOT NULL;
CREATE INDEX messages_ticket_number ON messages (ticket_number, id);

-- The bytes as received, apart from `messages` so scans of messages stay small.
CREATE TABLE raw_messages (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    raw BLOB NOT NULL
) STRICT;

-- Attachment metadata; the bytes stay in the raw message.
CREATE TABLE attachments (
    message_id INTEGER NOT NULL REFERENCES messages (id),
    position INTEGER NOT NULL CHECK (position >= 0),
    filename TEXT NOT NULL DEFAULT '',
    content_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    size INTEGER NOT NULL DEFAULT 0 CHECK (size >= 0),
    sha256 TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (message_id, position)
) STRICT;

-- The classification of each parsed message, kept for the record even when the
-- message threads onto an existing ticket and changes nothing.
CREATE TABLE classifications (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    tier TEXT NOT NULL CHECK (tier IN ('unmanaged', 'platform', 'managed_os')),
    category TEXT NOT NULL CHECK (category IN (
        'portal-users', 'account-setup', 'knowledge-base', 'service-availability',
        'billing', 'subscription-management', 'technical-support',
        'microsoft-escalation', 'config-review', 'control-portal', 'month-to-date',
        'estimates', 'terms', 'remote-administration', 'monitoring-remediation',
        'change-management', 'patching', 'other')),
    in_scope INTEGER NOT NULL CHECK (in_scope IN (0, 1)),
    microsoft INTEGER NOT NULL CHECK (microsoft IN (0, 1)),
    confidence REAL NOT NULL CHECK (confidence BETWEEN 0 AND 1),
    reasons TEXT NOT NULL DEFAULT '[]',
    entities TEXT NOT NULL DEFAULT '{}',
    -- The account record that decided the tier (JSON), NULL when none matched.
    account TEXT
) STRICT;

-- Each routing decision applied to a ticket, newest last.
CREATE TABLE route_decisions (
    id INTEGER PRIMARY KEY,
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    message_id INTEGER NOT NULL REFERENCES messages (id),
    decided_at INTEGER NOT NULL,
    queue TEXT NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    first_response_due INTEGER NOT NULL,
    rule TEXT NOT NULL DEFAULT '',
    reasons TEXT NOT NULL DEFAULT '[]',
    actions TEXT NOT NULL DEFAULT '[]'
) STRICT;

CREATE INDEX route_decisions_ticket_number ON route_decisions (ticket_number, id);

-- What happened to a ticket, append-only: the triggers refuse UPDATE and DELETE.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY,
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    at INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (length(kind) > 0),
    actor TEXT NOT NULL DEFAULT 'supportd',
    detail TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX audit_events_ticket_number ON audit_events (ticket_number, id);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- The account directory (accounts.csv), replaced whole on reload; `position`
-- keeps the file order, which decides the default record of a customer.
CREATE TABLE accounts (
    position INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    domains TEXT NOT NULL DEFAULT '[]',
    contacts TEXT NOT NULL DEFAULT '[]',
    tenant_id TEXT,
    subscription_id TEXT,
    relationship TEXT NOT NULL
        CHECK (relationship IN ('elasticbox_arm', 'reseller_agreement', 'none')),
    managed_os INTEGER NOT NULL DEFAULT 0 CHECK (managed_os IN (0, 1)),
    is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
    source TEXT NOT NULL DEFAULT ''
) STRICT;
