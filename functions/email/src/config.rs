//! Environment configuration of the email function.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use herald::adapters::aws::{ATTEMPT_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SOURCE_ATTRIBUTE};
use herald::config::Settings;
use herald::pipeline::QueuedRequest;
use herald::render::Catalogue;

pub struct FunctionConfig {
    pub table: String,
    pub request_queue_url: String,
    pub receipts_queue_url: String,
    pub configuration_set: Option<String>,
    pub concurrency: usize,
    pub aws_timeout: Duration,
    pub settings: Settings,
    templates_dir: Option<String>,
}

fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => bail!("{name} is not set: see the README's email function configuration"),
    }
}

fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl FunctionConfig {
    pub fn from_env() -> Result<Self> {
        let settings = match (optional("HERALD_CONFIG_TOML"), optional("HERALD_CONFIG")) {
            (Some(text), _) => Settings::parse(
                &text,
                "HERALD_CONFIG_TOML",
                std::path::Path::new("."),
                optional(herald::config::UNSUBSCRIBE_SECRET_ENV),
            )?,
            (None, Some(path)) => Settings::load(std::path::Path::new(&path))?,
            (None, None) => bail!("set HERALD_CONFIG_TOML (the herald.toml text) or HERALD_CONFIG (its path)"),
        };
        if settings.email.is_none() {
            bail!("the configuration has no [email] section (sender, unsubscribe URL)");
        }
        let concurrency = optional("HERALD_CONCURRENCY")
            .map(|v| v.parse::<usize>().context("HERALD_CONCURRENCY must be a whole number"))
            .transpose()?
            .unwrap_or(10)
            .clamp(1, 100);
        let timeout_ms = optional("HERALD_AWS_TIMEOUT_MS")
            .map(|v| v.parse::<u64>().context("HERALD_AWS_TIMEOUT_MS must be a whole number"))
            .transpose()?
            .unwrap_or(5_000);
        Ok(FunctionConfig {
            table: required("HERALD_TABLE")?,
            request_queue_url: required("HERALD_REQUEST_QUEUE_URL")?,
            receipts_queue_url: required("HERALD_RECEIPTS_QUEUE_URL")?,
            configuration_set: optional("HERALD_SES_CONFIGURATION_SET"),
            concurrency,
            aws_timeout: Duration::from_millis(timeout_ms),
            settings,
            templates_dir: optional("HERALD_TEMPLATES"),
        })
    }

    /// The embedded catalogue, or a folder named by HERALD_TEMPLATES.
    pub fn catalogue(&self, embedded: &[(&str, &str)]) -> Result<Catalogue> {
        let catalogue = match &self.templates_dir {
            Some(dir) => Catalogue::load(std::path::Path::new(dir))?,
            None => Catalogue::from_files(
                "templates",
                embedded.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect(),
            )?,
        };
        Ok(catalogue)
    }
}

/// An SQS record as a queued request.
pub fn queued_request(message: SqsMessage) -> QueuedRequest {
    let attr = |name: &str| message.message_attributes.get(name).and_then(|a| a.string_value.clone());
    QueuedRequest {
        message_id: message.message_id.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        attempt: attr(ATTEMPT_ATTRIBUTE).and_then(|v| v.parse().ok()).unwrap_or(0),
        not_before: attr(NOT_BEFORE_ATTRIBUTE).and_then(|v| v.parse().ok()),
        source: attr(SOURCE_ATTRIBUTE).or_else(|| message.message_id.clone().map(|id| format!("sqs:{id}"))),
    }
}
