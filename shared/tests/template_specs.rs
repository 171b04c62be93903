//! Runs the external template suites in ../shared/spec/ against herald's engine
//! (`herald::render::engine::registry(Escape::Html)`, handlebars-rust with herald's helpers):
//!
//! - the Mustache spec, current (`mustache-spec/*.json`) and the 2015 pin that
//!   handlebars.js uses (`mustache-spec/pinned-83b0721/*.json`);
//! - the handlebars.js spec exported as JSON (`handlebars-spec/*.json`).
//!
//! Every runnable case must pass or be listed in `KNOWN_FAILURES` with the reason.
//! A listed case that passes (or no longer exists) fails the test, so the list stays
//! honest. Cases that need JavaScript (helpers, decorators, functions in the data,
//! Mustache lambdas) or a compile/runtime option handlebars-rust has no equivalent for
//! are skipped and counted.
//!
//! Strict mode: herald's registry is strict (a missing variable is an error). The
//! Mustache spec and the handlebars.js spec outside `{"strict": true}` cases assume
//! non-strict rendering (a missing variable renders as ""), so those cases run on the
//! same registry with `set_strict_mode(false)`; `{"strict": true}` cases (strict.json)
//! run on the strict registry as-is.
//!
//! Option mapping: `strict` -> strict mode, `noEscape` -> `no_escape`, `preventIndent`
//! -> `set_prevent_indent`, `compat` -> `set_recursive_lookup` (handlebars.js "compat"
//! is exactly its recursive, Mustache-style context lookup); `data: true` is the
//! default. Everything else is skipped as "unsupported option".

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, Template};
use herald::render::engine::{Escape, registry};
use serde_json::Value;

// ---------------------------------------------------------------------------------
// Known failures, grouped by cause.
// ---------------------------------------------------------------------------------

const KNOWN_FAILURES: &[(&str /* file */, &str /* case name */, &str /* reason */)] = &[];

// ---------------------------------------------------------------------------------
// Cases.
// ---------------------------------------------------------------------------------

/// Registry settings a case asks for.
#[derive(Debug, Default, Clone, Copy)]
struct Options {
    strict: bool,
    no_escape: bool,
    prevent_indent: bool,
    recursive_lookup: bool,
}

/// What a case checks.
#[derive(Debug)]
enum Expect {
    /// Rendering gives exactly this text.
    Output(String),
    /// Compiling or rendering fails.
    Error,
    /// The template compiles (handlebars.js parser cases: `expected` is an AST dump
    /// we don't compare).
    Compiles,
    /// Compiling the template fails (parser cases with `exception`).
    CompileError,
}

#[derive(Debug)]
struct Case {
    name: String,
    template: String,
    data: Value,
    partials: Vec<(String, String)>,
    options: Options,
    expect: Expect,
}

/// Why a case is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Skip {
    /// JavaScript helpers, decorators, functions in the data, Mustache lambdas.
    NeedsJs,
    /// A compile/runtime option handlebars-rust has no equivalent for.
    Unsupported,
    /// tokenizer.json: `expected` is the Jison token stream, not output.
    NotRendering,
}

enum Classified {
    Run(Case),
    Skip(String /* name */, Skip, String /* reason */),
}

// ---------------------------------------------------------------------------------
// Running.
// ---------------------------------------------------------------------------------

fn spec_root() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

/// herald's HTML registry configured for one case.
fn engine_for(case: &Case) -> Result<Handlebars<'static>, String> {
    let mut h = registry(Escape::Html);
    // herald is strict; the suites assume non-strict unless the case says otherwise.
    h.set_strict_mode(case.options.strict);
    if case.options.no_escape {
        h.register_escape_fn(handlebars::no_escape);
    }
    // Both must be set before partials are registered (prevent_indent is applied
    // when a template is compiled).
    h.set_prevent_indent(case.options.prevent_indent);
    h.set_recursive_lookup(case.options.recursive_lookup);
    for (name, source) in &case.partials {
        h.register_partial(name, source).map_err(|e| format!("partial {name:?}: {e}"))?;
    }
    Ok(h)
}

/// `Ok(())` on pass, otherwise what we got instead.
fn run_case(case: &Case) -> Result<(), String> {
    match &case.expect {
        Expect::Compiles => Template::compile(&case.template)
            .map(|_| ())
            .map_err(|e| format!("compile error: {e}")),
        Expect::CompileError => match Template::compile(&case.template) {
            Ok(_) => Err("compiled without error".to_owned()),
            Err(_) => Ok(()),
        },
        Expect::Output(expected) => {
            let h = engine_for(case)?;
            match h.render_template(&case.template, &case.data) {
                Ok(out) if &out == expected => Ok(()),
                Ok(out) => Err(out),
                Err(e) => Err(format!("error: {e}")),
            }
        }
        Expect::Error => {
            let rendered = engine_for(case).and_then(|h| {
                h.render_template(&case.template, &case.data)
                    .map_err(|e| e.to_string())
            });
            match rendered {
                Ok(out) => Err(format!("rendered without error: {out:?}")),
                Err(_) => Ok(()),
            }
        }
    }
}

#[derive(Default)]
struct FileStats {
    total: usize,
    pass: usize,
    known: usize,
    skipped: BTreeMap<Skip, usize>,
}

#[derive(Default)]
struct Report {
    problems: Vec<String>,
    /// (file, case name) of every listed case that failed as expected.
    seen_known: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
    /// How many cases were skipped for each reason.
    skip_reasons: BTreeMap<(Skip, String), usize>,
    totals: FileStats,
    lines: Vec<String>,
}

fn known_reason(file: &str, name: &str) -> Option<&'static str> {
    KNOWN_FAILURES
        .iter()
        .find(|(f, n, _)| *f == file && *n == name)
        .map(|(_, _, reason)| *reason)
}

fn describe(case: &Case, expected: &str, actual: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "  template: {:?}", case.template);
    for (name, source) in &case.partials {
        let _ = writeln!(s, "  partial {name:?}: {source:?}");
    }
    let _ = writeln!(s, "  data:     {}", case.data);
    let _ = writeln!(s, "  expected: {expected}");
    let _ = write!(s, "  actual:   {actual}");
    s
}

fn expected_text(expect: &Expect) -> String {
    match expect {
        Expect::Output(s) => format!("{s:?}"),
        Expect::Error => "an error".to_owned(),
        Expect::Compiles => "the template compiles".to_owned(),
        Expect::CompileError => "a compile error".to_owned(),
    }
}

fn run_file(report: &mut Report, label: &str, file: &str, cases: Vec<Classified>) {
    let mut stats = FileStats::default();
    for classified in cases {
        stats.total += 1;
        match classified {
            Classified::Skip(name, why, reason) => {
                *stats.skipped.entry(why).or_default() += 1;
                *report.skip_reasons.entry((why, reason)).or_default() += 1;
                report.skipped.push((file.to_owned(), name));
            }
            Classified::Run(case) => {
                let outcome = run_case(&case);
                match (outcome, known_reason(file, &case.name)) {
                    (Ok(()), None) => stats.pass += 1,
                    (Ok(()), Some(reason)) => {
                        stats.pass += 1;
                        report.problems.push(format!(
                            "{file}: {:?} passes now but is listed in KNOWN_FAILURES ({reason}); \
                             remove it from the list",
                            case.name
                        ));
                    }
                    (Err(_), Some(_)) => {
                        stats.known += 1;
                        report.seen_known.push((file.to_owned(), case.name.clone()));
                    }
                    (Err(actual), None) => {
                        report.problems.push(format!(
                            "{file}: {:?} fails\n{}",
                            case.name,
                            describe(&case, &expected_text(&case.expect), &actual)
                        ));
                    }
                }
            }
        }
    }
    let failed = stats.total - stats.pass - stats.known - stats.skipped.values().sum::<usize>();
    let runnable = stats.total - stats.skipped.values().sum::<usize>();
    let mut line = format!("{label} {}: {}/{} pass", short_name(file), stats.pass, runnable);
    if stats.known > 0 {
        let _ = write!(line, ", {} known", stats.known);
    }
    if failed > 0 {
        let _ = write!(line, ", {failed} FAILED");
    }
    for (why, n) in &stats.skipped {
        let _ = write!(line, ", {n} skipped ({})", skip_label(*why));
    }
    eprintln!("{line}");
    report.lines.push(line);
    report.totals.total += stats.total;
    report.totals.pass += stats.pass;
    report.totals.known += stats.known;
    for (why, n) in stats.skipped {
        *report.totals.skipped.entry(why).or_default() += n;
    }
}

fn short_name(file: &str) -> &str {
    file.rsplit_once('/').map_or(file, |(_, f)| f)
}

fn skip_label(why: Skip) -> &'static str {
    match why {
        Skip::NeedsJs => "needs JS",
        Skip::Unsupported => "unsupported option",
        Skip::NotRendering => "not a rendering test",
    }
}

/// Checks the list entries that belong to `suite_dir` and panics with every problem.
fn finish(label: &str, suite_dir: &str, mut report: Report) {
    for (file, name, reason) in KNOWN_FAILURES {
        if file.rsplit_once('/').map(|(dir, _)| dir) != Some(suite_dir) {
            continue;
        }
        let key = ((*file).to_owned(), (*name).to_owned());
        if report.skipped.contains(&key) {
            report.problems.push(format!(
                "{file}: {name:?} is listed in KNOWN_FAILURES ({reason}) but is skipped, not run; \
                 remove it from the list"
            ));
        } else if !report.seen_known.contains(&key) {
            report.problems.push(format!(
                "{file}: {name:?} is listed in KNOWN_FAILURES ({reason}) but no such case ran; \
                 remove it from the list"
            ));
        }
    }
    let t = &report.totals;
    let runnable = t.total - t.skipped.values().sum::<usize>();
    let mut summary = format!(
        "summary {label}: {} cases, {}/{} runnable pass, {} known failures",
        t.total, t.pass, runnable, t.known
    );
    for (why, n) in &t.skipped {
        let _ = write!(summary, ", {n} skipped ({})", skip_label(*why));
    }
    let _ = write!(summary, ", {} unexpected", report.problems.len());
    for ((why, reason), n) in &report.skip_reasons {
        eprintln!("  skipped ({}): {n} x {reason}", skip_label(*why));
    }
    eprintln!("{summary}");
    if !report.problems.is_empty() {
        panic!(
            "{label}: {} problem(s):\n\n{}\n\n{summary}",
            report.problems.len(),
            report.problems.join("\n\n")
        );
    }
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// True if the value holds code: handlebars-spec `{"!code": true, ...}` or a Mustache
/// lambda `{"__tag__": "code", ...}`.
fn has_code(v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            map.get("!code").is_some_and(|c| c == &Value::Bool(true))
                || map.get("__tag__").is_some_and(|t| t == "code")
                || map.values().any(has_code)
        }
        Value::Array(items) => items.iter().any(has_code),
        _ => false,
    }
}

fn partials_of(v: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(map)) = v else { return Vec::new() };
    map.iter()
        .map(|(name, source)| {
            let source = source
                .as_str()
                .unwrap_or_else(|| panic!("partial {name:?} is not a string: {source}"));
            (name.clone(), source.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// Mustache.
// ---------------------------------------------------------------------------------

fn mustache_cases(doc: &Value) -> Vec<Classified> {
    let tests = doc["tests"].as_array().expect("`tests` array");
    tests
        .iter()
        .map(|t| {
            let name = t["name"].as_str().expect("name").to_owned();
            if has_code(t) {
                return Classified::Skip(name, Skip::NeedsJs, "lambda (code in the data)".into());
            }
            Classified::Run(Case {
                name,
                template: t["template"].as_str().expect("template").to_owned(),
                data: t["data"].clone(),
                partials: partials_of(t.get("partials")),
                options: Options::default(),
                expect: Expect::Output(t["expected"].as_str().expect("expected").to_owned()),
            })
        })
        .collect()
}

fn run_mustache(label: &str, suite_dir: &str) {
    let Some(root) = spec_root() else { return };
    let dir = root.join(suite_dir);
    let mut report = Report::default();
    for path in json_files(&dir) {
        let file = format!("{suite_dir}/{}", path.file_name().unwrap().to_string_lossy());
        let cases = mustache_cases(&read_json(&path));
        run_file(&mut report, label, &file, cases);
    }
    finish(label, suite_dir, report);
}

#[test]
fn mustache_spec_current() {
    run_mustache("mustache", "mustache-spec");
}

#[test]
fn mustache_spec_pinned() {
    run_mustache("mustache pinned-83b0721", "mustache-spec/pinned-83b0721");
}

// ---------------------------------------------------------------------------------
// Handlebars.
// ---------------------------------------------------------------------------------

fn handlebars_name(c: &Value) -> String {
    let mut name = format!(
        "{} / {}",
        c["description"].as_str().unwrap_or(""),
        c["it"].as_str().unwrap_or("")
    );
    if let Some(n) = c.get("number").and_then(Value::as_str) {
        let _ = write!(name, " #{n}");
    }
    name
}

/// Maps `compileOptions` onto registry settings, or says which option has no equivalent.
fn compile_options(opts: Option<&Value>) -> Result<Options, String> {
    let mut out = Options::default();
    let Some(opts) = opts else { return Ok(out) };
    let map = opts.as_object().ok_or("compileOptions is not an object")?;
    for (key, value) in map {
        match (key.as_str(), value) {
            ("strict", Value::Bool(b)) => out.strict = *b,
            ("noEscape", Value::Bool(b)) => out.no_escape = *b,
            ("preventIndent", Value::Bool(b)) => out.prevent_indent = *b,
            ("compat", Value::Bool(b)) => out.recursive_lookup = *b,
            // @data variables are always on in handlebars-rust.
            ("data", Value::Bool(true)) => {}
            ("data", Value::Bool(false)) => {
                return Err("compileOptions data:false (handlebars-rust cannot turn @data off)".into());
            }
            ("knownHelpers" | "knownHelpersOnly", _) => {
                return Err(format!(
                    "compileOptions {key} (handlebars-rust has no known-helpers compile mode)"
                ));
            }
            ("assumeObjects", _) => {
                return Err("compileOptions assumeObjects (no handlebars-rust equivalent)".into());
            }
            ("ignoreStandalone", _) => {
                return Err(
                    "compileOptions ignoreStandalone (handlebars-rust always strips standalone lines)"
                        .into(),
                );
            }
            ("explicitPartialContext", _) => {
                return Err("compileOptions explicitPartialContext (no handlebars-rust equivalent)".into());
            }
            ("stringParams" | "trackIds", _) => {
                return Err(format!("compileOptions {key} (handlebars.js 4 only, removed in 5)"));
            }
            _ => return Err(format!("compileOptions {key}: {value} (no mapping)")),
        }
    }
    Ok(out)
}

fn handlebars_cases(file: &str, doc: &Value) -> Vec<Classified> {
    let cases = doc.as_array().expect("array of cases");
    cases
        .iter()
        .map(|c| {
            let name = handlebars_name(c);
            let template = c["template"].as_str().expect("template").to_owned();
            let expects_error =
                c.get("exception").is_some_and(|e| e != &Value::Bool(false)) || c.get("expected").is_none();
            if file == "tokenizer.json" {
                return Classified::Skip(name, Skip::NotRendering, "Jison token stream".into());
            }
            if file == "parser.json" {
                let expect = if expects_error { Expect::CompileError } else { Expect::Compiles };
                return Classified::Run(Case {
                    name,
                    template,
                    data: Value::Null,
                    partials: Vec::new(),
                    options: Options::default(),
                    expect,
                });
            }
            if c.get("helpers").is_some() || c.get("decorators").is_some() || has_code(c) {
                return Classified::Skip(name, Skip::NeedsJs, "JavaScript helpers/decorators/data".into());
            }
            let options = match compile_options(c.get("compileOptions")) {
                Ok(o) => o,
                Err(reason) => return Classified::Skip(name, Skip::Unsupported, reason),
            };
            if let Some(rt) = c.get("runtimeOptions") {
                return Classified::Skip(
                    name,
                    Skip::Unsupported,
                    format!("runtimeOptions {rt} (handlebars-rust has no render-time @data frame)"),
                );
            }
            let expect = if expects_error {
                Expect::Error
            } else {
                Expect::Output(c["expected"].as_str().expect("expected string").to_owned())
            };
            Classified::Run(Case {
                name,
                template,
                data: c.get("data").cloned().unwrap_or(Value::Null),
                partials: partials_of(c.get("partials")),
                options,
                expect,
            })
        })
        .collect()
}

#[test]
fn handlebars_spec() {
    let Some(root) = spec_root() else { return };
    let suite_dir = "handlebars-spec";
    let mut report = Report::default();
    for path in json_files(&root.join(suite_dir)) {
        let short = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = format!("{suite_dir}/{short}");
        let cases = handlebars_cases(&short, &read_json(&path));
        run_file(&mut report, "handlebars", &file, cases);
    }
    finish("handlebars", suite_dir, report);
}
