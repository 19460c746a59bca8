-- Named leases: one holder at a time per name (a mailbox folder polled by one
-- instance). Times are the database's clock in milliseconds since the Unix
-- epoch, so instances on hosts with skewed clocks still agree on expiry.
CREATE TABLE leases (
    name TEXT PRIMARY KEY CHECK (length(name) > 0),
    holder TEXT NOT NULL CHECK (length(holder) > 0),
    acquired_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
