//! `herald enqueue`: requests onto the AWS deployment, each to its channel's request
//! queue (`--queue CHANNEL=URL`), or published to the stack's entry topic
//! (`--topic-arn`), which routes them by channel; or, as before routing existed, all to
//! one queue (`--queue-url`).
//!
//! Routed requests are read first, every one: a body that is not a JSON object with a
//! known channel, or whose channel has no queue, stops the command before anything is
//! sent, naming where it came from (`file:line`) and why, never what it holds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{ArgGroup, Args};
use herald::request::value_de::StrictValue;
use herald::request::{Channel, limits};
use serde_json::Value;

use crate::input::{self, Item};

/// Read only when no destination is given on the command line, so an old export never
/// conflicts with an explicit `--queue` or `--topic-arn`.
const QUEUE_URL_ENV: &str = "HERALD_QUEUE_URL";
const TOPIC_ARN_ENV: &str = "HERALD_ENTRY_TOPIC_ARN";

#[derive(Args)]
#[command(group(ArgGroup::new("destination").args(["queue_url", "queue", "topic_arn"])))]
pub struct EnqueueArgs {
    /// Request files: one JSON object, a JSON array, or JSON Lines (`-` for stdin).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// One request queue for every request, sent as written: the function there answers
    /// a request for another channel with a `rejected` receipt. Default: HERALD_QUEUE_URL,
    /// when no destination is given.
    #[arg(long)]
    queue_url: Option<String>,
    /// A channel's request queue, as CHANNEL=URL; repeat it per channel
    /// (`--queue email=URL --queue sms=URL`). Each request goes to its channel's queue.
    #[arg(long, value_name = "CHANNEL=URL", value_parser = parse_route)]
    queue: Vec<(Channel, String)>,
    /// The stack's entry topic (output EntryTopicArn): each request is published to it,
    /// and SNS delivers it to its channel's queue. Default: HERALD_ENTRY_TOPIC_ARN, when
    /// no destination is given.
    #[arg(long)]
    topic_arn: Option<String>,
}

impl EnqueueArgs {
    /// The destination flags, or the environment's when none is given.
    fn with_environment(&self) -> Result<(Option<String>, Option<String>)> {
        if self.queue_url.is_some() || self.topic_arn.is_some() || !self.queue.is_empty() {
            return Ok((self.queue_url.clone(), self.topic_arn.clone()));
        }
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (env(QUEUE_URL_ENV), env(TOPIC_ARN_ENV)) {
            (Some(_), Some(_)) => {
                bail!("both {QUEUE_URL_ENV} and {TOPIC_ARN_ENV} are set: give --queue-url or --topic-arn")
            }
            (None, None) => bail!(
                "no destination: give --queue CHANNEL=URL (per channel), --topic-arn ARN or --queue-url URL \
                 (or set {QUEUE_URL_ENV} or {TOPIC_ARN_ENV})"
            ),
            found => Ok(found),
        }
    }
}

fn parse_route(arg: &str) -> Result<(Channel, String), String> {
    let (channel, url) = arg.split_once('=').ok_or("expected CHANNEL=URL, e.g. email=https://sqs...")?;
    let channel: Channel =
        channel.trim().parse().map_err(|_| format!("not a channel: use one of {}", channel_names()))?;
    if url.trim().is_empty() {
        return Err(format!("no queue URL after {channel}="));
    }
    Ok((channel, url.trim().to_owned()))
}

fn channel_names() -> String {
    Channel::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
}

/// The channel a request names. The reason it has none never quotes the body: it may
/// carry an address or a phone number.
fn channel_of(raw: &str) -> Result<Channel, String> {
    // Refuses a key given twice, as the functions do: `channel` must not be ambiguous.
    let StrictValue(value) = serde_json::from_str(raw).map_err(|e| format!("not valid JSON: {e}"))?;
    let Some(object) = value.as_object() else { return Err("expected a JSON object".into()) };
    match object.get("channel") {
        None => Err("no channel".into()),
        Some(Value::String(c)) => c.parse().map_err(|_| format!("the channel is not one of {}", channel_names())),
        Some(_) => Err("the channel is not a string".into()),
    }
}

pub async fn run(args: &EnqueueArgs) -> Result<ExitCode> {
    let (queue_url, topic_arn) = args.with_environment()?;
    let mut items = Vec::new();
    for file in &args.files {
        items.extend(input::read(file).with_context(|| file.display().to_string())?);
    }
    if let Some(url) = &queue_url {
        let bodies: Vec<String> = items.into_iter().map(|i| i.raw).collect();
        let sqs = aws_sdk_sqs::Client::new(&herald::adapters::aws::load_config(crate::SDK_TIMEOUT).await);
        herald::adapters::aws::enqueue(&sqs, url, &bodies).await?;
        eprintln!("herald: {} request(s) enqueued", bodies.len());
        return Ok(ExitCode::SUCCESS);
    }

    let mut queues: BTreeMap<Channel, &str> = BTreeMap::new();
    for (channel, url) in &args.queue {
        if queues.insert(*channel, url).is_some() {
            bail!("--queue {channel}=... is given twice");
        }
    }
    let total = items.len();
    // In the order read: the topic gets them in that order.
    let mut routed: Vec<(Channel, Item)> = Vec::new();
    let mut refused = 0;
    for item in items {
        let reason = match channel_of(&item.raw) {
            Err(reason) => reason,
            // SNS carries at most 256 KiB, herald's own limit for a request.
            Ok(_) if topic_arn.is_some() && item.raw.len() > limits::REQUEST_BYTES => {
                format!("{} bytes; at most {} can be published", item.raw.len(), limits::REQUEST_BYTES)
            }
            Ok(channel) if topic_arn.is_none() && !queues.contains_key(&channel) => {
                format!("channel {channel} has no queue (--queue {channel}=URL)")
            }
            Ok(channel) => {
                routed.push((channel, item));
                continue;
            }
        };
        eprintln!("herald: {}: {reason}", item.source);
        refused += 1;
    }
    if refused > 0 {
        eprintln!("herald: {refused} of {total} request(s) cannot be routed: nothing was sent");
        return Ok(ExitCode::from(4));
    }

    let mut by_channel: BTreeMap<Channel, Vec<String>> = BTreeMap::new();
    for (channel, item) in &routed {
        by_channel.entry(*channel).or_default().push(item.raw.clone());
    }
    let counts = by_channel.iter().map(|(c, bodies)| format!("{c} {}", bodies.len())).collect::<Vec<_>>().join(", ");
    let sdk = herald::adapters::aws::load_config(crate::SDK_TIMEOUT).await;
    if let Some(topic) = &topic_arn {
        let sns = aws_sdk_sns::Client::new(&sdk);
        for (published, (_, item)) in routed.iter().enumerate() {
            if let Err(e) = sns.publish().topic_arn(topic).message(&item.raw).send().await {
                let e = aws_sdk_sns::error::DisplayErrorContext(e);
                bail!(
                    "{}: may not have been published ({e}); {published} of {total} request(s) were published before \
                     it. Running the command again is safe: a function sends a request id once",
                    item.source
                );
            }
        }
        eprintln!("herald: {total} request(s) published to the entry topic ({counts})");
        return Ok(ExitCode::SUCCESS);
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut failed = Vec::new();
    for (channel, bodies) in &by_channel {
        // Every channel was checked to have a queue above.
        if let Some(url) = queues.get(channel)
            && let Err(e) = herald::adapters::aws::enqueue(&sqs, url, bodies).await
        {
            failed.push(format!("{channel}: {e}"));
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    eprintln!("herald: {total} request(s) enqueued ({counts})");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_read_without_quoting_the_body() {
        assert_eq!(channel_of(r#"{"channel": "sms", "recipient": {"phone": "+14155550123"}}"#), Ok(Channel::Sms));
        for (raw, reason) in [
            (r#"{"recipient": {"phone": "+14155550123"}}"#, "no channel"),
            (r#"{"channel": "+14155550123"}"#, "not one of email, sms, push"),
            (r#"{"channel": ["email"]}"#, "not a string"),
            (r#"["+14155550123"]"#, "expected a JSON object"),
            (r#"{"channel": "email", "channel": "sms"}"#, "given twice"),
            ("+14155550123", "not valid JSON"),
            (r#"{"channel": "email", "to": "+14155550123"#, "not valid JSON"),
        ] {
            let got = channel_of(raw).expect_err(raw);
            assert!(got.contains(reason), "{raw}: {got}");
            assert!(!got.contains("555"), "the reason quotes the body: {got}");
        }
    }

    #[test]
    fn routes_are_channel_equals_url() {
        assert_eq!(parse_route("email=https://q/e"), Ok((Channel::Email, "https://q/e".to_owned())));
        assert!(parse_route("fax=https://q").is_err());
        assert!(parse_route("https://q").is_err());
        assert!(parse_route("sms=").is_err());
    }
}
