//! The configuration of one IMAP mailbox: [`ImapAccount`].
//!
//! Deserialising validates: a bad key fails with the mailbox name and the key
//! (`mailbox "support": idle_timeout must be at most 29m`), so an
//! `ImapAccount` in hand is always usable. Secrets never live in the file:
//! the file says where to read them ([`SecretSource`]), and what is read is a
//! [`Secret`] that prints as `[redacted]`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::error::IntakeError;
use crate::oauth2::{OAuth2Settings, TokenRefresher};

/// IMAP servers log an idle client off after 30 minutes (RFC 2177 says
/// re-issue IDLE at least every 29 minutes); `idle_timeout` must stay below.
pub const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(29 * 60);

/// The longest interval or timeout a mailbox may set: longer ones are
/// mistakes, and durations near the type's limit overflow when added to.
const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// One mailbox to watch, validated.
///
/// ```toml
/// name = "support"
/// host = "imap.example.com"
/// security = "tls"                      # "tls" (993), "starttls" (143), "plain" (loopback only)
/// username = "CloudSupport@example.com"
/// auth = { method = "password", password_env = "SUPPORTD_IMAP_PASSWORD" }
/// # auth = { method = "xoauth2", token_file = "/run/secrets/imap-token" }
/// folders = ["INBOX"]
/// acknowledge = "move"                  # "seen", "move" (to processed_folder) or "none"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawImapAccount")]
pub struct ImapAccount {
    /// Our name for the mailbox: in logs, metrics and checkpoints. Not secret.
    pub name: String,
    pub host: String,
    /// Defaults to 993 for `tls` and 143 otherwise.
    pub port: u16,
    pub security: Security,
    pub username: String,
    /// Where the password or the OAuth2 access token comes from.
    pub auth: Auth,
    /// An extra CA (PEM) to trust besides the web PKI roots, for private
    /// servers. Certificate verification itself is never switched off.
    pub ca_file: Option<PathBuf>,
    /// Folders to take mail from, in order. Never empty.
    pub folders: Vec<String>,
    /// What to do at the source once a message is committed.
    pub acknowledge: Acknowledge,
    /// Where mail that could not be ingested normally is moved (created on demand).
    pub quarantine_folder: String,
    /// The most messages fetched by one `fetch_after` call: one store transaction.
    pub batch_size: u32,
    /// Larger messages are not fetched whole: only their header, for quarantine.
    pub max_message_bytes: u64,
    /// How long one IDLE lasts before it is re-issued (at most 29 minutes).
    pub idle_timeout: Duration,
    /// How often to look for new mail when the server has no IDLE.
    pub poll_interval: Duration,
    /// Limit on TCP connect plus TLS handshake plus greeting.
    pub connect_timeout: Duration,
    /// Limit on any one IMAP command, so a stalled server never hangs a task.
    pub command_timeout: Duration,
    /// A mailbox whose last completed sync is older than this is reported not
    /// ready (`/readyz`): a hung or failing mailbox shows even when nothing is
    /// logged. Longer than `idle_timeout` and `poll_interval`.
    pub stale_after: Duration,
    /// Where intake starts the first time it sees a folder.
    pub start: Start,
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plain greeting, then `STARTTLS` before anything else is said (port 143).
    Starttls,
    /// No encryption: accepted only for a loopback host (tests, a local relay).
    Plain,
}

/// How we log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// IMAP `LOGIN` with a password.
    Password(SecretSource),
    /// SASL `XOAUTH2` with an OAuth2 bearer (access) token, as Microsoft 365
    /// and Gmail require. The token is read again at every connection, so a
    /// file rewritten by a token refresher is picked up on the next login.
    Xoauth2(SecretSource),
    /// SASL `XOAUTH2` with access tokens supportd gets itself from the
    /// provider's token endpoint with a refresh token, saving the refresh
    /// token when the provider rotates it.
    OAuth2(TokenRefresher),
}

/// Where a secret is read from. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The name of an environment variable.
    Env(String),
    /// A file holding the secret (surrounding whitespace is trimmed).
    File(PathBuf),
}

/// What acknowledging a committed message does at the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledge {
    /// `STORE +FLAGS (\Seen)`.
    Seen,
    /// Move to this folder (`MOVE`, or `COPY` + `\Deleted` + `UID EXPUNGE`),
    /// created on demand.
    MoveTo(String),
    /// Leave the message as it is: the checkpoint alone says it is done.
    LeaveUntouched,
}

/// Where intake begins in a folder it has no checkpoint for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Only mail arriving from now on (the folder's UIDNEXT at first sight).
    Now,
    /// Mail with an internal date on or after this day (`UID SEARCH SINCE`).
    Since(NaiveDate),
}

/// A password or token. Its `Debug` and `Display` print `[redacted]`, so it
/// cannot end up in a log line by accident; [`Secret::expose`] is the one way
/// to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself: only for the bytes sent to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("[redacted]")
    }
}

impl SecretSource {
    /// Reads the secret now (a file is read again on every call, so rotation
    /// by rewriting the file needs no restart).
    pub async fn read(&self) -> Result<Secret, IntakeError> {
        let value = match self {
            SecretSource::Env(variable) => {
                std::env::var(variable).map_err(|_| IntakeError::Credential {
                    source_description: format!("environment variable {variable}"),
                    reason: "not set or not valid UTF-8".to_owned(),
                })?
            }
            SecretSource::File(path) => {
                let bytes =
                    tokio::fs::read(path)
                        .await
                        .map_err(|error| IntakeError::Credential {
                            source_description: format!("file {}", path.display()),
                            reason: error.to_string(),
                        })?;
                String::from_utf8(bytes).map_err(|_| IntakeError::Credential {
                    source_description: format!("file {}", path.display()),
                    reason: "not valid UTF-8".to_owned(),
                })?
            }
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(IntakeError::Credential {
                source_description: self.describe(),
                reason: "empty".to_owned(),
            });
        }
        Ok(Secret::new(trimmed))
    }

    /// Where the secret comes from, for error messages (never the secret).
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Env(variable) => format!("environment variable {variable}"),
            SecretSource::File(path) => format!("file {}", path.display()),
        }
    }
}

impl ImapAccount {
    /// `host:port`, for messages and errors.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Whether `host` names this machine: plain IMAP is allowed only there.
pub fn is_loopback_host(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>()
        .map(|address| address.is_loopback())
        .unwrap_or(false)
}

/// Parses `500ms`, `30s`, `25m`, `1h` or a combination such as `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("`{text}` lacks a unit (ms, s, m or h)"))?;
        if digits_end == 0 {
            return Err(format!("`{text}` is not a duration such as 30s or 25m"));
        }
        let number: u64 = rest[..digits_end]
            .parse()
            .map_err(|_| format!("`{text}` has a number that is too large"))?;
        let after_number = &rest[digits_end..];
        let unit_end = after_number
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after_number.len());
        let part = match &after_number[..unit_end] {
            "ms" => Duration::from_millis(number),
            "s" => Duration::from_secs(number),
            "m" => Duration::from_secs(number.saturating_mul(60)),
            "h" => Duration::from_secs(number.saturating_mul(3600)),
            unit => {
                return Err(format!(
                    "`{text}` has the unknown unit `{unit}` (use ms, s, m or h)"
                ));
            }
        };
        total = total.saturating_add(part);
        rest = &after_number[unit_end..];
    }
    Ok(total)
}

/// The file's shape, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImapAccount {
    name: String,
    host: String,
    port: Option<u16>,
    security: Security,
    username: String,
    auth: RawAuth,
    ca_file: Option<PathBuf>,
    folders: Option<Vec<String>>,
    acknowledge: Option<RawAcknowledge>,
    processed_folder: Option<String>,
    quarantine_folder: Option<String>,
    batch_size: Option<u32>,
    max_message_bytes: Option<u64>,
    idle_timeout: Option<String>,
    poll_interval: Option<String>,
    connect_timeout: Option<String>,
    command_timeout: Option<String>,
    stale_after: Option<String>,
    start: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
enum RawAuth {
    Password {
        password_env: Option<String>,
        password_file: Option<PathBuf>,
    },
    Xoauth2 {
        token_env: Option<String>,
        token_file: Option<PathBuf>,
    },
    #[serde(rename = "oauth2")]
    OAuth2 {
        token_endpoint: String,
        client_id: String,
        client_secret_env: Option<String>,
        client_secret_file: Option<PathBuf>,
        refresh_token_file: PathBuf,
        scope: Option<String>,
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawAcknowledge {
    Seen,
    Move,
    None,
}

impl TryFrom<RawImapAccount> for ImapAccount {
    type Error = IntakeError;

    fn try_from(raw: RawImapAccount) -> Result<ImapAccount, IntakeError> {
        let account_name = raw.name.trim().to_owned();
        let invalid = |reason: String| IntakeError::Config {
            account: account_name.clone(),
            reason,
        };
        if account_name.is_empty() {
            return Err(invalid("name must not be empty".to_owned()));
        }
        if raw.host.trim().is_empty() {
            return Err(invalid("host must not be empty".to_owned()));
        }
        if raw.security == Security::Plain && !is_loopback_host(&raw.host) {
            return Err(invalid(format!(
                "security = \"plain\" is only allowed for a loopback host, not {}; use \"tls\" or \"starttls\"",
                raw.host
            )));
        }
        if raw.username.is_empty() {
            return Err(invalid("username must not be empty".to_owned()));
        }
        let auth = match raw.auth {
            RawAuth::Password {
                password_env,
                password_file,
            } => Auth::Password(
                secret_source(
                    password_env,
                    password_file,
                    "auth.password_env",
                    "auth.password_file",
                )
                .map_err(&invalid)?,
            ),
            RawAuth::Xoauth2 {
                token_env,
                token_file,
            } => Auth::Xoauth2(
                secret_source(token_env, token_file, "auth.token_env", "auth.token_file")
                    .map_err(&invalid)?,
            ),
            RawAuth::OAuth2 {
                token_endpoint,
                client_id,
                client_secret_env,
                client_secret_file,
                refresh_token_file,
                scope,
                ca_file,
            } => {
                let endpoint = token_endpoint.trim();
                let loopback_http = endpoint
                    .strip_prefix("http://")
                    .and_then(|rest| rest.split(['/', ':']).next())
                    .is_some_and(is_loopback_host);
                if !endpoint.starts_with("https://") && !loopback_http {
                    return Err(invalid(format!(
                        "auth.token_endpoint must be an https:// URL (http:// only on loopback), not `{endpoint}`"
                    )));
                }
                if client_id.trim().is_empty() {
                    return Err(invalid("auth.client_id must not be empty".to_owned()));
                }
                let client_secret = match (client_secret_env, client_secret_file) {
                    (None, None) => None,
                    (env, file) => Some(
                        secret_source(
                            env,
                            file,
                            "auth.client_secret_env",
                            "auth.client_secret_file",
                        )
                        .map_err(&invalid)?,
                    ),
                };
                Auth::OAuth2(TokenRefresher::new(OAuth2Settings {
                    token_endpoint: endpoint.to_owned(),
                    client_id: client_id.trim().to_owned(),
                    client_secret,
                    refresh_token_file,
                    scope,
                    ca_file,
                }))
            }
        };
        let folders = raw.folders.unwrap_or_else(|| vec!["INBOX".to_owned()]);
        if folders.is_empty() {
            return Err(invalid("folders must name at least one folder".to_owned()));
        }
        let processed_folder = raw
            .processed_folder
            .unwrap_or_else(|| "Processed".to_owned());
        let quarantine_folder = raw
            .quarantine_folder
            .unwrap_or_else(|| "Quarantine".to_owned());
        for (key, folder) in folders.iter().map(|folder| ("folders", folder)).chain([
            ("processed_folder", &processed_folder),
            ("quarantine_folder", &quarantine_folder),
        ]) {
            validate_folder_name(folder).map_err(|reason| invalid(format!("{key}: {reason}")))?;
        }
        let acknowledge = match raw.acknowledge.unwrap_or(RawAcknowledge::Seen) {
            RawAcknowledge::Seen => Acknowledge::Seen,
            RawAcknowledge::Move => Acknowledge::MoveTo(processed_folder),
            RawAcknowledge::None => Acknowledge::LeaveUntouched,
        };
        let batch_size = raw.batch_size.unwrap_or(200);
        if batch_size == 0 {
            return Err(invalid("batch_size must be at least 1".to_owned()));
        }
        let max_message_bytes = raw.max_message_bytes.unwrap_or(25 * 1024 * 1024);
        if max_message_bytes == 0 {
            return Err(invalid("max_message_bytes must be at least 1".to_owned()));
        }
        let duration = |key: &str, value: Option<String>, default: Duration| match value {
            None => Ok(default),
            Some(text) => match parse_duration(&text) {
                Ok(duration) if duration.is_zero() => Err(invalid(format!("{key} must not be 0"))),
                Ok(duration) if duration > MAX_DURATION => Err(invalid(format!(
                    "{key} must be at most 720h (30 days), not {text}"
                ))),
                Ok(duration) => Ok(duration),
                Err(reason) => Err(invalid(format!("{key}: {reason}"))),
            },
        };
        let idle_timeout = duration(
            "idle_timeout",
            raw.idle_timeout,
            Duration::from_secs(25 * 60),
        )?;
        if idle_timeout > MAX_IDLE_TIMEOUT {
            return Err(invalid(
                "idle_timeout must be at most 29m (servers drop an idle client after 30 minutes)"
                    .to_owned(),
            ));
        }
        let poll_interval = duration("poll_interval", raw.poll_interval, Duration::from_secs(60))?;
        let connect_timeout = duration(
            "connect_timeout",
            raw.connect_timeout,
            Duration::from_secs(30),
        )?;
        let command_timeout = duration(
            "command_timeout",
            raw.command_timeout,
            Duration::from_secs(120),
        )?;
        let stale_after = duration(
            "stale_after",
            raw.stale_after,
            idle_timeout
                .max(poll_interval)
                .saturating_add(Duration::from_secs(5 * 60)),
        )?;
        if stale_after <= idle_timeout.max(poll_interval) {
            return Err(invalid(
                "stale_after must be longer than idle_timeout and poll_interval (a healthy mailbox syncs at least that often)"
                    .to_owned(),
            ));
        }
        let start = match raw.start.as_deref().map(str::trim) {
            None | Some("now") => Start::Now,
            Some(text) => {
                Start::Since(NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                    invalid(format!(
                        "start must be \"now\" or a date YYYY-MM-DD, not `{text}`"
                    ))
                })?)
            }
        };
        let port = raw.port.unwrap_or(match raw.security {
            Security::Tls => 993,
            Security::Starttls | Security::Plain => 143,
        });
        Ok(ImapAccount {
            name: account_name,
            host: raw.host.trim().to_owned(),
            port,
            security: raw.security,
            username: raw.username,
            auth,
            ca_file: raw.ca_file,
            folders,
            acknowledge,
            quarantine_folder,
            batch_size,
            max_message_bytes,
            idle_timeout,
            poll_interval,
            connect_timeout,
            command_timeout,
            stale_after,
            start,
        })
    }
}

fn secret_source(
    environment_variable: Option<String>,
    file: Option<PathBuf>,
    environment_key: &str,
    file_key: &str,
) -> Result<SecretSource, String> {
    match (environment_variable, file) {
        (Some(variable), None) if !variable.is_empty() => Ok(SecretSource::Env(variable)),
        (None, Some(path)) if !path.as_os_str().is_empty() => Ok(SecretSource::File(path)),
        (Some(_), Some(_)) => Err(format!("set only one of {environment_key} or {file_key}")),
        _ => Err(format!(
            "set {environment_key} (an environment variable name) or {file_key} (a path); secrets are never written in the config file"
        )),
    }
}

/// Folder names are sent quoted; we accept printable ASCII only (no modified
/// UTF-7 encoding of international names yet).
fn validate_folder_name(folder: &str) -> Result<(), String> {
    if folder.trim().is_empty() {
        return Err("a folder name must not be empty".to_owned());
    }
    if !folder
        .chars()
        .all(|c| c.is_ascii() && !c.is_ascii_control())
    {
        return Err(format!(
            "`{folder}` must be printable ASCII (international folder names are not supported)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "support"
        host = "imap.example.com"
        security = "tls"
        username = "support@example.com"
        auth = { method = "password", password_env = "SUPPORTD_TEST_PASSWORD" }
    "#;

    fn parse(text: &str) -> Result<ImapAccount, String> {
        toml::from_str::<ImapAccount>(text).map_err(|error| error.to_string())
    }

    fn with(extra: &str) -> String {
        format!("{MINIMAL}\n{extra}")
    }

    const OAUTH2: &str = r#"
        name = "m365"
        host = "outlook.office365.com"
        security = "tls"
        username = "CloudSupport@centurylink.com"
    "#;

    #[test]
    fn oauth2_refresh_needs_an_https_endpoint_and_a_client_id() {
        let account = parse(&format!(
            "{OAUTH2}\nauth = {{ method = \"oauth2\", token_endpoint = \"https://login.microsoftonline.com/t/oauth2/v2.0/token\", client_id = \"abc\", refresh_token_file = \"/var/lib/supportd/refresh\" }}"
        ))
        .unwrap();
        let Auth::OAuth2(refresher) = &account.auth else {
            panic!("{:?}", account.auth);
        };
        assert_eq!(refresher.settings().client_id, "abc");
        assert_eq!(refresher.settings().client_secret, None);

        let plain_http = parse(&format!(
            "{OAUTH2}\nauth = {{ method = \"oauth2\", token_endpoint = \"http://login.example.com/token\", client_id = \"abc\", refresh_token_file = \"/r\" }}"
        ))
        .unwrap_err();
        assert!(plain_http.contains("https://"), "{plain_http}");
        let loopback = parse(&format!(
            "{OAUTH2}\nauth = {{ method = \"oauth2\", token_endpoint = \"http://127.0.0.1:8081/token\", client_id = \"abc\", refresh_token_file = \"/r\" }}"
        ));
        assert!(loopback.is_ok(), "{loopback:?}");
        let no_client = parse(&format!(
            "{OAUTH2}\nauth = {{ method = \"oauth2\", token_endpoint = \"https://x.example/token\", client_id = \" \", refresh_token_file = \"/r\" }}"
        ))
        .unwrap_err();
        assert!(no_client.contains("client_id"), "{no_client}");
    }

    #[test]
    fn durations_past_thirty_days_are_refused_not_overflowed() {
        // Found by reading the fuzz target's code: the stale_after default
        // added five minutes to this and overflowed.
        let error = parse(&with("poll_interval = \"9999999999999999h\"")).unwrap_err();
        assert!(
            error.contains("poll_interval must be at most 720h"),
            "{error}"
        );
        assert!(parse(&with("poll_interval = \"720h\"")).is_ok());
    }

    #[test]
    fn stale_after_must_outlast_the_idle_timeout() {
        let error = parse(&with("idle_timeout = \"10m\"\nstale_after = \"5m\"")).unwrap_err();
        assert!(error.contains("stale_after"), "{error}");
        let account = parse(&with("idle_timeout = \"10m\"")).unwrap();
        assert_eq!(account.stale_after, Duration::from_secs(15 * 60));
    }

    #[test]
    fn minimal_account_gets_safe_defaults() {
        let account = parse(MINIMAL).unwrap();
        assert_eq!(account.port, 993);
        assert_eq!(account.folders, ["INBOX"]);
        assert_eq!(account.acknowledge, Acknowledge::Seen);
        assert_eq!(account.quarantine_folder, "Quarantine");
        assert_eq!(account.idle_timeout, Duration::from_secs(25 * 60));
        assert_eq!(account.start, Start::Now);
        assert_eq!(account.ca_file, None);
        assert_eq!(
            account.auth,
            Auth::Password(SecretSource::Env("SUPPORTD_TEST_PASSWORD".to_owned()))
        );
    }

    #[test]
    fn full_account_parses() {
        let account = parse(
            r#"
            name = "m365"
            host = "outlook.office365.com"
            port = 1993
            security = "starttls"
            username = "support@example.com"
            auth = { method = "xoauth2", token_file = "/run/secrets/token" }
            ca_file = "/etc/supportd/ca.pem"
            folders = ["INBOX", "Escalations"]
            acknowledge = "move"
            processed_folder = "Done"
            quarantine_folder = "Bad"
            batch_size = 50
            max_message_bytes = 1000
            idle_timeout = "10m"
            poll_interval = "1m30s"
            connect_timeout = "5s"
            command_timeout = "500ms"
            start = "2026-01-15"
            "#,
        )
        .unwrap();
        assert_eq!(account.port, 1993);
        assert_eq!(account.security, Security::Starttls);
        assert_eq!(
            account.auth,
            Auth::Xoauth2(SecretSource::File("/run/secrets/token".into()))
        );
        assert_eq!(account.acknowledge, Acknowledge::MoveTo("Done".to_owned()));
        assert_eq!(account.quarantine_folder, "Bad");
        assert_eq!(account.poll_interval, Duration::from_secs(90));
        assert_eq!(account.command_timeout, Duration::from_millis(500));
        assert_eq!(
            account.start,
            Start::Since(NaiveDate::from_ymd_opt(2026, 1, 15).unwrap())
        );
    }

    #[test]
    fn move_defaults_to_processed() {
        let account = parse(&with(r#"acknowledge = "move""#)).unwrap();
        assert_eq!(
            account.acknowledge,
            Acknowledge::MoveTo("Processed".to_owned())
        );
        let account = parse(&with(r#"acknowledge = "none""#)).unwrap();
        assert_eq!(account.acknowledge, Acknowledge::LeaveUntouched);
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let error = parse(&with("accept_invalid_certs = true")).unwrap_err();
        assert!(error.contains("accept_invalid_certs"), "{error}");
        let error = parse(
            r#"
            name = "support"
            host = "imap.example.com"
            security = "tls"
            username = "u"
            auth = { method = "password", password = "hunter2" }
            "#,
        )
        .unwrap_err();
        assert!(error.contains("password"), "{error}");
    }

    #[test]
    fn plain_is_for_loopback_only() {
        let error =
            parse(&MINIMAL.replace(r#"security = "tls""#, r#"security = "plain""#)).unwrap_err();
        assert!(error.contains("loopback"), "{error}");
        assert!(error.contains("support"), "names the mailbox: {error}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            let text = MINIMAL
                .replace(r#"security = "tls""#, r#"security = "plain""#)
                .replace("imap.example.com", host);
            let account = parse(&text).unwrap();
            assert_eq!(account.port, 143);
        }
    }

    #[test]
    fn secret_source_needs_exactly_one() {
        let both = MINIMAL.replace(
            r#"password_env = "SUPPORTD_TEST_PASSWORD""#,
            r#"password_env = "X", password_file = "/x""#,
        );
        assert!(parse(&both).unwrap_err().contains("only one"));
        let neither = MINIMAL.replace(r#", password_env = "SUPPORTD_TEST_PASSWORD""#, "");
        assert!(parse(&neither).unwrap_err().contains("auth.password_env"));
    }

    #[test]
    fn bad_values_name_their_key() {
        for (extra, key) in [
            (r#"idle_timeout = "30m""#, "idle_timeout"),
            (r#"idle_timeout = "0s""#, "idle_timeout"),
            (r#"poll_interval = "soon""#, "poll_interval"),
            (r#"start = "yesterday""#, "start"),
            ("batch_size = 0", "batch_size"),
            ("max_message_bytes = 0", "max_message_bytes"),
            ("folders = []", "folders"),
            (r#"folders = ["Boîte"]"#, "folders"),
            (r#"acknowledge = "delete""#, "acknowledge"),
        ] {
            let error = parse(&with(extra)).unwrap_err();
            assert!(error.contains(key), "{extra}: {error}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25m"), Ok(Duration::from_secs(1500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("25").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some([redacted])");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[tokio::test]
    async fn secret_file_is_trimmed_and_reread() {
        let directory =
            std::env::temp_dir().join(format!("supportd-intake-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("token");
        std::fs::write(&path, "first-token\n").unwrap();
        let source = SecretSource::File(path.clone());
        assert_eq!(source.read().await.unwrap().expose(), "first-token");
        std::fs::write(&path, "second-token\n").unwrap();
        assert_eq!(source.read().await.unwrap().expose(), "second-token");
        std::fs::write(&path, "\n").unwrap();
        assert!(matches!(
            source.read().await,
            Err(IntakeError::Credential { .. })
        ));
        let missing = SecretSource::Env("SUPPORTD_INTAKE_TEST_UNSET_VARIABLE".to_owned());
        let error = missing.read().await.unwrap_err().to_string();
        assert!(
            error.contains("SUPPORTD_INTAKE_TEST_UNSET_VARIABLE"),
            "{error}"
        );
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
