//! One request in, one outcome out:
//! validate -> template lookup -> expiry -> send_after / quiet hours -> idempotency,
//! suppression, consent and caps (one atomic admission) -> render -> send -> record.
//!
//! The pipeline decides and the ports do the I/O. It never emits receipts itself:
//! it returns them, so the caller can batch them (receipts queue, stdout).
//!
//! The delivery promise, and where each crash window lands:
//!
//! ```text
//!  parse/validate ──bad──> rejected                   (id from the input's bytes)
//!  admit ──────────────> Duplicate(same content)  -> the recorded outcome, re-emitted
//!        │               Duplicate(other content) -> duplicate
//!        │               suppressed/unsubscribed/capped: recorded by the store
//!        └─ lease ─ send ─┬─ accepted ──────> complete(sent) -> sent
//!                         ├─ permanent ─────> complete(failed), slots back -> failed
//!                         ├─ transient ─────> abandon, slots back -> retry (nothing was sent)
//!                         └─ unknown outcome ─┬─ at most once:  complete(failed) -> provider:unknown_outcome
//!                                             └─ at least once: abandon, keep slots -> retry (may send twice)
//!  crash after admit, before complete: the lock expires; the next attempt takes it over
//!    at most once -> failed provider:unknown_outcome (never resent); at least once -> sends again
//!  crash after complete, before the receipt: the redelivery finds the record -> same receipt again
//! ```
//! Every terminal receipt of a request has the same `receipt_id`, so a consumer that
//! de-duplicates on it sees one outcome per request whatever was redelivered.

mod batch;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::policy::Guarantee;
use crate::ports::{
    Clock, Completion, Decision, EmailSender, Lease, OutboundEmail, OutboundPush, OutboundSms, PriorOutcome,
    PushSender, Recorded, Release, Scheduler, SendError, SmsSender, StateStore, Verdict,
};
use crate::push::payload::PayloadError;
use crate::receipt::event::tags as event_tags;
use crate::receipt::unsubscribe::{self, UnsubscribeClaims};
use crate::receipt::{Reason, Receipt, SmsFacts, Status, receipt_id};
use crate::render::{Catalogue, RenderErrorOrLookup, Rendered, sms};
use crate::request::{Channel, DeliveryRequest, IdempotencyKey, RawFacts};

pub use batch::{BatchBudget, BatchResult, CALLS_PER_EMIT, CALLS_PER_RECORD, QueuedRequest};

/// After this many failed attempts (transient failures, redeliveries) a request ends
/// `failed: retries_exhausted` with its receipt instead of looping. Below the queue's
/// `maxReceiveCount`, so herald ends a request before SQS moves it to the DLQ.
pub const MAX_ATTEMPTS: u32 = 8;

/// How often recording a sent message is tried before the receipt goes out anyway.
const COMPLETE_TRIES: u32 = 3;

/// The I/O a pipeline is wired to.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn StateStore>,
    pub senders: Senders,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

/// The providers a pipeline sends through: one per channel it serves. A request for a
/// channel without a sender is rejected before admission (`wrong_queue:<channel>`), so
/// its id stays unused and the same request succeeds on the right queue.
#[derive(Clone, Default)]
pub struct Senders {
    pub email: Option<Arc<dyn EmailSender>>,
    pub sms: Option<Arc<dyn SmsSender>>,
    pub push: Option<Arc<dyn PushSender>>,
}

impl Senders {
    /// One sender for every channel (the embedded default's outbox, test twins).
    pub fn all<S: EmailSender + SmsSender + PushSender + 'static>(sender: Arc<S>) -> Self {
        Senders { email: Some(sender.clone()), sms: Some(sender.clone()), push: Some(sender) }
    }

    pub fn email(sender: Arc<dyn EmailSender>) -> Self {
        Senders { email: Some(sender), ..Senders::default() }
    }

    pub fn sms(sender: Arc<dyn SmsSender>) -> Self {
        Senders { sms: Some(sender), ..Senders::default() }
    }

    pub fn push(sender: Arc<dyn PushSender>) -> Self {
        Senders { push: Some(sender), ..Senders::default() }
    }

    /// The channels these senders serve, in declaration order.
    pub fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.email.is_some() {
            channels.push(Channel::Email);
        }
        if self.sms.is_some() {
            channels.push(Channel::Sms);
        }
        if self.push.is_some() {
            channels.push(Channel::Push);
        }
        channels
    }

    pub fn serves(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::Push => self.push.is_some(),
        }
    }
}

/// What became of one request.
// One outcome per request, moved once to the caller: boxing the common variant
// would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A terminal receipt, or a `deferred` one whose request is already scheduled.
    Receipt(Receipt),
    /// Nothing was decided, or a retry is what the guarantee asks for: run the request
    /// again later (SQS: leave it for redelivery; embedded: [`Pipeline::retry_later`]).
    Retry { request: Box<DeliveryRequest>, error: String, attempt: u32 },
}

impl Outcome {
    pub fn receipt(&self) -> Option<&Receipt> {
        match self {
            Outcome::Receipt(r) => Some(r),
            Outcome::Retry { .. } => None,
        }
    }
}

/// The identity of one message: its request key and content fingerprint, from
/// which every receipt id about it derives.
struct Subject<'a> {
    request: &'a DeliveryRequest,
    key: IdempotencyKey,
    fingerprint: String,
    source: Option<&'a str>,
}

impl<'a> Subject<'a> {
    fn new(request: &'a DeliveryRequest, source: Option<&'a str>) -> Self {
        Subject { key: request.idempotency_key(), fingerprint: request.fingerprint(), request, source }
    }

    fn receipt(&self, status: Status, at: Timestamp) -> Receipt {
        Receipt::for_request(self.request, status, at).source(self.source)
    }

    /// The one terminal receipt of this request: the same id however often it is reported.
    fn terminal(&self, status: Status, at: Timestamp) -> Receipt {
        self.receipt(status, at).id(receipt_id(&["terminal", self.key.as_str(), &self.fingerprint]))
    }

    fn deferred(&self, at: Timestamp, until: Timestamp, why: &Reason) -> Receipt {
        let id = receipt_id(&["deferred", self.key.as_str(), &self.fingerprint, &why.to_string(), &until.to_string()]);
        let mut r = self.receipt(Status::Deferred, at).id(id).reason(why.clone());
        r.deferred_until = Some(until);
        r
    }

    /// What a request already decided answers: the same message gets its recorded
    /// outcome again; another message reusing the id gets `duplicate`.
    fn prior(&self, prior: PriorOutcome) -> Receipt {
        let same = prior.fingerprint.as_deref().is_none_or(|f| f == self.fingerprint);
        if same {
            return self
                .terminal(prior.status, prior.at)
                .reason_text(prior.reason.as_deref())
                .provider_message_id(prior.provider_message_id.as_deref());
        }
        let id = receipt_id(&["duplicate", self.key.as_str(), &self.fingerprint]);
        self.receipt(Status::Duplicate, prior.at)
            .id(id)
            .reason(Reason::Duplicate(prior.status))
            .detail(format!("another message used this request id; it ended {} at {}", prior.status, prior.at))
            .provider_message_id(prior.provider_message_id.as_deref())
    }
}

pub struct Pipeline {
    catalogue: Arc<Catalogue>,
    settings: Arc<Settings>,
    ports: Ports,
}

impl Pipeline {
    pub fn new(catalogue: Arc<Catalogue>, settings: Arc<Settings>, ports: Ports) -> Self {
        Pipeline { catalogue, settings, ports }
    }

    /// A pipeline that can only [`check_rendering`](Self::check_rendering): no state, no
    /// sender (`herald validate`).
    pub fn for_checks(catalogue: Arc<Catalogue>, settings: Arc<Settings>, clock: Arc<dyn Clock>) -> Self {
        let none = Arc::new(ChecksOnly);
        let ports = Ports { store: none.clone(), senders: Senders::default(), scheduler: none, clock };
        Pipeline { catalogue, settings, ports }
    }

    /// The channels this pipeline sends (those it has a sender for).
    pub fn channels(&self) -> Vec<Channel> {
        self.ports.senders.channels()
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    pub fn now(&self) -> Timestamp {
        self.ports.clock.now()
    }

    /// Parses then processes raw JSON. Input that is not a valid request ends here
    /// as `rejected`, carrying whatever id and metadata could be read from it.
    pub async fn process_json(&self, raw: &str, source: Option<&str>) -> Outcome {
        match DeliveryRequest::from_json(raw) {
            Ok(request) => self.process(request, 0, source).await,
            Err(e) => Outcome::Receipt(self.rejected_input(raw, &e, source)),
        }
    }

    /// The `rejected` receipt of input that is not a request. Logs the reason, which
    /// names a field, never a value.
    pub fn rejected_input(&self, raw: &str, e: &crate::request::RequestError, source: Option<&str>) -> Receipt {
        tracing::info!(reason = %e.reason(), "request rejected");
        let facts = RawFacts::from_json(raw);
        Receipt::for_raw(&facts, raw, Status::Rejected, self.now())
            .reason(e.reason())
            .detail(e.to_string())
            .source(source)
    }

    /// Runs one parsed request through the guard rails and, if admitted, sends it.
    /// `attempt` counts earlier failed attempts of this request.
    pub async fn process(&self, request: DeliveryRequest, attempt: u32, source: Option<&str>) -> Outcome {
        let now = self.now();
        let subject = Subject::new(&request, source);
        let locale = request.recipient.locale.as_ref();

        if !self.ports.senders.serves(request.channel) {
            let served = self.ports.senders.channels();
            let names: Vec<&str> = served.iter().map(|c| c.as_str()).collect();
            let id = receipt_id(&["wrong_queue", subject.key.as_str(), &subject.fingerprint]);
            let r = subject.receipt(Status::Rejected, now).id(id).reason(Reason::WrongQueue(request.channel)).detail(
                format!(
                    "this function sends {}; put {} requests on the {} request queue (the id stays unused)",
                    names.join(" and "),
                    request.channel,
                    request.channel
                ),
            );
            return Outcome::Receipt(r);
        }

        // Decisions reached before admission go through the state store too, so a
        // redelivery of a message that was already decided (sent, then redelivered
        // after it expired, say) reports that outcome and not a new one.
        if let Err(e) = self.catalogue.check(&request.template, request.channel, locale) {
            let reason = Reason::Template(e.reason());
            return self.decided(&subject, Status::Rejected, reason, e.to_string(), attempt).await;
        }
        if let Some(expires) = request.expires_at
            && expires <= now
        {
            let detail = format!("expired at {expires}");
            return self.decided(&subject, Status::Expired, Reason::Expired, detail, attempt).await;
        }
        if let Some(after) = request.send_after {
            let horizon = crate::policy::add(now, self.settings.policy.send_after_horizon);
            if after > horizon {
                let detail = format!(
                    "send_after: more than {} ahead (limits.send_after_horizon); schedule it upstream",
                    self.settings.policy.send_after_horizon
                );
                let reason = Reason::InvalidRequest("send_after".into());
                return self.decided(&subject, Status::Rejected, reason, detail, attempt).await;
            }
            if after > now {
                return self.defer(&subject, after, Reason::SendAfter, attempt).await;
            }
        }
        if let Some(opening) = self.settings.policy.quiet_hours_hold(&request, now) {
            if request.expires_at.is_some_and(|e| e <= opening) {
                let detail = format!("quiet hours end at {opening}, after the request expires");
                return self.decided(&subject, Status::Expired, Reason::ExpiredInQuietHours, detail, attempt).await;
            }
            return self.defer(&subject, opening, Reason::QuietHours, attempt).await;
        }

        let destination = match request.destination() {
            Ok(d) => d,
            Err(e) => return self.decided(&subject, Status::Rejected, e.reason(), e.to_string(), attempt).await,
        };
        let admission =
            self.settings.policy.admission(&request, &subject.fingerprint, destination.suppression_key(), now);
        let guarantee = self.settings.policy.guarantee(&request);
        let lease = match self.ports.store.admit(&admission).await {
            Err(e) => return retry(&request, format!("admission: {e}"), attempt),
            Ok(Verdict::Admitted(lease)) => lease,
            Ok(Verdict::Suppressed(why)) => {
                let r = subject
                    .terminal(Status::Suppressed, now)
                    .reason(Reason::Suppressed(why))
                    .detail(format!("the {} address is on the suppression list", request.channel));
                return Outcome::Receipt(r);
            }
            Ok(Verdict::Unsubscribed { category }) => {
                let detail = format!("the recipient unsubscribed from `{category}`");
                let r =
                    subject.terminal(Status::Unsubscribed, now).reason(Reason::Unsubscribed(category)).detail(detail);
                return Outcome::Receipt(r);
            }
            Ok(Verdict::Duplicate(prior)) => return Outcome::Receipt(subject.prior(prior)),
            Ok(Verdict::Undecided) => {
                let id = receipt_id(&["duplicate", subject.key.as_str(), &subject.fingerprint]);
                let r = subject
                    .receipt(Status::Duplicate, now)
                    .id(id)
                    .reason(Reason::DuplicateUndecided)
                    .detail("another message used this request id; its outcome was not recorded");
                return Outcome::Receipt(r);
            }
            Ok(Verdict::InProgress { until }) => {
                // Another attempt holds the lock; look again when it would have expired.
                return self.defer(&subject, until, Reason::InProgress, attempt).await;
            }
            Ok(Verdict::Capped { rule }) => {
                let detail = format!("frequency cap `{rule}` is reached for this recipient");
                let r = subject.terminal(Status::Capped, now).reason(Reason::FrequencyCapped(rule)).detail(detail);
                return Outcome::Receipt(r);
            }
        };

        if lease.took_over && guarantee == Guarantee::AtMostOnce {
            // An earlier attempt died between admission and completion: it may have
            // sent. At most once means not trying again.
            let detail = "an earlier attempt stopped after it was admitted and may have sent the message; \
                          not sent again (delivery guarantee: at most once)";
            return self.finish_failed(&subject, &lease, Reason::UnknownOutcome, detail, true).await;
        }

        match self.render_and_send(&request).await {
            Ok(delivered) => self.finish_sent(&subject, &lease, delivered).await,
            Err(Failure::Permanent { reason, detail }) => {
                self.finish_failed(&subject, &lease, reason, &detail, true).await
            }
            Err(Failure::SmsTooLong { detail, facts }) => {
                let out = self.finish_failed(&subject, &lease, Reason::SmsTooLong, &detail, true).await;
                with_sms(out, facts)
            }
            Err(Failure::OptedOut) => {
                // Nothing was sent: the slots go back. The provider's message is left out
                // (it may name the number).
                let detail = "the provider reports that the recipient opted out of messages from this sender \
                              (replied STOP, say); nothing was sent";
                self.finish(&subject, &lease, Status::Unsubscribed, Reason::OptedOut, detail, true).await
            }
            Err(Failure::Transient(e)) => {
                release(self.ports.store.as_ref(), &lease, Release::Everything).await;
                match e.retry_after() {
                    // The provider said when: come back then, not at the queue's redelivery
                    // delay (counted as a failed attempt, like any transient failure).
                    Some(delay) if attempt + 1 < MAX_ATTEMPTS => {
                        // No sooner than herald's own backoff either: a `Retry-After: 0`
                        // must not burn the attempts in seconds.
                        let backoff = std::time::Duration::from_secs(30 << attempt.min(10));
                        let delay =
                            SignedDuration::try_from(delay.max(backoff)).unwrap_or(SignedDuration::from_secs(3600));
                        let now = self.now();
                        let until = now.checked_add(delay).unwrap_or(now);
                        tracing::warn!(error = %e, attempt, "provider asked to retry later");
                        self.defer(&subject, until, Reason::Retry, attempt + 1).await
                    }
                    _ => retry(&request, e.to_string(), attempt),
                }
            }
            Err(Failure::UnknownOutcome(e)) => match guarantee {
                Guarantee::AtMostOnce => {
                    let detail = format!(
                        "the provider may or may not have sent it ({}); not sent again (delivery guarantee: at most once)",
                        e.code()
                    );
                    // The slots stay taken: it may have been delivered.
                    self.finish_failed(&subject, &lease, Reason::UnknownOutcome, &detail, false).await
                }
                Guarantee::AtLeastOnce => {
                    // Sent again after the redelivery delay, by an attempt that takes
                    // this lock over and inherits its slots (this one may have delivered).
                    release(self.ports.store.as_ref(), &lease, Release::ForTakeover).await;
                    retry(&request, e.to_string(), attempt)
                }
            },
        }
    }

    async fn finish_sent(&self, subject: &Subject<'_>, lease: &Lease, delivered: Delivered) -> Outcome {
        let Delivered { message_id, sms } = delivered;
        let now = self.now();
        let completion = Completion {
            status: Status::Sent,
            reason: None,
            provider_message_id: Some(message_id.clone()),
            at: now,
            release_slots: false,
            retain_until: self.settings.policy.retain_until(now),
        };
        let mut recorded = false;
        for _ in 0..COMPLETE_TRIES {
            match self.ports.store.complete(lease, &completion).await {
                Ok(()) => {
                    recorded = true;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "sent, but recording the outcome failed; trying again"),
            }
        }
        if !recorded {
            // The message is out: report it. Should the receipt be lost too, the
            // redelivery meets the expired lock and the guarantee rules (never a
            // second send at most once).
            tracing::error!("sent, but the outcome could not be recorded");
        }
        Outcome::Receipt(subject.terminal(Status::Sent, now).provider_message_id(Some(&message_id)).sms(sms))
    }

    async fn finish_failed(
        &self,
        subject: &Subject<'_>,
        lease: &Lease,
        reason: Reason,
        detail: &str,
        release_slots: bool,
    ) -> Outcome {
        self.finish(subject, lease, Status::Failed, reason, detail, release_slots).await
    }

    /// Records an admitted request that ended without a send, and returns its receipt.
    async fn finish(
        &self,
        subject: &Subject<'_>,
        lease: &Lease,
        status: Status,
        reason: Reason,
        detail: &str,
        release_slots: bool,
    ) -> Outcome {
        let now = self.now();
        let completion = Completion {
            status,
            reason: Some(reason.to_string()),
            provider_message_id: None,
            at: now,
            release_slots,
            retain_until: self.settings.policy.retain_until(now),
        };
        if let Err(e) = self.ports.store.complete(lease, &completion).await {
            tracing::warn!(error = %e, %status, "recording the outcome failed");
        }
        Outcome::Receipt(subject.terminal(status, now).reason(reason).detail(detail))
    }

    /// Ends a request that cannot be tried again (`retries_exhausted`, `stale_message`)
    /// with its terminal receipt, recorded so every later delivery reports the same.
    pub async fn give_up(
        &self,
        request: &DeliveryRequest,
        reason: Reason,
        detail: &str,
        source: Option<&str>,
    ) -> Outcome {
        let now = self.now();
        let subject = Subject::new(request, source);
        let decision = Decision {
            idempotency_key: subject.key.clone(),
            fingerprint: subject.fingerprint.clone(),
            status: Status::Failed,
            reason: Some(reason.to_string()),
            at: now,
            retain_until: self.settings.policy.retain_until(now),
        };
        match self.ports.store.record(&decision).await {
            Ok(Recorded::Existing(prior)) => return Outcome::Receipt(subject.prior(prior)),
            Ok(Recorded::Stored) => {}
            // A live attempt may still send: let it finish, and look again after its lock.
            Ok(Recorded::InProgress { until }) => return self.defer(&subject, until, Reason::InProgress, 0).await,
            // Out of attempts: the receipt goes out even if it could not be recorded.
            Err(e) => tracing::warn!(error = %e, "could not record the final failure"),
        }
        Outcome::Receipt(subject.terminal(Status::Failed, now).reason(reason).detail(detail))
    }

    /// Records an outcome reached before admission and returns its receipt, or the
    /// outcome the request already had.
    async fn decided(
        &self,
        subject: &Subject<'_>,
        status: Status,
        reason: Reason,
        detail: String,
        attempt: u32,
    ) -> Outcome {
        let now = self.now();
        let decision = Decision {
            idempotency_key: subject.key.clone(),
            fingerprint: subject.fingerprint.clone(),
            status,
            reason: Some(reason.to_string()),
            at: now,
            retain_until: self.settings.policy.retain_until(now),
        };
        match self.ports.store.record(&decision).await {
            Ok(Recorded::Stored) => Outcome::Receipt(subject.terminal(status, now).reason(reason).detail(detail)),
            Ok(Recorded::Existing(prior)) => Outcome::Receipt(subject.prior(prior)),
            Ok(Recorded::InProgress { until }) => self.defer(subject, until, Reason::InProgress, attempt).await,
            Err(e) => retry(subject.request, format!("recording the outcome: {e}"), attempt),
        }
    }

    /// Schedules a request that failed transiently, with exponential backoff, or ends
    /// it `failed` once [`MAX_ATTEMPTS`] is reached. Used where there is no SQS.
    pub async fn retry_later(
        &self,
        request: DeliveryRequest,
        error: &str,
        attempt: u32,
        source: Option<&str>,
    ) -> Outcome {
        let now = self.now();
        let next = attempt + 1;
        if next >= MAX_ATTEMPTS {
            return self.exhausted(&request, error, next, source).await;
        }
        let backoff = SignedDuration::from_secs(30_i64 << attempt.min(10));
        let until = now.checked_add(backoff).unwrap_or(now);
        let subject = Subject::new(&request, source);
        self.defer(&subject, until, Reason::Retry, next).await
    }

    /// The end of a request out of attempts.
    pub async fn exhausted(
        &self,
        request: &DeliveryRequest,
        error: &str,
        attempts: u32,
        source: Option<&str>,
    ) -> Outcome {
        // The error names a service and a code, never a request value.
        let error: String = error.chars().take(300).collect();
        let detail = format!("{attempts} attempts failed; last error: {error}");
        self.give_up(request, Reason::RetriesExhausted, &detail, source).await
    }

    async fn defer(&self, subject: &Subject<'_>, until: Timestamp, why: Reason, attempt: u32) -> Outcome {
        let now = self.now();
        // Never into the past: a deferral that comes back due at once would loop.
        let until = until.max(now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now));
        match self.ports.scheduler.defer(subject.request, until, attempt, subject.source).await {
            Ok(()) => Outcome::Receipt(subject.deferred(now, until, &why)),
            Err(e) => retry(subject.request, format!("deferral: {e}"), attempt),
        }
    }

    /// Renders `request` into what its sender is handed, with the checks that follow
    /// rendering (SMS length, push payload budget, reserved push keys), as a send now would.
    fn prepare(&self, request: &DeliveryRequest) -> Result<Prepared, Failure> {
        let (rendered, unsubscribe) = self
            .render(request)
            .map_err(|e| Failure::Permanent { reason: Reason::Template(e.reason()), detail: e.to_string() })?;
        self.build(request, rendered, unsubscribe)
    }

    /// The template rendered for `request`, with the unsubscribe URL it carries.
    fn render(&self, request: &DeliveryRequest) -> Result<(Rendered, Option<String>), RenderErrorOrLookup> {
        // Signed once: the same URL goes in the body and in List-Unsubscribe.
        let unsubscribe = self.unsubscribe_url(request);
        let context = self.context(request, unsubscribe.as_deref());
        let rendered = self.catalogue.render_owned(
            &request.template,
            request.channel,
            request.recipient.locale.as_ref(),
            context,
        )?;
        Ok((rendered, unsubscribe))
    }

    /// What a sender would be handed for `request`, without sending (`herald preview`,
    /// `herald templates check`): a render error as the template author needs it (file,
    /// line), any other failure as the receipt's reason and detail.
    pub fn preview(&self, request: &DeliveryRequest) -> Result<Prepared, PreviewError> {
        let (rendered, unsubscribe) = self.render(request).map_err(PreviewError::Render)?;
        self.build(request, rendered, unsubscribe).map_err(|f| match f {
            Failure::Permanent { reason, detail } => PreviewError::Check { reason, detail },
            Failure::SmsTooLong { detail, .. } => PreviewError::Check { reason: Reason::SmsTooLong, detail },
            // Only a provider answers these; building a message never does.
            Failure::OptedOut => PreviewError::Check { reason: Reason::OptedOut, detail: String::new() },
            Failure::Transient(e) | Failure::UnknownOutcome(e) => {
                PreviewError::Check { reason: Reason::Provider(e.code().to_owned()), detail: e.message().to_owned() }
            }
        })
    }

    /// The message built from a rendered template, with the checks that follow rendering.
    fn build(
        &self,
        request: &DeliveryRequest,
        rendered: Rendered,
        unsubscribe: Option<String>,
    ) -> Result<Prepared, Failure> {
        let request_id = request.id.as_str().to_owned();
        let transactional = request.is_transactional();
        let tenant = request.tenant.as_ref().map(|t| t.as_str().to_owned());
        Ok(match (rendered, &request.recipient) {
            (Rendered::Email { subject, html, text }, recipient) => {
                let to = recipient.email.clone().ok_or_else(|| missing("email"))?;
                Prepared::Email(self.outbound_email(request, to, subject, html, text, unsubscribe)?)
            }
            (Rendered::Sms { body }, recipient) => {
                let to = recipient.phone.clone().ok_or_else(|| missing("phone"))?;
                let options =
                    self.settings.sms.for_message(tenant.as_deref(), &to, request.category.as_str(), transactional);
                let (body, transliterated) = match options.transliterate.then(|| sms::transliterate(&body)).flatten() {
                    Some(t) => (t.body, t.replaced),
                    None => (body, Vec::new()),
                };
                let facts = SmsFacts::of(&body, &transliterated);
                if facts.segments > options.max_segments {
                    let detail = too_long(&facts, options.max_segments, request.category.as_str());
                    return Err(Failure::SmsTooLong { detail, facts });
                }
                let sms = OutboundSms {
                    request_id,
                    tenant,
                    to,
                    body,
                    encoding: facts.encoding,
                    segments: facts.segments,
                    sender_id: options.sender_id,
                    origination_number: options.origination_number,
                    max_price: options.max_price,
                    transactional,
                };
                Prepared::Sms(sms, facts)
            }
            (Rendered::Push { title, body, data }, recipient) => {
                let target = recipient.push.clone().ok_or_else(|| missing("push"))?;
                let settings = &self.settings.push;
                let expires_at =
                    request.expires_at.unwrap_or_else(|| crate::policy::add(self.now(), settings.default_ttl));
                let collapse_id = match settings.collapse {
                    crate::config::Collapse::None => None,
                    crate::config::Collapse::Template => Some(request.template.name.as_str().to_owned()),
                    crate::config::Collapse::Category => Some(request.category.as_str().to_owned()),
                };
                let push = OutboundPush {
                    request_id,
                    tenant,
                    target,
                    title,
                    body,
                    data,
                    transactional,
                    recipient_id: request.recipient.id.as_str().to_owned(),
                    category: request.category.as_str().to_owned(),
                    expires_at,
                    collapse_id,
                };
                // Measured before any call: over the provider's limit it fails here,
                // never truncated, and costs nothing.
                crate::push::payload::measure(&push).map_err(|e| match e {
                    PayloadError::TooLarge(too_large) => Failure::Permanent {
                        reason: Reason::PayloadTooLarge(too_large.bytes),
                        detail: format!(
                            "the {} payload is {} bytes, more than the {} its provider accepts; shorten the \
                             template's push parts or its data (nothing was truncated)",
                            push.target.platform().as_str(),
                            too_large.bytes,
                            too_large.limit
                        ),
                    },
                    PayloadError::ReservedKey { .. } => Failure::Permanent {
                        reason: Reason::Template(format!(
                            "render_error:{}:push.data.json.hbs",
                            request.template.name.as_str()
                        )),
                        detail: e.to_string(),
                    },
                })?;
                Prepared::Push(push)
            }
        })
    }

    async fn render_and_send(&self, request: &DeliveryRequest) -> Result<Delivered, Failure> {
        let result = match self.prepare(request)? {
            Prepared::Email(email) => {
                let sender = self.ports.senders.email.as_ref().ok_or_else(|| not_served(Channel::Email))?;
                sender.send_email(&email).await.map(|message_id| Delivered { message_id, sms: None })
            }
            Prepared::Sms(sms, facts) => {
                let sender = self.ports.senders.sms.as_ref().ok_or_else(|| not_served(Channel::Sms))?;
                sender.send_sms(&sms).await.map(|message_id| Delivered { message_id, sms: Some(facts) })
            }
            Prepared::Push(push) => {
                let sender = self.ports.senders.push.as_ref().ok_or_else(|| not_served(Channel::Push))?;
                sender.send_push(&push).await.map(|message_id| Delivered { message_id, sms: None })
            }
        };
        result.map_err(|e: SendError| {
            if e.is_opted_out() {
                Failure::OptedOut
            } else if e.is_transient() {
                Failure::Transient(e)
            } else if e.is_unknown_outcome() {
                Failure::UnknownOutcome(e)
            } else {
                Failure::Permanent { reason: Reason::Provider(e.code().to_owned()), detail: e.message().to_owned() }
            }
        })
    }

    /// Whether `request` would render and pass the checks after rendering if it were
    /// sent now (`herald validate`): the reason and detail its receipt would carry if not.
    /// Guard rails (suppression, consent, caps, quiet hours) are not consulted.
    pub fn check_rendering(&self, request: &DeliveryRequest) -> Result<(), (Reason, String)> {
        match self.preview(request) {
            Ok(_) => Ok(()),
            Err(PreviewError::Render(e)) => Err((Reason::Template(e.reason()), e.to_string())),
            Err(PreviewError::Check { reason, detail }) => Err((reason, detail)),
        }
    }

    fn outbound_email(
        &self,
        request: &DeliveryRequest,
        to: crate::request::EmailAddress,
        subject: String,
        html: String,
        text: String,
        unsubscribe: Option<String>,
    ) -> Result<OutboundEmail, Failure> {
        let settings = self.settings.email.as_ref().ok_or_else(|| Failure::Permanent {
            reason: Reason::EmailNotConfigured,
            detail: "no [email] section in the configuration (sender address, unsubscribe URL)".into(),
        })?;
        let mut headers = Vec::new();
        if let Some(url) = unsubscribe {
            let mut targets = vec![format!("<{url}>")];
            if let Some(mailto) = &settings.unsubscribe_mailto {
                targets.push(format!("<mailto:{mailto}?subject=unsubscribe>"));
            }
            headers.push(("List-Unsubscribe".to_owned(), targets.join(", ")));
            headers.push(("List-Unsubscribe-Post".to_owned(), "List-Unsubscribe=One-Click".to_owned()));
        }
        // What SES events are matched back to the request by (see `receipt::event::tags`).
        let mut tags = vec![(event_tags::CATEGORY.to_owned(), request.category.as_str().to_owned())];
        if let Some(id) = event_tags::encode_request_id(request.id.as_str()) {
            tags.push((event_tags::REQUEST_ID.to_owned(), id));
        }
        if let Some(t) = &request.tenant {
            tags.push((event_tags::TENANT.to_owned(), t.as_str().to_owned()));
        }
        Ok(OutboundEmail {
            request_id: request.id.as_str().to_owned(),
            tenant: request.tenant.as_ref().map(|t| t.as_str().to_owned()),
            from: settings.from.clone(),
            to,
            reply_to: settings.reply_to.as_ref().map(|r| r.as_str().to_owned()),
            subject,
            html,
            text,
            headers,
            tags,
            transactional: request.is_transactional(),
        })
    }

    /// The one-click URL for this recipient and category: non-transactional email
    /// only, and only when email is configured.
    fn unsubscribe_url(&self, request: &DeliveryRequest) -> Option<String> {
        if request.channel != Channel::Email || request.is_transactional() {
            return None;
        }
        let settings = self.settings.email.as_ref()?;
        let claims = UnsubscribeClaims {
            tenant: request.tenant.as_ref().map(|t| t.as_str().to_owned()),
            recipient_id: request.recipient.id.as_str().to_owned(),
            category: request.category.as_str().to_owned(),
            exp: self.now().as_second().saturating_add(settings.unsubscribe_ttl.seconds()),
        };
        let token = unsubscribe::sign(&settings.unsubscribe_keys, &claims);
        Some(settings.unsubscribe_url.replace("{token}", &token))
    }

    /// The template context: the request's data plus the reserved `herald` object.
    fn context(&self, request: &DeliveryRequest, unsubscribe_url: Option<&str>) -> Value {
        let mut data = request.data.clone();
        let mut herald = json!({
            "request_id": request.id.as_str(),
            "recipient_id": request.recipient.id.as_str(),
            "channel": request.channel.as_str(),
            "category": request.category.as_str(),
            "template": request.template.name.as_str(),
        });
        if let Some(obj) = herald.as_object_mut() {
            let mut opt = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    obj.insert(k.to_owned(), Value::String(v));
                }
            };
            opt("locale", request.recipient.locale.as_ref().map(|l| l.to_string()));
            // Dates print in the recipient's zone (`format_date`).
            opt("timezone", request.recipient.timezone.as_ref().map(|z| z.as_str().to_owned()));
            opt("tenant", request.tenant.as_ref().map(|t| t.to_string()));
            opt("unsubscribe_url", unsubscribe_url.map(str::to_owned));
        }
        data.insert("herald".to_owned(), herald);
        let mut context = Value::Object(data);
        // Numbers print as handlebars.js prints them (`10`, not `10.0`).
        crate::render::compat::js_numbers(&mut context);
        context
    }
}

/// The state of a pipeline made for checks only: every call fails, and none is made.
struct ChecksOnly;

const CHECKS_ONLY: &str = "a pipeline for checks only has no state";

#[async_trait::async_trait]
impl StateStore for ChecksOnly {
    async fn admit(&self, _: &crate::ports::Admission) -> Result<Verdict, crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn complete(&self, _: &Lease, _: &Completion) -> Result<(), crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn abandon(&self, _: &Lease, _: Release) -> Result<(), crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn record(&self, _: &crate::ports::Decision) -> Result<Recorded, crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn suppress(&self, _: &crate::ports::SuppressionEntry, _: Timestamp) -> Result<(), crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn unsuppress(&self, _: &crate::request::SuppressionKey) -> Result<bool, crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
    async fn set_consent(
        &self,
        _: &crate::request::RecipientKey,
        _: &str,
        _: bool,
        _: Timestamp,
    ) -> Result<(), crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
}

#[async_trait::async_trait]
impl Scheduler for ChecksOnly {
    async fn defer(
        &self,
        _: &DeliveryRequest,
        _: Timestamp,
        _: u32,
        _: Option<&str>,
    ) -> Result<(), crate::ports::StoreError> {
        Err(crate::ports::StoreError::new(CHECKS_ONLY))
    }
}

/// Why [`Pipeline::preview`] has no message.
#[derive(Debug)]
pub enum PreviewError {
    Render(RenderErrorOrLookup),
    /// A check after rendering (SMS too long, push payload too large, no address...).
    Check {
        reason: Reason,
        detail: String,
    },
}

/// What a sender is handed, rendered and checked.
#[derive(Debug)]
pub enum Prepared {
    Email(OutboundEmail),
    /// With what it costs, for the receipt.
    Sms(OutboundSms, SmsFacts),
    Push(OutboundPush),
}

/// A message the provider accepted.
struct Delivered {
    message_id: String,
    /// SMS only: what it costs, for the receipt.
    sms: Option<SmsFacts>,
}

enum Failure {
    Permanent {
        reason: Reason,
        detail: String,
    },
    /// Over the category's `max_segments`: failed before costing anything.
    SmsTooLong {
        detail: String,
        facts: SmsFacts,
    },
    /// The recipient opted out at the provider: nothing was sent.
    OptedOut,
    Transient(SendError),
    UnknownOutcome(SendError),
}

/// Why an SMS is refused as too long: the numbers, the limit, and what made it UCS-2.
fn too_long(facts: &SmsFacts, max: u32, category: &str) -> String {
    let mut detail = format!(
        "the message needs {} {} segments, more than the {max} allowed (sms.max_segments, or \
         sms.categories.{category}.max_segments)",
        facts.segments, facts.encoding
    );
    if !facts.transliterated.is_empty() {
        detail.push_str(&format!(" after replacing {}", facts.transliterated.join(", ")));
    }
    if facts.encoding == sms::SmsEncoding::Ucs2 {
        let mut named = facts.non_gsm_characters.join(", ");
        if facts.non_gsm_others > 0 {
            // Letters are counted, not named: they may spell personal data.
            let others = format!("{} other characters (letters or digits are not named)", facts.non_gsm_others);
            named = if named.is_empty() { others } else { format!("{named} and {others}") };
        }
        detail.push_str(&format!("; it is UCS-2 (70 characters per SMS, not 160) because of {named}"));
    }
    detail
}

/// A receipt with the SMS facts attached.
fn with_sms(outcome: Outcome, facts: SmsFacts) -> Outcome {
    match outcome {
        Outcome::Receipt(r) => Outcome::Receipt(r.sms(Some(facts))),
        other => other,
    }
}

/// Unreachable in practice: `process` rejects an unserved channel before admission.
fn not_served(channel: Channel) -> Failure {
    Failure::Permanent { reason: Reason::WrongQueue(channel), detail: format!("this function does not send {channel}") }
}

fn missing(field: &str) -> Failure {
    Failure::Permanent {
        reason: Reason::InvalidRequest(format!("recipient.{field}")),
        detail: format!("recipient.{field} is missing"),
    }
}

fn retry(request: &DeliveryRequest, error: String, attempt: u32) -> Outcome {
    tracing::warn!(%error, attempt, "not decided yet, will retry");
    Outcome::Retry { request: Box::new(request.clone()), error, attempt }
}

/// Gives the lock up, trying a few times: a lock left behind by a failed release is
/// later taken over as if this attempt had died, which at most once ends the request
/// `failed: provider:unknown_outcome` though nothing was sent.
async fn release(store: &dyn StateStore, lease: &Lease, how: Release) {
    let mut last = Ok(());
    for _ in 0..3 {
        last = store.abandon(lease, how).await;
        if last.is_ok() {
            return;
        }
    }
    if let Err(e) = last {
        // The lock expires by itself; the retry then proceeds.
        tracing::warn!(error = %e, "could not release the idempotency lock");
    }
}

/// Counts receipts per status, for summaries.
pub fn tally<'a>(receipts: impl IntoIterator<Item = &'a Receipt>) -> BTreeMap<Status, usize> {
    let mut counts = BTreeMap::new();
    for r in receipts {
        *counts.entry(r.status).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests;
