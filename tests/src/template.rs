//! `infra/template.yaml`, read by tests: the agreement checks between the template and
//! the code, and the end-to-end stacks, whose moto queues, table, secrets, topics and
//! subscriptions are created from the template's own definitions rather than from a
//! second hand-written copy.
//!
//! CloudFormation short forms become their long forms (`!Ref X` is `{"Ref": "X"}`,
//! `!GetAtt A.B` is `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` is `{"Fn::Sub": s}`), so the
//! template reads as the JSON CloudFormation itself sees.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Map, Value};

/// The repository's deployment template.
pub fn path() -> PathBuf {
    crate::repo_root().join("infra/template.yaml")
}

/// A parsed CloudFormation (SAM) template.
#[derive(Debug, Clone)]
pub struct Template {
    pub doc: Value,
}

impl Template {
    /// `infra/template.yaml`; panics with the parse error.
    pub fn repo() -> Template {
        let path = path();
        Template::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn load(path: &Path) -> Result<Template, String> {
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        Template::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Template, String> {
        let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        Ok(Template { doc: long_form(yaml)? })
    }

    /// A resource by logical id; panics when there is none.
    pub fn resource(&self, id: &str) -> &Value {
        match self.doc["Resources"].get(id) {
            Some(r) => r,
            None => panic!("the template has no resource {id}"),
        }
    }

    /// `Properties` of a resource (`Null` when it has none).
    pub fn properties(&self, id: &str) -> &Value {
        &self.resource(id)["Properties"]
    }

    /// The type of a resource, if the template has it.
    pub fn type_of(&self, id: &str) -> Option<&str> {
        self.doc["Resources"].get(id).and_then(|r| r["Type"].as_str())
    }

    /// Logical ids of the resources of one type, in file order.
    pub fn ids_of_type(&self, ty: &str) -> Vec<&str> {
        let Some(resources) = self.doc["Resources"].as_object() else { return Vec::new() };
        resources.iter().filter(|(_, r)| r["Type"] == ty).map(|(id, _)| id.as_str()).collect()
    }

    /// A function's environment variables, as written in the template.
    pub fn function_env(&self, function: &str) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.properties(function)["Environment"]["Variables"].as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
    }

    /// The SQS event sources of a SAM function: (event name, its `Properties`).
    pub fn sqs_events(&self, function: &str) -> Vec<(&str, &Value)> {
        let Some(events) = self.properties(function)["Events"].as_object() else { return Vec::new() };
        events.iter().filter(|(_, e)| e["Type"] == "SQS").map(|(name, e)| (name.as_str(), &e["Properties"])).collect()
    }

    /// The queue of a function's only SQS event source; panics unless there is exactly one.
    pub fn event_queue(&self, function: &str) -> &str {
        let events = self.sqs_events(function);
        assert_eq!(events.len(), 1, "{function} should have exactly one SQS event source: {events:?}");
        let queue = &events[0].1["Queue"];
        ref_target(queue).unwrap_or_else(|| panic!("{function}'s event queue is not a !GetAtt/!Ref: {queue}"))
    }

    /// The dead-letter queue of a queue (its `RedrivePolicy` target), if it has one.
    pub fn dead_letter_queue(&self, queue: &str) -> Option<&str> {
        ref_target(&self.properties(queue)["RedrivePolicy"]["deadLetterTargetArn"])
    }

    /// A parameter's default, as a string.
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar(&self.doc["Parameters"][name]["Default"])
    }

    /// The template as deployed with these parameter values: each becomes the parameter's
    /// default, so conditions, [`Template::is_created`], [`Template::create_resources`] and
    /// [`Template::resolved_env`] follow it. Panics on an unknown parameter or a value its
    /// `AllowedValues` refuse.
    pub fn with_parameters(&self, values: &[(&str, &str)]) -> Template {
        let mut doc = self.doc.clone();
        for (name, value) in values {
            let Some(parameter) = doc["Parameters"].get_mut(*name).and_then(Value::as_object_mut) else {
                panic!("the template has no parameter {name}")
            };
            if let Some(allowed) = parameter.get("AllowedValues").and_then(Value::as_array) {
                let allowed: Vec<String> = allowed.iter().filter_map(scalar).collect();
                assert!(allowed.iter().any(|a| a == value), "{name}={value}: not one of {allowed:?}");
            }
            parameter.insert("Default".to_owned(), Value::String((*value).to_owned()));
        }
        Template { doc }
    }

    /// Whether a named condition holds when every parameter has its default. Panics on
    /// an intrinsic it does not know.
    pub fn condition(&self, name: &str) -> bool {
        let definition = &self.doc["Conditions"][name];
        assert!(!definition.is_null(), "the template has no condition {name}");
        self.holds(definition)
    }

    /// Whether a resource is created when every parameter has its default (its `Condition`).
    pub fn is_created(&self, id: &str) -> bool {
        self.resource(id)["Condition"].as_str().is_none_or(|c| self.condition(c))
    }

    fn holds(&self, expression: &Value) -> bool {
        let args = |f: &str| expression[f].as_array().cloned().unwrap_or_default();
        if let Some(name) = expression.get("Condition").and_then(Value::as_str) {
            return self.condition(name);
        }
        if expression.get("Fn::Equals").is_some() {
            let sides: Vec<Option<String>> = args("Fn::Equals").iter().map(|v| self.static_value(v)).collect();
            assert!(sides.len() == 2 && sides.iter().all(Option::is_some), "cannot evaluate {expression}");
            return sides[0] == sides[1];
        }
        if expression.get("Fn::Not").is_some() {
            return !self.holds(&args("Fn::Not")[0]);
        }
        if expression.get("Fn::And").is_some() {
            return args("Fn::And").iter().all(|c| self.holds(c));
        }
        if expression.get("Fn::Or").is_some() {
            return args("Fn::Or").iter().any(|c| self.holds(c));
        }
        panic!("the harness cannot evaluate the condition {expression}: teach tests/src/template.rs")
    }

    /// A literal, or a parameter's default.
    fn static_value(&self, value: &Value) -> Option<String> {
        scalar(value).or_else(|| self.parameter_default(value.get("Ref")?.as_str()?))
    }

    /// Creates the template's SQS queues, DynamoDB tables, Secrets Manager secrets, SNS
    /// topics and SNS subscriptions with the SDK clients of `sdk` (moto, in tests), each
    /// named after its logical id, with the template's attributes except those `overrides`
    /// changes. Resources whose condition does not hold with the parameter defaults are
    /// left out (see [`Template::with_parameters`]). Panics on a property it does not know,
    /// so a template change cannot be silently left out of the tests. Secrets and
    /// subscriptions are created here because moto's CloudFormation skips them.
    pub async fn create_resources(&self, sdk: &aws_config::SdkConfig, overrides: &Overrides) -> Deployed {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let sns = aws_sdk_sns::Client::new(sdk);
        let mut deployed = Deployed::default();
        // Dead-letter queues first: a redrive policy names its target's ARN.
        let mut queues: Vec<&str> =
            self.ids_of_type("AWS::SQS::Queue").into_iter().filter(|id| self.is_created(id)).collect();
        queues.sort_by_key(|id| !self.properties(id)["RedrivePolicy"].is_null());
        for id in queues {
            let queue = self.create_queue(&sqs, id, overrides, &deployed).await;
            deployed.queues.insert(id.to_owned(), queue);
        }
        deployed.tables = self.create_tables(sdk).await;
        for id in self.ids_of_type("AWS::SecretsManager::Secret") {
            if self.is_created(id) {
                let arn = self.create_secret(&secrets, id).await;
                deployed.secrets.insert(id.to_owned(), arn);
            }
        }
        for id in self.ids_of_type("AWS::SNS::Topic") {
            if self.is_created(id) {
                let arn = self.create_topic(&sns, id).await;
                deployed.topics.insert(id.to_owned(), arn);
            }
        }
        for id in self.ids_of_type("AWS::SNS::Subscription") {
            if self.is_created(id) {
                let arn = self.create_subscription(&sns, id, &deployed).await;
                deployed.subscriptions.insert(id.to_owned(), arn);
            }
        }
        deployed
    }

    async fn create_topic(&self, sns: &aws_sdk_sns::Client, id: &str) -> String {
        let mut request = sns.create_topic().name(id);
        for (name, value) in self.properties(id).as_object().into_iter().flatten() {
            match name.as_str() {
                // Encryption and signatures change nothing a subscriber of moto's sees.
                "KmsMasterKeyId" | "SignatureVersion" => {
                    let value = scalar(value).unwrap_or_else(|| panic!("{id}.{name} is not a literal: {value}"));
                    request = request.attributes(name, value);
                }
                other => {
                    panic!("{id}: the harness does not create topics with {other} yet: teach tests/src/template.rs")
                }
            }
        }
        request
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateTopic {id}: {e:?}"))
            .topic_arn()
            .unwrap_or_else(|| panic!("CreateTopic {id}: no ARN"))
            .to_owned()
    }

    /// An SQS subscription of a topic the harness created, with the template's delivery
    /// attributes (raw delivery, filter policy and its scope, the subscription's DLQ).
    async fn create_subscription(&self, sns: &aws_sdk_sns::Client, id: &str, deployed: &Deployed) -> String {
        let props = self.properties(id);
        let target = |name: &str| {
            ref_target(&props[name]).unwrap_or_else(|| panic!("{id}.{name} is not a !Ref/!GetAtt: {}", props[name]))
        };
        let topic =
            deployed.topics.get(target("TopicArn")).unwrap_or_else(|| panic!("{id}: its topic was not created"));
        assert_eq!(props["Protocol"], "sqs", "{id}: the harness creates SQS subscriptions only");
        let queue =
            deployed.queues.get(target("Endpoint")).unwrap_or_else(|| panic!("{id}: its queue was not created"));
        let mut request = sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(&queue.arn);
        for (name, value) in props.as_object().into_iter().flatten() {
            let value = match name.as_str() {
                "TopicArn" | "Protocol" | "Endpoint" => continue,
                "RawMessageDelivery" | "FilterPolicyScope" => {
                    scalar(value).unwrap_or_else(|| panic!("{id}.{name} is not a literal: {value}"))
                }
                "FilterPolicy" => value.to_string(),
                "RedrivePolicy" => {
                    let dlq = ref_target(&value["deadLetterTargetArn"])
                        .and_then(|q| deployed.queues.get(q))
                        .unwrap_or_else(|| panic!("{id}: its DLQ was not created: {value}"));
                    serde_json::json!({"deadLetterTargetArn": dlq.arn}).to_string()
                }
                other => panic!(
                    "{id}: the harness does not create subscriptions with {other} yet: teach tests/src/template.rs"
                ),
            };
            request = request.attributes(name, value);
        }
        request
            .return_subscription_arn(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Subscribe {id}: {e:?}"))
            .subscription_arn()
            .unwrap_or_else(|| panic!("Subscribe {id}: no ARN"))
            .to_owned()
    }

    /// Creates only the template's DynamoDB tables (as [`Template::create_resources`] does),
    /// for tests of the state store alone. Returns logical id -> table name.
    pub async fn create_tables(&self, sdk: &aws_config::SdkConfig) -> BTreeMap<String, String> {
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        let mut tables = BTreeMap::new();
        for id in self.ids_of_type("AWS::DynamoDB::Table") {
            self.create_table(&ddb, id).await;
            tables.insert(id.to_owned(), id.to_owned());
        }
        tables
    }

    /// A secret as CloudFormation makes it: a literal `SecretString` as it is, or
    /// `GenerateSecretString`, which asks moto for a random password (`GetRandomPassword`,
    /// with the template's length and character options) and, with `GenerateStringKey`,
    /// puts it under that key of `SecretStringTemplate`.
    async fn create_secret(&self, secrets: &aws_sdk_secretsmanager::Client, id: &str) -> String {
        let props = self.properties(id);
        for name in props.as_object().map(|p| p.keys().collect::<Vec<_>>()).unwrap_or_default() {
            assert!(
                ["Description", "GenerateSecretString", "SecretString"].contains(&name.as_str()),
                "{id}: the harness does not create secrets with {name} yet: teach tests/src/template.rs"
            );
        }
        let value = match (props.get("SecretString"), props.get("GenerateSecretString")) {
            (Some(literal), None) => {
                literal.as_str().unwrap_or_else(|| panic!("{id}.SecretString is not a literal: {literal}")).to_owned()
            }
            (None, Some(_)) => self.generate_secret(secrets, id).await,
            _ => panic!("{id}: exactly one of SecretString and GenerateSecretString"),
        };
        secrets
            .create_secret()
            .name(id)
            .set_description(props["Description"].as_str().map(str::to_owned))
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateSecret {id}: {e:?}"))
            .arn()
            .unwrap_or_else(|| panic!("CreateSecret {id}: no ARN"))
            .to_owned()
    }

    /// The value `GenerateSecretString` makes.
    async fn generate_secret(&self, secrets: &aws_sdk_secretsmanager::Client, id: &str) -> String {
        let generate = &self.properties(id)["GenerateSecretString"];
        let mut password = secrets.get_random_password();
        for (name, value) in generate.as_object().into_iter().flatten() {
            let flag = || value.as_bool().unwrap_or_else(|| panic!("{id}.{name} is not a literal boolean"));
            password = match name.as_str() {
                "PasswordLength" => password.password_length(value.as_i64().expect("PasswordLength")),
                "ExcludePunctuation" => password.exclude_punctuation(flag()),
                "ExcludeUppercase" => password.exclude_uppercase(flag()),
                "ExcludeLowercase" => password.exclude_lowercase(flag()),
                "ExcludeNumbers" => password.exclude_numbers(flag()),
                "IncludeSpace" => password.include_space(flag()),
                "RequireEachIncludedType" => password.require_each_included_type(flag()),
                "ExcludeCharacters" => password.exclude_characters(value.as_str().expect("ExcludeCharacters")),
                "SecretStringTemplate" | "GenerateStringKey" => password,
                other => panic!("{id}: the harness does not generate secrets with {other} yet"),
            };
        }
        let password = password
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetRandomPassword {id}: {e:?}"))
            .random_password()
            .unwrap_or_else(|| panic!("GetRandomPassword {id}: no password"))
            .to_owned();
        match (generate["SecretStringTemplate"].as_str(), generate["GenerateStringKey"].as_str()) {
            (Some(template), Some(key)) => {
                let mut object: Map<String, Value> = serde_json::from_str(template)
                    .unwrap_or_else(|e| panic!("{id}: SecretStringTemplate is not a JSON object: {e}"));
                object.insert(key.to_owned(), Value::String(password));
                Value::Object(object).to_string()
            }
            (None, None) => password,
            _ => panic!("{id}: SecretStringTemplate and GenerateStringKey go together"),
        }
    }

    async fn create_queue(
        &self,
        sqs: &aws_sdk_sqs::Client,
        id: &str,
        overrides: &Overrides,
        deployed: &Deployed,
    ) -> Queue {
        let mut request = sqs.create_queue().queue_name(id);
        let props = self.properties(id).as_object().cloned().unwrap_or_default();
        for (name, value) in &props {
            let attribute = match name.as_str() {
                "VisibilityTimeout" => QueueAttributeName::VisibilityTimeout,
                "MaximumMessageSize" => QueueAttributeName::MaximumMessageSize,
                "MessageRetentionPeriod" => QueueAttributeName::MessageRetentionPeriod,
                "DelaySeconds" => QueueAttributeName::DelaySeconds,
                "ReceiveMessageWaitTimeSeconds" => QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                "SqsManagedSseEnabled" => QueueAttributeName::SqsManagedSseEnabled,
                "RedrivePolicy" => {
                    let target = ref_target(&value["deadLetterTargetArn"])
                        .unwrap_or_else(|| panic!("{id}: deadLetterTargetArn is not a !GetAtt"));
                    let dlq = deployed.queues.get(target).unwrap_or_else(|| panic!("{id}: no queue {target}"));
                    let max = scalar(&value["maxReceiveCount"]).unwrap_or_else(|| panic!("{id}: no maxReceiveCount"));
                    let policy = serde_json::json!({"deadLetterTargetArn": dlq.arn, "maxReceiveCount": max});
                    request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
                    continue;
                }
                other => {
                    panic!("{id}: the harness does not create queues with {other} yet: teach tests/src/template.rs")
                }
            };
            let value = scalar(value).unwrap_or_else(|| panic!("{id}.{name} is not a literal: {value}"));
            request = request.attributes(attribute, value);
        }
        if let Some(seconds) = overrides.visibility_timeout {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, seconds.to_string());
        }
        let url = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("CreateQueue {id}: {e:?}"))
            .queue_url()
            .unwrap_or_else(|| panic!("CreateQueue {id}: no URL"))
            .to_owned();
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GetQueueAttributes {id}: {e:?}"));
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .unwrap_or_else(|| panic!("{id}: no QueueArn"))
            .clone();
        Queue { url, arn }
    }

    async fn create_table(&self, ddb: &aws_sdk_dynamodb::Client, id: &str) {
        let props = self.properties(id);
        let known = [
            "BillingMode",
            "AttributeDefinitions",
            "KeySchema",
            "TimeToLiveSpecification",
            // Operational settings with no effect on what the code sees.
            "PointInTimeRecoverySpecification",
            "DeletionProtectionEnabled",
            "SSESpecification",
        ];
        for name in props.as_object().map(|p| p.keys().collect::<Vec<_>>()).unwrap_or_default() {
            assert!(known.contains(&name.as_str()), "{id}: the harness does not create tables with {name} yet");
        }
        assert_eq!(props["BillingMode"], "PAY_PER_REQUEST", "{id}: the harness creates on-demand tables only");
        let mut request = ddb.create_table().table_name(id).billing_mode(BillingMode::PayPerRequest);
        for def in props["AttributeDefinitions"].as_array().into_iter().flatten() {
            let name = def["AttributeName"].as_str().unwrap_or_else(|| panic!("{id}: AttributeName"));
            let ty = ScalarAttributeType::from(def["AttributeType"].as_str().unwrap_or_default());
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ty)
                    .build()
                    .unwrap_or_else(|e| panic!("{id}: {e}")),
            );
        }
        for key in props["KeySchema"].as_array().into_iter().flatten() {
            let name = key["AttributeName"].as_str().unwrap_or_else(|| panic!("{id}: AttributeName"));
            let ty = KeyType::from(key["KeyType"].as_str().unwrap_or_default());
            request = request.key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(ty)
                    .build()
                    .unwrap_or_else(|e| panic!("{id}: {e}")),
            );
        }
        request.send().await.unwrap_or_else(|e| panic!("CreateTable {id}: {e:?}"));
        let ttl = &props["TimeToLiveSpecification"];
        if let Some(attribute) = ttl["AttributeName"].as_str() {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(ttl["Enabled"] == true)
                .build()
                .unwrap_or_else(|e| panic!("{id}: {e}"));
            ddb.update_time_to_live()
                .table_name(id)
                .time_to_live_specification(spec)
                .send()
                .await
                .unwrap_or_else(|e| panic!("UpdateTimeToLive {id}: {e:?}"));
        }
    }

    /// A function's environment as the deployed stack would set it, as far as the
    /// harness can resolve it: queue URLs, table names and secret ARNs of `deployed`,
    /// parameter defaults, literals, `!If` on a condition, and a configuration set's name.
    /// The rest (parameters without a default) is for the test to supply;
    /// [`Template::unresolved_env`] names it.
    pub fn resolved_env(&self, function: &str, deployed: &Deployed) -> BTreeMap<String, String> {
        self.function_env(function)
            .iter()
            .filter_map(|(name, value)| self.resolve(value, deployed).map(|v| (name.clone(), v)))
            .collect()
    }

    /// The variables of a function's environment that [`Template::resolved_env`] cannot resolve.
    pub fn unresolved_env(&self, function: &str, deployed: &Deployed) -> Vec<String> {
        self.function_env(function)
            .iter()
            .filter(|(_, value)| self.resolve(value, deployed).is_none())
            .map(|(name, _)| name.clone())
            .collect()
    }

    fn resolve(&self, value: &Value, deployed: &Deployed) -> Option<String> {
        if let Some(literal) = scalar(value) {
            return Some(literal);
        }
        if let Some([condition, then, otherwise]) = value.get("Fn::If").and_then(Value::as_array).map(Vec::as_slice) {
            let condition = condition.as_str().unwrap_or_else(|| panic!("!If on a non-name: {value}"));
            return self.resolve(if self.condition(condition) { then } else { otherwise }, deployed);
        }
        let target = value.get("Ref")?.as_str()?;
        if let Some(queue) = deployed.queues.get(target) {
            return Some(queue.url.clone());
        }
        if let Some(table) = deployed.tables.get(target) {
            return Some(table.clone());
        }
        if let Some(arn) = deployed.secrets.get(target) {
            return Some(arn.clone());
        }
        if let Some(arn) = deployed.topics.get(target) {
            return Some(arn.clone());
        }
        match self.type_of(target) {
            Some("AWS::SES::ConfigurationSet") => self.resolve(&self.properties(target)["Name"], deployed),
            Some(_) => None,
            None => self.parameter_default(target),
        }
    }
}

/// Template values a test changes, each for a reason given where it is set.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Visibility timeout of every queue, in seconds.
    pub visibility_timeout: Option<u32>,
}

/// A queue the harness created.
#[derive(Debug, Clone)]
pub struct Queue {
    pub url: String,
    pub arn: String,
}

/// What [`Template::create_resources`] created, by logical id.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    pub queues: BTreeMap<String, Queue>,
    /// Logical id -> table name.
    pub tables: BTreeMap<String, String>,
    /// Logical id -> secret ARN (secrets whose condition holds with the defaults).
    pub secrets: BTreeMap<String, String>,
    /// Logical id -> topic ARN.
    pub topics: BTreeMap<String, String>,
    /// Logical id -> subscription ARN.
    pub subscriptions: BTreeMap<String, String>,
}

impl Deployed {
    pub fn queue_url(&self, id: &str) -> &str {
        &self.queues.get(id).unwrap_or_else(|| panic!("no queue {id} was created")).url
    }

    pub fn topic_arn(&self, id: &str) -> &str {
        self.topics.get(id).unwrap_or_else(|| panic!("no topic {id} was created"))
    }

    /// Puts `value` in the secret `id` (logical id): what an operator does after deploying.
    pub async fn put_secret(&self, sdk: &aws_config::SdkConfig, id: &str, value: &str) {
        let arn = self.secrets.get(id).unwrap_or_else(|| panic!("the template has no secret {id}"));
        aws_sdk_secretsmanager::Client::new(sdk)
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .unwrap_or_else(|e| panic!("PutSecretValue {id}: {e:?}"));
    }
}

/// The logical id a `{"Ref": X}` or `{"Fn::GetAtt": [X, attribute]}` points to.
pub fn ref_target(value: &Value) -> Option<&str> {
    if let Some(target) = value.get("Ref") {
        return target.as_str();
    }
    value.get("Fn::GetAtt")?.get(0)?.as_str()
}

/// Logical ids and parameters a value refers to: `Ref`, `Fn::GetAtt`, and `${X}` or
/// `${X.Attr}` inside `Fn::Sub` strings, at any depth.
pub fn references(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_references(value, &mut out);
    out
}

fn collect_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(target) = ref_target(value) {
                out.push(target.to_owned());
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = sub.as_str().or_else(|| sub.get(0).and_then(Value::as_str)).unwrap_or_default();
                for piece in text.split("${").skip(1) {
                    let name = piece.split('}').next().unwrap_or_default();
                    let name = name.split('.').next().unwrap_or_default();
                    if !name.starts_with("AWS::") && !name.starts_with('!') {
                        out.push(name.to_owned());
                    }
                }
            }
            for v in map.values() {
                collect_references(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

/// A string, number or boolean as the string CloudFormation would pass on.
pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// YAML with CloudFormation short-form tags -> the JSON form.
fn long_form(yaml: serde_norway::Value) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64().map(Value::from).ok_or_else(|| format!("unsupported number {n}"))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => scalar(&long_form(other)?).ok_or("a mapping key is not a scalar")?,
                };
                out.insert(key, long_form(v)?);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = long_form(tagged.value)?;
            match name {
                "Ref" | "Condition" => Value::Object(Map::from_iter([(name.to_owned(), value)])),
                // `!GetAtt A.B.C` is ["A", "B.C"]: attribute names may contain dots.
                "GetAtt" => {
                    let value = match value {
                        Value::String(s) => {
                            let (resource, attribute) =
                                s.split_once('.').ok_or_else(|| format!("!GetAtt {s}: no attribute"))?;
                            serde_json::json!([resource, attribute])
                        }
                        other => other,
                    };
                    Value::Object(Map::from_iter([("Fn::GetAtt".to_owned(), value)]))
                }
                _ => Value::Object(Map::from_iter([(format!("Fn::{name}"), value)])),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_become_long_forms() {
        let t = Template::parse(
            "Resources:\n  A:\n    Type: X\n    Properties:\n      R: !Ref B\n      G: !GetAtt B.Arn\n      \
             S: !Sub 'arn:${AWS::Partition}:x:${B}/${C.Name}'\n      I: !If [Cond, [1], !Ref AWS::NoValue]\n      \
             J: !Join ['', [a, !GetAtt [B, Arn]]]\n      N: 1048576\n      T: 'true'\n",
        )
        .expect("parses");
        let p = t.properties("A");
        assert_eq!(p["R"], serde_json::json!({"Ref": "B"}));
        assert_eq!(p["G"], serde_json::json!({"Fn::GetAtt": ["B", "Arn"]}));
        assert_eq!(p["I"], serde_json::json!({"Fn::If": ["Cond", [1], {"Ref": "AWS::NoValue"}]}));
        assert_eq!(p["J"]["Fn::Join"][1][1], serde_json::json!({"Fn::GetAtt": ["B", "Arn"]}));
        assert_eq!(p["N"], 1048576);
        assert_eq!(p["T"], "true");
        assert_eq!(references(&p["S"]), ["B", "C"]);
        assert_eq!(references(&p["J"]), ["B"]);
    }
}
