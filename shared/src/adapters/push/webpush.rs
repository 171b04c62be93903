//! Web Push: the payload encrypted for the subscription (RFC 8291 `aes128gcm`), VAPID
//! authentication (RFC 8292, one JWT per push-service origin, cached until shortly before
//! it expires), and RFC 8030's `TTL`, `Urgency` and `Topic` headers, POSTed to the
//! subscription's endpoint.
//!
//! The endpoint comes from the request, so it is a URL from outside: the guarded client
//! refuses private and loopback addresses (a subscription pointing at the metadata
//! service ends `failed: provider:address_refused`), and its path (a capability for the
//! subscription) is never logged.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use super::{http_failure, verdict_result};
use crate::adapters::http::GuardedClient;
use crate::ports::{Clock, OutboundPush, PushSender, SendError};
use crate::push::errors::{PushVerdict, classify_webpush};
use crate::push::payload;
use crate::push::webpush::{self, Urgency, VapidCache, VapidKey};
use crate::request::PushTarget;

/// How long each VAPID token is valid: the usual 12 hours, well inside RFC 8292's 24.
pub const VAPID_TTL: Duration = Duration::from_secs(12 * 60 * 60);

pub struct WebPushSender {
    client: GuardedClient,
    vapid: Mutex<VapidCache>,
    clock: Arc<dyn Clock>,
}

impl WebPushSender {
    /// `subject`: the `mailto:` or `https:` contact push services see (`push.vapid_subject`).
    pub fn new(client: GuardedClient, key: VapidKey, subject: &str, clock: Arc<dyn Clock>) -> Result<Self, String> {
        let vapid = VapidCache::new(key, subject, VAPID_TTL).map_err(|e| e.to_string())?;
        Ok(WebPushSender { client, vapid: Mutex::new(vapid), clock })
    }

    /// The application server key subscriptions must have been made with (base64url).
    pub fn public_key(&self) -> String {
        self.vapid.lock().map(|v| v.key().public_key_base64url().to_owned()).unwrap_or_default()
    }
}

impl WebPushSender {
    async fn post(&self, endpoint: &str, headers: &[(String, String)], body: &[u8]) -> Result<PushVerdict, SendError> {
        let authorization = self
            .vapid
            .lock()
            .map_err(|_| poisoned())?
            .authorization(endpoint, self.clock.now())
            .map_err(|e| SendError::permanent("vapid", e.to_string()))?;
        let mut headers = headers.to_vec();
        headers.push(("Authorization".to_owned(), authorization));
        let answer =
            self.client.post(endpoint, &headers, body.to_vec()).await.map_err(|e| http_failure(&e, "Web Push"))?;
        Ok(classify_webpush(answer.status, answer.header("retry-after"), self.clock.now()))
    }
}

fn poisoned() -> SendError {
    SendError::transient("poisoned", "the VAPID cache is unusable")
}

#[async_trait]
impl PushSender for WebPushSender {
    async fn send_push(&self, push: &OutboundPush) -> Result<String, SendError> {
        let PushTarget::WebPush { endpoint, keys } = &push.target else {
            return Err(SendError::permanent("wrong_provider", "not a Web Push subscription"));
        };
        let now = self.clock.now();
        let invalid = |e: webpush::WebPushError| SendError::permanent("invalid_payload", e.to_string());
        let p256dh = webpush::decode_base64url("keys.p256dh", &keys.p256dh).map_err(invalid)?;
        let auth = webpush::decode_base64url("keys.auth", &keys.auth).map_err(invalid)?;
        let body = webpush::encrypt(&payload::webpush_plaintext(push), &p256dh, &auth, None).map_err(invalid)?;
        let urgency = if push.transactional { Urgency::High } else { Urgency::Normal };
        let ttl = u32::try_from(payload::ttl_seconds(push, now)).unwrap_or(u32::MAX);
        let topic = payload::topic(push);
        let headers = webpush::headers(ttl, urgency, topic.as_deref()).map_err(invalid)?;
        let mut verdict = self.post(endpoint, &headers, &body).await?;
        if matches!(verdict, PushVerdict::Reauthenticate { .. }) {
            // The VAPID token was refused and nothing was delivered: once more with a new
            // one. A key the subscription was not made with is refused again: permanent.
            self.vapid.lock().map_err(|_| poisoned())?.forget(endpoint);
            verdict = self.post(endpoint, &headers, &body).await?;
        }
        // The push service's `Location` names the message with a capability (it can
        // delete it): herald names the message itself.
        verdict_result(verdict, "Web Push", uuid::Uuid::new_v4().to_string())
    }
}
