//! The SMTP connection settings and the lettre transport built from them.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

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
    /// Per connect, TLS handshake and SMTP command.
    pub timeout: Duration,
    /// Name sent in EHLO.
    pub helo_name: String,
    /// PEM file of an extra CA to trust (a private relay's self-signed
    /// certificate). Verification is never turned off.
    pub ca_file: Option<PathBuf>,
}

/// Opens SMTP sessions to one server.
///
/// Not lettre's `AsyncSmtpTransport`: that one writes the message and the
/// `CRLF.CRLF` that ends DATA as two writes on a socket without
/// `TCP_NODELAY`, so every mail waited for the server's delayed ACK (40 ms on
/// Linux; 20 mails/s on loopback). Here the socket is ours, with Nagle off,
/// handed to lettre's `AsyncSmtpConnection`, which still speaks the protocol.
#[derive(Clone)]
pub struct SmtpClient {
    settings: SmtpSettings,
    hello: ClientId,
    /// STARTTLS through lettre (it upgrades its own stream).
    starttls: Option<TlsParameters>,
    /// Implicit TLS: our rustls connector, since the handshake must come
    /// before lettre reads the greeting.
    implicit_tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl fmt::Debug for SmtpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpClient")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// Why a session could not be opened or a mail not sent.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// Connect, TLS, or a timeout: try again later.
    #[error("cannot reach {address}: {reason}")]
    Connect { address: String, reason: String },
    /// What the server (or lettre) said. `is_permanent` on 5xx.
    #[error(transparent)]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// No reply within the timeout.
    #[error("no SMTP reply within {0:?} during {1}")]
    Timeout(Duration, &'static str),
}

impl SmtpError {
    /// A 5xx reply: the same mail will never be accepted.
    pub fn is_permanent(&self) -> bool {
        matches!(self, SmtpError::Smtp(error) if error.is_permanent())
    }
}

/// One open, greeted, secured and authenticated SMTP session.
pub struct SmtpSession {
    connection: AsyncSmtpConnection,
    timeout: Duration,
}

impl SmtpClient {
    /// Checks the settings (TLS server name, CA file); connects nothing, so
    /// building never fails because the server is down.
    pub fn new(settings: &SmtpSettings) -> Result<SmtpClient, OutboundError> {
        let bad = |reason: String| OutboundError::Settings(reason);
        let extra_ca = match &settings.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|error| {
                bad(format!("cannot read ca_file {}: {error}", path.display()))
            })?),
            None => None,
        };
        let starttls = match settings.security {
            Security::Starttls => {
                let mut builder = TlsParameters::builder(settings.host.clone());
                if let Some(pem) = &extra_ca {
                    let certificate = Certificate::from_pem(pem)
                        .map_err(|error| bad(format!("ca_file: {error}")))?;
                    builder = builder.add_root_certificate(certificate);
                }
                Some(
                    builder
                        .build()
                        .map_err(|error| bad(format!("TLS for {}: {error}", settings.host)))?,
                )
            }
            _ => None,
        };
        let implicit_tls = match settings.security {
            Security::Tls => {
                let config = rustls_config(extra_ca.as_deref()).map_err(bad)?;
                let bare_host = settings.host.trim_start_matches('[').trim_end_matches(']');
                let name = ServerName::try_from(bare_host.to_owned()).map_err(|error| {
                    bad(format!(
                        "{bare_host} is not a valid TLS server name: {error}"
                    ))
                })?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
            _ => None,
        };
        Ok(SmtpClient {
            hello: ClientId::Domain(settings.helo_name.clone()),
            settings: settings.clone(),
            starttls,
            implicit_tls,
        })
    }

    fn address(&self) -> String {
        format!("{}:{}", self.settings.host, self.settings.port)
    }

    /// Connects (Nagle off), reads the greeting, EHLO, STARTTLS when
    /// configured (required, never optional), and AUTH when configured.
    pub async fn connect(&self) -> Result<SmtpSession, SmtpError> {
        let timeout = self.settings.timeout;
        let connect_error = |reason: String| SmtpError::Connect {
            address: self.address(),
            reason,
        };
        let host = self
            .settings
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, self.settings.port)))
            .await
            .map_err(|_| connect_error(format!("no TCP connection within {timeout:?}")))?
            .map_err(|error| connect_error(error.to_string()))?;
        tcp.set_nodelay(true)
            .map_err(|error| connect_error(format!("TCP_NODELAY: {error}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit_tls {
            Some((connector, name)) => {
                let tls = tokio::time::timeout(timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| SmtpError::Timeout(timeout, "the TLS handshake"))?
                    .map_err(|error| connect_error(format!("TLS: {error}")))?;
                Box::new(TlsSocket(tls))
            }
            None => Box::new(tcp),
        };
        let mut connection = within(
            timeout,
            "the greeting",
            AsyncSmtpConnection::connect_with_transport(stream, &self.hello),
        )
        .await?;
        if let Some(parameters) = &self.starttls {
            within(
                timeout,
                "STARTTLS",
                connection.starttls(parameters.clone(), &self.hello),
            )
            .await?;
        }
        if let (Some(username), Some(password)) = (&self.settings.username, &self.settings.password)
        {
            let credentials = Credentials::new(username.clone(), password.expose().to_owned());
            within(
                timeout,
                "AUTH",
                connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
            )
            .await?;
        }
        Ok(SmtpSession {
            connection,
            timeout,
        })
    }
}

impl SmtpSession {
    /// MAIL FROM, RCPT TO, DATA with `bytes` as they are (dot-stuffed by
    /// lettre); the server's reply to the end of data.
    pub async fn send(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, SmtpError> {
        within(
            self.timeout,
            "sending",
            self.connection.send(envelope, bytes),
        )
        .await
    }

    /// Whether the connection can carry another mail (no error broke it).
    pub fn is_usable(&self) -> bool {
        !self.connection.has_broken()
    }

    /// QUIT, best effort.
    pub async fn quit(mut self) {
        let _ = within(self.timeout, "QUIT", self.connection.quit()).await;
    }
}

async fn within<T>(
    timeout: Duration,
    operation: &'static str,
    future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SmtpError> {
    match tokio::time::timeout(timeout, future).await {
        Ok(result) => result.map_err(SmtpError::Smtp),
        Err(_) => Err(SmtpError::Timeout(timeout, operation)),
    }
}

/// The web PKI roots plus the optional extra CA (PEM).
fn rustls_config(extra_ca: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca {
        let certificates = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("ca_file: {error}"))?;
        if certificates.is_empty() {
            return Err("ca_file holds no PEM certificate".to_owned());
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| format!("ca_file: {error}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// A TLS stream lettre can drive (it names its streams by a trait of its own).
#[derive(Debug)]
struct TlsSocket(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
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
