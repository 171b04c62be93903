//! Email HTML after Handlebars: MJML compiled to HTML (`mrml`), then CSS inlined into
//! `style` attributes (`css-inline`), because many mail clients drop `<style>` blocks.
//!
//! Neither step reads a file or the network: `mj-include` is refused (Handlebars
//! partials, which run first, share markup instead), and `<link rel="stylesheet">` is
//! left in the HTML as written, never fetched. Both crates are built without their
//! loaders.

use std::sync::OnceLock;

use css_inline::{CSSInliner, InlineError};
use mrml::prelude::parser::{Error as MjmlError, ParserOptions, Span};
use mrml::prelude::render::RenderOptions;

/// HTML that could not be produced from a template's rendered MJML or HTML. Positions
/// are 1-based, in the rendered source (after Handlebars), in characters. The message
/// names elements and attributes, never text or attribute values: by now the markup
/// carries the request's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", position(*line, *column))]
pub struct EmailHtmlError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("line {l}, column {c}: "),
        (Some(l), None) => format!("line {l}: "),
        _ => String::new(),
    }
}

impl EmailHtmlError {
    fn new(message: impl Into<String>) -> Self {
        EmailHtmlError { line: None, column: None, message: message.into() }
    }

    fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let (line, column) = super::line_column(source, offset);
        EmailHtmlError { line: Some(line), column: Some(column), message: message.into() }
    }
}

/// What the catalogue does to every rendered HTML email: MJML compiled when the part is
/// MJML, then CSS inlined.
pub fn finish_html(html: &str, mjml: bool) -> Result<String, EmailHtmlError> {
    finish_html_of("", html, mjml)
}

/// [`finish_html`] for an email of `template`: a template whose shape changes with
/// every email stops using the shape cache without slowing the others (`render::inline`).
pub fn finish_html_of(template: &str, html: &str, mjml: bool) -> Result<String, EmailHtmlError> {
    if mjml {
        // The same shape as an email before: its HTML filled in, inlined too when the
        // inlining does not read what is filled in (see `render::mjml_shape`).
        super::mjml_shape::SHAPES.finish(
            html,
            template,
            mjml_to_html,
            |compiled| inline_css_of(template, compiled),
            |compiled| inline_css_patched(template, compiled),
        )
    } else {
        inline_css_of(template, html)
    }
}

// ---------------------------------------------------------------- MJML

/// Every element mrml knows; anything else named `mj-*` is a typo that mrml would pass
/// through as an unknown HTML tag.
const MJML_ELEMENTS: &[&str] = &[
    mrml::mjml::NAME,
    mrml::mj_head::NAME,
    mrml::mj_body::NAME,
    mrml::mj_attributes::NAME,
    mrml::mj_attributes_all::NAME,
    mrml::mj_attributes_class::NAME,
    mrml::mj_breakpoint::NAME,
    mrml::mj_font::NAME,
    mrml::mj_preview::NAME,
    mrml::mj_style::NAME,
    mrml::mj_title::NAME,
    mrml::mj_include::NAME,
    mrml::mj_raw::NAME,
    mrml::mj_accordion::NAME,
    mrml::mj_accordion_element::NAME,
    mrml::mj_accordion_text::NAME,
    mrml::mj_accordion_title::NAME,
    mrml::mj_button::NAME,
    mrml::mj_carousel::NAME,
    mrml::mj_carousel_image::NAME,
    mrml::mj_column::NAME,
    mrml::mj_divider::NAME,
    mrml::mj_group::NAME,
    mrml::mj_hero::NAME,
    mrml::mj_image::NAME,
    mrml::mj_navbar::NAME,
    mrml::mj_navbar_link::NAME,
    mrml::mj_section::NAME,
    mrml::mj_social::NAME,
    mrml::mj_social_element::NAME,
    mrml::mj_spacer::NAME,
    mrml::mj_table::NAME,
    mrml::mj_text::NAME,
    mrml::mj_wrapper::NAME,
];

/// MJML's defaults but its web-font table: naming "Roboto" or "Open Sans" in a
/// `font-family` would otherwise add a Google Fonts stylesheet that every reader's
/// client fetches. A web font is one `<mj-font>` away. Built once.
fn render_options() -> &'static RenderOptions {
    static OPTIONS: OnceLock<RenderOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| RenderOptions { fonts: Default::default(), ..RenderOptions::default() })
}

/// Compiles MJML (already rendered by Handlebars) to an HTML document.
pub fn mjml_to_html(mjml: &str) -> Result<String, EmailHtmlError> {
    check_elements(mjml)?;
    // The default include loader resolves nothing: `mj-include` fails, no file or URL is read.
    let parsed = mrml::parse_with_options(mjml, &ParserOptions::default()).map_err(|e| parse_error(mjml, &e))?;
    parsed.element.render(render_options()).map_err(|_| EmailHtmlError::new("the MJML could not be rendered to HTML"))
}

/// What mrml lets through or cannot place: an `mj-*` name it does not know (it would
/// become an HTML tag) and an element left unclosed (mrml does not compare end tag
/// names, so it either reports the end of the input without a position or builds a
/// shifted tree). Only `mjml` and `mj-*` tags count: the HTML inside `mj-text` and
/// `mj-raw` may be as loose as browsers allow.
fn check_elements(mjml: &str) -> Result<(), EmailHtmlError> {
    let name_at = |at: usize| {
        let rest = mjml.get(at..).unwrap_or("");
        let len = rest.bytes().take_while(|b| b.is_ascii_alphanumeric() || *b == b'-').count();
        &rest[..len]
    };
    let is_mjml = |name: &str| name == "mjml" || name.starts_with("mj-");
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut from = 0;
    while let Some(i) = mjml.get(from..).and_then(|rest| rest.find('<')) {
        let at = from + i;
        let rest = &mjml[at..];
        if rest.starts_with("<!--") {
            from = rest.find("-->").map_or(mjml.len(), |end| at + end + 3);
        } else if rest.starts_with("</") {
            let name = name_at(at + 2);
            if is_mjml(name) {
                match open.pop() {
                    Some((opened, _)) if opened == name => {}
                    Some((opened, opened_at)) if open.iter().any(|(n, _)| *n == name) => {
                        let (line, _) = super::line_column(mjml, at);
                        return Err(EmailHtmlError::at(
                            mjml,
                            opened_at,
                            format!("element `{opened}` is not closed (`</{name}>` on line {line} comes first)"),
                        ));
                    }
                    _ => {
                        return Err(EmailHtmlError::at(
                            mjml,
                            at,
                            format!("closing tag `</{name}>` without an opening tag"),
                        ));
                    }
                }
            }
            from = at + 2;
        } else {
            let name = name_at(at + 1);
            from = at + 1;
            if !is_mjml(name) {
                continue;
            }
            if !MJML_ELEMENTS.contains(&name) {
                return Err(EmailHtmlError::at(mjml, at, format!("unknown MJML element `{name}`")));
            }
            let Some(end) = tag_end(mjml, at + 1 + name.len()) else {
                return Err(EmailHtmlError::at(mjml, at, format!("tag `<{name}` has no closing `>`")));
            };
            if mjml.as_bytes()[end - 1] != b'/' {
                open.push((name, at));
            }
            from = end + 1;
        }
    }
    match open.pop() {
        Some((name, at)) => Err(EmailHtmlError::at(mjml, at, format!("element `{name}` is never closed"))),
        None => Ok(()),
    }
}

/// The `>` ending the tag whose attributes start at `from` (quoted values may hold `>`).
fn tag_end(source: &str, from: usize) -> Option<usize> {
    let mut quote = None;
    let i = source.as_bytes().get(from..)?.iter().position(|&b| match quote {
        Some(q) => {
            if b == q {
                quote = None;
            }
            false
        }
        None if b == b'"' || b == b'\'' => {
            quote = Some(b);
            false
        }
        None => b == b'>',
    })?;
    Some(from + i)
}

/// Turns mrml's error into an author's message. mrml points at a token: only the tag
/// or attribute name at its start is quoted, never text (it may be personal data).
fn parse_error(source: &str, error: &MjmlError) -> EmailHtmlError {
    let at = |span: &Span, message: String| {
        // A name's span starts after its `<`: point at the tag.
        let start = if span.start > 0 && source.as_bytes().get(span.start - 1) == Some(&b'<') {
            span.start - 1
        } else {
            span.start
        };
        EmailHtmlError::at(source, start, message)
    };
    let token = |span: &Span| source.get(span.start..).map_or(Markup::Other, Markup::at);
    match error {
        // mrml points at the element's name here: quoted when it is one.
        MjmlError::UnexpectedElement { position, .. } => match source.get(position.start..position.end) {
            Some(name) if is_name(name) => at(position, format!("element `{name}` is not allowed here")),
            _ => at(position, "unexpected element".into()),
        },
        MjmlError::UnexpectedToken { position, .. }
            if source.get(..position.start).is_some_and(|s| s.trim().is_empty()) =>
        {
            at(position, "the MJML must start with `<mjml>`".into())
        }
        MjmlError::UnexpectedToken { position, .. } => {
            let message = match token(position) {
                Markup::End(name) => {
                    format!("unexpected closing tag `</{name}>`: is an element opened before it left unclosed?")
                }
                Markup::Start(name) => format!("element `{name}` is not allowed here"),
                Markup::Text => "unexpected text here: this element takes only elements".into(),
                Markup::Other => "unexpected markup here".into(),
            };
            at(position, message)
        }
        MjmlError::MissingAttribute { name, position, .. } => {
            let element = match token(position) {
                Markup::Start(element) => format!("element `{element}`"),
                _ => "this element".into(),
            };
            at(position, format!("{element} needs a `{name}` attribute"))
        }
        MjmlError::InvalidAttribute { position, .. } => match source.get(position.start..).and_then(leading_name) {
            Some(name) => at(position, format!("attribute `{name}` is not valid here")),
            None => at(position, "invalid attribute".into()),
        },
        MjmlError::InvalidFormat { position, .. } => at(position, "invalid value or format".into()),
        MjmlError::EndOfStream { .. } => EmailHtmlError::new(
            "the MJML ends inside an element: a tag is left unclosed (or a closing tag is misspelt)",
        ),
        MjmlError::SizeLimit { .. } => EmailHtmlError::new("the MJML is larger than 4 GiB"),
        MjmlError::NoRootNode => EmailHtmlError::new("no `<mjml>` root element"),
        MjmlError::IncludeLoaderError { position, .. } => at(
            position,
            "`mj-include` is not supported: share markup with a Handlebars partial (`{{> name}}`) instead".into(),
        ),
        MjmlError::ParserError { source: e, .. } => {
            // htmlparser's own text quotes the offending character: keep only its kind.
            let text = e.to_string();
            let what = if text.starts_with("invalid attribute") {
                "malformed attribute (a value without quotes, or a stray `=`?)"
            } else if text.starts_with("invalid element") {
                "malformed tag (a `<` in text should be written `&lt;`)"
            } else if text.starts_with("invalid comment") || text.starts_with("invalid conditional comment") {
                "malformed comment"
            } else {
                "malformed markup (a `<` in text should be written `&lt;`)"
            };
            let pos = e.pos();
            EmailHtmlError {
                line: usize::try_from(pos.row).ok(),
                column: usize::try_from(pos.col).ok(),
                message: what.into(),
            }
        }
    }
}

/// What a token starts with, by name only.
enum Markup<'a> {
    Start(&'a str),
    End(&'a str),
    Text,
    Other,
}

impl<'a> Markup<'a> {
    fn at(s: &'a str) -> Self {
        if let Some(rest) = s.strip_prefix("</") {
            leading_name(rest).map_or(Markup::Other, Markup::End)
        } else if let Some(rest) = s.strip_prefix('<') {
            leading_name(rest).map_or(Markup::Other, Markup::Start)
        } else {
            Markup::Text
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':')
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_name_byte)
}

/// The tag or attribute name `s` starts with.
fn leading_name(s: &str) -> Option<&str> {
    let len = s.bytes().take_while(|&b| is_name_byte(b)).count();
    (len > 0).then(|| &s[..len])
}

// ---------------------------------------------------------------- CSS

/// Built once: the options are the same for every email.
pub(super) fn inliner() -> &'static CSSInliner<'static> {
    static INLINER: OnceLock<CSSInliner<'static>> = OnceLock::new();
    INLINER.get_or_init(|| {
        CSSInliner::options()
            // `<link rel="stylesheet">` stays as written and is never fetched.
            .load_remote_stylesheets(false)
            .keep_link_tags(true)
            // What cannot live in a `style` attribute (`@media`, `@font-face`, `:hover`,
            // selectors matching nothing yet) stays in its `<style>` block; what was
            // inlined leaves it.
            .keep_at_rules(true)
            .remove_inlined_selectors(true)
            .build()
    })
}

/// Inlines the rules of the document's `<style>` blocks into `style` attributes. A
/// declaration already in an element's `style` wins over the stylesheet's unless the
/// stylesheet's is `!important`, as in a browser. `<style data-css-inline="ignore">`
/// keeps a block out of inlining.
pub fn inline_css(html: &str) -> Result<String, EmailHtmlError> {
    inline_css_of("", html)
}

/// [`inline_css`] for an email of `template`.
pub fn inline_css_of(template: &str, html: &str) -> Result<String, EmailHtmlError> {
    // Nothing to inline: the HTML stays byte for byte (no parse, no re-serialisation).
    // The same shape as an email before: its patch, no parse (see `render::inline`).
    match inline_css_patched(template, html) {
        Some(inlined) => Ok(inlined),
        None => inline_fresh(html),
    }
}

/// [`inline_css_of`] when the result is `html` as written with the styles of its
/// shape's patch (or `html` itself, with nothing to inline): `None` when css-inline
/// would write the document instead.
pub(super) fn inline_css_patched(template: &str, html: &str) -> Option<String> {
    if !has_style_block(html) {
        return Some(html.to_owned());
    }
    super::inline::inline_by_shape(html, template, |marked| inliner().inline(marked).ok())
}

/// Forgets the MJML compilation and the CSS inlining of every document shape seen so
/// far, so that the next email pays for mrml and css-inline again (benchmarks measure
/// that first email).
pub fn forget_shapes() {
    super::mjml_shape::SHAPES.forget();
    super::inline::forget();
}

/// css-inline on the whole document.
pub(super) fn inline_fresh(html: &str) -> Result<String, EmailHtmlError> {
    let mut inlined = inliner().inline(html).map_err(|e| {
        EmailHtmlError::new(match e {
            InlineError::ParseError(_) => "a `<style>` block could not be parsed",
            InlineError::MissingStyleSheet { .. } => "a stylesheet could not be loaded",
            InlineError::IO(_) => "the inlined HTML could not be written",
        })
    })?;
    // The serialiser writes `<!DOCTYPE html>` whatever the document said; an XHTML
    // doctype keeps clients in "almost standards" mode (no gap under images in cells).
    if let (Some(original), Some(written)) = (leading_doctype(html), leading_doctype(&inlined))
        && original != written
        && inlined.starts_with(written)
    {
        inlined.replace_range(..written.len(), original);
    }
    Ok(inlined)
}

/// The `<!DOCTYPE ...>` a document starts with, blank space aside.
fn leading_doctype(html: &str) -> Option<&str> {
    let rest = html.trim_start();
    let end = rest.find('>').filter(|_| rest.get(..9).is_some_and(|p| p.eq_ignore_ascii_case("<!doctype")))?;
    Some(&rest[..=end])
}

pub(super) fn has_style_block(html: &str) -> bool {
    html.match_indices('<')
        .any(|(i, _)| html.as_bytes().get(i + 1..i + 6).is_some_and(|n| n.eq_ignore_ascii_case(b"style")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::text::html_to_text;

    /// The shipped newsletter (templates/newsletter with examples/data/newsletter.json), as
    /// an author would write it in MJML, after Handlebars.
    const NEWSLETTER: &str = r##"<mjml lang="en">
  <mj-head>
    <mj-title>This week at Acme</mj-title>
    <mj-preview>Three stories we think you&#x27;ll like.</mj-preview>
    <mj-attributes>
      <mj-all font-family="Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="24px" color="#18181b" />
      <mj-class name="muted" color="#71717a" font-size="12px" />
    </mj-attributes>
    <mj-style>
      .article h2 a { color: #18181b; text-decoration: none; }
      .footer a { color: #71717a; }
      @media only screen and (max-width: 480px) { .article h2 { font-size: 20px !important; } }
    </mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f5" width="600px">
    <mj-section background-color="#ffffff" padding="32px">
      <mj-column>
        <mj-text><h1>Hello Grace,</h1><p>Three stories we think you&#x27;ll like.</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 32px" css-class="article">
      <mj-column>
        <mj-text><h2><a href="https://blog.acme.example/pour-over">Brewing the perfect pour-over</a></h2></mj-text>
        <mj-image src="https://cdn.acme.example/pour-over.jpg" alt="A pour-over kettle" width="536px" />
        <mj-text><p>Grind size, water temperature &amp; timing.</p><p>#coffee #howto</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="0 32px" css-class="article">
      <mj-column>
        <mj-text><h2><a href="https://blog.acme.example/winter">Winter blend is back</a></h2><p>Notes of &lt;cocoa&gt; and orange.</p></mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="16px 32px 32px">
      <mj-column>
        <mj-button href="https://shop.acme.example/offer" background-color="#2563eb" color="#ffffff" border-radius="6px">Get 10% off</mj-button>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 32px" css-class="footer">
      <mj-column>
        <mj-text mj-class="muted">Acme · 1 Example Street, Springfield</mj-text>
        <mj-text mj-class="muted"><a href="https://example.invalid/unsubscribe/u1">Unsubscribe</a> from these emails.</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"##;

    /// The `<head>` of an HTML document, and the rest.
    fn head_and_body(html: &str) -> (&str, &str) {
        let end = html.find("</head>").expect("a head");
        html.split_at(end)
    }

    /// The start tag of the first element carrying `marker` (an attribute).
    fn tag_with<'a>(html: &'a str, marker: &str) -> &'a str {
        let at = html.find(marker).unwrap_or_else(|| panic!("{marker} in the HTML"));
        let start = html[..at].rfind('<').expect("tag start");
        let end = at + html[at..].find('>').expect("tag end");
        &html[start..=end]
    }

    #[test]
    fn mjml_newsletter_compiles_to_responsive_html() {
        let html = mjml_to_html(NEWSLETTER).expect("valid MJML");
        assert!(html.starts_with("<!doctype html>"), "{}", &html[..40]);
        assert!(html.contains(r#"<html lang="en""#));
        let (head, body) = head_and_body(&html);
        assert!(head.contains("<title>This week at Acme</title>"));
        // MJML's own responsive rules and the template's mj-style both land in the head.
        assert!(head.contains("@media only screen and (min-width:480px)"), "{head}");
        assert!(head.contains(".mj-column-per-100"));
        assert!(head.contains(".article h2 a { color: #18181b; text-decoration: none; }"));
        // mj-attributes: mj-all, mj-text defaults and mj-class reach the elements.
        assert!(body.contains("font-family:Helvetica, Arial, sans-serif;font-size:16px;line-height:24px"), "{body}");
        assert!(body.contains("font-size:12px;line-height:24px;text-align:left;color:#71717a;"));
        // The preview is hidden text at the top of the body.
        assert!(tag_with(body, "display:none").starts_with("<div"));
        // css-class puts the author's class on the section.
        assert!(tag_with(body, r#"class="article""#).starts_with("<div"));
        let button = tag_with(body, r#"href="https://shop.acme.example/offer""#);
        assert!(button.starts_with("<a ") && button.contains("background:#2563eb"), "{button}");
        let image = tag_with(body, r#"src="https://cdn.acme.example/pour-over.jpg""#);
        assert!(image.starts_with("<img ") && image.contains(r#"alt="A pour-over kettle""#), "{image}");
        assert!(body.contains("Notes of &lt;cocoa&gt; and orange."));
    }

    #[test]
    fn web_fonts_come_only_from_mj_font() {
        let mjml = |head: &str| {
            format!(
                "<mjml><mj-head>{head}<mj-attributes><mj-all font-family=\"Roboto, Brand, sans-serif\" />\
                 </mj-attributes></mj-head><mj-body><mj-section><mj-column><mj-text>Hi</mj-text></mj-column>\
                 </mj-section></mj-body></mjml>"
            )
        };
        let html = mjml_to_html(&mjml("")).expect("valid MJML");
        assert!(html.contains("font-family:Roboto, Brand, sans-serif"), "{html}");
        assert!(!html.contains("fonts.googleapis.com") && !html.contains("<link"), "{html}");
        let html =
            mjml_to_html(&mjml(r#"<mj-font name="Brand" href="https://cdn.acme.example/brand.css" />"#)).expect("MJML");
        let (head, _) = head_and_body(&html);
        assert!(head.contains(r#"<link href="https://cdn.acme.example/brand.css" rel="stylesheet" type="text/css">"#));
        assert!(!head.contains("fonts.googleapis.com"), "{head}");
    }

    #[test]
    fn finished_mjml_keeps_media_queries_and_inlines_the_rest() {
        let html = finish_html(NEWSLETTER, true).expect("valid MJML");
        let (head, body) = head_and_body(&html);
        // Media queries and selectors that match nothing stay in the head...
        assert!(head.contains("@media only screen and (min-width:480px)"), "{head}");
        assert!(
            head.contains("@media only screen and (max-width: 480px) { .article h2 { font-size: 20px !important; } }")
        );
        assert!(head.contains("#outlook a"));
        // ...rules that matched are inlined and leave the stylesheet.
        assert!(!head.contains(".article h2 a"), "{head}");
        let link = tag_with(body, r#"href="https://blog.acme.example/pour-over""#);
        assert!(link.contains("color: #18181b") && link.contains("text-decoration: none"), "{link}");
        let unsubscribe = tag_with(body, r#"href="https://example.invalid/unsubscribe/u1""#);
        assert!(unsubscribe.contains("color: #71717a"), "{unsubscribe}");
        // MJML's `p { margin: 13px 0 }` reset reaches every paragraph.
        assert!(tag_with(body, "Grind size").contains("margin: 13px 0"));

        let text = html_to_text(&html);
        assert!(text.starts_with("Hello Grace,\n============\n\nThree stories we think you'll like."), "{text}");
        assert_eq!(text.matches("Three stories").count(), 1, "the hidden preview stays out: {text}");
        for line in [
            "Brewing the perfect pour-over (https://blog.acme.example/pour-over)",
            "A pour-over kettle",
            "Notes of <cocoa> and orange.",
            "Get 10% off (https://shop.acme.example/offer)",
            "Unsubscribe (https://example.invalid/unsubscribe/u1) from these emails.",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
        }
    }

    #[test]
    fn broken_mjml_is_reported_with_its_position() {
        let doc = |body: &str| format!("<mjml>\n<mj-body>\n<mj-section>\n{body}\n</mj-section>\n</mj-body>\n</mjml>");
        let cases = [
            (doc("  <mj-colum>\n</mj-colum>"), 4, 3, "unknown MJML element `mj-colum`"),
            (
                doc("<mj-column>\n  <mj-text>Dear Grace\n</mj-column>"),
                5,
                3,
                "element `mj-text` is not closed (`</mj-column>` on line 6 comes first)",
            ),
            (doc("<mj-column>\n<mj-text>Dear Grace</mj-text>"), 4, 1, "element `mj-column` is not closed"),
            (
                "<mjml>\n<mj-body>\n  <mj-section>\n</mj-body>\n</mjml>".into(),
                3,
                3,
                "element `mj-section` is not closed",
            ),
            ("<mjml>\n  <mj-body>".into(), 2, 3, "element `mj-body` is never closed"),
            (doc("</mj-column>"), 4, 1, "closing tag `</mj-column>` without an opening tag"),
            ("<mjml>\n</mj-body>\n</mjml>".into(), 2, 1, "closing tag `</mj-body>` without an opening tag"),
            (doc("<mj-column><mj-image src=x.png /></mj-column>"), 4, 21, "malformed attribute"),
            (doc("<mj-column><mj-text>Dear Grace, 3 < 4</mj-text></mj-column>"), 4, 35, "malformed tag"),
            (
                "<mjml>\n  <mj-head><mj-text>Dear Grace</mj-text></mj-head>\n</mjml>".into(),
                2,
                12,
                "element `mj-text` is not allowed here",
            ),
            ("<mj-body>\n</mj-body>".into(), 1, 1, "the MJML must start with `<mjml>`"),
            (
                "<mjml>\n<mj-head>\n<mj-attributes>\n<mj-class color=\"red\" />\n</mj-attributes>\n</mj-head>\n</mjml>"
                    .into(),
                4,
                1,
                "needs a `name` attribute",
            ),
            // Positions count characters, not bytes.
            (
                "<mjml>\n<mj-body>Grüße, Zoë <mj-texte>x</mj-texte></mj-body>\n</mjml>".into(),
                2,
                21,
                "unknown MJML element `mj-texte`",
            ),
        ];
        for (mjml, line, column, message) in cases {
            let e = mjml_to_html(&mjml).expect_err(&mjml);
            assert_eq!((e.line, e.column), (Some(line), Some(column)), "{e} in\n{mjml}");
            assert!(e.message.contains(message), "{e} in\n{mjml}");
            // Rendered data never shows in the message.
            for data in ["Grace", "x.png", "Zoë"] {
                assert!(!e.to_string().contains(data), "{e}");
            }
        }
        let e = mjml_to_html("").expect_err("empty");
        assert_eq!(e.line, None);
        assert_eq!(e.to_string(), "no `<mjml>` root element");
        let e = mjml_to_html("<mjml>\n<mj-body>\n<mj-text>x").expect_err("unclosed");
        assert_eq!(e.to_string(), "line 3, column 1: element `mj-text` is never closed");
    }

    #[test]
    fn mj_include_is_refused_without_reading_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let part = dir.path().join("header.mjml");
        std::fs::write(&part, "<mj-section><mj-column><mj-text>Included</mj-text></mj-column></mj-section>")
            .expect("write");
        let css = dir.path().join("extra.css");
        std::fs::write(&css, ".x { color: red; }").expect("write");
        let includes = [
            format!("<mjml>\n<mj-body>\n  <mj-include path=\"{}\" />\n</mj-body>\n</mjml>", part.display()),
            format!("<mjml>\n<mj-head>\n  <mj-include path=\"{}\" type=\"css\" />\n</mj-head>\n</mjml>", css.display()),
            "<mjml>\n<mj-body>\n  <mj-include path=\"https://templates.example/header.mjml\" />\n</mj-body>\n</mjml>"
                .to_owned(),
        ];
        for mjml in includes {
            let e = mjml_to_html(&mjml).expect_err(&mjml);
            assert_eq!((e.line, e.column), (Some(3), Some(3)), "{e}");
            assert!(e.message.starts_with("`mj-include` is not supported"), "{e}");
            assert!(!e.message.contains("header.mjml") && !e.message.contains("extra.css"), "{e}");
        }
    }

    #[test]
    fn class_rules_are_inlined_and_what_cannot_be_stays_in_the_head() {
        let html = r#"<!DOCTYPE html>
<html><head>
<link rel="stylesheet" href="https://cdn.example/brand.css">
<link rel="stylesheet" href="/etc/herald/brand.css">
<style>
  .note { color: #333333; padding: 8px; }
  .alert { color: red !important; }
  a:hover { color: #ff0000; }
  @font-face { font-family: Brand; src: url(https://cdn.example/brand.woff2); }
  @media (max-width: 480px) { .note { padding: 4px !important; } }
</style>
</head><body>
<p class="note">Plain</p>
<p class="note" style="color: blue">Inline wins</p>
<p class="note alert" style="color: blue">Important wins</p>
<a href="https://a.example/">Link</a>
</body></html>"#;
        let out = inline_css(html).expect("inlined");
        let (head, body) = head_and_body(&out);
        assert_eq!(tag_with(body, ">Plain"), r#"<p class="note" style="color: #333333;padding: 8px;">"#);
        assert_eq!(tag_with(body, ">Inline wins"), r#"<p class="note" style="padding: 8px;color: blue">"#);
        assert_eq!(
            tag_with(body, ">Important wins"),
            r#"<p class="note alert" style="padding: 8px;color: red !important">"#
        );
        // What a style attribute cannot hold stays, in the head.
        assert!(head.contains("a:hover { color: #ff0000; }"), "{head}");
        assert!(head.contains("@font-face { font-family: Brand; src: url(https://cdn.example/brand.woff2); }"));
        assert!(head.contains("@media (max-width: 480px) { .note { padding: 4px !important; } }"));
        assert!(!head.contains(".note { color"), "inlined rules leave the stylesheet: {head}");
        // Stylesheet links are neither fetched nor read (either would fail: no HTTP, no file
        // loading in this build) and stay as written.
        assert!(head.contains(r#"<link rel="stylesheet" href="https://cdn.example/brand.css">"#));
        assert!(head.contains(r#"<link rel="stylesheet" href="/etc/herald/brand.css">"#));
    }

    #[test]
    fn the_documents_doctype_is_kept() {
        let xhtml = r#"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">"#;
        let html = format!(
            "\n  {xhtml}\n<html><head><style>td {{ padding: 0 }}</style></head><body><table><tr><td>x</td></tr></table></body></html>"
        );
        for out in [inline_css(&html).expect("inlined"), inline_fresh(&html).expect("inlined")] {
            assert!(out.trim_start().starts_with(xhtml), "{out}");
            assert!(out.contains(r#"<td style="padding: 0;">x</td>"#), "{out}");
        }
        let out = inline_css("<!doctype html><style>b { color: red }</style><b>x</b>").expect("inlined");
        assert!(out.starts_with("<!doctype html>"), "{out}");
        assert!(out.contains(r#"<b style="color: red;">x</b>"#), "{out}");
    }

    #[test]
    fn html_without_a_style_block_is_left_as_is() {
        let html = "<p>Hi&nbsp;<b>Grace</b><br/><img src=x alt=\"\"></p>";
        assert_eq!(inline_css(html).expect("no-op"), html);
        assert_eq!(finish_html(html, false).expect("no-op"), html);
        // `<STYLE>` in any case counts.
        let styled = inline_css("<STYLE>b { color: red }</STYLE><b>x</b>").expect("inlined");
        assert!(styled.contains(r#"<b style="color: red;">x</b>"#), "{styled}");
    }

    #[test]
    fn positions_are_one_based_characters() {
        let source = "ab\ncdé\nf";
        assert_eq!(crate::render::line_column(source, 0), (1, 1));
        assert_eq!(crate::render::line_column(source, 3), (2, 1));
        assert_eq!(crate::render::line_column(source, 7), (2, 4)); // after the 2-byte é
        assert_eq!(crate::render::line_column(source, 6), (2, 3)); // inside é: its start
        assert_eq!(crate::render::line_column(source, 99), (3, 2));
    }
}
