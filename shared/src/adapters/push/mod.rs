//! The push providers over HTTP: FCM HTTP v1 ([`fcm`]), APNs over HTTP/2 ([`apns`]) and
//! Web Push ([`webpush`]), every connection through the SSRF guard
//! ([`crate::adapters::http::GuardedClient`]); plus the [`PushRouter`] that picks one per
//! target, and the push secret's format ([`PushSecret`]).
//!
//! Which HTTP failure proves what, for all three (as `SendError` says): no connection,
//! a TLS failure or a refusal by the guard means nothing was sent (transient; the guard's
//! refusal permanent: the address will not change); a timeout or a connection lost after
//! the request was written may have delivered (unknown outcome, the category's guarantee
//! decides); an answer is judged by `push::errors`.

pub mod apns;
pub mod fcm;
pub mod webpush;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use crate::adapters::http::{ErrorKind, HttpError};
use crate::ports::{OutboundPush, ProviderMessageId, PushSender, SendError};
use crate::push::credentials::{ApnsSigningKey, CredentialError, ServiceAccount};
use crate::push::errors::PushVerdict;
use crate::push::webpush::{VapidKey, WebPushError};
use crate::request::PushTarget;

/// One sender per provider; a provider left out is not configured, and its targets
/// end `failed: provider:not_configured` without a call.
#[derive(Default, Clone)]
pub struct PushRouter {
    pub fcm: Option<Arc<dyn PushSender>>,
    pub apns: Option<Arc<dyn PushSender>>,
    pub webpush: Option<Arc<dyn PushSender>>,
    pub sns: Option<Arc<dyn PushSender>>,
}

impl PushRouter {
    /// The providers wired, by name (for the cold-start log).
    pub fn providers(&self) -> Vec<&'static str> {
        [("fcm", &self.fcm), ("apns", &self.apns), ("webpush", &self.webpush), ("sns", &self.sns)]
            .into_iter()
            .filter(|(_, s)| s.is_some())
            .map(|(name, _)| name)
            .collect()
    }
}

#[async_trait]
impl PushSender for PushRouter {
    async fn send_push(&self, push: &OutboundPush) -> Result<ProviderMessageId, SendError> {
        let (sender, what) = match &push.target {
            PushTarget::Fcm { .. } => (&self.fcm, "FCM (no `fcm` service account in the push secret)"),
            PushTarget::Apns { .. } => {
                (&self.apns, "APNs (no `apns` key in the push secret, or no push.apns_topic in herald.toml)")
            }
            PushTarget::WebPush { .. } => (
                &self.webpush,
                "Web Push (no `webpush` key in the push secret, or no push.vapid_subject in herald.toml)",
            ),
            PushTarget::Sns { .. } => (&self.sns, "SNS mobile push"),
        };
        match sender {
            Some(sender) => sender.send_push(push).await,
            None => Err(SendError::permanent("not_configured", format!("this function is not configured for {what}"))),
        }
    }
}

/// A provider answer as the pipeline's error, or the message id. `fallback_id`: the id
/// when the answer carries none (APNs: the `apns-id` herald sent; otherwise one of
/// herald's making, so a `sent` receipt always names its message).
pub fn verdict_result(verdict: PushVerdict, provider: &str, fallback_id: String) -> Result<String, SendError> {
    match verdict {
        PushVerdict::Delivered { message_id } => Ok(message_id.unwrap_or(fallback_id)),
        PushVerdict::Transient { retry_after, code } => {
            Err(SendError::transient(code, format!("{provider} asked to retry later")).with_retry_after(retry_after))
        }
        PushVerdict::Permanent { code } => Err(SendError::permanent(code, format!("{provider} refused the message"))),
        // Reached only when a fresh credential was refused too: the key, the ids or the clock.
        PushVerdict::Reauthenticate { code } => {
            Err(SendError::permanent(code, format!("{provider} refused herald's credentials; check the push secret")))
        }
        PushVerdict::TokenInvalid { code, since } => {
            Err(SendError::token_invalid(code, format!("{provider} reports the target invalid"), since))
        }
        PushVerdict::UnknownOutcome { code } => {
            Err(SendError::unknown_outcome(code, format!("{provider} may have sent it")))
        }
    }
}

/// What a failed exchange proves (see the module). The error's text names no URL.
pub fn http_failure(e: &HttpError, provider: &str) -> SendError {
    match e.kind() {
        ErrorKind::Connect | ErrorKind::Tls => SendError::transient("connect", format!("{provider}: {e}")),
        ErrorKind::Refused => SendError::permanent("address_refused", format!("{provider}: {e}")),
        ErrorKind::InvalidRequest => SendError::permanent("invalid_request", format!("{provider}: {e}")),
        ErrorKind::Timeout => SendError::unknown_outcome("timeout", format!("{provider}: {e}")),
        ErrorKind::Other => SendError::unknown_outcome("connection_lost", format!("{provider}: {e}")),
    }
}

/// The push secret (Secrets Manager, JSON): every member optional.
///
/// ```json
/// {
///   "fcm": { "type": "service_account", "project_id": "...", "private_key": "...", ... },
///   "apns": { "key": "-----BEGIN PRIVATE KEY-----\n...", "key_id": "ABC123DEFG", "team_id": "DEF123GHIJ" },
///   "webpush": { "private_key": "<PKCS#8 PEM, or base64url raw 32 bytes>", "public_key": "<base64url, with a raw key>" }
/// }
/// ```
#[derive(Default)]
pub struct PushSecret {
    pub fcm: Option<ServiceAccount>,
    pub apns: Option<ApnsSigningKey>,
    pub webpush: Option<VapidKey>,
}

/// Why the push secret cannot be used. Names the member and the problem, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushSecretError {
    #[error("the push secret is not a JSON object with optional `fcm`, `apns` and `webpush` members: {0}")]
    Shape(String),
    #[error("the push secret's `{member}`: {reason}")]
    Member { member: &'static str, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    #[serde(default)]
    fcm: Option<serde_json::Value>,
    #[serde(default)]
    apns: Option<RawApns>,
    #[serde(default)]
    webpush: Option<RawWebPush>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApns {
    key: String,
    key_id: String,
    team_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebPush {
    private_key: String,
    #[serde(default)]
    public_key: Option<String>,
}

impl PushSecret {
    pub fn parse(text: &str) -> Result<Self, PushSecretError> {
        // serde's message may quote a value: only its category and position are kept.
        let raw: RawSecret = serde_json::from_str(text).map_err(|e| {
            PushSecretError::Shape(format!("{:?} at line {} column {}", e.classify(), e.line(), e.column()))
        })?;
        let member =
            |member: &'static str| move |e: CredentialError| PushSecretError::Member { member, reason: e.to_string() };
        // The key file's JSON as an object, or as a string holding it (pasted whole).
        let fcm = raw
            .fcm
            .map(|v| match v {
                serde_json::Value::String(text) => ServiceAccount::from_json(&text),
                other => ServiceAccount::from_json(&other.to_string()),
            })
            .transpose()
            .map_err(member("fcm"))?;
        let apns = raw
            .apns
            .map(|a| ApnsSigningKey::from_p8(&a.key, &a.key_id, &a.team_id))
            .transpose()
            .map_err(member("apns"))?;
        let webpush_err = |e: WebPushError| PushSecretError::Member { member: "webpush", reason: e.to_string() };
        let webpush = match raw.webpush {
            None => None,
            Some(RawWebPush { private_key, public_key: None }) => {
                Some(VapidKey::from_pkcs8_pem(&private_key).map_err(webpush_err)?)
            }
            Some(RawWebPush { private_key, public_key: Some(public) }) => {
                Some(VapidKey::from_raw_private(&private_key, &public).map_err(webpush_err)?)
            }
        };
        Ok(PushSecret { fcm, apns, webpush })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_secret_configures_nothing_and_bad_members_are_named_without_values() {
        let s = PushSecret::parse("{}").unwrap();
        assert!(s.fcm.is_none() && s.apns.is_none() && s.webpush.is_none());
        let e = PushSecret::parse(r#"{"apns": {"key": "not-a-pem-SECRETVALUE", "key_id": "A", "team_id": "B"}}"#)
            .err()
            .unwrap();
        assert!(matches!(e, PushSecretError::Member { member: "apns", .. }), "{e}");
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        let e = PushSecret::parse(r#"{"fcm": "SECRETVALUE", "oops": 1}"#).err().unwrap();
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        let e = PushSecret::parse(r#"{"webpush": {"private_key": "SECRETVALUE"}}"#).err().unwrap();
        assert!(
            matches!(e, PushSecretError::Member { member: "webpush", .. }) && !e.to_string().contains("SECRETVALUE")
        );
    }

    #[test]
    fn the_service_account_may_be_an_object_or_the_key_file_pasted_as_a_string() {
        let key = herald_e2e::push_providers::test_service_account_json(
            "acme",
            "h@acme.iam.gserviceaccount.com",
            "https://oauth2.googleapis.com/token",
        );
        let as_object = format!(r#"{{"fcm": {key}}}"#);
        let as_string = serde_json::json!({ "fcm": key }).to_string();
        for text in [as_object, as_string] {
            let secret = PushSecret::parse(&text).unwrap();
            assert_eq!(secret.fcm.expect("fcm").project_id(), "acme");
        }
    }

    #[test]
    fn verdicts_become_the_pipeline_s_errors() {
        let ok = verdict_result(PushVerdict::Delivered { message_id: None }, "APNs", "id-1".into());
        assert_eq!(ok.unwrap(), "id-1");
        let wait = Some(std::time::Duration::from_secs(30));
        let e = verdict_result(
            PushVerdict::Transient { retry_after: wait, code: "too_many_requests".into() },
            "FCM",
            String::new(),
        )
        .unwrap_err();
        assert!(e.is_transient() && e.retry_after() == wait);
        let e = verdict_result(
            PushVerdict::TokenInvalid { code: "unregistered".into(), since: None },
            "FCM",
            String::new(),
        )
        .unwrap_err();
        assert!(e.is_permanent() && e.is_token_invalid().is_some());
        let e = verdict_result(
            PushVerdict::Reauthenticate { code: "invalid_provider_token".into() },
            "APNs",
            String::new(),
        )
        .unwrap_err();
        assert!(e.is_permanent() && e.is_token_invalid().is_none());
    }
}
