//! The push function: SNS mobile push, FCM, APNs and Web Push behind herald's entry
//! point, with token hygiene around them. Configuration comes from the environment,
//! herald.toml's `[push]` section and the push secret (see README "The push function").

use std::sync::Arc;

use anyhow::Context as _;
use herald::adapters::aws::{SnsPushSender, secret_text};
use herald::adapters::http::{AllowList, DEFAULT_MAX_BODY, GuardOptions, GuardedClient};
use herald::adapters::push::apns::{ApnsHosts, ApnsSender};
use herald::adapters::push::fcm::{self, FcmSender};
use herald::adapters::push::webpush::WebPushSender;
use herald::adapters::push::{PushRouter, PushSecret};
use herald::config::ApnsEnvironment;
use herald::pipeline::Senders;
use herald::push::credentials::ApnsTokenCache;
use herald::push::hygiene::TokenHygiene;
use herald_lambda::{Wired, env};
use herald_push::{ALLOW_NETWORKS, APNS_SANDBOX_URL, APNS_URL, FCM_URL, FUNCTION, SECRET_ARN};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    herald_lambda::run(&FUNCTION, |cx| async move {
        let settings = cx.settings.without_unsubscribe_keys();
        let push = settings.push.clone();
        let allow = AllowList::parse_list(&env::optional(ALLOW_NETWORKS).unwrap_or_default())
            .with_context(|| format!("{ALLOW_NETWORKS}: a comma-separated list of networks such as 127.0.0.0/8"))?;
        let secret = match env::optional(SECRET_ARN) {
            Some(arn) => {
                let text = secret_text(&aws_sdk_secretsmanager::Client::new(&cx.sdk), &arn).await?;
                PushSecret::parse(&text)?
            }
            None => PushSecret::default(),
        };
        // One provider call is bounded like an AWS call.
        let options = GuardOptions { allow, timeout: cx.aws_timeout, max_body: DEFAULT_MAX_BODY };
        // One HTTP/1 client for FCM and Web Push (one root store read at cold start, one
        // pool); APNs needs its own, HTTP/2 only.
        let http1 = GuardedClient::new(options.clone())?;
        let mut router = PushRouter {
            sns: Some(Arc::new(SnsPushSender::new(aws_sdk_sns::Client::new(&cx.provider_sdk), cx.clock.clone()))),
            ..PushRouter::default()
        };
        if let Some(account) = secret.fcm {
            let base = env::optional(FCM_URL).unwrap_or_else(|| fcm::DEFAULT_BASE_URL.to_owned());
            router.fcm = Some(Arc::new(FcmSender::new(http1.clone(), account, &base, cx.clock.clone())));
        }
        match (secret.apns, &push.apns_topic) {
            (Some(key), Some(topic)) => {
                let hosts = ApnsHosts {
                    production: env::optional(APNS_URL)
                        .unwrap_or_else(|| ApnsEnvironment::Production.base_url().to_owned()),
                    sandbox: env::optional(APNS_SANDBOX_URL)
                        .unwrap_or_else(|| ApnsEnvironment::Sandbox.base_url().to_owned()),
                    default: push.apns_environment,
                };
                let client = GuardedClient::http2(options)?;
                let tokens = ApnsTokenCache::with_default_refresh(key);
                router.apns = Some(Arc::new(ApnsSender::new(client, tokens, topic.clone(), hosts, cx.clock.clone())));
            }
            // One missing setting must not stop the other providers: APNs targets end
            // `provider:not_configured`, and the log says why.
            (Some(_), None) => {
                tracing::error!(
                    "the push secret has an `apns` key but herald.toml sets no push.apns_topic: APNs is off"
                )
            }
            _ => {}
        }
        match (secret.webpush, &push.vapid_subject) {
            (Some(key), Some(subject)) => {
                let sender = WebPushSender::new(http1, key, subject, cx.clock.clone()).map_err(anyhow::Error::msg)?;
                tracing::info!(application_server_key = %sender.public_key(), "Web Push configured");
                router.webpush = Some(Arc::new(sender));
            }
            (Some(_), None) => tracing::error!(
                "the push secret has a `webpush` key but herald.toml sets no push.vapid_subject: Web Push is off"
            ),
            _ => {}
        }
        tracing::info!(providers = ?router.providers(), "push providers");
        let sender = TokenHygiene::new(Arc::new(router), cx.store.clone(), cx.receipts.clone(), cx.clock.clone());
        Ok(Wired::new(Senders::push(Arc::new(sender)), settings).extra_calls_per_record(3))
    })
    .await
}
