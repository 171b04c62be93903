//! Reads AWS's own examples in ../shared/spec/aws-events through
//! `receipt::provider::normalise`: SES event publishing, SES identity notifications and
//! SNS SMS delivery status logs, each bare and inside an SNS envelope. Every file has
//! its expectations below: a new fixture without them fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use herald::ports::SuppressionReason;
use herald::receipt::event::{BounceType, EventKind, tags};
use herald::receipt::provider::{Effect, ProviderEvent, address_sha256, normalise};
use herald::request::{Channel, EmailAddress, SuppressionKey};
use jiff::Timestamp;
use serde_json::{Value, json};

/// What one fixture file must give.
struct Expect {
    file: &'static str,
    kind: EventKind,
    message_id: &'static str,
    at: &'static str,
    /// One event per address, in this order; empty: one event naming no address.
    addresses: &'static [&'static str],
    bounce: Option<(BounceType, &'static str)>,
    /// The status codes of all events together, in order.
    status_codes: &'static [&'static str],
    /// `Some(feedback type)` for complaints.
    complaint: Option<Option<&'static str>>,
    link: Option<&'static str>,
    detail: Option<&'static str>,
    /// Each event's address suppressed for this reason.
    suppress: Option<SuppressionReason>,
}

const SES_MESSAGE: &str = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000";
const RECIPIENT: &[&str] = &["recipient@example.com"];

const BASE: Expect = Expect {
    file: "",
    kind: EventKind::Delivered,
    message_id: SES_MESSAGE,
    at: "",
    addresses: RECIPIENT,
    bounce: None,
    status_codes: &[],
    complaint: None,
    link: None,
    detail: None,
    suppress: None,
};

const EXPECTATIONS: &[Expect] = &[
    // SES event publishing (configuration-set events).
    Expect {
        file: "ses-event-publishing-sns/bounce.json",
        kind: EventKind::Bounced,
        at: "2017-08-05T00:41:02.669Z",
        bounce: Some((BounceType::Permanent, "General")),
        status_codes: &["5.1.1"],
        suppress: Some(SuppressionReason::HardBounce),
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/click.json",
        kind: EventKind::Clicked,
        at: "2017-08-09T23:51:25.570Z",
        link: Some("http://docs.aws.amazon.com/ses/latest/DeveloperGuide/send-email-smtp.html"),
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/complaint.json",
        kind: EventKind::Complained,
        at: "2017-08-05T00:41:02.669Z",
        complaint: Some(Some("abuse")),
        suppress: Some(SuppressionReason::Complaint),
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/delayed-delivery.json",
        kind: EventKind::DeliveryDelayed,
        at: "2020-06-16T00:25:40.095Z",
        detail: Some("TransientCommunicationFailure"),
        ..BASE
    },
    Expect { file: "ses-event-publishing-sns/delivery.json", at: "2016-10-19T23:21:04.133Z", ..BASE },
    Expect {
        file: "ses-event-publishing-sns/failure.json",
        kind: EventKind::RejectedByProvider,
        // A rendering failure has no time of its own: the message's.
        at: "2018-01-22T18:43:06.197Z",
        detail: Some("SES could not render template MyTemplate"),
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/open.json",
        kind: EventKind::Opened,
        at: "2017-08-09T22:00:19.652Z",
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/reject.json",
        kind: EventKind::RejectedByProvider,
        at: "2016-10-14T17:38:15.211Z",
        // The example's destination is the sender (so it is in AWS's documentation).
        addresses: &["sender@example.com"],
        detail: Some("Bad content"),
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/send.json",
        kind: EventKind::ProviderAccepted,
        at: "2016-10-14T05:02:16.645Z",
        ..BASE
    },
    Expect {
        file: "ses-event-publishing-sns/subscription.json",
        kind: EventKind::SubscriptionChanged,
        message_id: "EXAMPLEe4bccb684-777bc8de-afa7-4970-92b0-f515137b1497-000000",
        at: "2022-01-12T01:00:17.910Z",
        detail: Some("UnsubscribeHeader: unsubscribed from all topics"),
        ..BASE
    },
    // SES identity notifications.
    Expect {
        file: "ses-notifications-sns/bounce-no-dsn.json",
        kind: EventKind::Bounced,
        message_id: "00000137860315fd-34208509-5b74-41f3-95c5-22c1edc3c924-000000",
        at: "2016-01-27T14:59:38.237Z",
        addresses: &["jane@example.com", "richard@example.com"],
        bounce: Some((BounceType::Permanent, "General")),
        suppress: Some(SuppressionReason::HardBounce),
        ..BASE
    },
    Expect {
        file: "ses-notifications-sns/bounce-with-dsn.json",
        kind: EventKind::Bounced,
        message_id: "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
        at: "2016-01-27T14:59:38.237Z",
        addresses: &["jane@example.com"],
        bounce: Some((BounceType::Permanent, "General")),
        status_codes: &["5.1.1"],
        suppress: Some(SuppressionReason::HardBounce),
        ..BASE
    },
    Expect {
        file: "ses-notifications-sns/complaint-no-feedback.json",
        kind: EventKind::Complained,
        message_id: "0000013786031775-163e3910-53eb-4c8e-a04a-f29debf88a84-000000",
        at: "2016-01-27T14:59:38.237Z",
        addresses: &["richard@example.com"],
        complaint: Some(None),
        suppress: Some(SuppressionReason::Complaint),
        ..BASE
    },
    Expect {
        file: "ses-notifications-sns/complaint-with-feedback.json",
        kind: EventKind::Complained,
        message_id: "000001378603177f-7a5433e7-8edb-42ae-af10-f0181f34d6ee-000000",
        at: "2016-01-27T14:59:38.237Z",
        addresses: &["richard@example.com"],
        complaint: Some(Some("abuse")),
        suppress: Some(SuppressionReason::Complaint),
        ..BASE
    },
    Expect {
        file: "ses-notifications-sns/delivery.json",
        message_id: "0000014644fe5ef6-9a483358-9170-4cb4-a269-f5dcdf415321-000000",
        at: "2016-01-27T14:59:38.237Z",
        addresses: &["jane@example.com"],
        ..BASE
    },
    // SNS SMS delivery status logs: their destination is masked (`+1XXX5550100`), so
    // the events name no number.
    Expect {
        file: "sns-sms-delivery-logs/sms-delivery-failure.json",
        kind: EventKind::Undelivered,
        message_id: "1077257a-92f3-5ca3-bc97-6a915b310625",
        at: "2016-06-28T00:40:34.559Z",
        addresses: &[],
        detail: Some("Unknown error attempting to reach phone"),
        ..BASE
    },
    Expect {
        file: "sns-sms-delivery-logs/sms-delivery-success.json",
        message_id: "34d9b400-c6dd-5444-820d-fbeb0f1f54cf",
        at: "2016-06-28T00:40:34.558Z",
        addresses: &[],
        ..BASE
    },
];

fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/aws-events");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

/// Every fixture: all files of the SES folders, the JSON files of the SMS one.
fn fixtures(dir: &Path) -> Vec<String> {
    let mut files = Vec::new();
    for (folder, json_only) in
        [("ses-event-publishing-sns", false), ("ses-notifications-sns", false), ("sns-sms-delivery-logs", true)]
    {
        for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !json_only || name.ends_with(".json") {
                files.push(format!("{folder}/{name}"));
            }
        }
    }
    files.sort();
    files
}

fn envelope(message: &str, sns_id: &str) -> String {
    json!({
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:herald-provider-events",
        "Message": message,
        "Timestamp": "2024-05-01T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-EXAMPLE.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=EXAMPLE"
    })
    .to_string()
}

fn check(expect: &Expect, raw: &str, events: &[ProviderEvent]) {
    let file = expect.file;
    let sms = file.starts_with("sns-sms");
    let addresses: Vec<Option<&str>> =
        if expect.addresses.is_empty() { vec![None] } else { expect.addresses.iter().copied().map(Some).collect() };
    assert_eq!(events.len(), addresses.len(), "{file}: {events:#?}");
    let at: Timestamp = expect.at.parse().unwrap();
    let mut status_codes = Vec::new();
    for (e, address) in events.iter().zip(addresses) {
        let ev = &e.event;
        assert_eq!(e.raw, raw, "{file}: raw is the provider's payload");
        assert_eq!(ev.event, expect.kind, "{file}");
        assert_eq!(ev.channel, if sms { Channel::Sms } else { Channel::Email }, "{file}");
        assert_eq!(ev.provider, if sms { "sns" } else { "ses" }, "{file}");
        assert_eq!(ev.provider_message_id.as_deref(), Some(expect.message_id), "{file}");
        assert_eq!(ev.at, at, "{file}");
        // None of AWS's examples carries herald's tags.
        assert_eq!((&ev.request_id, &ev.category, &ev.tenant), (&None, &None, &None), "{file}");
        assert_eq!(ev.address_sha256, address.map(address_sha256), "{file}");
        assert_eq!(ev.bounce.as_ref().map(|b| (b.bounce_type, b.bounce_subtype.as_deref().unwrap())), expect.bounce);
        status_codes.extend(ev.bounce.iter().flat_map(|b| b.status_codes.clone()));
        assert_eq!(ev.complaint.as_ref().map(|c| c.feedback_type.as_deref()), expect.complaint, "{file}");
        assert!(ev.complaint.as_ref().is_none_or(|c| c.complaint_subtype.is_none()), "{file}");
        assert_eq!(ev.link.as_deref(), expect.link, "{file}");
        assert_eq!(ev.detail.as_deref(), expect.detail, "{file}");
        assert!(ev.truncated.is_empty(), "{file}");
        let expected_effects: Vec<Effect> = match (expect.suppress, address) {
            (Some(reason), Some(a)) => vec![Effect::Suppress {
                key: SuppressionKey::email(&EmailAddress::parse(a).unwrap()),
                tenant: None,
                reason,
            }],
            _ => Vec::new(),
        };
        assert_eq!(e.effects, expected_effects, "{file}");
        // The event never carries an address or the diagnostic text.
        let json = ev.to_json();
        assert!(!json.contains("@example.com") && !json.contains("smtp;"), "{file}: {json}");
    }
    assert_eq!(status_codes, expect.status_codes, "{file}");
    let ids: BTreeSet<&str> = events.iter().map(|e| e.event.event_id.as_str()).collect();
    assert_eq!(ids.len(), events.len(), "{file}: event ids are distinct");
}

#[test]
fn aws_examples_normalise_bare_and_enveloped() {
    let Some(dir) = spec_dir() else { return };
    let files = fixtures(&dir);
    for file in &files {
        assert!(EXPECTATIONS.iter().any(|e| e.file == file), "{file} has no expectations: add them to EXPECTATIONS");
    }
    let mut seen = 0;
    for expect in EXPECTATIONS {
        let raw = std::fs::read_to_string(dir.join(expect.file)).unwrap_or_else(|e| panic!("{}: {e}", expect.file));
        let bare = normalise(&raw).unwrap_or_else(|e| panic!("{}: {e}", expect.file));
        check(expect, &raw, &bare);
        // SNS may deliver one event twice under two SNS message ids: same events.
        for sns_id in ["11111111-aaaa-5bbb-8ccc-000000000001", "22222222-aaaa-5bbb-8ccc-000000000002"] {
            let wrapped = normalise(&envelope(&raw, sns_id)).unwrap_or_else(|e| panic!("{}: {e}", expect.file));
            assert_eq!(wrapped, bare, "{}: enveloped", expect.file);
        }
        seen += 1;
    }
    assert_eq!(seen, files.len(), "every fixture has exactly one set of expectations");
    assert_eq!(files.len(), 17, "10 SES event-publishing, 5 SES notification and 2 SMS log examples");
}

/// The SES examples carry tags, none of them herald's: with herald's added, the
/// events name the request, its category and tenant, and suppression its tenant.
#[test]
fn herald_tags_name_the_request() {
    let Some(dir) = spec_dir() else { return };
    let request_id = "order:42/welcome émail";
    let mut tagged = 0;
    for expect in EXPECTATIONS {
        let raw = std::fs::read_to_string(dir.join(expect.file)).unwrap();
        let mut v: Value = serde_json::from_str(&raw).unwrap();
        let Some(mail_tags) = v.pointer_mut("/mail/tags").and_then(Value::as_object_mut) else { continue };
        mail_tags.insert(tags::REQUEST_ID.into(), json!([tags::encode_request_id(request_id).unwrap()]));
        mail_tags.insert(tags::CATEGORY.into(), json!(["marketing"]));
        mail_tags.insert(tags::TENANT.into(), json!(["acme"]));
        let untagged = normalise(&raw).unwrap();
        let events = normalise(&v.to_string()).unwrap();
        assert_eq!(events.len(), untagged.len(), "{}", expect.file);
        for (e, plain) in events.iter().zip(&untagged) {
            assert_eq!(e.event.request_id.as_deref(), Some(request_id), "{}", expect.file);
            assert_eq!(e.event.category.as_deref(), Some("marketing"), "{}", expect.file);
            assert_eq!(e.event.tenant.as_deref(), Some("acme"), "{}", expect.file);
            // Tags are not the event's identity: the same provider event, the same id.
            assert_eq!(e.event.event_id, plain.event.event_id, "{}", expect.file);
            for effect in &e.effects {
                assert!(matches!(effect, Effect::Suppress { tenant: Some(t), .. } if t == "acme"), "{}", expect.file);
            }
        }
        tagged += 1;
    }
    assert_eq!(tagged, 10, "every SES event-publishing example carries tags");
}

/// Each example is its own event: no two files share an event id.
#[test]
fn examples_have_distinct_event_ids() {
    let Some(dir) = spec_dir() else { return };
    let mut ids = BTreeSet::new();
    let mut count = 0;
    for expect in EXPECTATIONS {
        let raw = std::fs::read_to_string(dir.join(expect.file)).unwrap();
        for e in normalise(&raw).unwrap() {
            ids.insert(e.event.event_id);
            count += 1;
        }
    }
    assert_eq!(ids.len(), count);
}
