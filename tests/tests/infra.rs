//! The deployment template as the test suite sees it: the lint that `scripts/test.sh`
//! runs fails on a broken template, the harness creates in moto exactly the queues,
//! table, secrets, topics and subscriptions the template defines, the SMS function mirrors
//! the email function and its role may text phone numbers and nothing more, the push
//! function mirrors the SMS function and its role may reach platform endpoints and its
//! own secret and nothing more, and the optional entry topic routes each request to its
//! channel's queue (in moto).

use std::collections::{BTreeMap, BTreeSet};
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
        // The first of each (the email function's): one broken place is enough to fail.
        assert!(original.contains(good), "the template should contain {good:?}");
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

    // With the default parameters: the queues of the optional entry topic are not created.
    let queues: Vec<&str> = t.ids_of_type("AWS::SQS::Queue").into_iter().filter(|id| t.is_created(id)).collect();
    assert_eq!(deployed.queues.keys().map(String::as_str).collect::<BTreeSet<_>>(), queues.iter().copied().collect());
    for id in [
        "EmailRequestQueue",
        "EmailRequestDlq",
        "SmsRequestQueue",
        "SmsRequestDlq",
        "PushRequestQueue",
        "PushRequestDlq",
    ] {
        assert!(deployed.queues.contains_key(id), "{id}");
    }
    assert!(!deployed.queues.contains_key("UnroutedRequestQueue") && !deployed.topics.contains_key("EntryTopic"));
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

    // The generated unsubscribe and webhook secrets (moto's CloudFormation would skip
    // them): created, as CloudFormation generates them, in the formats their functions
    // parse, and named by the functions' environment; the push secret as written, {}.
    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let created: BTreeSet<&str> =
        t.ids_of_type("AWS::SecretsManager::Secret").into_iter().filter(|id| t.is_created(id)).collect();
    assert_eq!(deployed.secrets.keys().map(String::as_str).collect::<BTreeSet<_>>(), created);
    assert!(!created.is_empty(), "with the default parameters the stack creates its secrets");
    for (id, arn) in &deployed.secrets {
        let got = secrets.get_secret_value().secret_id(arn).send().await.expect("GetSecretValue");
        let value: Value = serde_json::from_str(got.secret_string().expect("a string secret")).expect("JSON");
        if let Some(literal) = t.properties(id)["SecretString"].as_str() {
            assert_eq!(got.secret_string(), Some(literal), "{id}");
            match id.as_str() {
                // No push provider configured: only SNS mobile push works until it is filled.
                "PushSecret" => assert_eq!(value, json!({}), "{id}"),
                other => panic!("a secret no test knows: {other}"),
            }
            continue;
        }
        let generate = &t.properties(id)["GenerateSecretString"];
        let kid = generate["GenerateStringKey"].as_str().expect("GenerateStringKey");
        let key = value[kid].as_str().expect("the generated key");
        assert_eq!(key.len() as u64, generate["PasswordLength"].as_u64().expect("PasswordLength"));
        assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "ExcludePunctuation");
        match id.as_str() {
            // The unsubscribe key ring: the generated key, named primary.
            "UnsubscribeSecret" => {
                assert_eq!(value["primary"], kid, "{id}: {value:?}");
                assert_eq!(value.as_object().map(|o| o.len()), Some(2));
                assert!(herald::receipt::unsubscribe::UnsubscribeKeys::parse(got.secret_string().unwrap()).is_ok());
            }
            // The webhook secrets: a `default` entry, a valid Standard Webhooks secret.
            "WebhookSecret" => {
                assert_eq!(value.as_object().map(|o| o.len()), Some(1), "{id}");
                assert!(herald::receipt::webhook::WebhookSecret::parse(&format!("whsec_{key}")).is_ok());
            }
            other => panic!("a secret no test knows: {other}"),
        }
    }
    let env = t.resolved_env("EmailFunction", &deployed);
    assert_eq!(env.get("HERALD_UNSUBSCRIBE_SECRET_ARN"), deployed.secrets.get("UnsubscribeSecret"));
    let env = t.resolved_env("PushFunction", &deployed);
    assert_eq!(env.get(herald_push::SECRET_ARN), deployed.secrets.get("PushSecret"));
}

#[test]
fn conditions_follow_the_parameter_defaults() {
    let t = Template::repo();
    assert!(t.condition("CreateUnsubscribeSecret"), "no UnsubscribeSecretArn by default");
    assert!(!t.condition("DecryptSecretWithCustomerKey"), "no customer managed key by default");
    assert!(t.is_created("UnsubscribeSecret") && t.is_created("StateTable"));
    assert!(t.condition("CreatePushSecret") && t.is_created("PushSecret"), "no PushSecretArn by default");
    assert!(!t.condition("DecryptPushSecretWithCustomerKey"), "no customer managed key by default");
    let given =
        t.with_parameters(&[("PushSecretArn", "arn:aws:secretsmanager:us-east-1:123456789012:secret:push-AbCdEf")]);
    assert!(!given.is_created("PushSecret"), "an existing push secret is used as it is");
    let custom = Template::parse(
        "Parameters:\n  P: {Type: String, Default: x}\nConditions:\n  A: !Equals [!Ref P, x]\n  \
         B: !Not [!Condition A]\n  C: !Or [!Condition B, !Equals [1, 1]]\n  D: !And [!Condition A, !Condition B]\n\
         Resources:\n  R: {Type: X, Condition: B}\n",
    )
    .expect("parses");
    assert!(custom.condition("A") && !custom.condition("B") && custom.condition("C") && !custom.condition("D"));
    assert!(!custom.is_created("R"));
    // A deployment with other parameter values.
    let other = custom.with_parameters(&[("P", "y")]);
    assert!(!other.condition("A") && other.condition("B") && other.is_created("R"));
    assert!(!t.is_created("EntryTopic"), "the entry topic is opt-in");
    assert!(t.with_parameters(&[("CreateEntryTopic", "true")]).is_created("EntryTopic"));
}

// ---------------------------------------------------------------- helpers

/// A value or each item of a list.
fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// The statements of a role's inline policies; `!If` (optional) statements only when
/// `optional` allows them, and then left out.
fn statements(t: &Template, role: &str, optional: bool) -> Vec<Value> {
    assert!(t.properties(role)["ManagedPolicyArns"].is_null(), "{role}: managed policies are not least privilege");
    let mut out = Vec::new();
    for policy in t.properties(role)["Policies"].as_array().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten() {
            if statement.get("Fn::If").is_some() {
                assert!(optional, "{role}: an optional statement {statement}");
                continue;
            }
            assert_eq!(statement["Effect"], "Allow", "{role}: {statement}");
            out.push(statement.clone());
        }
    }
    out
}

/// Action -> the logical ids its `Resource` entries refer to, over all statements.
fn grants(statements: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in statements {
        for action in list(&s["Action"]) {
            let action = action.as_str().expect("a literal action").to_owned();
            out.entry(action).or_default().extend(list(&s["Resource"]).iter().flat_map(template::references));
        }
    }
    out
}

fn role_of<'t>(t: &'t Template, function: &str) -> &'t str {
    template::ref_target(&t.properties(function)["Role"]).expect("the function has an explicit role")
}

fn with_entry_topic() -> Template {
    Template::repo().with_parameters(&[("CreateEntryTopic", "true")])
}

/// The channels each function serves, and the function: every channel has its function.
const CHANNEL_FUNCTIONS: &[(&str, &str)] =
    &[("email", "EmailFunction"), ("sms", "SmsFunction"), ("push", "PushFunction")];

// ---------------------------------------------------------------- the SMS function

/// The SMS function is the email function's twin wherever the channel makes no
/// difference: runtime, size, the event source, its queue and DLQ, logs, alarms and
/// outputs. A setting changed on one and not the other fails here. The timeouts differ
/// by design: the SMS sender may ask SNS about opt-outs before a send, one more call
/// in each record's budget (checked in `template_agrees.rs`), and the queue's
/// visibility stays six times the function's timeout.
#[test]
fn the_sms_function_mirrors_the_email_function() {
    let t = Template::repo();
    let (email, sms) = (t.resource("EmailFunction"), t.resource("SmsFunction"));
    assert_eq!(sms["Type"], "AWS::Serverless::Function");
    assert_eq!(sms["Metadata"]["BuildMethod"], email["Metadata"]["BuildMethod"]);
    assert_eq!(sms["Metadata"]["BuildProperties"], json!({"Binary": "herald-sms"}));
    let skipped =
        |r: &Value| -> Vec<Value> { list(&r["Metadata"]["checkov"]["skip"]).iter().map(|s| s["id"].clone()).collect() };
    assert_eq!(skipped(sms), skipped(email), "the same checkov suppressions, each with its reason");
    for prop in ["CodeUri", "Handler", "Runtime", "Architectures", "MemorySize"] {
        assert_eq!(sms["Properties"][prop], email["Properties"][prop], "SmsFunction.{prop}");
    }
    assert_eq!(sms["Properties"]["LoggingConfig"]["LogFormat"], "JSON");
    let log_group = template::ref_target(&sms["Properties"]["LoggingConfig"]["LogGroup"]).expect("a log group");
    assert_eq!(log_group, "SmsLogGroup");
    assert_eq!(t.resource("SmsLogGroup"), t.resource("EmailLogGroup"));

    // The event source: the same but for the queue.
    let event = |f: &str| {
        let events = t.sqs_events(f);
        assert_eq!(events.len(), 1, "{f}");
        let mut props = events[0].1.clone();
        props.as_object_mut().expect("properties").remove("Queue");
        props
    };
    assert_eq!(event("SmsFunction"), event("EmailFunction"));
    assert_eq!(t.event_queue("SmsFunction"), "SmsRequestQueue");
    // Its queue and DLQ: the same but for the DLQ they point to.
    let queue = |q: &str| {
        let mut r = t.resource(q).clone();
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = Value::Null;
        r["Properties"]["VisibilityTimeout"] = Value::Null;
        r
    };
    for (function, queue) in [("EmailFunction", "EmailRequestQueue"), ("SmsFunction", "SmsRequestQueue")] {
        let timeout = t.properties(function)["Timeout"].as_u64().expect("Timeout");
        assert_eq!(t.properties(queue)["VisibilityTimeout"], json!(6 * timeout), "{queue}");
    }
    assert_eq!(queue("SmsRequestQueue"), queue("EmailRequestQueue"));
    assert_eq!(t.dead_letter_queue("SmsRequestQueue"), Some("SmsRequestDlq"));
    assert_eq!(t.properties("SmsRequestDlq"), t.properties("EmailRequestDlq"));

    // The environment: the email function's, without what only email needs, plus the
    // opt-out switch; its own request queue.
    let email_env = t.function_env("EmailFunction");
    let sms_env = t.function_env("SmsFunction");
    let email_only = ["HERALD_UNSUBSCRIBE_SECRET_ARN", "HERALD_SES_CONFIGURATION_SET"];
    let mut expected: BTreeMap<String, Value> = email_env
        .iter()
        .filter(|(k, _)| !email_only.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    expected.insert("HERALD_REQUEST_QUEUE_URL".into(), json!({"Ref": "SmsRequestQueue"}));
    expected.insert("HERALD_SNS_OPT_OUT_CHECK".into(), json!({"Ref": "SmsOptOutCheck"}));
    let got: BTreeMap<String, Value> = sms_env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, expected);
    let opt_out = &t.doc["Parameters"]["SmsOptOutCheck"];
    assert_eq!(opt_out["AllowedValues"], json!(["true", "false"]));
    // The template's default is the function's own: a deployment and a bare run agree.
    assert_eq!(opt_out["Default"], json!(herald_sms::SNS_OPT_OUT_CHECK_DEFAULT.to_string()));

    // Each email alarm on the function or its queues has its SMS twin.
    let renamed = |v: &Value| -> Value {
        serde_json::from_str(
            &v.to_string().replace("EmailRequest", "SmsRequest").replace("EmailFunction", "SmsFunction"),
        )
        .expect("JSON")
    };
    for (email_alarm, sms_alarm) in [
        ("EmailRequestDlqAlarm", "SmsRequestDlqAlarm"),
        ("EmailRequestAgeAlarm", "SmsRequestAgeAlarm"),
        ("EmailErrorsAlarm", "SmsErrorsAlarm"),
        ("EmailThrottlesAlarm", "SmsThrottlesAlarm"),
    ] {
        let mut want = renamed(t.properties(email_alarm));
        let mut got = t.properties(sms_alarm).clone();
        for alarm in [&mut want, &mut got] {
            alarm.as_object_mut().expect("properties").remove("AlarmDescription");
        }
        assert_eq!(got, want, "{sms_alarm} should watch the SMS function as {email_alarm} watches email");
    }
    for output in ["SmsRequestQueueUrl", "SmsRequestQueueArn", "SmsRequestDlqUrl", "SmsFunctionName"] {
        let email = output.replace("Sms", "Email");
        assert_eq!(t.doc["Outputs"][output]["Value"], renamed(&t.doc["Outputs"][email]["Value"]), "{output}");
    }
}

/// The SMS role: its queue, receipts, the guard-rail table, its logs, and SNS texts to
/// phone numbers. No SES, no secret, no key, and no publishing to a topic.
#[test]
fn the_sms_role_may_text_phone_numbers_and_nothing_else() {
    let t = Template::repo();
    let role = role_of(&t, "SmsFunction");
    assert_eq!(role, "SmsFunctionRole");
    let sms_statements = statements(&t, role, false);
    let sms_grants = grants(&sms_statements);
    let granted: BTreeSet<&str> = sms_grants.keys().map(String::as_str).collect();
    for prefix in ["ses:", "secretsmanager:", "kms:", "iam:", "lambda:"] {
        assert!(!granted.iter().any(|a| a.starts_with(prefix)), "{role} grants {prefix}*: {granted:?}");
    }
    let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<String>>();
    let email_grants = grants(&statements(&t, role_of(&t, "EmailFunction"), true));
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
        expected.insert(action.into(), set(&["SmsRequestQueue"]));
    }
    expected.insert("sqs:SendMessage".into(), set(&["SmsRequestQueue", "ReceiptsQueue"]));
    for (action, on) in &email_grants {
        if action.starts_with("dynamodb:") {
            assert_eq!(on, &set(&["StateTable"]), "{action}");
            expected.insert(action.clone(), on.clone());
        }
    }
    expected.insert("logs:CreateLogStream".into(), set(&["SmsLogGroup"]));
    expected.insert("logs:PutLogEvents".into(), set(&["SmsLogGroup"]));
    // Neither refers to a resource of the stack: NotResource, and "*".
    expected.insert("sns:Publish".into(), BTreeSet::new());
    expected.insert("sns:CheckIfPhoneNumberIsOptedOut".into(), BTreeSet::new());
    assert_eq!(sms_grants, expected, "{role}");

    for s in &sms_statements {
        let actions = list(&s["Action"]);
        if actions == [json!("sns:Publish")] {
            // Publish to a phone number is authorised against "*": everything but an
            // SNS ARN is exactly that.
            assert!(s["Resource"].is_null(), "sns:Publish with a Resource: {s}");
            assert_eq!(s["NotResource"], json!({"Fn::Sub": "arn:${AWS::Partition}:sns:*:*:*"}));
        } else if actions == [json!("sns:CheckIfPhoneNumberIsOptedOut")] {
            assert_eq!(s["Resource"], "*", "the action has no resource type: {s}");
        } else {
            assert!(s["NotResource"].is_null(), "{s}");
            assert!(list(&s["Resource"]).iter().all(|r| r != "*"), "Resource \"*\" in {s}");
        }
        assert!(
            actions.iter().all(|a| a != "sns:Publish") || actions.len() == 1,
            "sns:Publish shares its NotResource with nothing: {s}"
        );
    }
}

// ---------------------------------------------------------------- the push function

/// The push function is the SMS function's twin wherever the channel makes no difference:
/// runtime and size (its timeout is its own: the providers' calls are three more in each
/// record's budget, checked by `template_agrees`), the event source, its queue and DLQ,
/// logs, alarms and outputs. Its environment is the SMS function's without the opt-out
/// switch, plus the push secret's ARN; the variables for tests are not set.
#[test]
fn the_push_function_mirrors_the_sms_function() {
    let t = Template::repo();
    let (sms, push) = (t.resource("SmsFunction"), t.resource("PushFunction"));
    assert_eq!(push["Type"], "AWS::Serverless::Function");
    assert_eq!(push["Metadata"]["BuildMethod"], sms["Metadata"]["BuildMethod"]);
    assert_eq!(push["Metadata"]["BuildProperties"], json!({"Binary": "herald-push"}));
    let skipped =
        |r: &Value| -> Vec<Value> { list(&r["Metadata"]["checkov"]["skip"]).iter().map(|s| s["id"].clone()).collect() };
    assert_eq!(skipped(push), skipped(sms), "the same checkov suppressions, each with its reason");
    for prop in ["CodeUri", "Handler", "Runtime", "Architectures", "MemorySize"] {
        assert_eq!(push["Properties"][prop], sms["Properties"][prop], "PushFunction.{prop}");
    }
    let seconds = |f: &Value| f["Properties"]["Timeout"].as_u64().expect("a timeout");
    assert!(seconds(push) > seconds(sms), "three extra calls per record against SMS's one");
    assert_eq!(push["Properties"]["LoggingConfig"]["LogFormat"], "JSON");
    let log_group = template::ref_target(&push["Properties"]["LoggingConfig"]["LogGroup"]).expect("a log group");
    assert_eq!(log_group, "PushLogGroup");
    assert_eq!(t.resource("PushLogGroup"), t.resource("SmsLogGroup"));

    // The event source: the same but for the queue.
    let event = |f: &str| {
        let events = t.sqs_events(f);
        assert_eq!(events.len(), 1, "{f}");
        let mut props = events[0].1.clone();
        props.as_object_mut().expect("properties").remove("Queue");
        props
    };
    assert_eq!(event("PushFunction"), event("SmsFunction"));
    assert_eq!(t.event_queue("PushFunction"), "PushRequestQueue");
    // Its queue and DLQ: the same but for the DLQ they point to and the visibility
    // timeout, six times each function's timeout.
    let queue = |q: &str| {
        let mut r = t.resource(q).clone();
        r["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] = Value::Null;
        r["Properties"]["VisibilityTimeout"] = Value::Null;
        r
    };
    let timeout = t.properties("PushFunction")["Timeout"].as_u64().expect("Timeout");
    assert_eq!(t.properties("PushRequestQueue")["VisibilityTimeout"], json!(6 * timeout));
    assert_eq!(queue("PushRequestQueue"), queue("SmsRequestQueue"));
    assert_eq!(t.dead_letter_queue("PushRequestQueue"), Some("PushRequestDlq"));
    assert_eq!(t.properties("PushRequestDlq"), t.properties("SmsRequestDlq"));

    // The environment: the SMS function's, without the opt-out switch, plus the secret.
    let mut expected: BTreeMap<String, Value> = t
        .function_env("SmsFunction")
        .iter()
        .filter(|(k, _)| k.as_str() != "HERALD_SNS_OPT_OUT_CHECK")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    expected.insert("HERALD_REQUEST_QUEUE_URL".into(), json!({"Ref": "PushRequestQueue"}));
    expected.insert(
        herald_push::SECRET_ARN.into(),
        json!({"Fn::If": ["CreatePushSecret", {"Ref": "PushSecret"}, {"Ref": "PushSecretArn"}]}),
    );
    let got: BTreeMap<String, Value> =
        t.function_env("PushFunction").iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(got, expected);
    // The function's own variables besides the secret's are for tests (local stand-ins).
    for (test_only, _) in herald_push::FUNCTION.env_vars.iter().filter(|(v, _)| *v != herald_push::SECRET_ARN) {
        assert!(!got.contains_key(*test_only), "{test_only} is for tests only");
    }
    assert_eq!(t.doc["Parameters"]["PushSecretArn"]["Default"], "");

    // Each SMS alarm on the function or its queues has its push twin.
    let renamed = |v: &Value| -> Value {
        serde_json::from_str(&v.to_string().replace("SmsRequest", "PushRequest").replace("SmsFunction", "PushFunction"))
            .expect("JSON")
    };
    for (sms_alarm, push_alarm) in [
        ("SmsRequestDlqAlarm", "PushRequestDlqAlarm"),
        ("SmsRequestAgeAlarm", "PushRequestAgeAlarm"),
        ("SmsErrorsAlarm", "PushErrorsAlarm"),
        ("SmsThrottlesAlarm", "PushThrottlesAlarm"),
    ] {
        let mut want = renamed(t.properties(sms_alarm));
        let mut got = t.properties(push_alarm).clone();
        for alarm in [&mut want, &mut got] {
            alarm.as_object_mut().expect("properties").remove("AlarmDescription");
        }
        assert_eq!(got, want, "{push_alarm} should watch the push function as {sms_alarm} watches SMS");
    }
    for output in ["PushRequestQueueUrl", "PushRequestQueueArn", "PushRequestDlqUrl", "PushFunctionName"] {
        let sms = output.replace("Push", "Sms");
        assert_eq!(t.doc["Outputs"][output]["Value"], renamed(&t.doc["Outputs"][sms]["Value"]), "{output}");
    }
}

/// The push role: its queue, receipts, the guard-rail table, its logs, its own secret (and
/// its key, when one is given), and SNS Publish to this account's platform endpoints in
/// this Region. No SES, no other secret, no topic, no phone number.
#[test]
fn the_push_role_may_reach_platform_endpoints_and_its_secret_and_nothing_else() {
    let t = Template::repo();
    let role = role_of(&t, "PushFunction");
    assert_eq!(role, "PushFunctionRole");
    // The one optional statement (kms:Decrypt) is checked in template_agrees.rs.
    let push_statements = statements(&t, role, true);
    let push_grants = grants(&push_statements);
    let granted: BTreeSet<&str> = push_grants.keys().map(String::as_str).collect();
    for prefix in ["ses:", "kms:", "iam:", "lambda:"] {
        assert!(!granted.iter().any(|a| a.starts_with(prefix)), "{role} grants {prefix}*: {granted:?}");
    }
    let set = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<String>>();
    let sms_grants = grants(&statements(&t, role_of(&t, "SmsFunction"), false));
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for action in ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"] {
        expected.insert(action.into(), set(&["PushRequestQueue"]));
    }
    expected.insert("sqs:SendMessage".into(), set(&["PushRequestQueue", "ReceiptsQueue"]));
    for (action, on) in &sms_grants {
        if action.starts_with("dynamodb:") {
            expected.insert(action.clone(), on.clone());
        }
    }
    expected.insert("logs:CreateLogStream".into(), set(&["PushLogGroup"]));
    expected.insert("logs:PutLogEvents".into(), set(&["PushLogGroup"]));
    expected.insert("secretsmanager:GetSecretValue".into(), set(&["PushSecret", "PushSecretArn"]));
    // Refers to no resource of the stack: an ARN pattern of pseudo parameters.
    expected.insert("sns:Publish".into(), BTreeSet::new());
    assert_eq!(push_grants, expected, "{role}");

    for s in &push_statements {
        assert!(s["NotResource"].is_null(), "{s}");
        assert!(list(&s["Resource"]).iter().all(|r| r != "*"), "Resource \"*\" in {s}");
        let actions = list(&s["Action"]);
        if actions.iter().any(|a| a == "sns:Publish") {
            assert_eq!(actions, [json!("sns:Publish")], "sns:Publish shares its Resource with nothing: {s}");
            assert_eq!(
                s["Resource"],
                json!({"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:endpoint/*"}),
                "platform endpoints only: {s}"
            );
        }
    }
}

// ---------------------------------------------------------------- the entry topic

/// The entry topic is opt-in, and every piece of it goes with it: each channel's
/// subscription takes exactly its channel to the queue its function reads, the unrouted
/// subscription takes everything else, and only the topic may send to those queues.
#[test]
fn the_entry_topic_routes_each_channel_to_its_function_and_the_rest_aside() {
    let t = Template::repo();
    assert_eq!(t.doc["Parameters"]["CreateEntryTopic"]["Default"], "false");
    assert_eq!(t.doc["Conditions"]["WithEntryTopic"], json!({"Fn::Equals": [{"Ref": "CreateEntryTopic"}, "true"]}));
    for id in [
        "EntryTopic",
        "EntryTopicQueuePolicy",
        "EmailRequestSubscription",
        "SmsRequestSubscription",
        "PushRequestSubscription",
        "UnroutedRequestSubscription",
        "UnroutedRequestQueue",
        "UnroutedRequestDlq",
        "UnroutedRequestAlarm",
        "UnroutedRequestDlqAlarm",
        "EntryTopicInvalidBodyAlarm",
    ] {
        assert_eq!(t.resource(id)["Condition"], "WithEntryTopic", "{id} exists exactly with the entry topic");
    }
    assert_eq!(t.doc["Outputs"]["EntryTopicArn"]["Condition"], "WithEntryTopic");
    assert_eq!(t.doc["Outputs"]["EntryTopicArn"]["Value"], json!({"Ref": "EntryTopic"}));
    assert!(!t.properties("EntryTopic")["KmsMasterKeyId"].is_null(), "the entry topic is encrypted");

    let subscriptions = t.ids_of_type("AWS::SNS::Subscription");
    let of_entry_topic: Vec<&str> = subscriptions
        .iter()
        .copied()
        .filter(|s| template::ref_target(&t.properties(s)["TopicArn"]) == Some("EntryTopic"))
        .collect();
    let mut routed = BTreeSet::new();
    let mut unrouted = Vec::new();
    let mut endpoints = BTreeSet::new();
    for id in &of_entry_topic {
        let props = t.properties(id);
        assert_eq!(props["Protocol"], "sqs", "{id}");
        assert_eq!(props["RawMessageDelivery"], true, "{id}: the function must receive the body as published");
        assert_eq!(props["FilterPolicyScope"], "MessageBody", "{id}: the route is the body's channel");
        let endpoint = template::ref_target(&props["Endpoint"]).expect("an endpoint queue");
        let dlq = template::ref_target(&props["RedrivePolicy"]["deadLetterTargetArn"]).expect("a subscription DLQ");
        endpoints.extend([endpoint.to_owned(), dlq.to_owned()]);
        let filter = &props["FilterPolicy"];
        let keys: Vec<&String> = filter.as_object().expect("a filter policy").keys().collect();
        assert_eq!(keys, ["channel"], "{id}: the filter reads the channel only");
        match filter["channel"].as_array().map(Vec::as_slice) {
            Some([Value::String(channel)]) => {
                let function = CHANNEL_FUNCTIONS
                    .iter()
                    .find(|(c, _)| c == channel)
                    .map(|(_, f)| *f)
                    .unwrap_or_else(|| panic!("{id} routes {channel}, which no function serves"));
                assert_eq!(endpoint, t.event_queue(function), "{id} should deliver {channel} to {function}'s queue");
                assert_eq!(
                    Some(dlq),
                    t.dead_letter_queue(endpoint),
                    "{id}: undeliverable requests go to the queue's DLQ"
                );
                assert!(routed.insert(channel.clone()), "{channel} is routed twice");
            }
            _ => unrouted.push((*id, endpoint, filter.clone())),
        }
    }
    let served: BTreeSet<String> = CHANNEL_FUNCTIONS.iter().map(|(c, _)| (*c).to_owned()).collect();
    assert_eq!(routed, served, "every function's channel has its route");
    let [(id, endpoint, filter)] = unrouted.as_slice() else { panic!("one catch-all subscription: {unrouted:?}") };
    assert_eq!(*endpoint, "UnroutedRequestQueue", "{id}");
    // No function polls the unrouted queue (nothing must take those requests away).
    let polled: Vec<&str> = t
        .ids_of_type("AWS::Serverless::Function")
        .iter()
        .flat_map(|f| t.sqs_events(f))
        .filter_map(|(_, e)| herald_e2e::template::ref_target(&e["Queue"]))
        .collect();
    assert!(!polled.contains(endpoint), "{polled:?}");
    // `$or` of "no channel" and "any channel but the routed ones", as one key's values.
    assert_eq!(filter["channel"][0], json!({"exists": false}), "{id}: exists:false first (moto stops at anything-but)");
    let excluded: BTreeSet<String> =
        list(&filter["channel"][1]["anything-but"]).iter().filter_map(|c| c.as_str().map(str::to_owned)).collect();
    assert_eq!(excluded, routed, "{id}: anything-but must name exactly the routed channels");
    assert_eq!(filter["channel"].as_array().map(Vec::len), Some(2), "{id}: {filter}");

    // Only the topic (as a service) may send to its endpoints and their DLQs.
    let policy = t.properties("EntryTopicQueuePolicy");
    let targets = |v: &Value| -> BTreeSet<String> { list(v).iter().flat_map(template::references).collect() };
    assert_eq!(targets(&policy["Queues"]), endpoints);
    let [statement] = policy["PolicyDocument"]["Statement"].as_array().map(Vec::as_slice).unwrap_or_default() else {
        panic!("one statement: {policy}")
    };
    assert_eq!(statement["Principal"], json!({"Service": "sns.amazonaws.com"}));
    assert_eq!(statement["Action"], "sqs:SendMessage");
    assert_eq!(targets(&statement["Resource"]), endpoints);
    assert_eq!(statement["Condition"], json!({"ArnEquals": {"aws:SourceArn": {"Ref": "EntryTopic"}}}));

    // Producers may send to every function's queue, and publish to the topic when it exists.
    let orchestrator = &t.properties("OrchestratorPolicy")["PolicyDocument"]["Statement"];
    let enqueue = list(orchestrator).into_iter().find(|s| s["Sid"] == "EnqueueRequests").expect("EnqueueRequests");
    let function_queues: BTreeSet<String> =
        CHANNEL_FUNCTIONS.iter().map(|(_, f)| t.event_queue(f).to_owned()).collect();
    assert_eq!(targets(&enqueue["Resource"]), function_queues);
    let publish = list(orchestrator)
        .into_iter()
        .find_map(|s| s.get("Fn::If").cloned())
        .expect("an optional statement for the topic");
    assert_eq!(publish[0], "WithEntryTopic");
    assert_eq!(publish[1]["Action"], "sns:Publish");
    assert_eq!(publish[1]["Resource"], json!({"Ref": "EntryTopic"}));
    assert_eq!(publish[2], json!({"Ref": "AWS::NoValue"}));
}

/// Drains a queue: the bodies of every message on it, sorted.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("ReceiveMessage");
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            bodies.push(m.body().unwrap_or_default().to_owned());
            let handle = m.receipt_handle().unwrap_or_default();
            sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.expect("DeleteMessage");
        }
    }
    bodies.sort();
    bodies
}

/// In moto, with the template's own subscriptions: a request published to the entry topic
/// lands, unchanged, on its channel's queue; one for a channel nobody serves (a typo), or
/// with no channel, on the unrouted queue; and nothing anywhere else. A body that is not JSON
/// lands nowhere: the documented gap (EntryTopicInvalidBodyAlarm).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_published_to_the_entry_topic_land_on_their_channel_queue() {
    let t = with_entry_topic();
    let moto = Moto::start().await;
    let sdk = moto.sdk_config(&moto.endpoint).await;
    let deployed = t.create_resources(&sdk, &Overrides::default()).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    // The subscriptions carry the template's attributes.
    for (id, arn) in &deployed.subscriptions {
        let got =
            sns.get_subscription_attributes().subscription_arn(arn).send().await.expect("GetSubscriptionAttributes");
        let attrs = got.attributes().expect("attributes");
        let props = t.properties(id);
        assert_eq!(attrs.get("RawMessageDelivery").map(String::as_str), Some("true"), "{id}");
        if let Some(filter) = props.get("FilterPolicy") {
            let got: Value = serde_json::from_str(&attrs["FilterPolicy"]).expect("JSON");
            assert_eq!(&got, filter, "{id}");
            assert_eq!(attrs.get("FilterPolicyScope").map(String::as_str), Some("MessageBody"), "{id}");
        }
        let dlq = template::ref_target(&props["RedrivePolicy"]["deadLetterTargetArn"]).expect("DLQ");
        let redrive: Value = serde_json::from_str(&attrs["RedrivePolicy"]).expect("JSON");
        assert_eq!(redrive["deadLetterTargetArn"], deployed.queues[dlq].arn, "{id}");
    }
    for id in
        ["EmailRequestSubscription", "SmsRequestSubscription", "PushRequestSubscription", "UnroutedRequestSubscription"]
    {
        assert!(deployed.subscriptions.contains_key(id), "{id}");
    }

    let request = |id: &str, channel: Option<&str>| {
        let mut r = json!({"id": id, "category": "transactional", "recipient": {"id": "u-1"}, "template": "one-time-code", "data": {"code": "1"}});
        if let Some(c) = channel {
            r["channel"] = json!(c);
        }
        // Spacing a re-serialisation would change: the body must arrive byte for byte.
        r.to_string().replacen('{', "{ ", 1)
    };
    let email = request("r-email", Some("email"));
    let sms = request("r-sms", Some("sms"));
    let push = request("r-push", Some("push"));
    let typo = request("r-typo", Some("mail"));
    let none = request("r-none", None);
    let topic = deployed.topic_arn("EntryTopic");
    for body in [&email, &sms, &push, &typo, &none, &"not JSON".to_owned()] {
        sns.publish().topic_arn(topic).message(body.as_str()).send().await.expect("Publish");
    }

    let mut landed = BTreeMap::new();
    for (id, queue) in &deployed.queues {
        let bodies = drain(&sqs, &queue.url).await;
        if !bodies.is_empty() {
            landed.insert(id.as_str(), bodies);
        }
    }
    let mut unrouted = vec![typo.clone(), none.clone()];
    unrouted.sort();
    let expected = BTreeMap::from([
        ("EmailRequestQueue", vec![email]),
        ("SmsRequestQueue", vec![sms]),
        ("PushRequestQueue", vec![push]),
        ("UnroutedRequestQueue", unrouted),
    ]);
    assert_eq!(landed, expected);
}
