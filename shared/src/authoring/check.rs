//! `herald templates check`: everything a template folder would fail at send time,
//! found before anything is sent.
//!
//! Per template: it compiles (file, line, column); every helper it calls and every
//! partial it includes exists; every `t` key it uses has a message in the default
//! locale's string file, and each locale's file has every key (its own or a parent's:
//! `fr-CA.json` may override a few keys of `fr.json`). Then each channel is rendered,
//! strictly and exactly as a send builds the message, against every fixture in the
//! default locale and every locale the template declares: a variable a fixture lacks,
//! an SMS over its segments, a push payload over any provider's limit, an email over
//! Gmail's clipping size (a warning), a marketing email without its unsubscribe link.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use handlebars::template::{Parameter, Template, TemplateElement};
use serde::Serialize;
use serde_json::{Value, json};

use super::{Fixture, SampleError, SampleSpec, Sampler, fixtures};
use crate::config::Settings;
use crate::pipeline::{Prepared, PreviewError};
use crate::render::{Catalogue, CatalogueError, Message, RenderErrorOrLookup, SourceFiles, read_tree};
use crate::request::{Channel, Locale};

/// Gmail clips a message whose HTML is over 102 KB ("[Message clipped]"): the rest,
/// often the unsubscribe link, is behind a click.
pub const GMAIL_CLIP_BYTES: usize = 102 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One defect, at a file and (where known) a line.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable, for CI filters: `syntax`, `unknown_helper`, `unknown_partial`,
    /// `missing_variable`, `render_error`, `missing_translation`, `unused_translation`,
    /// `sms_too_long`, `push_payload_too_large`, `email_clipped`, `missing_unsubscribe_link`,
    /// `bad_fixture`, `no_fixtures`.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// The locale rendered (`default`: the template's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixture: Option<String>,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl Finding {
    fn new(severity: Severity, code: &'static str, file: &str, message: impl Into<String>) -> Self {
        Finding {
            severity,
            code,
            template: None,
            channel: None,
            locale: None,
            fixture: None,
            file: file.to_owned(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    fn of(mut self, template: &str) -> Self {
        self.template = Some(template.to_owned());
        self
    }

    fn sample(mut self, spec: &SampleSpec<'_>) -> Self {
        self.template = Some(spec.template.to_owned());
        self.channel = Some(spec.channel);
        self.locale = Some(locale_label(spec.locale));
        self.fixture = Some(spec.fixture.name.clone());
        self
    }

    /// `file:line:column: error[code] template email (fr) fixture: message`.
    pub fn to_line(&self) -> String {
        let mut at = self.file.clone();
        if let Some(l) = self.line {
            at.push_str(&format!(":{l}"));
            if let Some(c) = self.column {
                at.push_str(&format!(":{c}"));
            }
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut scope = Vec::new();
        if let Some(c) = self.channel {
            scope.push(c.as_str().to_owned());
        }
        if let Some(l) = &self.locale {
            scope.push(format!("({l})"));
        }
        if let Some(f) = &self.fixture {
            scope.push(format!("fixture {f}"));
        }
        let scope = if scope.is_empty() { String::new() } else { format!(" {}:", scope.join(" ")) };
        format!("{at}: {severity}[{}]{scope} {}", self.code, self.message)
    }
}

fn locale_label(locale: Option<&Locale>) -> String {
    locale.map_or_else(|| "default".to_owned(), |l| l.to_string())
}

/// What one rendered sample measured.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    pub template: String,
    pub channel: Channel,
    pub locale: String,
    pub fixture: String,
    pub ok: bool,
    /// Email: subject, html_bytes; SMS: encoding, segments, characters; push: payload bytes per provider.
    pub facts: Value,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub templates: usize,
    pub samples: Vec<SampleReport>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.errors() == 0,
            "templates": self.templates,
            "errors": self.errors(),
            "warnings": self.warnings(),
            "findings": self.findings,
            "samples": self.samples,
        })
    }
}

fn from_catalogue_error(e: &CatalogueError, code: &'static str) -> Finding {
    Finding::new(Severity::Error, code, &e.path, e.message.clone()).at(e.line, e.column)
}

/// Checks every template under `dir` (and its `_partials/`, `_locales/`).
pub fn check_dir(dir: &Path, settings: Arc<Settings>) -> Report {
    let mut report = Report::default();
    let origin = dir.display().to_string();
    let files = match read_tree(dir) {
        Ok(f) => f,
        Err(e) => {
            report.findings.push(from_catalogue_error(&e, "unreadable"));
            return report;
        }
    };
    // Shared files first: a broken partial is reported once, not once per template.
    let (shared, by_template) = split(files);
    if let Err(e) = Catalogue::from_files(&origin, shared.clone()) {
        report.findings.push(from_catalogue_error(&e, "syntax"));
        return report;
    }
    for (name, files) in by_template {
        report.templates += 1;
        let mut all = shared.clone();
        all.extend(files);
        let catalogue = match Catalogue::from_files(&origin, all) {
            Ok(c) => c,
            Err(e) => {
                report.findings.push(from_catalogue_error(&e, "syntax").of(&name));
                continue;
            }
        };
        // A bad fixture is reported; the template is still checked with the others.
        let (fixtures, bad) = fixtures(&dir.join(&name));
        for e in &bad {
            report.findings.push(from_catalogue_error(e, "bad_fixture").of(&name));
        }
        check_template(&name, Arc::new(catalogue), settings.clone(), &fixtures, &mut report);
    }
    report.findings = dedupe(std::mem::take(&mut report.findings));
    // A defect of a whole file (an SMS too long, a key a translation lacks) is at its
    // line 1: every finding in a file has a line, as editors and CI annotations need.
    for f in &mut report.findings {
        if f.line.is_none() && Path::new(&f.file).is_file() {
            f.line = Some(1);
        }
    }
    report
}

/// One finding per defect: the same message at the same place found again by another
/// fixture or locale is counted, not repeated; a render error at a place the static pass
/// already reported (an unknown helper, a missing key at its `t` call) is that defect.
fn dedupe(findings: Vec<Finding>) -> Vec<Finding> {
    let place = |f: &Finding| (f.code, f.file.clone(), f.line, f.column);
    let found_statically: BTreeSet<_> =
        findings.iter().filter(|f| f.fixture.is_none() && f.line.is_some()).map(place).collect();
    let mut out: Vec<(Finding, usize)> = Vec::new();
    for f in findings {
        if f.fixture.is_some() && found_statically.contains(&place(&f)) {
            continue;
        }
        let same =
            |o: &(Finding, usize)| place(&o.0) == place(&f) && o.0.message == f.message && o.0.template == f.template;
        match out.iter_mut().find(|o| same(o)) {
            Some(o) => o.1 += 1,
            None => out.push((f, 0)),
        }
    }
    out.into_iter()
        .map(|(mut f, more)| {
            if more > 0 {
                f.message.push_str(&format!(" (and {more} more sample{})", if more == 1 { "" } else { "s" }));
            }
            f
        })
        .collect()
}

/// (shared files, files per template folder) of a tree read by `read_tree`.
fn split(files: SourceFiles) -> (SourceFiles, std::collections::BTreeMap<String, SourceFiles>) {
    let mut shared = Vec::new();
    let mut by_template: std::collections::BTreeMap<String, SourceFiles> = Default::default();
    for (rel, text) in files {
        match rel.split_once('/') {
            Some((folder, _)) if folder.starts_with('_') => shared.push((rel, text)),
            Some((folder, _)) => by_template.entry(folder.to_owned()).or_default().push((rel, text)),
            None => {}
        }
    }
    (shared, by_template)
}

fn check_template(
    name: &str,
    catalogue: Arc<Catalogue>,
    settings: Arc<Settings>,
    fixtures: &[Fixture],
    report: &mut Report,
) {
    let Some(info) = catalogue.info(name) else { return };
    static_checks(name, &catalogue, report);
    translation_checks(name, &catalogue, report);
    let empty = [Fixture::empty()];
    let fixtures = if fixtures.is_empty() {
        report.findings.push(
            Finding::new(
                Severity::Warning,
                "no_fixtures",
                &info.origin,
                "no fixtures: add fixtures/<case>.json with the data a request sends, so every channel and \
                 locale is rendered here",
            )
            .of(name),
        );
        &empty[..]
    } else {
        fixtures
    };
    let locales: Vec<Option<Locale>> =
        std::iter::once(None).chain(info.locales.iter().filter_map(|l| Locale::parse(l).ok()).map(Some)).collect();
    let sampler = Sampler::new(catalogue.clone(), settings);
    for channel in &info.channels {
        for locale in &locales {
            for fixture in fixtures {
                let spec = SampleSpec { template: name, channel: *channel, locale: locale.as_ref(), fixture };
                check_sample(&sampler, &spec, report);
            }
        }
    }
}

fn check_sample(sampler: &Sampler, spec: &SampleSpec<'_>, report: &mut Report) {
    let mut sample = SampleReport {
        template: spec.template.to_owned(),
        channel: spec.channel,
        locale: locale_label(spec.locale),
        fixture: spec.fixture.name.clone(),
        ok: false,
        facts: Value::Null,
    };
    let before = report.errors();
    match sampler.render(spec) {
        Ok(prepared) => {
            sample.facts = facts(&prepared);
            for f in message_checks(sampler, spec, &prepared) {
                report.findings.push(f);
            }
        }
        Err(e) => report.findings.push(sample_error(sampler.catalogue(), spec, &e)),
    }
    sample.ok = report.errors() == before;
    report.samples.push(sample);
}

fn sample_error(catalogue: &Catalogue, spec: &SampleSpec<'_>, e: &SampleError) -> Finding {
    match e {
        SampleError::Fixture(m) => Finding::new(Severity::Error, "bad_fixture", &spec.fixture.path, m.clone()),
        SampleError::Preview(PreviewError::Render(RenderErrorOrLookup::Render(r))) => {
            let code = if r.message.starts_with("the data has no") {
                "missing_variable"
            } else if r.message.starts_with("no helper named") {
                "unknown_helper"
            } else if r.message.starts_with("no partial named") {
                "unknown_partial"
            } else if r.message.starts_with("t: no translation") {
                "missing_translation"
            } else {
                "render_error"
            };
            let file = catalogue.error_file(r).unwrap_or_else(|| spec.template.to_owned());
            // The message without its " at line …" tail: the position is in the finding.
            let message = r.message.split(" at line ").next().unwrap_or(&r.message).to_owned();
            Finding::new(Severity::Error, code, &file, message).at(r.line, r.column)
        }
        SampleError::Preview(PreviewError::Render(lookup)) => {
            Finding::new(Severity::Error, "render_error", spec.template, lookup.to_string())
        }
        SampleError::Preview(PreviewError::Check { reason, detail }) => {
            let code = match reason {
                crate::receipt::Reason::SmsTooLong => "sms_too_long",
                crate::receipt::Reason::PayloadTooLarge(_) => "push_payload_too_large",
                _ => "render_error",
            };
            Finding::new(Severity::Error, code, &body_file(catalogue, spec), format!("{reason}: {detail}"))
        }
    }
    .sample(spec)
}

/// The numbers a sample is judged by.
pub fn facts(prepared: &Prepared) -> Value {
    match prepared {
        Prepared::Email(e) => json!({
            "subject": e.subject,
            "html_bytes": e.html.len(),
            "text_bytes": e.text.len(),
            "list_unsubscribe": e.headers.iter().any(|(k, _)| k == "List-Unsubscribe"),
        }),
        Prepared::Sms(_, facts) => json!({
            "encoding": facts.encoding,
            "segments": facts.segments,
            "characters": facts.characters,
            "units": facts.units,
            "transliterated": facts.transliterated,
        }),
        Prepared::Push(p) => {
            json!({ "title": p.title, "payload": crate::push::payload::sizes_json(&p.title, &p.body, &p.data) })
        }
    }
}

/// The file a message-level finding points at: the channel's body part, in the
/// locale folder that served the sample when there is one.
fn body_file(catalogue: &Catalogue, spec: &SampleSpec<'_>) -> String {
    let parts = catalogue.part_sources(spec.template);
    let body = |p: &&crate::render::PartSource<'_>| {
        p.channel == spec.channel && !p.file.ends_with(".subject.hbs") && !p.file.ends_with(".title.hbs")
    };
    let in_locale = spec.locale.and_then(|l| {
        l.fallbacks().into_iter().find_map(|tag| {
            parts.iter().filter(|p| p.locale.is_some_and(|pl| pl.as_str().eq_ignore_ascii_case(tag))).find(body)
        })
    });
    in_locale
        .or_else(|| parts.iter().filter(|p| p.locale.is_none()).find(body))
        .map(|p| p.file.clone())
        .or_else(|| catalogue.info(spec.template).map(|i| i.origin))
        .unwrap_or_else(|| spec.template.to_owned())
}

/// Checks on the built message that a send does not make.
fn message_checks(sampler: &Sampler, spec: &SampleSpec<'_>, prepared: &Prepared) -> Vec<Finding> {
    let body_file = body_file(sampler.catalogue(), spec);
    let mut out = Vec::new();
    match prepared {
        Prepared::Email(e) => {
            if e.html.len() > GMAIL_CLIP_BYTES {
                out.push(Finding::new(
                    Severity::Warning,
                    "email_clipped",
                    &body_file,
                    format!(
                        "the HTML is {} bytes: Gmail clips messages over {} bytes behind \"[Message clipped]\"",
                        e.html.len(),
                        GMAIL_CLIP_BYTES
                    ),
                ));
            }
            let url = e.headers.iter().find(|(k, _)| k == "List-Unsubscribe").and_then(|(_, v)| {
                v.split(',').next().map(|t| t.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
            });
            // In an HTML body the link is escaped as `{{…}}` escapes it (`=` is `&#x3D;`).
            if let Some(url) = url
                && !e.html.contains(&url)
                && !e.html.contains(&handlebars::html_escape(&url))
                && !e.html.contains(&url.replace('&', "&amp;"))
            {
                out.push(Finding::new(
                    Severity::Error,
                    "missing_unsubscribe_link",
                    &body_file,
                    format!(
                        "a {} email must show the unsubscribe link: add <a href=\"{{{{herald.unsubscribe_url}}}}\">…</a> \
                         (List-Unsubscribe alone is not enough for CAN-SPAM and most inbox rules)",
                        sampler.category(spec)
                    ),
                ));
            }
        }
        Prepared::Push(p) => {
            for (provider, size) in crate::push::payload::sizes(&p.title, &p.body, &p.data) {
                match size {
                    Ok((bytes, limit)) if bytes > limit => out.push(Finding::new(
                        Severity::Error,
                        "push_payload_too_large",
                        &body_file,
                        format!("the {provider} payload is {bytes} bytes, over its {limit}-byte limit"),
                    )),
                    Ok(_) => {}
                    Err(e) => out.push(Finding::new(Severity::Error, "render_error", &body_file, e)),
                }
            }
        }
        Prepared::Sms(..) => {}
    }
    out.into_iter().map(|f| f.sample(spec)).collect()
}

// ------------------------------------------------------------------ static checks

/// Helpers and partials a template calls, and the `t` keys it uses, with positions.
#[derive(Default)]
struct Uses {
    helpers: Vec<(String, usize, usize)>,
    partials: Vec<(String, usize, usize)>,
    inline_partials: BTreeSet<String>,
    keys: Vec<(String, usize, usize)>,
}

fn walk(t: &Template, uses: &mut Uses) {
    for (i, e) in t.elements.iter().enumerate() {
        let (line, col) = t.mapping.get(i).map_or((0, 0), |m| (m.0, m.1));
        element(e, line, col, uses);
    }
}

fn element(e: &TemplateElement, line: usize, col: usize, uses: &mut Uses) {
    match e {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) | TemplateElement::HelperBlock(h) => {
            if let Parameter::Name(n) = &h.name {
                // `{{name}}` or `{{#name}}` alone may be a value or a section: only a call
                // with arguments must be a helper.
                if !h.params.is_empty() || !h.hash.is_empty() {
                    uses.helpers.push((n.clone(), line, col));
                }
                if n == "t"
                    && let Some(Parameter::Literal(Value::String(key))) = h.params.first()
                {
                    uses.keys.push((key.clone(), line, col));
                }
            }
            arguments(h.params.iter().chain(h.hash.values()), line, col, uses);
            for inner in [&h.template, &h.inverse].into_iter().flatten() {
                walk(inner, uses);
            }
        }
        TemplateElement::PartialExpression(d) | TemplateElement::PartialBlock(d) => {
            // A partial block renders its own content when the partial is missing.
            if let Parameter::Name(n) = &d.name
                && matches!(e, TemplateElement::PartialExpression(_))
            {
                uses.partials.push((n.clone(), line, col));
            }
            // `{{> layout title=(t "title")}}`: the arguments call helpers too.
            arguments(d.params.iter().chain(d.hash.values()), line, col, uses);
            if let Some(inner) = &d.template {
                walk(inner, uses);
            }
        }
        TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
            if let (Parameter::Name(n), Some(Parameter::Literal(Value::String(p)))) = (&d.name, d.params.first())
                && n == "inline"
            {
                uses.inline_partials.insert(p.clone());
            }
            if let Some(inner) = &d.template {
                walk(inner, uses);
            }
        }
        // Text, comments (and whatever a later handlebars adds) call nothing.
        _ => {}
    }
}

/// The subexpressions among a call's arguments: each is a helper call.
fn arguments<'a>(params: impl Iterator<Item = &'a Parameter>, line: usize, col: usize, uses: &mut Uses) {
    for p in params {
        if let Parameter::Subexpression(sub) = p {
            // `(name)` needs a helper even without arguments.
            if let TemplateElement::Expression(inner) = &*sub.element
                && let Parameter::Name(n) = &inner.name
                && inner.params.is_empty()
                && inner.hash.is_empty()
            {
                uses.helpers.push((n.clone(), line, col));
            }
            element(&sub.element, line, col, uses);
        }
    }
}

/// Whether `registry` has a helper `name`: asked by calling it, since handlebars-rust
/// does not list its helpers (a helper refusing missing arguments still exists).
fn has_helper(registry: &handlebars::Handlebars<'static>, name: &str) -> bool {
    let probe = format!("{{{{#if ({name})}}}}{{{{/if}}}}");
    match registry.render_template(&probe, &json!({})) {
        Ok(_) => true,
        Err(e) => !matches!(e.reason(), handlebars::RenderErrorReason::HelperNotFound(_)),
    }
}

fn static_checks(name: &str, catalogue: &Catalogue, report: &mut Report) {
    let strings = catalogue.strings();
    let mut helper_cache: std::collections::HashMap<String, bool> = Default::default();
    let mut sources: Vec<(String, Uses, &handlebars::Handlebars<'static>)> = Vec::new();
    for part in catalogue.part_sources(name) {
        let mut uses = Uses::default();
        walk(part.template, &mut uses);
        sources.push((part.file.clone(), uses, part.registry));
    }
    for (file, uses, registry) in &sources {
        for (helper, line, col) in &uses.helpers {
            let known = *helper_cache.entry(helper.clone()).or_insert_with(|| has_helper(registry, helper));
            if !known {
                report.findings.push(
                    Finding::new(
                        Severity::Error,
                        "unknown_helper",
                        file,
                        format!("no helper named `{helper}` (docs/templates.md lists the helpers)"),
                    )
                    .at(Some(*line), Some(*col))
                    .of(name),
                );
            }
        }
        for (partial, line, col) in &uses.partials {
            if !uses.inline_partials.contains(partial) && !registry.has_template(partial) {
                report.findings.push(
                    Finding::new(
                        Severity::Error,
                        "unknown_partial",
                        file,
                        format!("no partial named `{partial}` (expected _partials/{partial}.hbs)"),
                    )
                    .at(Some(*line), Some(*col))
                    .of(name),
                );
            }
        }
        for (key, line, col) in &uses.keys {
            let default = strings.templates.get(name).and_then(|t| t.default_locale.clone());
            if strings.lookup(name, default.as_ref(), key).is_none() {
                let where_ = match &default {
                    Some(l) => format!("locales/{l}.json (the default locale) or _locales/{l}.json"),
                    None => "a string file: add locales/<default>.json and default_locale to template.toml".into(),
                };
                report.findings.push(
                    Finding::new(
                        Severity::Error,
                        "missing_translation",
                        file,
                        format!("`t \"{key}\"` has no message in {where_}"),
                    )
                    .at(Some(*line), Some(*col))
                    .of(name),
                );
            }
        }
    }
}

/// Every plural message has each form its locale's rules use: a Russian message with
/// only `one` and `other` would say "5 товара" where Russian needs "5 товаров" (`many`).
fn plural_form_checks(name: &str, file: &crate::render::StringFile, report: &mut Report) {
    let Ok(needed) = crate::render::intl::plural_categories(file.locale.as_str()) else { return };
    for (key, message) in &file.messages {
        let Message::Plural(forms) = message else { continue };
        let missing: Vec<&str> = crate::render::i18n::PLURAL_CATEGORIES
            .into_iter()
            .filter(|c| needed.contains(c) && !forms.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            report.findings.push(
                Finding::new(
                    Severity::Warning,
                    "plural_forms",
                    &file.path,
                    format!(
                        "`{key}` lacks the {} form{} {} uses: those counts get `other`",
                        missing.join(", "),
                        if missing.len() == 1 { "" } else { "s" },
                        file.locale
                    ),
                )
                .at(Some(file.line_of(key)), None)
                .of(name),
            );
        }
    }
}

/// Each locale's file has every key of the default's (itself or through a parent), and
/// plural messages have the `other` form; keys only a translation has are warned about.
fn translation_checks(name: &str, catalogue: &Catalogue, report: &mut Report) {
    let strings = catalogue.strings();
    let Some(t) = strings.templates.get(name) else { return };
    let Some(default) = &t.default_locale else { return };
    let Some(base) = t.own.iter().find(|f| f.locale.as_str().eq_ignore_ascii_case(default.as_str())) else { return };
    plural_form_checks(name, base, report);
    for file in t.own.iter().filter(|f| f.locale != *default) {
        // The file's own locale and its parents, short of the default, the template's
        // file before the shared one at each step (as `t` looks them up).
        let chain: Vec<&crate::render::StringFile> = file
            .locale
            .fallbacks()
            .into_iter()
            .filter(|tag| !tag.eq_ignore_ascii_case(default.as_str()))
            .flat_map(|tag| {
                t.own.iter().chain(&strings.shared).filter(move |f| f.locale.as_str().eq_ignore_ascii_case(tag))
            })
            .collect();
        for (key, message) in &base.messages {
            let found = chain.iter().find_map(|f| f.messages.get(key));
            match (found, message) {
                (None, _) => report.findings.push(
                    Finding::new(
                        Severity::Error,
                        "missing_translation",
                        &file.path,
                        format!("`{key}` has no {} message ({}:{} has it)", file.locale, base.path, base.line_of(key)),
                    )
                    .of(name),
                ),
                (Some(Message::Text(_)), Message::Plural(_)) => report.findings.push(
                    Finding::new(
                        Severity::Warning,
                        "plural_mismatch",
                        &file.path,
                        format!("`{key}` is a plural message in {} and plain text here", base.path),
                    )
                    .at(Some(file.line_of(key)), None)
                    .of(name),
                ),
                _ => {}
            }
        }
        plural_form_checks(name, file, report);
        for key in file.messages.keys().filter(|k| !base.messages.contains_key(*k)) {
            report.findings.push(
                Finding::new(
                    Severity::Warning,
                    "unused_translation",
                    &file.path,
                    format!("`{key}` is not in the default locale's {}: a typo, or a key to add there", base.path),
                )
                .at(Some(file.line_of(key)), None)
                .of(name),
            );
        }
    }
}
