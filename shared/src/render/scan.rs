//! A fast, non-allocating-per-token HTML tokenizer for the markup emails are made of.
//!
//! It follows the HTML spec's tokenizer for what email layouts contain (tags with
//! quoted or bare attributes, comments including Outlook's conditional ones, a
//! doctype, `<style>` and the other raw-text elements) and gives up, returning `None`,
//! on everything else (`<script>`, foreign content, bogus comments, markup cut off at
//! the end, NUL), so that a caller falls back to html5ever and is never wrong: where
//! this returns tokens, they are the spec tokenizer's, with character references left
//! as written.

use std::borrow::Cow;
use std::ops::Range;

/// One token, as byte ranges into the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Character data between markup; character references not decoded.
    Text(Range<usize>),
    /// The content of a raw-text element (`style`, `xmp`, `iframe`, `noembed`,
    /// `noframes`) or an escapable one (`title`, `textarea`), up to its end tag.
    Raw(Range<usize>),
    Comment(Range<usize>),
    Doctype(Range<usize>),
    Start(Start),
    End {
        span: Range<usize>,
        name: Range<usize>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// From `<` to `>`, both included.
    pub span: Range<usize>,
    /// As written (compare case-insensitively).
    pub name: Range<usize>,
    /// Indices into [`Scan::attrs`].
    pub attrs: Range<usize>,
    pub self_closing: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attr {
    /// From the name's first byte to the value's closing quote (or last byte).
    pub span: Range<usize>,
    pub name: Range<usize>,
    /// Between the quotes; `None` for a bare attribute.
    pub value: Option<Range<usize>>,
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub tokens: Vec<Token>,
    pub attrs: Vec<Attr>,
}

impl Scan {
    pub fn attrs(&self, start: &Start) -> &[Attr] {
        &self.attrs[start.attrs.clone()]
    }
}

/// Elements whose content is not markup, up to their end tag.
pub(crate) fn is_raw(name: &str) -> bool {
    ["style", "xmp", "iframe", "noembed", "noframes", "title", "textarea"].iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Elements after which the tokenizer's state depends on more than this scanner
/// models (script escapes, the scripting flag, foreign content, `<plaintext>`), or
/// whose tree building does (`select`, `template`, framesets).
fn gives_up_at(name: &str) -> bool {
    ["script", "noscript", "plaintext", "svg", "math", "template", "frameset", "frame", "select"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Whitespace after the spec's newline normalisation (CR counts as LF).
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0C' | b'\r')
}

/// Ends a tag name or an attribute name.
fn ends_name(b: u8) -> bool {
    is_space(b) || b == b'/' || b == b'>'
}

/// Tokenizes `html`, or `None` where it would not be sure to read it as the spec does.
pub(crate) fn scan(html: &str) -> Option<Scan> {
    let b = html.as_bytes();
    if memchr::memchr(0, b).is_some() {
        return None;
    }
    // Sized once from what the tokens come from: a tag and the text before it per `<`,
    // an attribute per `=` at most (the token vector's regrowth was a tenth of the scan).
    let tags = memchr::memchr_iter(b'<', b).count();
    let equals = memchr::memchr_iter(b'=', b).count();
    let mut out = Scan { tokens: Vec::with_capacity(2 * tags + 1), attrs: Vec::with_capacity(equals) };
    let mut text_start = 0;
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &b[i..]) {
        let lt = i + off;
        let end = match b.get(lt + 1) {
            Some(c) if c.is_ascii_alphabetic() => {
                flush_text(&mut out, text_start, lt);
                let start = start_tag(b, lt, &mut out)?;
                let name = &html[start.name.clone()];
                if gives_up_at(name) {
                    return None;
                }
                let mut end = start.span.end;
                let raw = is_raw(name);
                out.tokens.push(Token::Start(start));
                if raw {
                    let close = raw_end(b, end, name.len(), |n| n.eq_ignore_ascii_case(name.as_bytes()))?;
                    out.tokens.push(Token::Raw(end..close));
                    end = close;
                }
                end
            }
            Some(b'/') => {
                if !b.get(lt + 2)?.is_ascii_alphabetic() {
                    return None; // `</>` or a bogus comment
                }
                flush_text(&mut out, text_start, lt);
                let name_end = (lt + 2..b.len()).find(|&j| ends_name(b[j]))?;
                let mut j = name_end;
                while j < b.len() && is_space(b[j]) {
                    j += 1;
                }
                // Attributes or a slash in an end tag are rare enough to leave to html5ever.
                if b.get(j) != Some(&b'>') {
                    return None;
                }
                out.tokens.push(Token::End { span: lt..j + 1, name: lt + 2..name_end });
                j + 1
            }
            Some(b'!') => {
                flush_text(&mut out, text_start, lt);
                if b[lt..].starts_with(b"<!--") {
                    let body = lt + 4;
                    // `<!-->` and `<!--->` close at once (abrupt comments).
                    if b[body..].starts_with(b">") || b[body..].starts_with(b"->") {
                        return None;
                    }
                    let close = find(b, body, b"-->")?;
                    // `--!>` also ends a comment: leave those to html5ever.
                    if find(&b[..close + 3], body, b"--!>").is_some() {
                        return None;
                    }
                    out.tokens.push(Token::Comment(lt..close + 3));
                    close + 3
                } else if b.get(lt + 2..lt + 9).is_some_and(|d| d.eq_ignore_ascii_case(b"doctype")) {
                    let close = find(b, lt, b">")?;
                    out.tokens.push(Token::Doctype(lt..close + 1));
                    close + 1
                } else {
                    return None; // CDATA or a bogus comment
                }
            }
            Some(b'?') | None => return None,
            // `<` followed by anything else is text.
            Some(_) => {
                i = lt + 1;
                continue;
            }
        };
        i = end;
        text_start = end;
    }
    flush_text(&mut out, text_start, b.len());
    Some(out)
}

fn flush_text(out: &mut Scan, from: usize, to: usize) {
    if from < to {
        out.tokens.push(Token::Text(from..to));
    }
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(b.get(from..)?, needle).map(|p| from + p)
}

/// Where a raw-text element's content ends: the `</name` followed by whitespace, `/`
/// or `>` (the spec's "appropriate end tag").
fn raw_end(b: &[u8], from: usize, len: usize, is_name: impl Fn(&[u8]) -> bool) -> Option<usize> {
    let mut at = from;
    loop {
        let lt = find(b, at, b"</")?;
        let name = b.get(lt + 2..lt + 2 + len)?;
        if is_name(name) && b.get(lt + 2 + len).is_some_and(|&c| ends_name(c)) {
            return Some(lt);
        }
        at = lt + 2;
    }
}

/// A start tag from its `<`: the spec's tag name, attribute and self-closing states.
fn start_tag(b: &[u8], lt: usize, out: &mut Scan) -> Option<Start> {
    let name_end = (lt + 1..b.len()).find(|&j| ends_name(b[j]))?;
    let first_attr = out.attrs.len();
    let mut self_closing = false;
    let mut j = name_end;
    loop {
        // Before an attribute name.
        while is_space(*b.get(j)?) {
            j += 1;
        }
        match b[j] {
            b'>' => break,
            b'/' => {
                // Self-closing only right before `>`; otherwise the slash is dropped.
                if b.get(j + 1)? == &b'>' {
                    self_closing = true;
                    j += 1;
                    break;
                }
                self_closing = false;
                j += 1;
                continue;
            }
            _ => {}
        }
        self_closing = false;
        // An attribute name; a leading `=` belongs to it.
        let name_start = j;
        j += 1;
        while !ends_name(*b.get(j)?) && b[j] != b'=' {
            j += 1;
        }
        let name = name_start..j;
        while is_space(*b.get(j)?) {
            j += 1;
        }
        if b[j] != b'=' {
            out.attrs.push(Attr { span: name.clone(), name, value: None });
            continue;
        }
        j += 1;
        while is_space(*b.get(j)?) {
            j += 1;
        }
        let (value, after) = match b[j] {
            q @ (b'"' | b'\'') => {
                let close = j + 1 + memchr::memchr(q, b.get(j + 1..)?)?;
                (j + 1..close, close + 1)
            }
            // `<a href=>`: an empty value, and the tag ends.
            b'>' => (j..j, j),
            _ => {
                let end = (j..b.len()).find(|&k| is_space(b[k]) || b[k] == b'>')?;
                (j..end, end)
            }
        };
        out.attrs.push(Attr { span: name_start..after, name, value: Some(value) });
        j = after;
    }
    Some(Start { span: lt..j + 1, name: lt + 1..name_end, attrs: first_attr..out.attrs.len(), self_closing })
}

/// `text` as the tokenizer hands it over: character references decoded (the spec's
/// rules: the full table, legacy names without `;`, cp1252 for `&#128;`..`&#159;`, and
/// in an attribute a legacy name followed by `=` or a letter left alone) and CR LF / CR
/// made LF.
pub(crate) fn decode(text: &str, in_attribute: bool) -> Cow<'_, str> {
    if memchr::memchr2(b'&', b'\r', text.as_bytes()).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = memchr::memchr2(b'&', b'\r', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix('\r') {
            out.push('\n');
            rest = after.strip_prefix('\n').unwrap_or(after);
            continue;
        }
        let used = reference(rest, in_attribute, &mut out);
        if used == 0 {
            out.push('&');
            rest = &rest[1..];
        } else {
            rest = &rest[used..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Decodes the character reference `s` starts with (at its `&`) into `out`; the bytes
/// it used, 0 when it is none.
fn reference(s: &str, in_attribute: bool, out: &mut String) -> usize {
    let b = s.as_bytes();
    if b.get(1) == Some(&b'#') {
        let (from, radix) = if matches!(b.get(2), Some(b'x' | b'X')) { (3, 16) } else { (2, 10) };
        let digits = b[from..].iter().take_while(|c| (**c as char).is_digit(radix)).count();
        if digits == 0 {
            return 0;
        }
        let value = b[from..from + digits].iter().try_fold(0u32, |v, &c| {
            let v = v.checked_mul(radix)?.checked_add((c as char).to_digit(radix)?)?;
            (v <= 0x10FFFF).then_some(v)
        });
        let c = match value {
            None | Some(0) => '\u{FFFD}',
            Some(n @ 0x80..=0x9F) => {
                html5ever::data::C1_REPLACEMENTS[(n - 0x80) as usize].or(char::from_u32(n)).unwrap_or('\u{FFFD}')
            }
            Some(n) => char::from_u32(n).unwrap_or('\u{FFFD}'),
        };
        out.push(c);
        let end = from + digits;
        return end + usize::from(b.get(end) == Some(&b';'));
    }
    // A name: the longest entry of the table. Most references end in `;`: the whole
    // name is then the longest one there can be.
    let run = 1 + b[1..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
    if b.get(run) == Some(&b';')
        && let Some(&(c1, c2)) = html5ever::data::NAMED_ENTITIES.get(&s[1..=run]).filter(|m| m.0 != 0)
    {
        out.extend(char::from_u32(c1));
        if c2 != 0 {
            out.extend(char::from_u32(c2));
        }
        return run + 1;
    }
    // Otherwise walk it (the table holds every prefix of every name, as `(0, 0)`, so
    // that a failed lookup ends the walk).
    let mut matched: Option<(usize, (u32, u32))> = None;
    let mut len = 1;
    while len < b.len() {
        let c = b[len];
        if !(c.is_ascii_alphanumeric() || c == b';') {
            break;
        }
        len += 1;
        match html5ever::data::NAMED_ENTITIES.get(&s[1..len]) {
            Some(&m) if m.0 != 0 => matched = Some((len, m)),
            Some(_) => {}
            None => break,
        }
        if c == b';' {
            break;
        }
    }
    let Some((end, (c1, c2))) = matched else { return 0 };
    if in_attribute && b[end - 1] != b';' && b.get(end).is_some_and(|&c| c == b'=' || c.is_ascii_alphanumeric()) {
        return 0;
    }
    out.extend(char::from_u32(c1));
    if c2 != 0 {
        out.extend(char::from_u32(c2));
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(html: &str) -> Vec<String> {
        let scan = scan(html).expect("scans");
        scan.tokens
            .iter()
            .map(|t| match t {
                Token::Text(r) => format!("text {:?}", &html[r.clone()]),
                Token::Raw(r) => format!("raw {:?}", &html[r.clone()]),
                Token::Comment(r) => format!("comment {:?}", &html[r.clone()]),
                Token::Doctype(r) => format!("doctype {:?}", &html[r.clone()]),
                Token::End { name, .. } => format!("end {}", &html[name.clone()]),
                Token::Start(s) => {
                    let attrs: Vec<String> = scan
                        .attrs(s)
                        .iter()
                        .map(|a| match &a.value {
                            Some(v) => format!("{}={:?}", &html[a.name.clone()], &html[v.clone()]),
                            None => html[a.name.clone()].to_owned(),
                        })
                        .collect();
                    format!(
                        "start {}{}{}",
                        &html[s.name.clone()],
                        attrs.iter().map(|a| format!(" {a}")).collect::<String>(),
                        if s.self_closing { " /" } else { "" }
                    )
                }
            })
            .collect()
    }

    #[test]
    fn reads_tags_attributes_and_text_as_the_spec_does() {
        assert_eq!(
            tokens(r#"<!DOCTYPE html><p class="a b" id='x' hidden data-x=1>Hi &amp; <b>bye</b></p>"#),
            [
                "doctype \"<!DOCTYPE html>\"",
                "start p class=\"a b\" id=\"x\" hidden data-x=\"1\"",
                "text \"Hi &amp; \"",
                "start b",
                "text \"bye\"",
                "end b",
                "end p"
            ]
        );
        // A `>` inside a quoted value does not end the tag; a bare value runs to a space or `>`.
        assert_eq!(tokens(r#"<a title="1 > 0" href=/x/>x"#), ["start a title=\"1 > 0\" href=\"/x/\"", "text \"x\""]);
        assert_eq!(tokens("<br/><img src=a.png />"), ["start br /", "start img src=\"a.png\" /"]);
        // `<` that opens no markup is text; an attribute name may start with `=`.
        assert_eq!(tokens("a < b <3 <p =x>"), ["text \"a < b <3 \"", "start p =x"]);
        assert_eq!(tokens("<a href=>x"), ["start a href=\"\"", "text \"x\""]);
        assert_eq!(tokens("<p/ class=x>"), ["start p class=\"x\""]);
    }

    #[test]
    fn raw_text_runs_to_its_own_end_tag() {
        assert_eq!(
            tokens("<STYLE>a<b>{}</styles></style ><title>&lt;x</title>"),
            ["start STYLE", "raw \"a<b>{}</styles>\"", "end style", "start title", "raw \"&lt;x\"", "end title"]
        );
        assert_eq!(
            tokens("<!--[if mso]><b>x</b><![endif]-->y"),
            ["comment \"<!--[if mso]><b>x</b><![endif]-->\"", "text \"y\""]
        );
    }

    #[test]
    fn gives_up_where_html5ever_must_decide() {
        for html in [
            "<script>x</script>",
            "<svg><rect/></svg>",
            "<!-->",
            "<!--->",
            "<!-- a --!> b -->",
            "<![CDATA[x]]>",
            "<?xml?>",
            "</>",
            "</ p>",
            "</p class=x>",
            "<p class=\"open",
            "<style>never closed",
            "<!-- never closed",
            "a\0b",
            "x<",
            "<select><option>",
        ] {
            assert!(scan(html).is_none(), "{html:?}");
        }
    }
}
