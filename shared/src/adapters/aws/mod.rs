//! AWS adapters: DynamoDB state, SQS deferrals and receipts (feature `aws`), SES v2
//! email (`ses`), SNS SMS (`sns`), the unsubscribe key ring from Secrets Manager
//! (`secrets`).
//!
//! Clients share one `SdkConfig` built once per process by [`load_config`]: rustls
//! with ring (one TLS stack, no aws-lc build), an operation timeout below the Lambda
//! timeout (the SDK sets none), and `AWS_ENDPOINT_URL` honoured as usual.

mod classify;
mod dynamo;
#[cfg(feature = "secrets")]
mod secrets;
#[cfg(feature = "ses")]
mod ses;
#[cfg(feature = "sns")]
mod sns;
#[cfg(feature = "sns")]
mod sns_push;
mod sqs;

use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

pub use classify::{classify_send, scrub};
pub use dynamo::{DynamoStore, PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE};
#[cfg(feature = "secrets")]
pub use secrets::{SecretError, secret_text, unsubscribe_keys};
#[cfg(feature = "ses")]
pub use ses::SesSender;
#[cfg(feature = "sns")]
pub use sns::{SMS_ATTRIBUTES, SnsSmsSender};
#[cfg(feature = "sns")]
pub use sns_push::SnsPushSender;
pub use sqs::{
    ATTEMPT_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SOURCE_ATTRIBUTE, SqsQueue, SqsReceiptSink, SqsScheduler, enqueue,
    send_message,
};

/// An AWS API call an adapter makes, and the IAM actions that authorise it. The
/// deployment template's roles are checked against [`AWS_CALLS`], and a test below
/// checks the list against the adapters' sources, so neither can drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsCall {
    /// The adapter module: `dynamo`, `secrets`, `ses`, `sns` or `sqs`.
    pub adapter: &'static str,
    /// The SDK client method (`send_email`), or `transact:<item kind>` for an item of a
    /// `TransactWriteItems` (none today): IAM authorises a transaction item by item.
    pub operation: &'static str,
    pub iam_actions: &'static [&'static str],
}

const fn call(adapter: &'static str, operation: &'static str, iam_actions: &'static [&'static str]) -> AwsCall {
    AwsCall { adapter, operation, iam_actions }
}

/// Every AWS call the adapters make.
pub const AWS_CALLS: &[AwsCall] = &[
    call("dynamo", "put_item", &["dynamodb:PutItem"]),
    call("dynamo", "update_item", &["dynamodb:UpdateItem"]),
    call("dynamo", "delete_item", &["dynamodb:DeleteItem"]),
    call("dynamo", "get_item", &["dynamodb:GetItem"]),
    // The suppression lists, read before admission.
    call("dynamo", "batch_get_item", &["dynamodb:BatchGetItem"]),
    // The outcomes of records finishing together, as whole records.
    call("dynamo", "batch_write_item", &["dynamodb:BatchWriteItem"]),
    // On the one secret holding the unsubscribe key ring, at cold start.
    call("secrets", "get_secret_value", &["secretsmanager:GetSecretValue"]),
    call("ses", "send_email", &["ses:SendEmail"]),
    // To a phone number only: the role's statement excludes topics (NotResource).
    call("sns", "publish", &["sns:Publish"]),
    // Only when the opt-out check is on; cached per invocation.
    call("sns", "check_if_phone_number_is_opted_out", &["sns:CheckIfPhoneNumberIsOptedOut"]),
    // To a platform endpoint only (mobile push): the role's statement names endpoint ARNs.
    call("sns_push", "publish", &["sns:Publish"]),
    call("sqs", "send_message", &["sqs:SendMessage"]),
    // SendMessageBatch is authorised by sqs:SendMessage (there is no batch action).
    call("sqs", "send_message_batch", &["sqs:SendMessage"]),
];

/// The IAM actions the calls of `adapters` need, sorted, without duplicates.
pub fn iam_actions(adapters: &[&str]) -> Vec<&'static str> {
    let mut actions: Vec<&'static str> = AWS_CALLS
        .iter()
        .filter(|c| adapters.contains(&c.adapter))
        .flat_map(|c| c.iam_actions.iter().copied())
        .collect();
    actions.sort_unstable();
    actions.dedup();
    actions
}

/// The configuration for provider sends (SES, SNS): no SDK retries, one attempt
/// bounded by `timeout`. A send retried by the SDK after a timeout may deliver twice;
/// herald decides instead, by what the failure proves (`classify_send`) and the
/// category's delivery guarantee.
pub fn provider_config(sdk: &aws_config::SdkConfig, timeout: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(timeout)
        .operation_attempt_timeout(timeout)
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .build();
    sdk.to_builder().retry_config(aws_config::retry::RetryConfig::disabled()).timeout_config(timeouts).build()
}

/// The CA bundle to name alone in `SSL_CERT_FILE` at process start, if any: the file
/// the system's loader (rustls-native-certs, by openssl-probe) reads first, when it
/// holds something. Without it the loader reads that file and then every file of the
/// certificate directories, the same roots again where the distribution's tools write
/// every trusted root into the bundle (`update-ca-trust`, `update-ca-certificates`),
/// base64-decoding 300 to 450 certificates: 19 M instructions, 76% of the AWS set-up
/// at cold start. A root copied into a directory without those tools is then not
/// trusted: name the directory in `SSL_CERT_DIR`. An operator's `SSL_CERT_FILE` or
/// `SSL_CERT_DIR` is left as it is (`None`).
pub fn ca_bundle(
    operator_set: bool,
    probed: Option<std::path::PathBuf>,
    holds_something: impl Fn(&std::path::Path) -> bool,
) -> Option<std::path::PathBuf> {
    if operator_set {
        return None;
    }
    probed.filter(|file| holds_something(file))
}

/// [`ca_bundle`] on this machine; `None` but on Linux (elsewhere the loader asks the
/// platform's store).
pub fn system_ca_bundle() -> Option<std::path::PathBuf> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let operator_set = ["SSL_CERT_FILE", "SSL_CERT_DIR"].iter().any(|v| std::env::var_os(v).is_some());
    let holds_something = |file: &std::path::Path| std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() > 0);
    ca_bundle(operator_set, openssl_probe::probe().cert_file, holds_something)
}

/// How long a TCP and TLS connection may take to open (the operation timeouts bound
/// the call around it, and may be shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared AWS configuration. `operation_timeout` bounds each call, retries included.
pub async fn load_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(operation_timeout)
        .operation_attempt_timeout(operation_timeout / 2)
        .connect_timeout(CONNECT_TIMEOUT)
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts)
        .load()
        .await
}

/// One HTTPS connector (rustls with ring, the system's root certificates, one
/// connection pool) for every call with herald's own settings, built now; calls with
/// other settings (aws-config's IMDS and container credential clients, a provider
/// timeout under `CONNECT_TIMEOUT`) get the SDK's, one per setting. The SDK's client
/// alone builds a connector, parsing the root certificates again, for every client
/// constructed (to check the configuration, then dropped) besides the one per setting.
fn https_client() -> SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let shared = aws_smithy_http_client::Connector::builder()
        .connector_settings(own_settings())
        .sleep_impl(aws_smithy_async::rt::sleep::TokioSleep::new())
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build();
    let others = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    SharedHttpClient::new(OneConnector { shared: SharedHttpConnector::new(shared), others })
}

/// The connector settings of every call herald configures (`load_config`, and
/// `provider_config` with a timeout of at least `CONNECT_TIMEOUT`).
fn own_settings() -> HttpConnectorSettings {
    HttpConnectorSettings::builder().connect_timeout(CONNECT_TIMEOUT).build()
}

#[derive(Debug)]
struct OneConnector {
    shared: SharedHttpConnector,
    others: SharedHttpClient,
}

impl HttpClient for OneConnector {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        if settings.connect_timeout() == Some(CONNECT_TIMEOUT) && settings.read_timeout().is_none() {
            self.shared.clone()
        } else {
            self.others.http_connector(settings, components)
        }
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.others.connector_metadata()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_probed_bundle_when_it_holds_something_and_the_operator_named_none() {
        let file = || Some(std::path::PathBuf::from("/etc/pki/tls/certs/ca-bundle.crt"));
        assert_eq!(ca_bundle(false, file(), |_| true), file());
        assert_eq!(ca_bundle(false, file(), |_| false), None, "an empty bundle: the system's loader as it is");
        assert_eq!(ca_bundle(false, None, |_| true), None);
        assert_eq!(ca_bundle(true, file(), |_| true), None, "SSL_CERT_FILE or SSL_CERT_DIR set");
    }

    /// The calls an adapter's source makes: `client.<method>(` (whitespace ignored), and
    /// the item kinds of a transaction (`Put::builder()` and siblings).
    fn calls_in(source: &str) -> BTreeSet<String> {
        // Code only: no comments, no unit tests (they may use clients of their own).
        let code: String = source
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
            .collect();
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let follows_ident = |at: usize| code[..at].chars().next_back().is_some_and(ident);
        let mut calls = BTreeSet::new();
        for (at, needle) in code.match_indices("client.") {
            let method: String = code[at + needle.len()..].chars().take_while(|c| ident(*c)).collect();
            let called = code[at + needle.len() + method.len()..].starts_with('(');
            if !follows_ident(at) && called && method != "clone" {
                calls.insert(method);
            }
        }
        for (kind, op) in
            [("ConditionCheck", "condition_check"), ("Put", "put"), ("Update", "update"), ("Delete", "delete")]
        {
            let needle = format!("{kind}::builder(");
            if code.match_indices(&needle).any(|(at, _)| !follows_ident(at)) {
                calls.insert(format!("transact:{op}"));
            }
        }
        calls
    }

    #[test]
    fn aws_calls_lists_exactly_what_the_adapters_call() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/adapters/aws");
        let mut found = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("adapter folder") {
            let path = entry.expect("adapter file").path();
            let Some(module) = path.file_stem().and_then(|s| s.to_str()) else { continue };
            if module == "mod" || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("adapter source");
            for call in calls_in(&source) {
                found.insert((module.to_owned(), call));
            }
        }
        let listed: BTreeSet<(String, String)> =
            AWS_CALLS.iter().map(|c| (c.adapter.to_owned(), c.operation.to_owned())).collect();
        let missing: Vec<_> = found.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&found).collect();
        assert!(missing.is_empty(), "calls missing from AWS_CALLS (add them with their IAM actions): {missing:?}");
        assert!(stale.is_empty(), "AWS_CALLS lists calls no adapter makes: {stale:?}");
    }

    #[test]
    fn iam_actions_are_service_colon_action() {
        for call in AWS_CALLS {
            for action in call.iam_actions {
                let (service, name) = action.split_once(':').unwrap_or_default();
                assert!(!service.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "{action}");
                assert!(name.starts_with(|c: char| c.is_ascii_uppercase()), "{action}");
            }
        }
        assert_eq!(
            iam_actions(&["dynamo"]),
            [
                "dynamodb:BatchGetItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem"
            ]
        );
    }

    #[test]
    fn the_scanner_sees_calls_across_lines() {
        let source = "let a = self\n    .client\n    .put_item()\n// client.get_item()\nlet p = Put::builder();\nlet q = TransactPut::builder();\nmy_client.delete_item();\n#[cfg(test)]\nclient.scan()";
        let calls: Vec<String> = calls_in(source).into_iter().collect();
        assert_eq!(calls, ["put_item", "transact:put"]);
    }
}
