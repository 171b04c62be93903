//! `herald templates check` on a folder of deliberately broken templates: each defect
//! is reported with its file, line and code, and the exit status says so; the shipped
//! catalogue passes.

use herald_e2e::Sandbox;
use serde_json::Value;

const BROKEN: &str = "cli/tests/fixtures/broken-templates";

fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_herald"))
}

fn findings(json: &Value) -> Vec<Value> {
    json["findings"].as_array().cloned().unwrap_or_default()
}

/// The one finding with this code in this file (suffix), failing with the whole report.
fn one<'a>(all: &'a [Value], code: &str, file_suffix: &str) -> &'a Value {
    let matching: Vec<&Value> = all
        .iter()
        .filter(|f| f["code"] == code && f["file"].as_str().is_some_and(|p| p.ends_with(file_suffix)))
        .collect();
    assert_eq!(matching.len(), 1, "{code} in {file_suffix}: {matching:#?}\nall: {all:#?}");
    matching[0]
}

fn at(f: &Value) -> (Option<u64>, Option<u64>) {
    (f["line"].as_u64(), f["column"].as_u64())
}

#[test]
fn each_defect_is_reported_at_its_file_and_line() {
    let run = sandbox().run(&["templates", "check", BROKEN, "--format", "json"]);
    assert_eq!(run.code, 1, "errors exit 1\nstdout: {}\nstderr: {}", run.stdout, run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(json["ok"], false);
    let all = findings(&json);

    let f = one(&all, "syntax", "syntax-error/email.html.hbs");
    assert_eq!(f["severity"], "error");
    assert_eq!(at(f).0, Some(6), "the unclosed {{#if}} is found at the end of the file: {f}");

    let f = one(&all, "unknown_helper", "unknown-helper/sms.hbs");
    assert_eq!(at(f), (Some(2), Some(14)));
    assert!(f["message"].as_str().is_some_and(|m| m.contains("`shout`")), "{f}");

    let f = one(&all, "unknown_partial", "unknown-partial/sms.hbs");
    assert_eq!(at(f), (Some(3), Some(1)));
    assert!(f["message"].as_str().is_some_and(|m| m.contains("`sigature`")), "{f}");

    // Only the fixture without `code` fails, at the line that prints it.
    let f = one(&all, "missing_variable", "missing-variable/email.html.hbs");
    assert_eq!(at(f), (Some(2), Some(20)));
    assert_eq!(f["fixture"], "no-code");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("`code`")), "{f}");

    // A variable missing in a partial points at the partial.
    let f = one(&all, "missing_variable", "_partials/greeting.hbs");
    assert_eq!(at(f).0, Some(1));
    assert_eq!(f["template"], "partial-error");

    // A key the template uses that the default locale lacks, at the `t` call...
    let f = one(&all, "missing_translation", "missing-translation/sms.hbs");
    assert_eq!(at(f), (Some(2), Some(1)));
    assert!(f["message"].as_str().is_some_and(|m| m.contains("farewell")), "{f}");
    // ...and a key of the default locale that fr.json lacks, in fr.json.
    let f = one(&all, "missing_translation", "missing-translation/locales/fr.json");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("`code`") && m.contains("en.json:3")), "{f}");
    let f = one(&all, "unused_translation", "missing-translation/locales/fr.json");
    assert_eq!(f["severity"], "warning");
    assert_eq!(at(f).0, Some(3));

    let f = one(&all, "sms_too_long", "long-sms/sms.hbs");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("9 gsm-7 segments")), "{f}");

    let f = one(&all, "push_payload_too_large", "big-push/push.body.hbs");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("4096")), "{f}");

    let f = one(&all, "missing_unsubscribe_link", "no-unsubscribe/email.html.hbs");
    assert_eq!(f["channel"], "email");

    let f = one(&all, "bad_fixture", "bad-fixture/fixtures/default.json");
    assert_eq!(at(f).0, Some(3));
    // The template's other fixture is still rendered.
    let samples = json["samples"].as_array().cloned().unwrap_or_default();
    assert!(
        samples.iter().any(|s| s["template"] == "bad-fixture" && s["fixture"] == "good" && s["ok"] == true),
        "{samples:#?}"
    );

    // MJML is compiled after Handlebars: the element is named, and the position is said
    // to be in the rendered markup, not given as a line of the file.
    let f = one(&all, "render_error", "mjml-error/email.mjml.hbs");
    let message = f["message"].as_str().unwrap_or_default();
    assert!(message.contains("`mj-colum`") && message.contains("line 4"), "{f}");

    // The good template, in both locales and with HTML-special data, has nothing.
    let good: Vec<&Value> = all.iter().filter(|f| f["template"] == "good").collect();
    assert!(good.is_empty(), "{good:#?}");
    let good_samples: Vec<&Value> =
        json["samples"].as_array().into_iter().flatten().filter(|s| s["template"] == "good").collect();
    // email + sms, default + fr, two fixtures.
    assert_eq!(good_samples.len(), 8, "{good_samples:#?}");
    assert!(good_samples.iter().all(|s| s["ok"] == true), "{good_samples:#?}");
    let sms = good_samples.iter().find(|s| s["channel"] == "sms" && s["locale"] == "fr" && s["fixture"] == "one-item");
    let sms = sms.expect("fr sms sample");
    assert_eq!(sms["facts"]["segments"], 1);

    // Russian needs `few` and `many` for everyday counts; French `many` (a million) is not asked for.
    let f = one(&all, "plural_forms", "plural-forms/locales/ru.json");
    assert_eq!(f["severity"], "warning");
    assert_eq!(at(f).0, Some(2));
    assert!(f["message"].as_str().is_some_and(|m| m.contains("few, many")), "{f}");
    assert!(
        !all.iter().any(|f| f["code"] == "plural_forms" && f["file"].as_str().is_some_and(|p| p.ends_with("fr.json")))
    );

    // Every finding in a file has a line (a whole-file defect is at line 1).
    for f in &all {
        let file = f["file"].as_str().unwrap_or_default();
        if file.ends_with(".hbs") || file.ends_with(".json") {
            assert!(f["line"].as_u64().is_some(), "{f}");
        }
    }
    assert_eq!(at(one(&all, "sms_too_long", "long-sms/sms.hbs")).0, Some(1));

    // Nothing else: every finding above is accounted for.
    assert_eq!(json["errors"], 12, "{all:#?}");
    assert_eq!(json["warnings"], 2, "{all:#?}");
}

#[test]
fn text_format_prints_file_line_column_and_exits_non_zero() {
    let run = sandbox().run(&["templates", "check", BROKEN]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout.lines().any(|l| l.contains("unknown-helper/sms.hbs:2:14: error[unknown_helper]")),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("12 error(s), 2 warning(s)"), "{}", run.stderr);
}

#[test]
fn the_shipped_templates_pass() {
    let run = sandbox().run(&["templates", "check", "templates", "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    assert_eq!(run.code, 0, "{:#}", json["findings"]);
    assert_eq!(json["errors"], 0);
    assert!(json["templates"].as_u64().is_some_and(|n| n >= 3), "{json}");
    assert!(json["samples"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn a_missing_folder_is_a_clear_error() {
    let run = sandbox().run(&["templates", "check", "no/such/folder"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no/such/folder: no such templates folder"), "{}", run.stderr);
}

#[test]
fn without_an_email_section_emails_are_still_built_and_checked() {
    let sb = sandbox();
    let config = sb.path("bare.toml");
    std::fs::write(&config, "templates = \"templates\"\n").expect("config");
    let run = sb.run(&["--config", config.to_str().expect("utf-8"), "templates", "check", BROKEN, "--format", "json"]);
    let json: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
    let all = findings(&json);
    // A sample sender and unsubscribe URL stand in: the marketing checks still run.
    one(&all, "missing_unsubscribe_link", "no-unsubscribe/email.html.hbs");
    assert!(!all.iter().any(|f| f["message"].as_str().is_some_and(|m| m.contains("email_not_configured"))), "{all:#?}");
    let good_email: Vec<&Value> = json["samples"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["template"] == "good" && s["channel"] == "email")
        .collect();
    assert!(
        !good_email.is_empty() && good_email.iter().all(|s| s["ok"] == true && s["facts"]["list_unsubscribe"] == true)
    );
}
