//! Environment configuration of the email function.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_lambda_events::event::sqs::SqsMessage;
use herald::adapters::aws::{ATTEMPT_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SOURCE_ATTRIBUTE};
use herald::config::{KeylessSettings, Settings};
use herald::pipeline::QueuedRequest;
use herald::receipt::unsubscribe::UnsubscribeKeys;
use herald::render::Catalogue;

/// `HERALD_CONFIG_TOML`: the text of a herald.toml.
pub const CONFIG_TOML: &str = "HERALD_CONFIG_TOML";
/// `HERALD_CONFIG`: the path of a herald.toml (when the text is not given).
pub const CONFIG_PATH: &str = "HERALD_CONFIG";
/// The ARN of the Secrets Manager secret holding the unsubscribe key ring, read once at
/// cold start. The key itself is never in the environment.
pub const UNSUBSCRIBE_SECRET_ARN: &str = "HERALD_UNSUBSCRIBE_SECRET_ARN";
/// Where local tools take the key from; its presence stops the function (see [`Need::Forbidden`]).
pub const UNSUBSCRIBE_SECRET: &str = herald::config::UNSUBSCRIBE_SECRET_ENV;
pub const TABLE: &str = "HERALD_TABLE";
/// The function's own request queue, where deferrals are re-enqueued.
pub const REQUEST_QUEUE_URL: &str = "HERALD_REQUEST_QUEUE_URL";
pub const RECEIPTS_QUEUE_URL: &str = "HERALD_RECEIPTS_QUEUE_URL";
pub const SES_CONFIGURATION_SET: &str = "HERALD_SES_CONFIGURATION_SET";
pub const CONCURRENCY: &str = "HERALD_CONCURRENCY";
pub const AWS_TIMEOUT_MS: &str = "HERALD_AWS_TIMEOUT_MS";
pub const TEMPLATES: &str = "HERALD_TEMPLATES";
/// The log filter, read by `main`.
pub const LOG: &str = "HERALD_LOG";

/// Whether the function can start without an environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Required,
    /// Has a default, or switches something off when absent.
    Optional,
    /// This variable or the named one must be set.
    EitherOr(&'static str),
    /// Must not be set: the function refuses to start, without reading the value. For
    /// a secret that would be readable by anyone who can read the function's settings.
    Forbidden,
}

/// Every environment variable the function reads. The deployment template is checked
/// against this list (`tests/template_agrees.rs`), and a unit test below checks that the
/// function reads no `HERALD_*` variable missing from it.
pub const ENV_VARS: &[(&str, Need)] = &[
    (CONFIG_TOML, Need::EitherOr(CONFIG_PATH)),
    (CONFIG_PATH, Need::EitherOr(CONFIG_TOML)),
    (UNSUBSCRIBE_SECRET_ARN, Need::Required),
    (UNSUBSCRIBE_SECRET, Need::Forbidden),
    (TABLE, Need::Required),
    (REQUEST_QUEUE_URL, Need::Required),
    (RECEIPTS_QUEUE_URL, Need::Required),
    (SES_CONFIGURATION_SET, Need::Optional),
    (CONCURRENCY, Need::Optional),
    (AWS_TIMEOUT_MS, Need::Optional),
    (TEMPLATES, Need::Optional),
    (LOG, Need::Optional),
];

/// Each AWS call's timeout by default. A record makes at most
/// `herald::pipeline::CALLS_PER_RECORD` calls in a row, so with the receipts the
/// function's timeout must exceed `BatchBudget::for_timeout(..).total()` (checked
/// against the template in `tests/template_agrees.rs`).
pub const DEFAULT_AWS_TIMEOUT_MS: u64 = 2_500;

pub struct FunctionConfig {
    pub table: String,
    pub request_queue_url: String,
    pub receipts_queue_url: String,
    pub configuration_set: Option<String>,
    pub concurrency: usize,
    pub aws_timeout: Duration,
    /// Complete once the key ring from `unsubscribe_secret_arn` is attached.
    pub settings: KeylessSettings,
    pub unsubscribe_secret_arn: String,
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
    /// Everything but the unsubscribe key ring, which [`FunctionConfig::unsubscribe_keys`]
    /// fetches. Checks first what needs no network, so a bad setting fails fast.
    pub fn from_env() -> Result<Self> {
        for (name, need) in ENV_VARS {
            // Presence only: the value is never read.
            if *need == Need::Forbidden && std::env::var_os(name).is_some() {
                bail!(
                    "{name} is set: remove it from the function's environment (and treat the key as exposed). \
                     The function reads its unsubscribe key ring from Secrets Manager ({UNSUBSCRIBE_SECRET_ARN})"
                );
            }
        }
        let settings = match (optional(CONFIG_TOML), optional(CONFIG_PATH)) {
            (Some(text), _) => Settings::parse_keyless(&text, CONFIG_TOML, std::path::Path::new("."))?,
            (None, Some(path)) => Settings::load_keyless(std::path::Path::new(&path))?,
            (None, None) => bail!("set {CONFIG_TOML} (the herald.toml text) or {CONFIG_PATH} (its path)"),
        };
        if !settings.has_email() {
            bail!("the configuration has no [email] section (sender, unsubscribe URL)");
        }
        let unsubscribe_secret_arn = required(UNSUBSCRIBE_SECRET_ARN)?;
        if !is_secret_arn(&unsubscribe_secret_arn) {
            // Not echoed: a key pasted here by mistake must not reach the logs.
            bail!("{UNSUBSCRIBE_SECRET_ARN} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:...)");
        }
        let concurrency = optional(CONCURRENCY)
            .map(|v| v.parse::<usize>().with_context(|| format!("{CONCURRENCY} must be a whole number")))
            .transpose()?
            .unwrap_or(10)
            .clamp(1, 100);
        let timeout_ms = optional(AWS_TIMEOUT_MS)
            .map(|v| v.parse::<u64>().with_context(|| format!("{AWS_TIMEOUT_MS} must be a whole number")))
            .transpose()?
            .unwrap_or(DEFAULT_AWS_TIMEOUT_MS);
        if !(100..=60_000).contains(&timeout_ms) {
            bail!("{AWS_TIMEOUT_MS} must be between 100 and 60000 (milliseconds per AWS call)");
        }
        Ok(FunctionConfig {
            table: required(TABLE)?,
            request_queue_url: required(REQUEST_QUEUE_URL)?,
            receipts_queue_url: required(RECEIPTS_QUEUE_URL)?,
            configuration_set: optional(SES_CONFIGURATION_SET),
            concurrency,
            aws_timeout: Duration::from_millis(timeout_ms),
            settings,
            unsubscribe_secret_arn,
            templates_dir: optional(TEMPLATES),
        })
    }

    /// The unsubscribe key ring, fetched from Secrets Manager (at cold start).
    pub async fn unsubscribe_keys(&self, client: &aws_sdk_secretsmanager::Client) -> Result<UnsubscribeKeys> {
        herald::adapters::aws::unsubscribe_keys(client, &self.unsubscribe_secret_arn)
            .await
            .with_context(|| format!("cannot read the unsubscribe key ring named by {UNSUBSCRIBE_SECRET_ARN}"))
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

/// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`.
fn is_secret_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(7, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "secretsmanager", region, account, "secret", name]
        if partition.starts_with("aws") && !region.is_empty() && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
}

/// An SQS record as a queued request. Attempts count across redeliveries: the
/// hops' own count plus this message's earlier receives, each of which ended
/// without a decision (a transient failure, a crash, the deadline).
pub fn queued_request(message: SqsMessage) -> QueuedRequest {
    let attr = |name: &str| message.message_attributes.get(name).and_then(|a| a.string_value.clone());
    let system = |name: &str| message.attributes.get(name).and_then(|v| v.parse::<i64>().ok());
    let hops: u32 = attr(ATTEMPT_ATTRIBUTE).and_then(|v| v.parse().ok()).unwrap_or(0);
    let receives = system("ApproximateReceiveCount").and_then(|n| u32::try_from(n).ok()).unwrap_or(1);
    QueuedRequest {
        message_id: message.message_id.clone().unwrap_or_default(),
        body: message.body.clone().unwrap_or_default(),
        attempt: hops.saturating_add(receives.saturating_sub(1)),
        not_before: attr(NOT_BEFORE_ATTRIBUTE).and_then(|v| v.parse().ok()),
        enqueued_at: system("SentTimestamp").and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
        source: attr(SOURCE_ATTRIBUTE).or_else(|| message.message_id.clone().map(|id| format!("sqs:{id}"))),
    }
}

/// The invocation's deadline (epoch milliseconds, from the Runtime API) as an instant;
/// one already past is now (start nothing), not "no deadline".
pub fn deadline(deadline_ms: u64) -> Option<std::time::Instant> {
    let now = std::time::Instant::now();
    let now_ms = u64::try_from(jiff::Timestamp::now().as_millisecond()).ok()?;
    let left = std::time::Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(now.checked_add(left).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `"HERALD_..."` string literals in the function's sources: each must be a name in
    /// [`ENV_VARS`], so reading a new variable without listing it fails here.
    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [("main.rs", include_str!("main.rs")), ("config.rs", include_str!("config.rs"))];
        let listed: Vec<&str> = ENV_VARS.iter().map(|(name, _)| *name).collect();
        for (file, text) in sources {
            for (at, _) in text.match_indices("\"HERALD_") {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if name.len() > "HERALD_".len() {
                    assert!(listed.contains(&name.as_str()), "{file} reads {name}, which ENV_VARS does not list");
                }
            }
        }
        assert!(listed.contains(&UNSUBSCRIBE_SECRET_ARN));
        assert!(ENV_VARS.contains(&(herald::config::UNSUBSCRIBE_SECRET_ENV, Need::Forbidden)));
        for (name, need) in ENV_VARS {
            if let Need::EitherOr(other) = need {
                assert!(listed.contains(other), "{name}'s alternative {other} is not listed");
            }
        }
    }

    #[test]
    fn secret_arns() {
        for arn in [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:herald-unsubscribe-AbCdEf",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:path/with:colon-x1Y2z3",
        ] {
            assert!(is_secret_arn(arn), "{arn}");
        }
        for not in [
            "",
            "herald-unsubscribe",
            "dev-only-unsubscribe-secret-change-me",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:us-east-1:123:secret:x",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
            "arn:aws:ssm:us-east-1:123456789012:parameter/x",
        ] {
            assert!(!is_secret_arn(not), "{not}");
        }
    }
}
