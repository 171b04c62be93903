//! Cold start of a function binary: time from process start to its first
//! `/next` call against the Runtime API emulator (clients built, templates
//! compiled, the unsubscribe key ring read from Secrets Manager, here moto on
//! loopback). Usage: `cold_start <binary> [runs]`. Used by scripts/bench.sh.

use std::time::Duration;

use herald_e2e::lambda::{FunctionProcess, RuntimeApi};
use herald_e2e::moto::Moto;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let bin = std::path::PathBuf::from(args.next().expect("usage: cold_start <function binary> [runs]"));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(20);
    let logs = tempfile::tempdir().expect("temp dir");
    // The function reads its key ring at cold start: from moto, as it would from AWS.
    let moto = Moto::start().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&moto.endpoint).await);
    let secret = secrets
        .create_secret()
        .name("herald-unsubscribe")
        .secret_string(r#"{"primary": "k1", "k1": "bench-unsubscribe-key-0123456789"}"#)
        .send()
        .await
        .expect("CreateSecret in moto");
    let arn = secret.arn().expect("secret ARN").to_owned();
    let mut env = moto.env(&moto.endpoint);
    env.extend(
        [
            ("HERALD_TABLE", "herald-state"),
            ("HERALD_REQUEST_QUEUE_URL", "http://127.0.0.1:9/000000000000/herald-email"),
            ("HERALD_RECEIPTS_QUEUE_URL", "http://127.0.0.1:9/000000000000/herald-receipts"),
            ("HERALD_UNSUBSCRIBE_SECRET_ARN", arn.as_str()),
            (
                "HERALD_CONFIG_TOML",
                "[email]\nfrom = \"Acme <hello@acme.example>\"\nunsubscribe_url = \"https://acme.example/u?token={token}\"\n\n[[caps]]\ncategory = \"marketing\"\nlimit = 3\nwindow = \"7d\"\n",
            ),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let runtime = RuntimeApi::start().await;
        let process = FunctionProcess::spawn(&bin, &runtime, &env, logs.path());
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let first = loop {
            if let Some(t) = runtime.next_calls().first() {
                break *t;
            }
            assert!(std::time::Instant::now() < deadline, "no /next call within 10 s:\n{}", process.logs());
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        times.push(first.duration_since(process.started));
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "cold start to first /next over {runs} runs: min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(times[0]),
        ms(times[runs / 2]),
        ms(times[(runs * 9) / 10]),
        ms(times[runs - 1])
    );
}
