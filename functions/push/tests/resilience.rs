//! The resilience suite on the push function, through SNS mobile push: its real binary,
//! several execution environments killed at random, moto behind a proxy failing a fifth
//! of the function's AWS calls (DynamoDB, SQS deferrals and receipts, SNS `Publish` to
//! platform endpoints, whose answers it also loses), and a thousand-odd mixed requests.
//! The engine and what it asserts (caps, duplicates, at most once, one terminal receipt
//! per request, nothing lost) are in `tests/src/resilience.rs`; this file is what is
//! particular to push. SNS is the provider here because its sends pass the fault proxy;
//! the HTTP providers' answers and faults are covered in `providers.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use herald_e2e::moto::Moto;
use herald_e2e::proxy::{form_fields, xml_text};
use herald_e2e::resilience::{self, BoxFuture, Channel, Scenario};
use serde_json::{Value, json};

/// Planned endpoints look like real ARNs (so a planned body parses as it will); the real
/// ones are minted by moto in `provision`.
const PLANNED: &str = "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/planned/p";

#[derive(Default)]
struct Push {
    /// Planned address -> the endpoint ARN moto made for it, and back.
    real: Mutex<BTreeMap<String, String>>,
    planned: Mutex<BTreeMap<String, String>>,
}

impl Channel for Push {
    fn function(&self) -> &'static str {
        "PushFunction"
    }

    fn binary(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_herald-push"))
    }

    /// Quiet hours off: by default they hold non-transactional push at night.
    fn config(&self) -> String {
        "quiet_hours = \"off\"\n".to_owned()
    }

    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn prepare<'a>(&'a self, _moto: &'a Moto) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn provision<'a>(&'a self, moto: &'a Moto, addresses: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let sns = aws_sdk_sns::Client::new(&moto.sdk_config(&moto.endpoint).await);
            let app = sns
                .create_platform_application()
                .name("resilience")
                .platform("GCM")
                .attributes("PlatformCredential", "test")
                .send()
                .await
                .expect("CreatePlatformApplication");
            let app = app.platform_application_arn().unwrap_or_default().to_owned();
            for planned in addresses.into_iter().filter(|a| a.starts_with(PLANNED)) {
                let token = format!("token-{}", &planned[PLANNED.len()..]);
                let made = sns
                    .create_platform_endpoint()
                    .platform_application_arn(&app)
                    .token(token)
                    .send()
                    .await
                    .expect("CreatePlatformEndpoint");
                let arn = made.endpoint_arn().unwrap_or_default().to_owned();
                self.real.lock().unwrap().insert(planned.clone(), arn.clone());
                self.planned.lock().unwrap().insert(arn, planned);
            }
        })
    }

    fn enqueued_text(&self, planned: &str) -> String {
        let Some(at) = planned.find(PLANNED) else { return planned.to_owned() };
        let end = at + planned[at..].find('"').unwrap_or(planned.len() - at);
        match self.real.lock().unwrap().get(&planned[at..end]) {
            Some(real) => format!("{}{real}{}", &planned[..at], &planned[end..]),
            None => planned.to_owned(),
        }
    }

    fn address(&self, n: usize) -> String {
        format!("{PLANNED}{n:06}")
    }

    /// A platform herald does not serve: refused before admission.
    fn invalid_address(&self) -> String {
        "arn:aws:sns:us-east-1:123456789012:endpoint/ADM/resilience/x".to_owned()
    }

    fn request(&self, id: &str, recipient: &str, address: &str, category: &str) -> Value {
        let (template, data) = if category == "transactional" {
            ("one-time-code", json!({"code": id}))
        } else {
            ("newsletter", json!({"intro": id, "articles": []}))
        };
        json!({"id": id, "channel": "push", "category": category,
               "recipient": {"id": recipient, "push": {"platform": "sns", "endpoint_arn": address}},
               "template": template, "data": data})
    }

    fn send_operation(&self) -> (&'static str, &'static str) {
        ("sns", "Publish")
    }

    /// The templates put the request id first in the body, which is the message's `default`.
    fn sent_request_id(&self, call: &Value) -> Option<String> {
        let message: Value = serde_json::from_str(&form_fields(call).remove("Message")?).ok()?;
        message["default"].as_str()?.split_whitespace().next().map(str::to_owned)
    }

    fn sent_address(&self, call: &Value) -> Option<String> {
        let arn = form_fields(call).remove("TargetArn")?;
        Some(self.planned.lock().unwrap().get(&arn).cloned().unwrap_or(arn))
    }

    fn sent_message_id(&self, answer: &Value) -> Option<String> {
        xml_text(answer, "MessageId")
    }

    fn provider_messages<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            let data = moto.data().await;
            let mut ids = Vec::new();
            for endpoint in data["sns"]["PlatformEndpoint"].as_array().cloned().unwrap_or_default() {
                ids.extend(
                    endpoint["messages"].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default(),
                );
            }
            ids
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_requests_under_faults_and_kills_keep_the_delivery_guarantees() {
    // Three more calls in each record's budget (the FCM access token, a refused
    // credential renewed and the resend, or a token_invalid event and suppression):
    // 17 x 500 ms fits the invocation, as 17 x 2.5 s fits the template's 45 s.
    let scenario = Scenario { invoke_timeout: std::time::Duration::from_secs(9), ..Scenario::standard() };
    let report = resilience::run(&Push::default(), &scenario).await;
    report.print();
    report.assert_holds();
}
