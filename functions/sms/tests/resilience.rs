//! The resilience suite on the SMS function: its real binary, several execution
//! environments killed at random, moto behind a proxy failing a fifth of the function's
//! AWS calls (DynamoDB, SQS deferrals and receipts, SNS `Publish`, whose answers it also
//! loses), and a thousand-odd mixed requests. The engine and what it asserts (caps,
//! duplicates, at most once, one terminal receipt per request, nothing lost) are in
//! `tests/src/resilience.rs`; this file is what is particular to SMS.

use std::path::PathBuf;

use herald_e2e::moto::Moto;
use herald_e2e::proxy::{form_fields, xml_text};
use herald_e2e::resilience::{self, BoxFuture, Channel, Scenario};
use serde_json::{Value, json};

struct Sms;

/// The shipped templates put the request id where this suite finds it again: first in
/// the one-time code's text, after the brand in the newsletter's.
const BRAND: &str = "Acme: ";

impl Channel for Sms {
    fn function(&self) -> &'static str {
        "SmsFunction"
    }

    fn binary(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_herald-sms"))
    }

    /// Quiet hours off: by default they hold non-transactional SMS at night, which would turn
    /// half of this suite's sends into deferrals depending on the hour it runs.
    fn config(&self) -> String {
        "quiet_hours = \"off\"\n\n[sms]\nmax_segments = 3\n".to_owned()
    }

    fn env(&self) -> Vec<(String, String)> {
        // The opt-out question goes through the faulty proxy too (moto: no number here
        // ends in 99, the ones it reports opted out).
        vec![("HERALD_SNS_OPT_OUT_CHECK".to_owned(), "true".to_owned())]
    }

    fn prepare<'a>(&'a self, _moto: &'a Moto) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn address(&self, n: usize) -> String {
        format!("+1206{:07}", 5_550_001 + n * 10)
    }

    fn invalid_address(&self) -> String {
        "+1 206 555".to_owned()
    }

    fn request(&self, id: &str, recipient: &str, address: &str, category: &str) -> Value {
        let (template, data) = if category == "transactional" {
            ("one-time-code", json!({"code": id}))
        } else {
            ("newsletter", json!({"intro": id, "articles": []}))
        };
        json!({"id": id, "channel": "sms", "category": category,
               "recipient": {"id": recipient, "phone": address},
               "template": template, "data": data})
    }

    fn send_operation(&self) -> (&'static str, &'static str) {
        ("sns", "Publish")
    }

    /// SNS carries no tags: the id is in the text the templates render.
    fn sent_request_id(&self, call: &Value) -> Option<String> {
        let message = form_fields(call).remove("Message")?;
        let text = message.strip_prefix(BRAND).unwrap_or(&message);
        text.split_whitespace().next().map(str::to_owned)
    }

    fn sent_address(&self, call: &Value) -> Option<String> {
        form_fields(call).remove("PhoneNumber")
    }

    fn sent_message_id(&self, answer: &Value) -> Option<String> {
        xml_text(answer, "MessageId")
    }

    fn provider_messages<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            moto.sent_sms().await.iter().filter_map(|m| m["message_id"].as_str().map(str::to_owned)).collect()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_requests_under_faults_and_kills_keep_the_delivery_guarantees() {
    // The opt-out check is one more call in each record's budget (15 x 500 ms).
    let scenario = Scenario { invoke_timeout: std::time::Duration::from_secs(8), ..Scenario::standard() };
    let report = resilience::run(&Sms, &scenario).await;
    report.print();
    report.assert_holds();
}
