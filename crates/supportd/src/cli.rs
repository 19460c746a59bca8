//! The command line: clap definitions and the dispatch to each command.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use supportd_classifier::Directory;
use supportd_core::{QueueName, TicketRef, TicketStatus};
use supportd_store::{QueueQuery, TicketOrder};

use crate::pipeline::Pipeline;
use crate::settings::{LogFormat, Settings};
use crate::{
    Application, classify, copy_cli, eval, ingest, now, open_store, outbox_cli, report, serve,
    sources, staff_cli,
};

/// supportd: support mail in, classified tickets in routed queues out.
#[derive(Debug, Parser)]
#[command(name = "supportd", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: config/default.toml).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the configuration (e.g. sqlite://data/supportd.db).
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the drop folder and turn new mail into tickets until stopped.
    Serve,
    /// Store mail as tickets: .eml files, directories of them, Maildirs, mbox files, or - for stdin.
    Ingest {
        /// What to ingest.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Messages per transaction (default from the configuration).
        #[arg(long, value_name = "N")]
        batch_size: Option<usize>,
    },
    /// Classify and route mail without storing anything; one line per message.
    Classify {
        /// Account directory CSV to use instead of the database's.
        #[arg(long, value_name = "FILE.csv")]
        accounts: Option<PathBuf>,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// What to classify (same kinds as ingest).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Measure classification against a labels.csv: accuracy, per-category F1, confusion.
    Eval {
        /// Account directory CSV to use instead of the database's.
        #[arg(long, value_name = "FILE.csv")]
        accounts: Option<PathBuf>,
        /// The expected labels (file,tier,category,in_scope,microsoft).
        #[arg(long, value_name = "labels.csv")]
        labels: PathBuf,
        /// List every message with a wrong label and the reasons.
        #[arg(long)]
        errors: bool,
        /// The whole evaluation as one JSON object.
        #[arg(long)]
        json: bool,
        /// K-fold cross-validation of rules + model: per fold, a model trained on
        /// the other folds classifies the held-out one (the model file is not used).
        #[arg(long, value_name = "K")]
        folds: Option<usize>,
        /// Seed of the stratified folds.
        #[arg(long, default_value_t = 1, requires = "folds")]
        seed: u64,
        /// Use this model file instead of the one config/classifier.toml names.
        #[arg(long, value_name = "FILE", conflicts_with = "rules_only")]
        model: Option<PathBuf>,
        /// Classify with the rules alone, without the model.
        #[arg(long, conflicts_with = "folds")]
        rules_only: bool,
        /// Folder (or files) of the labelled messages.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Train the category model on labelled mail and write the model file.
    Train {
        /// The labels (file,tier,category,in_scope,microsoft); the category is learned.
        #[arg(long, value_name = "labels.csv")]
        labels: PathBuf,
        /// Where to write the model (config/model.bin is what classifier.toml names).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Folder (or files) of the labelled messages.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Queues: list them, or show the tickets of one.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// Tickets: show one with its messages, classification and audit trail.
    Ticket {
        #[command(subcommand)]
        command: TicketCommand,
    },
    /// The account directory that decides support tiers.
    Accounts {
        #[command(subcommand)]
        command: AccountsCommand,
    },
    /// The outbox of mail to send: list it, or queue a dead mail again.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Staff accounts of the web pages.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Bearer tokens of the JSON API and /metrics.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Create or update the database schema.
    Migrate,
    /// Copy the whole database into an empty PostgreSQL database, then compare
    /// the rows and a content checksum of every table (stop `serve` first).
    Copy {
        /// The database to copy (default: the configured one, or --database).
        #[arg(long, value_name = "URL")]
        from: Option<String>,
        /// The PostgreSQL database to fill, e.g. postgres://supportd@db.example/supportd.
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Every queue with its open count, overdue count and oldest open ticket.
    List,
    /// The tickets of one queue.
    Show {
        /// Queue name, e.g. billing.
        name: String,
        /// Status to list: open, pending_customer, resolved, closed.
        #[arg(long, default_value = "open")]
        status: String,
        /// Oldest first instead of newest first.
        #[arg(long)]
        oldest: bool,
        /// Page size.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Next page: tickets after this one (e.g. CS-1042).
        #[arg(long, value_name = "REF")]
        after: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// A ticket with its messages, classification reasons and audit trail.
    Show {
        /// Ticket reference, e.g. CS-1042.
        reference: String,
    },
    /// Queue a staff reply to the customer, threaded to their last message.
    Reply {
        /// Ticket reference, e.g. CS-1042.
        reference: String,
        /// The text of the reply.
        #[arg(long, value_name = "FILE")]
        body_file: PathBuf,
        /// Who writes (recorded in the audit trail).
        #[arg(long, default_value = "staff")]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The newest outbox mails with their status and last error.
    List {
        /// Only this status: queued, sent, suppressed, dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Send every due mail once now (retries are left for later), then exit.
    Send,
    /// Queue a dead or suppressed mail again, due now.
    Retry {
        id: i64,
        #[arg(long, default_value = "staff")]
        actor: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Replace the account directory with the rows of a CSV file (LABELS.md format).
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
    },
    /// Print the account directory.
    List,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account; the password is read from stdin.
    Add {
        name: String,
        /// staff (may act on tickets) or read-only.
        #[arg(long, default_value = "staff")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it once.
    Create {
        name: String,
        /// staff or read-only.
        #[arg(long, default_value = "read-only")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration, routing and classifier rules; print a summary.
    Check,
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref(), cli.database.as_deref())?;
    init_tracing(&settings);
    match cli.command {
        Command::Serve => {
            // Before anything slow: a SIGTERM during start-up (migrations,
            // the model) then stops the daemon cleanly once it has started,
            // instead of killing it with the signal's default action.
            let signals = Signals::install()?;
            crate::settings::warn_about_readable_secret_files(&settings);
            let application = std::sync::Arc::new(Application::build(&settings).await?);
            serve::serve(application, &settings, shutdown_signal(signals)).await
        }
        Command::Ingest { paths, batch_size } => {
            let inputs = sources::expand_inputs(&paths)?;
            let application = Application::build(&settings).await?;
            let batch_size = batch_size.unwrap_or(settings.intake.batch_size).max(1);
            let show_progress = std::io::stderr().is_terminal();
            let summary =
                ingest::ingest_inputs(&application, inputs, batch_size, show_progress).await?;
            println!(
                "{} messages: {} new tickets, {} threaded replies, {} duplicates, {} quarantined, {} unreadable",
                summary.total(),
                summary.created,
                summary.threaded,
                summary.duplicates,
                summary.quarantined,
                summary.unreadable
            );
            Ok(())
        }
        Command::Classify {
            accounts,
            json,
            paths,
        } => {
            let inputs = sources::expand_inputs(&paths)?;
            let directory = match accounts {
                Some(path) => read_directory(&path)?,
                None => directory_from_database(&settings).await?,
            };
            let pipeline = Pipeline::load(&settings, directory)?;
            let stdout = std::io::stdout();
            let mut output = std::io::BufWriter::new(stdout.lock());
            let (_, unreadable) = classify::classify_inputs(&pipeline, &inputs, json, &mut output)?;
            if unreadable > 0 {
                bail!("{unreadable} entries could not be read (see the warnings above)");
            }
            Ok(())
        }
        Command::Eval {
            accounts,
            labels,
            errors,
            json,
            folds,
            seed,
            model,
            rules_only,
            paths,
        } => {
            let gold = eval::read_labels(&labels)?;
            let inputs = sources::expand_inputs(&paths)?;
            let directory = match accounts {
                Some(path) => read_directory(&path)?,
                None => directory_from_database(&settings).await?,
            };
            let mut pipeline = Pipeline::load(&settings, directory)?;
            if rules_only {
                pipeline = pipeline.with_category_model(None);
            } else if let Some(path) = model {
                pipeline = pipeline.with_category_model(Some(eval::read_model(&path)?));
            }
            if let Some(folds) = folds {
                let messages = eval::read_labelled(&pipeline, &inputs, &gold);
                let summary = eval::cross_validate_combined(&pipeline, &messages, folds, seed)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&summary)?);
                } else {
                    print!("{}", eval::render_folds(&summary));
                    print!("{}", eval::render(&summary.pooled, errors));
                }
                return Ok(());
            }
            let show_progress = std::io::stderr().is_terminal() && !json;
            let predictions = classify::predict_inputs(&pipeline, &inputs, show_progress);
            let evaluation = eval::evaluate(&gold, &predictions);
            if json {
                println!("{}", serde_json::to_string_pretty(&evaluation)?);
            } else {
                print!("{}", eval::render(&evaluation, errors));
            }
            Ok(())
        }
        Command::Train { labels, out, paths } => {
            let gold = eval::read_labels(&labels)?;
            let inputs = sources::expand_inputs(&paths)?;
            let pipeline = Pipeline::load(&settings, Directory::from_records(Vec::new()))?;
            let messages = eval::read_labelled(&pipeline, &inputs, &gold);
            let model = eval::train_model(&messages)?;
            let bytes = model.to_bytes();
            std::fs::write(&out, &bytes)
                .with_context(|| format!("cannot write the model {}", out.display()))?;
            println!(
                "trained on {} messages: {} features, {} categories, {} bytes written to {}",
                messages.len(),
                model.feature_count(),
                model.labels().len(),
                bytes.len(),
                out.display()
            );
            Ok(())
        }
        Command::Queue { command } => {
            let store = open_store(&settings).await?;
            match command {
                QueueCommand::List => {
                    let summaries = store.queue_summaries().await?;
                    print!("{}", report::queue_list(&summaries, now()));
                }
                QueueCommand::Show {
                    name,
                    status,
                    oldest,
                    limit,
                    after,
                } => {
                    let query = QueueQuery {
                        queue: QueueName::parse(&name)?,
                        status: status.parse::<TicketStatus>()?,
                        order: if oldest {
                            TicketOrder::OldestFirst
                        } else {
                            TicketOrder::NewestFirst
                        },
                        after: after.as_deref().map(str::parse::<TicketRef>).transpose()?,
                        limit,
                    };
                    let tickets = store.queue_tickets(&query).await?;
                    print!("{}", report::queue_show(&tickets, now()));
                }
            }
            Ok(())
        }
        Command::Ticket {
            command: TicketCommand::Show { reference },
        } => {
            let ticket_ref: TicketRef = reference.parse()?;
            let store = open_store(&settings).await?;
            match store.ticket(ticket_ref).await? {
                Some(detail) => {
                    print!("{}", report::ticket_show(&detail));
                    Ok(())
                }
                None => bail!("no ticket {ticket_ref}"),
            }
        }
        Command::Ticket {
            command:
                TicketCommand::Reply {
                    reference,
                    body_file,
                    actor,
                },
        } => {
            outbox_cli::reply(
                &open_store(&settings).await?,
                &reference,
                &body_file,
                &actor,
            )
            .await
        }
        Command::Outbox { command } => {
            let store = open_store(&settings).await?;
            match command {
                OutboxCommand::List { status, limit } => {
                    outbox_cli::list(&store, status.as_deref(), limit).await
                }
                OutboxCommand::Send => outbox_cli::send(store, &settings.outbound).await,
                OutboxCommand::Retry { id, actor } => outbox_cli::retry(&store, id, &actor).await,
            }
        }
        Command::Accounts { command } => {
            let store = open_store(&settings).await?;
            match command {
                AccountsCommand::Import { file } => {
                    let directory = read_directory(&file)?;
                    let count = store.replace_accounts(directory.records()).await?;
                    println!("{count} account records imported from {}", file.display());
                }
                AccountsCommand::List => {
                    for record in store.accounts().await? {
                        println!(
                            "{}\t{}\t{}\t{}\tmanaged_os={}\tdefault={}",
                            record.customer,
                            record.subscription_id.as_deref().unwrap_or("-"),
                            record.domains.join(";"),
                            record.relationship,
                            record.managed_os,
                            record.is_default
                        );
                    }
                }
            }
            Ok(())
        }
        Command::Staff {
            command: StaffCommand::Add { name, role },
        } => staff_cli::add_staff(&open_store(&settings).await?, &name, &role).await,
        Command::Token {
            command: TokenCommand::Create { name, role },
        } => staff_cli::create_token(&open_store(&settings).await?, &name, &role).await,
        Command::Migrate => {
            let store = open_store(&settings).await?;
            println!("database {} is up to date", store.database());
            Ok(())
        }
        Command::Copy { from, to } => {
            copy_cli::copy(from.as_deref().unwrap_or(&settings.database_url), &to).await
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let pipeline = Pipeline::load(&settings, Directory::from_records(Vec::new()))?;
            println!("configuration {} is valid", settings.config_path.display());
            println!(
                "  database: {}",
                supportd_store::redact_url(&settings.database_url)
            );
            println!(
                "  classifier rules: {}",
                settings.classifier_rules_path.display()
            );
            println!(
                "  routing rules: {} ({} queues)",
                settings.routing_rules_path.display(),
                pipeline.router().queues().len()
            );
            println!("  drop folder: {}", settings.intake.drop_folder.display());
            Ok(())
        }
    }
}

fn read_directory(path: &std::path::Path) -> anyhow::Result<Directory> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the account directory {}", path.display()))?;
    Ok(Directory::from_csv(&text, &path.display().to_string())?)
}

/// The database's account directory when the database exists; an empty one otherwise
/// (`classify` must not create a SQLite file).
async fn directory_from_database(settings: &Settings) -> anyhow::Result<Directory> {
    let url = settings.database_url.as_str();
    let sqlite_path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"));
    if sqlite_path.is_some_and(|path| !std::path::Path::new(path).is_file()) {
        tracing::warn!(
            database = %settings.database_url,
            "No database and no --accounts: every sender is unmanaged."
        );
        return Ok(Directory::from_records(Vec::new()));
    }
    let store = supportd_store::Store::open(&settings.database_url).await?;
    Ok(Directory::from_records(store.accounts().await?))
}

fn init_tracing(settings: &Settings) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

/// SIGTERM and SIGINT, caught from the moment [`Signals::install`] returns.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot catch SIGINT")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once.
async fn shutdown_signal(mut signals: Signals) {
    signals.recv().await;
    tokio::spawn(async move {
        signals.recv().await;
        tracing::warn!("Second signal: exiting now.");
        std::process::exit(130);
    });
}
