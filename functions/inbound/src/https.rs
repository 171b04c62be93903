//! The real [`CertificateSource`] and [`SubscriptionConfirmer`]: one HTTPS GET each,
//! through the core's SSRF-guarded client (`herald::adapters::http`): https only, no
//! internal address, no redirect, one timeout for the whole exchange, a capped body.
//! [`crate::sns`] passes only URLs that `signing_cert_url_ok` / `subscribe_url_ok`
//! accepted, so the host is always `sns.<region>.amazonaws.com[.cn]`.

use std::time::Duration;

use async_trait::async_trait;
use herald::adapters::http::{AllowList, GuardOptions, GuardedClient, HttpResponse};

use crate::sns::{CertificateSource, SubscriptionConfirmer};

/// The whole exchange, connection included: SNS waits about 15 s for our answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A signing certificate is about 2 KiB; a confirmation answer a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// GETs over HTTPS. Cheap to clone; build one per process (it pools connections).
#[derive(Clone, Debug)]
pub struct HttpsGet {
    client: GuardedClient,
}

impl HttpsGet {
    /// Fails only when the OS offers no usable root certificate.
    pub fn new() -> Result<Self, String> {
        // No allow-list: SNS is public, nothing internal is ever a target.
        let options = GuardOptions { allow: AllowList::default(), timeout: TIMEOUT, max_body: MAX_BODY_BYTES };
        GuardedClient::new(options).map(|client| HttpsGet { client }).map_err(|e| e.to_string())
    }

    /// The whole body of a 2xx answer to `GET url`. Errors name the host, never the
    /// rest of the URL (a SubscribeURL carries the subscription's token).
    pub async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let host = url.split('/').nth(2).unwrap_or_default();
        let answer = self.client.get(url).await.map_err(|e| format!("GET from {host}: {e}"))?;
        whole_body(answer).map_err(|why| format!("GET from {host}: {why}"))
    }
}

fn whole_body(answer: HttpResponse) -> Result<Vec<u8>, String> {
    if !(200..300).contains(&answer.status) {
        // A redirect included: it is not followed.
        return Err(format!("answered {}", answer.status));
    }
    if answer.truncated {
        return Err(format!("the body broke off or is over {MAX_BODY_BYTES} bytes"));
    }
    Ok(answer.body)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, truncated: bool) -> HttpResponse {
        HttpResponse { status, headers: Vec::new(), body: b"pem".to_vec(), truncated }
    }

    #[test]
    fn only_a_whole_2xx_body_is_taken() {
        assert_eq!(whole_body(answer(200, false)), Ok(b"pem".to_vec()));
        assert_eq!(whole_body(answer(301, false)), Err("answered 301".to_owned()));
        assert_eq!(whole_body(answer(404, false)), Err("answered 404".to_owned()));
        assert!(whole_body(answer(200, true)).is_err());
    }

    #[tokio::test]
    async fn nothing_but_https_is_fetched_and_the_url_is_not_echoed() {
        let get = HttpsGet::new().unwrap();
        // Refused before any connection: plain http, an internal address.
        for url in ["http://sns.us-east-1.amazonaws.com/x.pem?Token=SECRET", "https://127.0.0.1/x.pem?Token=SECRET"] {
            let err = get.get(url).await.unwrap_err();
            assert!(!err.contains("SECRET") && !err.contains("x.pem"), "{err}");
        }
    }
}
