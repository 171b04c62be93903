//! The email function: SES v2 behind herald's entry point. Configuration comes from the
//! environment (see README); the unsubscribe key ring from Secrets Manager at cold start.

use std::sync::Arc;

use herald::adapters::aws::SesSender;
use herald::pipeline::Senders;
use herald_email::{FUNCTION, config};
use herald_lambda::Wired;

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    herald_lambda::run(&FUNCTION, |cx| async move {
        anyhow::ensure!(cx.settings.has_email(), "the configuration has no [email] section (sender, unsubscribe URL)");
        let arn = config::unsubscribe_secret_arn()?;
        // Before the first event: without its keys the function must not start at all.
        let keys = config::unsubscribe_keys(&aws_sdk_secretsmanager::Client::new(&cx.sdk), &arn).await?;
        let ses = aws_sdk_sesv2::Client::new(&cx.provider_sdk);
        let sender = SesSender::new(ses, config::optional(config::SES_CONFIGURATION_SET));
        Ok(Wired::new(Senders::email(Arc::new(sender)), cx.settings.with_unsubscribe_keys(keys)))
    })
    .await
}
