//! One place that decides what an AWS failure proves.
//!
//! Three answers, not two (see `SendError`): *transient* when nothing can have been
//! sent (throttling, a connection that never opened), *unknown outcome* when the
//! request may have been acted on (a timeout after it was written, a reset
//! mid-answer, a 5xx, an unreadable answer), *permanent* when it never will succeed.
//! Provider sends are made without SDK retries, so this verdict is the only one.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::ports::SendError;

/// Codes that mean "not now, nothing was done".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    // SNS: its own throttling code, and the KMS key behind an encrypted topic throttled.
    "Throttled",
    "KMSThrottling",
    "TransactionConflict",
    "TransactionConflictException",
    // Account-level stops: every message would fail the same way until an
    // operator acts, so keep them (SQS, then a terminal receipt) instead of
    // failing them one by one.
    "AccountSuspendedException",
    "SendingPausedException",
    "NotFoundException",
];

/// Classifies a provider send's SDK error, keeping the provider's code. The message
/// is the provider's own text or ours; never the request.
pub fn classify_send<E>(err: &SdkError<E, HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = scrub(e.message().unwrap_or(""));
            let status = ctx.raw().status().as_u16();
            if THROTTLING_CODES.contains(&code.as_str()) || status == 429 {
                SendError::transient(code, message)
            } else if status >= 500 || status == 408 {
                // The service took the request and failed somewhere inside: it may
                // have sent. SES documents no guarantee either way.
                SendError::unknown_outcome(code, message)
            } else {
                SendError::permanent(code, message)
            }
        }
        SdkError::TimeoutError(_) => SendError::unknown_outcome("timeout", "no answer within the timeout"),
        SdkError::DispatchFailure(e) if is_connect_failure(err) || e.is_user() => {
            SendError::transient("connect", "could not connect to the service")
        }
        SdkError::DispatchFailure(e) if e.is_timeout() => {
            SendError::unknown_outcome("timeout", "no answer within the timeout")
        }
        SdkError::DispatchFailure(_) => {
            SendError::unknown_outcome("connection_lost", "the connection failed after the request was sent")
        }
        SdkError::ResponseError(_) => {
            SendError::unknown_outcome("unreadable_response", "the service answered in a form we cannot read")
        }
        // A request we could not even build is our defect: retrying cannot help.
        SdkError::ConstructionFailure(_) => SendError::permanent("construction", "the request could not be built"),
        _ => SendError::unknown_outcome("unknown", "unclassified SDK error"),
    }
}

/// A provider's message made fit for a receipt and a log: SES names the addresses
/// that failed a check ("...failed the check in region US-EAST-1: a@example.com"),
/// so any word with an `@`, and any long run of digits (a phone number), is replaced,
/// and the text is cut to 200 characters.
pub fn scrub(message: &str) -> String {
    let words: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            if w.contains('@') {
                "<address>".to_owned()
            } else if w.chars().filter(char::is_ascii_digit).count() >= 6 {
                "<number>".to_owned()
            } else {
                w.to_owned()
            }
        })
        .collect();
    words.join(" ").chars().take(200).collect()
}

/// Whether the connection was never established (so the request was never written).
/// hyper-util marks connect errors; the smithy client keeps its error in the chain.
fn is_connect_failure(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            return h.is_connect();
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_messages_lose_addresses_and_numbers() {
        let ses = "Email address is not verified. The following identities failed the check in region US-EAST-1: \
                   ada.lovelace@example.com, +14155550123";
        let clean = scrub(ses);
        assert!(!clean.contains("ada.lovelace") && !clean.contains("5550123"), "{clean}");
        assert!(clean.starts_with("Email address is not verified."), "{clean}");
        assert!(scrub(&"x ".repeat(500)).chars().count() <= 200);
    }

    #[test]
    fn a_plain_io_error_is_not_a_connect_failure() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(!is_connect_failure(&io));
    }
}
