//! The state a guard rail needs: suppression and consent lists, idempotency
//! records and frequency-cap slots.
//!
//! Admission is atomic where concurrency can break it: two concurrent attempts can
//! never both pass a cap or both take the same request. (The embedded and in-memory
//! stores take the lock and the slots in one step; DynamoDB takes the lock, then the
//! slots, each with one conditional write, and a takeover tells from the cap lists
//! whether the dead attempt got past the second: see `adapters::aws::dynamo`.) The
//! timeline of one request key:
//!
//! ```text
//!  (none) --admit--> IN_PROGRESS(attempt, lock_expires_at) --complete--> DONE(status, provider id)
//!     |                  |        \--abandon (nothing sent, or at-least-once retry)--> (none)
//!     |                  \--lock expired (crashed attempt)--> admit takes it over: Lease{took_over}
//!     \--record (decided without sending: suppressed, expired...)--> DONE
//!  admit while IN_PROGRESS and unexpired -> InProgress{until}: retry later, never send twice
//!  admit while IN_PROGRESS, expired, other content -> Undecided: a duplicate, without waiting
//!  admit while DONE                      -> Duplicate(prior outcome, with its fingerprint)
//!  record while DONE                     -> Existing(prior outcome): report that one instead
//!  complete/abandon with a lease whose lock was taken over -> no effect on the record
//! ```
//! The idempotency record is checked before suppression and consent: a request that
//! was completed answers with its outcome even if the address was suppressed since.
//!
//! A takeover means an earlier attempt died between admission and completion: it may
//! have sent. The lease says so, and the pipeline applies the category's delivery
//! guarantee (at most once: end `failed` without sending).
//!
//! Cap slots are taken in the same step as the lock and given back on `abandon`
//! (when asked), or on `complete` when nothing was delivered. A crashed attempt keeps
//! its slots until they leave the window: it may have delivered before it died, and
//! a cap must err on the side of the recipient.

use async_trait::async_trait;
use jiff::Timestamp;

use super::StoreError;
use crate::receipt::Status;
use crate::request::{IdempotencyKey, RecipientKey, SuppressionKey};

#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub idempotency_key: IdempotencyKey,
    /// The request's content (`DeliveryRequest::fingerprint`), kept with the record so
    /// a redelivery of the same message can be told from another message reusing the id.
    pub fingerprint: String,
    /// Checked against the suppression list (bounces, complaints, manual, SMS opt-outs).
    pub suppression_key: SuppressionKey,
    /// The same address on the tenant's own list (its bounces and complaints), checked
    /// too when the request has a tenant.
    pub tenant_suppression_key: Option<SuppressionKey>,
    /// None for transactional messages, which ignore category unsubscribes.
    pub consent: Option<ConsentCheck>,
    /// Every rule that applies; all must have room.
    pub caps: Vec<CapCheck>,
    pub now: Timestamp,
    pub lock_expires_at: Timestamp,
    /// How long the idempotency record (and its verdict) is kept.
    pub retain_until: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentCheck {
    pub recipient_key: RecipientKey,
    pub category: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapCheck {
    /// Counter identity: recipient key + rule name (`RecipientKey::cap`).
    pub key: String,
    /// The recipient the counter belongs to (a store may keep every counter of a
    /// recipient, with their consent, in one record).
    pub recipient_key: RecipientKey,
    /// Rule name, for the receipt reason.
    pub rule: String,
    pub limit: u32,
    pub window_seconds: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Admitted(Lease),
    Suppressed(SuppressionReason),
    Unsubscribed {
        category: String,
    },
    Duplicate(PriorOutcome),
    InProgress {
        until: Timestamp,
    },
    Capped {
        rule: String,
    },
    /// Another message (other content) was admitted under this id, and its attempt
    /// ended without recording an outcome (its lock expired). This one reused the id:
    /// it is a duplicate whatever becomes of the other, and waiting could be forever.
    Undecided,
}

impl Verdict {
    /// The outcome a refusal records for its request (suppressed, unsubscribed,
    /// capped); None for the verdicts that decide nothing.
    pub fn decided(&self) -> Option<(Status, crate::receipt::Reason)> {
        use crate::receipt::Reason;
        match self {
            // A STOP is the recipient's choice, not a fault of the address.
            Verdict::Suppressed(SuppressionReason::OptedOut) => Some((Status::Unsubscribed, Reason::OptedOut)),
            Verdict::Suppressed(why) => Some((Status::Suppressed, Reason::Suppressed(*why))),
            Verdict::Unsubscribed { category } => Some((Status::Unsubscribed, Reason::Unsubscribed(category.clone()))),
            Verdict::Capped { rule } => Some((Status::Capped, Reason::FrequencyCapped(rule.clone()))),
            _ => None,
        }
    }
}

/// What `abandon` leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Nothing was sent: the lock and the cap slots go, and a retry starts clean
    /// (suppression, consent and caps are checked again).
    Everything,
    /// The message may have been sent and will be sent again (at least once): the lock
    /// expires at once and the slots stay, so the retry takes the lock over and
    /// inherits them instead of counting its own predecessor against the cap.
    ForTakeover,
}

/// Proof of admission: the lock and the cap slots it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub idempotency_key: IdempotencyKey,
    /// Unique per admission. `complete` and `abandon` act only while the record
    /// still belongs to this attempt, so an attempt whose lock expired and was taken
    /// over cannot release or overwrite the takeover's lock.
    pub attempt: String,
    /// (cap key, slot id) pairs taken by this admission.
    pub slots: Vec<(String, String)>,
    /// (cap key, limit) of those caps, for stores that tidy a cap on completion; empty
    /// when there is nothing to tidy (a store that trimmed the caps at admission).
    pub cap_limits: Vec<(String, u32)>,
    /// The lock was taken from an earlier attempt of the same message whose lock
    /// expired: that attempt may have sent. A takeover skips suppression, consent and
    /// caps (the earlier attempt passed them, and its slots stay counted) and takes
    /// no slots of its own. (A store that can prove the earlier attempt never passed
    /// them admits afresh instead: not a takeover, rails checked, slots its own.)
    pub took_over: bool,
    /// The recipient record holding the slots, for stores that keep a recipient's
    /// counters together (None when the lease holds no slots).
    pub recipient: Option<RecipientKey>,
    /// When this attempt's lock expires (the admission's `lock_expires_at`). Until then no
    /// other attempt can take the record over (unless this lease abandoned it): a store
    /// may write the outcome without checking the attempt when the write lands before it
    /// (DynamoDB's batched outcomes).
    pub lock_expires_at: Timestamp,
    /// The request's content fingerprint, kept with the outcome.
    pub fingerprint: String,
}

impl Lease {
    /// The lease of a takeover: the dead attempt's lock under a new attempt id, and no
    /// slots of its own (the dead attempt's stay counted, and move with the lock).
    pub fn takeover(a: &Admission, attempt: String) -> Self {
        Lease { slots: Vec::new(), cap_limits: Vec::new(), took_over: true, recipient: None, ..Lease::of(a, attempt) }
    }

    /// A lease of `a` without slots, not a takeover: each store adds what it took.
    pub fn of(a: &Admission, attempt: String) -> Self {
        Lease {
            idempotency_key: a.idempotency_key.clone(),
            attempt,
            slots: Vec::new(),
            cap_limits: a.caps.iter().map(|c| (c.key.clone(), c.limit)).collect(),
            took_over: false,
            recipient: None,
            lock_expires_at: a.lock_expires_at,
            fingerprint: a.fingerprint.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriorOutcome {
    pub status: Status,
    pub reason: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: Timestamp,
    /// The fingerprint of the request that reached this outcome.
    pub fingerprint: Option<String>,
}

/// An outcome decided without sending (suppressed, unsubscribed, expired, rejected,
/// retries exhausted), recorded so that every later delivery of the request reports
/// the same one.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub idempotency_key: IdempotencyKey,
    pub fingerprint: String,
    pub status: Status,
    pub reason: Option<String>,
    pub at: Timestamp,
    pub retain_until: Timestamp,
}

/// What [`StateStore::record`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// The decision is now the request's outcome.
    Stored,
    /// The request already had an outcome: report that one.
    Existing(PriorOutcome),
    /// Another attempt holds the lock until then.
    InProgress { until: Timestamp },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub status: Status,
    pub reason: Option<String>,
    pub provider_message_id: Option<String>,
    pub at: Timestamp,
    /// Give the cap slots back (nothing reached the recipient).
    pub release_slots: bool,
    pub retain_until: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SuppressionReason {
    HardBounce,
    Complaint,
    Manual,
    /// The phone number sent STOP (or a variant): undone by START.
    OptedOut,
    /// A push provider reported the target (token, subscription, endpoint) gone.
    TokenInvalid,
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::HardBounce => "hard_bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
            SuppressionReason::OptedOut => "opted_out",
            SuppressionReason::TokenInvalid => "token_invalid",
        }
    }
}

impl std::str::FromStr for SuppressionReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.replace('-', "_").as_str() {
            "hard_bounce" | "bounce" => Ok(SuppressionReason::HardBounce),
            "complaint" => Ok(SuppressionReason::Complaint),
            "manual" => Ok(SuppressionReason::Manual),
            "opted_out" => Ok(SuppressionReason::OptedOut),
            "token_invalid" => Ok(SuppressionReason::TokenInvalid),
            _ => Err(format!(
                "unknown suppression reason `{s}`: expected hard_bounce, complaint, manual, opted_out or token_invalid"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionEntry {
    pub key: SuppressionKey,
    pub reason: SuppressionReason,
}

#[async_trait]
pub trait StateStore: Send + Sync {
    /// Idempotency, then suppression, consent and caps, decided atomically. A
    /// `Capped`, `Suppressed` or `Unsubscribed` verdict is recorded as the request's
    /// outcome in the same call.
    async fn admit(&self, admission: &Admission) -> Result<Verdict, StoreError>;

    /// Records the outcome of an admitted request (and releases slots if asked).
    async fn complete(&self, lease: &Lease, completion: &Completion) -> Result<(), StoreError>;

    /// Gives up this attempt's lock (see [`Release`]).
    async fn abandon(&self, lease: &Lease, release: Release) -> Result<(), StoreError>;

    /// Records an outcome reached without admission, unless the request already has
    /// one or is held by a live attempt.
    async fn record(&self, decision: &Decision) -> Result<Recorded, StoreError>;

    async fn suppress(&self, entry: &SuppressionEntry, at: Timestamp) -> Result<(), StoreError>;

    /// Returns whether the key was suppressed.
    async fn unsuppress(&self, key: &SuppressionKey) -> Result<bool, StoreError>;

    /// `category` may be `*`: every non-transactional category.
    async fn set_consent(
        &self,
        recipient_key: &RecipientKey,
        category: &str,
        subscribed: bool,
        at: Timestamp,
    ) -> Result<(), StoreError>;
}
