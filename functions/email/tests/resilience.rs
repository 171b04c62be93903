//! The resilience suite on the email function: its real binary, several execution
//! environments killed at random, moto behind a proxy failing a fifth of the function's
//! AWS calls (DynamoDB, SQS deferrals and receipts, SES `SendEmail`, whose answers it also
//! loses), and a thousand-odd mixed requests. The engine and what it asserts are in
//! `tests/src/resilience.rs`; this file is what is particular to email.

use std::path::PathBuf;

use herald_e2e::moto::Moto;
use herald_e2e::resilience::{self, BoxFuture, Channel, Scenario};
use serde_json::{Value, json};

struct Email;

impl Channel for Email {
    fn function(&self) -> &'static str {
        "EmailFunction"
    }

    fn binary(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_BIN_EXE_herald-email"))
    }

    fn config(&self) -> String {
        r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={token}"
"#
        .to_owned()
    }

    /// Nothing beyond the template's environment: the unsubscribe key ring is the
    /// secret the harness created in moto, named by HERALD_UNSUBSCRIBE_SECRET_ARN.
    fn env(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn prepare<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, ()> {
        // moto, like SES, refuses mail from an unverified sender.
        Box::pin(moto.verify_email_identity("acme.example"))
    }

    fn address(&self, n: usize) -> String {
        format!("user{n}@example.com")
    }

    fn invalid_address(&self) -> String {
        "not-an-address".to_owned()
    }

    fn request(&self, id: &str, recipient: &str, address: &str, category: &str) -> Value {
        let (template, data) = if category == "transactional" {
            (
                "order-confirmation",
                json!({"customer": {"first_name": "Ada"}, "order": {"number": id, "total": "$1", "items": []}}),
            )
        } else {
            ("newsletter", json!({"intro": "Hi", "articles": []}))
        };
        json!({"id": id, "channel": "email", "category": category,
               "recipient": {"id": recipient, "email": address},
               "template": template, "data": data})
    }

    fn send_operation(&self) -> (&'static str, &'static str) {
        ("sesv2", "SendEmail")
    }

    /// moto drops `EmailTags`; the proxy's record of the call keeps them.
    fn sent_request_id(&self, call: &Value) -> Option<String> {
        call["EmailTags"]
            .as_array()?
            .iter()
            .find(|t| t["Name"] == "herald-request-id")
            .and_then(|t| t["Value"].as_str())
            .map(str::to_owned)
    }

    fn sent_address(&self, call: &Value) -> Option<String> {
        call["Destination"]["ToAddresses"][0].as_str().map(str::to_owned)
    }

    fn sent_message_id(&self, answer: &Value) -> Option<String> {
        answer["MessageId"].as_str().map(str::to_owned)
    }

    fn provider_messages<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async move {
            moto.sent_emails().await.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect()
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_requests_under_faults_and_kills_keep_the_delivery_guarantees() {
    let scenario = Scenario::standard();
    let report = resilience::run(&Email, &scenario).await;
    report.print();
    report.assert_holds();
}
