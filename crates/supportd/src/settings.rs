//! Configuration: one [`Settings`] tree read from a TOML file, then overridden by
//! `SUPPORTD_<SECTION>__<KEY>` environment variables, then validated.
//!
//! Two steps, as in the style guide: [`RawSettings`] is what serde reads (unknown
//! keys are errors that name the key and the file); [`Settings`] holds validated
//! values: resolved paths, the routing rules and category rules compiled.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub database: RawDatabase,
    pub classifier: RawRulesFile,
    pub routing: RawRulesFile,
    pub intake: RawIntake,
    pub log: RawLog,
    /// IMAP mailboxes watched by `serve` (`[[mailbox]]` tables); none by default.
    #[serde(default)]
    pub mailbox: Vec<supportd_intake::ImapAccount>,
    pub mailbox_lease: RawMailboxLease,
    pub outbound: crate::outbox_cli::RawOutbound,
    pub web: RawWeb,
}

/// `[mailbox_lease]`: how instances sharing a PostgreSQL database agree on
/// which one polls each mailbox.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMailboxLease {
    pub ttl_ms: u64,
    pub renew_interval_ms: u64,
    pub standby_retry_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRulesFile {
    pub rules: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntake {
    pub max_message_bytes: usize,
    pub max_mime_parts: usize,
    pub max_mime_depth: usize,
    pub max_header_bytes: usize,
    pub max_header_fields: usize,
    pub max_header_line_bytes: usize,
    pub max_recipients: usize,
    pub max_attachments: usize,
    pub batch_size: usize,
    pub drop_folder: PathBuf,
    pub poll_interval_ms: u64,
}

/// `[web]`: the HTTP server of `serve`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    pub enabled: bool,
    pub address: String,
    pub secure_cookies: bool,
    pub session_hours: u64,
    /// Optional so configuration files written before it still load.
    #[serde(default = "default_sla_sweep_seconds")]
    pub sla_sweep_seconds: u64,
    /// Optional so configuration files written before it still load.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Optional so configuration files written before it still load.
    #[serde(default = "default_read_timeout_seconds")]
    pub read_timeout_seconds: u64,
}

/// `web.sla_sweep_seconds` when the file does not set it: every minute.
fn default_sla_sweep_seconds() -> u64 {
    60
}

/// `web.max_body_bytes` when the file does not set it: 1 MiB (a reply of
/// 100,000 characters fits, form-encoded).
fn default_max_body_bytes() -> usize {
    1024 * 1024
}

/// `web.read_timeout_seconds` when the file does not set it.
fn default_read_timeout_seconds() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub format: LogFormat,
    pub level: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// The file the settings came from, for messages.
    pub config_path: PathBuf,
    pub database_url: String,
    pub classifier_rules_path: PathBuf,
    pub routing_rules_path: PathBuf,
    pub intake: IntakeSettings,
    pub log: RawLog,
    pub mailboxes: Vec<supportd_intake::ImapAccount>,
    pub mailbox_lease: MailboxLeaseSettings,
    pub outbound: crate::outbox_cli::OutboundSettings,
    /// The web server; `None` when `web.enabled` is false.
    pub web: Option<supportd_web::WebSettings>,
    /// Files that hold secrets (password and token files, and the
    /// configuration file when its database URL carries a password): `serve`
    /// warns about those readable by group or others.
    pub secret_files: Vec<PathBuf>,
}

/// What intake needs: limits for the parser, batching, and the drop folder of `serve`.
#[derive(Debug, Clone)]
pub struct IntakeSettings {
    pub limits: supportd_mail::Limits,
    pub batch_size: usize,
    pub drop_folder: PathBuf,
    pub poll_interval: Duration,
}

/// The timing of the mailbox leases (see [`crate::mailbox`]): used only on
/// PostgreSQL, where several instances may share a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxLeaseSettings {
    /// How long a lease lasts unless renewed: a dead holder is replaced
    /// within `ttl + standby_retry`.
    pub ttl: Duration,
    /// How often the holder renews; at most a third of `ttl`, so two
    /// renewals can fail to arrive before the lease ends.
    pub renew_interval: Duration,
    /// How often an instance without the lease tries to take it.
    pub standby_retry: Duration,
}

impl RawMailboxLease {
    fn validate(&self, config_path: &Path) -> anyhow::Result<MailboxLeaseSettings> {
        let key_error = |key: &str, rule: &str, value: u64| {
            anyhow::anyhow!(
                "{}: mailbox_lease.{key} must be {rule}, not {value}",
                config_path.display()
            )
        };
        if !(1_000..=3_600_000).contains(&self.ttl_ms) {
            return Err(key_error("ttl_ms", "between 1000 and 3600000", self.ttl_ms));
        }
        if self.renew_interval_ms < 100 || self.renew_interval_ms > self.ttl_ms / 3 {
            return Err(key_error(
                "renew_interval_ms",
                &format!("between 100 and a third of ttl_ms ({})", self.ttl_ms / 3),
                self.renew_interval_ms,
            ));
        }
        if !(100..=600_000).contains(&self.standby_retry_ms) {
            return Err(key_error(
                "standby_retry_ms",
                "between 100 and 600000",
                self.standby_retry_ms,
            ));
        }
        Ok(MailboxLeaseSettings {
            ttl: Duration::from_millis(self.ttl_ms),
            renew_interval: Duration::from_millis(self.renew_interval_ms),
            standby_retry: Duration::from_millis(self.standby_retry_ms),
        })
    }
}

impl Settings {
    /// Parses and validates configuration text as if read from `config_path`,
    /// without environment overrides: what `load` does after reading the
    /// file (the fuzz target of the config loader drives this).
    pub fn parse(config_text: &str, config_path: &Path) -> anyhow::Result<Settings> {
        let raw: RawSettings = Figment::new()
            .merge(Toml::string(config_text))
            .extract()
            .map_err(|error| anyhow::anyhow!("{}", figment_error_text(error)))
            .with_context(|| format!("invalid configuration in {}", config_path.display()))?;
        Settings::validate(config_path, raw, None)
    }

    /// Reads `config_path` (or [`DEFAULT_CONFIG_PATH`]), applies environment
    /// overrides and `database_override`, and validates the result.
    pub fn load(
        config_path: Option<&Path>,
        database_override: Option<&str>,
    ) -> anyhow::Result<Settings> {
        let config_path = config_path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
        if !config_path.is_file() {
            bail!(
                "configuration file {} not found (give one with --config FILE)",
                config_path.display()
            );
        }
        let raw: RawSettings = Figment::new()
            .merge(Toml::file_exact(config_path))
            .merge(
                // SUPPORTD_DATABASE__URL -> database.url. Variables without a
                // section separator (SUPPORTD_SHARED_DIR, …) are not settings.
                Env::prefixed("SUPPORTD_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .map_err(|error| anyhow::anyhow!("{}", figment_error_text(error)))
            .with_context(|| format!("invalid configuration in {}", config_path.display()))?;
        Settings::validate(config_path, raw, database_override)
    }

    fn validate(
        config_path: &Path,
        raw: RawSettings,
        database_override: Option<&str>,
    ) -> anyhow::Result<Settings> {
        let config_dir = config_path.parent().unwrap_or(Path::new("."));
        let beside_config = |path: &Path| {
            if path.is_absolute() {
                path.to_path_buf()
            } else {
                config_dir.join(path)
            }
        };
        let intake = &raw.intake;
        if intake.batch_size == 0 || intake.batch_size > 10_000 {
            bail!(
                "{}: intake.batch_size must be between 1 and 10000, not {}",
                config_path.display(),
                intake.batch_size
            );
        }
        if intake.max_message_bytes < 1024 {
            bail!(
                "{}: intake.max_message_bytes must be at least 1024, not {}",
                config_path.display(),
                intake.max_message_bytes
            );
        }
        for (key, value) in [
            ("max_mime_parts", intake.max_mime_parts),
            ("max_mime_depth", intake.max_mime_depth),
            ("max_header_bytes", intake.max_header_bytes),
            ("max_header_fields", intake.max_header_fields),
            ("max_header_line_bytes", intake.max_header_line_bytes),
            ("max_recipients", intake.max_recipients),
            ("max_attachments", intake.max_attachments),
        ] {
            if value == 0 {
                bail!("{}: intake.{key} must be at least 1", config_path.display());
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for mailbox in &raw.mailbox {
            if !names.insert(mailbox.name.as_str()) {
                bail!(
                    "{}: two [[mailbox]] tables are named `{}`; names must be unique (they key the checkpoints)",
                    config_path.display(),
                    mailbox.name
                );
            }
        }
        let database_url = database_override.unwrap_or(&raw.database.url).to_owned();
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            bail!(
                "{}: database URL `{}` is not supported: use sqlite://PATH or postgres://USER@HOST/DATABASE",
                config_path.display(),
                database_url
            );
        }
        let secret_files = secret_files(config_path, &raw, &beside_config);
        let outbound = raw.outbound.validate(config_path, &beside_config)?;
        let web = validate_web(config_path, &raw.web)?;
        let mailbox_lease = raw.mailbox_lease.validate(config_path)?;
        Ok(Settings {
            secret_files,
            mailbox_lease,
            web,
            outbound,
            config_path: config_path.to_path_buf(),
            database_url,
            classifier_rules_path: beside_config(&raw.classifier.rules),
            routing_rules_path: beside_config(&raw.routing.rules),
            intake: IntakeSettings {
                limits: supportd_mail::Limits {
                    max_message_bytes: intake.max_message_bytes,
                    max_mime_parts: intake.max_mime_parts,
                    max_mime_depth: intake.max_mime_depth,
                    max_header_bytes: intake.max_header_bytes,
                    max_header_fields: intake.max_header_fields,
                    max_header_line_bytes: intake.max_header_line_bytes,
                    max_recipients: intake.max_recipients,
                    max_attachments: intake.max_attachments,
                },
                batch_size: intake.batch_size,
                drop_folder: intake.drop_folder.clone(),
                poll_interval: Duration::from_millis(intake.poll_interval_ms.max(10)),
            },
            log: raw.log,
            mailboxes: raw.mailbox,
        })
    }
}

fn validate_web(
    config_path: &Path,
    web: &RawWeb,
) -> anyhow::Result<Option<supportd_web::WebSettings>> {
    if !web.enabled {
        return Ok(None);
    }
    let address = web.address.parse().with_context(|| {
        format!(
            "{}: web.address must be IP:PORT (e.g. 127.0.0.1:8080), not `{}`",
            config_path.display(),
            web.address
        )
    })?;
    if web.session_hours == 0 || web.session_hours > 24 * 30 {
        bail!(
            "{}: web.session_hours must be between 1 and 720, not {}",
            config_path.display(),
            web.session_hours
        );
    }
    if web.sla_sweep_seconds == 0 || web.sla_sweep_seconds > 3600 {
        bail!(
            "{}: web.sla_sweep_seconds must be between 1 and 3600, not {}",
            config_path.display(),
            web.sla_sweep_seconds
        );
    }
    if !(4096..=64 * 1024 * 1024).contains(&web.max_body_bytes) {
        bail!(
            "{}: web.max_body_bytes must be between 4096 and 67108864, not {}",
            config_path.display(),
            web.max_body_bytes
        );
    }
    if web.read_timeout_seconds == 0 || web.read_timeout_seconds > 300 {
        bail!(
            "{}: web.read_timeout_seconds must be between 1 and 300, not {}",
            config_path.display(),
            web.read_timeout_seconds
        );
    }
    Ok(Some(supportd_web::WebSettings {
        address,
        secure_cookies: web.secure_cookies,
        session_ttl: Duration::from_secs(web.session_hours * 3600),
        sla_sweep_interval: Duration::from_secs(web.sla_sweep_seconds),
        max_body_bytes: web.max_body_bytes,
        read_timeout: Duration::from_secs(web.read_timeout_seconds),
    }))
}

/// Every error of a figment extraction, one per line, each with its key and source.
fn figment_error_text(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|error| {
            let key = error.path.join(".");
            let source = error
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.source.as_ref())
                .map(|source| format!(" (from {source})"))
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", error.kind)
            } else {
                format!("key `{key}`: {}{source}", error.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The files of `raw` that hold secrets, in the order of the configuration.
fn secret_files(
    config_path: &Path,
    raw: &RawSettings,
    beside_config: &dyn Fn(&Path) -> PathBuf,
) -> Vec<PathBuf> {
    use supportd_intake::{Auth, SecretSource};
    let mut files = Vec::new();
    if url_has_password(&raw.database.url) {
        files.push(config_path.to_path_buf());
    }
    let add_source = |source: Option<&SecretSource>, files: &mut Vec<PathBuf>| {
        if let Some(SecretSource::File(path)) = source {
            files.push(path.clone());
        }
    };
    for mailbox in &raw.mailbox {
        match &mailbox.auth {
            Auth::Password(source) | Auth::Xoauth2(source) => add_source(Some(source), &mut files),
            Auth::OAuth2(refresher) => {
                let oauth2 = refresher.settings();
                add_source(oauth2.client_secret.as_ref(), &mut files);
                files.push(oauth2.refresh_token_file.clone());
            }
        }
    }
    if let Some(path) = &raw.outbound.password_file {
        files.push(beside_config(path));
    }
    files
}

/// `scheme://user:password@host…`: a URL with a password in it.
fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(user_info, _)| user_info.contains(':'))
}

/// Logs a warning naming each secret file that group or others may read.
/// Files that cannot be read are left to the code that reads them.
pub fn warn_about_readable_secret_files(settings: &Settings) {
    use std::os::unix::fs::PermissionsExt;
    for path in &settings.secret_files {
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "A file holding a secret is readable by group or others; make it readable only by its owner (chmod 600)."
            );
        }
    }
}

#[cfg(test)]
mod secret_file_tests {
    use super::url_has_password;

    #[test]
    fn urls_with_a_password() {
        assert!(url_has_password(
            "postgres://supportd:secret@db.example/supportd"
        ));
        assert!(!url_has_password("postgres://supportd@db.example/supportd"));
        assert!(!url_has_password("sqlite://data/supportd.db"));
        assert!(!url_has_password("sqlite:///var/lib/a:b@c/supportd.db"));
    }
}

#[cfg(test)]
mod web_tests {
    use std::path::Path;
    use std::time::Duration;

    use super::Settings;

    const DEFAULT: &str = include_str!("../../../config/default.toml");

    fn web_error(config: &str) -> String {
        match Settings::parse(config, Path::new("supportd.toml")) {
            Ok(_) => panic!("accepted:\n{config}"),
            Err(error) => format!("{error:#}"),
        }
    }

    #[test]
    fn body_limit_and_read_timeout_are_checked_and_may_be_left_out() {
        let path = Path::new("supportd.toml");
        let web = Settings::parse(DEFAULT, path).unwrap().web.unwrap();
        assert_eq!(web.max_body_bytes, 1_048_576);
        assert_eq!(web.read_timeout, Duration::from_secs(10));
        // A file written before these keys existed still loads, with the defaults.
        let older = DEFAULT
            .replace("max_body_bytes = 1048576\n", "")
            .replace("read_timeout_seconds = 10\n", "");
        assert_ne!(older, DEFAULT);
        let web = Settings::parse(&older, path).unwrap().web.unwrap();
        assert_eq!(web.max_body_bytes, 1_048_576);
        assert_eq!(web.read_timeout, Duration::from_secs(10));

        let error = web_error(&DEFAULT.replace("max_body_bytes = 1048576", "max_body_bytes = 10"));
        assert!(error.contains("web.max_body_bytes"), "{error}");
        let error =
            web_error(&DEFAULT.replace("read_timeout_seconds = 10", "read_timeout_seconds = 0"));
        assert!(error.contains("web.read_timeout_seconds"), "{error}");
        assert!(error.contains("supportd.toml"), "{error}");
    }
}
