//! MJML compiled once per document shape, not once per email.
//!
//! mrml copies text and link values into the HTML it writes byte for byte (a text
//! node's `inner_str`, an attribute's value): a newsletter's emails differ in names,
//! amounts and links and compile to the same HTML around them. So the first email of a
//! shape is compiled twice, as written and with each *slot* replaced by a sentinel;
//! where the sentinels land in the second HTML is the shape's template, and it is kept
//! only if filling it with the first email's own values gives exactly the HTML mrml
//! wrote for that email. The next emails of the shape are filled in, with no parse and
//! no layout.
//!
//! A slot is what varies per recipient and that mrml only copies: a run of text in
//! the body (or in `mj-title` and `mj-preview`), and the value of `href`, `src`, `alt`
//! or `title` in the body, each without the blank space around it (mrml trims some
//! text), and only when it holds none of `<`, `>`, `"`, `'` (which could change how the
//! markup parses) nor a control character mrml's parser refuses; such a value stays in
//! the key as written. The key is the document with each slot replaced by its class
//! (whether it holds a `&`, and whether mrml's attribute escaping, Rust's `Debug`,
//! would change it): two emails of one key are the same bytes outside their slots.
//! Nothing in the head but the title and the preview is a slot: `mj-style`,
//! `mj-attributes` and `mj-font` are part of the key.
//! The sentinels have a length other than the value they stand for and carry its `&`,
//! so that a length- or entity-dependent rendering fails the check instead of passing
//! it.
//!
//! The CSS inlining that follows is kept in the same template when it does not read
//! the slots either: the sentinel HTML's own shape for CSS (`render::inline`) holds no
//! sentinel (every slot is an elided link value or a run of text, none blank), and its
//! styles came from a patch, which copies text and links as written. Then every email
//! of the MJML shape has that CSS shape, and gets the same patch.

use std::ops::Range;
use std::sync::Arc;

use super::email::has_style_block;
use super::inline::{is_blank, shape_of};
use super::memo::{MISS_RUN, ShapeMemo};
use super::scan::{self, Token};

/// Starts every sentinel; a document holding it is compiled every time.
const SENTINEL: &str = "herald-mjml-slot-";
/// Ends a slot's class in a key: NUL, which the scanner never lets through.
const END: char = '\0';
/// Attribute values copied as they are and differing per recipient.
const SLOT_ATTRS: [&str; 4] = ["href", "src", "alt", "title"];

/// A shape's HTML with its slots cut out.
#[derive(Debug)]
pub(crate) struct Compiled {
    /// The HTML of the sentinel document without the sentinels.
    text: String,
    /// In order: a piece of `text`, or the value of slot `n`.
    parts: Vec<Part>,
    /// CSS inlined already.
    finished: bool,
}

#[derive(Debug, Clone)]
enum Part {
    Text(Range<usize>),
    Slot(usize),
}

impl Compiled {
    fn fill(&self, source: &str, slots: &[Range<usize>]) -> String {
        let values: usize = self.parts.iter().map(|p| if let Part::Slot(n) = p { slots[*n].len() } else { 0 }).sum();
        let mut out = String::with_capacity(self.text.len() + values);
        for part in &self.parts {
            match part {
                Part::Text(r) => out.push_str(&self.text[r.clone()]),
                Part::Slot(n) => out.push_str(&source[slots[*n].clone()]),
            }
        }
        out
    }

    fn bytes(&self) -> usize {
        self.text.len() + self.parts.len() * std::mem::size_of::<Part>()
    }
}

/// Shape to compiled template.
pub(crate) struct MjmlCache {
    memo: ShapeMemo<Compiled>,
}

/// The process's cache, used by every MJML email.
pub(super) static SHAPES: MjmlCache = MjmlCache::new(MISS_RUN);

impl MjmlCache {
    pub(crate) const fn new(miss_run: u32) -> Self {
        MjmlCache { memo: ShapeMemo::new(miss_run) }
    }

    pub(crate) fn forget(&self) {
        self.memo.forget();
    }

    /// `finish(compile(mjml))` for an email of `template`, from its shape's template
    /// when there is one. `compile` is mrml; `finish` inlines CSS, and `patched` does it
    /// only from a shape's patch (`None` otherwise).
    pub(crate) fn finish<E>(
        &self,
        mjml: &str,
        template: &str,
        compile: impl Fn(&str) -> Result<String, E>,
        finish: impl Fn(&str) -> Result<String, E>,
        patched: impl Fn(&str) -> Option<String>,
    ) -> Result<String, E> {
        if self.memo.skips(template) {
            return finish(&compile(mjml)?);
        }
        let Some((key, slots)) = shape(mjml) else { return finish(&compile(mjml)?) };
        if let Some(found) = self.memo.get(&key, template) {
            return match found {
                Some(c) if c.finished => Ok(c.fill(mjml, &slots)),
                Some(c) => finish(&c.fill(mjml, &slots)),
                None => finish(&compile(mjml)?),
            };
        }
        // A shape's first email: an error is this email's, and teaches nothing.
        let html = compile(mjml)?;
        let finished = finish(&html)?;
        let compiled = derive(mjml, &slots, &html, &finished, &compile, &patched).map(Arc::new);
        let bytes = compiled.as_ref().map_or(0, |c| c.bytes());
        self.memo.insert(key, template, compiled, bytes);
        Ok(finished)
    }
}

/// The blank space mrml trims (Unicode's, as `str::trim`) stays in the key.
fn core(source: &str, range: Range<usize>) -> Option<Range<usize>> {
    let text = &source[range.clone()];
    let trimmed = text.trim_start();
    let start = range.start + (text.len() - trimmed.len());
    let end = start + trimmed.trim_end().len();
    let value = &source[start..end];
    // A value blank for HTML (`&#32;`) would be another shape for CSS inlining; a
    // control character makes mrml's parser fail, whatever the rest.
    // One pass over the bytes (`is_refused`'s ASCII part and the markup characters);
    // U+FFFE and U+FFFF only where their lead byte is.
    let plain_bytes =
        value.bytes().all(|b| !matches!(b, b'<' | b'>' | b'"' | b'\'' | 0x01..=0x08 | 0x0b | 0x0c | 0x0e..=0x1f));
    let refused_char = || memchr::memchr(0xEF, value.as_bytes()).is_some() && value.contains(is_refused);
    (!value.is_empty() && plain_bytes && !is_blank(value) && !refused_char()).then_some(start..end)
}

/// What mrml's parser (htmlparser) refuses in text and attribute values.
fn is_refused(c: char) -> bool {
    matches!(c, '\u{1}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether mrml writes `value` as it is into an attribute: it writes attribute values
/// (and the title, copied into the body's `aria-label`) with Rust's `Debug` escapes
/// (`\n`, `\\`, `\u{a0}`), text as it is.
fn is_debug_plain(value: &str) -> bool {
    // Printable ASCII but `\` and `"` is never escaped; the rest is asked of `Debug`.
    if value.bytes().all(|b| (b' '..=b'~').contains(&b) && b != b'\\' && b != b'"') {
        return true;
    }
    let quoted = format!("{value:?}");
    quoted.len() == value.len() + 2 && quoted.get(1..quoted.len() - 1) == Some(value)
}

/// The key and the slots of `mjml`, or `None` for a document compiled every time.
fn shape(mjml: &str) -> Option<(String, Vec<Range<usize>>)> {
    if mjml.contains(SENTINEL) {
        return None;
    }
    let scanned = scan::scan(mjml)?;
    let mut slots = Vec::new();
    let mut in_head = false;
    // The element the last start tag opened, when nothing came after it yet.
    let mut opened: Option<&str> = None;
    for token in &scanned.tokens {
        match token {
            Token::Text(r) => {
                let head_text = matches!(opened, Some(n) if n.eq_ignore_ascii_case("mj-title") || n.eq_ignore_ascii_case("mj-preview"));
                if (!in_head || head_text)
                    && let Some(core) = core(mjml, r.clone())
                {
                    slots.push(core);
                }
            }
            Token::Start(start) => {
                let name = &mjml[start.name.clone()];
                if name.eq_ignore_ascii_case("mj-head") && !start.self_closing {
                    in_head = true;
                }
                if !in_head {
                    for attr in scanned.attrs(start) {
                        let attr_name = &mjml[attr.name.clone()];
                        let Some(value) = &attr.value else { continue };
                        let quoted = value.start > 0 && matches!(mjml.as_bytes()[value.start - 1], b'"' | b'\'');
                        if quoted
                            && SLOT_ATTRS.iter().any(|a| a.eq_ignore_ascii_case(attr_name))
                            && let Some(core) = core(mjml, value.clone())
                        {
                            slots.push(core);
                        }
                    }
                }
                opened = Some(name);
                continue;
            }
            Token::End { name, .. } => {
                if mjml[name.clone()].eq_ignore_ascii_case("mj-head") {
                    in_head = false;
                }
            }
            Token::Raw(_) | Token::Comment(_) | Token::Doctype(_) => {}
        }
        opened = None;
    }
    slots.sort_unstable_by_key(|r| r.start);
    let mut key = String::with_capacity(mjml.len());
    let mut last = 0;
    for slot in &slots {
        key.push_str(&mjml[last..slot.start]);
        key.push(END);
        // A value's class: whether it holds an `&`, and whether an attribute would hold
        // it as written. A first email whose value mrml escapes fails the check where
        // it lands in an attribute, so a shape kept with such a value has it only
        // where mrml copies text as it is.
        let value = &mjml[slot.clone()];
        key.push(match (value.contains('&'), is_debug_plain(value)) {
            (false, true) => 'p',
            (true, true) => '&',
            (false, false) => 'e',
            (true, false) => 'E',
        });
        last = slot.end;
    }
    key.push_str(&mjml[last..]);
    Some((key, slots))
}

/// Slot `n`'s sentinel for `value`: its `&` kept, its length another.
fn sentinel(n: usize, value: &str) -> String {
    let mut s = format!("{SENTINEL}{n}{}", if value.contains('&') { "&amp;" } else { "" });
    if s.len() + 1 == value.len() {
        s.push('z');
    }
    s.push(';');
    s
}

/// Compiles the sentinel document and cuts its HTML at the sentinels, after CSS
/// inlining when that can be kept too. `None` unless the cut HTML filled with this
/// email's values is `html` (mrml's HTML for it), or `finished` (inlined too).
fn derive<E>(
    mjml: &str,
    slots: &[Range<usize>],
    html: &str,
    finished: &str,
    compile: &impl Fn(&str) -> Result<String, E>,
    patched: &impl Fn(&str) -> Option<String>,
) -> Option<Compiled> {
    let sentinels: Vec<String> = slots.iter().enumerate().map(|(n, r)| sentinel(n, &mjml[r.clone()])).collect();
    let mut marked = String::with_capacity(mjml.len() + slots.len() * 24);
    let mut last = 0;
    for (slot, s) in slots.iter().zip(&sentinels) {
        marked.push_str(&mjml[last..slot.start]);
        marked.push_str(s);
        last = slot.end;
    }
    marked.push_str(&mjml[last..]);
    let out = compile(&marked).ok()?;
    let compiled = cut(&out, &sentinels, false)?;
    if compiled.fill(mjml, slots) != html {
        return None;
    }
    // Inlined from a patch of a CSS shape that holds no slot.
    let css_blind = !has_style_block(&out) || shape_of(&out).is_some_and(|key| !key.contains(SENTINEL));
    if css_blind
        && let Some(inlined) = patched(&out)
        && let Some(done) = cut(&inlined, &sentinels, true)
        && done.fill(mjml, slots) == finished
    {
        return Some(done);
    }
    Some(compiled)
}

/// `out` cut at the `sentinels`; `None` when one came through changed.
fn cut(out: &str, sentinels: &[String], finished: bool) -> Option<Compiled> {
    let mut text = String::with_capacity(out.len());
    let mut parts = Vec::new();
    let mut rest = 0;
    while let Some(at) = out[rest..].find(SENTINEL).map(|i| rest + i) {
        let digits = out[at + SENTINEL.len()..].bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = out[at + SENTINEL.len()..at + SENTINEL.len() + digits].parse().ok()?;
        let s = sentinels.get(n)?;
        // A sentinel mrml changed (decoded, cut, escaped): not a copy.
        if !out[at..].starts_with(s.as_str()) {
            return None;
        }
        let from = text.len();
        text.push_str(&out[rest..at]);
        parts.push(Part::Text(from..text.len()));
        parts.push(Part::Slot(n));
        rest = at + s.len();
    }
    let from = text.len();
    text.push_str(&out[rest..]);
    parts.push(Part::Text(from..text.len()));
    parts.retain(|p| !matches!(p, Part::Text(r) if r.is_empty()));
    Some(Compiled { text, parts, finished })
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::fmt::Write as _;

    use proptest::prelude::*;

    use super::*;
    use crate::render::email::{EmailHtmlError, inline_fresh, inliner, mjml_to_html};
    use crate::render::inline::ShapeCache;
    use crate::request::Locale;

    fn newsletter(name: &str, link: &str, items: &[&str]) -> String {
        let items: String = items
            .iter()
            .map(|i| {
                format!(
                    "<mj-text css-class=\"item\">  {i}\n</mj-text><mj-button href=\"{link}/{i}\">Buy {i}</mj-button>"
                )
            })
            .collect();
        format!(
            "<mjml><mj-head><mj-title>Hello {name}</mj-title><mj-preview>For {name}</mj-preview>\
             <mj-style>.item {{ color: red }}</mj-style></mj-head><mj-body><mj-section><mj-column>\
             <mj-image src=\"{link}/logo.png\" alt=\"Logo of {name}\" href=\"{link}\" />\
             <mj-text>Dear {name},<br/><a href=\"{link}?u={name}\">your page</a></mj-text>{items}\
             <mj-social><mj-social-element name=\"facebook\" href=\"{link}\">Share</mj-social-element></mj-social>\
             </mj-column></mj-section></mj-body></mjml>"
        )
    }

    /// The MJML cache beside a CSS shape cache of its own, counting mrml and CSS runs.
    #[derive(Default)]
    struct Harness {
        mjml: Option<MjmlCache>,
        css: Option<ShapeCache>,
        compiled: Cell<usize>,
        finished: Cell<usize>,
    }

    impl Harness {
        fn new() -> Self {
            Harness { mjml: Some(MjmlCache::new(u32::MAX)), css: Some(ShapeCache::new(u32::MAX)), ..Harness::default() }
        }

        fn patched(&self, html: &str) -> Option<String> {
            if !has_style_block(html) {
                return Some(html.to_owned());
            }
            self.css.as_ref()?.inline(html, "t", |m| inliner().inline(m).ok())
        }

        fn finish(&self, html: &str) -> Result<String, EmailHtmlError> {
            self.finished.set(self.finished.get() + 1);
            self.patched(html).map_or_else(|| inline_fresh(html), Ok)
        }

        fn run(&self, doc: &str) -> Result<String, EmailHtmlError> {
            let compile = |m: &str| {
                self.compiled.set(self.compiled.get() + 1);
                mjml_to_html(m)
            };
            let mjml = self.mjml.as_ref().expect("a cache");
            mjml.finish(doc, "t", compile, |h| self.finish(h), |h| self.patched(h))
        }
    }

    /// What an email gets without the MJML cache: mrml's HTML, its CSS inlined (from a
    /// patch of its own where one applies, as the CSS cache writes every email).
    fn reference(doc: &str) -> Result<String, EmailHtmlError> {
        Harness::new().finish(&mjml_to_html(doc)?)
    }

    /// Finishes `docs` in turn with caches of their own, each checked against
    /// [`reference`]; returns how many mrml and CSS runs they took.
    fn compiled_alike(docs: &[String]) -> (usize, usize) {
        let harness = Harness::new();
        for doc in docs {
            assert_eq!(harness.run(doc), reference(doc), "{doc}");
        }
        (harness.compiled.get(), harness.finished.get())
    }

    #[test]
    fn emails_of_one_shape_are_filled_in_as_mrml_writes_them() {
        let docs = [
            newsletter("Ada", "https://a.example/p", &["tea", "cake"]),
            newsletter("Bob &amp; Co", "https://b.example/q?x=1&amp;y=2", &["scones", "jam"]),
            newsletter("Zoë", "https://c.example", &["a", "bb"]),
        ];
        // The first twice (as written, with sentinels), then one per new shape: the
        // second has an `&` in slots where the first had none. The third is filled in
        // with its CSS inlined.
        assert_eq!(compiled_alike(&docs), (2 + 2, 2), "a slot's `&` is part of the shape, the rest is filled in");
    }

    #[test]
    fn what_is_not_a_plain_value_is_part_of_the_shape() {
        // Blank space around a value, quotes, a value blank for HTML, markup and the
        // head's styles.
        let docs = [
            newsletter("Ada", "https://a.example", &["tea"]),
            newsletter("Ada ", "https://a.example", &["tea"]),
            newsletter("O'Brien", "https://a.example", &["tea"]),
            newsletter("Ada", "https://a.example", &["&#32;"]),
            newsletter("Ada", "https://a.example", &["tea", "cake"]),
            newsletter("Ada", "https://a.example", &["tea"]).replace("color: red", "color: blue"),
            newsletter("Ada", "https://a.example", &["tea"]).replace("css-class=\"item\"", "css-class=\"x\""),
        ];
        for (i, doc) in docs.iter().enumerate() {
            let (compiled, _) = compiled_alike(&[docs[0].clone(), doc.clone()]);
            assert_eq!(compiled, if i == 0 { 2 } else { 4 }, "{doc}");
        }
    }

    #[test]
    fn debug_plain_values_are_those_debug_writes_as_they_are() {
        for plain in ["Ada", "https://a.example/?x=1&amp;y=2", "O'Brien", "Zoë 東京", "~ !#"] {
            assert!(is_debug_plain(plain), "{plain}");
        }
        for escaped in ["a\\b", "a\"b", "a\nb", "a\tb", "a\u{a0}b", "e\u{301}", "\u{200d}", "a\u{7f}"] {
            assert!(!is_debug_plain(escaped), "{escaped:?}");
        }
    }

    #[test]
    fn values_mrml_escapes_or_refuses_are_another_shape() {
        // mrml writes attributes (and the title, into the body's `aria-label`) with
        // Rust's `Debug` escapes; its parser refuses control characters.
        let doc = |title: &str, alt: &str, text: &str| {
            format!(
                "<mjml><mj-head><mj-title>{title}</mj-title></mj-head><mj-body><mj-section><mj-column>\
                 <mj-image src=\"https://a.example/x.png\" alt=\"{alt}\" /><mj-text>{text}</mj-text>\
                 </mj-column></mj-section></mj-body></mjml>"
            )
        };
        for other in [
            doc("Total BHD\u{a0}1,234.500", "Ada", "Ada"),
            doc("Ada", "Zoe\u{301}", "Ada"),
            doc("Ada", "a\\b", "Ada"),
            doc("Line\nbreak", "Ada", "Ada"),
            doc("Ada", "Ada", "form\u{c}feed"),
        ] {
            let first = doc("Ada", "Ada", "Ada");
            let harness = Harness::new();
            for d in [&first, &other] {
                assert_eq!(harness.run(d), reference(d), "{d:?}");
            }
        }
        // Text copied as it is may hold what an attribute would escape: one shape.
        assert_eq!(compiled_alike(&[doc("Ada", "Ada", "a\u{a0}b"), doc("Ada", "Ada", "c\u{a0}d")]).0, 2);
    }

    #[test]
    fn a_stylesheet_reading_links_keeps_the_inlining_per_email() {
        // `a[href^="https"]` matches one link and not the other: the links are filled
        // in, the inlining is done per email.
        let docs: Vec<String> = ["https://a.example", "http://b.example", "https://c.example"]
            .iter()
            .map(|link| {
                newsletter("Ada", link, &["tea"]).replace(".item {", "a[href^=\"https\"] { color: green } .item {")
            })
            .collect();
        assert_eq!(compiled_alike(&docs), (2, 3));
        assert_ne!(reference(&docs[0]), reference(&docs[1]).map(|h| h.replace("b.example", "a.example")));
    }

    #[test]
    fn a_shape_mrml_does_not_copy_through_is_compiled_every_time() {
        // A value mrml reads rather than copies (a width) is not a slot; one it might
        // read is checked: a document naming the sentinel is never cut.
        let doc = |w: &str| {
            format!(
                "<mjml><mj-body><mj-section><mj-column><mj-text>{w}</mj-text></mj-column></mj-section></mj-body></mjml>"
            )
        };
        assert_eq!(compiled_alike(&[doc(SENTINEL), doc(SENTINEL)]).0, 2);
        let cache = MjmlCache::new(u32::MAX);
        // A compiler that drops what ends a sentinel.
        let fake = |m: &str| Ok::<_, ()>(m.replace(';', ""));
        let first = doc("hello");
        assert_eq!(cache.finish(&first, "t", fake, |h| Ok(h.to_owned()), |h| Some(h.to_owned())), fake(&first));
        let (key, _) = shape(&first).expect("a shape");
        assert!(matches!(cache.memo.get(&key, "t"), Some(None)), "a sentinel that did not come through unchanged");
    }

    #[test]
    fn an_error_is_the_emails_own_and_not_kept() {
        let harness = Harness::new();
        let broken = "<mjml><mj-body><mj-section><mj-column><mj-text>x</mj-text></mj-section></mj-body></mjml>";
        assert!(harness.run(broken).is_err());
        assert!(harness.run(broken).is_err());
        let (key, _) = shape(broken).expect("a shape");
        assert!(harness.mjml.as_ref().expect("a cache").memo.get(&key, "t").is_none());
    }

    #[test]
    fn every_kit_email_compiles_as_mrml_does() {
        let (catalogue, fixtures) = crate::render::kit_fixtures();
        let harness = Harness::new();
        let (mut checked, mut filled) = (0, 0);
        for (name, template, data) in &fixtures {
            // The fixture, then its strings changed: other names, links and amounts.
            for data in [data.clone(), other_strings(data)] {
                for (locale, category) in [(None, "marketing"), (Some("fr"), "transactional")] {
                    let locale = locale.map(|l| Locale::parse(l).expect("locale"));
                    let context =
                        handlebars::Context::from(crate::testing::email_context(data.clone(), name, category));
                    let Some(mjml) = catalogue
                        .render_handlebars(template, "email.mjml.hbs", locale.as_ref(), &context)
                        .expect("render")
                    else {
                        continue;
                    };
                    let before = (harness.compiled.get(), harness.finished.get());
                    assert_eq!(harness.run(&mjml), reference(&mjml), "{name}");
                    checked += 1;
                    filled += usize::from(before == (harness.compiled.get(), harness.finished.get()));
                }
            }
        }
        assert!(checked >= 8, "{checked} emails checked");
        assert!(filled * 3 >= checked, "{filled} of {checked} emails filled in, CSS inlined: the kit's shapes repeat");
    }

    /// `data` with its strings changed, their class kept (an `&` stays an `&`).
    fn other_strings(data: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match data {
            // Letters rotated where there is a lower-case one: codes (`EUR`) and dates stay.
            Value::String(s) if s.bytes().any(|b| b.is_ascii_lowercase()) => Value::String(
                s.chars()
                    .map(|c| match c {
                        'a'..='m' | 'A'..='M' => char::from(c as u8 + 13),
                        'n'..='z' | 'N'..='Z' => char::from(c as u8 - 13),
                        c => c,
                    })
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(other_strings).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), other_strings(v))).collect()),
            v => v.clone(),
        }
    }

    // ---------------------------------------------------------------- random documents

    /// Values a slot may hold: plain, with references, other scripts, blank space
    /// inside and around, and what is never a slot (quotes, markup).
    const VALUES: [&str; 18] = [
        "a\u{a0}b",
        "e\u{301}",
        "a\\b",
        "a\nb",
        "❤\u{fe0f}",
        "a\u{c}b",
        "Ada",
        "x &amp; y",
        "O&#x27;Brien",
        "Zoë 東京",
        "  padded\n ",
        "https://a.example/p?x=1&amp;y=2",
        "1 &lt; 2",
        "O'Brien",
        "a\u{a0}",
        "#",
        "mailto:ada@example.com",
        "12",
    ];

    /// An MJML document from `ops`; `values` fills its texts and links.
    fn document(ops: &[(u8, u8)], values: &[usize]) -> String {
        let mut v = values.iter().cycle().map(|i| VALUES[i % VALUES.len()]);
        let mut next = || v.next().unwrap_or("x");
        let mut doc = format!(
            "<mjml><mj-head><mj-title>{}</mj-title><mj-preview>{}</mj-preview>\
             <mj-attributes><mj-all font-family=\"Arial\" /></mj-attributes>\
             <mj-style>.c {{ color: red }}</mj-style></mj-head><mj-body>",
            next(),
            next()
        );
        for &(op, a) in ops {
            doc.push_str("<mj-section><mj-column>");
            let _ = match op % 12 {
                0 => write!(
                    doc,
                    "<mj-text css-class=\"c\">{}<br/><a href=\"{}\">{}</a></mj-text>",
                    next(),
                    next(),
                    next()
                ),
                1 => write!(doc, "<mj-button href=\"{}\" title=\"{}\">{}</mj-button>", next(), next(), next()),
                2 => write!(
                    doc,
                    "<mj-image src=\"{}\" alt=\"{}\" href=\"{}\" title=\"{}\" />",
                    next(),
                    next(),
                    next(),
                    next()
                ),
                3 => write!(
                    doc,
                    "<mj-social mode=\"{}\"><mj-social-element name=\"{}\" href=\"{}\">{}</mj-social-element></mj-social>",
                    ["horizontal", "vertical"][a as usize % 2],
                    ["facebook", "twitter-noshare", "custom"][a as usize % 3],
                    next(),
                    next()
                ),
                4 => write!(
                    doc,
                    "<mj-navbar base-url=\"https://n.example\"><mj-navbar-link href=\"{}\">{}</mj-navbar-link></mj-navbar>",
                    next(),
                    next()
                ),
                5 => write!(doc, "<mj-raw><p class=\"c\">{}</p></mj-raw>", next()),
                6 => write!(doc, "<mj-table><tr><td>{}</td><td>{}</td></tr></mj-table>", next(), next()),
                7 => write!(
                    doc,
                    "<mj-accordion><mj-accordion-element><mj-accordion-title>{}</mj-accordion-title>\
                     <mj-accordion-text>{}</mj-accordion-text></mj-accordion-element></mj-accordion>",
                    next(),
                    next()
                ),
                8 => write!(
                    doc,
                    "<mj-carousel><mj-carousel-image src=\"{}\" alt=\"{}\" href=\"{}\" /></mj-carousel>",
                    next(),
                    next(),
                    next()
                ),
                9 => write!(
                    doc,
                    "<mj-text>{}<!-- {} --></mj-text>",
                    next(),
                    ["c", "[if mso]>x<![endif]"][a as usize % 2]
                ),
                10 => write!(doc, "<mj-divider /><mj-spacer height=\"{}px\" />", a % 40),
                _ => write!(doc, "<mj-text>{}</mj-text>", next()),
            };
            doc.push_str("</mj-column></mj-section>");
        }
        doc.push_str("</mj-body></mjml>");
        doc
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 100, ..ProptestConfig::default() })]
        /// Random documents of every element with slots, two by two with other values in
        /// the same places (filled in from the first one's shape when their shapes agree):
        /// each compiles to mrml's HTML, or to its error.
        #[test]
        fn random_documents_compile_as_mrml_does(
            ops in proptest::collection::vec(any::<(u8, u8)>(), 0..12),
            first in proptest::collection::vec(0..VALUES.len(), 1..8),
            second in proptest::collection::vec(0..VALUES.len(), 1..8),
        ) {
            let harness = Harness::new();
            for values in [&first, &second, &first] {
                let doc = document(&ops, values);
                prop_assert_eq!(harness.run(&doc), reference(&doc), "{}", doc);
            }
        }
    }
}
