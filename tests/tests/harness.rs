//! Tests of the harness itself: moto as a local AWS, and the recording, fault-injecting proxy
//! in front of it, driven by the same Rust SDK clients the functions use.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag};
use herald_e2e::moto::Moto;
use herald_e2e::proxy::{Fault, FaultKind, Proxy};
use serde_json::json;

async fn moto_and_proxy() -> (Moto, Proxy, aws_config::SdkConfig) {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let config = moto.sdk_config(&proxy.endpoint()).await;
    (moto, proxy, config)
}

async fn create_table(ddb: &aws_sdk_dynamodb::Client, name: &str) {
    ddb.create_table()
        .table_name(name)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().expect("key"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("CreateTable");
}

fn simple_email(
    ses: &aws_sdk_sesv2::Client,
    from: &str,
) -> aws_sdk_sesv2::operation::send_email::builders::SendEmailFluentBuilder {
    let text = |s: &str| Content::builder().data(s).charset("UTF-8").build().expect("content");
    ses.send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses("ana@example.org").build())
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(text("Welcome"))
                        .body(Body::builder().text(text("Hello Ana")).html(text("<p>Hello Ana</p>")).build())
                        .headers(
                            MessageHeader::builder().name("X-Herald-Request").value("req-1").build().expect("header"),
                        )
                        .build(),
                )
                .build(),
        )
        .email_tags(MessageTag::builder().name("campaign").value("welcome").build().expect("tag"))
        .configuration_set_name("herald-transactional")
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_records_sqs_and_dynamodb_calls_with_parsed_bodies() {
    let (_moto, proxy, config) = moto_and_proxy().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);

    let queue_url = sqs.create_queue().queue_name("jobs").send().await.expect("CreateQueue").queue_url.expect("url");
    // The proxy keeps the Host header, so moto's queue URLs name the proxy.
    assert!(queue_url.starts_with(&proxy.endpoint()), "queue URL {queue_url}");
    sqs.send_message().queue_url(&queue_url).message_body("{\"n\":1}").send().await.expect("SendMessage");
    create_table(&ddb, "state").await;
    ddb.put_item()
        .table_name("state")
        .item("pk", AttributeValue::S("a#1".into()))
        .item("n", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("PutItem");

    let received = sqs.receive_message().queue_url(&queue_url).send().await.expect("ReceiveMessage");
    assert_eq!(received.messages().len(), 1, "moto kept the message");

    assert_eq!(proxy.count("sqs", "CreateQueue"), 1);
    assert_eq!(proxy.count("sqs", "SendMessage"), 1);
    assert_eq!(proxy.count("dynamodb", "CreateTable"), 1);
    assert_eq!(proxy.count("dynamodb", "PutItem"), 1);

    let records = proxy.records();
    let ops: Vec<(&str, &str)> = records.iter().map(|r| (r.service.as_str(), r.operation.as_str())).collect();
    assert_eq!(
        ops,
        [
            ("sqs", "CreateQueue"),
            ("sqs", "SendMessage"),
            ("dynamodb", "CreateTable"),
            ("dynamodb", "PutItem"),
            ("sqs", "ReceiveMessage")
        ]
    );
    assert!(records.iter().all(|r| r.status == 200 && !r.injected && r.path == "/"), "{records:#?}");
    assert!(records.windows(2).all(|w| w[0].at <= w[1].at));

    let create = &proxy.calls("sqs", "CreateQueue")[0];
    assert_eq!(create.body["QueueName"], "jobs");
    let send = &proxy.calls("sqs", "SendMessage")[0];
    assert_eq!(send.body["MessageBody"], "{\"n\":1}");
    assert_eq!(send.body["QueueUrl"], queue_url.as_str());
    let put = &proxy.calls("dynamodb", "PutItem")[0];
    assert_eq!(put.body["TableName"], "state");
    assert_eq!(put.body["Item"], json!({"pk": {"S": "a#1"}, "n": {"N": "7"}}));

    proxy.clear();
    assert!(proxy.records().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ses_v2_send_email_is_recorded_whole_and_stored_by_moto() {
    let (moto, proxy, config) = moto_and_proxy().await;
    let ses = aws_sdk_sesv2::Client::new(&config);

    // moto rejects unverified senders, like SES outside the sandbox's verified identities.
    let rejected = simple_email(&ses, "Herald <noreply@example.com>").send().await.expect_err("unverified sender");
    let rejected = rejected.into_service_error();
    assert!(rejected.is_message_rejected(), "{rejected:?}");

    // A verified domain covers every address at it.
    moto.verify_email_identity("example.com").await;
    let sent = simple_email(&ses, "Herald <noreply@example.com>").send().await.expect("SendEmail");
    let message_id = sent.message_id().expect("MessageId").to_owned();

    let calls = proxy.calls("sesv2", "SendEmail");
    assert_eq!(calls.len(), 2);
    let call = &calls[1];
    assert_eq!((call.status, call.injected, call.path.as_str()), (200, false, "/v2/email/outbound-emails"));
    assert_eq!(call.body["ConfigurationSetName"], "herald-transactional");
    assert_eq!(call.body["EmailTags"], json!([{"Name": "campaign", "Value": "welcome"}]));
    assert_eq!(call.body["Content"]["Simple"]["Headers"], json!([{"Name": "X-Herald-Request", "Value": "req-1"}]));
    assert_eq!(call.body["Content"]["Simple"]["Body"]["Text"]["Data"], "Hello Ana");
    assert_eq!(call.body["Destination"]["ToAddresses"], json!(["ana@example.org"]));

    let stored = moto.sent_emails().await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    let mail = &stored[0];
    assert_eq!(mail["kind"], "simple");
    assert_eq!(mail["id"], message_id.as_str());
    assert_eq!(mail["source"], "Herald <noreply@example.com>");
    assert_eq!(mail["subject"], "Welcome");
    // moto keeps only the HTML part when there are both.
    assert_eq!(mail["body"], "<p>Hello Ana</p>");
    assert_eq!(mail["destinations"], json!({"ToAddresses": ["ana@example.org"]}));

    moto.reset().await;
    assert!(moto.sent_emails().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn ses_v2_throttling_is_retried_by_the_sdk_then_surfaces() {
    let (moto, proxy, config) = moto_and_proxy().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    moto.verify_email_identity("noreply@example.com").await;

    proxy.inject(Fault {
        service: "sesv2".into(),
        operation: "SendEmail".into(),
        kind: FaultKind::Throttle,
        share: 1.0,
        remaining: Some(2),
    });
    simple_email(&ses, "noreply@example.com").send().await.expect("third attempt succeeds");
    let calls = proxy.calls("sesv2", "SendEmail");
    let seen: Vec<(u16, bool)> = calls.iter().map(|c| (c.status, c.injected)).collect();
    assert_eq!(seen, [(429, true), (429, true), (200, false)]);
    assert_eq!(moto.sent_emails().await.len(), 1, "only the forwarded attempt reached moto");

    // Without a limit the SDK gives up after its 3 attempts with the modeled throttling error.
    proxy.clear();
    proxy.inject(Fault::always("sesv2", "SendEmail", FaultKind::Throttle));
    let err = simple_email(&ses, "noreply@example.com").send().await.expect_err("throttled");
    let status = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    assert!(err.is_too_many_requests_exception(), "{err:?}");
    assert_eq!(status, Some(429));
    assert_eq!(proxy.count("sesv2", "SendEmail"), 3);

    // A server error is transient too.
    proxy.clear();
    proxy.clear_faults();
    proxy.inject(Fault { remaining: Some(1), ..Fault::always("sesv2", "SendEmail", FaultKind::ServerError) });
    simple_email(&ses, "noreply@example.com").send().await.expect("second attempt succeeds");
    let seen: Vec<u16> = proxy.calls("sesv2", "SendEmail").iter().map(|c| c.status).collect();
    assert_eq!(seen, [500, 200]);
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamodb_server_errors_exhaust_the_sdk_retries() {
    let (_moto, proxy, config) = moto_and_proxy().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&ddb, "state").await;

    proxy.inject(Fault::always("dynamodb", "PutItem", FaultKind::ServerError));
    let started = Instant::now();
    let err = ddb
        .put_item()
        .table_name("state")
        .item("pk", AttributeValue::S("a".into()))
        .send()
        .await
        .expect_err("every attempt fails");
    let status = err.raw_response().map(|r| r.status().as_u16());
    let err = err.into_service_error();
    assert!(err.is_internal_server_error(), "{err:?}");
    assert_eq!(status, Some(500));
    let calls = proxy.calls("dynamodb", "PutItem");
    assert_eq!(calls.len(), 3, "standard retry mode makes 3 attempts");
    assert!(calls.iter().all(|c| c.injected && c.status == 500));
    assert!(started.elapsed() < Duration::from_secs(3));

    // Throttling is parsed into the modeled error as well.
    proxy.clear_faults();
    proxy.inject(Fault::always("dynamodb", "GetItem", FaultKind::Throttle));
    let err = ddb
        .get_item()
        .table_name("state")
        .key("pk", AttributeValue::S("a".into()))
        .send()
        .await
        .expect_err("throttled")
        .into_service_error();
    assert!(err.is_throttling_exception(), "{err:?}");
    assert_eq!(proxy.count("dynamodb", "GetItem"), 3);

    // Other operations still reach moto; the faulted PutItem never did.
    let item = ddb.get_item().table_name("state").key("pk", AttributeValue::S("a".into())).send().await;
    assert!(item.is_err(), "GetItem is still throttled");
    proxy.clear_faults();
    let item =
        ddb.get_item().table_name("state").key("pk", AttributeValue::S("a".into())).send().await.expect("GetItem");
    assert!(item.item().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn sqs_throttling_uses_the_query_compatible_error_code() {
    let (_moto, proxy, config) = moto_and_proxy().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let url = sqs.create_queue().queue_name("jobs").send().await.expect("CreateQueue").queue_url.expect("url");

    proxy.inject(Fault::always("sqs", "SendMessage", FaultKind::Throttle));
    let err = sqs.send_message().queue_url(&url).message_body("x").send().await.expect_err("throttled");
    let err = err.into_service_error();
    assert!(err.is_request_throttled(), "{err:?}");
    assert_eq!(proxy.count("sqs", "SendMessage"), 3);

    proxy.clear_faults();
    proxy.inject(Fault { remaining: Some(1), ..Fault::always("sqs", "SendMessage", FaultKind::ServerError) });
    sqs.send_message().queue_url(&url).message_body("x").send().await.expect("retried after a 500");
    assert_eq!(proxy.count("sqs", "SendMessage"), 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_fault_delays_then_forwards() {
    let (_moto, proxy, config) = moto_and_proxy().await;
    let sqs = aws_sdk_sqs::Client::new(&config);

    proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("sqs", "ListQueues", FaultKind::Timeout(Duration::from_millis(400)))
    });
    let started = Instant::now();
    sqs.list_queues().send().await.expect("ListQueues");
    assert!(started.elapsed() >= Duration::from_millis(400));
    let calls = proxy.calls("sqs", "ListQueues");
    assert_eq!(calls.len(), 1);
    assert!(calls[0].injected && calls[0].status == 200);

    // A client that gives up sooner sees a timeout and retries; the retry is not delayed.
    proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("sqs", "ListQueues", FaultKind::Timeout(Duration::from_millis(1500)))
    });
    let impatient = aws_sdk_sqs::config::Builder::from(&config)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder().operation_attempt_timeout(Duration::from_millis(300)).build(),
        )
        .build();
    let started = Instant::now();
    aws_sdk_sqs::Client::from_conf(impatient).list_queues().send().await.expect("second attempt");
    assert!(started.elapsed() < Duration::from_millis(1200), "{:?}", started.elapsed());
}

const SQS_AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=testing/20261128/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0";

#[tokio::test(flavor = "multi_thread")]
async fn share_follows_a_reproducible_sequence() {
    let moto = Moto::start().await;
    let mut patterns = Vec::new();
    for _ in 0..2 {
        let proxy = Proxy::start(&moto.endpoint).await;
        proxy.inject(Fault { share: 0.5, ..Fault::always("sqs", "ListQueues", FaultKind::ServerError) });
        let http = reqwest::Client::builder().no_proxy().build().expect("client");
        let mut pattern = Vec::new();
        for _ in 0..40 {
            let resp = http
                .post(proxy.endpoint())
                .header("x-amz-target", "AmazonSQS.ListQueues")
                .header("content-type", "application/x-amz-json-1.0")
                .header("authorization", SQS_AUTH)
                .body("{}")
                .send()
                .await
                .expect("proxy answers");
            pattern.push(resp.status().as_u16());
        }
        assert!(proxy.records().iter().zip(&pattern).all(|(r, s)| r.injected == (*s == 500)));
        patterns.push(pattern);
    }
    assert_eq!(patterns[0], patterns[1]);
    let injected = patterns[0].iter().filter(|s| **s == 500).count();
    assert!((10..=30).contains(&injected), "{injected} of 40 at share 0.5: {:?}", patterns[0]);
    assert!(patterns[0].iter().all(|s| *s == 500 || *s == 200));
}

#[test]
fn identifies_services_and_operations() {
    use axum::http::{HeaderMap, HeaderValue, Method, Uri};
    use herald_e2e::proxy::identify;

    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    };
    let root: Uri = "/".parse().expect("uri");
    let id = |m: Method, uri: &Uri, h: &HeaderMap, body: &str| identify(&m, uri, h, body.as_bytes());
    let pair = |s: &str, o: &str| (s.to_owned(), o.to_owned());

    let target = headers(&[("x-amz-target", "DynamoDB_20120810.TransactWriteItems")]);
    assert_eq!(id(Method::POST, &root, &target, "{}"), pair("dynamodb", "TransactWriteItems"));
    let target = headers(&[("x-amz-target", "AmazonSQS.SendMessageBatch")]);
    assert_eq!(id(Method::POST, &root, &target, "{}"), pair("sqs", "SendMessageBatch"));

    let ses_auth = headers(&[(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0",
    )]);
    let send: Uri = "/v2/email/outbound-emails".parse().expect("uri");
    assert_eq!(id(Method::POST, &send, &ses_auth, "{}"), pair("sesv2", "SendEmail"));
    let get: Uri = "/v2/email/identities/example.com".parse().expect("uri");
    assert_eq!(id(Method::GET, &get, &ses_auth, ""), pair("sesv2", "GetEmailIdentity"));
    let other: Uri = "/v2/email/deliverability-dashboard?x=1".parse().expect("uri");
    assert_eq!(id(Method::GET, &other, &ses_auth, ""), pair("sesv2", "GET /v2/email/deliverability-dashboard"));

    let sns_auth = headers(&[(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0",
    )]);
    assert_eq!(id(Method::POST, &root, &sns_auth, "Action=Publish&Version=2010-03-31"), pair("sns", "Publish"));
    let query: Uri = "/?Action=ListTopics&Version=2010-03-31".parse().expect("uri");
    assert_eq!(id(Method::GET, &query, &sns_auth, ""), pair("sns", "ListTopics"));
}

#[tokio::test(flavor = "multi_thread")]
async fn child_environment_points_at_the_endpoint_only() {
    let moto = Moto::start().await;
    let env = moto.env("http://127.0.0.1:9");
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:9"));
    assert_eq!(get("AWS_ENDPOINT_URL_SESV2"), Some("http://127.0.0.1:9"));
    assert_eq!(get("AWS_REGION"), Some("us-east-1"));
    assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("testing"));
    assert_eq!(get("AWS_SESSION_TOKEN"), Some(""));
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    let config = get("AWS_CONFIG_FILE").expect("AWS_CONFIG_FILE");
    assert!(!std::path::Path::new(config).exists());
    assert!(moto.data().await.is_object());
}

// ------------------------------------------------------------------ transport faults
//
// Each fault is checked with a plain HTTP client (reqwest) so what the client sees is
// beyond doubt, and against moto directly (not through the proxy) for what took effect.

/// A queue on moto and a raw SQS `SendMessage` to it through the proxy, by a client
/// that gives up after `timeout`.
struct RawSqs {
    moto: Moto,
    proxy: Proxy,
    direct: aws_sdk_sqs::Client,
    url: String,
    http: reqwest::Client,
}

impl RawSqs {
    async fn start(timeout: Duration) -> RawSqs {
        let moto = Moto::start().await;
        let proxy = Proxy::start(&moto.endpoint).await;
        let direct = aws_sdk_sqs::Client::new(&moto.sdk_config(&moto.endpoint).await);
        let url = direct.create_queue().queue_name("faults").send().await.expect("CreateQueue").queue_url.expect("url");
        let http = reqwest::Client::builder().no_proxy().timeout(timeout).build().expect("client");
        RawSqs { moto, proxy, direct, url, http }
    }

    async fn send(&self, body: &str) -> Result<reqwest::Response, reqwest::Error> {
        self.http
            .post(self.proxy.endpoint())
            .header("x-amz-target", "AmazonSQS.SendMessage")
            .header("content-type", "application/x-amz-json-1.0")
            .header("authorization", SQS_AUTH)
            .body(json!({"QueueUrl": self.url, "MessageBody": body}).to_string())
            .send()
            .await
    }

    /// Message bodies moto holds (received and deleted, straight from moto).
    async fn delivered(&self) -> Vec<String> {
        let got = self
            .direct
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let mut bodies = Vec::new();
        for m in got.messages() {
            bodies.push(m.body().unwrap_or_default().to_owned());
            self.direct
                .delete_message()
                .queue_url(&self.url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
        bodies
    }

    fn only_record(&self) -> herald_e2e::proxy::Recorded {
        let calls = self.proxy.calls("sqs", "SendMessage");
        assert_eq!(calls.len(), 1, "{calls:#?}");
        calls.into_iter().next().expect("one call")
    }
}

/// The error is a transport failure: no HTTP status reached the client.
fn assert_transport_error(result: Result<reqwest::Response, reqwest::Error>, what: &str) -> reqwest::Error {
    match result {
        Ok(resp) => panic!("{what}: expected a transport error, got HTTP {}", resp.status()),
        Err(e) => {
            assert!(e.status().is_none() && !e.is_timeout(), "{what}: {e:?}");
            e
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_closes_the_connection_and_nothing_reaches_moto() {
    let s = RawSqs::start(Duration::from_secs(5)).await;
    s.proxy.inject(Fault { remaining: Some(1), ..Fault::always("sqs", "SendMessage", FaultKind::Reset) });
    let started = Instant::now();
    let err = assert_transport_error(s.send("reset").await, "Reset");
    assert!(started.elapsed() < Duration::from_secs(2), "reset at once, not after a timeout: {err:?}");
    let r = s.only_record();
    assert_eq!(
        (r.status, r.injected, r.fault, r.forwarded, r.upstream_status),
        (0, true, Some(FaultKind::Reset), false, None)
    );
    assert!(s.delivered().await.is_empty(), "nothing reached moto");

    // The connection is gone, not the proxy: the next request goes through.
    let ok = s.send("after").await.expect("the next request is answered");
    assert_eq!(ok.status(), 200);
    assert_eq!(s.delivered().await, ["after"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_response_takes_effect_at_moto_but_the_client_gets_no_answer() {
    let s = RawSqs::start(Duration::from_secs(5)).await;
    s.proxy.inject(Fault { remaining: Some(1), ..Fault::always("sqs", "SendMessage", FaultKind::LostResponse) });
    assert_transport_error(s.send("lost").await, "LostResponse");
    let r = s.only_record();
    assert_eq!((r.status, r.forwarded, r.upstream_status), (0, true, Some(200)));
    assert!(r.accepted());
    // moto's answer is kept for the test: the MessageId the client never saw.
    assert!(r.upstream_body.as_ref().is_some_and(|b| b["MessageId"].is_string()), "{r:?}");
    assert_eq!(s.delivered().await, ["lost"], "the send took effect");
    assert_eq!(s.proxy.accepted("sqs", "SendMessage").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stall_after_forward_takes_effect_at_once_and_answers_late() {
    // A client that waits longer than the stall gets moto's answer, late.
    let s = RawSqs::start(Duration::from_secs(5)).await;
    s.proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("sqs", "SendMessage", FaultKind::StallAfterForward(Duration::from_millis(600)))
    });
    let started = Instant::now();
    let resp = s.send("slow").await.expect("answered after the stall");
    assert_eq!(resp.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(600));
    let r = s.only_record();
    assert_eq!((r.status, r.forwarded, r.upstream_status), (200, true, Some(200)));
    assert_eq!(s.delivered().await, ["slow"]);

    // An impatient client times out, after the provider acted.
    let s = RawSqs::start(Duration::from_millis(300)).await;
    s.proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("sqs", "SendMessage", FaultKind::StallAfterForward(Duration::from_secs(3)))
    });
    let err = s.send("stalled").await.expect_err("the client gives up");
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(s.delivered().await, ["stalled"], "moto has it while the answer is still held back");
    // The record is written once the proxy notices the client left (well before the stall ends).
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.proxy.calls("sqs", "SendMessage").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = s.only_record();
    assert_eq!((r.status, r.forwarded, r.upstream_status), (0, true, Some(200)), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_the_client_gives_up_on_is_never_forwarded() {
    let s = RawSqs::start(Duration::from_millis(300)).await;
    s.proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("sqs", "SendMessage", FaultKind::Timeout(Duration::from_millis(800)))
    });
    let err = s.send("late").await.expect_err("the client gives up");
    assert!(err.is_timeout(), "{err:?}");
    // Past the delay: had the proxy forwarded after all, moto would have it now.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(s.delivered().await.is_empty(), "a request the client gave up on during the delay is dropped");
    let r = s.only_record();
    assert_eq!((r.status, r.injected, r.forwarded, r.upstream_status), (0, true, false, None), "{r:?}");
    drop(s.moto);
}

/// The SDK sees a lost answer as a transport error and, with its default retries, sends
/// again: the provider then has the message twice. This is the hazard the resilience
/// suite looks for in herald; here it shows the fault is real to the SDK.
#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_retries_a_lost_ses_answer_and_the_mail_goes_out_twice() {
    let (moto, proxy, config) = moto_and_proxy().await;
    let ses = aws_sdk_sesv2::Client::new(&config);
    moto.verify_email_identity("noreply@example.com").await;
    proxy.inject(Fault { remaining: Some(1), ..Fault::always("sesv2", "SendEmail", FaultKind::LostResponse) });
    let sent = simple_email(&ses, "noreply@example.com").send().await.expect("the retry is answered");
    let calls = proxy.calls("sesv2", "SendEmail");
    let seen: Vec<(u16, bool, Option<u16>)> =
        calls.iter().map(|c| (c.status, c.forwarded, c.upstream_status)).collect();
    assert_eq!(seen, [(0, true, Some(200)), (200, true, Some(200))]);
    assert_eq!(proxy.accepted("sesv2", "SendEmail").len(), 2);
    let stored = moto.sent_emails().await;
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert!(stored.iter().any(|m| m["id"] == sent.message_id().unwrap_or_default()));

    // A reset before forwarding is retried too, and only the retry reaches moto.
    proxy.clear();
    proxy.inject(Fault { remaining: Some(1), ..Fault::always("sesv2", "SendEmail", FaultKind::Reset) });
    simple_email(&ses, "noreply@example.com").send().await.expect("the retry is answered");
    let seen: Vec<(u16, bool)> = proxy.calls("sesv2", "SendEmail").iter().map(|c| (c.status, c.forwarded)).collect();
    assert_eq!(seen, [(0, false), (200, true)]);
    assert_eq!(moto.sent_emails().await.len(), 3);
}

/// DynamoDB calls stay one at a time through the proxy, but a fault's delay does not
/// hold up the calls behind it.
#[tokio::test(flavor = "multi_thread")]
async fn a_delayed_dynamodb_call_does_not_hold_up_the_others() {
    let (_moto, proxy, config) = moto_and_proxy().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    create_table(&ddb, "state").await;
    proxy.inject(Fault {
        remaining: Some(1),
        ..Fault::always("dynamodb", "GetItem", FaultKind::StallAfterForward(Duration::from_millis(1500)))
    });
    let key = || AttributeValue::S("a".into());
    let slow = {
        let ddb = ddb.clone();
        tokio::spawn(
            async move { ddb.get_item().table_name("state").key("pk", AttributeValue::S("a".into())).send().await },
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    ddb.put_item().table_name("state").item("pk", key()).send().await.expect("PutItem");
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}", started.elapsed());
    slow.await.expect("task").expect("GetItem answered after the stall");
}

/// moto runs through tests/moto/server.py, whose TransactWriteItems saves and restores only
/// the items it names: a cancelled transaction must leave every item as it was, report
/// its reasons as moto does, and cost the same on a large table as on an empty one.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_transaction_changes_nothing_and_costs_no_more_on_a_large_table() {
    use aws_sdk_dynamodb::types::{
        ConditionCheck, Put, PutRequest, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update, WriteRequest,
    };
    let moto = Moto::start().await;
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk_config(&moto.endpoint).await);
    create_table(&ddb, "state").await;
    let s = |v: &str| AttributeValue::S(v.to_owned());
    ddb.put_item()
        .table_name("state")
        .item("pk", s("a"))
        .item("n", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("PutItem");
    ddb.put_item().table_name("state").item("pk", s("blocker")).send().await.expect("PutItem");
    let transaction = |new: &str| {
        vec![
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("state")
                        .key("pk", s("a"))
                        .update_expression("SET n = n + :one")
                        .expression_attribute_values(":one", AttributeValue::N("1".into()))
                        .build()
                        .expect("update"),
                )
                .build(),
            TransactWriteItem::builder()
                .put(Put::builder().table_name("state").item("pk", s(new)).build().expect("put"))
                .build(),
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("state")
                        .key("pk", s("blocker"))
                        .condition_expression("attribute_not_exists(pk)")
                        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                        .build()
                        .expect("check"),
                )
                .build(),
        ]
    };
    let cancelled = |items| {
        let ddb = ddb.clone();
        async move {
            let started = Instant::now();
            let err = ddb.transact_write_items().set_transact_items(Some(items)).send().await.expect_err("cancelled");
            let elapsed = started.elapsed();
            match err.into_service_error() {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) => {
                    let codes: Vec<Option<&str>> = e.cancellation_reasons().iter().map(|r| r.code()).collect();
                    assert_eq!(codes, [Some("None"), Some("None"), Some("ConditionalCheckFailed")]);
                    assert_eq!(e.cancellation_reasons()[2].item().and_then(|i| i.get("pk")), Some(&s("blocker")));
                }
                other => panic!("{other:?}"),
            }
            elapsed
        }
    };
    let empty = cancelled(transaction("new")).await;
    let a = ddb.get_item().table_name("state").key("pk", s("a")).send().await.expect("GetItem");
    assert_eq!(a.item().and_then(|i| i.get("n")), Some(&AttributeValue::N("1".into())), "the update was rolled back");
    let new = ddb.get_item().table_name("state").key("pk", s("new")).send().await.expect("GetItem");
    assert!(new.item().is_none(), "the put was rolled back");

    // 2,000 items shaped like idempotency records: moto's own rollback copies them all for
    // every item of every transaction.
    for chunk in 0..80 {
        let writes = (0..25)
            .map(|i| {
                let n = |v: &str| AttributeValue::N(v.to_owned());
                let put = PutRequest::builder()
                    .item("pk", s(&format!("REQ#filler-{chunk}-{i}")))
                    .item("state", s("done"))
                    .item("status", s("sent"))
                    .item("reason", AttributeValue::Null(true))
                    .item("provider_message_id", s("0100019a-0000-0000-0000-000000000000-000000"))
                    .item("at_ms", n("1764450000000"))
                    .item("retain_until_ms", n("1764536400000"))
                    .item("attempt", s("6f1c2a4e-8d0b-4b7e-9a51-3f2d7c9e0a11"))
                    .item("expires_at", n("1764536400"))
                    .build()
                    .expect("put request");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        ddb.batch_write_item().request_items("state", writes).send().await.expect("BatchWriteItem");
    }
    let mut large = Duration::ZERO;
    for round in 0..5 {
        large += cancelled(transaction(&format!("new-{round}"))).await;
    }
    let large = large / 5;
    eprintln!("cancelled transaction: {empty:?} on a near-empty table, {large:?} on 2,000 items");
    // moto's own rollback took about 225 ms per transaction here (2 cores); this one 15-25 ms.
    assert!(large < Duration::from_millis(120), "{large:?}");
}

/// The other cost tests/moto/server.py removes: with a thousand messages queued, moto's own
/// ReceiveMessage took over a second (it recounts the queue for every message it returns).
/// Visibility still holds: a received message is not handed out again.
#[tokio::test(flavor = "multi_thread")]
async fn receiving_from_a_deep_queue_is_quick_and_keeps_visibility() {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let moto = Moto::start().await;
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk_config(&moto.endpoint).await);
    let url = sqs.create_queue().queue_name("deep").send().await.expect("CreateQueue").queue_url.expect("url");
    for batch in 0..100 {
        let entries = (0..10)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("{{\"n\": {}}}", batch * 10 + i))
                    .build()
                    .expect("entry")
            })
            .collect();
        sqs.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("SendMessageBatch");
    }
    let mut seen = std::collections::BTreeSet::new();
    let started = Instant::now();
    for _ in 0..5 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .send()
            .await
            .expect("ReceiveMessage");
        assert_eq!(got.messages().len(), 10);
        for m in got.messages() {
            assert!(seen.insert(m.body().unwrap_or_default().to_owned()), "handed out twice: {m:?}");
        }
    }
    let per_call = started.elapsed() / 5;
    eprintln!("ReceiveMessage of 10 from 1,000 queued: {per_call:?}");
    assert!(per_call < Duration::from_millis(300), "{per_call:?}");
}

/// A runtime that exits mid-invocation fails it at once (`Runtime.ExitError`), as Lambda
/// does, rather than at the timeout; the deadline header follows `set_deadline`.
#[tokio::test(flavor = "multi_thread")]
async fn a_taken_invocation_fails_at_once_when_its_runtime_is_gone() {
    use herald_e2e::lambda::{InvokeError, RuntimeApi};
    use std::sync::Arc;
    let runtime = Arc::new(RuntimeApi::start().await);
    runtime.set_deadline(Duration::from_secs(4));
    let invocation = {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.invoke(json!({"n": 1}), Duration::from_secs(30)).await })
    };
    // A "process" takes the invocation and never answers.
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let next = http
        .get(format!("http://{}/2018-06-01/runtime/invocation/next", runtime.address()))
        .send()
        .await
        .expect("next");
    let deadline: u128 = next.headers()["lambda-runtime-deadline-ms"].to_str().expect("ascii").parse().expect("ms");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis();
    assert!((3_000..=4_000).contains(&(deadline - now)), "deadline {} ms ahead", deadline - now);
    let started = Instant::now();
    assert_eq!(runtime.fail_taken(json!({"errorType": "Runtime.ExitError"})), 1);
    let result = invocation.await.expect("task");
    assert_eq!(result, Err(InvokeError::Function(json!({"errorType": "Runtime.ExitError"}))));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(runtime.fail_taken(json!({})), 0, "nothing else was taken");
}
