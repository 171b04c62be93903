//! The resilience suite's engine: a channel function's real binary, several execution
//! environments killed and respawned at random, on moto through a proxy that fails about
//! a fifth of the function's AWS calls, fed a thousand-odd mixed delivery requests; then
//! an account of what the provider actually accepted against what the receipts say.
//!
//! Channel-agnostic: what differs between channels (the request's template and
//! address, the provider call that sends, where its request id travels) is behind
//! [`Channel`]. A test per function supplies one and calls [`run`], then
//! [`Report::print`] and [`Report::assert_holds`].
//!
//! What is asserted (each a [`Check`] in the report):
//!
//! - the function accepts the suite's configuration, `[guarantee]` section included
//!   (when it does not, the suite says so, runs without that section and fails this check);
//! - the request queue drains;
//! - every receipt carries a `receipt_id`, and one id is never two different receipts;
//! - every distinct request body has exactly one terminal outcome after de-duplicating its
//!   receipts on `receipt_id` (a body enqueued twice is one request: the second message is
//!   a redelivery, not a new request);
//! - `duplicate` is the outcome only of a body whose id another body also carries, and of
//!   the bodies sharing an id at most one has another outcome;
//! - invalid bodies end `rejected`;
//! - no frequency cap is exceeded, counted in provider calls that took effect at moto;
//! - no request of an at-most-once category reached the provider twice;
//! - `sent` is reported only for a request the provider accepted, with its message id;
//! - nothing is lost: every request has its terminal receipt, those in the DLQ included;
//! - no receipt, delivered or only attempted (seen at the proxy), echoes a metadata value
//!   longer than a valid request may carry;
//! - the proxy's record of accepted sends is moto's own (a self-check of the harness).
//!
//! Printed besides: duplicate sends in at-least-once categories, what the DLQ holds,
//! fault and kill counts, outcome tallies, and the wall time.
//!
//! The event source polls moto directly, not through the proxy: the Lambda service's own
//! `ReceiveMessage` / `DeleteMessage` are not under test, only the function's calls are.
//! Each execution environment has its own Runtime API, as in Lambda, so a killed process's
//! invocation fails at once, and an environment whose invocation times out is stopped and
//! replaced, as Lambda does: a late invocation never runs beside its batch's redelivery.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use serde_json::{Value, json};

use crate::event_source::EventSource;
use crate::lambda::{FunctionProcess, RuntimeApi};
use crate::moto::Moto;
use crate::proxy::{Fault, FaultKind, Proxy, Recorded};
use crate::template::{Overrides, Template};

/// A future a [`Channel`] returns (object-safe, `Send` so the engine can hold it anywhere).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The receipts queue's logical id in `infra/template.yaml`: shared by every channel.
pub const RECEIPTS_QUEUE: &str = "ReceiptsQueue";

/// The metadata key that names a request body of the plan in its receipts (receipts echo
/// metadata verbatim), so two bodies reusing one request id stay apart.
pub const BODY_KEY: &str = "suite-body";

/// The longest metadata value a valid request may carry (`MAX_METADATA_VALUE` in
/// `shared/src/request/mod.rs`): a receipt echoing a longer one carries unvalidated input.
pub const MAX_METADATA_VALUE: usize = 1024;

/// What differs between channel functions.
pub trait Channel: Send + Sync {
    /// The function's logical id in `infra/template.yaml` (its queues, table, environment).
    fn function(&self) -> &'static str;
    /// The function's compiled binary.
    fn binary(&self) -> PathBuf;
    /// The channel's own sections of herald.toml (`[email]`...); the engine adds caps,
    /// idempotency and guarantees.
    fn config(&self) -> String;
    /// Environment the function needs besides the template's and the configuration
    /// (secrets, for instance).
    fn env(&self) -> Vec<(String, String)>;
    /// Makes moto accept this channel's sends (a verified SES identity...).
    fn prepare<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, ()>;
    /// The address of recipient number `n`, distinct per `n`.
    fn address(&self, n: usize) -> String;
    /// An address the function must refuse.
    fn invalid_address(&self) -> String;
    /// A valid request of `category` to `address`, with this channel's template and data.
    fn request(&self, id: &str, recipient: &str, address: &str, category: &str) -> Value;
    /// The provider call that sends a message, as the proxy names it (`("sesv2", "SendEmail")`).
    fn send_operation(&self) -> (&'static str, &'static str);
    /// The herald request id a provider call carries (SES: the `herald-request-id` tag).
    fn sent_request_id(&self, call: &Value) -> Option<String>;
    /// The address a provider call went to.
    fn sent_address(&self, call: &Value) -> Option<String>;
    /// The provider's message id in its answer to a send.
    fn sent_message_id(&self, answer: &Value) -> Option<String>;
    /// The ids of the messages moto stored for this channel.
    fn provider_messages<'a>(&'a self, moto: &'a Moto) -> BoxFuture<'a, Vec<String>>;
    /// Makes the planned addresses exist once moto runs (SNS platform endpoints, whose
    /// ARNs moto mints). Default: nothing to make.
    fn provision<'a>(&'a self, _moto: &'a Moto, _addresses: Vec<String>) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The text enqueued for a planned body, after [`Channel::provision`] (planned
    /// addresses replaced by real ones). Default: as planned.
    fn enqueued_text(&self, planned: &str) -> String {
        planned.to_owned()
    }
}

// ------------------------------------------------------------------ the scenario

/// What an unknown outcome (the provider may have sent it) does, per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    AtMostOnce,
    AtLeastOnce,
}

impl Guarantee {
    pub fn as_str(self) -> &'static str {
        match self {
            Guarantee::AtMostOnce => "at_most_once",
            Guarantee::AtLeastOnce => "at_least_once",
        }
    }
}

/// The delivery guarantee of each category: the suite's expectations, and the
/// `[guarantee]` section of the function's configuration.
#[derive(Debug, Clone)]
pub struct Guarantees {
    pub default: Guarantee,
    pub categories: Vec<(String, Guarantee)>,
}

impl Guarantees {
    pub fn of(&self, category: &str) -> Guarantee {
        self.categories.iter().find(|(c, _)| c == category).map_or(self.default, |(_, g)| *g)
    }

    /// The `[guarantee]` section of herald.toml. The one place that spells it: adjust it
    /// here if the core's configuration names it differently.
    pub fn toml(&self) -> String {
        let mut out = format!("[guarantee]\ndefault = \"{}\"\n", self.default.as_str());
        for (category, guarantee) in &self.categories {
            out.push_str(&format!("{category} = \"{}\"\n", guarantee.as_str()));
        }
        out
    }
}

/// A frequency cap of the configuration (the run is far shorter than any window, so
/// every send of the run counts against it).
#[derive(Debug, Clone)]
pub struct Cap {
    pub category: String,
    pub limit: usize,
    pub window: String,
}

/// The request mix. Categories: [`Scenario::capped_category`], [`Scenario::open_category`]
/// (at most once by default, no cap) and `transactional`.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Recipients sharing the capped category's cap, and requests of that category each.
    pub capped_recipients: usize,
    pub capped_per_recipient: usize,
    /// Requests of the uncapped category, spread over this many recipients.
    pub open: usize,
    pub open_recipients: usize,
    /// Transactional requests, to this many recipients of their own and to the capped
    /// recipients (transactional mail is never capped).
    pub transactional: usize,
    pub transactional_recipients: usize,
    /// Valid requests enqueued a second time, byte for byte.
    pub same_body_twice: usize,
    /// Extra bodies reusing another request's id, with different content.
    pub reused_ids: usize,
    /// Valid requests with `send_after` a few seconds after they are enqueued.
    pub deferred: usize,
    pub not_json: usize,
    pub missing_fields: usize,
    pub unknown_template: usize,
    pub invalid_address: usize,
    /// Requests with a metadata value far over the request limit, enqueued back to back
    /// before the function starts polling, so they arrive in one batch as a burst would.
    pub huge_metadata: usize,
    /// Size of that metadata value, in bytes.
    pub huge_metadata_bytes: usize,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    /// Seeds the request mix, the fault draws and the kills (`HERALD_RESILIENCE_SEED`
    /// overrides it, to replay a run).
    pub seed: u64,
    pub mix: Mix,
    pub capped_category: String,
    pub open_category: String,
    pub caps: Vec<Cap>,
    pub guarantees: Guarantees,
    /// Share of the function's calls to each AWS operation that fail (0 to 1).
    pub fault_share: f64,
    /// Execution environments (function processes) running at once.
    pub processes: usize,
    /// Every this long (drawn between the two), one process is killed and a fresh one started.
    pub kill_every: (Duration, Duration),
    /// `HERALD_AWS_TIMEOUT_MS`: the function's timeout per AWS operation. Stalls are a little
    /// longer, so each costs about this much.
    pub aws_timeout: Duration,
    /// Visibility timeout of the queues, seconds: a killed invocation's batch returns after it.
    pub visibility_timeout: u32,
    /// The Lambda timeout: how long the event source waits for an invocation (and the
    /// deadline the function is given).
    pub invoke_timeout: Duration,
    /// `[idempotency] lock_timeout`: above the Lambda timeout, so a live attempt keeps its lock.
    pub lock_timeout: String,
    /// Requests are enqueued in this many waves, this far apart.
    pub waves: usize,
    pub wave_interval: Duration,
    /// The run stops (and fails `drained`) if the queue has not drained by then.
    pub max_run: Duration,
}

impl Scenario {
    /// The CI-sized run: 1,013 distinct bodies (1,053 messages), 3 processes, a kill every
    /// 2 to 5 s, 20% of AWS calls failing, `at_least_once` only for `transactional`.
    pub fn standard() -> Scenario {
        let seed = std::env::var("HERALD_RESILIENCE_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_129);
        Scenario {
            seed,
            mix: Mix {
                capped_recipients: 40,
                capped_per_recipient: 12,
                open: 150,
                open_recipients: 50,
                transactional: 320,
                transactional_recipients: 80,
                same_body_twice: 40,
                reused_ids: 20,
                deferred: 60,
                not_json: 10,
                missing_fields: 10,
                unknown_template: 10,
                invalid_address: 10,
                huge_metadata: 3,
                huge_metadata_bytes: 400_000,
            },
            capped_category: "marketing".to_owned(),
            open_category: "product-updates".to_owned(),
            caps: vec![Cap { category: "marketing".to_owned(), limit: 3, window: "24h".to_owned() }],
            guarantees: Guarantees {
                default: Guarantee::AtMostOnce,
                categories: vec![("transactional".to_owned(), Guarantee::AtLeastOnce)],
            },
            fault_share: 0.2,
            processes: 3,
            kill_every: (Duration::from_secs(2), Duration::from_secs(5)),
            aws_timeout: Duration::from_millis(500),
            visibility_timeout: 10,
            // A record's 11 calls and the receipts' 3, at 500 ms each, fit.
            invoke_timeout: Duration::from_secs(8),
            lock_timeout: "10s".to_owned(),
            waves: 10,
            wave_interval: Duration::from_secs(2),
            max_run: Duration::from_secs(300),
        }
    }

    /// herald.toml for the function: the channel's sections, idempotency, caps and, unless
    /// `with_guarantees` is false, the `[guarantee]` section.
    pub fn config(&self, channel: &dyn Channel, with_guarantees: bool) -> String {
        let mut out = channel.config();
        out.push_str(&format!("\n[idempotency]\nlock_timeout = \"{}\"\nretention = \"1d\"\n", self.lock_timeout));
        for cap in &self.caps {
            out.push_str(&format!(
                "\n[[caps]]\ncategory = \"{}\"\nlimit = {}\nwindow = \"{}\"\n",
                cap.category, cap.limit, cap.window
            ));
        }
        if with_guarantees {
            out.push('\n');
            out.push_str(&self.guarantees.toml());
        }
        out
    }

    /// The fault rules for the function's calls: DynamoDB (all), SQS `SendMessage`
    /// (deferrals) and `SendMessageBatch` (receipts), and the provider send, which alone
    /// also loses answers. Delays outlast the function's AWS timeout.
    pub fn faults(&self, channel: &dyn Channel) -> Vec<Fault> {
        let late = self.aws_timeout + Duration::from_millis(200);
        // Delays cost wall time: drawn half as often as the instant faults.
        let common = vec![
            (FaultKind::Throttle, 1.0),
            (FaultKind::ServerError, 1.0),
            (FaultKind::Reset, 1.0),
            (FaultKind::Timeout(late), 0.5),
            (FaultKind::StallAfterForward(late), 0.5),
        ];
        let mut send = common.clone();
        send.push((FaultKind::LostResponse, 1.0));
        let (send_service, send_operation) = channel.send_operation();
        let targets = [
            ("dynamodb", "*", &common),
            ("sqs", "SendMessage", &common),
            ("sqs", "SendMessageBatch", &common),
            (send_service, send_operation, &send),
        ];
        let mut rules = Vec::new();
        for (service, operation, kinds) in targets {
            let total: f64 = kinds.iter().map(|(_, w)| w).sum();
            // The proxy tries rules in order and a later rule only sees what earlier ones
            // let through: scale each share so the overall rate is `fault_share`.
            let mut taken = 0.0;
            for (kind, weight) in kinds {
                let effective = self.fault_share * weight / total;
                rules.push(Fault::sometimes(service, operation, *kind, effective / (1.0 - taken)));
                taken += effective;
            }
        }
        rules
    }
}

// ------------------------------------------------------------------ the plan

/// What a body is, for what it should end as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Valid,
    NotJson,
    MissingFields,
    UnknownTemplate,
    InvalidAddress,
    HugeMetadata,
}

impl Kind {
    pub fn is_invalid(self) -> bool {
        self != Kind::Valid
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Valid => "valid",
            Kind::NotJson => "not JSON",
            Kind::MissingFields => "missing fields",
            Kind::UnknownTemplate => "unknown template",
            Kind::InvalidAddress => "invalid address",
            Kind::HugeMetadata => "huge metadata",
        }
    }
}

/// One distinct request body of the run.
#[derive(Debug, Clone)]
pub struct Body {
    pub index: usize,
    pub kind: Kind,
    /// The JSON (before `send_after` is filled in, for deferred ones); `Null` when not JSON.
    pub value: Value,
    /// The exact text enqueued (set when the plan is laid out in time).
    pub text: String,
    pub request_id: Option<String>,
    pub category: Option<String>,
    pub address: Option<String>,
    /// How many messages carry it (2: enqueued twice, byte for byte).
    pub copies: usize,
    pub deferred: bool,
    /// Another body carries the same request id.
    pub shares_id: bool,
}

impl Body {
    fn describe(&self) -> String {
        let mut s = format!("#{} {}", self.index, self.request_id.as_deref().unwrap_or("<no id>"));
        if let Some(c) = &self.category {
            s.push_str(&format!(" [{c}]"));
        }
        if self.kind.is_invalid() {
            s.push_str(&format!(" ({})", self.kind.label()));
        }
        if self.copies > 1 {
            s.push_str(" (enqueued twice)");
        }
        if self.shares_id {
            s.push_str(" (id reused)");
        }
        if self.deferred {
            s.push_str(" (send_after)");
        }
        s
    }
}

/// The bodies and when each message is enqueued.
#[derive(Debug, Clone)]
pub struct Plan {
    pub bodies: Vec<Body>,
    /// Per wave, the body indexes to enqueue, in order (a body enqueued twice appears twice).
    pub waves: Vec<Vec<usize>>,
}

impl Plan {
    /// Lays out the scenario's mix; `start_ms` (Unix milliseconds) anchors `send_after`.
    pub fn new(channel: &dyn Channel, scenario: &Scenario, start_ms: u64) -> Plan {
        let mix = &scenario.mix;
        let mut rng = Rng::new(scenario.seed);
        let mut bodies: Vec<Body> = Vec::new();
        let valid = |bodies: &mut Vec<Body>, id: String, recipient: String, address: String, category: &str| {
            let value = channel.request(&id, &recipient, &address, category);
            add(bodies, Kind::Valid, value, Some(id), Some(category), Some(address));
        };

        let capped = scenario.capped_category.as_str();
        for r in 0..mix.capped_recipients {
            for k in 0..mix.capped_per_recipient {
                valid(&mut bodies, format!("cap-{r:02}-{k:02}"), format!("cap-{r:02}"), channel.address(r), capped);
            }
        }
        let open = scenario.open_category.as_str();
        for k in 0..mix.open {
            let r = rng.below(mix.open_recipients.max(1));
            valid(&mut bodies, format!("open-{k:04}"), format!("open-{r:02}"), channel.address(10_000 + r), open);
        }
        for k in 0..mix.transactional {
            // A third to the capped recipients: their transactional mail must not count
            // against (or be held by) the marketing cap.
            let (recipient, address) = if mix.capped_recipients > 0 && rng.below(3) == 0 {
                let r = rng.below(mix.capped_recipients);
                (format!("cap-{r:02}"), channel.address(r))
            } else {
                let r = rng.below(mix.transactional_recipients.max(1));
                (format!("tx-{r:02}"), channel.address(20_000 + r))
            };
            valid(&mut bodies, format!("tx-{k:04}"), recipient, address, "transactional");
        }
        let originals = bodies.len();

        // Different bodies reusing an id: same id, category and recipient, other content.
        for j in 0..mix.reused_ids {
            let of = rng.below(originals);
            if bodies[of].shares_id {
                continue;
            }
            bodies[of].shares_id = true;
            let mut value = bodies[of].value.clone();
            value["data"]["variant"] = json!(j);
            let (id, category, address) =
                (bodies[of].request_id.clone(), bodies[of].category.clone(), bodies[of].address.clone());
            add(&mut bodies, Kind::Valid, value, id, category.as_deref(), address);
            if let Some(last) = bodies.last_mut() {
                last.shares_id = true;
            }
        }
        for _ in 0..mix.deferred {
            let i = rng.below(originals);
            bodies[i].deferred = true;
        }
        for _ in 0..mix.same_body_twice {
            let i = rng.below(originals);
            bodies[i].copies = 2;
        }

        // Invalid bodies.
        for j in 0..mix.not_json {
            let index = bodies.len();
            bodies.push(Body {
                index,
                kind: Kind::NotJson,
                value: Value::Null,
                text: format!("{{\"id\": \"not-json-{j}\", \"channel\": <{j}>"),
                request_id: None,
                category: None,
                address: None,
                copies: 1,
                deferred: false,
                shares_id: false,
            });
        }
        for j in 0..mix.missing_fields {
            let id = format!("bad-missing-{j:02}");
            let mut value = channel.request(&id, "bad", &channel.address(30_000 + j), "transactional");
            let field = if j % 2 == 0 { "recipient" } else { "template" };
            if let Some(obj) = value.as_object_mut() {
                obj.remove(field);
            }
            add(&mut bodies, Kind::MissingFields, value, Some(id), Some("transactional"), None);
        }
        for j in 0..mix.unknown_template {
            let id = format!("bad-template-{j:02}");
            let mut value = channel.request(&id, "bad", &channel.address(30_100 + j), "transactional");
            value["template"] = json!(format!("no-such-template-{j}"));
            add(&mut bodies, Kind::UnknownTemplate, value, Some(id), Some("transactional"), None);
        }
        for j in 0..mix.invalid_address {
            let id = format!("bad-address-{j:02}");
            let value = channel.request(&id, "bad", &channel.invalid_address(), "transactional");
            add(&mut bodies, Kind::InvalidAddress, value, Some(id), Some("transactional"), None);
        }
        let mut huge = Vec::new();
        for j in 0..mix.huge_metadata {
            let id = format!("bad-huge-{j:02}");
            let mut value = channel.request(&id, "bad", &channel.address(30_200 + j), "transactional");
            value["metadata"] = json!({ "note": "x".repeat(mix.huge_metadata_bytes) });
            huge.push(bodies.len());
            add(&mut bodies, Kind::HugeMetadata, value, Some(id), Some("transactional"), None);
        }

        // Waves: the huge bodies first in the first wave, back to back; the rest shuffled.
        let waves = scenario.waves.max(1);
        let mut plan: Vec<Vec<usize>> = vec![Vec::new(); waves];
        for body in &bodies {
            if body.kind == Kind::HugeMetadata {
                continue;
            }
            let first = rng.below(waves);
            plan[first].push(body.index);
            if body.copies > 1 {
                let again = first + rng.below(waves - first);
                plan[again].push(body.index);
            }
        }
        for wave in &mut plan {
            rng.shuffle(wave);
        }
        plan[0].splice(0..0, huge);

        // Texts: deferred bodies get `send_after` a few seconds after their wave goes out.
        let first_wave_of = |index: usize| plan.iter().position(|w| w.contains(&index)).unwrap_or(0);
        for body in bodies.iter_mut().filter(|b| b.kind != Kind::NotJson) {
            if body.deferred {
                let wave_ms = first_wave_of(body.index) as u64 * scenario.wave_interval.as_millis() as u64;
                let ahead = 4_000 + rng.below(8_000) as u64;
                body.value["send_after"] = json!(rfc3339(start_ms + wave_ms + ahead));
            }
            body.text = body.value.to_string();
        }
        Plan { bodies, waves: plan }
    }

    pub fn messages(&self) -> usize {
        self.waves.iter().map(Vec::len).sum()
    }
}

/// Adds a JSON body to the plan, naming it in its metadata ([`BODY_KEY`]).
fn add(
    bodies: &mut Vec<Body>,
    kind: Kind,
    mut value: Value,
    request_id: Option<String>,
    category: Option<&str>,
    address: Option<String>,
) {
    let index = bodies.len();
    if let Some(obj) = value.as_object_mut() {
        let meta = obj.entry("metadata").or_insert_with(|| json!({}));
        meta[BODY_KEY] = Value::String(index.to_string());
    }
    bodies.push(Body {
        index,
        kind,
        value,
        text: String::new(),
        request_id,
        category: category.map(str::to_owned),
        address,
        copies: 1,
        deferred: false,
        shares_id: false,
    });
}

// ------------------------------------------------------------------ the run

/// What [`run`] observed, before judging it.
struct Observed {
    wall: Duration,
    config_rejected: Option<String>,
    drained: bool,
    backlog_left: usize,
    kills: usize,
    timeouts: usize,
    invocations: usize,
    failed_invocations: usize,
    reported_failures: usize,
    receipts: Vec<(Value, usize)>,
    /// Receipts the function tried to put on the receipts queue (the proxy's record of its
    /// `SendMessage(Batch)` calls there), delivered or not.
    attempted_receipts: Vec<(Value, usize)>,
    dlq: Vec<String>,
    records: Vec<Recorded>,
    provider_messages: Vec<String>,
    panics: usize,
}

/// Runs the scenario against the channel's function and judges the outcome.
pub async fn run(channel: &dyn Channel, scenario: &Scenario) -> Report {
    // A live attempt must keep its lock for the whole invocation, as the template's
    // timeouts make sure (`template_agrees`): else a takeover runs beside it and the two
    // report different outcomes for one request.
    let lock_secs: u64 =
        scenario.lock_timeout.trim_end_matches('s').parse().expect("lock_timeout in whole seconds, `<n>s`");
    assert!(
        Duration::from_secs(lock_secs) > scenario.invoke_timeout,
        "the scenario's lock ({lock_secs} s) must outlast its invocation timeout ({:?})",
        scenario.invoke_timeout
    );
    let started = Instant::now();
    let start_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let mut plan = Plan::new(channel, scenario, start_ms);

    let moto = Moto::start().await;
    let proxy = Proxy::start(&moto.endpoint).await;
    proxy.set_seed(scenario.seed);
    let sdk = moto.sdk_config(&moto.endpoint).await;
    // The harness's own client goes to moto directly: enqueueing, the event source and
    // reading receipts are not the function's calls and get no faults.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let template = Template::repo();
    let overrides = Overrides { visibility_timeout: Some(scenario.visibility_timeout) };
    let deployed = template.create_resources(&sdk, &overrides).await;
    let function = channel.function();
    let request_queue_id = template.event_queue(function);
    let request_queue = deployed.queue_url(request_queue_id).to_owned();
    let dlq_id =
        template.dead_letter_queue(request_queue_id).unwrap_or_else(|| panic!("{request_queue_id} has no DLQ"));
    let dlq = deployed.queue_url(dlq_id).to_owned();
    let receipts_queue = deployed.queue_url(RECEIPTS_QUEUE).to_owned();
    channel.prepare(&moto).await;
    let mut addresses: Vec<String> = plan.bodies.iter().filter_map(|b| b.address.clone()).collect();
    addresses.sort_unstable();
    addresses.dedup();
    channel.provision(&moto, addresses).await;
    for body in &mut plan.bodies {
        body.text = channel.enqueued_text(&body.text);
    }

    let base_env = {
        let mut vars = template.resolved_env(function, &deployed);
        vars.insert("HERALD_AWS_TIMEOUT_MS".to_owned(), scenario.aws_timeout.as_millis().to_string());
        vars.extend(channel.env());
        vars.insert("HERALD_CONFIG_TOML".to_owned(), String::new());
        for name in template.unresolved_env(function, &deployed) {
            assert!(
                vars.contains_key(&name),
                "the template sets {name}: the channel must give the suite a value for it"
            );
        }
        let mut env = moto.env(&proxy.endpoint());
        env.extend(vars);
        env
    };
    let env_with = |config: String| -> Vec<(String, String)> {
        base_env
            .iter()
            .map(|(k, v)| (k.clone(), if k == "HERALD_CONFIG_TOML" { config.clone() } else { v.clone() }))
            .collect()
    };

    // One Runtime API per execution environment, as in Lambda: a killed process's
    // invocation then fails at once (`Runtime.ExitError`) instead of at the timeout.
    let mut runtimes = Vec::new();
    for _ in 0..scenario.processes.max(1) {
        let runtime = Arc::new(RuntimeApi::start().await);
        runtime.set_deadline(scenario.invoke_timeout);
        runtimes.push(runtime);
    }
    let runtimes = Arc::new(runtimes);
    // Kept on purpose (deleted by a passing `assert_holds`): after a failure, or a panic
    // mid-run, the processes' logs are what explains it.
    let logs =
        tempfile::Builder::new().prefix("herald-resilience-").tempdir().expect("temp dir for function logs").keep();
    println!("resilience: function logs in {}", logs.display());
    let bin = channel.binary();

    // Does the function take the suite's configuration? If not, say so and go on without
    // the `[guarantee]` section, so the rest of the run still reports.
    let mut env = env_with(scenario.config(channel, true));
    let mut config_rejected = None;
    let processes = match start_processes(&bin, &runtimes, &env, &logs).await {
        Ok(p) => p,
        Err(log) => {
            let why = log.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").to_owned();
            println!(
                "resilience: the function refused the suite's configuration; running without the [guarantee] section.\n  {why}"
            );
            config_rejected = Some(why);
            env = env_with(scenario.config(channel, false));
            match start_processes(&bin, &runtimes, &env, &logs).await {
                Ok(p) => p,
                Err(log) => panic!("the function does not start even without the [guarantee] section:\n{log}"),
            }
        }
    };
    let processes = Arc::new(Mutex::new(processes));
    for rule in scenario.faults(channel) {
        proxy.inject(rule);
    }

    let mut source = EventSource::new(sqs.clone(), &request_queue).await;
    source.invoke_timeout = scenario.invoke_timeout;
    let source = Arc::new(source);
    let stop = Arc::new(AtomicBool::new(false));

    // The first wave goes out before anyone polls: its burst of huge bodies arrives together.
    enqueue(&sqs, &request_queue, &plan, 0).await;
    let enqueued = Arc::new(AtomicUsize::new(1));
    let feeder = {
        let (sqs, url, plan, enqueued) = (sqs.clone(), request_queue.clone(), plan.clone(), enqueued.clone());
        let interval = scenario.wave_interval;
        tokio::spawn(async move {
            for wave in 1..plan.waves.len() {
                tokio::time::sleep(interval).await;
                enqueue(&sqs, &url, &plan, wave).await;
                enqueued.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let timeouts = Arc::new(AtomicUsize::new(0));
    let pollers: Vec<_> = (0..runtimes.len())
        .map(|i| {
            let (source, runtimes, stop, processes) =
                (source.clone(), runtimes.clone(), stop.clone(), processes.clone());
            let (bin, env, logs, timeouts) = (bin.clone(), env.clone(), logs.clone(), timeouts.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    if source.poll(&runtimes[i], 1).await.timed_out {
                        // Lambda stops an environment whose invocation timed out: the late
                        // invocation must not go on beside the batch's redelivery.
                        let mut running = lock(&processes);
                        running[i].kill();
                        running[i] = FunctionProcess::spawn(&bin, &runtimes[i], &env, &logs);
                        timeouts.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    let chaos = {
        let (processes, stop, runtimes, bin, env) =
            (processes.clone(), stop.clone(), runtimes.clone(), bin.clone(), env.clone());
        let logs = logs.clone();
        let (min, max) = scenario.kill_every;
        let mut rng = Rng::new(scenario.seed ^ 0x4b49_4c4c);
        tokio::spawn(async move {
            let mut kills = 0;
            loop {
                let wait = min + Duration::from_millis(rng.below((max - min).as_millis() as usize + 1) as u64);
                let until = Instant::now() + wait;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                if stop.load(Ordering::SeqCst) {
                    return kills;
                }
                let mut running = lock(&processes);
                let victim = rng.below(running.len());
                running[victim].kill();
                runtimes[victim].fail_taken(json!({
                    "errorType": "Runtime.ExitError",
                    "errorMessage": "killed by the resilience suite",
                }));
                // A new execution environment takes its place, as Lambda would start one.
                running[victim] = FunctionProcess::spawn(&bin, &runtimes[victim], &env, &logs);
                kills += 1;
            }
        })
    };

    // Drained: every wave out, and the queue empty (visible, in flight, delayed) twice in a row.
    let deadline = started + scenario.max_run;
    let mut quiet = 0;
    let mut last_progress = Instant::now();
    let mut backlog_left;
    let drained = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        backlog_left = source.backlog().await;
        let all_out = enqueued.load(Ordering::SeqCst) >= plan.waves.len();
        quiet = if all_out && backlog_left == 0 { quiet + 1 } else { 0 };
        if quiet >= 2 {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        if last_progress.elapsed() >= Duration::from_secs(15) {
            last_progress = Instant::now();
            let receipts_so_far = queue_depth(&sqs, &receipts_queue).await;
            println!(
                "resilience: {:>4.0} s, request queue {backlog_left}, receipts {receipts_so_far}, provider sends {}",
                started.elapsed().as_secs_f64(),
                proxy.accepted(channel.send_operation().0, channel.send_operation().1).len()
            );
        }
    };
    stop.store(true, Ordering::SeqCst);
    feeder.abort();
    for poller in pollers {
        // A poller ends after its current invocation, within the Lambda timeout.
        let _ = poller.await;
    }
    let kills = chaos.await.unwrap_or(0);
    for process in lock(&processes).iter_mut() {
        process.kill();
    }

    let receipts = drain_queue(&sqs, &receipts_queue)
        .await
        .into_iter()
        .map(|text| (serde_json::from_str(&text).unwrap_or_else(|_| json!({ "unparseable": text })), text.len()))
        .collect();
    let dlq = drain_queue(&sqs, &dlq).await;
    let records = proxy.records();
    let attempted_receipts = records
        .iter()
        .filter(|r| r.service == "sqs" && r.body["QueueUrl"] == receipts_queue.as_str())
        .flat_map(|r| match r.body["Entries"].as_array() {
            Some(entries) => entries.iter().map(|e| e["MessageBody"].clone()).collect(),
            None => vec![r.body["MessageBody"].clone()],
        })
        .filter_map(|b| b.as_str().map(|t| (serde_json::from_str(t).unwrap_or(Value::Null), t.len())))
        .collect();
    let provider_messages = channel.provider_messages(&moto).await;
    let stats = source.stats();
    let observed = Observed {
        wall: started.elapsed(),
        config_rejected,
        drained,
        backlog_left,
        kills,
        timeouts: timeouts.load(Ordering::SeqCst),
        invocations: stats.invocations.load(Ordering::SeqCst),
        failed_invocations: stats.failed_invocations.load(Ordering::SeqCst),
        reported_failures: stats.reported_failures.load(Ordering::SeqCst),
        receipts,
        attempted_receipts,
        dlq,
        records,
        provider_messages,
        panics: count_panics(&logs),
    };
    let mut report = judge(channel, scenario, &plan, &observed);
    report.logs = Some(logs);
    report
}

/// Starts a process per Runtime API and waits until each asks for work (or one exits:
/// its log is the error).
async fn start_processes(
    bin: &std::path::Path,
    runtimes: &[Arc<RuntimeApi>],
    env: &[(String, String)],
    log_dir: &std::path::Path,
) -> Result<Vec<FunctionProcess>, String> {
    let before: Vec<usize> = runtimes.iter().map(|r| r.next_calls().len()).collect();
    let mut processes: Vec<FunctionProcess> =
        runtimes.iter().map(|runtime| FunctionProcess::spawn(bin, runtime, env, log_dir)).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(i) = (0..processes.len()).find(|&i| processes[i].exited().is_some()) {
            let log = processes[i].logs();
            for p in &mut processes {
                p.kill();
            }
            return Err(log);
        }
        if runtimes.iter().zip(&before).all(|(r, n)| r.next_calls().len() > *n) {
            return Ok(processes);
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = processes.iter().map(FunctionProcess::logs).collect();
            return Err(format!("the function did not ask for work within 30 s:\n{}", logs.join("\n")));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Enqueues one wave: small bodies ten to a `SendMessageBatch`, large ones one by one
/// (a batch is limited to 1 MiB in total).
async fn enqueue(sqs: &aws_sdk_sqs::Client, url: &str, plan: &Plan, wave: usize) {
    let mut batch: Vec<&str> = Vec::new();
    for &index in &plan.waves[wave] {
        let text = plan.bodies[index].text.as_str();
        if text.len() > 64 * 1024 {
            sqs.send_message()
                .queue_url(url)
                .message_body(text)
                .send()
                .await
                .unwrap_or_else(|e| panic!("SendMessage of body #{index}: {e:?}"));
            continue;
        }
        batch.push(text);
        if batch.len() == 10 {
            send_batch(sqs, url, &batch).await;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        send_batch(sqs, url, &batch).await;
    }
}

async fn send_batch(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[&str]) {
    let entries = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(*b).build())
        .collect::<Result<Vec<_>, _>>()
        .expect("batch entries");
    let out = sqs
        .send_message_batch()
        .queue_url(url)
        .set_entries(Some(entries))
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendMessageBatch: {e:?}"));
    assert!(out.failed().is_empty(), "moto refused requests: {:?}", out.failed());
}

/// Every message body on a queue, read and deleted.
async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut empty = 0;
    // moto can answer empty while messages are visible only in a race with its own
    // bookkeeping; two empty answers in a row end it.
    while empty < 2 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage {url}: {e:?}"));
        if got.messages().is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let mut entries = Vec::new();
        for (i, m) in got.messages().iter().enumerate() {
            out.push(m.body().unwrap_or_default().to_owned());
            if let Ok(entry) = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
            {
                entries.push(entry);
            }
        }
        sqs.delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap_or_else(|e| panic!("DeleteMessageBatch {url}: {e:?}"));
    }
    out
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await;
    out.ok().and_then(|o| o.attributes().map(|a| a.values().filter_map(|v| v.parse::<usize>().ok()).sum())).unwrap_or(0)
}

fn count_panics(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().matches("panicked at").count())
        .sum()
}

// ------------------------------------------------------------------ judging

/// One assertion of the suite and what was found.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    /// What must hold, in a sentence.
    pub claim: &'static str,
    pub holds: bool,
    /// Counts and examples; empty when it holds.
    pub detail: String,
}

/// The outcome of a run: a printed summary and the checks.
#[derive(Debug)]
pub struct Report {
    pub summary: String,
    pub checks: Vec<Check>,
    pub wall: Duration,
    /// The function processes' logs.
    pub logs: Option<PathBuf>,
}

impl Report {
    /// Prints the summary and every check.
    pub fn print(&self) {
        println!("{}", self.summary);
        println!("checks:");
        for c in &self.checks {
            println!("  [{}] {}: {}", if c.holds { "ok" } else { "FAILED" }, c.name, c.claim);
            for line in c.detail.lines() {
                println!("         {line}");
            }
        }
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.holds).collect()
    }

    /// Panics naming every check that failed; the function logs are then kept (their folder
    /// is printed) for a look at what the processes did. When all hold, they are deleted.
    pub fn assert_holds(self) {
        let failed: Vec<String> = self.failed().iter().map(|c| c.name.to_owned()).collect();
        if failed.is_empty() {
            if let Some(dir) = &self.logs {
                // Only disk space is at stake if this fails.
                let _ = std::fs::remove_dir_all(dir);
            }
            return;
        }
        if let Some(dir) = &self.logs {
            println!("function logs kept in {}", dir.display());
        }
        panic!("{} of {} resilience checks failed: {}", failed.len(), self.checks.len(), failed.join(", "));
    }
}

/// Examples in a check's detail: at most this many.
const EXAMPLES: usize = 8;

fn examples(items: &[String]) -> String {
    let mut out: Vec<String> = items.iter().take(EXAMPLES).map(|s| format!("  {s}")).collect();
    if items.len() > EXAMPLES {
        out.push(format!("  ... and {} more", items.len() - EXAMPLES));
    }
    out.join("\n")
}

fn check(name: &'static str, claim: &'static str, problems: Vec<String>, headline: String) -> Check {
    let holds = problems.is_empty();
    let detail = if holds { String::new() } else { format!("{headline}\n{}", examples(&problems)) };
    Check { name, claim, holds, detail }
}

/// A receipt as read back.
struct Seen<'a> {
    value: &'a Value,
    status: &'a str,
    receipt_id: Option<&'a str>,
}

/// What the run's receipts and provider calls say, per body and per request id: worked out
/// once, then read by each check and by the summary.
struct Ledger<'a> {
    channel: &'a dyn Channel,
    scenario: &'a Scenario,
    plan: &'a Plan,
    o: &'a Observed,
    /// Request id -> the bodies carrying it.
    ids: HashMap<&'a str, Vec<usize>>,
    /// Every receipt read from the receipts queue.
    seen: Vec<Seen<'a>>,
    /// Per body, its receipts (indexes into `seen`).
    per_body: Vec<Vec<usize>>,
    /// Receipts without a request id: those of the bodies that are not JSON.
    anonymous: Vec<usize>,
    /// Receipts naming a request id no body of the run carries.
    unmatched: Vec<String>,
    /// Per body, the statuses of its distinct terminal receipts.
    outcomes: Vec<Vec<String>>,
    /// The same for the anonymous receipts.
    anonymous_outcomes: Vec<String>,
    /// Provider sends that took effect at moto.
    accepted: Vec<&'a Recorded>,
    /// Request id -> sends that took effect.
    sends_per_id: BTreeMap<String, usize>,
    /// Sends that took effect without a request id.
    unattributed: usize,
}

impl<'a> Ledger<'a> {
    fn new(channel: &'a dyn Channel, scenario: &'a Scenario, plan: &'a Plan, o: &'a Observed) -> Ledger<'a> {
        let mut ids: HashMap<&str, Vec<usize>> = HashMap::new();
        for b in &plan.bodies {
            if let Some(id) = &b.request_id {
                ids.entry(id.as_str()).or_default().push(b.index);
            }
        }
        let (send_service, send_operation) = channel.send_operation();
        let accepted: Vec<&Recorded> = o
            .records
            .iter()
            .filter(|r| r.service == send_service && r.operation == send_operation && r.accepted())
            .collect();
        let mut sends_per_id: BTreeMap<String, usize> = BTreeMap::new();
        let mut unattributed = 0;
        for r in &accepted {
            match channel.sent_request_id(&r.body) {
                Some(id) => *sends_per_id.entry(id).or_default() += 1,
                None => unattributed += 1,
            }
        }
        let mut ledger = Ledger {
            channel,
            scenario,
            plan,
            o,
            ids,
            seen: Vec::new(),
            per_body: vec![Vec::new(); plan.bodies.len()],
            anonymous: Vec::new(),
            unmatched: Vec::new(),
            outcomes: Vec::new(),
            anonymous_outcomes: Vec::new(),
            accepted,
            sends_per_id,
            unattributed,
        };
        for (value, _) in &o.receipts {
            let index = ledger.seen.len();
            match (ledger.body_of(value), value["request_id"].as_str()) {
                (Some(body), _) => ledger.per_body[body].push(index),
                (None, None) => ledger.anonymous.push(index),
                (None, Some(id)) => ledger.unmatched.push(format!("{id}: {}", value["status"].as_str().unwrap_or("?"))),
            }
            ledger.seen.push(Seen {
                value,
                status: value["status"].as_str().unwrap_or("<none>"),
                receipt_id: value["receipt_id"].as_str().filter(|s| !s.is_empty()),
            });
        }
        ledger.outcomes = ledger.per_body.iter().map(|group| ledger.terminal(group)).collect();
        ledger.anonymous_outcomes = ledger.terminal(&ledger.anonymous);
        ledger
    }

    fn bodies(&self) -> &'a [Body] {
        &self.plan.bodies
    }

    /// The body a receipt (or a queued message) is about: by the metadata it echoes, else by
    /// a request id only one body carries.
    fn body_of(&self, value: &Value) -> Option<usize> {
        let bodies = self.bodies();
        let by_meta =
            value["metadata"][BODY_KEY].as_str().and_then(|s| s.parse::<usize>().ok()).filter(|i| *i < bodies.len());
        by_meta.or_else(|| {
            let same = self.ids.get(value["request_id"].as_str()?)?;
            (same.len() == 1).then(|| same[0])
        })
    }

    fn category_of(&self, id: &str) -> Option<&'a str> {
        let bodies = self.bodies();
        self.ids.get(id).and_then(|v| v.first()).and_then(|&i| bodies[i].category.as_deref())
    }

    /// Receipts (indexes into `seen`) de-duplicated on `receipt_id`; receipts without one
    /// count each. Also returns the ids that name two different receipts.
    fn distinct(&self, group: &[usize]) -> (Vec<&Seen<'a>>, Vec<String>) {
        let mut by_id: BTreeMap<&str, &Seen> = BTreeMap::new();
        let mut out = Vec::new();
        let mut conflicts = Vec::new();
        for s in group.iter().map(|&i| &self.seen[i]) {
            match s.receipt_id {
                Some(id) => match by_id.get(id) {
                    Some(first) if first.status != s.status => {
                        conflicts.push(format!("receipt_id {id}: {} and {}", first.status, s.status))
                    }
                    Some(_) => {}
                    None => {
                        by_id.insert(id, s);
                        out.push(s);
                    }
                },
                None => out.push(s),
            }
        }
        (out, conflicts)
    }

    /// The statuses of a group's distinct terminal receipts.
    fn terminal(&self, group: &[usize]) -> Vec<String> {
        self.distinct(group).0.iter().filter(|s| s.status != "deferred").map(|s| s.status.to_owned()).collect()
    }

    fn not_json(&self) -> usize {
        self.bodies().iter().filter(|b| b.kind == Kind::NotJson).count()
    }

    /// Bodies (that are JSON) without a terminal receipt, and with several.
    fn terminal_counts(&self) -> (Vec<String>, Vec<String>) {
        let mut none = Vec::new();
        let mut several = Vec::new();
        for b in self.bodies().iter().filter(|b| b.kind != Kind::NotJson) {
            let all: Vec<&str> = self.per_body[b.index].iter().map(|&i| self.seen[i].status).collect();
            match self.outcomes[b.index].len() {
                0 => none.push(format!("{}: no terminal receipt (receipts: {all:?})", b.describe())),
                1 => {}
                _ => several.push(format!("{}: {all:?}", b.describe())),
            }
        }
        (none, several)
    }

    /// At-most-once requests sent more than once, and the extra sends (and requests) of the
    /// at-least-once ones; sends of ids the run never used are reported with the first.
    fn repeated_sends(&self) -> (Vec<String>, usize, usize) {
        let mut at_most_once = Vec::new();
        let (mut extra, mut requests) = (0, 0);
        for (id, n) in &self.sends_per_id {
            let Some(category) = self.category_of(id) else {
                at_most_once.push(format!("{id}: {n} sends of a request id the run never used"));
                continue;
            };
            if *n > 1 {
                match self.scenario.guarantees.of(category) {
                    Guarantee::AtMostOnce => at_most_once.push(format!("{id} [{category}]: sent {n} times")),
                    Guarantee::AtLeastOnce => {
                        extra += n - 1;
                        requests += 1;
                    }
                }
            }
        }
        (at_most_once, extra, requests)
    }

    /// What the DLQ holds, a line each, and whether that message's request has no terminal
    /// receipt (or is no body of the run at all).
    fn dlq(&self) -> Vec<(String, bool)> {
        let bodies = self.bodies();
        self.o
            .dlq
            .iter()
            .map(|text| {
                let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                match self.body_of(&value).or_else(|| bodies.iter().position(|b| b.text == *text)) {
                    Some(i) => (
                        format!("{}: terminal {:?}", bodies[i].describe(), self.outcomes[i]),
                        self.outcomes[i].is_empty(),
                    ),
                    None => {
                        (format!("a message of no known body: {}", text.chars().take(80).collect::<String>()), true)
                    }
                }
            })
            .collect()
    }

    // ------------------------------------------------------------------ the checks

    fn checks(&self) -> Vec<Check> {
        vec![
            self.config(),
            self.drained(),
            self.receipt_ids(),
            self.one_terminal_outcome(),
            self.duplicate_means_reused_id(),
            self.invalid_rejected(),
            self.caps(),
            self.at_most_once(),
            self.sent_means_accepted(),
            self.nothing_lost(),
            self.receipts_bounded(),
            self.harness_sees_every_send(),
        ]
    }

    fn config(&self) -> Check {
        Check {
            name: "config",
            claim: "the function accepts the suite's configuration, [guarantee] section included",
            holds: self.o.config_rejected.is_none(),
            detail: self
                .o
                .config_rejected
                .as_ref()
                .map(|why| format!("refused: {why}\nthe run went on without the [guarantee] section"))
                .unwrap_or_default(),
        }
    }

    fn drained(&self) -> Check {
        Check {
            name: "drained",
            claim: "the request queue drains within the run's time limit",
            holds: self.o.drained,
            detail: if self.o.drained {
                String::new()
            } else {
                format!(
                    "{} messages still queued after {:.0} s",
                    self.o.backlog_left,
                    self.scenario.max_run.as_secs_f64()
                )
            },
        }
    }

    fn receipt_ids(&self) -> Check {
        let without_id = self.seen.iter().filter(|s| s.receipt_id.is_none()).count();
        let mut conflicts = Vec::new();
        for group in self.per_body.iter().chain(std::iter::once(&self.anonymous)) {
            conflicts.extend(self.distinct(group).1);
        }
        let mut problems = conflicts.clone();
        if without_id > 0 {
            problems.insert(0, format!("{without_id} of {} receipts carry no receipt_id", self.seen.len()));
        }
        check(
            "receipt_ids",
            "every receipt carries a receipt_id, and one id is never two different receipts",
            problems,
            format!("{without_id} receipts without an id, {} ids naming two different receipts", conflicts.len()),
        )
    }

    fn one_terminal_outcome(&self) -> Check {
        let (none, several) = self.terminal_counts();
        let not_json = self.not_json();
        let mut problems: Vec<String> = none.iter().chain(&several).cloned().collect();
        if self.anonymous_outcomes.len() != not_json {
            problems.push(format!(
                "{not_json} bodies that are not JSON, {} terminal receipts without a request id: {:?}",
                self.anonymous_outcomes.len(),
                self.anonymous_outcomes
            ));
        }
        problems.extend(self.unmatched.iter().map(|u| format!("a receipt for no body of the run: {u}")));
        check(
            "one_terminal_outcome",
            "every distinct request body has exactly one terminal outcome (receipts de-duplicated on receipt_id)",
            problems,
            format!(
                "{} bodies without a terminal receipt, {} with several (of {} bodies)",
                none.len(),
                several.len(),
                self.bodies().len()
            ),
        )
    }

    fn duplicate_means_reused_id(&self) -> Check {
        let mut problems = Vec::new();
        for b in self.bodies() {
            if !b.shares_id && self.outcomes[b.index].iter().any(|s| s == "duplicate") {
                problems.push(format!("{}: {:?} but no other body has this id", b.describe(), self.outcomes[b.index]));
            }
        }
        let mut shared: Vec<(&str, &Vec<usize>)> =
            self.ids.iter().filter(|(_, v)| v.len() > 1).map(|(k, v)| (*k, v)).collect();
        shared.sort();
        for (id, indexes) in shared {
            let decided = indexes.iter().filter(|&&i| self.outcomes[i].iter().any(|s| s != "duplicate")).count();
            if decided > 1 {
                let all: Vec<&Vec<String>> = indexes.iter().map(|&i| &self.outcomes[i]).collect();
                problems.push(format!("id {id}: {decided} bodies have an outcome other than duplicate: {all:?}"));
            }
        }
        let headline = format!("{} violations", problems.len());
        check(
            "duplicate_means_reused_id",
            "`duplicate` is only the outcome of a body whose id another body carries, and of those at most one has another outcome",
            problems,
            headline,
        )
    }

    fn invalid_rejected(&self) -> Check {
        let mut problems = Vec::new();
        for b in self.bodies().iter().filter(|b| b.kind.is_invalid() && b.kind != Kind::NotJson) {
            if self.outcomes[b.index].iter().any(|s| s != "rejected") {
                problems.push(format!("{}: {:?}", b.describe(), self.outcomes[b.index]));
            }
        }
        if self.anonymous_outcomes.iter().any(|s| s != "rejected") {
            problems.push(format!("bodies that are not JSON: {:?}", self.anonymous_outcomes));
        }
        let headline = format!("{} invalid bodies ended otherwise", problems.len());
        check("invalid_rejected", "invalid bodies end `rejected`", problems, headline)
    }

    /// Sends of a capped category per address, counted at the provider.
    fn caps(&self) -> Check {
        let mut problems = Vec::new();
        for cap in &self.scenario.caps {
            let mut per_address: BTreeMap<String, usize> = BTreeMap::new();
            for r in &self.accepted {
                let in_category = self
                    .channel
                    .sent_request_id(&r.body)
                    .is_some_and(|id| self.category_of(&id) == Some(cap.category.as_str()));
                if let (true, Some(address)) = (in_category, self.channel.sent_address(&r.body)) {
                    *per_address.entry(address).or_default() += 1;
                }
            }
            for (address, n) in per_address {
                if n > cap.limit {
                    problems
                        .push(format!("{address}: {n} {} sends, cap {} per {}", cap.category, cap.limit, cap.window));
                }
            }
        }
        let headline = format!("{} recipients over their cap", problems.len());
        check(
            "caps",
            "no recipient receives more sends of a capped category than its cap (counted at the provider)",
            problems,
            headline,
        )
    }

    fn at_most_once(&self) -> Check {
        let (problems, _, _) = self.repeated_sends();
        let headline = format!("{} at-most-once requests sent more than once", problems.len());
        check("at_most_once", "no request of an at-most-once category reaches the provider twice", problems, headline)
    }

    fn sent_means_accepted(&self) -> Check {
        let moto_ids: BTreeSet<&str> = self.o.provider_messages.iter().map(String::as_str).collect();
        let mut problems = Vec::new();
        for b in self.bodies() {
            let Some(id) = &b.request_id else { continue };
            for s in self.per_body[b.index].iter().map(|&i| &self.seen[i]).filter(|s| s.status == "sent") {
                if !self.sends_per_id.contains_key(id) {
                    problems.push(format!("{}: reported sent, but no send reached the provider", b.describe()));
                }
                match s.value["provider_message_id"].as_str() {
                    Some(mid) if !moto_ids.contains(mid) => problems
                        .push(format!("{}: reported sent as {mid}, which the provider does not have", b.describe())),
                    Some(_) => {}
                    None => problems.push(format!("{}: reported sent without the provider's message id", b.describe())),
                }
            }
        }
        problems.dedup();
        let headline = format!("{} sent receipts the provider does not back", problems.len());
        check(
            "sent_means_accepted",
            "`sent` is reported only for a request the provider accepted, with that message's id",
            problems,
            headline,
        )
    }

    /// The DLQ holds nothing without its terminal receipt, and no request lacks one.
    fn nothing_lost(&self) -> Check {
        let mut problems: Vec<String> =
            self.dlq().into_iter().filter(|(_, lost)| *lost).map(|(line, _)| format!("{line} (lost)")).collect();
        let (none, _) = self.terminal_counts();
        let lost = none.len() + self.not_json().saturating_sub(self.anonymous_outcomes.len());
        if lost > 0 {
            problems.push(format!("{lost} requests have no terminal receipt at all (see one_terminal_outcome)"));
        }
        let headline = format!("{} DLQ messages, {} problems", self.o.dlq.len(), problems.len());
        check(
            "nothing_lost",
            "every request has its terminal receipt; the DLQ holds nothing that lacks one",
            problems,
            headline,
        )
    }

    /// Receipts delivered, and those the function tried to send.
    fn receipts_bounded(&self) -> Check {
        let mut oversized: BTreeMap<String, usize> = BTreeMap::new();
        for (value, _) in self.o.receipts.iter().chain(&self.o.attempted_receipts) {
            for (k, v) in value["metadata"].as_object().into_iter().flatten() {
                let n = v.as_str().map_or(0, str::len);
                if n > MAX_METADATA_VALUE {
                    let id = value["request_id"].as_str().unwrap_or("<no id>");
                    let status = value["status"].as_str().unwrap_or("?");
                    *oversized.entry(format!("{id} ({status}): metadata `{k}` of {n} bytes echoed")).or_default() += 1;
                }
            }
        }
        let problems: Vec<String> =
            oversized.iter().map(|(line, times)| format!("{line}, in {times} receipts sent or attempted")).collect();
        let largest = |r: &[(Value, usize)]| r.iter().map(|(_, n)| *n).max().unwrap_or(0);
        let headline = format!(
            "{} oversized echoes; largest receipt delivered {} bytes, attempted {} bytes",
            problems.len(),
            largest(&self.o.receipts),
            largest(&self.o.attempted_receipts)
        );
        check(
            "receipts_bounded",
            "no receipt, delivered or attempted, echoes a metadata value longer than a valid request may carry (1024 bytes)",
            problems,
            headline,
        )
    }

    /// The proxy saw exactly what moto has: otherwise the send accounting is not to be trusted.
    fn harness_sees_every_send(&self) -> Check {
        let proxied: BTreeSet<String> = self
            .accepted
            .iter()
            .filter_map(|r| r.upstream_body.as_ref().and_then(|b| self.channel.sent_message_id(b)))
            .collect();
        let stored: BTreeSet<String> = self.o.provider_messages.iter().cloned().collect();
        let mut problems = Vec::new();
        if proxied != stored || self.accepted.len() != self.o.provider_messages.len() {
            problems.push(format!(
                "proxy: {} accepted sends ({} message ids), moto: {} messages; {} only at the proxy, {} only at moto",
                self.accepted.len(),
                proxied.len(),
                stored.len(),
                proxied.difference(&stored).count(),
                stored.difference(&proxied).count()
            ));
        }
        if self.unattributed > 0 {
            problems.push(format!("{} accepted sends carry no request id", self.unattributed));
        }
        check(
            "harness_sees_every_send",
            "the proxy's record of accepted sends is exactly moto's store (a self-check of the suite)",
            problems,
            "the accounting of provider sends cannot be trusted".to_owned(),
        )
    }

    // ------------------------------------------------------------------ the summary

    fn summary(&self) -> String {
        let (o, scenario, bodies) = (self.o, self.scenario, self.bodies());
        let join = |items: Vec<String>| items.join(", ");
        let mut lines: Vec<String> = Vec::new();
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for b in bodies {
            *kinds.entry(b.kind.label()).or_default() += 1;
        }
        let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
        for b in bodies.iter().filter(|b| b.kind == Kind::Valid) {
            *per_category.entry(b.category.as_deref().unwrap_or("-")).or_default() += 1;
        }
        lines.push(format!(
            "resilience summary ({}): {:.1} s wall, seed {}",
            self.channel.function(),
            o.wall.as_secs_f64(),
            scenario.seed
        ));
        lines.push(format!(
            "  requests: {} distinct bodies in {} messages; {}; valid by category: {}",
            bodies.len(),
            self.plan.messages(),
            join(kinds.iter().map(|(k, n)| format!("{k} {n}")).collect()),
            join(per_category.iter().map(|(k, n)| format!("{k} {n}")).collect()),
        ));
        lines.push(format!(
            "  also: {} enqueued twice, {} reusing another's id, {} with send_after",
            bodies.iter().filter(|b| b.copies > 1).count(),
            bodies.iter().filter(|b| b.shares_id).count() / 2,
            bodies.iter().filter(|b| b.deferred).count(),
        ));
        lines.push(format!(
            "  guarantees: {}; caps: {}",
            join(scenario.guarantees.toml().lines().skip(1).map(str::to_owned).collect()),
            join(scenario.caps.iter().map(|c| format!("{} {} per {}", c.category, c.limit, c.window)).collect())
        ));
        lines.push(format!(
            "  function: {} processes, {} killed at random and {} stopped after a timed-out invocation, each replaced; {} invocations, {} failed, {} records reported for retry; {} panics in the logs",
            scenario.processes, o.kills, o.timeouts, o.invocations, o.failed_invocations, o.reported_failures, o.panics
        ));
        lines.push(format!(
            "  timing: AWS timeout {} ms, stalls {} ms, visibility {} s, Lambda timeout {} s, lock {}",
            scenario.aws_timeout.as_millis(),
            (scenario.aws_timeout + Duration::from_millis(200)).as_millis(),
            scenario.visibility_timeout,
            scenario.invoke_timeout.as_secs(),
            scenario.lock_timeout
        ));
        lines.push("  AWS calls by the function (through the proxy):".to_owned());
        for ((service, operation), op) in OpStats::of(&o.records) {
            let injected: usize = op.faults.values().sum();
            lines.push(format!(
                "    {service} {operation}: {} calls, {injected} faulted ({:.0}%: {}); {} took effect unseen by the function; {} abandoned by the function without a fault; answered in {} ms median, {} ms p95",
                op.calls,
                100.0 * injected as f64 / op.calls.max(1) as f64,
                join(op.faults.iter().map(|(k, v)| format!("{k} {v}")).collect()),
                op.unseen,
                op.abandoned,
                op.percentile(0.5),
                op.percentile(0.95),
            ));
        }
        lines.push(format!(
            "  provider: {} sends accepted ({} by moto's own count) for {} request ids; {} ids sent more than once",
            self.accepted.len(),
            o.provider_messages.len(),
            self.sends_per_id.len(),
            self.sends_per_id.values().filter(|n| **n > 1).count()
        ));
        let (at_most_once, extra, requests) = self.repeated_sends();
        lines.push(format!(
            "  at-most-once requests sent more than once: {}; at-least-once duplicate sends: {extra} extra sends over {requests} requests",
            at_most_once.len()
        ));
        let mut tally: BTreeMap<String, usize> = BTreeMap::new();
        for b in bodies.iter().filter(|b| b.kind != Kind::NotJson) {
            let out = &self.outcomes[b.index];
            let key = match out.len() {
                0 => "(none)".to_owned(),
                1 => out[0].clone(),
                _ => format!("(several: {})", out.join("+")),
            };
            *tally.entry(key).or_default() += 1;
        }
        let mut tally: Vec<(String, usize)> = tally.into_iter().collect();
        tally.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        lines.push(format!(
            "  outcomes per body (bodies that are JSON): {}",
            join(tally.iter().take(12).map(|(k, n)| format!("{k} {n}")).collect())
        ));
        let largest = |r: &[(Value, usize)]| r.iter().map(|(_, n)| *n).max().unwrap_or(0);
        lines.push(format!(
            "  receipts: {} read ({} deferred), {} without receipt_id, largest {} bytes; {} sent or attempted through the proxy, largest {} bytes",
            self.seen.len(),
            self.seen.iter().filter(|s| s.status == "deferred").count(),
            self.seen.iter().filter(|s| s.receipt_id.is_none()).count(),
            largest(&o.receipts),
            o.attempted_receipts.len(),
            largest(&o.attempted_receipts)
        ));
        let indent =
            |items: &[String]| examples(items).lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n");
        let mut unreported = Vec::new();
        for b in bodies {
            let Some(id) = &b.request_id else { continue };
            let out = &self.outcomes[b.index];
            if self.sends_per_id.contains_key(id)
                && !out.is_empty()
                && out.iter().all(|s| s != "sent" && s != "duplicate")
            {
                unreported.push(format!("{}: {out:?}", b.describe()));
            }
        }
        lines.push(format!("  sent at the provider but reported otherwise: {}", unreported.len()));
        if !unreported.is_empty() {
            lines.push(indent(&unreported));
        }
        let dlq: Vec<String> = self.dlq().into_iter().map(|(line, _)| line).collect();
        lines.push(format!("  DLQ: {} messages", o.dlq.len()));
        if !dlq.is_empty() {
            lines.push(indent(&dlq));
        }
        lines.join("\n")
    }
}

fn judge(channel: &dyn Channel, scenario: &Scenario, plan: &Plan, o: &Observed) -> Report {
    let ledger = Ledger::new(channel, scenario, plan, o);
    Report { summary: ledger.summary(), checks: ledger.checks(), wall: o.wall, logs: None }
}

/// The function's calls to one AWS operation, as the proxy saw them.
#[derive(Default)]
struct OpStats {
    calls: usize,
    /// Faults injected, by kind.
    faults: BTreeMap<String, usize>,
    /// Faulted calls that took effect at moto while the function got no success answer.
    unseen: usize,
    /// Calls without a fault the function gave up on (its own timeout: a sign of load).
    abandoned: usize,
    /// How long unfaulted calls moto answered took, sorted.
    latencies: Vec<Duration>,
}

impl OpStats {
    fn of(records: &[Recorded]) -> BTreeMap<(String, String), OpStats> {
        let mut ops: BTreeMap<(String, String), OpStats> = BTreeMap::new();
        for r in records {
            let op = ops.entry((r.service.clone(), r.operation.clone())).or_default();
            op.calls += 1;
            if !r.injected && r.upstream_status.is_some() {
                op.latencies.push(r.elapsed);
            }
            if let Some(kind) = r.fault {
                *op.faults.entry(fault_label(kind)).or_default() += 1;
            }
            if r.injected && r.accepted() && r.status != 200 {
                op.unseen += 1;
            }
            if !r.injected && r.status == 0 {
                op.abandoned += 1;
            }
        }
        for op in ops.values_mut() {
            op.latencies.sort_unstable();
        }
        ops
    }

    /// Milliseconds at quantile `q` of the latencies.
    fn percentile(&self, q: f64) -> u128 {
        let at = ((self.latencies.len() as f64 - 1.0) * q) as usize;
        self.latencies.get(at).map_or(0, |d| d.as_millis())
    }
}

fn fault_label(kind: FaultKind) -> String {
    match kind {
        FaultKind::Throttle => "throttle".to_owned(),
        FaultKind::ServerError => "500".to_owned(),
        FaultKind::Timeout(_) => "timeout".to_owned(),
        FaultKind::Reset => "reset".to_owned(),
        FaultKind::LostResponse => "lost response".to_owned(),
        FaultKind::StallAfterForward(_) => "stall".to_owned(),
    }
}

// ------------------------------------------------------------------ small tools

// A panic elsewhere while holding the lock must not hide behind a poison error.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// splitmix64: reproducible from the scenario's seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// Unix milliseconds as RFC 3339 in UTC (`2026-11-29T21:07:05.123Z`).
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (h, m, s) = (secs % 86_400 / 3_600, secs % 3_600 / 60, secs % 60);
    // Days to civil date (H. Hinnant's algorithm), for days since 1970-01-01.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{:03}Z", unix_ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_986_425_123), "2026-11-29T21:07:05.123Z");
        assert_eq!(rfc3339(951_868_799_999), "2000-02-29T23:59:59.999Z");
    }

    #[test]
    fn guarantees_render_the_config_section_and_answer_per_category() {
        let g = Guarantees {
            default: Guarantee::AtMostOnce,
            categories: vec![("transactional".to_owned(), Guarantee::AtLeastOnce)],
        };
        assert_eq!(g.toml(), "[guarantee]\ndefault = \"at_most_once\"\ntransactional = \"at_least_once\"\n");
        assert_eq!(g.of("transactional"), Guarantee::AtLeastOnce);
        assert_eq!(g.of("marketing"), Guarantee::AtMostOnce);
    }

    #[test]
    fn the_rng_is_reproducible_and_shuffles_a_permutation() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!((0..5).map(|_| a.next_u64()).collect::<Vec<_>>(), (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        let mut items: Vec<usize> = (0..50).collect();
        a.shuffle(&mut items);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        items.sort_unstable();
        assert_eq!(items, (0..50).collect::<Vec<_>>());
    }
}
