//! [`connect`] and the [`Session`]: the IMAP commands intake needs, each
//! under a timeout, with results in our own types.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::time::Duration;

use async_imap::imap_proto::{MailboxDatum, Response};
use async_imap::types::{Fetch, UnsolicitedResponse};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use tokio::time::Instant;

use crate::config::{Acknowledge, Auth, ImapAccount, Security, Start};
use crate::error::IntakeError;
use crate::transport::{self, ImapTransport};
use crate::uid_set::uid_set;
use crate::xoauth2::Xoauth2Authenticator;

type ImapSession = async_imap::Session<ImapTransport>;
type ImapError = async_imap::error::Error;

/// The server's state of a folder just selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderState {
    pub folder: String,
    /// With the UID, the position of a message; when it changes, every
    /// checkpoint of the folder is void (the folder was recreated).
    pub uidvalidity: u32,
    /// The UID the next message will get: `Start::Now` begins below it.
    pub uidnext: u32,
    /// How many messages the folder holds.
    pub exists: u32,
    /// Whether [`Session::idle_wait`] can use IDLE (otherwise it polls).
    pub has_idle: bool,
    /// Whether moving is one `UID MOVE` (otherwise COPY + \Deleted + EXPUNGE).
    pub has_move: bool,
}

/// One message fetched by UID, without setting `\Seen`.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchedMessage {
    pub uid: u32,
    /// `RFC822.SIZE` as the server reports it.
    pub size: u32,
    /// The whole message, byte for byte; `None` when it is over
    /// `max_message_bytes`, and then `header` holds its header so the caller
    /// can quarantine it without having pulled it into memory.
    pub raw: Option<Vec<u8>>,
    /// Set only for an oversized message.
    pub header: Option<Vec<u8>>,
    /// When the server received it (`INTERNALDATE`).
    pub internal_date: Option<DateTime<Utc>>,
}

impl FetchedMessage {
    pub fn is_oversized(&self) -> bool {
        self.raw.is_none()
    }
}

impl std::fmt::Debug for FetchedMessage {
    // Never print message bytes: they are customers' mail.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FetchedMessage")
            .field("uid", &self.uid)
            .field("size", &self.size)
            .field("raw_bytes", &self.raw.as_ref().map(Vec::len))
            .field("header_bytes", &self.header.as_ref().map(Vec::len))
            .field("internal_date", &self.internal_date)
            .finish()
    }
}

/// How [`Session::idle_wait`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleOutcome {
    /// The server announced new mail (EXISTS); fetch it.
    NewMail,
    /// The wait (or one poll interval without IDLE) ended with no news.
    /// Fetch anyway: it is cheap and covers anything a notification missed.
    Timeout,
    /// The cancel future completed; the session is usable and idle no more.
    Cancelled,
}

/// What the server can do, from CAPABILITY after login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCapabilities {
    pub idle: bool,
    pub move_command: bool,
    pub uidplus: bool,
}

/// An authenticated connection to one mailbox. Any method may fail; after a
/// `Network`, `Timeout` or `SessionClosed` error, drop the session and
/// reconnect (with [`crate::Backoff`]).
#[derive(Debug)]
pub struct Session {
    /// `None` once an error left the connection in an unknown state.
    inner: Option<ImapSession>,
    /// When the OAuth2 access token used to log in expires (Unix seconds),
    /// when known.
    token_expires_at: Option<i64>,
    account_name: String,
    capabilities: ServerCapabilities,
    command_timeout: Duration,
    poll_interval: Duration,
    max_message_bytes: u64,
    quarantine_folder: String,
    /// The folder of the last successful `select`.
    selected: Option<String>,
    /// Messages in the selected folder as the server last told us (EXISTS
    /// minus EXPUNGEs): an EXISTS above it is new mail, one equal to it is not.
    exists: u32,
    /// An announcement of new mail seen while doing something else, for the
    /// next `idle_wait`.
    new_mail_announced: bool,
    /// Folders created or found existing, so acknowledging creates each once.
    known_folders: HashSet<String>,
}

/// Connects, protects and logs in, all within the account's timeouts.
#[tracing::instrument(skip_all, fields(mailbox = %account.name, address = %account.address()))]
pub async fn connect(account: &ImapAccount) -> Result<Session, IntakeError> {
    let started = Instant::now();
    let tcp_stream = transport::connect_tcp(account).await?;
    let client = match account.security {
        Security::Tls => {
            let transport =
                transport::handshake(account, tcp_stream, account.connect_timeout).await?;
            let mut client = async_imap::Client::new(transport);
            read_greeting(&mut client, account).await?;
            client
        }
        Security::Starttls => {
            let mut client = async_imap::Client::new(ImapTransport::Plain(tcp_stream));
            read_greeting(&mut client, account).await?;
            within(
                account.command_timeout,
                "STARTTLS",
                client.run_command_and_check_ok("STARTTLS", None),
            )
            .await?;
            // Whatever the server sent after its OK is dropped with the
            // plain stream: nothing said before TLS may be trusted.
            let ImapTransport::Plain(tcp_stream) = client.into_inner() else {
                return Err(IntakeError::SessionClosed);
            };
            let transport =
                transport::handshake(account, tcp_stream, account.connect_timeout).await?;
            async_imap::Client::new(transport)
        }
        Security::Plain => {
            let mut client = async_imap::Client::new(ImapTransport::Plain(tcp_stream));
            read_greeting(&mut client, account).await?;
            client
        }
    };
    let (mut imap_session, token_expires_at) = log_in(client, account).await?;
    let capability_list = within(
        account.command_timeout,
        "CAPABILITY",
        imap_session.capabilities(),
    )
    .await?;
    let capabilities = ServerCapabilities {
        idle: capability_list.has_str("IDLE"),
        move_command: capability_list.has_str("MOVE"),
        uidplus: capability_list.has_str("UIDPLUS"),
    };
    tracing::debug!(
        idle = capabilities.idle,
        move_command = capabilities.move_command,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "Logged in."
    );
    Ok(Session {
        inner: Some(imap_session),
        account_name: account.name.clone(),
        capabilities,
        command_timeout: account.command_timeout,
        poll_interval: account.poll_interval,
        max_message_bytes: account.max_message_bytes,
        quarantine_folder: account.quarantine_folder.clone(),
        selected: None,
        exists: 0,
        new_mail_announced: false,
        known_folders: HashSet::new(),
        token_expires_at,
    })
}

async fn read_greeting(
    client: &mut async_imap::Client<ImapTransport>,
    account: &ImapAccount,
) -> Result<(), IntakeError> {
    let greeting = tokio::time::timeout(account.connect_timeout, client.read_response())
        .await
        .map_err(|_| IntakeError::Timeout {
            operation: "the server greeting",
            timeout: account.connect_timeout,
        })?
        .map_err(|source| IntakeError::Network {
            address: account.address(),
            source,
        })?;
    let Some(greeting) = greeting else {
        return Err(IntakeError::Network {
            address: account.address(),
            source: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the greeting",
            ),
        });
    };
    match greeting.parsed() {
        Response::Data {
            status: async_imap::imap_proto::Status::Ok | async_imap::imap_proto::Status::PreAuth,
            ..
        } => Ok(()),
        Response::Data {
            status: async_imap::imap_proto::Status::Bye,
            outcome,
        } => Err(IntakeError::ServerUnavailable {
            server_message: outcome.information.as_deref().unwrap_or("BYE").to_owned(),
        }),
        other => Err(IntakeError::Protocol {
            operation: "the server greeting",
            source: ImapError::Parse(async_imap::error::ParseError::Unexpected(format!(
                "{other:?}"
            ))),
        }),
    }
}

/// Logs in; answers the session and, for OAuth2 with refresh, when the
/// access token expires.
async fn log_in(
    client: async_imap::Client<ImapTransport>,
    account: &ImapAccount,
) -> Result<(ImapSession, Option<i64>), IntakeError> {
    let xoauth2 = |access_token: &crate::config::Secret| {
        Xoauth2Authenticator::new(&account.username, access_token)
    };
    let (operation, expires_at, attempt) = match &account.auth {
        Auth::Password(source) => {
            let password = source.read().await?;
            (
                "LOGIN",
                None,
                tokio::time::timeout(
                    account.command_timeout,
                    client.login(&account.username, password.expose()),
                )
                .await,
            )
        }
        Auth::Xoauth2(source) => {
            let access_token = source.read().await?;
            (
                "AUTHENTICATE XOAUTH2",
                None,
                tokio::time::timeout(
                    account.command_timeout,
                    client.authenticate("XOAUTH2", xoauth2(&access_token)),
                )
                .await,
            )
        }
        Auth::OAuth2(refresher) => {
            let access_token = refresher.access_token(account.command_timeout).await?;
            (
                "AUTHENTICATE XOAUTH2",
                Some(access_token.expires_at),
                tokio::time::timeout(
                    account.command_timeout,
                    client.authenticate("XOAUTH2", xoauth2(&access_token.token)),
                )
                .await,
            )
        }
    };
    match attempt {
        Err(_elapsed) => Err(IntakeError::Timeout {
            operation,
            timeout: account.command_timeout,
        }),
        Ok(Ok(session)) => Ok((session, expires_at)),
        Ok(Err((ImapError::No(server_message), _client))) => {
            if server_message.to_ascii_lowercase().contains("unavailable") {
                Err(IntakeError::ServerUnavailable { server_message })
            } else {
                if let Auth::OAuth2(refresher) = &account.auth {
                    // Revoked early, perhaps: the next login gets a new one.
                    refresher.invalidate().await;
                }
                Err(IntakeError::AuthenticationRefused {
                    username: account.username.clone(),
                    server_message,
                })
            }
        }
        Ok(Err((error, _client))) => Err(IntakeError::protocol(operation, error)),
    }
}

/// Runs one IMAP exchange under `timeout`, sorting its errors.
async fn within<T>(
    timeout: Duration,
    operation: &'static str,
    exchange: impl Future<Output = Result<T, ImapError>>,
) -> Result<T, IntakeError> {
    match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(IntakeError::protocol(operation, error)),
        Err(_elapsed) => Err(IntakeError::Timeout { operation, timeout }),
    }
}

impl Session {
    pub fn account_name(&self) -> &str {
        &self.account_name
    }

    /// When the OAuth2 access token this session logged in with expires
    /// (Unix seconds); `None` for passwords and static tokens.
    pub fn token_expires_at(&self) -> Option<i64> {
        self.token_expires_at
    }

    pub fn capabilities(&self) -> ServerCapabilities {
        self.capabilities
    }

    /// The folder currently selected, if any.
    pub fn selected_folder(&self) -> Option<&str> {
        self.selected.as_deref()
    }

    fn imap(&mut self) -> Result<&mut ImapSession, IntakeError> {
        self.inner.as_mut().ok_or(IntakeError::SessionClosed)
    }

    /// Keeps the connection only after errors that leave it in a known state.
    fn checked<T>(&mut self, result: Result<T, IntakeError>) -> Result<T, IntakeError> {
        if let Err(
            IntakeError::Network { .. } | IntakeError::Timeout { .. } | IntakeError::Tls { .. },
        ) = &result
        {
            self.inner = None;
            self.selected = None;
        }
        result
    }

    /// Selects `folder` (read-write) and reports its UIDVALIDITY and UIDNEXT.
    #[tracing::instrument(skip_all, fields(mailbox = %self.account_name, folder = %folder))]
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, IntakeError> {
        let timeout = self.command_timeout;
        self.selected = None;
        let imap = self.imap()?;
        let result = within(timeout, "SELECT", imap.select(folder)).await;
        let mailbox = match self.checked(result) {
            Ok(mailbox) => mailbox,
            Err(IntakeError::Protocol {
                source: ImapError::No(server_message),
                ..
            }) => {
                return Err(IntakeError::NoSuchFolder {
                    folder: folder.to_owned(),
                    server_message,
                });
            }
            Err(error) => return Err(error),
        };
        let uidvalidity = mailbox.uid_validity.ok_or_else(|| IntakeError::Protocol {
            operation: "SELECT",
            source: ImapError::Parse(async_imap::error::ParseError::ExpectedResponseNotFound(
                "UIDVALIDITY".to_owned(),
            )),
        })?;
        self.selected = Some(folder.to_owned());
        self.exists = mailbox.exists;
        self.known_folders.insert(folder.to_owned());
        let uidnext = match mailbox.uid_next {
            Some(uidnext) => uidnext,
            None => self.highest_uid().await? + 1,
        };
        self.drain_unsolicited();
        self.new_mail_announced = false;
        Ok(FolderState {
            folder: folder.to_owned(),
            uidvalidity,
            uidnext,
            exists: mailbox.exists,
            has_idle: self.capabilities.idle,
            has_move: self.capabilities.move_command,
        })
    }

    /// For servers that omit UIDNEXT: the UID of the last message, or 0.
    async fn highest_uid(&mut self) -> Result<u32, IntakeError> {
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let result = within(timeout, "UID SEARCH", imap.uid_search("ALL")).await;
        Ok(self.checked(result)?.into_iter().max().unwrap_or(0))
    }

    fn require_selected(&self, operation: &'static str) -> Result<(), IntakeError> {
        if self.inner.is_none() {
            return Err(IntakeError::SessionClosed);
        }
        if self.selected.is_none() {
            return Err(IntakeError::Protocol {
                operation,
                source: ImapError::Bad("no folder is selected; call select first".to_owned()),
            });
        }
        Ok(())
    }

    /// The messages with a UID above `last_uid`, in UID order, at most
    /// `limit` of them and about 32 MiB (or one `max_message_bytes`) of mail
    /// at most: call again from the last UID returned until it returns none.
    /// Uses `BODY.PEEK`, so `\Seen` is never set by fetching.
    #[tracing::instrument(skip_all, fields(mailbox = %self.account_name, folder = ?self.selected, last_uid))]
    pub async fn fetch_after(
        &mut self,
        last_uid: u32,
        limit: u32,
    ) -> Result<Vec<FetchedMessage>, IntakeError> {
        self.require_selected("UID FETCH")?;
        let Some(first_uid) = last_uid.checked_add(1) else {
            return Ok(Vec::new());
        };
        let timeout = self.command_timeout;
        let max_message_bytes = self.max_message_bytes;
        // NOOP makes the server look at the folder again (Dovecot finds mail
        // delivered into Maildir only at such a sync); what it announces is
        // covered by the SEARCH that follows, so the announcements go.
        let imap = self.imap()?;
        let result = within(timeout, "NOOP", imap.noop()).await;
        self.checked(result)?;
        self.drain_unsolicited();
        self.new_mail_announced = false;
        // SEARCH first, so a batch costs O(batch), not O(everything waiting).
        let imap = self.imap()?;
        let result = within(
            timeout,
            "UID SEARCH",
            imap.uid_search(format!("UID {first_uid}:*")),
        )
        .await;
        let mut new_uids: Vec<u32> = self
            .checked(result)?
            .into_iter()
            .filter(|uid| *uid > last_uid)
            .collect();
        new_uids.sort_unstable();
        new_uids.truncate(usize::try_from(limit.max(1)).unwrap_or(usize::MAX));
        if new_uids.is_empty() {
            return Ok(Vec::new());
        }

        let imap = self.imap()?;
        let result = within(timeout, "UID FETCH", async {
            imap.uid_fetch(uid_set(&new_uids), "(UID RFC822.SIZE INTERNALDATE)")
                .await?
                .try_collect::<Vec<Fetch>>()
                .await
        })
        .await;
        let mut metadata: BTreeMap<u32, (u32, Option<DateTime<Utc>>)> = BTreeMap::new();
        for fetch in self.checked(result)? {
            if let (Some(uid), Some(size)) = (fetch.uid, fetch.size) {
                let internal_date = fetch.internal_date().map(|date| date.with_timezone(&Utc));
                metadata.insert(uid, (size, internal_date));
            }
        }

        // Keep the batch's memory bounded: stop once the sizes add up.
        let byte_budget = max_message_bytes.max(BATCH_BYTE_BUDGET);
        let mut whole_uids = Vec::new();
        let mut oversized_uids = Vec::new();
        let mut batch_bytes = 0u64;
        let mut first_left_for_later = None;
        for (&uid, &(size, _)) in &metadata {
            let size = u64::from(size);
            if size > max_message_bytes {
                oversized_uids.push(uid);
                continue;
            }
            if batch_bytes + size > byte_budget && !whole_uids.is_empty() {
                first_left_for_later = Some(uid);
                break;
            }
            batch_bytes += size;
            whole_uids.push(uid);
        }
        // Never return a message above one that was left for the next call.
        if let Some(first_left_for_later) = first_left_for_later {
            metadata.retain(|uid, _| *uid < first_left_for_later);
        }

        let mut bodies = self
            .fetch_sections(&whole_uids, "BODY.PEEK[]", Fetch::body)
            .await?;
        let mut headers = self
            .fetch_sections(&oversized_uids, "BODY.PEEK[HEADER]", Fetch::header)
            .await?;
        let mut messages = Vec::with_capacity(metadata.len());
        for (uid, (size, internal_date)) in metadata {
            let (raw, header) = match (bodies.remove(&uid), headers.remove(&uid)) {
                (Some(raw), _) => (Some(raw), None),
                (None, Some(header)) => (None, Some(header)),
                // Expunged by someone else since the SEARCH: nothing to take.
                (None, None) => continue,
            };
            messages.push(FetchedMessage {
                uid,
                size,
                raw,
                header,
                internal_date,
            });
        }
        tracing::debug!(
            fetched = messages.len(),
            oversized = messages.iter().filter(|m| m.is_oversized()).count(),
            "Fetched new messages."
        );
        Ok(messages)
    }

    async fn fetch_sections(
        &mut self,
        uids: &[u32],
        item: &str,
        section: fn(&Fetch) -> Option<&[u8]>,
    ) -> Result<BTreeMap<u32, Vec<u8>>, IntakeError> {
        let mut sections = BTreeMap::new();
        if uids.is_empty() {
            return Ok(sections);
        }
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let result = within(timeout, "UID FETCH", async {
            imap.uid_fetch(uid_set(uids), format!("(UID {item})"))
                .await?
                .try_collect::<Vec<Fetch>>()
                .await
        })
        .await;
        let wanted: HashSet<u32> = uids.iter().copied().collect();
        for fetch in self.checked(result)? {
            if let (Some(uid), Some(bytes)) = (fetch.uid, section(&fetch))
                && wanted.contains(&uid)
            {
                sections.insert(uid, bytes.to_vec());
            }
        }
        Ok(sections)
    }

    /// UIDs up to `last_uid` that `acknowledge` has not yet been applied to
    /// (still present for a move, still unseen for `\Seen`), ascending: after a
    /// crash between a commit and its acknowledgment, the caller acknowledges
    /// those it finds stored.
    pub async fn uids_not_acknowledged(
        &mut self,
        last_uid: u32,
        acknowledge: &Acknowledge,
    ) -> Result<Vec<u32>, IntakeError> {
        let query = match acknowledge {
            _ if last_uid == 0 => return Ok(Vec::new()),
            Acknowledge::LeaveUntouched => return Ok(Vec::new()),
            Acknowledge::Seen => format!("UID 1:{last_uid} UNSEEN"),
            Acknowledge::MoveTo(_) => format!("UID 1:{last_uid}"),
        };
        self.require_selected("UID SEARCH")?;
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let result = within(timeout, "UID SEARCH", imap.uid_search(query)).await;
        let mut uids: Vec<u32> = self
            .checked(result)?
            .into_iter()
            .filter(|uid| *uid <= last_uid)
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// UIDs of messages received on or after `date` (`UID SEARCH SINCE`), ascending.
    pub async fn uids_since(&mut self, date: NaiveDate) -> Result<Vec<u32>, IntakeError> {
        self.require_selected("UID SEARCH")?;
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let query = format!("SINCE {}", date.format("%-d-%b-%Y"));
        let result = within(timeout, "UID SEARCH", imap.uid_search(query)).await;
        let mut uids: Vec<u32> = self.checked(result)?.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The `last_uid` to start from in a folder with no checkpoint (or whose
    /// UIDVALIDITY changed, when the caller wants to skip old mail): the mail
    /// above it is what `start` asks for.
    pub async fn start_after_uid(
        &mut self,
        start: Start,
        folder_state: &FolderState,
    ) -> Result<u32, IntakeError> {
        let before_next = folder_state.uidnext.saturating_sub(1);
        match start {
            Start::Now => Ok(before_next),
            Start::Since(date) => Ok(self
                .uids_since(date)
                .await?
                .first()
                .map_or(before_next, |first| first - 1)),
        }
    }

    /// Acknowledges committed messages of the selected folder.
    #[tracing::instrument(skip_all, fields(mailbox = %self.account_name, folder = ?self.selected, count = uids.len()))]
    pub async fn acknowledge(
        &mut self,
        uids: &[u32],
        acknowledge: &Acknowledge,
    ) -> Result<(), IntakeError> {
        match acknowledge {
            Acknowledge::LeaveUntouched => Ok(()),
            Acknowledge::Seen => self.add_flag(uids, "\\Seen").await,
            Acknowledge::MoveTo(folder) => self.move_messages(uids, folder).await,
        }
    }

    /// Moves messages of the selected folder to the quarantine folder.
    pub async fn quarantine(&mut self, uids: &[u32]) -> Result<(), IntakeError> {
        let folder = self.quarantine_folder.clone();
        self.move_messages(uids, &folder).await
    }

    async fn add_flag(&mut self, uids: &[u32], flag: &str) -> Result<(), IntakeError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.require_selected("UID STORE")?;
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let result = within(timeout, "UID STORE", async {
            imap.uid_store(uid_set(uids), format!("+FLAGS.SILENT ({flag})"))
                .await?
                .try_collect::<Vec<Fetch>>()
                .await
        })
        .await;
        self.checked(result).map(drop)
    }

    /// Moves messages of the selected folder into `folder`, creating it if
    /// needed: `UID MOVE`, or COPY + `\Deleted` + `UID EXPUNGE` without MOVE.
    pub async fn move_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), IntakeError> {
        if uids.is_empty() {
            return Ok(());
        }
        self.require_selected("UID MOVE")?;
        self.ensure_folder(folder).await?;
        let timeout = self.command_timeout;
        let set = uid_set(uids);
        if self.capabilities.move_command {
            let imap = self.imap()?;
            let result = within(timeout, "UID MOVE", imap.uid_mv(&set, folder)).await;
            self.checked(result)?;
            // Keeps the message count in step with the EXPUNGEs MOVE caused.
            self.drain_unsolicited();
            return Ok(());
        }
        let imap = self.imap()?;
        let result = within(timeout, "UID COPY", imap.uid_copy(&set, folder)).await;
        self.checked(result)?;
        self.add_flag(uids, "\\Deleted").await?;
        let uidplus = self.capabilities.uidplus;
        if !uidplus {
            tracing::warn!(
                mailbox = %self.account_name,
                folder = ?self.selected,
                "The server has neither MOVE nor UIDPLUS: EXPUNGE also removes other messages marked deleted."
            );
        }
        let imap = self.imap()?;
        let expunged = if uidplus {
            within(timeout, "UID EXPUNGE", async {
                imap.uid_expunge(&set)
                    .await?
                    .try_collect::<Vec<u32>>()
                    .await
            })
            .await
        } else {
            within(timeout, "EXPUNGE", async {
                imap.expunge().await?.try_collect::<Vec<u32>>().await
            })
            .await
        };
        let expunged = self.checked(expunged)?;
        let expunged_count = u32::try_from(expunged.len()).unwrap_or(u32::MAX);
        self.exists = self.exists.saturating_sub(expunged_count);
        Ok(())
    }

    /// Creates `folder` unless it is known to exist.
    pub async fn ensure_folder(&mut self, folder: &str) -> Result<(), IntakeError> {
        if self.known_folders.contains(folder) {
            return Ok(());
        }
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        let result = within(timeout, "CREATE", imap.create(folder)).await;
        match self.checked(result) {
            Ok(()) => {
                tracing::info!(mailbox = %self.account_name, folder, "Created folder.");
            }
            Err(IntakeError::Protocol {
                source: ImapError::No(message),
                ..
            }) if message.to_ascii_lowercase().contains("alreadyexists")
                || message.to_ascii_lowercase().contains("already exists") => {}
            Err(error) => return Err(error),
        }
        self.known_folders.insert(folder.to_owned());
        Ok(())
    }

    /// Empties the queue of responses the server sent on its own, noting
    /// an announcement of new mail in `new_mail_announced`.
    fn drain_unsolicited(&mut self) {
        let Some(imap) = self.inner.as_mut() else {
            return;
        };
        while let Ok(response) = imap.unsolicited_responses.try_recv() {
            self.new_mail_announced |= note_response(&mut self.exists, &response);
        }
    }

    /// Whether new mail was announced since the last call.
    fn take_new_mail_announcement(&mut self) -> bool {
        self.drain_unsolicited();
        std::mem::take(&mut self.new_mail_announced)
    }

    /// Waits until the server announces new mail in the selected folder,
    /// `timeout` passes, or `cancel` completes. Uses IDLE when the server has
    /// it (so `timeout` should be the account's `idle_timeout`, under 29
    /// minutes); otherwise waits one `poll_interval` (at most `timeout`) and
    /// asks with NOOP.
    #[tracing::instrument(skip_all, fields(mailbox = %self.account_name, folder = ?self.selected))]
    pub async fn idle_wait(
        &mut self,
        timeout: Duration,
        cancel: impl Future<Output = ()>,
    ) -> Result<IdleOutcome, IntakeError> {
        self.require_selected("IDLE")?;
        if self.take_new_mail_announcement() {
            return Ok(IdleOutcome::NewMail);
        }
        let mut cancel = std::pin::pin!(cancel);
        if !self.capabilities.idle {
            let wait = self.poll_interval.min(timeout);
            tokio::select! {
                biased;
                () = &mut cancel => return Ok(IdleOutcome::Cancelled),
                () = tokio::time::sleep(wait) => {}
            }
            let command_timeout = self.command_timeout;
            let imap = self.imap()?;
            let result = within(command_timeout, "NOOP", imap.noop()).await;
            self.checked(result)?;
            return Ok(if self.take_new_mail_announcement() {
                IdleOutcome::NewMail
            } else {
                IdleOutcome::Timeout
            });
        }

        let command_timeout = self.command_timeout;
        let imap_session = self.inner.take().ok_or(IntakeError::SessionClosed)?;
        let unsolicited = imap_session.unsolicited_responses.clone();
        let mut handle = imap_session.idle();
        let deadline = Instant::now() + timeout;
        match tokio::time::timeout(command_timeout, handle.init()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(IntakeError::protocol("IDLE", error)),
            Err(_elapsed) => {
                return Err(IntakeError::Timeout {
                    operation: "IDLE",
                    timeout: command_timeout,
                });
            }
        }
        // Mail that arrived before IDLE began is announced before "+ idling".
        let mut announced_before_idle = false;
        while let Ok(response) = unsolicited.try_recv() {
            announced_before_idle |= note_response(&mut self.exists, &response);
        }
        let outcome = loop {
            if announced_before_idle {
                break IdleOutcome::NewMail;
            }
            // async-imap's own timeout restarts on every "* OK Still here",
            // so the deadline is kept here.
            let (wait, _stop_source) = handle.wait_with_timeout(timeout);
            let response = tokio::select! {
                biased;
                () = &mut cancel => break IdleOutcome::Cancelled,
                () = tokio::time::sleep_until(deadline) => break IdleOutcome::Timeout,
                response = wait => response,
            };
            match response {
                Ok(async_imap::extensions::idle::IdleResponse::NewData(data)) => {
                    let response = match data.parsed() {
                        Response::MailboxData(MailboxDatum::Exists(count)) => {
                            UnsolicitedResponse::Exists(*count)
                        }
                        Response::Expunge(sequence) => UnsolicitedResponse::Expunge(*sequence),
                        _ => continue,
                    };
                    if note_response(&mut self.exists, &response) {
                        break IdleOutcome::NewMail;
                    }
                }
                Ok(
                    async_imap::extensions::idle::IdleResponse::Timeout
                    | async_imap::extensions::idle::IdleResponse::ManualInterrupt,
                ) => break IdleOutcome::Timeout,
                Err(error) => return Err(IntakeError::protocol("IDLE", error)),
            }
        };
        match tokio::time::timeout(command_timeout, handle.done()).await {
            Ok(Ok(imap_session)) => self.inner = Some(imap_session),
            Ok(Err(error)) => return Err(IntakeError::protocol("IDLE DONE", error)),
            Err(_elapsed) => {
                return Err(IntakeError::Timeout {
                    operation: "IDLE DONE",
                    timeout: command_timeout,
                });
            }
        }
        // EXISTS that came with the end of IDLE counts too.
        self.drain_unsolicited();
        let outcome =
            if outcome == IdleOutcome::Timeout && std::mem::take(&mut self.new_mail_announced) {
                IdleOutcome::NewMail
            } else {
                outcome
            };
        if outcome == IdleOutcome::NewMail {
            self.new_mail_announced = false;
        }
        tracing::debug!(?outcome, "IDLE ended.");
        Ok(outcome)
    }

    /// Says goodbye. Errors are only worth a debug line: the session is over.
    pub async fn logout(mut self) -> Result<(), IntakeError> {
        let timeout = self.command_timeout;
        let imap = self.imap()?;
        within(timeout, "LOGOUT", imap.logout()).await
    }
}

/// Upper bound on the bytes of whole messages one `fetch_after` returns
/// (unless one message alone is larger).
const BATCH_BYTE_BUDGET: u64 = 32 * 1024 * 1024;

/// Keeps `exists` in step with what the server announces; true when the
/// announcement is new mail (EXISTS above what we knew).
fn note_response(exists: &mut u32, response: &UnsolicitedResponse) -> bool {
    match response {
        UnsolicitedResponse::Exists(count) => {
            let new_mail = *count > *exists;
            *exists = *count;
            new_mail
        }
        UnsolicitedResponse::Expunge(_) => {
            *exists = exists.saturating_sub(1);
            false
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exists_above_the_known_count_is_new_mail() {
        let mut exists = 3;
        assert!(!note_response(&mut exists, &UnsolicitedResponse::Exists(3)));
        assert!(!note_response(&mut exists, &UnsolicitedResponse::Recent(1)));
        assert!(!note_response(
            &mut exists,
            &UnsolicitedResponse::Expunge(1)
        ));
        assert_eq!(exists, 2);
        // One expunged elsewhere and one delivered: the count is back to 3,
        // and that is news.
        assert!(note_response(&mut exists, &UnsolicitedResponse::Exists(3)));
        assert!(!note_response(&mut exists, &UnsolicitedResponse::Exists(3)));
        let mut empty = 0;
        assert!(!note_response(&mut empty, &UnsolicitedResponse::Expunge(1)));
        assert_eq!(empty, 0);
    }

    #[test]
    fn fetched_message_debug_never_shows_mail() {
        let message = FetchedMessage {
            uid: 7,
            size: 12,
            raw: Some(b"secret body!".to_vec()),
            header: None,
            internal_date: None,
        };
        let debug = format!("{message:?}");
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("raw_bytes: Some(12)"), "{debug}");
    }
}
