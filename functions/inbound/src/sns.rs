//! `POST /sns`: an Amazon SNS HTTP/S subscription. A topic that publishes provider
//! events (SES notifications, SMS delivery status) can deliver them straight to the
//! Function URL; each message is checked, then forwarded to the provider-events queue,
//! where the events function handles it as if SNS had delivered it to SQS.
//!
//! Checks, cheapest first, each refusal a 4xx that changes nothing: the body parses
//! (400), its topic is one of the pinned ones (403), it is recent (403), its
//! `SigningCertURL` is an SNS one (403), the certificate from there verifies its
//! signature at now (403). Only then: a `SubscriptionConfirmation` is confirmed by a
//! GET on its `SubscribeURL` (if that is an SNS URL), an `UnsubscribeConfirmation` is
//! logged, a `Notification` is forwarded once per `MessageId`.
//!
//! Logs name the reason (`SnsError`'s text), the topic and the message id, never the
//! body: a provider event names addresses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald::ports::{Claim, Clock, EventStore, Queue};
use herald::receipt::sns_message::{
    CertificateCache, MessageType, SigningCertificate, SnsError, SnsMessage, signing_cert_url_ok, subscribe_url_ok,
};
use jiff::{SignedDuration, Timestamp};

use crate::{Request, Response};

/// Bodies past this are refused (413): SNS messages are at most 256 KiB, and the
/// envelope adds little (its escapes can add more: SNS itself caps what it posts).
pub const MAX_BODY_BYTES: usize = 256 * 1024 + 8 * 1024;

/// How far a message's signed `Timestamp` may be from now. SNS retries an HTTP/S
/// delivery for at most 3,600 seconds (a hard limit of its delivery policies) and a
/// retry keeps the original Timestamp, so an hour, plus five minutes for the first
/// attempt's latency and clock skew. An older message is a replay: refused.
pub const MAX_AGE: SignedDuration = SignedDuration::from_mins(65);
/// How long a Notification's claim holds its message id while it is forwarded: the
/// function's timeout (15 s), so a claimant that died has let go before SNS retries
/// (its default policy waits about 20 s), and the retry forwards instead of being told
/// to wait until SNS gives up.
pub const CLAIM_LOCK: SignedDuration = SignedDuration::from_secs(15);
/// How long a forwarded message id is remembered: past SNS's retry window with room.
pub const CLAIM_RETAIN: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Where signing certificates come from: an HTTPS GET in production, a fake in tests.
/// Only called with URLs [`signing_cert_url_ok`] accepted.
#[async_trait]
pub trait CertificateSource: Send + Sync {
    /// The body at `url` (a PEM certificate), or why not (logged: no secrets in it).
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String>;
}

/// Confirms a subscription by visiting its `SubscribeURL`. Only called with URLs
/// [`subscribe_url_ok`] accepted.
#[async_trait]
pub trait SubscriptionConfirmer: Send + Sync {
    async fn confirm(&self, url: &str) -> Result<(), String>;
}

/// The SNS endpoint: the pinned topics and where verified notifications go.
pub struct SnsEndpoint {
    topics: Vec<String>,
    queue: Arc<dyn Queue>,
    claims: Arc<dyn EventStore>,
    certificates: Arc<dyn CertificateSource>,
    confirmer: Arc<dyn SubscriptionConfirmer>,
    clock: Arc<dyn Clock>,
    /// Shared by every invocation of the process; never held across an await.
    cache: Mutex<CertificateCache>,
}

/// Why a message was not acted on, and the status that says so.
#[derive(Debug)]
enum Refusal {
    Sns(u16, SnsError),
    TopicNotConfigured,
    Certificate(String),
}

impl SnsEndpoint {
    pub fn new(
        topics: Vec<String>,
        queue: Arc<dyn Queue>,
        claims: Arc<dyn EventStore>,
        certificates: Arc<dyn CertificateSource>,
        confirmer: Arc<dyn SubscriptionConfirmer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SnsEndpoint {
            topics,
            queue,
            claims,
            certificates,
            confirmer,
            clock,
            cache: Mutex::new(CertificateCache::new()),
        }
    }

    pub async fn handle(&self, request: &Request) -> Response {
        if request.method != "POST" {
            let mut response = Response::text(405, "POST only");
            response.headers.push(("Allow", "POST".to_owned()));
            return response;
        }
        if request.body.len() > MAX_BODY_BYTES {
            tracing::warn!(route = "sns", status = 413, "SNS message body too large");
            return Response::text(413, "message too large");
        }
        let now = self.clock.now();
        let message = match self.checked(&request.body, now).await {
            Ok(message) => message,
            Err(refusal) => return refusal.answer(),
        };
        let (topic, message_id) = (message.topic_arn.as_str(), message.message_id.as_str());
        match message.kind {
            MessageType::SubscriptionConfirmation => self.confirm(&message).await,
            MessageType::UnsubscribeConfirmation => {
                tracing::info!(route = "sns", topic, message_id, "SNS subscription ended (UnsubscribeConfirmation)");
                Response::text(200, "noted")
            }
            MessageType::Notification => self.forward(&message, now).await,
        }
    }

    /// Parses and verifies: a message that comes out of here is SNS's, for a pinned topic.
    async fn checked(&self, body: &[u8], now: Timestamp) -> Result<SnsMessage, Refusal> {
        let text = std::str::from_utf8(body)
            .map_err(|_| Refusal::Sns(400, SnsError::Malformed("body is not UTF-8".to_owned())))?;
        let message = SnsMessage::parse(text).map_err(|e| Refusal::Sns(400, e))?;
        if !self.topics.contains(&message.topic_arn) {
            return Err(Refusal::TopicNotConfigured);
        }
        // Before any fetch: a replayed or foreign message costs no request out.
        message.check_age(now, MAX_AGE).map_err(|e| Refusal::Sns(403, e))?;
        let cert_region = signing_cert_url_ok(&message.signing_cert_url).map_err(|e| Refusal::Sns(403, e))?;
        // A topic's messages are signed in its own region: a certificate from another
        // one is not SNS signing for this topic (and would only make herald fetch it).
        if message.topic_arn.split(':').nth(3) != Some(cert_region) {
            return Err(Refusal::Sns(403, SnsError::BadUrl("certificate URL of another region than the topic's")));
        }
        let cert = self.certificate(&message.signing_cert_url, now).await?;
        message.verify(&cert, now).map_err(|e| Refusal::Sns(403, e))?;
        Ok(message)
    }

    /// The certificate at `url`: cached, else fetched, checked and cached.
    async fn certificate(&self, url: &str, now: Timestamp) -> Result<SigningCertificate, Refusal> {
        let cached = self.cache.lock().ok().and_then(|cache| cache.get(url, now).cloned());
        if let Some(cert) = cached {
            return Ok(cert);
        }
        let pem = self.certificates.fetch(url).await.map_err(Refusal::Certificate)?;
        let mut cache = self.cache.lock().map_err(|_| Refusal::Certificate("certificate cache poisoned".into()))?;
        cache.insert(url, &pem).cloned().map_err(|e| Refusal::Sns(403, e))
    }

    async fn confirm(&self, message: &SnsMessage) -> Response {
        let (topic, message_id) = (message.topic_arn.as_str(), message.message_id.as_str());
        let Some(url) = message.subscribe_url.as_deref() else {
            // parse() refuses a confirmation without one.
            return Response::text(400, "no SubscribeURL");
        };
        if let Err(e) = subscribe_url_ok(url) {
            tracing::warn!(route = "sns", status = 403, topic, message_id, reason = %e, "SNS SubscribeURL refused");
            return Response::text(403, "refused");
        }
        match self.confirmer.confirm(url).await {
            Ok(()) => {
                tracing::info!(route = "sns", status = 200, topic, message_id, "SNS subscription confirmed");
                Response::text(200, "confirmed")
            }
            Err(e) => {
                // SNS sends the confirmation again; so can an operator.
                tracing::error!(route = "sns", status = 502, topic, message_id, error = %e, "SNS subscription not confirmed");
                Response::text(502, "could not confirm")
            }
        }
    }

    /// Forwards a Notification's `Message` once per message id.
    async fn forward(&self, message: &SnsMessage, now: Timestamp) -> Response {
        let (topic, message_id) = (message.topic_arn.as_str(), message.message_id.as_str());
        let claim_id = format!("sns:{topic}:{message_id}");
        let lock_until = now.checked_add(CLAIM_LOCK).unwrap_or(now);
        match self.claims.claim(&claim_id, now, lock_until).await {
            Ok(Claim::New) => {}
            Ok(Claim::Done) => {
                tracing::info!(route = "sns", status = 200, topic, message_id, "SNS message already forwarded");
                return Response::text(200, "duplicate");
            }
            Ok(Claim::Busy) => {
                tracing::info!(
                    route = "sns",
                    status = 503,
                    topic,
                    message_id,
                    "SNS message being forwarded by another request"
                );
                let mut response = Response::text(503, "in progress");
                response.headers.push(("Retry-After", CLAIM_LOCK.as_secs().to_string()));
                return response;
            }
            Err(e) => {
                tracing::error!(route = "sns", status = 500, topic, message_id, error = %e, "cannot claim the SNS message");
                return Response::text(500, "not forwarded");
            }
        }
        if let Err(e) = self.queue.send(&message.message, Duration::ZERO, &[]).await {
            tracing::error!(route = "sns", status = 500, topic, message_id, error = %e, "SNS message not forwarded");
            if let Err(e) = self.claims.release(&claim_id).await {
                // Its lock lapses after CLAIM_LOCK, before SNS's next retry ends.
                tracing::error!(route = "sns", topic, message_id, error = %e, "cannot release the SNS message's claim");
            }
            return Response::text(500, "not forwarded");
        }
        let retain_until = now.checked_add(CLAIM_RETAIN).unwrap_or(lock_until);
        if let Err(e) = self.claims.finish(&claim_id, retain_until).await {
            // Forwarded all the same; a redelivery after the lock lapses would forward it
            // again, and the events function de-duplicates by event id.
            tracing::warn!(route = "sns", topic, message_id, error = %e, "SNS message forwarded, but not marked done");
        }
        tracing::info!(route = "sns", status = 200, topic, message_id, "SNS message forwarded");
        Response::text(200, "forwarded")
    }
}

impl Refusal {
    /// Logs the refusal (its reason, no content of the message) and answers it.
    fn answer(self) -> Response {
        match self {
            Refusal::Sns(status, reason) => {
                tracing::warn!(route = "sns", status, reason = %reason, "SNS message refused");
                Response::text(status, if status == 400 { "malformed" } else { "refused" })
            }
            Refusal::TopicNotConfigured => {
                tracing::warn!(route = "sns", status = 403, reason = "topic not configured", "SNS message refused");
                Response::text(403, "refused")
            }
            Refusal::Certificate(error) => {
                // Not the sender's fault: 5xx, so SNS retries.
                tracing::error!(route = "sns", status = 502, error = %error, "SNS signing certificate not fetched");
                Response::text(502, "certificate unavailable")
            }
        }
    }
}
