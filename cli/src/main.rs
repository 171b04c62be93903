//! `herald`: the delivery pipeline on the embedded default (SQLite state in
//! `.herald/state.db`, messages in `.herald/outbox/`), no AWS account needed; and the
//! operator's commands, on that state or on a deployed stack's table (`--table`).

mod enqueue_cmd;
mod input;
mod operator_cmd;
mod preview;
mod render_cmd;
mod templates_cmd;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use herald::adapters::local::{LocalStore, Outbox};
use herald::config::Settings;
use herald::pipeline::{Outcome, Pipeline, Ports, Senders, tally};
use herald::ports::{Clock, FixedClock, SystemClock};
use herald::receipt::{Receipt, Status};
use herald::render::Catalogue;
use herald::request::DeliveryRequest;
use jiff::Timestamp;
use operator_cmd::Operation;

/// Bounds each AWS call, retries included.
const SDK_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Parser)]
#[command(
    name = "herald",
    version,
    about = "Personalised email, SMS and push from delivery requests, with guard rails and receipts"
)]
struct Cli {
    /// State folder: state.db (idempotency, caps, suppression, consent, deferrals) and outbox/.
    #[arg(long, global = true, env = "HERALD_STATE", default_value = ".herald")]
    state: PathBuf,
    /// A deployed stack's DynamoDB state table (output StateTableName): suppress,
    /// unsuppress, unsubscribe, resubscribe and status act on it instead of --state.
    /// Region and credentials come from the usual AWS environment.
    #[arg(long, global = true, env = "HERALD_TABLE", value_parser = table_name)]
    table: Option<String>,
    /// Configuration file (sender, caps, quiet hours). Defaults to ./herald.toml when present.
    #[arg(long, global = true, env = "HERALD_CONFIG")]
    config: Option<PathBuf>,
    /// Template catalogue folder (overrides `templates` in the config).
    #[arg(long, global = true, env = "HERALD_TEMPLATES")]
    templates: Option<PathBuf>,
    /// Pretend it is this instant (RFC 3339): for replays and tests of quiet hours and caps.
    #[arg(long, global = true, env = "HERALD_NOW")]
    now: Option<Timestamp>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Process delivery requests: one JSON object, a JSON array, or JSON Lines (`-` for stdin).
    /// Prints one receipt per line on stdout and a summary on stderr.
    Send {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show what a template renders to, without sending.
    Render(render_cmd::RenderArgs),
    /// Serve the templates rendered with their fixtures on http://127.0.0.1:PORT/ (email,
    /// SMS, push as recipients see them), re-rendered as files change. Never sends.
    Preview(preview::PreviewArgs),
    /// Process deferred requests that have come due (quiet hours, send_after, retries).
    Flush,
    /// Put requests on the AWS deployment: each on its channel's request queue (--queue
    /// CHANNEL=URL, ten per SendMessageBatch) or published to the entry topic (--topic-arn),
    /// or all on one queue (--queue-url). Requests are sent as written: the function
    /// validates them and answers with receipts. Routing reads each request's channel
    /// first and sends nothing if one cannot be routed (exit status 4).
    Enqueue(enqueue_cmd::EnqueueArgs),
    /// Check requests without sending: one line per request, `ok` or the error.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Put an address on the suppression list (email, E.164 phone, or push token with --platform).
    Suppress(operator_cmd::SuppressArgs),
    /// Remove an address from the suppression list.
    Unsuppress(operator_cmd::UnsuppressArgs),
    /// Record that a recipient left a category (`*` for every non-transactional category).
    Unsubscribe(operator_cmd::ConsentArgs),
    /// Undo an unsubscribe (`*` clears every opt-out of the recipient).
    Resubscribe(operator_cmd::ConsentArgs),
    /// Print what became of a request, as one JSON line: its outcome (or `in_progress`)
    /// and its latest delivery event. Exit status 3 when the id is unknown.
    Status(operator_cmd::StatusArgs),
    /// Webhook subscriptions a subscriber's 410 Gone disabled: list them, enable one again.
    #[command(subcommand)]
    Webhooks(operator_cmd::WebhooksArgs),
    /// List the template catalogue; `herald templates check` checks it.
    Templates {
        #[command(subcommand)]
        action: Option<templates_cmd::TemplatesAction>,
    },
    /// Print the JSON Schema of delivery request v1.
    Schema,
}

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// JSON logs on stderr, quiet unless HERALD_LOG asks (`HERALD_LOG=info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().json().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&herald::request::json_schema())?);
            return Ok(ExitCode::SUCCESS);
        }
        Command::Render(args) => {
            let settings = load_settings(&cli)?;
            return render_cmd::run(args, &settings);
        }
        Command::Preview(args) => {
            let settings = load_settings(&cli)?;
            return preview::run(args, settings).await;
        }
        Command::Templates { action: Some(action) } => {
            let settings = load_settings(&cli)?;
            return templates_cmd::run(action, settings);
        }
        Command::Templates { action: None } => {
            let settings = load_settings(&cli)?;
            let catalogue = load_catalogue(&settings)?;
            for name in catalogue.names() {
                if let Some(info) = catalogue.info(name) {
                    let channels: Vec<&str> = info.channels.iter().map(|c| c.as_str()).collect();
                    println!(
                        "{name}\tversion {}\tchannels {}\tlocales {}\t{}",
                        info.version.as_deref().unwrap_or("-"),
                        channels.join(","),
                        if info.locales.is_empty() { "-".to_owned() } else { info.locales.join(",") },
                        info.description.as_deref().unwrap_or("")
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    let clock: Arc<dyn Clock> = match cli.now {
        Some(t) => Arc::new(FixedClock(t)),
        None => Arc::new(SystemClock),
    };
    match &cli.command {
        Command::Send { files } => {
            embedded_only(&cli, "send")?;
            let app = App::open(&cli, clock)?;
            app.send(files).await
        }
        Command::Flush => {
            embedded_only(&cli, "flush")?;
            let app = App::open(&cli, clock)?;
            app.flush().await
        }
        Command::Enqueue(args) => enqueue_cmd::run(args).await,
        Command::Validate { files } => {
            let settings = load_settings(&cli)?;
            let catalogue = load_catalogue(&settings)?;
            let checks = Pipeline::for_checks(Arc::new(catalogue), Arc::new(settings), clock.clone());
            validate(files, &checks)
        }
        Command::Suppress(args) => operator(&cli, Operation::Suppress(args), &*clock).await,
        Command::Unsuppress(args) => operator(&cli, Operation::Unsuppress(args), &*clock).await,
        Command::Unsubscribe(args) => operator(&cli, Operation::Consent { args, subscribed: false }, &*clock).await,
        Command::Resubscribe(args) => operator(&cli, Operation::Consent { args, subscribed: true }, &*clock).await,
        Command::Status(args) => operator(&cli, Operation::Status(args), &*clock).await,
        Command::Webhooks(args) => operator(&cli, Operation::Webhooks(args), &*clock).await,
        Command::Schema | Command::Render(_) | Command::Preview(_) | Command::Templates { .. } => Ok(ExitCode::SUCCESS),
    }
}

/// An empty name is refused, not taken for "no table": `HERALD_TABLE=$(...)` whose
/// lookup failed must not quietly act on the embedded store instead.
fn table_name(name: &str) -> Result<String, String> {
    if name.trim().is_empty() {
        return Err("empty: name the stack's state table (output StateTableName), or unset HERALD_TABLE \
                    for the embedded store"
            .into());
    }
    Ok(name.to_owned())
}

async fn operator(cli: &Cli, op: Operation<'_>, clock: &dyn Clock) -> Result<ExitCode> {
    operator_cmd::run(cli.table.as_deref(), &cli.state, op, clock.now()).await
}

/// `send` and `flush` run the pipeline here, on the embedded store: with a table named,
/// the operator meant the deployment, which takes requests through `herald enqueue`.
fn embedded_only(cli: &Cli, command: &str) -> Result<()> {
    if cli.table.is_some() {
        bail!(
            "`herald {command}` runs on the embedded store (--state), not on a DynamoDB table: drop --table \
             (or unset HERALD_TABLE), or put requests on the deployment with `herald enqueue`"
        );
    }
    Ok(())
}

fn load_settings(cli: &Cli) -> Result<Settings> {
    let mut settings = match &cli.config {
        Some(path) => Settings::load(path)?,
        None if Path::new("herald.toml").is_file() => Settings::load(Path::new("herald.toml"))?,
        None => {
            eprintln!("herald: no herald.toml here and no --config: using defaults (email is not configured)");
            Settings::parse("", "defaults", Path::new("."), None)?
        }
    };
    if let Some(t) = &cli.templates {
        settings.templates = t.clone();
    }
    Ok(settings)
}

fn load_catalogue(settings: &Settings) -> Result<Catalogue> {
    Catalogue::load(&settings.templates).context("loading the template catalogue")
}

struct App {
    pipeline: Pipeline,
    store: Arc<LocalStore>,
    outbox: PathBuf,
}

impl App {
    fn open(cli: &Cli, clock: Arc<dyn Clock>) -> Result<Self> {
        let settings = load_settings(cli)?;
        let catalogue = Arc::new(load_catalogue(&settings)?);
        let store = Arc::new(LocalStore::open(&cli.state)?);
        let outbox_dir = cli.state.join("outbox");
        let outbox = Arc::new(Outbox::new(&outbox_dir));
        let ports = Ports { store: store.clone(), senders: Senders::all(outbox), scheduler: store.clone(), clock };
        Ok(App { pipeline: Pipeline::new(catalogue, Arc::new(settings), ports), store, outbox: outbox_dir })
    }

    async fn send(&self, files: &[PathBuf]) -> Result<ExitCode> {
        let mut receipts = Vec::new();
        let mut unreadable = 0;
        for file in files {
            let items = match input::read(file) {
                Ok(items) => items,
                Err(e) => {
                    eprintln!("herald: {}: {e}", file.display());
                    unreadable += 1;
                    continue;
                }
            };
            for item in items {
                let outcome = self.pipeline.process_json(&item.raw, Some(&item.source)).await;
                let receipt = self.settle(outcome, Some(&item.source)).await?;
                self.emit(&receipt)?;
                receipts.push(receipt);
            }
        }
        self.summary(&receipts);
        Ok(if unreadable > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
    }

    async fn flush(&self) -> Result<ExitCode> {
        let mut receipts = Vec::new();
        let last = self.store.last_deferred_seq()?;
        loop {
            let due = self.store.claim_due_up_to(self.pipeline.now(), Duration::from_secs(300), 100, last)?;
            if due.is_empty() {
                break;
            }
            for entry in due {
                let source = entry.source.as_deref();
                let outcome = match DeliveryRequest::from_json(&entry.request) {
                    Ok(request) => self.pipeline.process(request, entry.attempt, source).await,
                    Err(_) => self.pipeline.process_json(&entry.request, source).await,
                };
                let receipt = self.settle(outcome, source).await?;
                self.emit(&receipt)?;
                receipts.push(receipt);
                self.store.finish_deferred(entry.seq)?;
            }
            // Requests deferred again during this flush wait for the next one, even
            // if they are due at once: the loop ends.
        }
        self.summary(&receipts);
        let (waiting, _, next) = self.store.deferred_summary(self.pipeline.now())?;
        if waiting > 0 {
            eprintln!(
                "herald: {waiting} request(s) still deferred; next due at {}",
                next.map(|t| t.to_string()).unwrap_or_default()
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Turns a transient failure into a scheduled retry, so every request still
    /// ends with a receipt here.
    async fn settle(&self, outcome: Outcome, source: Option<&str>) -> Result<Receipt> {
        match outcome {
            Outcome::Receipt(r) => Ok(r),
            Outcome::Retry { request, error, attempt } => {
                match self.pipeline.retry_later(*request, &error, attempt, source).await {
                    Outcome::Receipt(r) => Ok(r),
                    Outcome::Retry { error, .. } => bail!("the state store is unavailable: {error}"),
                }
            }
        }
    }

    fn emit(&self, receipt: &Receipt) -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", receipt.to_json())?;
        out.flush()?;
        self.store.record_receipts(std::slice::from_ref(receipt))?;
        Ok(())
    }

    fn summary(&self, receipts: &[Receipt]) {
        let counts = tally(receipts);
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        eprintln!(
            "herald: {} request(s): {}",
            receipts.len(),
            if parts.is_empty() { "nothing to do".to_owned() } else { parts.join(", ") }
        );
        if counts.contains_key(&Status::Sent) {
            eprintln!("herald: messages written to {}", self.outbox.display());
        }
    }
}

/// Parses each request, finds its template, and renders it as a send now would (strict:
/// a variable missing from the data, an SMS over its segments, a push over its provider's
/// payload limit fail here as they would fail the send, with the same reason).
fn validate(files: &[PathBuf], checks: &Pipeline) -> Result<ExitCode> {
    let mut bad = 0;
    for file in files {
        for item in input::read(file).with_context(|| file.display().to_string())? {
            let result = DeliveryRequest::from_json(&item.raw).map_err(|e| e.to_string()).and_then(|r| {
                checks
                    .catalogue()
                    .check(&r.template, r.channel, r.recipient.locale.as_ref())
                    .map_err(|e| format!("template: {e}"))?;
                checks.check_rendering(&r).map_err(|(reason, detail)| format!("{reason}: {detail}"))
            });
            match result {
                Ok(()) => println!("{}\tok", item.source),
                Err(e) => {
                    bad += 1;
                    println!("{}\t{e}", item.source);
                }
            }
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::from(4) })
}
