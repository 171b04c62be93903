//! The Handlebars engine as herald configures it: strict variables, three escaping
//! modes, and the helpers template authors get.
//!
//! Strict mode makes `{{first_name}}` an error when the data lacks it, while block
//! helpers (`#if`, `#unless`, `#each`, `#with`) and Mustache-style sections
//! (`{{#items}}…{{/items}}`, see mustache.rs) still treat an absent field as false
//! or empty, and `{{default x "fallback"}}` gives optional data a fallback.

use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson};
use serde_json::Value;
use unicode_segmentation::UnicodeSegmentation;

/// How `{{x}}` output is escaped. Triple-stash `{{{x}}}` is never escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    /// HTML bodies.
    Html,
    /// Subjects, SMS, push and plain-text bodies.
    None,
    /// Values inside JSON string literals (`push.data.json.hbs`).
    Json,
}

/// A registry in strict mode with herald's helpers and the given escaping.
pub fn registry(escape: Escape) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    match escape {
        Escape::Html => h.register_escape_fn(handlebars::html_escape),
        Escape::None => h.register_escape_fn(handlebars::no_escape),
        Escape::Json => h.register_escape_fn(json_escape),
    }
    register_helpers(&mut h);
    h
}

pub fn register_helpers(h: &mut Handlebars<'static>) {
    h.register_helper("each", Box::new(super::blocks::EachHelper));
    h.register_helper("with", Box::new(super::blocks::WithHelper));
    // Called for `{{#name}}` when `name` is not a helper: a section on the value.
    h.register_helper("blockHelperMissing", Box::new(super::mustache::SectionHelper));
    h.register_helper("default", Box::new(DefaultHelper));
    h.register_helper("upper", Box::new(CaseHelper { upper: true }));
    h.register_helper("lower", Box::new(CaseHelper { upper: false }));
    h.register_helper("truncate", Box::new(TruncateHelper));
    h.register_helper("format_date", Box::new(FormatDateHelper));
}

/// Escapes a value for the inside of a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let quoted = Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `{{default value "fallback"}}`: the value unless it is absent, null or "".
struct DefaultHelper;

impl HelperDef for DefaultHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let fallback = h.param(1).ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
        let value = h.param(0).ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("default", 0))?;
        let chosen = if value.is_value_missing() || is_blank(value.value()) { fallback } else { value };
        Ok(ScopedJson::Derived(chosen.value().clone()))
    }
}

/// The first parameter as text; a missing variable is an error, like `{{x}}`.
fn text_param(h: &Helper<'_>, name: &'static str) -> Result<String, RenderError> {
    let p = h.param(0).ok_or(RenderErrorReason::ParamNotFoundForIndex(name, 0))?;
    if p.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into());
    }
    Ok(match p.value() {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

struct CaseHelper {
    upper: bool,
}

impl HelperDef for CaseHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = text_param(h, if self.upper { "upper" } else { "lower" })?;
        let out = if self.upper { s.to_uppercase() } else { s.to_lowercase() };
        Ok(ScopedJson::Derived(Value::String(out)))
    }
}

/// `{{truncate text 40}}`: at most N user-perceived characters, with "…" when cut.
struct TruncateHelper;

impl HelperDef for TruncateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = text_param(h, "truncate")?;
        let max = h.param(1).and_then(|p| p.value().as_u64()).ok_or(RenderErrorReason::ParamTypeMismatchForName(
            "truncate",
            "1".into(),
            "a whole number".into(),
        ))? as usize;
        Ok(ScopedJson::Derived(Value::String(truncate(&s, max))))
    }
}

/// At most `max` grapheme clusters, so an accent, a skin tone or a ZWJ family is
/// never split: the first `max - 1` and "…" when cut, "" for 0.
fn truncate(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    // Only cut when there is a grapheme past the limit.
    if s.grapheme_indices(true).nth(max).is_none() {
        return s.to_owned();
    }
    let end = s.grapheme_indices(true).nth(max - 1).map_or(s.len(), |(i, _)| i);
    let mut cut = s[..end].to_owned();
    cut.push('…');
    cut
}

/// `{{format_date when "%B %-d, %Y"}}` or with a time zone as a third parameter.
/// `when` is RFC 3339 (an instant) or a civil date `2026-12-24`.
struct FormatDateHelper;

impl HelperDef for FormatDateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let when = text_param(h, "format_date")?;
        let pattern = h.param(1).and_then(|p| p.value().as_str()).unwrap_or("%Y-%m-%d");
        let zone = h.param(2).and_then(|p| p.value().as_str());
        let invalid = |what: String| RenderError::from(RenderErrorReason::Other(what));
        let out = if let Ok(ts) = when.parse::<jiff::Timestamp>() {
            let tz = match zone {
                Some(z) => jiff::tz::db()
                    .get(z)
                    .map_err(|_| invalid("format_date: unknown time zone (third argument)".into()))?,
                None => jiff::tz::TimeZone::UTC,
            };
            jiff::fmt::strtime::format(pattern, &ts.to_zoned_datetime(tz))
        } else if let Ok(date) = when.parse::<jiff::civil::Date>() {
            jiff::fmt::strtime::format(pattern, date)
        } else {
            // The value comes from request data: name it, never quote it.
            return Err(invalid("format_date: the value is not an RFC 3339 instant or a YYYY-MM-DD date".into()));
        };
        let out = out.map_err(|e| invalid(format!("format_date: bad pattern {pattern:?}: {e}")))?;
        Ok(ScopedJson::Derived(Value::String(out)))
    }
}

#[cfg(test)]
mod tests {
    use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext};
    use serde_json::{Value, json};
    use unicode_segmentation::UnicodeSegmentation;

    use super::{Escape, registry, truncate};

    fn render(template: &str, data: &Value) -> Result<String, String> {
        registry(Escape::None).render_template(template, data).map_err(|e| e.to_string())
    }

    fn ok(template: &str, data: Value) -> String {
        render(template, &data).unwrap_or_else(|e| panic!("{template:?} with {data}: {e}"))
    }

    // --- truncate -----------------------------------------------------------------

    const ACCENTS: &str = "e\u{301}e\u{301}e\u{301}e\u{301}e\u{301}"; // "ééééé", decomposed
    const THUMBS: &str = "👍🏽👍🏽👍🏽"; // thumbs up + medium skin tone
    const FAMILIES: &str = "👨‍👩‍👧‍👦👨‍👩‍👧‍👦👩‍👩‍👦"; // ZWJ sequences

    #[test]
    fn truncate_keeps_combining_accents_with_their_letter() {
        assert_eq!(truncate(ACCENTS, 5), ACCENTS);
        assert_eq!(truncate(ACCENTS, 4), "e\u{301}e\u{301}e\u{301}…");
        assert_eq!(truncate(ACCENTS, 2), "e\u{301}…");
        assert_eq!(truncate("Cafe\u{301} crème", 5), "Cafe\u{301}…");
    }

    #[test]
    fn truncate_keeps_skin_tone_modifiers() {
        assert_eq!(truncate(THUMBS, 3), THUMBS);
        assert_eq!(truncate(THUMBS, 2), "👍🏽…");
        assert_eq!(truncate("ok 👍🏽👍🏽", 4), "ok …");
    }

    #[test]
    fn truncate_keeps_zwj_families_whole() {
        assert_eq!(truncate(FAMILIES, 3), FAMILIES);
        assert_eq!(truncate(FAMILIES, 2), "👨‍👩‍👧‍👦…");
        assert_eq!(truncate("🇫🇷🇩🇪🇮🇹", 2), "🇫🇷…");
    }

    #[test]
    fn truncate_zero_and_one() {
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(truncate("", 0), "");
        assert_eq!(truncate("abc", 1), "…");
        assert_eq!(truncate("a", 1), "a");
        assert_eq!(truncate("", 3), "");
    }

    #[test]
    fn truncate_is_never_longer_than_n() {
        for s in [ACCENTS, THUMBS, FAMILIES, "plain ascii text", "mixé 👍🏽 👨‍👩‍👧‍👦 🇫🇷", ""]
        {
            let len = s.graphemes(true).count();
            for n in 0..=len + 1 {
                let out = truncate(s, n);
                assert!(out.graphemes(true).count() <= n, "{s:?} cut to {n}: {out:?}");
                if len <= n {
                    assert_eq!(out, s);
                } else {
                    assert!(n == 0 || out.ends_with('…'), "{s:?} cut to {n}: {out:?}");
                    assert!(s.starts_with(out.trim_end_matches('…')), "{s:?} cut to {n}: {out:?}");
                }
            }
        }
    }

    #[test]
    fn truncate_helper_counts_graphemes() {
        assert_eq!(ok("{{truncate s 2}}", json!({ "s": FAMILIES })), "👨‍👩‍👧‍👦…");
        assert_eq!(ok("[{{truncate s 0}}]", json!({ "s": "abc" })), "[]");
        assert!(render("{{truncate s}}", &json!({ "s": "abc" })).is_err());
        assert!(render("{{truncate s -1}}", &json!({ "s": "abc" })).is_err());
    }

    // --- Mustache-style sections ----------------------------------------------------

    #[test]
    fn section_on_true_renders_in_the_current_context() {
        assert_eq!(ok("{{#vip}}VIP {{name}}{{/vip}}!", json!({ "vip": true, "name": "Ada" })), "VIP Ada!");
    }

    #[test]
    fn section_on_falsy_renders_the_inverse_or_nothing() {
        let t = "{{#v}}yes{{else}}no{{/v}}|{{#v}}yes{{/v}}|{{#v}}yes{{^}}no{{/v}}";
        for data in [json!({ "v": false }), json!({ "v": null }), json!({ "v": [] }), json!({})] {
            assert_eq!(ok(t, data.clone()), "no||no", "{data}");
        }
        let chained = "{{#v}}a{{else if w}}b{{else}}c{{/v}}";
        assert_eq!(ok(chained, json!({ "v": false, "w": true })), "b");
        assert_eq!(ok(chained, json!({ "v": [], "w": false })), "c");
    }

    #[test]
    fn missing_section_is_not_a_strict_error() {
        assert_eq!(ok("a{{#nickname}}b{{/nickname}}c", json!({})), "ac");
        assert_eq!(ok("{{#user}}a{{#nickname}}b{{/nickname}}c{{/user}}", json!({ "user": {} })), "ac");
        // handlebars-rust's grammar takes only a plain name for a block.
        assert!(render("{{#user.nickname}}b{{/user.nickname}}", &json!({})).is_err());
    }

    #[test]
    fn strict_mode_still_checks_variables_inside_a_section() {
        let err = render("{{#user}}{{nickname}}{{/user}}", &json!({ "user": { "name": "Ada" } }))
            .expect_err("a missing variable printed inside a section is an error");
        assert!(err.contains("nickname"), "{err}");
        assert!(render("{{#vip}}{{missing}}{{/vip}}", &json!({ "vip": true })).is_err());
        assert!(render("{{#items}}{{missing}}{{/items}}", &json!({ "items": [1] })).is_err());
    }

    #[test]
    fn section_on_an_array_iterates_like_each() {
        let data = json!({ "items": [{ "n": "a" }, { "n": "b" }, { "n": "c" }], "sep": "," });
        let t = "{{#items}}{{@index}}{{n}}{{#if @first}}^{{/if}}{{#if @last}}${{/if}}{{#unless @last}}{{../sep}}{{/unless}}{{/items}}";
        assert_eq!(ok(t, data.clone()), "0a^,1b,2c$");
        assert_eq!(ok("{{#items as |it i|}}{{i}}={{it.n}} {{/items}}", data), "0=a 1=b 2=c ");
        assert_eq!(ok("{{#xs}}[{{this}}]{{/xs}}", json!({ "xs": [1, "two", true] })), "[1][two][true]");
    }

    #[test]
    fn section_on_a_value_scopes_like_with() {
        let data = json!({ "user": { "name": "Ada", "address": { "city": "Paris" } }, "brand": "Acme" });
        assert_eq!(
            ok("{{#user}}{{name}} ({{address.city}}) at {{../brand}}{{/user}}", data.clone()),
            "Ada (Paris) at Acme"
        );
        assert_eq!(ok("{{#user}}{{#address}}{{city}}/{{../name}}{{/address}}{{/user}}", data), "Paris/Ada");
        // handlebars.js renders any value that is not false, null or [] (`0`, `""` too).
        assert_eq!(ok("{{#s}}<{{this}}>{{/s}}", json!({ "s": "hi" })), "<hi>");
        assert_eq!(ok("{{#n}}<{{this}}>{{/n}}", json!({ "n": 0 })), "<0>");
        assert_eq!(ok("{{#s}}<{{this}}>{{/s}}", json!({ "s": "" })), "<>");
    }

    #[test]
    fn section_inside_each_keeps_index() {
        let data = json!({ "rows": [{ "cell": { "v": "x" } }, { "cell": { "v": "y" } }] });
        assert_eq!(ok("{{#each rows}}{{#cell}}{{@index}}{{v}}{{/cell}}{{/each}}", data), "0x1y");
    }

    #[test]
    fn a_registered_helper_wins_over_a_section() {
        fn shout(
            _: &Helper<'_>,
            _: &Handlebars<'_>,
            _: &Context,
            _: &mut RenderContext<'_, '_>,
            out: &mut dyn Output,
        ) -> HelperResult {
            out.write("HELPER")?;
            Ok(())
        }
        let mut h = registry(Escape::None);
        h.register_helper("user", Box::new(shout));
        let out = h.render_template("{{#user}}section{{/user}}", &json!({ "user": { "name": "Ada" } }));
        assert_eq!(out.map_err(|e| e.to_string()), Ok("HELPER".to_owned()));
        // A built-in helper name is a helper too, even when the data has that key.
        assert!(render("{{#lookup}}x{{/lookup}}", &json!({ "lookup": true })).is_err());
    }

    #[test]
    fn an_unknown_block_helper_with_arguments_is_an_error() {
        let err = render("{{#greet user}}x{{/greet}}", &json!({ "greet": true, "user": "Ada" }))
            .expect_err("`greet` is not a helper");
        assert!(err.contains("greet"), "{err}");
        assert!(render("{{#greet name=user}}x{{/greet}}", &json!({ "user": "Ada" })).is_err());
    }

    // --- empty objects are truthy, as in handlebars.js --------------------------------

    #[test]
    fn empty_object_renders_the_block_in_with_and_sections() {
        let data = json!({ "o": {} });
        assert_eq!(ok("{{#with o}}yes{{else}}no{{/with}}", data.clone()), "yes");
        assert_eq!(ok("{{#o}}yes{{else}}no{{/o}}", data.clone()), "yes");
        // Strict mode applies inside: `{}` has no fields.
        assert!(render("{{#with o}}{{name}}{{/with}}", &data).is_err());
        assert!(render("{{#o}}{{name}}{{/o}}", &data).is_err());
        // Unchanged: `#with` on null/absent/false/""/[] renders the inverse.
        for v in [json!(null), json!(false), json!(""), json!([])] {
            assert_eq!(ok("{{#with o}}yes{{else}}no{{/with}}", json!({ "o": v })), "no");
        }
        assert_eq!(ok("{{#with o}}yes{{else}}no{{/with}}", json!({})), "no");
        // `#if` is handlebars-rust's built-in and still treats `{}` as false.
        assert_eq!(ok("{{#if o}}yes{{else}}no{{/if}}", data), "no");
    }

    // --- insertion-ordered objects ----------------------------------------------------

    #[test]
    fn each_over_an_object_follows_the_json_order() {
        let data: Value = serde_json::from_str(r#"{"o": {"zeta": 1, "alpha": 2, "mid": 3}}"#).expect("valid JSON");
        assert_eq!(ok("{{#each o}}{{@key}}={{this}} {{/each}}", data.clone()), "zeta=1 alpha=2 mid=3 ");
        assert_eq!(ok("{{#each o}}{{#if @first}}^{{/if}}{{@index}}{{#if @last}}${{/if}}{{/each}}", data), "^012$");
    }
}
