//! `infra/template.yaml` and each function's code agree: the environment it reads, the
//! table its state adapter uses, the queue it is fed from and defers to, the secret it
//! reads (email, push), and the AWS calls its adapters make. The lists come from the code
//! (`herald_lambda::Function::env_vars`, `herald::adapters::aws::AWS_CALLS`,
//! `TTL_ATTRIBUTE`), so a change on either side that the other does not follow fails here.

use std::collections::BTreeSet;

use herald::adapters::aws::{PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE, iam_actions};
use herald_e2e::template::{Template, ref_target, references, scalar};
use herald_email::config;
use herald_lambda::{Function, Need};
use serde_json::{Value, json};

/// Every function: its logical id in the template, and what its code declares.
const FUNCTIONS: [(&str, &Function); 3] = [
    ("EmailFunction", &herald_email::FUNCTION),
    ("SmsFunction", &herald_sms::FUNCTION),
    ("PushFunction", &herald_push::FUNCTION),
];
const EMAIL: &str = "EmailFunction";
const SMS: &str = "SmsFunction";
const PUSH: &str = "PushFunction";

/// Actions that have no resource type in IAM: granted on `*`, nothing narrower exists.
const RESOURCELESS_ACTIONS: &[&str] = &["sns:CheckIfPhoneNumberIsOptedOut"];

/// What the function needs besides its adapters' calls: the SQS event source polls
/// with the function's role, and the function writes its logs.
const POLL_ACTIONS: &[&str] = &["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"];
const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];
/// Granted only when a function's secret is under a customer managed KMS key.
const SECRET_KMS_ACTIONS: &[&str] = &["kms:Decrypt"];
/// The functions that read a secret: the variable naming it (its ARN), and the condition
/// under which the role may decrypt it with a customer managed key.
const SECRETS: [(&str, &str, &str); 2] = [
    (EMAIL, config::UNSUBSCRIBE_SECRET_ARN, "DecryptSecretWithCustomerKey"),
    (PUSH, herald_push::SECRET_ARN, "DecryptPushSecretWithCustomerKey"),
];
/// The push function's own variables besides its secret's ARN point it at local stand-ins
/// (FCM, APNs) and let it reach loopback: for tests only, never set in a deployment.
fn push_test_only() -> Vec<&'static str> {
    herald_push::FUNCTION
        .env_vars
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| *name != herald_push::SECRET_ARN)
        .collect()
}

fn template() -> Template {
    let t = Template::repo();
    for (id, function) in FUNCTIONS {
        assert_eq!(t.type_of(id), Some("AWS::Serverless::Function"), "{id} is the {} function", function.name);
    }
    t
}

/// The logical id an environment variable of a function points to with `!Ref`.
fn env_ref<'t>(t: &'t Template, function: &str, var: &str) -> &'t str {
    let value = &t.function_env(function)[var];
    let target = value.get("Ref").and_then(Value::as_str);
    target.unwrap_or_else(|| panic!("{function}: {var} should be a !Ref to a resource, not {value}"))
}

#[test]
fn every_variable_a_function_reads_is_set_and_nothing_else() {
    let t = template();
    for (id, function) in FUNCTIONS {
        let env = t.function_env(id);
        let vars = function.env_vars();
        for (name, need) in &vars {
            match need {
                Need::Required => assert!(env.contains_key(*name), "{id} does not set {name}, which it requires"),
                Need::EitherOr(other) => {
                    assert!(env.contains_key(*name) || env.contains_key(*other), "{id} sets neither {name} nor {other}")
                }
                Need::Optional => {}
                Need::Forbidden => assert!(!env.contains_key(*name), "{id} sets {name}, which stops the function"),
            }
        }
        let known: Vec<&str> = vars.iter().map(|(name, _)| *name).collect();
        for name in env.keys() {
            assert!(known.contains(&name.as_str()), "{id} sets {name}, which the function does not read (misspelt?)");
        }
        // Set deliberately in AWS although the code has a default: the SDK has no
        // operation timeout of its own, and the budget test below reads it.
        assert!(env.contains_key(config::AWS_TIMEOUT_MS), "{id} should set {}", config::AWS_TIMEOUT_MS);
    }
    // The configuration set publishes the SES events.
    assert!(t.function_env(EMAIL).contains_key(config::SES_CONFIGURATION_SET));
}

#[test]
fn variables_point_at_resources_of_the_right_type() {
    let t = template();
    for (id, _) in FUNCTIONS {
        // !Ref of a queue is its URL and of a table its name, which is what the code expects.
        for (var, ty) in [
            (config::TABLE, "AWS::DynamoDB::Table"),
            (config::REQUEST_QUEUE_URL, "AWS::SQS::Queue"),
            (config::RECEIPTS_QUEUE_URL, "AWS::SQS::Queue"),
        ] {
            let target = env_ref(&t, id, var);
            assert_eq!(t.type_of(target), Some(ty), "{id}: {var} points to {target}");
        }
        assert_ne!(env_ref(&t, id, config::REQUEST_QUEUE_URL), env_ref(&t, id, config::RECEIPTS_QUEUE_URL));
    }
    let target = env_ref(&t, EMAIL, config::SES_CONFIGURATION_SET);
    assert_eq!(t.type_of(target), Some("AWS::SES::ConfigurationSet"));
    // One table and one receipts stream; a queue of its own per function.
    for other in [SMS, PUSH] {
        assert_eq!(env_ref(&t, EMAIL, config::TABLE), env_ref(&t, other, config::TABLE));
        assert_eq!(env_ref(&t, EMAIL, config::RECEIPTS_QUEUE_URL), env_ref(&t, other, config::RECEIPTS_QUEUE_URL));
    }
    let request_queues: BTreeSet<&str> =
        FUNCTIONS.iter().map(|(id, _)| env_ref(&t, id, config::REQUEST_QUEUE_URL)).collect();
    assert_eq!(request_queues.len(), FUNCTIONS.len(), "a request queue per function: {request_queues:?}");
}

/// The timeouts nest: one record's calls and the receipts fit the function's timeout,
/// the function's timeout fits the idempotency lock (else a live attempt loses its
/// lock to a takeover) and the queue's visibility timeout (else a running batch is
/// handed out again); herald ends a request before SQS dead-letters it; and the DLQ
/// forgets a message before idempotency forgets its outcome.
#[test]
fn the_timeouts_nest_and_the_dlq_forgets_before_idempotency_does() {
    let t = template();
    for (id, function) in FUNCTIONS {
        let timeout_ms: u64 = scalar(&t.function_env(id)[config::AWS_TIMEOUT_MS])
            .and_then(|v| v.parse().ok())
            .expect("HERALD_AWS_TIMEOUT_MS is a literal number");
        let function_timeout = t.properties(id)["Timeout"].as_u64().expect("Timeout is set");
        // The sender's own calls (the SMS opt-out check) count: the worst case is the budget.
        let timeout = std::time::Duration::from_millis(timeout_ms);
        let batch = herald::pipeline::BatchBudget::with_extra_calls(None, timeout, function.extra_calls_per_record);
        assert!(
            batch.total() < std::time::Duration::from_secs(function_timeout),
            "a batch may need {:?} at {timeout_ms} ms per AWS call; the function times out after {function_timeout} s",
            batch.total()
        );
        let policy = herald::policy::Policy::default();
        let lock = policy.idempotency.lock_timeout.seconds();
        assert!(lock > function_timeout as i64, "lock {lock} s, function {function_timeout} s");
        let queue = t.event_queue(id);
        let props = t.properties(queue);
        let visibility = props["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
        assert!(visibility >= 6 * function_timeout, "visibility {visibility} s, function {function_timeout} s");
        let max_receives = props["RedrivePolicy"]["maxReceiveCount"].as_u64().expect("maxReceiveCount");
        assert!(
            u64::from(herald::pipeline::MAX_ATTEMPTS) < max_receives,
            "herald gives up after {} attempts; SQS dead-letters after {max_receives} receives",
            herald::pipeline::MAX_ATTEMPTS
        );
        let dlq = t.dead_letter_queue(queue).expect("a DLQ");
        let dlq_retention = t.properties(dlq)["MessageRetentionPeriod"].as_i64().expect("DLQ retention");
        assert!(
            dlq_retention < policy.max_message_age().as_secs(),
            "the DLQ keeps messages {dlq_retention} s; idempotency vouches for {} s",
            policy.max_message_age().as_secs()
        );
    }
}

#[test]
fn the_table_is_the_one_the_state_adapter_uses() {
    let t = template();
    let props = t.properties(env_ref(&t, EMAIL, config::TABLE));
    assert_eq!(
        props["KeySchema"],
        json!([{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}, {"AttributeName": SORT_KEY, "KeyType": "RANGE"}])
    );
    assert_eq!(
        props["AttributeDefinitions"],
        json!([{"AttributeName": PARTITION_KEY, "AttributeType": "S"}, {"AttributeName": SORT_KEY, "AttributeType": "S"}])
    );
    assert_eq!(props["TimeToLiveSpecification"], json!({"AttributeName": TTL_ATTRIBUTE, "Enabled": true}));
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
}

#[test]
fn each_function_is_fed_from_the_queue_it_defers_to() {
    let t = template();
    for (id, _) in FUNCTIONS {
        let request_queue = env_ref(&t, id, config::REQUEST_QUEUE_URL);
        assert_eq!(t.event_queue(id), request_queue, "the event source and HERALD_REQUEST_QUEUE_URL differ");
        let (_, event) = t.sqs_events(id)[0];
        // Without it, Lambda ignores batchItemFailures and deletes the whole batch.
        assert_eq!(event["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
        assert!(!event["ScalingConfig"]["MaximumConcurrency"].is_null(), "the event source's concurrency is unbounded");
        // Records of a batch are processed together; a batch is one invocation's worth.
        assert!(event["BatchSize"].as_u64().is_some_and(|b| (1..=10).contains(&b)), "{}", event["BatchSize"]);

        let queue = t.properties(request_queue);
        let timeout = t.properties(id)["Timeout"].as_u64().expect("Timeout");
        let visibility = queue["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
        assert!(visibility >= 6 * timeout, "visibility {visibility} s < 6 x function timeout {timeout} s");
        assert_eq!(queue["MaximumMessageSize"], 1_048_576);
        let dlq = t.dead_letter_queue(request_queue).expect("the request queue has a DLQ");
        assert_eq!(t.type_of(dlq), Some("AWS::SQS::Queue"));
        assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64().is_some_and(|n| n >= 5));
    }
}

/// Allow statements of a role's inline policies: those always present, and those under
/// `!If [condition, statement, !Ref AWS::NoValue]` with their condition.
fn allow_statements(t: &Template, role: &str) -> (Vec<Value>, Vec<(String, Value)>) {
    let (mut always, mut conditional) = (Vec::new(), Vec::new());
    for policy in t.properties(role)["Policies"].as_array().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten() {
            let (condition, statement) = match statement.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => {
                    assert_eq!(branches.len(), 3, "{role}: {statement}");
                    assert_eq!(branches[2], json!({"Ref": "AWS::NoValue"}), "{role}: only optional statements");
                    (branches[0].as_str().map(str::to_owned), &branches[1])
                }
                None => (None, statement),
            };
            assert_eq!(statement["Effect"], "Allow", "{role}: only Allow statements are expected");
            match condition {
                Some(c) => conditional.push((c, statement.clone())),
                None => always.push(statement.clone()),
            }
        }
    }
    assert!(t.properties(role)["ManagedPolicyArns"].is_null(), "{role}: managed policies are not least privilege");
    (always, conditional)
}

fn list(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// Whether some statement allows `action` on a resource expression referring to `resource`.
fn allows(statements: &[Value], action: &str, resource: &str) -> bool {
    statements.iter().any(|s| {
        list(&s["Action"]).iter().any(|a| a == action)
            && list(&s["Resource"]).iter().any(|r| references(r).iter().any(|id| id == resource))
    })
}

/// A function's role and its always-granted and optional Allow statements.
fn role_of<'t>(t: &'t Template, function: &str) -> (&'t str, Vec<Value>, Vec<(String, Value)>) {
    let role = ref_target(&t.properties(function)["Role"]).expect("the function has an explicit role");
    assert_eq!(t.type_of(role), Some("AWS::IAM::Role"));
    let (statements, conditional) = allow_statements(t, role);
    (role, statements, conditional)
}

#[test]
fn each_role_allows_every_call_of_its_adapters_and_nothing_more() {
    let t = template();
    for (id, function) in FUNCTIONS {
        let (role, statements, conditional) = role_of(&t, id);
        let needed: BTreeSet<&str> = iam_actions(function.aws_adapters)
            .into_iter()
            .chain(POLL_ACTIONS.iter().copied())
            .chain(LOG_ACTIONS.iter().copied())
            .collect();
        let granted: BTreeSet<String> =
            statements.iter().flat_map(|s| list(&s["Action"])).filter_map(|a| a.as_str().map(str::to_owned)).collect();
        let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
        let missing: Vec<_> = needed.difference(&granted).collect();
        let extra: Vec<_> = granted.difference(&needed).collect();
        assert!(missing.is_empty(), "{role} lacks {missing:?}, which the adapters call");
        assert!(extra.is_empty(), "{role} grants {extra:?}, which no adapter calls");
        for s in statements.iter().chain(conditional.iter().map(|(_, s)| s)) {
            let resourceless = list(&s["Action"]).iter().all(|a| RESOURCELESS_ACTIONS.iter().any(|r| a == r));
            if !resourceless {
                assert!(list(&s["Resource"]).iter().all(|r| r != "*"), "{role}: Resource \"*\" in {s}");
            }
        }
        // The only optional grant: decrypting the function's secret with a customer managed key.
        for (condition, s) in &conditional {
            let kms_condition = SECRETS.iter().find(|(f, _, _)| *f == id).map(|(_, _, c)| *c);
            assert_eq!(Some(condition.as_str()), kms_condition, "{role}: unexpected optional statement {s}");
            let actions: Vec<Value> = list(&s["Action"]);
            assert_eq!(actions, SECRET_KMS_ACTIONS.iter().map(|a| json!(a)).collect::<Vec<_>>(), "{s}");
        }

        // Each action on the resources the function reaches through its variables.
        let table = env_ref(&t, id, config::TABLE);
        for action in iam_actions(&["dynamo"]) {
            assert!(allows(&statements, action, table), "{role}: {action} is not allowed on {table}");
        }
        for var in [config::REQUEST_QUEUE_URL, config::RECEIPTS_QUEUE_URL] {
            let queue = env_ref(&t, id, var);
            assert!(allows(&statements, "sqs:SendMessage", queue), "{role}: sqs:SendMessage not allowed on {queue}");
        }
        let request_queue = t.event_queue(id);
        for action in POLL_ACTIONS {
            assert!(allows(&statements, action, request_queue), "{role}: {action} is not allowed on {request_queue}");
        }
    }
}

#[test]
fn the_email_role_sends_only_through_its_configuration_set_and_identity() {
    let t = template();
    let (_, statements, _) = role_of(&t, EMAIL);
    let configuration_set = env_ref(&t, EMAIL, config::SES_CONFIGURATION_SET);
    assert!(allows(&statements, "ses:SendEmail", configuration_set));
    assert!(allows(&statements, "ses:SendEmail", "SenderIdentity"));
    let ses = statements.iter().find(|s| list(&s["Action"]).iter().any(|a| a == "ses:SendEmail")).expect("ses");
    assert!(
        !ses["Condition"]["StringLike"]["ses:FromAddress"].is_null(),
        "ses:SendEmail is not conditioned on the From address"
    );
}

/// SNS Publish reaches a topic or a phone number; the SMS role may reach numbers only,
/// so it cannot post into a topic (the entry topic included). Publishing to a number
/// has no resource ARN, hence `NotResource` every topic rather than a `Resource`.
#[test]
fn the_sms_role_publishes_to_phone_numbers_and_never_to_a_topic() {
    let t = template();
    let (role, statements, _) = role_of(&t, SMS);
    let publish: Vec<&Value> =
        statements.iter().filter(|s| list(&s["Action"]).iter().any(|a| a == "sns:Publish")).collect();
    assert_eq!(publish.len(), 1, "{role}: one statement allows sns:Publish");
    assert!(publish[0]["Resource"].is_null(), "{role}: sns:Publish with a Resource: {}", publish[0]);
    let not = serde_json::to_string(&publish[0]["NotResource"]).unwrap_or_default();
    assert!(not.contains("arn:") && not.contains(":sns:*:*:*"), "{role}: NotResource must exclude every topic: {not}");
    for s in &statements {
        for action in list(&s["Action"]) {
            let action = action.as_str().unwrap_or_default();
            assert!(!action.starts_with("ses:") && !action.starts_with("secretsmanager:"), "{role} grants {action}");
        }
    }
    assert!(
        !t.function_env(SMS).contains_key(config::UNSUBSCRIBE_SECRET_ARN),
        "the SMS function signs no links: it gets no secret"
    );
}

#[test]
fn every_queue_has_a_dead_letter_queue_and_an_alarm_on_it() {
    let t = template();
    let queues = t.ids_of_type("AWS::SQS::Queue");
    let dlqs: BTreeSet<&str> = queues.iter().filter_map(|q| t.dead_letter_queue(q)).collect();
    for queue in &queues {
        assert!(dlqs.contains(queue) || t.dead_letter_queue(queue).is_some(), "{queue} has no DLQ");
        let props = t.properties(queue);
        assert_eq!(props["SqsManagedSseEnabled"], true, "{queue} is not encrypted");
        assert_eq!(props["MaximumMessageSize"], 1_048_576, "{queue}");
    }
    let alarmed: BTreeSet<String> = t
        .ids_of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|a| t.properties(a)["MetricName"] == "ApproximateNumberOfMessagesVisible")
        .flat_map(|a| references(&t.properties(a)["Dimensions"]))
        .collect();
    for dlq in &dlqs {
        assert!(alarmed.contains(*dlq), "no depth alarm on {dlq}");
    }
    for id in ["ReceiptsQueue", "ProviderEventsQueue", "WebhookQueue"] {
        assert_eq!(t.type_of(id), Some("AWS::SQS::Queue"), "{id}");
    }
}

/// Each function that reads a secret reads exactly one: the one its environment names (an
/// ARN, never the value), and its role may read that one only; decrypting it with a
/// customer managed key is granted only when one is given, and only through Secrets
/// Manager. Without an ARN the stack creates the secret, in the format the function parses.
#[test]
fn the_role_reads_exactly_the_secret_the_function_is_given() {
    let t = template();
    for (function, var, kms_condition) in SECRETS {
        let arn = &t.function_env(function)[var];
        let [condition, generated, given] = arn["Fn::If"].as_array().map(Vec::as_slice).unwrap_or_default() else {
            panic!("{function}: {var} should be !If [<create condition>, !Ref <secret>, !Ref <parameter>]: {arn}")
        };
        let condition = condition.as_str().expect("a condition name");
        assert_eq!(
            t.doc["Conditions"][condition],
            json!({"Fn::Equals": [given, ""]}),
            "{function}: created only without an ARN"
        );
        let generated = ref_target(generated).expect("!Ref to the created secret");
        assert_eq!(t.type_of(generated), Some("AWS::SecretsManager::Secret"));
        assert_eq!(t.resource(generated)["Condition"], condition, "{generated} exists exactly when it is used");
        let given = ref_target(given).expect("!Ref to a parameter");
        assert_eq!(t.doc["Parameters"][given]["Type"], "String");
        assert_eq!(t.doc["Parameters"][given]["Default"], "", "{given}: the stack creates the secret by default");

        match function {
            // Generated in the key-ring format the email function parses.
            EMAIL => {
                let generate = &t.properties(generated)["GenerateSecretString"];
                let kid = generate["GenerateStringKey"].as_str().expect("GenerateStringKey");
                let shape: Value =
                    serde_json::from_str(generate["SecretStringTemplate"].as_str().expect("a template")).unwrap();
                assert_eq!(shape, json!({"primary": kid}));
                assert!(generate["PasswordLength"].as_u64().is_some_and(|n| n >= 32), "{generate}");
            }
            // No provider configured: only SNS mobile push works until the operator fills it.
            PUSH => {
                assert_eq!(t.properties(generated)["SecretString"], "{}", "{generated} starts empty");
                assert!(t.properties(generated)["GenerateSecretString"].is_null(), "{generated}");
            }
            other => panic!("{other}: what its secret starts as is not checked"),
        }

        let (role, statements, conditional) = role_of(&t, function);
        let readers: Vec<&Value> = statements
            .iter()
            .filter(|s| list(&s["Action"]).iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("secretsmanager:"))))
            .collect();
        assert_eq!(readers.len(), 1, "{role}: one statement reads secrets: {readers:?}");
        assert_eq!(list(&readers[0]["Action"]), [json!("secretsmanager:GetSecretValue")]);
        assert_eq!(&readers[0]["Resource"], arn, "{role}: GetSecretValue on exactly the ARN the function is given");
        assert!(readers[0]["Condition"].is_null());

        let [(_, decrypt)] = conditional.as_slice() else {
            panic!("{role}: one optional KMS statement: {conditional:?}")
        };
        let key = ref_target(&decrypt["Resource"]).expect("the key parameter");
        assert_eq!(t.doc["Parameters"][key]["Type"], "String");
        assert_eq!(
            t.doc["Conditions"][kms_condition],
            json!({"Fn::Not": [{"Fn::Equals": [{"Ref": key}, ""]}]}),
            "{role}: kms:Decrypt only when a key is given"
        );
        assert_eq!(
            decrypt["Condition"]["StringEquals"]["kms:ViaService"],
            json!({"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}),
            "{role}: decrypt through Secrets Manager only"
        );
    }
}

/// SNS Publish reaches a topic, a phone number or a platform endpoint; the push role may
/// reach this account's platform endpoints in this Region only (SNS mobile push), so it
/// cannot post into a topic or text a number. The variables that point the function at
/// local stand-ins (and let it reach loopback) are for tests: a deployment sets none.
#[test]
fn the_push_role_publishes_to_platform_endpoints_only() {
    let t = template();
    let (role, statements, _) = role_of(&t, PUSH);
    let publish: Vec<&Value> =
        statements.iter().filter(|s| list(&s["Action"]).iter().any(|a| a == "sns:Publish")).collect();
    assert_eq!(publish.len(), 1, "{role}: one statement allows sns:Publish");
    assert_eq!(list(&publish[0]["Action"]), [json!("sns:Publish")], "{role}: {}", publish[0]);
    assert!(publish[0]["NotResource"].is_null(), "{role}: {}", publish[0]);
    assert_eq!(
        publish[0]["Resource"],
        json!({"Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:endpoint/*"}),
        "{role}: sns:Publish on platform endpoints only"
    );
    for s in &statements {
        for action in list(&s["Action"]) {
            let action = action.as_str().unwrap_or_default();
            assert!(!action.starts_with("ses:"), "{role} grants {action}");
            assert!(!RESOURCELESS_ACTIONS.contains(&action), "{role} grants {action}");
        }
    }
    let env = t.function_env(PUSH);
    for var in push_test_only() {
        assert!(!env.contains_key(var), "{PUSH} sets {var}, which is for tests only");
    }
    assert!(!env.contains_key(config::UNSUBSCRIBE_SECRET_ARN), "the push function signs no links");
}

/// The functions that send no channel: each with its logical id and its declaration.
const SERVICES: [(&str, &herald_lambda::Service); 2] =
    [("EventsFunction", &herald_events::SERVICE), ("WebhooksFunction", &herald_webhooks::SERVICE)];

#[test]
fn every_variable_a_service_reads_is_set_and_nothing_else() {
    let t = template();
    for (id, service) in SERVICES {
        assert_eq!(t.type_of(id), Some("AWS::Serverless::Function"), "{id} is the {} function", service.name);
        let env = t.function_env(id);
        for (name, need) in service.env_vars {
            match need {
                Need::Required => assert!(env.contains_key(*name), "{id} does not set {name}, which it requires"),
                Need::EitherOr(other) => {
                    assert!(env.contains_key(*name) || env.contains_key(*other), "{id} sets neither {name} nor {other}")
                }
                Need::Optional => {}
                Need::Forbidden => assert!(!env.contains_key(*name), "{id} sets {name}, which stops the function"),
            }
        }
        let known: Vec<&str> = service.env_vars.iter().map(|(name, _)| *name).collect();
        for name in env.keys() {
            assert!(known.contains(&name.as_str()), "{id} sets {name}, which the function does not read (misspelt?)");
        }
        assert!(env.contains_key(config::AWS_TIMEOUT_MS), "{id} should set {}", config::AWS_TIMEOUT_MS);
    }
}

/// The queues feeding a function: its SAM SQS events and any event source mapping of it.
fn queues_feeding<'t>(t: &'t Template, function: &str) -> BTreeSet<&'t str> {
    let mut queues: BTreeSet<&str> =
        t.sqs_events(function).iter().filter_map(|(_, e)| ref_target(&e["Queue"])).collect();
    for id in t.ids_of_type("AWS::Lambda::EventSourceMapping") {
        let props = t.properties(id);
        if ref_target(&props["FunctionName"]) == Some(function) {
            queues.extend(ref_target(&props["EventSourceArn"]));
            assert_eq!(props["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]), "{id}");
        }
    }
    queues
}

#[test]
fn each_service_role_allows_its_adapters_calls_and_nothing_more() {
    let t = template();
    for (id, service) in SERVICES {
        let (role, statements, conditional) = role_of(&t, id);
        assert!(conditional.is_empty(), "{role}: no optional grants expected");
        let needed: BTreeSet<&str> = iam_actions(service.aws_adapters)
            .into_iter()
            .chain(POLL_ACTIONS.iter().copied())
            .chain(LOG_ACTIONS.iter().copied())
            .collect();
        let granted: BTreeSet<String> =
            statements.iter().flat_map(|s| list(&s["Action"])).filter_map(|a| a.as_str().map(str::to_owned)).collect();
        let granted: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
        assert_eq!(granted, needed, "{role}: grants differ from what the adapters call");
        for s in &statements {
            assert!(list(&s["Resource"]).iter().all(|r| r != "*"), "{role}: Resource \"*\" in {s}");
        }
        // It polls every queue it is fed from, and sends to every queue its variables name.
        for (_, event) in t.sqs_events(id) {
            assert_eq!(
                event["FunctionResponseTypes"],
                json!(["ReportBatchItemFailures"]),
                "{id}: partial batch failures"
            );
        }
        for queue in queues_feeding(&t, id) {
            for action in POLL_ACTIONS {
                assert!(allows(&statements, action, queue), "{role}: {action} is not allowed on {queue}");
            }
            // Six times the function's timeout (AWS's advice), so a batch still running is
            // never handed to a second invocation.
            let visibility = t.properties(queue)["VisibilityTimeout"].as_u64().unwrap_or(30);
            let timeout = t.properties(id)["Timeout"].as_u64().expect("a timeout");
            assert!(visibility >= 6 * timeout, "{queue}: visibility {visibility} s < 6 x {id}'s {timeout} s");
        }
        for (name, value) in t.function_env(id) {
            let Some(target) = value.get("Ref").and_then(Value::as_str) else { continue };
            match t.type_of(target) {
                Some("AWS::SQS::Queue") => {
                    assert!(allows(&statements, "sqs:SendMessage", target), "{role}: cannot send to {target} ({name})")
                }
                Some("AWS::DynamoDB::Table") => {
                    for action in iam_actions(&["dynamo"]) {
                        assert!(allows(&statements, action, target), "{role}: {action} not allowed on {target}");
                    }
                }
                _ => {}
            }
        }
    }
}

#[test]
fn the_webhooks_function_reads_its_secret_and_drains_receipts_and_retries() {
    let t = template();
    let (role, statements, _) = role_of(&t, "WebhooksFunction");
    let secret = &t.function_env("WebhooksFunction")[herald_webhooks::SECRETS_ARN];
    let reads: Vec<&Value> =
        statements.iter().filter(|s| list(&s["Action"]).contains(&json!("secretsmanager:GetSecretValue"))).collect();
    assert_eq!(reads.len(), 1, "{role}");
    assert_eq!(&reads[0]["Resource"], secret, "{role} reads exactly the secret the function is given");
    assert_eq!(queues_feeding(&t, "WebhooksFunction"), BTreeSet::from(["ReceiptsQueue", "WebhookQueue"]));
    // The receipts queue feeds it only when the operator says so: otherwise orchestrators
    // read it, and two consumers would split the receipts between them.
    assert_eq!(
        t.properties("WebhooksReceiptsSource")["EventSourceArn"],
        json!({"Fn::GetAtt": ["ReceiptsQueue", "Arn"]})
    );
    assert_eq!(t.doc["Resources"]["WebhooksReceiptsSource"]["Condition"], "WebhooksReadReceipts");
    assert_eq!(t.parameter_default("ReceiptsConsumer").as_deref(), Some("orchestrator"));
    // The webhooks function reaches hosts on the internet: it may touch one item only.
    let state = statements.iter().find(|s| s["Sid"] == "State").expect("a State statement");
    assert_eq!(state["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"], json!(["WEBHOOKS"]));
    assert_eq!(env_ref(&t, "WebhooksFunction", herald_webhooks::RETRY_QUEUE_URL), "WebhookQueue");
    assert_eq!(env_ref(&t, "WebhooksFunction", herald_webhooks::DEAD_LETTER_QUEUE_URL), "WebhookDlq");
    assert_eq!(env_ref(&t, "EventsFunction", herald_events::DEAD_LETTER_QUEUE_URL), "ProviderEventsDlq");
    assert_eq!(t.event_queue("EventsFunction"), "ProviderEventsQueue");
    // The allow-list is for tests: a deployment sets none.
    assert!(!t.function_env("WebhooksFunction").contains_key(herald_webhooks::ALLOW_NETWORKS));
}

#[test]
fn the_configuration_set_publishes_every_event_type_the_events_function_reads() {
    let t = template();
    let types = &t.properties("ConfigurationSetEvents")["EventDestination"]["MatchingEventTypes"]["Fn::If"];
    let always: BTreeSet<String> = list(&types[2]).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    let tracked: BTreeSet<String> = list(&types[1]).iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
    for kind in
        ["send", "reject", "bounce", "complaint", "delivery", "deliveryDelay", "renderingFailure", "subscription"]
    {
        assert!(always.contains(kind), "{kind} is not published");
    }
    assert!(tracked.is_superset(&always) && tracked.contains("open") && tracked.contains("click"));
}

#[test]
fn two_way_sms_replies_reach_the_events_function_when_a_topic_is_given() {
    let t = template();
    assert_eq!(t.type_of("TwoWaySmsSubscription"), Some("AWS::SNS::Subscription"));
    let sub = t.properties("TwoWaySmsSubscription");
    assert_eq!(ref_target(&sub["Endpoint"]), Some("ProviderEventsQueue"));
    assert_eq!(sub["TopicArn"], json!({"Ref": "TwoWaySmsTopicArn"}));
    // The envelope dates the reply: raw delivery would lose its time.
    assert_eq!(sub["RawMessageDelivery"], false);
    assert_eq!(t.event_queue("EventsFunction"), "ProviderEventsQueue");
    let policy = t.properties("ProviderEventsQueuePolicy")["PolicyDocument"]["Statement"].to_string();
    assert!(policy.contains("TwoWaySmsTopicArn"), "the queue policy lets the reply topic deliver: {policy}");
}

#[test]
fn every_function_the_template_builds_is_a_binary_of_the_workspace() {
    let t = template();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifests: String = std::fs::read_dir(root.join("functions"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("Cargo.toml")).ok())
        .collect();
    let members = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let functions = t.ids_of_type("AWS::Serverless::Function");
    assert!(functions.len() >= 5, "{functions:?}");
    for id in functions {
        let binary = t.doc["Resources"][id]["Metadata"]["BuildProperties"]["Binary"].as_str().expect("a Binary");
        assert!(manifests.contains(&format!("name = \"{binary}\"")), "{id} builds {binary}, which no crate defines");
        let dir = binary.trim_start_matches("herald-");
        assert!(members.contains(&format!("\"functions/{dir}\"")), "functions/{dir} is not a workspace member");
    }
}
