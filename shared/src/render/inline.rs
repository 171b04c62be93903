//! CSS inlining once per document shape, not once per email.
//!
//! What css-inline writes into an element's `style` depends on the element tree and
//! the attributes selectors can see, never on the text: a campaign's emails differ in
//! names, amounts and links, and are otherwise the same document. So the first email
//! of a shape is inlined by css-inline, and what changed is kept as a patch: per start
//! tag, its new `style`; per `<style>` block, its new content or its removal. The next
//! email of that shape gets the patch applied to its own markup, which costs a scan
//! instead of an html5ever parse, a selector match per element and a serialisation.
//!
//! The shape (the cache key) is the token sequence with what can change the tree or a
//! selector's match kept as written: tag names and order, the self-closing flag, every
//! attribute name and value except the values of `href`, `src`, `alt`, `title`,
//! `srcset` and `aria-label` (kept too when a `<style>` block mentions them), the
//! `<style>` blocks, the doctype (quirks mode), and per run of text only whether it is
//! empty, blank or not (all the tree builder asks of text: foster parenting,
//! `:empty`). Anything the scanner does not read exactly as the spec does (`<script>`,
//! SVG, bogus comments) and any document where css-inline's output cannot be mapped
//! back tag by tag (an element it added or cloned, carrying a style) goes to
//! css-inline every time.
//!
//! The map back is exact, not guessed: the first email is inlined with a marker
//! attribute numbering every start tag, so each element of css-inline's output names
//! the tag it came from.

use std::fmt::Write as _;
use std::sync::Arc;

use super::memo::{MISS_RUN, ShapeMemo};
use super::scan::{self, Attr, Scan, Start, Token};

/// Numbers the start tags in the document css-inline sees on a shape's first email.
const MARKER: &str = "data-herald-inline";
/// Attribute values that differ per recipient and that no selector herald's templates
/// use reads; the tree builder ignores them too. (mrml writes the MJML title into the
/// body's `aria-label`.)
const INERT: [&str; 6] = ["href", "src", "alt", "title", "srcset", "aria-label"];
/// Ends a value in a shape: NUL, which the scanner never lets through.
const END: char = '\0';
/// What css-inline changes in one document shape.
#[derive(Debug, Default)]
pub(crate) struct Patch {
    /// Per start tag, in document order.
    edits: Vec<Edit>,
    bytes: usize,
}

#[derive(Debug, Default, Clone)]
struct Edit {
    /// `Some(Some(v))`: the tag's `style` becomes `v` (serialised, for double quotes);
    /// `Some(None)`: its `style` goes.
    style: Option<Option<String>>,
    /// A `<style>` element's new content.
    content: Option<String>,
    /// A `<style>` element css-inline dropped.
    remove: bool,
}

/// The shapes seen, with their patches.
pub(crate) struct ShapeCache {
    memo: ShapeMemo<Patch>,
}

/// The process's cache, used by every email.
static SHAPES: ShapeCache = ShapeCache::new(MISS_RUN);

/// Inlines `html` from the patch of its shape (see [`ShapeCache::inline`]).
pub(crate) fn inline_by_shape(html: &str, template: &str, inline: impl Fn(&str) -> Option<String>) -> Option<String> {
    SHAPES.inline(html, template, inline)
}

pub(crate) fn forget() {
    SHAPES.memo.forget();
}

impl ShapeCache {
    pub(crate) const fn new(miss_run: u32) -> Self {
        ShapeCache { memo: ShapeMemo::new(miss_run) }
    }

    /// Inlines `html` (an email of `template`) from the patch of its shape, computing it
    /// with `inline` on a shape's first document. `None`: do it with css-inline (the
    /// shape is outside what a patch can express, `inline` failed, or the template's
    /// shapes have not been repeating lately).
    pub(crate) fn inline(&self, html: &str, template: &str, inline: impl Fn(&str) -> Option<String>) -> Option<String> {
        if self.memo.skips(template) {
            return None;
        }
        let scanned = scan::scan(html)?;
        let key = shape(html, &scanned)?;
        let patch = match self.memo.get(&key, template) {
            Some(patch) => patch?,
            None => {
                let patch = derive(html, &scanned, &inline).map(Arc::new);
                let bytes = patch.as_ref().map_or(0, |p| p.bytes);
                self.memo.insert(key, template, patch.clone(), bytes);
                patch?
            }
        };
        Some(apply(html, &scanned, &patch))
    }
}

/// The shape of `html` as the cache keys it, `None` where the cache does not apply.
pub(crate) fn shape_of(html: &str) -> Option<String> {
    shape(html, &scan::scan(html)?)
}

fn name<'h>(html: &'h str, start: &Start) -> &'h str {
    &html[start.name.clone()]
}

fn attr_name<'h>(html: &'h str, attr: &Attr) -> &'h str {
    &html[attr.name.clone()]
}

/// The cache key: see the module comment. `None` when the document uses the marker.
fn shape(html: &str, scanned: &Scan) -> Option<String> {
    let inert = inert_under(stylesheet(html, scanned))?;
    let mut key = String::with_capacity(html.len() / 2);
    // After `<pre>`, `<listing>` and `<textarea>` one leading newline is dropped.
    let mut newline_dropped = false;
    let mut in_style = false;
    for token in &scanned.tokens {
        match token {
            Token::Doctype(r) => {
                key.push_str(&html[r.clone()]);
                key.push(END);
            }
            Token::Comment(_) => key.push('C'),
            Token::Raw(r) if in_style => {
                key.push('R');
                key.push_str(&html[r.clone()]);
                key.push(END);
            }
            // Text, and what `<title>`, `<textarea>`... hold (`:empty` reads both).
            Token::Text(r) | Token::Raw(r) => {
                let text = &html[r.clone()];
                key.push(if newline_dropped {
                    // The one newline dropped may be written as a reference (`&#10;`).
                    let decoded = scan::decode(text, false);
                    text_class(decoded.strip_prefix('\n').unwrap_or(&decoded))
                } else {
                    text_class(text)
                });
            }
            Token::Start(start) => {
                let tag = name(html, start);
                key.push('<');
                push_lowercase(&mut key, tag);
                for attr in scanned.attrs(start) {
                    let attr_name = attr_name(html, attr);
                    if attr_name.eq_ignore_ascii_case(MARKER) {
                        return None;
                    }
                    key.push(' ');
                    push_lowercase(&mut key, attr_name);
                    match &attr.value {
                        // END cannot be in a name: ` href\0` is `href` with its value elided.
                        Some(_) if is_inert(inert, attr_name) => key.push(END),
                        Some(v) => {
                            key.push('=');
                            key.push_str(&html[v.clone()]);
                            key.push(END);
                        }
                        None => {}
                    }
                }
                key.push(if start.self_closing { '/' } else { '>' });
                in_style = tag.eq_ignore_ascii_case("style");
                newline_dropped = ["pre", "listing", "textarea"].iter().any(|n| tag.eq_ignore_ascii_case(n));
                continue;
            }
            Token::End { name, .. } => {
                key.push_str("</");
                push_lowercase(&mut key, &html[name.clone()]);
                key.push('>');
            }
        }
        in_style = false;
        newline_dropped = false;
    }
    Some(key)
}

/// Empty, blank or text.
fn text_class(text: &str) -> char {
    if text.is_empty() {
        'E'
    } else if is_blank(text) {
        'W'
    } else {
        'T'
    }
}

fn push_lowercase(key: &mut String, name: &str) {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        key.push_str(&name.to_ascii_lowercase());
    } else {
        key.push_str(name);
    }
}

/// The `INERT` attributes the stylesheet does not mention (bit `i`: `INERT[i]`); `None`
/// for a stylesheet that names the marker or holds an escape (`hr\65 f` can name any
/// attribute): such go to css-inline. A template's emails share their stylesheet, so
/// the last answer is kept per thread (the searches cost more than the rest of the
/// shape).
fn inert_under(sheet: String) -> Option<u8> {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, Option<u8>)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if let Some((seen, inert)) = last.as_ref()
            && *seen == sheet
        {
            return *inert;
        }
        let lower = sheet.to_ascii_lowercase();
        let inert = (!lower.contains(MARKER) && !lower.contains('\\')).then(|| {
            INERT.iter().enumerate().filter(|(_, a)| !lower.contains(**a)).fold(0, |bits, (i, _)| bits | 1 << i)
        });
        *last = Some((sheet, inert));
        inert
    })
}

/// Whether `attr_name` is one of the `inert` bits' attributes.
fn is_inert(inert: u8, attr_name: &str) -> bool {
    INERT.iter().enumerate().any(|(i, a)| inert & (1 << i) != 0 && a.eq_ignore_ascii_case(attr_name))
}

/// The text of every `<style>` block.
fn stylesheet(html: &str, scanned: &Scan) -> String {
    let mut sheet = String::new();
    for pair in scanned.tokens.windows(2) {
        if let [Token::Start(start), Token::Raw(r)] = pair
            && name(html, start).eq_ignore_ascii_case("style")
        {
            sheet.push_str(&html[r.clone()]);
        }
    }
    sheet
}

/// Text the tree builder treats as whitespace: ASCII whitespace, also written as a
/// character reference (`&#32;`, `&Tab;`).
pub(crate) fn is_blank(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if scan::is_space(b[i]) {
            i += 1;
            continue;
        }
        if b[i] != b'&' {
            return false;
        }
        match blank_reference(&b[i..]) {
            Some(len) => i += len,
            None => return false,
        }
    }
    true
}

/// The length of a character reference at the start of `b` that decodes to
/// whitespace (the semicolon is optional after a number, as in the spec).
fn blank_reference(b: &[u8]) -> Option<usize> {
    for named in [&b"&Tab;"[..], b"&NewLine;"] {
        if b.starts_with(named) {
            return Some(named.len());
        }
    }
    let (digits_from, radix) = match b.get(1..3) {
        Some([b'#', b'x' | b'X']) => (3, 16),
        Some([b'#', _]) => (2, 10),
        _ => return None,
    };
    let digits =
        b[digits_from..].iter().take_while(|c| c.is_ascii_digit() || (radix == 16 && c.is_ascii_hexdigit())).count();
    if digits == 0 {
        return None;
    }
    let value = b[digits_from..digits_from + digits].iter().fold(0u32, |v, &c| {
        let digit = (c as char).to_digit(radix).unwrap_or(0);
        v.saturating_mul(radix).saturating_add(digit)
    });
    let end = digits_from + digits + usize::from(b.get(digits_from + digits) == Some(&b';'));
    matches!(value, 9 | 10 | 12 | 13 | 32).then_some(end)
}

/// Inlines `html` with every start tag numbered, and reads back per tag what changed.
fn derive(html: &str, scanned: &Scan, inline: &impl Fn(&str) -> Option<String>) -> Option<Patch> {
    let starts: Vec<&Start> = scanned
        .tokens
        .iter()
        .filter_map(|t| match t {
            Token::Start(s) => Some(s),
            _ => None,
        })
        .collect();
    let mut marked = String::with_capacity(html.len() + starts.len() * 28);
    let mut last = 0;
    for (k, start) in starts.iter().enumerate() {
        marked.push_str(&html[last..start.name.end]);
        let _ = write!(marked, " {MARKER}=\"{k}\"");
        last = start.name.end;
    }
    marked.push_str(&html[last..]);
    let out = inline(&marked)?;
    let written = scan::scan(&out)?;

    let mut edits = vec![Edit::default(); starts.len()];
    let mut seen = vec![false; starts.len()];
    let mut tokens = written.tokens.iter().peekable();
    while let Some(token) = tokens.next() {
        let Token::Start(start) = token else { continue };
        let attrs = written.attrs(start);
        let marker = attrs.iter().find(|a| attr_name(&out, a) == MARKER);
        let style = attrs.iter().find(|a| attr_name(&out, a).eq_ignore_ascii_case("style"));
        let Some(marker) = marker else {
            // An element the tree builder implied (`<tbody>`) is fine as long as nothing
            // was written into it: a mail client implies it as well. A `<style>` css-inline
            // wrote itself (at-rules it moved) is not in the patch's vocabulary.
            let tag = name(&out, start);
            if !attrs.is_empty() || tag.eq_ignore_ascii_case("style") || tag.eq_ignore_ascii_case("link") {
                return None;
            }
            continue;
        };
        let k: usize = out[marker.value.clone()?].parse().ok()?;
        if k >= starts.len() || std::mem::replace(&mut seen[k], true) {
            return None; // a tag css-inline saw twice: a cloned formatting element
        }
        // css-inline may only have touched `style`.
        if other_attrs(&out, attrs) != other_attrs(html, scanned.attrs(starts[k])) {
            return None;
        }
        let had_style = scanned.attrs(starts[k]).iter().any(|a| attr_name(html, a).eq_ignore_ascii_case("style"));
        edits[k].style = match style {
            Some(a) => Some(Some(out[a.value.clone()?].to_owned())),
            None if had_style => Some(None),
            None => None,
        };
        if name(html, starts[k]).eq_ignore_ascii_case("style") {
            let Some(Token::Raw(raw)) = tokens.peek() else { return None };
            edits[k].content = Some(out[raw.clone()].to_owned());
        }
    }
    for (k, seen) in seen.iter().enumerate() {
        if !seen {
            if !name(html, starts[k]).eq_ignore_ascii_case("style") {
                return None;
            }
            edits[k].remove = true;
        }
    }
    let bytes = edits
        .iter()
        .map(|e| {
            std::mem::size_of::<Edit>()
                + e.style.as_ref().and_then(|s| s.as_ref()).map_or(0, String::len)
                + e.content.as_ref().map_or(0, String::len)
        })
        .sum();
    Some(Patch { edits, bytes })
}

/// The attribute names of a tag other than `style` and the marker, as a set (the
/// first of duplicates counts, as in the tree builder).
fn other_attrs(html: &str, attrs: &[Attr]) -> Vec<String> {
    let mut names: Vec<String> =
        attrs.iter().map(|a| attr_name(html, a).to_ascii_lowercase()).filter(|n| n != "style" && n != MARKER).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// `html` with its shape's patch applied.
fn apply(html: &str, scanned: &Scan, patch: &Patch) -> String {
    let mut out = String::with_capacity(html.len() + patch.bytes);
    let mut last = 0;
    let mut edits = patch.edits.iter();
    let mut tokens = scanned.tokens.iter();
    while let Some(token) = tokens.next() {
        let Token::Start(start) = token else { continue };
        let Some(edit) = edits.next() else { break };
        if edit.remove {
            // The start tag, the content and the end tag of a dropped `<style>`.
            out.push_str(&html[last..start.span.start]);
            let (Some(Token::Raw(_)), Some(Token::End { span, .. })) = (tokens.next(), tokens.next()) else {
                last = start.span.end;
                continue;
            };
            last = span.end;
            continue;
        }
        if let Some(style) = &edit.style {
            out.push_str(&html[last..start.span.start]);
            write_tag(&mut out, html, scanned, start, style.as_deref());
            last = start.span.end;
        }
        if let Some(content) = &edit.content
            && let Some(Token::Raw(raw)) = tokens.next()
        {
            out.push_str(&html[last..raw.start]);
            out.push_str(content);
            last = raw.end;
        }
    }
    out.push_str(&html[last..]);
    out
}

/// The start tag as written, with `style` set to `style` (where the first `style` was,
/// else after the last attribute) or removed.
fn write_tag(out: &mut String, html: &str, scanned: &Scan, start: &Start, style: Option<&str>) {
    let attrs = scanned.attrs(start);
    let mut cursor = start.span.start;
    let mut written = style.is_none();
    for attr in attrs {
        if attr_name(html, attr).eq_ignore_ascii_case("style") {
            out.push_str(&html[cursor..attr.span.start]);
            if let Some(style) = style.filter(|_| !written) {
                let _ = write!(out, "style=\"{style}\"");
                written = true;
            }
            cursor = attr.span.end;
        }
    }
    let last = attrs.last().filter(|a| a.span.end > cursor);
    let insert_at = last.map_or(cursor.max(start.name.end), |a| a.span.end);
    out.push_str(&html[cursor..insert_at]);
    if let Some(style) = style.filter(|_| !written) {
        // `<p title=>`: the empty bare value must end before the new attribute starts.
        if last.and_then(|a| a.value.clone()).is_some_and(|v| v.is_empty() && last.is_some_and(|a| a.span.end == v.end))
        {
            out.push_str("\"\"");
        }
        let _ = write!(out, " style=\"{style}\"");
    }
    out.push_str(&html[insert_at..start.span.end]);
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;

    use super::*;
    use crate::render::email::{inline_fresh, inliner, mjml_to_html};
    use crate::render::text::html_to_text;
    use crate::request::Locale;

    /// The tree `html` parses to, inlined, as css-inline writes it (attributes sorted).
    /// For a patched document, inlining again adds nothing: what is left in its `<style>`
    /// matched nothing. So `tree(ours) == tree(input)` says a mail client parses our
    /// markup to the tree css-inline built, with the same styles. (Comparing with
    /// css-inline's output read again would not do: for misnested markup, HTML's
    /// serialisation does not parse back to the same tree.)
    fn tree(html: &str) -> String {
        let written = inliner().inline(html).expect("css-inline");
        // css-inline does not keep the attributes' order: sort them.
        let Some(scanned) = scan::scan(&written) else { return written };
        let mut out = String::new();
        let mut last = 0;
        for token in &scanned.tokens {
            if let Token::Start(start) = token {
                out.push_str(&written[last..start.span.start]);
                let mut attrs: Vec<&str> = scanned.attrs(start).iter().map(|a| &written[a.span.clone()]).collect();
                attrs.sort_unstable();
                let _ = write!(out, "<{} {}>", name(&written, start), attrs.join(" "));
                last = start.span.end;
            }
        }
        out.push_str(&written[last..]);
        out
    }

    /// The same tree and styles as css-inline writes; for well-formed markup also the
    /// same text part (the text part reads tokens, and css-inline rewrites broken markup
    /// as the tree it parses to, which a patch leaves as written).
    /// Through a cache of its own: the shape's first email (the patch derived), then the
    /// same email again (the patch reused).
    fn assert_inlines_as_css_inline(html: &str, well_formed: bool) -> String {
        let cache = ShapeCache::new(u32::MAX);
        assert_inlines_with(&cache, html, well_formed);
        assert_inlines_with(&cache, html, well_formed)
    }

    /// Through `cache`, which may hold the patch of another email of this shape.
    fn assert_inlines_with(cache: &ShapeCache, html: &str, well_formed: bool) -> String {
        let fresh = inline_fresh(html).expect("css-inline");
        let ours = cache.inline(html, "t", |m| inliner().inline(m).ok()).unwrap_or_else(|| fresh.clone());
        // Left to css-inline, the output is its own.
        if ours != fresh {
            assert_eq!(tree(&ours), tree(html), "\ninput: {html}\nours: {ours}\ncss-inline: {fresh}");
        }
        if well_formed {
            assert_eq!(html_to_text(&ours), html_to_text(&fresh), "text part of {html}");
        }
        ours
    }

    /// Inlines with a counting css-inline: how many documents it had to read.
    fn calls(docs: &[&str]) -> usize {
        let count = AtomicUsize::new(0);
        let cache = ShapeCache::new(u32::MAX);
        for doc in docs {
            let out = cache.inline(doc, "t", |marked| {
                count.fetch_add(1, Ordering::Relaxed);
                inliner().inline(marked).ok()
            });
            assert!(out.is_some(), "{doc} has a patchable shape");
        }
        count.into_inner()
    }

    #[test]
    fn emails_of_one_shape_are_inlined_once() {
        // Unique class names: the cache is shared with the other tests.
        let doc = |name: &str, href: &str| {
            format!(
                "<!DOCTYPE html><html><head><style>.once-a {{ color: red }} .once-a a {{ color: blue }} @media (max-width: 1px) {{ .once-a {{ color: green }} }}</style></head>\
                 <body><p class=\"once-a\">Hello {name}, <a href=\"{href}\">here</a></p><table><tr><td>{name}</td></tr></table></body></html>"
            )
        };
        let (a, b) = (doc("Ada", "https://a.example/1"), doc("Grace &amp; co", "https://b.example/2?u=3"));
        assert_eq!(calls(&[&a, &b, &a]), 1);
        // A blank run where there was text is another shape (`:empty`, foster parenting).
        assert_eq!(calls(&[&doc(" ", "https://a.example/1")]), 1);
        assert_inlines_as_css_inline(&a, true);
        let out = assert_inlines_as_css_inline(&b, true);
        assert!(out.contains(r#"<p class="once-a" style="color: red;">Hello Grace &amp; co, <a href="https://b.example/2?u=3" style="color: blue;">"#), "{out}");
        assert!(
            out.contains("<head><style>@media (max-width: 1px) { .once-a { color: green } }</style></head>"),
            "{out}"
        );
    }

    /// Found by review: each failed before the fix named in it.
    #[test]
    fn review_cases_keep_to_css_inline() {
        // An empty bare value before the added `style` (`<p title= style=...>` made
        // `style="color:` the title).
        for html in [
            "<style>p.rv1 { color: red }</style><p class=rv1 title=>Hi</p>",
            "<style>p.rv2 { color: red }</style><p class=rv2 a = >Hi</p>",
        ] {
            let out = assert_inlines_as_css_inline(html, true);
            assert!(out.contains(r#"style="color: red;""#), "{out}");
        }
        // What a `<textarea>` or `<pre>` holds is part of the shape (`:empty`), a newline
        // written as a reference after `<pre>` included.
        let sheet = "<style>textarea:empty, pre:empty { display: none } .rv3 { margin: 0 }</style>";
        let pairs = [
            ("<textarea class=rv3></textarea>", "<textarea class=rv3>hi</textarea>"),
            ("<pre class=rv3>&#10;</pre>", "<pre class=rv3>&#32;</pre>"),
            ("<pre class=rv3>&NewLine;</pre>", "<pre class=rv3>\n\n</pre>"),
        ];
        for (a, b) in pairs {
            let (a, b) = (format!("{sheet}{a}"), format!("{sheet}{b}"));
            assert_eq!(calls(&[&a, &b]), 2, "{a} and {b} are two shapes");
            assert_inlines_as_css_inline(&a, true);
            assert_inlines_as_css_inline(&b, true);
        }
        // A CSS escape can name any attribute (here `href`): not cached.
        for href in ["https://x.example", "http://x.example"] {
            let html = format!("<style>a[hr\\65 f^=\"https\"] {{ color: green }}</style><a href=\"{href}\">x</a>");
            assert!(ShapeCache::new(u32::MAX).inline(&html, "t", |m| inliner().inline(m).ok()).is_none());
            assert_inlines_as_css_inline(&html, true);
        }
        // An attribute named `href~` is not `href` with its value elided.
        let sheet = "<style>a:link { color: red } .rv4 { margin: 0 }</style>";
        let (a, b) = (format!("{sheet}<a class=rv4 href=\"x\">x</a>"), format!("{sheet}<a class=rv4 href~>x</a>"));
        assert_eq!(calls(&[&a, &b]), 2);
        assert_inlines_as_css_inline(&a, true);
        assert_inlines_as_css_inline(&b, true);
    }

    /// A template whose shape changes with every email stops paying for the cache.
    #[test]
    fn a_run_of_new_shapes_goes_to_css_inline_for_a_while() {
        let inline = |m: &str| inliner().inline(m).ok();
        let doc = |i: usize| format!("<style>.run-{i} {{ color: red }}</style><p class=\"run-{i}\">x</p>");
        let cache = ShapeCache::new(MISS_RUN);
        for i in 0..MISS_RUN as usize {
            assert!(cache.inline(&doc(i), "t", inline).is_some(), "new shape {i}");
        }
        // After the run, css-inline for the next emails, known shapes too; the cache
        // has started over.
        assert!(cache.inline(&doc(0), "t", inline).is_none());
        assert!(cache.memo.skips("t"));
        // Another template's emails keep the cache.
        assert!(cache.inline(&doc(0), "other", inline).is_some());
        assert!(cache.inline(&doc(0), "other", inline).is_some());
        // A shape seen again ends a run.
        let cache = ShapeCache::new(MISS_RUN);
        for i in 0..3 * MISS_RUN as usize {
            let shape = if i % 2 == 0 { 0 } else { i };
            assert!(cache.inline(&doc(shape), "t", inline).is_some(), "email {i}");
        }
    }

    #[test]
    fn what_selectors_read_is_part_of_the_shape() {
        let doc = |href: &str, class: &str| {
            format!(
                "<html><head><style>a[href^=\"https\"] {{ color: red }} .sel-{class} {{ margin: 0 }}</style></head><body><a class=\"sel-{class}\" href=\"{href}\">x</a></body></html>"
            )
        };
        // The stylesheet reads `href`: its value is part of the shape.
        assert_eq!(calls(&[&doc("https://a.example", "a"), &doc("http://a.example", "a")]), 2);
        assert_inlines_as_css_inline(&doc("http://a.example", "a"), true);
        assert_inlines_as_css_inline(&doc("https://a.example", "b"), true);
    }

    #[test]
    fn documents_it_cannot_map_back_go_to_css_inline() {
        for html in [
            // The adoption agency clones a styled `<b>`.
            "<html><head><style>b { color: red } .clone-x b { margin: 0 }</style></head><body><div class=\"clone-x\"><b><p>x</b>y</p></div></body></html>",
            // A second `<body>` lends its attributes to the first.
            "<html><head><style>.second-body { color: red }</style></head><body><p>x</p><body class=\"second-body\"><p>y</p></body></html>",
            // Styles on an element only the tree builder wrote.
            "<html><head><style>tbody.x, tbody { color: red }</style></head><body><table><tr><td>x</td></tr></table></body></html>",
            // The marker itself.
            "<html><head><style>[data-herald-inline] { color: red }</style></head><body><p>x</p></body></html>",
            "<script>1</script><style>p { color: red }</style><p>x</p>",
        ] {
            assert!(ShapeCache::new(u32::MAX).inline(html, "t", |m| inliner().inline(m).ok()).is_none(), "{html}");
            assert_inlines_as_css_inline(html, false);
        }
    }

    #[test]
    fn tree_building_rules_hold_on_the_patched_markup() {
        for html in [
            // Foster parenting: the `<p>` leaves the table in the tree, not in the markup.
            "<html><head><style>table p.fp { color: red } body > p.fp { margin: 0 }</style></head><body><table><p class=\"fp\">x</p><tr><td>y</td></tr></table></body></html>",
            // Implied end tags and elements; `:first-child` and sibling selectors.
            "<html><head><style>li:first-child { color: red } li + li { margin: 0 } p:empty { display: none } td:last-child { padding: 0 }</style></head><body><ul><li>a<li>b<li>c</ul><p></p><p>x<p> <table><td>1<td>2</table></body></html>",
            // Quirks mode (no doctype): a `<table>` does not close an open `<p>`.
            "<html><head><style>p table { color: red }</style></head><body><p>x<table><tr><td>y</td></tr></table></body></html>",
            "<!DOCTYPE html><html><head><style>p table { color: red } table { margin: 0 }</style></head><body><p>x<table><tr><td>y</td></tr></table></body></html>",
            // CSS variables resolved from an ancestor's `style`.
            "<html><head><style>.var-x { color: var(--c) }</style></head><body><div style=\"--c: red\"><p class=\"var-x\">x</p></div></body></html>",
            // A `style` attribute merged; duplicates; bare and single-quoted values; `/>`.
            "<html><head><style>img { border: 0 } p { color: red !important }</style></head><body><p style='color: blue' style=\"x\">a</p><img src=a.png/><img src=\"b\" style=\"width:1px\" /></body></html>",
            // Newline after `<pre>`, raw text, comments, an XHTML doctype.
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\" \"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\"><html><head><title>a &lt;b&gt;</title><style>pre { margin: 0 } .c { color: red }</style><!--[if mso]><style>.mso { x: y }</style><![endif]--></head><body><pre>\n</pre><pre>\n x</pre><xmp><p class=c></xmp><p class=c>&#32;</p></body></html>",
            // Everything inlined: the `<style>` goes.
            "<html><head><style>p { color: red }</style></head><body><p>x</p></body></html>",
            "<style>p { color: red }</style><p>x</p>",
        ] {
            assert!(ShapeCache::new(u32::MAX).inline(html, "t", |m| inliner().inline(m).ok()).is_some(), "{html}");
            assert_inlines_as_css_inline(html, false);
            assert_inlines_as_css_inline(html, false); // from the cache
        }
    }

    /// Every email of the starter kit, each fixture, locale and category: the cached path
    /// is taken and writes what css-inline writes.
    #[test]
    fn every_kit_email_inlines_as_css_inline_does() {
        let (catalogue, fixtures) = crate::render::kit_fixtures();
        let mut checked = 0;
        for (name, template, data) in &fixtures {
            for (locale, category) in [(None, "marketing"), (Some("fr"), "transactional"), (Some("de"), "marketing")] {
                let locale = locale.map(|l| Locale::parse(l).expect("locale"));
                let context = handlebars::Context::from(crate::testing::email_context(data.clone(), name, category));
                for (file, mjml) in [("email.html.hbs", false), ("email.mjml.hbs", true)] {
                    let Some(html) =
                        catalogue.render_handlebars(template, file, locale.as_ref(), &context).expect("render")
                    else {
                        continue;
                    };
                    let html = if mjml { mjml_to_html(&html).expect("MJML") } else { html };
                    assert!(
                        ShapeCache::new(u32::MAX).inline(&html, "t", |m| inliner().inline(m).ok()).is_some(),
                        "{name}: the kit's emails take the cached path"
                    );
                    let ours = assert_inlines_as_css_inline(&html, true);
                    assert_eq!(html_to_text(&ours), crate::render::text::html5ever_to_text(&ours));
                    checked += 1;
                }
            }
        }
        assert!(checked >= 40, "{checked} emails checked");
    }

    // ---------------------------------------------------------------- random documents

    const SHEETS: [&str; 14] = [
        "p { color: red }",
        ".a { margin: 0 }",
        ".b td { padding: 1px }",
        "td:first-child { color: blue }",
        "tr + tr td { border: 0 }",
        "p:empty { display: none }",
        "a[href^=\"https\"] { color: green }",
        ".a > .b { font-size: 2px }",
        "li:nth-child(2) { color: gray }",
        "@media (max-width: 480px) { .a { margin: 1px !important } }",
        "b, strong { font-weight: bold }",
        "a:hover { color: pink }",
        "span:not(.c) { padding: 0 }",
        ".c ~ span { margin: 3px }",
    ];
    const TAGS: [&str; 12] = ["p", "div", "span", "b", "a", "table", "tr", "td", "ul", "li", "strong", "center"];
    const BLANK: [&str; 3] = [" ", "\n  ", "&#32;"];
    const TEXT: [[&str; 3]; 2] = [["Ada", "x &amp; y", "O&#x27;Brien"], ["Grace Hopper", "1 &lt; 2", "€10"]];
    const HREF: [&str; 2] = ["https://a.example/1", "http://b.example/2?x=1&amp;y=2"];

    /// A document from `ops`; `variant` picks the text and link values, never the shape.
    fn document(sheet: &[bool], ops: &[(u8, u8, u8)], variant: usize) -> String {
        let mut html = String::from("<!DOCTYPE html><html><head><style>");
        for (rule, on) in SHEETS.iter().zip(sheet) {
            if *on {
                html.push_str(rule);
                html.push(' ');
            }
        }
        html.push_str("</style></head><body>");
        let mut open: Vec<&str> = Vec::new();
        for &(op, a, b) in ops {
            match op % 6 {
                0 | 1 => {
                    let tag = TAGS[a as usize % TAGS.len()];
                    html.push('<');
                    html.push_str(tag);
                    if b % 4 != 0 {
                        let _ = write!(html, " class=\"{}\"", ["a", "b", "c", "a b"][b as usize % 4]);
                    }
                    if b % 5 == 1 {
                        html.push_str(" style=\"color: black\"");
                    }
                    if tag == "a" {
                        let _ = write!(html, " href=\"{}\"", HREF[variant]);
                    }
                    html.push('>');
                    open.push(tag);
                }
                2 => {
                    if let Some(tag) = open.pop().filter(|_| b % 3 != 0) {
                        let _ = write!(html, "</{tag}>");
                    }
                }
                3 => html.push_str(TEXT[variant][a as usize % 3]),
                4 => html.push_str(BLANK[a as usize % 3]),
                _ => html
                    .push_str(["<br>", "<img src=\"x.png\" alt=\"\">", "<!-- c -->", "</b>", "</p>"][a as usize % 5]),
            }
        }
        html
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
        /// Random (often broken) markup and stylesheets: each document, and one of the same
        /// shape with other text and links (served from the first one's patch), is written
        /// as css-inline writes it, or left to css-inline.
        #[test]
        fn random_documents_inline_as_css_inline_does(
            sheet in proptest::collection::vec(any::<bool>(), SHEETS.len()),
            ops in proptest::collection::vec(any::<(u8, u8, u8)>(), 0..40),
        ) {
            // The second variant is served from the first's patch when their shapes agree.
            let cache = ShapeCache::new(u32::MAX);
            for variant in [0, 1] {
                assert_inlines_with(&cache, &document(&sheet, &ops, variant), false);
            }
        }
    }
}
