//! Durable storage of tickets, messages, classifications, routing and audit events (sqlx).
