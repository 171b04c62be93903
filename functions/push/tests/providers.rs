//! FCM, APNs and Web Push end to end: the real binary, driven through the Lambda Runtime
//! API emulator, against real local servers standing in for the providers
//! (`herald_e2e::push_providers`): they verify every JWT with the test public keys,
//! check the headers and bodies, and answer with the providers' recorded error bodies
//! (from `../shared/spec/push-errors` when it is there). The Web Push stand-in records
//! the encrypted body; the test decrypts it with the subscription's private key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use herald::push::credentials::ApnsSigningKey;
use herald::push::webpush::{UserAgentKeys, VapidKey};
use herald_e2e::push_providers::{
    Answer, ApnsStandIn, FcmStandIn, WebPushStandIn, test_ca_file, test_rsa_key, test_service_account_json,
};
use herald_e2e::stack::{Options, Spec, Stack, by_request};
use serde_json::{Value, json};

const PUSH: &str = "PushFunction";
const AWS_TIMEOUT_MS: u64 = 4_000;
const PROJECT: &str = "acme-shop";
const CLIENT_EMAIL: &str = "herald@acme-shop.iam.gserviceaccount.com";
const TEAM: &str = "TEAMID1234";
const KEY_ID: &str = "KEYID12345";
const TOPIC: &str = "com.acme.shop";

fn options() -> Options {
    let calls = herald::pipeline::CALLS_PER_RECORD
        + herald_push::FUNCTION.extra_calls_per_record
        + herald::pipeline::CALLS_PER_EMIT;
    let function_timeout = Duration::from_millis(AWS_TIMEOUT_MS * u64::from(calls)) + Duration::from_secs(4);
    let config = format!(
        "quiet_hours = \"off\"\n[push]\napns_topic = \"{TOPIC}\"\nvapid_subject = \"mailto:push@acme.example\"\ncollapse = \"category\"\n"
    );
    Options { config, visibility: 30, aws_timeout_ms: AWS_TIMEOUT_MS, function_timeout }
}

fn pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"))
}

/// A recorded provider answer from the shared spec folder, else the same answer as the
/// provider documents it (a clone outside this workspace lacks the folder).
fn recorded(path: &str, documented: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/spec/push-errors").join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|_| {
        eprintln!("note: {} is absent; answering with the documented body", file.display());
        documented.to_owned()
    })
}

struct Providers {
    fcm: FcmStandIn,
    apns: ApnsStandIn,
    /// The sandbox host: development builds' tokens (`"environment": "sandbox"`).
    apns_sandbox: ApnsStandIn,
    webpush: WebPushStandIn,
    stack: Stack,
    _templates: tempfile::TempDir,
}

async fn start() -> Providers {
    let templates = tempfile::tempdir().unwrap();
    let t = templates.path().join("echo");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("push.title.hbs"), "{{title}}").unwrap();
    std::fs::write(t.join("push.body.hbs"), "{{body}}").unwrap();
    std::fs::write(t.join("push.data.json.hbs"), r#"{"order": "{{order}}"}"#).unwrap();

    let rsa = test_rsa_key();
    let fcm = FcmStandIn::start(PROJECT, CLIENT_EMAIL, ring_public(&rsa)).await;
    let apns_der = VapidKey::generate_pkcs8().unwrap();
    let apns_key = ApnsSigningKey::from_p8(&pem(&apns_der), KEY_ID, TEAM).unwrap();
    let apns = ApnsStandIn::start(TEAM, KEY_ID, apns_key.public_key().to_vec()).await;
    let apns_sandbox = ApnsStandIn::start(TEAM, KEY_ID, apns_key.public_key().to_vec()).await;
    // Web Push endpoints must be https: the stand-in serves TLS with a test CA, which the
    // function trusts through SSL_CERT_FILE (read by the OS root store loader).
    let webpush = WebPushStandIn::start_tls().await;
    let account: Value =
        serde_json::from_str(&test_service_account_json(PROJECT, CLIENT_EMAIL, &fcm.token_url())).unwrap();
    let secret = json!({
        "fcm": account,
        "apns": {"key": pem(&apns_der), "key_id": KEY_ID, "team_id": TEAM},
        "webpush": {"private_key": pem(&VapidKey::generate_pkcs8().unwrap())},
    })
    .to_string();
    let spec = Spec::new(PUSH, PathBuf::from(env!("CARGO_BIN_EXE_herald-push")))
        .env("HERALD_TEMPLATES", templates.path().display().to_string())
        .env("HERALD_FCM_URL", fcm.base_url())
        .env("HERALD_APNS_URL", apns.base_url())
        .env("HERALD_APNS_SANDBOX_URL", apns_sandbox.base_url())
        .env("HERALD_PUSH_ALLOW_NETWORKS", "127.0.0.0/8")
        .env("SSL_CERT_FILE", test_ca_file().display().to_string());
    let stack = Stack::start_with_secrets(vec![spec], &options(), &[("PushSecret", &secret)]).await;
    Providers { fcm, apns, apns_sandbox, webpush, stack, _templates: templates }
}

fn ring_public(key: &ring::signature::RsaKeyPair) -> Vec<u8> {
    use ring::signature::KeyPair as _;
    key.public_key().as_ref().to_vec()
}

fn request(id: &str, category: &str, push: Value) -> Value {
    json!({"id": id, "channel": "push", "category": category,
           "recipient": {"id": format!("u-{id}"), "push": push},
           "template": "echo", "data": {"title": "Order update", "body": format!("Hello {id}"), "order": "A-1"}})
}

fn fcm_target(n: usize) -> Value {
    json!({"platform": "fcm", "token": format!("fcm-registration-token-{n:04}-{}", "x".repeat(24))})
}

fn apns_target(n: usize) -> Value {
    json!({"platform": "apns", "token": format!("{n:064x}")})
}

fn webpush_target(stand_in: &WebPushStandIn, id: &str, keys: &UserAgentKeys) -> Value {
    json!({"platform": "webpush", "endpoint": stand_in.endpoint(id),
           "keys": {"p256dh": keys.p256dh_base64url(), "auth": keys.auth_base64url()}})
}

/// Receipts and events from the receipt stream.
async fn stream(stack: &Stack) -> (Vec<Value>, Vec<Value>) {
    stack.receipts().await.into_iter().partition(|m| m.get("status").is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_on_each_provider_is_authenticated_once_and_delivered_as_rendered() {
    let p = start().await;
    let browsers: Vec<UserAgentKeys> = (0..10).map(|_| UserAgentKeys::generate().unwrap()).collect();
    let mut requests = Vec::new();
    for (n, browser) in browsers.iter().enumerate() {
        let category = if n % 2 == 0 { "transactional" } else { "marketing" };
        requests.push(request(&format!("fcm-{n}"), category, fcm_target(n)));
        requests.push(request(&format!("apns-{n}"), category, apns_target(n)));
        requests.push(request(&format!("web-{n}"), category, webpush_target(&p.webpush, &format!("sub-{n}"), browser)));
    }
    // A development build's token goes to the sandbox host, with the same provider token.
    let mut dev = apns_target(99);
    dev["environment"] = json!("sandbox");
    requests.push(request("apns-dev", "transactional", dev));
    // Each kind together, ten concurrent records per batch (HERALD_CONCURRENCY's default).
    for kind in ["fcm-", "apns-", "web-"] {
        let bodies: Vec<String> =
            requests.iter().filter(|r| r["id"].as_str().unwrap().starts_with(kind)).map(Value::to_string).collect();
        p.stack.enqueue(PUSH, &bodies).await;
        p.stack.drain(PUSH, 1).await;
    }
    let (receipts, events) = stream(&p.stack).await;
    assert!(events.is_empty(), "{events:?}");
    let by_id = by_request(&receipts);
    for r in &requests {
        let id = r["id"].as_str().unwrap();
        assert_eq!(by_id[id].len(), 1, "{id}");
        assert_eq!(by_id[id][0]["status"], "sent", "{id}: {:?}\n{}", by_id[id], p.stack.function(PUSH).logs());
    }

    // One OAuth token for all FCM sends, one APNs provider token, one VAPID token per origin.
    assert_eq!(p.fcm.token_fetches(), 1);
    assert_eq!(p.apns.distinct_jwts(), 1);
    assert_eq!(p.webpush.distinct_jwts(), 1);
    assert_eq!(p.webpush.vapid_public_keys().len(), 1);

    // FCM: the v1 message, as the receipt's message id names it.
    let messages = p.fcm.messages();
    assert_eq!(messages.len(), 10);
    for n in 0..10 {
        let token = fcm_target(n)["token"].as_str().unwrap().to_owned();
        let call = messages.iter().find(|m| m.json()["message"]["token"] == token.as_str()).expect("sent");
        assert!(call.auth_ok && call.status == 200);
        let m = &call.json()["message"];
        assert_eq!(m["notification"], json!({"title": "Order update", "body": format!("Hello fcm-{n}")}));
        assert_eq!(m["data"], json!({"order": "A-1"}));
        let high = n % 2 == 0;
        assert_eq!(m["android"]["priority"], if high { "HIGH" } else { "NORMAL" });
        assert_eq!(m["android"]["collapse_key"], if high { "transactional" } else { "marketing" });
        assert!(
            by_id[&format!("fcm-{n}")][0]["provider_message_id"]
                .as_str()
                .unwrap()
                .starts_with("projects/acme-shop/messages/")
        );
    }

    // APNs: HTTP/2, the apns-* headers, the payload; the sandbox token on the sandbox host.
    let dev_token = apns_target(99)["token"].as_str().unwrap().to_owned();
    assert_eq!((p.apns_sandbox.sent_to(&dev_token), p.apns.sent_to(&dev_token)), (1, 0));
    assert!(p.apns_sandbox.requests()[0].auth_ok);
    let calls = p.apns.requests();
    assert_eq!(calls.len(), 10);
    for n in 0..10 {
        let path = format!("/3/device/{}", apns_target(n)["token"].as_str().unwrap());
        let call = calls.iter().find(|c| c.path == path).expect("sent");
        assert_eq!(call.version, "HTTP/2.0");
        assert!(call.auth_ok && call.status == 200);
        assert_eq!(call.header("apns-topic"), Some(TOPIC));
        assert_eq!(call.header("apns-push-type"), Some("alert"));
        assert_eq!(call.header("apns-priority"), Some(if n % 2 == 0 { "10" } else { "5" }));
        let expiration: i64 = call.header("apns-expiration").unwrap().parse().unwrap();
        assert!(expiration > jiff::Timestamp::now().as_second() + 86_400, "the default TTL is 4 weeks");
        let body = call.json();
        assert_eq!(body["aps"]["alert"], json!({"title": "Order update", "body": format!("Hello apns-{n}")}));
        assert_eq!(body["order"], "A-1");
        // The receipt names the notification by the apns-id herald sent and APNs echoed.
        assert_eq!(by_id[&format!("apns-{n}")][0]["provider_message_id"].as_str(), call.header("apns-id"));
    }

    // Web Push: the body decrypts, with the subscription's private key, to what was rendered.
    let posts = p.webpush.requests();
    assert_eq!(posts.len(), 10);
    for (n, browser) in browsers.iter().enumerate() {
        let post = posts.iter().find(|r| r.path == format!("/push/sub-{n}")).expect("sent");
        assert!(post.auth_ok && post.status == 201);
        assert_eq!(post.header("content-encoding"), Some("aes128gcm"));
        assert_eq!(post.header("urgency"), Some(if n % 2 == 0 { "high" } else { "normal" }));
        let ttl: u64 = post.header("ttl").unwrap().parse().unwrap();
        assert!(ttl > 86_400 && ttl <= 28 * 86_400, "{ttl}");
        assert_eq!(post.header("topic"), Some(if n % 2 == 0 { "transactional" } else { "marketing" }));
        let plain: Value = serde_json::from_slice(&browser.decrypt(&post.body).expect("decrypts")).unwrap();
        assert_eq!(plain, json!({"title": "Order update", "body": format!("Hello web-{n}"), "data": {"order": "A-1"}}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_target_reported_gone_is_announced_once_and_never_sent_to_again() {
    let p = start().await;
    let browser = UserAgentKeys::generate().unwrap();
    let unregistered = recorded(
        "fcm/firebase-admin-go-404-unregistered.json",
        r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#,
    );
    let invalid_token = recorded(
        "fcm/firebase-docs-400-invalid-registration-token.json",
        r#"{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"},{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"message.token","description":"The registration token is not a valid FCM registration token"}]}]}}"#,
    );
    let apns_gone =
        recorded("apns/apns2-410-unregistered.json", r#"{"reason":"Unregistered","timestamp":1764000000000}"#);
    let bad_device = recorded("apns/pushiko-400-bad-device-token.json", r#"{"reason":"BadDeviceToken"}"#);
    let status_of = |body: &str, fallback: u16| {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v["error"]["code"].as_u64())
            .map_or(fallback, |c| c as u16)
    };
    let fcm_token = |n: usize| fcm_target(n)["token"].as_str().unwrap().to_owned();
    let apns_token = |n: usize| apns_target(n)["token"].as_str().unwrap().to_owned();
    p.fcm.script_always(&fcm_token(1), Answer::json(status_of(&unregistered, 404), &unregistered));
    p.fcm.script_always(&fcm_token(2), Answer::json(status_of(&invalid_token, 400), &invalid_token));
    p.apns.script_always(&apns_token(1), Answer::json(410, &apns_gone));
    p.apns.script_always(&apns_token(2), Answer::json(400, &bad_device));
    p.webpush.script_always("gone", Answer::json(410, ""));

    let first = [
        request("fcm-unregistered", "marketing", fcm_target(1)),
        request("fcm-invalid", "marketing", fcm_target(2)),
        request("apns-unregistered", "transactional", apns_target(1)),
        request("apns-bad", "transactional", apns_target(2)),
        request("web-gone", "marketing", webpush_target(&p.webpush, "gone", &browser)),
        request("fcm-fine", "marketing", fcm_target(3)),
    ];
    p.stack.enqueue(PUSH, &first.iter().map(Value::to_string).collect::<Vec<_>>()).await;
    p.stack.drain(PUSH, 1).await;
    let (receipts, events) = stream(&p.stack).await;
    let by_id = by_request(&receipts);
    let reason = |id: &str| {
        (by_id[id][0]["status"].as_str().unwrap().to_owned(), by_id[id][0]["reason"].as_str().unwrap_or("").to_owned())
    };
    assert_eq!(reason("fcm-fine").0, "sent");
    for (id, code) in [
        ("fcm-unregistered", "provider:unregistered"),
        ("fcm-invalid", "provider:invalid_registration_token"),
        ("apns-unregistered", "provider:unregistered"),
        ("apns-bad", "provider:bad_device_token"),
        ("web-gone", "provider:subscription_gone"),
    ] {
        assert_eq!(reason(id), ("failed".to_owned(), code.to_owned()), "{id}");
        let announced: Vec<&Value> = events.iter().filter(|e| e["request_id"] == id).collect();
        assert_eq!(announced.len(), 1, "{id}: {events:?}");
        assert_eq!(announced[0]["event"], "token_invalid");
        assert_eq!(announced[0]["recipient_id"], format!("u-{id}"));
        let address = match id {
            "fcm-unregistered" => fcm_token(1),
            "fcm-invalid" => fcm_token(2),
            "apns-unregistered" => apns_token(1),
            "apns-bad" => apns_token(2),
            _ => p.webpush.endpoint("gone"),
        };
        assert_eq!(announced[0]["address_sha256"], herald::receipt::provider::address_sha256(&address));
        assert!(!announced[0].to_string().contains(&address), "{id}: the event names the target by hash only");
    }
    // APNs says since when the token is gone: the event keeps that instant.
    let apns_event = events.iter().find(|e| e["request_id"] == "apns-unregistered").unwrap();
    let since = serde_json::from_str::<Value>(&apns_gone).unwrap()["timestamp"].as_i64().unwrap();
    let at: jiff::Timestamp = apns_event["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at.as_millisecond(), since);

    // Every later request to those targets ends suppressed, and no provider hears of it.
    let again = [
        request("again-fcm-unregistered", "transactional", fcm_target(1)),
        request("again-fcm-invalid", "marketing", fcm_target(2)),
        request("again-apns-unregistered", "marketing", apns_target(1)),
        request("again-apns-bad", "transactional", apns_target(2)),
        request("again-web-gone", "transactional", webpush_target(&p.webpush, "gone", &browser)),
    ];
    p.stack.enqueue(PUSH, &again.iter().map(Value::to_string).collect::<Vec<_>>()).await;
    p.stack.drain(PUSH, 1).await;
    let (receipts, events) = stream(&p.stack).await;
    assert!(events.is_empty(), "nothing new to announce: {events:?}");
    for r in &receipts {
        assert_eq!(
            (r["status"].as_str(), r["reason"].as_str()),
            (Some("suppressed"), Some("suppressed:token_invalid")),
            "{r}"
        );
    }
    assert_eq!(receipts.len(), again.len());
    assert_eq!(p.fcm.sent_to(&fcm_token(1)), 1);
    assert_eq!(p.fcm.sent_to(&fcm_token(2)), 1);
    assert_eq!(p.apns.sent_to(&apns_token(1)), 1);
    assert_eq!(p.apns.sent_to(&apns_token(2)), 1);
    assert_eq!(p.webpush.sent_to("gone"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throttling_waits_as_told_a_refused_token_is_renewed_once_and_private_endpoints_are_refused() {
    let p = start().await;
    let browser = UserAgentKeys::generate().unwrap();
    let fcm_token = |n: usize| fcm_target(n)["token"].as_str().unwrap().to_owned();
    let quota = recorded(
        "fcm/firebase-admin-go-429-quota-exceeded.json",
        r#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#,
    );
    p.fcm.script(&fcm_token(1), Answer::json(429, &quota).with_header("retry-after", "120"));
    p.apns.script(
        apns_target(1)["token"].as_str().unwrap(),
        Answer::json(429, r#"{"reason":"TooManyRequests"}"#).with_header("retry-after", "90"),
    );
    let first = [
        request("fcm-throttled", "transactional", fcm_target(1)),
        request("apns-throttled", "transactional", apns_target(1)),
        // A subscription whose endpoint is an internal address: never contacted.
        request(
            "web-private",
            "transactional",
            json!({"platform": "webpush", "endpoint": "https://10.1.2.3/push/x",
            "keys": {"p256dh": browser.p256dh_base64url(), "auth": browser.auth_base64url()}}),
        ),
    ];
    // A push service refusing the VAPID token once: a new one, and the message goes.
    p.webpush.script("renew", Answer::json(403, ""));
    let first =
        [first.to_vec(), vec![request("web-renewed", "transactional", webpush_target(&p.webpush, "renew", &browser))]]
            .concat();
    let before = jiff::Timestamp::now();
    p.stack.enqueue(PUSH, &first.iter().map(Value::to_string).collect::<Vec<_>>()).await;
    p.stack.settle(PUSH, 1).await;
    let (receipts, _) = stream(&p.stack).await;
    let by_id = by_request(&receipts);
    for (id, wait) in [("fcm-throttled", 120), ("apns-throttled", 90)] {
        let r = &by_id[id][0];
        assert_eq!((r["status"].as_str(), r["reason"].as_str()), (Some("deferred"), Some("retry")), "{id}: {r}");
        let until: jiff::Timestamp = r["deferred_until"].as_str().unwrap().parse().unwrap();
        let waited = until.duration_since(before).as_secs();
        assert!((wait..wait + 30).contains(&waited), "{id}: deferred {waited}s, asked {wait}s");
    }
    assert_eq!(by_id["web-renewed"][0]["status"], "sent", "{:?}", by_id["web-renewed"]);
    assert_eq!(p.webpush.sent_to("renew"), 2, "refused once, then sent with a new VAPID token");
    let r = &by_id["web-private"][0];
    assert_eq!((r["status"].as_str(), r["reason"].as_str()), (Some("failed"), Some("provider:address_refused")), "{r}");
    assert!(!r.to_string().contains("10.1.2.3"), "the endpoint is not echoed: {r}");

    // FCM revokes herald's access token: the next send is refused, a new token is fetched
    // once, and the message goes on the second try (nothing was sent the first time).
    let fetched = p.fcm.token_fetches();
    p.fcm.revoke_tokens();
    p.stack.enqueue(PUSH, &[request("after-revoke", "transactional", fcm_target(5)).to_string()]).await;
    // Settled, not drained: the two throttled requests wait on the queue, delayed.
    p.stack.settle(PUSH, 1).await;
    let by_id = by_request(&stream(&p.stack).await.0);
    assert_eq!(by_id["after-revoke"][0]["status"], "sent", "{:?}", by_id["after-revoke"]);
    assert_eq!(p.fcm.token_fetches(), fetched + 1);
    assert_eq!(p.fcm.sent_to(&fcm_token(5)), 2, "refused once with the revoked token, then sent");
}
