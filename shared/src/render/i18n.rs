//! Translations: string files beside the templates and the `t` helper.
//!
//! ```text
//! templates/
//!   _locales/en.json  fr.json          strings every template may use (footers, partials)
//!   order-confirmation/
//!     template.toml                    default_locale = "en" (the default)
//!     locales/en.json  fr.json  fr-CA.json
//! ```
//! A file is a JSON object; nested objects make dotted keys (`{"cart": {"title": …}}`
//! is `cart.title`). A value is a string, or a plural message: an object whose keys
//! are CLDR plural categories (`zero`, `one`, `two`, `few`, `many`, `other`; `other`
//! required), chosen by the `count` argument with the plural rules of the message's
//! own locale.
//!
//! `{{t "cart.title"}}`, `{{t "greeting" name=recipient.first_name}}`,
//! `{{t "cart.items" count=cart.size}}`: `{name}` in a message is replaced by the
//! argument of that name (`{0}`, `{1}` by positional ones after the key), `#` in a
//! plural message by the count, formatted for the locale. A message is the author's
//! own markup, written as is; the arguments are escaped like `{{value}}`.
//!
//! Lookup follows the recipient's locale, then its parents, then the template's
//! default locale: `fr-CA` → `fr` → `en`, the template's file before `_locales/` at
//! each step. A key found nowhere fails the render (never a blank); `herald templates
//! check` reports a key a locale lacks even when the default would cover it at send
//! time.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

use super::engine::Escape;
use crate::request::Locale;

/// The last step of every lookup when a template names no `default_locale`.
pub const FALLBACK_LOCALE: &str = "en";

/// The CLDR plural categories, in CLDR's order.
pub const PLURAL_CATEGORIES: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    /// Category → text; always has `other`.
    Plural(BTreeMap<String, String>),
}

/// One `locales/<tag>.json` file.
#[derive(Debug, Clone)]
pub struct StringFile {
    pub locale: Locale,
    /// Path for messages, relative to the catalogue root's origin.
    pub path: String,
    pub messages: BTreeMap<String, Message>,
    /// 1-based line of each key in the file, for messages (best effort).
    pub lines: BTreeMap<String, usize>,
}

impl StringFile {
    /// Parses a string file. Errors name the key, never a value.
    pub fn parse(locale: Locale, path: String, text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("a string file must be a JSON object of keys to messages".into());
        };
        let mut messages = BTreeMap::new();
        flatten("", &map, &mut messages)?;
        let lines = messages.keys().map(|k| (k.clone(), key_line(text, k))).collect();
        Ok(StringFile { locale, path, messages, lines })
    }

    pub fn line_of(&self, key: &str) -> usize {
        self.lines.get(key).copied().unwrap_or(1)
    }
}

fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, Value>,
    out: &mut BTreeMap<String, Message>,
) -> Result<(), String> {
    for (k, v) in map {
        if k.is_empty() || k.contains(['{', '}']) {
            return Err(format!("key `{prefix}{k}`: keys are non-empty and have no braces"));
        }
        let key = format!("{prefix}{k}");
        match v {
            _ if out.contains_key(&key) => {
                return Err(format!("key `{key}` is defined twice (a dotted key and a nested object)"));
            }
            Value::String(s) => {
                out.insert(key, Message::Text(s.clone()));
            }
            Value::Object(inner) if inner.keys().any(|k| PLURAL_CATEGORIES.contains(&k.as_str())) => {
                if let Some(bad) = inner.keys().find(|k| !PLURAL_CATEGORIES.contains(&k.as_str())) {
                    return Err(format!(
                        "key `{key}`: a plural message has only CLDR categories ({}); `{bad}` is not one",
                        PLURAL_CATEGORIES.join(", ")
                    ));
                }
                if !inner.contains_key("other") {
                    return Err(format!("key `{key}`: a plural message needs an `other` form"));
                }
                let mut forms = BTreeMap::new();
                for (cat, text) in inner {
                    let Value::String(text) = text else {
                        return Err(format!("key `{key}.{cat}`: a plural form must be a string"));
                    };
                    forms.insert(cat.clone(), text.clone());
                }
                out.insert(key, Message::Plural(forms));
            }
            Value::Object(inner) => flatten(&format!("{key}."), inner, out)?,
            _ => return Err(format!("key `{key}`: a message must be a string or an object")),
        }
    }
    Ok(())
}

/// The line where the last segment of `key` appears as a JSON key (after the lines
/// of the earlier segments): good enough to point an author at it.
fn key_line(text: &str, key: &str) -> usize {
    let mut from = 0;
    for segment in key.split('.') {
        let needle = format!("\"{segment}\"");
        let found = text[from..]
            .match_indices(&needle)
            .find(|(i, _)| text[from + i + needle.len()..].trim_start().starts_with(':'));
        match found {
            Some((i, _)) => from += i + needle.len(),
            None => break,
        }
    }
    text[..from].matches('\n').count() + 1
}

/// The string files of one template (its own, then the catalogue's shared ones).
#[derive(Debug, Clone, Default)]
pub struct TemplateStrings {
    pub default_locale: Option<Locale>,
    pub own: Vec<StringFile>,
}

/// Every template's strings, shared by the `t` helpers of the catalogue's registries.
#[derive(Debug, Default)]
pub struct Strings {
    pub templates: HashMap<String, TemplateStrings>,
    pub shared: Vec<StringFile>,
}

/// A message found for a key, with the locale whose file had it.
pub struct Found<'a> {
    pub message: &'a Message,
    pub locale: &'a Locale,
    pub file: &'a StringFile,
}

impl Strings {
    /// The lookup chain of tags: the locale and its parents, then the template's
    /// default locale (`en` for a template that names none, e.g. one without string
    /// files whose layout uses `_locales/`).
    pub fn chain(&self, template: &str, locale: Option<&Locale>) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        let default = self
            .templates
            .get(template)
            .and_then(|t| t.default_locale.clone())
            .or_else(|| Locale::parse(FALLBACK_LOCALE).ok());
        for l in locale.into_iter().chain(default.as_ref()) {
            for tag in l.fallbacks() {
                let tag = tag.to_ascii_lowercase();
                if !tags.contains(&tag) {
                    tags.push(tag);
                }
            }
        }
        tags
    }

    pub fn lookup(&self, template: &str, locale: Option<&Locale>, key: &str) -> Option<Found<'_>> {
        self.lookup_in(template, &self.chain(template, locale), key)
    }

    /// [`Strings::lookup`] along a chain already made by [`Strings::chain`].
    pub fn lookup_in(&self, template: &str, chain: &[String], key: &str) -> Option<Found<'_>> {
        let own = self.templates.get(template).map(|t| t.own.as_slice()).unwrap_or_default();
        for tag in chain {
            for file in own.iter().chain(&self.shared) {
                if file.locale.as_str().eq_ignore_ascii_case(tag)
                    && let Some(message) = file.messages.get(key)
                {
                    return Some(Found { message, locale: &file.locale, file });
                }
            }
        }
        None
    }
}

/// The shared table as the helpers hold it.
pub type SharedStrings = Arc<RwLock<Strings>>;

thread_local! {
    /// The template and locale being rendered on this thread: set by the catalogue
    /// around each render, so `t` inside partials and blocks knows them whatever
    /// context the block changed to.
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

struct Scope {
    template: String,
    locale: Option<Locale>,
    /// The lookup chain, made by the first `t` of the render and kept for the others.
    chain: Option<Vec<String>>,
}

/// Sets the render scope until dropped.
pub struct ScopeGuard(Option<Scope>);

pub fn enter(template: &str, locale: Option<&Locale>) -> ScopeGuard {
    let scope = Scope { template: template.to_owned(), locale: locale.cloned(), chain: None };
    ScopeGuard(SCOPE.with(|s| s.replace(Some(scope))))
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        SCOPE.with(|s| *s.borrow_mut() = previous);
    }
}

/// `{{t "key" …}}`.
pub struct TranslateHelper {
    pub strings: SharedStrings,
    pub escape: Escape,
}

fn fail(message: String) -> RenderError {
    RenderErrorReason::Other(message).into()
}

impl HelperDef for TranslateHelper {
    /// `{{t …}}`: the message as written, the arguments escaped as `{{value}}` is.
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let escape = |s: &str| r.get_escape_fn()(s);
        // In a JSON string literal the message itself needs escaping too.
        let own = |s: &str| if self.escape == Escape::Json { super::engine::json_escape(s) } else { s.to_owned() };
        out.write(&self.translate(h, &own, &escape)?)?;
        Ok(())
    }

    /// `(t …)` as an argument of another helper or partial: plain text, which the outer
    /// `{{…}}` escapes once.
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let plain = |s: &str| s.to_owned();
        Ok(ScopedJson::Derived(Value::String(self.translate(h, &plain, &plain)?)))
    }
}

impl TranslateHelper {
    fn translate(
        &self,
        h: &Helper<'_>,
        own: &dyn Fn(&str) -> String,
        escape: &dyn Fn(&str) -> String,
    ) -> Result<String, RenderError> {
        let key = match h.param(0).map(|p| p.value()) {
            Some(Value::String(k)) => k.as_str(),
            _ => return Err(fail("t: the first argument must be the message key, a string".into())),
        };
        let strings = self.strings.read().map_err(|_| fail("t: the string table is unavailable".into()))?;
        // Borrowed, not copied: nothing below renders, so no `t` runs inside this one.
        SCOPE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let Some(scope) = slot.as_mut() else {
                return Err(fail("t: used outside a catalogue template".into()));
            };
            let chain = scope.chain.get_or_insert_with(|| strings.chain(&scope.template, scope.locale.as_ref()));
            let found = strings.lookup_in(&scope.template, chain, key).ok_or_else(|| {
                fail(format!(
                    "t: no translation for `{key}` in {} (locales/<tag>.json of the template or _locales/)",
                    if chain.is_empty() { "any string file".to_owned() } else { chain.join(", ") }
                ))
            })?;
            Self::message(found, scope.locale.as_ref(), key, h, own, escape)
        })
    }

    fn message(
        found: Found<'_>,
        locale: Option<&Locale>,
        key: &str,
        h: &Helper<'_>,
        own: &dyn Fn(&str) -> String,
        escape: &dyn Fn(&str) -> String,
    ) -> Result<String, RenderError> {
        // Plural rules and digits: the recipient's own locale when the message is in
        // their language (a `de-CH` reader of `de.json` gets Swiss digits, as from
        // `format_number`), else the locale the message is written in.
        let same_language =
            locale.is_some_and(|l| language(l.as_str()).eq_ignore_ascii_case(language(found.locale.as_str())));
        let numbers_locale = if same_language { locale.unwrap_or(found.locale) } else { found.locale };
        let (text, count) = match found.message {
            Message::Text(t) => (t.as_str(), None),
            Message::Plural(forms) => {
                let count = h
                    .hash_get("count")
                    .ok_or_else(|| fail(format!("t: `{key}` is a plural message: pass count=<number>")))?;
                // `count=cart.size` naming data the request lacks: as `{{cart.size}}` would.
                if count.is_value_missing() {
                    return Err(RenderErrorReason::MissingVariable(count.relative_path().cloned()).into());
                }
                let (category, printed) = super::intl::plural_category(count.value(), numbers_locale.as_str())
                    .map_err(|e| fail(format!("t: `{key}`: {e}")))?;
                let text = forms.get(category).or_else(|| forms.get("other")).map(String::as_str).unwrap_or_default();
                (text, Some(printed))
            }
        };
        let placeholder = |name: &str| {
            // `{0}` is the argument after the key; a number too large for that is none.
            let param = match name.parse::<usize>() {
                Ok(n) => n.checked_add(1).and_then(|i| h.param(i)),
                Err(_) => h.hash_get(name),
            };
            let Some(param) = param else {
                return Err(fail(format!("t: `{key}` uses {{{name}}}: pass {name}=<value>")));
            };
            // The argument names data the request lacks: the same error as `{{order.number}}`.
            if param.is_value_missing() {
                return Err(RenderErrorReason::MissingVariable(param.relative_path().cloned()).into());
            }
            Ok(argument(param.value(), escape))
        };
        interpolate(text, count.as_deref(), &placeholder, own)
    }
}

/// `fr` of `fr-CA`.
fn language(tag: &str) -> &str {
    tag.split('-').next().unwrap_or(tag)
}

/// An argument as `{{value}}` prints it: numbers as JavaScript's `String(x)` (no
/// grouping: an order number stays `100234`), text escaped for the part.
fn argument(value: &Value, escape: &dyn Fn(&str) -> String) -> String {
    match value {
        Value::String(s) => escape(s),
        Value::Null => String::new(),
        other => escape(&super::helpers::js_string(other)),
    }
}

/// Fills `{name}` / `{0}` from the arguments and, in a plural message, `#` with the
/// count as the locale prints it. A `#` of an entity (`&#39;`) or inside a tag
/// (`href="#top"`, `color:#c00`) is markup, not the count.
/// `argument` gives a placeholder's text, escaped for the part.
fn interpolate(
    text: &str,
    count: Option<&str>,
    argument: &dyn Fn(&str) -> Result<String, RenderError>,
    own: &dyn Fn(&str) -> String,
) -> Result<String, RenderError> {
    // Only `<`, `>`, `#` and `{` mean anything here, all ASCII: the literal runs between
    // them are copied as slices, not character by character.
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    // Where the literal run not yet written starts.
    let mut literal = 0;
    let mut in_tag = false;
    let mut i = 0;
    while let Some(at) = bytes[i..].iter().position(|b| matches!(b, b'<' | b'>' | b'#' | b'{')) {
        i += at;
        match bytes[i] {
            b'<' => in_tag = true,
            b'>' => in_tag = false,
            // `&#39;`: the `&` must be in the same literal run, as written before.
            b'#' if count.is_some() && !in_tag && !(i > literal && bytes[i - 1] == b'&') => {
                out.push_str(&own(&text[literal..i]));
                out.push_str(count.unwrap_or_default());
                literal = i + 1;
            }
            b'{' => {
                if let Some(end) = text[i + 1..].find('}') {
                    let name = text[i + 1..i + 1 + end].trim();
                    let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                    if valid {
                        let value = argument(name)?;
                        out.push_str(&own(&text[literal..i]));
                        out.push_str(&value);
                        // Past the placeholder.
                        literal = i + 2 + end;
                        i = literal;
                        continue;
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&own(&text[literal..]));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `interpolate` as it was written first, character by character: the reference
    /// for the slice-copying one.
    fn interpolate_by_char(
        text: &str,
        count: Option<&str>,
        argument: &dyn Fn(&str) -> Result<String, RenderError>,
        own: &dyn Fn(&str) -> String,
    ) -> Result<String, RenderError> {
        let mut out = String::new();
        let mut literal = String::new();
        let mut in_tag = false;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '<' => {
                    in_tag = true;
                    literal.push(c);
                }
                '>' => {
                    in_tag = false;
                    literal.push(c);
                }
                '#' if count.is_some() && !in_tag && !literal.ends_with('&') => {
                    out.push_str(&own(&std::mem::take(&mut literal)));
                    out.push_str(count.unwrap_or_default());
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        literal.push(c);
                        continue;
                    };
                    let name = rest[..end].trim();
                    let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                    if !valid {
                        literal.push(c);
                        continue;
                    }
                    let value = argument(name)?;
                    out.push_str(&own(&std::mem::take(&mut literal)));
                    out.push_str(&value);
                    let stop = i + 1 + end;
                    while chars.peek().is_some_and(|(j, _)| *j <= stop) {
                        chars.next();
                    }
                }
                _ => literal.push(c),
            }
        }
        out.push_str(&own(&literal));
        Ok(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        #[test]
        fn interpolation_copies_slices_as_it_did_characters(
            text in "[<>#{}&a_ é1😀-]{0,24}",
            count in proptest::option::of("[0-9,]{1,4}"),
        ) {
            // Names with an `a` are arguments; others fail, as an unknown name does.
            let argument = |name: &str| {
                if name.contains('a') { Ok(format!("[{name}]")) } else { Err(fail(format!("no {name}"))) }
            };
            // The JSON part's own text is escaped: a run boundary in the wrong place shows.
            let own = |s: &str| format!("({s})");
            let ours = interpolate(&text, count.as_deref(), &argument, &own).map_err(|e| e.to_string());
            let reference = interpolate_by_char(&text, count.as_deref(), &argument, &own).map_err(|e| e.to_string());
            proptest::prop_assert_eq!(ours, reference);
        }
    }

    fn file(tag: &str, json: &str) -> StringFile {
        StringFile::parse(Locale::parse(tag).expect("tag"), format!("locales/{tag}.json"), json).expect("parses")
    }

    #[test]
    fn nested_objects_make_dotted_keys_and_plural_objects_are_messages() {
        let f = file(
            "en",
            "{\n  \"cart\": {\n    \"title\": \"Your cart\",\n    \"items\": {\"one\": \"# item\", \"other\": \"# items\"}\n  }\n}",
        );
        assert_eq!(f.messages["cart.title"], Message::Text("Your cart".into()));
        assert!(matches!(&f.messages["cart.items"], Message::Plural(p) if p["one"] == "# item"));
        assert_eq!(f.line_of("cart.title"), 3);
        assert_eq!(f.line_of("cart.items"), 4);
    }

    #[test]
    fn bad_files_name_the_key_not_the_value() {
        let locale = Locale::parse("en").expect("tag");
        let err = StringFile::parse(locale.clone(), "x".into(), r#"{"a": {"b": 42}}"#).expect_err("number");
        assert!(err.contains("`a.b`") && !err.contains("42"), "{err}");
        let err = StringFile::parse(locale.clone(), "x".into(), r#"{"n": {"one": "x"}}"#).expect_err("no other");
        assert!(err.contains("other"), "{err}");
        assert!(StringFile::parse(locale.clone(), "x".into(), "[1]").is_err());
        assert!(StringFile::parse(locale, "x".into(), "{").is_err());
    }

    #[test]
    fn lookup_falls_back_region_language_default_and_shared() {
        let mut s = Strings::default();
        s.templates.insert(
            "t".into(),
            TemplateStrings {
                default_locale: Some(Locale::parse("en").expect("tag")),
                own: vec![
                    file("en", r#"{"a": "A en", "b": "B en", "c": "C en"}"#),
                    file("fr", r#"{"a": "A fr", "b": "B fr"}"#),
                    file("fr-CA", r#"{"a": "A fr-CA"}"#),
                ],
            },
        );
        s.shared.push(file("fr", r#"{"footer": "Pied fr", "c": "C shared fr"}"#));
        let fr_ca = Locale::parse("fr-CA").expect("tag");
        let text = |key: &str| match s.lookup("t", Some(&fr_ca), key).map(|f| f.message) {
            Some(Message::Text(t)) => t.clone(),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(text("a"), "A fr-CA");
        assert_eq!(text("b"), "B fr");
        assert_eq!(text("c"), "C shared fr", "a shared file of the closer locale wins over the default");
        assert_eq!(text("footer"), "Pied fr");
        assert!(s.lookup("t", Some(&fr_ca), "zzz").is_none());
        assert_eq!(s.chain("t", Some(&fr_ca)), ["fr-ca", "fr", "en"]);
    }
}
