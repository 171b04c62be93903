//! General template helpers: text (`upper`, `lower`, `capitalize`, `truncate`,
//! `replace`, `url_encode`, `json`), `default`, and the logic helpers (`eq`, `ne`,
//! `gt`, `gte`, `lt`, `lte`, `and`, `or`, `not`) with JavaScript semantics, so a
//! template tested with handlebars.js and the usual JS helper libraries renders the same.
//!
//! Value helpers make a missing variable a strict-mode error, like `{{x}}`. `default`
//! and the logic helpers take a missing value as JS `undefined` (falsy), so
//! `{{#if (eq plan "pro")}}` works on optional data.
//!
//! handlebars-rust ships its own `eq`…`not`; they differ from JS on several points
//! (`eq 10 10.0` is false there, `[]`/`{}` are falsy, `null > -1` is false, a missing
//! value is an error), so these replace them (see the tests for each difference).

use std::cmp::Ordering;
use std::fmt::Write as _;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, Renderable, ScopedJson,
};
use serde_json::{Number, Value};
use unicode_segmentation::UnicodeSegmentation;

/// A helper's argument that cannot be used. The message names the helper and the
/// argument, never the value: values come from request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{helper}: {problem}")]
pub struct HelperError {
    pub helper: &'static str,
    pub problem: String,
}

impl HelperError {
    pub fn new(helper: &'static str, problem: impl ToString) -> Self {
        HelperError { helper, problem: problem.to_string() }
    }
}

impl From<HelperError> for RenderError {
    fn from(e: HelperError) -> Self {
        RenderErrorReason::Other(e.to_string()).into()
    }
}

/// Parameter `idx` of a value helper: absent → "param required", a missing variable →
/// the strict-mode error `{{x}}` gives.
pub(super) fn value_param<'a>(h: &'a Helper<'_>, idx: usize, helper: &'static str) -> Result<&'a Value, RenderError> {
    present(required_param(h, idx, helper)?)
}

/// Argument `idx` of `helper`, which must be given (it may name absent data).
pub(super) fn required_param<'a, 'rc>(
    h: &'a Helper<'rc>,
    idx: usize,
    helper: &'static str,
) -> Result<&'a PathAndJson<'rc>, RenderError> {
    h.param(idx).ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex(helper, idx).into())
}

/// The hash value `key=`, if given; a missing variable is a strict-mode error.
pub(super) fn hash_value<'a>(h: &'a Helper<'_>, key: &str) -> Result<Option<&'a Value>, RenderError> {
    h.hash_get(key).map(present).transpose()
}

fn present<'a>(p: &'a PathAndJson<'_>) -> Result<&'a Value, RenderError> {
    if p.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into());
    }
    Ok(p.value())
}

/// The first parameter as text; a missing variable is an error, like `{{x}}`. null is
/// "" (as `{{x}}` prints it), other values print as JavaScript's `String(x)`.
fn text_param(h: &Helper<'_>, helper: &'static str) -> Result<String, RenderError> {
    Ok(match value_param(h, 0, helper)? {
        Value::Null => String::new(),
        other => js_string(other),
    })
}

/// JavaScript's `String(value)`: numbers as JS prints them (`10`, not `10.0`), arrays
/// joined with commas, objects as `[object Object]`.
pub(super) fn js_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => js_number(n),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let mut out = String::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                // Inside an array, null prints as nothing.
                if !item.is_null() {
                    out.push_str(&js_string(item));
                }
            }
            out
        }
        Value::Object(_) => "[object Object]".to_owned(),
    }
}

/// A JSON number as JavaScript's `Number.prototype.toString` prints it.
pub(super) fn js_number(n: &Number) -> String {
    match n.as_f64() {
        Some(f) if !(n.is_i64() || n.is_u64()) => js_float(f),
        // Integers print as they are; JS would round those beyond 2^53.
        _ => n.to_string(),
    }
}

/// ECMAScript Number::toString(10) on the shortest round-trip digits.
fn js_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_owned(); // -0 too
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        }
        .to_owned();
    }
    // `{:e}` gives the shortest digits that round-trip: "1.2345e3".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i32;
    // value = 0.d1d2…dk × 10^n
    let n = exp.parse::<i32>().unwrap_or(0) + 1;
    let mut out = String::with_capacity(24);
    if f < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        let _ = write!(out, "e{}{}", if e < 0 { '-' } else { '+' }, e.abs());
    }
    out
}

/// An integral float (`10.0`, from JSON or a literal) as an integer, so it prints `10`.
pub(super) fn js_value(v: Value) -> Value {
    match &v {
        Value::Number(n) if !(n.is_i64() || n.is_u64()) => match n.as_f64() {
            // Below 2^53 every integral double is exact.
            Some(f) if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 => Value::from(f as i64),
            _ => v,
        },
        _ => v,
    }
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// `{{default value "fallback"}}`: the value unless it is absent, null or "".
pub(super) struct DefaultHelper;

impl HelperDef for DefaultHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let fallback = required_param(h, 1, "default")?;
        let value = required_param(h, 0, "default")?;
        let chosen = if value.is_value_missing() || is_blank(value.value()) { fallback } else { value };
        Ok(ScopedJson::Derived(js_value(chosen.value().clone())))
    }
}

/// `{{upper s}}`, `{{lower s}}`.
pub(super) struct CaseHelper {
    pub upper: bool,
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

/// `{{capitalize s}}`: the first user-perceived character uppercased, the rest unchanged.
pub(super) struct CapitalizeHelper;

impl HelperDef for CapitalizeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = text_param(h, "capitalize")?;
        Ok(ScopedJson::Derived(Value::String(capitalize(&s))))
    }
}

fn capitalize(s: &str) -> String {
    match s.graphemes(true).next() {
        Some(first) => {
            let mut out = first.to_uppercase();
            out.push_str(&s[first.len()..]);
            out
        }
        None => String::new(),
    }
}

/// `{{truncate text 40}}`: at most N user-perceived characters, with "…" when cut.
pub(super) struct TruncateHelper;

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
            .and_then(|p| whole_number(p.value()))
            .ok_or(RenderErrorReason::ParamTypeMismatchForName("truncate", "1".into(), "a whole number".into()))?;
        Ok(ScopedJson::Derived(Value::String(truncate(&s, max))))
    }
}

/// A non-negative integer, also when written `10.0`.
fn whole_number(v: &Value) -> Option<usize> {
    match js_value(v.clone()) {
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
}

/// At most `max` grapheme clusters, so an accent, a skin tone or a ZWJ family is
/// never split: the first `max - 1` and "…" when cut, "" for 0.
pub(super) fn truncate(s: &str, max: usize) -> String {
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

/// `{{replace s "from" "to"}}`: every occurrence, like JavaScript's `replaceAll`.
pub(super) struct ReplaceHelper;

impl HelperDef for ReplaceHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = text_param(h, "replace")?;
        let from = js_string(value_param(h, 1, "replace")?);
        let to = js_string(value_param(h, 2, "replace")?);
        Ok(ScopedJson::Derived(Value::String(s.replace(&from, &to))))
    }
}

/// `{{url_encode s}}`: JavaScript's `encodeURIComponent(String(s))`.
pub(super) struct UrlEncodeHelper;

impl HelperDef for UrlEncodeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let s = js_string(value_param(h, 0, "url_encode")?);
        Ok(ScopedJson::Derived(Value::String(encode_uri_component(&s))))
    }
}

/// Percent-encodes UTF-8 bytes except `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
fn encode_uri_component(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
    }
    out
}

/// `{{json value}}`: JavaScript's `JSON.stringify(value)`, compact.
pub(super) struct JsonHelper;

impl HelperDef for JsonHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let v = value_param(h, 0, "json")?;
        let mut out = String::new();
        json_stringify(v, &mut out);
        Ok(ScopedJson::Derived(Value::String(out)))
    }
}

/// Like `JSON.stringify`: numbers as JS prints them, and an object's array-index keys
/// ("0", "1", …) first in ascending order, as JS objects order their properties.
fn json_stringify(v: &Value, out: &mut String) {
    match v {
        Value::Number(n) => {
            // JSON has no NaN/Infinity, so JS's "null" for them cannot occur.
            out.push_str(&js_number(n));
        }
        // serde_json escapes exactly what JSON.stringify escapes (", \, controls).
        Value::String(_) | Value::Bool(_) | Value::Null => out.push_str(&v.to_string()),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_stringify(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // Stable: non-index keys keep their order.
            entries.sort_by_key(|(k, _)| array_index(k).map_or((1, 0), |i| (0, i)));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                json_stringify(item, out);
            }
            out.push('}');
        }
    }
}

/// A canonical array index ("0", "42", not "01"), below 2^32 - 1.
fn array_index(k: &str) -> Option<u32> {
    if k.is_empty() || (k.len() > 1 && k.starts_with('0')) || !k.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    k.parse::<u32>().ok().filter(|&i| i != u32::MAX)
}

// --- logic helpers: JavaScript semantics ------------------------------------------

/// A parameter as JS sees it: `None` is `undefined` (a missing variable).
fn js_param<'a>(p: &'a PathAndJson<'_>) -> Option<&'a Value> {
    if p.is_value_missing() { None } else { Some(p.value()) }
}

/// JavaScript truthiness: `false`, `0`, `""`, `null` and `undefined` are falsy; `[]` and
/// `{}` are truthy.
pub(super) fn js_truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// `a === b`, with numbers compared by value (`10 === 10.0`). Arrays and objects compare
/// by content, where JS compares references (two equal lists from the data are equal here).
fn js_strict_equals(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => value_equals(a, b),
        _ => false,
    }
}

fn value_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => number_equals(x, y),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| value_equals(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| value_equals(v, w)))
        }
        _ => a == b,
    }
}

fn number_equals(x: &Number, y: &Number) -> bool {
    match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
        (Some(a), Some(b), _, _) => a == b,
        (_, _, Some(a), Some(b)) => a == b,
        _ => x.as_f64() == y.as_f64(),
    }
}

/// A JS primitive after `ToPrimitive` (hint number): what `<` and `>` compare.
enum Primitive {
    Str(String),
    Num(f64),
}

fn to_primitive(v: Option<&Value>) -> Primitive {
    match v {
        None => Primitive::Num(f64::NAN),
        Some(Value::Null) => Primitive::Num(0.0),
        Some(Value::Bool(b)) => Primitive::Num(if *b { 1.0 } else { 0.0 }),
        Some(Value::Number(n)) => Primitive::Num(n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::String(s)) => Primitive::Str(s.clone()),
        // Arrays and objects become strings (`[1,2]` → "1,2", `{}` → "[object Object]").
        Some(other) => Primitive::Str(js_string(other)),
    }
}

/// JavaScript's abstract relational comparison: two strings compare by UTF-16 code
/// units, anything else as numbers; `None` when either side is NaN (then `<`, `>`,
/// `<=`, `>=` are all false).
fn js_compare(a: Option<&Value>, b: Option<&Value>) -> Option<Ordering> {
    match (to_primitive(a), to_primitive(b)) {
        (Primitive::Str(x), Primitive::Str(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        (x, y) => {
            let num = |p: Primitive| match p {
                Primitive::Num(n) => n,
                Primitive::Str(s) => js_to_number(&s),
            };
            num(x).partial_cmp(&num(y))
        }
    }
}

/// JavaScript's `Number(string)`.
fn js_to_number(s: &str) -> f64 {
    // StrWhiteSpaceChar: WhiteSpace (TAB, VT, FF, ZWNBSP, Zs) and LineTerminator.
    let js_space = |c: char| {
        matches!(c, '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}')
            || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}')
    };
    let t = s.trim_matches(js_space);
    if t.is_empty() {
        return 0.0;
    }
    let radix = match t.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    if let Some(radix) = radix {
        let digits = &t[2..];
        if digits.is_empty() {
            return f64::NAN;
        }
        return digits
            .chars()
            .try_fold(0.0_f64, |acc, c| c.to_digit(radix).map(|d| acc * f64::from(radix) + f64::from(d)))
            .unwrap_or(f64::NAN);
    }
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    if unsigned == "Infinity" {
        return if t.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    // Rust's parser also takes "inf" and "nan"; JS takes only a decimal literal here.
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(i) => (&unsigned[..i], Some(&unsigned[i + 1..])),
        None => (unsigned, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits_ok(int) && digits_ok(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits_ok(e)
    });
    if !(mantissa_ok && exponent_ok) {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

/// Writes `true`/`false`, or renders the block (`{{#eq a b}}…{{else}}…{{/eq}}`).
fn write_or_render<'reg: 'rc, 'rc>(
    value: bool,
    h: &Helper<'rc>,
    r: &'reg Handlebars<'reg>,
    ctx: &'rc Context,
    rc: &mut RenderContext<'reg, 'rc>,
    out: &mut dyn Output,
) -> HelperResult {
    if !h.is_block() {
        out.write(if value { "true" } else { "false" })?;
        return Ok(());
    }
    match if value { h.template() } else { h.inverse() } {
        Some(t) => t.render(r, ctx, rc, out),
        None => Ok(()),
    }
}

/// `eq ne gt gte lt lte`: two values, JS `===`, `!==`, `>`, `>=`, `<`, `<=`.
pub(super) struct CompareHelper {
    pub name: &'static str,
    pub op: fn(Option<&Value>, Option<&Value>) -> bool,
}

pub(super) const EQ: CompareHelper = CompareHelper { name: "eq", op: js_strict_equals };
pub(super) const NE: CompareHelper = CompareHelper { name: "ne", op: |a, b| !js_strict_equals(a, b) };
pub(super) const GT: CompareHelper =
    CompareHelper { name: "gt", op: |a, b| js_compare(a, b) == Some(Ordering::Greater) };
pub(super) const GTE: CompareHelper =
    CompareHelper { name: "gte", op: |a, b| matches!(js_compare(a, b), Some(Ordering::Greater | Ordering::Equal)) };
pub(super) const LT: CompareHelper = CompareHelper { name: "lt", op: |a, b| js_compare(a, b) == Some(Ordering::Less) };
pub(super) const LTE: CompareHelper =
    CompareHelper { name: "lte", op: |a, b| matches!(js_compare(a, b), Some(Ordering::Less | Ordering::Equal)) };

impl CompareHelper {
    fn eval(&self, h: &Helper<'_>) -> Result<bool, RenderError> {
        let a = required_param(h, 0, self.name)?;
        let b = required_param(h, 1, self.name)?;
        Ok((self.op)(js_param(a), js_param(b)))
    }
}

/// A helper that answers a boolean (`eq`, `and`…): the value inside a subexpression or
/// `#if`, `true`/`false` printed inline, and as a block its `{{else}}` when false.
macro_rules! boolean_helper {
    ($name:ident) => {
        impl HelperDef for $name {
            fn call_inner<'reg: 'rc, 'rc>(
                &self,
                h: &Helper<'rc>,
                _: &'reg Handlebars<'reg>,
                _: &'rc Context,
                _: &mut RenderContext<'reg, 'rc>,
            ) -> Result<ScopedJson<'rc>, RenderError> {
                Ok(ScopedJson::Derived(Value::Bool(self.eval(h)?)))
            }

            fn call<'reg: 'rc, 'rc>(
                &self,
                h: &Helper<'rc>,
                r: &'reg Handlebars<'reg>,
                ctx: &'rc Context,
                rc: &mut RenderContext<'reg, 'rc>,
                out: &mut dyn Output,
            ) -> HelperResult {
                write_or_render(self.eval(h)?, h, r, ctx, rc, out)
            }
        }
    };
}

boolean_helper!(CompareHelper);

/// `and a b …`, `or a b …`, `not a`: booleans from JS truthiness.
#[derive(Clone, Copy)]
pub(super) enum Logic {
    And,
    Or,
    Not,
}

pub(super) struct LogicHelper(pub Logic);

impl LogicHelper {
    fn eval(&self, h: &Helper<'_>) -> Result<bool, RenderError> {
        let mut values = h.params().iter().map(|p| js_truthy(js_param(p)));
        Ok(match self.0 {
            Logic::And => values.all(|t| t),
            Logic::Or => values.any(|t| t),
            Logic::Not => {
                let Some(first) = values.next() else {
                    return Err(RenderErrorReason::ParamNotFoundForIndex("not", 0).into());
                };
                !first
            }
        })
    }
}

boolean_helper!(LogicHelper);

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use unicode_segmentation::UnicodeSegmentation;

    use super::truncate;
    use crate::render::engine::{Escape, registry};

    use crate::render::engine::test_support::{ok, render};

    // --- logic helpers: JavaScript semantics ------------------------------------------

    /// Renders `{{#if (expr)}}T{{else}}F{{/if}}` and the inline `{{expr}}`.
    fn cond(expr: &str, data: &Value) -> (bool, String) {
        let block = ok(&format!("{{{{#if ({expr})}}}}T{{{{else}}}}F{{{{/if}}}}"), data.clone());
        let inline = ok(&format!("{{{{{expr}}}}}"), data.clone());
        (block == "T", inline)
    }

    fn holds(expr: &str, data: &Value) -> bool {
        let (b, inline) = cond(expr, data);
        assert_eq!(inline, b.to_string(), "{expr}: inline and block disagree");
        b
    }

    fn data() -> Value {
        json!({
            "ten": 10, "ten_f": 10.0, "one_s": "1", "zero": 0, "empty_s": "", "nul": null,
            "list": [], "list2": [1, 2], "obj": {}, "o1": { "k": [1, 2.0] }, "o2": { "k": [1.0, 2] },
            "neg_zero": -0.0, "s10": "10", "s9": "9", "spaced": " 12\n", "hex": "0x10", "word": "abc",
            "t": true, "f": false, "astral": "\u{1F600}", "private": "\u{FF61}"
        })
    }

    #[test]
    fn eq_and_ne_are_strict_equality_with_numbers_by_value() {
        let d = data();
        for yes in [
            "eq ten ten_f",
            "eq 10 10.0",
            "eq one_s \"1\"",
            "eq nul null",
            "eq missing also_missing",
            "eq t true",
            "eq zero neg_zero",
            "eq o1 o2",
            "ne ten one_s",
            "ne 1 \"1\"",
            "ne missing nul",
            "ne list list2",
        ] {
            assert!(holds(yes, &d), "{yes} should hold");
        }
        for no in
            ["eq 1 \"1\"", "eq 0 false", "eq nul missing", "eq empty_s 0", "ne ten ten_f", "eq list2 o1", "ne o1 o2"]
        {
            assert!(!holds(no, &d), "{no} should not hold");
        }
    }

    #[test]
    fn comparisons_follow_javascript() {
        let d = data();
        for yes in [
            "gt 10 9",
            "gte ten ten_f",
            "lt 9.5 ten",
            "lte 10 10",
            "gt s10 9",
            "lt s10 s9", // "10" < "9" as strings
            "gt nul -1",
            "gte nul 0",
            "lt f t",
            "gt spaced 11",
            "lt hex 17",
            "lt empty_s 1",
            "gt list2 \"0\"",
            "gt private astral", // UTF-16 order: U+FF61 > U+D83D (the emoji's first unit)
            "lt \"Z\" \"a\"",
        ] {
            assert!(holds(yes, &d), "{yes} should hold");
        }
        for no in [
            "gt 9 10",
            "lt ten ten_f",
            "gt word 0",
            "lt word 0",
            "gte word word_missing",
            "gt missing 0",
            "lte missing 0",
            "gt obj 0",
            "lt 0 obj",
            "gte nul missing",
        ] {
            assert!(!holds(no, &d), "{no} should not hold");
        }
    }

    #[test]
    fn and_or_not_use_javascript_truthiness() {
        let d = data();
        for yes in [
            "and 1 \"x\" t",
            "and list obj",
            "or zero empty_s list",
            "or missing 1",
            "not zero",
            "not empty_s",
            "not nul",
            "not missing",
            "not neg_zero",
            "and",
            "not (eq 1 2)",
            "and (gt 2 1) (lt 1 2)",
        ] {
            assert!(holds(yes, &d), "{yes} should hold");
        }
        for no in
            ["and 1 0", "and t missing", "or zero empty_s nul f missing", "or", "not list", "not obj", "not \"0\""]
        {
            assert!(!holds(no, &d), "{no} should not hold");
        }
        assert!(render("{{not}}", &d).is_err());
    }

    #[test]
    fn logic_helpers_work_as_blocks() {
        let d = data();
        assert_eq!(ok("{{#eq ten 10.0}}same{{else}}different{{/eq}}", d.clone()), "same");
        assert_eq!(ok("{{#gt ten 20}}big{{else}}small{{/gt}}", d.clone()), "small");
        assert_eq!(ok("{{#and t list}}yes{{/and}}{{#or f}}no{{/or}}", d.clone()), "yes");
        assert_eq!(ok("{{#not missing}}absent{{/not}}", d), "absent");
    }

    #[test]
    fn handlebars_rust_builtins_differ_from_javascript_where_we_replace_them() {
        // The crate's own helpers, for the record of why ours replace them; if these
        // start agreeing with JavaScript, the replacements can go.
        let mut builtin = handlebars::Handlebars::new();
        builtin.set_strict_mode(true);
        let d = data();
        let run = |t: &str| builtin.render_template(t, &d).map_err(|e| e.to_string());
        assert_eq!(run("{{eq ten ten_f}}"), Ok("false".to_owned())); // JS: 10 === 10.0
        assert_eq!(run("{{and t list}}"), Ok("false".to_owned())); // JS: [] is truthy
        assert_eq!(run("{{not obj}}"), Ok("true".to_owned())); // JS: !{} is false
        assert_eq!(run("{{gt nul -1}}"), Ok("false".to_owned())); // JS: null > -1
        assert!(run("{{not missing}}").is_err()); // JS: !undefined is true
        // Ours, through the herald registry.
        assert_eq!(
            ok("{{eq ten ten_f}}|{{and t list}}|{{not obj}}|{{gt nul -1}}|{{not missing}}", d),
            "true|true|false|true|true"
        );
    }

    #[test]
    fn js_to_number_follows_ecmascript() {
        for (s, n) in [
            ("", 0.0),
            ("  ", 0.0),
            (" 12 ", 12.0),
            ("\u{a0}1.5\n", 1.5),
            ("0x1F", 31.0),
            ("0b101", 5.0),
            ("0o17", 15.0),
            ("-Infinity", f64::NEG_INFINITY),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("+3", 3.0),
            ("-0", -0.0),
        ] {
            assert_eq!(super::js_to_number(s), n, "{s:?}");
        }
        for s in ["abc", "inf", "nan", "NaN", "infinity", "1e", "0x", "-0x10", "1_000", "1,5", ".", "e5", "12px"] {
            assert!(super::js_to_number(s).is_nan(), "{s:?}");
        }
    }

    // --- text helpers ----------------------------------------------------------------------

    #[test]
    fn capitalize_uppercases_the_first_grapheme_only() {
        let t = "{{capitalize s}}";
        assert_eq!(ok(t, json!({ "s": "élan vital" })), "Élan vital");
        assert_eq!(ok(t, json!({ "s": "e\u{301}cole" })), "E\u{301}cole");
        assert_eq!(ok(t, json!({ "s": "ßtraße" })), "SStraße");
        assert_eq!(ok(t, json!({ "s": "mIXED" })), "MIXED");
        assert_eq!(ok(t, json!({ "s": "" })), "");
        assert_eq!(ok(t, json!({ "s": "👍🏽 ok" })), "👍🏽 ok");
        assert!(render(t, &json!({})).is_err());
    }

    #[test]
    fn replace_replaces_every_occurrence() {
        assert_eq!(ok(r#"{{replace s "-" "+"}}"#, json!({ "s": "a-b-c" })), "a+b+c");
        assert_eq!(ok(r#"{{replace s "aa" "b"}}"#, json!({ "s": "aaaaa" })), "bba");
        assert_eq!(ok(r#"{{replace s "." ","}}"#, json!({ "s": 3.5 })), "3,5");
        assert_eq!(ok(r#"{{replace s "x" ""}}"#, json!({ "s": "axbx" })), "ab");
        assert_eq!(ok(r#"{{replace s "" "-"}}"#, json!({ "s": "ab" })), "-a-b-"); // as JS replaceAll
        assert!(render(r#"{{replace s "a"}}"#, &json!({ "s": "abc" })).is_err());
        assert!(render(r#"{{replace s from "b"}}"#, &json!({ "s": "abc" })).is_err());
    }

    #[test]
    fn url_encode_is_encode_uri_component() {
        let t = "{{url_encode s}}";
        // encodeURIComponent("a b&c=d/é?~*()!'#+%") in JavaScript:
        assert_eq!(ok(t, json!({ "s": "a b&c=d/é?~*()!'#+%" })), "a%20b%26c%3Dd%2F%C3%A9%3F~*()!'%23%2B%25");
        assert_eq!(ok(t, json!({ "s": "😀\u{2028}" })), "%F0%9F%98%80%E2%80%A8");
        assert_eq!(ok(t, json!({ "s": "AZaz09-_." })), "AZaz09-_.");
        // String(x) first, as JS does.
        assert_eq!(ok(t, json!({ "s": 10.0 })), "10");
        assert_eq!(ok(t, json!({ "s": null })), "null");
        assert_eq!(ok(t, json!({ "s": [1, "a b"] })), "1%2Ca%20b");
        assert!(render(t, &json!({})).is_err());
    }

    #[test]
    fn json_is_json_stringify() {
        let t = "{{json v}}";
        let v: Value = serde_json::from_str(
            r#"{"b": 1, "2": [1.0, 2.5, 1e21, 1e-7, 0.000001, -0.0, 123456789012.0], "1": {"x": null}, "a": "é\"\\\n</script>\u2028", "t": true}"#,
        )
        .expect("valid JSON");
        // JSON.stringify of the same JSON.parse'd object: index keys first, JS numbers.
        assert_eq!(
            ok(t, json!({ "v": v })),
            r#"{"1":{"x":null},"2":[1,2.5,1e+21,1e-7,0.000001,0,123456789012],"b":1,"a":"é\"\\\n</script>"#.to_owned()
                + "\u{2028}\",\"t\":true}"
        );
        assert_eq!(ok(t, json!({ "v": "x" })), r#""x""#);
        assert_eq!(ok(t, json!({ "v": 10.0 })), "10");
        assert_eq!(ok(t, json!({ "v": null })), "null");
        assert_eq!(ok(t, json!({ "v": [] })), "[]");
        assert!(render(t, &json!({})).is_err(), "a missing variable is an error");
        // In HTML the output is escaped like any value; {{{json v}}} for raw.
        let html = registry(Escape::Html).render_template("{{json v}}", &json!({ "v": { "a": "<" } }));
        assert_eq!(html.map_err(|e| e.to_string()), Ok("{&quot;a&quot;:&quot;&lt;&quot;}".to_owned()));
    }

    #[test]
    fn js_float_prints_like_number_to_string() {
        for (f, s) in [
            (0.1, "0.1"),
            (1.5e-7, "1.5e-7"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (-0.0, "0"),
            (123.456, "123.456"),
            (1e-6, "0.000001"),
            (1.2345e-7, "1.2345e-7"),
            (2.5e25, "2.5e+25"),
            (-42.0, "-42"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ] {
            assert_eq!(super::js_float(f), s, "{f:e}");
        }
    }

    #[test]
    fn upper_lower_and_default_print_numbers_as_javascript() {
        assert_eq!(ok("{{upper s}} {{lower s}}", json!({ "s": "Ça Va" })), "ÇA VA ça va");
        assert_eq!(ok("{{upper n}}|{{lower nul}}", json!({ "n": 10.0, "nul": null })), "10|");
        assert_eq!(
            ok("{{default x 10.0}}|{{default x 2.5}}|{{default y 1}}", json!({ "x": null, "y": 3.0 })),
            "10|2.5|3"
        );
        assert_eq!(ok("{{default x \"fallback\"}}|{{default missing \"f\"}}", json!({ "x": "" })), "fallback|f");
        assert_eq!(ok("{{default x \"f\"}}", json!({ "x": 0 })), "0");
        assert!(render("{{upper missing}}", &json!({})).is_err());
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
}
