//! The push provider stand-ins, checked with plain HTTP clients: good credentials are
//! accepted, a wrong key, a tampered signature or an expired token is refused with the
//! provider's status and error, the request checks answer as documented, scripts answer once
//! (or always) and the counters count. The HTTPS Web Push stand-in is reached over TLS
//! trusting the test CA alone.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use herald_e2e::push_providers::{
    Answer, ApnsStandIn, FcmStandIn, TEST_CA_PEM, TEST_PRIVATE_KEY_ID, WebPushStandIn, test_ca_file, test_rsa_key,
    test_service_account_json,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

/// A second TEST-ONLY RSA key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`),
/// to sign grants the FCM stand-in must refuse.
const OTHER_RSA_PKCS8_PEM: &str = r"-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDOcWp1GJDj8STl
bJRs6EZOV+CKR6vE8qCS3rVLRZYSMSW7RSBWtp1bh2Oj9ZuNdP0kXpwpNdwBM5Gu
LABmWiYYzDJordCPZv5ptJEtOOMtTxqF5rahVHO2O5/imL2+J7sQx/VcI1b+6zfg
tAXRYBKIWpzzk3bz0dEYzJR4pxODETzWO+mzBI1AYkX9BeEQPWkAPW1kT/KvIlhk
nxyJ4Q6wpW2/y8OKg0yXAp16vt+7zIikRLpO+5RgR4eslRUtyDeHSyK0WCtGkZTn
Azc8Bm4oC43LjoRhL/Q0/Kiw9G92P2IZ5dfAMTKt68526EWvEbEm652Nz7WMRMWf
H0wZi+UZAgMBAAECggEAArKTm1wZXPKYoTED2Dh4DOYFbdTHAulEWsncBsgiXA+W
KeePJyowzabUs/AiBmYU8udCT31dCvQRMLaJBnBE8VpfieO4pCE+8okzT1lrrRIS
dBtJfLukrrSN1wQqHGAsKq892M1HmQI9eQtJ4887wDdJFQRERxqc82WkmBwZsp/+
eQCLh+vI8sjKh2SnB77u0xPOoBP+55BTL5cPF5A7aYGyoFKQW/S/EmcXUS1X7EfY
xlahu2RQ86Qs0+QrtcVuR2BbYQ/EnZjT8vvGS1mohzxK39cc9+T8BEy+G698waX0
Jbj/vRA4iDw1yfP1huxQLrkT3dbXUpYC1nKeUuRREQKBgQD0vubmJDKe4L+KAE58
MXgndKAlo5ZPQEiVee1loKs0RV/BVA33/qnOiCuGymNbb6sFvg+iL0oMAkS/C17F
/wvDoSrdCqEq7o8cnVWsNSb0g+4WxBvMF4ZT9GGXcFCP53wjHTbqUIKxOneaTdx3
f0SJfgFRxQJPyNYmBtmMn5gfYwKBgQDX759RQFJ8jWyIZ+09So/7swxpRKuX7ur8
AyJKugRfY4xmkmkgq3py5fkIscpknRN/vuzI0Qf1hQZyu6ey78f14taB5W5tukg7
JLEu46quUCq/mrFPP9bD2Ys80uoukqB3nD7Zy+AkQ2bhVTOHiV4bxeOLDF5HqQ2P
JuSNdJjoUwKBgQDKbjOQ2xO7cW07eXFxK4GUMNRdDWc/eY4PhF+klTXF8DN5Nkqv
ekV8/Af0XuW7NSuhfkhz/uUh9aZi1ca3wXI7hsxrM2WGmvZn1oKMAxKLX6vHzMCp
GDQUsKcfmNgpjm+Qo5NOTvUqHY/bYtcdR3iquDvjJC37S8REg5ngxAgQvQKBgQCc
nlJhrlOlvzXPIgHyiJgyKUWBPKtwwXtyWhuPM6hkP2HgK6VQas+fcqnT4pA3ta4k
46f+Z45sR5XLtcwGft/7uhF3mZ8kuw4Ux6IzrjFnyQGYg2zDXDw7RRg2f4wXR4ZX
+t2jPrpN0w1VtmRvk/TMFBXcDpZ7R2RsRftTlhQpvQKBgHcaBZrnGcjHvmn0b1I7
5AUrnb0IirUVBm35HwWuk2i6kCIOmKXphDkvFbGilJsRSfz47VUqAdJ8IKbE7i35
qjL8jAxE5+Nel9nBkqeyqJsdpmS6RR06zzDvdmKSQIiJU1UqPVPNrTAs4EsZGXAE
FyG5ZvvgjkHz3HmOOZV/PQKK
-----END PRIVATE KEY-----
";

const PROJECT: &str = "demo-project";
const CLIENT_EMAIL: &str = "herald@demo-project.iam.gserviceaccount.com";
const TEAM_ID: &str = "TEAM123456";
const KEY_ID: &str = "KEY1234567";
const DEVICE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

// ---------------------------------------------------------------------------------------
// Clients and signing
// ---------------------------------------------------------------------------------------

/// An answer as a client saw it.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("answer {} is not JSON ({e}): {}", self.status, self.text()))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// POST over HTTP/1.1.
async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client.post(url).body(body.into());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Reply { status, headers, body: response.bytes().await.unwrap().to_vec() }
}

/// POST over HTTP/2 with prior knowledge (no TLS, no upgrade), on a new connection.
async fn h2_post(url: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Reply {
    let uri: hyper::Uri = url.parse().unwrap();
    let authority = uri.authority().unwrap().as_str().to_owned();
    let stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::post(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender.send_request(request.body(Body::from(body.into())).unwrap()).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX).await.unwrap();
    Reply { status: parts.status.as_u16(), headers: parts.headers, body: body.to_vec() }
}

/// POST over HTTP/1.1 in TLS on a new connection, trusting `roots` only and naming the server
/// `server_name` (SNI and the certificate check); `Err` when the handshake fails.
async fn tls_post(
    url: &str,
    roots: &[CertificateDer<'static>],
    server_name: &str,
    headers: &[(&str, &str)],
    body: impl Into<Vec<u8>>,
) -> Result<Reply, String> {
    let uri: hyper::Uri = url.parse().unwrap();
    assert_eq!(uri.scheme_str(), Some("https"), "{url}");
    let authority = uri.authority().unwrap().as_str().to_owned();
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake with {authority}: {e}"))?;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::post(uri.path()).header("host", authority);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = sender.send_request(request.body(Body::from(body.into())).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX).await.unwrap();
    Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body: body.to_vec() })
}

/// The certificates of [`test_ca_file`], as a client reading `SSL_CERT_FILE` gets them.
fn test_ca_roots() -> Vec<CertificateDer<'static>> {
    let path = test_ca_file();
    assert!(path.is_absolute(), "{}", path.display());
    let roots: Vec<_> = CertificateDer::pem_file_iter(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(roots.len(), 1, "the file holds the test CA alone");
    assert_eq!(roots[0], CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap());
    roots
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn b64url(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64url(header.to_string()), b64url(claims.to_string()))
}

fn es256_jwt(key: &EcdsaKeyPair, header: Value, claims: Value) -> String {
    let input = signing_input(&header, &claims);
    let signature = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", b64url(signature))
}

fn rs256_jwt(key: &RsaKeyPair, header: Value, claims: Value) -> String {
    let input = signing_input(&header, &claims);
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature).unwrap();
    format!("{input}.{}", b64url(signature))
}

/// `jwt` with its claims replaced by `claims`, the signature kept: a forgery.
fn tampered(jwt: &str, claims: &Value) -> String {
    let parts: Vec<&str> = jwt.split('.').collect();
    format!("{}.{}.{}", parts[0], b64url(claims.to_string()), parts[2])
}

fn p256_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
    EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
}

fn other_rsa_key() -> RsaKeyPair {
    let base64: String = OTHER_RSA_PKCS8_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    RsaKeyPair::from_pkcs8(&STANDARD.decode(base64).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// FCM
// ---------------------------------------------------------------------------------------

async fn start_fcm() -> FcmStandIn {
    FcmStandIn::start(PROJECT, CLIENT_EMAIL, test_rsa_key().public_key().as_ref().to_vec()).await
}

fn grant_claims(fcm: &FcmStandIn, iat: i64, exp: i64) -> Value {
    json!({
        "iss": CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": fcm.token_url(),
        "iat": iat,
        "exp": exp,
    })
}

fn grant(key: &RsaKeyPair, claims: Value) -> String {
    rs256_jwt(key, json!({ "alg": "RS256", "typ": "JWT", "kid": TEST_PRIVATE_KEY_ID }), claims)
}

/// The token request herald sends (the grant type percent-encoded).
async fn fetch_token(fcm: &FcmStandIn, assertion: &str) -> Reply {
    let body = format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}");
    post(&fcm.token_url(), &[("content-type", "application/x-www-form-urlencoded")], body).await
}

async fn good_token(fcm: &FcmStandIn) -> String {
    let t = now();
    let reply = fetch_token(fcm, &grant(&test_rsa_key(), grant_claims(fcm, t, t + 3600))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

async fn fcm_send(fcm: &FcmStandIn, bearer: Option<&str>, registration_token: &str) -> Reply {
    let body = json!({ "message": { "token": registration_token, "notification": { "title": "Hi" } } });
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    post(&fcm.send_url(), &headers, body.to_string()).await
}

fn assert_invalid_grant(reply: &Reply, description: &str) {
    assert_eq!(reply.status, 400, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert!(body["error_description"].as_str().unwrap().contains(description), "{body}");
}

#[tokio::test]
async fn fcm_exchanges_a_good_grant_and_accepts_the_message() {
    let fcm = start_fcm().await;
    assert_eq!(fcm.token_url(), format!("{}/token", fcm.base_url()));

    let t = now();
    let reply = fetch_token(&fcm, &grant(&test_rsa_key(), grant_claims(&fcm, t, t + 3600))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "access_token": "ya29.standin-1", "expires_in": 3599, "token_type": "Bearer" }));

    let reply = fcm_send(&fcm, Some("ya29.standin-1"), "reg-1").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({ "name": "projects/demo-project/messages/1" }));

    // Each fetch issues a new token; earlier ones stay good.
    assert_eq!(good_token(&fcm).await, "ya29.standin-2");
    assert_eq!(fcm_send(&fcm, Some("ya29.standin-1"), "reg-1").await.status, 200);
    assert_eq!(fcm_send(&fcm, Some("ya29.standin-2"), "reg-2").await.status, 200);

    assert_eq!(fcm.token_fetches(), 2);
    assert!(fcm.token_requests().iter().all(|r| r.auth_ok));
    let messages = fcm.messages();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m.auth_ok && m.status == 200 && m.version == "HTTP/1.1"));
    assert_eq!(messages[0].json()["message"]["token"], "reg-1");
    assert_eq!(messages[0].header("Authorization"), Some("Bearer ya29.standin-1"));
    assert_eq!(messages[2].header("content-type"), Some("application/json"));
    assert_eq!((fcm.sent_to("reg-1"), fcm.sent_to("reg-2"), fcm.sent_to("reg-3")), (2, 1, 0));
    assert_eq!(fcm.requests().len(), 5);

    // The key file other tests hand to herald.
    let account: Value =
        serde_json::from_str(&test_service_account_json(PROJECT, CLIENT_EMAIL, &fcm.token_url())).unwrap();
    assert_eq!(account["type"], "service_account");
    assert_eq!(account["project_id"], PROJECT);
    assert_eq!(account["client_email"], CLIENT_EMAIL);
    assert_eq!(account["token_uri"], fcm.token_url());
    assert_eq!(account["private_key_id"], TEST_PRIVATE_KEY_ID);
    let pem = account["private_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n") && pem.ends_with("-----END PRIVATE KEY-----\n"));
}

#[tokio::test]
async fn fcm_refuses_bad_grants_and_unknown_access_tokens() {
    let fcm = start_fcm().await;
    let t = now();
    let claims = grant_claims(&fcm, t, t + 3600);

    // Another key, and a good signature over other claims.
    assert_invalid_grant(&fetch_token(&fcm, &grant(&other_rsa_key(), claims.clone())).await, "Signature");
    let mut forged = claims.clone();
    forged["iss"] = json!("mallory@demo-project.iam.gserviceaccount.com");
    let good = grant(&test_rsa_key(), claims.clone());
    assert_invalid_grant(&fetch_token(&fcm, &tampered(&good, &forged)).await, "Signature");

    // Expired, too long-lived, issued in the future.
    let key = test_rsa_key();
    let short_lived = "short-lived token";
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, grant_claims(&fcm, t - 7200, t - 3600))).await, short_lived);
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, grant_claims(&fcm, t, t + 7200))).await, short_lived);
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, grant_claims(&fcm, t + 900, t + 3600))).await, short_lived);

    // Right key, wrong claims or header.
    let mut wrong = claims.clone();
    wrong["aud"] = json!("https://oauth2.googleapis.com/token");
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, wrong)).await, "audience");
    let mut wrong = claims.clone();
    wrong["iss"] = json!("someone@else.iam.gserviceaccount.com");
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, wrong)).await, "account not found");
    let mut wrong = claims.clone();
    wrong["scope"] = json!("https://www.googleapis.com/auth/cloud-platform");
    assert_invalid_grant(&fetch_token(&fcm, &grant(&key, wrong)).await, "scope");
    let no_kid = rs256_jwt(&key, json!({ "alg": "RS256", "typ": "JWT" }), claims.clone());
    assert_invalid_grant(&fetch_token(&fcm, &no_kid).await, "kid");

    let reply = post(&fcm.token_url(), &[], format!("grant_type=password&assertion={good}")).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (400, Some("unsupported_grant_type")));
    assert_eq!(fcm.token_fetches(), 10);
    assert!(fcm.token_requests().iter().all(|r| !r.auth_ok && r.status == 400));

    // Sends without a token it issued.
    let unauthenticated = json!({ "error": {
        "code": 401,
        "message": "Request had invalid authentication credentials.",
        "status": "UNAUTHENTICATED",
    }});
    for bearer in [None, Some("ya29.made-up")] {
        let reply = fcm_send(&fcm, bearer, "reg-1").await;
        assert_eq!((reply.status, reply.json()), (401, unauthenticated.clone()));
    }
    let token = good_token(&fcm).await;
    assert_eq!(fcm_send(&fcm, Some(&token), "reg-1").await.status, 200);
    fcm.revoke_tokens();
    assert_eq!(fcm_send(&fcm, Some(&token), "reg-1").await.status, 401);
    assert_eq!(fcm.sent_to("reg-1"), 4);
    let auth: Vec<bool> = fcm.messages().iter().map(|m| m.auth_ok).collect();
    assert_eq!(auth, [false, false, true, false]);

    // Another project, a message without a registration token, a body that is not JSON.
    let token = good_token(&fcm).await;
    let bearer = format!("Bearer {token}");
    let bearer = bearer.as_str();
    let other_project = format!("{}/v1/projects/other-project/messages:send", fcm.base_url());
    let auth = [("authorization", bearer)];
    let reply = post(&other_project, &auth, json!({ "message": { "token": "r" } }).to_string()).await;
    assert_eq!(reply.status, 404);
    let reply = post(&fcm.send_url(), &auth, json!({ "message": { "topic": "news" } }).to_string()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(reply.json()["error"]["details"][0]["errorCode"], "INVALID_ARGUMENT");
    assert_eq!(post(&fcm.send_url(), &auth, "not json").await.status, 400);
    assert_eq!(fcm.messages().len(), 6);
}

#[tokio::test]
async fn fcm_scripted_answers_come_first_then_success() {
    let fcm = start_fcm().await;

    fcm.script_token(Answer::json(500, r#"{"error":"internal_failure"}"#));
    let t = now();
    let assertion = grant(&test_rsa_key(), grant_claims(&fcm, t, t + 3600));
    assert_eq!(fetch_token(&fcm, &assertion).await.status, 500);
    // A refused grant does not use up a script.
    fcm.script_token(Answer::json(503, "{}"));
    assert_eq!(fetch_token(&fcm, &grant(&other_rsa_key(), grant_claims(&fcm, t, t + 3600))).await.status, 400);
    assert_eq!(fetch_token(&fcm, &assertion).await.status, 503);
    let token = good_token(&fcm).await;
    assert_eq!(token, "ya29.standin-1");
    assert_eq!(fcm.token_fetches(), 4);

    let unregistered = r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
    fcm.script("reg-1", Answer::json(404, unregistered).with_header("x-test", "scripted"));
    let reply = fcm_send(&fcm, Some(&token), "reg-1").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["details"][0]["errorCode"], "UNREGISTERED");
    assert_eq!(reply.header("x-test"), Some("scripted"));
    assert_eq!(fcm_send(&fcm, Some(&token), "reg-1").await.status, 200);

    fcm.script_always("reg-2", Answer::json(503, r#"{"error":{"code":503,"status":"UNAVAILABLE"}}"#));
    fcm.script("reg-2", Answer::json(429, r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}}"#));
    let statuses = [
        fcm_send(&fcm, Some(&token), "reg-2").await.status,
        fcm_send(&fcm, Some(&token), "reg-2").await.status,
        fcm_send(&fcm, Some(&token), "reg-2").await.status,
    ];
    assert_eq!(statuses, [429, 503, 503]);
    assert_eq!((fcm.sent_to("reg-1"), fcm.sent_to("reg-2")), (2, 3));
}

// ---------------------------------------------------------------------------------------
// APNs
// ---------------------------------------------------------------------------------------

fn provider_token(key: &EcdsaKeyPair, kid: &str, iss: &str, iat: i64) -> String {
    es256_jwt(key, json!({ "alg": "ES256", "kid": kid }), json!({ "iss": iss, "iat": iat }))
}

/// A notification with every header right, `extra` added or (with an empty value) removed.
async fn apns_send(apns: &ApnsStandIn, device: &str, jwt: Option<&str>, extra: &[(&str, &str)], body: &str) -> Reply {
    let auth = jwt.map(|j| format!("bearer {j}"));
    let mut headers = vec![("apns-topic", "com.example.app"), ("apns-push-type", "alert"), ("apns-priority", "10")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    for &(name, value) in extra {
        headers.retain(|&(n, _)| n != name);
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    h2_post(&format!("{}/3/device/{device}", apns.base_url()), &headers, body.to_owned()).await
}

const APS: &str = r#"{"aps":{"alert":{"title":"Hi","body":"Your order shipped"}}}"#;

fn assert_reason(reply: &Reply, status: u16, reason: &str) {
    assert_eq!((reply.status, reply.json()), (status, json!({ "reason": reason })));
    assert_eq!(reply.header("apns-id").map(str::len), Some(36), "error answers carry apns-id");
}

#[tokio::test]
async fn apns_accepts_a_signed_notification_over_http2_only() {
    let key = p256_key();
    let apns = ApnsStandIn::start(TEAM_ID, KEY_ID, key.public_key().as_ref().to_vec()).await;
    let jwt = provider_token(&key, KEY_ID, TEAM_ID, now());

    let id = "0E5A3B1C-7D2F-4E6A-9B8C-1D2E3F4A5B6C";
    let extra = [("apns-id", id), ("apns-expiration", "0"), ("apns-collapse-id", "order-1")];
    let reply = apns_send(&apns, DEVICE, Some(&jwt), &extra, APS).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("apns-id"), Some(id));

    // Without apns-id, the stand-in names the notification.
    let reply = apns_send(&apns, DEVICE, Some(&jwt), &[("apns-push-type", "background"), ("apns-priority", "5")], APS);
    let reply = reply.await;
    assert_eq!(reply.status, 200);
    let generated = reply.header("apns-id").unwrap();
    assert!(generated.len() == 36 && generated != id, "{generated}");

    let requests = apns.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.auth_ok && r.status == 200 && r.version == "HTTP/2.0" && r.method == "POST"));
    assert_eq!(requests[0].path, format!("/3/device/{DEVICE}"));
    assert_eq!(requests[0].header("apns-topic"), Some("com.example.app"));
    assert_eq!(requests[0].json()["aps"]["alert"]["title"], "Hi");
    assert_eq!((apns.sent_to(DEVICE), apns.sent_to("other")), (2, 0));
    assert_eq!(apns.distinct_jwts(), 1);

    // APNs speaks HTTP/2 only: an HTTP/1.1 request gets no answer.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let http1 = client.post(format!("{}/3/device/{DEVICE}", apns.base_url())).body(APS).send().await;
    assert!(http1.is_err(), "{http1:?}");
    assert_eq!(apns.requests().len(), 2);
}

#[tokio::test]
async fn apns_refuses_bad_provider_tokens() {
    let key = p256_key();
    let apns = ApnsStandIn::start(TEAM_ID, KEY_ID, key.public_key().as_ref().to_vec()).await;
    let t = now();

    let other = provider_token(&p256_key(), KEY_ID, TEAM_ID, t);
    assert_reason(&apns_send(&apns, DEVICE, Some(&other), &[], APS).await, 403, "InvalidProviderToken");
    let good = provider_token(&key, KEY_ID, TEAM_ID, t);
    let forged = tampered(&good, &json!({ "iss": "OTHERTEAM1", "iat": t }));
    assert_reason(&apns_send(&apns, DEVICE, Some(&forged), &[], APS).await, 403, "InvalidProviderToken");
    for jwt in [
        provider_token(&key, "OTHERKEY01", TEAM_ID, t),
        provider_token(&key, KEY_ID, "OTHERTEAM1", t),
        provider_token(&key, KEY_ID, TEAM_ID, t + 600),
        "not-a-jwt".to_owned(),
    ] {
        assert_reason(&apns_send(&apns, DEVICE, Some(&jwt), &[], APS).await, 403, "InvalidProviderToken");
    }
    let expired = provider_token(&key, KEY_ID, TEAM_ID, t - 3700);
    assert_reason(&apns_send(&apns, DEVICE, Some(&expired), &[], APS).await, 403, "ExpiredProviderToken");
    assert_reason(&apns_send(&apns, DEVICE, None, &[], APS).await, 403, "MissingProviderToken");

    assert_eq!(apns.sent_to(DEVICE), 8);
    assert!(apns.requests().iter().all(|r| !r.auth_ok && r.status == 403));
    assert_eq!(apns.distinct_jwts(), 7);

    // A token signed an hour ago less a little is still good.
    let older = provider_token(&key, KEY_ID, TEAM_ID, t - 3500);
    assert_eq!(apns_send(&apns, DEVICE, Some(&older), &[], APS).await.status, 200);
}

#[tokio::test]
async fn apns_checks_headers_and_payload() {
    let key = p256_key();
    let apns = ApnsStandIn::start(TEAM_ID, KEY_ID, key.public_key().as_ref().to_vec()).await;
    let jwt = provider_token(&key, KEY_ID, TEAM_ID, now());
    let jwt = Some(jwt.as_str());

    let collapse_65 = "c".repeat(65);
    for (extra, reason) in [
        (("apns-topic", ""), "MissingTopic"),
        (("apns-push-type", ""), "InvalidPushType"),
        (("apns-push-type", "banner"), "InvalidPushType"),
        (("apns-priority", "7"), "BadPriority"),
        (("apns-expiration", "tomorrow"), "BadExpirationDate"),
        (("apns-collapse-id", collapse_65.as_str()), "BadCollapseId"),
        (("apns-id", "not-a-uuid"), "BadMessageId"),
    ] {
        assert_reason(&apns_send(&apns, DEVICE, jwt, &[extra], APS).await, 400, reason);
    }
    assert_reason(&apns_send(&apns, DEVICE, jwt, &[], "").await, 400, "PayloadEmpty");
    assert_reason(&apns_send(&apns, DEVICE, jwt, &[], r#"{"alert":"no aps"}"#).await, 400, "BadPayload");
    assert_reason(&apns_send(&apns, DEVICE, jwt, &[], "not json").await, 400, "BadPayload");
    let big = json!({ "aps": { "alert": "x".repeat(4096) } }).to_string();
    assert_reason(&apns_send(&apns, DEVICE, jwt, &[], &big).await, 413, "PayloadTooLarge");
    let fits = json!({ "aps": { "alert": "x".repeat(4096 - 20) } }).to_string();
    assert_eq!(fits.len(), 4096);
    assert_eq!(apns_send(&apns, DEVICE, jwt, &[], &fits).await.status, 200);
    let collapse_64 = "c".repeat(64);
    let extra = [("apns-collapse-id", collapse_64.as_str()), ("apns-priority", "1")];
    assert_eq!(apns_send(&apns, DEVICE, jwt, &extra, APS).await.status, 200);

    // The credentials were good every time.
    assert!(apns.requests().iter().all(|r| r.auth_ok));
    assert_eq!(apns.sent_to(DEVICE), 13);
}

#[tokio::test]
async fn apns_scripted_answers_come_first_then_success() {
    let key = p256_key();
    let apns = ApnsStandIn::start(TEAM_ID, KEY_ID, key.public_key().as_ref().to_vec()).await;
    let jwt = provider_token(&key, KEY_ID, TEAM_ID, now());

    apns.script(DEVICE, Answer::json(410, r#"{"reason":"Unregistered","timestamp":1750000000000}"#));
    // A refused request leaves the script in place.
    assert_reason(&apns_send(&apns, DEVICE, None, &[], APS).await, 403, "MissingProviderToken");
    let reply = apns_send(&apns, DEVICE, Some(&jwt), &[], APS).await;
    assert_eq!(reply.status, 410);
    assert_eq!(reply.json()["reason"], "Unregistered");
    assert_eq!(reply.header("apns-id").map(str::len), Some(36));
    assert_eq!(apns_send(&apns, DEVICE, Some(&jwt), &[], APS).await.status, 200);

    let busy = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
    apns.script_always(busy, Answer::json(429, r#"{"reason":"TooManyRequests"}"#).with_header("apns-id", "fixed"));
    for _ in 0..2 {
        let reply = apns_send(&apns, busy, Some(&jwt), &[], APS).await;
        assert_eq!((reply.status, reply.header("apns-id")), (429, Some("fixed")));
    }
    assert_eq!((apns.sent_to(DEVICE), apns.sent_to(busy)), (3, 2));
}

// ---------------------------------------------------------------------------------------
// Web Push
// ---------------------------------------------------------------------------------------

fn vapid_token(key: &EcdsaKeyPair, aud: &str, exp: i64, sub: &str) -> String {
    es256_jwt(key, json!({ "typ": "JWT", "alg": "ES256" }), json!({ "aud": aud, "exp": exp, "sub": sub }))
}

fn vapid(jwt: &str, key: &EcdsaKeyPair) -> String {
    format!("vapid t={jwt}, k={}", b64url(key.public_key()))
}

/// A push with every header right, `extra` added or (with an empty value) removed.
async fn web_push(web: &WebPushStandIn, id: &str, auth: Option<&str>, extra: &[(&str, &str)], body: Vec<u8>) -> Reply {
    let mut headers = vec![("ttl", "3600"), ("content-encoding", "aes128gcm"), ("urgency", "normal")];
    if let Some(auth) = auth {
        headers.push(("authorization", auth));
    }
    for &(name, value) in extra {
        headers.retain(|&(n, _)| n != name);
        if !value.is_empty() {
            headers.push((name, value));
        }
    }
    post(&web.endpoint(id), &headers, body).await
}

#[tokio::test]
async fn web_push_accepts_a_vapid_signed_push() {
    let web = WebPushStandIn::start().await;
    assert!(web.endpoint("sub-1").starts_with(&web.origin()));
    assert!(web.endpoint("sub-1").ends_with("/push/sub-1"));
    let key = p256_key();
    let jwt = vapid_token(&key, &web.origin(), now() + 12 * 3600, "mailto:ops@example.com");
    let body: Vec<u8> = (0..=255).collect();

    let reply = web_push(&web, "sub-1", Some(&vapid(&jwt, &key)), &[("topic", "order-1")], body.clone()).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(reply.header("location"), Some("/msg/1"));
    // No space after the comma, the parameters the other way round, an https: subject.
    let https = vapid_token(&key, &web.origin(), now() + 60, "https://example.com/contact");
    let auth = format!("vapid k={},t={https}", b64url(key.public_key()));
    let reply = web_push(&web, "sub-1", Some(&auth), &[("urgency", "very-low")], b"x".to_vec()).await;
    assert_eq!((reply.status, reply.header("location")), (201, Some("/msg/2")));

    let requests = web.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.auth_ok && r.status == 201 && r.version == "HTTP/1.1"));
    assert_eq!(requests[0].body, body, "the body is recorded as sent");
    assert_eq!(requests[0].header("topic"), Some("order-1"));
    assert_eq!((web.sent_to("sub-1"), web.sent_to("sub-2")), (2, 0));
    assert_eq!(web.vapid_public_keys(), [b64url(key.public_key())]);
    assert_eq!(web.distinct_jwts(), 2);
}

#[tokio::test]
async fn web_push_refuses_bad_vapid() {
    let web = WebPushStandIn::start().await;
    let key = p256_key();
    let other = p256_key();
    let (t, origin) = (now(), web.origin());
    let good = vapid_token(&key, &origin, t + 3600, "mailto:ops@example.com");

    let reply = web_push(&web, "sub-1", None, &[], b"x".to_vec()).await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    let refused = [
        // Signed by one key, presented with another.
        format!("vapid t={good}, k={}", b64url(other.public_key())),
        vapid(&tampered(&good, &json!({ "aud": origin, "exp": t + 7200, "sub": "mailto:ops@example.com" })), &key),
        vapid(&vapid_token(&key, &origin, t - 10, "mailto:ops@example.com"), &key),
        vapid(&vapid_token(&key, &origin, t + 2 * 24 * 3600, "mailto:ops@example.com"), &key),
        vapid(&vapid_token(&key, "https://push.example.net", t + 3600, "mailto:ops@example.com"), &key),
        vapid(&vapid_token(&key, &origin, t + 3600, "ops@example.com"), &key),
        vapid(
            &es256_jwt(&key, json!({ "alg": "ES256" }), json!({ "aud": origin, "exp": t + 60, "sub": "mailto:a@b.c" })),
            &key,
        ),
        format!("vapid t={good}"),
        format!("WebPush {good}"),
    ];
    for auth in &refused {
        let reply = web_push(&web, "sub-1", Some(auth), &[], b"x".to_vec()).await;
        assert_eq!(reply.status, 403, "{auth}: {}", reply.text());
        assert!(!reply.text().is_empty());
    }
    assert_eq!(web.sent_to("sub-1"), 1 + refused.len());
    assert!(web.requests().iter().all(|r| !r.auth_ok));
    assert_eq!(web.vapid_public_keys(), [b64url(other.public_key()), b64url(key.public_key())]);
    assert_eq!(web_push(&web, "sub-1", Some(&vapid(&good, &key)), &[], b"x".to_vec()).await.status, 201);
}

#[tokio::test]
async fn web_push_checks_headers_and_scripts() {
    let web = WebPushStandIn::start().await;
    let key = p256_key();
    let auth = vapid(&vapid_token(&key, &web.origin(), now() + 3600, "mailto:ops@example.com"), &key);
    let auth = Some(auth.as_str());
    let x = || b"x".to_vec();

    let (topic_32, topic_33) = ("t".repeat(32), "t".repeat(33));
    for (extra, status) in [
        (("ttl", ""), 400),
        (("ttl", "-1"), 400),
        (("ttl", "0"), 201),
        (("content-encoding", "aesgcm"), 415),
        (("content-encoding", ""), 415),
        (("urgency", "urgent"), 400),
        (("urgency", ""), 201),
        (("topic", "a=b"), 400),
        (("topic", topic_33.as_str()), 400),
        (("topic", topic_32.as_str()), 201),
    ] {
        let reply = web_push(&web, "sub-1", auth, &[extra], x()).await;
        assert_eq!(reply.status, status, "{extra:?}: {}", reply.text());
    }
    assert_eq!(web_push(&web, "sub-1", auth, &[], vec![0; 4097]).await.status, 413);
    assert_eq!(web_push(&web, "sub-1", auth, &[], vec![0; 4096]).await.status, 201);
    assert!(web.requests().iter().all(|r| r.auth_ok));

    web.script("sub-1", Answer::json(410, r#"{"errno":103,"error":"Gone"}"#));
    let refused = web_push(&web, "sub-1", auth, &[("ttl", "")], x()).await;
    assert_eq!(refused.status, 400, "a refused push leaves the script");
    let reply = web_push(&web, "sub-1", auth, &[], x()).await;
    assert_eq!((reply.status, reply.json()["error"].as_str()), (410, Some("Gone")));
    assert_eq!(web_push(&web, "sub-1", auth, &[], x()).await.status, 201);

    web.script_always("sub-2", Answer::json(429, "{}").with_header("retry-after", "30"));
    for _ in 0..2 {
        let reply = web_push(&web, "sub-2", auth, &[], x()).await;
        assert_eq!((reply.status, reply.header("retry-after")), (429, Some("30")));
    }
    assert_eq!((web.sent_to("sub-1"), web.sent_to("sub-2")), (15, 2));
    assert_eq!(web.distinct_jwts(), 1);
}

#[tokio::test]
async fn web_push_over_tls_trusting_the_test_ca_wants_the_https_origin() {
    let web = WebPushStandIn::start_tls().await;
    let origin = web.origin();
    let port = origin.strip_prefix("https://127.0.0.1:").unwrap_or_else(|| panic!("{origin}"));
    assert!(port.parse::<u16>().is_ok(), "{origin}");
    assert_eq!(web.endpoint("sub-1"), format!("{origin}/push/sub-1"));

    let roots = test_ca_roots();
    let key = p256_key();
    let (t, sub) = (now(), "mailto:ops@example.com");
    let push = |auth: String| {
        let (roots, url) = (roots.clone(), web.endpoint("sub-1"));
        async move {
            let headers = [("ttl", "60"), ("content-encoding", "aes128gcm"), ("authorization", auth.as_str())];
            tls_post(&url, &roots, "127.0.0.1", &headers, b"x".to_vec()).await.unwrap()
        }
    };

    // The https origin is the audience; the same host and port over http is not.
    let reply = push(vapid(&vapid_token(&key, &origin, t + 3600, sub), &key)).await;
    assert_eq!((reply.status, reply.header("location")), (201, Some("/msg/1")), "{}", reply.text());
    let http_origin = origin.replacen("https://", "http://", 1);
    let reply = push(vapid(&vapid_token(&key, &http_origin, t + 3600, sub), &key)).await;
    assert_eq!(reply.status, 403, "{}", reply.text());
    assert!(reply.text().contains("aud"), "{}", reply.text());

    // The certificate is also good for `localhost`.
    let auth = vapid(&vapid_token(&key, &origin, t + 3600, sub), &key);
    let headers = [("ttl", "60"), ("content-encoding", "aes128gcm"), ("authorization", auth.as_str())];
    let reply = tls_post(&web.endpoint("sub-2"), &roots, "localhost", &headers, b"y".to_vec()).await.unwrap();
    assert_eq!(reply.status, 201, "{}", reply.text());

    let requests = web.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.version == "HTTP/1.1" && r.method == "POST"));
    let auth: Vec<(bool, u16)> = requests.iter().map(|r| (r.auth_ok, r.status)).collect();
    assert_eq!(auth, [(true, 201), (false, 403), (true, 201)]);
    assert_eq!((web.sent_to("sub-1"), web.sent_to("sub-2")), (2, 1));

    // No trust in the test CA, a name the certificate does not carry, plain HTTP: no request.
    let refused = tls_post(&web.endpoint("sub-1"), &[], "127.0.0.1", &headers, b"x".to_vec()).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("UnknownIssuer")), "{:?}", refused.err());
    let refused = tls_post(&web.endpoint("sub-1"), &roots, "push.example.net", &headers, b"x".to_vec()).await;
    assert!(refused.as_ref().is_err_and(|e| e.contains("not valid for name")), "{:?}", refused.err());
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let plain = client.post(format!("http://{}/push/sub-1", &origin["https://".len()..])).body("x").send().await;
    assert!(plain.is_err(), "{plain:?}");
    assert_eq!(web.requests().len(), 3);

    // The plain stand-in still wants its http origin.
    let plain = WebPushStandIn::start().await;
    assert!(plain.origin().starts_with("http://127.0.0.1:"), "{}", plain.origin());
    let https_aud = plain.origin().replacen("http://", "https://", 1);
    let refused = vapid(&vapid_token(&key, &https_aud, t + 3600, sub), &key);
    assert_eq!(web_push(&plain, "sub-1", Some(&refused), &[], b"x".to_vec()).await.status, 403);
}
