//! The Handlebars engine as herald configures it: strict variables, three escaping
//! modes, and the helpers template authors get.
//!
//! Strict mode makes `{{first_name}}` an error when the data lacks it, while block
//! helpers (`#if`, `#unless`, `#each`, `#with`) still treat an absent field as false
//! or empty, and `{{default x "fallback"}}` gives optional data a fallback.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::Value;

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
        let fallback = h
            .param(1)
            .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex("default", 1))?;
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

/// `{{truncate text 40}}`: at most N characters, with "…" when cut.
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
        let max = h
            .param(1)
            .and_then(|p| p.value().as_u64())
            .ok_or(RenderErrorReason::ParamTypeMismatchForName("truncate", "1".into(), "a whole number".into()))?
            as usize;
        let out = if s.chars().count() <= max {
            s
        } else {
            let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
            cut.push('…');
            cut
        };
        Ok(ScopedJson::Derived(Value::String(out)))
    }
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
                    .map_err(|_| invalid(format!("format_date: unknown time zone {z:?}")))?,
                None => jiff::tz::TimeZone::UTC,
            };
            jiff::fmt::strtime::format(pattern, &ts.to_zoned_datetime(tz))
        } else if let Ok(date) = when.parse::<jiff::civil::Date>() {
            jiff::fmt::strtime::format(pattern, date)
        } else {
            return Err(invalid(format!("format_date: {when:?} is not an RFC 3339 instant or a YYYY-MM-DD date")));
        };
        let out = out.map_err(|e| invalid(format!("format_date: bad pattern {pattern:?}: {e}")))?;
        Ok(ScopedJson::Derived(Value::String(out)))
    }
}
