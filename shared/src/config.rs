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
//! unsubscribe_ttl = "365d"           # how long a link works; default 365d, at least 30d
//! # unsubscribe_secret: local use only (here, or HERALD_UNSUBSCRIBE_SECRET in the
//! # environment); deployed functions fetch theirs from Secrets Manager
//!
//! [sms]                              # every key optional
//! sender_id = "ACME"                 # 1 to 11 ASCII letters and digits, one a letter
//! origination_number = "+18005550100"   # E.164, quoted
//! max_price = "0.50"                 # USD per message, at most 5 decimals
//! max_segments = 6                   # 1 to 10; longer messages fail (sms_too_long)
//! transliterate = "non_transactional"   # or "always", "never": curly quotes -> GSM-7
//!
//! [sms.categories.marketing]         # length and transliteration per category
//! max_segments = 2
//!
//! [sms.countries.GB]                 # by destination: a region code, or "+44", "+1"...
//! sender_id = "ACMEUK"
//!
//! [sms.tenants.globex]               # by tenant; then tenant and destination:
//! sender_id = "GLOBEX"               # [sms.tenants.globex.countries.GB]
//!
//! [quiet_hours]                      # absent: non-transactional SMS wait out 21:00-08:00
//! start = "21:00"                    # in the recipient's zone(s); quiet_hours = "off"
//! end = "08:00"                      # (before any table) holds nothing
//! channels = ["sms", "push"]         # optional, default: all
//! default_timezone = "America/New_York"   # nothing places the recipient (an SMS to a
//!                                    # country with several zones waits for all of them)
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
//!
//! [webhooks]                         # the webhooks function (docs/deploy.md)
//! max_attempts = 10
//!
//! [[webhooks.subscriptions]]         # its secret: in Secrets Manager, never here
//! id = "crm"
//! url = "https://hooks.acme.example/herald"
//! events = ["receipt.*", "bounced", "complained"]
//! tenant = "acme"                    # optional
//! ```

pub(crate) mod push;
mod sms;
mod webhooks;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::policy::{CapRule, Guarantee, Guarantees, IdempotencySettings, Policy, QuietHoursSetting, Window};
use crate::receipt::unsubscribe::UnsubscribeKeys;
use crate::request::EmailAddress;

pub use push::{ApnsEnvironment, Collapse, PushSettings};
pub use sms::{DEFAULT_MAX_SEGMENTS, MAX_SEGMENTS_LIMIT, SmsOptions, SmsSender, SmsSettings, Transliterate};
pub use webhooks::{Subscription, WebhookSettings};

/// Local use only (CLI, embedded default): the unsubscribe secret, in the format of
/// [`UnsubscribeKeys::parse`]. Deployed functions never read it.
pub const UNSUBSCRIBE_SECRET_ENV: &str = "HERALD_UNSUBSCRIBE_SECRET";
/// How long an unsubscribe link works when `email.unsubscribe_ttl` is not set: mailbox
/// providers keep mail for years, and people unsubscribe from old mail.
pub const DEFAULT_UNSUBSCRIBE_TTL_DAYS: i64 = 365;
/// CAN-SPAM: the opt-out must keep working for at least 30 days after sending.
pub const MIN_UNSUBSCRIBE_TTL_DAYS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {message}")]
pub struct ConfigError {
    source_name: String,
    message: String,
}

impl ConfigError {
    /// The message loses anything with a phone number's worth of digits ([`hide_numbers`]):
    /// a table key or a misplaced value can hold a number, and serde quotes what it
    /// cannot read (`unknown variant`, `unknown field`).
    fn new(source_name: &str, message: impl Into<String>) -> Self {
        ConfigError { source_name: source_name.to_owned(), message: hide_numbers(&message.into()) }
    }
}

/// This many digits, maybe with separators between them, may be a phone number.
const NUMBER_DIGITS: usize = 7;

/// What [`hide_numbers`] writes instead of a number.
const NUMBER_HIDDEN: &str = "<number hidden>";

/// `message` with every run of at least [`NUMBER_DIGITS`] digits (with `+`, spaces,
/// `-`, `.`, `(`, `)` or `/` between them) replaced by [`NUMBER_HIDDEN`]: the key path
/// around it stays (`sms.countries.<number hidden>: not an assigned calling code`).
fn hide_numbers(message: &str) -> String {
    let is_part = |c: char| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.' | '(' | ')' | '/');
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::with_capacity(message.len());
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        if c.is_ascii_digit() || c == '+' {
            let run = chars[at..].iter().take_while(|&&c| is_part(c)).count();
            let digits = chars[at..at + run].iter().filter(|c| c.is_ascii_digit()).count();
            if digits >= NUMBER_DIGITS {
                // Up to the last digit: a separator after it (", expected") stays.
                let last = chars[at..at + run].iter().rposition(char::is_ascii_digit).unwrap_or(0);
                out.push_str(NUMBER_HIDDEN);
                at += last + 1;
                continue;
            }
        }
        out.push(c);
        at += 1;
    }
    out
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    templates: Option<PathBuf>,
    #[serde(default)]
    email: Option<RawEmail>,
    #[serde(default)]
    sms: Option<sms::RawSms>,
    #[serde(default)]
    quiet_hours: QuietHoursSetting,
    #[serde(default)]
    idempotency: Option<IdempotencySettings>,
    #[serde(default)]
    guarantee: std::collections::BTreeMap<String, Guarantee>,
    #[serde(default)]
    limits: Option<RawLimits>,
    #[serde(default)]
    caps: Vec<CapRule>,
    #[serde(default)]
    webhooks: Option<webhooks::RawWebhooks>,
    #[serde(default)]
    push: Option<push::RawPush>,
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
    unsubscribe_ttl: Option<Window>,
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
    /// Signs the tokens of unsubscribe links (its primary key) and verifies them (any key).
    pub unsubscribe_keys: UnsubscribeKeys,
    /// How long an unsubscribe link works after the mail is sent.
    pub unsubscribe_ttl: Window,
}

/// [`EmailSettings`] before the keys are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeylessEmail {
    from: String,
    from_address: EmailAddress,
    reply_to: Option<EmailAddress>,
    unsubscribe_url: String,
    unsubscribe_mailto: Option<EmailAddress>,
    unsubscribe_ttl: Window,
}

impl KeylessEmail {
    fn with_keys(self, unsubscribe_keys: UnsubscribeKeys) -> EmailSettings {
        EmailSettings {
            from: self.from,
            from_address: self.from_address,
            reply_to: self.reply_to,
            unsubscribe_url: self.unsubscribe_url,
            unsubscribe_mailto: self.unsubscribe_mailto,
            unsubscribe_keys,
            unsubscribe_ttl: self.unsubscribe_ttl,
        }
    }
}

/// Everything a pipeline needs besides its ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub templates: PathBuf,
    pub email: Option<EmailSettings>,
    pub sms: SmsSettings,
    pub policy: Policy,
    pub webhooks: WebhookSettings,
    pub push: PushSettings,
}

/// A checked herald.toml whose unsubscribe keys come from elsewhere: what a deployed
/// function parses before it fetches its key ring. It holds no secret, and it is only
/// made from text that carries none ([`Settings::parse_keyless`]).
#[derive(Debug, Clone, PartialEq)]
pub struct KeylessSettings {
    templates: PathBuf,
    email: Option<KeylessEmail>,
    sms: SmsSettings,
    policy: Policy,
    webhooks: WebhookSettings,
    push: PushSettings,
}

impl KeylessSettings {
    /// Who receives webhooks (no secrets: those come from Secrets Manager).
    pub fn webhooks(&self) -> &WebhookSettings {
        &self.webhooks
    }

    /// The guard rails (caps, quiet hours, idempotency, guarantees).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Whether the configuration has an `[email]` section (which needs the keys).
    pub fn has_email(&self) -> bool {
        self.email.is_some()
    }

    /// The settings, with the key ring that signs unsubscribe links.
    pub fn with_unsubscribe_keys(self, keys: UnsubscribeKeys) -> Settings {
        let (email, mut settings) = self.split();
        settings.email = email.map(|e| e.with_keys(keys));
        settings
    }

    /// The settings of a function that sends no email: it signs no unsubscribe links,
    /// so it needs no keys, and an `[email]` section is ignored.
    pub fn without_unsubscribe_keys(self) -> Settings {
        self.split().1
    }

    /// The email part, and the settings without it.
    fn split(self) -> (Option<KeylessEmail>, Settings) {
        let settings = Settings {
            templates: self.templates,
            email: None,
            sms: self.sms,
            policy: self.policy,
            webhooks: self.webhooks,
            push: self.push,
        };
        (self.email, settings)
    }
}

impl Settings {
    /// Local use (CLI, embedded default): reads and checks a config file; relative paths
    /// are relative to its folder. The unsubscribe secret comes from
    /// `HERALD_UNSUBSCRIBE_SECRET`, else from `email.unsubscribe_secret`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let (name, text, base) = read(path)?;
        Self::parse(&text, &name, &base, std::env::var(UNSUBSCRIBE_SECRET_ENV).ok())
    }

    /// Local use: parses config text. `secret_env` (the value of `HERALD_UNSUBSCRIBE_SECRET`)
    /// overrides `email.unsubscribe_secret`; either is a plain key or a JSON key ring.
    pub fn parse(text: &str, source_name: &str, base: &Path, secret_env: Option<String>) -> Result<Self, ConfigError> {
        let err = |m: String| ConfigError::new(source_name, m);
        let (keyless, secret_in_text) = parse_text(text, source_name, base)?;
        let (email, mut settings) = keyless.split();
        let Some(email) = email else { return Ok(settings) };
        let (origin, secret) = match (secret_env, secret_in_text) {
            (Some(s), _) => (UNSUBSCRIBE_SECRET_ENV, s),
            (None, Some(s)) => ("email.unsubscribe_secret", s),
            (None, None) => {
                return Err(err(format!(
                    "email: no unsubscribe secret: set {UNSUBSCRIBE_SECRET_ENV} or email.unsubscribe_secret \
                     (a key of 16+ characters, or a JSON key ring: see the README)"
                )));
            }
        };
        let keys = UnsubscribeKeys::parse(&secret).map_err(|e| err(format!("{origin}: {e}")))?;
        settings.email = Some(email.with_keys(keys));
        Ok(settings)
    }

    /// Deployed functions: reads and checks a config file that must carry no secret.
    pub fn load_keyless(path: &Path) -> Result<KeylessSettings, ConfigError> {
        let (name, text, base) = read(path)?;
        Self::parse_keyless(&text, &name, &base)
    }

    /// Deployed functions: parses config text that must carry no secret (a function
    /// fetches its key ring from Secrets Manager, and configuration text is readable by
    /// whoever can read the function's settings). Attach the keys with
    /// [`KeylessSettings::with_unsubscribe_keys`].
    pub fn parse_keyless(text: &str, source_name: &str, base: &Path) -> Result<KeylessSettings, ConfigError> {
        match parse_text(text, source_name, base)? {
            (_, Some(_)) => Err(ConfigError::new(
                source_name,
                "email.unsubscribe_secret: not allowed in a deployed function's configuration: it reads its \
                 key ring from Secrets Manager. Remove the entry, and treat the key it held as exposed",
            )),
            (keyless, None) => Ok(keyless),
        }
    }
}

fn read(path: &Path) -> Result<(String, String, PathBuf), ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(&name, format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok((name, text, base))
}

/// The checked settings, and the secret the text carries, if any.
fn parse_text(text: &str, source_name: &str, base: &Path) -> Result<(KeylessSettings, Option<String>), ConfigError> {
    let err = |m: String| ConfigError::new(source_name, m);
    let raw: RawConfig = toml::from_str(text).map_err(|e| err(toml_error(text, e)))?;
    let secret = raw.email.as_ref().and_then(|e| e.unsubscribe_secret.clone());
    let email = raw.email.map(parse_email).transpose().map_err(err)?;
    let sms = SmsSettings::from_raw(raw.sms.unwrap_or_default()).map_err(err)?;
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
    let templates = base.join(raw.templates.unwrap_or_else(|| "templates".into()));
    let webhooks = WebhookSettings::from_raw(raw.webhooks.unwrap_or_default()).map_err(err)?;
    let push = PushSettings::from_raw(raw.push.unwrap_or_default()).map_err(err)?;
    Ok((KeylessSettings { templates, email, sms, policy, webhooks, push }, secret))
}

/// Keys whose values a TOML error must not quote: a secret, a phone number, a webhook
/// URL (it may carry the subscriber's token).
const UNQUOTABLE_KEYS: [&str; 3] = ["unsubscribe_secret", "origination_number", "webhooks"];

/// A TOML error as text. Its snippet quotes a line of the input: left out when the
/// input holds a secret or a phone number, or the line quoted has as many digits as
/// one (a misspelt key's value), keeping the position.
fn toml_error(text: &str, mut e: toml::de::Error) -> String {
    let quoted = e.span().and_then(|s| text.get(..s.start)).map_or("", |before| {
        let start = before.rfind('\n').map_or(0, |at| at + 1);
        text[start..].lines().next().unwrap_or("")
    });
    let phone_like = quoted.bytes().filter(u8::is_ascii_digit).count() >= NUMBER_DIGITS;
    if !phone_like && !UNQUOTABLE_KEYS.iter().any(|k| text.contains(k)) {
        return e.to_string();
    }
    let line = e.span().map(|s| text.bytes().take(s.start).filter(|b| *b == b'\n').count() + 1);
    e.set_input(None);
    match line {
        Some(line) => format!("TOML parse error at line {line}: {}", e.to_string().trim_end()),
        None => e.to_string(),
    }
}

fn parse_email(raw: RawEmail) -> Result<KeylessEmail, String> {
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
    let unsubscribe_ttl = raw.unsubscribe_ttl.unwrap_or(Window::from_seconds(DEFAULT_UNSUBSCRIBE_TTL_DAYS * 86_400));
    if unsubscribe_ttl.seconds() < MIN_UNSUBSCRIBE_TTL_DAYS * 86_400 {
        return Err(format!(
            "email.unsubscribe_ttl: at least {MIN_UNSUBSCRIBE_TTL_DAYS}d (CAN-SPAM: an unsubscribe link must work \
             for 30 days after sending; the default is {DEFAULT_UNSUBSCRIBE_TTL_DAYS}d)"
        ));
    }
    Ok(KeylessEmail {
        from: raw.from.trim().to_owned(),
        from_address,
        reply_to,
        unsubscribe_url: raw.unsubscribe_url,
        unsubscribe_mailto,
        unsubscribe_ttl,
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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "config-test-key-0123456789";

    fn email_toml(extra: &str) -> String {
        format!(
            "[email]\nfrom = \"Acme <hello@acme.example>\"\nunsubscribe_url = \"https://acme.example/u?token={{token}}\"\n{extra}"
        )
    }

    fn local(text: &str, env: Option<&str>) -> Result<Settings, ConfigError> {
        Settings::parse(text, "test", Path::new("."), env.map(str::to_owned))
    }

    fn email(settings: &Settings) -> &EmailSettings {
        settings.email.as_ref().expect("email is configured")
    }

    #[test]
    fn local_keys_come_from_the_environment_first_then_the_file() {
        let text = email_toml(&format!("unsubscribe_secret = \"{KEY}\"\n"));
        let from_file = local(&text, None).unwrap();
        assert_eq!(email(&from_file).unsubscribe_keys, UnsubscribeKeys::single(KEY).unwrap());
        let ring = r#"{"primary": "k2", "k2": "env-key-0123456789abcdef", "k1": "old-key-0123456789abcdef"}"#;
        let from_env = local(&text, Some(ring)).unwrap();
        assert_eq!(email(&from_env).unsubscribe_keys.primary(), "k2");
        assert_eq!(email(&from_env).unsubscribe_keys.kids().collect::<Vec<_>>(), ["k1", "k2"]);
        let in_file = local(&email_toml(&format!("unsubscribe_secret = '{ring}'\n")), None).unwrap();
        assert_eq!(email(&in_file).unsubscribe_keys, email(&from_env).unsubscribe_keys);
        // No [email], no key needed.
        assert!(local("", None).unwrap().email.is_none());
    }

    #[test]
    fn local_key_errors_name_the_source_not_the_value() {
        let missing = local(&email_toml(""), None).unwrap_err().to_string();
        assert!(missing.contains(UNSUBSCRIBE_SECRET_ENV) && missing.contains("email.unsubscribe_secret"), "{missing}");
        let short = local(&email_toml("unsubscribe_secret = \"tiny-secret\"\n"), None).unwrap_err().to_string();
        assert!(short.contains("email.unsubscribe_secret") && short.contains("at least 16"), "{short}");
        assert!(!short.contains("tiny-secret"), "{short}");
        let env = local(&email_toml(""), Some(r#"{"primary": "k9", "k1": "leaky-leaky-leaky-leaky"}"#)).unwrap_err();
        let env = env.to_string();
        assert!(env.contains(UNSUBSCRIBE_SECRET_ENV) && env.contains("primary"), "{env}");
        assert!(!env.contains("leaky"), "{env}");
    }

    #[test]
    fn toml_errors_do_not_quote_a_secret_line() {
        let broken = email_toml("unsubscribe_secret = \"leaky-leaky-leaky-leaky\nunsubscribe_ttl = \"30d\"\n");
        let e = local(&broken, None).unwrap_err().to_string();
        assert!(e.contains("line 4"), "{e}");
        assert!(!e.contains("leaky"), "{e}");
        let misspelt = email_toml("unsubscribe_secrets = \"leaky-leaky-leaky-leaky\"\n");
        let e = local(&misspelt, None).unwrap_err().to_string();
        assert!(e.contains("unknown field") && !e.contains("leaky"), "{e}");
        // Without a secret in the text, the snippet stays: it helps.
        let e = local(&email_toml("unsubscribe_ttl = 30d\n"), None).unwrap_err().to_string();
        assert!(e.contains("unsubscribe_ttl = 30d"), "{e}");
        // Nor a phone number, even under a misspelt key.
        let e = local("[sms]\norigination_numbr = \"+1 415 555 0100\"\n", None).unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("line 2") && !e.contains("555"), "{e}");
        let e = local("[sms]\nsender_id = 14155550100\n", None).unwrap_err().to_string();
        assert!(e.contains("sender_id") || e.contains("line 2"), "{e}");
        assert!(!e.contains("4155550100"), "{e}");
    }

    #[test]
    fn errors_name_the_key_path_but_not_a_number_in_a_key_or_a_value() {
        let cases = [
            // Table keys that our own checks refuse.
            (
                "[sms.countries.\"+447700900123\"]\nsender_id = \"X\"\n",
                "sms.countries.<number hidden>: not an assigned",
            ),
            ("[sms.tenants.\"+44 7700 900123\"]\n", "sms.tenants.<number hidden>: the tenant may"),
            ("[guarantee]\n\"+447700900123\" = \"at_most_once\"\n", "guarantee.<number hidden>: the category"),
            // Values and keys serde quotes.
            ("[sms]\ntransliterate = \"+447700900123\"\n", "unknown variant `<number hidden>`"),
            ("[guarantee]\ndefault = \"+447700900123\"\n", "in `guarantee.default`"),
            (
                "[quiet_hours]\nstart = \"+44 7700 900123\"\nend = \"08:00\"\ndefault_timezone = \"UTC\"\n",
                "in `quiet_hours.start`",
            ),
            (
                "[quiet_hours]\nstart = \"21:00\"\nend = \"08:00\"\ndefault_timezone = \"UTC\"\nchannels = [\"+447700900123\"]\n",
                "in `quiet_hours.channels`",
            ),
            ("[sms]\n\"+447700900123\" = 1\n", "unknown field `<number hidden>`"),
        ];
        for (text, expected) in cases {
            let e = local(text, None).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
            assert!(!e.contains("900123") && !e.contains("7700"), "{text}: {e}");
        }
        // A short value is still quoted: it helps, and it is no number.
        let e = local("[sms]\ntransliterate = \"sometimes\"\n", None).unwrap_err().to_string();
        assert!(e.contains("`sometimes`") && e.contains("transliterate"), "{e}");
    }

    #[test]
    fn numbers_are_hidden_wherever_they_stand() {
        assert_eq!(hide_numbers("a.+447700900123: b"), "a.<number hidden>: b");
        assert_eq!(hide_numbers("`+1 (415) 555-0123`, x"), "`<number hidden>`, x");
        assert_eq!(
            hide_numbers("line 12, column 345: 30d, 365 days, 123456"),
            "line 12, column 345: 30d, 365 days, 123456"
        );
        assert_eq!(hide_numbers("ids 1234567 and 12-34-567"), "ids <number hidden> and <number hidden>");
        assert_eq!(hide_numbers("é+4477009001230é"), "é<number hidden>é");
    }

    #[test]
    fn the_token_lifetime_defaults_to_a_year_and_is_at_least_thirty_days() {
        let text = email_toml(&format!("unsubscribe_secret = \"{KEY}\"\n"));
        assert_eq!(email(&local(&text, None).unwrap()).unsubscribe_ttl.seconds(), 365 * 86_400);
        let month = local(&format!("{text}unsubscribe_ttl = \"30d\"\n"), None).unwrap();
        assert_eq!(email(&month).unsubscribe_ttl.seconds(), 30 * 86_400);
        let weeks = local(&format!("{text}unsubscribe_ttl = \"8w\"\n"), None).unwrap();
        assert_eq!(email(&weeks).unsubscribe_ttl.seconds(), 56 * 86_400);
        let short = local(&format!("{text}unsubscribe_ttl = \"29d\"\n"), None).unwrap_err().to_string();
        assert!(short.contains("email.unsubscribe_ttl: at least 30d"), "{short}");
        let long = local(&format!("{text}unsubscribe_ttl = \"400d\"\n"), None).unwrap_err().to_string();
        assert!(long.contains("at most a year"), "{long}");
    }

    #[test]
    fn a_function_takes_its_keys_from_the_caller_and_refuses_a_secret_in_its_text() {
        let keyless = Settings::parse_keyless(&email_toml(""), "HERALD_CONFIG_TOML", Path::new(".")).unwrap();
        assert!(keyless.has_email());
        let keys = UnsubscribeKeys::parse(r#"{"primary": "k1", "k1": "fetched-key-0123456789"}"#).unwrap();
        let settings = keyless.with_unsubscribe_keys(keys.clone());
        assert_eq!(email(&settings).unsubscribe_keys, keys);
        assert_eq!(email(&settings).from, "Acme <hello@acme.example>");

        let with_secret = email_toml("unsubscribe_secret = \"leaky-leaky-leaky-leaky\"\n");
        let e = Settings::parse_keyless(&with_secret, "HERALD_CONFIG_TOML", Path::new(".")).unwrap_err().to_string();
        assert!(e.starts_with("HERALD_CONFIG_TOML: email.unsubscribe_secret: not allowed"), "{e}");
        assert!(!e.contains("leaky"), "{e}");
        // Even a short or malformed one: its presence is the error.
        let short = email_toml("unsubscribe_secret = \"x\"\n");
        assert!(Settings::parse_keyless(&short, "t", Path::new(".")).is_err());
        assert!(!Settings::parse_keyless("", "t", Path::new(".")).unwrap().has_email());
    }

    /// The TOML blocks that document herald.toml: this module's, the README's, the
    /// shipped herald.toml and the examples.
    #[test]
    fn the_documented_configurations_parse() {
        let doc: String = include_str!("config.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .skip_while(|l| *l != "```toml")
            .skip(1)
            .take_while(|l| *l != "```")
            .map(|l| format!("{l}\n"))
            .collect();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let start = readme.find("## Guard rails and `herald.toml`").unwrap();
        let block = readme[start..].split("```toml\n").nth(1).unwrap().split("```").next().unwrap().to_owned();
        let mut texts = vec![("config.rs".to_owned(), doc), ("README.md".to_owned(), block)];
        for file in ["herald.toml", "examples/herald-sms.toml"] {
            texts.push((file.to_owned(), std::fs::read_to_string(root.join(file)).unwrap()));
        }
        for (name, text) in texts {
            assert!(text.contains("[sms"), "{name}: no [sms] section found");
            if let Err(e) = local(&text, Some(KEY)) {
                panic!("{name}: {e}");
            }
        }
    }

    #[test]
    fn a_function_config_file_is_read_without_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.toml");
        std::fs::write(&path, email_toml("")).unwrap();
        let keyless = Settings::load_keyless(&path).unwrap();
        let keys = UnsubscribeKeys::single(KEY).unwrap();
        assert_eq!(keyless.with_unsubscribe_keys(keys).templates, dir.path().join("templates"));
        std::fs::write(&path, email_toml(&format!("unsubscribe_secret = \"{KEY}\"\n"))).unwrap();
        assert!(Settings::load_keyless(&path).is_err());
    }
}
