//! In-memory twins of the ports, for fast unit tests of the domain and for
//! benchmarks. Same semantics as the real adapters (see the conformance tests in
//! `tests/store_conformance.rs`), no I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::ports::{
    Admission, Completion, Decision, EmailSender, EmitError, Lease, OutboundEmail, OutboundPush, OutboundSms,
    PriorOutcome, PushSender, Recorded, Release, Scheduler, SendError, SmsSender, StateStore, StoreError,
    SuppressionEntry, SuppressionReason, Verdict,
};
use crate::ports::{Advance, Claim, EventStore, RequestState};
use crate::receipt::Status;
use crate::receipt::event::{DeliveryEvent, EventKind};
use crate::request::{DeliveryRequest, IdempotencyKey, RecipientKey, SuppressionKey};

#[derive(Debug, Clone)]
enum Record {
    InProgress { attempt: String, fingerprint: String, lock_expires: Timestamp, retain_until: Timestamp },
    Done { prior: PriorOutcome, retain_until: Timestamp },
}

#[derive(Debug, Default)]
struct State {
    records: HashMap<IdempotencyKey, Record>,
    slots: HashMap<String, Vec<(String, Timestamp)>>,
    suppressions: HashMap<SuppressionKey, SuppressionReason>,
    consent: HashMap<(RecipientKey, String), bool>,
    deferred: Vec<(DeliveryRequest, Timestamp, u32)>,
    /// Latest delivery event per request: (kind, when).
    deliveries: HashMap<IdempotencyKey, (EventKind, Timestamp)>,
    archived: HashMap<String, String>,
    /// Use-once claims: done?, lock or retention end.
    claims: HashMap<String, (bool, Timestamp)>,
    disabled: BTreeMap<String, Timestamp>,
    /// When each SMS opt-out was recorded (a START lifts only an earlier one).
    opted_out_at: HashMap<SuppressionKey, Timestamp>,
}

/// StateStore + Scheduler in memory. `fail_next` makes the next calls fail
/// transiently, to test retry paths.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    failures: Mutex<u32>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail_next(&self, n: u32) {
        if let Ok(mut f) = self.failures.lock() {
            *f = n;
        }
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        if let Ok(mut f) = self.failures.lock()
            && *f > 0
        {
            *f -= 1;
            return Err(StoreError::new("injected failure"));
        }
        self.state.lock().map_err(|_| StoreError::new("poisoned"))
    }

    /// Why `key` is suppressed, if it is (for assertions).
    pub fn suppression(&self, key: &SuppressionKey) -> Option<SuppressionReason> {
        self.state.lock().ok().and_then(|s| s.suppressions.get(key).copied())
    }

    /// Slots currently held under a cap key (for assertions).
    pub fn slots_held(&self, cap_key: &str) -> usize {
        self.state.lock().map(|s| s.slots.get(cap_key).map_or(0, Vec::len)).unwrap_or(0)
    }

    pub fn deferred(&self) -> Vec<(DeliveryRequest, Timestamp, u32)> {
        self.state.lock().map(|s| s.deferred.clone()).unwrap_or_default()
    }

    pub fn record_status(&self, key: &IdempotencyKey) -> Option<Status> {
        let s = self.state.lock().ok()?;
        match s.records.get(key)? {
            Record::Done { prior, .. } => Some(prior.status),
            Record::InProgress { .. } => None,
        }
    }
}

/// Puts this admission's IN_PROGRESS lock on its key; returns the attempt id.
fn take_lock(s: &mut State, a: &Admission) -> String {
    let attempt = uuid::Uuid::new_v4().to_string();
    let record = Record::InProgress {
        attempt: attempt.clone(),
        fingerprint: a.fingerprint.clone(),
        lock_expires: a.lock_expires_at,
        retain_until: a.retain_until,
    };
    s.records.insert(a.idempotency_key.clone(), record);
    attempt
}

/// Records a refusal as the request's outcome and returns it.
fn decide(s: &mut State, a: &Admission, verdict: Verdict) -> Verdict {
    if let Some((status, reason)) = verdict.decided() {
        let prior = PriorOutcome {
            status,
            reason: Some(reason.to_string()),
            provider_message_id: None,
            at: a.now,
            fingerprint: Some(a.fingerprint.clone()),
        };
        s.records.insert(a.idempotency_key.clone(), Record::Done { prior, retain_until: a.retain_until });
    }
    verdict
}

#[async_trait]
impl StateStore for MemoryStore {
    async fn admit(&self, a: &Admission) -> Result<Verdict, StoreError> {
        let mut s = self.state()?;
        match s.records.get(&a.idempotency_key) {
            Some(Record::Done { prior, retain_until }) if *retain_until > a.now => {
                return Ok(Verdict::Duplicate(prior.clone()));
            }
            Some(Record::InProgress { lock_expires, retain_until, fingerprint, .. }) if *retain_until > a.now => {
                if *lock_expires > a.now {
                    return Ok(Verdict::InProgress { until: *lock_expires });
                }
                if *fingerprint != a.fingerprint {
                    return Ok(Verdict::Undecided);
                }
                // The same message's attempt died: take its lock and its slots over.
                let attempt = take_lock(&mut s, a);
                return Ok(Verdict::Admitted(Lease::takeover(a, attempt)));
            }
            _ => {}
        }
        let listed = std::iter::once(&a.suppression_key).chain(a.tenant_suppression_key.as_ref());
        if let Some(r) = listed.filter_map(|k| s.suppressions.get(k).copied()).next() {
            return Ok(decide(&mut s, a, Verdict::Suppressed(r)));
        }
        if let Some(c) = &a.consent {
            let specific = s.consent.get(&(c.recipient_key.clone(), c.category.clone()));
            let all = s.consent.get(&(c.recipient_key.clone(), "*".to_owned()));
            if specific.or(all) == Some(&false) {
                return Ok(decide(&mut s, a, Verdict::Unsubscribed { category: c.category.clone() }));
            }
        }
        for cap in &a.caps {
            let since =
                a.now.checked_sub(jiff::SignedDuration::from_secs(cap.window_seconds)).unwrap_or(Timestamp::MIN);
            let held = s.slots.entry(cap.key.clone()).or_default();
            let live = held.iter().filter(|(_, t)| *t > since).count();
            if live >= cap.limit as usize {
                return Ok(decide(&mut s, a, Verdict::Capped { rule: cap.rule.clone() }));
            }
        }
        let attempt = take_lock(&mut s, a);
        let mut taken = Vec::new();
        for cap in &a.caps {
            let slot = uuid::Uuid::new_v4().to_string();
            s.slots.entry(cap.key.clone()).or_default().push((slot.clone(), a.now));
            taken.push((cap.key.clone(), slot));
        }
        Ok(Verdict::Admitted(Lease { slots: taken, ..Lease::of(a, attempt) }))
    }

    async fn complete(&self, lease: &Lease, c: &Completion) -> Result<(), StoreError> {
        let mut s = self.state()?;
        let fingerprint = match s.records.get(&lease.idempotency_key) {
            Some(Record::InProgress { attempt, fingerprint, .. }) if *attempt == lease.attempt => {
                Some(fingerprint.clone())
            }
            _ => None,
        };
        // Slots move with the lock: once taken over, they are the takeover's to release.
        let owned = fingerprint.is_some();
        if let Some(fingerprint) = fingerprint {
            let prior = PriorOutcome {
                status: c.status,
                reason: c.reason.clone(),
                provider_message_id: c.provider_message_id.clone(),
                at: c.at,
                fingerprint: Some(fingerprint),
            };
            s.records.insert(lease.idempotency_key.clone(), Record::Done { prior, retain_until: c.retain_until });
        }
        if c.release_slots && owned {
            release_slots(&mut s, lease);
        }
        Ok(())
    }

    async fn abandon(&self, lease: &Lease, release: Release) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if !owns(&s, lease) {
            // Taken over: the lock and the slots are the takeover's now.
            return Ok(());
        }
        {
            match release {
                Release::Everything => {
                    s.records.remove(&lease.idempotency_key);
                }
                Release::ForTakeover => {
                    if let Some(Record::InProgress { lock_expires, .. }) = s.records.get_mut(&lease.idempotency_key) {
                        *lock_expires = Timestamp::UNIX_EPOCH;
                    }
                }
            }
        }
        if release == Release::Everything {
            release_slots(&mut s, lease);
        }
        Ok(())
    }

    async fn record(&self, d: &Decision) -> Result<Recorded, StoreError> {
        let mut s = self.state()?;
        match s.records.get(&d.idempotency_key) {
            Some(Record::Done { prior, retain_until }) if *retain_until > d.at => {
                return Ok(Recorded::Existing(prior.clone()));
            }
            Some(Record::InProgress { lock_expires, retain_until, .. })
                if *retain_until > d.at && *lock_expires > d.at =>
            {
                return Ok(Recorded::InProgress { until: *lock_expires });
            }
            _ => {}
        }
        let prior = PriorOutcome {
            status: d.status,
            reason: d.reason.clone(),
            provider_message_id: None,
            at: d.at,
            fingerprint: Some(d.fingerprint.clone()),
        };
        s.records.insert(d.idempotency_key.clone(), Record::Done { prior, retain_until: d.retain_until });
        Ok(Recorded::Stored)
    }

    async fn suppress(&self, entry: &SuppressionEntry, _at: Timestamp) -> Result<(), StoreError> {
        self.state()?.suppressions.insert(entry.key.clone(), entry.reason);
        Ok(())
    }

    async fn unsuppress(&self, key: &SuppressionKey) -> Result<bool, StoreError> {
        Ok(self.state()?.suppressions.remove(key).is_some())
    }

    async fn set_consent(
        &self,
        recipient_key: &RecipientKey,
        category: &str,
        subscribed: bool,
        _at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if category == "*" && subscribed {
            s.consent.retain(|(r, _), _| r != recipient_key);
        } else {
            s.consent.insert((recipient_key.clone(), category.to_owned()), subscribed);
        }
        Ok(())
    }
}

/// Whether the record is still this lease's in-progress lock.
fn owns(s: &State, lease: &Lease) -> bool {
    matches!(s.records.get(&lease.idempotency_key), Some(Record::InProgress { attempt, .. }) if *attempt == lease.attempt)
}

fn release_slots(s: &mut State, lease: &Lease) {
    for (key, slot) in &lease.slots {
        if let Some(held) = s.slots.get_mut(key) {
            held.retain(|(id, _)| id != slot);
        }
    }
}

impl MemoryStore {
    /// The archived provider payload of an event, if any.
    pub fn archived(&self, event_id: &str) -> Option<String> {
        self.state.lock().ok()?.archived.get(event_id).cloned()
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn advance_delivery(
        &self,
        key: &IdempotencyKey,
        kind: EventKind,
        at: Timestamp,
    ) -> Result<Advance, StoreError> {
        let mut s = self.state()?;
        let Some(rank) = kind.status_rank() else { return Ok(Advance::Behind) };
        if !s.records.contains_key(key) {
            return Ok(Advance::UnknownRequest);
        }
        let current = s.deliveries.get(key).and_then(|(k, _)| k.status_rank());
        if current.is_some_and(|c| c >= rank) {
            return Ok(Advance::Behind);
        }
        s.deliveries.insert(key.clone(), (kind, at));
        Ok(Advance::Moved)
    }

    async fn request_state(&self, key: &IdempotencyKey) -> Result<Option<RequestState>, StoreError> {
        let s = self.state()?;
        let delivery = s.deliveries.get(key).copied();
        Ok(s.records.get(key).map(|record| match record {
            Record::Done { prior, .. } => RequestState {
                status: Some(prior.status),
                reason: prior.reason.clone(),
                provider_message_id: prior.provider_message_id.clone(),
                at: prior.at,
                delivery,
            },
            Record::InProgress { lock_expires, .. } => {
                RequestState { status: None, reason: None, provider_message_id: None, at: *lock_expires, delivery }
            }
        }))
    }

    async fn archive_event(&self, event: &DeliveryEvent, raw: &str, _until: Timestamp) -> Result<(), StoreError> {
        self.state()?.archived.insert(event.event_id.clone(), raw.to_owned());
        Ok(())
    }

    async fn opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<(), StoreError> {
        let mut s = self.state()?;
        match s.suppressions.get(key) {
            None => {
                s.suppressions.insert(key.clone(), SuppressionReason::OptedOut);
                s.opted_out_at.insert(key.clone(), at);
            }
            Some(SuppressionReason::OptedOut) => {
                let since = s.opted_out_at.entry(key.clone()).or_insert(at);
                *since = (*since).max(at);
            }
            Some(_) => {}
        }
        Ok(())
    }

    async fn lift_opt_out(&self, key: &SuppressionKey, at: Timestamp) -> Result<bool, StoreError> {
        let mut s = self.state()?;
        let earlier = s.opted_out_at.get(key).is_some_and(|since| *since < at);
        if s.suppressions.get(key) == Some(&SuppressionReason::OptedOut) && earlier {
            s.suppressions.remove(key);
            s.opted_out_at.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn claim(&self, id: &str, now: Timestamp, lock_until: Timestamp) -> Result<Claim, StoreError> {
        let mut s = self.state()?;
        match s.claims.get(id) {
            Some((true, retain_until)) if *retain_until > now => return Ok(Claim::Done),
            Some((false, lock)) if *lock > now => return Ok(Claim::Busy),
            _ => {}
        }
        s.claims.insert(id.to_owned(), (false, lock_until));
        Ok(Claim::New)
    }

    async fn finish(&self, id: &str, retain_until: Timestamp) -> Result<(), StoreError> {
        self.state()?.claims.insert(id.to_owned(), (true, retain_until));
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        let mut s = self.state()?;
        if matches!(s.claims.get(id), Some((false, _))) {
            s.claims.remove(id);
        }
        Ok(())
    }

    async fn disable_endpoint(&self, subscription: &str, at: Timestamp) -> Result<(), StoreError> {
        self.state()?.disabled.insert(subscription.to_owned(), at);
        Ok(())
    }

    async fn enable_endpoint(&self, subscription: &str) -> Result<bool, StoreError> {
        Ok(self.state()?.disabled.remove(subscription).is_some())
    }

    async fn disabled_endpoints(&self) -> Result<BTreeMap<String, Timestamp>, StoreError> {
        Ok(self.state()?.disabled.clone())
    }
}

#[async_trait]
impl Scheduler for MemoryStore {
    async fn defer(
        &self,
        request: &DeliveryRequest,
        until: Timestamp,
        attempt: u32,
        _source: Option<&str>,
    ) -> Result<(), StoreError> {
        self.state()?.deferred.push((request.clone(), until, attempt));
        Ok(())
    }
}

/// What a recording sender received.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Email(OutboundEmail),
    Sms(OutboundSms),
    Push(OutboundPush),
}

/// A sender for every channel that records messages and can be scripted to fail
/// or to answer slowly.
#[derive(Debug, Default)]
pub struct RecordingSender {
    sent: Mutex<Vec<Sent>>,
    script: Mutex<VecDeque<SendError>>,
    delay: Option<Duration>,
}

impl RecordingSender {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers every send after `delay` (a stand-in for the provider's latency).
    pub fn with_delay(delay: Duration) -> Self {
        RecordingSender { delay: Some(delay), ..Self::default() }
    }

    /// The next sends fail with these errors, in order.
    pub fn fail_with(&self, errors: impl IntoIterator<Item = SendError>) {
        if let Ok(mut s) = self.script.lock() {
            s.extend(errors);
        }
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn accept(&self, message: Sent) -> Result<String, SendError> {
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        let scripted = self.script.lock().ok().and_then(|mut s| s.pop_front());
        if let Some(e) = scripted {
            return Err(e);
        }
        let mut sent = self.sent.lock().map_err(|_| SendError::transient("poisoned", "poisoned"))?;
        sent.push(message);
        Ok(format!("msg-{}", sent.len()))
    }
}

#[async_trait]
impl EmailSender for RecordingSender {
    async fn send_email(&self, email: &OutboundEmail) -> Result<String, SendError> {
        self.accept(Sent::Email(email.clone())).await
    }
}

#[async_trait]
impl SmsSender for RecordingSender {
    async fn send_sms(&self, sms: &OutboundSms) -> Result<String, SendError> {
        self.accept(Sent::Sms(sms.clone())).await
    }
}

#[async_trait]
impl PushSender for RecordingSender {
    async fn send_push(&self, push: &OutboundPush) -> Result<String, SendError> {
        self.accept(Sent::Push(push.clone())).await
    }
}

/// Receipts kept in memory; can be told to fail.
#[derive(Debug, Default)]
pub struct MemorySink {
    receipts: Mutex<Vec<crate::receipt::Receipt>>,
    events: Mutex<Vec<DeliveryEvent>>,
    fail: std::sync::atomic::AtomicBool,
    refuse: Mutex<Vec<Status>>,
    calls: std::sync::atomic::AtomicUsize,
}

impl MemorySink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&self, yes: bool) {
        self.fail.store(yes, std::sync::atomic::Ordering::SeqCst);
    }

    /// Refuses receipts with these statuses (and delivers the others), as a queue
    /// refusing single entries of a batch would.
    pub fn refuse(&self, statuses: &[Status]) {
        if let Ok(mut r) = self.refuse.lock() {
            *r = statuses.to_vec();
        }
    }

    pub fn receipts(&self) -> Vec<crate::receipt::Receipt> {
        self.receipts.lock().map(|r| r.clone()).unwrap_or_default()
    }

    pub fn events(&self) -> Vec<DeliveryEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// How many times `emit` was called (one per batch).
    pub fn calls(&self) -> usize {
        self.calls.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl crate::ports::EventSink for MemorySink {
    async fn emit_events(&self, events: &[DeliveryEvent]) -> Result<(), EmitError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EmitError::all(events.len(), "injected sink failure"));
        }
        self.events.lock().map_err(|_| EmitError::all(events.len(), "poisoned"))?.extend_from_slice(events);
        Ok(())
    }
}

#[async_trait]
impl crate::ports::ReceiptSink for MemorySink {
    async fn emit(&self, receipts: &[crate::receipt::Receipt]) -> Result<(), EmitError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(EmitError::all(receipts.len(), "injected sink failure"));
        }
        let refused = self.refuse.lock().map(|r| r.clone()).unwrap_or_default();
        let mut held = self.receipts.lock().map_err(|_| EmitError::all(receipts.len(), "poisoned"))?;
        let mut failed = Vec::new();
        for (i, r) in receipts.iter().enumerate() {
            // A receipt too big for the queue is what a real sink refuses.
            if r.to_json().len() > crate::receipt::MAX_RECEIPT_BYTES || refused.contains(&r.status) {
                failed.push(i);
            } else {
                held.push(r.clone());
            }
        }
        if failed.is_empty() { Ok(()) } else { Err(EmitError { failed, message: "receipt too large".into() }) }
    }
}

/// One message a [`MemoryQueue`] took: body, delay, attributes.
pub type Queued = (String, Duration, Vec<(String, String)>);

/// A queue in memory: what was sent, with its delay and attributes. `fail` makes
/// every send fail.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<Queued>>,
    fail: std::sync::atomic::AtomicBool,
}

impl MemoryQueue {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&self, yes: bool) {
        self.fail.store(yes, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn sent(&self) -> Vec<Queued> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl crate::ports::Queue for MemoryQueue {
    async fn send(&self, body: &str, delay: Duration, attributes: &[(&str, &str)]) -> Result<(), StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::new("injected queue failure"));
        }
        let attributes = attributes.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.sent.lock().map_err(|_| StoreError::new("poisoned"))?.push((body.to_owned(), delay, attributes));
        Ok(())
    }
}

/// The template context a send builds for an email request of `template` carrying `data`
/// (the data, the reserved `herald` object, numbers as JavaScript prints them), for the
/// benchmarks that render without a pipeline (shared/benches/render.rs,
/// shared/examples/bench_inprocess.rs).
pub fn email_context(mut data: serde_json::Value, template: &str, category: &str) -> serde_json::Value {
    data["herald"] = serde_json::json!({"request_id": "bench-1", "recipient_id": "cust-1", "channel": "email",
        "category": category, "template": template, "locale": "en",
        "unsubscribe_url": "https://acme.example/unsubscribe?token=v1.bench"});
    crate::render::compat::js_numbers(&mut data);
    data
}
