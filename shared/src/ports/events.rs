//! The state the return path needs: the latest delivery status of each request, an
//! audit copy of provider payloads, use-once claims (SNS message ids, unsubscribe
//! tokens) and the webhook endpoints a subscriber took down.
//!
//! A use-once claim is a small idempotency record, the same timeline as admission's:
//!
//! ```text
//!  (none) --claim--> PENDING(lock_until) --finish--> DONE (kept until retain_until)
//!                       |  \--release (the work failed: let a retry in)--> (none)
//!                       \--lock expired (the claimant died)--> claim takes it over: New
//!  claim while PENDING and unexpired -> Busy: answer "try again", never do it twice at once
//!  claim while DONE                  -> Done: already handled, do nothing
//! ```

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;

use super::StoreError;
use crate::receipt::Status;
use crate::receipt::event::{DeliveryEvent, EventKind};
use crate::request::{IdempotencyKey, SuppressionKey};

/// What [`EventStore::advance_delivery`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// The request's delivery status is now this event.
    Moved,
    /// The request already has a status of equal or higher rank: it stays.
    Behind,
    /// No record of the request (never seen by this store, or its retention ended).
    UnknownRequest,
}

/// What an operator's `herald status` shows of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestState {
    /// None while an attempt holds the request (in progress).
    pub status: Option<Status>,
    pub reason: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: Timestamp,
    /// The latest delivery event and when it happened.
    pub delivery: Option<(EventKind, Timestamp)>,
}

/// What [`EventStore::claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours: do the work, then `finish` (or `release` on failure).
    New,
    /// Another attempt holds it until its lock expires.
    Busy,
    /// Done before: do nothing.
    Done,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Moves the request's delivery status to `kind` if that ranks higher than what it
    /// has (see [`EventKind::status_rank`]); kinds without a rank never move it.
    async fn advance_delivery(
        &self,
        key: &IdempotencyKey,
        kind: EventKind,
        at: Timestamp,
    ) -> Result<Advance, StoreError>;

    async fn request_state(&self, key: &IdempotencyKey) -> Result<Option<RequestState>, StoreError>;

    /// Keeps the provider's payload (it names addresses: it stays in the state store,
    /// never in receipts or logs) until `retain_until`.
    async fn archive_event(&self, event: &DeliveryEvent, raw: &str, retain_until: Timestamp) -> Result<(), StoreError>;

    /// Records that a phone number opted out (STOP), unless it is already suppressed
    /// for another reason (a START must not lift a bounce or an operator's entry).
    async fn opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<(), StoreError>;

    /// Removes a suppression only if it is an SMS opt-out recorded before `at` (a START
    /// undoes an earlier STOP, never a later one delivered first, nor a bounce or an
    /// operator's entry). Returns whether one was removed.
    async fn lift_opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<bool, StoreError>;

    /// Takes `id` for one piece of work (see the module timeline).
    async fn claim(&self, id: &str, now: Timestamp, lock_until: Timestamp) -> Result<Claim, StoreError>;

    /// The work under `id` is done: later claims answer `Done` until `retain_until`.
    async fn finish(&self, id: &str, retain_until: Timestamp) -> Result<(), StoreError>;

    /// The work under `id` failed: a retry may claim it at once.
    async fn release(&self, id: &str) -> Result<(), StoreError>;

    /// A subscriber answered 410 Gone: nothing more is sent to this subscription until
    /// an operator enables it again.
    async fn disable_endpoint(&self, subscription: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Returns whether the subscription was disabled.
    async fn enable_endpoint(&self, subscription: &str) -> Result<bool, StoreError>;

    /// Disabled subscriptions and since when.
    async fn disabled_endpoints(&self) -> Result<BTreeMap<String, Timestamp>, StoreError>;
}
