//! Integration tests of the supportd binary: real processes, real SQLite files.
//! One test binary (see ripgrep's tests/tests.rs); one module per area.

mod bad_input;
mod browser;
mod classify;
mod copy;
mod corpus;
mod faults;
mod hostile;
mod imap;
mod ingest;
mod instances;
mod limits;
mod loop_protection;
mod outbound;
mod secrets;
mod serve;
mod serve_imap;
mod web;
