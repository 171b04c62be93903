//! The Function URL payload (API Gateway v2) to the endpoints' request and back, through
//! `lambda_http` as the binary does it.

use std::path::Path;

use herald_inbound::{Response, lambda};
use lambda_http::request::LambdaRequest;

fn event(json: &str) -> lambda_http::Request {
    let payload: LambdaRequest = serde_json::from_str(json).unwrap();
    payload.into()
}

#[test]
fn the_aws_example_function_url_event() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/spec/aws-events/aws-lambda-rust-runtime/lambda-http_lambda_function_url_request.json");
    let Ok(json) = std::fs::read_to_string(&file) else {
        eprintln!("skipping: {} not found", file.display());
        return;
    };
    let request = lambda::request(&event(&json));
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/my/path");
    assert_eq!(request.query, "parameter1=value1&parameter1=value2&parameter2=value");
    assert_eq!(request.content_type, None);
    assert!(request.body.is_empty());
}

#[test]
fn a_one_click_post_with_a_base64_body() {
    // What a Function URL sends for a form POST: the body base64-encoded.
    let json = r#"{
        "version": "2.0", "routeKey": "$default", "rawPath": "/unsubscribe",
        "rawQueryString": "token=v2.k1.abc.def",
        "headers": {"content-type": "application/x-www-form-urlencoded", "host": "id.lambda-url.eu-west-1.on.aws"},
        "requestContext": {"accountId": "123456789012", "apiId": "id", "domainName": "id.lambda-url.eu-west-1.on.aws",
            "domainPrefix": "id", "http": {"method": "POST", "path": "/unsubscribe", "protocol": "HTTP/1.1",
            "sourceIp": "192.0.2.1", "userAgent": "mailer"}, "requestId": "r", "routeKey": "$default",
            "stage": "$default", "time": "01/Mar/2026:12:00:00 +0000", "timeEpoch": 1772366400000},
        "body": "TGlzdC1VbnN1YnNjcmliZT1PbmUtQ2xpY2s=", "isBase64Encoded": true
    }"#;
    let request = lambda::request(&event(json));
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/unsubscribe");
    assert_eq!(
        request.query_params().find(|(k, _)| k == "token").map(|(_, v)| v.into_owned()).as_deref(),
        Some("v2.k1.abc.def")
    );
    assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(request.body, b"List-Unsubscribe=One-Click");
}

#[test]
fn responses_keep_status_headers_and_body() {
    let mut answer = Response::text(503, "in progress");
    answer.headers.push(("Retry-After", "30".to_owned()));
    let out = lambda::response(answer);
    assert_eq!(out.status().as_u16(), 503);
    assert_eq!(out.headers()["retry-after"], "30");
    assert_eq!(out.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(out.headers()["cache-control"], "no-store");
    assert!(matches!(out.body(), lambda_http::Body::Text(t) if t == "in progress\n"));
    let head = lambda::response(Response::text(200, "x").without_body());
    assert!(matches!(head.body(), lambda_http::Body::Empty));
}
