//! SQS: deferrals (re-enqueue with a delay, chained past SQS's 15-minute maximum),
//! receipts out (`SendMessageBatch`), and `enqueue` for upstream users.

use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use jiff::Timestamp;

use crate::ports::{Clock, EmitError, EventSink, ReceiptSink, Scheduler, StoreError};
use crate::receipt::Receipt;
use crate::receipt::event::DeliveryEvent;
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

/// Sends receipts to the receipts queue.
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
impl EventSink for SqsReceiptSink {
    /// Events are bounded when built (see `DeliveryEvent::bounded`).
    async fn emit_events(&self, events: &[DeliveryEvent]) -> Result<(), EmitError> {
        let bodies: Vec<String> = events.iter().map(DeliveryEvent::to_json).collect();
        let failures = send_all(&self.client, &self.queue_url, &bodies).await;
        if failures.is_empty() {
            return Ok(());
        }
        let message = failures.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ");
        Err(EmitError { failed: failures.into_iter().map(|f| f.index).collect(), message })
    }
}

/// One SQS queue as a [`Queue`](crate::ports::Queue).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        SqsQueue { client, queue_url: queue_url.into() }
    }
}

#[async_trait]
impl crate::ports::Queue for SqsQueue {
    async fn send(
        &self,
        body: &str,
        delay: std::time::Duration,
        attributes: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        send_message(&self.client, &self.queue_url, body, delay, attributes).await
    }
}

/// Sends one message, held `delay` first (at most SQS's 15 minutes), with string
/// attributes: webhook retries and dead letters.
pub async fn send_message(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    body: &str,
    delay: std::time::Duration,
    attributes: &[(&str, &str)],
) -> Result<(), StoreError> {
    // Rounded up: a message must not surface before it is due.
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    let delay = i32::try_from(seconds.min(MAX_DELAY_SECONDS as u64)).unwrap_or(0);
    let mut send = client.send_message().queue_url(queue_url).message_body(body).delay_seconds(delay);
    for (name, value) in attributes {
        send = send.message_attributes(*name, string_attr(value)?);
    }
    send.send().await.map_err(|e| sqs_error("SendMessage", e))?;
    Ok(())
}

/// SQS's limits: 10 entries and 256 KiB per `SendMessageBatch`, 256 KiB per message
/// (the classic figures; queues allowing 1 MiB accept these too).
const BATCH_ENTRIES: usize = 10;
const BATCH_BYTES: usize = 256 * 1024;
const MESSAGE_BYTES: usize = 256 * 1024;

#[async_trait]
impl ReceiptSink for SqsReceiptSink {
    /// Receipts are bounded when built, so none should exceed a message; one that
    /// does, or that SQS refuses, is replaced by its minimal form (id, status,
    /// reason) rather than lost or allowed to fail its neighbours.
    async fn emit(&self, receipts: &[Receipt]) -> Result<(), EmitError> {
        let mut bodies: Vec<String> = receipts
            .iter()
            .map(|r| {
                let json = r.to_json();
                if json.len() > MESSAGE_BYTES { r.minimal().to_json() } else { json }
            })
            .collect();
        let mut failures = send_all(&self.client, &self.queue_url, &bodies).await;
        let refused: Vec<usize> = failures.iter().filter(|f| f.refused).map(|f| f.index).collect();
        if !refused.is_empty() {
            for &i in &refused {
                if let Some(r) = receipts.get(i) {
                    bodies[i] = r.minimal().to_json();
                }
            }
            let retry: Vec<String> = refused.iter().map(|&i| bodies[i].clone()).collect();
            let again = send_all(&self.client, &self.queue_url, &retry).await;
            failures.retain(|f| !f.refused);
            failures.extend(again.into_iter().map(|f| Failed { index: refused[f.index], ..f }));
        }
        if failures.is_empty() {
            return Ok(());
        }
        let message = failures.first().map(|f| f.message.clone()).unwrap_or_default();
        Err(EmitError { failed: failures.into_iter().map(|f| f.index).collect(), message })
    }
}

/// One body that did not go out.
struct Failed {
    index: usize,
    /// SQS refused the entry itself (sender fault): sending it again unchanged fails again.
    refused: bool,
    message: String,
}

/// Groups of indices that fit one `SendMessageBatch` each.
fn batches(bodies: &[String]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut bytes = 0;
    for (i, body) in bodies.iter().enumerate() {
        let full = groups.last().is_none_or(|g| g.len() == BATCH_ENTRIES || bytes + body.len() > BATCH_BYTES);
        if full {
            groups.push(Vec::new());
            bytes = 0;
        }
        if let Some(g) = groups.last_mut() {
            g.push(i);
        }
        bytes += body.len();
    }
    groups
}

/// Groups sent at once by [`send_all`]: enough that an invocation's receipts or events
/// go out in about one call's time, bounded for `herald enqueue`'s thousands.
const GROUPS_AT_ONCE: usize = 8;

/// Sends every body, retrying entries SQS failed on its side; returns those that
/// still did not go out. The groups go out [`GROUPS_AT_ONCE`] at a time, so that many
/// bodies take about as long as one group; one failed group does not stop the others.
async fn send_all(client: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Vec<Failed> {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(batches(bodies))
        .map(|group| send_group(client, queue_url, bodies, group))
        .buffer_unordered(GROUPS_AT_ONCE)
        .collect::<Vec<Vec<Failed>>>()
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One group, in up to 3 rounds (the entries SQS failed on its side sent again).
async fn send_group(
    client: &aws_sdk_sqs::Client,
    queue_url: &str,
    bodies: &[String],
    group: Vec<usize>,
) -> Vec<Failed> {
    let mut failures = Vec::new();
    let mut pending = group;
    let mut last_error = String::new();
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(50 << (round - 1))).await;
        }
        let entries = pending
            .iter()
            .map(|&i| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(&bodies[i]).build())
            .collect::<Result<Vec<_>, _>>();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => {
                last_error = format!("sqs batch entry: {e}");
                break;
            }
        };
        let sent = client.send_message_batch().queue_url(queue_url).set_entries(Some(entries)).send().await;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                // The SDK already retried; the whole group stays undelivered.
                last_error = sqs_error("SendMessageBatch", e).to_string();
                break;
            }
        };
        let mut retry = Vec::new();
        for f in out.failed() {
            let Some(i) = f.id().parse::<usize>().ok().filter(|i| pending.contains(i)) else { continue };
            let message = format!("sqs SendMessageBatch: {} {}", f.code(), f.message().unwrap_or(""));
            if f.sender_fault() {
                failures.push(Failed { index: i, refused: true, message });
            } else {
                last_error = message;
                retry.push(i);
            }
        }
        pending = retry;
        if pending.is_empty() {
            break;
        }
    }
    failures.extend(pending.into_iter().map(|index| Failed { index, refused: false, message: last_error.clone() }));
    failures
}

/// Puts raw request bodies on a request queue (`herald enqueue`). Bodies are sent
/// as given: validation happens in the function, which answers with receipts.
pub async fn enqueue(client: &aws_sdk_sqs::Client, queue_url: &str, bodies: &[String]) -> Result<(), StoreError> {
    let failures = send_all(client, queue_url, bodies).await;
    match failures.first() {
        None => Ok(()),
        Some(f) => Err(StoreError::new(format!("{} of {} not enqueued: {}", failures.len(), bodies.len(), f.message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_count_and_bytes() {
        let small: Vec<String> = (0..25).map(|_| "x".repeat(10)).collect();
        assert_eq!(batches(&small).iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100 * 1024)).collect();
        assert_eq!(batches(&big).iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert!(batches(&[]).is_empty());
    }
}
