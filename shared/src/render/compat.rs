//! Where handlebars-rust and handlebars.js differ, herald drives the crate so that a
//! template renders as handlebars.js renders it. Two steps around the crate, and the
//! helpers they call (registered by [`register_helpers`]):
//!
//! - [`prepare_source`], applied to every template and partial before it is compiled,
//!   rewrites what handlebars-rust's grammar does not take or reads differently:
//!   - an inverted section `{{^name}}A{{else}}B{{/name}}` (a parse error at the top
//!     level, and an `{{else name}}` chain inside a block, where handlebars.js opens an
//!     inverted section) becomes `{{#herald-inverted name}}A{{else}}B{{/herald-inverted}}`;
//!     `{{^if c}}` (an inverted call of a built-in helper) becomes
//!     `{{#herald-inverted "if" c}}`. mustache.rs renders both as handlebars.js does:
//!     the section with its two blocks swapped. handlebars.js also applies the `~`s of
//!     an inverted section with `{{else}}` to the swapped blocks: they are moved so the
//!     same whitespace goes;
//!   - a section on a path that is not a plain name (`{{#a.b}}`, `{{#../x}}`,
//!     `{{#@first}}`, `{{#"key"}}`) becomes `{{#herald-section a.b}}`;
//!   - `.` as a path becomes `this`; a literal alone in a mustache or as a section name
//!     is a key (`{{"a b"}}`, `{{12.34}}` → `{{[a b]}}`, `{{[12.34]}}`); a number literal
//!     `10.0` becomes `10` (handlebars-rust would print `10.0`);
//!   - `xs.length` (JavaScript's `length`) becomes `herald-length xs`;
//!   - a comment with whitespace control (`{{~! … ~}}`, which handlebars-rust cannot
//!     parse or ignores) leaves its `~`s to empty `herald-comment` calls beside it;
//!   - `{{> "footer"}}` / `{{> [footer]}}` lose quotes the name does not need; a
//!     partial tag that is not alone on its line gets an empty call before it, so its
//!     later lines are not indented (handlebars.js indents standalone partials only).
//!
//!   The rewrite never adds or removes a line break, so line numbers in compile and
//!   render errors point into the author's source; columns after a rewritten tag on
//!   the same line are off by the length it added (`{{^x}}` → `{{#herald-inverted x}}`:
//!   16 columns). `{{^}}` and `{{else}}` are kept as they are, and so is everything
//!   inside comments, raw blocks `{{{{raw}}}}…{{{{/raw}}}}`, escaped `\{{` and string
//!   literals.
//! - [`js_numbers`], applied to the data, prints numbers as JavaScript's `String(x)`
//!   and orders integer-like object keys as JavaScript enumerates them.
//!
//! `#if`/`#unless` (JavaScript truthiness: `{}` is true, exactly one argument) and
//! `lookup` (a missing key is `undefined`, not a strict-mode error) are registered in
//! place of handlebars-rust's built-ins. What cannot be closed this way is listed, with
//! the reason, in `KNOWN_DIFFERENCES` of shared/tests/handlebars_js_parity.rs.

use std::borrow::Cow;

use handlebars::{
    Context, Handlebars, Helper, HelperDef, PathAndJson, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::{Number, Value};

use super::blocks::IfHelper;
use super::mustache::{InvertedSectionHelper, PathSectionHelper};

/// `{{^x}}…{{/x}}` is compiled as a block of this helper.
pub(super) const INVERTED_HELPER: &str = "herald-inverted";
/// `{{#a.b}}…{{/a.b}}` is compiled as a block of this helper.
pub(super) const SECTION_HELPER: &str = "herald-section";
/// Prints nothing: carries a comment's whitespace control (`{{~! … ~}}`).
const COMMENT_HELPER: &str = "herald-comment";
/// JavaScript's `length` (`xs.length`): handlebars-rust has no such path.
const LENGTH_HELPER: &str = "herald-length";

/// handlebars.js's known helpers that take a block: `{{^if}}` is a call of `if` even
/// without arguments (which handlebars.js then refuses), never a section on `if`.
const BUILT_IN_BLOCK_HELPERS: [&str; 6] = ["if", "unless", "each", "with", "lookup", "log"];

/// The helpers [`prepare_source`]'s rewrites call, and built-ins that behave as
/// handlebars.js's: `#if`/`#unless` (`{}` is true; exactly one argument) and `lookup`
/// (a missing key is `undefined`, not a strict-mode error).
pub fn register_helpers(h: &mut Handlebars<'static>) {
    h.register_helper(INVERTED_HELPER, Box::new(InvertedSectionHelper));
    h.register_helper(SECTION_HELPER, Box::new(PathSectionHelper));
    h.register_helper("if", Box::new(IfHelper { positive: true }));
    h.register_helper("unless", Box::new(IfHelper { positive: false }));
    h.register_helper("lookup", Box::new(LookupHelper));
    h.register_helper(COMMENT_HELPER, Box::new(CommentHelper));
    h.register_helper(LENGTH_HELPER, Box::new(LengthHelper));
}

/// `herald-length xs` for `xs.length`: an array's item count, a string's UTF-16 length
/// (JavaScript's), an object's own `length` key; nothing for a number or boolean. On
/// an absent or null value handlebars.js fails ("Cannot read properties of
/// undefined"), and so does this.
struct LengthHelper;

impl HelperDef for LengthHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let base = super::helpers::required_param(h, 0, LENGTH_HELPER)?;
        let path = base.relative_path().map_or("the value", String::as_str);
        Ok(match base.value() {
            _ if base.is_value_missing() => {
                return Err(RenderErrorReason::Other(format!("`{path}.length`: `{path}` is missing")).into());
            }
            Value::Null => return Err(RenderErrorReason::Other(format!("`{path}.length`: `{path}` is null")).into()),
            Value::Array(items) => ScopedJson::Derived(Value::from(items.len())),
            Value::String(s) => ScopedJson::Derived(Value::from(s.encode_utf16().count())),
            Value::Object(map) => map.get("length").map_or(ScopedJson::Missing, |v| ScopedJson::Derived(v.clone())),
            _ => ScopedJson::Missing,
        })
    }
}

struct CommentHelper;

impl HelperDef for CommentHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        _: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        Ok(ScopedJson::Derived(Value::String(String::new())))
    }
}

/// `{{lookup obj field}}` as handlebars.js runs it: `obj` itself when it is falsy, else
/// its own property `field` (an array's item or `length`, a string's UTF-16 unit or
/// `length`, an object's key), else nothing. Strict mode checks paths, not what a
/// helper returns, so a missing key prints "" there too.
struct LookupHelper;

impl HelperDef for LookupHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        Ok(ScopedJson::Derived(js_lookup(h.params())?))
    }
}

/// handlebars.js's `lookup` on its arguments (`obj`, `field`); null for `undefined`.
pub(super) fn js_lookup(args: &[PathAndJson<'_>]) -> Result<Value, RenderError> {
    // handlebars.js fails on fewer than two arguments too.
    let [obj, field, ..] = args else {
        return Err(RenderErrorReason::Other("lookup takes an object and a field".into()).into());
    };
    if obj.is_value_missing() {
        return Ok(Value::Null);
    }
    let obj = obj.value();
    let key = match Some(field).filter(|p| !p.is_value_missing()).map(|p| p.value()) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().map_or_else(|| n.to_string(), js_string),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Null) => "null".to_owned(),
        _ => "undefined".to_owned(),
    };
    let found = match obj {
        Value::Null | Value::Bool(false) => Some(obj.clone()),
        Value::Number(n) if n.as_f64() == Some(0.0) => Some(obj.clone()),
        Value::String(s) if s.is_empty() => Some(obj.clone()),
        Value::Object(map) => map.get(&key).cloned(),
        Value::Array(items) if key == "length" => Some(Value::from(items.len())),
        Value::Array(items) => array_index(&key).and_then(|i| items.get(i)).cloned(),
        Value::String(s) if key == "length" => Some(Value::from(s.encode_utf16().count())),
        Value::String(s) => array_index(&key)
            .and_then(|i| s.encode_utf16().nth(i))
            .map(|u| Value::String(String::from_utf16_lossy(&[u]))),
        _ => None,
    };
    Ok(found.unwrap_or(Value::Null))
}

/// A JavaScript array index: the canonical decimal text of a non-negative integer.
fn array_index(key: &str) -> Option<usize> {
    key.parse::<usize>().ok().filter(|i| i.to_string() == key)
}

// ---------------------------------------------------------------------------------
// Source.
// ---------------------------------------------------------------------------------

/// Rewrites a template or partial source so handlebars-rust compiles it with
/// handlebars.js's meaning (see the module documentation). Borrowed when nothing needs
/// rewriting. An error is a template handlebars.js rejects too (an inverted section
/// never closed, or closed by another name); it names the line and column.
pub fn prepare_source(src: &str) -> Result<Cow<'_, str>, String> {
    let mut edits: Vec<Edit> = Vec::new();
    let mut open: Vec<Block<'_>> = Vec::new();
    let mut pos = 0;
    let mut complete = true;
    while let Some(found) = src[pos..].find("{{") {
        let start = pos + found;
        if is_escaped(src, start) {
            // `\{{x}}` is text up to the next `{{`.
            pos = start + 2;
            continue;
        }
        if src[start..].starts_with("{{{{") {
            pos = skip_raw_block(src, start);
            continue;
        }
        let Some(tag) = Tag::read(src, start) else {
            // Unterminated: left for handlebars-rust to report.
            complete = false;
            break;
        };
        pos = tag.end;
        if let Some(comment) = tag.comment {
            comment_edits(src, start, &tag, comment, &mut edits);
            continue;
        }
        let (from, to) = tag.body;
        let body = &src[from..to];
        let mut name_range = None;
        match body.as_bytes().first() {
            Some(b'^') => {
                let Some(opener) = Opener::parse(src, from + 1, to) else {
                    record_else(&mut open, &tag, start);
                    continue;
                };
                let helper_call = opener.has_args || BUILT_IN_BLOCK_HELPERS.contains(&opener.name);
                let name = if helper_call {
                    quoted_name(opener.name).ok_or_else(|| at(src, start, "this inverted block's name"))?
                } else {
                    path_name(opener.name).ok_or_else(|| at(src, start, "this inverted section's name"))?
                };
                edits.push(Edit { range: (from, from + 1), text: format!("#{INVERTED_HELPER} ") });
                if name != opener.name {
                    edits.push(Edit { range: opener.name_range, text: name.into_owned() });
                }
                name_range = Some(opener.name_range);
                let close_tilde = Tilde { at: to, present: tag.strip_after };
                open.push(Block {
                    name: opener.name,
                    helper: Some(INVERTED_HELPER),
                    start,
                    close_tilde,
                    else_tag: None,
                });
            }
            Some(b'#') if !body[1..].starts_with(['>', '*']) => {
                let opener = Opener::parse(src, from + 1, to);
                // handlebars-rust takes only a plain name as a block's name.
                let rewrite = opener.as_ref().is_some_and(|o| !o.has_args && !is_identifier(o.name));
                let name = opener.as_ref().map_or("", |o| o.name);
                if let Some(opener) = opener.as_ref().filter(|_| rewrite) {
                    let path = path_name(opener.name).ok_or_else(|| at(src, start, "this section's name"))?;
                    edits.push(Edit { range: (from, from + 1), text: format!("#{SECTION_HELPER} ") });
                    if path != opener.name {
                        edits.push(Edit { range: opener.name_range, text: path.into_owned() });
                    }
                    name_range = Some(opener.name_range);
                }
                open.push(Block::other(name, rewrite.then_some(SECTION_HELPER), start));
            }
            // A partial block or a decorator block: closed by its own name.
            Some(b'#') => {
                if body[1..].starts_with('>') {
                    name_range = partial_name_edit(src, from + 2, to, &mut edits);
                }
                open.push(Block::other("", None, start));
            }
            Some(b'/') => {
                let Some(block) = open.pop() else { continue };
                let Some(helper) = block.helper else { continue };
                let name = body[1..].trim();
                if unquote(name) != unquote(block.name) {
                    let (line, column) = super::line_column(src, block.start);
                    return Err(at(
                        src,
                        start,
                        &format!(
                            "`{{{{/{name}}}}}` closes the block `{}` opened at line {line}, column {column}; it",
                            block.name
                        ),
                    ));
                }
                let name_start = from + 1 + (body[1..].len() - body[1..].trim_start().len());
                edits.push(Edit { range: (name_start, name_start + name.len()), text: helper.to_owned() });
                if let Some((else_open, else_close)) = block.else_tag {
                    // handlebars.js applies the whitespace control of `{{^x~}}A{{~else~}}B{{~/x}}`
                    // to its blocks after swapping them (B first): `{{^x~}}` strips B's start,
                    // `{{~else` B's end, `else~}}` A's start, `{{~/x}}` A's end. Moving the
                    // `~`s keeps that once the blocks are in source order again.
                    let closer_open = Tilde { at: start + 2, present: tag.strip_before };
                    set_tilde(block.close_tilde, else_close.present, &mut edits);
                    set_tilde(else_open, closer_open.present, &mut edits);
                    set_tilde(else_close, block.close_tilde.present, &mut edits);
                    set_tilde(closer_open, else_open.present, &mut edits);
                }
                continue;
            }
            // handlebars.js's grammar has no `{{else if …}}` chain in an inverted section.
            Some(b'e') if is_else_chain(body) && open.last().is_some_and(|b| b.helper == Some(INVERTED_HELPER)) => {
                return Err(at(src, start, "an `{{else …}}` chain inside `{{^…}}`"));
            }
            Some(b'>') => {
                // With `{{~>`, the spaces go and there is nothing to indent with.
                if !tag.strip_before && indents_inline(src, start, tag.end) {
                    edits.push(Edit { range: (start, start), text: format!("{{{{{COMMENT_HELPER}}}}}") });
                }
                name_range = partial_name_edit(src, from + 1, to, &mut edits);
            }
            Some(b'*') => continue,
            _ if body.trim() == "else" => {
                record_else(&mut open, &tag, start);
                continue;
            }
            // A mustache: `{{x}}`, `{{{x}}}`, `{{&x}}`.
            _ => {
                let inner = match body.as_bytes().first() {
                    Some(b'{') => (from + 1, if body.ends_with('}') { to - 1 } else { to }),
                    Some(b'&') => (from + 1, to),
                    _ => (from, to),
                };
                // `{{&…}}` takes a path or a subexpression, not a helper call.
                let ampersand = body.starts_with('&');
                if single_value_edit(src, inner, ampersand, &mut edits) {
                    continue;
                }
            }
        }
        token_edits(src, tag.body, name_range, &mut edits);
    }
    if complete && let Some(block) = open.iter().find(|b| b.helper.is_some()) {
        return Err(at(src, block.start, &format!("the block `{}` is never closed; it", block.name)));
    }
    if edits.is_empty() {
        return Ok(Cow::Borrowed(src));
    }
    edits.sort_by_key(|e| e.range.0);
    let mut out = String::with_capacity(src.len() + edits.len() * 20);
    let mut copied = 0;
    for edit in &edits {
        out.push_str(&src[copied..edit.range.0]);
        out.push_str(&edit.text);
        copied = edit.range.1;
    }
    out.push_str(&src[copied..]);
    Ok(Cow::Owned(out))
}

/// One replacement in the source.
struct Edit {
    range: (usize, usize),
    text: String,
}

/// An open block: its name as written, the helper its opener was rewritten to (its
/// closer then is too), and where its tag starts.
struct Block<'a> {
    name: &'a str,
    helper: Option<&'static str>,
    start: usize,
    /// An inverted section's `~` before the opener's `}}`, and its `{{else}}`'s two.
    close_tilde: Tilde,
    else_tag: Option<(Tilde, Tilde)>,
}

impl<'a> Block<'a> {
    fn other(name: &'a str, helper: Option<&'static str>, start: usize) -> Self {
        Block { name, helper, start, close_tilde: Tilde { at: start, present: false }, else_tag: None }
    }
}

/// Where a whitespace-control `~` of a tag is or would go, and whether it is there.
#[derive(Clone, Copy)]
struct Tilde {
    at: usize,
    present: bool,
}

/// Notes a bare `{{else}}`/`{{^}}` of the innermost block, if an inverted section.
fn record_else(open: &mut [Block<'_>], tag: &Tag, start: usize) {
    if let Some(block) = open.last_mut().filter(|b| b.helper == Some(INVERTED_HELPER) && b.else_tag.is_none()) {
        let before = Tilde { at: start + 2, present: tag.strip_before };
        let after = Tilde { at: tag.body.1, present: tag.strip_after };
        block.else_tag = Some((before, after));
    }
}

/// Adds or removes the `~` at `tilde.at`.
fn set_tilde(tilde: Tilde, want: bool, edits: &mut Vec<Edit>) {
    match (tilde.present, want) {
        (false, true) => edits.push(Edit { range: (tilde.at, tilde.at), text: "~".to_owned() }),
        (true, false) => edits.push(Edit { range: (tilde.at, tilde.at + 1), text: String::new() }),
        _ => {}
    }
}

/// A comment inside a tag: long (`{{!-- … --}}`) or not, and its text.
#[derive(Clone, Copy)]
struct Comment {
    long: bool,
    text: (usize, usize),
}

/// A `{{…}}` tag: where its body (after `{{` and `~`, before `~` and `}}`) lies, its
/// whitespace control, and where the tag ends.
struct Tag {
    body: (usize, usize),
    strip_before: bool,
    strip_after: bool,
    comment: Option<Comment>,
    end: usize,
}

impl Tag {
    /// Reads the tag starting at `start` (at `{{`); `None` when it never ends.
    fn read(src: &str, start: usize) -> Option<Tag> {
        let bytes = src.as_bytes();
        let mut i = start + 2;
        let strip_before = bytes.get(i) == Some(&b'~');
        if strip_before {
            i += 1;
        }
        if bytes.get(i) == Some(&b'!') {
            let long = src[i..].starts_with("!--");
            let (text_end, strip_after, end) = if long {
                let close = find_first(src, i + 3, &["--}}", "--~}}"])?;
                let strip = src[close..].starts_with("--~");
                (close, strip, close + if strip { 5 } else { 4 })
            } else {
                let close = i + src[i..].find("}}")?;
                let strip = close > i + 1 && bytes[close - 1] == b'~';
                (if strip { close - 1 } else { close }, strip, close + 2)
            };
            let text = (i + if long { 3 } else { 1 }, text_end);
            let comment = Some(Comment { long, text });
            return Some(Tag { body: (i, i), strip_before, strip_after, comment, end });
        }
        let body_start = i;
        let mut j = i;
        while j < bytes.len() {
            match bytes[j] {
                quote @ (b'"' | b'\'') => {
                    j += 1;
                    while j < bytes.len() && bytes[j] != quote {
                        j += if bytes[j] == b'\\' { 2 } else { 1 };
                    }
                    j += 1;
                }
                b'[' => j += src[j..].find(']')? + 1,
                b'}' if bytes.get(j + 1) == Some(&b'}') => {
                    let strip_after = j > body_start && bytes[j - 1] == b'~';
                    let body_end = if strip_after { j - 1 } else { j };
                    let mut end = j + 2;
                    // Triple-stash `{{{x}}}`: the third brace belongs to the tag.
                    if bytes[body_start] == b'{' && bytes.get(end) == Some(&b'}') {
                        end += 1;
                    }
                    let body = (body_start, body_end.max(body_start));
                    return Some(Tag { body, strip_before, strip_after, comment: None, end });
                }
                _ => j += 1,
            }
        }
        None
    }
}

/// handlebars-rust cannot parse `{{~!…}}` and ignores `~}}` on a comment: the comment
/// loses its `~`s, and an empty helper call beside it strips the whitespace instead
/// (`{{~herald-comment}}{{!…}}{{herald-comment~}}`).
fn comment_edits(src: &str, start: usize, tag: &Tag, comment: Comment, edits: &mut Vec<Edit>) {
    if !tag.strip_before && !tag.strip_after {
        return;
    }
    let (dashes_open, dashes_close) = if comment.long { ("--", "--") } else { ("", "") };
    let mut text = String::new();
    if tag.strip_before {
        text.push_str(&format!("{{{{~{COMMENT_HELPER}}}}}"));
    }
    text.push_str(&format!("{{{{!{dashes_open}{}{dashes_close}}}}}", &src[comment.text.0..comment.text.1]));
    if tag.strip_after {
        text.push_str(&format!("{{{{{COMMENT_HELPER}~}}}}"));
    }
    edits.push(Edit { range: (start, tag.end), text });
}

/// A mustache with one value (`{{x}}`, not `{{helper x}}`):
/// - `{{"a b"}}`, `{{12.34}}`: a literal alone is a key in handlebars.js; handlebars-rust
///   cannot parse the first and reads the second as the path 12/34. Written as the
///   segment `[a b]`, same length;
/// - `{{xs.length}}`: handlebars.js reads JavaScript's `length`; handlebars-rust fails
///   on an array and finds nothing on a string. Written as `{{herald-length xs}}`.
///
/// True when the body was handled here.
fn single_value_edit(src: &str, (from, to): (usize, usize), ampersand: bool, edits: &mut Vec<Edit>) -> bool {
    let body = &src[from..to];
    let trimmed = body.trim_start();
    let len = token_len(trimmed);
    let token = &trimmed[..len];
    if !trimmed[len..].trim().is_empty() {
        return false;
    }
    let at = from + body.len() - trimmed.len();
    if let Some(base) = length_base(token) {
        let call = if ampersand { format!("({LENGTH_HELPER} {base})") } else { format!("{LENGTH_HELPER} {base}") };
        edits.push(Edit { range: (at, at + len), text: call });
        return true;
    }
    if !(string_literal(token).is_some() || is_number(token)) {
        return false;
    }
    if let Some(path) = path_name(token).filter(|p| p != token) {
        edits.push(Edit { range: (at, at + len), text: path.into_owned() });
    }
    true
}

/// `xs` for the path `xs.length` (or `xs/length`): JavaScript's `length` of `xs`.
fn length_base(token: &str) -> Option<&str> {
    let base = token.strip_suffix(".length").or_else(|| token.strip_suffix("/length"))?;
    let plain = !base.is_empty()
        && !base.starts_with(['"', '\'', '(', '-'])
        && !base.ends_with(['.', '/'])
        && !base.chars().next().is_some_and(|c| c.is_ascii_digit());
    plain.then_some(base)
}

/// `else x…`: an `{{else if c}}` chain (not a bare `{{else}}`, not a path `elsewhere`).
fn is_else_chain(body: &str) -> bool {
    body.strip_prefix("else").is_some_and(|rest| rest.starts_with([' ', '\t', '\n', '\r']) && !rest.trim().is_empty())
}

/// Whether handlebars-rust would indent the partial tag at `start..end` although it is
/// not standalone: it indents a partial's later lines with the spaces just before the
/// tag, while handlebars.js indents standalone partials only. An empty helper call
/// between the spaces and the tag keeps it from doing so.
fn indents_inline(src: &str, start: usize, end: usize) -> bool {
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    let before = &src[line_start..start];
    let after = src[end..].split('\n').next().unwrap_or("");
    let blank = |s: &str| s.chars().all(|c| c == ' ' || c == '\t' || c == '\r');
    before.ends_with([' ', '\t']) && !(blank(before) && blank(after))
}

/// `{{> "footer"}}`, `{{> [footer]}}`: handlebars.js takes a quoted or bracketed
/// partial name as the name; handlebars-rust cannot parse the first and keeps the
/// quotes or brackets in the second. Unquoted when the name needs no quoting there.
/// Returns the name's range, which no other rewrite touches.
fn partial_name_edit(src: &str, from: usize, to: usize, edits: &mut Vec<Edit>) -> Option<(usize, usize)> {
    let body = &src[from..to];
    let trimmed = body.trim_start();
    let len = token_len(trimmed);
    let token = &trimmed[..len];
    let at = from + body.len() - trimmed.len();
    let inner = string_literal(token).or_else(|| token.strip_prefix('[').and_then(|t| t.strip_suffix(']')));
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '@' | '/' | '.') || !c.is_ascii();
    if let Some(inner) = inner.filter(|i| !i.is_empty() && i.chars().all(plain)) {
        edits.push(Edit { range: (at, at + len), text: inner.to_owned() });
    }
    Some((at, at + len))
}

/// Tokens of a tag that handlebars-rust reads differently: `.` as a path is `this` in
/// handlebars.js, and handlebars-rust's grammar has no `.` (`{{.}}`, `{{#each .}}`,
/// `{{> p .}}`); a literal `10.0` prints `10` ([`integral_literal`]); `xs.length` is
/// `(herald-length xs)` ([`single_value_edit`]). `skip` is a name handled already (a
/// rewritten block's, a partial's).
fn token_edits(src: &str, body: (usize, usize), skip: Option<(usize, usize)>, edits: &mut Vec<Edit>) {
    let text = &src[body.0..body.1];
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' | b'(' | b')' | b'=' | b'|' | b'{' | b'}' | b'#' | b'^' | b'/' | b'>'
            | b'&' | b'*' => i += 1,
            _ => {
                let len = token_len_in_tag(&text[i..]);
                let at = body.0 + i;
                let token = &text[i..i + len];
                if skip.is_none_or(|(s, e)| at < s || at >= e) {
                    if token == "." {
                        edits.push(Edit { range: (at, at + 1), text: "this".to_owned() });
                    } else if let Some(int) = integral_literal(token) {
                        edits.push(Edit { range: (at, at + len), text: int.to_owned() });
                    } else if let Some(base) = length_base(token) {
                        edits.push(Edit { range: (at, at + len), text: format!("({LENGTH_HELPER} {base})") });
                    }
                }
                i += len.max(1);
            }
        }
    }
}

/// A number literal with a zero fraction (`10.0`, `-0.0`) as its integer (`10`, `0`):
/// handlebars-rust prints the literal `10.0` as `10.0`, handlebars.js as `10`.
fn integral_literal(token: &str) -> Option<&str> {
    let (int, frac) = token.split_once('.')?;
    if !is_number(token) || !frac.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(if int == "-0" { "0" } else { int })
}

/// A token inside a tag: like [`token_len`], also ending at `(`, `)`, `=`, `|`, `}`.
fn token_len_in_tag(s: &str) -> usize {
    let whole = token_len(s);
    s[..whole]
        .char_indices()
        .scan(0_usize, |depth, (i, c)| {
            match c {
                '[' => *depth += 1,
                ']' => *depth = depth.saturating_sub(1),
                _ => {}
            }
            Some((i, c, *depth))
        })
        .find(|(i, c, depth)| *depth == 0 && *i > 0 && matches!(c, '(' | ')' | '=' | '|' | '}'))
        .map_or(whole, |(i, _, _)| i)
}

/// The name of a block opener and whether arguments follow it (`{{^if c}}`); block
/// parameters (`as |item|`) are not arguments.
struct Opener<'a> {
    name: &'a str,
    name_range: (usize, usize),
    has_args: bool,
}

impl<'a> Opener<'a> {
    /// Parses `src[from..to]`, the body after the sigil. `None` for `{{^}}` (else).
    fn parse(src: &'a str, from: usize, to: usize) -> Option<Opener<'a>> {
        let body = &src[from..to];
        let trimmed = body.trim_start();
        if trimmed.trim_end().is_empty() {
            return None;
        }
        let name_start = from + body.len() - trimmed.len();
        let len = token_len(trimmed);
        let rest = trimmed[len..].trim();
        let block_params = rest.strip_prefix("as").is_some_and(|r| r.trim_start().starts_with('|'));
        Some(Opener {
            name: &trimmed[..len],
            name_range: (name_start, name_start + len),
            has_args: !rest.is_empty() && !block_params,
        })
    }
}

/// Length of the path or literal at the start of `s`: up to whitespace, with `[…]`
/// segments and string literals taken whole.
fn token_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => break,
            b'[' => i += s[i..].find(']').map_or(s.len() - i, |c| c + 1),
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
            }
            _ => i += 1,
        }
    }
    i
}

/// A name handlebars-rust's grammar takes after `{{#` (its `identifier`).
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '$' | ':') || !c.is_ascii())
}

/// The name as a path: a literal (`"a b"`, `'a'`, `5`, `true`) is a key, as
/// handlebars.js reads it, written as the segment `[a b]` (same length). `None` for a
/// name that is no path (a subexpression, or a literal that cannot be a segment).
fn path_name(name: &str) -> Option<Cow<'_, str>> {
    if let Some(inner) = string_literal(name) {
        return (!inner.contains([']', '\\'])).then(|| Cow::Owned(format!("[{inner}]")));
    }
    if name.starts_with('(') {
        return None;
    }
    if name == "." {
        return Some(Cow::Borrowed("this"));
    }
    if let Some(base) = length_base(name) {
        return Some(Cow::Owned(format!("({LENGTH_HELPER} {base})")));
    }
    // A number with a fraction (`1.5`) is a key too; `[1.5]` keeps handlebars-rust from
    // reading it as the path 1/5.
    if is_number(name) && name.contains('.') {
        return Some(Cow::Owned(format!("[{name}]")));
    }
    Some(Cow::Borrowed(name))
}

/// A number literal as handlebars.js's lexer reads one (`12`, `-1.5`).
fn is_number(token: &str) -> bool {
    let digits = token.strip_prefix('-').unwrap_or(token);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
    !int.is_empty() && !frac.is_empty() && (int.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
}

/// The helper name of an inverted helper call as a string literal (`"if"`).
fn quoted_name(name: &str) -> Option<Cow<'_, str>> {
    if string_literal(name).is_some() {
        return Some(Cow::Borrowed(name));
    }
    (!name.contains(['"', '\\', '('])).then(|| Cow::Owned(format!("\"{name}\"")))
}

fn string_literal(name: &str) -> Option<&str> {
    ['"', '\'']
        .into_iter()
        .find_map(|q| name.strip_prefix(q).and_then(|n| n.strip_suffix(q)).filter(|_| name.len() >= 2))
}

fn unquote(name: &str) -> &str {
    string_literal(name).unwrap_or(name)
}

/// `{{` preceded by one backslash is text in handlebars.js (two print one backslash
/// and open a tag).
fn is_escaped(src: &str, start: usize) -> bool {
    let before = &src[..start];
    before.ends_with('\\') && !before.ends_with("\\\\")
}

/// The end of the raw block opened at `start` (`{{{{name}}}}`): its content runs to
/// the next `{{{{` (the closer), as handlebars-rust reads it.
fn skip_raw_block(src: &str, start: usize) -> usize {
    let Some(open_end) = src[start + 4..].find("}}}}").map(|i| start + 4 + i + 4) else { return src.len() };
    if src[start + 4..].trim_start_matches('~').starts_with('/') {
        return open_end;
    }
    let Some(close) = src[open_end..].find("{{{{").map(|i| open_end + i) else { return src.len() };
    src[close..].find("}}}}").map_or(src.len(), |i| close + i + 4)
}

fn find_first(src: &str, from: usize, needles: &[&str]) -> Option<usize> {
    needles.iter().filter_map(|n| src[from..].find(n).map(|i| from + i)).min()
}

fn at(src: &str, offset: usize, what: &str) -> String {
    let (line, column) = super::line_column(src, offset);
    format!("line {line}, column {column}: {what} is not valid Handlebars")
}

// ---------------------------------------------------------------------------------
// Numbers.
// ---------------------------------------------------------------------------------

/// Rewrites the numbers of `value` so handlebars-rust prints each as JavaScript's
/// `String(x)` prints it (handlebars.js's output). serde_json prints a float with a
/// `.0` when integral, and in exponent form (`1e-6`, `1e+16`) outside about
/// 1e-5..1e16, where JavaScript prints positional digits from 1e-7 up to 1e21:
///
/// - an integral float (`10.0`, `-0.0`, `1e3`, `1e16`) becomes an integer: `10`, `0`,
///   `1000`, `10000000000000000`. Exact below 2^53; beyond, up to the integer range,
///   the integer JavaScript prints (`1152921504606846976.0` prints
///   `1152921504606847000`), which reads back as the same double;
/// - a float both print alike (`0.1`, `0.00001`, `1.5e-7`, `1e+21`) stays as it is;
/// - a float printed differently (`0.000001`: serde_json `1e-6`; integral ones from 2^64
///   to 1e21: `1e+20`) becomes the string JavaScript prints, since no JSON number prints
///   that way in handlebars-rust. It prints, escapes and tests (`#if`, sections) as
///   the number does; a helper that computes with it gets a numeric string.
///
/// Integers (`42`, `9007199254740993`) are kept exact: serde_json reads them as
/// integers, while `JSON.parse` rounds those beyond 2^53 to a double, so handlebars.js
/// prints `9007199254740992`. An identifier that large survives herald intact.
///
/// Integer-like object keys are numbers to JavaScript too: it enumerates them first,
/// ascending (`{"b": 1, "10": 2, "2": 3}` iterates `2`, `10`, `b` in `#each`), so
/// objects holding such keys are reordered that way; other keys keep the JSON order.
pub fn js_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(js) = js_number(n) {
                *value = js;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(js_numbers),
        Value::Object(map) => {
            map.values_mut().for_each(js_numbers);
            if map.keys().any(|k| js_index_key(k).is_some()) {
                // JavaScript enumerates integer keys first, ascending, then the others in
                // order: `{"b": 1, "2": 2, "1": 3}` iterates 1, 2, b in `#each`.
                let (mut indexes, others): (Vec<_>, Vec<_>) =
                    std::mem::take(map).into_iter().partition(|(k, _)| js_index_key(k).is_some());
                indexes.sort_by_key(|(k, _)| js_index_key(k));
                map.extend(indexes);
                map.extend(others);
            }
        }
        _ => {}
    }
}

/// An array index as JavaScript orders object keys: the canonical decimal text of an
/// integer below 2^32 - 1.
fn js_index_key(key: &str) -> Option<u32> {
    key.parse::<u32>().ok().filter(|i| *i < u32::MAX && i.to_string() == key)
}

/// The replacement for a float whose handlebars-rust text differs from JavaScript's.
fn js_number(n: &Number) -> Option<Value> {
    if !n.is_f64() {
        return None;
    }
    let x = n.as_f64()?;
    let text = js_string(x);
    if x.fract() == 0.0 {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Value::from(u));
        }
    }
    (n.to_string() != text).then_some(Value::String(text))
}

/// ECMAScript `Number::toString(x)` for a finite `x`: the shortest digits that read
/// back as `x`, in positional notation from 1e-7 up to 1e21, else as `d.ddde±n`.
fn js_string(x: f64) -> String {
    if x == 0.0 {
        return "0".to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // Rust's `{:e}` prints the shortest round-trip digits, as ECMAScript asks.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = digits.len() as i64;
    // x = 0.digits × 10^n
    let n = exponent.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat((-n) as usize))
    } else {
        let e = n - 1;
        let e = if e < 0 { format!("-{}", -e) } else { format!("+{e}") };
        match digits.split_at(1) {
            (first, "") => format!("{first}e{e}"),
            (first, rest) => format!("{first}.{rest}e{e}"),
        }
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{js_numbers, js_string, prepare_source};

    fn prepared(src: &str) -> String {
        prepare_source(src).unwrap_or_else(|e| panic!("{src:?}: {e}")).into_owned()
    }

    #[test]
    fn sources_without_inverted_sections_are_borrowed() {
        for src in ["", "plain", "{{a}} {{#if b}}x{{else}}y{{/if}} {{#each c}}{{^}}none{{/each}}", "{{{raw}}}"] {
            assert!(matches!(prepare_source(src), Ok(std::borrow::Cow::Borrowed(_))), "{src:?}");
        }
    }

    #[test]
    fn inverted_sections_become_the_helper() {
        assert_eq!(prepared("{{^x}}A{{/x}}"), "{{#herald-inverted x}}A{{/herald-inverted}}");
        assert_eq!(prepared("{{~^ x ~}}A{{~/ x ~}}"), "{{~#herald-inverted  x ~}}A{{~/ herald-inverted ~}}");
        assert_eq!(
            prepared("{{^x}}A{{else}}B{{^}}C{{/x}}"),
            "{{#herald-inverted x}}A{{else}}B{{^}}C{{/herald-inverted}}"
        );
        assert_eq!(prepared("{{^a.b}}A{{/a.b}}"), "{{#herald-inverted a.b}}A{{/herald-inverted}}");
        assert_eq!(
            prepared("{{^items as |item|}}A{{/items}}"),
            "{{#herald-inverted items as |item|}}A{{/herald-inverted}}"
        );
        assert_eq!(prepared("{{^\"a b\"}}A{{/\"a b\"}}"), "{{#herald-inverted [a b]}}A{{/herald-inverted}}");
    }

    #[test]
    fn inverted_helper_calls_name_the_helper() {
        assert_eq!(prepared("{{^if c}}A{{/if}}"), "{{#herald-inverted \"if\" c}}A{{/herald-inverted}}");
        assert_eq!(prepared("{{^each xs}}A{{/each}}"), "{{#herald-inverted \"each\" xs}}A{{/herald-inverted}}");
        assert_eq!(prepared("{{^with}}A{{/with}}"), "{{#herald-inverted \"with\"}}A{{/herald-inverted}}");
    }

    #[test]
    fn inverted_sections_inside_blocks_open_a_section() {
        // handlebars-rust alone reads `{{^b}}` inside a block as `{{else b}}`.
        assert_eq!(
            prepared("{{#a}}X{{^b}}Y{{/b}}Z{{/a}}"),
            "{{#a}}X{{#herald-inverted b}}Y{{/herald-inverted}}Z{{/a}}"
        );
        assert_eq!(
            prepared("{{#each xs}}{{^this}}F{{else}}T{{/this}}{{/each}}"),
            "{{#each xs}}{{#herald-inverted this}}F{{else}}T{{/herald-inverted}}{{/each}}"
        );
        assert_eq!(
            prepared("{{^a}}{{^a}}x{{/a}}{{/a}}"),
            "{{#herald-inverted a}}{{#herald-inverted a}}x{{/herald-inverted}}{{/herald-inverted}}"
        );
    }

    #[test]
    fn dotted_sections_become_the_path_helper() {
        assert_eq!(prepared("{{#a.b}}A{{/a.b}}"), "{{#herald-section a.b}}A{{/herald-section}}");
        assert_eq!(prepared("{{#../a}}A{{/../a}}"), "{{#herald-section ../a}}A{{/herald-section}}");
        assert_eq!(prepared("{{#a}}A{{/a}}"), "{{#a}}A{{/a}}");
        assert_eq!(prepared("{{#each a.b}}A{{/each}}"), "{{#each a.b}}A{{/each}}");
    }

    #[test]
    fn dot_literals_and_quoted_partial_names_are_rewritten() {
        assert_eq!(prepared("{{.}} {{{.}}} {{&.}} {{~.~}}"), "{{this}} {{{this}}} {{&this}} {{~this~}}");
        assert_eq!(prepared("{{#each .}}{{.}}{{/each}}"), "{{#each this}}{{this}}{{/each}}");
        assert_eq!(prepared("{{> p .}}\n{{> p x=.}}"), "{{> p this}}\n{{> p x=this}}");
        assert_eq!(prepared("{{^.}}x{{/.}}"), "{{#herald-inverted this}}x{{/herald-inverted}}");
        assert_eq!(prepared("{{#.}}x{{/.}}"), "{{#herald-section this}}x{{/herald-section}}");
        assert_eq!(prepared("{{\"a b\"}} {{'c'}} {{12.34}} {{12}}"), "{{[a b]}} {{[c]}} {{[12.34]}} {{12}}");
        assert_eq!(
            prepared("{{#with 10.0}}{{this}}{{/with}}\n{{> p n=-0.0}}"),
            "{{#with 10}}{{this}}{{/with}}\n{{> p n=0}}"
        );
        assert_eq!(
            prepared("{{> \"footer\"}}\n{{> [a/b]}}\n{{#> 'layout'}}x{{/layout}}"),
            "{{> footer}}\n{{> a/b}}\n{{#> layout}}x{{/layout}}"
        );
        // Kept: a name that needs its quotes, a dotted path, a string argument.
        for src in ["{{> \"a b\"}}", "{{a.b}}", "{{x \".\"}}", "{{x \"10.0\"}}", "{{../x}}", "{{./x}}"] {
            assert_eq!(prepared(src), src);
        }
    }

    #[test]
    fn length_paths_call_the_length_helper() {
        assert_eq!(prepared("{{xs.length}}"), "{{herald-length xs}}");
        assert_eq!(prepared("{{&xs.length}} {{{a/length}}}"), "{{&(herald-length xs)}} {{{herald-length a}}}");
        assert_eq!(
            prepared("{{#if xs.length}}{{../ys.length}}{{/if}}"),
            "{{#if (herald-length xs)}}{{herald-length ../ys}}{{/if}}"
        );
        assert_eq!(
            prepared("{{^xs.length}}x{{/xs.length}}"),
            "{{#herald-inverted (herald-length xs)}}x{{/herald-inverted}}"
        );
        assert_eq!(prepared("{{> p n=xs.length}}"), "{{> p n=(herald-length xs)}}");
        assert_eq!(prepared("{{\"a.length\"}}"), "{{[a.length]}}");
        for src in ["{{length}}", "{{../length}}", "{{x.[length]}}", "{{lengthy}}"] {
            assert_eq!(prepared(src), src);
        }
    }

    #[test]
    fn inverted_sections_with_else_move_their_tildes() {
        // handlebars.js strips around the swapped blocks: `{{^a~}}` strips B's start.
        assert_eq!(
            prepared("{{^a~}} A {{else}} B {{/a}}"),
            "{{#herald-inverted a}} A {{else~}} B {{/herald-inverted}}"
        );
        assert_eq!(
            prepared("{{^a}} A {{~else}} B {{~/a}}"),
            "{{#herald-inverted a}} A {{~else}} B {{~/herald-inverted}}"
        );
        assert_eq!(prepared("{{^a}} A {{~^}} B {{/a}}"), "{{#herald-inverted a}} A {{^}} B {{~/herald-inverted}}");
        // Without `{{else}}` nothing is swapped.
        assert_eq!(prepared("{{^a~}} A {{~/a}}"), "{{#herald-inverted a~}} A {{~/herald-inverted}}");
        let err = prepare_source("{{^a}}A{{else if b}}B{{/a}}").expect_err("no else chain after {{^a}}");
        assert!(err.contains("line 1, column 8"), "{err}");
    }

    #[test]
    fn inline_partials_are_not_indented() {
        assert_eq!(prepared("<div>\n  {{> p}}</div>"), "<div>\n  {{herald-comment}}{{> p}}</div>");
        assert_eq!(prepared("a {{> p}}"), "a {{herald-comment}}{{> p}}");
        // Standalone (indented as in handlebars.js), stripped, or with nothing before it.
        for src in ["<div>\n  {{> p}}\n</div>", "  {{> p}}", "a  {{~> p}}", "{{> p}} b", "a\n{{> p}}"] {
            assert_eq!(prepared(src), src);
        }
    }

    #[test]
    fn comment_whitespace_control_moves_to_a_helper() {
        assert_eq!(prepared("a {{~! c ~}} b"), "a {{~herald-comment}}{{! c }}{{herald-comment~}} b");
        assert_eq!(prepared("a {{!-- c --~}} b"), "a {{!-- c --}}{{herald-comment~}} b");
        assert_eq!(prepared("a {{~!-- x\ny --}} b"), "a {{~herald-comment}}{{!-- x\ny --}} b");
        assert_eq!(prepared("a {{! c }} {{!-- d --}} b"), "a {{! c }} {{!-- d --}} b");
    }

    #[test]
    fn text_comments_raw_blocks_and_strings_are_left_alone() {
        for src in [
            "\\{{^x}}",
            "{{! {{^x}} }}",
            "{{!-- {{^x}} }} --}}",
            "{{{{raw}}}}{{^x}}{{{{/raw}}}}",
            "{{helper \"{{^x}}\"}}",
            "{{helper '}}{{^x}}'}}",
            "{{{triple}}}{{^}}",
        ] {
            assert_eq!(prepared(src), src);
        }
        assert_eq!(prepared("\\\\{{^x}}{{/x}}"), "\\\\{{#herald-inverted x}}{{/herald-inverted}}");
        assert_eq!(
            prepared("{{{{raw}}}}{{^x}}{{{{/raw}}}}{{^y}}{{/y}}"),
            "{{{{raw}}}}{{^x}}{{{{/raw}}}}{{#herald-inverted y}}{{/herald-inverted}}"
        );
    }

    #[test]
    fn line_breaks_are_kept() {
        let src = "a\n{{^x}}\n  {{^y\n}}b{{/y}}\n{{/x\n}}\n";
        let out = prepared(src);
        assert_eq!(out.matches('\n').count(), src.matches('\n').count());
        for (a, b) in src.lines().zip(out.lines()) {
            assert_eq!(a.is_empty(), b.is_empty());
        }
    }

    #[test]
    fn errors_after_a_rewrite_name_the_authors_line() {
        let mut h = super::super::engine::registry(super::super::engine::Escape::None);
        let src = "{{^a}}\n  {{#b.c}}x{{/b.c}}\n{{/a}}\n{{missing}}";
        h.register_template_string("t", prepared(src)).expect("compiles");
        let err = h.render("t", &json!({"a": false})).expect_err("missing variable").to_string();
        assert!(err.contains("line 4"), "{err}");
        let err = h.register_template_string("u", prepared("{{^a}}x{{/a}}\n{{.}}\n{{#if a}}x")).expect_err("unclosed");
        assert!(err.to_string().contains("3:"), "{err}");
    }

    #[test]
    fn unbalanced_inverted_sections_are_errors_with_a_position() {
        let err = prepare_source("ok\n  {{^x}}A").expect_err("never closed");
        assert!(err.contains("line 2, column 3"), "{err}");
        let err = prepare_source("{{^x}}A{{/y}}").expect_err("closed by another name");
        assert!(err.contains("line 1, column 8") && err.contains("line 1, column 1"), "{err}");
        let err = prepare_source("{{#a}}{{^b}}{{/a}}{{/b}}").expect_err("crossed");
        assert!(err.contains("`b`"), "{err}");
    }

    #[test]
    fn js_string_follows_ecmascript() {
        for (x, js) in [
            (10.0, "10"),
            (-0.0, "0"),
            (0.1, "0.1"),
            (-1.5, "-1.5"),
            (1.5e-7, "1.5e-7"),
            (1e-7, "1e-7"),
            (0.000001, "0.000001"),
            (1.2345e-6, "0.0000012345"),
            (1e21, "1e+21"),
            (1.5e300, "1.5e+300"),
            (123456789012345680000.0, "123456789012345680000"),
            (1e20, "100000000000000000000"),
            (2f64.powi(60), "1152921504606847000"),
            (5e-324, "5e-324"),
            (0.30000000000000004, "0.30000000000000004"),
            (123.456, "123.456"),
        ] {
            assert_eq!(js_string(x), js, "{x:e}");
        }
    }

    /// (JSON text, what JavaScript's `String(JSON.parse(text))` prints).
    const NUMBERS: &[(&str, &str)] = &[
        ("10.0", "10"),
        ("-3.0", "-3"),
        ("-0.0", "0"),
        ("-0", "0"),
        ("1e3", "1000"),
        ("0.1", "0.1"),
        ("-2.50", "-2.5"),
        ("0.30000000000000004", "0.30000000000000004"),
        ("0.000001", "0.000001"),
        ("0.00001", "0.00001"),
        ("1.5e-7", "1.5e-7"),
        ("1e-10", "1e-10"),
        ("5e-324", "5e-324"),
        ("1e16", "10000000000000000"),
        ("1e20", "100000000000000000000"),
        ("123456789012345680000", "123456789012345680000"),
        ("1152921504606846976.0", "1152921504606847000"),
        ("1e21", "1e+21"),
        ("1.5e300", "1.5e+300"),
        ("42", "42"),
        ("9007199254740991", "9007199254740991"),
    ];

    #[test]
    fn js_numbers_prints_as_javascript() {
        let h = handlebars::Handlebars::new();
        for (text, js) in NUMBERS {
            let mut data: Value = serde_json::from_str(&format!("{{\"x\": {text}}}")).expect("valid JSON");
            js_numbers(&mut data);
            let out = h.render_template("{{x}}", &data).expect("renders");
            assert_eq!(&out, js, "{text} became {}", data["x"]);
        }
    }

    #[test]
    fn integral_floats_become_integers_and_the_rest_stays_numbers() {
        let mut data = json!({"a": 10.0, "b": [-0.0, 0.1, 2.5], "c": {"d": 1e3}, "e": "10.0", "f": 7});
        js_numbers(&mut data);
        assert_eq!(data, json!({"a": 10, "b": [0, 0.1, 2.5], "c": {"d": 1000}, "e": "10.0", "f": 7}));
        assert!(data["a"].is_i64() && data["b"][0].is_i64() && data["c"]["d"].is_i64());
        assert!(data["b"][1].is_f64());
        // Integers beyond 2^53 stay exact (JavaScript would round them).
        let mut big: Value = serde_json::from_str("[9007199254740993, -9007199254740993]").expect("valid JSON");
        js_numbers(&mut big);
        assert_eq!(big.to_string(), "[9007199254740993,-9007199254740993]");
    }
}
