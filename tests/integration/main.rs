//! Integration tests of the supportd binary: real processes, real SQLite files.
//! One test binary (see ripgrep's tests/tests.rs); one module per area.

mod bad_input;
mod browser;
mod classify;
mod copy;
mod corpus;
mod imap;
mod ingest;
mod instances;
mod loop_protection;
mod outbound;
mod serve;
mod serve_imap;
mod web;
