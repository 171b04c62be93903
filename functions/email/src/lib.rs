//! The email function's configuration, as a library so that tests can check the
//! deployment template (`infra/template.yaml`) against it. The binary is `main.rs`.

pub mod config;

use herald_lambda::Function;

/// The email function: SQS delivery requests -> guard rails (DynamoDB) -> SES v2 ->
/// receipts (SQS). Its IAM role must allow the calls of `aws_adapters`
/// (`herald::adapters::aws::AWS_CALLS`).
pub const FUNCTION: Function = Function {
    name: "email",
    env_vars: config::EMAIL_ENV_VARS,
    aws_adapters: &["dynamo", "secrets", "ses", "sqs"],
    extra_calls_per_record: 0,
};
