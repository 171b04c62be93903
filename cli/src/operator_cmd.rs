//! The operator's commands: the suppression lists, consent, and what became of a
//! request. They act on the embedded store (`--state`) or, with `--table`, on the
//! deployed DynamoDB state table. Written once against the ports, so both stores
//! answer alike, `status` to the byte.
//!
//! Messages name the store and the operation, never the address or phone number
//! they were given.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use aws_sdk_dynamodb::config::ProvideCredentials;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use clap::{Args, ValueEnum};
use herald::adapters::aws::DynamoStore;
use herald::adapters::local::LocalStore;
use herald::ports::{EventStore, RequestState, StateStore, SuppressionEntry, SuppressionReason};
use herald::request::{
    Category, EmailAddress, IdempotencyKey, PhoneNumber, PushPlatform, RecipientId, RecipientKey, RequestId,
    SuppressionKey, TenantId,
};
use jiff::Timestamp;
use serde::Serialize;

#[derive(Args)]
pub struct SuppressArgs {
    /// An email address, an E.164 phone number, or a push token (with --platform).
    address: String,
    /// hard_bounce, complaint, manual, or opted_out (as if the number had sent STOP: a
    /// START from it lifts this one, and nothing else does but unsuppress).
    #[arg(long, default_value = "manual")]
    reason: SuppressionReason,
    /// For push tokens: fcm, apns or webpush.
    #[arg(long)]
    platform: Option<PushPlatformArg>,
    /// The tenant's own list. Without it, the global list, which applies to every tenant.
    #[arg(long, value_parser = TenantId::parse)]
    tenant: Option<TenantId>,
}

#[derive(Args)]
pub struct UnsuppressArgs {
    address: String,
    #[arg(long)]
    platform: Option<PushPlatformArg>,
    /// The tenant's own list. Without it, the global list.
    #[arg(long, value_parser = TenantId::parse)]
    tenant: Option<TenantId>,
}

#[derive(Args)]
pub struct ConsentArgs {
    recipient: String,
    #[arg(long)]
    category: String,
    #[arg(long, value_parser = TenantId::parse)]
    tenant: Option<TenantId>,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(value_parser = RequestId::parse)]
    id: RequestId,
    #[arg(long, value_parser = TenantId::parse)]
    tenant: Option<TenantId>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PushPlatformArg {
    Fcm,
    Apns,
    Webpush,
    /// An SNS platform endpoint ARN.
    Sns,
}

impl From<PushPlatformArg> for PushPlatform {
    fn from(p: PushPlatformArg) -> Self {
        match p {
            PushPlatformArg::Fcm => PushPlatform::Fcm,
            PushPlatformArg::Apns => PushPlatform::Apns,
            PushPlatformArg::Webpush => PushPlatform::WebPush,
            PushPlatformArg::Sns => PushPlatform::Sns,
        }
    }
}

#[derive(clap::Subcommand)]
pub enum WebhooksArgs {
    /// List the webhook subscriptions a 410 disabled, and since when.
    Disabled,
    /// Send to a subscription a 410 disabled again (from the next invocation on).
    Enable { id: String },
}

pub enum Operation<'a> {
    Suppress(&'a SuppressArgs),
    Unsuppress(&'a UnsuppressArgs),
    /// Unsubscribe (`subscribed: false`) or resubscribe.
    Consent {
        args: &'a ConsentArgs,
        subscribed: bool,
    },
    Status(&'a StatusArgs),
    Webhooks(&'a WebhooksArgs),
}

/// Opens the store the operation acts on: the deployed table when one is named,
/// else the embedded store in `state`.
pub async fn run(table: Option<&str>, state: &Path, op: Operation<'_>, now: Timestamp) -> Result<ExitCode> {
    match table {
        Some(table) => {
            let sdk = herald::adapters::aws::load_config(crate::SDK_TIMEOUT).await;
            // Checked first: at the first call the SDK would only say "dispatch failure".
            if sdk.region().is_none() {
                bail!("DynamoDB table {table}: no AWS region: set AWS_REGION (or AWS_PROFILE with a region)");
            }
            let credentials = match sdk.credentials_provider() {
                Some(provider) => provider.provide_credentials().await.map_err(|e| DisplayErrorContext(e).to_string()),
                None => Err("no credentials provider".to_owned()),
            };
            if let Err(why) = credentials {
                bail!("DynamoDB table {table}: no AWS credentials: {why}");
            }
            let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
            apply(&store, &format!("DynamoDB table {table}"), op, now).await
        }
        None => {
            let store = LocalStore::open(state)?;
            apply(&store, &format!("state folder {}", state.display()), op, now).await
        }
    }
}

async fn apply<S: StateStore + EventStore>(
    store: &S,
    place: &str,
    op: Operation<'_>,
    now: Timestamp,
) -> Result<ExitCode> {
    match op {
        Operation::Suppress(args) => {
            let key = suppression_key(&args.address, args.platform, args.tenant.as_ref())?;
            let entry = SuppressionEntry { key, reason: args.reason };
            store.suppress(&entry, now).await.with_context(|| format!("{place}: suppressing the address"))?;
            eprintln!("herald: suppressed ({}){}", args.reason.as_str(), list_of(args.tenant.as_ref()));
        }
        Operation::Unsuppress(args) => {
            let key = suppression_key(&args.address, args.platform, args.tenant.as_ref())?;
            let removed = store.unsuppress(&key).await.with_context(|| format!("{place}: removing the suppression"))?;
            let done = if removed { "removed from the suppression list" } else { "was not suppressed" };
            eprintln!("herald: {done}{}", list_of(args.tenant.as_ref()));
        }
        Operation::Consent { args, subscribed } => {
            let key = recipient_key(&args.recipient, args.tenant.as_ref())?;
            let category = normalise_category(&args.category)?;
            store
                .set_consent(&key, &category, subscribed, now)
                .await
                .with_context(|| format!("{place}: recording consent"))?;
            eprintln!(
                "herald: recipient {} {category}",
                if subscribed { "resubscribed to" } else { "unsubscribed from" }
            );
        }
        Operation::Status(args) => {
            let key = IdempotencyKey::new(args.tenant.as_ref(), &args.id);
            let state =
                store.request_state(&key).await.with_context(|| format!("{place}: reading the request's state"))?;
            let Some(state) = state else {
                eprintln!("herald: no receipt recorded for that id");
                return Ok(ExitCode::from(3));
            };
            println!("{}", status_line(&args.id, args.tenant.as_ref(), &state)?);
        }
        Operation::Webhooks(WebhooksArgs::Disabled) => {
            let disabled =
                store.disabled_endpoints().await.with_context(|| format!("{place}: reading disabled webhooks"))?;
            for (id, since) in disabled {
                println!("{id}\tdisabled since {since}");
            }
        }
        Operation::Webhooks(WebhooksArgs::Enable { id }) => {
            let was = store.enable_endpoint(id).await.with_context(|| format!("{place}: enabling the webhook"))?;
            eprintln!(
                "herald: webhook subscription {id} {}",
                if was {
                    "enabled (the webhooks function's invocations starting 2 s from now send to it)"
                } else {
                    "was not disabled"
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Which list a suppression went on, for the confirmation.
fn list_of(tenant: Option<&TenantId>) -> String {
    tenant.map(|t| format!(" on tenant {t}'s list")).unwrap_or_default()
}

/// What `herald status` prints: only what both stores keep of a request (its
/// idempotency record and latest delivery event), so the line is the same on both.
#[derive(Serialize)]
struct StatusLine<'a> {
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<&'a str>,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_message_id: Option<&'a str>,
    at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<DeliveryLine>,
}

#[derive(Serialize)]
struct DeliveryLine {
    event: &'static str,
    at: Timestamp,
}

fn status_line(id: &RequestId, tenant: Option<&TenantId>, state: &RequestState) -> Result<String> {
    let line = StatusLine {
        request_id: id.as_str(),
        tenant: tenant.map(TenantId::as_str),
        // No outcome yet: an attempt holds the request.
        status: state.status.map_or("in_progress", |s| s.as_str()),
        reason: state.reason.as_deref(),
        provider_message_id: state.provider_message_id.as_deref(),
        at: state.at,
        delivery: state.delivery.map(|(kind, at)| DeliveryLine { event: kind.as_str(), at }),
    };
    Ok(serde_json::to_string(&line)?)
}

fn suppression_key(
    address: &str,
    platform: Option<PushPlatformArg>,
    tenant: Option<&TenantId>,
) -> Result<SuppressionKey> {
    let key = if let Some(p) = platform {
        SuppressionKey::push_token(p.into(), address)
    } else if address.trim_start().starts_with('+') {
        SuppressionKey::phone(&PhoneNumber::parse(address)?)
    } else if address.contains('@') {
        SuppressionKey::email(&EmailAddress::parse(address)?)
    } else {
        bail!("not an email address or an E.164 phone number; for a push token pass --platform")
    };
    Ok(match tenant {
        Some(t) => key.for_tenant(t),
        None => key,
    })
}

fn recipient_key(recipient: &str, tenant: Option<&TenantId>) -> Result<RecipientKey> {
    RecipientId::parse(recipient).map_err(anyhow::Error::msg)?;
    Ok(RecipientKey::new(tenant, recipient))
}

fn normalise_category(category: &str) -> Result<String> {
    if category == "*" {
        return Ok("*".into());
    }
    let c = Category::parse(category).map_err(anyhow::Error::msg)?;
    if c.is_transactional() {
        bail!("transactional messages ignore unsubscribes; suppress the address instead");
    }
    Ok(c.as_str().to_owned())
}
