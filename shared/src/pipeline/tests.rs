//! The pipeline against in-memory twins of every port.

use std::path::Path;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::*;
use crate::policy::Guarantee;
use crate::ports::{FixedClock, SuppressionEntry, SuppressionReason};
use crate::request::{RecipientKey, SuppressionKey};
use crate::testing::{MemoryStore, RecordingSender, Sent};

/// The idempotency key of a request without a tenant.
fn key(id: &str) -> IdempotencyKey {
    IdempotencyKey::new(None, &crate::request::RequestId::parse(id).unwrap())
}

const CONFIG: &str = r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/u?token={token}"
unsubscribe_secret = "0123456789abcdef0123"

[sms]
max_segments = 2

[quiet_hours]
start = "21:00"
end = "08:00"
channels = ["sms"]
default_timezone = "UTC"

[[caps]]
category = "marketing"
limit = 2
window = "24h"
"#;

struct Rig {
    pipeline: Pipeline,
    store: Arc<MemoryStore>,
    sender: Arc<RecordingSender>,
    _dir: tempfile::TempDir,
}

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn rig_at(now: &str) -> Rig {
    rig_with(CONFIG, now)
}

/// A rig on another configuration.
fn rig_with(config: &str, now: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "hello/email.subject.hbs", "Hi {{name}}\n");
    write(
        t,
        "hello/email.html.hbs",
        "<p>Hello {{name}}</p>{{#if herald.unsubscribe_url}}<a href=\"{{herald.unsubscribe_url}}\">u</a>{{/if}}",
    );
    write(t, "hello/sms.hbs", "Hello {{name}}");
    write(t, "hello/push.body.hbs", "Hello {{name}}");
    write(t, "hello/push.data.json.hbs", "{\"name\": \"{{name}}\", \"n\": 3}");
    write(t, "emailonly/email.subject.hbs", "S");
    write(t, "emailonly/email.html.hbs", "<p>x</p>");
    let catalogue = Arc::new(Catalogue::load(t).unwrap());
    let settings = Arc::new(Settings::parse(config, "test", t, None).unwrap());
    let store = Arc::new(MemoryStore::new());
    let sender = Arc::new(RecordingSender::new());
    let ports = Ports {
        store: store.clone(),
        senders: Senders::all(sender.clone()),
        scheduler: store.clone(),
        clock: Arc::new(FixedClock(now.parse().unwrap())),
    };
    Rig { pipeline: Pipeline::new(catalogue, settings, ports), store, sender, _dir: dir }
}

fn rig() -> Rig {
    rig_at("2026-11-28T12:00:00Z")
}

fn req(id: &str, channel: &str, category: &str) -> serde_json::Value {
    json!({
        "id": id, "channel": channel, "category": category,
        "recipient": {"id": "u1", "email": "ada@example.com", "phone": "+14155550123",
                      "push": {"platform": "apns", "token": "ab".repeat(32)}},
        "template": "hello", "data": {"name": "Ada"}, "metadata": {"journey": "j1"}
    })
}

async fn run(rig: &Rig, v: &serde_json::Value) -> Receipt {
    match rig.pipeline.process_json(&v.to_string(), Some("test")).await {
        Outcome::Receipt(r) => r,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

fn reason(r: &Receipt) -> &str {
    r.reason.as_deref().unwrap_or("")
}

#[tokio::test]
async fn sends_an_email_with_unsubscribe_headers_for_marketing_only() {
    let rig = rig();
    let r = run(&rig, &req("m1", "email", "marketing")).await;
    assert_eq!(r.status, Status::Sent);
    assert_eq!(r.provider_message_id.as_deref(), Some("msg-1"));
    assert_eq!(r.metadata["journey"], "j1");
    assert_eq!(r.source.as_deref(), Some("test"));
    let t = run(&rig, &req("t1", "email", "transactional")).await;
    assert_eq!(t.status, Status::Sent);
    let sent = rig.sender.sent();
    let (Sent::Email(m), Sent::Email(tx)) = (&sent[0], &sent[1]) else { panic!("{sent:?}") };
    assert_eq!(m.subject, "Hi Ada");
    assert_eq!(m.from, "Acme <hello@acme.example>");
    let header = |e: &OutboundEmail, n: &str| e.headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let list = header(m, "List-Unsubscribe").unwrap();
    assert!(list.starts_with("<https://acme.example/u?token="), "{list}");
    assert_eq!(header(m, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    // The same signed URL is in the body, and it verifies.
    let url = list.trim_start_matches('<').trim_end_matches('>');
    let token = url.split("token=").nth(1).unwrap();
    // handlebars escapes `=` as `&#x3D;` in HTML, which browsers decode back.
    assert!(m.html.contains(&format!("token&#x3D;{token}")), "{}", m.html);
    assert!(m.text.contains(url), "the text part decodes entities: {}", m.text);
    let keys = unsubscribe::UnsubscribeKeys::parse("0123456789abcdef0123").unwrap();
    let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
    let claims = unsubscribe::verify(&keys, token, now).unwrap();
    assert_eq!((claims.recipient_id.as_str(), claims.category.as_str()), ("u1", "marketing"));
    // Valid for the default year from sending, not a second longer.
    assert_eq!(claims.exp, now.as_second() + 365 * 86_400);
    let expiry = Timestamp::from_second(claims.exp).unwrap();
    assert_eq!(unsubscribe::verify(&keys, token, expiry), Err(unsubscribe::TokenError::Expired));
    assert!(m.text.contains("Hello Ada"), "text part generated from html: {}", m.text);
    assert!(m.tags.contains(&("herald-request-id".into(), "m1".into())));
    assert!(header(tx, "List-Unsubscribe").is_none());
    assert!(!tx.html.contains("<a href"), "no unsubscribe link in transactional mail");
}

#[tokio::test]
async fn sms_and_push_are_rendered_without_html_escaping() {
    let rig = rig();
    let mut v = req("s1", "sms", "transactional");
    v["data"]["name"] = json!("<Tom & Jerry>");
    assert_eq!(run(&rig, &v).await.status, Status::Sent);
    let mut v = req("p1", "push", "transactional");
    v["data"]["name"] = json!("Tom \"T\" & Jerry");
    assert_eq!(run(&rig, &v).await.status, Status::Sent);
    let mut v = req("e1", "email", "transactional");
    v["data"]["name"] = json!("<script>x</script>");
    assert_eq!(run(&rig, &v).await.status, Status::Sent);
    let sent = rig.sender.sent();
    let Sent::Sms(sms) = &sent[0] else { panic!() };
    assert_eq!(sms.body, "Hello <Tom & Jerry>");
    assert_eq!(sms.segments, 1);
    let Sent::Push(push) = &sent[1] else { panic!() };
    assert_eq!(push.body, "Hello Tom \"T\" & Jerry");
    assert_eq!(push.data["name"], "Tom \"T\" & Jerry", "JSON-escaped in the data template");
    assert_eq!(push.data["n"], "3", "non-string values are stringified");
    let Sent::Email(email) = &sent[2] else { panic!() };
    assert!(email.html.contains("&lt;script&gt;"), "{}", email.html);
    assert!(!email.html.contains("<script>"));
}

#[tokio::test]
async fn subject_line_breaks_from_data_are_folded() {
    let rig = rig();
    let mut v = req("inj", "email", "transactional");
    v["data"]["name"] = json!("Ada\r\nBcc: victim@example.com");
    assert_eq!(run(&rig, &v).await.status, Status::Sent);
    let Sent::Email(m) = &rig.sender.sent()[0] else { panic!() };
    assert_eq!(m.subject, "Hi Ada Bcc: victim@example.com");
    assert!(!m.subject.contains(['\r', '\n']));
}

#[tokio::test]
async fn invalid_input_is_rejected_with_what_could_be_read() {
    let rig = rig();
    let r = rig.pipeline.process_json("{oops", None).await;
    let r = r.receipt().unwrap();
    assert_eq!((r.status, reason(r)), (Status::Rejected, "invalid_request:json"));
    assert_eq!(r.request_id, None);

    let mut v = req("bad", "email", "marketing");
    v["recipient"]["email"] = json!("not-an-address");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "invalid_request:recipient.email"));
    assert_eq!(r.request_id.as_deref(), Some("bad"));
    assert_eq!(r.metadata["journey"], "j1");

    let mut v = req("unknown", "email", "marketing");
    v["template"] = json!("helo");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "unknown_template:helo"));
    assert!(r.detail.unwrap().contains("did you mean `hello`"));

    let mut v = req("nochan", "sms", "marketing");
    v["template"] = json!("emailonly");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "template_missing_channel:emailonly:sms"));

    let mut v = req("ver", "email", "marketing");
    v["template"] = json!({"name": "hello", "version": "9"});
    assert_eq!(reason(&run(&rig, &v).await), "unknown_template_version:hello@9");
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn expired_and_deferred_requests() {
    let rig = rig();
    let mut v = req("old", "email", "marketing");
    v["expires_at"] = json!("2026-11-28T12:00:00Z");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Expired, "expired"));

    let mut v = req("later", "email", "marketing");
    v["send_after"] = json!("2026-11-28T15:00:00Z");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Deferred, "send_after"));
    assert_eq!(r.deferred_until, Some("2026-11-28T15:00:00Z".parse().unwrap()));
    let deferred = rig.store.deferred();
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].0.id.as_str(), "later");
    assert!(rig.sender.sent().is_empty());
}

/// An instant that is daytime in every US and Canadian clock (10:00 in Honolulu, 16:30 in
/// St. John's): a +1 number without a timezone is not held by quiet hours.
const NORTH_AMERICAN_DAY: &str = "2026-11-28T20:00:00Z";

#[tokio::test]
async fn quiet_hours_defer_non_transactional_sms_or_expire_it() {
    // 01:00 in New York, 20:00 in Honolulu.
    let rig = rig_at("2026-11-29T06:00:00Z");
    let r = run(&rig, &req("q1", "sms", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Deferred, "quiet_hours"));
    // The +1 number has no timezone: it waits for 08:00 in every US and Canadian clock,
    // the last of them Honolulu's.
    assert_eq!(r.deferred_until, Some("2026-11-29T18:00:00Z".parse().unwrap()));
    let mut v = req("q2", "sms", "marketing");
    v["expires_at"] = json!("2026-11-29T17:00:00Z");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Expired, "expired:quiet_hours"));
    // Transactional SMS and marketing email go out at night.
    assert_eq!(run(&rig, &req("q3", "sms", "transactional")).await.status, Status::Sent);
    assert_eq!(run(&rig, &req("q4", "email", "marketing")).await.status, Status::Sent);
    // A number the tz database has no zone for (Kosovo) takes default_timezone (UTC).
    let mut v = req("q5", "sms", "marketing");
    v["recipient"]["phone"] = json!("+38344123456");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, r.deferred_until), (Status::Deferred, Some("2026-11-29T08:00:00Z".parse().unwrap())));
}

#[tokio::test]
async fn without_quiet_hours_non_transactional_sms_waits_for_the_morning_where_its_number_is() {
    let config = CONFIG.replace(
        "[quiet_hours]\nstart = \"21:00\"\nend = \"08:00\"\nchannels = [\"sms\"]\ndefault_timezone = \"UTC\"\n",
        "",
    );
    assert!(!config.contains("quiet_hours"));
    // 22:00 in London (BST), 14:00 in San Francisco.
    let rig = rig_with(&config, "2026-07-15T21:00:00Z");
    let mut uk = req("uk", "sms", "marketing");
    uk["recipient"]["phone"] = json!("+447700900123");
    let r = run(&rig, &uk).await;
    assert_eq!((r.status, reason(&r)), (Status::Deferred, "quiet_hours"));
    assert_eq!(r.deferred_until, Some("2026-07-16T07:00:00Z".parse().unwrap()), "08:00 in London");
    // Transactional SMS is never held; a US number without a timezone is sent when the
    // window is open in every US and Canadian clock, as now (17:00 in New York, 18:30 in
    // St. John's, 11:00 in Honolulu).
    let mut otp = req("otp", "sms", "transactional");
    otp["recipient"]["phone"] = json!("+447700900123");
    assert_eq!(run(&rig, &otp).await.status, Status::Sent);
    assert_eq!(run(&rig, &req("us", "sms", "marketing")).await.status, Status::Sent);
    // At 03:00 in California it is held until 08:00 in Honolulu, whatever New York says.
    let rig = rig_with(&config, "2026-07-01T10:00:00Z");
    let r = run(&rig, &req("us-night", "sms", "marketing")).await;
    assert_eq!((r.status, r.deferred_until), (Status::Deferred, Some("2026-07-01T18:00:00Z".parse().unwrap())));
    // `quiet_hours = "off"` holds nothing.
    let off = format!("quiet_hours = \"off\"\n{config}");
    let rig = rig_with(&off, "2026-07-15T21:00:00Z");
    assert_eq!(run(&rig, &uk).await.status, Status::Sent);
}

/// The built-in window holds every category but `transactional`: a one-time code sent
/// under its own category at night waits for the morning, and a short `expires_at`
/// ends it `expired:quiet_hours`. Pinned, and documented in the README.
#[tokio::test]
async fn an_otp_category_at_night_expires_in_the_built_in_quiet_hours() {
    let config = CONFIG.replace(
        "[quiet_hours]\nstart = \"21:00\"\nend = \"08:00\"\nchannels = [\"sms\"]\ndefault_timezone = \"UTC\"\n",
        "",
    );
    assert!(!config.contains("quiet_hours"));
    // 23:00 in London (BST).
    let rig = rig_with(&config, "2026-07-15T22:00:00Z");
    let mut otp = req("otp-night", "sms", "otp");
    otp["recipient"]["phone"] = json!("+447700900123");
    otp["expires_at"] = json!("2026-07-15T22:10:00Z");
    let r = run(&rig, &otp).await;
    assert_eq!((r.status, reason(&r)), (Status::Expired, "expired:quiet_hours"));
    assert!(r.detail.as_deref().unwrap_or("").contains("2026-07-16T07:00:00Z"), "{:?}", r.detail);
    // The same code as `transactional` goes out.
    let mut code = otp.clone();
    code["id"] = json!("code-night");
    code["category"] = json!("transactional");
    assert_eq!(run(&rig, &code).await.status, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn suppression_consent_duplicates_and_caps() {
    let rig = rig();
    let first = run(&rig, &req("a", "email", "marketing")).await;
    assert_eq!(first.status, Status::Sent);
    // The same message again: its outcome again, with the same receipt id.
    let again = run(&rig, &req("a", "email", "marketing")).await;
    assert_eq!((again.status, &again.receipt_id, again.at), (Status::Sent, &first.receipt_id, first.at));
    assert_eq!(again.provider_message_id.as_deref(), Some("msg-1"));
    // Another message reusing the id: `duplicate`, under a receipt id of its own.
    let mut other = req("a", "email", "marketing");
    other["data"]["name"] = json!("Grace");
    let dup = run(&rig, &other).await;
    assert_eq!((dup.status, reason(&dup)), (Status::Duplicate, "duplicate:sent"));
    assert_eq!(dup.provider_message_id.as_deref(), Some("msg-1"));
    assert_ne!(dup.receipt_id, first.receipt_id);
    assert_eq!(run(&rig, &req("b", "email", "marketing")).await.status, Status::Sent);
    let capped = run(&rig, &req("c", "email", "marketing")).await;
    assert_eq!((capped.status, reason(&capped)), (Status::Capped, "frequency_capped:marketing:24h"));
    // Transactional is never capped.
    assert_eq!(run(&rig, &req("d", "email", "transactional")).await.status, Status::Sent);

    rig.store.set_consent(&RecipientKey::new(None, "u1"), "news", false, Timestamp::UNIX_EPOCH).await.unwrap();
    let r = run(&rig, &req("n1", "email", "news")).await;
    assert_eq!((r.status, reason(&r)), (Status::Unsubscribed, "unsubscribed:news"));
    assert_eq!(run(&rig, &req("n2", "email", "transactional")).await.status, Status::Sent);

    let entry = SuppressionEntry {
        key: SuppressionKey::from_stored("email:ada@example.com"),
        reason: SuppressionReason::HardBounce,
    };
    rig.store.suppress(&entry, Timestamp::UNIX_EPOCH).await.unwrap();
    let r = run(&rig, &req("s1", "email", "transactional")).await;
    assert_eq!((r.status, reason(&r)), (Status::Suppressed, "suppressed:hard_bounce"));
    // The phone is not suppressed.
    assert_eq!(run(&rig, &req("s2", "sms", "transactional")).await.status, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 5);
}

#[tokio::test]
async fn render_error_fails_permanently_and_gives_the_cap_slot_back() {
    let rig = rig();
    let mut v = req("r1", "email", "marketing");
    v["data"] = json!({});
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "render_error:hello:email.subject"));
    assert!(r.detail.as_deref().unwrap().contains("`name`"), "{:?}", r.detail);
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 0);
    let again = run(&rig, &v).await;
    assert_eq!((again.status, reason(&again)), (Status::Failed, "render_error:hello:email.subject"));
    assert_eq!(again.receipt_id, r.receipt_id);
    // Both marketing slots are still free.
    assert_eq!(run(&rig, &req("x1", "email", "marketing")).await.status, Status::Sent);
    assert_eq!(run(&rig, &req("x2", "email", "marketing")).await.status, Status::Sent);
}

#[tokio::test]
async fn permanent_provider_errors_fail_and_release_the_slot() {
    let rig = rig();
    rig.sender.fail_with([SendError::permanent("MessageRejected", "Email address is not verified.")]);
    let r = run(&rig, &req("p", "email", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "provider:MessageRejected"));
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 0);
    assert_eq!(rig.store.record_status(&key("p")), Some(Status::Failed));
}

#[tokio::test]
async fn an_opt_out_at_the_provider_ends_unsubscribed_and_gives_the_slot_back() {
    let rig = rig_at(NORTH_AMERICAN_DAY);
    // What an adapter reports for a number on the provider's opt-out list.
    rig.sender.fail_with([SendError::opted_out("Phone number +14155550123 is opted out")]);
    let r = run(&rig, &req("stop", "sms", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Unsubscribed, "opted_out"));
    assert!(r.detail.as_deref().unwrap_or("").contains("opted out"), "{:?}", r.detail);
    assert!(!r.to_json().contains("4155550123"), "{}", r.to_json());
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 0, "nothing was sent");
    assert_eq!(rig.store.record_status(&key("stop")), Some(Status::Unsubscribed));
    // Asked again: the recorded outcome under the same receipt id, and no send.
    let again = run(&rig, &req("stop", "sms", "marketing")).await;
    assert_eq!((again.status, reason(&again), &again.receipt_id), (Status::Unsubscribed, "opted_out", &r.receipt_id));
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn transient_errors_release_everything_and_retry_with_a_budget() {
    let rig = rig();
    rig.sender.fail_with([SendError::transient("Throttling", "Maximum sending rate exceeded.")]);
    let out = rig.pipeline.process_json(&req("t", "email", "marketing").to_string(), None).await;
    let Outcome::Retry { request, attempt, error } = out else { panic!("{out:?}") };
    assert_eq!(attempt, 0);
    assert!(error.contains("Throttling"));
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 0, "slot given back");
    assert_eq!(rig.store.record_status(&key("t")), None, "lock released");
    // Scheduled retry with backoff.
    let r = rig.pipeline.retry_later(*request.clone(), &error, attempt, None).await;
    let r = r.receipt().unwrap();
    assert_eq!((r.status, reason(r)), (Status::Deferred, "retry"));
    assert_eq!(r.deferred_until, Some("2026-11-28T12:00:30Z".parse().unwrap()));
    assert_eq!(rig.store.deferred()[0].2, 1);
    // A retry that succeeds sends once.
    assert_eq!(rig.pipeline.process(*request, 1, None).await.receipt().unwrap().status, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 1);
    // The budget ends in a terminal failure, never a loop, recorded as the outcome.
    let doomed = DeliveryRequest::from_value(req("t2", "email", "marketing")).unwrap();
    let r = rig.pipeline.retry_later(doomed.clone(), &error, MAX_ATTEMPTS - 1, None).await;
    let r = r.receipt().unwrap();
    assert_eq!((r.status, reason(r)), (Status::Failed, "retries_exhausted"));
    let replay = rig.pipeline.process(doomed, 0, None).await;
    assert_eq!(replay.receipt().map(|x| (x.status, &x.receipt_id)), Some((Status::Failed, &r.receipt_id)));
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn store_outage_is_transient() {
    let rig = rig();
    rig.store.fail_next(1);
    let out = rig.pipeline.process_json(&req("o", "email", "marketing").to_string(), None).await;
    assert!(matches!(out, Outcome::Retry { .. }), "{out:?}");
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn an_in_progress_request_is_deferred_not_sent_twice() {
    let rig = rig();
    let request = DeliveryRequest::from_json(&req("ip", "email", "marketing").to_string()).unwrap();
    let admission = rig.pipeline.settings.policy.admission(
        &request,
        &request.fingerprint(),
        SuppressionKey::from_stored("email:x"),
        rig.pipeline.now(),
    );
    assert!(matches!(rig.store.admit(&admission).await.unwrap(), Verdict::Admitted(_)));
    let r = run(&rig, &req("ip", "email", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Deferred, "in_progress"));
    assert_eq!(r.deferred_until, Some("2026-11-28T12:05:00Z".parse().unwrap()));
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn overlong_sms_fails_before_costing_money() {
    let rig = rig();
    let mut v = req("long", "sms", "transactional");
    v["data"]["name"] = json!("ж".repeat(200));
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "sms_too_long"));
    assert!(r.detail.unwrap().contains("ucs-2"));
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn marketing_sms_is_transliterated_and_its_receipt_says_what_it_costs() {
    let rig = rig_at(NORTH_AMERICAN_DAY);
    let mut v = req("tq", "sms", "marketing");
    v["data"]["name"] = json!("Ada \u{2014} it\u{2019}s \u{201C}on\u{201D}");
    let r = run(&rig, &v).await;
    assert_eq!(r.status, Status::Sent);
    let Sent::Sms(sms) = &rig.sender.sent()[0] else { panic!() };
    assert_eq!(sms.body, "Hello Ada - it's \"on\"");
    assert_eq!((sms.encoding, sms.segments), (sms::SmsEncoding::Gsm7, 1));
    let facts = serde_json::to_value(r.sms.as_ref().unwrap()).unwrap();
    assert_eq!(
        facts,
        json!({"encoding": "gsm-7", "segments": 1, "units": 21, "characters": 21,
               "transliterated": ["U+2014", "U+2019", "U+201C", "U+201D"]})
    );
    // Transactional goes out as written (built-in default): UCS-2, and the receipt says why.
    let mut v = req("tt", "sms", "transactional");
    v["data"]["name"] = json!("Ada \u{2014} it\u{2019}s");
    let r = run(&rig, &v).await;
    let Sent::Sms(sms) = &rig.sender.sent()[1] else { panic!() };
    assert_eq!(sms.body, "Hello Ada \u{2014} it\u{2019}s");
    let facts = r.sms.unwrap();
    assert_eq!((facts.encoding, facts.transliterated.len()), (sms::SmsEncoding::Ucs2, 0));
    assert_eq!(facts.non_gsm_characters, ["U+2014", "U+2019"]);
    // Email and push receipts carry no SMS facts.
    assert!(run(&rig, &req("te", "email", "transactional")).await.sms.is_none());
}

#[tokio::test]
async fn an_sms_too_long_for_its_category_fails_with_the_numbers_and_the_culprits() {
    let config = CONFIG
        .replace("[sms]\nmax_segments = 2\n", "[sms]\nmax_segments = 2\n[sms.categories.promo]\nmax_segments = 1\n");
    let rig = rig_with(&config, NORTH_AMERICAN_DAY);
    // 100 GSM-7 characters: one segment; 1 over the limit in UCS-2 (70 per SMS).
    let mut v = req("long1", "sms", "promo");
    v["data"]["name"] = json!(format!("{} \u{1F600} \u{0416}\u{0416}", "a".repeat(90)));
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "sms_too_long"));
    let detail = r.detail.clone().unwrap();
    assert!(detail.contains("needs 2 ucs-2 segments, more than the 1 allowed"), "{detail}");
    assert!(detail.contains("sms.categories.promo.max_segments"), "{detail}");
    assert!(detail.contains("U+1F600 and 1 other characters"), "the Cyrillic letter is counted, not named: {detail}");
    assert!(!detail.contains('\u{0416}') && !detail.contains("U+0416"), "{detail}");
    let facts = r.sms.unwrap();
    assert_eq!((facts.segments, facts.non_gsm_others), (2, 1));
    assert_eq!(facts.non_gsm_characters, ["U+1F600"]);
    // The same text in another category fits its limit of 2.
    let mut v = req("long2", "sms", "marketing");
    v["data"]["name"] = json!(format!("{} \u{1F600} \u{0416}\u{0416}", "a".repeat(90)));
    assert_eq!(run(&rig, &v).await.status, Status::Sent);
    // Transliterating can bring a message under its limit: 100 curly quotes are 2
    // UCS-2 segments, but 1 GSM-7 one.
    let mut v = req("long3", "sms", "promo");
    v["data"]["name"] = json!("\u{2019}".repeat(100));
    let r = run(&rig, &v).await;
    assert_eq!(r.status, Status::Sent, "{:?}", r.detail);
    assert_eq!(r.sms.unwrap().segments, 1);
}

#[tokio::test]
async fn sms_sender_settings_come_from_the_tenant_and_destination() {
    let config = CONFIG.replace(
        "[sms]\nmax_segments = 2\n",
        r#"[sms]
max_segments = 2
sender_id = "ACME"
max_price = "0.50"

[sms.countries."+1"]
origination_number = "+18005550100"

[sms.tenants.globex]
sender_id = "GLOBEX"

[sms.tenants.globex.countries.GB]
max_price = "0.05"
"#,
    );
    let rig = rig_with(&config, "2026-11-28T12:00:00Z");
    assert_eq!(run(&rig, &req("us", "sms", "transactional")).await.status, Status::Sent);
    let mut uk = req("uk", "sms", "transactional");
    uk["tenant"] = json!("globex");
    uk["recipient"]["phone"] = json!("+447700900123");
    assert_eq!(run(&rig, &uk).await.status, Status::Sent);
    let sent = rig.sender.sent();
    let (Sent::Sms(us), Sent::Sms(uk)) = (&sent[0], &sent[1]) else { panic!("{sent:?}") };
    let fields = |m: &OutboundSms| {
        (m.sender_id.clone(), m.origination_number.clone(), m.max_price.clone(), m.tenant.clone(), m.transactional)
    };
    assert_eq!(fields(us), (Some("ACME".into()), Some("+18005550100".into()), Some("0.50".into()), None, true));
    assert_eq!(fields(uk), (Some("GLOBEX".into()), None, Some("0.05".into()), Some("globex".into()), true));
}

#[tokio::test]
async fn tenants_do_not_share_idempotency() {
    let rig = rig();
    let mut a = req("same", "email", "transactional");
    a["tenant"] = json!("acme");
    let mut b = req("same", "email", "transactional");
    b["tenant"] = json!("globex");
    assert_eq!(run(&rig, &a).await.status, Status::Sent);
    let r = run(&rig, &b).await;
    assert_eq!(r.status, Status::Sent);
    assert_eq!(r.tenant.as_deref(), Some("globex"));
}

fn queued(id: &str, body: String) -> QueuedRequest {
    QueuedRequest { message_id: id.into(), body, attempt: 0, not_before: None, enqueued_at: None, source: None }
}

#[tokio::test]
async fn a_batch_reports_only_transient_failures_and_sends_receipts_once() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let batch = vec![
        queued("m1", req("b1", "email", "transactional").to_string()),
        queued("m2", "{not json".into()),
        queued("m3", req("b3", "email", "transactional").to_string()),
    ];
    let result = rig.pipeline.process_batch(batch, 1, &sink, BatchBudget::default()).await;
    // The first send hits the throttle (concurrency 1 keeps the order).
    assert_eq!(result.failed, vec!["m1".to_owned()]);
    assert_eq!(sink.calls(), 1, "one emission for the batch");
    let statuses: Vec<Status> = sink.receipts().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Status::Rejected, Status::Sent]);
    assert_eq!(sink.receipts()[0].source.as_deref(), Some("m2"), "the message id when no source was given");
}

#[tokio::test]
async fn a_batch_whose_receipts_cannot_be_sent_is_redelivered_not_lost() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    sink.fail(true);
    let batch = vec![queued("m1", req("c1", "email", "transactional").to_string())];
    let result = rig.pipeline.process_batch(batch.clone(), 4, &sink, BatchBudget::default()).await;
    assert_eq!(result.failed, vec!["m1".to_owned()]);
    sink.fail(false);
    let again = rig.pipeline.process_batch(batch, 4, &sink, BatchBudget::default()).await;
    assert!(again.failed.is_empty());
    // The redelivery reports the original outcome, not `duplicate`: same receipt id,
    // same time, the sent message's id.
    let r = &sink.receipts()[0];
    assert_eq!((r.status, &r.receipt_id, r.at), (Status::Sent, &result.receipts[0].receipt_id, result.receipts[0].at));
    assert_eq!(r.provider_message_id.as_deref(), Some("msg-1"), "the redelivery still names the sent message");
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_record_not_yet_due_hops_silently() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    let mut record = queued("m1", req("h1", "email", "transactional").to_string());
    record.not_before = Some("2026-11-28T18:00:00Z".parse().unwrap());
    let result = rig.pipeline.process_batch(vec![record], 4, &sink, BatchBudget::default()).await;
    assert!(result.failed.is_empty());
    assert!(sink.receipts().is_empty(), "no receipt for an intermediate hop");
    let deferred = rig.store.deferred();
    assert_eq!(deferred.len(), 1);
    assert_eq!(deferred[0].1, "2026-11-28T18:00:00Z".parse::<Timestamp>().unwrap());
    assert!(rig.sender.sent().is_empty());
}

// ------------------------------------------------------------------ delivery guarantees
// One test per finding of the fault audit; each failed on the code before the fix.

#[tokio::test]
async fn an_unknown_outcome_is_never_sent_again_at_most_once() {
    let rig = rig();
    rig.sender.fail_with([SendError::unknown_outcome("timeout", "no answer within the timeout")]);
    let r = run(&rig, &req("u1", "email", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "provider:unknown_outcome"));
    assert_eq!(rig.store.record_status(&key("u1")), Some(Status::Failed));
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 1, "it may have been delivered: the slot stays");
    // The redelivery reports the same outcome and sends nothing.
    let again = run(&rig, &req("u1", "email", "marketing")).await;
    assert_eq!((again.status, &again.receipt_id), (Status::Failed, &r.receipt_id));
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn an_unknown_outcome_is_sent_again_at_least_once() {
    let rig = rig();
    rig.sender.fail_with([SendError::unknown_outcome("connection_lost", "reset after the request was sent")]);
    let out = rig.pipeline.process_json(&req("o1", "email", "transactional").to_string(), None).await;
    let Outcome::Retry { request, .. } = out else { panic!("{out:?}") };
    assert_eq!(rig.store.record_status(&key("o1")), None, "the lock is released for the retry");
    let r = rig.pipeline.process(*request, 1, None).await;
    assert_eq!(r.receipt().map(|r| r.status), Some(Status::Sent));
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn the_guarantee_is_chosen_per_category() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{CONFIG}\n[guarantee]\ndefault = \"at_least_once\"\ntransactional = \"at_most_once\"\n");
    let settings = Settings::parse(&text, "test", dir.path(), None).unwrap();
    let request = |category: &str| DeliveryRequest::from_value(req("g", "email", category)).unwrap();
    assert_eq!(settings.policy.guarantee(&request("marketing")), Guarantee::AtLeastOnce);
    assert_eq!(settings.policy.guarantee(&request("transactional")), Guarantee::AtMostOnce);
    let bad = format!("{CONFIG}\n[guarantee]\nmarketing = \"exactly_once\"\n");
    assert!(Settings::parse(&bad, "test", dir.path(), None).is_err());
}

/// Admits `id` as an attempt that then died: its lock expired at the rig's `now`.
async fn crashed_attempt(rig: &Rig, id: &str, category: &str) {
    let request = DeliveryRequest::from_value(req(id, "email", category)).unwrap();
    let then = rig.pipeline.now() - SignedDuration::from_secs(600);
    let destination = request.destination().unwrap();
    let admission =
        rig.pipeline.settings.policy.admission(&request, &request.fingerprint(), destination.suppression_key(), then);
    assert!(matches!(rig.store.admit(&admission).await.unwrap(), Verdict::Admitted(_)));
}

#[tokio::test]
async fn a_takeover_after_a_crash_does_not_send_again_at_most_once() {
    let rig = rig();
    crashed_attempt(&rig, "k1", "marketing").await;
    let r = run(&rig, &req("k1", "email", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "provider:unknown_outcome"));
    assert!(rig.sender.sent().is_empty());
    // At least once: the takeover sends.
    crashed_attempt(&rig, "k2", "transactional").await;
    assert_eq!(run(&rig, &req("k2", "email", "transactional")).await.status, Status::Sent);
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn a_completed_request_keeps_its_outcome_after_a_suppression_or_unsubscribe() {
    let rig = rig();
    let first = run(&rig, &req("c1", "email", "marketing")).await;
    assert_eq!(first.status, Status::Sent);
    let entry = SuppressionEntry {
        key: SuppressionKey::from_stored("email:ada@example.com"),
        reason: SuppressionReason::Complaint,
    };
    rig.store.suppress(&entry, Timestamp::UNIX_EPOCH).await.unwrap();
    rig.store.set_consent(&RecipientKey::new(None, "u1"), "*", false, Timestamp::UNIX_EPOCH).await.unwrap();
    let again = run(&rig, &req("c1", "email", "marketing")).await;
    assert_eq!((again.status, &again.receipt_id), (Status::Sent, &first.receipt_id));
    // A new request is suppressed, and stays so even after the suppression is lifted.
    let s = run(&rig, &req("c2", "email", "marketing")).await;
    assert_eq!(s.status, Status::Suppressed);
    rig.store.unsuppress(&entry.key).await.unwrap();
    let s2 = run(&rig, &req("c2", "email", "marketing")).await;
    assert_eq!((s2.status, &s2.receipt_id), (Status::Suppressed, &s.receipt_id));
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn receipts_stay_bounded_whatever_the_request_carried() {
    let rig = rig();
    let huge = "v".repeat(900 * 1024);
    let mut v = req("b1", "email", "marketing");
    v["metadata"]["big"] = json!(huge);
    let r = run(&rig, &v).await;
    assert_eq!(r.status, Status::Rejected);
    assert!(r.to_json().len() <= crate::receipt::MAX_RECEIPT_BYTES, "{}", r.to_json().len());
    // A 300 KB unknown field name is neither echoed nor allowed to grow the receipt.
    let mut v = req("b2", "email", "marketing");
    v[&"f".repeat(300 * 1024)] = json!(1);
    let r = run(&rig, &v).await;
    assert_eq!(r.status, Status::Rejected);
    assert!(r.to_json().len() < 4 * 1024, "{}", r.to_json().len());
    // U+FFFF (escaped in the JSON) in an id: refused, and the receipt is SQS-safe.
    let body = req("x", "email", "marketing").to_string().replace("\"x\"", "\"a\\uffffb\"");
    let Outcome::Receipt(r) = rig.pipeline.process_json(&body, None).await else { panic!() };
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "invalid_request:id"));
    assert!(!r.to_json().contains('\u{ffff}'));
}

#[tokio::test]
async fn only_records_whose_terminal_receipts_failed_are_redelivered() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    sink.refuse(&[Status::Sent, Status::Deferred]);
    let mut later = req("d1", "email", "transactional");
    later["send_after"] = json!("2026-11-28T13:00:00Z");
    let batch = vec![
        queued("m1", req("s1", "email", "transactional").to_string()),
        queued("m2", later.to_string()),
        queued("m3", "{not json".into()),
    ];
    let result = rig.pipeline.process_batch(batch, 1, &sink, BatchBudget::default()).await;
    // The sent record comes back (its receipt is re-emitted); the deferred one does not
    // (its next hop is already queued), nor the rejected one (delivered).
    assert_eq!(result.failed, vec!["m1".to_owned()]);
    assert_eq!(rig.store.deferred().len(), 1, "one deferral chain");
    assert_eq!(sink.receipts().len(), 1);
}

#[tokio::test]
async fn attempts_count_across_redeliveries_and_end_with_a_receipt() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    rig.sender.fail_with([SendError::transient("Throttling", "slow down")]);
    let mut last_try = queued("m1", req("a1", "email", "transactional").to_string());
    last_try.attempt = MAX_ATTEMPTS - 1;
    let mut over = queued("m2", req("a2", "email", "transactional").to_string());
    over.attempt = MAX_ATTEMPTS;
    let result = rig.pipeline.process_batch(vec![last_try, over], 1, &sink, BatchBudget::default()).await;
    assert!(result.failed.is_empty(), "ended here, not left for the DLQ: {:?}", result.failed);
    let reasons: Vec<&str> = result.receipts.iter().map(reason).collect();
    assert_eq!(reasons, ["retries_exhausted", "retries_exhausted"]);
    assert!(rig.sender.sent().is_empty());
    assert_eq!(rig.store.record_status(&key("a1")), Some(Status::Failed));
}

#[tokio::test]
async fn a_batch_near_its_deadline_starts_nothing_it_cannot_finish() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    let budget = BatchBudget {
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(5)),
        per_record: std::time::Duration::from_secs(4),
        emit: std::time::Duration::from_secs(2),
    };
    let batch = vec![queued("m1", req("n1", "email", "transactional").to_string())];
    let result = rig.pipeline.process_batch(batch, 4, &sink, budget).await;
    assert_eq!((result.failed.len(), result.not_started), (1, 1));
    assert!(rig.sender.sent().is_empty() && sink.receipts().is_empty());
}

#[tokio::test]
async fn a_message_older_than_idempotency_can_vouch_for_is_not_sent() {
    let rig = rig();
    let sink = crate::testing::MemorySink::new();
    let mut stale = queued("m1", req("st", "email", "transactional").to_string());
    stale.enqueued_at = Some(rig.pipeline.now() - SignedDuration::from_hours(24 * 7));
    let result = rig.pipeline.process_batch(vec![stale], 1, &sink, BatchBudget::default()).await;
    assert_eq!(result.receipts.iter().map(reason).collect::<Vec<_>>(), ["stale_message"]);
    assert!(rig.sender.sent().is_empty());
}

#[tokio::test]
async fn send_after_beyond_the_horizon_is_rejected() {
    let rig = rig();
    let mut v = req("far", "email", "transactional");
    v["send_after"] = json!("9999-01-01T00:00:00Z");
    let r = run(&rig, &v).await;
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "invalid_request:send_after"));
    assert!(rig.store.deferred().is_empty());
}

#[tokio::test]
async fn quiet_hours_ending_in_a_dst_fold_defer_into_the_future() {
    // 2026-11-01 01:30 happens twice in New York; at 06:15Z (01:15 EST, the second
    // pass) the window closes at 06:30Z, not at the first 01:30 (05:30Z, past).
    let rig = rig_at("2026-11-01T06:15:00Z");
    let mut v = req("dst", "sms", "marketing");
    v["recipient"]["timezone"] = json!("America/New_York");
    let settings = CONFIG.replace("start = \"21:00\"\nend = \"08:00\"", "start = \"21:00\"\nend = \"01:30\"");
    let dir = tempfile::tempdir().unwrap();
    let parsed = Settings::parse(&settings, "test", dir.path(), None).unwrap();
    let request = DeliveryRequest::from_value(v).unwrap();
    let until = parsed.policy.quiet_hours_hold(&request, rig.pipeline.now());
    assert_eq!(until, Some("2026-11-01T06:30:00Z".parse().unwrap()));
}

// ------------------------------------------------------------------ review findings

#[tokio::test]
async fn an_at_least_once_retry_is_not_capped_by_its_own_first_attempt() {
    // A cap of 2 per day on marketing, which this deployment sends at least once.
    let dir = tempfile::tempdir().unwrap();
    let rig = rig();
    let text = format!("{CONFIG}\n[guarantee]\nmarketing = \"at_least_once\"\n");
    let settings = Arc::new(Settings::parse(&text, "test", dir.path(), None).unwrap());
    let pipeline = Pipeline::new(rig.pipeline.catalogue.clone(), settings, rig.pipeline.ports.clone());
    assert_eq!(run_with(&pipeline, &req("c1", "email", "marketing")).await.status, Status::Sent);
    rig.sender.fail_with([SendError::unknown_outcome("timeout", "no answer")]);
    let out = pipeline.process_json(&req("c2", "email", "marketing").to_string(), None).await;
    let Outcome::Retry { request, .. } = out else { panic!("{out:?}") };
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 2, "the uncertain attempt keeps its slot");
    // The retry takes the lock over and inherits that slot: sent, not capped.
    let r = pipeline.process(*request, 1, None).await;
    assert_eq!(r.receipt().map(|r| r.status), Some(Status::Sent));
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 2, "no slot of its own");
}

async fn run_with(pipeline: &Pipeline, v: &serde_json::Value) -> Receipt {
    match pipeline.process_json(&v.to_string(), None).await {
        Outcome::Receipt(r) => r,
        other => panic!("expected a receipt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_crashed_attempt_is_taken_over_before_suppression_and_caps() {
    let rig = rig();
    crashed_attempt(&rig, "t1", "transactional").await;
    // Two dead marketing attempts fill the cap of 2.
    crashed_attempt(&rig, "t2", "marketing").await;
    crashed_attempt(&rig, "t3", "marketing").await;
    // The address was suppressed since (a dead attempt's send bounced, say).
    let entry = SuppressionEntry {
        key: SuppressionKey::from_stored("email:ada@example.com"),
        reason: SuppressionReason::HardBounce,
    };
    rig.store.suppress(&entry, Timestamp::UNIX_EPOCH).await.unwrap();
    // At least once: the takeover sends (the earlier attempt passed the rails).
    assert_eq!(run(&rig, &req("t1", "email", "transactional")).await.status, Status::Sent);
    // At most once, under a cap its own dead attempt filled: unknown outcome, not
    // capped or suppressed, and never sent.
    let r = run(&rig, &req("t2", "email", "marketing")).await;
    assert_eq!((r.status, reason(&r)), (Status::Failed, "provider:unknown_outcome"));
    assert_eq!(rig.sender.sent().len(), 1);
}

#[tokio::test]
async fn another_message_never_takes_over_a_dead_attempts_lock() {
    let rig = rig();
    crashed_attempt(&rig, "f1", "transactional").await;
    let mut other = req("f1", "email", "transactional");
    other["data"]["name"] = json!("Grace");
    // It reused an id whose first message has no outcome: a duplicate at once (waiting
    // for an outcome that may never be recorded would defer it forever).
    let r = run(&rig, &other).await;
    assert_eq!((r.status, reason(&r)), (Status::Duplicate, "duplicate:undecided"));
    assert_eq!(run(&rig, &other).await.receipt_id, r.receipt_id, "the same answer when asked again");
    assert!(rig.sender.sent().is_empty());
    // The dead attempt's own message still takes its lock over and decides the id.
    assert_eq!(run(&rig, &req("f1", "email", "transactional")).await.status, Status::Sent);
}

#[tokio::test]
async fn a_sent_request_redelivered_after_it_expired_reports_sent() {
    let rig = rig();
    let mut v = req("e1", "email", "transactional");
    v["expires_at"] = json!("2026-11-28T12:05:00Z");
    let first = run(&rig, &v).await;
    assert_eq!(first.status, Status::Sent);
    // The same message, after its expiry (a lost receipt, a redelivery).
    let later = rig_at("2026-11-28T12:10:00Z");
    let pipeline = Pipeline::new(
        later.pipeline.catalogue.clone(),
        later.pipeline.settings.clone(),
        Ports { store: rig.store.clone(), ..later.pipeline.ports.clone() },
    );
    let again = run_with(&pipeline, &v).await;
    assert_eq!((again.status, &again.receipt_id), (Status::Sent, &first.receipt_id));
}

#[tokio::test]
async fn provider_messages_never_carry_the_address_into_a_receipt() {
    use aws_sdk_sesv2::error::ErrorMetadata;
    let rig = rig();
    // What SES says for a sandboxed recipient, classified as the adapter does.
    let meta = ErrorMetadata::builder()
        .code("MessageRejected")
        .message("Email address is not verified. The following identities failed the check in region US-EAST-1: ada@example.com")
        .build();
    let scrubbed = crate::adapters::aws::scrub(meta.message().unwrap_or_default());
    rig.sender.fail_with([SendError::permanent("MessageRejected", scrubbed)]);
    let r = run(&rig, &req("pii", "email", "transactional")).await;
    assert_eq!(r.status, Status::Failed);
    assert!(!r.to_json().contains("ada@example.com"), "{}", r.to_json());
}

#[tokio::test]
async fn a_request_for_another_channel_is_rejected_before_admission_and_its_id_stays_unused() {
    let rig = rig();
    let ports = Ports { senders: Senders::email(rig.sender.clone()), ..rig.pipeline.ports.clone() };
    let email_only = Pipeline::new(rig.pipeline.catalogue.clone(), rig.pipeline.settings.clone(), ports);
    let sms = req("w1", "sms", "transactional");
    let r = run_with(&email_only, &sms).await;
    assert_eq!((r.status, reason(&r)), (Status::Rejected, "wrong_queue:sms"));
    assert!(r.detail.as_deref().unwrap_or("").contains("sms request queue"), "{:?}", r.detail);
    assert_eq!(rig.store.record_status(&key("w1")), None, "no lock, no record");
    assert_eq!(rig.store.slots_held("-/u1#marketing:24h"), 0);
    // On a pipeline that sends SMS, the same request goes out.
    assert_eq!(run(&rig, &sms).await.status, Status::Sent);
}

/// A rig whose push sender is wrapped in token hygiene, with its event sink.
fn hygiene_rig() -> (Rig, Arc<crate::testing::MemorySink>, Pipeline) {
    let rig = rig();
    let sink = Arc::new(crate::testing::MemorySink::new());
    let clock: Arc<dyn Clock> = Arc::new(FixedClock("2026-11-28T12:00:00Z".parse().unwrap()));
    let hygiene =
        crate::push::hygiene::TokenHygiene::new(rig.sender.clone(), rig.store.clone(), sink.clone(), clock.clone());
    let ports = Ports {
        store: rig.store.clone(),
        senders: Senders::push(Arc::new(hygiene)),
        scheduler: rig.store.clone(),
        clock,
    };
    let pipeline = Pipeline::new(rig.pipeline.catalogue.clone(), rig.pipeline.settings.clone(), ports);
    (rig, sink, pipeline)
}

#[tokio::test]
async fn a_token_reported_invalid_fails_once_then_every_later_request_is_suppressed_without_a_send() {
    let (rig, sink, pipeline) = hygiene_rig();
    rig.sender.fail_with([SendError::token_invalid("unregistered", "gone", None)]);
    let outcome = |o: Outcome| o.receipt().cloned().expect("a receipt");
    let first = outcome(pipeline.process_json(&req("p1", "push", "marketing").to_string(), None).await);
    assert_eq!((first.status, reason(&first)), (Status::Failed, "provider:unregistered"));
    assert_eq!(sink.events().len(), 1);
    assert_eq!(sink.events()[0].event, crate::receipt::event::EventKind::TokenInvalid);
    // Its cap slot went back: nothing reached the recipient.
    for id in ["p2", "p3"] {
        let later = outcome(pipeline.process_json(&req(id, "push", "transactional").to_string(), None).await);
        assert_eq!((later.status, reason(&later)), (Status::Suppressed, "suppressed:token_invalid"), "{id}");
    }
    assert!(rig.sender.sent().is_empty(), "nothing was sent to the invalid token");
}

#[tokio::test]
async fn a_push_over_its_provider_s_limit_fails_with_its_size_and_is_never_sent() {
    let rig = rig();
    let mut r = req("big", "push", "transactional");
    r["data"]["name"] = json!("x".repeat(4100));
    let out = run(&rig, &r).await;
    assert_eq!(out.status, Status::Failed);
    let bytes: usize = reason(&out).strip_prefix("payload_too_large:").expect("the size").parse().unwrap();
    assert!(bytes > 4096, "{bytes}");
    assert!(rig.sender.sent().is_empty());
    // The slots were given back: a small push to the same person still goes.
    let small = run(&rig, &req("small", "push", "marketing")).await;
    assert_eq!(small.status, Status::Sent);
}

#[tokio::test]
async fn a_transient_refusal_with_retry_after_is_deferred_that_long_not_retried_at_once() {
    let rig = rig();
    let wait = std::time::Duration::from_secs(120);
    rig.sender.fail_with([SendError::transient("too_many_requests", "slow down").with_retry_after(Some(wait))]);
    let r = run(&rig, &req("later", "push", "transactional")).await;
    assert_eq!((r.status, reason(&r)), (Status::Deferred, "retry"));
    let until = r.deferred_until.expect("a deferral");
    assert_eq!(until, "2026-11-28T12:02:00Z".parse::<Timestamp>().unwrap());
    let deferred = rig.store.deferred();
    assert_eq!((deferred.len(), deferred[0].2), (1, 1), "scheduled once, counted as a failed attempt");
    // `Retry-After: 0` waits herald's own backoff: it must not burn the attempts in seconds.
    rig.sender.fail_with([SendError::transient("too_many_requests", "now").with_retry_after(Some(Default::default()))]);
    let r = run(&rig, &req("at-once", "push", "transactional")).await;
    assert_eq!(r.deferred_until, Some("2026-11-28T12:00:30Z".parse::<Timestamp>().unwrap()));
}
