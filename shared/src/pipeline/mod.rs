//! One request in, one outcome out:
//! validate -> template lookup -> expiry -> send_after / quiet hours -> suppression,
//! consent, idempotency and caps (one atomic admission) -> render -> send -> record.
//!
//! The pipeline decides and the ports do the I/O. It never emits receipts itself:
//! it returns them, so the caller can batch them (receipts queue, stdout).

mod batch;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use crate::config::Settings;
use crate::ports::{
    Clock, Completion, EmailSender, Lease, OutboundEmail, OutboundPush, OutboundSms, PushSender, Scheduler, SendError,
    SmsSender, StateStore, Verdict,
};
use crate::receipt::unsubscribe::{self, UnsubscribeClaims};
use crate::receipt::{Receipt, Status};
use crate::render::{Catalogue, RenderErrorOrLookup, Rendered, sms};
use crate::request::{Channel, DeliveryRequest, RawFacts};

pub use batch::{BatchResult, QueuedRequest};

/// After this many transient failures a request ends `failed` instead of looping.
pub const MAX_ATTEMPTS: u32 = 8;

/// The I/O a pipeline is wired to.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn StateStore>,
    pub email: Arc<dyn EmailSender>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushSender>,
    pub scheduler: Arc<dyn Scheduler>,
    pub clock: Arc<dyn Clock>,
}

/// What became of one request.
// One outcome per request, moved once to the caller: boxing the common variant
// would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A terminal receipt, or a `deferred` one whose request is already scheduled.
    Receipt(Receipt),
    /// A transient failure: nothing was decided or sent; run the request again later
    /// (SQS: leave it for redelivery; embedded: [`Pipeline::retry_later`]).
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

pub struct Pipeline {
    catalogue: Arc<Catalogue>,
    settings: Arc<Settings>,
    ports: Ports,
}

impl Pipeline {
    pub fn new(catalogue: Arc<Catalogue>, settings: Arc<Settings>, ports: Ports) -> Self {
        Pipeline { catalogue, settings, ports }
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
            Err(e) => {
                let facts = RawFacts::from_json(raw);
                tracing::info!(reason = %e.reason(), "request rejected");
                Outcome::Receipt(
                    Receipt::for_raw(&facts, Status::Rejected, self.now())
                        .reason(e.reason())
                        .detail(e.to_string())
                        .source(source),
                )
            }
        }
    }

    /// Runs one parsed request through the guard rails and, if admitted, sends it.
    /// `attempt` counts earlier transient failures of this request.
    pub async fn process(&self, request: DeliveryRequest, attempt: u32, source: Option<&str>) -> Outcome {
        let now = self.now();
        let receipt = |status: Status| Receipt::for_request(&request, status, now).source(source);
        let locale = request.recipient.locale.as_ref();

        if let Err(e) = self.catalogue.check(&request.template, request.channel, locale) {
            return Outcome::Receipt(receipt(Status::Rejected).reason(e.reason()).detail(e.to_string()));
        }
        if let Some(expires) = request.expires_at
            && expires <= now
        {
            return Outcome::Receipt(
                receipt(Status::Expired).reason("expired").detail(format!("expired at {expires}")),
            );
        }
        if let Some(after) = request.send_after
            && after > now
        {
            return self.defer(request, after, "send_after", attempt, source).await;
        }
        if let Some(opening) = self.settings.policy.quiet_hours_hold(&request, now) {
            if request.expires_at.is_some_and(|e| e <= opening) {
                return Outcome::Receipt(
                    receipt(Status::Expired)
                        .reason("expired:quiet_hours")
                        .detail(format!("quiet hours end at {opening}, after the request expires")),
                );
            }
            return self.defer(request, opening, "quiet_hours", attempt, source).await;
        }

        let destination = match request.destination() {
            Ok(d) => d,
            Err(e) => return Outcome::Receipt(receipt(Status::Rejected).reason(e.reason()).detail(e.to_string())),
        };
        let admission = self.settings.policy.admission(&request, destination.suppression_key(), now);
        let lease = match self.ports.store.admit(&admission).await {
            Err(e) => return retry(request, format!("admission: {e}"), attempt),
            Ok(Verdict::Admitted(lease)) => lease,
            Ok(Verdict::Suppressed(why)) => {
                return Outcome::Receipt(
                    receipt(Status::Suppressed)
                        .reason(format!("suppressed:{}", why.as_str()))
                        .detail(format!("the {} address is on the suppression list", request.channel)),
                );
            }
            Ok(Verdict::Unsubscribed { category }) => {
                return Outcome::Receipt(
                    receipt(Status::Unsubscribed)
                        .reason(format!("unsubscribed:{category}"))
                        .detail(format!("the recipient unsubscribed from `{category}`")),
                );
            }
            Ok(Verdict::Duplicate(prior)) => {
                let mut r = receipt(Status::Duplicate)
                    .reason(format!("duplicate:{}", prior.status))
                    .detail(format!("request already processed at {}: {}", prior.at, prior.status));
                r.provider_message_id = prior.provider_message_id;
                return Outcome::Receipt(r);
            }
            Ok(Verdict::InProgress { until }) => {
                // Another attempt holds the lock; look again when it would have expired.
                return self.defer(request, until, "in_progress", attempt, source).await;
            }
            Ok(Verdict::Capped { rule }) => {
                return Outcome::Receipt(
                    receipt(Status::Capped)
                        .reason(format!("frequency_capped:{rule}"))
                        .detail(format!("frequency cap `{rule}` is reached for this recipient")),
                );
            }
        };

        let sent = self.render_and_send(&request).await;
        let now = self.now();
        let retain_until = self.settings.policy.retain_until(now);
        let receipt = Receipt::for_request(&request, Status::Sent, now).source(source);
        match sent {
            Ok(message_id) => {
                let completion = Completion {
                    status: Status::Sent,
                    reason: None,
                    provider_message_id: Some(message_id.clone()),
                    at: now,
                    release_slots: false,
                    retain_until,
                };
                if let Err(e) = self.ports.store.complete(&lease, &completion).await {
                    // The message is out: report it. The lock expires on its own and the
                    // caller must not redeliver this request.
                    tracing::warn!(error = %e, "sent, but recording the outcome failed");
                }
                let mut r = receipt;
                r.provider_message_id = Some(message_id);
                Outcome::Receipt(r)
            }
            Err(Failure::Permanent { reason, detail }) => {
                let completion = Completion {
                    status: Status::Failed,
                    reason: Some(reason.clone()),
                    provider_message_id: None,
                    at: now,
                    release_slots: true,
                    retain_until,
                };
                if let Err(e) = self.ports.store.complete(&lease, &completion).await {
                    tracing::warn!(error = %e, "recording a permanent failure failed");
                }
                let mut r = receipt.reason(reason).detail(detail);
                r.status = Status::Failed;
                Outcome::Receipt(r)
            }
            Err(Failure::Transient(e)) => {
                release(self.ports.store.as_ref(), &lease).await;
                retry(request, e.to_string(), attempt)
            }
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
            return Outcome::Receipt(
                Receipt::for_request(&request, Status::Failed, now)
                    .reason("retries_exhausted")
                    .detail(format!("{next} attempts failed; last error: {error}"))
                    .source(source),
            );
        }
        let backoff = SignedDuration::from_secs(30_i64 << attempt.min(10));
        let until = now.checked_add(backoff).unwrap_or(now);
        self.defer(request, until, "retry", next, source).await
    }

    async fn defer(
        &self,
        request: DeliveryRequest,
        until: Timestamp,
        why: &str,
        attempt: u32,
        source: Option<&str>,
    ) -> Outcome {
        match self.ports.scheduler.defer(&request, until, attempt, source).await {
            Ok(()) => {
                let mut r = Receipt::for_request(&request, Status::Deferred, self.now()).reason(why).source(source);
                r.deferred_until = Some(until);
                Outcome::Receipt(r)
            }
            Err(e) => retry(request, format!("deferral: {e}"), attempt),
        }
    }

    async fn render_and_send(&self, request: &DeliveryRequest) -> Result<String, Failure> {
        // Signed once: the same URL goes in the body and in List-Unsubscribe.
        let unsubscribe = self.unsubscribe_url(request);
        let context = self.context(request, unsubscribe.as_deref());
        let rendered = self
            .catalogue
            .render(&request.template, request.channel, request.recipient.locale.as_ref(), &context)
            .map_err(|e: RenderErrorOrLookup| Failure::Permanent { reason: e.reason(), detail: e.to_string() })?;
        let request_id = request.id.as_str().to_owned();
        let transactional = request.is_transactional();
        let tenant = request.tenant.as_ref().map(|t| t.as_str().to_owned());
        let result = match (rendered, &request.recipient) {
            (Rendered::Email { subject, html, text }, recipient) => {
                let to = recipient.email.clone().ok_or_else(|| missing("email"))?;
                let email = self.outbound_email(request, to, subject, html, text, unsubscribe)?;
                self.ports.email.send_email(&email).await
            }
            (Rendered::Sms { body }, recipient) => {
                let to = recipient.phone.clone().ok_or_else(|| missing("phone"))?;
                let info = sms::segment(&body);
                let max = self.settings.sms.max_segments;
                if info.segments > max {
                    return Err(Failure::Permanent {
                        reason: "sms_too_long".into(),
                        detail: format!(
                            "the message needs {} {} segments, more than sms.max_segments = {max}",
                            info.segments, info.encoding
                        ),
                    });
                }
                let sms = OutboundSms {
                    request_id,
                    tenant,
                    to,
                    body,
                    encoding: info.encoding,
                    segments: info.segments,
                    sender_id: self.settings.sms.sender_id.clone(),
                    transactional,
                };
                self.ports.sms.send_sms(&sms).await
            }
            (Rendered::Push { title, body, data }, recipient) => {
                let target = recipient.push.clone().ok_or_else(|| missing("push"))?;
                let push = OutboundPush { request_id, tenant, target, title, body, data, transactional };
                self.ports.push.send_push(&push).await
            }
        };
        result.map_err(|e: SendError| {
            if e.is_transient() {
                Failure::Transient(e)
            } else {
                Failure::Permanent { reason: format!("provider:{}", e.code()), detail: e.message().to_owned() }
            }
        })
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
            reason: "email_not_configured".into(),
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
        let mut tags = vec![
            ("herald-request-id".to_owned(), request.id.as_str().to_owned()),
            ("herald-category".to_owned(), request.category.as_str().to_owned()),
        ];
        if let Some(t) = &request.tenant {
            tags.push(("herald-tenant".to_owned(), t.as_str().to_owned()));
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
            opt("tenant", request.tenant.as_ref().map(|t| t.to_string()));
            opt("unsubscribe_url", unsubscribe_url.map(str::to_owned));
        }
        data.insert("herald".to_owned(), herald);
        Value::Object(data)
    }
}

enum Failure {
    Permanent { reason: String, detail: String },
    Transient(SendError),
}

fn missing(field: &str) -> Failure {
    Failure::Permanent {
        reason: format!("invalid_request:recipient.{field}"),
        detail: format!("recipient.{field} is missing"),
    }
}

fn retry(request: DeliveryRequest, error: String, attempt: u32) -> Outcome {
    tracing::warn!(%error, attempt, "transient failure, will retry");
    Outcome::Retry { request: Box::new(request), error, attempt }
}

async fn release(store: &dyn StateStore, lease: &Lease) {
    if let Err(e) = store.abandon(lease).await {
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
