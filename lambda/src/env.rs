//! The environment of a herald function: the variables every function reads, and the
//! checks that make a bad setting fail at cold start with a message naming it.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use herald::config::{KeylessSettings, Settings};
use herald::render::Catalogue;
use herald::request::Channel;

/// `HERALD_CONFIG_TOML`: the text of a herald.toml.
pub const CONFIG_TOML: &str = "HERALD_CONFIG_TOML";
/// `HERALD_CONFIG`: the path of a herald.toml (when the text is not given).
pub const CONFIG_PATH: &str = "HERALD_CONFIG";
/// Where local tools take the unsubscribe key from; its presence stops every function
/// (see [`Need::Forbidden`]).
pub const UNSUBSCRIBE_SECRET: &str = herald::config::UNSUBSCRIBE_SECRET_ENV;
pub const TABLE: &str = "HERALD_TABLE";
/// The function's own request queue, where deferrals are re-enqueued.
pub const REQUEST_QUEUE_URL: &str = "HERALD_REQUEST_QUEUE_URL";
pub const RECEIPTS_QUEUE_URL: &str = "HERALD_RECEIPTS_QUEUE_URL";
pub const CONCURRENCY: &str = "HERALD_CONCURRENCY";
pub const AWS_TIMEOUT_MS: &str = "HERALD_AWS_TIMEOUT_MS";
pub const TEMPLATES: &str = "HERALD_TEMPLATES";
/// The log filter.
pub const LOG: &str = "HERALD_LOG";

/// Whether a function can start without an environment variable.
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

/// The variables every function reads. A function adds its own ([`crate::Function`]);
/// the deployment template is checked against the union (`template_agrees` tests).
pub const COMMON_ENV_VARS: &[(&str, Need)] = &[
    (CONFIG_TOML, Need::EitherOr(CONFIG_PATH)),
    (CONFIG_PATH, Need::EitherOr(CONFIG_TOML)),
    (UNSUBSCRIBE_SECRET, Need::Forbidden),
    (TABLE, Need::Required),
    (REQUEST_QUEUE_URL, Need::Required),
    (RECEIPTS_QUEUE_URL, Need::Required),
    (CONCURRENCY, Need::Optional),
    (AWS_TIMEOUT_MS, Need::Optional),
    (TEMPLATES, Need::Optional),
    (LOG, Need::Optional),
];

/// Each AWS call's timeout by default. A record makes at most
/// `herald::pipeline::CALLS_PER_RECORD` calls in a row, so with the receipts the
/// function's timeout must exceed `BatchBudget::with_extra_calls(..).total()` (checked
/// against the template in the `template_agrees` tests).
pub const DEFAULT_AWS_TIMEOUT_MS: u64 = 2_500;

/// A variable that must be set, and not blank.
pub fn required(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => bail!("{name} is not set: see the README's function configuration"),
    }
}

/// A variable that may be absent; blank counts as absent.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A `true`/`false` switch, `default` when absent.
pub fn flag(name: &str, default: bool) -> Result<bool> {
    match optional(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => bail!("{name} must be true or false"),
    }
}

/// Stops the function when a variable it must never have is set (a secret), without
/// reading its value.
pub fn refuse_forbidden(vars: &[(&str, Need)]) -> Result<()> {
    for (name, need) in vars {
        // Presence only: the value is never read.
        if *need == Need::Forbidden && std::env::var_os(name).is_some() {
            bail!(
                "{name} is set: remove it from the function's environment (and treat the key as exposed). \
                 A deployed function reads its secrets from Secrets Manager"
            );
        }
    }
    Ok(())
}

/// The herald.toml from `HERALD_CONFIG_TOML` (its text) or `HERALD_CONFIG` (its path).
pub fn settings() -> Result<KeylessSettings> {
    Ok(match (optional(CONFIG_TOML), optional(CONFIG_PATH)) {
        (Some(text), _) => Settings::parse_keyless(&text, CONFIG_TOML, std::path::Path::new("."))?,
        (None, Some(path)) => Settings::load_keyless(std::path::Path::new(&path))?,
        (None, None) => bail!("set {CONFIG_TOML} (the herald.toml text) or {CONFIG_PATH} (its path)"),
    })
}

/// `HERALD_CONCURRENCY`: records processed at once (default 10, 1 to 100).
pub fn concurrency() -> Result<usize> {
    Ok(optional(CONCURRENCY)
        .map(|v| v.trim().parse::<usize>().with_context(|| format!("{CONCURRENCY} must be a whole number")))
        .transpose()?
        .unwrap_or(10)
        .clamp(1, 100))
}

/// `HERALD_AWS_TIMEOUT_MS`: each AWS call's timeout.
pub fn aws_timeout() -> Result<Duration> {
    let timeout_ms = optional(AWS_TIMEOUT_MS)
        .map(|v| v.trim().parse::<u64>().with_context(|| format!("{AWS_TIMEOUT_MS} must be a whole number")))
        .transpose()?
        .unwrap_or(DEFAULT_AWS_TIMEOUT_MS);
    if !(100..=60_000).contains(&timeout_ms) {
        bail!("{AWS_TIMEOUT_MS} must be between 100 and 60000 (milliseconds per AWS call)");
    }
    Ok(Duration::from_millis(timeout_ms))
}

/// What every function reads from its environment.
pub struct Environment {
    pub table: String,
    pub request_queue_url: String,
    pub receipts_queue_url: String,
    pub concurrency: usize,
    pub aws_timeout: Duration,
    /// The herald.toml, without keys: a function that signs links fetches its own.
    pub settings: KeylessSettings,
    templates_dir: Option<String>,
}

impl Environment {
    /// Reads and checks the common variables of a function reading `vars`. Checks
    /// first what needs no network, so a bad setting fails fast.
    pub fn from_env(vars: &[(&str, Need)]) -> Result<Self> {
        refuse_forbidden(vars)?;
        let settings = settings()?;
        let concurrency = concurrency()?;
        let aws_timeout = aws_timeout()?;
        Ok(Environment {
            table: required(TABLE)?,
            request_queue_url: required(REQUEST_QUEUE_URL)?,
            receipts_queue_url: required(RECEIPTS_QUEUE_URL)?,
            concurrency,
            aws_timeout,
            settings,
            templates_dir: optional(TEMPLATES),
        })
    }

    /// The embedded catalogue, or a folder named by HERALD_TEMPLATES, with the parts of
    /// `channels` compiled (a function's own channel), on a thread of its own (named,
    /// with the main thread's stack: the template parser recurses): compiling is CPU work
    /// (about 5 ms for the starter kit), and what a function does next at start mostly
    /// waits on the network (the key ring read from Secrets Manager). The future is
    /// ready when the thread is done.
    pub fn catalogue_in_background(
        &self,
        embedded: &'static [(&'static str, &'static str)],
        channels: Vec<Channel>,
    ) -> Result<impl std::future::Future<Output = Result<Catalogue>> + use<>> {
        let dir = self.templates_dir.clone();
        let (done, answer) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("herald-templates".into())
            .stack_size(8 << 20)
            .spawn(move || {
                let _ = done.send(load_catalogue(dir.as_deref(), embedded, &channels));
            })
            .context("starting the thread that compiles the templates")?;
        Ok(async move {
            answer.await.unwrap_or_else(|_| Err(anyhow::anyhow!("compiling the templates stopped without an answer")))
        })
    }
}

fn load_catalogue(dir: Option<&str>, embedded: &[(&str, &str)], channels: &[Channel]) -> Result<Catalogue> {
    let catalogue = match dir {
        Some(dir) => Catalogue::load_for(std::path::Path::new(dir), channels)?,
        None => Catalogue::from_files_for(
            "templates",
            embedded.iter().map(|(p, t)| ((*p).to_owned(), (*t).to_owned())).collect(),
            channels,
        )?,
    };
    Ok(catalogue)
}

/// `"HERALD_..."` string literals in `sources` (file name, text; unit tests excluded)
/// that `vars` does not list: a function reading a new variable without listing it
/// fails its unit test.
pub fn unlisted_variables(sources: &[(&str, &str)], vars: &[(&str, Need)]) -> Vec<String> {
    let listed: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
    let mut unlisted = Vec::new();
    for (file, text) in sources {
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (at, _) in text.match_indices("\"HERALD_") {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if name.len() > "HERALD_".len() && !listed.contains(&name.as_str()) {
                unlisted.push(format!("{file} reads {name}"));
            }
        }
    }
    for (name, need) in vars {
        if let Need::EitherOr(other) = need
            && !listed.contains(other)
        {
            unlisted.push(format!("{name}'s alternative {other}"));
        }
    }
    unlisted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_the_entry_point_reads_is_listed() {
        let sources = [
            ("env.rs", include_str!("env.rs")),
            ("lib.rs", include_str!("lib.rs")),
            ("sqs.rs", include_str!("sqs.rs")),
        ];
        assert_eq!(unlisted_variables(&sources, COMMON_ENV_VARS), Vec::<String>::new());
        assert!(COMMON_ENV_VARS.contains(&(herald::config::UNSUBSCRIBE_SECRET_ENV, Need::Forbidden)));
        // The check itself finds an unlisted name.
        let found = unlisted_variables(&[("x.rs", "optional(\"HERALD_NEW_THING\")")], COMMON_ENV_VARS);
        assert_eq!(found, vec!["x.rs reads HERALD_NEW_THING".to_owned()]);
    }
}
