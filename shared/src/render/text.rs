//! Plain-text alternative generated from an HTML email body.
//!
//! html5ever's tokenizer (the HTML spec's tokenizer, streaming: no DOM is built)
//! feeds a forgiving open-element stack, enough for the HTML that email templates
//! contain (nested layout tables, conditional comments, hidden preheaders, sloppy
//! markup). The tokenizer is the one css-inline parses with, so it adds no crate.
//!
//! Output rules:
//! - `<head>`, `<style>`, `<script>`, `<title>`, `<iframe>`, comments (so also Outlook
//!   `<!--[if mso]>` blocks) and elements with `display:none` in their style
//!   or a `hidden` attribute produce nothing.
//! - Whitespace collapses as in a browser; block elements start new lines;
//!   paragraphs, headings, blockquotes and top-level lists are separated by
//!   one blank line, and there is never more than one blank line in a row.
//! - `h1` is underlined with `=`, `h2` with `-` (setext style: readable as is,
//!   and it never touches the text, so URLs in a heading survive intact).
//! - List items get `- ` or `N. `, nested lists are indented, blockquote
//!   lines get `> `, `<hr>` becomes a line of dashes, table cells are
//!   separated by a space and rows by a line break.
//! - Links become `text (url)` unless the text already says the url; links
//!   to `#`/`javascript:` keep only their text; images give their alt text.
//! - Entities are decoded as a browser decodes them (the spec's full table,
//!   legacy forms such as `&copy` without `;`, cp1252 for `&#128;`..`&#159;`);
//!   `&nbsp;` becomes a plain space, invisible zero-width characters are
//!   dropped; unknown entities stay as written.
//! - Markup is read as a browser reads it: an attribute quote left open runs
//!   to the end of the document, which then shows nothing more (as in the HTML
//!   part); `<p/>` and other self-closed elements are empty (XHTML-style
//!   templates), except the raw-text ones (`<script/>`, `<style/>`...), whose
//!   content runs to their end tag as in a browser.
//! - Lines are not wrapped (mail clients do that) and the result has no
//!   trailing spaces, no leading or trailing blank lines and no final newline.

use std::cell::RefCell;

use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts};
use html5ever::{Attribute, LocalName, QualName, TokenizerResult, local_name, ns};

use super::scan;

/// Converts an HTML email body to a readable plain-text alternative.
pub fn html_to_text(html: &str) -> String {
    // The markup templates make, read by herald's own scanner (a tenth of the time);
    // the rest by html5ever's tokenizer. Both hand the converter the same tokens.
    if let Some(scanned) = scan::scan(html) {
        let mut converter = Converter::default();
        // The text is a fraction of the markup (inlined styles, tables): most writes fit.
        converter.w.out.reserve(html.len() / 8);
        feed(html, &scanned, &mut converter);
        return converter.finish();
    }
    html5ever_to_text(html)
}

pub(crate) fn html5ever_to_text(html: &str) -> String {
    let tokenizer = Tokenizer::new(Sink::default(), TokenizerOpts::default());
    let input = BufferQueue::default();
    for chunk in chunks(html) {
        input.push_back(StrTendril::from_slice(chunk));
    }
    // The sink never asks to stop for a script or an encoding change, so this is `Done`.
    while let TokenizerResult::Script(()) | TokenizerResult::EncodingIndicator(_) = tokenizer.feed(&input) {}
    tokenizer.end();
    tokenizer.sink.converter.into_inner().finish()
}

/// A tendril holds at most 4 GiB: longer input goes in pieces cut at character boundaries.
fn chunks(html: &str) -> impl Iterator<Item = &str> {
    const MAX: usize = 1 << 30;
    let mut rest = html;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len().min(MAX);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

// ---------------------------------------------------------------- tokens

/// Receives the tokenizer's tokens. The tokenizer hands them over through `&self`,
/// hence the cell.
#[derive(Default)]
struct Sink {
    converter: RefCell<Converter>,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut converter = self.converter.borrow_mut();
        match token {
            Token::CharacterTokens(text) => converter.text(&text),
            Token::TagToken(tag) if tag.kind == TagKind::EndTag => converter.end(&tag.name),
            Token::TagToken(tag) => {
                // The tree builder's job in a browser: the content of these elements is
                // not markup (a `<p>` inside `<script>` is script text).
                let raw = match &*tag.name {
                    "script" => Some(TokenSinkResult::RawData(RawKind::ScriptData)),
                    "style" | "xmp" | "iframe" | "noembed" | "noframes" => {
                        Some(TokenSinkResult::RawData(RawKind::Rawtext))
                    }
                    "title" | "textarea" => Some(TokenSinkResult::RawData(RawKind::Rcdata)),
                    "plaintext" => Some(TokenSinkResult::Plaintext),
                    _ => None,
                };
                converter.start(tag, raw.is_some());
                if let Some(raw) = raw {
                    return raw;
                }
            }
            // NUL is dropped in body text, as by a browser; comments and doctypes show nothing.
            Token::NullCharacterToken
            | Token::CommentToken(_)
            | Token::DoctypeToken(_)
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }
}

/// The scanner's tokens as the tokenizer would hand them over.
fn feed(html: &str, scanned: &scan::Scan, converter: &mut Converter) {
    // Whether the open raw element is `<title>` or `<textarea>` (entities decoded).
    let mut escapable = false;
    for token in &scanned.tokens {
        match token {
            scan::Token::Text(r) => converter.text(&scan::decode(&html[r.clone()], false)),
            scan::Token::Raw(r) if r.is_empty() => {}
            scan::Token::Raw(r) if escapable => converter.text(&scan::decode(&html[r.clone()], false)),
            // Raw text: only newlines are normalised.
            scan::Token::Raw(r) if html[r.clone()].contains('\r') => {
                converter.text(&html[r.clone()].replace("\r\n", "\n").replace('\r', "\n"))
            }
            scan::Token::Raw(r) => converter.text(&html[r.clone()]),
            scan::Token::Comment(_) | scan::Token::Doctype(_) => {}
            scan::Token::End { name, .. } => converter.end(&LocalName::from(lowercase(&html[name.clone()]))),
            scan::Token::Start(start) => {
                let name = lowercase(&html[start.name.clone()]);
                escapable = name == "title" || name == "textarea";
                let mut attrs: Vec<Attribute> = Vec::new();
                // One bit per READ_ATTRS entry: the first of duplicate attributes is the
                // one that counts (as in html5ever), whether it is handed over or not.
                let mut seen = 0u8;
                for a in scanned.attrs(start) {
                    // Only the attributes the converter reads, by their static names: no
                    // copy of the others (inlined CSS puts a `style` on every element).
                    let raw_name = &html[a.name.clone()];
                    let Some(index) = READ_ATTRS.iter().position(|r| r.eq_ignore_ascii_case(raw_name)) else {
                        continue;
                    };
                    if seen & (1 << index) != 0 {
                        continue;
                    }
                    seen |= 1 << index;
                    let attr_name = READ_ATTRS[index];
                    let value = a.value.clone().map(|v| scan::decode(&html[v], true)).unwrap_or_default();
                    // A style hides only with a `none` in it (`is_hidden`): skip the copy.
                    if attr_name == "style" && !mentions_none(&value) {
                        continue;
                    }
                    attrs.push(Attribute {
                        name: QualName::new(None, ns!(), LocalName::from(attr_name)),
                        value: StrTendril::from_slice(&value),
                    });
                }
                let raw = scan::is_raw(&name);
                let tag = Tag {
                    kind: TagKind::StartTag,
                    name: LocalName::from(&*name),
                    self_closing: start.self_closing,
                    attrs,
                    had_duplicate_attributes: false,
                };
                converter.start(tag, raw);
            }
        }
    }
}

/// `name` in ASCII lowercase, copied only when it has an uppercase letter.
fn lowercase(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// The attributes the converter reads (the scanner path hands over only these).
const READ_ATTRS: [&str; 5] = ["hidden", "style", "alt", "href", "start"];

fn attr<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
    debug_assert!(READ_ATTRS.contains(&name), "add {name} to READ_ATTRS");
    tag.attrs.iter().find(|a| &*a.name.local == name).map(|a| &*a.value)
}

// ---------------------------------------------------------------- writer

/// Whitespace in text; NBSP too, because in a plain-text part it is only
/// ever layout padding and would otherwise survive as invisible junk.
fn is_text_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0C' | '\u{A0}')
}

/// Invisible characters with no place in plain text (preheader padding,
/// soft hyphens). ZWJ is kept: it is part of emoji sequences.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{AD}' | '\u{34F}' | '\u{200B}' | '\u{200C}' | '\u{2060}' | '\u{FEFF}')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Off,
    /// Set at the next content character.
    Pending,
    At(usize),
}

/// Accumulates output. Line breaks and collapsed spaces are only written
/// when content follows them, so empty elements and trailing breaks leave no
/// trace and blank lines never pile up.
#[derive(Debug)]
struct Writer {
    out: String,
    /// Line breaks wanted before the next content (1: new line, 2: blank line).
    want: u8,
    /// Collapsed whitespace waiting to become one space.
    space: bool,
    quote_depth: usize,
    /// Quote depth of the last content written.
    content_quote_depth: usize,
    /// Widths of the markers of the open list items (for indentation).
    indents: Vec<usize>,
    /// Marker for the next line started inside the innermost list item.
    marker: Option<String>,
    link: Mark,
    heading: Mark,
}

impl Default for Writer {
    fn default() -> Self {
        Writer {
            out: String::new(),
            want: 0,
            space: false,
            quote_depth: 0,
            content_quote_depth: 0,
            indents: Vec::new(),
            marker: None,
            link: Mark::Off,
            heading: Mark::Off,
        }
    }
}

impl Writer {
    fn request_lines(&mut self, n: u8) {
        self.want = self.want.max(n);
        self.space = false;
    }

    /// `<br>`: one more line break than already wanted, but never more than one blank line.
    fn hard_break(&mut self) {
        self.want = (self.want + 1).min(2);
        self.space = false;
    }

    fn flush_lines(&mut self) {
        if self.want > 0 && !self.out.is_empty() {
            self.out.push('\n');
            if self.want > 1 {
                // A blank line between two quoted lines stays quoted.
                let depth = self.quote_depth.min(self.content_quote_depth);
                self.out.push_str(&">".repeat(depth));
                self.out.push('\n');
            }
        }
        self.want = 0;
    }

    fn write_prefix(&mut self) {
        for _ in 0..self.quote_depth {
            self.out.push_str("> ");
        }
        let (indent, marker) = match self.marker.take() {
            Some(marker) => {
                let outer = self.indents.len().saturating_sub(1);
                (self.indents[..outer].iter().sum::<usize>(), Some(marker))
            }
            None => (self.indents.iter().sum(), None),
        };
        self.out.extend(std::iter::repeat_n(' ', indent));
        if let Some(marker) = marker {
            self.out.push_str(&marker);
        }
    }

    /// Starts a content character: breaks, prefix or a collapsed space first.
    fn begin_content(&mut self) {
        self.flush_lines();
        if self.out.is_empty() || self.out.ends_with('\n') {
            self.write_prefix();
        } else if self.space {
            self.out.push(' ');
        }
        self.space = false;
        self.content_quote_depth = self.quote_depth;
        for mark in [&mut self.link, &mut self.heading] {
            if *mark == Mark::Pending {
                *mark = Mark::At(self.out.len());
            }
        }
    }

    /// Flowing text: whitespace collapses.
    fn text(&mut self, s: &str) {
        // Word by word: the breaks, prefix and space before a word are settled once.
        for (i, word) in s.split(is_text_space).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if word.is_empty() {
                continue;
            }
            if word.contains(is_invisible) {
                let visible: String = word.chars().filter(|&c| !is_invisible(c)).collect();
                if !visible.is_empty() {
                    self.begin_content();
                    self.out.push_str(&visible);
                }
            } else {
                self.begin_content();
                self.out.push_str(word);
            }
        }
    }

    /// Preformatted text: whitespace and line breaks are kept.
    fn pre_text(&mut self, s: &str) {
        for c in s.chars() {
            match c {
                '\n' => self.hard_break(),
                '\r' => {}
                c if is_invisible(c) => {}
                c => {
                    self.begin_content();
                    self.out.push(if c == '\u{A0}' { ' ' } else { c });
                }
            }
        }
    }

    /// Text written since `mark` was set, if any.
    fn since(&self, mark: Mark) -> &str {
        match mark {
            Mark::At(i) => self.out.get(i..).unwrap_or("").trim(),
            _ => "",
        }
    }

    /// Trailing spaces go, and runs of blank lines (possible from `<pre>`) shrink to one.
    fn finish(self) -> String {
        let mut result = String::with_capacity(self.out.len());
        let mut blank = false;
        for line in self.out.lines().map(str::trim_end) {
            if line.is_empty() {
                blank = !result.is_empty();
                continue;
            }
            if !result.is_empty() {
                result.push('\n');
                if std::mem::take(&mut blank) {
                    result.push('\n');
                }
            }
            result.push_str(line);
        }
        result
    }
}

// ---------------------------------------------------------------- converter

// `matches!` rather than a list: a tag name is looked up several times per tag.
fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "param"
            | "source"
            | "track"
            | "wbr"
    )
}

/// Elements that take a line of their own.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "caption"
            | "center"
            | "dd"
            | "details"
            | "dialog"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "hr"
            | "li"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "pre"
            | "section"
            | "summary"
            | "table"
            | "tr"
            | "ul"
    )
}

/// Elements whose content is never shown.
fn is_dropped(name: &str) -> bool {
    matches!(name, "head" | "script" | "style" | "title" | "template" | "iframe" | "noembed" | "noframes")
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// Deepest nesting kept on the stack (Chromium's parser caps DOM depth at
/// 512 too); deeper elements are treated as empty, which keeps every stack
/// search cheap even for thousands of unclosed tags.
const MAX_DEPTH: usize = 512;

/// What closing an element does (decided when it opened).
#[derive(Debug)]
enum Close {
    Nothing,
    Lines(u8),
    Space,
    Link(String),
    Heading(char),
    ListItem,
    List(u8),
    Quote,
    Pre,
}

#[derive(Debug)]
struct Open {
    name: LocalName,
    /// Its index in `IMPLIED_CLOSE`, if it is one: looked up once, at the start tag.
    implied: Option<usize>,
    hidden: bool,
    close: Close,
}

#[derive(Debug)]
enum List {
    Bullets,
    Numbers(i64),
}

#[derive(Debug, Default)]
struct Converter {
    w: Writer,
    stack: Vec<Open>,
    /// Open elements that hide their content.
    hidden: usize,
    lists: Vec<List>,
    pre: usize,
    /// Just inside `<pre>`: a first newline there is not content.
    pre_start: bool,
    /// How many of each `IMPLIED_CLOSE` element are open, so the common case
    /// (none) skips the stack search.
    open_counts: [usize; IMPLIED_CLOSE.len()],
}

/// Elements that a later start tag can close implicitly.
const IMPLIED_CLOSE: [&str; 9] = ["p", "li", "dt", "dd", "tr", "td", "th", "a", "head"];

/// Sets of `IMPLIED_CLOSE` elements, one bit each (in its order).
const P: u16 = 1;
const LI: u16 = 1 << 1;
const DT_DD: u16 = 1 << 2 | 1 << 3;
const TR: u16 = 1 << 4;
const TD_TH: u16 = 1 << 5 | 1 << 6;
const A: u16 = 1 << 7;
const HEAD: u16 = 1 << 8;

fn is_hidden(tag: &Tag) -> bool {
    attr(tag, "hidden").is_some()
        || attr(tag, "style").is_some_and(|style| {
            // Most styles do not hide: skip the normalising copy for them.
            if !mentions_none(style) {
                return false;
            }
            let style: String = style.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_lowercase()).collect();
            style
                .split(';')
                .any(|decl| decl.strip_prefix("display:").is_some_and(|v| v.trim_end_matches("!important") == "none"))
        })
}

/// Whether `none` appears in any case (email layouts carry long `style` attributes).
fn mentions_none(style: &str) -> bool {
    let b = style.as_bytes();
    // css-inline writes what it inlines in lowercase: one substring search then.
    if !b.iter().any(u8::is_ascii_uppercase) {
        static NONE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"none"));
        return NONE.find(b).is_some();
    }
    let mut from = 0;
    // memchr2 skips a long style a vector at a time.
    while let Some(i) = b.get(from..).and_then(|rest| memchr::memchr2(b'n', b'N', rest)) {
        let at = from + i;
        if b.get(at..at + 4).is_some_and(|w| w.eq_ignore_ascii_case(b"none")) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Strips what makes two spellings of one address differ, for "is the
/// link text just the URL" checks.
fn normalize_target(s: &str) -> String {
    let s = s.trim().to_lowercase();
    let s = s
        .strip_prefix("mailto:")
        .map(|m| m.split('?').next().unwrap_or(m))
        .or_else(|| s.strip_prefix("tel:"))
        .or_else(|| s.strip_prefix("https://"))
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(&s);
    let s = s.strip_prefix("www.").unwrap_or(s);
    s.trim_end_matches('/').to_string()
}

impl Converter {
    fn is_hidden(&self) -> bool {
        self.hidden > 0
    }

    /// Text with its entities decoded.
    fn text(&mut self, text: &str) {
        if self.is_hidden() {
            return;
        }
        if self.pre > 0 {
            let mut text = text;
            if std::mem::take(&mut self.pre_start) {
                // The tokenizer has already made CR LF one LF.
                text = text.strip_prefix('\n').unwrap_or(text);
            }
            self.w.pre_text(text);
        } else {
            self.w.text(text);
        }
    }

    /// Closes the innermost open element of `set` (bits of `IMPLIED_CLOSE`) if it is
    /// found before any of `stop`.
    fn close_open(&mut self, set: u16, stop: &[&str]) {
        // The common case, none open, without a look at the stack.
        let any_open = self.open_counts.iter().enumerate().any(|(i, &count)| count > 0 && set & (1 << i) != 0);
        if !any_open {
            return;
        }
        for i in (0..self.stack.len()).rev() {
            if self.stack[i].implied.is_some_and(|k| set & (1 << k) != 0) {
                self.pop_to(i);
                return;
            }
            if stop.contains(&&*self.stack[i].name) {
                return;
            }
        }
    }

    /// The implied end tags that keep the stack shaped like a browser's DOM.
    fn close_implied(&mut self, name: &str) {
        match name {
            "body" => self.close_open(HEAD, &[]),
            "li" => self.close_open(LI, &["ul", "ol", "table"]),
            "dt" | "dd" => self.close_open(DT_DD, &["dl", "table"]),
            "tr" => self.close_open(TR, &["table"]),
            "td" | "th" => self.close_open(TD_TH, &["tr", "table"]),
            "a" => self.close_open(A, &[]),
            _ => {}
        }
        if is_block(name) {
            self.close_open(P, &["td", "th", "table", "caption", "button"]);
        }
        if is_heading(name) && self.stack.last().is_some_and(|o| is_heading(&o.name)) {
            self.pop_to(self.stack.len() - 1);
        }
    }

    /// `raw`: the tokenizer reads this element's content as text up to its end tag,
    /// so it is open until then whatever its tag says (and it cannot nest).
    fn start(&mut self, tag: Tag, raw: bool) {
        // Only a newline straight after `<pre>` is dropped.
        self.pre_start = false;
        let name = &*tag.name;
        self.close_implied(name);
        let hidden = is_dropped(name) || is_hidden(&tag);
        let void = !raw && (is_void(name) || tag.self_closing || self.stack.len() >= MAX_DEPTH);
        let close = if self.is_hidden() || hidden { Close::Nothing } else { self.open_element(&tag) };
        if void {
            // Nothing to wait for: apply the closing effect now.
            self.apply_close(close);
        } else {
            self.hidden += usize::from(hidden);
            let implied = IMPLIED_CLOSE.iter().position(|&n| n == name);
            if let Some(k) = implied {
                self.open_counts[k] += 1;
            }
            self.stack.push(Open { name: tag.name, implied, hidden, close });
        }
    }

    /// Effects of an opening tag; returns what its end tag will do.
    fn open_element(&mut self, tag: &Tag) -> Close {
        let w = &mut self.w;
        let in_list_item = self.stack.last().is_some_and(|o| &*o.name == "li");
        match &*tag.name {
            "br" => {
                w.hard_break();
                Close::Nothing
            }
            "hr" => {
                w.request_lines(2);
                w.text(&"-".repeat(30));
                Close::Lines(2)
            }
            "img" => {
                if let Some(alt) = attr(tag, "alt") {
                    w.text(alt);
                }
                Close::Nothing
            }
            "a" => match attr(tag, "href") {
                Some(href) => {
                    w.link = Mark::Pending;
                    Close::Link(href.to_string())
                }
                None => Close::Nothing,
            },
            "td" | "th" => {
                w.space = true;
                Close::Space
            }
            "p" if in_list_item => {
                // Paragraphs inside list items would otherwise double-space the list.
                w.request_lines(1);
                Close::Lines(1)
            }
            "p" => {
                w.request_lines(2);
                Close::Lines(2)
            }
            name @ ("h1" | "h2" | "h3" | "h4" | "h5" | "h6") => {
                w.request_lines(2);
                w.heading = Mark::Pending;
                Close::Heading(match name {
                    "h1" => '=',
                    "h2" => '-',
                    _ => ' ',
                })
            }
            "ul" | "ol" => {
                let lines = if self.lists.is_empty() && w.indents.is_empty() { 2 } else { 1 };
                w.request_lines(lines);
                self.lists.push(if &*tag.name == "ol" {
                    let start = attr(tag, "start").and_then(|s| s.trim().parse().ok());
                    List::Numbers(start.unwrap_or(1))
                } else {
                    List::Bullets
                });
                Close::List(lines)
            }
            "li" => {
                w.request_lines(1);
                let marker = match self.lists.last_mut() {
                    Some(List::Numbers(n)) => {
                        let marker = format!("{n}. ");
                        *n = n.saturating_add(1);
                        marker
                    }
                    Some(List::Bullets) | None => "- ".to_string(),
                };
                w.indents.push(marker.chars().count());
                w.marker = Some(marker);
                Close::ListItem
            }
            "blockquote" => {
                w.request_lines(2);
                w.quote_depth += 1;
                Close::Quote
            }
            "pre" => {
                w.request_lines(2);
                self.pre += 1;
                self.pre_start = true;
                Close::Pre
            }
            name if is_block(name) => {
                w.request_lines(1);
                Close::Lines(1)
            }
            _ => Close::Nothing,
        }
    }

    fn apply_close(&mut self, close: Close) {
        let w = &mut self.w;
        match close {
            Close::Nothing => {}
            Close::Lines(n) => w.request_lines(n),
            Close::Space => w.space = true,
            Close::Link(href) => self.close_link(&href),
            Close::Heading(underline) => {
                let width = w.since(w.heading).lines().map(|l| l.chars().count()).max();
                w.heading = Mark::Off;
                if let Some(width) = width.filter(|_| underline != ' ') {
                    w.out.push('\n');
                    w.write_prefix();
                    w.out.extend(std::iter::repeat_n(underline, width));
                }
                w.request_lines(2);
            }
            Close::ListItem => {
                w.indents.pop();
                w.marker = None;
                w.request_lines(1);
            }
            Close::List(n) => {
                self.lists.pop();
                w.request_lines(n);
            }
            Close::Quote => {
                w.quote_depth = w.quote_depth.saturating_sub(1);
                w.request_lines(2);
            }
            Close::Pre => {
                self.pre = self.pre.saturating_sub(1);
                self.pre_start = false;
                w.request_lines(2);
            }
        }
    }

    fn close_link(&mut self, href: &str) {
        let w = &mut self.w;
        let text = w.since(w.link).to_string();
        w.link = Mark::Off;
        // Browsers drop whitespace inside URLs; keep an intentional space readable.
        let url: String =
            href.trim().chars().filter(|c| !matches!(c, '\n' | '\r' | '\t')).collect::<String>().replace(' ', "%20");
        let lower = url.to_ascii_lowercase();
        if url.is_empty() || url.starts_with('#') || lower.starts_with("javascript:") {
            return;
        }
        if text.is_empty() {
            // An image link without alt text: the URL is all there is.
            w.text(&url);
        } else if normalize_target(&text) != normalize_target(&url) {
            // Straight after the text, ahead of any line break its element asked for.
            w.out.push_str(" (");
            w.out.push_str(&url);
            w.out.push(')');
        }
    }

    /// Pops `stack[i..]`, innermost first, running each closing effect.
    fn pop_to(&mut self, i: usize) {
        while self.stack.len() > i {
            if let Some(open) = self.stack.pop() {
                if open.hidden {
                    self.hidden -= 1;
                }
                if let Some(k) = open.implied {
                    self.open_counts[k] -= 1;
                }
                self.apply_close(open.close);
            }
        }
    }

    fn end(&mut self, name: &LocalName) {
        if *name == local_name!("br") {
            // Browsers read a stray </br> as <br>.
            if !self.is_hidden() {
                self.w.hard_break();
            }
            return;
        }
        // Atoms: one integer compare per open element.
        match self.stack.iter().rposition(|o| o.name == *name) {
            Some(i) => self.pop_to(i),
            // A stray block end tag still ends a line; other strays mean nothing.
            None if is_block(name) && !self.is_hidden() => {
                self.w.request_lines(if *name == local_name!("p") { 2 } else { 1 });
            }
            None => {}
        }
    }

    fn finish(mut self) -> String {
        self.pop_to(0);
        self.w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tokenizer alone makes of `s` as text: its entity decoding.
    fn decode_entities(s: &str) -> String {
        #[derive(Default)]
        struct Chars(RefCell<String>);
        impl TokenSink for Chars {
            type Handle = ();
            fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
                if let Token::CharacterTokens(text) = token {
                    self.0.borrow_mut().push_str(&text);
                }
                TokenSinkResult::Continue
            }
        }
        let tokenizer = Tokenizer::new(Chars::default(), TokenizerOpts::default());
        let input = BufferQueue::default();
        input.push_back(StrTendril::from_slice(s));
        assert!(matches!(tokenizer.feed(&input), TokenizerResult::Done));
        tokenizer.end();
        tokenizer.sink.0.into_inner()
    }

    #[test]
    fn newsletter_layout() {
        let html = r##"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1.0"/>
  <title>Acme Weekly &mdash; June</title>
  <style type="text/css">
    body { margin: 0; } .preheader { display: none !important; }
    a[x-apple-data-detectors] { color: inherit !important; }
  </style>
  <!--[if mso]><style>table { border-collapse: collapse; }</style><![endif]-->
</head>
<body style="margin:0; padding:0; background-color:#f4f4f4;">
  <span class="preheader" style="display: none; max-height: 0; overflow: hidden; mso-hide: all;">Our biggest sale of the year starts now&nbsp;&zwnj;&nbsp;&zwnj;&nbsp;&zwnj;</span>
  <table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
    <tr>
      <td align="center" style="padding: 20px 0;">
        <table role="presentation" width="600" cellpadding="0" cellspacing="0">
          <tr>
            <td><a href="https://acme.example/?utm_source=newsletter&amp;utm_medium=email"><img src="https://cdn.acme.example/logo.png" alt="Acme" width="120" height="40" style="display:block;"></a></td>
            <td align="right"><a href="https://acme.example/view/123" style="color:#999999;">View in browser</a></td>
          </tr>
          <tr>
            <td colspan="2" style="padding: 30px;">
              <h1 style="font-size:28px;">Summer Sale&nbsp;&ndash; up to 50% off</h1>
              <p>Hi Jane,</p>
              <p>Our   summer
                 sale is <strong>finally</strong> here. This week&rsquo;s highlights:</p>
              <ul>
                <li>Garden chairs &amp; tables</li>
                <li>Outdoor lighting &hellip; from &euro;9.99</li>
                <li><a href="https://acme.example/bbq">BBQ tools</a></li>
              </ul>
              <table role="presentation" cellpadding="0" cellspacing="0" class="button">
                <tr><td bgcolor="#e63946" style="border-radius:4px;"><a href="https://acme.example/sale" target="_blank">Shop the sale &rarr;</a></td></tr>
              </table>
              <img src="https://cdn.acme.example/hero.jpg" alt="" width="540">
              <h2>How to order</h2>
              <ol>
                <li>Pick your items</li>
                <li>Check out&nbsp;&ndash; it&#39;s quick</li>
              </ol>
            </td>
          </tr>
          <tr>
            <td colspan="2" style="font-size:12px; color:#999999;">
              &copy; 2024 Acme Inc.&nbsp;&bull; 1 Main St., Springfield<br>
              Questions? Write to <a href="mailto:help@acme.example">help@acme.example</a>.<br/>
              <a href="https://acme.example/unsubscribe?u=abc&amp;id=42">Unsubscribe</a> | <a href="#">Preferences</a>
            </td>
          </tr>
        </table>
      </td>
    </tr>
  </table>
  <img src="https://track.acme.example/open.gif" width="1" height="1" alt="" style="display:block;">
</body>
</html>
"##;
        let expected = "\
Acme (https://acme.example/?utm_source=newsletter&utm_medium=email) View in browser (https://acme.example/view/123)

Summer Sale – up to 50% off
===========================

Hi Jane,

Our summer sale is finally here. This week’s highlights:

- Garden chairs & tables
- Outdoor lighting … from €9.99
- BBQ tools (https://acme.example/bbq)

Shop the sale → (https://acme.example/sale)

How to order
------------

1. Pick your items
2. Check out – it's quick

© 2024 Acme Inc. • 1 Main St., Springfield
Questions? Write to help@acme.example.
Unsubscribe (https://acme.example/unsubscribe?u=abc&id=42) | Preferences";
        assert_eq!(html_to_text(html), expected);
    }

    #[test]
    fn transactional_receipt() {
        let html = r#"<html><body>
<div style="font-family:Arial">
<p>Thanks for your order, <b>Sam</b>!</p>
<table>
  <tr><th>Item</th><th>Qty</th><th>Price</th></tr>
  <tr><td>Blue mug</td><td>2</td><td>$12.00</td></tr>
  <tr><td>Tea (100&nbsp;g)</td><td>1</td><td>$7.50</td></tr>
</table>
<p>Total: <strong>$31.50</strong></p>
<hr>
<p>Track your parcel at <a href="https://shop.example/track/XY12">https://shop.example/track/XY12</a>
or reply to <a href="mailto:orders@shop.example?subject=Order%2042">orders@shop.example</a>.</p>
<blockquote><p>Great mugs!</p><p>&mdash; a happy customer</p></blockquote>
<pre>
Order  #42
  ref: A-17</pre>
</div>
</body></html>"#;
        let expected = "\
Thanks for your order, Sam!

Item Qty Price
Blue mug 2 $12.00
Tea (100 g) 1 $7.50

Total: $31.50

------------------------------

Track your parcel at https://shop.example/track/XY12 or reply to orders@shop.example.

> Great mugs!
>
> — a happy customer

Order  #42
  ref: A-17";
        assert_eq!(html_to_text(html), expected);
    }

    #[test]
    fn malformed_markup() {
        let html = concat!(
            "<HTML><BODY><P>Unclosed paragraph",
            "<P>Second &AMP; third <i>italic never closed",
            "<DIV CLASS=x>Price < $5 and 3<4, <<ok>></DIV>",
            r#"<a title="a > b" href='https://x.example/?q=1&r=2'>Deal</A>"#,
            "<UL><LI>one<LI>two<ul><li>two.a</ul><LI>three</UL>",
            "<p>entities: &unknown; &#8364; &#x1F600; &#150; &amp;amp; &lt;b&gt; AT&T",
            "<!-- a comment <p>hidden</p> --><p>end<br><br><br><br>after breaks",
            "<p>dangling <span"
        );
        let expected = "\
Unclosed paragraph

Second & third italic never closed

Price < $5 and 3<4, <>
Deal (https://x.example/?q=1&r=2)

- one
- two
  - two.a
- three

entities: &unknown; € 😀 – &amp; <b> AT&T

end

after breaks

dangling";
        assert_eq!(html_to_text(html), expected);
        // A quote left open swallows the rest of the document, as in a browser (and so in
        // the HTML part the reader sees).
        assert_eq!(html_to_text("<p>broken <b attr=\"never closed>still text</b> after<p>more"), "broken");
    }

    #[test]
    fn hidden_elements_and_conditional_comments() {
        let html = r#"<div style="DISPLAY : None">preview</div>
<!--[if mso]><table><tr><td>Outlook only</td></tr></table><![endif]-->
<!--[if !mso]><!--><p>Everyone else</p><!--<![endif]-->
<p hidden>not shown</p>
<table><tr><td style="display:none"><p>hidden cell<span>unclosed</td><td>visible cell</td></tr></table>
<p style="display:block">shown <span style="font-size:0;display:none !important">x</span>too</p>
<script>if (a < b) { document.write("<p>no</p>"); }</script><STYLE>p{}</STYLE>
<p>done</p>"#;
        assert_eq!(html_to_text(html), "Everyone else\n\nvisible cell\n\nshown too\n\ndone");
    }

    /// Of duplicate attributes the first counts, as a browser reads it: a second `style`
    /// that would hide does not, and an entity-encoded `none` does.
    #[test]
    fn none_is_found_in_any_case() {
        for style in ["display:none", "display: NONE", "Display:None", "x:y;display:nOnE !important", "nonexistent"] {
            assert!(mentions_none(style), "{style}");
        }
        for style in ["color:red", "COLOR:RED", "no ne", "n", "", "NON", "non-e"] {
            assert!(!mentions_none(style), "{style}");
        }
    }

    #[test]
    fn the_first_of_duplicate_attributes_counts() {
        let html = r#"<p><span style="color:#999" style="display:none">shown</span>
<span style="display:&#110;one">hidden</span><img ALT="first" alt="second"></p>"#;
        assert_eq!(html_to_text(html), "shown first");
        assert_eq!(html5ever_to_text(html), "shown first");
    }

    #[test]
    fn links() {
        let cases = [
            (r#"<a href="https://a.example/">a.example</a>"#, "a.example"),
            (r#"<a href="http://www.a.example">https://a.example/</a>"#, "https://a.example/"),
            (r#"<a href="mailto:x@a.example">x@a.example</a>"#, "x@a.example"),
            (r#"<a href="mailto:x@a.example">Email us</a>"#, "Email us (mailto:x@a.example)"),
            (r##"<a href="#top">Back to top</a>"##, "Back to top"),
            (r#"<a href="javascript:void(0)">Click</a>"#, "Click"),
            (r#"<a name="anchor">Plain</a>"#, "Plain"),
            (r#"<a href="https://a.example/fb"><img src="fb.png"></a>"#, "https://a.example/fb"),
            ("<a href=\"\n https://a.example/x y\n\">Spaced</a>", "Spaced (https://a.example/x%20y)"),
            (
                r#"<a href="https://a.example/1">one<a href="https://a.example/2">two</a>"#,
                "one (https://a.example/1)two (https://a.example/2)",
            ),
            (
                r#"<a href="https://a.example/b"><div>Big button</div></a>after"#,
                "Big button (https://a.example/b)\nafter",
            ),
        ];
        for (html, expected) in cases {
            assert_eq!(html_to_text(html), expected, "{html}");
        }
    }

    #[test]
    fn whitespace_and_breaks() {
        assert_eq!(html_to_text(""), "");
        assert_eq!(html_to_text("  \n <p> </p> <div>&nbsp;</div> "), "");
        assert_eq!(html_to_text("a<b>b</b> <i> c </i>d"), "ab c d");
        assert_eq!(html_to_text("<br><br>x<br>"), "x");
        assert_eq!(html_to_text("line&#8203;one&shy;two"), "lineonetwo");
        assert_eq!(html_to_text("<h3>Title</h3>body"), "Title\n\nbody");
        assert_eq!(html_to_text("<ol start=\"9\"><li>nine</li><li>ten</li></ol>"), "9. nine\n10. ten");
        assert_eq!(html_to_text("a<hr/>b"), format!("a\n\n{}\n\nb", "-".repeat(30)));
    }

    #[test]
    fn never_emits_markup() {
        let html = r#"<p class="x>y" data-a='<b>'>text</p><<p>>&lt;script&gt;<img alt="a>b" src=x>< /p>"#;
        let out = html_to_text(html);
        assert_eq!(out, "text\n\n<\n\n><script>a>b< /p>");
    }

    #[test]
    fn pathological_input_stays_linear() {
        // Each would take minutes if the tokenizer or the stack searches were quadratic.
        let unclosed = "<div><span>x".repeat(100_000);
        assert_eq!(html_to_text(&unclosed).len(), 100_000 + 99_999);
        let literals = "1 < 2 <!-- c --> < ".repeat(50_000);
        assert_eq!(html_to_text(&literals).matches('<').count(), 100_000);
        let entities = format!("&{}", "&#1234567890123456789;".repeat(50_000));
        assert!(html_to_text(&entities).starts_with("&\u{FFFD}"));
    }

    #[test]
    fn spec_tokenizer_rules() {
        let cases = [
            // Legacy entities need no `;` in text, as in a browser; in attributes they stay
            // when a URL parameter follows (`&copy=`).
            ("&copy 2024 &AMP; &notit; AT&T &#x80;", "© 2024 & ¬it; AT&T €"),
            (r#"<a href="/x?a=1&copy=2&amp;b=3">Go</a>"#, "Go (/x?a=1&copy=2&b=3)"),
            // Raw-text elements run to their end tag even when written self-closed.
            ("a<script/>x</p>y</script>b", "ab"),
            ("<title>T</title><style/>p { x }</style>body", "body"),
            ("a<iframe src=x><p>fallback</p></iframe>b", "ab"),
            // A textarea shows its markup as text; NUL is dropped; CR LF is one break.
            ("<textarea><b>&amp;</b></textarea>", "<b>&</b>"),
            ("a\0b", "ab"),
            ("<pre>\r\none\r\ntwo</pre>", "one\ntwo"),
            ("<plaintext><b>x</b>", "<b>x</b>"),
        ];
        for (html, expected) in cases {
            assert_eq!(html_to_text(html), expected, "{html}");
        }
    }

    const PIECES: [&str; 51] = [
        "<p>",
        "</p>",
        "<div class=\"x\">",
        "</div>",
        "<br>",
        "<br/>",
        "</br>",
        "<h1>",
        "</h1>",
        "<h2 id=a>",
        "<ul>",
        "<ol start=\"3\">",
        "<li>",
        "</li>",
        "</ul>",
        "<table><tr><td>",
        "</td><td>",
        "</tr></table>",
        "<a href=\"https://a.example/?x=1&amp;y=2&copy=3\">",
        "<a href=https://b.example/&notin>",
        "</a>",
        "<img alt=\"A &lt;b&gt; &quot;c&quot;\" src=x>",
        "<span style=\"display: none\">",
        "<div hidden>",
        "<span STYLE='DISPLAY:NONE !important'>",
        "<span style=\"color:#999\" style=\"display:none\" Style=\"x\">",
        "<img alt=a ALT=b hidden=\"\" style=\"x\" STYLE=\"display:none\">",
        "<span style=\"display:&#110;one\">",
        "</span>",
        "<pre>",
        "\n",
        "\r\n",
        "\r",
        "</pre>",
        "<blockquote>",
        "</blockquote>",
        "<hr>",
        "<!-- c -->",
        "<!--[if mso]><p>x</p><![endif]-->",
        "<title>T &amp; t</title>",
        "<style>p { x }</style>",
        "<textarea><b>&amp;</b></textarea>",
        "Ada &amp; Grace",
        " O&#x27;Brien ",
        "&copy 2024 &AMP; &notit; &#x80; &#0; &#12a; &; &#;",
        "&nbsp;&zwnj;&#847;",
        "  spaced   text  ",
        "a < b",
        "\u{e9}t\u{e9} \u{1F600}",
        "<p/>",
        "<P CLASS=x>",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 500, ..Default::default() })]
        /// The scanner path and html5ever's tokenizer give the converter the same tokens.
        #[test]
        fn scanner_and_html5ever_agree(pieces in proptest::collection::vec(0..PIECES.len(), 0..40)) {
            let html: String = pieces.iter().map(|&i| PIECES[i]).collect();
            assert!(scan::scan(&html).is_some(), "{html:?} is read by the scanner");
            proptest::prop_assert_eq!(html_to_text(&html), html5ever_to_text(&html), "{:?}", html);
        }
    }

    #[test]
    fn entity_decoding() {
        assert_eq!(decode_entities("&eacute;t&eacute; &Eacute; &ccedil;a &yuml; &nbsp;"), "été É ça ÿ \u{A0}");
        assert_eq!(decode_entities("&#0; &#xD800; &#x110000; &#99999999999;"), "\u{FFFD} \u{FFFD} \u{FFFD} \u{FFFD}");
        // `&#12a;` is `&#12` (a form feed) then `a;`: the spec ends a number at its last digit.
        assert_eq!(decode_entities("&; &#; &#x; &#12a; & amp;"), "&; &#; &#x; \u{C}a; & amp;");
        assert_eq!(
            decode_entities("&lsquo;&rsquo;&ldquo;&rdquo;&laquo;&raquo;&middot;&trade;&reg;&pound;&yen;"),
            "‘’“”«»·™®£¥"
        );
    }
}
