//! OAuth2 access tokens from a refresh token (RFC 6749 §6), for mailboxes that
//! accept nothing but XOAUTH2 (Microsoft 365, Gmail).
//!
//! supportd holds the refresh token in a file it owns. Before a login it asks
//! the provider's token endpoint for an access token when the one it has is
//! missing or expires within [`EXPIRY_MARGIN`]. When the provider rotates the
//! refresh token (Microsoft does on most refreshes), the new one is written
//! to the file before the access token is used: atomically (a temporary file
//! in the same folder, fsync, rename) and readable by the owner only, so a
//! crash never leaves a half-written or lost refresh token.
//!
//! The token endpoint's refusal (`invalid_grant`: the refresh token was
//! revoked or expired) is [`IntakeError::AuthenticationRefused`]: waiting will
//! not fix it, and `/readyz` shows it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{Secret, SecretSource};
use crate::error::IntakeError;

/// A token expiring sooner than this is refreshed before a login.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The `[[mailbox]]` settings of `auth = { method = "oauth2", … }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Settings {
    /// `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`,
    /// `https://oauth2.googleapis.com/token`; plain `http` only on loopback.
    pub token_endpoint: String,
    pub client_id: String,
    /// Confidential clients only; public clients have none.
    pub client_secret: Option<SecretSource>,
    /// The file holding the refresh token; supportd rewrites it on rotation.
    pub refresh_token_file: PathBuf,
    /// Space-separated scopes, when the provider wants them on refresh
    /// (Microsoft: `https://outlook.office.com/IMAP.AccessAsUser.All offline_access`).
    pub scope: Option<String>,
    /// Extra CA (PEM) for a private token endpoint.
    pub ca_file: Option<PathBuf>,
}

/// An access token and when it expires (Unix seconds).
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: Secret,
    pub expires_at: i64,
}

/// Gets access tokens for one mailbox, refreshing and rotating as needed.
/// Cheap to clone; clones share the cached token.
#[derive(Debug, Clone)]
pub struct TokenRefresher {
    settings: OAuth2Settings,
    cached: Arc<Mutex<Option<AccessToken>>>,
}

impl PartialEq for TokenRefresher {
    fn eq(&self, other: &TokenRefresher) -> bool {
        self.settings == other.settings
    }
}

impl Eq for TokenRefresher {}

/// The token endpoint's answer (RFC 6749 §5.1), or its error (§5.2).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: Option<String>,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl TokenRefresher {
    pub fn new(settings: OAuth2Settings) -> TokenRefresher {
        TokenRefresher {
            settings,
            cached: Arc::new(Mutex::new(None)),
        }
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.settings
    }

    /// An access token valid for at least [`EXPIRY_MARGIN`], from the cache
    /// or from the token endpoint.
    pub async fn access_token(&self, timeout: Duration) -> Result<AccessToken, IntakeError> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && token.expires_at - unix_now() > EXPIRY_MARGIN.as_secs() as i64
        {
            return Ok(token.clone());
        }
        let token = self.refresh(timeout).await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// Forgets the cached access token (the server refused it): the next
    /// login refreshes.
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn refresh(&self, timeout: Duration) -> Result<AccessToken, IntakeError> {
        let endpoint = &self.settings.token_endpoint;
        let failed = |reason: String| IntakeError::TokenEndpoint {
            endpoint: endpoint.clone(),
            reason,
        };
        let refresh_source = SecretSource::File(self.settings.refresh_token_file.clone());
        let refresh_token = refresh_source.read().await?;
        let client_secret = match &self.settings.client_secret {
            Some(source) => Some(source.read().await?),
            None => None,
        };
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &self.settings.client_id),
        ];
        if let Some(secret) = &client_secret {
            form.push(("client_secret", secret.expose()));
        }
        if let Some(scope) = &self.settings.scope {
            form.push(("scope", scope));
        }
        let tls = crate::transport::client_config(self.settings.ca_file.as_deref())
            .map_err(|error| failed(error.to_string()))?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(timeout)
            .build()
            .map_err(|error| failed(error.to_string()))?;
        let response = client
            .post(endpoint)
            .form(&form)
            .send()
            .await
            // Without the URL: the request body is not in it, but keep errors short.
            .map_err(|error| failed(error.without_url().to_string()))?;
        let status = response.status();
        let body: TokenResponse = response.json().await.map_err(|error| {
            failed(format!(
                "HTTP {status}: not a token response: {}",
                error.without_url()
            ))
        })?;
        if let Some(error) = body.error {
            let description = body.error_description.unwrap_or_default();
            let server_message = format!("{error} {description}").trim().to_owned();
            // invalid_grant: the refresh token is revoked or expired;
            // invalid_client: the client id or secret is wrong. Both need a person.
            return Err(if error == "invalid_grant" || error == "invalid_client" {
                IntakeError::AuthenticationRefused {
                    username: format!("OAuth2 client {}", self.settings.client_id),
                    server_message,
                }
            } else {
                failed(format!("HTTP {status}: {server_message}"))
            });
        }
        let Some(access_token) = body.access_token.filter(|token| !token.is_empty()) else {
            return Err(failed(format!(
                "HTTP {status}: no access_token in the answer"
            )));
        };
        if let Some(rotated) = body.refresh_token.filter(|token| !token.is_empty())
            && rotated != refresh_token.expose()
        {
            persist_refresh_token(&self.settings.refresh_token_file, &rotated)
                .await
                .map_err(|error| IntakeError::Credential {
                    source_description: format!(
                        "file {}",
                        self.settings.refresh_token_file.display()
                    ),
                    reason: format!("cannot save the rotated refresh token: {error}"),
                })?;
            tracing::info!(
                file = %self.settings.refresh_token_file.display(),
                "The provider rotated the OAuth2 refresh token; the new one is saved."
            );
        }
        // No expires_in: assume the common hour, refreshed early anyway.
        let expires_in = body.expires_in.unwrap_or(3600).max(0);
        Ok(AccessToken {
            token: Secret::new(access_token),
            expires_at: unix_now().saturating_add(expires_in),
        })
    }
}

/// Replaces `path` with `token`: temporary file (mode 0600) in the same
/// folder, fsync, rename, fsync of the folder.
async fn persist_refresh_token(path: &Path, token: &str) -> std::io::Result<()> {
    let path = path.to_path_buf();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let folder = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "refresh-token".to_owned());
        let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(token.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &path)?;
        std::fs::File::open(folder)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rotated_refresh_token_replaces_the_file_atomically_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("refresh-token");
        std::fs::write(&path, "old\n").unwrap();
        persist_refresh_token(&path, "new-token").await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-token\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(directory.path())
            .unwrap()
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    }
}
