//! Staff accounts, sessions and API tokens on PostgreSQL.

use super::PgStore;
use crate::codec;
use crate::error::StoreError;
use crate::staff::{NewSession, Principal, StaffAccount, StaffRole};

/// SQLSTATE of a UNIQUE constraint violation.
const UNIQUE_VIOLATION: &str = "23505";

impl PgStore {
    /// See [`crate::Store::ping`].
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query_scalar::<_, i32>("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(self.error("checking the database is reachable"))?;
        Ok(())
    }

    /// See [`crate::Store::add_staff`].
    pub async fn add_staff(
        &self,
        name: &str,
        role: StaffRole,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO staff (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role.slug())
        .bind(password_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        inserted(result).map_err(self.error("adding a staff account"))
    }

    /// See [`crate::Store::staff_account`].
    pub async fn staff_account(&self, name: &str) -> Result<Option<StaffAccount>, StoreError> {
        let doing = "reading a staff account";
        let row: Option<(i64, String, String, String)> =
            sqlx::query_as("SELECT id, name, role, password_hash FROM staff WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.error(doing))?;
        row.map(|(id, name, role, password_hash)| {
            Ok(StaffAccount {
                id,
                name,
                role: codec::slug("staff.role", &role).map_err(self.corrupt(doing))?,
                password_hash,
            })
        })
        .transpose()
    }

    /// See [`crate::Store::create_session`].
    pub async fn create_session(&self, session: &NewSession) -> Result<(), StoreError> {
        let doing = "creating a session";
        let mut transaction = self.pool.begin().await.map_err(self.error(doing))?;
        // Expired sessions are useless; dropping them here keeps the table small.
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(session.created_at)
            .execute(&mut *transaction)
            .await
            .map_err(self.error(doing))?;
        sqlx::query(
            "INSERT INTO staff_sessions (id_hash, staff_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&session.id_hash)
        .bind(session.staff_id)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(&mut *transaction)
        .await
        .map_err(self.error(doing))?;
        transaction.commit().await.map_err(self.error(doing))
    }

    /// See [`crate::Store::session`].
    pub async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Principal>, StoreError> {
        let doing = "reading a session";
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT staff.name, staff.role FROM staff_sessions \
             JOIN staff ON staff.id = staff_sessions.staff_id \
             WHERE staff_sessions.id_hash = $1 AND staff_sessions.expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(self.error(doing))?;
        self.principal(doing, "staff.role", row)
    }

    /// See [`crate::Store::delete_session`].
    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(self.error("deleting a session"))?;
        Ok(())
    }

    /// See [`crate::Store::add_api_token`].
    pub async fn add_api_token(
        &self,
        name: &str,
        role: StaffRole,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(name)
        .bind(role.slug())
        .bind(token_hash)
        .bind(now)
        .execute(&self.pool)
        .await;
        inserted(result).map_err(self.error("adding an API token"))
    }

    /// See [`crate::Store::api_token`].
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<Principal>, StoreError> {
        let doing = "reading an API token";
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, role FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.error(doing))?;
        self.principal(doing, "api_tokens.role", row)
    }

    fn principal(
        &self,
        doing: &'static str,
        column: &'static str,
        row: Option<(String, String)>,
    ) -> Result<Option<Principal>, StoreError> {
        row.map(|(name, role)| {
            Ok(Principal {
                name,
                role: codec::slug(column, &role).map_err(self.corrupt(doing))?,
            })
        })
        .transpose()
    }
}

/// `Ok(true)` for a row inserted, `Ok(false)` when the name was taken.
fn inserted(
    result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>,
) -> Result<bool, sqlx::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(UNIQUE_VIOLATION) => {
            Ok(false)
        }
        Err(error) => Err(error),
    }
}
