//! What each provider is sent for one rendered push, built in one place so that the
//! budget check, `herald render` and the senders measure the same bytes.
//!
//! - APNs: `{"aps": {"alert": {"title", "body"}, "sound": "default"}, <data keys>}`.
//! - FCM HTTP v1: `{"message": {"token", "notification", "data", "android", "apns"}}`;
//!   the budget counts `notification` plus `data` (see [`super::budget`]).
//! - Web Push: the plaintext the service worker's `push` event reads, before RFC 8291
//!   encryption: `{"title", "body", "data"}`.
//! - SNS mobile push: `MessageStructure=json`, `{"default": body, "<PLATFORM>": "<the
//!   APNs payload, or FCM's v1 message as fcmV1Message>"}`.
//!
//! Data keys the providers reserve (APNs `aps`; FCM `from`, `notification`,
//! `message_type`, `google.*`, `gcm.*`, `collapse_key`) are refused before any call:
//! the provider would refuse the message, or silently merge the key.

use serde_json::{Map, Value, json};

use super::budget::{self, PayloadTooLarge};
use crate::ports::OutboundPush;
use crate::request::{PushPlatform, PushTarget, SnsPlatform};

/// Why a push cannot be built. Both are permanent, decided before any provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{0}")]
    TooLarge(PayloadTooLarge),
    /// A data key the provider reserves; names the key (a template's, never a value).
    #[error("the push data key `{key}` is reserved by {provider}; rename it in the template's push.data.json.hbs")]
    ReservedKey { key: String, provider: &'static str },
}

/// The bytes a provider's limit applies to, and that limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub bytes: usize,
    pub limit: usize,
    /// Whose limit: `apns`, `fcm`, `webpush` (SNS endpoints measure as their platform).
    pub provider: PushPlatform,
}

/// A payload's (bytes, limit), or why it cannot be built.
pub type ProviderSize = Result<(usize, usize), String>;

/// The payload each HTTP push provider (APNs, FCM, Web Push) would be sent for this
/// notification, against its limit: for `herald render`, `preview` and `templates check`,
/// where no device is known yet. SNS sends the APNs or FCM payload of its endpoint.
pub fn sizes(
    title: &str,
    body: &str,
    data: &std::collections::BTreeMap<String, String>,
) -> Vec<(&'static str, ProviderSize)> {
    use crate::request::WebPushKeys;
    let targets = [
        ("apns", PushTarget::Apns { token: "0".repeat(64), environment: None }),
        ("fcm", PushTarget::Fcm { token: "0".repeat(64) }),
        (
            "webpush",
            PushTarget::WebPush {
                endpoint: "https://push.example/sample".into(),
                keys: WebPushKeys { p256dh: String::new(), auth: String::new() },
            },
        ),
    ];
    targets
        .into_iter()
        .map(|(provider, target)| {
            let push = OutboundPush {
                request_id: "sample".into(),
                tenant: None,
                target,
                title: title.to_owned(),
                body: body.to_owned(),
                data: data.clone(),
                transactional: false,
                recipient_id: "sample".into(),
                category: "sample".into(),
                expires_at: jiff::Timestamp::UNIX_EPOCH,
                collapse_id: None,
            };
            let size = match measure(&push) {
                Ok(m) => Ok((m.bytes, m.limit)),
                Err(PayloadError::TooLarge(t)) => Ok((t.bytes, t.limit)),
                Err(e) => Err(e.to_string()),
            };
            (provider, size)
        })
        .collect()
}

/// [`sizes`] as JSON: `{"apns": {"bytes", "limit", "fits"} | {"error"}, "fcm": …, "webpush": …}`.
pub fn sizes_json(title: &str, body: &str, data: &std::collections::BTreeMap<String, String>) -> serde_json::Value {
    let sizes: serde_json::Map<String, serde_json::Value> = sizes(title, body, data)
        .into_iter()
        .map(|(provider, size)| {
            let v = match size {
                Ok((bytes, limit)) => serde_json::json!({"bytes": bytes, "limit": limit, "fits": bytes <= limit}),
                Err(e) => serde_json::json!({"error": e}),
            };
            (provider.to_owned(), v)
        })
        .collect();
    serde_json::Value::Object(sizes)
}

/// Measures `push` for its target's provider: over the limit, or with a reserved key,
/// it must not be sent.
pub fn measure(push: &OutboundPush) -> Result<Measure, PayloadError> {
    let provider = match &push.target {
        PushTarget::Fcm { .. } => PushPlatform::Fcm,
        PushTarget::Apns { .. } => PushPlatform::Apns,
        PushTarget::WebPush { .. } => PushPlatform::WebPush,
        PushTarget::Sns { platform, .. } if platform.is_apple() => PushPlatform::Apns,
        PushTarget::Sns { .. } => PushPlatform::Fcm,
    };
    let bytes = match provider {
        PushPlatform::Apns => apns_payload(push)?.len(),
        PushPlatform::WebPush => webpush_plaintext(push).len(),
        _ => {
            check_fcm_keys(push)?;
            compact(&notification(push)).len() + compact(&data(push)).len()
        }
    };
    let limit = provider.payload_limit();
    budget::check(provider, bytes).map_err(PayloadError::TooLarge)?;
    Ok(Measure { bytes, limit, provider })
}

fn compact(v: &Value) -> String {
    v.to_string()
}

fn notification(push: &OutboundPush) -> Value {
    let mut n = Map::new();
    if !push.title.is_empty() {
        n.insert("title".into(), Value::String(push.title.clone()));
    }
    n.insert("body".into(), Value::String(push.body.clone()));
    Value::Object(n)
}

fn data(push: &OutboundPush) -> Value {
    Value::Object(push.data.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// Seconds from `now` until the push expires, from 0 to the 28 days FCM allows (no
/// provider keeps a message longer; a request may expire later).
pub fn ttl_seconds(push: &OutboundPush, now: jiff::Timestamp) -> i64 {
    push.expires_at.duration_since(now).as_secs().clamp(0, crate::config::push::MAX_TTL_SECONDS)
}

/// The collapse id as APNs takes it (`apns-collapse-id`, at most 64 bytes; FCM's and
/// SNS's are forwarded to APNs too): see [`fit_id`].
pub fn collapse_id(push: &OutboundPush) -> Option<String> {
    push.collapse_id.as_deref().map(|id| fit_id(id, 64, |_| true))
}

/// The collapse id as a Web Push `Topic` (1 to 32 base64url characters): see [`fit_id`].
pub fn topic(push: &OutboundPush) -> Option<String> {
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    push.collapse_id.as_deref().map(|id| fit_id(id, 32, base64url))
}

/// `id` itself when it is 1 to `max` bytes of `allowed`, else the first `max` characters
/// (at most 43) of its SHA-256 in base64url: the same id always gives the same result,
/// and two long ids never collapse into each other.
fn fit_id(id: &str, max: usize, allowed: impl Fn(u8) -> bool) -> String {
    if !id.is_empty() && id.len() <= max && id.bytes().all(allowed) {
        return id.to_owned();
    }
    use sha2::Digest as _;
    let mut hashed = super::webpush::encode_base64url(&sha2::Sha256::digest(id.as_bytes()));
    hashed.truncate(max);
    hashed
}

/// APNs' `apns-priority` (also in FCM's APNs headers and SNS's attribute): 10, at once,
/// for the transactional category; 5, when the device is awake anyway, otherwise.
pub fn apns_priority(push: &OutboundPush) -> &'static str {
    if push.transactional { "10" } else { "5" }
}

/// The APNs JSON body.
pub fn apns_payload(push: &OutboundPush) -> Result<Vec<u8>, PayloadError> {
    if push.data.contains_key("aps") {
        return Err(PayloadError::ReservedKey { key: "aps".into(), provider: "APNs" });
    }
    let mut alert = Map::new();
    if !push.title.is_empty() {
        alert.insert("title".into(), Value::String(push.title.clone()));
    }
    alert.insert("body".into(), Value::String(push.body.clone()));
    let mut root = Map::new();
    root.insert("aps".into(), json!({ "alert": alert, "sound": "default" }));
    for (k, v) in &push.data {
        root.insert(k.clone(), Value::String(v.clone()));
    }
    Ok(Value::Object(root).to_string().into_bytes())
}

fn check_fcm_keys(push: &OutboundPush) -> Result<(), PayloadError> {
    const RESERVED: [&str; 4] = ["from", "notification", "message_type", "collapse_key"];
    match push.data.keys().find(|k| RESERVED.contains(&k.as_str()) || k.starts_with("google.") || k.starts_with("gcm."))
    {
        Some(key) => Err(PayloadError::ReservedKey { key: key.clone(), provider: "FCM" }),
        None => Ok(()),
    }
}

/// FCM's v1 `message` for `token` (without the `token` for SNS's `fcmV1Message`).
fn fcm_message(push: &OutboundPush, token: Option<&str>, now: jiff::Timestamp) -> Result<Value, PayloadError> {
    check_fcm_keys(push)?;
    let high = push.transactional;
    let ttl = ttl_seconds(push, now);
    let mut android = json!({ "priority": if high { "HIGH" } else { "NORMAL" }, "ttl": format!("{ttl}s") });
    let mut apns_headers = json!({
        "apns-priority": apns_priority(push),
        "apns-expiration": push.expires_at.as_second().to_string(),
    });
    if let Some(id) = collapse_id(push) {
        android["collapse_key"] = Value::String(id.clone());
        apns_headers["apns-collapse-id"] = Value::String(id);
    }
    let mut message = json!({
        "notification": notification(push),
        "android": android,
        "apns": { "headers": apns_headers },
    });
    if !push.data.is_empty() {
        message["data"] = data(push);
    }
    if let Some(token) = token {
        message["token"] = Value::String(token.to_owned());
    }
    Ok(message)
}

/// The FCM HTTP v1 request body.
pub fn fcm_body(push: &OutboundPush, token: &str, now: jiff::Timestamp) -> Result<Vec<u8>, PayloadError> {
    Ok(json!({ "message": fcm_message(push, Some(token), now)? }).to_string().into_bytes())
}

/// The Web Push plaintext (encrypted by the sender).
pub fn webpush_plaintext(push: &OutboundPush) -> Vec<u8> {
    let mut root = Map::new();
    if !push.title.is_empty() {
        root.insert("title".into(), Value::String(push.title.clone()));
    }
    root.insert("body".into(), Value::String(push.body.clone()));
    if !push.data.is_empty() {
        root.insert("data".into(), data(push));
    }
    Value::Object(root).to_string().into_bytes()
}

/// SNS `Publish` with `MessageStructure=json`: the message, for an endpoint of `platform`.
pub fn sns_message(push: &OutboundPush, platform: SnsPlatform, now: jiff::Timestamp) -> Result<String, PayloadError> {
    let inner = if platform.is_apple() {
        String::from_utf8_lossy(&apns_payload(push)?).into_owned()
    } else {
        json!({ "fcmV1Message": { "message": fcm_message(push, None, now)? } }).to_string()
    };
    let mut message = Map::new();
    message.insert("default".into(), Value::String(push.body.clone()));
    message.insert(platform.as_str().into(), Value::String(inner));
    Ok(Value::Object(message).to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::request::WebPushKeys;

    fn push(target: PushTarget, data: &[(&str, &str)]) -> OutboundPush {
        OutboundPush {
            request_id: "r1".into(),
            tenant: None,
            target,
            title: "Hi".into(),
            body: "Your order shipped".into(),
            data: data.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
            transactional: true,
            recipient_id: "u1".into(),
            category: "transactional".into(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            collapse_id: Some("order".into()),
        }
    }

    fn fcm() -> PushTarget {
        PushTarget::Fcm { token: "f".repeat(40) }
    }

    #[test]
    fn apns_payload_carries_alert_and_data_at_top_level() {
        let p = push(PushTarget::Apns { token: "ab".repeat(32), environment: None }, &[("order", "42")]);
        let v: Value = serde_json::from_slice(&apns_payload(&p).unwrap()).unwrap();
        assert_eq!(v["aps"]["alert"]["title"], "Hi");
        assert_eq!(v["order"], "42");
        let m = measure(&p).unwrap();
        assert_eq!((m.bytes, m.limit), (apns_payload(&p).unwrap().len(), 4096));
    }

    #[test]
    fn fcm_body_has_priority_ttl_and_collapse_and_measures_data_plus_notification() {
        let now: jiff::Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        let p = push(fcm(), &[("k", "v")]);
        let v: Value = serde_json::from_slice(&fcm_body(&p, "tok", now).unwrap()).unwrap();
        assert_eq!(v["message"]["token"], "tok");
        assert_eq!(v["message"]["android"]["priority"], "HIGH");
        assert_eq!(v["message"]["android"]["ttl"], "86400s");
        assert_eq!(v["message"]["android"]["collapse_key"], "order");
        assert_eq!(v["message"]["apns"]["headers"]["apns-priority"], "10");
        let expected = r#"{"body":"Your order shipped","title":"Hi"}"#.len() + r#"{"k":"v"}"#.len();
        assert_eq!(measure(&p).unwrap().bytes, expected);
    }

    #[test]
    fn one_byte_over_each_limit_is_refused_with_its_size() {
        for (target, limit) in [
            (PushTarget::Apns { token: "ab".repeat(32), environment: None }, 4096),
            (fcm(), 4096),
            (
                PushTarget::WebPush {
                    endpoint: "https://push.example/x".into(),
                    keys: WebPushKeys { p256dh: String::new(), auth: String::new() },
                },
                3993,
            ),
        ] {
            let mut p = push(target, &[]);
            let base = measure(&p).unwrap().bytes;
            p.body.push_str(&"x".repeat(limit - base));
            assert_eq!(measure(&p).unwrap().bytes, limit);
            p.body.push('y');
            let e = measure(&p).unwrap_err();
            assert_eq!(e.to_string(), format!("payload_too_large:{}", limit + 1));
        }
    }

    #[test]
    fn topics_are_base64url_and_at_most_32_characters_and_collapse_ids_fit_apns() {
        let with = |id: &str| OutboundPush { collapse_id: Some(id.to_owned()), ..push(fcm(), &[]) };
        assert_eq!(topic(&with("order-updates")).unwrap(), "order-updates");
        let long = topic(&with("order.updates for everyone, with spaces")).unwrap();
        assert_eq!(long.len(), 32);
        assert!(long.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(long, topic(&with("order.updates for everyone, with spaces")).unwrap());
        assert_eq!(collapse_id(&with("order.updates")).unwrap(), "order.updates");
        let hashed = collapse_id(&with(&"é".repeat(40))).unwrap();
        assert!(hashed.len() <= 64 && hashed != collapse_id(&with(&"è".repeat(40))).unwrap());
    }

    #[test]
    fn reserved_keys_are_refused_by_name() {
        let apns = push(PushTarget::Apns { token: "ab".repeat(32), environment: None }, &[("aps", "x")]);
        assert!(matches!(measure(&apns), Err(PayloadError::ReservedKey { .. })));
        for key in ["from", "google.x", "gcm.n", "message_type"] {
            assert!(matches!(measure(&push(fcm(), &[(key, "x")])), Err(PayloadError::ReservedKey { .. })), "{key}");
        }
    }

    #[test]
    fn sns_message_holds_the_platform_payload_as_a_string() {
        let now: jiff::Timestamp = "2026-11-30T00:00:00Z".parse().unwrap();
        let p = push(fcm(), &[]);
        let m: Value = serde_json::from_str(&sns_message(&p, SnsPlatform::Gcm, now).unwrap()).unwrap();
        let inner: Value = serde_json::from_str(m["GCM"].as_str().unwrap()).unwrap();
        assert_eq!(inner["fcmV1Message"]["message"]["notification"]["body"], "Your order shipped");
        assert!(inner["fcmV1Message"]["message"].get("token").is_none());
        let m: Value = serde_json::from_str(&sns_message(&p, SnsPlatform::ApnsSandbox, now).unwrap()).unwrap();
        let inner: Value = serde_json::from_str(m["APNS_SANDBOX"].as_str().unwrap()).unwrap();
        assert_eq!(inner["aps"]["alert"]["body"], "Your order shipped");
        assert_eq!(m["default"], "Your order shipped");
    }
}
