//! The SMTP connection settings and the lettre transport built from them.

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, Tokio1Executor};

use crate::OutboundError;

/// A password that never prints: `Debug` and `Display` show `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that needs it (AUTH).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// No TLS: only for a server on loopback (the settings refuse other hosts).
    Plain,
    /// Plain connect, then STARTTLS, required (port 587 or 25).
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// AUTH user name; no AUTH when `None`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Per SMTP command.
    pub timeout: Duration,
    /// Name sent in EHLO.
    pub helo_name: String,
}

/// A lettre transport for `settings`. Connects lazily: building never fails
/// because the server is down.
pub fn build_transport(
    settings: &SmtpSettings,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, OutboundError> {
    let tls_parameters = || {
        TlsParameters::new(settings.host.clone())
            .map_err(|error| OutboundError::Settings(format!("TLS for {}: {error}", settings.host)))
    };
    let tls = match settings.security {
        Security::Plain => Tls::None,
        Security::Starttls => Tls::Required(tls_parameters()?),
        Security::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain(
                settings.helo_name.clone(),
            ));
    if let (Some(username), Some(password)) = (&settings.username, &settings.password) {
        builder = builder.credentials(Credentials::new(
            username.clone(),
            password.expose().to_owned(),
        ));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".into());
        assert_eq!(format!("{secret:?} {secret}"), "[redacted] [redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }
}
