//! State in one DynamoDB table, keyed `pk` (S) + `sk` (S), with TTL on
//! `expires_at` (epoch seconds) for everything that expires.
//!
//! | item        | pk                          | sk        | attributes |
//! |-------------|-----------------------------|-----------|------------|
//! | idempotency | `REQ#<tenant/request id>`   | `REQ`     | state (in_progress/done), status, reason, provider_message_id, at_ms, lock_expires_ms, retain_until_ms, attempt, expires_at |
//! | cap         | `CAP#<tenant/recipient>#<rule>` | `CAP` | ts (list, newest first, of `<ms>#<slot id>`), expires_at |
//! | suppression | `SUP#<address key>`         | `SUP`     | reason, at_ms |
//! | consent     | `CONSENT#<tenant/recipient>`| `CONSENT` | cats (map category -> subscribed) |
//! | (idempotency, once events arrive) | | | delivery, delivery_rank, delivery_at_ms: the latest delivery event |
//! | event audit | `EVT#<event id>`            | `EVT`     | event (JSON), raw (the provider's payload), expires_at |
//! | use-once    | `ONCE#<id>`                 | `ONCE`    | state (pending/done), lock_expires_ms, retain_until_ms, expires_at |
//! | webhooks    | `WEBHOOKS`                  | `WEBHOOKS`| disabled (map subscription -> ms) |
//!
//! A suppression key is global (`email:<address>`) or one tenant's
//! (`<len>:<tenant>/email:<address>`); a request with a tenant is checked against both.
//!
//! Admission is ONE `TransactWriteItems`: condition checks on the suppression and
//! consent items, a conditional put of the IN_PROGRESS lock, and one conditional
//! update per cap. It carries a `ClientRequestToken`, so the SDK's retry of a
//! transaction whose answer was lost is answered from DynamoDB's idempotency cache
//! instead of finding our own lock and deferring. Of the cancellation reasons, the
//! lock's is read first: a request with an outcome keeps it, even if its address
//! was suppressed since. A lock left by a dead attempt is taken over by a second
//! transaction conditioned on that attempt's id, and the lease says so. A cap keeps the timestamps of its recent sends newest first, so
//! "fewer than `limit` sends since `now - window`" is the condition
//! `attribute_not_exists(ts[limit-1]) OR ts[limit-1] <= :since`: exact rolling
//! windows, atomic across concurrent Lambdas, no read first. Completion is one
//! `UpdateItem` (plus a trim of each cap list, sent alongside). So a sent message
//! costs 2 round trips. The cancellation reasons of a refused transaction say which
//! check failed; `ReturnValuesOnConditionCheckFailure` returns the prior record for
//! duplicates.
//!
//! Write units of a sent non-transactional message with one cap rule: admission is a
//! transaction of 4 items (suppression check, consent check, lock put, cap update),
//! 2 WCU each for items under 1 KB = 8 WCU; completion 1 WCU; the cap trim 1 WCU:
//! 10 WCU. Transactional messages skip consent and caps: 4 + 1 = 5 WCU. A request with
//! a tenant adds its tenant's suppression check: 2 WCU more.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use jiff::Timestamp;

use crate::ports::{
    Admission, Advance, Claim, Completion, Decision, EventStore, Lease, PriorOutcome, Recorded, Release, RequestState,
    StateStore, StoreError, SuppressionEntry, SuppressionReason, Verdict,
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

/// How often an admission whose outcome is unknown (a timeout, a 5xx after the SDK's
/// own retries) is sent again unchanged, token included: DynamoDB answers a repeat
/// within 10 minutes from its idempotency cache, so a transaction that did commit is
/// recognised instead of leaving a lock nobody owns.
const AMBIGUOUS_RETRIES: u32 = 2;

/// How often admission is retried in-process when DynamoDB reports a transaction
/// conflict (two writers on one item at the same instant), before giving up
/// transiently to SQS.
const CONFLICT_RETRIES: u32 = 5;

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

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

fn cap_key(k: &str) -> HashMap<String, AttributeValue> {
    key(format!("CAP#{k}"), "CAP")
}

fn sup_key(k: &SuppressionKey) -> HashMap<String, AttributeValue> {
    key(format!("SUP#{k}"), "SUP")
}

fn consent_key(k: &RecipientKey) -> HashMap<String, AttributeValue> {
    key(format!("CONSENT#{k}"), "CONSENT")
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

/// What the transaction was made of, to read its cancellation reasons back.
enum Part {
    Suppression,
    Consent(String),
    Lock,
    Cap(String),
}

impl DynamoStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
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

    fn lock_put(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: &str,
        takeover: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = req_key(&a.idempotency_key);
        item.insert("state".into(), s("in_progress"));
        item.insert("at_ms".into(), n(ms(now)));
        item.insert("lock_expires_ms".into(), n(ms(a.lock_expires_at)));
        item.insert("retain_until_ms".into(), n(ms(a.retain_until)));
        item.insert("attempt".into(), s(attempt));
        item.insert("fp".into(), s(&a.fingerprint));
        item.insert(TTL_ATTRIBUTE.into(), n(secs(a.retain_until)));
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .expression_attribute_values(":now", n(ms(now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        put = match takeover {
            None => put.condition_expression(FRESH),
            Some(old) => put
                .condition_expression(TAKEOVER)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":ip", s("in_progress"))
                .expression_attribute_values(":old", s(old))
                .expression_attribute_values(":fp", s(&a.fingerprint)),
        };
        Ok(TransactWriteItem::builder().put(build(put.build())?).build())
    }

    fn transaction(
        &self,
        a: &Admission,
        now: Timestamp,
        attempt: &str,
        slot: &str,
        takeover: Option<&str>,
    ) -> Result<(Vec<TransactWriteItem>, Vec<Part>), StoreError> {
        let mut items = Vec::new();
        let mut parts = Vec::new();
        if takeover.is_some() {
            // The dead attempt passed the rails and its slots stay counted: the
            // takeover is the lock alone.
            items.push(self.lock_put(a, now, attempt, takeover)?);
            parts.push(Part::Lock);
            return Ok((items, parts));
        }
        for key in std::iter::once(&a.suppression_key).chain(a.tenant_suppression_key.as_ref()) {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(sup_key(key)))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            items.push(TransactWriteItem::builder().condition_check(build(check.build())?).build());
            parts.push(Part::Suppression);
        }
        if let Some(c) = &a.consent {
            // Subscribed unless the category says false, or it is silent and `*` says false.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(consent_key(&c.recipient_key)))
                .condition_expression(
                    "attribute_not_exists(pk) OR cats.#c = :t OR (attribute_not_exists(cats.#c) AND (attribute_not_exists(cats.#all) OR cats.#all = :t))",
                )
                .expression_attribute_names("#c", &c.category)
                .expression_attribute_names("#all", "*")
                .expression_attribute_values(":t", AttributeValue::Bool(true));
            items.push(TransactWriteItem::builder().condition_check(build(check.build())?).build());
            parts.push(Part::Consent(c.category.clone()));
        }
        items.push(self.lock_put(a, now, attempt, takeover)?);
        parts.push(Part::Lock);
        for cap in &a.caps {
            let since = ms(now).saturating_sub(cap.window_seconds.saturating_mul(1000));
            let last = cap.limit.saturating_sub(1);
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(cap_key(&cap.key)))
                .update_expression("SET ts = list_append(:new, if_not_exists(ts, :empty)), #ttl = :ttl")
                .condition_expression(format!("attribute_not_exists(ts[{last}]) OR ts[{last}] <= :since"))
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":new", AttributeValue::L(vec![s(slot_value(ms(now), slot))]))
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":since", s(since_value(since)))
                .expression_attribute_values(":ttl", n(secs(now) + cap.window_seconds));
            items.push(TransactWriteItem::builder().update(build(update.build())?).build());
            parts.push(Part::Cap(cap.rule.clone()));
        }
        Ok((items, parts))
    }

    /// Records a verdict the store reached itself (suppressed, unsubscribed, capped)
    /// as the request's outcome; someone else's outcome recorded meanwhile stands.
    async fn decided(&self, a: &Admission, now: Timestamp, verdict: Verdict) -> Result<Verdict, StoreError> {
        let Some((status, reason)) = verdict.decided() else { return Ok(verdict) };
        let reason = reason.to_string();
        let recorded =
            self.put_decided(&a.idempotency_key, &a.fingerprint, status, Some(&reason), now, a.retain_until).await?;
        Ok(match recorded {
            Recorded::Stored => verdict,
            Recorded::Existing(prior) => Verdict::Duplicate(prior),
            Recorded::InProgress { until } => Verdict::InProgress { until },
        })
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

    /// Removes this lease's slots from their cap lists (read, then a conditional
    /// remove by index, retried if a concurrent send shifted the list).
    async fn release_slots(&self, lease: &Lease) -> Result<(), StoreError> {
        for (cap, slot) in &lease.slots {
            for _ in 0..5 {
                let item = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(cap_key(cap)))
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| store_error("GetItem", &e))?;
                let list =
                    item.item().and_then(|i| i.get("ts")).and_then(|v| v.as_l().ok()).cloned().unwrap_or_default();
                let suffix = format!("#{slot}");
                let Some(index) = list.iter().position(|v| v.as_s().is_ok_and(|x| x.ends_with(&suffix))) else {
                    break;
                };
                let value = list[index].clone();
                let removed = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(cap_key(cap)))
                    .update_expression(format!("REMOVE ts[{index}]"))
                    .condition_expression(format!("ts[{index}] = :slot"))
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

    /// Drops the entry just past the window's reach (`ts[limit]`), keeping each cap
    /// list at most `limit + 1` long: one send adds one, one completion trims one.
    async fn trim(&self, cap: &str, limit: u32) {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(cap_key(cap)))
            .update_expression(format!("REMOVE ts[{limit}]"))
            .condition_expression(format!("attribute_exists(ts[{limit}])"))
            .send()
            .await;
        if let Err(e) = result
            && e.code() != Some("ConditionalCheckFailedException")
        {
            tracing::debug!(error = ?e.code(), "cap trim failed; the next completion trims");
        }
    }
}

/// What a cancelled admission transaction says.
enum Cancelled {
    Verdict(Verdict),
    /// The lock belongs to an attempt whose lock expired: take it over.
    ExpiredLock {
        attempt: String,
    },
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

/// Reads the cancellation reasons, the lock's first: an outcome already recorded
/// wins over a suppression or unsubscribe that came later.
fn cancellation(
    parts: &[Part],
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
    a: &Admission,
    now: Timestamp,
) -> Option<Cancelled> {
    let failed = |i: usize| reasons.get(i).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
    let item = |i: usize| reasons.get(i).and_then(|r| r.item()).cloned().unwrap_or_default();
    if let Some(i) = parts.iter().position(|p| matches!(p, Part::Lock))
        && failed(i)
    {
        let item = item(i);
        if get_s(&item, "state") == Some("done") {
            return Some(Cancelled::Verdict(Verdict::Duplicate(prior_from(&item))));
        }
        let lock = get_n(&item, "lock_expires_ms");
        let same_message = get_s(&item, "fp") == Some(a.fingerprint.as_str());
        return Some(match (lock, get_s(&item, "attempt")) {
            (Some(lock), Some(old)) if lock <= ms(now) && same_message => {
                Cancelled::ExpiredLock { attempt: old.to_owned() }
            }
            // Another message's attempt ended without an outcome: this one is a duplicate.
            (Some(lock), _) if lock <= ms(now) => Cancelled::Verdict(Verdict::Undecided),
            _ => Cancelled::Verdict(Verdict::InProgress { until: from_ms(lock.unwrap_or(ms(a.lock_expires_at))) }),
        });
    }
    for (i, part) in parts.iter().enumerate() {
        if !failed(i) {
            continue;
        }
        return Some(Cancelled::Verdict(match part {
            Part::Suppression => {
                let reason =
                    get_s(&item(i), "reason").and_then(|r| r.parse().ok()).unwrap_or(SuppressionReason::Manual);
                Verdict::Suppressed(reason)
            }
            Part::Consent(category) => Verdict::Unsubscribed { category: category.clone() },
            Part::Lock => continue,
            Part::Cap(rule) => Verdict::Capped { rule: rule.clone() },
        }));
    }
    None
}

#[async_trait]
impl StateStore for DynamoStore {
    async fn admit(&self, a: &Admission) -> Result<Verdict, StoreError> {
        let attempt = uuid::Uuid::new_v4().to_string();
        let slot = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let mut takeover: Option<String> = None;
        let mut delay = Duration::from_millis(10);
        for _ in 0..=CONFLICT_RETRIES {
            // A fresh instant per try: a retried transaction must not file its cap
            // slot, or judge the window, at the time of the first try.
            let elapsed = jiff::SignedDuration::try_from(started.elapsed()).unwrap_or_default();
            let now = a.now.checked_add(elapsed).unwrap_or(a.now);
            let (items, parts) = self.transaction(a, now, &attempt, &slot, takeover.as_deref())?;
            let token = uuid::Uuid::new_v4().to_string();
            let mut result = Err(None);
            for _ in 0..=AMBIGUOUS_RETRIES {
                let sent = self
                    .client
                    .transact_write_items()
                    .set_transact_items(Some(items.clone()))
                    .client_request_token(&token)
                    .send()
                    .await;
                result = sent.map_err(Some);
                match &result {
                    Err(Some(e)) if e.as_service_error().is_none() || is_retryable_code(e.code()) => continue,
                    _ => break,
                }
            }
            let err = match result {
                Err(None) => return Err(StoreError::new("dynamodb TransactWriteItems: not sent")),
                Err(Some(e)) => e,
                Ok(_) if takeover.is_some() => {
                    return Ok(Verdict::Admitted(Lease::takeover(a.idempotency_key.clone(), attempt)));
                }
                Ok(_) => {
                    let slots = a.caps.iter().map(|c| (c.key.clone(), slot.clone())).collect();
                    let cap_limits = a.caps.iter().map(|c| (c.key.clone(), c.limit)).collect();
                    return Ok(Verdict::Admitted(Lease {
                        idempotency_key: a.idempotency_key.clone(),
                        attempt,
                        slots,
                        cap_limits,
                        took_over: false,
                    }));
                }
            };
            let service = err.as_service_error();
            if let Some(aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(tc)) = service {
                let reasons = tc.cancellation_reasons();
                match cancellation(&parts, reasons, a, now) {
                    Some(Cancelled::Verdict(verdict)) => return self.decided(a, now, verdict).await,
                    Some(Cancelled::ExpiredLock { attempt: old }) => {
                        takeover = Some(old);
                        continue;
                    }
                    None => {}
                }
                // Conflicts with a concurrent transaction: try again shortly.
                if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                    tokio::time::sleep(delay + Duration::from_millis(u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % 20)).await;
                    delay *= 2;
                    continue;
                }
            }
            return Err(store_error("TransactWriteItems", &err));
        }
        Err(StoreError::new("dynamodb TransactWriteItems: transaction conflicts persisted"))
    }

    async fn record(&self, d: &Decision) -> Result<Recorded, StoreError> {
        self.put_decided(&d.idempotency_key, &d.fingerprint, d.status, d.reason.as_deref(), d.at, d.retain_until).await
    }

    async fn complete(&self, lease: &Lease, c: &Completion) -> Result<(), StoreError> {
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
            .expression_attribute_values(":attempt", s(&lease.attempt));
        update = update.expression_attribute_values(":reason", c.reason.as_ref().map_or(AttributeValue::Null(true), s));
        update = update
            .expression_attribute_values(":pmid", c.provider_message_id.as_ref().map_or(AttributeValue::Null(true), s));
        let (recorded, _) = tokio::join!(update.send(), async {
            for (cap, limit) in &lease.cap_limits {
                self.trim(cap, *limit).await;
            }
        });
        match recorded {
            Ok(_) => {}
            // The lock was taken over after it expired: the takeover's outcome stands,
            // and the slots, which moved with the lock, are its to release.
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => return Ok(()),
            Err(e) => return Err(store_error("UpdateItem", &e)),
        }
        if c.release_slots {
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
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (e.code().map(str::to_owned), store_error("DeleteItem", &e))),
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
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(consent_key(recipient_key)))
                .send()
                .await
                .map_err(|e| store_error("DeleteItem", &e))?;
            return Ok(());
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(req_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &e))?;
        let Some(item) = out.item() else { return Ok(None) };
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
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(endpoints_key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem", &e))?;
        let Some(AttributeValue::M(disabled)) = out.item().and_then(|i| i.get("disabled")) else {
            return Ok(BTreeMap::new());
        };
        Ok(disabled
            .iter()
            .map(|(id, at)| (id.clone(), from_ms(at.as_n().ok().and_then(|v| v.parse().ok()).unwrap_or(0))))
            .collect())
    }
}
