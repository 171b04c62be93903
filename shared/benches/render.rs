//! Rendering as a send renders, on the shipped templates and their example data:
//!
//! - `handlebars/newsletter`: the Handlebars stage alone (subject and the MJML body
//!   before compiling), the figure `scripts/bench.sh` sets beside handlebars.js
//!   (shared/examples/bench_inprocess.rs). The context is built once, as handlebars.js
//!   is handed one object.
//! - `email/<template>`: the whole email a send builds (subject, HTML with MJML compiled
//!   and CSS inlined, text part) from the request's context, copied as a send copies it.
//!
//! Same allocator as the function binaries (`herald::alloc`).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::render::Catalogue;
use herald::request::{Channel, TemplateRef};
use serde_json::{Value, json};

#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The context the pipeline builds for a request of `template` with this example data.
fn context(template: &str, data_file: &str, category: &str) -> Value {
    let data = std::fs::read_to_string(repo().join("examples/data").join(data_file)).expect("example data");
    herald::testing::email_context(serde_json::from_str(&data).expect("example data is JSON"), template, category)
}

fn template(name: &str) -> TemplateRef {
    serde_json::from_value(json!(name)).expect("template name")
}

fn handlebars_stage(c: &mut Criterion) {
    let catalogue = Catalogue::load(&repo().join("templates")).expect("templates");
    let value = context("newsletter", "newsletter.json", "marketing");
    let newsletter = template("newsletter");
    let ctx = handlebars::Context::from(value);
    let parts = ["email.subject.hbs", "email.mjml.hbs"];
    c.bench_function("handlebars/newsletter", |b| {
        b.iter(|| {
            for file in parts {
                black_box(catalogue.render_handlebars(&newsletter, file, None, &ctx).expect("render"));
            }
        })
    });
}

fn full_email(c: &mut Criterion) {
    let catalogue = Catalogue::load(&repo().join("templates")).expect("templates");
    for (name, data, category) in
        [("order-confirmation", "order.json", "transactional"), ("newsletter", "newsletter.json", "marketing")]
    {
        let value = context(name, data, category);
        let t = template(name);
        c.bench_function(&format!("email/{name}"), |b| {
            b.iter(|| black_box(catalogue.render(&t, Channel::Email, None, &value).expect("render")))
        });
    }
}

criterion_group!(benches, handlebars_stage, full_email);
criterion_main!(benches);
