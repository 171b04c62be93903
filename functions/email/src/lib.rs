//! The email function's configuration, as a library so that tests can check the
//! deployment template (`infra/template.yaml`) against it. The binary is `main.rs`.

pub mod config;

/// The AWS adapters (modules of `herald::adapters::aws`) this function wires up in
/// `main.rs`: its IAM role must allow every call they make (`herald::adapters::aws::AWS_CALLS`).
pub const AWS_ADAPTERS: &[&str] = &["dynamo", "secrets", "ses", "sqs"];
