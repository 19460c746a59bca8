-- Tickets from the API are recorded as such, and the SLA breach flag means
-- "overdue and still unanswered": a first response clears it (the breach stays
-- in the audit trail as an `sla_breached` event).

-- messages.source_kind gains 'api'. Widening a CHECK changes nothing stored,
-- so the table's definition is edited in place, the way SQLite documents for
-- such changes (lang_altertable.html, "Making Other Kinds Of Table Schema
-- Changes"), instead of copying every message into a new table. The trigger
-- change below is ordinary DDL: it bumps the schema cookie, so every other
-- connection re-reads the schema. `SqliteStore::migrate` runs the migrations
-- on a connection of their own, closed afterwards.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = replace(sql, '''stdin'', ''imap'')', '''stdin'', ''imap'', ''api'')')
WHERE type = 'table' AND name = 'messages';
PRAGMA writable_schema = OFF;

DROP TRIGGER outbox_staff_reply_first_response;
CREATE TRIGGER outbox_staff_reply_first_response AFTER INSERT ON outbox
WHEN NEW.kind = 'staff_reply'
BEGIN
    UPDATE tickets SET first_responded_at = NEW.created_at, sla_breached = 0
    WHERE number = NEW.ticket_number AND first_responded_at IS NULL;
END;

UPDATE tickets SET sla_breached = 0 WHERE sla_breached = 1 AND first_responded_at IS NOT NULL;
