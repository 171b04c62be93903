//! Adapters: the ports implemented against real things.
//! `local/` is the embedded default (no AWS account): SQLite state + file outbox.

pub mod aws;
pub mod local;
