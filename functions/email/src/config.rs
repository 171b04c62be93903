//! The email function's own configuration: its SES settings and the unsubscribe key
//! ring it signs links with. The variables every function reads are in
//! `herald_lambda::env`, re-exported here.

use anyhow::{Context as _, Result};
use herald::receipt::unsubscribe::UnsubscribeKeys;
pub use herald_lambda::env::*;

/// The ARN of the Secrets Manager secret holding the unsubscribe key ring, read once at
/// cold start. The key itself is never in the environment.
pub const UNSUBSCRIBE_SECRET_ARN: &str = "HERALD_UNSUBSCRIBE_SECRET_ARN";
pub const SES_CONFIGURATION_SET: &str = "HERALD_SES_CONFIGURATION_SET";

/// The variables only the email function reads.
pub const EMAIL_ENV_VARS: &[(&str, Need)] =
    &[(UNSUBSCRIBE_SECRET_ARN, Need::Required), (SES_CONFIGURATION_SET, Need::Optional)];

/// The ARN of the key ring, checked before any network call.
pub fn unsubscribe_secret_arn() -> Result<String> {
    let arn = required(UNSUBSCRIBE_SECRET_ARN)?;
    if !is_secret_arn(&arn) {
        // Not echoed: a key pasted here by mistake must not reach the logs.
        anyhow::bail!("{UNSUBSCRIBE_SECRET_ARN} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:...)");
    }
    Ok(arn)
}

/// The unsubscribe key ring, fetched from Secrets Manager (at cold start).
pub async fn unsubscribe_keys(client: &aws_sdk_secretsmanager::Client, arn: &str) -> Result<UnsubscribeKeys> {
    herald::adapters::aws::unsubscribe_keys(client, arn)
        .await
        .with_context(|| format!("cannot read the unsubscribe key ring named by {UNSUBSCRIBE_SECRET_ARN}"))
}

/// `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`.
fn is_secret_arn(value: &str) -> bool {
    let parts: Vec<&str> = value.splitn(7, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "secretsmanager", region, account, "secret", name]
        if partition.starts_with("aws") && !region.is_empty() && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_the_function_reads_is_listed() {
        let sources = [("main.rs", include_str!("main.rs")), ("config.rs", include_str!("config.rs"))];
        assert_eq!(unlisted_variables(&sources, &crate::FUNCTION.env_vars()), Vec::<String>::new());
        assert!(crate::FUNCTION.env_vars().contains(&(UNSUBSCRIBE_SECRET_ARN, Need::Required)));
    }

    #[test]
    fn secret_arns() {
        for arn in [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:herald-unsubscribe-AbCdEf",
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:path/with:colon-x1Y2z3",
        ] {
            assert!(is_secret_arn(arn), "{arn}");
        }
        for not in [
            "",
            "herald-unsubscribe",
            "dev-only-unsubscribe-secret-change-me",
            "arn:aws:s3:::bucket",
            "arn:aws:secretsmanager:us-east-1:123:secret:x",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:",
            "arn:aws:ssm:us-east-1:123456789012:parameter/x",
        ] {
            assert!(!is_secret_arn(not), "{not}");
        }
    }
}
