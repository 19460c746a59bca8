-- Named leases: one holder at a time per name (a mailbox folder polled by one
-- instance). A holder renews before `expires_at_ms`; once it has passed,
-- another holder may take the lease over. Times are the database's clock in
-- milliseconds since the Unix epoch.
CREATE TABLE leases (
    name TEXT PRIMARY KEY CHECK (length(name) > 0),
    holder TEXT NOT NULL CHECK (length(holder) > 0),
    acquired_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL
) STRICT;
