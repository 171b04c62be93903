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
}

impl SendError {
    /// `code` is short and machine-readable (`Throttling`, `MessageRejected`, `io`);
    /// it ends up in the receipt reason as `provider:<code>`.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError { retry: Retry::Transient, code: code.into(), message: message.into() }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError { retry: Retry::Permanent, code: code.into(), message: message.into() }
    }

    pub fn unknown_outcome(code: impl Into<String>, message: impl Into<String>) -> Self {
        SendError { retry: Retry::UnknownOutcome, code: code.into(), message: message.into() }
    }

    pub fn is_transient(&self) -> bool {
        self.retry == Retry::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
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
