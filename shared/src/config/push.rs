//! `[push]`: what the push providers need besides credentials (which live in Secrets
//! Manager, never here).
//!
//! ```toml
//! [push]
//! apns_topic = "com.acme.shop"        # the app's bundle id: APNs `apns-topic` (APNs targets)
//! apns_environment = "production"     # or "sandbox" (development builds' tokens)
//! vapid_subject = "mailto:push@acme.example"  # RFC 8292 `sub`: how a push service reaches you
//! default_ttl = "4w"                  # deliverable this long when the request has no expires_at
//! collapse = "none"                   # "template": a newer push of a template replaces the older
//! ```

use serde::Deserialize;

use crate::policy::Window;

/// The longest a push stays deliverable: FCM's maximum `ttl` (28 days); APNs and the
/// Web Push services keep messages no longer either.
pub const MAX_TTL_SECONDS: i64 = 28 * 86_400;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    #[serde(default)]
    apns_topic: Option<String>,
    #[serde(default)]
    apns_environment: Option<ApnsEnvironment>,
    #[serde(default)]
    vapid_subject: Option<String>,
    #[serde(default)]
    default_ttl: Option<Window>,
    #[serde(default)]
    collapse: Option<Collapse>,
}

pub use crate::request::ApnsEnvironment;

impl ApnsEnvironment {
    /// The provider API's base URL.
    pub fn base_url(self) -> &'static str {
        match self {
            ApnsEnvironment::Production => "https://api.push.apple.com",
            ApnsEnvironment::Sandbox => "https://api.sandbox.push.apple.com",
        }
    }
}

/// What a push's collapse id is (APNs `apns-collapse-id`, FCM `collapse_key`, Web Push
/// `Topic`): a newer notification with the same id replaces one not yet seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Collapse {
    /// Every notification shows.
    #[default]
    None,
    /// The template's name.
    Template,
    /// The request's category.
    Category,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// None: APNs targets end `failed: provider:not_configured`.
    pub apns_topic: Option<String>,
    /// The host of APNs targets whose request does not name one.
    pub apns_environment: ApnsEnvironment,
    /// None: Web Push targets end `failed: provider:not_configured`.
    pub vapid_subject: Option<String>,
    pub default_ttl: Window,
    pub collapse: Collapse,
}

impl Default for PushSettings {
    fn default() -> Self {
        PushSettings {
            apns_topic: None,
            apns_environment: ApnsEnvironment::Production,
            vapid_subject: None,
            default_ttl: Window::from_seconds(MAX_TTL_SECONDS),
            collapse: Collapse::None,
        }
    }
}

impl PushSettings {
    pub(crate) fn from_raw(raw: RawPush) -> Result<Self, String> {
        let defaults = PushSettings::default();
        if let Some(topic) = &raw.apns_topic {
            // A bundle id: reverse-DNS letters, digits, dots and hyphens.
            let ok = !topic.is_empty()
                && topic.len() <= 255
                && topic.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                return Err("push.apns_topic: must be the app's bundle id, like com.acme.shop".into());
            }
        }
        if let Some(subject) = &raw.vapid_subject {
            let ok = (subject.starts_with("mailto:") && subject.len() > 8 && subject.contains('@'))
                || (subject.starts_with("https://") && subject.len() > 8);
            if !ok || subject.chars().any(|c| c.is_whitespace() || c.is_control()) || subject.len() > 512 {
                return Err("push.vapid_subject: must be a mailto: address or an https:// URL where the push service \
                     can reach you (RFC 8292)"
                    .into());
            }
        }
        let default_ttl = raw.default_ttl.unwrap_or(defaults.default_ttl);
        if default_ttl.seconds() <= 0 || default_ttl.seconds() > MAX_TTL_SECONDS {
            return Err("push.default_ttl: between 1s and 4w (FCM keeps a message at most 28 days)".into());
        }
        Ok(PushSettings {
            apns_topic: raw.apns_topic,
            apns_environment: raw.apns_environment.unwrap_or_default(),
            vapid_subject: raw.vapid_subject,
            default_ttl,
            collapse: raw.collapse.unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PushSettings, String> {
        let raw: RawPush = toml::from_str(text).map_err(|e| e.to_string())?;
        PushSettings::from_raw(raw)
    }

    #[test]
    fn defaults_and_a_full_section() {
        assert_eq!(parse("").unwrap(), PushSettings::default());
        let s = parse(
            "apns_topic = \"com.acme.shop\"\napns_environment = \"sandbox\"\nvapid_subject = \"mailto:push@acme.example\"\ndefault_ttl = \"1d\"\ncollapse = \"template\"",
        )
        .unwrap();
        assert_eq!(s.apns_topic.as_deref(), Some("com.acme.shop"));
        assert_eq!(s.apns_environment.base_url(), "https://api.sandbox.push.apple.com");
        assert_eq!(s.default_ttl.seconds(), 86_400);
        assert_eq!(s.collapse, Collapse::Template);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (text, key) in [
            ("apns_topic = \"com acme\"", "push.apns_topic"),
            ("vapid_subject = \"push@acme.example\"", "push.vapid_subject"),
            ("vapid_subject = \"http://acme.example\"", "push.vapid_subject"),
            ("default_ttl = \"5w\"", "push.default_ttl"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with(key), "{text}: {e}");
        }
        assert!(parse("apns_environment = \"staging\"").is_err());
        assert!(parse("collapse = \"always\"").is_err());
    }
}
