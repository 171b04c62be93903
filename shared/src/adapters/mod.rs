//! Adapters: the ports implemented against real things.
//! `local/` is the embedded default (no AWS account): SQLite state + file outbox.

#[cfg(feature = "aws")]
pub mod aws;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "local")]
pub mod local;
#[cfg(feature = "push")]
pub mod push;
