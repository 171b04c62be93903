//! The SMS function: SNS behind herald's entry point. Configuration comes from the
//! environment and herald.toml's `[sms]` section (see README).

use std::sync::Arc;

use herald::adapters::aws::SnsSmsSender;
use herald::pipeline::Senders;
use herald_lambda::{Wired, env};
use herald_sms::{FUNCTION, SNS_OPT_OUT_CHECK, SNS_OPT_OUT_CHECK_DEFAULT};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    // SAFETY: first in `main`, on a current-thread runtime: no other thread yet.
    unsafe { herald_lambda::init_process() };
    herald_lambda::run(&FUNCTION, |cx| async move {
        let check_opt_out = env::flag(SNS_OPT_OUT_CHECK, SNS_OPT_OUT_CHECK_DEFAULT)?;
        // Publish makes one attempt (a retry could text twice); the opt-out check is a
        // question, asked with the SDK's retries, each call bounded as any other.
        let checker = check_opt_out.then(|| aws_sdk_sns::Client::new(&cx.sdk));
        let sender = Arc::new(SnsSmsSender::new(aws_sdk_sns::Client::new(&cx.provider_sdk), checker));
        let per_invocation = sender.clone();
        Ok(Wired::new(Senders::sms(sender), cx.settings.without_unsubscribe_keys())
            .on_invocation(move || per_invocation.new_invocation())
            .extra_calls_per_record(u32::from(check_opt_out)))
    })
    .await
}
