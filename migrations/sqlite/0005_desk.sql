-- The support desk: who works a ticket, its SLA breach, internal notes, and the
-- indexes behind the queue filters and the search.

-- The staff login working the ticket; NULL while nobody has taken it.
ALTER TABLE tickets ADD COLUMN assignee TEXT CHECK (assignee IS NULL OR length(assignee) BETWEEN 1 AND 64);
-- 1 once the SLA sweep found the ticket open and unanswered past its
-- first-response due time. Stays 1: it is a fact about the ticket's history.
ALTER TABLE tickets ADD COLUMN sla_breached INTEGER NOT NULL DEFAULT 0 CHECK (sla_breached IN (0, 1));
-- When staff first replied to the customer (the first staff_reply outbox row);
-- NULL until then. The sweep only looks at tickets without one.
ALTER TABLE tickets ADD COLUMN first_responded_at INTEGER;

-- A staff reply is a first response: set in the transaction that queues it,
-- whoever queues it (the web pages, the API, `supportd ticket reply`).
CREATE TRIGGER outbox_staff_reply_first_response AFTER INSERT ON outbox
WHEN NEW.kind = 'staff_reply'
BEGIN
    UPDATE tickets SET first_responded_at = NEW.created_at
    WHERE number = NEW.ticket_number AND first_responded_at IS NULL;
END;

-- Internal notes: shown to staff in the thread, never mailed to anyone.
CREATE TABLE ticket_notes (
    id INTEGER PRIMARY KEY,
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    author TEXT NOT NULL CHECK (length(author) > 0),
    body TEXT NOT NULL CHECK (length(body) > 0),
    created_at INTEGER NOT NULL
) STRICT;

CREATE INDEX ticket_notes_ticket_number ON ticket_notes (ticket_number, id);

-- Queue pages: breached tickets first, then by number, one status, optionally
-- one tier or one category. Each listing is a range of one of these indexes.
-- (tickets_queue_status_number stays: `supportd queue show` lists by number alone.)
CREATE INDEX tickets_queue_status_breached_number
    ON tickets (queue, status, sla_breached, number);
CREATE INDEX tickets_queue_status_tier_breached_number
    ON tickets (queue, status, tier, sla_breached, number);
CREATE INDEX tickets_queue_status_category_breached_number
    ON tickets (queue, status, category, sla_breached, number);

-- The SLA sweep: open, not yet breached, not answered, due before now.
CREATE INDEX tickets_sla_sweep
    ON tickets (status, sla_breached, first_responded_at, first_response_due);

-- Search by sender (case-insensitive).
CREATE INDEX tickets_requester_email ON tickets (requester_email COLLATE NOCASE, number);

-- Search by subscription or tenant ID: every ID the classifier found in a
-- ticket's messages, lower-case, kept by a trigger on classifications.
CREATE TABLE ticket_identifiers (
    identifier TEXT NOT NULL CHECK (length(identifier) > 0),
    ticket_number INTEGER NOT NULL REFERENCES tickets (number),
    PRIMARY KEY (identifier, ticket_number)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER classifications_identifiers AFTER INSERT ON classifications
BEGIN
    INSERT OR IGNORE INTO ticket_identifiers (identifier, ticket_number)
    SELECT lower(value), (SELECT ticket_number FROM messages WHERE id = NEW.message_id)
    FROM json_each(NEW.entities, '$.subscription_ids')
    UNION
    SELECT lower(value), (SELECT ticket_number FROM messages WHERE id = NEW.message_id)
    FROM json_each(NEW.entities, '$.tenant_ids');
END;

INSERT OR IGNORE INTO ticket_identifiers (identifier, ticket_number)
SELECT lower(j.value), m.ticket_number
FROM classifications AS c JOIN messages AS m ON m.id = c.message_id,
     json_each(c.entities, '$.subscription_ids') AS j
UNION
SELECT lower(j.value), m.ticket_number
FROM classifications AS c JOIN messages AS m ON m.id = c.message_id,
     json_each(c.entities, '$.tenant_ids') AS j;

-- Search by words of the subject: a full-text index over tickets.subject,
-- kept by triggers (external content: the text lives only in tickets).
CREATE VIRTUAL TABLE tickets_subject_fts USING fts5 (
    subject, content = 'tickets', content_rowid = 'number', tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER tickets_subject_fts_insert AFTER INSERT ON tickets
BEGIN
    INSERT INTO tickets_subject_fts (rowid, subject) VALUES (NEW.number, NEW.subject);
END;

CREATE TRIGGER tickets_subject_fts_update AFTER UPDATE OF subject ON tickets
BEGIN
    INSERT INTO tickets_subject_fts (tickets_subject_fts, rowid, subject)
    VALUES ('delete', OLD.number, OLD.subject);
    INSERT INTO tickets_subject_fts (rowid, subject) VALUES (NEW.number, NEW.subject);
END;

INSERT INTO tickets_subject_fts (tickets_subject_fts) VALUES ('rebuild');

-- `POST /api/tickets` with an Idempotency-Key: the key, a hash of the request
-- body it was first used with, and the ticket it created (NULL while the first
-- request is still being handled).
CREATE TABLE api_idempotency_keys (
    key TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request_hash TEXT NOT NULL CHECK (length(request_hash) > 0),
    ticket_number INTEGER REFERENCES tickets (number),
    created_at INTEGER NOT NULL
) STRICT;
