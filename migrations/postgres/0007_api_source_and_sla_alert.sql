-- Tickets from the API are recorded as such, and the SLA breach flag means
-- "overdue and still unanswered": a first response clears it (the breach stays
-- in the audit trail as an `sla_breached` event).

ALTER TABLE messages DROP CONSTRAINT messages_source_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_source_kind_check
    CHECK (source_kind IN ('file', 'maildir', 'mbox', 'stdin', 'imap', 'api'));

CREATE OR REPLACE FUNCTION outbox_staff_reply_first_response() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tickets SET first_responded_at = NEW.created_at, sla_breached = FALSE
    WHERE number = NEW.ticket_number AND first_responded_at IS NULL;
    RETURN NEW;
END;
$$;

UPDATE tickets SET sla_breached = FALSE WHERE sla_breached AND first_responded_at IS NOT NULL;
