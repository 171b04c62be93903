use std::fmt;

/// Whether retrying can help. Decided once, where the failure happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Throttling, 5xx, timeouts: the same request may succeed later.
    Transient,
    /// Bad address, rejected content, unknown sender: it never will.
    Permanent,
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

    pub fn is_transient(&self) -> bool {
        self.retry == Retry::Transient
    }

    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Permanent
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
        let kind = if self.is_transient() { "transient" } else { "permanent" };
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
