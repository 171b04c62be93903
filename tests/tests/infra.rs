//! The deployment template as the test suite sees it: the lint that `scripts/test.sh`
//! runs fails on a broken template, and the harness creates in moto exactly the queues,
//! table and secrets the template defines.

use std::path::PathBuf;
use std::process::Command;

use aws_sdk_sqs::types::QueueAttributeName;
use herald_e2e::moto::Moto;
use herald_e2e::repo_root;
use herald_e2e::template::{self, Overrides, Template};
use serde_json::{Value, json};

/// The IaC venv's interpreter, which `scripts/test.sh` installs. Absent outside that
/// script (a bare `cargo test`): skip with a notice, except in CI, where it must run.
fn iac_python() -> Option<PathBuf> {
    let python = repo_root().join(".venv-iac/bin/python");
    if python.is_file() {
        return Some(python);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must run the infra lint test: scripts/test.sh installs .venv-iac");
    eprintln!("skipping: .venv-iac is not installed (run scripts/test.sh, which installs it)");
    None
}

/// Runs scripts/lint_infra.py on `text` (a template) in a temp dir: (success, output).
fn lint(python: &PathBuf, text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    // The template's CodeUri is relative to the template, and the lint replaces it.
    let path = dir.path().join("template.yaml");
    std::fs::write(&path, text).expect("write the template copy");
    let out = Command::new(python)
        .arg(repo_root().join("scripts/lint_infra.py"))
        .arg(&path)
        .arg("--fail-fast")
        .current_dir(dir.path())
        .output()
        .expect("run scripts/lint_infra.py");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), output)
}

#[test]
fn the_infra_lint_fails_on_a_broken_template() {
    let Some(python) = iac_python() else { return };
    let original = std::fs::read_to_string(template::path()).expect("infra/template.yaml");
    let checkov_skip = "          - id: CKV_AWS_158\n";
    let cases = [
        // Values cfn-lint cannot see on AWS::Serverless::Function: caught once translated.
        ("a misspelt ReportBatchItemFailures", "[ReportBatchItemFailures]", "[ReportBatchItemFailure]", "E3030"),
        ("a runtime that does not exist", "Runtime: provided.al2023", "Runtime: provided.al2024", "provided.al2024"),
        // A security finding without its justified suppression: checkov fails.
        ("an unexplained checkov finding", checkov_skip, "          - id: CKV_AWS_999\n", "CKV_AWS_158"),
    ];
    for (what, good, bad, expected) in cases {
        assert_eq!(original.matches(good).count(), 1, "the template should contain {good:?} once");
        let (ok, output) = lint(&python, &original.replacen(good, bad, 1));
        assert!(!ok, "the lint passed a template with {what}:\n{output}");
        assert!(output.contains(expected), "{what}: the lint output does not mention {expected}:\n{output}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_creates_the_queues_table_and_secrets_the_template_defines() {
    let t = Template::repo();
    let moto = Moto::start().await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    let deployed = t.create_resources(&sdk, &Overrides::default()).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let queues = t.ids_of_type("AWS::SQS::Queue");
    assert_eq!(deployed.queues.len(), queues.len());
    for id in queues {
        let got = sqs
            .get_queue_attributes()
            .queue_url(deployed.queue_url(id))
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .expect("GetQueueAttributes");
        let attrs = got.attributes().expect("attributes");
        let attr = |name: QueueAttributeName| attrs.get(&name).cloned().unwrap_or_default();
        let props = t.properties(id);
        for (prop, name) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ] {
            if let Some(want) = template::scalar(&props[prop]) {
                assert_eq!(attr(name), want, "{id}.{prop}");
            }
        }
        if let Some(dlq) = t.dead_letter_queue(id) {
            let policy: Value = serde_json::from_str(&attr(QueueAttributeName::RedrivePolicy)).expect("redrive JSON");
            assert_eq!(policy["deadLetterTargetArn"], deployed.queues[dlq].arn, "{id}");
            let max = policy["maxReceiveCount"].as_u64().or_else(|| policy["maxReceiveCount"].as_str()?.parse().ok());
            assert_eq!(max, props["RedrivePolicy"]["maxReceiveCount"].as_u64(), "{id}");
        }
    }

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    for (id, name) in &deployed.tables {
        let table = ddb.describe_table().table_name(name).send().await.expect("DescribeTable");
        let table = table.table().expect("table");
        let keys: Vec<Value> = table
            .key_schema()
            .iter()
            .map(|k| json!({"AttributeName": k.attribute_name(), "KeyType": k.key_type().as_str()}))
            .collect();
        assert_eq!(Value::Array(keys), t.properties(id)["KeySchema"], "{id}");
        let ttl = ddb.describe_time_to_live().table_name(name).send().await.expect("DescribeTimeToLive");
        let ttl = ttl.time_to_live_description().expect("TTL");
        assert_eq!(ttl.attribute_name(), t.properties(id)["TimeToLiveSpecification"]["AttributeName"].as_str(), "{id}");
    }

    // The generated unsubscribe secret (moto's CloudFormation would skip it): created,
    // as CloudFormation generates it, in the key-ring format, and named by the function's
    // environment.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let created: Vec<&str> =
        t.ids_of_type("AWS::SecretsManager::Secret").into_iter().filter(|id| t.is_created(id)).collect();
    assert_eq!(deployed.secrets.keys().map(String::as_str).collect::<Vec<_>>(), created);
    assert!(!created.is_empty(), "with the default parameters the stack generates its secret");
    for (id, arn) in &deployed.secrets {
        let got = secrets.get_secret_value().secret_id(arn).send().await.expect("GetSecretValue");
        let ring: Value = serde_json::from_str(got.secret_string().expect("a string secret")).expect("JSON");
        let generate = &t.properties(id)["GenerateSecretString"];
        let kid = generate["GenerateStringKey"].as_str().expect("GenerateStringKey");
        assert_eq!(ring["primary"], kid, "{id}: {ring:?}");
        let key = ring[kid].as_str().expect("the generated key");
        assert_eq!(key.len() as u64, generate["PasswordLength"].as_u64().expect("PasswordLength"));
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "ExcludePunctuation");
        assert_eq!(ring.as_object().map(|o| o.len()), Some(2));
    }
    let env = t.resolved_env("EmailFunction", &deployed);
    assert_eq!(env.get("HERALD_UNSUBSCRIBE_SECRET_ARN"), deployed.secrets.get("UnsubscribeSecret"));
}

#[test]
fn conditions_follow_the_parameter_defaults() {
    let t = Template::repo();
    assert!(t.condition("CreateUnsubscribeSecret"), "no UnsubscribeSecretArn by default");
    assert!(!t.condition("DecryptSecretWithCustomerKey"), "no customer managed key by default");
    assert!(t.is_created("UnsubscribeSecret") && t.is_created("StateTable"));
    let custom = Template::parse(
        "Parameters:\n  P: {Type: String, Default: x}\nConditions:\n  A: !Equals [!Ref P, x]\n  \
         B: !Not [!Condition A]\n  C: !Or [!Condition B, !Equals [1, 1]]\n  D: !And [!Condition A, !Condition B]\n\
         Resources:\n  R: {Type: X, Condition: B}\n",
    )
    .expect("parses");
    assert!(custom.condition("A") && !custom.condition("B") && custom.condition("C") && !custom.condition("D"));
    assert!(!custom.is_created("R"));
}
