//! The unsubscribe key ring in Secrets Manager: the adapter against moto, and the email
//! function's cold start, which fetches the ring from the one ARN in its environment and
//! refuses to start (an init error, before its first `/next`) when it cannot, or when a
//! key is where it must not be.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use herald::adapters::aws::{SecretError, unsubscribe_keys};
use herald::receipt::unsubscribe::KeyRingError;
use herald_e2e::lambda::{FunctionProcess, RuntimeApi};
use herald_e2e::moto::Moto;
use herald_e2e::proxy::Proxy;

const RING: &str = r#"{"primary": "k2", "k2": "new-key-0123456789abcdef-0123", "k1": "old-key-0123456789abcdef-0123"}"#;
const LEAKY: &str = "leaky-key-value-0123456789";

const CONFIG: &str = r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/unsubscribe?token={token}"
"#;

async fn client(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&moto.sdk_config(&moto.endpoint).await)
}

async fn create(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> String {
    let out = client.create_secret().name(name).secret_string(value).send().await.unwrap();
    out.arn().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adapter_reads_the_key_ring_and_names_what_went_wrong_without_the_value() {
    let moto = Moto::start().await;
    let sm = client(&moto).await;

    let ring = create(&sm, "ring", RING).await;
    let keys = unsubscribe_keys(&sm, &ring).await.unwrap();
    assert_eq!(keys.primary(), "k2");
    assert_eq!(keys.kids().collect::<Vec<_>>(), ["k1", "k2"]);

    let plain = create(&sm, "plain", "a-plain-key-of-some-length").await;
    assert_eq!(unsubscribe_keys(&sm, &plain).await.unwrap().primary(), "k0");

    // Rotation: the current version is what a new cold start reads.
    sm.put_secret_value()
        .secret_id(&ring)
        .secret_string(
            r#"{"primary": "k3", "k3": "newest-key-0123456789abcdef", "k2": "new-key-0123456789abcdef-0123"}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(unsubscribe_keys(&sm, &ring).await.unwrap().primary(), "k3");

    let broken = create(&sm, "broken", &format!(r#"{{"primary": "k9", "k1": "{LEAKY}"}}"#)).await;
    let err = unsubscribe_keys(&sm, &broken).await.unwrap_err();
    assert_eq!(err, SecretError::Format { arn: broken.clone(), source: KeyRingError::UnknownPrimary });
    let text = format!("{err} / {err:?}");
    assert!(text.contains(&broken) && !text.contains(LEAKY), "{text}");

    let not_json = create(&sm, "not-json", &format!(r#"{{"primary": "k1", "k1": "{LEAKY}""#)).await;
    let text = unsubscribe_keys(&sm, &not_json).await.unwrap_err().to_string();
    assert!(text.contains("not valid JSON") && !text.contains(LEAKY), "{text}");

    let binary = sm.create_secret().name("binary").secret_binary(Blob::new(LEAKY.as_bytes())).send().await.unwrap();
    let binary = binary.arn().unwrap();
    assert_eq!(unsubscribe_keys(&sm, binary).await.unwrap_err(), SecretError::NotText { arn: binary.to_owned() });

    let missing = ring.replace(":secret:ring", ":secret:absent");
    match unsubscribe_keys(&sm, &missing).await.unwrap_err() {
        SecretError::Service { arn, code, .. } => {
            assert_eq!(arn, missing);
            assert_eq!(code, "ResourceNotFoundException");
        }
        other => panic!("{other:?}"),
    }
}

/// One execution environment of the email function with `vars` on top of moto's
/// endpoint settings; nothing else is in its environment.
struct Cold {
    runtime: RuntimeApi,
    function: FunctionProcess,
    env: Vec<(String, String)>,
    _logs: tempfile::TempDir,
}

async fn start(moto_env: Vec<(String, String)>, vars: &[(&str, &str)]) -> Cold {
    let mut env = moto_env;
    env.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let runtime = RuntimeApi::start().await;
    let logs = tempfile::tempdir().unwrap();
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_herald-email"));
    let function = FunctionProcess::spawn(&bin, &runtime, &env, logs.path());
    Cold { runtime, function, env, _logs: logs }
}

impl Cold {
    /// Waits until the function asks for its first event (true) or exits (false).
    async fn started(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if !self.runtime.next_calls().is_empty() {
                return true;
            }
            if let Some(status) = self.function.exited() {
                assert!(!status.success(), "the function exited cleanly during init");
                return false;
            }
            assert!(Instant::now() < deadline, "neither started nor failed in 20 s:\n{}", self.function.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The init error: the function exited before its first `/next`; its message.
    async fn init_error(&mut self) -> String {
        assert!(!self.started().await, "the function started:\n{}", self.function.logs());
        assert!(self.runtime.next_calls().is_empty());
        self.function.logs()
    }
}

fn base_vars<'a>(arn: &'a str, config: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("HERALD_CONFIG_TOML", config),
        ("HERALD_TABLE", "StateTable"),
        ("HERALD_REQUEST_QUEUE_URL", "http://127.0.0.1:9/123456789012/EmailRequestQueue"),
        ("HERALD_RECEIPTS_QUEUE_URL", "http://127.0.0.1:9/123456789012/ReceiptsQueue"),
        ("HERALD_UNSUBSCRIBE_SECRET_ARN", arn),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_starts_with_only_the_secret_arn_in_its_environment() {
    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    let arn = create(&client(&moto).await, "UnsubscribeSecret", RING).await;
    let mut cold = start(moto.env(&proxy.endpoint()), &base_vars(&arn, CONFIG)).await;
    assert!(cold.started().await, "{}", cold.function.logs());
    // It read the ring, once, from that ARN...
    let reads = proxy.calls("secretsmanager", "GetSecretValue");
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].body["SecretId"], arn.as_str());
    // ...and no key was ever in its environment or its logs.
    for key in ["new-key-0123456789abcdef-0123", "old-key-0123456789abcdef-0123"] {
        assert!(cold.env.iter().all(|(_, v)| !v.contains(key)));
        assert!(!cold.function.logs().contains(key));
    }
    assert!(cold.env.iter().all(|(k, _)| k != "HERALD_UNSUBSCRIBE_SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_refuses_to_start_without_its_key_ring() {
    let moto = Moto::start().await;
    let sm = client(&moto).await;
    let good = create(&sm, "UnsubscribeSecret", RING).await;
    let bad = create(&sm, "Broken", &format!(r#"{{"primary": "k1", "k1": "{LEAKY}", "k2": "short"}}"#)).await;
    let absent = good.replace(":secret:UnsubscribeSecret", ":secret:Absent");

    // No ARN at all.
    let mut vars = base_vars(&good, CONFIG);
    vars.retain(|(k, _)| *k != "HERALD_UNSUBSCRIBE_SECRET_ARN");
    let logs = start(moto.env(&moto.endpoint), &vars).await.init_error().await;
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET_ARN is not set"), "{logs}");

    // Something that is not an ARN (a key pasted by mistake): named, not echoed.
    let logs = start(moto.env(&moto.endpoint), &base_vars(LEAKY, CONFIG)).await.init_error().await;
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET_ARN must be a Secrets Manager secret ARN"), "{logs}");
    assert!(!logs.contains(LEAKY), "{logs}");

    // A secret that does not exist, and one that is not a key ring.
    let logs = start(moto.env(&moto.endpoint), &base_vars(&absent, CONFIG)).await.init_error().await;
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET_ARN") && logs.contains("ResourceNotFoundException"), "{logs}");
    let logs = start(moto.env(&moto.endpoint), &base_vars(&bad, CONFIG)).await.init_error().await;
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET_ARN") && logs.contains("key k2: at least 16 bytes"), "{logs}");
    assert!(!logs.contains(LEAKY) && !logs.contains("short\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_refuses_a_key_in_its_environment_or_configuration() {
    let moto = Moto::start().await;
    let arn = create(&client(&moto).await, "UnsubscribeSecret", RING).await;

    // The variable local tools read: its presence stops the function; its value is not read.
    let mut vars = base_vars(&arn, CONFIG);
    vars.push(("HERALD_UNSUBSCRIBE_SECRET", LEAKY));
    let logs = start(moto.env(&moto.endpoint), &vars).await.init_error().await;
    assert!(logs.contains("HERALD_UNSUBSCRIBE_SECRET is set: remove it"), "{logs}");
    assert!(!logs.contains(LEAKY), "{logs}");

    // A key in the configuration text.
    let config = format!("{CONFIG}unsubscribe_secret = \"{LEAKY}\"\n");
    let logs = start(moto.env(&moto.endpoint), &base_vars(&arn, &config)).await.init_error().await;
    assert!(logs.contains("HERALD_CONFIG_TOML: email.unsubscribe_secret: not allowed"), "{logs}");
    assert!(!logs.contains(LEAKY), "{logs}");
}

/// A template folder whose one template does not compile.
fn broken_templates() -> tempfile::TempDir {
    let templates = tempfile::tempdir().unwrap();
    let welcome = templates.path().join("welcome");
    std::fs::create_dir_all(&welcome).unwrap();
    std::fs::write(welcome.join("email.subject.hbs"), "Hi {{#if name}}").unwrap();
    std::fs::write(welcome.join("email.html.hbs"), "<p>Hi</p>").unwrap();
    templates
}

/// Templates compile beside the start's network calls (the SDK's configuration, the key
/// ring): a broken one is still the error the function reports, also when the key ring
/// failed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_template_is_the_start_error_whatever_else_failed() {
    let moto = Moto::start().await;
    let good = create(&client(&moto).await, "UnsubscribeSecret", RING).await;
    let absent = good.replace(":secret:UnsubscribeSecret", ":secret:Absent");
    let templates = broken_templates();
    for arn in [&good, &absent] {
        let mut vars = base_vars(arn, CONFIG);
        vars.push(("HERALD_TEMPLATES", templates.path().to_str().unwrap()));
        let logs = start(moto.env(&moto.endpoint), &vars).await.init_error().await;
        assert!(logs.contains("welcome") && logs.contains("email.subject.hbs"), "{logs}");
        assert!(!logs.contains("ResourceNotFoundException"), "{logs}");
    }
}

/// ...and it ends the start at once, not after the network set-up's timeouts: here
/// Secrets Manager accepts the connection and never answers, with 20 s per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_template_fails_the_start_without_waiting_for_the_network() {
    let moto = Moto::start().await;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            open.push(socket);
        }
    });
    let templates = broken_templates();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:UnsubscribeSecret-AbCdEf";
    let mut vars = base_vars(arn, CONFIG);
    vars.push(("HERALD_TEMPLATES", templates.path().to_str().unwrap()));
    vars.push(("HERALD_AWS_TIMEOUT_MS", "20000"));
    let began = Instant::now();
    let logs = start(moto.env(&endpoint), &vars).await.init_error().await;
    assert!(logs.contains("email.subject.hbs"), "{logs}");
    assert!(began.elapsed() < Duration::from_secs(10), "the start waited {:?} for the network", began.elapsed());
    held.abort();
}

/// A lock a live attempt could outlast (a record makes up to 11 AWS calls between its
/// admission and its outcome, 2 more are allowed for, each up to HERALD_AWS_TIMEOUT_MS) is
/// refused at start, naming both settings; the same lock with shorter calls is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_function_refuses_a_lock_timeout_a_record_could_outlast() {
    let moto = Moto::start().await;
    let arn = create(&client(&moto).await, "UnsubscribeSecret", RING).await;
    let config = format!("{CONFIG}\n[idempotency]\nlock_timeout = \"20s\"\n");
    let mut vars = base_vars(&arn, &config);
    vars.push(("HERALD_AWS_TIMEOUT_MS", "2500"));
    let logs = start(moto.env(&moto.endpoint), &vars).await.init_error().await;
    assert!(logs.contains("idempotency.lock_timeout (20s) must be longer than one record may hold its lock"), "{logs}");
    assert!(logs.contains("13 AWS calls of up to 2500 ms each (HERALD_AWS_TIMEOUT_MS), 32.5 s in all"), "{logs}");
    assert!(logs.contains("Set lock_timeout to 33s or more"), "{logs}");

    vars.retain(|(k, _)| *k != "HERALD_AWS_TIMEOUT_MS");
    vars.push(("HERALD_AWS_TIMEOUT_MS", "1500"));
    let mut cold = start(moto.env(&moto.endpoint), &vars).await;
    assert!(cold.started().await, "13 calls of 1.5 s fit in a 20 s lock:\n{}", cold.function.logs());
}
