//! The keys the state store files things under, built here and nowhere else, so the
//! CLI, the pipeline and the event ingestion can never disagree on one.

use std::fmt;

use super::{EmailAddress, PhoneNumber, PushPlatform, PushTarget, RequestId, TenantId};

macro_rules! key_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// A key read back from storage (or written by hand in a test), taken as is.
            pub fn from_stored(key: impl Into<String>) -> Self {
                $name(key.into())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// `tenant/value`, with the tenant length-prefixed so no two (tenant, value) pairs
/// collide whatever characters either contains.
fn scoped(tenant: Option<&TenantId>, value: &str) -> String {
    match tenant {
        Some(t) => format!("{}:{}/{}", t.as_str().len(), t.as_str(), value),
        None => format!("-/{value}"),
    }
}

key_type!(
    /// One request of one tenant: idempotency records.
    IdempotencyKey
);

impl IdempotencyKey {
    pub fn new(tenant: Option<&TenantId>, id: &RequestId) -> Self {
        IdempotencyKey(scoped(tenant, id.as_str()))
    }
}

key_type!(
    /// One person of one tenant: consent and frequency caps.
    RecipientKey
);

impl RecipientKey {
    pub fn new(tenant: Option<&TenantId>, recipient_id: &str) -> Self {
        RecipientKey(scoped(tenant, recipient_id))
    }

    /// The counter of one cap rule for this person.
    pub fn cap(&self, rule: &str) -> String {
        format!("{}#{rule}", self.0)
    }
}

key_type!(
    /// One address on one channel: the suppression list (bounces, complaints, manual).
    SuppressionKey
);

impl SuppressionKey {
    pub fn email(address: &EmailAddress) -> Self {
        SuppressionKey(format!("email:{}", address.suppression_key()))
    }

    pub fn phone(number: &PhoneNumber) -> Self {
        SuppressionKey(format!("phone:{}", number.as_str()))
    }

    pub fn push(target: &PushTarget) -> Self {
        Self::push_token(target.platform(), target.address())
    }

    /// A device token (or Web Push endpoint) as an operator types it: APNs tokens are
    /// hex, compared without case. FCM tokens run to 4 KB and endpoints to 2 KB, past
    /// DynamoDB's 2,048-byte partition key: long ones are keyed by their SHA-256.
    pub fn push_token(platform: PushPlatform, token: &str) -> Self {
        let token = if platform == PushPlatform::Apns { token.to_ascii_lowercase() } else { token.to_owned() };
        if token.len() > Self::MAX_PLAIN_TOKEN {
            return SuppressionKey(format!(
                "push:{}:sha256:{}",
                platform.as_str(),
                crate::receipt::receipt_id(&[&token])
            ));
        }
        SuppressionKey(format!("push:{}:{token}", platform.as_str()))
    }

    /// The same address on one tenant's own list.
    pub fn for_tenant(&self, tenant: &TenantId) -> Self {
        SuppressionKey(scoped(Some(tenant), &self.0))
    }

    /// Tokens longer than this (bytes) are keyed by their hash.
    pub const MAX_PLAIN_TOKEN: usize = 512;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_keys_never_collide() {
        let t1 = TenantId::parse("a").unwrap();
        let t2 = TenantId::parse("a1").unwrap();
        let id = |s: &str| RequestId::parse(s).unwrap();
        assert_ne!(IdempotencyKey::new(Some(&t1), &id("1/x")), IdempotencyKey::new(Some(&t2), &id("x")));
        assert_ne!(IdempotencyKey::new(None, &id("x")), IdempotencyKey::new(Some(&t1), &id("x")));
    }

    #[test]
    fn long_push_tokens_are_keyed_by_their_hash() {
        let long = "t".repeat(4096);
        let key = SuppressionKey::push_token(PushPlatform::Fcm, &long);
        assert!(key.as_str().len() < 100, "{}", key.as_str().len());
        assert_eq!(key, SuppressionKey::push_token(PushPlatform::Fcm, &long));
        assert_ne!(key, SuppressionKey::push_token(PushPlatform::Fcm, &"u".repeat(4096)));
    }

    #[test]
    fn apns_tokens_are_compared_without_case() {
        assert_eq!(
            SuppressionKey::push_token(PushPlatform::Apns, "ABCDEF"),
            SuppressionKey::push_token(PushPlatform::Apns, "abcdef")
        );
    }
}
