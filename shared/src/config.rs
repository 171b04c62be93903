//! `herald.toml`: delivery settings and guard rails, read once at start.
//!
//! ```toml
//! templates = "templates"            # relative to this file
//!
//! [email]
//! from = "Acme <hello@acme.example>"
//! reply_to = "support@acme.example"  # optional
//! unsubscribe_url = "https://acme.example/unsubscribe?token={token}"
//! unsubscribe_mailto = "unsubscribe@acme.example"   # optional
//! # unsubscribe_secret: here, or HERALD_UNSUBSCRIBE_SECRET in the environment
//!
//! [sms]
//! sender_id = "ACME"                 # optional
//! max_segments = 6
//!
//! [quiet_hours]
//! start = "21:00"
//! end = "08:00"
//! channels = ["sms", "push"]         # optional, default: all
//! default_timezone = "America/New_York"
//!
//! [idempotency]
//! lock_timeout = "5m"
//! retention = "7d"
//!
//! [guarantee]                        # when a provider may or may not have sent
//! default = "at_most_once"           # built in: every category but transactional
//! transactional = "at_least_once"    # built in
//!
//! [limits]
//! send_after_horizon = "30d"         # the furthest `send_after` accepted
//!
//! [[caps]]
//! category = "marketing"
//! limit = 3
//! window = "7d"
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{CapRule, Guarantee, Guarantees, IdempotencySettings, Policy, QuietHours, Window};
use crate::request::EmailAddress;

pub const UNSUBSCRIBE_SECRET_ENV: &str = "HERALD_UNSUBSCRIBE_SECRET";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    source_name: String,
    message: String,
}

impl ConfigError {
    fn new(source_name: &str, message: impl Into<String>) -> Self {
        ConfigError { source_name: source_name.to_owned(), message: message.into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    templates: Option<PathBuf>,
    #[serde(default)]
    email: Option<RawEmail>,
    #[serde(default)]
    sms: Option<SmsSettings>,
    #[serde(default)]
    quiet_hours: Option<QuietHours>,
    #[serde(default)]
    idempotency: Option<IdempotencySettings>,
    #[serde(default)]
    guarantee: std::collections::BTreeMap<String, Guarantee>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    caps: Vec<CapRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default)]
    send_after_horizon: Option<Window>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    from: String,
    #[serde(default)]
    reply_to: Option<String>,
    unsubscribe_url: String,
    #[serde(default)]
    unsubscribe_mailto: Option<String>,
    #[serde(default)]
    unsubscribe_secret: Option<String>,
}

/// Sender identity and list-unsubscribe settings for email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSettings {
    /// RFC 5322 mailbox, `Name <address>` or a bare address.
    pub from: String,
    pub from_address: EmailAddress,
    pub reply_to: Option<EmailAddress>,
    /// HTTPS URL with a `{token}` placeholder: the RFC 8058 one-click endpoint.
    pub unsubscribe_url: String,
    pub unsubscribe_mailto: Option<EmailAddress>,
    pub unsubscribe_secret: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsSettings {
    #[serde(default)]
    pub sender_id: Option<String>,
    /// Longer messages fail (`sms_too_long`) instead of silently costing more.
    #[serde(default = "default_max_segments")]
    pub max_segments: u32,
}

fn default_max_segments() -> u32 {
    6
}

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings { sender_id: None, max_segments: default_max_segments() }
    }
}

/// Everything a pipeline needs besides its ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub templates: PathBuf,
    pub email: Option<EmailSettings>,
    pub sms: SmsSettings,
    pub policy: Policy,
}

impl Settings {
    /// Reads and checks a config file; relative paths are relative to its folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &name, base, std::env::var(UNSUBSCRIBE_SECRET_ENV).ok())
    }

    /// Parses config text. `secret_env` overrides `email.unsubscribe_secret`.
    pub fn parse(text: &str, source_name: &str, base: &Path, secret_env: Option<String>) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new(source_name, m);
        let raw: RawConfig = toml::from_str(text).map_err(|e| err(e.to_string()))?;
        let email = raw.email.map(|e| parse_email(e, secret_env)).transpose().map_err(err)?;
        let sms = raw.sms.unwrap_or_default();
        if let Some(id) = &sms.sender_id
            && !(1..=11).contains(&id.len())
        {
            return Err(err("sms.sender_id: 1 to 11 characters (alphanumeric sender id)".into()));
        }
        if sms.max_segments == 0 {
            return Err(err("sms.max_segments: at least 1".into()));
        }
        let guarantees = Guarantees::from_table(raw.guarantee).map_err(err)?;
        let send_after_horizon =
            raw.limits.and_then(|l| l.send_after_horizon).unwrap_or_else(crate::policy::default_send_after_horizon);
        let policy = Policy {
            caps: raw.caps,
            quiet_hours: raw.quiet_hours,
            idempotency: raw.idempotency.unwrap_or_default(),
            guarantees,
            send_after_horizon,
        };
        policy.validate().map_err(err)?;
        Ok(Settings { templates: base.join(raw.templates.unwrap_or_else(|| "templates".into())), email, sms, policy })
    }
}

fn parse_email(raw: RawEmail, secret_env: Option<String>) -> Result<EmailSettings, String> {
    let from_address = parse_mailbox(&raw.from).map_err(|m| format!("email.from: {m}"))?;
    let reply_to =
        raw.reply_to.as_deref().map(EmailAddress::parse).transpose().map_err(|e| format!("email.reply_to: {e}"))?;
    if !raw.unsubscribe_url.starts_with("https://") || !raw.unsubscribe_url.contains("{token}") {
        return Err(
            "email.unsubscribe_url: must be an https:// URL containing {token} (RFC 8058 one-click unsubscribe)".into(),
        );
    }
    if raw.unsubscribe_url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '>') {
        return Err("email.unsubscribe_url: must not contain spaces, control characters or '>'".into());
    }
    let unsubscribe_mailto = raw
        .unsubscribe_mailto
        .as_deref()
        .map(EmailAddress::parse)
        .transpose()
        .map_err(|e| format!("email.unsubscribe_mailto: {e}"))?;
    let secret = secret_env.or(raw.unsubscribe_secret).ok_or_else(|| {
        format!("email: no unsubscribe secret: set {UNSUBSCRIBE_SECRET_ENV} or email.unsubscribe_secret (16 or more characters)")
    })?;
    if secret.len() < 16 {
        return Err("email.unsubscribe_secret: at least 16 characters".into());
    }
    Ok(EmailSettings {
        from: raw.from.trim().to_owned(),
        from_address,
        reply_to,
        unsubscribe_url: raw.unsubscribe_url,
        unsubscribe_mailto,
        unsubscribe_secret: secret.into_bytes(),
    })
}

/// `Name <addr>` or `addr`; the display name may not carry line breaks or `<>`.
pub fn parse_mailbox(s: &str) -> Result<EmailAddress, String> {
    let s = s.trim();
    if s.chars().any(|c| c.is_control()) {
        return Err("must be one line".into());
    }
    match s.split_once('<') {
        Some((name, rest)) => {
            let addr = rest.strip_suffix('>').ok_or("expected `Name <address>`")?;
            if name.contains('>') || addr.contains(['<', '>']) {
                return Err("expected `Name <address>`".into());
            }
            EmailAddress::parse(addr.trim()).map_err(|e| e.to_string())
        }
        None => EmailAddress::parse(s).map_err(|e| e.to_string()),
    }
}
