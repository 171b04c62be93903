//! The Handlebars engine as herald configures it: strict variables, three escaping
//! modes, and the helpers template authors get.
//!
//! Strict mode makes `{{first_name}}` an error when the data lacks it, while block
//! helpers (`#if`, `#unless`, `#each`, `#with`) and Mustache-style sections
//! (`{{#items}}…{{/items}}`, see mustache.rs) still treat an absent field as false
//! or empty, and `{{default x "fallback"}}` gives optional data a fallback.

use handlebars::Handlebars;
use serde_json::Value;

use super::{helpers, intl};

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
        Escape::Html => h.register_escape_fn(html_escape),
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
    // The helpers compat::prepare_source rewrites to; #if, #unless and lookup as in handlebars.js.
    super::compat::register_helpers(h);
    h.register_helper("default", Box::new(helpers::DefaultHelper));
    h.register_helper("upper", Box::new(helpers::CaseHelper { upper: true }));
    h.register_helper("lower", Box::new(helpers::CaseHelper { upper: false }));
    h.register_helper("capitalize", Box::new(helpers::CapitalizeHelper));
    h.register_helper("truncate", Box::new(helpers::TruncateHelper));
    h.register_helper("replace", Box::new(helpers::ReplaceHelper));
    h.register_helper("url_encode", Box::new(helpers::UrlEncodeHelper));
    h.register_helper("json", Box::new(helpers::JsonHelper));
    // JavaScript semantics, replacing handlebars-rust's built-ins of the same names.
    h.register_helper("eq", Box::new(helpers::EQ));
    h.register_helper("ne", Box::new(helpers::NE));
    h.register_helper("gt", Box::new(helpers::GT));
    h.register_helper("gte", Box::new(helpers::GTE));
    h.register_helper("lt", Box::new(helpers::LT));
    h.register_helper("lte", Box::new(helpers::LTE));
    h.register_helper("and", Box::new(helpers::LogicHelper(helpers::Logic::And)));
    h.register_helper("or", Box::new(helpers::LogicHelper(helpers::Logic::Or)));
    h.register_helper("not", Box::new(helpers::LogicHelper(helpers::Logic::Not)));
    // Locale-aware (ICU4X): the locale from `locale=` or `herald.locale`.
    h.register_helper("format_number", Box::new(intl::FormatNumberHelper));
    h.register_helper("format_currency", Box::new(intl::FormatCurrencyHelper));
    h.register_helper("format_percent", Box::new(intl::FormatPercentHelper));
    h.register_helper("pluralize", Box::new(intl::PluralizeHelper));
    h.register_helper("format_date", Box::new(intl::FormatDateHelper));
}

/// handlebars.js's `escapeExpression` (and handlebars-rust's `html_escape`, same
/// output): `& < > " ' \` =`. Copies runs of plain text at once and allocates the
/// output once; the crate's pushes character by character from an empty string, and
/// was a sixth of a render.
pub fn html_escape(s: &str) -> String {
    let bytes = s.as_bytes();
    let first = bytes.iter().position(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | b'`' | b'='));
    let Some(first) = first else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(s.len() + s.len() / 8 + 8);
    out.push_str(&s[..first]);
    let mut plain = first;
    for (i, b) in bytes.iter().enumerate().skip(first) {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            b'`' => "&#x60;",
            b'=' => "&#x3D;",
            _ => continue,
        };
        // Every byte matched is ASCII, so `plain..i` and `i + 1..` are char boundaries.
        out.push_str(&s[plain..i]);
        out.push_str(entity);
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
    out
}

/// Escapes a value for the inside of a JSON string literal.
pub fn json_escape(s: &str) -> String {
    let quoted = Value::String(s.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// What the helper modules' tests render with: herald's plain-text registry.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::Value;

    use super::{Escape, registry};

    pub(crate) fn render(template: &str, data: &Value) -> Result<String, String> {
        registry(Escape::None).render_template(template, data).map_err(|e| e.to_string())
    }

    pub(crate) fn ok(template: &str, data: Value) -> String {
        render(template, &data).unwrap_or_else(|e| panic!("{template:?} with {data}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext};
    use serde_json::{Value, json};

    use super::{Escape, registry};

    pub(crate) use super::test_support::{ok, render};

    // --- Escaping --------------------------------------------------------------------

    #[test]
    fn html_escape_prints_what_the_crates_escape_prints() {
        for s in ["", "plain", "<a href=\"x\">O'Neil & `co` = 1</a>", "é<ü>😀&", "&&&", "=", "tail<"] {
            assert_eq!(super::html_escape(s), handlebars::html_escape(s), "{s:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]
        #[test]
        fn html_escape_agrees_with_the_crate_on_any_text(s in "(?s).{0,40}|[<>&\"'`= a-z\u{e9}\u{1F600}]{0,40}") {
            proptest::prop_assert_eq!(super::html_escape(&s), handlebars::html_escape(&s));
        }
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
        // `#if` too (compat.rs registers it with handlebars.js's truthiness).
        assert_eq!(ok("{{#if o}}yes{{else}}no{{/if}}", data), "yes");
    }

    // --- insertion-ordered objects ----------------------------------------------------

    #[test]
    fn each_over_an_object_follows_the_json_order() {
        let data: Value = serde_json::from_str(r#"{"o": {"zeta": 1, "alpha": 2, "mid": 3}}"#).expect("valid JSON");
        assert_eq!(ok("{{#each o}}{{@key}}={{this}} {{/each}}", data.clone()), "zeta=1 alpha=2 mid=3 ");
        assert_eq!(ok("{{#each o}}{{#if @first}}^{{/if}}{{@index}}{{#if @last}}${{/if}}{{/each}}", data), "^012$");
    }
}
