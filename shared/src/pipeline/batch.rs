//! One SQS batch in, partial batch failures out.
//!
//! Records are processed concurrently (bounded), each started only if it can finish
//! before the invocation's deadline with time left to send the receipts; the rest
//! are handed back untouched. Their receipts go out together, grouped by bytes.
//! Only two kinds of record are reported back for redelivery: those that were not
//! decided (a transient failure, a retry the guarantee asks for, not started) and
//! those whose *terminal* receipt could not be delivered, which the redelivery
//! re-emits from the idempotency record. A deferred record is never re-run: its
//! next hop is already on the queue, and running it again would start a second chain.
//! A record whose `not_before` lies ahead is re-enqueued for the next hop of a long
//! delay, silently: its `deferred` receipt went out when it was first deferred.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jiff::Timestamp;
use tracing::Instrument;

use super::{MAX_ATTEMPTS, Outcome, Pipeline};
use crate::ports::ReceiptSink;
use crate::receipt::{Reason, Receipt};
use crate::request::DeliveryRequest;

/// One queued request as the function receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedRequest {
    /// The queue's message id: what a batch failure names.
    pub message_id: String,
    pub body: String,
    /// Failed attempts so far: those carried by earlier deferral hops plus this
    /// message's earlier receives (each one ended without a decision).
    pub attempt: u32,
    /// Do not process before this instant (long delays chained through the queue).
    pub not_before: Option<Timestamp>,
    /// When this message was first put on the queue (SQS `SentTimestamp`).
    pub enqueued_at: Option<Timestamp>,
    /// Where the request came from, for receipts.
    pub source: Option<String>,
}

/// How much time a batch may use. Without a deadline every record is started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchBudget {
    /// When the invocation is cut off.
    pub deadline: Option<Instant>,
    /// The longest one record can take (the sum of its calls' timeouts).
    pub per_record: Duration,
    /// Kept for sending the batch's receipts.
    pub emit: Duration,
}

/// The AWS calls one record makes one after another, counted as the budget: the
/// suppression read, admission (and a takeover, or a repeat of an ambiguous one), the
/// send, recording the outcome (5: with DynamoDB's batched outcomes, the batch before
/// it waited for, its own batch, then alone; and 2 retries, alone), and a deferral or
/// final record. Conflict retries (with DynamoDB, a cap list that changed under its
/// whole write: one more update, at once), slot releases and the takeover of a dead
/// attempt's lock (two more calls) are short and rare: this is a bound in practice, not a
/// proof. A refused record (suppressed, unsubscribed) also confirms its refusal with a
/// second read, but sends nothing: far under the count.
pub const CALLS_PER_RECORD: u32 = 11;

/// Sending a batch's receipts: up to 3 rounds, then the minimal forms.
pub const CALLS_PER_EMIT: u32 = 3;

impl BatchBudget {
    /// The budget of a function whose every AWS call times out after `aws_timeout`, and
    /// whose sender makes `extra` calls of its own before the send (the SMS function's
    /// opt-out check; 0 for most).
    pub fn with_extra_calls(deadline: Option<Instant>, aws_timeout: Duration, extra: u32) -> Self {
        let calls = CALLS_PER_RECORD.saturating_add(extra);
        BatchBudget { deadline, per_record: aws_timeout * calls, emit: aws_timeout * CALLS_PER_EMIT }
    }

    /// The longest a batch can run when records start at once: what the function's
    /// timeout must exceed.
    pub fn total(&self) -> Duration {
        self.per_record + self.emit
    }

    /// Whether a record started now would finish, receipts included, in time.
    fn can_start(&self) -> bool {
        self.deadline.is_none_or(|d| Instant::now() + self.per_record + self.emit <= d)
    }
}

/// What the function answers for a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchResult {
    /// Message ids to report as `batchItemFailures`.
    pub failed: Vec<String>,
    /// Receipts emitted for this batch (those that failed to go out included).
    pub receipts: Vec<Receipt>,
    /// Records handed back without being started (the deadline was near).
    pub not_started: usize,
}

enum RecordResult {
    Receipt(String, Box<Receipt>),
    Retry(String),
    NotStarted(String),
    Hop,
}

impl Pipeline {
    pub async fn process_batch(
        &self,
        batch: Vec<QueuedRequest>,
        concurrency: usize,
        sink: &dyn ReceiptSink,
        budget: BatchBudget,
    ) -> BatchResult {
        let results: Vec<RecordResult> = futures_util::stream::iter(batch)
            .map(|record| async move {
                if !budget.can_start() {
                    return RecordResult::NotStarted(record.message_id);
                }
                self.process_record(record).await
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut out = BatchResult::default();
        let mut receipt_messages = Vec::new();
        for r in results {
            match r {
                RecordResult::Receipt(id, receipt) => {
                    receipt_messages.push(id);
                    out.receipts.push(*receipt);
                }
                RecordResult::Retry(id) => out.failed.push(id),
                RecordResult::NotStarted(id) => {
                    out.not_started += 1;
                    out.failed.push(id);
                }
                RecordResult::Hop => {}
            }
        }
        if out.not_started > 0 {
            tracing::warn!(records = out.not_started, "deadline near: records handed back unstarted");
        }
        if !out.receipts.is_empty()
            && let Err(e) = sink.emit(&out.receipts).await
        {
            for i in e.failed.iter().copied() {
                let (Some(receipt), Some(message)) = (out.receipts.get(i), receipt_messages.get(i)) else { continue };
                if receipt.status.is_terminal() {
                    // The outcome is recorded: the redelivery re-emits it.
                    out.failed.push(message.clone());
                } else {
                    tracing::error!(
                        receipt_id = %receipt.receipt_id,
                        "a deferred receipt could not be delivered; the request is scheduled and its terminal receipt will follow"
                    );
                }
            }
            tracing::error!(error = %e, "receipts could not be sent; their records will be redelivered");
        }
        for r in &out.receipts {
            tracing::info!(
                request_id = r.request_id.as_deref().unwrap_or("-"),
                receipt_id = %r.receipt_id,
                status = %r.status,
                reason = r.reason.as_deref().unwrap_or(""),
                "receipt"
            );
        }
        out
    }

    async fn process_record(&self, record: QueuedRequest) -> RecordResult {
        let source = record.source.as_deref().or(Some(record.message_id.as_str()));
        let request = match DeliveryRequest::from_json(&record.body) {
            Ok(request) => request,
            Err(e) => {
                let receipt = self.rejected_input(&record.body, &e, source);
                return RecordResult::Receipt(record.message_id, Box::new(receipt));
            }
        };
        let span = tracing::info_span!("record", message_id = %record.message_id, request_id = %request.id.as_str());
        self.process_parsed(record, request).instrument(span).await
    }

    async fn process_parsed(&self, record: QueuedRequest, request: DeliveryRequest) -> RecordResult {
        let source = record.source.as_deref().or(Some(record.message_id.as_str()));
        let now = self.now();
        if let Some(enqueued) = record.enqueued_at
            && now.duration_since(enqueued) > self.settings.policy.max_message_age()
        {
            // Older than idempotency can vouch for: an earlier attempt's record may be
            // gone, and sending could repeat a message (a late DLQ redrive).
            let detail = format!(
                "queued at {enqueued}, longer ago than idempotency.retention minus twice the lock timeout; not sent"
            );
            let outcome = self.give_up(&request, Reason::StaleMessage, &detail, source).await;
            return self.result(record.message_id, outcome);
        }
        if record.attempt >= MAX_ATTEMPTS {
            let outcome = self.exhausted(&request, "redelivered without a decision", record.attempt, source).await;
            return self.result(record.message_id, outcome);
        }
        if let Some(not_before) = record.not_before
            && not_before > now
        {
            return match self.ports.scheduler.defer(&request, not_before, record.attempt, source).await {
                Ok(()) => RecordResult::Hop,
                Err(e) => {
                    tracing::warn!(error = %e, "could not re-enqueue a delayed request");
                    RecordResult::Retry(record.message_id)
                }
            };
        }
        let outcome = match self.process(request, record.attempt, source).await {
            // Out of attempts: end it here, with its receipt, rather than in the DLQ.
            Outcome::Retry { request, error, attempt } if attempt + 1 >= MAX_ATTEMPTS => {
                self.exhausted(&request, &error, attempt + 1, source).await
            }
            other => other,
        };
        self.result(record.message_id, outcome)
    }

    fn result(&self, message_id: String, outcome: Outcome) -> RecordResult {
        match outcome {
            Outcome::Receipt(r) => RecordResult::Receipt(message_id, Box::new(r)),
            Outcome::Retry { .. } => RecordResult::Retry(message_id),
        }
    }
}
