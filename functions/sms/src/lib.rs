//! The SMS function's configuration, as a library so that tests can check the
//! deployment template (`infra/template.yaml`) against it. The binary is `main.rs`.

use herald_lambda::{Function, Need};

/// `true` (the default): before the first send to a number in an invocation, ask SNS
/// whether it opted out (`CheckIfPhoneNumberIsOptedOut`); an opted-out number ends
/// `unsubscribed` (`opted_out`). `false`: SNS accepts a text to a number that replied
/// STOP and drops it, so the receipt says `sent`; only herald's own lists apply.
pub const SNS_OPT_OUT_CHECK: &str = "HERALD_SNS_OPT_OUT_CHECK";

/// Whether the opt-out check runs when the variable is absent.
pub const SNS_OPT_OUT_CHECK_DEFAULT: bool = true;

/// The SMS function: SQS delivery requests -> guard rails (DynamoDB) -> SNS `Publish`
/// to the number -> receipts (SQS). It signs no links, so it reads no secret.
pub const FUNCTION: Function = Function {
    name: "sms",
    env_vars: &[(SNS_OPT_OUT_CHECK, Need::Optional)],
    aws_adapters: &["dynamo", "sns", "sqs"],
    // The opt-out check, when on.
    extra_calls_per_record: 1,
};

#[cfg(test)]
mod tests {
    use herald_lambda::env::unlisted_variables;

    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [("main.rs", include_str!("main.rs")), ("lib.rs", include_str!("lib.rs"))];
        assert_eq!(unlisted_variables(&sources, &super::FUNCTION.env_vars()), Vec::<String>::new());
    }
}
