//! Checks `receipt::sns_message` against ../shared/spec/sns-signature: real AWS-signed
//! messages with their real signing certificates (from AWS's SDK for Java v2 and
//! aws-php-sns-message-validator), each verified with the clock pinned inside its
//! certificate's validity, and each of INDEX.json's negative mutations refused.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use herald::receipt::sns_message::{
    CertificateCache, SigningCertificate, SnsError, SnsMessage, signing_cert_url_ok, subscribe_url_ok,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/sns-signature");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn index(dir: &Path) -> Value {
    read_json(&dir.join("INDEX.json"))
}

/// One INDEX.json vector, parsed, with a clock inside its certificate's validity.
struct Vector {
    name: String,
    message: SnsMessage,
    cert_url: String,
    pem: Vec<u8>,
    cert: SigningCertificate,
    now: Timestamp,
    expect_valid: bool,
}

impl Vector {
    /// This vector's message, changed by `change`, checked at the pinned clock.
    fn verify_with(&self, change: impl FnOnce(&mut SnsMessage)) -> Result<(), SnsError> {
        let mut message = self.message.clone();
        change(&mut message);
        message.verify(&self.cert, self.now)
    }
}

fn load_vectors(dir: &Path) -> Vec<Vector> {
    let entries = index(dir)["vectors"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty(), "INDEX.json lists no vectors");
    entries
        .iter()
        .map(|entry| {
            let field = |key: &str| entry[key].as_str().unwrap_or_else(|| panic!("vector without {key}: {entry}"));
            let file = field("file");
            let json = match entry.get("index") {
                // Fixture files holding several messages under "messages".
                Some(i) => {
                    let i = i.as_u64().and_then(|i| usize::try_from(i).ok()).expect("index is a number");
                    read_json(&dir.join(file))["messages"][i].clone()
                }
                None => read_json(&dir.join(file)),
            };
            let name = match entry.get("index") {
                Some(i) => format!("{file}[{i}]"),
                None => file.to_owned(),
            };
            let message = SnsMessage::parse(&json.to_string()).unwrap_or_else(|e| panic!("{name}: {e}"));

            // The vector is what INDEX.json says it is.
            assert_eq!(message.kind.as_str(), field("Type"), "{name}: Type");
            assert_eq!(message.signature_version, field("SignatureVersion"), "{name}: SignatureVersion");
            match entry.get("Subject") {
                Some(Value::String(s)) if s == "<absent>" => {
                    assert!(json.get("Subject").is_none(), "{name}: Subject should be absent")
                }
                Some(Value::Null) => assert!(json["Subject"].is_null() && json.get("Subject").is_some(), "{name}"),
                Some(Value::String(s)) => assert_eq!(message.subject.as_deref(), Some(s.as_str()), "{name}: Subject"),
                _ => {}
            }

            let pem = std::fs::read(dir.join(field("cert"))).unwrap_or_else(|e| panic!("{name}: {e}"));
            let cert = SigningCertificate::from_pem(&pem).unwrap_or_else(|e| panic!("{name}: {e}"));
            let now = cert.not_before().checked_add(SignedDuration::from_hours(24)).expect("in range");
            Vector {
                name,
                cert_url: message.signing_cert_url.clone(),
                message,
                pem,
                cert,
                now,
                expect_valid: field("expect") == "valid",
            }
        })
        .collect()
}

#[test]
fn every_vector_verifies() {
    let Some(dir) = spec_dir() else { return };
    let vectors = load_vectors(&dir);
    let listed = index(&dir)["vectors"].as_array().map_or(0, Vec::len);
    let mut checked = 0;
    for v in &vectors {
        let verdict = v.message.verify(&v.cert, v.now);
        if v.expect_valid {
            assert_eq!(verdict, Ok(()), "{}", v.name);
        } else {
            assert!(verdict.is_err(), "{}: expected a refusal", v.name);
        }
        // The URL it names is one a caller may fetch, and the cert comes from a like URL.
        assert!(signing_cert_url_ok(&v.cert_url).is_ok(), "{}: SigningCertURL", v.name);
        if let Some(url) = &v.message.subscribe_url {
            assert!(subscribe_url_ok(url).is_ok(), "{}: SubscribeURL", v.name);
        }
        if let Some(url) = &v.message.unsubscribe_url {
            assert!(subscribe_url_ok(url).is_ok(), "{}: UnsubscribeURL", v.name);
        }
        checked += 1;
    }
    assert_eq!(checked, listed, "every vector in INDEX.json was checked");
    assert_eq!(vectors.iter().filter(|v| v.expect_valid).count(), 15, "INDEX.json's 15 valid vectors");
}

#[test]
fn certificates_read_their_validity_window() {
    let Some(dir) = spec_dir() else { return };
    // notBefore / notAfter as `openssl x509 -dates` prints them (SOURCES.md).
    let expected = [
        (
            "aws-sdk-java-v2/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem",
            "2025-11-10T00:00:00Z",
            "2026-10-14T23:59:59Z",
        ),
        (
            "aws-php-sns-message-validator/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem",
            "2021-09-07T00:00:00Z",
            "2022-08-17T23:59:59Z",
        ),
    ];
    for (file, not_before, not_after) in expected {
        let pem = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let cert = SigningCertificate::from_pem(&pem).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(cert.not_before(), not_before.parse::<Timestamp>().unwrap(), "{file}");
        assert_eq!(cert.not_after(), not_after.parse::<Timestamp>().unwrap(), "{file}");
    }
}

#[test]
fn expired_or_not_yet_valid_certificate_is_refused() {
    let Some(dir) = spec_dir() else { return };
    for v in load_vectors(&dir) {
        let after = v.cert.not_after().checked_add(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(v.message.verify(&v.cert, after), Err(SnsError::CertificateExpired), "{}: after notAfter", v.name);
        let before = v.cert.not_before().checked_sub(SignedDuration::from_secs(1)).unwrap();
        assert_eq!(v.message.verify(&v.cert, before), Err(SnsError::CertificateExpired), "{}: before", v.name);
        // The window's ends are inside it.
        assert_eq!(v.message.verify(&v.cert, v.cert.not_after()), Ok(()), "{}: at notAfter", v.name);
    }
}

// One test per entry of INDEX.json `negative_mutations`, each keyed by how the entry
// starts; `negative_mutations_are_all_covered` fails when INDEX.json gains one.
const COVERED: &[&str] = &[
    "change any signed field",
    "Signature = 'bad' or 256 zero bytes",
    "SignatureVersion '3'",
    "SigningCertURL with http://",
    "cert body wrapped in extra text",
    "verify SigV1 vector with SHA256",
];

#[test]
fn negative_mutations_are_all_covered() {
    let Some(dir) = spec_dir() else { return };
    let listed = index(&dir)["negative_mutations"].as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), COVERED.len(), "INDEX.json negative_mutations: {listed:?}");
    for mutation in &listed {
        let text = mutation.as_str().unwrap_or_default();
        assert_eq!(COVERED.iter().filter(|k| text.starts_with(*k)).count(), 1, "not covered here: {text}");
    }
}

#[test]
fn mutation_changed_signed_field_is_refused() {
    let Some(dir) = spec_dir() else { return };
    type Change = fn(&mut SnsMessage);
    let signed: &[(&str, Change)] = &[
        ("Message", |m| m.message.push('!')),
        ("MessageId", |m| m.message_id.push('0')),
        ("Subject", |m| m.subject = Some(format!("{}x", m.subject.as_deref().unwrap_or_default()))),
        ("Subject removed", |m| m.subject = None),
        ("Timestamp", |m| m.timestamp = m.timestamp.replace("Z", "1Z")),
        ("TopicArn", |m| m.topic_arn.push('2')),
        ("SubscribeURL", |m| m.subscribe_url = m.subscribe_url.as_ref().map(|u| format!("{u}&x=1"))),
        ("Token", |m| m.token = m.token.as_ref().map(|t| format!("{t}0"))),
    ];
    let mut refusals = 0;
    for v in load_vectors(&dir) {
        for (field, change) in signed {
            let mut changed = v.message.clone();
            change(&mut changed);
            if changed.string_to_sign() == v.message.string_to_sign() {
                continue; // Not signed for this type (Subject of a confirmation, Token of a notification).
            }
            assert_eq!(v.verify_with(change), Err(SnsError::BadSignature), "{}: {field} changed", v.name);
            refusals += 1;
        }
        // Unsigned fields may change: the check covers what SNS signed, no more.
        let unsigned = v.verify_with(|m| {
            m.unsubscribe_url = None;
            m.message_attributes = Some(Value::Bool(true));
        });
        assert_eq!(unsigned, Ok(()), "{}: unsigned fields changed", v.name);
    }
    // 5 notifications with a Subject (6 changes apply), 8 without (5: none removes it),
    // 2 confirmations (6: their Subject is not signed).
    assert_eq!(refusals, 5 * 6 + 8 * 5 + 2 * 6, "signed-field mutations applied");
}

#[test]
fn mutation_bad_or_zero_signature_is_refused() {
    let Some(dir) = spec_dir() else { return };
    let zeros = STANDARD.encode([0u8; 256]);
    for v in load_vectors(&dir) {
        assert_eq!(v.verify_with(|m| m.signature = "bad".into()), Err(SnsError::BadSignature), "{}: 'bad'", v.name);
        assert_eq!(v.verify_with(|m| m.signature = zeros.clone()), Err(SnsError::BadSignature), "{}: zeros", v.name);
        assert_eq!(v.verify_with(|m| m.signature.clear()), Err(SnsError::BadSignature), "{}: empty", v.name);
        // Another real signature, over another message, by the same key.
        let other =
            load_vectors(&dir).into_iter().find(|o| o.pem == v.pem && o.message.signature != v.message.signature);
        if let Some(other) = other {
            let sig = other.message.signature.clone();
            assert_eq!(v.verify_with(|m| m.signature = sig), Err(SnsError::BadSignature), "{}: swapped", v.name);
        }
    }
}

#[test]
fn mutation_signature_version_3_is_refused() {
    let Some(dir) = spec_dir() else { return };
    for v in load_vectors(&dir) {
        for version in ["3", "0", "", "01", "1 ", "2.0"] {
            let verdict = v.verify_with(|m| m.signature_version = version.into());
            assert_eq!(verdict, Err(SnsError::UnsupportedVersion), "{}: SignatureVersion {version:?}", v.name);
        }
    }
}

#[test]
fn mutation_foreign_cert_url_is_refused() {
    let Some(dir) = spec_dir() else { return };
    let foreign = |url: &str| -> Vec<(&'static str, String)> {
        vec![
            ("http://", url.replacen("https://", "http://", 1)),
            ("other host", "https://internetbadguys.com/cert.pem".to_owned()),
            ("suffixed host", url.replacen(".amazonaws.com/", ".amazonaws.com.evil.com/", 1)),
            ("not .pem", url.replacen(".pem", ".txt", 1)),
            ("userinfo", url.replacen(".amazonaws.com/", ".amazonaws.com@evil.com/", 1)),
            ("port", url.replacen(".amazonaws.com/", ".amazonaws.com:8443/", 1)),
        ]
    };
    for v in load_vectors(&dir) {
        for (what, url) in foreign(&v.cert_url) {
            assert_ne!(url, v.cert_url, "{}: {what} left the URL as it was", v.name);
            assert!(matches!(signing_cert_url_ok(&url), Err(SnsError::BadUrl(_))), "{}: {what}", v.name);
            let verdict = v.verify_with(|m| m.signing_cert_url = url.clone());
            assert!(matches!(verdict, Err(SnsError::BadUrl(_))), "{}: {what} in message: {verdict:?}", v.name);
            let mut cache = CertificateCache::new();
            assert!(matches!(cache.insert(&url, &v.pem), Err(SnsError::BadUrl(_))), "{}: {what} cached", v.name);
        }
        let mut cache = CertificateCache::new();
        assert_eq!(cache.insert(&v.cert_url, &v.pem).ok(), Some(&v.cert), "{}: real URL cached", v.name);
        assert_eq!(cache.get(&v.cert_url, v.now), Some(&v.cert), "{}", v.name);
    }
}

#[test]
fn mutation_wrapped_certificate_is_refused() {
    let Some(dir) = spec_dir() else { return };
    let mut pems: Vec<Vec<u8>> = load_vectors(&dir).into_iter().map(|v| v.pem).collect();
    pems.sort();
    pems.dedup();
    assert_eq!(pems.len(), 2, "two certificates");
    for pem in pems {
        let text = String::from_utf8(pem.clone()).expect("PEM is text");
        let wrapped = [
            format!("<xml>{text}</xml>"),
            format!("<xml>\n{text}\n</xml>\n"),
            format!("{text}\ntrailing"),
            format!("{text}{text}"),
            text.replace("CERTIFICATE", "PUBLIC KEY"),
        ];
        for bad in wrapped {
            let err = SigningCertificate::from_pem(bad.as_bytes()).unwrap_err();
            assert!(matches!(err, SnsError::BadCertificate(_)), "{err:?}");
        }
        // Whitespace around the block, and CRLF, are fine.
        assert!(SigningCertificate::from_pem(format!("\n  {}\r\n", text.replace('\n', "\r\n")).as_bytes()).is_ok());
    }
}

#[test]
fn mutation_signature_version_flipped_is_refused() {
    let Some(dir) = spec_dir() else { return };
    let mut flipped = 0;
    for v in load_vectors(&dir) {
        let other = match v.message.signature_version.as_str() {
            "1" => "2",
            "2" => "1",
            version => panic!("{}: SignatureVersion {version}", v.name),
        };
        assert_eq!(v.verify_with(|m| m.signature_version = other.into()), Err(SnsError::BadSignature), "{}", v.name);
        flipped += 1;
    }
    assert_eq!(flipped, 15);
}

#[test]
fn replay_guard_uses_the_signed_timestamp() {
    let Some(dir) = spec_dir() else { return };
    for v in load_vectors(&dir) {
        let sent = v.message.sent_at().expect("Timestamp parses");
        let hour = SignedDuration::from_hours(1);
        assert_eq!(v.message.check_age(sent.checked_add(SignedDuration::from_mins(5)).unwrap(), hour), Ok(()));
        let late = sent.checked_add(SignedDuration::from_mins(61)).unwrap();
        assert_eq!(v.message.check_age(late, hour), Err(SnsError::Stale), "{}", v.name);
    }
}
