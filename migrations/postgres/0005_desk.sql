-- The support desk (same meaning as migrations/sqlite/0005_desk.sql): who
-- works a ticket, its SLA breach and first response, internal notes, the
-- indexes behind the queue filters and the search, API idempotency keys.

ALTER TABLE tickets ADD COLUMN assignee TEXT CHECK (assignee IS NULL OR length(assignee) BETWEEN 1 AND 64);
ALTER TABLE tickets ADD COLUMN sla_breached BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tickets ADD COLUMN first_responded_at BIGINT;

-- A staff reply is a first response, set in the transaction that queues it.
CREATE FUNCTION outbox_staff_reply_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets SET first_responded_at = NEW.created_at
    WHERE number = NEW.ticket_number AND first_responded_at IS NULL;
    RETURN NEW;
END;
$$;

CREATE TRIGGER outbox_staff_reply_first_response AFTER INSERT ON outbox
    FOR EACH ROW WHEN (NEW.kind = 'staff_reply')
    EXECUTE FUNCTION outbox_staff_reply_first_response();

-- Internal notes: shown to staff in the thread, never mailed to anyone.
CREATE TABLE ticket_notes (
    id BIGSERIAL PRIMARY KEY,
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    author TEXT NOT NULL CHECK (length(author) > 0),
    body TEXT NOT NULL CHECK (length(body) > 0),
    created_at BIGINT NOT NULL
);

CREATE INDEX ticket_notes_ticket_number ON ticket_notes (ticket_number, id);

-- Queue pages: breached first, then by number; optionally one tier or category.
CREATE INDEX tickets_queue_status_breached_number
    ON tickets (queue, status, sla_breached, number);
CREATE INDEX tickets_queue_status_tier_breached_number
    ON tickets (queue, status, tier, sla_breached, number);
CREATE INDEX tickets_queue_status_category_breached_number
    ON tickets (queue, status, category, sla_breached, number);

-- The SLA sweep: open, not yet breached, not answered, due before now.
CREATE INDEX tickets_sla_sweep
    ON tickets (status, sla_breached, first_responded_at, first_response_due);

-- Search by sender (case-insensitive) and by words of the subject.
CREATE INDEX tickets_requester_email ON tickets (lower(requester_email), number);
CREATE INDEX tickets_subject_search ON tickets USING GIN (to_tsvector('simple', subject));

-- Search by subscription or tenant ID, kept by a trigger on classifications.
-- ON CONFLICT: `supportd copy` copies this table before classifications,
-- whose inserts then find every row present.
CREATE TABLE ticket_identifiers (
    identifier TEXT NOT NULL CHECK (length(identifier) > 0),
    ticket_number BIGINT NOT NULL REFERENCES tickets (number),
    PRIMARY KEY (identifier, ticket_number)
);

CREATE FUNCTION classifications_identifiers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ticket_identifiers (identifier, ticket_number)
    SELECT DISTINCT lower(ids.value), m.ticket_number
    FROM messages AS m,
         jsonb_array_elements_text(
             COALESCE(NEW.entities::jsonb -> 'subscription_ids', '[]'::jsonb)
             || COALESCE(NEW.entities::jsonb -> 'tenant_ids', '[]'::jsonb)) AS ids (value)
    WHERE m.id = NEW.message_id
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END;
$$;

CREATE TRIGGER classifications_identifiers AFTER INSERT ON classifications
    FOR EACH ROW EXECUTE FUNCTION classifications_identifiers();

INSERT INTO ticket_identifiers (identifier, ticket_number)
SELECT DISTINCT lower(ids.value), m.ticket_number
FROM classifications AS c JOIN messages AS m ON m.id = c.message_id,
     jsonb_array_elements_text(
         COALESCE(c.entities::jsonb -> 'subscription_ids', '[]'::jsonb)
         || COALESCE(c.entities::jsonb -> 'tenant_ids', '[]'::jsonb)) AS ids (value)
ON CONFLICT DO NOTHING;

-- `POST /api/tickets` with an Idempotency-Key.
CREATE TABLE api_idempotency_keys (
    key TEXT PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 255),
    request_hash TEXT NOT NULL CHECK (length(request_hash) > 0),
    ticket_number BIGINT REFERENCES tickets (number),
    created_at BIGINT NOT NULL
);
