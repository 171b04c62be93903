//! SQS records and the Lambda deadline, as the pipeline takes them.

use aws_lambda_events::event::sqs::SqsMessage;
use herald::adapters::aws::{ATTEMPT_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SOURCE_ATTRIBUTE};
use herald::pipeline::QueuedRequest;

/// An SQS record as a queued request. Attempts count across redeliveries: the
/// hops' own count plus this message's earlier receives, each of which ended
/// without a decision (a transient failure, a crash, the deadline).
pub fn queued_request(message: SqsMessage) -> QueuedRequest {
    let attr = |name: &str| message.message_attributes.get(name).and_then(|a| a.string_value.clone());
    let system = |name: &str| message.attributes.get(name).and_then(|v| v.parse::<i64>().ok());
    let hops: u32 = attr(ATTEMPT_ATTRIBUTE).and_then(|v| v.parse().ok()).unwrap_or(0);
    let receives = system("ApproximateReceiveCount").and_then(|n| u32::try_from(n).ok()).unwrap_or(1);
    QueuedRequest {
        message_id: message.message_id.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        attempt: hops.saturating_add(receives.saturating_sub(1)),
        not_before: attr(NOT_BEFORE_ATTRIBUTE).and_then(|v| v.parse().ok()),
        enqueued_at: sent_at(&message),
        source: attr(SOURCE_ATTRIBUTE).or_else(|| message.message_id.clone().map(|id| format!("sqs:{id}"))),
    }
}

/// When SQS received the message (`SentTimestamp`).
pub fn sent_at(message: &SqsMessage) -> Option<jiff::Timestamp> {
    let ms = message.attributes.get("SentTimestamp")?.parse::<i64>().ok()?;
    jiff::Timestamp::from_millisecond(ms).ok()
}

/// The invocation's deadline (epoch milliseconds, from the Runtime API) as an instant;
/// one already past is now (start nothing), not "no deadline".
pub fn deadline(deadline_ms: u64) -> Option<std::time::Instant> {
    let now = std::time::Instant::now();
    let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).ok()?;
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(now.checked_add(left).unwrap_or(now))
}
