//! State in one DynamoDB table, keyed `pk` (S) + `sk` (S), with TTL on
//! `expires_at` (epoch seconds) for everything that expires.
//!
//! | item        | pk                          | sk        | attributes |
//! |-------------|-----------------------------|-----------|------------|
//! | idempotency | `REQ#<tenant/request id>`   | `REQ`     | state (in_progress/done), status, reason, provider_message_id, at_ms, lock_expires_ms, first_ms, retain_until_ms, attempt, fp, expires_at |
//! | suppression | `SUP#<address key>`         | `SUP`     | reason, at_ms |
//! | recipient   | `CONSENT#<tenant/recipient>`| `CONSENT` | cats (map category -> subscribed), `cap:<rule>` (list, newest first, of `<ms>#<slot id>`) per cap rule |
//! | (idempotency, once events arrive) | | | delivery, delivery_rank, delivery_at_ms: the latest delivery event |
//! | event audit | `EVT#<event id>`            | `EVT`     | event (JSON), raw (the provider's payload), expires_at |
//! | use-once    | `ONCE#<id>`                 | `ONCE`    | state (pending/done), lock_expires_ms, retain_until_ms, expires_at |
//! | webhooks    | `WEBHOOKS`                  | `WEBHOOKS`| disabled (map subscription -> ms) |
//!
//! A suppression key is global (`email:<address>`) or one tenant's
//! (`<len>:<tenant>/email:<address>`); a request with a tenant is checked against both.
//!
//! Admission, in order, with no transaction (a transaction bills every item it
//! touches, condition checks included, at 2 write units per KB):
//! 1. The reads: one eventually consistent `BatchGetItem` of the address on the global
//!    and the tenant's list and (marketing) the recipient item's consent, shared by the
//!    admissions running together (the records of one invocation). They miss a
//!    suppression or unsubscribe recorded in the replicas' lag before the read (usually
//!    well under a second), as a check inside a write misses one recorded just after it;
//!    a cap update checks consent again, in its write. A refusal they show is read
//!    again, strongly consistent, before it is recorded: a suppression lifted or a
//!    consent given a moment ago never refuses a message for the whole retention.
//! 2. The lock: one conditional `PutItem` of the request's IN_PROGRESS record (new, or
//!    retention over). A suppressed or unsubscribed request writes its outcome with that
//!    same put instead.
//! 3. With caps: one conditional `UpdateItem` of the recipient item, which checks room
//!    on every cap (and consent again) and puts this request's slot on the front of each
//!    cap list. A refusal is written over this attempt's own lock. When the reads brought
//!    the recipient item (marketing), each list is written whole and trimmed, on
//!    condition that it is still the list read; otherwise by index, and one completion
//!    in four trims.
//!
//! Every write can be repeated: a put whose answer was lost finds its own attempt id on
//! the record; the cap update is conditioned on its slot (`<ms>#<slot id>`) being on no
//! list yet (by index) or on the lists it replaces (whole), and a repeat that finds the
//! slot counts as done.
//!
//! A lock whose attempt died is taken over by a put conditioned on that attempt's id.
//! The dead attempt passed the reads before it locked; only its caps may be missing. A
//! lock with caps carries its slot id (random per record) and when the request first
//! locked (`first_ms`); the takeover copies both. Without them, or with the slot on any
//! cap list, the takeover inherits (`took_over`: the dead attempt may have sent; its
//! slots stay counted). With the slot on no list while some window still reaches back
//! to `first_ms` (a minute of margin), the single update that files every list never
//! ran: the dead attempt never sent, and the takeover is a fresh admission that honours
//! its own reads. Otherwise it inherits.
//!
//! The lock's refusal is read first: a request with an outcome keeps it, even if its
//! address was suppressed or the recipient unsubscribed since. A cap keeps the
//! timestamps of its recent sends newest first, so "fewer than `limit` sends since
//! `now - window`" is the condition
//! `attribute_not_exists(cap[limit-1]) OR cap[limit-1] <= :since`: exact rolling
//! windows, atomic across concurrent Lambdas, no read first. One completion in
//! `TRIM_EVERY` also trims its cap lists. When the reads brought the recipient item
//! (consent) and no other record of the invocation shares it, the lists are written
//! whole instead, trimmed, on condition that each is still the list read: no trim.
//!
//! Completion, in the functions, is batched: the outcomes of records finishing together
//! (those that finish while another's is being written wait for it, then go out as the
//! next) are put as whole records in one `BatchWriteItem`, the same write units for a
//! tenth of the requests. A put has no condition, so only an outcome sure to land before
//! its attempt's lock expires joins a batch (the call's timeout and a second for clocks
//! before it): until then no other attempt can have taken the record over. Any other, and
//! any a batch did not write (an error, a lost answer, left unprocessed), is one
//! `UpdateItem` conditioned on the attempt, which finds a write of its own as done. A
//! failed batch sends every outcome alone for 30 s (or 4 call timeouts). What a whole put
//! replaces is the lock's own attributes, and a delivery event's (`delivery`, ...) only
//! if one came back from the provider before the outcome was written: a round trip or two
//! after the send (two call timeouts at worst), against the second or more an event takes
//! through SNS and SQS; the event's receipt still goes out, only the record's latest
//! delivery status would miss it.
//!
//! Write units of a sent message (items under 1 KB): 2 (lock, completion) without caps;
//! 3 with caps when the lists are written whole (marketing), 3 + 1/`TRIM_EVERY` (about
//! 3.25) by index. Read units: ½ per suppression list and ½ for consent (eventually
//! consistent; a refusal is confirmed by a strongly consistent read, 1 each).
//! `write_units_per_sent_email_stay_within_budget` (email e2e) counts them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use jiff::Timestamp;

use crate::ports::{
    Admission, Advance, CapCheck, Claim, Completion, Decision, EventStore, Lease, PriorOutcome, Recorded, Release,
    RequestState, StateStore, StoreError, SuppressionEntry, SuppressionReason, Verdict,
};
use crate::receipt::Status;
use crate::receipt::event::{DeliveryEvent, EventKind};
use crate::request::{IdempotencyKey, RecipientKey, SuppressionKey};

/// The TTL attribute (epoch seconds) the table must enable.
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The table's partition key (type S).
pub const PARTITION_KEY: &str = "pk";
/// The table's sort key (type S).
pub const SORT_KEY: &str = "sk";

/// A request may be taken when it is new, forgotten (retention over), or held by
/// a crashed attempt whose lock expired. Needs `#state`, `:now` and `:ip`.
const TAKEABLE: &str =
    "attribute_not_exists(pk) OR retain_until_ms <= :now OR (#state = :ip AND lock_expires_ms <= :now)";

/// A request never seen, or forgotten. Needs `:now`.
const FRESH: &str = "attribute_not_exists(pk) OR retain_until_ms <= :now";

/// The lock of one dead attempt of the same message, still expired. Needs `#state`,
/// `:ip`, `:now`, `:old`, `:fp`.
const TAKEOVER: &str = "#state = :ip AND lock_expires_ms <= :now AND attempt = :old AND fp = :fp";

/// How often an admission write whose outcome is unknown (a timeout, a 5xx after the
/// SDK's own retries) is sent again unchanged: each is conditioned so that a repeat of
/// one that took effect recognises its own write instead of leaving a lock nobody owns.
const AMBIGUOUS_RETRIES: u32 = 2;

/// How often admission tries again in-process when the record it met changed before it
/// could act on it (a lock that went, a recipient item that changed between a refusal
/// and its read-back), before giving up transiently to SQS.
const CONFLICT_RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Reads waiting to go out together (`screen`), eventually consistent.
    reads: Arc<Reads>,
    /// The strongly consistent reads confirming refusals, likewise together.
    confirms: Arc<Reads>,
    /// Outcomes waiting to go out together (`complete`).
    outcomes: Arc<Outcomes>,
    /// The longest one call can take, when outcomes are batched (see
    /// [`DynamoStore::with_batched_outcomes`]); None: each is its own conditional update.
    call_bound: Option<Duration>,
}

/// How many scheduler turns the first read of a batch waits for the others.
const MAX_GATHER_TURNS: usize = 8;

/// Lets the records running beside this one reach the same point: scheduler turns until
/// `waiting` stops growing (at most [`MAX_GATHER_TURNS`]). The records of a batch are
/// polled on this task between two turns.
async fn gather(waiting: impl Fn() -> usize) {
    let mut seen = 0;
    for _ in 0..MAX_GATHER_TURNS {
        tokio::task::yield_now().await;
        let now_waiting = waiting();
        if now_waiting == seen {
            break;
        }
        seen = now_waiting;
    }
}

type Item = HashMap<String, AttributeValue>;

#[derive(Default)]
struct Reads(std::sync::Mutex<Vec<Waiter>>);

/// The count only: the waiting keys name addresses.
impl std::fmt::Debug for Reads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reads({} waiting)", self.lock().len())
    }
}

impl Reads {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Waiter {
    /// Partition keys of the items this admission reads.
    keys: Vec<String>,
    answer: tokio::sync::oneshot::Sender<Result<Read, StoreError>>,
}

/// What a shared read answers one admission.
struct Read {
    items: HashMap<String, Item>,
    /// The keys of these that another admission of the same read asked for too. Two
    /// sharing a recipient item must not each write its cap lists whole from it (all but
    /// the first would find a list changed, a write unit billed for nothing).
    shared: Vec<String>,
}

/// The gathering caller's duty: should it go away before reading (its future dropped),
/// the waiters it gathered are let go, and each reads alone, instead of waiting for a
/// read nobody will make.
struct LeaderTurn<'a> {
    reads: &'a Reads,
    done: bool,
}

impl Drop for LeaderTurn<'_> {
    fn drop(&mut self) {
        if !self.done {
            let gathered = std::mem::take(&mut *self.reads.lock());
            drop(gathered);
        }
    }
}

/// The outcomes of records finishing together, written as one `BatchWriteItem` (group
/// commit): the first caller writes, and whoever arrives while its write is out waits;
/// when it is back the first of them writes all that waited.
#[derive(Default)]
struct Outcomes(std::sync::Mutex<OutcomeQueue>);

#[derive(Default)]
struct OutcomeQueue {
    waiting: Vec<OutcomeWaiter>,
    /// A caller is writing a batch.
    writing: bool,
    /// A batch failed or was throttled: until then every outcome goes alone, so that a
    /// record's retries of its outcome cost one call each (`CALLS_PER_RECORD`).
    paused_until: Option<std::time::Instant>,
}

/// The count only: the waiting items are request records.
impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outcomes({} waiting)", self.lock().waiting.len())
    }
}

impl Outcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutcomeQueue> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn paused(&self) -> bool {
        self.lock().paused_until.is_some_and(|t| std::time::Instant::now() < t)
    }

    /// Outcomes go alone for [`PAUSE_AFTER_FAILURE`], or for as long as a record's
    /// retries of its outcome may take (`call_bound` each), whichever is longer.
    fn pause(&self, call_bound: Duration) {
        let pause = PAUSE_AFTER_FAILURE.max(call_bound.saturating_mul(4));
        self.lock().paused_until = Some(std::time::Instant::now() + pause);
    }
}

/// How long outcomes go alone, at least, after a batch failed or was throttled.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(30);

struct OutcomeWaiter {
    /// The request record with its outcome.
    item: Item,
    /// The latest instant (this machine's clock) at which a batch may still start the
    /// write, for it to land before the lock expires.
    start_by: Timestamp,
    turn: tokio::sync::oneshot::Sender<OutcomeTurn>,
}

enum OutcomeTurn {
    /// Written in another caller's batch.
    Written,
    /// Not known to be written (the batch failed, its answer was lost, DynamoDB left it
    /// unprocessed, or its lock came too near while it waited): write it alone,
    /// conditioned on the attempt.
    Alone,
    /// The batch before is back: write this item and those waiting. The duty travels
    /// with it, so a caller that went away before reading it still passes it on.
    Lead(Item, HandOver),
}

/// The writer's duty when it is done, or goes away (its future dropped): the first
/// waiter writes next; with nobody waiting the next caller does. The waiters of a batch
/// it dropped unanswered see their answer gone and write alone.
struct HandOver {
    outcomes: Arc<Outcomes>,
    /// False once passed on (a copy that came back from a caller gone away).
    armed: bool,
}

impl Drop for HandOver {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        loop {
            let next = {
                let mut queue = self.outcomes.lock();
                if queue.waiting.is_empty() {
                    queue.writing = false;
                    return;
                }
                queue.waiting.remove(0)
            };
            // Sent outside the lock: a lead that comes back is dropped here.
            let duty = HandOver { outcomes: Arc::clone(&self.outcomes), armed: true };
            match next.turn.send(OutcomeTurn::Lead(next.item, duty)) {
                Ok(()) => return,
                // That caller went away: the one after it.
                Err(OutcomeTurn::Lead(_, mut duty)) => duty.armed = false,
                Err(_) => {}
            }
        }
    }
}

/// Items in one `BatchWriteItem` (DynamoDB's limit).
const BATCH_WRITE_MAX: usize = 25;

/// How far apart two functions' clocks may be, allowed for when a batched outcome must
/// land before its lock expires.
const CLOCK_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn secs(t: Timestamp) -> i64 {
    t.as_second()
}

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PARTITION_KEY.to_owned(), s(pk)), (SORT_KEY.to_owned(), s(sk))])
}

fn req_key(k: &IdempotencyKey) -> HashMap<String, AttributeValue> {
    key(format!("REQ#{k}"), "REQ")
}

/// A suppression item's partition key (its sort key is `SUP`).
fn sup_pk(k: &SuppressionKey) -> String {
    format!("SUP#{k}")
}

fn sup_key(k: &SuppressionKey) -> HashMap<String, AttributeValue> {
    key(sup_pk(k), "SUP")
}

/// The recipient item's partition key (its sort key is `CONSENT`).
fn consent_pk(k: &RecipientKey) -> String {
    format!("CONSENT#{k}")
}

fn consent_key(k: &RecipientKey) -> HashMap<String, AttributeValue> {
    key(consent_pk(k), "CONSENT")
}

/// A cap slot sorts by time as a string: 15-digit milliseconds, then the slot id.
fn slot_value(taken_ms: i64, slot: &str) -> String {
    format!("{taken_ms:015}#{slot}")
}

/// Upper bound of the expired slots: `~` sorts after `#`, so a slot taken exactly
/// at `since` counts as expired, as in the embedded store.
fn since_value(since_ms: i64) -> String {
    format!("{since_ms:015}~")
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, k: &str) -> Option<&'a str> {
    item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<i64> {
    item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok())
}

fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_millisecond(v).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Error codes after which a repeat of the same call may succeed.
fn is_retryable_code(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "InternalServerError"
                | "ServiceUnavailable"
                | "ThrottlingException"
                | "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "TransactionInProgressException"
                // Only while a release that still wrote transactions runs beside this one.
                | "TransactionConflictException"
        )
    )
}

/// The service's code and message, or for an error that never reached it (a timeout,
/// a dispatch failure) the SDK's own short description of its kind.
fn store_error<E: ProvideErrorMetadata + std::fmt::Display>(what: &str, e: &E) -> StoreError {
    match e.code() {
        Some(code) => StoreError::new(format!("dynamodb {what}: {code} {}", e.message().unwrap_or(""))),
        None => StoreError::new(format!("dynamodb {what}: {e}")),
    }
}

fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::new(format!("dynamodb request: {e}")))
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            reads: Arc::default(),
            confirms: Arc::default(),
            outcomes: Arc::default(),
            call_bound: None,
        }
    }

    /// Outcomes recorded together: the records of one invocation that finish while
    /// another's outcome is being written go out as one `BatchWriteItem` (one request
    /// for several records, the same write units). A batch writes whole records without
    /// a condition, so only an outcome that lands before its lock expires joins one:
    /// `call_bound` (each call's timeout, retries included) plus a second for clocks
    /// before it. Until then no other attempt can have taken the record over. Later ones,
    /// and any a batch did not write, are the conditional update of old.
    pub fn with_batched_outcomes(mut self, call_bound: Duration) -> Self {
        self.call_bound = Some(call_bound);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// An unconditional PutItem (a later write of the same item is the same fact).
    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| store_error("PutItem", &e))?;
        Ok(())
    }

    /// One item by a strongly consistent read, only `attribute` of it when given.
    async fn read(
        &self,
        key: HashMap<String, AttributeValue>,
        attribute: Option<&str>,
    ) -> Result<Option<Item>, StoreError> {
        let mut get = self.client.get_item().table_name(&self.table).set_key(Some(key)).consistent_read(true);
        if let Some(name) = attribute {
            get = get.projection_expression("#k").expression_attribute_names("#k", name);
        }
        let out = get.send().await.map_err(|e| store_error("GetItem", &e))?;
        Ok(out.item.filter(|i| !i.is_empty()))
    }

    /// Sets `map.entry` on an item. The map must exist before one of its keys can be set,
    /// and two paths in one expression may not overlap: two updates.
    async fn set_map_entry(
        &self,
        key: HashMap<String, AttributeValue>,
        map: &str,
        entry: &str,
        value: AttributeValue,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key.clone()))
            .update_expression("SET #m = if_not_exists(#m, :empty)")
            .expression_attribute_names("#m", map)
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", &e))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression("SET #m.#e = :v")
            .expression_attribute_names("#m", map)
            .expression_attribute_names("#e", entry)
            .expression_attribute_values(":v", value)
            .send()
            .await
            .map_err(|e| store_error("UpdateItem", &e))?;
        Ok(())
    }

    /// The request's record: the IN_PROGRESS lock of `attempt`, or (`decided`) the outcome
    /// this attempt reached without sending. `attempt` is kept in both, so a repeat of a
    /// put whose answer was lost finds its own record. With caps, the lock also carries
    /// the request's slot id and when its first attempt locked (`Carried`): a takeover
    /// copies them, so it can tell whether the dead attempt took its slots.
    fn request_item(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: &str,
        decided: Option<(Status, &str)>,
        carried: Option<&Carried>,
    ) -> HashMap<String, AttributeValue> {
        let mut item = req_key(&a.idempotency_key);
        match decided {
            None => {
                item.insert("state".into(), s("in_progress"));
                item.insert("lock_expires_ms".into(), n(ms(a.lock_expires_at)));
                if let Some(c) = carried {
                    item.insert("first_ms".into(), n(c.first_ms));
                    item.insert("slot".into(), s(&c.slot));
                }
            }
            Some((status, reason)) => {
                item.insert("state".into(), s("done"));
                item.insert("status".into(), s(status.as_str()));
                item.insert("reason".into(), s(reason));
            }
        }
        item.insert("at_ms".into(), n(ms(now)));
        item.insert("retain_until_ms".into(), n(ms(a.retain_until)));
        item.insert("attempt".into(), s(attempt));
        item.insert("fp".into(), s(&a.fingerprint));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(a.retain_until)));
        item
    }

    /// The cap update: this request's slot on the front of every cap list, checked
    /// against each cap's window (and consent again), atomically across concurrent
    /// Lambdas. With the recipient item as the screen read it (`seen`), each list is
    /// written whole, already trimmed to the entries a window can still reach, under
    /// the condition that it is still the list read: no trim at completion. Without a
    /// read, when the read shows a cap full, and after a list changed under a whole
    /// write, the update by index decides: `cap[limit-1]` absent or out of the window,
    /// the slot on no list yet. At most `AMBIGUOUS_RETRIES + 2` calls: a conflict under a
    /// whole write is not a fault and does not count as a try.
    async fn take_slots(
        &self,
        a: &Admission,
        now: Timestamp,
        mine: &str,
        seen: Option<Seen>,
    ) -> Result<Rails, StoreError> {
        let Some(recipient) = recipient_of(a) else { return Ok(Rails::Passed { trimmed: false }) };
        let mut seen = seen.map(|s| s.0);
        // Why the last try failed: a fault (`Some`), or a refusal with no reason (`None`).
        let mut last: Option<StoreError>;
        let mut try_ = 0;
        loop {
            let mut update = CapUpdate::new(a);
            let whole = seen.as_ref().is_some_and(|item| update.whole_lists(a, now, mine, item.as_ref()));
            if !whole {
                update.by_index(a, now, mine);
            }
            let sent = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(consent_key(recipient)))
                .update_expression(format!("SET {}", update.sets.join(", ")))
                .condition_expression(update.conditions.join(" AND "))
                .set_expression_attribute_names(Some(update.names))
                .set_expression_attribute_values(Some(update.values))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            match sent {
                Ok(_) => return Ok(Rails::Passed { trimmed: whole }),
                Err(e) => match e.as_service_error() {
                    Some(
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c),
                    ) => {
                        let item = c.item().cloned();
                        // Our own write, whose answer was lost (which of the two kinds
                        // landed is not known: the completion may trim).
                        if item.as_ref().is_some_and(|i| holds_slot(i, a, |v| v == mine)) {
                            return Ok(Rails::Passed { trimmed: false });
                        }
                        if let Some(verdict) = item.as_ref().and_then(|i| recipient_refusal(i, a, now)) {
                            return Ok(Rails::Refused(verdict));
                        }
                        // A list changed since it was read (a concurrent send, or a stale
                        // read): by index at once, which contention does not refuse. A
                        // conflict, not a fault: no pause, and not counted as a try.
                        if whole {
                            seen = None;
                            continue;
                        }
                        last = None;
                    }
                    // A timeout or a 5xx: the update may have been applied; the same update
                    // again applies it, or finds the slot.
                    _ if e.as_service_error().is_none() || is_retryable_code(e.code()) => {
                        last = Some(store_error("UpdateItem", &e));
                    }
                    _ => return Err(store_error("UpdateItem", &e)),
                },
            }
            try_ += 1;
            if try_ > AMBIGUOUS_RETRIES {
                break;
            }
            backoff(try_).await;
        }
        Err(last.unwrap_or_else(|| StoreError::new("dynamodb UpdateItem: the recipient item refused without a reason")))
    }

    /// Whether the dead attempt a takeover inherits from filed its slots: an entry
    /// `<ms>#<slot id>` with `ms` from its first lock on, on any cap list of the recipient
    /// item (a rule dropped from the configuration since included). One strongly
    /// consistent read.
    async fn dead_attempt_slots(&self, a: &Admission, carried: &Carried) -> Result<bool, StoreError> {
        let Some(recipient) = recipient_of(a) else { return Ok(false) };
        let item = self.read(consent_key(recipient), None).await?;
        let suffix = format!("#{}", carried.slot);
        let first = format!("{:015}", carried.first_ms);
        let ours = |v: &str| v.ends_with(&suffix) && v >= first.as_str();
        Ok(item.is_some_and(|i| {
            i.iter()
                .filter(|(k, _)| k.starts_with(CAP_PREFIX))
                .any(|(_, v)| v.as_l().is_ok_and(|list| list.iter().any(|x| x.as_s().is_ok_and(|x| ours(x)))))
        }))
    }

    /// After the lock: the caps (the reads before it did suppression and consent), and
    /// the lease. A refusal is written over this attempt's own lock. An error leaves
    /// nothing held: the lock and any slot go back.
    async fn after_lock(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: String,
        slot: &str,
        seen: Option<Seen>,
    ) -> Result<Verdict, StoreError> {
        let mine = slot_value(ms(now), slot);
        let lease = Lease {
            slots: a.caps.iter().map(|c| (c.key.clone(), mine.clone())).collect(),
            recipient: if a.caps.is_empty() { None } else { recipient_of(a).cloned() },
            ..Lease::of(a, attempt)
        };
        if a.caps.is_empty() {
            return Ok(Verdict::Admitted(lease));
        }
        let refused = match self.take_slots(a, now, &mine, seen).await {
            // Lists written whole are trimmed already: nothing for the completion to tidy.
            Ok(Rails::Passed { trimmed: true }) => {
                return Ok(Verdict::Admitted(Lease { cap_limits: Vec::new(), ..lease }));
            }
            Ok(Rails::Passed { trimmed: false }) => return Ok(Verdict::Admitted(lease)),
            Ok(Rails::Refused(verdict)) => verdict,
            Err(e) => {
                self.give_back(&lease, Release::Everything).await;
                return Err(e);
            }
        };
        let Some((status, reason)) = refused.decided() else { return Ok(refused) };
        let reason = reason.to_string();
        match self.put_request(a, now, &lease.attempt, Some((status, &reason)), Mode::Own, None).await {
            Ok(Put1::Written) => Ok(refused),
            Ok(Put1::Refused(item)) => Ok(match request_refusal(&item, a, now) {
                Refusal::Verdict(v) => v,
                Refusal::ExpiredLock { .. } => Verdict::InProgress { until: now },
            }),
            Err(e) => {
                // No slot was taken: the lock goes, and a retry starts clean.
                let nothing = Lease { slots: Vec::new(), ..lease };
                self.give_back(&nothing, Release::Everything).await;
                Err(e)
            }
        }
    }

    /// After a takeover's lock. The dead attempt passed the reads before it locked;
    /// without caps it passed every rail: inherit. With caps it may have died between
    /// its lock and its slots. If its slot is on a list, it got there and may have sent:
    /// inherit (`took_over`, its slots stay counted, none of our own). If it is on no
    /// list while some cap's window still reaches back to the first lock (a minute of
    /// margin for clocks), the cap update that files every list at once never ran: the
    /// dead attempt never sent, and this is a fresh admission, which honours this
    /// attempt's own reads too. Otherwise nothing tells: inherit.
    async fn after_takeover(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: String,
        carried: Option<Carried>,
        refusal: Option<&Verdict>,
        seen: Option<Seen>,
    ) -> Result<Verdict, StoreError> {
        let inherited = |attempt: String| Ok(Verdict::Admitted(Lease::takeover(a, attempt)));
        let Some(carried) = carried.filter(|_| !a.caps.is_empty()) else { return inherited(attempt) };
        let held = match self.dead_attempt_slots(a, &carried).await {
            Ok(held) => held,
            Err(e) => {
                self.give_back(&Lease::takeover(a, attempt), Release::ForTakeover).await;
                return Err(e);
            }
        };
        let margin = 60_000;
        let reaches_back = a.caps.iter().any(|c| {
            carried.first_ms > ms(now).saturating_sub(c.window_seconds.saturating_mul(1000)).saturating_add(margin)
        });
        if held || !reaches_back {
            return inherited(attempt);
        }
        let Some((status, reason)) = refusal.and_then(Verdict::decided) else {
            return self.after_lock(a, now, attempt, &carried.slot, seen).await;
        };
        // Suppressed or unsubscribed since: recorded over the lock just taken over.
        let reason = reason.to_string();
        match self.put_request(a, now, &attempt, Some((status, &reason)), Mode::Own, None).await {
            Ok(Put1::Written) => Ok(refusal.cloned().unwrap_or(Verdict::Undecided)),
            Ok(Put1::Refused(item)) => Ok(match request_refusal(&item, a, now) {
                Refusal::Verdict(v) => v,
                Refusal::ExpiredLock { .. } => Verdict::InProgress { until: now },
            }),
            Err(e) => {
                self.give_back(&Lease::takeover(a, attempt), Release::Everything).await;
                Err(e)
            }
        }
    }

    /// Gives a lock (and the lease's slots) back after a failed admission, tried twice;
    /// what stays expires with the lock.
    async fn give_back(&self, lease: &Lease, release: Release) {
        for _ in 0..2 {
            match self.abandon(lease, release).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(error = %e, "admission failed and its lock could not be given back"),
            }
        }
    }

    /// The outcome as one conditional `UpdateItem` of this attempt's lock. False when the
    /// record is no longer this attempt's (taken over after its lock expired).
    async fn complete_alone(&self, lease: &Lease, c: &Completion) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(req_key(&lease.idempotency_key)))
            .update_expression(
                "SET #state = :done, #status = :status, at_ms = :at, retain_until_ms = :retain, #ttl = :ttl \
                 , reason = :reason, provider_message_id = :pmid REMOVE lock_expires_ms",
            )
            .condition_expression("attempt = :attempt AND #state = :ip")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":ip", s("in_progress"))
            .expression_attribute_values(":status", s(c.status.as_str()))
            .expression_attribute_values(":at", n(ms(c.at)))
            .expression_attribute_values(":retain", n(ms(c.retain_until)))
            .expression_attribute_values(":ttl", n(secs(c.retain_until)))
            .expression_attribute_values(":attempt", s(&lease.attempt))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        update = update.expression_attribute_values(":reason", c.reason.as_ref().map_or(AttributeValue::Null(true), s));
        update = update
            .expression_attribute_values(":pmid", c.provider_message_id.as_ref().map_or(AttributeValue::Null(true), s));
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                // Our own outcome, written by a first try (or a batch) whose answer was
                // lost, counts as written; a takeover's record is left alone.
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(f)) => {
                    Ok(f.item().is_some_and(|i| {
                        get_s(i, "attempt") == Some(lease.attempt.as_str()) && get_s(i, "state") == Some("done")
                    }))
                }
                _ => Err(store_error("UpdateItem", &e)),
            },
        }
    }

    /// The latest instant (this machine's clock) at which a batch may start writing this
    /// outcome, for it to land before the lock expires by either clock (the
    /// completion's, and this machine's): the call's bound and a second for clocks
    /// before it. None when batching is off or paused.
    fn batch_start_by(&self, lease: &Lease, c: &Completion) -> Option<Timestamp> {
        let bound = jiff::SignedDuration::try_from(self.call_bound?).ok()?;
        if self.outcomes.paused() {
            return None;
        }
        let wall = Timestamp::now();
        // A completion clock ahead of this one moves the expiry closer.
        let ahead = c.at.duration_since(wall).max(jiff::SignedDuration::ZERO);
        let start_by = lease.lock_expires_at.checked_sub(bound).ok()?.checked_sub(CLOCK_MARGIN).ok()?;
        let start_by = start_by.checked_sub(ahead).ok()?;
        (wall < start_by).then_some(start_by)
    }

    /// Writes `item` in a batch with the outcomes finishing beside it, if the batch
    /// starts by `start_by`. True when the batch wrote it; false when it must be written
    /// alone (see [`OutcomeTurn::Alone`]).
    async fn write_in_batch(&self, item: Item, start_by: Timestamp) -> bool {
        let (turn, my_turn) = tokio::sync::oneshot::channel();
        let lead = {
            let mut queue = self.outcomes.lock();
            if queue.writing {
                queue.waiting.push(OutcomeWaiter { item, start_by, turn });
                None
            } else {
                queue.writing = true;
                Some(item)
            }
        };
        let (mine, _duty) = match lead {
            Some(item) => (item, HandOver { outcomes: Arc::clone(&self.outcomes), armed: true }),
            None => match my_turn.await {
                Ok(OutcomeTurn::Written) => return true,
                Ok(OutcomeTurn::Alone) => return false,
                // The writer went away with this outcome in its batch: alone, and the
                // next ones too, so that a retry costs one call.
                Err(_) => {
                    self.pause_batches();
                    return false;
                }
                Ok(OutcomeTurn::Lead(item, duty)) => (item, duty),
            },
        };
        // The batch before failed while this one waited, or this one's lock came near.
        if self.outcomes.paused() || Timestamp::now() >= start_by {
            return false;
        }
        // Records whose sends came back together join.
        gather(|| self.outcomes.lock().waiting.len()).await;
        let now = Timestamp::now();
        let mut others = Vec::new();
        let mut late = Vec::new();
        {
            let mut queue = self.outcomes.lock();
            let mut keys: std::collections::HashSet<String> =
                get_s(&mine, PARTITION_KEY).map(str::to_owned).into_iter().collect();
            let mut kept = Vec::new();
            for w in queue.waiting.drain(..) {
                let key = get_s(&w.item, PARTITION_KEY).map(str::to_owned).unwrap_or_default();
                if now >= w.start_by {
                    late.push(w);
                // One key twice would fail the whole batch: the second waits for the next.
                } else if others.len() + 1 < BATCH_WRITE_MAX && keys.insert(key) {
                    others.push(w);
                } else {
                    kept.push(w);
                }
            }
            queue.waiting = kept;
        }
        for w in late {
            let _ = w.turn.send(OutcomeTurn::Alone);
        }
        let (items, turns): (Vec<Item>, Vec<_>) = others.into_iter().map(|w| (w.item, w.turn)).unzip();
        let written = self.batch_write(std::iter::once(mine).chain(items).collect()).await;
        for (turn, done) in turns.into_iter().zip(written.iter().skip(1)) {
            let _ = turn.send(if *done { OutcomeTurn::Written } else { OutcomeTurn::Alone });
        }
        written.first().copied().unwrap_or(false)
    }

    /// One `BatchWriteItem` of `items`: which are known written. An error or a lost
    /// answer leaves them all unknown, and what DynamoDB left unprocessed (throttling) is
    /// not written; each of those is written alone, where a write of its own is found.
    /// Either pauses batching ([`PAUSE_AFTER_FAILURE`]).
    async fn batch_write(&self, items: Vec<Item>) -> Vec<bool> {
        let keys: Vec<Option<String>> = items.iter().map(|i| get_s(i, PARTITION_KEY).map(str::to_owned)).collect();
        let mut written = vec![false; items.len()];
        let requests: Result<Vec<_>, StoreError> = items
            .into_iter()
            .map(|item| {
                let put = build(aws_sdk_dynamodb::types::PutRequest::builder().set_item(Some(item)).build())?;
                Ok(aws_sdk_dynamodb::types::WriteRequest::builder().put_request(put).build())
            })
            .collect();
        let Ok(requests) = requests else { return written };
        let out = match self.client.batch_write_item().request_items(&self.table, requests).send().await {
            Ok(out) => out,
            Err(e) => {
                self.pause_batches();
                tracing::warn!(error = %store_error("BatchWriteItem", &e), records = keys.len(), "outcomes go alone");
                return written;
            }
        };
        let unprocessed: std::collections::HashSet<&str> = out
            .unprocessed_items()
            .and_then(|u| u.get(&self.table))
            .into_iter()
            .flatten()
            .filter_map(|w| w.put_request())
            .filter_map(|p| get_s(p.item(), PARTITION_KEY))
            .collect();
        if !unprocessed.is_empty() {
            self.pause_batches();
        }
        for (done, key) in written.iter_mut().zip(&keys) {
            *done = key.as_deref().is_some_and(|k| !unprocessed.contains(k));
        }
        written
    }

    /// Outcomes go alone for a while (see [`Outcomes::pause`]).
    fn pause_batches(&self) {
        self.outcomes.pause(self.call_bound.unwrap_or_default());
    }

    /// One conditional PutItem of the request's record: the lock of a fresh request, or
    /// the outcome a fresh request reached without sending (`decided`), the lock taken
    /// over from a dead attempt (`Mode::Takeover`), or an outcome written over this
    /// attempt's own lock (`Mode::Own`). An answer lost after the write, and the repeat
    /// that finds the record, is recognised by its attempt id.
    async fn put_request(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: &str,
        decided: Option<(Status, &str)>,
        mode: Mode<'_>,
        carried: Option<&Carried>,
    ) -> Result<Put1, StoreError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.request_item(a, now, attempt, decided, carried)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = match mode {
            Mode::Fresh => put.condition_expression(FRESH).expression_attribute_values(":now", n(ms(now))),
            Mode::Takeover(old) => put
                .condition_expression(TAKEOVER)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":now", n(ms(now)))
                .expression_attribute_values(":ip", s("in_progress"))
                .expression_attribute_values(":old", s(old))
                .expression_attribute_values(":fp", s(&a.fingerprint)),
            Mode::Own => {
                put.condition_expression("attempt = :attempt").expression_attribute_values(":attempt", s(attempt))
            }
        };
        let mut last = None;
        for try_ in 0..=AMBIGUOUS_RETRIES {
            if try_ > 0 {
                backoff(try_).await;
            }
            match put.clone().send().await {
                Ok(_) => return Ok(Put1::Written),
                Err(e) => match e.as_service_error() {
                    Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                        let item = c.item().cloned().unwrap_or_default();
                        if get_s(&item, "attempt") == Some(attempt) {
                            return Ok(Put1::Written);
                        }
                        return Ok(Put1::Refused(item));
                    }
                    // A timeout or a 5xx: the put may have been written. The same put again
                    // is safe: it writes, or finds the record with this attempt id.
                    _ if e.as_service_error().is_none() || is_retryable_code(e.code()) => last = Some(e),
                    _ => return Err(store_error("PutItem", &e)),
                },
            }
        }
        Err(last.map_or_else(|| StoreError::new("dynamodb PutItem: not sent"), |e| store_error("PutItem", &e)))
    }

    /// The reads before the lock: the address on the global list and on the tenant's,
    /// and (marketing) the recipient's consent. What refuses the request, suppression
    /// first. The reads of the admissions running together (the records of one
    /// invocation) go out as one eventually consistent `BatchGetItem` ([`Self::shared_read`]);
    /// the refusals it shows, as one strongly consistent one before they count.
    ///
    /// With caps, it also hands back the recipient item as read (`Seen`), for the cap
    /// update to write its lists whole, unless another admission of the read shares it.
    async fn screen(&self, a: &Admission) -> Result<(Option<Verdict>, Option<Seen>), StoreError> {
        let sup: Vec<String> =
            std::iter::once(&a.suppression_key).chain(a.tenant_suppression_key.as_ref()).map(sup_pk).collect();
        let consent = a.consent.as_ref().map(|c| consent_pk(&c.recipient_key));
        let keys: Vec<String> = sup.iter().cloned().chain(consent.clone()).collect();
        // Admitted: the recipient item as read, for the cap update, unless shared.
        let admitted = |mut read: Read| {
            let seen = consent
                .as_ref()
                .filter(|key| !a.caps.is_empty() && !read.shared.contains(key))
                .map(|key| Seen(read.items.remove(key)));
            (None, seen)
        };
        let read = self.shared_read(&keys, false).await?;
        if judge(a, &sup, consent.as_deref(), &read.items).is_none() {
            return Ok(admitted(read));
        }
        // A refusal is recorded for the whole retention: not on a replica's word. A
        // suppression lifted, or a consent given, a moment ago must not refuse; a read
        // that agrees confirms it. The refused records of an invocation confirm together
        // (one strongly consistent `BatchGetItem`, a hot suppressed address read once).
        let confirmed = self.shared_read(&keys, true).await?;
        match judge(a, &sup, consent.as_deref(), &confirmed.items) {
            None => Ok(admitted(confirmed)),
            refused => Ok((refused, None)),
        }
    }

    /// One `BatchGetItem` of `keys` shared with the admissions that reach the same point
    /// together (the records of one invocation): the first caller lets the others get
    /// here, then reads for all of them. Eventually consistent, or (`consistent`)
    /// strongly, each in its own queue.
    async fn shared_read(&self, keys: &[String], consistent: bool) -> Result<Read, StoreError> {
        let reads: &Reads = if consistent { &self.confirms } else { &self.reads };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let leader = {
            let mut waiting = reads.lock();
            waiting.push(Waiter { keys: keys.to_vec(), answer });
            waiting.len() == 1
        };
        if leader {
            let mut turn = LeaderTurn { reads, done: false };
            // A few scheduler turns: the batch's other records are polled on this task
            // between two of them, and stop here too.
            gather(|| reads.lock().len()).await;
            let batch = std::mem::take(&mut *reads.lock());
            turn.done = true;
            let all: Vec<String> = batch
                .iter()
                .flat_map(|w| w.keys.iter().cloned())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let mut found = self.read_items(all, consistent).await;
            let mut asked: HashMap<String, usize> = HashMap::new();
            for k in batch.iter().flat_map(|w| &w.keys) {
                *asked.entry(k.clone()).or_default() += 1;
            }
            for w in batch {
                let mine = match &mut found {
                    Ok(found) => {
                        let mut read = Read { items: HashMap::new(), shared: Vec::new() };
                        for k in &w.keys {
                            // An item one admission asked for is moved to it, a shared one copied.
                            let item = if asked.get(k).is_some_and(|n| *n > 1) {
                                read.shared.push(k.clone());
                                found.get(k).cloned()
                            } else {
                                found.remove(k)
                            };
                            if let Some(item) = item {
                                read.items.insert(k.clone(), item);
                            }
                        }
                        Ok(read)
                    }
                    Err(e) => Err(StoreError::new(e.to_string())),
                };
                let _ = w.answer.send(mine);
            }
        }
        match answered.await {
            Ok(read) => read,
            // The caller that was to read for us went away: read alone.
            Err(_) => Ok(Read { items: self.read_items(keys.to_vec(), consistent).await?, shared: Vec::new() }),
        }
    }

    /// Items by partition key (`SUP#…`, `CONSENT#…`; the sort key follows from it),
    /// whole (the recipient item's cap lists serve the cap update; a read costs the same
    /// up to 4 KB), `BatchGetItem` by 100 keys, unprocessed keys sent again with a backoff.
    ///
    /// Eventually consistent (the screen's first read): half a read unit per item, and
    /// twice the reads one hot key (a shared inbox's suppression item) serves per second.
    /// What it can miss is a suppression or consent change written within the replicas'
    /// lag (usually well under a second), no more than a strongly consistent read made
    /// that much earlier; nothing it reads decides idempotency or a cap, which are
    /// conditions of the writes. `consistent` for the read that confirms a refusal.
    async fn read_items(&self, keys: Vec<String>, consistent: bool) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut wanted: Vec<_> = chunk
                .iter()
                .map(|pk| key(pk.clone(), pk.split_once('#').map_or(pk.as_str(), |(kind, _)| kind)))
                .collect();
            let mut delay = Duration::from_millis(20);
            for round in 0.. {
                if round == 5 {
                    return Err(StoreError::new("dynamodb BatchGetItem: keys left unprocessed (throttled)"));
                }
                let request = build(
                    aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                        .set_keys(Some(wanted.clone()))
                        .consistent_read(consistent)
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| store_error("BatchGetItem", &e))?;
                for item in out.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(pk) = get_s(item, PARTITION_KEY) {
                        found.insert(pk.to_owned(), item.clone());
                    }
                }
                wanted = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                if wanted.is_empty() {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        Ok(found)
    }

    /// Writes a decided outcome if the request is takeable. Returns the record that
    /// stood in the way otherwise.
    async fn put_decided(
        &self,
        key: &IdempotencyKey,
        fingerprint: &str,
        status: Status,
        reason: Option<&str>,
        at: Timestamp,
        retain_until: Timestamp,
    ) -> Result<Recorded, StoreError> {
        let mut item = req_key(key);
        item.insert("state".into(), s("done"));
        item.insert("status".into(), s(status.as_str()));
        if let Some(r) = reason {
            item.insert("reason".into(), s(r));
        }
        item.insert("fp".into(), s(fingerprint));
        item.insert("at_ms".into(), n(ms(at)));
        item.insert("retain_until_ms".into(), n(ms(retain_until)));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(retain_until)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(TAKEABLE)
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", n(ms(at)))
            .expression_attribute_values(":ip", s("in_progress"))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Recorded::Stored),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    let item = c.item().cloned().unwrap_or_default();
                    Ok(match get_s(&item, "state") {
                        Some("done") => Recorded::Existing(prior_from(&item)),
                        _ => Recorded::InProgress { until: from_ms(get_n(&item, "lock_expires_ms").unwrap_or(ms(at))) },
                    })
                }
                _ => Err(store_error("PutItem", &e)),
            },
        }
    }

    /// Removes this lease's slots from their cap lists on the recipient item (read,
    /// then a conditional remove by index, retried if a concurrent send shifted the
    /// list).
    async fn release_slots(&self, lease: &Lease) -> Result<(), StoreError> {
        let Some(recipient) = &lease.recipient else { return Ok(()) };
        for (cap, slot) in &lease.slots {
            let attribute = &lease_cap_attribute(recipient, cap);
            for _ in 0..5 {
                let item = self.read(consent_key(recipient), Some(attribute)).await?;
                let list = item
                    .as_ref()
                    .and_then(|i| i.get(attribute))
                    .and_then(|v| v.as_l().ok())
                    .cloned()
                    .unwrap_or_default();
                let Some(index) = list.iter().position(|v| v.as_s().is_ok_and(|x| x == slot)) else {
                    break;
                };
                let value = list[index].clone();
                let removed = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(consent_key(recipient)))
                    .update_expression(format!("REMOVE #k[{index}]"))
                    .condition_expression(format!("#k[{index}] = :slot"))
                    .expression_attribute_names("#k", attribute)
                    .expression_attribute_values(":slot", value)
                    .send()
                    .await;
                match removed {
                    Ok(_) => break,
                    Err(e) if e.code() == Some("ConditionalCheckFailedException") => continue,
                    Err(e) => return Err(store_error("UpdateItem", &e)),
                }
            }
        }
        Ok(())
    }

    /// Drops the entries past the window's reach (`[limit]` and the next few) from
    /// the lease's cap lists. Each send adds one entry; one completion in
    /// `TRIM_EVERY` removes up to `TRIM_SPAN`, so a list stays near `limit` entries
    /// for a quarter of the write units a trim per send would cost.
    async fn trim(&self, lease: &Lease) {
        let Some(recipient) = &lease.recipient else { return };
        if lease.cap_limits.is_empty() || lease.attempt.as_bytes().last().is_some_and(|b| b % TRIM_EVERY != 0) {
            return;
        }
        let mut names = HashMap::new();
        let mut removes = Vec::new();
        for (i, (cap, limit)) in lease.cap_limits.iter().enumerate() {
            names.insert(format!("#k{i}"), lease_cap_attribute(recipient, cap));
            removes.extend((*limit..limit.saturating_add(TRIM_SPAN)).map(|at| format!("#k{i}[{at}]")));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(consent_key(recipient)))
            .update_expression(format!("REMOVE {}", removes.join(", ")))
            .condition_expression("attribute_exists(pk)")
            .set_expression_attribute_names(Some(names))
            .send()
            .await;
        if let Err(e) = result {
            tracing::debug!(error = ?e.code(), "cap trim failed; a later completion trims");
        }
    }
}

/// What the screen's items refuse the admission for, suppression first: the address on
/// a list (`sup`, partition keys), or the recipient unsubscribed from the category
/// (`consent`, the recipient item's partition key).
fn judge(a: &Admission, sup: &[String], consent: Option<&str>, items: &HashMap<String, Item>) -> Option<Verdict> {
    if let Some(item) = sup.iter().find_map(|k| items.get(k)) {
        let reason = get_s(item, "reason").and_then(|r| r.parse().ok()).unwrap_or(SuppressionReason::Manual);
        return Some(Verdict::Suppressed(reason));
    }
    match (&a.consent, consent) {
        (Some(c), Some(key)) if !consents(items.get(key), &c.category) => {
            Some(Verdict::Unsubscribed { category: c.category.clone() })
        }
        _ => None,
    }
}

/// How the recipient item answered.
enum Rails {
    /// The slots are taken (now, or by a write of ours whose answer was lost);
    /// `trimmed` when the lists were written whole, trimmed (no trim at completion).
    Passed {
        trimmed: bool,
    },
    Refused(Verdict),
}

/// The recipient item as the screen read it (eventually consistent; `None`: no such
/// item): the lists a cap update may write whole.
struct Seen(Option<Item>);

/// The expression of a cap update being built.
#[derive(Default)]
struct CapUpdate {
    sets: Vec<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl CapUpdate {
    /// An update that checks consent again, when the admission has a category to check:
    /// subscribed unless the category says false, or it is silent and `*` says false.
    fn new(a: &Admission) -> Self {
        let mut update = CapUpdate::default();
        if let Some(c) = &a.consent {
            update.conditions.push(
                "(attribute_not_exists(cats) OR cats.#c = :t OR (attribute_not_exists(cats.#c) AND (attribute_not_exists(cats.#all) OR cats.#all = :t)))"
                    .to_owned(),
            );
            update.names.insert("#c".to_owned(), c.category.clone());
            update.names.insert("#all".to_owned(), "*".to_owned());
            update.values.insert(":t".to_owned(), AttributeValue::Bool(true));
        }
        update
    }

    /// Each cap list written whole: `mine`, then the `limit - 1` newest entries of the
    /// list in `item` (the ones a window can still reach once `mine` is in front; the
    /// update by index keeps those and more, until a trim) and any older one still inside
    /// the window by the wall clock (only the wall clock prunes: an admission at a pinned
    /// `now` must not drop slots real sends hold), on condition that the list is still
    /// the one read. False, adding nothing, when `item` shows a cap full (or a limit of
    /// 0): the update by index then refuses with the item that does.
    fn whole_lists(&mut self, a: &Admission, now: Timestamp, mine: &str, item: Option<&Item>) -> bool {
        let wall = ms(Timestamp::now());
        let mut planned = Vec::with_capacity(a.caps.len());
        for cap in &a.caps {
            let attribute = cap_attribute(&cap.rule);
            let read = item.and_then(|i| i.get(&attribute));
            // Absent: empty. Not a list: the update by index decides.
            let Some(old) = read.map_or(Some(&[][..]), |v| v.as_l().ok().map(Vec::as_slice)) else { return false };
            let Some(keep) = (cap.limit as usize).checked_sub(1) else { return false };
            if cap_full(old, cap, now) {
                return false;
            }
            let live = since_value(wall.saturating_sub(cap.window_seconds.saturating_mul(1000)));
            let kept = old
                .iter()
                .enumerate()
                .filter(|(i, v)| *i < keep || v.as_s().is_ok_and(|x| x.as_str() > live.as_str()))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>();
            planned.push((attribute, read.cloned(), kept));
        }
        for (i, (attribute, read, kept)) in planned.into_iter().enumerate() {
            self.names.insert(format!("#k{i}"), attribute);
            let mut list = Vec::with_capacity(kept.len() + 1);
            list.push(s(mine));
            list.extend(kept);
            self.values.insert(format!(":l{i}"), AttributeValue::L(list));
            self.sets.push(format!("#k{i} = :l{i}"));
            match read {
                Some(old) => {
                    self.values.insert(format!(":o{i}"), old);
                    self.conditions.push(format!("#k{i} = :o{i}"));
                }
                None => self.conditions.push(format!("attribute_not_exists(#k{i})")),
            }
        }
        true
    }

    /// Each cap list by index: `mine` on the front, if `[limit-1]` is absent or out of the
    /// window and `mine` is on no list yet.
    fn by_index(&mut self, a: &Admission, now: Timestamp, mine: &str) {
        for (i, cap) in a.caps.iter().enumerate() {
            let since = ms(now).saturating_sub(cap.window_seconds.saturating_mul(1000));
            let last = cap.limit.saturating_sub(1);
            self.names.insert(format!("#k{i}"), cap_attribute(&cap.rule));
            self.values.insert(format!(":s{i}"), s(since_value(since)));
            self.sets.push(format!("#k{i} = list_append(:new, if_not_exists(#k{i}, :empty))"));
            self.conditions.push(format!("(attribute_not_exists(#k{i}[{last}]) OR #k{i}[{last}] <= :s{i})"));
            self.conditions.push(format!("NOT contains(#k{i}, :mine)"));
        }
        self.values.insert(":mine".to_owned(), s(mine));
        self.values.insert(":new".to_owned(), AttributeValue::L(vec![s(mine)]));
        self.values.insert(":empty".to_owned(), AttributeValue::L(vec![]));
    }
}

/// The condition of a put of the request's record.
#[derive(Clone, Copy)]
enum Mode<'a> {
    /// New, or retention over.
    Fresh,
    /// The expired lock of this dead attempt.
    Takeover(&'a str),
    /// This attempt's own lock.
    Own,
}

/// How a single conditional put of the request's record ended.
enum Put1 {
    Written,
    /// The condition failed: the record that stood in the way.
    Refused(HashMap<String, AttributeValue>),
}

/// One completion in `TRIM_EVERY` (by the attempt id's last byte) trims its caps.
const TRIM_EVERY: u8 = 4;
/// How many entries past the limit one trim removes.
const TRIM_SPAN: u32 = 8;

/// The recipient whose item carries the request's consent check and cap slots.
fn recipient_of(a: &Admission) -> Option<&RecipientKey> {
    a.consent.as_ref().map(|c| &c.recipient_key).or_else(|| a.caps.first().map(|c| &c.recipient_key))
}

/// What a lock of a request with caps carries for a takeover: its slot id (random per
/// record, so nothing on the recipient item links it to the request) and when the
/// request's first attempt locked.
#[derive(Debug, Clone)]
struct Carried {
    first_ms: i64,
    slot: String,
}

impl Carried {
    fn from_item(item: &HashMap<String, AttributeValue>) -> Option<Carried> {
        Some(Carried { first_ms: get_n(item, "first_ms")?, slot: get_s(item, "slot")?.to_owned() })
    }
}

/// The prefix of the recipient item's cap list attributes.
const CAP_PREFIX: &str = "cap:";

/// A short, jittered pause before a repeat of an admission write.
async fn backoff(try_: u32) {
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20;
    tokio::time::sleep(Duration::from_millis((20u64 << try_.min(4)) + jitter)).await;
}

/// The recipient item's attribute holding one cap rule's list of slots.
fn cap_attribute(rule: &str) -> String {
    format!("{CAP_PREFIX}{rule}")
}

/// The attribute of a lease's cap, from its key (`RecipientKey::cap`: the recipient,
/// `#`, the rule).
fn lease_cap_attribute(recipient: &RecipientKey, cap: &str) -> String {
    let prefix = format!("{recipient}#");
    cap_attribute(cap.strip_prefix(&prefix).unwrap_or(cap))
}

/// What stood in the request's way.
enum Refusal {
    Verdict(Verdict),
    /// The lock belongs to an attempt of the same message whose lock expired: take it over.
    ExpiredLock {
        attempt: String,
        /// What the lock carries for a takeover (None without caps, and on records
        /// written before it was kept).
        carried: Option<Carried>,
    },
}

/// A request's record with its outcome, whole: what a batched outcome puts. The same
/// attributes as the conditional update leaves (the lock's own go: `lock_expires_ms`,
/// and `first_ms`/`slot`, which only a takeover of a lock reads).
fn outcome_item(lease: &Lease, c: &Completion) -> Item {
    let mut item = req_key(&lease.idempotency_key);
    item.insert("state".into(), s("done"));
    item.insert("status".into(), s(c.status.as_str()));
    if let Some(reason) = &c.reason {
        item.insert("reason".into(), s(reason));
    }
    if let Some(id) = &c.provider_message_id {
        item.insert("provider_message_id".into(), s(id));
    }
    item.insert("at_ms".into(), n(ms(c.at)));
    item.insert("retain_until_ms".into(), n(ms(c.retain_until)));
    item.insert(TTL_ATTRIBUTE.into(), n(secs(c.retain_until)));
    item.insert("attempt".into(), s(&lease.attempt));
    item.insert("fp".into(), s(&lease.fingerprint));
    item
}

fn prior_from(item: &HashMap<String, AttributeValue>) -> PriorOutcome {
    PriorOutcome {
        status: get_s(item, "status").and_then(|v| v.parse().ok()).unwrap_or(Status::Failed),
        reason: get_s(item, "reason").map(str::to_owned),
        provider_message_id: get_s(item, "provider_message_id").map(str::to_owned),
        at: from_ms(get_n(item, "at_ms").unwrap_or(0)),
        fingerprint: get_s(item, "fp").map(str::to_owned),
    }
}

/// Reads the request record that refused a fresh lock.
fn request_refusal(item: &HashMap<String, AttributeValue>, a: &Admission, now: Timestamp) -> Refusal {
    if get_s(item, "state") == Some("done") {
        return Refusal::Verdict(Verdict::Duplicate(prior_from(item)));
    }
    let lock = get_n(item, "lock_expires_ms");
    let same_message = get_s(item, "fp") == Some(a.fingerprint.as_str());
    match (lock, get_s(item, "attempt")) {
        (Some(lock), Some(old)) if lock <= ms(now) && same_message => {
            Refusal::ExpiredLock { attempt: old.to_owned(), carried: Carried::from_item(item) }
        }
        // Another message's attempt ended without an outcome: this one is a duplicate.
        (Some(lock), _) if lock <= ms(now) => Refusal::Verdict(Verdict::Undecided),
        _ => Refusal::Verdict(Verdict::InProgress { until: from_ms(lock.unwrap_or(ms(a.lock_expires_at))) }),
    }
}

/// Whether one of the admission's cap lists on the recipient item holds a slot the
/// test accepts.
fn holds_slot(item: &HashMap<String, AttributeValue>, a: &Admission, test: impl Fn(&str) -> bool) -> bool {
    a.caps.iter().any(|cap| {
        item.get(&cap_attribute(&cap.rule))
            .and_then(|v| v.as_l().ok())
            .is_some_and(|list| list.iter().any(|v| v.as_s().is_ok_and(|x| test(x))))
    })
}

/// Consent on a recipient item, by the admission condition's own terms: subscribed when
/// the category says true, or says nothing and `*` says true or nothing. Any other value
/// (false, or not a boolean) is a refusal.
fn consents(item: Option<&HashMap<String, AttributeValue>>, category: &str) -> bool {
    match item.and_then(|i| i.get("cats")).and_then(|v| v.as_m().ok()) {
        None => true,
        Some(cats) => match (cats.get(category), cats.get("*")) {
            (Some(v), _) => v.as_bool().is_ok_and(|b| *b),
            (None, Some(all)) => all.as_bool().is_ok_and(|b| *b),
            (None, None) => true,
        },
    }
}

/// Reads the recipient item that refused the admission: unsubscribed from the
/// category, or a cap full (the first in the admission's order). None when neither
/// holds any more (it changed since): try again.
fn recipient_refusal(item: &HashMap<String, AttributeValue>, a: &Admission, now: Timestamp) -> Option<Verdict> {
    if let Some(c) = &a.consent
        && !consents(Some(item), &c.category)
    {
        return Some(Verdict::Unsubscribed { category: c.category.clone() });
    }
    for cap in &a.caps {
        let list = item.get(&cap_attribute(&cap.rule)).and_then(|v| v.as_l().ok());
        if list.is_some_and(|l| cap_full(l, cap, now)) {
            return Some(Verdict::Capped { rule: cap.rule.clone() });
        }
    }
    None
}

/// Whether a cap list (newest first) holds `limit` sends since `now - window`: its
/// `[limit - 1]` entry is inside the window. `CapUpdate::by_index` says the same as a
/// condition of the write.
fn cap_full(list: &[AttributeValue], cap: &CapCheck, now: Timestamp) -> bool {
    let since = since_value(ms(now).saturating_sub(cap.window_seconds.saturating_mul(1000)));
    list.get(cap.limit.saturating_sub(1) as usize)
        .and_then(|v| v.as_s().ok())
        .is_some_and(|v| v.as_str() > since.as_str())
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn admit(&self, a: &Admission) -> Result<Verdict, StoreError> {
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        // Read before the lock, not checked in a write: a suppression or unsubscribe
        // recorded in about the second before this read (eventually consistent) or
        // after it, before the send, is missed, as one recorded just after a check
        // inside the write would be.
        let (refusal, mut seen) = self.screen(a).await?;
        let started = std::time::Instant::now();
        let mut takeover: Option<(String, Option<Carried>)> = None;
        for _ in 0..=CONFLICT_RETRIES {
            // A fresh instant per try: a retry must not file its lock, or judge a cap
            // window, at the time of the first try.
            let elapsed = jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default();
            let now = a.now.checked_add(elapsed).unwrap_or(a.now);
            let refused = if let Some((old, carried)) = &takeover {
                match self.put_request(a, now, &attempt, None, Mode::Takeover(old), carried.as_ref()).await? {
                    Put1::Written => {
                        return self
                            .after_takeover(a, now, attempt, carried.clone(), refusal.as_ref(), seen.take())
                            .await;
                    }
                    // The dead attempt's record went (abandoned, or retention over):
                    // the request is fresh again.
                    Put1::Refused(item) if item.is_empty() => {
                        takeover = None;
                        continue;
                    }
                    Put1::Refused(item) => item,
                }
            } else if let Some(verdict) = &refusal {
                let Some((status, reason)) = verdict.decided() else { return Ok(verdict.clone()) };
                let reason = reason.to_string();
                match self.put_request(a, now, &attempt, Some((status, &reason)), Mode::Fresh, None).await? {
                    Put1::Written => return Ok(verdict.clone()),
                    Put1::Refused(item) => item,
                }
            } else {
                let carried = (!a.caps.is_empty())
                    .then(|| Carried { first_ms: ms(now), slot: attempt.chars().rev().take(12).collect() });
                match self.put_request(a, now, &attempt, None, Mode::Fresh, carried.as_ref()).await? {
                    Put1::Written => {
                        let slot = carried.map(|c| c.slot).unwrap_or_default();
                        return self.after_lock(a, now, attempt, &slot, seen.take()).await;
                    }
                    Put1::Refused(item) => item,
                }
            };
            match request_refusal(&refused, a, now) {
                Refusal::Verdict(verdict) => return Ok(verdict),
                Refusal::ExpiredLock { attempt: old, carried } => takeover = Some((old, carried)),
            }
        }
        Err(StoreError::new("dynamodb admission: the request's record kept changing"))
    }

    async fn record(&self, d: &Decision) -> Result<Recorded, StoreError> {
        self.put_decided(&d.idempotency_key, &d.fingerprint, d.status, d.reason.as_deref(), d.at, d.retain_until).await
    }

    async fn complete(&self, lease: &Lease, c: &Completion) -> Result<(), StoreError> {
        let record = async {
            if let Some(start_by) = self.batch_start_by(lease, c)
                && self.write_in_batch(outcome_item(lease, c), start_by).await
            {
                return Ok(true);
            }
            self.complete_alone(lease, c).await
        };
        let (ours, ()) = tokio::join!(record, self.trim(lease));
        // Not ours: the lock was taken over after it expired; the takeover's outcome
        // stands, and the slots, which moved with the lock, are its to release.
        if ours? && c.release_slots {
            self.release_slots(lease).await?;
        }
        Ok(())
    }

    async fn abandon(&self, lease: &Lease, release: Release) -> Result<(), StoreError> {
        let outcome = match release {
            Release::Everything => self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(req_key(&lease.idempotency_key)))
                .condition_expression("attempt = :attempt AND #state = :ip")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":attempt", s(&lease.attempt))
                .expression_attribute_values(":ip", s("in_progress"))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await
                .map(|_| ())
                .or_else(|e| {
                    // No record left: our own delete, written by a first try whose answer
                    // was lost. The slots must still go back.
                    let gone = matches!(
                        e.as_service_error(),
                        Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(f))
                            if f.item().is_none_or(HashMap::is_empty)
                    );
                    if gone { Ok(()) } else { Err((e.code().map(str::to_owned), store_error("DeleteItem", &e))) }
                }),
            Release::ForTakeover => self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(req_key(&lease.idempotency_key)))
                .update_expression("SET lock_expires_ms = :zero")
                .condition_expression("attempt = :attempt AND #state = :ip")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":attempt", s(&lease.attempt))
                .expression_attribute_values(":ip", s("in_progress"))
                .expression_attribute_values(":zero", n(0))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (e.code().map(str::to_owned), store_error("UpdateItem", &e))),
        };
        match outcome {
            Ok(()) => {}
            // The lock was taken over meanwhile: nothing of ours to give up, the slots
            // included (they moved with the lock).
            Err((Some(code), _)) if code == "ConditionalCheckFailedException" => return Ok(()),
            Err((_, e)) => return Err(e),
        }
        if release == Release::Everything { self.release_slots(lease).await } else { Ok(()) }
    }

    async fn suppress(&self, entry: &SuppressionEntry, at: Timestamp) -> Result<(), StoreError> {
        let mut item = sup_key(&entry.key);
        item.insert("reason".into(), s(entry.reason.as_str()));
        item.insert("at_ms".into(), n(ms(at)));
        self.put(item).await
    }

    async fn unsuppress(&self, key: &SuppressionKey) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(sup_key(key)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| store_error("DeleteItem", &e))?;
        Ok(out.attributes().is_some_and(|a| !a.is_empty()))
    }

    async fn set_consent(
        &self,
        recipient_key: &RecipientKey,
        category: &str,
        subscribed: bool,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        if category == "*" && subscribed {
            // Every category back: the consent map goes, the item (and its cap
            // lists) stays.
            let removed = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(consent_key(recipient_key)))
                .update_expression("REMOVE cats")
                .condition_expression("attribute_exists(pk)")
                .send()
                .await;
            return match removed {
                Err(e) if !is_condition_failure(&e) => Err(store_error("UpdateItem", &e)),
                _ => Ok(()),
            };
        }
        self.set_map_entry(consent_key(recipient_key), "cats", category, AttributeValue::Bool(subscribed)).await
    }
}

fn claim_key(id: &str) -> HashMap<String, AttributeValue> {
    key(format!("ONCE#{id}"), "ONCE")
}

fn event_key(event_id: &str) -> HashMap<String, AttributeValue> {
    key(format!("EVT#{event_id}"), "EVT")
}

/// One item holds every disabled webhook subscription: the webhooks function reads it
/// once per invocation.
fn endpoints_key() -> HashMap<String, AttributeValue> {
    key("WEBHOOKS".to_owned(), "WEBHOOKS")
}

/// DynamoDB items stop at 400 KB: an archived payload is cut well below.
const MAX_ARCHIVED_BYTES: usize = 300 * 1024;

fn is_condition_failure<E: ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

#[async_trait]
impl EventStore for DynamoStore {
    async fn advance_delivery(
        &self,
        key: &IdempotencyKey,
        kind: EventKind,
        at: Timestamp,
    ) -> Result<Advance, StoreError> {
        let Some(rank) = kind.status_rank() else { return Ok(Advance::Behind) };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(req_key(key)))
            .update_expression("SET delivery = :d, delivery_rank = :r, delivery_at_ms = :at")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(delivery_rank) OR delivery_rank < :r)",
            )
            .expression_attribute_values(":d", s(kind.as_str()))
            .expression_attribute_values(":r", n(i64::from(rank)))
            .expression_attribute_values(":at", n(ms(at)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Advance::Moved),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c)) => {
                    Ok(if c.item().is_some_and(|i| !i.is_empty()) { Advance::Behind } else { Advance::UnknownRequest })
                }
                _ => Err(store_error("UpdateItem", &e)),
            },
        }
    }

    async fn request_state(&self, key: &IdempotencyKey) -> Result<Option<RequestState>, StoreError> {
        let Some(ref item) = self.read(req_key(key), None).await? else { return Ok(None) };
        let done = get_s(item, "state") == Some("done");
        let delivery = get_s(item, "delivery")
            .and_then(|d| d.parse::<EventKind>().ok())
            .map(|kind| (kind, from_ms(get_n(item, "delivery_at_ms").unwrap_or(0))));
        Ok(Some(RequestState {
            status: if done { get_s(item, "status").and_then(|st| st.parse().ok()) } else { None },
            reason: get_s(item, "reason").map(str::to_owned),
            provider_message_id: get_s(item, "provider_message_id").map(str::to_owned),
            at: from_ms(get_n(item, "at_ms").unwrap_or(0)),
            delivery,
        }))
    }

    async fn archive_event(&self, event: &DeliveryEvent, raw: &str, retain_until: Timestamp) -> Result<(), StoreError> {
        let (raw, _) = crate::receipt::bounded(raw, MAX_ARCHIVED_BYTES);
        let mut item = event_key(&event.event_id);
        item.insert("event".into(), s(event.to_json()));
        item.insert("raw".into(), s(raw));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(retain_until)));
        self.put(item).await
    }

    async fn opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<(), StoreError> {
        let mut item = sup_key(key);
        item.insert("reason".into(), s(SuppressionReason::OptedOut.as_str()));
        item.insert("at_ms".into(), n(ms(at)));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR (reason = :r AND at_ms < :at)")
            .expression_attribute_values(":r", s(SuppressionReason::OptedOut.as_str()))
            .expression_attribute_values(":at", n(ms(at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(store_error("PutItem", &e)),
        }
    }

    async fn lift_opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(sup_key(key)))
            .condition_expression("reason = :r AND at_ms < :at")
            .expression_attribute_values(":r", s(SuppressionReason::OptedOut.as_str()))
            .expression_attribute_values(":at", n(ms(at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("DeleteItem", &e)),
        }
    }

    async fn claim(&self, id: &str, now: Timestamp, lock_until: Timestamp) -> Result<Claim, StoreError> {
        // The SDK may send the put again when an answer is lost: finding its own owner
        // on the item, the repeat knows the claim is ours, not someone else's.
        let owner = uuid::Uuid::new_v4().to_string();
        let mut item = claim_key(id);
        item.insert("state".into(), s("pending"));
        item.insert("owner".into(), s(&owner));
        item.insert("lock_expires_ms".into(), n(ms(lock_until)));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(lock_until) + 86_400));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(pk) OR (#state = :pending AND lock_expires_ms <= :now) \
                 OR (#state = :done AND retain_until_ms <= :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":done", s("done"))
            .expression_attribute_values(":now", n(ms(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::New),
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c)) => {
                    let old = c.item();
                    let done = old.is_some_and(|i| get_s(i, "state") == Some("done"));
                    let ours = old.is_some_and(|i| get_s(i, "owner") == Some(owner.as_str()));
                    Ok(if ours {
                        Claim::New
                    } else if done {
                        Claim::Done
                    } else {
                        Claim::Busy
                    })
                }
                _ => Err(store_error("PutItem", &e)),
            },
        }
    }

    async fn finish(&self, id: &str, retain_until: Timestamp) -> Result<(), StoreError> {
        let mut item = claim_key(id);
        item.insert("state".into(), s("done"));
        item.insert("retain_until_ms".into(), n(ms(retain_until)));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(retain_until)));
        self.put(item).await
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(id)))
            .condition_expression("#state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":pending", s("pending"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(store_error("DeleteItem", &e)),
        }
    }

    async fn disable_endpoint(&self, subscription: &str, at: Timestamp) -> Result<(), StoreError> {
        self.set_map_entry(endpoints_key(), "disabled", subscription, n(ms(at))).await
    }

    async fn enable_endpoint(&self, subscription: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(endpoints_key()))
            .update_expression("REMOVE disabled.#id")
            .condition_expression("attribute_exists(disabled.#id)")
            .expression_attribute_names("#id", subscription)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(store_error("UpdateItem", &e)),
        }
    }

    async fn disabled_endpoints(&self) -> Result<BTreeMap<String, Timestamp>, StoreError> {
        let item = self.read(endpoints_key(), Some("disabled")).await?;
        let Some(AttributeValue::M(disabled)) = item.as_ref().and_then(|i| i.get("disabled")) else {
            return Ok(BTreeMap::new());
        };
        Ok(disabled
            .iter()
            .map(|(id, at)| (id.clone(), from_ms(at.as_n().ok().and_then(|v| v.parse().ok()).unwrap_or(0))))
            .collect())
    }
}
