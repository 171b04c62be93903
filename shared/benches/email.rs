//! Email HTML steps on the newsletter, each alone and as the catalogue chains them:
//! MJML compiled (mrml), CSS inlined (css-inline) and the text part generated.
//!
//! Inputs are fixed so the figures compare across changes: the shipped HTML newsletter
//! as it rendered with examples/data/newsletter.json (1.8 KB, before it moved to MJML)
//! and the same content in MJML (2.5 KB; 12.9 KB of HTML once compiled).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use herald::render::email::{finish_html, forget_shapes, inline_css, mjml_to_html};
use herald::render::text::html_to_text;

// The binaries' allocator, so the figures are theirs.
#[global_allocator]
static ALLOC: herald::alloc::Allocator = herald::alloc::Allocator;

const NEWSLETTER_HTML: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>This week at Acme</title>
<style>
  body { margin: 0; padding: 0; background: #f4f4f5; font-family: Helvetica, Arial, sans-serif; color: #18181b; }
  .card { max-width: 600px; margin: 0 auto; background: #ffffff; padding: 32px; }
  .footer { max-width: 600px; margin: 0 auto; padding: 16px 32px; font-size: 12px; color: #71717a; }
  a.button { display: inline-block; background: #2563eb; color: #ffffff; padding: 12px 20px; border-radius: 6px; text-decoration: none; }
</style>
</head>
<body>
<span style="display:none;max-height:0;overflow:hidden">Three stories we think you&#x27;ll like.</span>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0">
<tr><td>
<div class="card">
<h1>Hello Grace,</h1>
<p>Three stories we think you&#x27;ll like.</p>
<div class="article">
  <h2><a href="https://blog.acme.example/pour-over">Brewing the perfect pour-over</a></h2>
  <img src="https://cdn.acme.example/pour-over.jpg" alt="A pour-over kettle" width="536">
  <p>Grind size, water temperature &amp; timing.</p>
  <p>#coffee #howto</p>
</div>
<div class="article">
  <h2><a href="https://blog.acme.example/roastery">Meet our new roastery</a></h2>
  
  <p>Behind the scenes in Lyon.</p>
  
</div>
<div class="article">
  <h2><a href="https://blog.acme.example/winter">Winter blend is back</a></h2>
  
  <p>Notes of &lt;cocoa&gt; and orange.</p>
  
</div>
<p><a class="button" href="https://shop.acme.example/offer">Get 10% off</a></p>
</div>
<div class="footer">
<p>Acme · 1 Example Street, Springfield</p>
<p><a href="https://example.invalid/unsubscribe/preview">Unsubscribe</a> from these emails.</p>
</div>
</td></tr>
</table>
</body>
</html>"##;

const NEWSLETTER_MJML: &str = r##"<mjml lang="en">
  <mj-head>
    <mj-title>This week at Acme</mj-title>
    <mj-preview>Three stories we think you&#x27;ll like.</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="24px" color="#18181b" />
      <mj-class name="muted" color="#71717a" font-size="12px" />
    </mj-attributes>
    <mj-style>
      .article h2 a { color: #18181b; text-decoration: none; }
      .footer a { color: #71717a; }
      @media only screen and (max-width: 480px) { .article h2 { font-size: 20px !important; } }
    </mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f5" width="600px">
    <mj-section background-color="#ffffff" padding="32px">
      <mj-column>
        <mj-text><h1>Hello Grace,</h1><p>Three stories we think you&#x27;ll like.</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 32px" css-class="article">
      <mj-column>
        <mj-text><h2><a href="https://blog.acme.example/pour-over">Brewing the perfect pour-over</a></h2></mj-text>
        <mj-image src="https://cdn.acme.example/pour-over.jpg" alt="A pour-over kettle" width="536px" />
        <mj-text><p>Grind size, water temperature &amp; timing.</p><p>#coffee #howto</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 32px" css-class="article">
      <mj-column>
        <mj-text><h2><a href="https://blog.acme.example/roastery">Meet our new roastery</a></h2><p>Behind the scenes in Lyon.</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 32px" css-class="article">
      <mj-column>
        <mj-text><h2><a href="https://blog.acme.example/winter">Winter blend is back</a></h2><p>Notes of &lt;cocoa&gt; and orange.</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="16px 32px 32px">
      <mj-column>
        <mj-button href="https://shop.acme.example/offer" background-color="#2563eb" color="#ffffff" border-radius="6px">Get 10% off</mj-button>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 32px" css-class="footer">
      <mj-column>
        <mj-text mj-class="muted">Acme · 1 Example Street, Springfield</mj-text>
        <mj-text mj-class="muted"><a href="https://example.invalid/unsubscribe/preview">Unsubscribe</a> from these emails.</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"##;

fn steps(c: &mut Criterion) {
    let compiled = mjml_to_html(NEWSLETTER_MJML).expect("mjml");
    let inlined_html = inline_css(NEWSLETTER_HTML).expect("inline");
    let inlined_mjml = inline_css(&compiled).expect("inline");
    c.bench_function("mjml_to_html newsletter (2.5 KB MJML)", |b| {
        b.iter(|| mjml_to_html(black_box(NEWSLETTER_MJML)).expect("mjml"))
    });
    c.bench_function("inline_css newsletter HTML (1.8 KB)", |b| {
        b.iter(|| inline_css(black_box(NEWSLETTER_HTML)).expect("inline"))
    });
    c.bench_function("inline_css newsletter HTML (1.8 KB), first of its shape", |b| {
        b.iter(|| {
            forget_shapes();
            inline_css(black_box(NEWSLETTER_HTML)).expect("inline")
        })
    });
    c.bench_function("inline_css compiled MJML (12.9 KB)", |b| {
        b.iter(|| inline_css(black_box(&compiled)).expect("inline"))
    });
    c.bench_function("html_to_text newsletter HTML (1.8 KB)", |b| b.iter(|| html_to_text(black_box(NEWSLETTER_HTML))));
    c.bench_function("html_to_text newsletter HTML inlined", |b| b.iter(|| html_to_text(black_box(&inlined_html))));
    c.bench_function("html_to_text compiled MJML inlined (15 KB)", |b| {
        b.iter(|| html_to_text(black_box(&inlined_mjml)))
    });
}

/// What the catalogue does per email after Handlebars: `finish_html`, then the text part.
fn chained(c: &mut Criterion) {
    c.bench_function("HTML email body: inline + text", |b| {
        b.iter(|| {
            let html = finish_html(black_box(NEWSLETTER_HTML), false).expect("html");
            (html_to_text(&html), html)
        })
    });
    c.bench_function("MJML email body: compile + inline + text (its shape seen before)", |b| {
        b.iter(|| {
            let html = finish_html(black_box(NEWSLETTER_MJML), true).expect("mjml");
            (html_to_text(&html), html)
        })
    });
    c.bench_function("MJML email body: compile + inline + text, first of its shape", |b| {
        b.iter(|| {
            forget_shapes();
            let html = finish_html(black_box(NEWSLETTER_MJML), true).expect("mjml");
            (html_to_text(&html), html)
        })
    });
}

criterion_group!(benches, steps, chained);
criterion_main!(benches);
