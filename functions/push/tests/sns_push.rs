//! SNS mobile push end to end: the real binary, driven through the Lambda Runtime API
//! emulator, publishing to platform endpoints created in moto (GCM and APNS_SANDBOX
//! applications), through the recording proxy. moto keeps the message each endpoint
//! received but drops message attributes, so those are read at the proxy.

use std::path::PathBuf;
use std::time::Duration;

use herald_e2e::proxy::{form_fields, sns_message_attributes, xml_text};
use herald_e2e::stack::{Options, Spec, Stack, by_request};
use serde_json::{Value, json};

const PUSH: &str = "PushFunction";
const AWS_TIMEOUT_MS: u64 = 4_000;

fn options(config: &str) -> Options {
    let calls = herald::pipeline::CALLS_PER_RECORD
        + herald_push::FUNCTION.extra_calls_per_record
        + herald::pipeline::CALLS_PER_EMIT;
    let function_timeout = Duration::from_millis(AWS_TIMEOUT_MS * u64::from(calls)) + Duration::from_secs(4);
    Options { config: config.to_owned(), visibility: 30, aws_timeout_ms: AWS_TIMEOUT_MS, function_timeout }
}

/// A template whose push parts echo the request's data.
fn templates() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("echo")).unwrap();
    std::fs::write(dir.path().join("echo/push.title.hbs"), "{{title}}").unwrap();
    std::fs::write(dir.path().join("echo/push.body.hbs"), "{{body}}").unwrap();
    std::fs::write(dir.path().join("echo/push.data.json.hbs"), r#"{"order": "{{order}}"}"#).unwrap();
    dir
}

fn request(id: &str, category: &str, endpoint_arn: &str, body: &str) -> Value {
    json!({"id": id, "channel": "push", "category": category,
           "recipient": {"id": format!("u-{id}"), "push": {"platform": "sns", "endpoint_arn": endpoint_arn}},
           "template": "echo", "data": {"title": "Order update", "body": body, "order": "A-1"}})
}

async fn endpoint(sns: &aws_sdk_sns::Client, application: &str, token: &str) -> String {
    let out = sns
        .create_platform_endpoint()
        .platform_application_arn(application)
        .token(token)
        .send()
        .await
        .expect("CreatePlatformEndpoint");
    out.endpoint_arn().expect("an endpoint ARN").to_owned()
}

async fn application(sns: &aws_sdk_sns::Client, name: &str, platform: &str) -> String {
    let out = sns
        .create_platform_application()
        .name(name)
        .platform(platform)
        .attributes("PlatformCredential", "test-credential")
        .send()
        .await
        .expect("CreatePlatformApplication");
    out.platform_application_arn().expect("an application ARN").to_owned()
}

/// The messages moto's endpoints received: (endpoint ARN, message id, message).
async fn delivered(stack: &Stack) -> Vec<(String, String, String)> {
    let data = stack.moto.data().await;
    let mut out = Vec::new();
    for endpoint in data["sns"]["PlatformEndpoint"].as_array().cloned().unwrap_or_default() {
        let arn = endpoint["arn"].as_str().unwrap_or_default().to_owned();
        for (id, message) in endpoint["messages"].as_object().cloned().unwrap_or_default() {
            out.push((arn.clone(), id, message.as_str().unwrap_or_default().to_owned()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn platform_endpoints_get_their_platform_s_payload_and_a_disabled_one_is_never_tried_again() {
    let templates = templates();
    let spec = Spec::new(PUSH, PathBuf::from(env!("CARGO_BIN_EXE_herald-push")))
        .env("HERALD_TEMPLATES", templates.path().display().to_string());
    let stack = Stack::start(vec![spec], &options("quiet_hours = \"off\"\n[push]\ncollapse = \"template\"\n")).await;
    let sns = aws_sdk_sns::Client::new(&stack.sdk);
    let android = application(&sns, "shop-android", "GCM").await;
    let ios = application(&sns, "shop-ios", "APNS_SANDBOX").await;
    let phone = endpoint(&sns, &android, "fcm-token-of-a-pixel").await;
    let iphone = endpoint(&sns, &ios, &"ab".repeat(32)).await;
    let gone = endpoint(&sns, &android, "fcm-token-of-an-uninstalled-app").await;
    sns.set_endpoint_attributes().endpoint_arn(&gone).attributes("Enabled", "false").send().await.unwrap();
    let deleted = endpoint(&sns, &android, "fcm-token-of-a-deleted-endpoint").await;
    sns.delete_endpoint().endpoint_arn(&deleted).send().await.unwrap();

    let requests = [
        request("to-android", "transactional", &phone, "Your order shipped"),
        request("to-iphone", "marketing", &iphone, "Your order shipped"),
        request("to-disabled", "transactional", &gone, "Your order shipped"),
        request("to-deleted", "transactional", &deleted, "Your order shipped"),
        request("too-large", "transactional", &phone, &"x".repeat(5000)),
    ];
    stack.enqueue(PUSH, &requests.iter().map(Value::to_string).collect::<Vec<_>>()).await;
    stack.drain(PUSH, 1).await;
    let stream = stack.receipts().await;
    let (receipts, events): (Vec<Value>, Vec<Value>) = stream.into_iter().partition(|m| m.get("status").is_some());
    let by_id = by_request(&receipts);
    let outcome = |id: &str| {
        let rs = &by_id[id];
        assert_eq!(rs.len(), 1, "{id}: {rs:?}");
        (rs[0]["status"].as_str().unwrap_or("").to_owned(), rs[0]["reason"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(outcome("to-android").0, "sent");
    assert_eq!(outcome("to-iphone").0, "sent");
    assert_eq!(outcome("to-disabled"), ("failed".into(), "provider:endpoint_disabled".into()));
    assert_eq!(outcome("to-deleted"), ("failed".into(), "provider:endpoint_not_found".into()));
    let (status, reason) = outcome("too-large");
    assert_eq!(status, "failed");
    assert!(reason.starts_with("payload_too_large:"), "{reason}");
    let bytes: usize = reason["payload_too_large:".len()..].parse().unwrap();
    assert!(bytes > 4096 && bytes < 5200, "{bytes}");

    // Each accepted Publish went to the right endpoint with the right platform key.
    let published = stack.proxy.accepted("sns", "Publish");
    assert_eq!(published.len(), 2, "only the two sendable pushes reached SNS as accepted");
    let received = delivered(&stack).await;
    assert_eq!(received.len(), 2, "{received:?}");
    for (id, arn, key) in [("to-android", &phone, "GCM"), ("to-iphone", &iphone, "APNS_SANDBOX")] {
        let message_id = by_id[id][0]["provider_message_id"].as_str().unwrap();
        let call = published
            .iter()
            .find(|r| r.upstream_body.as_ref().and_then(|b| xml_text(b, "MessageId")).as_deref() == Some(message_id))
            .expect("the Publish of a sent receipt");
        let form = form_fields(&call.body);
        assert_eq!(form["TargetArn"], *arn);
        assert_eq!(form["MessageStructure"], "json");
        let (at, _, stored) = received.iter().find(|(a, m, _)| a == arn && m == message_id).expect("moto got it");
        assert_eq!(at, arn);
        let message: Value = serde_json::from_str(stored).unwrap();
        assert_eq!(message["default"], "Your order shipped");
        let inner: Value = serde_json::from_str(message[key].as_str().expect("the platform's key")).unwrap();
        let attributes = sns_message_attributes(&call.body);
        if key == "GCM" {
            let m = &inner["fcmV1Message"]["message"];
            assert_eq!(m["notification"], json!({"title": "Order update", "body": "Your order shipped"}));
            assert_eq!(m["data"], json!({"order": "A-1"}));
            assert_eq!(m["android"]["priority"], "HIGH", "transactional");
            assert_eq!(m["android"]["collapse_key"], "echo");
            assert!(attributes.contains_key("AWS.SNS.MOBILE.FCM.TTL"), "{attributes:?}");
        } else {
            assert_eq!(inner["aps"]["alert"], json!({"title": "Order update", "body": "Your order shipped"}));
            assert_eq!(inner["order"], "A-1");
            assert_eq!(attributes["AWS.SNS.MOBILE.APNS.PRIORITY"].1, "5", "marketing: normal priority");
            assert_eq!(attributes["AWS.SNS.MOBILE.APNS.PUSH_TYPE"].1, "alert");
            assert_eq!(attributes["AWS.SNS.MOBILE.APNS.COLLAPSE_ID"].1, "echo");
        }
    }

    // The disabled and the deleted endpoints were announced, by hash, with the recipient.
    assert_eq!(events.len(), 2, "{events:?}");
    for (id, arn) in [("to-disabled", &gone), ("to-deleted", &deleted)] {
        let event = events.iter().find(|e| e["request_id"] == id).expect("a token_invalid event");
        assert_eq!(event["event"], "token_invalid");
        assert_eq!(event["provider"], "sns");
        assert_eq!(event["recipient_id"], format!("u-{id}"));
        assert_eq!(event["address_sha256"], herald::receipt::provider::address_sha256(arn));
        assert!(!event.to_string().contains(arn.as_str()), "the event names the target by hash only");
    }

    // Later requests to them end suppressed without a call; the working one still sends.
    let again = [
        request("again-disabled", "transactional", &gone, "Second try"),
        request("again-deleted", "marketing", &deleted, "Second try"),
        request("again-android", "marketing", &phone, "Second message"),
    ];
    stack.enqueue(PUSH, &again.iter().map(Value::to_string).collect::<Vec<_>>()).await;
    stack.drain(PUSH, 1).await;
    let second = by_request(&stack.receipts().await);
    for id in ["again-disabled", "again-deleted"] {
        assert_eq!(second[id][0]["status"], "suppressed", "{id}: {:?}", second[id]);
        assert_eq!(second[id][0]["reason"], "suppressed:token_invalid");
    }
    assert_eq!(second["again-android"][0]["status"], "sent");
    let tried: Vec<String> = stack
        .proxy
        .records()
        .iter()
        .filter(|r| r.service == "sns" && r.operation == "Publish")
        .map(|r| form_fields(&r.body).remove("TargetArn").unwrap_or_default())
        .collect();
    assert_eq!(tried.iter().filter(|a| **a == gone).count(), 1, "the disabled endpoint was tried once: {tried:?}");
    assert_eq!(tried.iter().filter(|a| **a == deleted).count(), 1);
    assert_eq!(stack.queue_depth(&stack.function(PUSH).dlq).await, 0);
}
