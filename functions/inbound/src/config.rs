//! The inbound function's environment, checked at cold start: a bad setting stops it
//! before its first request, with a message naming the variable (never its value,
//! which might be a key pasted in the wrong place).
//!
//! It is no SQS-fed channel function, so it reads neither herald.toml nor a request
//! queue: only the variables of [`ENV_VARS`].

use std::time::Duration;

use anyhow::{Result, bail};
use herald_lambda::env::{self, Need};

/// Where verified SNS notifications go (the events function's queue).
pub const PROVIDER_EVENTS_QUEUE_URL: &str = "HERALD_PROVIDER_EVENTS_QUEUE_URL";
/// The topics whose messages `/sns` accepts, comma-separated ARNs. Empty or absent:
/// `/sns` answers 404 (the template sets it empty unless topics are given). Set without
/// [`PROVIDER_EVENTS_QUEUE_URL`], the function does not start.
pub const SNS_TOPIC_ARNS: &str = "HERALD_SNS_TOPIC_ARNS";
/// The Secrets Manager secret holding the unsubscribe key ring, read once at cold start.
pub const UNSUBSCRIBE_SECRET_ARN: &str = "HERALD_UNSUBSCRIBE_SECRET_ARN";

/// Every variable the function reads. The deployment template's environment must agree.
pub const ENV_VARS: &[(&str, Need)] = &[
    (env::UNSUBSCRIBE_SECRET, Need::Forbidden),
    (env::TABLE, Need::Required),
    (env::RECEIPTS_QUEUE_URL, Need::Required),
    (PROVIDER_EVENTS_QUEUE_URL, Need::Optional),
    (SNS_TOPIC_ARNS, Need::Optional),
    (UNSUBSCRIBE_SECRET_ARN, Need::Required),
    (env::AWS_TIMEOUT_MS, Need::Optional),
    (env::LOG, Need::Optional),
];

/// The AWS adapters the function wires: its IAM role must allow their calls
/// (`herald::adapters::aws::AWS_CALLS`): the state table, the key ring, the queues.
pub const AWS_ADAPTERS: &[&str] = &["dynamo", "secrets", "sqs"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    /// Where `unsubscribed` events go (the receipts queue: one stream).
    pub receipts_queue_url: String,
    pub unsubscribe_secret_arn: String,
    /// None: `/sns` is off.
    pub sns: Option<SnsConfig>,
    pub aws_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsConfig {
    pub queue_url: String,
    pub topic_arns: Vec<String>,
}

impl Config {
    pub fn from_env() -> Result<Self> {
        // Presence for the forbidden one (its value is never read), text for the rest.
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Reads the variables through `var`, so tests need not touch the process environment.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        for (name, need) in ENV_VARS {
            if *need == Need::Forbidden && var(name).is_some() {
                bail!(
                    "{name} is set: remove it from the function's environment (and treat the key as exposed). \
                     A deployed function reads its secrets from Secrets Manager"
                );
            }
        }
        let optional = |name: &str| var(name).filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_owned());
        let required = |name: &str| match optional(name) {
            Some(value) => Ok(value),
            None => bail!("{name} is not set: see the README's function configuration"),
        };
        let unsubscribe_secret_arn = required(UNSUBSCRIBE_SECRET_ARN)?;
        if !is_arn(&unsubscribe_secret_arn, "secretsmanager", "secret:") {
            bail!("{UNSUBSCRIBE_SECRET_ARN} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:...)");
        }
        let sns = match (optional(PROVIDER_EVENTS_QUEUE_URL), optional(SNS_TOPIC_ARNS)) {
            // No topic pinned: no message would pass, so /sns is off.
            (_, None) => None,
            (None, Some(_)) => {
                bail!("{SNS_TOPIC_ARNS} is set without {PROVIDER_EVENTS_QUEUE_URL}: /sns needs a queue to forward to")
            }
            (Some(queue_url), Some(arns)) => Some(SnsConfig { queue_url, topic_arns: topic_arns(&arns)? }),
        };
        let timeout_ms = match optional(env::AWS_TIMEOUT_MS) {
            None => env::DEFAULT_AWS_TIMEOUT_MS,
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if (100..=60_000).contains(&ms) => ms,
                _ => bail!("{} must be between 100 and 60000 (milliseconds per AWS call)", env::AWS_TIMEOUT_MS),
            },
        };
        Ok(Config {
            table: required(env::TABLE)?,
            receipts_queue_url: required(env::RECEIPTS_QUEUE_URL)?,
            unsubscribe_secret_arn,
            sns,
            aws_timeout: Duration::from_millis(timeout_ms),
        })
    }
}

/// Comma-separated SNS topic ARNs, each checked.
fn topic_arns(list: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    for (i, arn) in list.split(',').map(str::trim).enumerate() {
        if !is_arn(arn, "sns", "") || arn.rsplit(':').next().is_none_or(|name| name.is_empty() || name.len() > 256) {
            // Positions, not values: a mistyped entry may be anything.
            bail!("{SNS_TOPIC_ARNS}: entry {} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<topic>)", i + 1);
        }
        if !arns.iter().any(|a| a == arn) {
            arns.push(arn.to_owned());
        }
    }
    Ok(arns)
}

/// `arn:<partition>:<service>:<region>:<12-digit account>:<resource>`, the resource
/// starting with `prefix` and not empty after it.
fn is_arn(value: &str, service: &str, prefix: &str) -> bool {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, svc, region, account, resource]
        if partition.starts_with("aws") && *svc == service && !region.is_empty()
            && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix(prefix).is_some_and(|r| !r.is_empty()))
        && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:herald-unsubscribe-AbC123";
    const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-events";

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| map.get(name).cloned()
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("HERALD_TABLE", "herald"),
            ("HERALD_RECEIPTS_QUEUE_URL", "https://sqs.eu-west-1.amazonaws.com/123456789012/receipts"),
            (UNSUBSCRIBE_SECRET_ARN, SECRET),
        ]
    }

    fn error(vars: &[(&str, &str)]) -> String {
        Config::from_lookup(lookup(vars)).unwrap_err().to_string()
    }

    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [
            ("main.rs", include_str!("main.rs")),
            ("lib.rs", include_str!("lib.rs")),
            ("config.rs", include_str!("config.rs")),
            ("unsubscribe.rs", include_str!("unsubscribe.rs")),
            ("sns.rs", include_str!("sns.rs")),
            ("https.rs", include_str!("https.rs")),
            ("lambda.rs", include_str!("lambda.rs")),
            ("page.rs", include_str!("page.rs")),
            ("form.rs", include_str!("form.rs")),
        ];
        assert_eq!(env::unlisted_variables(&sources, ENV_VARS), Vec::<String>::new());
        assert!(ENV_VARS.contains(&(env::UNSUBSCRIBE_SECRET, Need::Forbidden)));
        // The check can fail.
        let found = env::unlisted_variables(&[("x.rs", "var(\"HERALD_SOMETHING_NEW\")")], ENV_VARS);
        assert_eq!(found, ["x.rs reads HERALD_SOMETHING_NEW"]);
    }

    #[test]
    fn a_minimal_environment() {
        let config = Config::from_lookup(lookup(&base())).unwrap();
        assert_eq!(config.table, "herald");
        assert_eq!(config.unsubscribe_secret_arn, SECRET);
        assert_eq!(config.sns, None);
        assert_eq!(config.aws_timeout, Duration::from_millis(env::DEFAULT_AWS_TIMEOUT_MS));
    }

    #[test]
    fn sns_needs_a_queue_and_topics() {
        let mut vars = base();
        vars.push((PROVIDER_EVENTS_QUEUE_URL, "https://sqs.eu-west-1.amazonaws.com/123456789012/provider-events"));
        assert_eq!(Config::from_lookup(lookup(&vars)).unwrap().sns, None);
        // What the template sets when no topic is given.
        vars.push((SNS_TOPIC_ARNS, " "));
        assert_eq!(Config::from_lookup(lookup(&vars)).unwrap().sns, None);
        vars.pop();
        let two = format!("{TOPIC}, {TOPIC}-2,{TOPIC}");
        vars.push((SNS_TOPIC_ARNS, &two));
        let sns = Config::from_lookup(lookup(&vars)).unwrap().sns.unwrap();
        assert_eq!(sns.topic_arns, [TOPIC.to_owned(), format!("{TOPIC}-2")]);
        let mut topics_only = base();
        topics_only.push((SNS_TOPIC_ARNS, TOPIC));
        assert!(error(&topics_only).contains(PROVIDER_EVENTS_QUEUE_URL));
    }

    #[test]
    fn bad_values_are_named_not_echoed() {
        let key = "sup3r-s3cret-unsubscribe-key-0123456789";
        let mut vars = base();
        vars.retain(|(k, _)| *k != UNSUBSCRIBE_SECRET_ARN);
        assert!(error(&vars).contains("HERALD_UNSUBSCRIBE_SECRET_ARN is not set"));
        vars.push((UNSUBSCRIBE_SECRET_ARN, key));
        let e = error(&vars);
        assert!(e.contains(UNSUBSCRIBE_SECRET_ARN) && !e.contains(key), "{e}");

        let mut vars = base();
        vars.push((PROVIDER_EVENTS_QUEUE_URL, "https://sqs.example/q"));
        vars.push((SNS_TOPIC_ARNS, "arn:aws:sns:eu-west-1:123456789012:ok,not-an-arn-MARKER"));
        let e = error(&vars);
        assert!(e.contains("entry 2") && !e.contains("MARKER"), "{e}");

        let mut vars = base();
        vars.push(("HERALD_AWS_TIMEOUT_MS", "5"));
        assert!(error(&vars).contains("HERALD_AWS_TIMEOUT_MS"));
        let mut vars = base();
        vars.retain(|(k, _)| *k != "HERALD_TABLE");
        assert!(error(&vars).contains("HERALD_TABLE is not set"));
    }

    #[test]
    fn a_key_in_the_environment_stops_the_function() {
        let mut vars = base();
        vars.push(("HERALD_UNSUBSCRIBE_SECRET", "sup3r-s3cret-unsubscribe-key-0123456789"));
        let e = error(&vars);
        assert!(e.contains("HERALD_UNSUBSCRIBE_SECRET is set") && !e.contains("sup3r"), "{e}");
        // Even empty: presence is enough.
        let mut vars = base();
        vars.push(("HERALD_UNSUBSCRIBE_SECRET", ""));
        assert!(error(&vars).contains("HERALD_UNSUBSCRIBE_SECRET is set"));
    }
}
