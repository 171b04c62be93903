//! The deployed half of `scripts/bench.sh`, on moto: cold starts beside a bare
//! `lambda_runtime` function, and end to end through the recording proxy the AWS requests
//! and DynamoDB write units per sent message, each function's peak memory and its binary
//! size, for the three channel functions. The push function sends through FCM, a real HTTP
//! server on loopback (`herald_e2e::push_providers::FcmStandIn`) that checks every grant's
//! signature. Prints one JSON object per line for scripts/bench_table.py.
//!
//! usage: bench_e2e <bare runtime> <herald-email> <herald-sms> <herald-push> [runs]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use herald_e2e::lambda::{FunctionProcess, RuntimeApi};
use herald_e2e::moto::Moto;
use herald_e2e::push_providers::{FcmStandIn, test_rsa_key, test_service_account_json};
use herald_e2e::stack::{Options, Spec, Stack, by_request};
use herald_e2e::template::{Overrides, Template};
use serde_json::{Value, json};

const CONFIG: &str = r#"
quiet_hours = "off"

[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={token}"

[[caps]]
category = "marketing"
limit = 3
window = "7d"
"#;

const FCM_PROJECT: &str = "acme-shop";
const FCM_CLIENT_EMAIL: &str = "herald@acme-shop.iam.gserviceaccount.com";

/// FCM on loopback, and the push secret whose service account signs grants for it.
async fn fcm() -> (FcmStandIn, String) {
    use ring::signature::KeyPair as _;
    let fcm = FcmStandIn::start(FCM_PROJECT, FCM_CLIENT_EMAIL, test_rsa_key().public_key().as_ref().to_vec()).await;
    let account: Value =
        serde_json::from_str(&test_service_account_json(FCM_PROJECT, FCM_CLIENT_EMAIL, &fcm.token_url()))
            .expect("service account");
    let secret = json!({ "fcm": account }).to_string();
    (fcm, secret)
}

/// What the push function needs beside the template's environment to reach FCM on
/// loopback (the SSRF guard refuses loopback unless told).
fn push_env(fcm: &FcmStandIn) -> [(String, String); 2] {
    [("HERALD_FCM_URL".to_owned(), fcm.base_url()), ("HERALD_PUSH_ALLOW_NETWORKS".to_owned(), "127.0.0.0/8".to_owned())]
}

/// Messages sent per end-to-end run.
const SENDS: usize = 60;

fn emit(metric: &str, unit: &str, samples: &[f64]) {
    println!("{}", json!({"metric": metric, "unit": unit, "samples": samples}));
}

fn emit_value(metric: &str, unit: &str, value: f64) {
    println!("{}", json!({"metric": metric, "unit": unit, "value": value}));
}

/// Milliseconds from process start to the first `/next`, `runs` times.
async fn cold_starts(bin: &std::path::Path, env: &[(String, String)], runs: usize) -> Vec<f64> {
    let logs = tempfile::tempdir().expect("temp dir");
    let mut times = Vec::new();
    for _ in 0..runs {
        let runtime = RuntimeApi::start().await;
        let process = FunctionProcess::spawn(bin, &runtime, env, logs.path());
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = loop {
            if let Some(t) = runtime.next_calls().first() {
                break *t;
            }
            assert!(Instant::now() < deadline, "{}: no /next within 10 s:\n{}", bin.display(), process.logs());
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        times.push(first.duration_since(process.started).as_secs_f64() * 1e3);
    }
    times
}

/// Peak resident memory of a process, in MB (VmHWM).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// DynamoDB's item size: attribute names plus values (strings and numbers as text,
/// maps and lists with their 3-byte overhead plus 1 per element).
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::M(m) => 3 + m.iter().map(|(k, v)| k.len() + value(v) + 1).sum::<usize>(),
            AttributeValue::L(l) => 3 + l.iter().map(|v| value(v) + 1).sum::<usize>(),
            AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// One end-to-end run: `bodies` through `function`, then what it cost per sent message.
async fn run(stack: &Stack, function: &str, label: &str, bodies: Vec<String>) {
    stack.proxy.clear();
    let n = bodies.len();
    stack.enqueue(function, &bodies).await;
    stack.drain(function, 1).await;
    let receipts = by_request(&stack.receipts().await);
    let sent = receipts.values().filter(|r| r.iter().any(|x| x["status"] == "sent")).count();
    assert_eq!(sent, n, "{label}: {sent} of {n} sent; receipts: {receipts:?}");
    let records = stack.proxy.records();
    let mut by_service: BTreeMap<String, usize> = BTreeMap::new();
    let mut operations: BTreeMap<String, usize> = BTreeMap::new();
    let (mut wcu, mut rcu) = (0.0, 0.0);
    for r in &records {
        *by_service.entry(r.service.clone()).or_default() += 1;
        *operations.entry(format!("{} {}", r.service, r.operation)).or_default() += 1;
        if r.service == "dynamodb" {
            wcu += r.write_units();
            rcu += r.read_units();
        }
    }
    let per = |x: f64| x / sent as f64;
    emit_value(&format!("aws.{label}.requests_per_message"), "req", per(records.len() as f64));
    for (service, count) in &by_service {
        emit_value(&format!("aws.{label}.{service}_per_message"), "req", per(*count as f64));
    }
    emit_value(&format!("aws.{label}.wcu_per_message"), "WCU", per(wcu));
    emit_value(&format!("aws.{label}.rcu_per_message"), "RCU", per(rcu));
    println!(
        "{}",
        json!({"metric": format!("aws.{label}.operations"), "unit": "calls", "detail": operations, "sent": sent})
    );
}

/// The largest item in the table and the kind of item it is (its key's prefix).
async fn largest_item(stack: &Stack) -> (usize, String) {
    let ddb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let mut largest = (0, String::new());
    let mut start = None;
    loop {
        let page = ddb.scan().table_name(&stack.table).set_exclusive_start_key(start).send().await.expect("Scan");
        for item in page.items() {
            let size = item_size(item);
            if size > largest.0 {
                let kind = match item.get("pk") {
                    Some(AttributeValue::S(pk)) => pk.split('#').next().unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                largest = (size, kind);
            }
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            return largest;
        }
    }
}

fn email(i: usize, marketing: bool) -> String {
    let (template, category, data) = if marketing {
        ("newsletter", "marketing", include_str!("../../examples/data/newsletter.json"))
    } else {
        ("order-confirmation", "transactional", include_str!("../../examples/data/order.json"))
    };
    let data: Value = serde_json::from_str(data).expect("example data");
    json!({"id": format!("bench-{category}-{i}"), "channel": "email", "category": category,
        "tenant": "acme", "recipient": {"id": format!("cust-{i}"), "email": format!("reader{i}@example.com")},
        "template": template, "data": data})
    .to_string()
}

fn sms(i: usize) -> String {
    json!({"id": format!("bench-sms-{i}"), "channel": "sms", "category": "transactional", "tenant": "acme",
        "recipient": {"id": format!("cust-{i}"), "phone": format!("+1415555{:04}", 1000 + i)},
        "template": "one-time-code", "data": {"code": format!("{:06}", 100000 + i)}})
    .to_string()
}

fn push(i: usize) -> String {
    let data: Value = serde_json::from_str(include_str!("../../templates/shipping-update/fixtures/default.json"))
        .expect("shipping-update fixture");
    json!({"id": format!("bench-push-{i}"), "channel": "push", "category": "transactional", "tenant": "acme",
        "recipient": {"id": format!("cust-{i}"),
            "push": {"platform": "fcm", "token": format!("fcm-registration-token-{i:04}-{}", "x".repeat(120))}},
        "template": "shipping-update", "data": data})
    .to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let usage = "usage: bench_e2e <bare runtime> <herald-email> <herald-sms> <herald-push> [runs]";
    let bare = PathBuf::from(args.next().expect(usage));
    let email_bin = PathBuf::from(args.next().expect(usage));
    let sms_bin = PathBuf::from(args.next().expect(usage));
    let push_bin = PathBuf::from(args.next().expect(usage));
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(30);
    for (name, bin) in [("bare", &bare), ("email", &email_bin), ("sms", &sms_bin), ("push", &push_bin)] {
        let bytes = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        emit_value(&format!("binary.{name}.size"), "MB", bytes as f64 / 1e6);
    }

    // Cold starts, in turns, against a deployed table, queues and secrets.
    {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config(&moto.endpoint).await;
        let template = Template::repo();
        let deployed = template.create_resources(&sdk, &Overrides { visibility_timeout: Some(30) }).await;
        // The push function reads its secret at start: FCM credentials, as deployed.
        let (fcm, push_secret) = fcm().await;
        deployed.put_secret(&sdk, "PushSecret", &push_secret).await;
        let env_of = |id: &str| {
            let mut env = moto.env(&moto.endpoint);
            env.extend(template.resolved_env(id, &deployed));
            env.push(("HERALD_CONFIG_TOML".to_owned(), CONFIG.to_owned()));
            env
        };
        let (email_env, sms_env) = (env_of("EmailFunction"), env_of("SmsFunction"));
        let mut push_env_all = env_of("PushFunction");
        push_env_all.extend(push_env(&fcm));
        let (mut b, mut e, mut s, mut p) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Three turns of a third each (at least one run per turn).
        let per_turn = runs.div_ceil(3);
        for _ in 0..3 {
            b.extend(cold_starts(&bare, &[], per_turn).await);
            e.extend(cold_starts(&email_bin, &email_env, per_turn).await);
            s.extend(cold_starts(&sms_bin, &sms_env, per_turn).await);
            p.extend(cold_starts(&push_bin, &push_env_all, per_turn).await);
        }
        emit("cold_start.bare", "ms", &b);
        emit("cold_start.email", "ms", &e);
        emit("cold_start.sms", "ms", &s);
        emit("cold_start.push", "ms", &p);
    }

    // End to end: every AWS request the functions make goes through the proxy.
    // The invocation deadline fits a batch of calls at this timeout, as the template's does.
    let aws_timeout_ms = 4_000;
    let calls = herald::pipeline::CALLS_PER_RECORD
        + herald_sms::FUNCTION.extra_calls_per_record.max(herald_push::FUNCTION.extra_calls_per_record)
        + herald::pipeline::CALLS_PER_EMIT;
    let function_timeout = Duration::from_millis(aws_timeout_ms * u64::from(calls)) + Duration::from_secs(4);
    // Visibility above the longest batch, or SQS would deliver a message still being processed.
    let visibility = u32::try_from(function_timeout.as_secs()).unwrap_or(u32::MAX).saturating_add(10);
    let options = Options { config: CONFIG.to_owned(), visibility, aws_timeout_ms, function_timeout };
    let (fcm, push_secret) = fcm().await;
    let mut push_spec = Spec::new("PushFunction", push_bin.clone());
    for (name, value) in push_env(&fcm) {
        push_spec = push_spec.env(&name, value);
    }
    let specs =
        vec![Spec::new("EmailFunction", email_bin.clone()), Spec::new("SmsFunction", sms_bin.clone()), push_spec];
    let stack = Stack::start_with_secrets(specs, &options, &[("PushSecret", &push_secret)]).await;
    stack.moto.verify_email_identity("acme.example").await;
    run(&stack, "EmailFunction", "email.transactional", (0..SENDS).map(|i| email(i, false)).collect()).await;
    run(&stack, "EmailFunction", "email.marketing", (0..SENDS).map(|i| email(i, true)).collect()).await;
    run(&stack, "SmsFunction", "sms.transactional", (0..SENDS).map(sms).collect()).await;
    run(&stack, "PushFunction", "push.transactional", (0..SENDS).map(push).collect()).await;
    // The provider's side, which the proxy does not see: one FCM send per message, and
    // the OAuth grant exchanged once per function instance.
    emit_value("fcm.push.sends_per_message", "req", fcm.messages().len() as f64 / SENDS as f64);
    emit_value("fcm.push.token_fetches", "req", fcm.token_fetches() as f64);
    let (size, kind) = largest_item(&stack).await;
    println!("{}", json!({"metric": "dynamodb.largest_item", "unit": "bytes", "value": size, "detail": kind}));
    for (label, id) in [("email", "EmailFunction"), ("sms", "SmsFunction"), ("push", "PushFunction")] {
        if let Some(mb) = stack.function(id).processes.first().and_then(|p| peak_rss_mb(p.pid())) {
            emit_value(&format!("rss.{label}.peak"), "MB", mb);
        }
    }
}
