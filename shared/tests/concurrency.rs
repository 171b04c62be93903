//! 50 threads send marketing email to one recipient under a 3-per-24h cap, each
//! through its own pipeline and its own connection to one embedded store (as
//! separate processes would): exactly 3 are sent and 3 messages reach the outbox.

use std::sync::{Arc, Barrier};

use herald::adapters::local::{LocalStore, Outbox};
use herald::config::Settings;
use herald::pipeline::{Outcome, Pipeline, Ports, Senders};
use herald::ports::FixedClock;
use herald::receipt::Status;
use herald::render::Catalogue;
use serde_json::json;

const CONFIG: &str = r#"
[email]
from = "Acme <hello@acme.example>"
unsubscribe_url = "https://acme.example/u?token={token}"
unsubscribe_secret = "0123456789abcdef0123"

[[caps]]
category = "marketing"
limit = 3
window = "24h"
"#;

fn trial(threads: usize) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates/promo");
    std::fs::create_dir_all(&templates).unwrap();
    std::fs::write(templates.join("email.subject.hbs"), "Deal {{n}}").unwrap();
    std::fs::write(templates.join("email.html.hbs"), "<p>Deal {{n}}</p>").unwrap();
    let catalogue = Arc::new(Catalogue::load(&dir.path().join("templates")).unwrap());
    let settings = Arc::new(Settings::parse(CONFIG, "test", dir.path(), None).unwrap());
    let state = dir.path().join("state");
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (catalogue, settings, state, barrier) =
                (catalogue.clone(), settings.clone(), state.clone(), barrier.clone());
            std::thread::spawn(move || {
                let store = Arc::new(LocalStore::open(&state).unwrap());
                let outbox = Arc::new(Outbox::new(state.join("outbox")));
                let ports = Ports {
                    store: store.clone(),
                    senders: Senders::all(outbox),
                    scheduler: store,
                    clock: Arc::new(FixedClock("2026-11-28T12:00:00Z".parse().unwrap())),
                };
                let pipeline = Pipeline::new(catalogue, settings, ports);
                let request = json!({"id": format!("promo-{i}"), "channel": "email", "category": "marketing",
                    "recipient": {"id": "u-1", "email": "ada@example.com"}, "template": "promo", "data": {"n": i}});
                let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
                barrier.wait();
                match rt.block_on(pipeline.process_json(&request.to_string(), None)) {
                    Outcome::Receipt(r) => r.status,
                    other => panic!("{other:?}"),
                }
            })
        })
        .collect();
    let statuses: Vec<Status> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let sent = statuses.iter().filter(|s| **s == Status::Sent).count();
    let capped = statuses.iter().filter(|s| **s == Status::Capped).count();
    let files = std::fs::read_dir(state.join("outbox")).map(|d| d.count()).unwrap_or(0);
    (sent, capped, files)
}

#[test]
fn fifty_threads_one_recipient_cap_of_three() {
    for _ in 0..3 {
        assert_eq!(trial(50), (3, 47, 3));
    }
}
