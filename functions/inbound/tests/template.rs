//! `infra/template.yaml`'s `InboundFunction` agrees with the code: it sets every variable
//! the function needs and none it does not read, its role allows exactly the calls of
//! the function's adapters, and it is served by a Function URL.

use std::collections::BTreeSet;

use herald::adapters::aws::iam_actions;
use herald_e2e::template::{Template, ref_target};
use herald_inbound::SERVICE;
use herald_lambda::Need;
use serde_json::{Value, json};

const ID: &str = "InboundFunction";
const LOG_ACTIONS: &[&str] = &["logs:CreateLogStream", "logs:PutLogEvents"];
/// Granted only when the unsubscribe secret is under a customer managed KMS key.
const SECRET_KMS_ACTIONS: &[&str] = &["kms:Decrypt"];

fn actions(statement: &Value) -> Vec<String> {
    match &statement["Action"] {
        Value::Array(items) => items.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        Value::String(one) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[test]
fn the_template_sets_what_the_function_reads_and_nothing_else() {
    let t = Template::repo();
    assert_eq!(t.type_of(ID), Some("AWS::Serverless::Function"));
    assert_eq!(t.resource(ID)["Metadata"]["BuildProperties"]["Binary"], "herald-inbound");
    let env = t.function_env(ID);
    for (name, need) in SERVICE.env_vars {
        match need {
            Need::Required => assert!(env.contains_key(*name), "{ID} does not set {name}, which it requires"),
            Need::Forbidden => assert!(!env.contains_key(*name), "{ID} sets {name}, which stops the function"),
            Need::Optional | Need::EitherOr(_) => {}
        }
    }
    let known: Vec<&str> = SERVICE.env_vars.iter().map(|(name, _)| *name).collect();
    for name in env.keys() {
        assert!(known.contains(&name.as_str()), "{ID} sets {name}, which the function does not read (misspelt?)");
    }
    // Mail providers and SNS call it without AWS credentials: the code authenticates.
    assert_eq!(t.properties(ID)["FunctionUrlConfig"]["AuthType"], "NONE");
}

#[test]
fn the_role_allows_its_adapters_calls_and_nothing_more() {
    let t = Template::repo();
    let role = ref_target(&t.properties(ID)["Role"]).expect("an explicit role");
    let (mut always, mut conditional) = (BTreeSet::new(), BTreeSet::new());
    for policy in t.properties(role)["Policies"].as_array().into_iter().flatten() {
        for statement in policy["PolicyDocument"]["Statement"].as_array().into_iter().flatten() {
            match statement.get("Fn::If").and_then(Value::as_array) {
                Some(branches) => {
                    assert_eq!(branches.get(2), Some(&json!({"Ref": "AWS::NoValue"})), "{role}: {statement}");
                    conditional.extend(actions(&branches[1]));
                }
                None => always.extend(actions(statement)),
            }
            assert_ne!(statement["Resource"], "*", "{role}: Resource \"*\"");
        }
    }
    let needed: BTreeSet<String> =
        iam_actions(SERVICE.aws_adapters).into_iter().chain(LOG_ACTIONS.iter().copied()).map(str::to_owned).collect();
    assert_eq!(always, needed, "{role}: grants differ from what the adapters call");
    let kms: BTreeSet<String> = SECRET_KMS_ACTIONS.iter().map(|a| (*a).to_owned()).collect();
    assert_eq!(conditional, kms, "{role}: only the key ring's KMS key is optional");
}
