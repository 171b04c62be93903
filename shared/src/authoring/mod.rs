//! What template authors work with besides sending: fixtures (sample data beside a
//! template), a sample message rendered from one exactly as a send would build it
//! (`herald preview`), and the checks of a whole template folder (`herald templates
//! check`, see check.rs).
//!
//! ```text
//! templates/order-confirmation/fixtures/default.json   the request's `data`, as an
//!                                                       orchestrator would send it
//! ```
//! A fixture may carry a top-level `herald` object (a key request data cannot use:
//! the pipeline owns it) for what the sample recipient is: `timezone`, `category`,
//! `tenant`, `email`, `phone`, `push` (a push target object). It is not data.

pub mod check;

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use crate::config::Settings;
use crate::pipeline::{Pipeline, Prepared, PreviewError};
use crate::render::{Catalogue, CatalogueError};
use crate::request::{Channel, DeliveryRequest, Locale};

/// One `fixtures/<name>.json`.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// The file stem: `default` for `fixtures/default.json`.
    pub name: String,
    /// The file, for messages.
    pub path: String,
    pub data: Map<String, Value>,
    /// The `herald` object: who the sample recipient is.
    pub recipient: Map<String, Value>,
}

impl Fixture {
    pub fn parse(name: &str, path: &str, text: &str) -> Result<Self, CatalogueError> {
        let err = |message: String| CatalogueError { path: path.to_owned(), message, line: None, column: None };
        let value: Value = serde_json::from_str(text).map_err(|e| CatalogueError {
            path: path.to_owned(),
            message: format!("not valid JSON: {e}"),
            line: Some(e.line()),
            column: Some(e.column()),
        })?;
        let Value::Object(mut data) = value else {
            return Err(err("a fixture is a JSON object: the request's `data`".into()));
        };
        let recipient = match data.remove("herald") {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(err("`herald` in a fixture is an object (timezone, category, tenant...)".into())),
        };
        for key in recipient.keys() {
            if !RECIPIENT_KEYS.contains(&key.as_str()) {
                return Err(err(format!(
                    "`herald.{key}` is not a fixture setting; use one of {}",
                    RECIPIENT_KEYS.join(", ")
                )));
            }
        }
        Ok(Fixture { name: name.to_owned(), path: path.to_owned(), data, recipient })
    }

    /// An empty fixture, for a template that has none.
    pub fn empty() -> Self {
        Fixture { name: "(no fixture)".into(), path: String::new(), data: Map::new(), recipient: Map::new() }
    }

    fn setting(&self, key: &str) -> Option<&str> {
        self.recipient.get(key).and_then(Value::as_str)
    }
}

/// A well-formed FCM registration token that is nobody's device.
const SAMPLE_FCM_TOKEN: &str = "sample-device-token-0000000000000000000000000000";

/// `sample-<template>-<fixture>`, within the request id's 128 characters.
fn sample_id(template: &str, fixture: &str) -> String {
    let mut id = format!("sample-{template}-{}", fixture.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    id.truncate(128);
    id
}

const RECIPIENT_KEYS: [&str; 6] = ["timezone", "category", "tenant", "email", "phone", "push"];

/// The fixtures of a template folder, sorted by name (none when it has no `fixtures/`),
/// and the files that are not fixtures (each reported, the others still used).
pub fn fixtures(template_dir: &Path) -> (Vec<Fixture>, Vec<CatalogueError>) {
    let dir = template_dir.join("fixtures");
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    let err = |path: &Path, message: String| CatalogueError {
        path: path.display().to_string(),
        message,
        line: None,
        column: None,
    };
    let Ok(entries) = std::fs::read_dir(&dir) else { return (out, errors) };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")).filter(|n| !n.starts_with('.')) else {
            continue;
        };
        if !path.is_file() {
            continue;
        }
        match std::fs::metadata(&path).map(|m| m.len()) {
            Ok(len) if len > MAX_FIXTURE_BYTES => {
                errors.push(err(&path, format!("{len} bytes: a fixture is sample data, at most {MAX_FIXTURE_BYTES}")));
                continue;
            }
            _ => {}
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => match Fixture::parse(stem, &path.display().to_string(), &text) {
                Ok(f) => out.push(f),
                Err(e) => errors.push(e),
            },
            Err(e) => errors.push(err(&path, format!("cannot read: {e}"))),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    (out, errors)
}

/// A request's data is far smaller; a bigger file is a mistake, not a fixture.
const MAX_FIXTURE_BYTES: u64 = 1024 * 1024;

/// What a sample is rendered for.
#[derive(Debug, Clone)]
pub struct SampleSpec<'a> {
    pub template: &'a str,
    pub channel: Channel,
    /// None: the template's default locale (its root folder).
    pub locale: Option<&'a Locale>,
    pub fixture: &'a Fixture,
}

/// Renders samples the way a send renders messages, and sends nothing.
pub struct Sampler {
    pipeline: Pipeline,
}

impl Sampler {
    /// Without an `[email]` section (a templates repository with no herald.toml), email
    /// samples use a sample sender and unsubscribe URL, so they are still built and checked.
    pub fn new(catalogue: Arc<Catalogue>, settings: Arc<Settings>) -> Self {
        let settings = if settings.email.is_some() {
            settings
        } else {
            let mut with_email = (*settings).clone();
            with_email.email = sample_email_settings();
            Arc::new(with_email)
        };
        let clock: Arc<dyn crate::ports::Clock> = Arc::new(crate::ports::SystemClock);
        Sampler { pipeline: Pipeline::for_checks(catalogue, settings, clock) }
    }

    pub fn catalogue(&self) -> &Catalogue {
        self.pipeline.catalogue()
    }

    /// The category a sample assumes: the fixture's, else the template's, else marketing
    /// (the strictest: unsubscribe link, quiet hours).
    pub fn category(&self, spec: &SampleSpec<'_>) -> String {
        spec.fixture
            .setting("category")
            .map(str::to_owned)
            .or_else(|| self.catalogue().info(spec.template).and_then(|i| i.category))
            .unwrap_or_else(|| "marketing".to_owned())
    }

    /// The delivery request a sample stands for.
    pub fn request(&self, spec: &SampleSpec<'_>) -> Result<DeliveryRequest, String> {
        let f = spec.fixture;
        let mut recipient = json!({ "id": "sample-recipient" });
        match spec.channel {
            Channel::Email => recipient["email"] = json!(f.setting("email").unwrap_or("recipient@example.com")),
            Channel::Sms => recipient["phone"] = json!(f.setting("phone").unwrap_or("+14155550123")),
            Channel::Push => {
                recipient["push"] = f
                    .recipient
                    .get("push")
                    .cloned()
                    .unwrap_or_else(|| json!({ "platform": "fcm", "token": SAMPLE_FCM_TOKEN }))
            }
        }
        if let Some(l) = spec.locale {
            recipient["locale"] = json!(l.as_str());
        }
        if let Some(tz) = f.setting("timezone") {
            recipient["timezone"] = json!(tz);
        }
        let mut request = json!({
            "id": sample_id(spec.template, &f.name),
            "channel": spec.channel.as_str(),
            "category": self.category(spec),
            "recipient": recipient,
            "template": spec.template,
            "data": Value::Object(f.data.clone()),
        });
        if let Some(t) = f.setting("tenant") {
            request["tenant"] = json!(t);
        }
        DeliveryRequest::from_value(request)
            .map_err(|e| format!("{}: {e}", if f.path.is_empty() { "sample" } else { &f.path }))
    }

    /// The message a send of this sample would hand its provider.
    pub fn render(&self, spec: &SampleSpec<'_>) -> Result<Prepared, SampleError> {
        let request = self.request(spec).map_err(SampleError::Fixture)?;
        self.pipeline.preview(&request).map_err(SampleError::Preview)
    }
}

fn sample_email_settings() -> Option<crate::config::EmailSettings> {
    const SAMPLE: &str = "[email]\nfrom = \"Sample <sender@example.com>\"\n\
                          unsubscribe_url = \"https://example.com/unsubscribe?token={token}\"\n\
                          unsubscribe_secret = \"sample-only-not-a-secret\"\n";
    Settings::parse(SAMPLE, "sample settings", Path::new("."), None).ok().and_then(|s| s.email)
}

/// Why a sample has no message.
#[derive(Debug)]
pub enum SampleError {
    /// The fixture's recipient settings do not make a valid request.
    Fixture(String),
    Preview(PreviewError),
}

impl std::fmt::Display for SampleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SampleError::Fixture(m) => f.write_str(m),
            SampleError::Preview(PreviewError::Render(e)) => e.fmt(f),
            SampleError::Preview(PreviewError::Check { reason, detail }) => write!(f, "{reason}: {detail}"),
        }
    }
}
