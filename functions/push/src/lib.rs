//! The push function's configuration, as a library so that tests can check the
//! deployment template (`infra/template.yaml`) against it. The binary is `main.rs`.
//!
//! One function for every push provider, chosen per target: SNS mobile push (a
//! platform endpoint ARN), FCM HTTP v1, APNs over HTTP/2 and Web Push. A provider
//! whose credentials are not in the push secret is not wired; a target for it ends
//! `failed: provider:not_configured` without a call.

use herald_lambda::{Function, Need};

/// The Secrets Manager secret holding the providers' credentials (JSON, see README
/// "The push function"): the FCM service-account key, the APNs signing key (`.p8`),
/// the VAPID key. Absent: only SNS mobile push is served.
pub const SECRET_ARN: &str = "HERALD_PUSH_SECRET_ARN";
/// FCM's API base URL (default `https://fcm.googleapis.com`): tests point it at a local
/// stand-in.
pub const FCM_URL: &str = "HERALD_FCM_URL";
/// APNs' production base URL (default `https://api.push.apple.com`). An `http://` URL
/// speaks HTTP/2 without TLS (h2c), for tests only.
pub const APNS_URL: &str = "HERALD_APNS_URL";
/// APNs' sandbox base URL (default `https://api.sandbox.push.apple.com`), for targets whose
/// `environment` is `sandbox` (or all, with `push.apns_environment = "sandbox"`).
pub const APNS_SANDBOX_URL: &str = "HERALD_APNS_SANDBOX_URL";
/// Networks the SSRF guard lets through (CIDR, comma-separated): for tests on loopback
/// only. Empty in a deployment: FCM, APNs and every Web Push endpoint must be public.
pub const ALLOW_NETWORKS: &str = "HERALD_PUSH_ALLOW_NETWORKS";

/// The push function: SQS delivery requests -> guard rails (DynamoDB) -> SNS `Publish`
/// to an endpoint ARN, or FCM / APNs / Web Push over HTTPS -> receipts (SQS); a token
/// the provider reports gone is suppressed and announced as a `token_invalid` event.
pub const FUNCTION: Function = Function {
    name: "push",
    env_vars: &[
        (SECRET_ARN, Need::Optional),
        (FCM_URL, Need::Optional),
        (APNS_URL, Need::Optional),
        (APNS_SANDBOX_URL, Need::Optional),
        (ALLOW_NETWORKS, Need::Optional),
    ],
    aws_adapters: &["dynamo", "secrets", "sns_push", "sqs"],
    // The worst path: the FCM access token (fetched once per warm function, and again
    // when it expires), then a refused token, a new one and the resend; or the token,
    // then a token_invalid event and the target's suppression.
    extra_calls_per_record: 3,
};
