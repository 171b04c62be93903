//! The provider-events function: wiring only (see lib.rs).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::SqsEvent;
use herald::adapters::aws::{self, DynamoStore, SqsQueue, SqsReceiptSink};
use herald::ports::SystemClock;
use herald_events::{ARCHIVE_DAYS, CALLS_PER_RECORD, DEAD_LETTER_QUEUE_URL, DEFAULT_ARCHIVE_DAYS, EventsHandler};
use herald_lambda::env;
use lambda_runtime::{LambdaEvent, service_fn};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    env::refuse_forbidden(herald_events::SERVICE.env_vars)?;
    let table = env::required(env::TABLE)?;
    let receipts = env::required(env::RECEIPTS_QUEUE_URL)?;
    let dead_letters = env::required(DEAD_LETTER_QUEUE_URL)?;
    let days = env::optional(ARCHIVE_DAYS)
        .map(|v| v.trim().parse::<i64>().with_context(|| format!("{ARCHIVE_DAYS} must be a whole number of days")))
        .transpose()?
        .unwrap_or(DEFAULT_ARCHIVE_DAYS);
    if !(0..=3650).contains(&days) {
        anyhow::bail!("{ARCHIVE_DAYS} must be between 0 and 3650");
    }
    let concurrency = env::concurrency()?;
    let timeout = env::aws_timeout()?;
    let sdk = aws::load_config(timeout).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table));
    let handler = EventsHandler {
        store: store.clone(),
        events: store,
        sink: Arc::new(SqsReceiptSink::new(sqs.clone(), receipts)),
        dead_letters: Arc::new(SqsQueue::new(sqs, dead_letters)),
        clock: Arc::new(SystemClock),
        archive_for: (days > 0).then(|| jiff::SignedDuration::from_hours(days * 24)),
    };
    let per_record: Duration = timeout * CALLS_PER_RECORD;
    tracing::info!(function = "events", "ready");
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = herald_lambda::sqs::deadline(event.context.deadline);
        let response = handler.handle_batch(event.payload, concurrency, deadline, per_record).await;
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
