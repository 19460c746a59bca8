-- Where intake stands in each IMAP folder: written in the same transaction as the
-- tickets of the batch, so a crash can never move the checkpoint past unstored mail.
CREATE TABLE mailbox_checkpoints (
    -- The mailbox (account) name from the configuration.
    mailbox TEXT NOT NULL,
    folder TEXT NOT NULL,
    -- UIDs only mean something within one UIDVALIDITY; a change means re-scan.
    uidvalidity BIGINT NOT NULL CHECK (uidvalidity >= 0),
    -- Every message with a UID up to this one has been stored (or skipped by `start`).
    last_uid BIGINT NOT NULL CHECK (last_uid >= 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mailbox, folder)
);
