//! The published JSON Schemas are generated from the types; these tests fail when
//! a file in `schema/` is stale. Regenerate with `HERALD_BLESS=1 cargo test -p herald --test schema`.

use std::path::PathBuf;

fn check(file: &str, schema: serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema").join(file);
    let fresh = serde_json::to_string_pretty(&schema).unwrap() + "\n";
    if std::env::var_os("HERALD_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == fresh,
        "{} is stale: regenerate it with `HERALD_BLESS=1 cargo test -p herald --test schema`",
        path.display()
    );
}

#[test]
fn delivery_request_schema_is_current() {
    check("delivery-request.v1.json", herald::request::json_schema());
}

#[test]
fn receipt_schema_is_current() {
    check("receipt.v1.json", herald::receipt::json_schema());
}

#[test]
fn delivery_event_schemas_are_current() {
    check("delivery-event.v1.json", herald::receipt::delivery_event_schema());
    check("receipt-stream.v1.json", herald::receipt::stream_schema());
}

#[test]
fn the_stream_schema_tells_receipts_from_events() {
    let schema = herald::receipt::stream_schema();
    let text = schema.to_string();
    assert!(schema["anyOf"].as_array().is_some_and(|a| a.len() == 2), "{text}");
    for kind in herald::receipt::event::EventKind::ALL {
        assert!(text.contains(&format!("\"{}\"", kind.as_str())), "{kind} missing from the stream schema");
    }
}

#[test]
fn request_schema_forbids_unknown_fields_and_requires_the_core() {
    let schema = herald::request::json_schema();
    assert_eq!(schema["additionalProperties"], false);
    let required: Vec<&str> = schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for field in ["id", "channel", "category", "recipient", "template"] {
        assert!(required.contains(&field), "{field} must be required: {required:?}");
    }
    let recipient = &schema["$defs"]["Recipient"];
    assert_eq!(recipient["additionalProperties"], false, "{recipient}");
    assert_eq!(schema["properties"]["channel"]["$ref"], "#/$defs/Channel");
    assert_eq!(schema["$defs"]["Channel"]["enum"], serde_json::json!(["email", "sms", "push"]));
}
