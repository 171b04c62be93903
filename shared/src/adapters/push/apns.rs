//! APNs over HTTP/2 with token authentication: `POST {base}/3/device/{token}` with an
//! ES256 provider JWT (`kid`, `iss`, `iat`) reused for 40 minutes (APNs refuses renewals
//! more often than every 20 with `TooManyProviderTokenUpdates`, and tokens older than
//! 60 with `ExpiredProviderToken`), and the `apns-*` headers.
//!
//! All requests share one HTTP/2 connection per host (the guarded client's pool), as
//! Apple asks: opening a connection per notification gets a provider throttled.
//! herald names each notification with its own `apns-id` (a UUID): the `sent` receipt
//! carries it whether or not APNs echoes it.

use std::sync::Arc;

use async_trait::async_trait;

use super::{http_failure, verdict_result};
use crate::adapters::http::GuardedClient;
use crate::ports::{Clock, OutboundPush, PushSender, SendError};
use crate::push::credentials::ApnsTokenCache;
use crate::push::errors::{PushVerdict, classify_apns};
use crate::push::payload;
use crate::request::{ApnsEnvironment, PushTarget};

pub struct ApnsSender {
    client: GuardedClient,
    tokens: ApnsTokenCache,
    /// The app's bundle id (`apns-topic`).
    topic: String,
    hosts: ApnsHosts,
    clock: Arc<dyn Clock>,
}

/// Where notifications go: the production and sandbox base URLs (without a trailing
/// slash), and the environment of a token whose request names none. One provider token
/// serves both hosts.
#[derive(Debug, Clone)]
pub struct ApnsHosts {
    pub production: String,
    pub sandbox: String,
    pub default: ApnsEnvironment,
}

impl ApnsHosts {
    fn base_url(&self, environment: Option<ApnsEnvironment>) -> &str {
        match environment.unwrap_or(self.default) {
            ApnsEnvironment::Production => self.production.trim_end_matches('/'),
            ApnsEnvironment::Sandbox => self.sandbox.trim_end_matches('/'),
        }
    }
}

impl ApnsSender {
    /// `client` must speak HTTP/2 ([`GuardedClient::http2`]).
    pub fn new(
        client: GuardedClient,
        tokens: ApnsTokenCache,
        topic: String,
        hosts: ApnsHosts,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ApnsSender { client, tokens, topic, hosts, clock }
    }

    fn headers(&self, push: &OutboundPush, bearer: &str, apns_id: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("authorization".to_owned(), format!("bearer {bearer}")),
            ("apns-topic".to_owned(), self.topic.clone()),
            ("apns-push-type".to_owned(), "alert".to_owned()),
            ("apns-priority".to_owned(), payload::apns_priority(push).to_owned()),
            ("apns-expiration".to_owned(), push.expires_at.as_second().max(0).to_string()),
            ("apns-id".to_owned(), apns_id.to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        if let Some(id) = payload::collapse_id(push) {
            headers.push(("apns-collapse-id".to_owned(), id));
        }
        headers
    }

    fn bearer(&self) -> Result<String, SendError> {
        self.tokens
            .bearer(self.clock.now())
            .map_err(|e| SendError::permanent("apns_auth", format!("APNs provider token: {e}")))
    }

    async fn post(
        &self,
        url: &str,
        push: &OutboundPush,
        body: &[u8],
        apns_id: &str,
        bearer: &str,
    ) -> Result<PushVerdict, SendError> {
        let answer = self
            .client
            .post(url, &self.headers(push, bearer, apns_id), body.to_vec())
            .await
            .map_err(|e| http_failure(&e, "APNs"))?;
        Ok(classify_apns(
            answer.status,
            &answer.body,
            answer.header("apns-id"),
            answer.header("retry-after"),
            self.clock.now(),
        ))
    }
}

#[async_trait]
impl PushSender for ApnsSender {
    async fn send_push(&self, push: &OutboundPush) -> Result<String, SendError> {
        let PushTarget::Apns { token: device, environment } = &push.target else {
            return Err(SendError::permanent("wrong_provider", "not an APNs device token"));
        };
        let body = payload::apns_payload(push).map_err(|e| SendError::permanent("invalid_payload", e.to_string()))?;
        let url = format!("{}/3/device/{device}", self.hosts.base_url(*environment));
        let apns_id = uuid::Uuid::new_v4().to_string();
        let refused = self.bearer()?;
        let mut verdict = self.post(&url, push, &body, &apns_id, &refused).await?;
        if let PushVerdict::Reauthenticate { code } = &verdict {
            // Our token was refused and nothing was sent. Renew it (at most once a minute:
            // concurrent refusals renew once), or take the one a concurrent record renewed.
            let renewed = self.tokens.invalidate(&refused, self.clock.now());
            let current = self.bearer()?;
            if !renewed && current == refused {
                // Refused again within a minute of its making: the key, the ids or the
                // clock, or a burst a renewal is already answering. Later, not never.
                return Err(SendError::transient(code.clone(), "APNs refused the provider token; retrying later"));
            }
            verdict = self.post(&url, push, &body, &apns_id, &current).await?;
        }
        verdict_result(verdict, "APNs", apns_id)
    }
}
