//! moto's standalone server as a local AWS for end-to-end tests.
//!
//! One [`Moto`] per test: a fresh `moto_server` on a free loopback port, killed on drop.
//! moto 5.2.5 is pinned and installed into `<repo>/.venv` by `scripts/test.sh`.
//!
//! What moto needs and does (5.2.5, measured):
//! - SES v2 `SendEmail` is rejected (`MessageRejected`, "Email address not verified") unless
//!   the sender's address, or its domain, is an identity. SES v2 `CreateEmailIdentity` is
//!   enough and is verified at once (there is no pending state): see
//!   [`Moto::verify_email_identity`]. SES v1 `VerifyEmailIdentity` and `VerifyDomainIdentity`
//!   land in the same store, so either API works.
//! - SES v2 and SES v1 share one backend: sent mail is in `data.json` under `ses`, never
//!   `sesv2` (see [`Moto::sent_emails`]).
//! - SES v2 drops `ConfigurationSetName`, `EmailTags` and `Content.Simple.Headers`, and keeps
//!   only the HTML part of Simple content when both parts are given (the text part otherwise).
//!   Assert those at the recording proxy ([`crate::proxy`]) instead.
//! - Every response carries `Connection: close`, and SES v2 JSON comes back as `text/html`.
//! - SNS delivers to SQS subscriptions inside `Publish`, honouring `RawMessageDelivery` and
//!   body filters (`FilterPolicyScope: MessageBody`), but: a body filter with `$or` fails
//!   the `Publish` (500, a TypeError) as soon as an alternative compares a string value, and
//!   `anything-but` rejects a message without the key before the key's later values are
//!   tried, so `[{"exists": false}, {"anything-but": [..]}]` works only in that order.
//!   It delivers to a queue without any queue policy allowing it.
//! - Two costs grow with the state taken out: DynamoDB `TransactWriteItems` deep-copies
//!   every table it touches, once per item (440 ms per call at 1,000 items), and SQS
//!   `ReceiveMessage` recomputes every queue attribute, message counts included, with a slow
//!   clock, for each message it returns (1.4 s per call at 1,000 queued messages). moto is
//!   therefore started through `tests/moto/server.py`, which removes both costs and changes
//!   no answer (see that file). Without a Python beside the moto_server binary, moto_server
//!   itself runs.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The moto version `scripts/test.sh` installs.
pub const MOTO_VERSION: &str = "5.2.5";

/// Region used by every client and by moto's data (moto keeps state per region).
pub const REGION: &str = "us-east-1";

/// Variables a child process must not inherit from the developer's environment, on top of
/// what [`Moto::env`] sets. [`Moto::env`] already sets them to harmless values where it can;
/// remove these with `Command::env_remove` for a child that should see none of them.
pub const UNSET_ENV: &[&str] = &[
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// A running `moto_server`.
pub struct Moto {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    child: Child,
    // moto logs every request: a pipe nobody reads would fill up and stall it, so its
    // output goes to a file that is read back only for panic messages.
    log: tempfile::NamedTempFile,
    http: reqwest::Client,
}

impl Moto {
    /// Starts moto on a free port and waits (up to 15 s) until it answers.
    pub async fn start() -> Moto {
        let bin = moto_binary();
        // The port is free when picked but could be taken before moto binds it: try again.
        let mut last_failure = String::new();
        for _ in 0..3 {
            match Self::try_start(&bin).await {
                Ok(moto) => return moto,
                Err(failure) if failure.contains("Address already in use") => last_failure = failure,
                Err(failure) => panic!("{failure}"),
            }
        }
        panic!("{last_failure}")
    }

    async fn try_start(bin: &PathBuf) -> Result<Moto, String> {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().expect("temp file for moto's log");
        let out = log.reopen().expect("reopen moto's log");
        let err = log.reopen().expect("reopen moto's log");
        let mut command = match bin.parent().map(|dir| dir.join("python3")).filter(|p| p.is_file()) {
            Some(python) => {
                let mut c = Command::new(python);
                c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("moto/server.py"));
                c
            }
            None => Command::new(bin),
        };
        let child = command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("reqwest client for moto");
        let mut moto = Moto { endpoint: format!("http://127.0.0.1:{port}"), child, log, http };

        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!("moto_server exited ({status}) before answering; its output:\n{}", moto.output()));
            }
            let probe = moto.http.get(format!("{}/moto-api/", moto.endpoint)).timeout(Duration::from_secs(2)).send();
            if let Ok(resp) = probe.await
                && resp.status().is_success()
            {
                return Ok(moto);
            }
            if Instant::now() > deadline {
                // Dropping `moto` kills the child.
                return Err(format!(
                    "moto_server did not answer on {} within 15 s; its output:\n{}",
                    moto.endpoint,
                    moto.output()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What moto printed so far (its request log and any traceback).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Wipes all state of every service (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        let resp = self.http.post(format!("{}/moto-api/reset", self.endpoint)).send().await.expect("moto reset");
        assert!(resp.status().is_success(), "moto reset answered {}", resp.status());
    }

    /// All of moto's state (`GET /moto-api/data.json`): `{service: {ModelName: [instance, ..]}}`,
    /// instances of every account and region together.
    pub async fn data(&self) -> Value {
        // All of moto's state in one answer: after a long run it takes a while to serialize.
        let resp = self
            .http
            .get(format!("{}/moto-api/data.json", self.endpoint))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .expect("moto data.json");
        assert!(resp.status().is_success(), "moto data.json answered {}", resp.status());
        let bytes = resp.bytes().await.expect("moto data.json body");
        serde_json::from_slice(&bytes).expect("moto data.json is JSON")
    }

    /// Mail that SES (v1 or v2) accepted, oldest first within each kind, each moto's own record
    /// with a `"kind"` added. Measured with moto 5.2.5 (sent through the SES v2 API):
    ///
    /// - Simple content, `"kind": "simple"`, from `ses.Message[]`:
    ///   `{"id", "source": "Name <a@x>", "subject", "body",
    ///     "destinations": {"ToAddresses": [..], "CcAddresses": [..], "BccAddresses": [..]}}`
    ///   where `body` is the HTML part if there is one, else the text part; headers, tags and
    ///   configuration set are not stored.
    /// - Raw content, `"kind": "raw"`, from `ses.RawMessage[]`:
    ///   `{"id", "source", "raw_data": "<whole MIME message>", "destinations": [..]}`, where
    ///   `destinations` is the request's list followed by the To/Cc/Bcc header addresses again
    ///   (so a recipient named in both appears twice).
    /// - Templated (SES v1 only: moto 5.2.5 raises NotImplementedError for SES v2 `Template` content),
    ///   `"kind": "template"`, from `ses.TemplateMessage[]`.
    ///
    /// `id` is the `MessageId` that `SendEmail` returned.
    pub async fn sent_emails(&self) -> Vec<Value> {
        let data = self.data().await;
        let mut sent = Vec::new();
        for (model, kind) in [("Message", "simple"), ("RawMessage", "raw"), ("TemplateMessage", "template")] {
            let Some(items) = data["ses"][model].as_array() else { continue };
            for item in items {
                let mut item = item.clone();
                if let Some(obj) = item.as_object_mut() {
                    obj.insert("kind".to_owned(), Value::from(kind));
                }
                sent.push(item);
            }
        }
        sent
    }

    /// SMS that SNS `Publish` to a phone number stored: `phone_number`, `message`,
    /// `message_id` each. moto keeps neither attributes nor opt-outs (see FACTS.md).
    pub async fn sent_sms(&self) -> Vec<Value> {
        self.data().await["sns"]["SMS"].as_array().cloned().unwrap_or_default()
    }

    /// Makes `address_or_domain` a verified SES identity, so SES v2 `SendEmail` from it (or
    /// from any address at the domain) is accepted. Uses SES v2 `CreateEmailIdentity` directly
    /// against moto, which marks it verified at once; calling it twice is harmless.
    pub async fn verify_email_identity(&self, address_or_domain: &str) {
        let ses = aws_sdk_sesv2::Client::new(&self.sdk_config(&self.endpoint).await);
        ses.create_email_identity()
            .email_identity(address_or_domain)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto CreateEmailIdentity {address_or_domain}: {e:?}"));
    }

    /// An `SdkConfig` for test clients talking to `endpoint` (moto itself or a proxy in front
    /// of it): static credentials `testing`/`testing`, region us-east-1. Built field by field,
    /// not loaded, so no environment variable or ~/.aws file can change it. Standard retries
    /// with 3 attempts like the SDK default, but a 10 ms initial backoff keeps retry tests fast.
    pub async fn sdk_config(&self, endpoint: &str) -> aws_config::SdkConfig {
        sdk_config(endpoint)
    }

    /// Environment for a child process (a function binary) that should reach AWS only at
    /// `endpoint`. Set all of these and remove [`UNSET_ENV`]. Service-specific endpoint
    /// variables are set too, because they win over `AWS_ENDPOINT_URL`; retry settings are
    /// pinned to the SDK defaults so a developer's `AWS_MAX_ATTEMPTS` cannot change a test.
    /// An empty `AWS_SESSION_TOKEN` counts as unset for the Rust SDK.
    pub fn env(&self, endpoint: &str) -> Vec<(String, String)> {
        let none = "/nonexistent/herald-e2e/aws";
        [
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ENDPOINT_URL_SESV2", endpoint),
            ("AWS_ENDPOINT_URL_SQS", endpoint),
            ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint),
            ("AWS_ENDPOINT_URL_SNS", endpoint),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_SESSION_TOKEN", ""),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", none),
            ("AWS_SHARED_CREDENTIALS_FILE", none),
            ("AWS_RETRY_MODE", "standard"),
            ("AWS_MAX_ATTEMPTS", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Errors mean it already exited: nothing left to clean up.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// [`Moto::sdk_config`] without a running moto at hand: a config for test clients talking to
/// `endpoint`. Each call builds its own HTTP client (connection pool), so a thread with its
/// own Tokio runtime can have clients whose connections live on that runtime.
pub fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

    let http =
        aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
    let credentials = aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "herald-e2e");
    let retries =
        aws_config::retry::RetryConfig::standard().with_max_attempts(3).with_initial_backoff(Duration::from_millis(10));
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint)
        .retry_config(retries)
        .build()
}

/// `HERALD_MOTO_SERVER`, else `<repo>/.venv/bin/moto_server`; panics with the fix if absent.
fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("HERALD_MOTO_SERVER") {
        let path = PathBuf::from(path);
        assert!(path.is_file(), "HERALD_MOTO_SERVER={} does not exist", path.display());
        return path;
    }
    let path = crate::repo_root().join(".venv/bin/moto_server");
    assert!(
        path.is_file(),
        "moto is not installed: run scripts/test.sh (it installs moto[server]=={MOTO_VERSION} into .venv)"
    );
    path
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
