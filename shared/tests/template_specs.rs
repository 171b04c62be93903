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
//! is its recursive, Mustache-style context lookup); `data: true` is the default.
//! Everything else (`knownHelpersOnly`, `assumeObjects`, `explicitPartialContext`,
//! `ignoreStandalone`, `data: false`, custom `runtimeOptions.data`, ...) is skipped as
//! "unsupported option" with the reason. herald's registry itself never turns on
//! recursive lookup, so the Mustache suites run without it.
//!
//! Expected errors (`exception`, or no `expected`) pass when compiling or rendering
//! fails with any error: handlebars.js messages are not comparable, so such a case can
//! pass on an unrelated error (e.g. a template that does not compile).
//!
//! Every template and partial goes through `compat::prepare_source` and the data through
//! `compat::js_numbers`, as in the catalogue and the pipeline: inverted sections
//! `{{^name}}`, dotted section names `{{#a.b}}`, `.` as a path, literal keys
//! `{{"a b"}}`, whitespace control on comments and JavaScript number printing work
//! through those (render/compat.rs). Mustache-style sections on data values
//! (`{{#items}}…{{/items}}`) run through herald's `blockHelperMissing`
//! (render/mustache.rs), as in handlebars.js. The main causes of the known failures
//! below are custom delimiters, Mustache's context-stack lookup (which herald leaves off
//! and handlebars-rust's recursive lookup only approximates), the context of
//! `{{> @partial-block}}` and partial indentation.
//!
//! handlebars-spec parser.json compares handlebars.js AST dumps, so those cases only
//! check that the template compiles (or fails to, for `exception` cases);
//! tokenizer.json (Jison token streams) is skipped as "not a rendering test".
//!
//! Output: one line per file (`mustache interpolation.json: 32/42 pass, 10 known`) via
//! `eprintln!` (shown on failure or with `--nocapture`), and a summary line per suite
//! written straight to stderr, so it shows on every run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use handlebars::{Handlebars, Template};
use herald::render::compat::{js_numbers, prepare_source};
use herald::render::engine::{Escape, registry};
use serde_json::Value;

// ---------------------------------------------------------------------------------
// Known failures, grouped by cause. Each reason was checked against handlebars-rust
// 6.4 (rewriting the template to isolate the cause where a case hits several).
// ---------------------------------------------------------------------------------

macro_rules! parent_lookup {
    () => {
        "needs Mustache's recursive parent-context lookup, which herald's registry leaves off \
         (handlebars-rust `set_recursive_lookup`, handlebars.js `compat: true`)"
    };
}
macro_rules! recursive_path {
    () => {
        "handlebars-rust's recursive lookup resolves only a single name (`{{root}}`) in the parent \
         contexts, not a path (`{{c.d}}`, `{{omg.yes}}`); handlebars.js looks up the path's first \
         segment"
    };
}
macro_rules! context_stack {
    () => {
        "handlebars-rust's recursive lookup walks up the data path of the current context, not the \
         stack of enclosing sections: inside `{{#b}}` nested in `{{#a}}`, with `b` found at the \
         root, `a`'s fields are out of reach; Mustache searches every enclosing context"
    };
}
macro_rules! accepts_invalid {
    () => {
        "handlebars-rust accepts templates handlebars.js rejects: `this` in the middle of a path \
         (`foo/this/bar`) and a stray `}` after `{{a}}` (printed literally)"
    };
}
macro_rules! partial_block_context {
    () => {
        "handlebars-rust renders `{{> @partial-block}}` with the context of the `{{#> partial}}` \
         call, not the current context where it is invoked (inside `{{#with}}`/`{{#each}}` in the \
         partial)"
    };
}

const STRICT_SECTION: &str = "herald's choice: in strict mode a section on an absent value \
     (`{{#hello}}`, `{{^hello}}`, `{{#hello.bar}}` with no `hello` or `bar`) renders its \
     `{{else}}` (for `{{^…}}` its block) or nothing, like herald's #each/#with; handlebars.js \
     strict mode throws on such an ambiguous block";
const PARENT_LOOKUP_AND_RECURSIVE_PATH: &str = concat!(parent_lookup!(), "; and even with it on, ", recursive_path!());
const PARENT_LOOKUP_AND_CONTEXT_STACK: &str = concat!(parent_lookup!(), "; and even with it on, ", context_stack!());
const RECURSIVE_PATH: &str = recursive_path!();
const PARENT_LOOKUP: &str = parent_lookup!();
const PARTIAL_PARENT_LOOKUP: &str = "handlebars-rust's recursive lookup (`compat`) does not reach \
     the contexts outside a partial: the partial gets a copy of its context, not a path into the \
     data, so `{{root}}` inside it is not found";
const HASH_PARENT: &str = "`..` as a hash value (`{{> dude others=..}}`) is a parse error in handlebars-rust";
macro_rules! delimiters {
    () => {
        "custom delimiters (`{{=<% %>=}}`) are not supported by handlebars-rust (nor by handlebars.js, \
         whose spec runner skips these cases)"
    };
}
const DELIMITERS: &str = delimiters!();
const MISSING_PARTIAL: &str = "a missing partial is an error in Handlebars (handlebars-rust \
     \"Partial not found\", handlebars.js \"The partial … could not be found\"); Mustache renders \
     nothing";
const PARTIAL_STANDALONE_INDENT: &str = "Handlebars indents every output line of a standalone \
     partial, including continuation lines of a multi-line `{{{value}}}`; Mustache indents only \
     the partial's own lines (handlebars.js fails this too)";
const STANDALONE_EOF: &str = "handlebars-rust does not treat a tag on the last line as standalone \
     when only spaces follow it (no newline): `foo\\n {{> dude}} ` keeps the trailing space";
const THIS_SEGMENT: &str = "handlebars-rust treats the escaped segment `[this]` as the `this` \
     keyword, so `{{[this]}}` / `{{text/[this]}}` render the object (`[object]`) instead of the \
     key \"this\"";
const PATH_CHARS: &str = "handlebars-rust's name grammar is narrower: `?` is not allowed in names \
     or partial names (`{{foo?}}`, `{{> shared/partial?.bar}}`) and `\\]` cannot be escaped \
     inside `[…]`";
const PARTIAL_NAME_QUOTED: &str = "a quoted or bracketed partial name with characters handlebars-rust's \
     partial names cannot hold (`{{> '+404/asdf?.bar'}}`, `{{> [+404/…]}}`): prepare_source unquotes \
     only names that need no quoting (`{{> \"footer\"}}`), and handlebars-rust keeps the quotes or \
     brackets in the name (\"Partial not found\")";
const ACCEPTS_INVALID: &str = accepts_invalid!();
const ACCEPTS_INVALID_IN_SKIPPED_SECTION: &str = concat!(
    accepts_invalid!(),
    "; here the bad path is inside a section on an absent value, so it is never evaluated either"
);
const PARTIAL_BLOCK_CONTEXT: &str = partial_block_context!();
const PARTIAL_BLOCK_DATA: &str = "handlebars-rust does not expose `@partial-block` as a data \
     variable, so `{{#if @partial-block}}` is always false";
const ARRAY_TO_STRING: &str = "an array in `{{arr}}` renders as JavaScript's `1,2` in handlebars.js \
     and as `[1, 2]` in handlebars-rust";

const M_DELIMITERS: &str = "mustache-spec/delimiters.json";
const M_PARTIALS: &str = "mustache-spec/partials.json";
const M_SECTIONS: &str = "mustache-spec/sections.json";
const MP_DELIMITERS: &str = "mustache-spec/pinned-83b0721/delimiters.json";
const MP_PARTIALS: &str = "mustache-spec/pinned-83b0721/partials.json";
const MP_SECTIONS: &str = "mustache-spec/pinned-83b0721/sections.json";
const H_BASIC: &str = "handlebars-spec/basic.json";
const H_BLOCKS: &str = "handlebars-spec/blocks.json";
const H_PARSER: &str = "handlebars-spec/parser.json";
const H_PARTIALS: &str = "handlebars-spec/partials.json";
const H_REGRESSIONS: &str = "handlebars-spec/regressions.json";
const H_STRICT: &str = "handlebars-spec/strict.json";
const H_WHITESPACE_CONTROL: &str = "handlebars-spec/whitespace-control.json";

/// (file under ../shared/spec/, case name, reason). Mustache case names are `name`;
/// handlebars-spec names are `description / it` plus ` #number` when present.
const KNOWN_FAILURES: &[(&str /* file */, &str /* case name */, &str /* reason */)] = &[
    // STRICT_SECTION
    (H_STRICT, "strict - strict mode / should throw on ambiguous blocks", STRICT_SECTION),
    (H_STRICT, "strict - strict mode / should throw on ambiguous blocks #01", STRICT_SECTION),
    (H_STRICT, "strict - strict mode / should throw on ambiguous blocks #02", STRICT_SECTION),
    // PARENT_LOOKUP_AND_RECURSIVE_PATH
    (M_SECTIONS, "Parent contexts", PARENT_LOOKUP_AND_RECURSIVE_PATH),
    (M_SECTIONS, "List Contexts", PARENT_LOOKUP_AND_RECURSIVE_PATH),
    // PARENT_LOOKUP_AND_CONTEXT_STACK
    (MP_SECTIONS, "Deeply Nested Contexts", PARENT_LOOKUP_AND_CONTEXT_STACK),
    (M_SECTIONS, "Deeply Nested Contexts", PARENT_LOOKUP_AND_CONTEXT_STACK),
    // PARENT_LOOKUP
    (M_SECTIONS, "Variable test", PARENT_LOOKUP),
    // RECURSIVE_PATH
    (H_BLOCKS, "blocks - compat mode / block with deep recursive pathed lookup", RECURSIVE_PATH),
    // PARTIAL_PARENT_LOOKUP
    (H_PARTIALS, "partials - compat mode / partials can access parents", PARTIAL_PARENT_LOOKUP),
    (H_PARTIALS, "partials - compat mode / partials can access parents with custom context", PARTIAL_PARENT_LOOKUP),
    (H_PARTIALS, "partials - compat mode / partials inherit compat", PARTIAL_PARENT_LOOKUP),
    // HASH_PARENT
    (H_PARTIALS, "partials / partials with parameters", HASH_PARENT),
    // DELIMITERS
    (M_DELIMITERS, "Pair Behavior", DELIMITERS),
    (M_DELIMITERS, "Special Characters", DELIMITERS),
    (M_DELIMITERS, "Sections", DELIMITERS),
    (M_DELIMITERS, "Inverted Sections", DELIMITERS),
    (M_DELIMITERS, "Partial Inheritence", DELIMITERS),
    (M_DELIMITERS, "Post-Partial Behavior", DELIMITERS),
    (M_DELIMITERS, "Surrounding Whitespace", DELIMITERS),
    (M_DELIMITERS, "Outlying Whitespace (Inline)", DELIMITERS),
    (M_DELIMITERS, "Standalone Tag", DELIMITERS),
    (M_DELIMITERS, "Indented Standalone Tag", DELIMITERS),
    (M_DELIMITERS, "Standalone Line Endings", DELIMITERS),
    (M_DELIMITERS, "Standalone Without Previous Line", DELIMITERS),
    (M_DELIMITERS, "Standalone Without Newline", DELIMITERS),
    (M_DELIMITERS, "Pair with Padding", DELIMITERS),
    (MP_DELIMITERS, "Pair Behavior", DELIMITERS),
    (MP_DELIMITERS, "Special Characters", DELIMITERS),
    (MP_DELIMITERS, "Sections", DELIMITERS),
    (MP_DELIMITERS, "Inverted Sections", DELIMITERS),
    (MP_DELIMITERS, "Partial Inheritence", DELIMITERS),
    (MP_DELIMITERS, "Post-Partial Behavior", DELIMITERS),
    (MP_DELIMITERS, "Surrounding Whitespace", DELIMITERS),
    (MP_DELIMITERS, "Outlying Whitespace (Inline)", DELIMITERS),
    (MP_DELIMITERS, "Standalone Tag", DELIMITERS),
    (MP_DELIMITERS, "Indented Standalone Tag", DELIMITERS),
    (MP_DELIMITERS, "Standalone Line Endings", DELIMITERS),
    (MP_DELIMITERS, "Standalone Without Previous Line", DELIMITERS),
    (MP_DELIMITERS, "Standalone Without Newline", DELIMITERS),
    (MP_DELIMITERS, "Pair with Padding", DELIMITERS),
    // MISSING_PARTIAL
    (M_PARTIALS, "Failed Lookup", MISSING_PARTIAL),
    (MP_PARTIALS, "Failed Lookup", MISSING_PARTIAL),
    // PARTIAL_STANDALONE_INDENT
    (M_PARTIALS, "Standalone Indentation", PARTIAL_STANDALONE_INDENT),
    (MP_PARTIALS, "Standalone Indentation", PARTIAL_STANDALONE_INDENT),
    // STANDALONE_EOF
    (H_WHITESPACE_CONTROL, "whitespace control / should strip whitespace around partials #03", STANDALONE_EOF),
    (H_WHITESPACE_CONTROL, "whitespace control / should strip whitespace around partials #04", STANDALONE_EOF),
    // THIS_SEGMENT
    (H_BASIC, "basic context / this keyword nested inside path #01", THIS_SEGMENT),
    (H_BASIC, "basic context / this keyword nested inside path #02", THIS_SEGMENT),
    // PATH_CHARS
    (H_PARSER, "parser / parses simple mustaches #05", PATH_CHARS),
    (H_PARSER, "parser / parses mustaches with escaped [] in a path", PATH_CHARS),
    (H_PARSER, "parser / parses a partial with a complex name", PATH_CHARS),
    (H_PARTIALS, "partials / Partials with complex path", PATH_CHARS),
    // PARTIAL_NAME_QUOTED
    (H_PARTIALS, "partials / Partials with escaped", PARTIAL_NAME_QUOTED),
    (H_PARTIALS, "partials / Partials with string", PARTIAL_NAME_QUOTED),
    // ACCEPTS_INVALID
    (H_PARSER, "parser / should handle invalid paths #02", ACCEPTS_INVALID),
    (H_REGRESSIONS, "Regressions / GH-437: Matching escaping #01", ACCEPTS_INVALID),
    // ACCEPTS_INVALID_IN_SKIPPED_SECTION
    (H_BASIC, "basic context / this keyword nested inside path", ACCEPTS_INVALID_IN_SKIPPED_SECTION),
    (H_BASIC, "basic context / this keyword nested inside helpers param", ACCEPTS_INVALID_IN_SKIPPED_SECTION),
    // PARTIAL_BLOCK_CONTEXT
    (
        H_PARTIALS,
        "partials - partial blocks / should allow the #each-helper to be used along with partial-blocks",
        PARTIAL_BLOCK_CONTEXT,
    ),
    (H_PARTIALS, "partials - partial blocks / should render block from partial with context", PARTIAL_BLOCK_CONTEXT),
    (
        H_PARTIALS,
        "partials - partial blocks / should render block from partial with context (twice)",
        PARTIAL_BLOCK_CONTEXT,
    ),
    // PARTIAL_BLOCK_DATA
    (H_REGRESSIONS, "Regressions / GH-1341: 4.0.7 release breaks {{#if @partial-block}} usage", PARTIAL_BLOCK_DATA),
    // ARRAY_TO_STRING
    (H_REGRESSIONS, "Regressions / GH-676: Using array in escaping mustache fails", ARRAY_TO_STRING),
];

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
        let source = prepare_source(source).map_err(|e| format!("partial {name:?}: {e}"))?;
        h.register_partial(name, source.as_ref()).map_err(|e| format!("partial {name:?}: {e}"))?;
    }
    Ok(h)
}

/// Compiles the case's template as the catalogue does: `prepare_source`, then the crate.
fn compile(case: &Case) -> Result<Template, String> {
    let source = prepare_source(&case.template).map_err(|e| format!("prepare_source: {e}"))?;
    Template::compile(&source).map_err(|e| format!("compile error: {e}"))
}

/// Renders the case as the pipeline does: prepared sources, numbers as JavaScript prints them.
fn render(case: &Case) -> Result<String, String> {
    let h = engine_for(case)?;
    let source = prepare_source(&case.template).map_err(|e| format!("prepare_source: {e}"))?;
    let mut data = case.data.clone();
    js_numbers(&mut data);
    h.render_template(&source, &data).map_err(|e| format!("error: {e}"))
}

/// `Ok(())` on pass, otherwise what we got instead.
fn run_case(case: &Case) -> Result<(), String> {
    match &case.expect {
        Expect::Compiles => compile(case).map(|_| ()),
        Expect::CompileError => match compile(case) {
            Ok(_) => Err("compiled without error".to_owned()),
            Err(_) => Ok(()),
        },
        Expect::Output(expected) => match render(case) {
            Ok(out) if &out == expected => Ok(()),
            Ok(out) => Err(out),
            Err(e) => Err(e),
        },
        Expect::Error => match render(case) {
            Ok(out) => Err(format!("rendered without error: {out:?}")),
            Err(_) => Ok(()),
        },
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
    /// (file, case name) of every listed case that ran (failing as expected or not).
    seen_listed: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
    /// How many cases were skipped for each reason.
    skip_reasons: BTreeMap<(Skip, String), usize>,
    totals: FileStats,
}

fn known_reason(file: &str, name: &str) -> Option<&'static str> {
    KNOWN_FAILURES.iter().find(|(f, n, _)| *f == file && *n == name).map(|(_, _, reason)| *reason)
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
                        report.seen_listed.push((file.to_owned(), case.name.clone()));
                        report.problems.push(format!(
                            "{file}: {:?} passes now but is listed in KNOWN_FAILURES ({reason}); \
                             remove it from the list",
                            case.name
                        ));
                    }
                    (Err(_), Some(_)) => {
                        stats.known += 1;
                        report.seen_listed.push((file.to_owned(), case.name.clone()));
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
        } else if !report.seen_listed.contains(&key) {
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
    // libtest captures print!/eprintln! (shown on failure or with --nocapture); a direct
    // write to the stderr handle is not captured, so the summary shows on every run.
    let _ = writeln!(std::io::stderr(), "{summary}");
    if !report.problems.is_empty() {
        panic!("{label}: {} problem(s):\n\n{}\n\n{summary}", report.problems.len(), report.problems.join("\n\n"));
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
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
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
            let source = source.as_str().unwrap_or_else(|| panic!("partial {name:?} is not a string: {source}"));
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
    let mut name = format!("{} / {}", c["description"].as_str().unwrap_or(""), c["it"].as_str().unwrap_or(""));
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
                return Err(format!("compileOptions {key} (handlebars-rust has no known-helpers compile mode)"));
            }
            ("assumeObjects", _) => {
                return Err("compileOptions assumeObjects (no handlebars-rust equivalent)".into());
            }
            ("ignoreStandalone", _) => {
                return Err("compileOptions ignoreStandalone (handlebars-rust always strips standalone lines)".into());
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

/// Why a handlebars-spec record can't run without JavaScript, if it can't.
fn needs_js(c: &Value) -> Option<String> {
    let mut why = Vec::new();
    for key in ["helpers", "decorators"] {
        if c.get(key).is_some() {
            why.push(format!("JavaScript {key}"));
        }
    }
    for key in ["data", "partials", "runtimeOptions"] {
        if c.get(key).is_some_and(has_code) {
            why.push(format!("JavaScript functions in {key}"));
        }
    }
    // regressions "GH-1065: Sparse arrays": JSON cannot express a JS sparse array.
    if c.get("data").is_some_and(|d| d.to_string().contains("\"!sparsearray\"")) {
        why.push("a JavaScript sparse array".to_owned());
    }
    (!why.is_empty()).then(|| why.join(" + "))
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
            if let Some(reason) = needs_js(c) {
                return Classified::Skip(name, Skip::NeedsJs, reason);
            }
            let options = match compile_options(c.get("compileOptions")) {
                Ok(o) => o,
                Err(reason) => return Classified::Skip(name, Skip::Unsupported, reason),
            };
            if let Some(rt) = c.get("runtimeOptions") {
                let reason = match rt.get("data") {
                    Some(Value::Bool(false)) => {
                        "runtimeOptions data:false (handlebars-rust cannot turn @data off)".into()
                    }
                    Some(Value::Object(_)) => {
                        format!("runtimeOptions {rt} (handlebars-rust has no API to pass custom @data at render time)")
                    }
                    _ => format!("runtimeOptions {rt} (no mapping)"),
                };
                return Classified::Skip(name, Skip::Unsupported, reason);
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
