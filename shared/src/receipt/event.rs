//! Delivery events: what a provider reported after a request's terminal receipt
//! (delivered, bounced, opened...). They travel on the same stream as receipts, never
//! as a second terminal receipt: a consumer tells them apart by `event` (a receipt has
//! `status`).
//!
//! An event's id is stable per provider event: the same SES notification delivered
//! twice by SNS gets the same `event_id`, so webhooks carry the same `webhook-id` and
//! subscribers de-duplicate.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{bounded, limits, receipt_id};
use crate::request::Channel;

/// What happened, in herald's words, whatever the provider called it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The provider took the message for delivery (SES `Send`).
    ProviderAccepted,
    /// Delivery is taking longer than usual (SES `DeliveryDelay`); not final.
    DeliveryDelayed,
    /// The receiving server (or the phone carrier) accepted it.
    Delivered,
    /// The recipient opened it (a tracking pixel loaded; mail privacy proxies load it too).
    Opened,
    /// The recipient followed a tracked link.
    Clicked,
    /// The receiving side refused it: `bounce.bounce_type` says whether for good.
    Bounced,
    /// The provider refused to send it (SES `Reject`: a virus; SES `Rendering Failure`).
    RejectedByProvider,
    /// The carrier or phone could not be reached (SMS delivery status `FAILURE`).
    Undelivered,
    /// The recipient marked it as spam.
    Complained,
    /// The recipient changed their subscription at the provider (SES `Subscription`).
    SubscriptionChanged,
    /// The recipient left a category through the one-click unsubscribe link.
    Unsubscribed,
    /// A phone number sent an opt-out keyword (STOP and its variants).
    OptedOut,
    /// A phone number sent an opt-in keyword (START, UNSTOP...).
    OptedIn,
    /// A push target was reported gone or invalid: upstream should delete it.
    TokenInvalid,
}

impl EventKind {
    pub const ALL: [EventKind; 14] = [
        EventKind::ProviderAccepted,
        EventKind::DeliveryDelayed,
        EventKind::Delivered,
        EventKind::Opened,
        EventKind::Clicked,
        EventKind::Bounced,
        EventKind::RejectedByProvider,
        EventKind::Undelivered,
        EventKind::Complained,
        EventKind::SubscriptionChanged,
        EventKind::Unsubscribed,
        EventKind::OptedOut,
        EventKind::OptedIn,
        EventKind::TokenInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProviderAccepted => "provider_accepted",
            EventKind::DeliveryDelayed => "delivery_delayed",
            EventKind::Delivered => "delivered",
            EventKind::Opened => "opened",
            EventKind::Clicked => "clicked",
            EventKind::Bounced => "bounced",
            EventKind::RejectedByProvider => "rejected_by_provider",
            EventKind::Undelivered => "undelivered",
            EventKind::Complained => "complained",
            EventKind::SubscriptionChanged => "subscription_changed",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::OptedOut => "opted_out",
            EventKind::OptedIn => "opted_in",
            EventKind::TokenInvalid => "token_invalid",
        }
    }

    /// Where this event puts a request's delivery status, if anywhere: the status only
    /// moves to a higher rank, so a late `delivered` never overwrites `bounced`, and an
    /// `opened` arriving before its `delivered` is not undone by it. Events about an
    /// address or a subscription rather than one message have none.
    pub fn status_rank(self) -> Option<u8> {
        Some(match self {
            EventKind::ProviderAccepted => 10,
            EventKind::DeliveryDelayed => 20,
            EventKind::Delivered => 30,
            EventKind::Opened => 40,
            EventKind::Clicked => 50,
            EventKind::Undelivered => 60,
            EventKind::Bounced => 70,
            EventKind::RejectedByProvider => 80,
            EventKind::Complained => 90,
            EventKind::SubscriptionChanged
            | EventKind::Unsubscribed
            | EventKind::OptedOut
            | EventKind::OptedIn
            | EventKind::TokenInvalid => return None,
        })
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown delivery event `{s}`"))
    }
}

/// Whether a bounce is for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BounceType {
    /// The address does not exist or refuses for good: it is suppressed.
    Permanent,
    /// Mailbox full, message too large...: the address stays usable.
    Transient,
    /// The provider could not tell: treated as transient (never suppresses).
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BounceFacts {
    pub bounce_type: BounceType,
    /// The provider's subtype as it wrote it (`General`, `NoEmail`, `MailboxFull`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce_subtype: Option<String>,
    /// SMTP status codes of the bounced recipients (`5.1.1`), without the diagnostic
    /// text (it quotes addresses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ComplaintFacts {
    /// The feedback type of the report (`abuse`, `fraud`, `not-spam`...), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_type: Option<String>,
    /// SES's `complaintSubType` (`OnAccountSuppressionList`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint_subtype: Option<String>,
}

/// A delivery event: one per provider event, after the request's terminal receipt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveryEvent {
    /// Stable per provider event: the same notification delivered twice has the same id.
    pub event_id: String,
    pub event: EventKind,
    /// The request's `id`, matched through the message tags; null when the provider's
    /// message carries none (a message herald did not send, an SMS status).
    pub request_id: Option<String>,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The orchestrator's id for the person, when the event knows it (an unsubscribe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// `ses`, `sns`, `fcm`, `apns`, `webpush`, `herald` (one-click unsubscribe).
    pub provider: String,
    /// The provider's id for the message, as on the `sent` receipt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// When the provider says it happened.
    #[schemars(with = "String")]
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounce: Option<BounceFacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complaint: Option<ComplaintFacts>,
    /// Hex SHA-256 of the address the event is about, as herald normalises it
    /// (lowercased email, E.164 phone): upstream finds the person by hashing its own
    /// copy, and the event itself carries no address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_sha256: Option<String>,
    /// `clicked`: the link followed, as the provider reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The provider's own words for what happened (`Phone carrier has blocked this
    /// message`, the SES reject reason, a delay type), never an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Fields cut to fit the limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

impl DeliveryEvent {
    /// An event whose id derives from `identity`: the provider's own facts that tell
    /// this event from every other (its message id, type, timestamp, link...).
    pub fn new(event: EventKind, channel: Channel, provider: &str, at: Timestamp, identity: &[&str]) -> Self {
        let mut parts = vec!["event", provider, event.as_str()];
        parts.extend_from_slice(identity);
        DeliveryEvent {
            event_id: receipt_id(&parts),
            event,
            request_id: None,
            channel,
            category: None,
            tenant: None,
            recipient_id: None,
            provider: provider.to_owned(),
            provider_message_id: None,
            at,
            bounce: None,
            complaint: None,
            address_sha256: None,
            link: None,
            detail: None,
            truncated: Vec::new(),
        }
    }

    /// Cuts every free-text field to the receipt limits, noting what was cut.
    pub fn bounded(mut self) -> Self {
        let mut cut = |field: &str, value: &mut Option<String>, max: usize| {
            if let Some(v) = value.as_mut() {
                let (b, was_cut) = bounded(v, max);
                if was_cut {
                    *v = b;
                    self.truncated.push(field.to_owned());
                }
            }
        };
        cut("request_id", &mut self.request_id, limits::ID);
        cut("category", &mut self.category, limits::ID);
        cut("tenant", &mut self.tenant, limits::ID);
        cut("recipient_id", &mut self.recipient_id, limits::ID);
        cut("provider_message_id", &mut self.provider_message_id, limits::ID);
        cut("link", &mut self.link, limits::METADATA_VALUE);
        cut("detail", &mut self.detail, limits::DETAIL);
        self
    }

    /// JSON that SQS accepts (see [`super::sqs_safe_json`]).
    pub fn to_json(&self) -> String {
        super::sqs_safe_json(serde_json::to_string(self).unwrap_or_default())
    }
}

/// The message tags that carry a request to the provider and back: SES events name
/// the request through them.
pub mod tags {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub const REQUEST_ID: &str = "herald-request-id";
    pub const CATEGORY: &str = "herald-category";
    pub const TENANT: &str = "herald-tenant";

    /// Marks a request id written in base64url because SES tag values allow only
    /// `[A-Za-z0-9_.@-]` (256 at most) and request ids are any printable text.
    const ENCODED: &str = "b64.";
    const MAX_TAG: usize = 256;

    fn plain(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'))
    }

    /// A tag value that gives `request_id` back exactly: the id itself when SES allows
    /// it, else its base64url form; None when neither fits (non-ASCII ids of more than
    /// 189 bytes): events for such a request cannot be matched to it.
    pub fn encode_request_id(request_id: &str) -> Option<String> {
        if !request_id.is_empty()
            && request_id.len() <= MAX_TAG
            && plain(request_id)
            && !request_id.starts_with(ENCODED)
        {
            return Some(request_id.to_owned());
        }
        let encoded = format!("{ENCODED}{}", URL_SAFE_NO_PAD.encode(request_id));
        (encoded.len() <= MAX_TAG).then_some(encoded)
    }

    /// The request id a tag value carries (see [`encode_request_id`]).
    pub fn decode_request_id(value: &str) -> Option<String> {
        match value.strip_prefix(ENCODED) {
            Some(b64) => URL_SAFE_NO_PAD.decode(b64).ok().and_then(|bytes| String::from_utf8(bytes).ok()),
            None if !value.is_empty() && plain(value) => Some(value.to_owned()),
            None => None,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn request_ids_come_back_exactly() {
            for id in ["order-123", "a@b.c", "order:123/welcome", "b64.looks-encoded", "ünïcödé id", "x y"] {
                let tag = encode_request_id(id).unwrap();
                assert!(plain(&tag) && tag.len() <= MAX_TAG, "{tag}");
                assert_eq!(decode_request_id(&tag).as_deref(), Some(id));
            }
            assert_eq!(encode_request_id("order-123").as_deref(), Some("order-123"));
            assert!(encode_request_id(&"é".repeat(128)).is_none());
            assert!(decode_request_id("b64.!!").is_none());
        }
    }
}
