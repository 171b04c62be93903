//! The entry point of every herald function: an SQS-fed Lambda that sends one channel.
//!
//! A function's `main` builds its channel's sender and hands it to [`run`]; everything
//! else is here, once: the environment ([`env`]), SQS records to requests ([`sqs`]),
//! the state store, scheduler and receipts sink on AWS, JSON logs, and the
//! deadline-aware batch [`Handler`] (one tracing span per record, carrying the SQS
//! message id and the request id). The handler is tested in-process with the in-memory
//! twins and a plain `SqsEvent`, the way aws-lambda-rust-runtime's examples test theirs.

pub mod env;
pub mod records;
pub mod sqs;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use herald::adapters::aws::{self, DynamoStore, SqsReceiptSink, SqsScheduler};
use herald::config::{KeylessSettings, Settings};
use herald::pipeline::{BatchBudget, Pipeline, Ports, Senders};
use herald::ports::{Clock, ReceiptSink, SystemClock};
use herald::request::Channel;
use lambda_runtime::{LambdaEvent, service_fn};

pub use env::Need;

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// What makes one function itself: its name, the variables it reads besides the
/// common ones, and the AWS adapters it wires (its IAM role must allow their calls,
/// `herald::adapters::aws::AWS_CALLS`; the deployment template is checked against both).
#[derive(Debug, Clone, Copy)]
pub struct Function {
    /// The channel it sends, as in the README: `email`, `sms`.
    pub name: &'static str,
    pub env_vars: &'static [(&'static str, Need)],
    pub aws_adapters: &'static [&'static str],
    /// AWS calls its sender may make before the send itself (at most): they count in
    /// the batch's time budget, and the template's timeout must leave room for them.
    pub extra_calls_per_record: u32,
}

impl Function {
    /// Every variable the function reads: the common ones, then its own.
    pub fn env_vars(&self) -> Vec<(&'static str, Need)> {
        env::COMMON_ENV_VARS.iter().chain(self.env_vars).copied().collect()
    }
}

/// A function that sends no channel (provider events, webhooks, the public endpoints):
/// it reads only its own variables, listed here so the deployment template can be
/// checked against them, with the AWS adapters it wires.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub env_vars: &'static [(&'static str, Need)],
    pub aws_adapters: &'static [&'static str],
}

/// What a function's wiring is handed: the checked configuration and the AWS clients'
/// configurations.
pub struct Context {
    /// The herald.toml, without keys: a function that signs links fetches its own.
    pub settings: KeylessSettings,
    /// For state, queues and secrets: SDK retries on, each call bounded.
    pub sdk: aws_config::SdkConfig,
    /// For provider sends: no SDK retries, one attempt (see `aws::provider_config`).
    pub provider_sdk: aws_config::SdkConfig,
    /// The state store and the receipt stream the pipeline uses, for senders that record
    /// or announce something themselves (the push function's token hygiene).
    pub store: Arc<DynamoStore>,
    pub receipts: Arc<SqsReceiptSink>,
    pub clock: Arc<dyn Clock>,
    /// Each call's timeout (`HERALD_AWS_TIMEOUT_MS`): also the bound of a provider's HTTP call.
    pub aws_timeout: Duration,
}

/// What a function's wiring returns: its sender, the finished settings, what to do at
/// the start of each invocation (forget per-invocation caches), and the calls its sender
/// makes before a send (see [`Function::extra_calls_per_record`]).
pub struct Wired {
    pub senders: Senders,
    pub settings: Settings,
    pub on_invocation: Option<Box<dyn Fn() + Send + Sync>>,
    pub extra_calls_per_record: u32,
}

impl Wired {
    pub fn new(senders: Senders, settings: Settings) -> Self {
        Wired { senders, settings, on_invocation: None, extra_calls_per_record: 0 }
    }

    /// The sender makes `calls` AWS calls of its own before a send.
    pub fn extra_calls_per_record(mut self, calls: u32) -> Self {
        self.extra_calls_per_record = calls;
        self
    }

    pub fn on_invocation(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_invocation = Some(Box::new(hook));
        self
    }
}

/// Runs a function: reads and checks its environment, builds the AWS clients once,
/// lets `wire` build the channel's sender, then serves invocations until the runtime
/// stops it. A configuration error ends the process before its first invocation (an
/// init error in Lambda's terms), with a message naming the setting. `main` calls
/// [`init_process`] (the CA bundle, logs) before it.
pub async fn run<W, F>(function: &'static Function, wire: W) -> Result<(), lambda_runtime::Error>
where
    W: FnOnce(Context) -> F,
    F: Future<Output = anyhow::Result<Wired>>,
{
    let vars = function.env_vars();
    let environment = env::Environment::from_env(&vars)?;
    let lock = environment.settings.policy().idempotency.lock_timeout.seconds();
    lock_outlasts_a_record(lock, environment.aws_timeout, function.extra_calls_per_record)?;
    // Its own channel's parts only; the pipeline rejects other channels before
    // rendering. Compiled beside the network set-up below: a broken template ends the
    // start as soon as it is found (not after the set-up's timeouts), and is the error
    // reported when the set-up failed too.
    let own: Vec<Channel> = Channel::ALL.into_iter().filter(|c| c.as_str() == function.name).collect();
    let compiled = if own.is_empty() { Channel::ALL.to_vec() } else { own };
    let compiling = environment.catalogue_in_background(TEMPLATES, compiled.clone())?;
    let setup = async {
        let sdk = aws::load_config(environment.aws_timeout).await;
        let provider_sdk = aws::provider_config(&sdk, environment.aws_timeout);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let store = Arc::new(
            DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), environment.table.clone())
                .with_batched_outcomes(environment.aws_timeout),
        );
        let sink = Arc::new(SqsReceiptSink::new(sqs.clone(), environment.receipts_queue_url.clone()));
        let wired = wire(Context {
            settings: environment.settings.clone(),
            sdk: sdk.clone(),
            provider_sdk,
            store: store.clone(),
            receipts: sink.clone(),
            clock: clock.clone(),
            aws_timeout: environment.aws_timeout,
        })
        .await;
        (clock, sqs, store, sink, wired)
    };
    tokio::pin!(setup, compiling);
    let (catalogue, (clock, sqs, store, sink, wired)) = tokio::select! {
        compiled = &mut compiling => (compiled?, setup.await),
        ready = &mut setup => {
            let catalogue = compiling.await;
            if let (Err(_), Err(e)) = (&catalogue, &ready.4) {
                tracing::error!(error = %format!("{e:#}"), "the start's AWS set-up failed too");
            }
            (catalogue?, ready)
        }
    };
    let catalogue = Arc::new(catalogue);
    let wired = wired?;
    // A sender for a channel whose parts were not compiled would fail every render.
    if let Some(c) = wired.senders.channels().into_iter().find(|c| !compiled.contains(c)) {
        return Err(format!("the {} function sends {c} but compiled only {compiled:?} templates", function.name).into());
    }
    let ports = Ports {
        store,
        senders: wired.senders,
        scheduler: Arc::new(SqsScheduler::new(sqs.clone(), environment.request_queue_url.clone(), clock.clone())),
        clock,
    };
    let handler = Handler {
        pipeline: Pipeline::new(catalogue, Arc::new(wired.settings), ports),
        sink,
        concurrency: environment.concurrency,
        aws_timeout: environment.aws_timeout,
        extra_calls_per_record: wired.extra_calls_per_record.min(function.extra_calls_per_record),
        on_invocation: wired.on_invocation,
    };
    tracing::info!(function = function.name, channels = ?handler.pipeline.channels(), "ready");
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = sqs::deadline(event.context.deadline);
        Ok::<_, lambda_runtime::Error>(handler.handle(event.payload, deadline).await)
    }))
    .await
}

/// Calls a record may make beyond the budget's count, allowed for in the lock: a takeover
/// reads the recipient item and puts the lock (`CALLS_PER_RECORD` is a bound in practice,
/// not a proof).
pub const LOCK_MARGIN_CALLS: u32 = 2;

/// Refuses an `idempotency.lock_timeout` (`lock_seconds`) that a live attempt could
/// outlast: a record makes about `CALLS_PER_RECORD` plus `extra_calls` (the function's
/// most) AWS calls between its admission and its outcome, each bounded by
/// `aws_timeout`, and [`LOCK_MARGIN_CALLS`] more are allowed for. A lock that expired
/// under a live attempt would let another delivery of the same request (a producer's
/// retry) take it over while the first is still sending: two sends, or two receipts
/// that disagree.
pub fn lock_outlasts_a_record(lock_seconds: i64, aws_timeout: Duration, extra_calls: u32) -> anyhow::Result<()> {
    let calls = herald::pipeline::CALLS_PER_RECORD.saturating_add(extra_calls).saturating_add(LOCK_MARGIN_CALLS);
    let record = aws_timeout.saturating_mul(calls);
    if Duration::from_secs(u64::try_from(lock_seconds).unwrap_or(0)) > record {
        return Ok(());
    }
    anyhow::bail!(
        "idempotency.lock_timeout ({lock_seconds}s) must be longer than one record may hold its lock: {calls} AWS \
         calls of up to {} ms each ({}), {} s in all; otherwise another delivery of the same request could take \
         the lock over while this one is still sending. Set lock_timeout to {}s or more, or lower {}",
        aws_timeout.as_millis(),
        env::AWS_TIMEOUT_MS,
        record.as_secs_f64(),
        record.as_secs() + 1,
        env::AWS_TIMEOUT_MS,
    )
}

/// What every function's `main` does first: the system CA bundle named in
/// `SSL_CERT_FILE` ([`aws::ca_bundle`]: the roots are read once, not twice), then
/// [`init_logging`].
///
/// # Safety
/// It sets an environment variable: call it before any other thread is started (the
/// functions' `main`s run a current-thread runtime), as `std::env::set_var` requires.
pub unsafe fn init_process() {
    if let Some(bundle) = aws::system_ca_bundle() {
        // SAFETY: the caller's: no other thread reads the environment yet.
        unsafe { std::env::set_var("SSL_CERT_FILE", bundle) };
    }
    init_logging();
}

/// JSON logs on stdout (CloudWatch), filtered by `HERALD_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env(env::LOG)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second initialisation (tests) keeps the first.
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).without_time().try_init();
}

/// One SQS batch in, partial batch failures out.
pub struct Handler {
    pub pipeline: Pipeline,
    pub sink: Arc<dyn ReceiptSink>,
    /// Records processed at once.
    pub concurrency: usize,
    /// Each AWS call's timeout: with the deadline, how many records can still start.
    pub aws_timeout: Duration,
    /// Calls the sender makes before a send, counted in each record's budget.
    pub extra_calls_per_record: u32,
    pub on_invocation: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Handler {
    /// Processes a batch: every record ends in exactly one receipt, or is named in
    /// `batchItemFailures` for SQS to deliver again (not decided, not started before
    /// the deadline, or its terminal receipt could not be sent).
    pub async fn handle(&self, event: SqsEvent, deadline: Option<Instant>) -> SqsBatchResponse {
        if let Some(hook) = &self.on_invocation {
            hook();
        }
        let batch = event.records.into_iter().map(sqs::queued_request).collect();
        let budget = BatchBudget::with_extra_calls(deadline, self.aws_timeout, self.extra_calls_per_record);
        let result = self.pipeline.process_batch(batch, self.concurrency, self.sink.as_ref(), budget).await;
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = result
            .failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }
}
