use std::fmt;

/// What a failed send proves. Decided once, where the failure happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Nothing was sent and the same request may succeed later: throttling, a
    /// connection that never opened, an account-level pause.
    Transient,
    /// Bad address, rejected content, unknown sender: it never will.
    Permanent,
    /// The request may have reached the provider and been acted on: a timeout after
    /// it was written, a connection lost mid-answer, a 5xx, an answer we cannot read.
    /// Retrying may send twice; the category's delivery guarantee decides.
    UnknownOutcome,
}

/// A provider's refusal or a transport failure, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    retry: Retry,
    code: String,
    message: String,
    /// The recipient opted out at the provider (an SMS `STOP`): permanent, and it ends
    /// the request `unsubscribed`, not `failed`.
    opted_out: bool,
    /// The provider says the push target is gone for good (FCM `UNREGISTERED`, APNs
    /// `Unregistered`, Web Push 410, a disabled SNS endpoint): permanent, and the target
    /// is to be suppressed. With the instant the provider says it became invalid.
    token_invalid: Option<TokenInvalid>,
    /// A transient refusal that said when to come back (HTTP `Retry-After`).
    retry_after: Option<std::time::Duration>,
}

/// A push target the provider reported invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenInvalid {
    /// When the provider says the token stopped being valid (APNs 410's `timestamp`).
    pub since: Option<jiff::Timestamp>,
}

impl SendError {
    fn new(retry: Retry, code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError {
            retry,
            code: code.into(),
            message: message.into(),
            opted_out: false,
            token_invalid: None,
            retry_after: None,
        }
    }

    /// `code` is short and machine-readable (`Throttling`, `MessageRejected`, `io`);
    /// it ends up in the receipt reason as `provider:<code>`.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Retry::Transient, code, message)
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Retry::Permanent, code, message)
    }

    pub fn unknown_outcome(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(Retry::UnknownOutcome, code, message)
    }

    /// The provider refused because the recipient opted out of messages from this sender
    /// (SNS: the number is on the account's opt-out list). Nothing was sent. Its code is
    /// `opted_out`; the message, like every other, must not carry the address.
    pub fn opted_out(message: impl Into<String>) -> Self {
        SendError { opted_out: true, ..Self::new(Retry::Permanent, "opted_out", message) }
    }

    /// The provider refused because the push target is gone or was never valid (see
    /// [`TokenInvalid`]). Permanent; the message, like every other, must not carry the token.
    pub fn token_invalid(code: impl Into<String>, message: impl Into<String>, since: Option<jiff::Timestamp>) -> Self {
        SendError { token_invalid: Some(TokenInvalid { since }), ..Self::new(Retry::Permanent, code, message) }
    }

    /// The provider asked not to be called again before `delay` (429, 503 with
    /// `Retry-After`): the retry is scheduled no sooner.
    pub fn with_retry_after(mut self, delay: Option<std::time::Duration>) -> Self {
        self.retry_after = delay;
        self
    }

    /// See [`SendError::with_retry_after`].
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after
    }

    /// The push target is invalid (see [`SendError::token_invalid`]).
    pub fn is_token_invalid(&self) -> Option<TokenInvalid> {
        self.token_invalid
    }

    pub fn is_transient(&self) -> bool {
        self.retry == Retry::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
    }

    /// The recipient opted out at the provider (see [`SendError::opted_out`]).
    pub fn is_opted_out(&self) -> bool {
        self.opted_out
    }

    /// The provider may have sent the message (see [`Retry::UnknownOutcome`]).
    pub fn is_unknown_outcome(&self) -> bool {
        self.retry == Retry::UnknownOutcome
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.retry {
            Retry::Transient => "transient",
            Retry::Permanent => "permanent",
            Retry::UnknownOutcome => "unknown-outcome",
        };
        write!(f, "{kind} send failure {}: {}", self.code, self.message)
    }
}

impl std::error::Error for SendError {}

/// The state store or scheduler could not answer. Always worth a retry: the
/// request has not been decided yet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state store: {message}")]
pub struct StoreError {
    message: String,
}

impl StoreError {
    pub fn new(message: impl Into<String>) -> Self {
        StoreError { message: message.into() }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opt_out_is_permanent_and_says_so() {
        let e = SendError::opted_out("the number opted out");
        assert!(e.is_permanent() && e.is_opted_out());
        assert!(!e.is_transient() && !e.is_unknown_outcome());
        assert_eq!(e.code(), "opted_out");
        assert!(!SendError::permanent("MessageRejected", "no").is_opted_out());
    }
}
