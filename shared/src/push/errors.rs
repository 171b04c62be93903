//! What a push provider's answer proves, for FCM HTTP v1, APNs and Web Push.
//!
//! Pure: the push function hands in the status, the body and the `Retry-After` header it
//! received and gets a [`PushVerdict`]. Bodies are parsed leniently (an HTML error page
//! or garbage is judged by its status alone), and a verdict's `code` is always one of
//! the short strings below or `<provider>_<status>`: nothing else from a body, and never
//! a token, ends up in a receipt.
//!
//! Two rules shape the tables:
//! - `TokenInvalid` only on explicit evidence about the token. The target is then
//!   suppressed and upstream told to delete it, which no one can undo, so an answer our
//!   own configuration could produce for every token (a wrong project, a wrong key) is
//!   `Permanent`, never `TokenInvalid`.
//! - 429, 503 and the provider's "unavailable" codes are `Transient`, honouring
//!   `Retry-After`: the provider did not take the message. A 500, 502 or 504 (and FCM's
//!   `INTERNAL`, APNs' `InternalServerError`) is an `UnknownOutcome`: the provider, or a
//!   gateway in front of it, may have accepted the message before failing, so the
//!   category's delivery guarantee decides, as for every other channel (a retry at most
//!   once could send twice). A timeout or a connection lost after the request was written
//!   never reaches this module: the caller decides `UnknownOutcome` too.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;

/// The longest `Retry-After` taken at its word; the caller applies its own ceiling too.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// FCM's documented minimum initial delay after `QUOTA_EXCEEDED`, used when the answer
/// carries no `Retry-After`.
pub const FCM_QUOTA_MIN_DELAY: Duration = Duration::from_secs(60);

/// One provider answer, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushVerdict {
    /// The provider accepted the message. `message_id`: FCM's `name`, the `apns-id`
    /// header; `None` when absent or not shaped like an id.
    Delivered { message_id: Option<String> },
    /// Nothing was sent and the same request may succeed later: retry, no sooner than
    /// `retry_after` when the provider said so.
    Transient { retry_after: Option<Duration>, code: String },
    /// The request can never succeed as it is (our request or our configuration).
    Permanent { code: String },
    /// The provider refused our own auth token (the FCM OAuth access token, the APNs
    /// provider JWT, the VAPID JWT) in a way a freshly minted one may fix. Nothing was
    /// sent: mint a new token and resend once, at once; if the fresh token is refused
    /// again, treat it as `Permanent` with the same code (a wrong key, team or clock).
    Reauthenticate { code: String },
    /// The token or subscription will never be deliverable again: mark the target
    /// invalid and tell upstream. `since`: when the provider says it stopped being valid
    /// (APNs 410 `timestamp`).
    TokenInvalid { code: String, since: Option<Timestamp> },
    /// The provider may have sent it: a 500, 502 or 504 here; the caller builds it too
    /// for a timeout or a lost connection after the request was written.
    UnknownOutcome { code: String },
}

impl PushVerdict {
    /// The receipt code; `None` when delivered.
    pub fn code(&self) -> Option<&str> {
        match self {
            PushVerdict::Delivered { .. } => None,
            PushVerdict::Transient { code, .. }
            | PushVerdict::Permanent { code }
            | PushVerdict::Reauthenticate { code }
            | PushVerdict::TokenInvalid { code, .. }
            | PushVerdict::UnknownOutcome { code } => Some(code),
        }
    }
}

/// The class a table row assigns; `Transient` picks up `Retry-After` when built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Transient,
    Permanent,
    Reauthenticate,
    TokenInvalid,
    /// The provider may have acted on the request before failing (500, 502, 504).
    Unknown,
}

fn verdict(class: Class, code: String, retry_after: Option<Duration>) -> PushVerdict {
    match class {
        Class::Transient => PushVerdict::Transient { retry_after, code },
        Class::Permanent => PushVerdict::Permanent { code },
        Class::Reauthenticate => PushVerdict::Reauthenticate { code },
        Class::TokenInvalid => PushVerdict::TokenInvalid { code, since: None },
        Class::Unknown => PushVerdict::UnknownOutcome { code },
    }
}

/// The class of a status no table row explains. 401 is left to each provider.
fn class_of_status(status: u16) -> Class {
    match status {
        // 408: the server gave up waiting for our request, so it did not act on it.
        408 | 429 | 503 => Class::Transient,
        500 | 502 | 504 => Class::Unknown,
        505..=599 | 501 => Class::Transient,
        // Everything else, 1xx/3xx included: redirects are not followed, and a status
        // no provider documents means our request or base URL is wrong.
        _ => Class::Permanent,
    }
}

// ---------------------------------------------------------------------------------------
// FCM HTTP v1
// ---------------------------------------------------------------------------------------

/// `FcmError.errorCode` (https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode).
/// `INVALID_ARGUMENT` is decided by [`fcm_token_is_invalid`], not here.
const FCM_ERROR_CODES: &[(&str, Class, &str)] = &[
    ("UNREGISTERED", Class::TokenInvalid, "unregistered"),
    // The project we send as is not one the token was issued for. Firebase's stale-token
    // guidance names only UNREGISTERED and INVALID_ARGUMENT, and a wrong project in our
    // configuration answers this for every token: suppressing them all would be
    // irreversible upstream, a failed message is not.
    ("SENDER_ID_MISMATCH", Class::Permanent, "sender_id_mismatch"),
    ("QUOTA_EXCEEDED", Class::Transient, "quota_exceeded"),
    ("UNAVAILABLE", Class::Transient, "unavailable"),
    ("INTERNAL", Class::Unknown, "internal"),
    // The APNs certificate or Web Push key stored in the Firebase project: an operator
    // must fix it, a new OAuth token does not.
    ("THIRD_PARTY_AUTH_ERROR", Class::Permanent, "third_party_auth_error"),
];

/// `error.status` (google.rpc.Code), for an error without an `FcmError` detail.
const GOOGLE_RPC_STATUSES: &[(&str, Class, &str)] = &[
    // Our OAuth access token expired or was revoked: a fresh one fixes it.
    ("UNAUTHENTICATED", Class::Reauthenticate, "unauthenticated"),
    // The service account lacks the role, or the API is disabled on the project.
    ("PERMISSION_DENIED", Class::Permanent, "permission_denied"),
    // Without `UNREGISTERED` a 404 is the project or the URL, not the token.
    ("NOT_FOUND", Class::Permanent, "not_found"),
    ("RESOURCE_EXHAUSTED", Class::Transient, "quota_exceeded"),
    ("UNAVAILABLE", Class::Transient, "unavailable"),
    ("INTERNAL", Class::Unknown, "internal"),
    // The server gave up within its own deadline: it may have sent.
    ("DEADLINE_EXCEEDED", Class::Unknown, "deadline_exceeded"),
];

/// Judges an answer of `POST /v1/projects/{project}/messages:send`. `now` dates an
/// HTTP-date `Retry-After`.
pub fn classify_fcm(status: u16, body: &[u8], retry_after: Option<&str>, now: Timestamp) -> PushVerdict {
    let json = serde_json::from_slice::<Value>(body).ok();
    if (200..300).contains(&status) {
        let name = json.as_ref().and_then(|j| j.get("name")).and_then(Value::as_str);
        return PushVerdict::Delivered { message_id: name.filter(|n| is_id_like(n)).map(str::to_owned) };
    }
    let wait = retry_after.and_then(|v| parse_retry_after(v, now));
    let error = json.as_ref().and_then(|j| j.get("error"));
    let fcm_code = error.and_then(fcm_error_code);
    let rpc_status = error.and_then(|e| e.get("status")).and_then(Value::as_str);

    if fcm_code == Some("INVALID_ARGUMENT") || (fcm_code.is_none() && rpc_status == Some("INVALID_ARGUMENT")) {
        return match error {
            Some(e) if fcm_token_is_invalid(e) => {
                PushVerdict::TokenInvalid { code: "invalid_registration_token".into(), since: None }
            }
            // Bad data, a missing recipient, or (no details at all) a payload too large.
            _ => PushVerdict::Permanent { code: "invalid_argument".into() },
        };
    }
    if let Some(&(_, class, code)) = fcm_code.and_then(|c| FCM_ERROR_CODES.iter().find(|(name, ..)| *name == c)) {
        let wait = if code == "quota_exceeded" { wait.or(Some(FCM_QUOTA_MIN_DELAY)) } else { wait };
        return verdict(class, code.into(), wait);
    }
    // UNSPECIFIED_ERROR says nothing: the status decides the class.
    if fcm_code == Some("UNSPECIFIED_ERROR") {
        return verdict(fcm_status_class(status), "unspecified_error".into(), wait);
    }
    // No FcmError detail, or a code newer than the table: the google.rpc status, then the
    // HTTP status; an unknown code never becomes ours.
    if let Some(&(_, class, code)) = rpc_status.and_then(|s| GOOGLE_RPC_STATUSES.iter().find(|(name, ..)| *name == s)) {
        return verdict(class, code.into(), wait);
    }
    verdict(fcm_status_class(status), format!("fcm_{status}"), wait)
}

fn fcm_status_class(status: u16) -> Class {
    // A bare 401 from Google's front end is our access token.
    if status == 401 { Class::Reauthenticate } else { class_of_status(status) }
}

/// `errorCode` of the `google.firebase.fcm.v1.FcmError` detail.
fn fcm_error_code(error: &Value) -> Option<&str> {
    details(error)
        .filter(|d| d.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with(".FcmError")))
        .find_map(|d| d.get("errorCode").and_then(Value::as_str))
}

fn details(error: &Value) -> impl Iterator<Item = &Value> {
    error.get("details").and_then(Value::as_array).into_iter().flatten()
}

/// INVALID_ARGUMENT covers the token and everything else in the message. The token is
/// to blame when a `google.rpc.BadRequest` violation names `message.token`, or when
/// the error or a violation says "registration token" (Firebase's own example carries
/// no violation, only "The registration token is not a valid FCM registration token").
fn fcm_token_is_invalid(error: &Value) -> bool {
    let mentions_token = |text: Option<&Value>| {
        text.and_then(Value::as_str).is_some_and(|t| t.to_ascii_lowercase().contains("registration token"))
    };
    let mut violations = details(error).filter_map(|d| d.get("fieldViolations")).filter_map(Value::as_array).flatten();
    mentions_token(error.get("message"))
        || violations.any(|v| {
            v.get("field").and_then(Value::as_str) == Some("message.token") || mentions_token(v.get("description"))
        })
}

// ---------------------------------------------------------------------------------------
// APNs
// ---------------------------------------------------------------------------------------

/// Every `reason` of Apple's "Handling notification responses from APNs" (as mirrored by
/// sideshow/apns2), with the status Apple documents for it.
const APNS_REASONS: &[(&str, u16, Class, &str)] = &[
    // 400: our request is malformed, except the token rows.
    ("BadCollapseId", 400, Class::Permanent, "bad_collapse_id"),
    // Also what a production token gets on the sandbox host (and the reverse): the
    // function must pick the host by the target's environment.
    ("BadDeviceToken", 400, Class::TokenInvalid, "bad_device_token"),
    ("BadExpirationDate", 400, Class::Permanent, "bad_expiration_date"),
    ("BadMessageId", 400, Class::Permanent, "bad_message_id"),
    ("BadPriority", 400, Class::Permanent, "bad_priority"),
    ("BadTopic", 400, Class::Permanent, "bad_topic"),
    // The token belongs to another app (bundle id) than our topic: also what every token
    // answers when push.apns_topic is mistyped as another app of the team, so it is
    // configuration until proven otherwise, never a token to delete.
    ("DeviceTokenNotForTopic", 400, Class::Permanent, "device_token_not_for_topic"),
    ("DuplicateHeaders", 400, Class::Permanent, "duplicate_headers"),
    // The connection sat idle too long and was closed before the request was read.
    ("IdleTimeout", 400, Class::Transient, "idle_timeout"),
    ("InvalidPushType", 400, Class::Permanent, "invalid_push_type"),
    // We sent no token: our defect, not the target's.
    ("MissingDeviceToken", 400, Class::Permanent, "missing_device_token"),
    ("MissingTopic", 400, Class::Permanent, "missing_topic"),
    ("PayloadEmpty", 400, Class::Permanent, "payload_empty"),
    ("TopicDisallowed", 400, Class::Permanent, "topic_disallowed"),
    // 403: certificates are not used (token auth), so these are configuration.
    ("BadCertificate", 403, Class::Permanent, "bad_certificate"),
    ("BadCertificateEnvironment", 403, Class::Permanent, "bad_certificate_environment"),
    // Our provider JWT is older than an hour (or our clock is off): mint a new one.
    ("ExpiredProviderToken", 403, Class::Reauthenticate, "expired_provider_token"),
    ("Forbidden", 403, Class::Permanent, "forbidden"),
    // A JWT corrupted in the cache is fixed by a new one; a wrong key id or team id is
    // not, which the caller learns when the fresh JWT is refused too.
    ("InvalidProviderToken", 403, Class::Reauthenticate, "invalid_provider_token"),
    ("MissingProviderToken", 403, Class::Permanent, "missing_provider_token"),
    ("BadPath", 404, Class::Permanent, "bad_path"),
    ("MethodNotAllowed", 405, Class::Permanent, "method_not_allowed"),
    ("ExpiredToken", 410, Class::TokenInvalid, "expired_token"),
    ("Unregistered", 410, Class::TokenInvalid, "unregistered"),
    ("PayloadTooLarge", 413, Class::Permanent, "payload_too_large"),
    // We minted JWTs too often: wait, do not mint another.
    ("TooManyProviderTokenUpdates", 429, Class::Transient, "too_many_provider_token_updates"),
    // Too many notifications to this one device.
    ("TooManyRequests", 429, Class::Transient, "too_many_requests"),
    ("InternalServerError", 500, Class::Unknown, "internal_server_error"),
    ("ServiceUnavailable", 503, Class::Transient, "service_unavailable"),
    // The server is draining the connection: resend on a new one.
    ("Shutdown", 503, Class::Transient, "shutdown"),
];

/// Judges an APNs answer. `apns_id`: the `apns-id` response header; `now` dates an
/// HTTP-date `Retry-After`.
pub fn classify_apns(
    status: u16,
    body: &[u8],
    apns_id: Option<&str>,
    retry_after: Option<&str>,
    now: Timestamp,
) -> PushVerdict {
    if (200..300).contains(&status) {
        return PushVerdict::Delivered { message_id: apns_id.filter(|id| is_id_like(id)).map(str::to_owned) };
    }
    let wait = retry_after.and_then(|v| parse_retry_after(v, now));
    let json = serde_json::from_slice::<Value>(body).ok();
    let reason = json.as_ref().and_then(|j| j.get("reason")).and_then(Value::as_str);
    let (class, code) = match reason.and_then(|r| APNS_REASONS.iter().find(|(name, ..)| *name == r)) {
        Some(&(_, _, class, code)) => (class, code.to_owned()),
        // 410 is "no longer active for the topic" whatever the reason says.
        None if status == 410 => (Class::TokenInvalid, format!("apns_{status}")),
        None => (class_of_status(status), format!("apns_{status}")),
    };
    match verdict(class, code, wait) {
        PushVerdict::TokenInvalid { code, .. } => {
            let since = json.as_ref().and_then(|j| j.get("timestamp")).and_then(apns_timestamp);
            PushVerdict::TokenInvalid { code, since }
        }
        other => other,
    }
}

/// APNs' `timestamp`: milliseconds since the epoch, a number (or, leniently, a string).
fn apns_timestamp(value: &Value) -> Option<Timestamp> {
    let millis = match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        _ => return None,
    };
    Timestamp::from_millisecond(millis).ok()
}

// ---------------------------------------------------------------------------------------
// Web Push (RFC 8030, RFC 8292)
// ---------------------------------------------------------------------------------------

/// Judges a push service's answer to a Web Push POST. Push services answer by status
/// (their bodies differ per vendor), so the body is not read.
pub fn classify_webpush(status: u16, retry_after: Option<&str>, now: Timestamp) -> PushVerdict {
    let wait = retry_after.and_then(|v| parse_retry_after(v, now));
    let (class, code) = match status {
        // 201 Created is RFC 8030's answer; some services answer 200 or 202.
        200..=299 => return PushVerdict::Delivered { message_id: None },
        // RFC 8030 §7.3 / §6.2: the subscription expired or was removed.
        404 => (Class::TokenInvalid, "subscription_not_found".to_owned()),
        410 => (Class::TokenInvalid, "subscription_gone".to_owned()),
        413 => (Class::Permanent, "payload_too_large".to_owned()),
        429 => (Class::Transient, "too_many_requests".to_owned()),
        // RFC 8292 §4: the VAPID JWT is missing, expired or does not match the key the
        // subscription was made with. A fresh JWT fixes an expired one; a key mismatch
        // is refused again and then is permanent. Never TokenInvalid: a wrong key in our
        // configuration would answer 403 for every subscription.
        401 | 403 => (Class::Reauthenticate, format!("webpush_{status}")),
        // 400: bad TTL, Urgency, Topic or encoding headers (ours).
        _ => (class_of_status(status), format!("webpush_{status}")),
    };
    verdict(class, code, wait)
}

// ---------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------

/// A provider message id goes into receipts: keep it only if it looks like one.
fn is_id_like(id: &str) -> bool {
    !id.is_empty() && id.len() <= 256 && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `Retry-After` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date (IMF-fixdate, and the
/// obsolete RFC 850 and asctime forms). A date in the past is zero; anything beyond
/// [`RETRY_AFTER_CAP`] is the cap; anything unparsable is `None`.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    // The webhooks' parser, with push's own cap.
    crate::receipt::webhook::parse_retry_after(value, now, RETRY_AFTER_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn fcm(status: u16, body: &str) -> PushVerdict {
        classify_fcm(status, body.as_bytes(), None, now())
    }

    fn apns(status: u16, body: &str) -> PushVerdict {
        classify_apns(status, body.as_bytes(), None, None, now())
    }

    fn permanent(code: &str) -> PushVerdict {
        PushVerdict::Permanent { code: code.into() }
    }

    fn transient(code: &str, retry_after: Option<u64>) -> PushVerdict {
        PushVerdict::Transient { code: code.into(), retry_after: retry_after.map(Duration::from_secs) }
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now()), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("Thu, 01 Jan 2026 00:01:30 GMT", now()), Some(Duration::from_secs(90)));
        // Wrong weekday (2026-01-01 is a Thursday), still the date.
        assert_eq!(parse_retry_after("Mon, 01 Jan 2026 00:01:30 GMT", now()), Some(Duration::from_secs(90)));
        assert_eq!(parse_retry_after("Thursday, 01-Jan-26 00:00:10 GMT", now()), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Thu Jan  1 00:00:05 2026", now()), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
    }

    #[test]
    fn fcm_success_keeps_the_name() {
        let ok = fcm(200, r#"{"name":"projects/p/messages/0:123"}"#);
        assert_eq!(ok, PushVerdict::Delivered { message_id: Some("projects/p/messages/0:123".into()) });
        assert_eq!(fcm(200, "not json"), PushVerdict::Delivered { message_id: None });
        assert_eq!(fcm(200, r#"{"name":"has space"}"#), PushVerdict::Delivered { message_id: None });
    }

    #[test]
    fn fcm_retry_after_counts_on_transient_answers_only() {
        let body = r#"{"error":{"status":"UNAVAILABLE","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNAVAILABLE"}]}}"#;
        assert_eq!(classify_fcm(503, body.as_bytes(), Some("7"), now()), transient("unavailable", Some(7)));
        let quota = r#"{"error":{"details":[{"@type":"x.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#;
        // Without a header, FCM's documented one minute.
        assert_eq!(fcm(429, quota), transient("quota_exceeded", Some(60)));
        assert_eq!(classify_fcm(429, quota.as_bytes(), Some("5"), now()), transient("quota_exceeded", Some(5)));
        assert_eq!(classify_fcm(400, b"{}", Some("5"), now()), permanent("fcm_400"));
    }

    #[test]
    fn fcm_without_fcm_error_falls_back_to_the_rpc_status_then_the_http_status() {
        let oauth = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
        assert_eq!(fcm(401, oauth), PushVerdict::Reauthenticate { code: "unauthenticated".into() });
        assert_eq!(fcm(401, ""), PushVerdict::Reauthenticate { code: "fcm_401".into() });
        // A 404 without UNREGISTERED is the project or URL: never the token.
        assert_eq!(fcm(404, r#"{"error":{"status":"NOT_FOUND"}}"#), permanent("not_found"));
        assert_eq!(fcm(404, "<html>"), permanent("fcm_404"));
        assert_eq!(fcm(403, r#"{"error":{"status":"PERMISSION_DENIED"}}"#), permanent("permission_denied"));
        assert_eq!(fcm(504, ""), PushVerdict::UnknownOutcome { code: "fcm_504".into() });
        assert_eq!(fcm(503, ""), transient("fcm_503", None));
        assert_eq!(fcm(302, ""), permanent("fcm_302"));
        // Unknown codes and statuses never enter the code.
        let odd = r#"{"error":{"status":"SHINY_NEW","details":[{"@type":"x.FcmError","errorCode":"TOKEN_abc"}]}}"#;
        assert_eq!(fcm(400, odd), permanent("fcm_400"));
        assert_eq!(fcm(503, odd), transient("fcm_503", None));
    }

    #[test]
    fn fcm_invalid_argument_blames_the_token_only_on_evidence() {
        let field = r#"{"error":{"status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"x"}]}]}}"#;
        assert!(matches!(fcm(400, field), PushVerdict::TokenInvalid { .. }));
        let data = r#"{"error":{"status":"INVALID_ARGUMENT","message":"Invalid value at 'message.data[0].value'"}}"#;
        assert_eq!(fcm(400, data), permanent("invalid_argument"));
        // Lenient: details that are not objects, a status that is not a string.
        assert_eq!(
            fcm(400, r#"{"error":{"status":"INVALID_ARGUMENT","details":[1,"x",null]}}"#),
            permanent("invalid_argument")
        );
        assert_eq!(fcm(400, r#"{"error":{"status":7,"details":{}}}"#), permanent("fcm_400"));
    }

    #[test]
    fn apns_success_takes_the_apns_id() {
        let id = "EC1BF194-B3B2-424A-89A9-5A918A6E6B5D";
        assert_eq!(
            classify_apns(200, b"", Some(id), None, now()),
            PushVerdict::Delivered { message_id: Some(id.into()) }
        );
        assert_eq!(classify_apns(200, b"", None, None, now()), PushVerdict::Delivered { message_id: None });
    }

    #[test]
    fn apns_unknown_reasons_and_garbage_go_by_status() {
        assert_eq!(apns(400, r#"{"reason":"SomethingNew"}"#), permanent("apns_400"));
        assert_eq!(apns(403, "garbage"), permanent("apns_403"));
        assert_eq!(apns(429, ""), transient("apns_429", None));
        assert_eq!(apns(502, "<html>"), PushVerdict::UnknownOutcome { code: "apns_502".into() });
        assert_eq!(
            apns(410, r#"{"reason":"NewGoneReason","timestamp":"1458114061260"}"#),
            PushVerdict::TokenInvalid {
                code: "apns_410".into(),
                since: Some(Timestamp::from_millisecond(1458114061260).unwrap())
            }
        );
        assert_eq!(apns(410, "{"), PushVerdict::TokenInvalid { code: "apns_410".into(), since: None });
        assert_eq!(
            classify_apns(503, br#"{"reason":"ServiceUnavailable"}"#, None, Some("30"), now()),
            transient("service_unavailable", Some(30))
        );
    }

    #[test]
    fn apns_timestamp_is_lenient() {
        let at = |body: &str| match apns(410, body) {
            PushVerdict::TokenInvalid { since, .. } => since,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            at(r#"{"reason":"Unregistered","timestamp":1458114061260}"#).map(|t| t.as_millisecond()),
            Some(1458114061260)
        );
        assert_eq!(
            at(r#"{"reason":"Unregistered","timestamp":1.5e12}"#).map(|t| t.as_millisecond()),
            Some(1_500_000_000_000)
        );
        assert_eq!(at(r#"{"reason":"Unregistered","timestamp":"soon"}"#), None);
        assert_eq!(at(r#"{"reason":"Unregistered","timestamp":99999999999999999999}"#), None);
        assert_eq!(at(r#"{"reason":"Unregistered"}"#), None);
    }

    #[test]
    fn webpush_by_status() {
        let wp = |status| classify_webpush(status, Some("12"), now());
        assert_eq!(wp(201), PushVerdict::Delivered { message_id: None });
        assert_eq!(wp(404), PushVerdict::TokenInvalid { code: "subscription_not_found".into(), since: None });
        assert_eq!(wp(410), PushVerdict::TokenInvalid { code: "subscription_gone".into(), since: None });
        assert_eq!(wp(413), permanent("payload_too_large"));
        assert_eq!(wp(429), transient("too_many_requests", Some(12)));
        assert_eq!(wp(400), permanent("webpush_400"));
        assert_eq!(wp(401), PushVerdict::Reauthenticate { code: "webpush_401".into() });
        assert_eq!(wp(403), PushVerdict::Reauthenticate { code: "webpush_403".into() });
        assert_eq!(wp(500), PushVerdict::UnknownOutcome { code: "webpush_500".into() });
        assert_eq!(wp(503), transient("webpush_503", Some(12)));
        assert_eq!(wp(301), permanent("webpush_301"));
    }

    #[test]
    fn apns_table_is_unique_and_codes_are_short_snake_case() {
        let mut reasons: Vec<_> = APNS_REASONS.iter().map(|r| r.0).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), APNS_REASONS.len());
        let codes = APNS_REASONS.iter().map(|r| r.3).chain(FCM_ERROR_CODES.iter().map(|r| r.2));
        for code in codes.chain(GOOGLE_RPC_STATUSES.iter().map(|r| r.2)) {
            assert!(code.len() <= 40 && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
        }
    }
}
