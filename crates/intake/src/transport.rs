//! TCP, TLS (rustls, always verifying) and STARTTLS: the byte stream under
//! the IMAP session, and the errors sorted into network, TLS and timeout.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::{ImapAccount, Security, is_loopback_host};
use crate::error::IntakeError;

/// The stream async-imap talks over: plain TCP (loopback only) or TLS.
#[derive(Debug)]
pub enum ImapTransport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapTransport {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapTransport::Plain(stream) => Pin::new(stream).poll_read(context, buffer),
            ImapTransport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for ImapTransport {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapTransport::Plain(stream) => Pin::new(stream).poll_write(context, bytes),
            ImapTransport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, bytes),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapTransport::Plain(stream) => Pin::new(stream).poll_flush(context),
            ImapTransport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapTransport::Plain(stream) => Pin::new(stream).poll_shutdown(context),
            ImapTransport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}

/// Opens the TCP connection within the account's connect timeout.
pub(crate) async fn connect_tcp(account: &ImapAccount) -> Result<TcpStream, IntakeError> {
    if account.security == Security::Plain && !is_loopback_host(&account.host) {
        return Err(IntakeError::Config {
            account: account.name.clone(),
            reason: format!(
                "plain IMAP is only allowed to a loopback host, not {}",
                account.host
            ),
        });
    }
    let address = account.address();
    let host = account.host.trim_start_matches('[').trim_end_matches(']');
    match tokio::time::timeout(
        account.connect_timeout,
        TcpStream::connect((host, account.port)),
    )
    .await
    {
        Ok(Ok(stream)) => {
            // Commands are small and latency matters more than packet count.
            stream
                .set_nodelay(true)
                .map_err(|source| IntakeError::Network {
                    address: address.clone(),
                    source,
                })?;
            Ok(stream)
        }
        Ok(Err(source)) => Err(IntakeError::Network { address, source }),
        Err(_elapsed) => Err(IntakeError::Network {
            address,
            source: io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no TCP connection within {:?}", account.connect_timeout),
            ),
        }),
    }
}

/// The TLS handshake over an open TCP stream, verifying the server's
/// certificate against the web PKI roots plus the account's `ca_file`.
pub(crate) async fn handshake(
    account: &ImapAccount,
    tcp_stream: TcpStream,
    timeout: Duration,
) -> Result<ImapTransport, IntakeError> {
    let tls_error = |source: io::Error| IntakeError::Tls {
        host: account.host.clone(),
        source,
    };
    let client_config = client_config(account.ca_file.as_deref()).map_err(tls_error)?;
    let bare_host = account.host.trim_start_matches('[').trim_end_matches(']');
    let server_name = ServerName::try_from(bare_host.to_owned()).map_err(|error| {
        tls_error(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{bare_host} is not a valid TLS server name: {error}"),
        ))
    })?;
    let connector = TlsConnector::from(Arc::new(client_config));
    match tokio::time::timeout(timeout, connector.connect(server_name, tcp_stream)).await {
        Ok(Ok(stream)) => Ok(ImapTransport::Tls(Box::new(stream))),
        Ok(Err(source)) => {
            let is_tls_problem = source
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
                || source.kind() == io::ErrorKind::InvalidData;
            if is_tls_problem {
                Err(tls_error(source))
            } else {
                Err(IntakeError::Network {
                    address: account.address(),
                    source,
                })
            }
        }
        Err(_elapsed) => Err(IntakeError::Timeout {
            operation: "the TLS handshake",
            timeout,
        }),
    }
}

/// The rustls configuration for `ca_file` (web PKI roots plus it): IMAP TLS
/// and the OAuth2 token endpoint.
pub(crate) fn client_config(ca_file: Option<&Path>) -> io::Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca_file) = ca_file {
        let certificates = rustls::pki_types::CertificateDer::pem_file_iter(ca_file)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("cannot read ca_file {}: {error}", ca_file.display()),
                )
            })?;
        if certificates.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ca_file {} holds no PEM certificate", ca_file.display()),
            ));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("ca_file {}: {error}", ca_file.display()),
                )
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
