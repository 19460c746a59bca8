//! The one mapping between domain values and stored values, shared by backends:
//! enums are stored as their `slug()` and read back with `FromStr`; lists and
//! structs as JSON text.

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A stored value that does not decode; becomes `StoreError::Corrupt`.
#[derive(Debug, thiserror::Error)]
#[error("column `{column}`: {reason}")]
pub(crate) struct DecodeError {
    pub column: &'static str,
    pub reason: String,
}

/// Reads a slug column back into its enum.
pub(crate) fn slug<T>(column: &'static str, value: &str) -> Result<T, DecodeError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|error: T::Err| DecodeError {
        column,
        reason: error.to_string(),
    })
}

/// Reads a JSON text column.
pub(crate) fn json<T: DeserializeOwned>(
    column: &'static str,
    value: &str,
) -> Result<T, DecodeError> {
    serde_json::from_str(value).map_err(|error| DecodeError {
        column,
        reason: format!("invalid JSON: {error}"),
    })
}

/// Writes a value as JSON text. The domain types serialise infallibly (no maps
/// with non-string keys, no failing `Serialize` impls); should that ever change
/// the statement fails with an encode error instead of panicking.
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// A size or count as the signed 64-bit integer SQL stores.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A stored count or size back to unsigned; negative values cannot be written
/// (CHECK constraints), so they read as 0.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A classifier confidence as the store keeps it: finite, within 0 to 1, so the
/// CHECK constraint never rejects a whole batch over a classifier quirk.
pub(crate) fn confidence(value: f32) -> f64 {
    if value.is_finite() {
        f64::from(value.clamp(0.0, 1.0))
    } else {
        0.0
    }
}
