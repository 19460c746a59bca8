//! The one error type of the store, with variants a caller can act on.

/// Why a store operation failed. Every message names the database and what the
/// store was doing; the cause is in `source()` (print with `{:#}` via anyhow).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend this build supports, or is malformed.
    /// Fix the configuration.
    #[error("`{url}` is not a usable database URL: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// The database cannot be reached right now: locked by another writer past
    /// the busy timeout, the file cannot be opened, the disk is full, the pool
    /// is closed. Retry later; nothing of the failed operation was committed.
    #[error("database {database} is unavailable while {doing}")]
    Unavailable {
        database: String,
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// The database holds something this version cannot read: a damaged file,
    /// or a row whose value breaks the schema's promises. An operator must look.
    #[error("database {database} is corrupt or unreadable while {doing}: {detail}")]
    Corrupt {
        database: String,
        doing: &'static str,
        detail: String,
    },

    /// Applying the migrations failed (or the database was migrated by a newer
    /// version). The database is left as the failed migration found it.
    #[error("migrating database {database} failed")]
    Migration {
        database: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A fenced write found its lease expired or held by another instance:
    /// nothing was written. The writer must stop and stand by.
    #[error("the lease `{lease}` is no longer held by `{holder}`; the write was not committed")]
    LeaseLost { lease: String, holder: String },

    /// Anything else: a bug or a broken invariant. The chain says what and where.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// SQLite primary result codes that mean "try again later" or "cannot reach
/// the file": BUSY, LOCKED, NOMEM, IOERR, FULL, CANTOPEN, PROTOCOL.
const SQLITE_UNAVAILABLE_CODES: [i64; 7] = [5, 6, 7, 10, 13, 14, 15];
/// SQLite primary result codes for a damaged file: CORRUPT, NOTADB.
const SQLITE_CORRUPT_CODES: [i64; 2] = [11, 26];

impl StoreError {
    /// Whether one bad item of a batch may be the cause (a constraint or a
    /// value the database refused), so that storing the items one by one is
    /// worth it. Not for an unavailable database, a failed migration or a bad
    /// URL: those fail every item alike.
    pub fn may_be_one_item(&self) -> bool {
        matches!(self, StoreError::Unexpected(_))
    }

    /// Sorts a sqlx error from `database` into the variant a caller can act on.
    pub(crate) fn from_sqlx(database: &str, doing: &'static str, error: sqlx::Error) -> StoreError {
        match &error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable {
                database: database.to_owned(),
                doing,
                source: error,
            },
            sqlx::Error::Database(database_error)
                if database_error
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .is_some() =>
            {
                postgres_error(database, doing, error)
            }
            sqlx::Error::Database(database_error) => {
                // SQLite reports extended result codes; the low byte is the primary code.
                let primary = database_error
                    .code()
                    .and_then(|code| code.parse::<i64>().ok())
                    .map(|code| code & 0xff);
                match primary {
                    Some(code) if SQLITE_UNAVAILABLE_CODES.contains(&code) => {
                        StoreError::Unavailable {
                            database: database.to_owned(),
                            doing,
                            source: error,
                        }
                    }
                    Some(code) if SQLITE_CORRUPT_CODES.contains(&code) => StoreError::Corrupt {
                        database: database.to_owned(),
                        doing,
                        detail: error.to_string(),
                    },
                    _ => unexpected(database, doing, error),
                }
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => StoreError::Corrupt {
                database: database.to_owned(),
                doing,
                detail: error.to_string(),
            },
            _ => unexpected(database, doing, error),
        }
    }

    /// A stored value that does not decode into its domain type.
    pub(crate) fn corrupt(database: &str, doing: &'static str, detail: String) -> StoreError {
        StoreError::Corrupt {
            database: database.to_owned(),
            doing,
            detail,
        }
    }

    /// True when retrying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Sorts a PostgreSQL error by its SQLSTATE class: connection trouble,
/// resources, shutdown and lost serialization races are worth a retry; data
/// corruption needs an operator; anything else is unexpected.
fn postgres_error(database: &str, doing: &'static str, error: sqlx::Error) -> StoreError {
    let code = error
        .as_database_error()
        .and_then(|error| error.code())
        .map(|code| code.into_owned())
        .unwrap_or_default();
    let class = code.get(..2).unwrap_or_default();
    if matches!(class, "08" | "53" | "57" | "40") {
        StoreError::Unavailable {
            database: database.to_owned(),
            doing,
            source: error,
        }
    } else if code == "XX001" || code == "XX002" {
        StoreError::Corrupt {
            database: database.to_owned(),
            doing,
            detail: error.to_string(),
        }
    } else {
        unexpected(database, doing, error)
    }
}

fn unexpected(database: &str, doing: &'static str, error: sqlx::Error) -> StoreError {
    StoreError::Unexpected(anyhow::Error::new(error).context(format!(
        "database {database}: unexpected error while {doing}"
    )))
}
