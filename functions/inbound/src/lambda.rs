//! `lambda_http`'s request and response types to and from the endpoints' own. A Function
//! URL sends the API Gateway v2 payload; `lambda_http` has already decoded a base64 body.

use lambda_http::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use lambda_http::{Body, RequestExt};

use crate::{Request, Response};

/// The endpoints' view of a Lambda HTTP request.
pub fn request(event: &lambda_http::Request) -> Request {
    // The raw path: a Function URL has no stage to strip, and the URI path may carry one.
    let raw = event.raw_http_path();
    let path = if raw.is_empty() { event.uri().path() } else { raw };
    Request {
        method: event.method().as_str().to_ascii_uppercase(),
        path: path.to_owned(),
        query: event.uri().query().unwrap_or_default().to_owned(),
        content_type: event.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: event.body().as_ref().to_vec(),
    }
}

/// A Lambda HTTP response of `response`. Header values are the endpoints' own (never
/// request input), so none is refused; one that were would be dropped, not sent broken.
pub fn response(response: Response) -> lambda_http::Response<Body> {
    let mut out =
        lambda_http::Response::new(if response.body.is_empty() { Body::Empty } else { Body::Text(response.body) });
    *out.status_mut() = lambda_http::http::StatusCode::from_u16(response.status)
        .unwrap_or(lambda_http::http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            out.headers_mut().append(name, value);
        }
    }
    out
}
