//! The real `herald-inbound` binary behind the Lambda Runtime API emulator, on moto:
//! the table, queues and key ring created from `infra/template.yaml`, the environment
//! the template sets, and Function URL events (API Gateway v2 payloads) as Lambda
//! delivers them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use herald::adapters::aws::DynamoStore;
use herald::ports::{Admission, ConsentCheck, StateStore, Verdict};
use herald::receipt::unsubscribe::{UnsubscribeClaims, UnsubscribeKeys, sign};
use herald::request::{IdempotencyKey, RecipientKey, RequestId, SuppressionKey, TenantId};
use herald_e2e::lambda::{FunctionProcess, RuntimeApi};
use herald_e2e::moto::Moto;
use herald_e2e::stack::take_json;
use herald_e2e::template::{Overrides, Template};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const ID: &str = "InboundFunction";
const RECIPIENT: &str = "cust-e2e-4711";

/// One execution environment of the inbound function on a fresh moto.
struct Deployment {
    _moto: Moto,
    sqs: aws_sdk_sqs::Client,
    dynamo: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
    runtime: RuntimeApi,
    function: FunctionProcess,
    env: Vec<(String, String)>,
    _logs: tempfile::TempDir,
}

impl Deployment {
    /// The template's resources and environment, with `extra` on top.
    async fn start(extra: &[(&str, &str)]) -> Deployment {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config(&moto.endpoint).await;
        let template = Template::repo();
        let deployed = template.create_resources(&sdk, &Overrides::default()).await;
        assert_eq!(template.unresolved_env(ID, &deployed), Vec::<String>::new());
        let mut env = moto.env(&moto.endpoint);
        env.extend(template.resolved_env(ID, &deployed));
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let runtime = RuntimeApi::start().await;
        let logs = tempfile::tempdir().unwrap();
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_herald-inbound"));
        let function = FunctionProcess::spawn(&bin, &runtime, &env, logs.path());
        Deployment {
            sqs: aws_sdk_sqs::Client::new(&sdk),
            dynamo: aws_sdk_dynamodb::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            _moto: moto,
            runtime,
            function,
            env,
            _logs: logs,
        }
    }

    fn var(&self, name: &str) -> &str {
        self.env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or_default()
    }

    /// The key ring the template's secret holds, as the function reads it.
    async fn keys(&self) -> UnsubscribeKeys {
        let arn = self.var("HERALD_UNSUBSCRIBE_SECRET_ARN");
        let secret = self.secrets.get_secret_value().secret_id(arn).send().await.unwrap();
        UnsubscribeKeys::parse(secret.secret_string().unwrap()).unwrap()
    }

    /// Waits until the function asks for its first event (true) or exits (false).
    async fn started(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !self.runtime.next_calls().is_empty() {
                return true;
            }
            if self.function.exited().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "neither started nor failed in 20 s:\n{}", self.function.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One request through the Function URL: the Lambda response (statusCode, headers, body).
    async fn call(&self, method: &str, path: &str, query: &str, form: Option<&str>) -> Value {
        let mut headers = json!({"host": "abc.lambda-url.us-east-1.on.aws", "user-agent": "e2e"});
        if form.is_some() {
            headers["content-type"] = "application/x-www-form-urlencoded".into();
        }
        let event = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous", "apiId": "abc", "domainName": "abc.lambda-url.us-east-1.on.aws",
                "domainPrefix": "abc",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.7", "userAgent": "e2e"},
                "requestId": "r", "routeKey": "$default", "stage": "$default",
                "time": "01/Mar/2026:12:00:00 +0000", "timeEpoch": 1_772_366_400_000_i64
            },
            // Function URLs base64-encode form bodies.
            "body": form.map(|f| STANDARD.encode(f)),
            "isBase64Encoded": form.is_some()
        });
        self.runtime.invoke(event, Duration::from_secs(20)).await.unwrap_or_else(|e| {
            panic!("{method} {path}: {e:?}\n{}", self.function.logs());
        })
    }

    /// Whether a `category` message to the recipient is still admitted, per DynamoDB.
    async fn subscribed(&self, category: &str, n: u32) -> bool {
        let store = DynamoStore::new(self.dynamo.clone(), self.var("HERALD_TABLE"));
        let tenant = TenantId::parse("acme").unwrap();
        let now = Timestamp::now();
        let admission = Admission {
            idempotency_key: IdempotencyKey::new(Some(&tenant), &RequestId::parse(&format!("e2e-{n}")).unwrap()),
            fingerprint: format!("f-{n}"),
            suppression_key: SuppressionKey::from_stored("email:e2e@example.com"),
            tenant_suppression_key: None,
            consent: Some(ConsentCheck {
                recipient_key: RecipientKey::new(Some(&tenant), RECIPIENT),
                category: category.into(),
            }),
            caps: Vec::new(),
            now,
            lock_expires_at: now + SignedDuration::from_mins(1),
            retain_until: now + SignedDuration::from_hours(1),
        };
        match store.admit(&admission).await.unwrap() {
            Verdict::Admitted(_) => true,
            Verdict::Unsubscribed { .. } => false,
            other => panic!("{other:?}"),
        }
    }
}

fn status(response: &Value) -> i64 {
    response["statusCode"].as_i64().unwrap_or_default()
}

fn body(response: &Value) -> &str {
    response["body"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_click_unsubscribe_through_the_real_binary() {
    let mut d = Deployment::start(&[]).await;
    assert!(d.started().await, "the function did not start:\n{}", d.function.logs());
    let claims = UnsubscribeClaims {
        tenant: Some("acme".into()),
        recipient_id: RECIPIENT.into(),
        category: "marketing".into(),
        exp: Timestamp::now().as_second() + 86_400,
    };
    let token = sign(&d.keys().await, &claims);
    let query = format!("token={token}");

    // A scanner's GET: the page, nothing recorded.
    let page = d.call("GET", "/unsubscribe", &query, None).await;
    assert_eq!(status(&page), 200, "{page}");
    assert_eq!(page["headers"]["content-type"], "text/html; charset=utf-8");
    assert_eq!(page["headers"]["cache-control"], "no-store");
    assert!(body(&page).contains("<form method=\"post\">"), "{page}");
    assert!(d.subscribed("marketing", 1).await);

    // The mail provider's one-click POST.
    let done = d.call("POST", "/unsubscribe", &query, Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(status(&done), 200, "{done}\n{}", d.function.logs());
    assert!(!d.subscribed("marketing", 2).await, "consent recorded in DynamoDB");
    assert!(d.subscribed("news", 3).await);
    let sqs = d.sqs.clone();
    let events = take_json(&sqs, d.var("HERALD_RECEIPTS_QUEUE_URL")).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "unsubscribed");
    assert_eq!(events[0]["provider"], "herald");
    assert_eq!(events[0]["recipient_id"], RECIPIENT);
    assert_eq!(events[0]["category"], "marketing");

    // Replayed: 409, nothing more.
    let again = d.call("POST", &format!("/unsubscribe/{token}"), "", Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(status(&again), 409, "{again}");
    assert!(take_json(&sqs, d.var("HERALD_RECEIPTS_QUEUE_URL")).await.is_empty());

    // A forged token: 403; the log says why, without the token or the person.
    let forged = token.replacen("v2.k1.", "v2.k9.", 1);
    let refused = d.call("POST", "/unsubscribe", &format!("token={forged}"), Some("List-Unsubscribe=One-Click")).await;
    assert_eq!(status(&refused), 403, "{refused}");
    // No topics pinned (the template's default): /sns is off.
    assert_eq!(status(&d.call("POST", "/sns", "", Some("{}")).await), 404);

    let logs = d.function.logs();
    assert!(logs.contains("key id that is not in the key ring"), "{logs}");
    let payload = token.split('.').nth(2).unwrap();
    for secret in [token.as_str(), payload, RECIPIENT] {
        assert!(!logs.contains(secret), "the logs contain {secret}:\n{logs}");
    }
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(line).is_ok(), "not a JSON log line: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_the_environment_stops_it_before_the_first_request() {
    let mut d = Deployment::start(&[("HERALD_UNSUBSCRIBE_SECRET", "a-key-that-must-not-be-here-0123")]).await;
    assert!(!d.started().await, "the function started:\n{}", d.function.logs());
    let logs = d.function.logs();
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET is set"), "{logs}");
    assert!(!logs.contains("a-key-that-must-not-be-here"), "{logs}");
}
