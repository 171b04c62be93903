//! Checks `push::errors` against the recorded provider answers in
//! ../shared/spec/push-errors: every FCM and APNs body there has an expected verdict
//! below, and every reason of apns-reasons.json and code of fcm-v1-error-codes.json is
//! classified as its source says.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use herald::push::errors::{PushVerdict, classify_apns, classify_fcm};
use jiff::Timestamp;
use serde_json::{Value, json};

fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/push-errors");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

fn now() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

/// The reference tables: not answers, checked by their own tests.
const TABLES: [&str; 2] = ["fcm/fcm-v1-error-codes.json", "apns/apns-reasons.json"];

#[derive(Debug, Clone, Copy)]
enum Provider {
    Fcm,
    Apns,
}

/// Every recorded answer: file, the status it came with, the verdict.
fn expected() -> Vec<(&'static str, Provider, u16, PushVerdict)> {
    use Provider::{Apns, Fcm};
    let delivered = |id: Option<&str>| PushVerdict::Delivered { message_id: id.map(str::to_owned) };
    let transient = |code: &str| PushVerdict::Transient { retry_after: None, code: code.into() };
    let permanent = |code: &str| PushVerdict::Permanent { code: code.into() };
    let token = |code: &str| PushVerdict::TokenInvalid { code: code.into(), since: None };
    // Deliberately not what the providers' "retry" advice says: a 500 or 502 may come
    // after the provider (or a gateway) took the message, so herald's delivery guarantee
    // decides (see `herald::push::errors`).
    let unknown = |code: &str| PushVerdict::UnknownOutcome { code: code.into() };
    vec![
        (
            "fcm/pushiko-ok-200-verification-only.json",
            Fcm,
            200,
            delivered(Some("projects/foo/messages/fake_message_id")),
        ),
        ("fcm/firebase-admin-go-404-unregistered.json", Fcm, 404, token("unregistered")),
        ("fcm/pushiko-unregistered-token.json", Fcm, 404, token("unregistered")),
        // The violation names `message.token`.
        ("fcm/pushiko-invalid-registration-token.json", Fcm, 400, token("invalid_registration_token")),
        // No violation; the message says "registration token".
        ("fcm/firebase-docs-400-invalid-registration-token.json", Fcm, 400, token("invalid_registration_token")),
        // INVALID_ARGUMENT about something else: our request, not the token.
        ("fcm/firebase-docs-400-invalid-data-value.json", Fcm, 400, permanent("invalid_argument")),
        ("fcm/pushiko-missing-registration-token.json", Fcm, 400, permanent("invalid_argument")),
        ("fcm/pushiko-payload-too-large.json", Fcm, 400, permanent("invalid_argument")),
        ("fcm/firebase-admin-go-403-sender-id-mismatch.json", Fcm, 403, permanent("sender_id_mismatch")),
        ("fcm/firebase-admin-go-401-third-party-auth-error.json", Fcm, 401, permanent("third_party_auth_error")),
        // FCM's documented minimum delay when no Retry-After came with it.
        (
            "fcm/firebase-admin-go-429-quota-exceeded.json",
            Fcm,
            429,
            PushVerdict::Transient { retry_after: Some(Duration::from_secs(60)), code: "quota_exceeded".into() },
        ),
        ("fcm/firebase-admin-go-503-unavailable.json", Fcm, 503, transient("unavailable")),
        ("fcm/pushiko-unavailable.json", Fcm, 503, transient("unavailable")),
        ("fcm/pushiko-internal-server-error.json", Fcm, 500, unknown("internal")),
        // An HTML page from Google's front end: judged by its status.
        ("fcm/pushiko-bad-gateway.html", Fcm, 502, unknown("fcm_502")),
        ("apns/apns2-400-payload-empty.json", Apns, 400, permanent("payload_empty")),
        (
            "apns/apns2-410-unregistered.json",
            Apns,
            410,
            PushVerdict::TokenInvalid {
                code: "unregistered".into(),
                since: Some(Timestamp::from_millisecond(1_458_114_061_260).unwrap()),
            },
        ),
        ("apns/pushiko-400-bad-device-token.json", Apns, 400, token("bad_device_token")),
        // Deliberately permanent (see `implied_apns_class`).
        ("apns/pushiko-400-device-token-not-for-topic.json", Apns, 400, permanent("device_token_not_for_topic")),
        ("apns/pushiko-400-missing-device-token.json", Apns, 400, permanent("missing_device_token")),
    ]
}

#[test]
fn every_recorded_answer_gets_its_verdict() {
    let Some(dir) = spec_dir() else { return };
    let table = expected();
    assert_eq!(table.len(), 20);

    let mut on_disk = BTreeSet::new();
    for sub in ["fcm", "apns"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            let name = format!("{sub}/{}", entry.unwrap().file_name().to_string_lossy());
            if !TABLES.contains(&name.as_str()) {
                on_disk.insert(name);
            }
        }
    }
    let listed: BTreeSet<String> = table.iter().map(|(file, ..)| (*file).to_owned()).collect();
    assert_eq!(listed.len(), table.len(), "a file is listed twice");
    assert_eq!(on_disk, listed, "every answer on disk has exactly one expected verdict");

    let mut failures = Vec::new();
    for (file, provider, status, want) in table {
        let body = std::fs::read(dir.join(file)).unwrap();
        let got = match provider {
            Provider::Fcm => classify_fcm(status, &body, None, now()),
            Provider::Apns => classify_apns(status, &body, None, None, now()),
        };
        if got != want {
            failures.push(format!("{file}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The class of a verdict, as the sources name the actions.
fn class(v: &PushVerdict) -> &'static str {
    match v {
        PushVerdict::Delivered { .. } => "delivered",
        PushVerdict::Transient { .. } => "transient",
        PushVerdict::Permanent { .. } => "permanent",
        PushVerdict::Reauthenticate { .. } => "reauthenticate",
        PushVerdict::TokenInvalid { .. } => "token_invalid",
        PushVerdict::UnknownOutcome { .. } => "unknown_outcome",
    }
}

/// What Apple's table implies for a reason: its status class, except the reasons about
/// the device token (drop it), our provider JWT (mint a new one) and an idle connection.
fn implied_apns_class(status: u16, reason: &str) -> &'static str {
    match reason {
        "BadDeviceToken" => "token_invalid",
        // By design not token_invalid: a mistyped push.apns_topic naming another app of
        // the team gets this answer for every token, and suppressing them all could not
        // be undone upstream.
        "DeviceTokenNotForTopic" => "permanent",
        "ExpiredProviderToken" | "InvalidProviderToken" => "reauthenticate",
        "IdleTimeout" => "transient",
        _ => match status {
            410 => "token_invalid",
            // By design: APNs may have taken the notification before failing.
            500 | 502 | 504 => "unknown_outcome",
            429 | 503 => "transient",
            _ => "permanent",
        },
    }
}

#[test]
fn every_apns_reason_is_classified_deliberately() {
    let Some(dir) = spec_dir() else { return };
    let doc: Value = serde_json::from_slice(&std::fs::read(dir.join("apns/apns-reasons.json")).unwrap()).unwrap();
    let reasons = doc["reasons"].as_array().unwrap();
    assert_eq!(reasons.len(), 30);

    let mut failures = Vec::new();
    for r in reasons {
        let (status, reason) = (r["status"].as_u64().unwrap() as u16, r["reason"].as_str().unwrap());
        let body = json!({ "reason": reason }).to_string();
        let got = classify_apns(status, body.as_bytes(), None, Some("9"), now());
        let code = got.code().unwrap_or_default();
        // A table row, not the status fallback; a short code that is not the reason verbatim.
        let deliberate = code != format!("apns_{status}") && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        if class(&got) != implied_apns_class(status, reason) || !deliberate {
            failures.push(format!("{status} {reason}: got {got:?}"));
        }
        if let PushVerdict::Transient { retry_after, .. } = &got
            && *retry_after != Some(Duration::from_secs(9))
        {
            failures.push(format!("{status} {reason}: Retry-After ignored"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The sample bodies of the same document.
    let samples = doc["test_bodies"].as_array().unwrap();
    assert_eq!(samples.len(), 2);
    for s in samples {
        let got = classify_apns(
            s["status"].as_u64().unwrap() as u16,
            s["body"].as_str().unwrap().as_bytes(),
            None,
            None,
            now(),
        );
        assert_ne!(class(&got), "delivered", "{s}");
    }
    let success = doc["success"]["status"].as_u64().unwrap() as u16;
    assert_eq!(
        classify_apns(success, b"", Some("EC1BF194-B3B2-424A-89A9-5A918A6E6B5D"), None, now()),
        PushVerdict::Delivered { message_id: Some("EC1BF194-B3B2-424A-89A9-5A918A6E6B5D".into()) }
    );
}

#[test]
fn every_fcm_error_code_is_classified_as_documented() {
    let Some(dir) = spec_dir() else { return };
    let doc: Value = serde_json::from_slice(&std::fs::read(dir.join("fcm/fcm-v1-error-codes.json")).unwrap()).unwrap();
    let codes = doc["codes"].as_array().unwrap();
    assert_eq!(codes.len(), 8);

    let mut failures = Vec::new();
    for c in codes {
        let error_code = c["errorCode"].as_str().unwrap();
        // UNSPECIFIED_ERROR has no documented status: a plain client error.
        let status = c["http"].as_u64().map_or(400, |s| s as u16);
        let body = |violation: &str| {
            json!({"error": {
                "code": status,
                "message": "test",
                "status": c["grpc_status"],
                "details": [
                    {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code},
                    {"@type": "type.googleapis.com/google.rpc.BadRequest",
                     "fieldViolations": [{"field": violation, "description": "test"}]},
                ],
            }})
            .to_string()
        };
        let got = classify_fcm(status, body("message.data").as_bytes(), Some("17"), now());
        // retry: true is transient and honours Retry-After; "delete token" drops the
        // token; every other retry: false is permanent (SENDER_ID_MISMATCH included).
        let want = match (c["retry"].as_bool().unwrap(), c["action"].as_str()) {
            // By design (see `expected`): INTERNAL may follow an accepted message.
            _ if error_code == "INTERNAL" => "unknown_outcome",
            (true, _) => "transient",
            (false, Some("delete token")) => "token_invalid",
            (false, _) => "permanent",
        };
        if class(&got) != want {
            failures.push(format!("{error_code}: got {got:?}, want {want}"));
        }
        if want == "transient"
            && !matches!(got, PushVerdict::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(17))
        {
            failures.push(format!("{error_code}: Retry-After ignored: {got:?}"));
        }
        if got.code() != Some(&error_code.to_ascii_lowercase()) {
            failures.push(format!("{error_code}: code {:?}", got.code()));
        }
        // INVALID_ARGUMENT on the token (`google.rpc.BadRequest` names it): drop the token.
        if error_code == "INVALID_ARGUMENT" {
            let on_token = classify_fcm(status, body("message.token").as_bytes(), None, now());
            if class(&on_token) != "token_invalid" {
                failures.push(format!("INVALID_ARGUMENT on message.token: got {on_token:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn no_verdict_echoes_the_body() {
    let Some(dir) = spec_dir() else { return };
    // Tokens and project ids in the bodies never reach a code; message ids only on success.
    for (file, provider, status, _) in expected() {
        let body = std::fs::read(dir.join(file)).unwrap();
        let got = match provider {
            Provider::Fcm => classify_fcm(status, &body, None, now()),
            Provider::Apns => classify_apns(status, &body, None, None, now()),
        };
        if let Some(code) = got.code() {
            for secret in ["abc123", "token123", "test-project", "projects/"] {
                assert!(!code.contains(secret), "{file}: {code}");
            }
        }
    }
    let token = "f".repeat(64);
    let hostile = json!({"reason": token, "timestamp": 1}).to_string();
    assert_eq!(
        classify_apns(400, hostile.as_bytes(), None, None, now()),
        PushVerdict::Permanent { code: "apns_400".into() }
    );
}
