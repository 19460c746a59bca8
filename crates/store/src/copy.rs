//! Moving a whole database into an empty PostgreSQL one (`supportd copy`):
//! every table, row for row, values exact (raw bytes as bytes, floats bit for
//! bit), ids and ticket numbers kept, sequences moved past them; then counts
//! and a content checksum of every table compared on both sides.
//!
//! The copy is generic over the schema: the target's columns (from
//! `information_schema`) say which columns to read from the source and which
//! type each becomes, so a table added by a migration is copied once it is in
//! [`TABLES`]. Source and target must be at the same migration version.
//!
//! The source is read in one read transaction (a consistent snapshot), the
//! target written in one transaction: a failed copy leaves the target empty.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, Row, TypeInfo, ValueRef};

use crate::error::StoreError;
use crate::{PgStore, SqliteStore, Store};

/// Every table, parents before children. The migration bookkeeping of sqlx
/// is not copied: each side keeps its own.
const TABLES: &[&str] = &[
    "tickets",
    // Before classifications, whose insert trigger fills it (ON CONFLICT DO NOTHING).
    "ticket_identifiers",
    "ticket_notes",
    "api_idempotency_keys",
    "messages",
    "raw_messages",
    "attachments",
    "classifications",
    "route_decisions",
    "audit_events",
    "outbox",
    "mail_suppressions",
    "mailbox_checkpoints",
    "accounts",
    "staff",
    "staff_sessions",
    "api_tokens",
    "leases",
];

/// Rows per insert statement.
const CHUNK_ROWS: usize = 500;

/// What a copy moved, table by table, and whether both sides agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<TableCount>,
    /// The next ticket number the target will hand out.
    pub next_ticket_number: i64,
    /// Text values of the source that held U+0000, which PostgreSQL text
    /// cannot store: copied with U+FFFD in its place (raw bytes are BYTEA and
    /// never changed). The source checksum is taken after the same mapping.
    pub texts_with_nul: u64,
}

impl CopyReport {
    /// True when every table has the same count and checksum on both sides.
    pub fn matches(&self) -> bool {
        self.tables.iter().all(TableCount::matches)
    }
}

/// One table's rows and content checksum on each side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    pub source_rows: u64,
    pub target_rows: u64,
    /// SHA-256 based, independent of row order: the wrapping sum of the
    /// SHA-256 of each row's canonical encoding (column names, type class,
    /// exact value).
    pub source_checksum: String,
    pub target_checksum: String,
}

impl TableCount {
    pub fn matches(&self) -> bool {
        self.source_rows == self.target_rows && self.source_checksum == self.target_checksum
    }
}

/// One column of the target.
#[derive(Debug, Clone)]
struct TargetColumn {
    name: String,
    kind: Kind,
}

/// The types the schemas use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Boolean,
    Real,
    Text,
    Bytes,
}

impl Kind {
    fn from_postgres(data_type: &str) -> Option<Kind> {
        match data_type {
            "bigint" | "integer" | "smallint" => Some(Kind::Integer),
            "boolean" => Some(Kind::Boolean),
            "double precision" | "real" => Some(Kind::Real),
            "text" | "character varying" => Some(Kind::Text),
            "bytea" => Some(Kind::Bytes),
            _ => None,
        }
    }

    fn array_cast(self) -> &'static str {
        match self {
            Kind::Integer => "bigint[]",
            Kind::Boolean => "boolean[]",
            Kind::Real => "float8[]",
            Kind::Text => "text[]",
            Kind::Bytes => "bytea[]",
        }
    }
}

/// A value read from either backend.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    /// Canonical bytes for the checksum: a booleans is its 0/1 integer (SQLite
    /// stores it so), a float its IEEE bits.
    fn hash_into(&self, hasher: &mut Sha256) {
        match self {
            Value::Null => hasher.update([0]),
            Value::Integer(value) => {
                hasher.update([1]);
                hasher.update(value.to_le_bytes());
            }
            Value::Real(value) => {
                hasher.update([2]);
                hasher.update(value.to_bits().to_le_bytes());
            }
            Value::Text(value) => {
                hasher.update([3]);
                hasher.update((value.len() as u64).to_le_bytes());
                hasher.update(value.as_bytes());
            }
            Value::Bytes(value) => {
                hasher.update([4]);
                hasher.update((value.len() as u64).to_le_bytes());
                hasher.update(value);
            }
        }
    }
}

fn unexpected(message: String) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!(message))
}

impl Store {
    /// Copies this whole database into `target`, which must be PostgreSQL,
    /// migrated to the same version, and empty. Returns the counts and
    /// checksums of both sides; the caller decides what a mismatch means (the
    /// copy has committed by then).
    pub async fn copy_to(&self, target: &Store) -> Result<CopyReport, StoreError> {
        let Store::Postgres(target) = target else {
            return Err(unexpected(format!(
                "the target {} is not PostgreSQL; copy moves a database into PostgreSQL",
                target.database()
            )));
        };
        let source_versions = self.applied_migrations().await?;
        let target_versions = Store::Postgres(target.clone()).applied_migrations().await?;
        if source_versions != target_versions {
            return Err(unexpected(format!(
                "source {} has migrations {:?} applied, target {} has {:?}: run `supportd migrate` \
                 on both with this version first",
                self.database(),
                source_versions,
                target.database(),
                target_versions
            )));
        }
        let mut columns = Vec::with_capacity(TABLES.len());
        for table in TABLES {
            columns.push(target_columns(target, table).await?);
        }
        for table in TABLES {
            let rows = target_count(target, table).await?;
            if rows > 0 {
                return Err(unexpected(format!(
                    "the target {} is not empty: table {table} has {rows} rows",
                    target.database()
                )));
            }
        }
        let texts_with_nul = match self {
            Store::Sqlite(source) => copy_from_sqlite(source, target, &columns).await?,
            Store::Postgres(source) => {
                return Err(unexpected(format!(
                    "copying from PostgreSQL ({}) is not supported: use pg_dump and pg_restore",
                    source.database()
                )));
            }
        };
        let mut tables = Vec::with_capacity(TABLES.len());
        for (table, columns) in TABLES.iter().zip(&columns) {
            let (source_rows, source_checksum) = match self {
                Store::Sqlite(source) => sqlite_checksum(source, table, columns).await?,
                Store::Postgres(source) => postgres_checksum(source, table, columns).await?,
            };
            let (target_rows, target_checksum) = postgres_checksum(target, table, columns).await?;
            tables.push(TableCount {
                table,
                source_rows,
                target_rows,
                source_checksum,
                target_checksum,
            });
        }
        let next_ticket_number: i64 = sqlx::query_scalar(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END \
             FROM tickets_number_seq",
        )
        .fetch_one(target.pool())
        .await
        .map_err(|error| StoreError::from_sqlx(target.database(), "reading the sequence", error))?;
        Ok(CopyReport {
            tables,
            next_ticket_number,
            texts_with_nul,
        })
    }

    /// The migration versions applied to this database, ascending.
    async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let doing = "reading the applied migrations";
        let sql = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        match self {
            Store::Sqlite(store) => sqlx::query_scalar(sql)
                .fetch_all(store.pool())
                .await
                .map_err(|error| StoreError::from_sqlx(store.database(), doing, error)),
            Store::Postgres(store) => sqlx::query_scalar(sql)
                .fetch_all(store.pool())
                .await
                .map_err(|error| StoreError::from_sqlx(store.database(), doing, error)),
        }
    }
}

async fn target_columns(target: &PgStore, table: &str) -> Result<Vec<TargetColumn>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(target.pool())
    .await
    .map_err(|error| StoreError::from_sqlx(target.database(), "reading the schema", error))?;
    if rows.is_empty() {
        return Err(unexpected(format!(
            "the target {} has no table {table}",
            target.database()
        )));
    }
    rows.into_iter()
        .map(|(name, data_type)| {
            let kind = Kind::from_postgres(&data_type).ok_or_else(|| {
                unexpected(format!(
                    "column {table}.{name} has type {data_type}, which copy does not know"
                ))
            })?;
            Ok(TargetColumn { name, kind })
        })
        .collect()
}

async fn target_count(target: &PgStore, table: &str) -> Result<i64, StoreError> {
    // `table` comes from TABLES, never from input.
    sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(target.pool())
        .await
        .map_err(|error| StoreError::from_sqlx(target.database(), "counting rows", error))
}

fn select_sql(table: &str, columns: &[TargetColumn]) -> String {
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    format!("SELECT {} FROM {table}", names.join(", "))
}

/// A SQLite value as PostgreSQL can hold it: U+0000 in text becomes U+FFFD.
/// True in the second place when that happened.
fn sqlite_value_for_postgres(row: &SqliteRow, index: usize) -> Result<(Value, bool), sqlx::Error> {
    Ok(match sqlite_value(row, index)? {
        Value::Text(text) if text.contains('\0') => {
            (Value::Text(text.replace('\0', "\u{FFFD}")), true)
        }
        value => (value, false),
    })
}

/// Reads one SQLite value by its storage class.
fn sqlite_value(row: &SqliteRow, index: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    Ok(match type_name.as_str() {
        "INTEGER" | "BOOLEAN" => Value::Integer(row.try_get(index)?),
        "REAL" => Value::Real(row.try_get(index)?),
        "BLOB" => Value::Bytes(row.try_get(index)?),
        _ => Value::Text(row.try_get(index)?),
    })
}

/// Reads one PostgreSQL value by its type.
fn postgres_value(row: &PgRow, index: usize) -> Result<Value, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let type_name = raw.type_info().name().to_owned();
    Ok(match type_name.as_str() {
        "INT8" => Value::Integer(row.try_get(index)?),
        "INT4" => Value::Integer(i64::from(row.try_get::<i32, _>(index)?)),
        "BOOL" => Value::Integer(i64::from(row.try_get::<bool, _>(index)?)),
        "FLOAT8" => Value::Real(row.try_get(index)?),
        "BYTEA" => Value::Bytes(row.try_get(index)?),
        _ => Value::Text(row.try_get(index)?),
    })
}

/// The values of one column of a chunk, typed for its `UNNEST` parameter.
enum ColumnValues {
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Real(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    Bytes(Vec<Option<Vec<u8>>>),
}

impl ColumnValues {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Integer => ColumnValues::Integer(Vec::new()),
            Kind::Boolean => ColumnValues::Boolean(Vec::new()),
            Kind::Real => ColumnValues::Real(Vec::new()),
            Kind::Text => ColumnValues::Text(Vec::new()),
            Kind::Bytes => ColumnValues::Bytes(Vec::new()),
        }
    }

    /// Adds a source value; a value of the wrong class is an error naming the column.
    fn push(&mut self, value: Value, column: &str) -> Result<(), String> {
        let mismatch = |value: &Value| format!("column {column}: cannot store {value:?} here");
        match (self, value) {
            (ColumnValues::Integer(values), Value::Null) => values.push(None),
            (ColumnValues::Boolean(values), Value::Null) => values.push(None),
            (ColumnValues::Real(values), Value::Null) => values.push(None),
            (ColumnValues::Text(values), Value::Null) => values.push(None),
            (ColumnValues::Bytes(values), Value::Null) => values.push(None),
            (ColumnValues::Integer(values), Value::Integer(value)) => values.push(Some(value)),
            (ColumnValues::Boolean(values), Value::Integer(value @ (0 | 1))) => {
                values.push(Some(value == 1));
            }
            (ColumnValues::Real(values), Value::Real(value)) => values.push(Some(value)),
            (ColumnValues::Text(values), Value::Text(value)) => values.push(Some(value)),
            (ColumnValues::Bytes(values), Value::Bytes(value)) => values.push(Some(value)),
            (_, value) => return Err(mismatch(&value)),
        }
        Ok(())
    }

    fn bind<'q>(
        self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        match self {
            ColumnValues::Integer(values) => query.bind(values),
            ColumnValues::Boolean(values) => query.bind(values),
            ColumnValues::Real(values) => query.bind(values),
            ColumnValues::Text(values) => query.bind(values),
            ColumnValues::Bytes(values) => query.bind(values),
        }
    }
}

/// Inserts one chunk of rows into `table`.
async fn insert_chunk(
    connection: &mut sqlx::PgConnection,
    table: &str,
    columns: &[TargetColumn],
    rows: Vec<Vec<Value>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut values: Vec<ColumnValues> = columns
        .iter()
        .map(|column| ColumnValues::new(column.kind))
        .collect();
    for row in rows {
        for ((value, column_values), column) in row.into_iter().zip(&mut values).zip(columns) {
            column_values
                .push(value, &format!("{table}.{}", column.name))
                .map_err(unexpected)?;
        }
    }
    let names: Vec<&str> = columns.iter().map(|column| column.name.as_str()).collect();
    let parameters: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(index, column)| format!("${}::{}", index + 1, column.kind.array_cast()))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}) SELECT * FROM UNNEST({})",
        names.join(", "),
        parameters.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for column_values in values {
        query = column_values.bind(query);
    }
    query
        .execute(connection)
        .await
        .map_err(|error| unexpected(format!("inserting into {table}: {error}")))?;
    Ok(())
}

/// Copies every table; answers how many text values held U+0000.
async fn copy_from_sqlite(
    source: &SqliteStore,
    target: &PgStore,
    all_columns: &[Vec<TargetColumn>],
) -> Result<u64, StoreError> {
    let mut texts_with_nul = 0;
    let source_error =
        |error| StoreError::from_sqlx(source.database(), "reading the source", error);
    let target_error =
        |error| StoreError::from_sqlx(target.database(), "writing the target", error);
    // One read transaction: every table from the same snapshot.
    let mut reader = source.pool().begin().await.map_err(source_error)?;
    let mut writer = target.pool().begin().await.map_err(target_error)?;
    for (table, columns) in TABLES.iter().zip(all_columns) {
        let sql = select_sql(table, columns);
        let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(&mut *reader);
        let mut chunk = Vec::with_capacity(CHUNK_ROWS);
        while let Some(row) = rows.try_next().await.map_err(source_error)? {
            let mut values = Vec::with_capacity(row.columns().len());
            for index in 0..row.columns().len() {
                let (value, had_nul) =
                    sqlite_value_for_postgres(&row, index).map_err(source_error)?;
                texts_with_nul += u64::from(had_nul);
                values.push(value);
            }
            chunk.push(values);
            if chunk.len() == CHUNK_ROWS {
                insert_chunk(&mut writer, table, columns, std::mem::take(&mut chunk)).await?;
            }
        }
        insert_chunk(&mut writer, table, columns, chunk).await?;
    }
    // Sequences past the copied ids; tickets also past numbers SQLite handed
    // out for rows that no longer exist (AUTOINCREMENT never reuses them).
    let last_ticket: i64 = sqlx::query_scalar(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tickets'), 1000), \
         COALESCE((SELECT MAX(number) FROM tickets), 1000))",
    )
    .fetch_one(&mut *reader)
    .await
    .map_err(source_error)?;
    reader.commit().await.map_err(source_error)?;
    if last_ticket > 1000 {
        sqlx::query("SELECT setval('tickets_number_seq', $1)")
            .bind(last_ticket)
            .execute(&mut *writer)
            .await
            .map_err(target_error)?;
    }
    let serial: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%' \
         AND table_name <> 'tickets'",
    )
    .fetch_all(&mut *writer)
    .await
    .map_err(target_error)?;
    let tables: BTreeSet<&str> = TABLES.iter().copied().collect();
    for (table, column) in serial {
        if !tables.contains(table.as_str()) {
            continue;
        }
        // Names come from information_schema of the target, not from input.
        sqlx::query(AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), MAX({column})) \
             FROM {table} HAVING MAX({column}) IS NOT NULL"
        )))
        .execute(&mut *writer)
        .await
        .map_err(target_error)?;
    }
    writer.commit().await.map_err(target_error)?;
    Ok(texts_with_nul)
}

/// Adds one row's hash to the running, order-independent sum.
fn add_row(sum: &mut [u64; 4], columns: &[TargetColumn], values: &[Value]) {
    let mut hasher = Sha256::new();
    for (column, value) in columns.iter().zip(values) {
        hasher.update(column.name.as_bytes());
        hasher.update([0xff]);
        value.hash_into(&mut hasher);
    }
    let digest = hasher.finalize();
    for (index, part) in digest.chunks_exact(8).enumerate() {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(part);
        sum[index] = sum[index].wrapping_add(u64::from_le_bytes(bytes));
    }
}

fn checksum_hex(sum: &[u64; 4]) -> String {
    sum.iter().map(|part| format!("{part:016x}")).collect()
}

async fn sqlite_checksum(
    source: &SqliteStore,
    table: &str,
    columns: &[TargetColumn],
) -> Result<(u64, String), StoreError> {
    let error = |error| StoreError::from_sqlx(source.database(), "checksumming", error);
    let sql = select_sql(table, columns);
    let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(source.pool());
    let (mut count, mut sum) = (0u64, [0u64; 4]);
    while let Some(row) = rows.try_next().await.map_err(error)? {
        let values = (0..row.columns().len())
            .map(|index| sqlite_value_for_postgres(&row, index).map(|(value, _)| value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        add_row(&mut sum, columns, &values);
        count += 1;
    }
    Ok((count, checksum_hex(&sum)))
}

async fn postgres_checksum(
    store: &PgStore,
    table: &str,
    columns: &[TargetColumn],
) -> Result<(u64, String), StoreError> {
    let error = |error| StoreError::from_sqlx(store.database(), "checksumming", error);
    let sql = select_sql(table, columns);
    let mut rows = sqlx::query(AssertSqlSafe(sql)).fetch(store.pool());
    let (mut count, mut sum) = (0u64, [0u64; 4]);
    while let Some(row) = rows.try_next().await.map_err(error)? {
        let values = (0..row.columns().len())
            .map(|index| postgres_value(&row, index))
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?;
        add_row(&mut sum, columns, &values);
        count += 1;
    }
    Ok((count, checksum_hex(&sum)))
}
