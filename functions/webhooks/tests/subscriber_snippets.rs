//! The signature checks docs/deploy.md gives subscribers (Python and Node, standard
//! libraries only) accept what herald signs and refuse a tampered body, a stale
//! timestamp and another secret. The files are the ones the guide shows.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use herald::receipt::webhook::{self, WebhookSecret};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/webhook-subscribers")
}

fn run(program: &str, script: &Path, case: &serde_json::Value) -> Option<String> {
    let mut child = match Command::new(program).arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{program}: {e}"),
    };
    child.stdin.take().unwrap().write_all(case.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {}: {out:?}", script.display());
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn case(secret: &str, id: &str, timestamp: i64, signed_body: &str, sent_body: &str) -> serde_json::Value {
    let key = WebhookSecret::parse(SECRET).unwrap();
    let signature = webhook::sign(&[key], id, timestamp, signed_body.as_bytes()).unwrap();
    serde_json::json!({
        "secret": secret,
        "headers": {"webhook-id": id, "webhook-timestamp": timestamp.to_string(), "webhook-signature": signature},
        "body": sent_body,
    })
}

#[test]
fn the_documented_verifiers_agree_with_herald() {
    let now = jiff::Timestamp::now().as_second();
    let body = r#"{"type":"event.bounced","timestamp":"2026-11-30T12:00:00Z","data":{"event_id":"e1","note":"é"}}"#;
    let cases = [
        ("herald's own signature", case(SECRET, "e1", now, body, body), "ok"),
        ("a tampered body", case(SECRET, "e1", now, body, &body.replace("bounced", "delivered")), "invalid"),
        ("a stale timestamp", case(SECRET, "e1", now - 3600, body, body), "invalid"),
        ("another secret", case(OTHER, "e1", now, body, body), "invalid"),
    ];
    let mut ran = 0;
    for (program, file) in [("python3", "verify.py"), ("node", "verify.mjs")] {
        for (what, case, expected) in &cases {
            match run(program, &examples().join(file), case) {
                Some(verdict) => assert_eq!(verdict, *expected, "{file}: {what}"),
                None => eprintln!("skipping {file}: {program} is not installed"),
            }
            ran += 1;
        }
    }
    assert_eq!(ran, 8);
}

#[test]
fn the_deploy_guide_shows_the_tested_files() {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/deploy.md")).unwrap();
    for file in ["verify.py", "verify.mjs"] {
        let text = std::fs::read_to_string(examples().join(file)).unwrap();
        let function = text.split("\n\n\nif __name__").next().unwrap().split("\n// Test harness").next().unwrap();
        assert!(guide.contains(function.trim()), "docs/deploy.md should show {file} as tested");
    }
}
