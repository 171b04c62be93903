//! `herald enqueue` puts requests on real SQS queues (moto), ten per batch, exactly as
//! written: all on one queue, each on its channel's queue, or published to the stack's
//! entry topic, which routes them; and refuses, before sending anything, what it cannot
//! route.

use herald_e2e::Sandbox;
use herald_e2e::moto::Moto;
use herald_e2e::proxy::Proxy;
use herald_e2e::template::{Overrides, Template};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_sends_every_request_in_batches() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config(&moto.endpoint).await);
    let url = sqs.create_queue().queue_name("herald-email").send().await.unwrap().queue_url().unwrap().to_owned();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_herald"));
    let lines: Vec<String> = (0..23)
        .map(|i| format!(r#"{{"id":"q-{i}","channel":"email","category":"transactional","recipient":{{"id":"u","email":"a@example.com"}},"template":"one-time-code","data":{{"code":"{i}"}}}}"#))
        .collect();
    let file = sb.write("requests.jsonl", &(lines.join("\n") + "\n"));
    let mut cmd = sb.command(&["enqueue", file.to_str().unwrap(), "--queue-url", &url]);
    for (k, v) in moto.env(&proxy.endpoint()) {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("23 request(s) enqueued"));
    assert_eq!(proxy.count("sqs", "SendMessageBatch"), 3, "23 requests = 3 batches");
    let mut bodies = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(&url).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            bodies.push(m.body().unwrap().to_owned());
            sqs.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    bodies.sort();
    let mut expected = lines.clone();
    expected.sort();
    assert_eq!(bodies, expected);

    let missing = sb.run(&["enqueue", "examples/requests.jsonl"]);
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("--queue-url"), "{}", missing.stderr);
}

/// A request for `channel` (none when `None`), one JSON line.
fn request(id: &str, channel: Option<&str>) -> String {
    let mut r = serde_json::json!({"id": id, "category": "transactional", "recipient": {"id": "u"}, "template": "one-time-code", "data": {"code": "1"}});
    match channel {
        Some("email") => r["recipient"]["email"] = "a@example.com".into(),
        Some("sms") => r["recipient"]["phone"] = "+14155550123".into(),
        _ => {}
    }
    if let Some(c) = channel {
        r["channel"] = c.into();
    }
    r.to_string()
}

/// Every body on a queue, sorted, deleting them.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            bodies.push(m.body().unwrap().to_owned());
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
    bodies.sort();
    bodies
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Runs `herald` with `args` against `endpoint` (moto or a proxy in front of it).
async fn run(sb: &Sandbox, moto: &Moto, endpoint: &str, args: &[&str]) -> herald_e2e::Run {
    let mut cmd = sb.command(args);
    for (k, v) in moto.env(endpoint) {
        cmd.env(k, v);
    }
    for k in herald_e2e::moto::UNSET_ENV {
        cmd.env_remove(k);
    }
    cmd.env_remove("HERALD_QUEUE_URL").env_remove("HERALD_ENTRY_TOPIC_ARN");
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    herald_e2e::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_puts_each_request_on_its_channel_queue() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config(&moto.endpoint).await);
    let mut urls = Vec::new();
    for name in ["herald-email", "herald-sms"] {
        urls.push(sqs.create_queue().queue_name(name).send().await.unwrap().queue_url().unwrap().to_owned());
    }
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_herald"));
    // Interleaved: 12 email requests (two batches) and 3 SMS (one).
    let lines: Vec<String> =
        (0..15).map(|i| request(&format!("q-{i}"), Some(if i % 5 == 4 { "sms" } else { "email" }))).collect();
    let file = sb.write("requests.jsonl", &(lines.join("\n") + "\n"));
    let (email, sms) = (format!("email={}", urls[0]), format!("sms={}", urls[1]));
    let out =
        run(&sb, &moto, &proxy.endpoint(), &["enqueue", file.to_str().unwrap(), "--queue", &email, "--queue", &sms])
            .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("15 request(s) enqueued (email 12, sms 3)"), "{}", out.stderr);
    assert_eq!(proxy.count("sqs", "SendMessageBatch"), 3);
    let by_channel =
        |c: &str| sorted(lines.iter().filter(|l| l.contains(&format!(r#""channel":"{c}""#))).cloned().collect());
    assert_eq!(drain(&sqs, &urls[0]).await, by_channel("email"));
    assert_eq!(drain(&sqs, &urls[1]).await, by_channel("sms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_publishes_each_request_to_the_entry_topic() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    // The stack's own topic, subscriptions and filters.
    let t = Template::repo().with_parameters(&[("CreateEntryTopic", "true")]);
    let deployed = t.create_resources(&sdk, &Overrides::default()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_herald"));
    let (email, sms) = (request("t-email", Some("email")), request("t-sms", Some("sms")));
    let file = sb.write("requests.jsonl", &format!("{email}\n{sms}\n"));
    let topic = deployed.topic_arn("EntryTopic");
    let out = run(&sb, &moto, &proxy.endpoint(), &["enqueue", file.to_str().unwrap(), "--topic-arn", topic]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("2 request(s) published to the entry topic (email 1, sms 1)"), "{}", out.stderr);
    assert_eq!(proxy.count("sns", "Publish"), 2);
    assert_eq!(drain(&sqs, deployed.queue_url("EmailRequestQueue")).await, [email]);
    assert_eq!(drain(&sqs, deployed.queue_url("SmsRequestQueue")).await, [sms]);
    assert!(drain(&sqs, deployed.queue_url("UnroutedRequestQueue")).await.is_empty());
}

/// A request that cannot be routed stops the command before anything is sent, naming
/// where it is and why, and never what it holds (a phone number here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_refuses_what_it_cannot_route_and_sends_nothing() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs.create_queue().queue_name("herald-email").send().await.unwrap().queue_url().unwrap().to_owned();
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns.create_topic().name("entry").send().await.unwrap().topic_arn().unwrap().to_owned();
    let sb = Sandbox::new(env!("CARGO_BIN_EXE_herald"));
    let lines = [
        request("ok-1", Some("email")),
        request("no-channel", None).replace(r#""id":"u""#, r#""id":"u","phone":"+14155550123""#),
        "phone +14155550123, not JSON".to_owned(),
        request("sms-1", Some("sms")),
        r#"{"channel": "+14155550123"}"#.to_owned(),
        r#"["+14155550123"]"#.to_owned(),
        request("push-1", Some("push")),
    ];
    let file = sb.write("requests.jsonl", &(lines.join("\n") + "\n"));
    let file = file.to_str().unwrap();
    let email = format!("email={url}");

    let out = run(&sb, &moto, &proxy.endpoint(), &["enqueue", file, "--queue", &email]).await;
    assert_eq!(out.code, 4, "{}", out.stderr);
    for expected in [
        "requests.jsonl:2: no channel",
        "requests.jsonl:3: not valid JSON",
        "requests.jsonl:4: channel sms has no queue (--queue sms=URL)",
        "requests.jsonl:5: the channel is not one of email, sms, push",
        "requests.jsonl:6: expected a JSON object",
        "requests.jsonl:7: channel push has no queue (--queue push=URL)",
        "6 of 7 request(s) cannot be routed: nothing was sent",
    ] {
        assert!(out.stderr.contains(expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("requests.jsonl:1"), "{}", out.stderr);

    // Through the topic every channel is routable (the entry topic's subscriptions route
    // email, sms and push): only the malformed lines are refused.
    let topic_out = run(&sb, &moto, &proxy.endpoint(), &["enqueue", file, "--topic-arn", &topic]).await;
    assert_eq!(topic_out.code, 4, "{}", topic_out.stderr);
    assert!(topic_out.stderr.contains("4 of 7 request(s) cannot be routed"), "{}", topic_out.stderr);
    assert!(!topic_out.stderr.contains("requests.jsonl:4"), "{}", topic_out.stderr);
    assert!(!topic_out.stderr.contains("requests.jsonl:7"), "{}", topic_out.stderr);

    for stderr in [&out.stderr, &topic_out.stderr] {
        assert!(!stderr.contains("555"), "a phone number was echoed:\n{stderr}");
    }
    assert_eq!(proxy.count("sqs", "SendMessageBatch") + proxy.count("sns", "Publish"), 0, "nothing is sent");
    assert!(drain(&sqs, &url).await.is_empty());

    // One destination kind at a time, and each channel once.
    let both = sb.run(&["enqueue", file, "--queue-url", &url, "--topic-arn", &topic]);
    assert_ne!(both.code, 0);
    assert!(both.stderr.contains("cannot be used with"), "{}", both.stderr);
    let twice = run(&sb, &moto, &proxy.endpoint(), &["enqueue", file, "--queue", &email, "--queue", &email]).await;
    assert_ne!(twice.code, 0);
    assert!(twice.stderr.contains("--queue email=... is given twice"), "{}", twice.stderr);
    let bad = sb.run(&["enqueue", file, "--queue", "fax=https://q"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("not a channel"), "{}", bad.stderr);

    // An old HERALD_QUEUE_URL export does not stand in the way of an explicit destination.
    let mut cmd = sb.command(&["enqueue", file, "--queue", &email]);
    for (k, v) in moto.env(&proxy.endpoint()) {
        cmd.env(k, v);
    }
    cmd.env("HERALD_QUEUE_URL", &url);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be routed"));
    let none = sb.run(&["enqueue", file]);
    assert_ne!(none.code, 0);
    assert!(none.stderr.contains("no destination"), "{}", none.stderr);
}
