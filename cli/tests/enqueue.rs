//! `herald enqueue` puts requests on a real SQS queue (moto), ten per batch,
//! exactly as written.

use herald_e2e::Sandbox;
use herald_e2e::moto::Moto;
use herald_e2e::proxy::Proxy;

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
