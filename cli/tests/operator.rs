//! The operator's commands (`suppress`, `unsuppress`, `unsubscribe`, `resubscribe`,
//! `status`) run as the real `herald` binary against a deployed state table: the
//! template's table on moto, named with `--table`. What they write is checked the way
//! the functions would meet it, by admitting requests through `DynamoStore` with the
//! admission the pipeline builds; `status` is checked to print the same line as on the
//! embedded store.

use std::sync::atomic::{AtomicUsize, Ordering};

use herald::adapters::aws::DynamoStore;
use herald::adapters::local::LocalStore;
use herald::policy::Policy;
use herald::ports::{Completion, EventStore, Lease, StateStore, SuppressionReason, Verdict};
use herald::receipt::Status;
use herald::receipt::event::EventKind;
use herald::request::DeliveryRequest;
use herald_e2e::moto::Moto;
use herald_e2e::template::Template;
use herald_e2e::{Run, Sandbox};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

/// The sandbox's pinned clock.
const NOW: &str = "2026-11-28T15:00:00Z";

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// A state table as deployed, on a moto of its own, and a private state folder.
struct Deployed {
    moto: Moto,
    table: String,
    store: DynamoStore,
    sb: Sandbox,
    checks: AtomicUsize,
}

impl Deployed {
    async fn start() -> Deployed {
        let moto = Moto::start().await;
        let sdk = moto.sdk_config(&moto.endpoint).await;
        let tables = Template::repo().create_tables(&sdk).await;
        let table = tables.get("StateTable").expect("the template's state table").clone();
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table.clone());
        Deployed { moto, table, store, sb: Sandbox::new(env!("CARGO_BIN_EXE_herald")), checks: AtomicUsize::new(0) }
    }

    /// `herald --table <the table> ARGS`, reaching AWS only at moto.
    async fn herald(&self, args: &[&str]) -> Run {
        self.herald_on(&self.table, args).await
    }

    async fn herald_on(&self, table: &str, args: &[&str]) -> Run {
        let mut cmd = self.sb.command(&[&["--table", table], args].concat());
        for (k, v) in self.moto.env(&self.moto.endpoint) {
            cmd.env(k, v);
        }
        for k in herald_e2e::moto::UNSET_ENV {
            cmd.env_remove(k);
        }
        run(cmd).await
    }

    /// What a function would decide for this request now: admitted, or refused by
    /// what the commands wrote. Each check is a request id of its own.
    async fn verdict(&self, channel: &str, tenant: Option<&str>, category: &str) -> Verdict {
        let id = format!("check-{}", self.checks.fetch_add(1, Ordering::Relaxed));
        let request = request(&id, channel, tenant, category);
        admit(&self.store, &request, now()).await
    }
}

async fn run(mut cmd: std::process::Command) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.unwrap().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A request from `u-ada` at the addresses the tests suppress.
fn request_json(id: &str, channel: &str, tenant: Option<&str>, category: &str) -> Value {
    let mut r = json!({
        "id": id, "channel": channel, "category": category, "template": "one-time-code", "data": {"code": "1"},
        "recipient": {"id": "u-ada", "email": "lin@example.net", "phone": "+447700900123"},
    });
    if let Some(t) = tenant {
        r["tenant"] = t.into();
    }
    r
}

fn request(id: &str, channel: &str, tenant: Option<&str>, category: &str) -> DeliveryRequest {
    DeliveryRequest::from_json(&request_json(id, channel, tenant, category).to_string()).unwrap()
}

/// Admits `request` as the pipeline would (default policy: no caps).
async fn admit(store: &dyn StateStore, request: &DeliveryRequest, at: Timestamp) -> Verdict {
    let key = request.destination().unwrap().suppression_key();
    let admission = Policy::default().admission(request, &request.fingerprint(), key, at);
    store.admit(&admission).await.unwrap()
}

async fn admitted(store: &dyn StateStore, request: &DeliveryRequest, at: Timestamp) -> Lease {
    match admit(store, request, at).await {
        Verdict::Admitted(lease) => lease,
        other => panic!("expected Admitted, got {other:?}"),
    }
}

fn outcome(status: Status, reason: Option<&str>, provider_message_id: Option<&str>, at: Timestamp) -> Completion {
    Completion {
        status,
        reason: reason.map(str::to_owned),
        provider_message_id: provider_message_id.map(str::to_owned),
        at,
        release_slots: false,
        retain_until: at + SignedDuration::from_hours(24 * 7),
    }
}

/// Neither stream names the addresses the commands were given.
fn assert_private(run: &Run) {
    for output in [&run.stdout, &run.stderr] {
        let lower = output.to_lowercase();
        assert!(!lower.contains("lin@") && !lower.contains("example.net"), "an address was echoed:\n{output}");
        assert!(!output.contains("900123"), "a phone number was echoed:\n{output}");
    }
}

fn ok(run: Run, stderr: &str) {
    run.assert_ok();
    assert!(run.stderr.contains(stderr), "expected {stderr:?} in:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_private(&run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suppression_and_consent_commands_change_the_deployed_table() {
    let d = Deployed::start().await;
    assert!(matches!(d.verdict("email", None, "marketing").await, Verdict::Admitted(_)));

    // The global list applies to every tenant; the address is matched as the pipeline
    // keys it, whatever its case.
    ok(d.herald(&["suppress", "Lin@Example.NET", "--reason", "hard_bounce"]).await, "herald: suppressed (hard_bounce)");
    let bounced = Verdict::Suppressed(SuppressionReason::HardBounce);
    assert_eq!(d.verdict("email", None, "transactional").await, bounced);
    assert_eq!(d.verdict("email", Some("acme"), "transactional").await, bounced);
    assert!(matches!(d.verdict("sms", None, "transactional").await, Verdict::Admitted(_)), "only the address");
    ok(d.herald(&["unsuppress", "lin@example.net"]).await, "herald: removed from the suppression list");
    assert!(matches!(d.verdict("email", None, "transactional").await, Verdict::Admitted(_)));
    ok(d.herald(&["unsuppress", "lin@example.net"]).await, "herald: was not suppressed");

    // A tenant's own list applies to that tenant only, and only `--tenant` lifts it.
    ok(
        d.herald(&["suppress", "+44 7700 900123", "--reason", "opted_out", "--tenant", "acme"]).await,
        "herald: suppressed (opted_out) on tenant acme's list",
    );
    assert_eq!(d.verdict("sms", Some("acme"), "transactional").await, Verdict::Suppressed(SuppressionReason::OptedOut));
    assert!(matches!(d.verdict("sms", Some("globex"), "transactional").await, Verdict::Admitted(_)));
    assert!(matches!(d.verdict("sms", None, "transactional").await, Verdict::Admitted(_)));
    ok(d.herald(&["unsuppress", "+447700900123"]).await, "herald: was not suppressed");
    assert_eq!(d.verdict("sms", Some("acme"), "transactional").await, Verdict::Suppressed(SuppressionReason::OptedOut));
    ok(
        d.herald(&["unsuppress", "+447700900123", "--tenant", "acme"]).await,
        "herald: removed from the suppression list on tenant acme's list",
    );
    assert!(matches!(d.verdict("sms", Some("acme"), "transactional").await, Verdict::Admitted(_)));

    // Consent: per recipient, per tenant, per category.
    ok(d.herald(&["unsubscribe", "u-ada", "--category", "Marketing"]).await, "recipient unsubscribed from marketing");
    let left = Verdict::Unsubscribed { category: "marketing".into() };
    assert_eq!(d.verdict("email", None, "marketing").await, left);
    assert!(matches!(d.verdict("email", None, "product-updates").await, Verdict::Admitted(_)));
    assert!(matches!(d.verdict("email", None, "transactional").await, Verdict::Admitted(_)));
    assert!(matches!(d.verdict("email", Some("acme"), "marketing").await, Verdict::Admitted(_)), "another tenant");
    ok(d.herald(&["unsubscribe", "u-ada", "--category", "*", "--tenant", "acme"]).await, "unsubscribed from *");
    assert!(matches!(d.verdict("sms", Some("acme"), "product-updates").await, Verdict::Unsubscribed { .. }));
    assert!(matches!(d.verdict("sms", Some("acme"), "transactional").await, Verdict::Admitted(_)));
    ok(d.herald(&["resubscribe", "u-ada", "--category", "marketing"]).await, "recipient resubscribed to marketing");
    assert!(matches!(d.verdict("email", None, "marketing").await, Verdict::Admitted(_)));
    assert!(matches!(d.verdict("email", Some("acme"), "marketing").await, Verdict::Unsubscribed { .. }));
    ok(d.herald(&["resubscribe", "u-ada", "--category", "*", "--tenant", "acme"]).await, "resubscribed to *");
    assert!(matches!(d.verdict("email", Some("acme"), "marketing").await, Verdict::Admitted(_)));

    let refused = d.herald(&["unsubscribe", "u-ada", "--category", "transactional"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("suppress the address instead"), "{}", refused.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reads_a_request_from_the_deployed_table() {
    let d = Deployed::start().await;

    // Sent, then delivered: the function's record and the return path's event.
    let sent = request("order-1", "email", None, "transactional");
    let lease = admitted(&d.store, &sent, now()).await;
    d.store.complete(&lease, &outcome(Status::Sent, None, Some("ses-1"), now())).await.unwrap();
    let delivered_at = now() + SignedDuration::from_secs(5);
    d.store.advance_delivery(&sent.idempotency_key(), EventKind::Delivered, delivered_at).await.unwrap();
    let out = d.herald(&["status", "order-1"]).await;
    out.assert_ok();
    assert_eq!(
        out.stdout,
        "{\"request_id\":\"order-1\",\"status\":\"sent\",\"provider_message_id\":\"ses-1\",\
         \"at\":\"2026-11-28T15:00:00Z\",\"delivery\":{\"event\":\"delivered\",\"at\":\"2026-11-28T15:00:05Z\"}}\n"
    );

    // Held by an attempt that has not finished.
    admitted(&d.store, &request("order-2", "email", None, "transactional"), now()).await;
    let out = d.herald(&["status", "order-2"]).await;
    out.assert_ok();
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!({"request_id": "order-2", "status": "in_progress", "at": NOW})
    );

    // A tenant's request is found under its tenant only.
    let failed = request("order-3", "sms", Some("acme"), "transactional");
    let lease = admitted(&d.store, &failed, now()).await;
    let refusal = outcome(Status::Failed, Some("provider:MessageRejected"), None, now());
    d.store.complete(&lease, &refusal).await.unwrap();
    let out = d.herald(&["status", "order-3", "--tenant", "acme"]).await;
    out.assert_ok();
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!({"request_id": "order-3", "tenant": "acme", "status": "failed", "reason": "provider:MessageRejected",
               "at": NOW})
    );
    for unknown in [&["status", "order-3"][..], &["status", "order-3", "--tenant", "globex"], &["status", "order-9"]] {
        let out = d.herald(unknown).await;
        assert_eq!(out.code, 3, "{unknown:?}: {}", out.stderr);
        assert!(out.stdout.is_empty());
        assert!(out.stderr.contains("herald: no receipt recorded for that id"), "{}", out.stderr);
    }

    // What a function decides because of an operator's entry shows as its outcome.
    ok(d.herald(&["suppress", "lin@example.net"]).await, "suppressed (manual)");
    let refused = request("order-4", "email", None, "transactional");
    assert_eq!(admit(&d.store, &refused, now()).await, Verdict::Suppressed(SuppressionReason::Manual));
    let out = d.herald(&["status", "order-4"]).await;
    out.assert_ok();
    let line: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!((&line["status"], &line["reason"]), (&json!("suppressed"), &json!("suppressed:manual")));
}

/// The same request, sent on the embedded store and recorded alike in the table,
/// prints the same `status` line on both, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_prints_the_same_line_on_both_stores() {
    let d = Deployed::start().await;
    let raw = request_json("same-1", "email", Some("acme"), "transactional");
    let file = d.sb.write("same.json", &raw.to_string());
    let sent = d.sb.run(&["send", file.to_str().unwrap()]);
    sent.assert_ok();
    assert_eq!(sent.outcomes(), [("same-1".to_owned(), "sent".to_owned(), String::new())]);

    let embedded = d.sb.run(&["status", "same-1", "--tenant", "acme"]);
    embedded.assert_ok();
    let line: Value = serde_json::from_str(&embedded.stdout).unwrap();
    let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_unstable();
    assert_eq!(sorted_keys, ["at", "provider_message_id", "request_id", "status", "tenant"], "{line}");
    assert_eq!(
        (&line["request_id"], &line["tenant"], &line["status"]),
        (&json!("same-1"), &json!("acme"), &json!("sent"))
    );
    let provider_id = line["provider_message_id"].as_str().unwrap();
    assert_eq!(provider_id, sent.receipts()[0]["provider_message_id"], "the id the receipt carried");
    let at: Timestamp = line["at"].as_str().unwrap().parse().unwrap();

    // The table knows nothing of it yet; then the function's record of the same outcome.
    let unknown = d.herald(&["status", "same-1", "--tenant", "acme"]).await;
    assert_eq!(unknown.code, 3, "{}", unknown.stderr);
    let same = DeliveryRequest::from_json(&raw.to_string()).unwrap();
    let lease = admitted(&d.store, &same, at).await;
    d.store.complete(&lease, &outcome(Status::Sent, None, Some(provider_id), at)).await.unwrap();
    let deployed = d.herald(&["status", "same-1", "--tenant", "acme"]).await;
    deployed.assert_ok();
    assert_eq!(deployed.stdout, embedded.stdout);

    // Then a delivery event on both.
    let local = LocalStore::open(&d.sb.state()).unwrap();
    let key = same.idempotency_key();
    let delivered_at = at + SignedDuration::from_secs(3);
    for store in [&local as &dyn EventStore, &d.store] {
        store.advance_delivery(&key, EventKind::Delivered, delivered_at).await.unwrap();
    }
    let embedded = d.sb.run(&["status", "same-1", "--tenant", "acme"]);
    let deployed = d.herald(&["status", "same-1", "--tenant", "acme"]).await;
    embedded.assert_ok();
    assert_eq!(deployed.stdout, embedded.stdout);
    let line: Value = serde_json::from_str(&embedded.stdout).unwrap();
    assert_eq!(line["delivery"], json!({"event": "delivered", "at": "2026-11-28T15:00:03Z"}));

    // In progress on both.
    let held = request("same-2", "sms", None, "transactional");
    admitted(&local, &held, now()).await;
    admitted(&d.store, &held, now()).await;
    let embedded = d.sb.run(&["status", "same-2"]);
    let deployed = d.herald(&["status", "same-2"]).await;
    embedded.assert_ok();
    assert_eq!(deployed.stdout, embedded.stdout);
    assert_eq!(
        embedded.stdout,
        "{\"request_id\":\"same-2\",\"status\":\"in_progress\",\"at\":\"2026-11-28T15:00:00Z\"}\n"
    );
}

/// A failure names the table and what was being done, never the address; and the
/// commands that run the pipeline refuse a table rather than act on local state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_name_the_table_and_the_operation_but_not_the_address() {
    let d = Deployed::start().await;
    for (args, doing, call) in [
        (&["suppress", "lin@example.net"][..], "suppressing the address", "PutItem"),
        (&["unsuppress", "+447700900123", "--tenant", "acme"], "removing the suppression", "DeleteItem"),
        (&["unsubscribe", "u-ada", "--category", "marketing"], "recording consent", "UpdateItem"),
        (&["status", "order-1"], "reading the request's state", "GetItem"),
    ] {
        let out = d.herald_on("no-such-table", args).await;
        assert_eq!(out.code, 1, "{args:?}: {}", out.stderr);
        let expected = format!(
            "herald: DynamoDB table no-such-table: {doing}: state store: dynamodb {call}: ResourceNotFoundException"
        );
        assert!(out.stderr.contains(&expected), "{args:?}: expected {expected:?} in:\n{}", out.stderr);
        assert_private(&out);
    }

    // Without a region the SDK would only say "dispatch failure".
    let mut cmd = d.sb.command(&["--table", &d.table, "suppress", "lin@example.net"]);
    for (k, v) in d.moto.env(&d.moto.endpoint) {
        cmd.env(k, v);
    }
    cmd.env_remove("AWS_REGION").env_remove("AWS_DEFAULT_REGION");
    let out = run(cmd).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("DynamoDB table {}: no AWS region", d.table)), "{}", out.stderr);
    assert_private(&out);

    // Nor without credentials.
    let mut cmd = d.sb.command(&["--table", &d.table, "status", "order-1"]);
    for (k, v) in d.moto.env(&d.moto.endpoint) {
        cmd.env(k, v);
    }
    for k in herald_e2e::moto::UNSET_ENV {
        cmd.env_remove(k);
    }
    cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
    let out = run(cmd).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains(&format!("DynamoDB table {}: no AWS credentials", d.table)), "{}", out.stderr);

    // An empty name is an error, not the embedded store (a lookup that failed).
    let out = d.herald_on("", &["suppress", "lin@example.net"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("invalid value '' for '--table <TABLE>': empty"), "{}", out.stderr);
    assert_private(&out);

    // HERALD_TABLE names the table too.
    let mut cmd = d.sb.command(&["suppress", "lin@example.net"]);
    for (k, v) in d.moto.env(&d.moto.endpoint) {
        cmd.env(k, v);
    }
    cmd.env("HERALD_TABLE", &d.table);
    let out = run(cmd).await;
    ok(out, "herald: suppressed (manual)");
    assert_eq!(d.verdict("email", None, "transactional").await, Verdict::Suppressed(SuppressionReason::Manual));
    let local = d.sb.run(&["unsuppress", "lin@example.net"]);
    ok(local, "was not suppressed");
    assert_eq!(
        d.verdict("email", None, "transactional").await,
        Verdict::Suppressed(SuppressionReason::Manual),
        "without a table the command acted on the embedded store"
    );

    for command in ["send", "flush"] {
        let args: &[&str] = if command == "send" { &["send", "examples/order-email.json"] } else { &["flush"] };
        let out = d.herald(args).await;
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("herald enqueue"), "{}", out.stderr);
        assert!(out.stdout.is_empty());
    }
    assert!(d.sb.outbox_files().is_empty(), "nothing was sent locally");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_a_410_disabled_is_listed_and_enabled_again() {
    let d = Deployed::start().await;
    d.store.disable_endpoint("crm", now()).await.unwrap();
    let listed = d.herald(&["webhooks", "disabled"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.starts_with("crm\tdisabled since "), "{}", listed.stdout);
    let enabled = d.herald(&["webhooks", "enable", "crm"]).await;
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    assert!(enabled.stderr.contains("crm enabled"), "{}", enabled.stderr);
    assert!(d.store.disabled_endpoints().await.unwrap().is_empty());
    let again = d.herald(&["webhooks", "enable", "crm"]).await;
    assert!(again.stderr.contains("was not disabled"), "{}", again.stderr);
}
