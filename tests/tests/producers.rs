//! The producer examples (`examples/producers`) against moto, on the stack's own queues,
//! entry topic and subscriptions: the Python (boto3) and Node.js (AWS SDK v3) programs
//! each send one email and one SMS request straight to the channel queues and through
//! the entry topic, and each request arrives unchanged on its channel's queue, and
//! nowhere else.
//!
//! Needs `.venv` (moto and boto3) and Node 20+ with the example's packages, which
//! `scripts/test.sh` installs (`npm ci --prefix examples/producers/node`). A missing
//! piece fails the test with what to run: it is never skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use herald_e2e::moto::{Moto, UNSET_ENV};
use herald_e2e::repo_root;
use herald_e2e::template::{Deployed, Overrides, Template};

fn producers() -> PathBuf {
    repo_root().join("examples/producers")
}

fn python() -> PathBuf {
    let python = repo_root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test.sh, which installs moto and boto3 into .venv",
        python.display()
    );
    python
}

fn node() -> PathBuf {
    let out = Command::new("node").arg("--version").output();
    let version = match &out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        other => panic!(
            "node is not on PATH ({other:?}): the Node.js producer example needs Node 20 or newer; \
             scripts/test.sh checks for it and installs the example's packages"
        ),
    };
    let major: u32 = version.trim_start_matches('v').split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    assert!(major >= 20, "node {version} is too old: the AWS SDK v3 needs Node 20 or newer (scripts/test.sh checks)");
    let sdk = producers().join("node/node_modules/@aws-sdk/client-sqs/package.json");
    assert!(
        sdk.is_file(),
        "the Node.js example's packages are not installed: run scripts/test.sh, which runs \
         `npm ci --prefix examples/producers/node`"
    );
    PathBuf::from("node")
}

/// A request file's text as the producers send it (surrounding whitespace trimmed).
fn body(name: &str) -> String {
    let path = producers().join("requests").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_owned()
}

/// Runs a producer with moto's environment plus `env`; returns its stdout lines.
async fn run(program: &Path, script: &str, args: &[String], env: &[(&str, &str)], moto: &Moto) -> Vec<String> {
    let mut cmd = Command::new(program);
    cmd.arg(producers().join(script)).args(args);
    for k in UNSET_ENV {
        cmd.env_remove(k);
    }
    // An empty session token is "unset" for the Rust SDK, not for every SDK.
    for (k, v) in moto.env(&moto.endpoint).into_iter().filter(|(k, _)| k != "AWS_SESSION_TOKEN") {
        cmd.env(k, v);
    }
    for var in ["HERALD_EMAIL_QUEUE_URL", "HERALD_SMS_QUEUE_URL", "HERALD_PUSH_QUEUE_URL", "HERALD_ENTRY_TOPIC_ARN"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let what = format!("{} {script} {args:?}", program.display());
    let out = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run the producer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stderr}", out.status);
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

/// Every message on every queue, deleted: queue id -> (message id, body), sorted.
async fn drain_all(sqs: &aws_sdk_sqs::Client, deployed: &Deployed) -> BTreeMap<String, Vec<(String, String)>> {
    let mut landed = BTreeMap::new();
    for (id, queue) in &deployed.queues {
        let mut messages = Vec::new();
        loop {
            let got =
                sqs.receive_message().queue_url(&queue.url).max_number_of_messages(10).send().await.expect("receive");
            if got.messages().is_empty() {
                break;
            }
            for m in got.messages() {
                messages.push((m.message_id().unwrap_or_default().to_owned(), m.body().unwrap_or_default().to_owned()));
                let handle = m.receipt_handle().unwrap_or_default();
                sqs.delete_message().queue_url(&queue.url).receipt_handle(handle).send().await.expect("delete");
            }
        }
        if !messages.is_empty() {
            messages.sort();
            landed.insert(id.clone(), messages);
        }
    }
    landed
}

/// One run of a producer: `args` and `env` on top of moto's environment.
struct Case<'a> {
    what: &'a str,
    program: &'a Path,
    script: &'a str,
    args: Vec<String>,
    env: Vec<(&'a str, &'a str)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_examples_put_each_request_on_its_channel_queue() {
    let (python, node) = (python(), node());
    let moto = Moto::start().await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    let t = Template::repo().with_parameters(&[("CreateEntryTopic", "true")]);
    let deployed = t.create_resources(&sdk, &Overrides::default()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let (email_url, sms_url) = (deployed.queue_url("EmailRequestQueue"), deployed.queue_url("SmsRequestQueue"));
    let topic = deployed.topic_arn("EntryTopic");
    let files: Vec<String> =
        ["email.json", "sms.json"].iter().map(|f| producers().join("requests").join(f).display().to_string()).collect();
    let (email, sms) = (body("email.json"), body("sms.json"));

    let queue_args = [format!("email={email_url}"), format!("sms={sms_url}")];
    let with = |extra: &[String]| extra.iter().cloned().chain(files.iter().cloned()).collect::<Vec<_>>();
    // Destinations from the environment for one program, from arguments for the other.
    let cases = [
        Case {
            what: "python, queues",
            program: &python,
            script: "python/produce.py",
            args: with(&[]),
            env: vec![("HERALD_EMAIL_QUEUE_URL", email_url), ("HERALD_SMS_QUEUE_URL", sms_url)],
        },
        Case {
            what: "node, queues",
            program: &node,
            script: "node/produce.mjs",
            args: with(&["--queue".into(), queue_args[0].clone(), "--queue".into(), queue_args[1].clone()]),
            env: vec![],
        },
        Case {
            what: "python, topic",
            program: &python,
            script: "python/produce.py",
            args: with(&["--topic-arn".into(), topic.to_owned()]),
            env: vec![],
        },
        Case {
            what: "node, topic",
            program: &node,
            script: "node/produce.mjs",
            args: with(&[]),
            env: vec![("HERALD_ENTRY_TOPIC_ARN", topic)],
        },
    ];
    for Case { what, program, script, args, env } in cases {
        let lines = run(program, script, &args, &env, &moto).await;
        let through_topic = what.ends_with("topic");
        // file, channel, destination, message id: one line per request, in order.
        let printed: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
        assert_eq!(printed.len(), 2, "{what}: {lines:?}");
        for (line, (file, channel, url)) in
            printed.iter().zip([(&files[0], "email", email_url), (&files[1], "sms", sms_url)])
        {
            let destination = if through_topic { topic } else { url };
            assert_eq!(line[..3], [file.as_str(), channel, destination], "{what}: {line:?}");
            assert!(line.get(3).is_some_and(|id| !id.is_empty()), "{what}: no message id in {line:?}");
        }
        let landed = drain_all(&sqs, &deployed).await;
        let bodies: BTreeMap<&str, Vec<&str>> = landed
            .iter()
            .map(|(q, messages)| (q.as_str(), messages.iter().map(|(_, b)| b.as_str()).collect()))
            .collect();
        let expected =
            BTreeMap::from([("EmailRequestQueue", vec![email.as_str()]), ("SmsRequestQueue", vec![sms.as_str()])]);
        assert_eq!(bodies, expected, "{what}: each request unchanged on its channel's queue, nothing elsewhere");
        if !through_topic {
            // Sent straight to SQS: the id printed is the message's.
            assert_eq!(landed["EmailRequestQueue"][0].0, printed[0][3], "{what}");
            assert_eq!(landed["SmsRequestQueue"][0].0, printed[1][3], "{what}");
        }
    }
}
