//! SQS: deferrals (re-enqueue with a delay, chained past SQS's 15-minute maximum),
//! receipts out (`SendMessageBatch`), and `enqueue` for upstream users.

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use jiff::Timestamp;

use crate::ports::{Clock, ReceiptSink, Scheduler, StoreError};
use crate::receipt::Receipt;
use crate::request::DeliveryRequest;

/// Message attribute: transient failures seen so far (embedded-style retry budget).
pub const ATTEMPT_ATTRIBUTE: &str = "herald-attempt";
/// Message attribute: do not process before this RFC 3339 instant. Delays longer
/// than SQS's 900 s maximum hop through the queue until then, without a receipt.
pub const NOT_BEFORE_ATTRIBUTE: &str = "herald-not-before";
/// Message attribute: where the request first came from.
pub const SOURCE_ATTRIBUTE: &str = "herald-source";

const MAX_DELAY_SECONDS: i64 = 900;

fn string_attr(v: &str) -> Result<MessageAttributeValue, StoreError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .map_err(|e| StoreError::new(format!("sqs attribute: {e}")))
}

fn sqs_error<E: std::fmt::Debug>(what: &str, e: E) -> StoreError {
    StoreError::new(format!("sqs {what}: {e:?}"))
}

/// Re-enqueues deferred requests on the request queue.
pub struct SqsScheduler {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    clock: std::sync::Arc<dyn Clock>,
}

impl SqsScheduler {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, clock: std::sync::Arc<dyn Clock>) -> Self {
        SqsScheduler { client, queue_url, clock }
    }
}

#[async_trait]
impl Scheduler for SqsScheduler {
    async fn defer(
        &self,
        request: &DeliveryRequest,
        until: Timestamp,
        attempt: u32,
        source: Option<&str>,
    ) -> Result<(), StoreError> {
        // Round up: a message must not surface before `until`, or it would be
        // deferred again. `not_before` rides along so an early arrival (clock skew,
        // a chained hop) is re-enqueued silently instead of producing a receipt.
        let wait_ms = until.as_millisecond().saturating_sub(self.clock.now().as_millisecond()).max(0);
        let delay = ((wait_ms + 999) / 1000).min(MAX_DELAY_SECONDS);
        let mut send = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(request.to_json())
            .delay_seconds(delay as i32)
            .message_attributes(
                ATTEMPT_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value(attempt.to_string())
                    .build()
                    .map_err(|e| StoreError::new(format!("sqs attribute: {e}")))?,
            )
            .message_attributes(NOT_BEFORE_ATTRIBUTE, string_attr(&until.to_string())?);
        if let Some(s) = source {
            send = send.message_attributes(SOURCE_ATTRIBUTE, string_attr(s)?);
        }
        send.send().await.map_err(|e| sqs_error("SendMessage", e))?;
        Ok(())
    }
}

/// Sends receipts to the receipts queue, ten per `SendMessageBatch`.
pub struct SqsReceiptSink {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsReceiptSink {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        SqsReceiptSink { client, queue_url }
    }
}

#[async_trait]
impl ReceiptSink for SqsReceiptSink {
    async fn emit(&self, receipts: &[Receipt]) -> Result<(), StoreError> {
        let bodies: Vec<String> = receipts.iter().map(Receipt::to_json).collect();
        send_batches(&self.client, &self.queue_url, &bodies).await
    }
}

/// Sends bodies in batches of ten, retrying entries SQS reports as failed.
async fn send_batches(client: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Result<(), StoreError> {
    for chunk in bodies.chunks(10) {
        let mut pending: Vec<(usize, &String)> = chunk.iter().enumerate().collect();
        for round in 0..3 {
            let entries = pending
                .iter()
                .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*body).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::new(format!("sqs batch entry: {e}")))?;
            let out = client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sqs_error("SendMessageBatch", e))?;
            let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
            if let Some(permanent) = out.failed().iter().find(|f| f.sender_fault()) {
                return Err(StoreError::new(format!(
                    "sqs SendMessageBatch refused an entry: {} {}",
                    permanent.code(),
                    permanent.message().unwrap_or("")
                )));
            }
            pending.retain(|(i, _)| failed.contains(&i.to_string().as_str()));
            if pending.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
        }
        if !pending.is_empty() {
            return Err(StoreError::new(format!("sqs SendMessageBatch: {} entries still failing", pending.len())));
        }
    }
    Ok(())
}

/// Puts raw request bodies on a request queue (`herald enqueue`). Bodies are sent
/// as given: validation happens in the function, which answers with receipts.
pub async fn enqueue(client: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Result<(), StoreError> {
    send_batches(client, queue_url, bodies).await
}
