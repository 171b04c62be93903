//! One SQS batch in, partial batch failures out.
//!
//! Records are processed concurrently (bounded). Their receipts go out together
//! (one `SendMessageBatch` per ten). Only transient failures are reported back, so
//! SQS redelivers just those after the visibility timeout; a permanent failure has
//! a receipt and is done. A record whose `not_before` lies ahead is re-enqueued
//! for the next hop of a long delay, silently: its `deferred` receipt was already
//! sent when it was first deferred.

use futures_util::StreamExt;
use jiff::Timestamp;

use super::{Outcome, Pipeline};
use crate::ports::ReceiptSink;
use crate::receipt::Receipt;
use crate::request::DeliveryRequest;

/// One queued request as the function receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRequest {
    /// The queue's message id: what a batch failure names.
    pub message_id: String,
    pub body: String,
    /// Transient failures seen by earlier deferral hops.
    pub attempt: u32,
    /// Do not process before this instant (long delays chained through the queue).
    pub not_before: Option<Timestamp>,
    /// Where the request came from, for receipts.
    pub source: Option<String>,
}

/// What the function answers for a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// Message ids to report as `batchItemFailures`.
    pub failed: Vec<String>,
    /// Receipts emitted for this batch.
    pub receipts: Vec<Receipt>,
}

enum RecordResult {
    Receipt(String, Box<Receipt>),
    Retry(String),
    Hop,
}

impl Pipeline {
    pub async fn process_batch(
        &self,
        batch: Vec<QueuedRequest>,
        concurrency: usize,
        sink: &dyn ReceiptSink,
    ) -> BatchResult {
        let results: Vec<RecordResult> = futures_util::stream::iter(batch)
            .map(|record| self.process_record(record))
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut out = BatchResult::default();
        let mut with_receipts = Vec::new();
        for r in results {
            match r {
                RecordResult::Receipt(id, receipt) => {
                    let receipt = *receipt;
                    with_receipts.push(id);
                    out.receipts.push(receipt);
                }
                RecordResult::Retry(id) => out.failed.push(id),
                RecordResult::Hop => {}
            }
        }
        if !out.receipts.is_empty()
            && let Err(e) = sink.emit(&out.receipts).await
        {
            // The outcomes are recorded: a redelivery answers `duplicate` with the
            // original provider message id, so no receipt is lost for good.
            tracing::error!(error = %e, "receipts could not be sent; the records will be redelivered");
            out.failed.extend(with_receipts);
        }
        for r in &out.receipts {
            tracing::info!(
                request_id = r.request_id.as_deref().unwrap_or("-"),
                status = %r.status,
                reason = r.reason.as_deref().unwrap_or(""),
                "receipt"
            );
        }
        out
    }

    async fn process_record(&self, record: QueuedRequest) -> RecordResult {
        let source = record.source.as_deref().or(Some(record.message_id.as_str()));
        let outcome = match DeliveryRequest::from_json(&record.body) {
            Ok(request) => {
                if let Some(not_before) = record.not_before
                    && not_before > self.now()
                {
                    return match self.ports.scheduler.defer(&request, not_before, record.attempt, source).await {
                        Ok(()) => RecordResult::Hop,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not re-enqueue a delayed request");
                            RecordResult::Retry(record.message_id)
                        }
                    };
                }
                self.process(request, record.attempt, source).await
            }
            // Not a valid request: `process_json` turns the same body into its `rejected` receipt.
            Err(_) => self.process_json(&record.body, source).await,
        };
        match outcome {
            Outcome::Receipt(r) => RecordResult::Receipt(record.message_id, Box::new(r)),
            Outcome::Retry { .. } => RecordResult::Retry(record.message_id),
        }
    }
}
