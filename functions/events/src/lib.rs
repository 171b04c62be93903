//! The provider-events function: what SES and SNS report after a send (deliveries,
//! bounces, complaints, opens, clicks, SMS delivery status, STOP and START replies)
//! arrives on the provider-events queue, raw or in its SNS envelope. Each message is
//! read once ([`herald::receipt::provider`]) into delivery events and effects:
//!
//! 1. effects first: a permanent bounce or a complaint suppresses the address (on the
//!    tenant's own list when the message had a tenant), a STOP records an opt-out, a
//!    START lifts it;
//! 2. the request's delivery status moves forward (never back: a late `delivered`
//!    leaves `bounced`);
//! 3. the provider's payload is archived in the state table (it names addresses, so it
//!    goes nowhere else);
//! 4. the events go out on the receipt stream, for the webhooks: those of all the
//!    invocation's messages together, one `SendMessageBatch` per 10 events.
//!
//! Every step is idempotent, so a message that fails half-way is simply delivered again
//! by SQS. A message that can never be read goes to the dead-letter queue at once, with
//! the reason as an attribute, instead of failing five times first.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use herald::ports::{Clock, EventSink, EventStore, Queue, StateStore, StoreError, SuppressionEntry};
use herald::receipt::event::DeliveryEvent;
use herald::receipt::provider::{self, Effect, ProviderEvent, ProviderEventError};
use herald::request::{IdempotencyKey, RequestId, TenantId};
use herald_lambda::Need;
use herald_lambda::records::{self, Handled};
use jiff::{SignedDuration, Timestamp};

/// The queue of messages that cannot be read: they are sent there at once.
pub const DEAD_LETTER_QUEUE_URL: &str = "HERALD_EVENTS_DLQ_URL";
/// How many days provider payloads are kept in the state table; `0` keeps none.
pub const ARCHIVE_DAYS: &str = "HERALD_EVENT_ARCHIVE_DAYS";
pub const DEFAULT_ARCHIVE_DAYS: i64 = 30;
pub use herald_lambda::records::ERROR_ATTRIBUTE;

/// The function as the deployment template must configure it.
pub const SERVICE: herald_lambda::Service = herald_lambda::Service {
    name: "events",
    env_vars: &[
        (herald_lambda::env::UNSUBSCRIBE_SECRET, Need::Forbidden),
        (herald_lambda::env::TABLE, Need::Required),
        (herald_lambda::env::RECEIPTS_QUEUE_URL, Need::Required),
        (DEAD_LETTER_QUEUE_URL, Need::Required),
        (ARCHIVE_DAYS, Need::Optional),
        (herald_lambda::env::CONCURRENCY, Need::Optional),
        (herald_lambda::env::AWS_TIMEOUT_MS, Need::Optional),
        (herald_lambda::env::LOG, Need::Optional),
    ],
    aws_adapters: &["dynamo", "sqs"],
};

/// AWS calls one record makes at most, in a row: for its event (a bounce of several
/// recipients gives several) an effect, the status and the archive, then the
/// invocation's emit (its SQS batches sent at once, up to 3 rounds), after the last
/// record. Sizes the per-record time budget; a record of many events
/// takes longer, and an unfinished one is simply retried.
pub const CALLS_PER_RECORD: u32 = 6;

pub struct EventsHandler {
    pub store: Arc<dyn StateStore>,
    pub events: Arc<dyn EventStore>,
    pub sink: Arc<dyn EventSink>,
    pub dead_letters: Arc<dyn Queue>,
    pub clock: Arc<dyn Clock>,
    /// How long provider payloads are kept; None keeps none.
    pub archive_for: Option<SignedDuration>,
}

/// What reading and applying one queue message left to do.
pub enum Applied {
    /// Its state changes are made: these events go out on the receipt stream.
    Emit(Vec<DeliveryEvent>),
    /// Nothing to emit: done, dead-lettered, or to be retried.
    Handled(Handled),
}

impl EventsHandler {
    /// One invocation: every record read and applied (`concurrency` at a time, none
    /// started too close to the deadline), then the events of all of them in one emit
    /// (one `SendMessageBatch` per 10 events, not one per record). A record whose events
    /// did not all go out is named in `batchItemFailures`: SQS delivers it again, its
    /// state changes are idempotent, and its events keep their ids.
    pub async fn handle_batch(
        &self,
        event: SqsEvent,
        concurrency: usize,
        deadline: Option<std::time::Instant>,
        per_record: std::time::Duration,
    ) -> SqsBatchResponse {
        let pending: std::sync::Mutex<Vec<(String, Vec<DeliveryEvent>)>> = std::sync::Mutex::default();
        let mut response = records::each_record(event, concurrency, deadline, per_record, |record| {
            let pending = &pending;
            async move {
                match self.apply_record(&record).await {
                    Applied::Handled(handled) => handled,
                    // Done unless the emit below fails.
                    Applied::Emit(events) => {
                        let id = record.message_id.unwrap_or_default();
                        pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((id, events));
                        Handled::Done
                    }
                }
            }
        })
        .await;
        let pending = pending.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (mut all, mut owner) = (Vec::new(), Vec::new());
        for (i, (_, events)) in pending.iter().enumerate() {
            all.extend(events.iter().cloned());
            owner.extend(std::iter::repeat_n(i, events.len()));
        }
        if all.is_empty() {
            return response;
        }
        let failed: std::collections::BTreeSet<usize> = match self.sink.emit_events(&all).await {
            Ok(()) => Default::default(),
            // A failure that names no event, or one that is not there: none is known sent.
            Err(e) if e.failed.is_empty() || e.failed.iter().any(|i| *i >= owner.len()) => (0..pending.len()).collect(),
            Err(e) => e.failed.iter().filter_map(|i| owner.get(*i).copied()).collect(),
        };
        if !failed.is_empty() {
            let messages: Vec<&str> =
                failed.iter().filter_map(|i| pending.get(*i)).map(|(id, _)| id.as_str()).collect();
            tracing::warn!(?messages, "events not emitted; SQS delivers these messages again");
        }
        for (i, (id, events)) in pending.iter().enumerate() {
            if failed.contains(&i) {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                response.batch_item_failures.push(failure);
            } else {
                for e in events {
                    tracing::info!(event = %e.event, event_id = %e.event_id, request_id = e.request_id.as_deref().unwrap_or("-"), "event");
                }
            }
        }
        response
    }

    /// One queue message on its own, as an invocation of one record.
    pub async fn handle(&self, record: SqsMessage) -> Handled {
        let mut event = SqsEvent::default();
        event.records = vec![record];
        let response = self.handle_batch(event, 1, None, std::time::Duration::ZERO).await;
        if response.batch_item_failures.is_empty() { Handled::Done } else { Handled::Retry }
    }

    /// One queue message read, and what it reports applied to herald's state: its events
    /// to emit, or what became of it (nothing to report, dead-lettered, to retry).
    pub async fn apply_record(&self, record: &SqsMessage) -> Applied {
        let body = record.body.as_deref().unwrap_or_default();
        let received = herald_lambda::sqs::sent_at(record).unwrap_or_else(|| self.clock.now());
        let events = match provider::normalise_received(body, received) {
            Ok(events) => events,
            Err(e @ ProviderEventError::NotAnEvent { .. }) => {
                tracing::info!(reason = %e, "dropped: the message reports nothing");
                return Applied::Handled(Handled::Done);
            }
            Err(e) => {
                return Applied::Handled(records::dead_letter(self.dead_letters.as_ref(), body, &e.to_string()).await);
            }
        };
        for event in &events {
            if let Err(e) = self.apply(event).await {
                tracing::warn!(error = %e, event = %event.event.event, "state store failed; SQS delivers the message again");
                return Applied::Handled(Handled::Retry);
            }
        }
        let out: Vec<DeliveryEvent> = events.into_iter().map(|e| e.event).collect();
        if out.is_empty() { Applied::Handled(Handled::Done) } else { Applied::Emit(out) }
    }

    /// What one event does to herald's state.
    pub async fn apply(&self, pe: &ProviderEvent) -> Result<(), StoreError> {
        let at = pe.event.at;
        for effect in &pe.effects {
            match effect {
                Effect::Suppress { key, tenant, reason } => {
                    let key = match tenant.as_deref().and_then(|t| TenantId::parse(t).ok()) {
                        Some(t) => key.for_tenant(&t),
                        None => key.clone(),
                    };
                    self.store.suppress(&SuppressionEntry { key, reason: *reason }, at).await?;
                }
                Effect::OptOut { key } => self.events.opt_out(key, at).await?,
                Effect::OptIn { key } => {
                    self.events.lift_opt_out(key, at).await?;
                }
            }
        }
        if let Some(key) = request_key(&pe.event)
            && pe.event.event.status_rank().is_some()
        {
            self.events.advance_delivery(&key, pe.event.event, at).await?;
        }
        if let Some(keep) = self.archive_for {
            let until = self.clock.now().checked_add(keep).unwrap_or(Timestamp::MAX);
            self.events.archive_event(&pe.event, &pe.raw, until).await?;
        }
        Ok(())
    }
}

/// The idempotency key of the request an event names.
fn request_key(event: &herald::receipt::event::DeliveryEvent) -> Option<IdempotencyKey> {
    let id = RequestId::parse(event.request_id.as_deref()?).ok()?;
    let tenant = event.tenant.as_deref().map(TenantId::parse).transpose().ok()?;
    Some(IdempotencyKey::new(tenant.as_ref(), &id))
}

#[cfg(test)]
mod tests {
    use herald_lambda::env::unlisted_variables;

    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [("main.rs", include_str!("main.rs")), ("lib.rs", include_str!("lib.rs"))];
        assert_eq!(unlisted_variables(&sources, super::SERVICE.env_vars), Vec::<String>::new());
    }
}
