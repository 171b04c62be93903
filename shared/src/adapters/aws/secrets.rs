//! The unsubscribe key ring from Secrets Manager: one `GetSecretValue` on one ARN, at
//! cold start, so the key never sits in the function's environment or configuration.
//!
//! Errors name the secret's ARN and what went wrong, never its value: the SDK error is
//! not formatted whole, because a response it could not parse may carry the value.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use crate::receipt::unsubscribe::{KeyRingError, UnsubscribeKeys};

/// Why the key ring could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager answered with an error (`AccessDeniedException`,
    /// `ResourceNotFoundException`, `DecryptionFailure`...).
    #[error("GetSecretValue on {arn}: {code}: {message}")]
    Service { arn: String, code: String, message: String },
    /// The call did not get an answer (network, timeout, unreadable response).
    #[error("GetSecretValue on {arn}: {reason}")]
    Call { arn: String, reason: String },
    #[error("secret {arn} has no SecretString (a binary secret): store the key ring as text")]
    NotText { arn: String },
    #[error("secret {arn} is not an unsubscribe key ring: {source}")]
    Format {
        arn: String,
        #[source]
        source: KeyRingError,
    },
}

/// Reads the key ring stored in the secret `arn` (its current version), in the format
/// of [`UnsubscribeKeys::parse`].
pub async fn unsubscribe_keys(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<UnsubscribeKeys, SecretError> {
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| call_error(arn, &e))?;
    let text = output.secret_string().ok_or_else(|| SecretError::NotText { arn: arn.to_owned() })?;
    UnsubscribeKeys::parse(text).map_err(|source| SecretError::Format { arn: arn.to_owned(), source })
}

/// The text of the secret `arn` (its current version): for secrets of other formats
/// (the webhook secrets), parsed by their owner.
pub async fn secret_text(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<String, SecretError> {
    let output = client.get_secret_value().secret_id(arn).send().await.map_err(|e| call_error(arn, &e))?;
    output.secret_string().map(str::to_owned).ok_or_else(|| SecretError::NotText { arn: arn.to_owned() })
}

fn call_error<E: ProvideErrorMetadata, R>(arn: &str, err: &SdkError<E, R>) -> SecretError {
    let arn = arn.to_owned();
    let reason = match err {
        // Error responses carry a code and a message, never the secret.
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            return SecretError::Service {
                arn,
                code: e.code().unwrap_or("Unknown").to_owned(),
                message: e.message().unwrap_or_default().to_owned(),
            };
        }
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(e) => match e.as_connector_error() {
            Some(c) => format!("could not reach Secrets Manager: {c}"),
            None => "could not reach Secrets Manager".to_owned(),
        },
        // Its body may be the secret itself: say nothing about it.
        SdkError::ResponseError(_) => "the response could not be read".to_owned(),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
        _ => "the call failed".to_owned(),
    };
    SecretError::Call { arn, reason }
}
