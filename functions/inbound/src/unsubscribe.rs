//! RFC 8058 one-click unsubscribe: `POST /unsubscribe?token=T` (or `/unsubscribe/T`)
//! with the form field `List-Unsubscribe=One-Click` records that the token's recipient
//! left its category, once; `GET` shows a page whose button makes that POST, and changes
//! nothing (link scanners and prefetchers follow GET links).
//!
//! A token is used once: its SHA-256 is claimed in the state store before the work and
//! marked done after it, until the token expires. A replay answers 409 and changes
//! nothing; a failure releases the claim and answers 500, so the mail provider's retry
//! (or the person's) starts clean.
//!
//! Logs name why a link was refused, never the token, the recipient id or an address.

use std::sync::Arc;

use herald::ports::{Claim, Clock, EventSink, EventStore, StateStore};
use herald::receipt::event::{DeliveryEvent, EventKind};
use herald::receipt::unsubscribe::{self, TokenError, UnsubscribeClaims, UnsubscribeKeys};
use herald::request::{Category, Channel, RecipientKey, TenantId};
use jiff::{SignedDuration, Timestamp};
use sha2::Digest as _;

use crate::{Request, Response, form, page};

/// Bodies past this are refused (413): a one-click POST is a few dozen bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// How long a claim holds a token while its work runs; a crashed attempt's claim
/// lapses after it.
pub const CLAIM_LOCK: SignedDuration = SignedDuration::from_secs(30);
/// What a 503 tells the client: the claim lock's length, the longest it can take.
pub const RETRY_AFTER_SECONDS: i64 = CLAIM_LOCK.as_secs();
/// The provider herald names in the event: the unsubscribe came through herald itself.
pub const PROVIDER: &str = "herald";
const ALLOW: &str = "GET, HEAD, POST";

/// The unsubscribe endpoint and what it writes to.
pub struct Unsubscribe {
    keys: UnsubscribeKeys,
    consent: Arc<dyn StateStore>,
    claims: Arc<dyn EventStore>,
    events: Arc<dyn EventSink>,
    clock: Arc<dyn Clock>,
}

/// A verified token's claims, checked as the pipeline would have written them.
struct Verified {
    /// Hex SHA-256 of the token: what its claim and event id are keyed by (the token is
    /// a bearer credential until it expires, so it is stored nowhere).
    digest: String,
    claims: UnsubscribeClaims,
    tenant: Option<TenantId>,
    category: Category,
}

impl Unsubscribe {
    pub fn new(
        keys: UnsubscribeKeys,
        consent: Arc<dyn StateStore>,
        claims: Arc<dyn EventStore>,
        events: Arc<dyn EventSink>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Unsubscribe { keys, consent, claims, events, clock }
    }

    /// Answers a request for `/unsubscribe`; `segment` is the path segment after it, if any.
    pub async fn handle(&self, request: &Request, segment: Option<&str>) -> Response {
        let method = request.method.as_str();
        if !matches!(method, "GET" | "HEAD" | "POST") {
            return page::method_not_allowed(ALLOW);
        }
        if request.body.len() > MAX_BODY_BYTES {
            tracing::warn!(route = "unsubscribe", method, status = 413, "request body too large");
            return page::too_large();
        }
        let now = self.clock.now();
        let verified = match self.verify(token_of(request, segment).as_deref(), now) {
            Ok(verified) => verified,
            Err(refusal) => {
                let response = refusal.page();
                // The reason only: never the token, nor what it claims.
                tracing::warn!(route = "unsubscribe", method, status = response.status, reason = %refusal, "unsubscribe link refused");
                return response;
            }
        };
        match method {
            // HEAD gets the same answer, its body dropped by the router.
            "GET" | "HEAD" => page::confirm(verified.category.as_str()),
            _ if !form::is_one_click(request.content_type.as_deref(), &request.body) => {
                tracing::warn!(route = "unsubscribe", method, status = 400, "POST without List-Unsubscribe=One-Click");
                page::not_one_click(verified.category.as_str())
            }
            _ => self.one_click(&verified, now).await,
        }
    }

    fn verify(&self, token: Option<&str>, now: Timestamp) -> Result<Verified, Refusal> {
        let token = token.ok_or(Refusal::NoToken)?;
        let claims = unsubscribe::verify(&self.keys, token, now).map_err(Refusal::Token)?;
        // Signed by herald, so these parse; a ring shared with another signer might not.
        let tenant = claims.tenant.as_deref().map(TenantId::parse).transpose().map_err(|_| Refusal::Claims)?;
        let category = Category::parse(&claims.category).map_err(|_| Refusal::Claims)?;
        let digest = sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
        Ok(Verified { digest, claims, tenant, category })
    }

    /// The POST: claim the token, record the consent, emit the event, mark it done.
    async fn one_click(&self, verified: &Verified, now: Timestamp) -> Response {
        let category = verified.category.as_str();
        let claim_id = format!("unsub:{}", verified.digest);
        let lock_until = now.checked_add(CLAIM_LOCK).unwrap_or(now);
        match self.claims.claim(&claim_id, now, lock_until).await {
            Ok(Claim::New) => {}
            Ok(Claim::Done) => {
                tracing::info!(route = "unsubscribe", status = 409, category, "unsubscribe link already used");
                return page::already_used(category);
            }
            Ok(Claim::Busy) => {
                tracing::info!(
                    route = "unsubscribe",
                    status = 503,
                    category,
                    "unsubscribe link in use by another request"
                );
                return page::busy();
            }
            Err(e) => {
                tracing::error!(route = "unsubscribe", status = 500, error = %e, "cannot claim the unsubscribe link");
                return page::failed();
            }
        }
        if let Err(failure) = self.record(verified, now).await {
            tracing::error!(route = "unsubscribe", status = 500, category, error = %failure, "unsubscribe not recorded");
            if let Err(e) = self.claims.release(&claim_id).await {
                // Its lock lapses after CLAIM_LOCK: a retry then gets in.
                tracing::error!(route = "unsubscribe", error = %e, "cannot release the unsubscribe link's claim");
            }
            return page::failed();
        }
        // Kept until the token expires: past that, verification refuses it anyway.
        let retain_until = Timestamp::from_second(verified.claims.exp).unwrap_or(now).max(lock_until);
        if let Err(e) = self.claims.finish(&claim_id, retain_until).await {
            // Done all the same: a replay after the lock lapses records it again, and
            // emits the same event id, which consumers de-duplicate.
            tracing::warn!(route = "unsubscribe", error = %e, "unsubscribe recorded, but the link not marked used");
        }
        tracing::info!(
            route = "unsubscribe",
            status = 200,
            category,
            tenant = verified.claims.tenant.as_deref(),
            "unsubscribed"
        );
        page::unsubscribed(category)
    }

    async fn record(&self, verified: &Verified, now: Timestamp) -> Result<(), String> {
        let recipient = RecipientKey::new(verified.tenant.as_ref(), &verified.claims.recipient_id);
        let category = verified.category.as_str();
        self.consent.set_consent(&recipient, category, false, now).await.map_err(|e| format!("consent: {e}"))?;
        let event = unsubscribed_event(verified, now);
        self.events.emit_events(&[event]).await.map_err(|e| format!("event: {e}"))
    }
}

/// The `unsubscribed` event of one token: its id derives from the token's digest, so
/// every attempt with the same token carries the same id.
fn unsubscribed_event(verified: &Verified, now: Timestamp) -> DeliveryEvent {
    let mut event = DeliveryEvent::new(EventKind::Unsubscribed, Channel::Email, PROVIDER, now, &[&verified.digest]);
    event.tenant = verified.tenant.as_ref().map(|t| t.as_str().to_owned());
    event.category = Some(verified.category.as_str().to_owned());
    event.recipient_id = Some(verified.claims.recipient_id.clone());
    event.bounded()
}

/// The token: the `token` query parameter, else the path segment after `/unsubscribe/`.
/// Two `token` parameters are ambiguous: none is taken.
fn token_of(request: &Request, segment: Option<&str>) -> Option<String> {
    let mut found = request.query_params().filter(|(name, _)| name == "token").map(|(_, value)| value);
    match (found.next(), found.next()) {
        (Some(token), None) => Some(token.into_owned()),
        (Some(_), Some(_)) => None,
        (None, _) => segment.filter(|s| !s.is_empty()).map(str::to_owned),
    }
}

/// Why a link was refused. Its text is what the log says: never the token's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error("no unsubscribe token in the URL (or two)")]
    NoToken,
    #[error(transparent)]
    Token(TokenError),
    #[error("unsubscribe token claims are not a valid tenant and category")]
    Claims,
}

impl Refusal {
    fn page(self) -> Response {
        match self {
            Refusal::NoToken | Refusal::Claims | Refusal::Token(TokenError::Malformed) => page::malformed(),
            Refusal::Token(TokenError::UnknownKey | TokenError::BadSignature) => page::invalid(),
            Refusal::Token(TokenError::Expired) => page::expired(),
        }
    }
}
