//! The real [`CertificateSource`] and [`SubscriptionConfirmer`]: one HTTPS GET each.
//!
//! Built on hyper-util's legacy client with hyper-rustls (rustls + ring, the OS root
//! store), already in the build through the AWS SDK. TODO: move onto the SSRF-guarded
//! client the core is getting (`herald::adapters::http`) once it lands on main; until
//! then the guard here is the URL rule: [`crate::sns`] only passes URLs that
//! `signing_cert_url_ok` / `subscribe_url_ok` accepted (https, port 443, an
//! `sns.<region>.amazonaws.com[.cn]` host, no userinfo), and this client follows no
//! redirect, refuses plain http, reads at most [`MAX_BODY_BYTES`] and gives up after
//! [`TIMEOUT`].

use std::time::Duration;

use async_trait::async_trait;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::sns::{CertificateSource, SubscriptionConfirmer};

/// The whole exchange, connection included: SNS waits about 15 s for our answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A signing certificate is about 2 KiB; a confirmation answer a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// GETs over HTTPS. Cheap to clone; build one per process (it pools connections).
#[derive(Clone)]
pub struct HttpsGet {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl HttpsGet {
    /// Fails only when the OS offers no usable root certificate.
    pub fn new() -> Result<Self, String> {
        let connector = HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("no usable root certificates: {e}"))?
            .https_only()
            .enable_http1()
            .build();
        Ok(HttpsGet { client: Client::builder(TokioExecutor::new()).build(connector) })
    }

    /// The body of a 2xx answer to `GET url`. A redirect is an error, not followed.
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let uri: Uri = url.parse().map_err(|_| "not a valid URL".to_owned())?;
        if uri.scheme_str() != Some("https") || uri.authority().is_none_or(|a| a.as_str().contains('@')) {
            return Err("only https URLs without credentials are fetched".to_owned());
        }
        let host = uri.host().unwrap_or_default().to_owned();
        let request = Request::get(uri)
            .header(hyper::header::USER_AGENT, concat!("herald-inbound/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| format!("GET from {host}: {e}"))?;
            let status = response.status();
            if !status.is_success() {
                return Err(format!("GET from {host} answered {status}"));
            }
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| format!("GET from {host}: body unread or over {MAX_BODY_BYTES} bytes: {e}"))?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("GET from {host}: no answer in {TIMEOUT:?}"))?
    }
}

#[async_trait]
impl CertificateSource for HttpsGet {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        self.get(url).await
    }
}

#[async_trait]
impl SubscriptionConfirmer for HttpsGet {
    async fn confirm(&self, url: &str) -> Result<(), String> {
        // The answer (a ConfirmSubscriptionResponse) says nothing the 2xx does not.
        self.get(url).await.map(drop)
    }
}
