//! `[webhooks]`: who receives receipts and delivery events, and how hard herald tries.
//!
//! ```toml
//! [webhooks]
//! max_attempts = 10            # every attempt counts, the first one too (1 to 20)
//! backoff_base = "5s"          # wait after the first failure; x4 each time after
//! backoff_max = "8h"           # the longest wait between two attempts
//! timeout = "10s"              # per attempt, connection to last body byte
//!
//! [[webhooks.subscriptions]]
//! id = "crm"                   # names its secret in the webhook secret (Secrets Manager)
//! url = "https://hooks.acme.example/herald"
//! events = ["receipt.*", "bounced", "complained"]   # `*`, `receipt.*`, `event.*`, names
//! tenant = "acme"              # optional: only this tenant's receipts and events
//! ```
//!
//! Secrets never live here: each subscription's `whsec_` secret is read from Secrets
//! Manager at cold start.

use std::time::Duration;

use serde::Deserialize;

use crate::policy::Window;
use crate::receipt::webhook::{Backoff, validate_filter};
use crate::request::TenantId;

/// The longest URL accepted: longer ones are a mistake, or a token pasted in.
const MAX_URL: usize = 2048;
const MAX_ATTEMPTS: u32 = 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhooks {
    #[serde(default)]
    subscriptions: Vec<RawSubscription>,
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    backoff_base: Option<Window>,
    #[serde(default)]
    backoff_max: Option<Window>,
    #[serde(default)]
    timeout: Option<Window>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscription {
    id: String,
    url: String,
    events: Vec<String>,
    #[serde(default)]
    tenant: Option<String>,
}

/// One subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `[A-Za-z0-9._-]`, 1 to 64: it names the secret, the logs and the metrics.
    pub id: String,
    /// `https://` (plain `http://` only reaches addresses the webhooks function's
    /// allow-list permits, for tests).
    pub url: String,
    /// Event filter (see `receipt::webhook::matches`).
    pub events: Vec<String>,
    /// Only this tenant's receipts and events; None: everyone's.
    pub tenant: Option<TenantId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub subscriptions: Vec<Subscription>,
    pub backoff: Backoff,
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings { subscriptions: Vec::new(), backoff: Backoff::standard(), timeout: DEFAULT_TIMEOUT }
    }
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn seconds(w: Window) -> Duration {
    Duration::from_secs(u64::try_from(w.seconds()).unwrap_or(0))
}

impl WebhookSettings {
    pub fn from_raw(raw: RawWebhooks) -> Result<Self, String> {
        let standard = Backoff::standard();
        let max_attempts = raw.max_attempts.unwrap_or(standard.max_attempts);
        if !(1..=MAX_ATTEMPTS).contains(&max_attempts) {
            return Err(format!("webhooks.max_attempts: 1 to {MAX_ATTEMPTS}"));
        }
        let base = raw.backoff_base.map(seconds).unwrap_or(standard.base);
        let max = raw.backoff_max.map(seconds).unwrap_or(standard.max);
        if base > max {
            return Err("webhooks.backoff_base: must not exceed webhooks.backoff_max".into());
        }
        if max > Duration::from_secs(24 * 3600) {
            return Err("webhooks.backoff_max: at most 24h".into());
        }
        let timeout = raw.timeout.map(seconds).unwrap_or(DEFAULT_TIMEOUT);
        if timeout.is_zero() || timeout > Duration::from_secs(30) {
            return Err("webhooks.timeout: 1s to 30s".into());
        }
        let mut subscriptions: Vec<Subscription> = Vec::new();
        for (i, s) in raw.subscriptions.into_iter().enumerate() {
            let at = |field: &str| format!("webhooks.subscriptions[{i}].{field}");
            if !valid_id(&s.id) {
                return Err(format!("{}: 1 to 64 characters among A-Z a-z 0-9 . _ -", at("id")));
            }
            if subscriptions.iter().any(|other| other.id == s.id) {
                return Err(format!("{}: `{}` is used twice", at("id"), s.id));
            }
            let scheme_ok = s.url.starts_with("https://") || s.url.starts_with("http://");
            if !scheme_ok || s.url.len() > MAX_URL || s.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                // The URL may carry a token: never quoted.
                return Err(format!("{}: an https:// URL of at most {MAX_URL} characters, without spaces", at("url")));
            }
            validate_filter(&s.events).map_err(|e| format!("{}: {e}", at("events")))?;
            let tenant =
                s.tenant.as_deref().map(TenantId::parse).transpose().map_err(|e| format!("{}: {e}", at("tenant")))?;
            subscriptions.push(Subscription { id: s.id, url: s.url, events: s.events, tenant });
        }
        Ok(WebhookSettings { subscriptions, backoff: Backoff { base, max, max_attempts }, timeout })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WebhookSettings, String> {
        #[derive(Deserialize)]
        struct Doc {
            webhooks: RawWebhooks,
        }
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string())?;
        WebhookSettings::from_raw(doc.webhooks)
    }

    #[test]
    fn subscriptions_are_checked_and_secrets_never_quoted() {
        let ok = parse(
            "[webhooks]\nmax_attempts = 3\nbackoff_base = \"1s\"\nbackoff_max = \"2s\"\n\
             [[webhooks.subscriptions]]\nid = \"crm\"\nurl = \"https://h.example/x\"\nevents = [\"receipt.*\", \"bounced\"]\ntenant = \"acme\"\n",
        )
        .unwrap();
        assert_eq!(ok.subscriptions.len(), 1);
        assert_eq!(ok.backoff, Backoff { base: Duration::from_secs(1), max: Duration::from_secs(2), max_attempts: 3 });
        let bad_event =
            parse("[[webhooks.subscriptions]]\nid = \"a\"\nurl = \"https://h.example\"\nevents = [\"bounce\"]\n")
                .unwrap_err();
        assert!(bad_event.contains("bounced"), "{bad_event}");
        let secret_url = parse(
            "[[webhooks.subscriptions]]\nid = \"a\"\nurl = \"ftp://h.example/?token=s3cr3t\"\nevents = [\"*\"]\n",
        )
        .unwrap_err();
        assert!(!secret_url.contains("s3cr3t"), "{secret_url}");
        let twice = parse(
            "[[webhooks.subscriptions]]\nid = \"a\"\nurl = \"https://h.example\"\nevents = [\"*\"]\n\
             [[webhooks.subscriptions]]\nid = \"a\"\nurl = \"https://i.example\"\nevents = [\"*\"]\n",
        )
        .unwrap_err();
        assert!(twice.contains("used twice"), "{twice}");
        assert!(parse("[webhooks]\nmax_attempts = 0\n").is_err());
        assert!(parse("[webhooks]\nunknown = 1\n").is_err());
    }
}
