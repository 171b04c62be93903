//! FCM HTTP v1: `POST {base}/v1/projects/{project}/messages:send` with an OAuth2 access
//! token from the service-account key (an RS256 JWT grant at the key's `token_uri`).
//!
//! The token is fetched once per warm function and shared: the cache sits behind an
//! async mutex held across check, fetch and store, so ten concurrent records make one
//! fetch, not ten. It is renewed five minutes before it expires, and dropped when FCM
//! answers 401 with it (then the message is sent once more with a fresh token: nothing
//! was sent the first time).

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::Mutex;

use super::{http_failure, verdict_result};
use crate::adapters::http::GuardedClient;
use crate::ports::{Clock, OutboundPush, PushSender, SendError};
use crate::push::credentials::{AccessToken, FcmTokenCache, ServiceAccount};
use crate::push::errors::{PushVerdict, classify_fcm};
use crate::push::payload;
use crate::request::PushTarget;

/// FCM's API, where `HERALD_FCM_URL` does not say otherwise.
pub const DEFAULT_BASE_URL: &str = "https://fcm.googleapis.com";

/// A failed token fetch answers the records waiting behind it for this long, so a token
/// endpoint that stopped answering costs one timeout per batch, not one per record.
const FETCH_FAILURE_MEMORY: std::time::Duration = std::time::Duration::from_secs(5);

pub struct FcmSender {
    client: GuardedClient,
    account: ServiceAccount,
    send_url: String,
    tokens: Mutex<Tokens>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct Tokens {
    cache: FcmTokenCache,
    /// When the last fetch failed, and why (no secret in it).
    failed: Option<(std::time::Instant, String)>,
}

impl FcmSender {
    /// `base_url`: FCM's API root, without a trailing slash.
    pub fn new(client: GuardedClient, account: ServiceAccount, base_url: &str, clock: Arc<dyn Clock>) -> Self {
        let send_url = format!("{}/v1/projects/{}/messages:send", base_url.trim_end_matches('/'), account.project_id());
        FcmSender { client, account, send_url, tokens: Mutex::new(Tokens::default()), clock }
    }

    /// The current access token, fetched when there is none or it is about to expire.
    /// Nothing is sent to FCM before this succeeds, so every failure here is transient
    /// (a revoked key keeps failing, and the request ends `retries_exhausted`).
    async fn access_token(&self) -> Result<String, SendError> {
        let auth = |reason: &str| SendError::transient("fcm_auth", format!("FCM access token: {reason}"));
        let mut tokens = self.tokens.lock().await;
        let now = self.clock.now();
        if let Some(token) = tokens.cache.current(now) {
            return Ok(token);
        }
        if let Some((at, reason)) = &tokens.failed
            && at.elapsed() < FETCH_FAILURE_MEMORY
        {
            return Err(auth(reason));
        }
        match self.fetch(now).await {
            Ok(token) => {
                let secret = token.secret().to_owned();
                tracing::info!(expires_at = %token.expires_at(), "FCM access token fetched");
                tokens.cache.store(token);
                tokens.failed = None;
                Ok(secret)
            }
            Err(reason) => {
                tokens.failed = Some((std::time::Instant::now(), reason.clone()));
                Err(auth(&reason))
            }
        }
    }

    /// One grant at the service account's token endpoint.
    async fn fetch(&self, now: jiff::Timestamp) -> Result<AccessToken, String> {
        let body = self.account.token_request_body(now).map_err(|e| e.to_string())?;
        let headers = [("content-type".to_owned(), "application/x-www-form-urlencoded".to_owned())];
        let answer =
            self.client.post(self.account.token_uri(), &headers, body.into_bytes()).await.map_err(|e| e.to_string())?;
        if !(200..300).contains(&answer.status) {
            return Err(format!("the token endpoint answered {}", answer.status));
        }
        AccessToken::from_token_response(&String::from_utf8_lossy(&answer.body), now).map_err(|e| e.to_string())
    }

    async fn post(&self, token: &str, body: &[u8]) -> Result<PushVerdict, SendError> {
        let headers = [
            ("authorization".to_owned(), format!("Bearer {token}")),
            ("content-type".to_owned(), "application/json; charset=utf-8".to_owned()),
        ];
        let answer =
            self.client.post(&self.send_url, &headers, body.to_vec()).await.map_err(|e| http_failure(&e, "FCM"))?;
        Ok(classify_fcm(answer.status, &answer.body, answer.header("retry-after"), self.clock.now()))
    }
}

#[async_trait]
impl PushSender for FcmSender {
    async fn send_push(&self, push: &OutboundPush) -> Result<String, SendError> {
        let PushTarget::Fcm { token: device } = &push.target else {
            return Err(SendError::permanent("wrong_provider", "not an FCM registration token"));
        };
        let body = payload::fcm_body(push, device, self.clock.now())
            .map_err(|e| SendError::permanent("invalid_payload", e.to_string()))?;
        let token = self.access_token().await?;
        let mut verdict = self.post(&token, &body).await?;
        if matches!(verdict, PushVerdict::Reauthenticate { .. }) {
            // Our token was refused and nothing was sent: once more with a fresh one (a
            // concurrent record may have fetched it already).
            self.tokens.lock().await.cache.invalidate_token(&token);
            let fresh = self.access_token().await?;
            verdict = self.post(&fresh, &body).await?;
        }
        verdict_result(verdict, "FCM", uuid::Uuid::new_v4().to_string())
    }
}
