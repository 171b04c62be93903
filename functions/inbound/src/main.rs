//! The inbound function: herald's public HTTPS endpoints behind a Function URL
//! (one-click unsubscribe, SNS HTTP/S subscriptions). Configuration comes from the
//! environment (see `config`); the unsubscribe key ring from Secrets Manager at cold start.

use std::sync::Arc;

use anyhow::Context as _;
use herald::adapters::aws::{self, DynamoStore, SqsQueue, SqsReceiptSink};
use herald::ports::{Clock, SystemClock};
use herald_inbound::config::{self, Config};
use herald_inbound::https::HttpsGet;
use herald_inbound::{Inbound, SnsEndpoint, Unsubscribe, lambda};
use lambda_http::service_fn;

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    let config = Config::from_env()?;
    let sdk = aws::load_config(config.aws_timeout).await;
    // Before the first request: without its keys the function must not start at all.
    let keys = aws::unsubscribe_keys(&aws_sdk_secretsmanager::Client::new(&sdk), &config.unsubscribe_secret_arn)
        .await
        .with_context(|| format!("cannot read the unsubscribe key ring named by {}", config::UNSUBSCRIBE_SECRET_ARN))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table.clone()));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = Arc::new(SqsReceiptSink::new(sqs.clone(), config.receipts_queue_url.clone()));
    let unsubscribe = Unsubscribe::new(keys, store.clone(), store.clone(), events, clock.clone());
    let sns = match &config.sns {
        Some(sns) => {
            let https = Arc::new(HttpsGet::new().map_err(anyhow::Error::msg)?);
            let queue = Arc::new(SqsQueue::new(sqs, sns.queue_url.clone()));
            Some(SnsEndpoint::new(sns.topic_arns.clone(), queue, store, https.clone(), https, clock))
        }
        None => None,
    };
    tracing::info!(function = "inbound", sns = config.sns.is_some(), "ready");
    let inbound = &Inbound::new(unsubscribe, sns);
    lambda_http::run(service_fn(move |event: lambda_http::Request| async move {
        Ok::<_, lambda_http::Error>(lambda::response(inbound.handle(lambda::request(&event)).await))
    }))
    .await
}
