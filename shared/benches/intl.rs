//! Locale-aware helpers, warm: one `format_currency` call after its formatter is built
//! (the cost per email), the same through a template, and the first call for a locale
//! (building the formatters from compiled data).

use criterion::{Criterion, criterion_group, criterion_main};
use herald::render::engine::{Escape, registry};
use herald::render::intl::{
    CurrencyDisplay, DateFormat, DateStyle, Digits, TimeStyle, format_currency, format_date, format_number,
};
use serde_json::json;

// The binaries' allocator, so the figures are theirs.
#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

fn helpers(c: &mut Criterion) {
    let amount = json!(1234.5);
    c.bench_function("format_currency 1234.5 EUR fr-FR (warm)", |b| {
        b.iter(|| format_currency(&amount, "EUR", "fr-FR", CurrencyDisplay::Symbol).expect("format"))
    });
    c.bench_function("format_number 1234567.891 de-DE (warm)", |b| {
        b.iter(|| format_number(&json!(1234567.891), "de-DE", Digits::NUMBER).expect("format"))
    });
    let long = DateFormat::Style { date: Some(DateStyle::Long), time: Some(TimeStyle::Short) };
    let when = json!("2026-03-29T01:00:00Z");
    c.bench_function("format_date long+short Europe/Paris fr-FR (warm)", |b| {
        b.iter(|| format_date(&when, &long, "fr-FR", Some("Europe/Paris")).expect("format"))
    });

    let hbs = registry(Escape::Html);
    let data = json!({ "total": 1234.5, "herald": { "locale": "fr-FR" } });
    c.bench_function("template {{format_currency total \"EUR\"}} fr-FR (warm)", |b| {
        b.iter(|| hbs.render_template("{{format_currency total \"EUR\"}}", &data).expect("render"))
    });

    // A locale tag the thread has not seen: parsing it and building the formatter.
    let mut n = 0u64;
    c.bench_function("format_currency, first call for a locale (cold)", |b| {
        b.iter(|| {
            n += 1;
            format_currency(&amount, "EUR", &format!("fr-x-b{n}"), CurrencyDisplay::Symbol).expect("format")
        })
    });
}

criterion_group!(benches, helpers);
criterion_main!(benches);
