//! AWS adapters: DynamoDB state, SES v2 email, SQS deferrals and receipts.
//!
//! Clients share one `SdkConfig` built once per process by [`load_config`]: rustls
//! with ring (one TLS stack, no aws-lc build), an operation timeout below the Lambda
//! timeout (the SDK sets none), and `AWS_ENDPOINT_URL` honoured as usual.

mod classify;
mod dynamo;
mod ses;
mod sqs;

use std::time::Duration;

pub use classify::{classify_send, is_transient_status};
pub use dynamo::{DynamoStore, TTL_ATTRIBUTE};
pub use ses::SesSender;
pub use sqs::{ATTEMPT_ATTRIBUTE, NOT_BEFORE_ATTRIBUTE, SOURCE_ATTRIBUTE, SqsReceiptSink, SqsScheduler, enqueue};

/// Shared AWS configuration. `operation_timeout` bounds each call, retries included.
pub async fn load_config(operation_timeout: Duration) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(operation_timeout)
        .operation_attempt_timeout(operation_timeout / 2)
        .connect_timeout(Duration::from_secs(2))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http).timeout_config(timeouts).load().await
}
