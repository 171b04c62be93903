//! The email function: SQS delivery requests -> guard rails (DynamoDB) -> SES v2
//! -> receipts (SQS). Configuration comes from the environment (see README), the
//! unsubscribe key ring from Secrets Manager at cold start.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use herald::adapters::aws::{self, DynamoStore, SesSender, SqsReceiptSink, SqsScheduler};
use herald::pipeline::{Pipeline, Ports, Senders};
use herald::ports::{Clock, SystemClock};
use herald_email::config;
use lambda_runtime::{LambdaEvent, service_fn};

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

struct App {
    pipeline: Pipeline,
    sink: SqsReceiptSink,
    concurrency: usize,
    aws_timeout: std::time::Duration,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(config::LOG)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let cfg = config::FunctionConfig::from_env()?;
    let catalogue = Arc::new(cfg.catalogue(TEMPLATES)?);
    let sdk = aws::load_config(cfg.aws_timeout).await;
    // Before the first event: without its keys the function must not start at all.
    let keys = cfg.unsubscribe_keys(&aws_sdk_secretsmanager::Client::new(&sdk)).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), cfg.table.clone()));
    let ports = Ports {
        store,
        senders: Senders::email(Arc::new(SesSender::new(
            aws_sdk_sesv2::Client::new(&aws::provider_config(&sdk, cfg.aws_timeout)),
            cfg.configuration_set.clone(),
        ))),
        scheduler: Arc::new(SqsScheduler::new(sqs.clone(), cfg.request_queue_url.clone(), clock.clone())),
        clock,
    };
    let app = App {
        pipeline: Pipeline::new(catalogue, Arc::new(cfg.settings.with_unsubscribe_keys(keys)), ports),
        sink: SqsReceiptSink::new(sqs, cfg.receipts_queue_url),
        concurrency: cfg.concurrency,
        aws_timeout: cfg.aws_timeout,
    };
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = config::deadline(event.context.deadline);
        handle(app, event.payload, deadline).await
    }))
    .await
}

async fn handle(
    app: &App,
    event: SqsEvent,
    deadline: Option<std::time::Instant>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    let batch = event.records.into_iter().map(config::queued_request).collect();
    let budget = herald::pipeline::BatchBudget::for_timeout(deadline, app.aws_timeout);
    let result = app.pipeline.process_batch(batch, app.concurrency, &app.sink, budget).await;
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
    Ok(response)
}
