//! Real servers for the integration tests, each started per test on
//! loopback from a temp dir: no mocks.

pub mod dovecot;
pub mod fault_proxy;
pub mod postfix;
pub mod postgres;
pub mod postgres_cluster;
pub mod stalling_smtp;

pub use dovecot::Dovecot;
pub use postfix::Postfix;
pub use postgres::PostgresDatabase;
pub use postgres_cluster::PostgresCluster;
