//! The webhooks function: wiring only (see lib.rs).

use std::sync::Arc;

use anyhow::Context as _;
use aws_lambda_events::event::sqs::SqsEvent;
use herald::adapters::aws::{self, DynamoStore, SqsQueue, secret_text};
use herald::adapters::http::{AllowList, DEFAULT_MAX_BODY, GuardOptions, GuardedClient};
use herald::ports::SystemClock;
use herald_lambda::{env, records};
use herald_webhooks::{ALLOW_NETWORKS, DEAD_LETTER_QUEUE_URL, Dispatcher, RETRY_QUEUE_URL, SECRETS_ARN, parse_secrets};
use lambda_runtime::{LambdaEvent, service_fn};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    env::refuse_forbidden(herald_webhooks::SERVICE.env_vars)?;
    let settings = env::settings()?;
    let webhooks = settings.webhooks().clone();
    let table = env::required(env::TABLE)?;
    let secrets_arn = env::required(SECRETS_ARN)?;
    let retry_queue = env::required(RETRY_QUEUE_URL)?;
    let dead_letters = env::required(DEAD_LETTER_QUEUE_URL)?;
    let allow = AllowList::parse_list(&env::optional(ALLOW_NETWORKS).unwrap_or_default())
        .with_context(|| format!("{ALLOW_NETWORKS}: a comma-separated list of networks such as 127.0.0.0/8"))?;
    let concurrency = env::concurrency()?;
    let aws_timeout = env::aws_timeout()?;
    let sdk = aws::load_config(aws_timeout).await;
    let text = secret_text(&aws_sdk_secretsmanager::Client::new(&sdk), &secrets_arn).await?;
    let secrets = parse_secrets(&text, &webhooks.subscriptions)?;
    if webhooks.subscriptions.is_empty() {
        // Consuming receipts with nobody to give them to would delete them unseen.
        anyhow::bail!(
            "no [[webhooks.subscriptions]] in the configuration: add one, or let orchestrators read the receipts \
             queue (ReceiptsConsumer=orchestrator) instead of this function"
        );
    }
    if allow.is_empty()
        && let Some(plain) = webhooks.subscriptions.iter().find(|s| !s.url.starts_with("https://"))
    {
        anyhow::bail!("webhook subscription {}: its URL must be https://", plain.id);
    }
    let client = GuardedClient::new(GuardOptions { allow, timeout: webhooks.timeout, max_body: DEFAULT_MAX_BODY })?;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let dispatcher = Dispatcher::new(
        &webhooks,
        secrets,
        Arc::new(client),
        Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table)),
        Arc::new(SqsQueue::new(sqs.clone(), retry_queue)),
        Arc::new(SqsQueue::new(sqs, dead_letters)),
        Arc::new(SystemClock),
    );
    // One POST (all of a message's subscribers at once), then queueing its next step.
    let per_record = webhooks.timeout + aws_timeout * 3;
    tracing::info!(function = "webhooks", subscriptions = webhooks.subscriptions.len(), "ready");
    let dispatcher = &dispatcher;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = herald_lambda::sqs::deadline(event.context.deadline);
        dispatcher.new_invocation().await;
        let response =
            records::each_record(event.payload, concurrency, deadline, per_record, |r| dispatcher.handle(r)).await;
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}
