//! herald's public HTTPS endpoints, one Lambda behind a Function URL:
//!
//! - `/unsubscribe?token=T` and `/unsubscribe/T`: RFC 8058 one-click unsubscribe
//!   ([`unsubscribe`]);
//! - `/sns`: Amazon SNS HTTP/S subscriptions, verified and forwarded to the
//!   provider-events queue ([`sns`]); 404 unless configured.
//!
//! The logic sees only [`Request`] and [`Response`], so it is tested in-process with the
//! in-memory twins; [`lambda`] converts from and to `lambda_http`'s types, and
//! `main.rs` wires the AWS adapters.

pub mod config;
mod form;
pub mod https;
pub mod lambda;
pub mod page;
pub mod sns;
pub mod unsubscribe;

use std::borrow::Cow;

pub use sns::{CertificateSource, SnsEndpoint, SubscriptionConfirmer};
pub use unsubscribe::Unsubscribe;

/// The function as the deployment template must configure it: the variables it reads
/// and the AWS adapters its role must allow (`herald::adapters::aws::AWS_CALLS`).
pub const SERVICE: herald_lambda::Service =
    herald_lambda::Service { name: "inbound", env_vars: config::ENV_VARS, aws_adapters: config::AWS_ADAPTERS };

/// An HTTP request, as much of it as the endpoints read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Upper case: `GET`, `POST`...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query string, without `?`; empty when there is none.
    pub query: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request without a body; `target` is the path and the query (`/sns`, `/unsubscribe?token=T`).
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: query.to_owned(),
            content_type: None,
            body: Vec::new(),
        }
    }

    pub fn with_body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.to_owned());
        self.body = body.into();
        self
    }

    /// The query's parameters, percent-decoded.
    pub fn query_params(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        form_urlencoded::parse(self.query.as_bytes())
    }
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: String) -> Self {
        Response { status, headers: vec![("Content-Type", content_type.to_owned())], body }
    }

    /// A short plain-text answer (for machines: SNS), with the same protective headers as pages.
    pub fn text(status: u16, body: &str) -> Self {
        let mut response = Response::new(status, "text/plain; charset=utf-8", format!("{body}\n"));
        response.headers.extend(page::security_headers());
        response
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The same answer to a HEAD request.
    pub fn without_body(mut self) -> Self {
        self.body.clear();
        self
    }
}

/// The endpoints behind the Function URL.
pub struct Inbound {
    unsubscribe: Unsubscribe,
    /// None when no provider-events queue is configured: `/sns` is then 404.
    sns: Option<SnsEndpoint>,
}

impl Inbound {
    pub fn new(unsubscribe: Unsubscribe, sns: Option<SnsEndpoint>) -> Self {
        Inbound { unsubscribe, sns }
    }

    /// Routes one request. Never fails: every outcome is an HTTP answer.
    pub async fn handle(&self, request: Request) -> Response {
        let response = match route(&request.path) {
            Route::Unsubscribe(segment) => self.unsubscribe.handle(&request, segment).await,
            Route::Sns => match &self.sns {
                Some(sns) => sns.handle(&request).await,
                None => Response::text(404, "not found"),
            },
            Route::NotFound => page::not_found(),
        };
        if request.method == "HEAD" { response.without_body() } else { response }
    }
}

enum Route<'a> {
    /// With the path segment after `/unsubscribe/`, if any.
    Unsubscribe(Option<&'a str>),
    Sns,
    NotFound,
}

fn route(path: &str) -> Route<'_> {
    match path {
        "/unsubscribe" | "/unsubscribe/" => Route::Unsubscribe(None),
        "/sns" | "/sns/" => Route::Sns,
        _ => match path.strip_prefix("/unsubscribe/") {
            // One segment only: `/unsubscribe/a/b` is no token.
            Some(segment) if !segment.contains('/') => Route::Unsubscribe(Some(segment)),
            _ => Route::NotFound,
        },
    }
}
