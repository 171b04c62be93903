//! Ports: the capabilities the pipeline needs, as narrow traits. Adapters in
//! `adapters/` implement them for AWS, the push providers and the embedded default;
//! `crate::testing` has in-memory twins for unit tests.

mod error;
mod events;
mod message;
mod state;

pub use error::{SendError, StoreError, TokenInvalid};
pub use events::{Advance, Claim, EventStore, RequestState};
pub use message::{OutboundEmail, OutboundPush, OutboundSms};
pub use state::{
    Admission, CapCheck, Completion, ConsentCheck, Decision, Lease, PriorOutcome, Recorded, Release, StateStore,
    SuppressionEntry, SuppressionReason, Verdict,
};

use async_trait::async_trait;
use jiff::Timestamp;

use crate::receipt::Receipt;
use crate::request::DeliveryRequest;

/// Where "now" comes from, so tests and `--now` can pin it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// The provider's id for an accepted message.
pub type ProviderMessageId = String;

#[async_trait]
pub trait EmailSender: Send + Sync {
    async fn send_email(&self, email: &OutboundEmail) -> Result<ProviderMessageId, SendError>;
}

#[async_trait]
pub trait SmsSender: Send + Sync {
    async fn send_sms(&self, sms: &OutboundSms) -> Result<ProviderMessageId, SendError>;
}

#[async_trait]
pub trait PushSender: Send + Sync {
    async fn send_push(&self, push: &OutboundPush) -> Result<ProviderMessageId, SendError>;
}

/// Holds a request until a later instant (SQS delay, the embedded deferral table).
#[async_trait]
pub trait Scheduler: Send + Sync {
    /// `attempt` counts earlier transient failures, so a retry budget survives deferral.
    async fn defer(
        &self,
        request: &DeliveryRequest,
        until: Timestamp,
        attempt: u32,
        source: Option<&str>,
    ) -> Result<(), StoreError>;
}

/// Receipts that could not be delivered, by index into what was emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} receipt(s) not delivered: {message}", failed.len())]
pub struct EmitError {
    pub failed: Vec<usize>,
    pub message: String,
}

impl EmitError {
    /// None of the `count` receipts were delivered.
    pub fn all(count: usize, message: impl Into<String>) -> Self {
        EmitError { failed: (0..count).collect(), message: message.into() }
    }
}

/// A queue messages are put on (SQS): forwarded provider events, webhook retries,
/// dead letters. Attributes are SQS string message attributes.
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, body: &str, delay: std::time::Duration, attributes: &[(&str, &str)])
    -> Result<(), StoreError>;
}

/// Where delivery events go: the same stream as receipts (the receipts queue), so a
/// subscriber sees `sent` and then `delivered` in one place.
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn emit_events(&self, events: &[crate::receipt::event::DeliveryEvent]) -> Result<(), EmitError>;
}

/// Where receipts go (receipts queue, stdout + local status table). Delivery is
/// per receipt: one that cannot go out must not hold back the others.
#[async_trait]
pub trait ReceiptSink: Send + Sync {
    async fn emit(&self, receipts: &[Receipt]) -> Result<(), EmitError>;
}
