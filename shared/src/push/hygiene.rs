//! Token hygiene: a push target the provider reports gone is never sent to again.
//!
//! [`TokenHygiene`] wraps the push function's sender. When a send comes back
//! token-invalid (FCM `UNREGISTERED`, APNs 410 `Unregistered` or 400 `BadDeviceToken`,
//! Web Push 404/410, a disabled SNS endpoint), it
//! 1. announces a `token_invalid` delivery event on the receipt stream, naming the
//!    target by the SHA-256 of its token (or endpoint), with the recipient id, so
//!    upstream deletes the device;
//! 2. suppresses the target (`token_invalid`): every later request to it ends
//!    `suppressed: token_invalid` at admission, without a provider call;
//! 3. returns the provider's refusal: this request ends `failed: provider:<code>`.
//!
//! The order is chosen for the crash windows. The event first: if it cannot go out,
//! nothing was recorded, the send is reported transient and the retry asks the provider
//! again (a gone token receives nothing, so no message is duplicated) and announces
//! again. The event id derives from the request and the target, so a repeated
//! announcement carries the same id and subscribers de-duplicate. A crash after the
//! event and before the suppression: an at-least-once request is retried the same way;
//! an at-most-once one ends `failed: provider:unknown_outcome` on takeover (never sent
//! again), and the target stays unsuppressed until the next request to it is refused
//! and announced. A suppression that succeeded but timed out is retried: that retry
//! finds the target suppressed and ends `suppressed: token_invalid`.
//!
//! The event goes out before the request's terminal receipt (both on the receipt
//! stream): an exception to "events follow their receipt", because the receipt must not
//! claim an outcome whose consequences were not yet recorded.

use std::sync::Arc;

use async_trait::async_trait;

use crate::ports::{
    Clock, EventSink, OutboundPush, ProviderMessageId, PushSender, SendError, StateStore, SuppressionEntry,
    SuppressionReason,
};
use crate::receipt::event::{DeliveryEvent, EventKind};
use crate::receipt::provider::address_sha256;
use crate::request::{Channel, SuppressionKey};

/// A [`PushSender`] that suppresses and announces invalid targets (see the module).
pub struct TokenHygiene {
    inner: Arc<dyn PushSender>,
    store: Arc<dyn StateStore>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
}

impl TokenHygiene {
    pub fn new(
        inner: Arc<dyn PushSender>,
        store: Arc<dyn StateStore>,
        events: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        TokenHygiene { inner, store, events, clock }
    }
}

/// The `token_invalid` event for `push`, refused with `code`, invalid since `at`.
pub fn token_invalid_event(push: &OutboundPush, code: &str, at: jiff::Timestamp) -> DeliveryEvent {
    let target_hash = address_sha256(push.target.address());
    let tenant = push.tenant.as_deref().unwrap_or("");
    let provider = push.target.platform().as_str();
    let mut event = DeliveryEvent::new(
        EventKind::TokenInvalid,
        Channel::Push,
        provider,
        at,
        &[tenant, &push.request_id, &target_hash],
    );
    event.request_id = Some(push.request_id.clone());
    event.category = Some(push.category.clone());
    event.tenant = push.tenant.clone();
    event.recipient_id = Some(push.recipient_id.clone());
    event.address_sha256 = Some(target_hash);
    event.detail = Some(code.to_owned());
    event.bounded()
}

#[async_trait]
impl PushSender for TokenHygiene {
    async fn send_push(&self, push: &OutboundPush) -> Result<ProviderMessageId, SendError> {
        let refusal = match self.inner.send_push(push).await {
            Err(e) => e,
            ok => return ok,
        };
        let Some(invalid) = refusal.is_token_invalid() else { return Err(refusal) };
        let now = self.clock.now();
        let event = token_invalid_event(push, refusal.code(), invalid.since.unwrap_or(now));
        if let Err(e) = self.events.emit_events(&[event]).await {
            tracing::warn!(error = %e, code = refusal.code(), "a token_invalid event could not be sent; will retry");
            return Err(SendError::transient(
                "token_invalid_unannounced",
                format!(
                    "the provider reported the target invalid ({}), and the event could not be sent",
                    refusal.code()
                ),
            ));
        }
        let entry =
            SuppressionEntry { key: SuppressionKey::push(&push.target), reason: SuppressionReason::TokenInvalid };
        if let Err(e) = self.store.suppress(&entry, now).await {
            tracing::warn!(error = %e, code = refusal.code(), "an invalid target could not be suppressed; will retry");
            return Err(SendError::transient(
                "token_invalid_unrecorded",
                format!(
                    "the provider reported the target invalid ({}), and it could not be suppressed",
                    refusal.code()
                ),
            ));
        }
        tracing::info!(
            code = refusal.code(),
            provider = push.target.platform().as_str(),
            "push target invalid: suppressed"
        );
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::FixedClock;
    use crate::request::PushTarget;
    use crate::testing::{MemorySink, MemoryStore, RecordingSender};

    fn push() -> OutboundPush {
        OutboundPush {
            request_id: "r1".into(),
            tenant: Some("acme".into()),
            target: PushTarget::Fcm { token: "t".repeat(40) },
            title: "t".into(),
            body: "b".into(),
            data: Default::default(),
            transactional: false,
            recipient_id: "u1".into(),
            category: "news".into(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            collapse_id: None,
        }
    }

    fn hygiene(sender: Arc<RecordingSender>, sink: Arc<MemorySink>) -> (TokenHygiene, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(FixedClock("2026-11-30T00:00:00Z".parse().unwrap()));
        (TokenHygiene::new(sender, store.clone(), sink, clock), store)
    }

    #[tokio::test]
    async fn an_invalid_token_is_announced_then_suppressed_and_the_refusal_stands() {
        let sender = Arc::new(RecordingSender::new());
        let since: jiff::Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        sender.fail_with([SendError::token_invalid("unregistered", "gone", Some(since))]);
        let sink = Arc::new(MemorySink::new());
        let (h, store) = hygiene(sender, sink.clone());
        let e = h.send_push(&push()).await.unwrap_err();
        assert!(e.is_permanent() && e.code() == "unregistered");
        let events = sink.events();
        assert_eq!(events.len(), 1);
        let ev = &events[0];
        assert_eq!((ev.event, ev.at, ev.recipient_id.as_deref()), (EventKind::TokenInvalid, since, Some("u1")));
        assert_eq!(ev.address_sha256.as_deref(), Some(address_sha256(&"t".repeat(40)).as_str()));
        assert!(!ev.to_json().contains(&"t".repeat(40)), "the token itself is never in the event");
        assert_eq!(store.suppression(&SuppressionKey::push(&push().target)), Some(SuppressionReason::TokenInvalid));
        // The same request announced again: the same event id.
        assert_eq!(token_invalid_event(&push(), "unregistered", since).event_id, ev.event_id);
    }

    #[tokio::test]
    async fn when_the_event_cannot_go_out_nothing_is_recorded_and_the_send_is_retried() {
        let sender = Arc::new(RecordingSender::new());
        sender.fail_with([SendError::token_invalid("unregistered", "gone", None)]);
        let sink = Arc::new(MemorySink::new());
        sink.fail(true);
        let (h, store) = hygiene(sender, sink);
        let e = h.send_push(&push()).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert_eq!(store.suppression(&SuppressionKey::push(&push().target)), None);
    }

    #[tokio::test]
    async fn other_outcomes_pass_through_untouched() {
        let sender = Arc::new(RecordingSender::new());
        sender.fail_with([SendError::permanent("invalid_argument", "bad")]);
        let sink = Arc::new(MemorySink::new());
        let (h, store) = hygiene(sender, sink.clone());
        assert_eq!(h.send_push(&push()).await.unwrap_err().code(), "invalid_argument");
        assert!(h.send_push(&push()).await.is_ok());
        assert!(sink.events().is_empty());
        assert_eq!(store.suppression(&SuppressionKey::push(&push().target)), None);
    }
}
