//! One place that decides whether an AWS failure is worth a retry.

use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};

use crate::ports::SendError;

/// 429, 5xx and the request-timeout family are transient whatever the service says.
pub fn is_transient_status(status: u16) -> bool {
    status == 429 || status == 408 || status >= 500
}

/// Codes that mean "later", across the services herald calls.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "LimitExceededException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "TransactionConflict",
    "TransactionConflictException",
    // Account-level stops: every message would fail the same way until an
    // operator acts, so keep them (SQS, then the DLQ) instead of failing them all.
    "AccountSuspendedException",
    "SendingPausedException",
    "NotFoundException",
];

/// Classifies an SDK error into a [`SendError`], keeping the provider's code.
pub fn classify_send<E>(err: &SdkError<E, HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown").to_owned();
            let message = e.message().unwrap_or("").to_owned();
            if TRANSIENT_CODES.contains(&code.as_str()) || is_transient_status(ctx.raw().status().as_u16()) {
                SendError::transient(code, message)
            } else {
                SendError::permanent(code, message)
            }
        }
        SdkError::TimeoutError(_) => SendError::transient("timeout", "the call timed out"),
        SdkError::DispatchFailure(e) => SendError::transient("dispatch", format!("could not reach the service: {e:?}")),
        SdkError::ResponseError(_) => SendError::transient("response", "the service returned an unreadable response"),
        // A request we could not even build is our defect: retrying cannot help.
        SdkError::ConstructionFailure(_) => SendError::permanent("construction", "the request could not be built"),
        _ => SendError::transient("unknown", "unclassified SDK error"),
    }
}
