//! The batch loop of the functions that are not a channel (provider events, webhooks):
//! each SQS record handled on its own, a few at a time, none started too close to the
//! deadline, and only the records that should come again named in
//! `batchItemFailures`.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt as _;
use tracing::Instrument as _;

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Done with (including sent to a dead-letter queue on purpose): delete it.
    Done,
    /// Not done: SQS delivers it again after its visibility timeout.
    Retry,
}

/// The attribute of a dead-lettered message that says why.
pub const ERROR_ATTRIBUTE: &str = "herald-error";

/// Puts a message that can never succeed on a dead-letter queue at once, with the
/// reason as [`ERROR_ATTRIBUTE`] (the reason must name no address or token): done. If
/// the queue refuses it too, SQS delivers the message again: nothing is lost.
pub async fn dead_letter(queue: &dyn herald::ports::Queue, body: &str, reason: &str) -> Handled {
    match queue.send(body, Duration::ZERO, &[(ERROR_ATTRIBUTE, reason)]).await {
        Ok(()) => {
            tracing::error!(reason, "dead-lettered");
            Handled::Done
        }
        Err(e) => {
            tracing::error!(reason, error = %e, "cannot dead-letter; SQS delivers the message again");
            Handled::Retry
        }
    }
}

/// Runs `handle` on each record, `concurrency` at a time. A record is started only if
/// `per_record` still fits before `deadline`; the others are retried, not lost.
pub async fn each_record<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    deadline: Option<Instant>,
    per_record: Duration,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Handled>,
{
    let handle = &handle;
    if let Some(d) = deadline
        && Instant::now() + per_record > d
        && !event.records.is_empty()
    {
        // Not one record fits: every batch would come back until the DLQ took it.
        tracing::error!(
            per_record_ms = per_record.as_millis() as u64,
            "a record's time budget exceeds the invocation's: raise the function's timeout or lower \
             HERALD_AWS_TIMEOUT_MS (and webhooks.timeout)"
        );
    }
    let results: Vec<(String, Handled)> = futures_util::stream::iter(event.records)
        .map(|record| async move {
            let id = record.message_id.clone().unwrap_or_default();
            let late = deadline.is_some_and(|d| Instant::now() + per_record > d);
            if late {
                tracing::warn!(message_id = %id, "not started: too close to the deadline; SQS delivers it again");
                return (id, Handled::Retry);
            }
            let span = tracing::info_span!("record", message_id = %id);
            let handled = handle(record).instrument(span).await;
            (id, handled)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = results
        .into_iter()
        .filter(|(_, handled)| *handled == Handled::Retry)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(ids: &[&str]) -> SqsEvent {
        let records: Vec<serde_json::Value> =
            ids.iter().map(|id| serde_json::json!({"messageId": id, "body": "{}"})).collect();
        serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
    }

    fn failed(response: &SqsBatchResponse) -> Vec<String> {
        let mut ids: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        ids.sort();
        ids
    }

    #[tokio::test]
    async fn only_records_to_retry_are_named() {
        let response = each_record(event(&["a", "b", "c"]), 2, None, Duration::from_secs(1), |m| async move {
            if m.message_id.as_deref() == Some("b") { Handled::Retry } else { Handled::Done }
        })
        .await;
        assert_eq!(failed(&response), vec!["b"]);
    }

    #[tokio::test]
    async fn nothing_starts_past_the_deadline() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let deadline = Some(Instant::now() + Duration::from_millis(500));
        let response = each_record(event(&["a", "b"]), 2, deadline, Duration::from_secs(5), |_| async {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Handled::Done
        })
        .await;
        assert_eq!(started.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(failed(&response), vec!["a", "b"]);
    }
}
