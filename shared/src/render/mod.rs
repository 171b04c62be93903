//! Templates: the catalogue on disk, the Handlebars engine and per-channel output.

mod blocks;
mod catalogue;
pub mod compat;
pub mod email;
pub mod engine;
mod helpers;
pub mod i18n;
mod inline;
pub mod intl;
mod memo;
mod mjml_shape;
mod mustache;
mod scan;
pub mod sms;
pub mod text;

use std::collections::BTreeMap;
use std::fmt;

pub use catalogue::{
    Catalogue, CatalogueError, LookupError, PartSource, RenderErrorOrLookup, SourceFiles, TemplateInfo, read_tree,
};
pub use i18n::{Message, StringFile, Strings};

use crate::request::Channel;

/// What a template produced for one channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Email { subject: String, html: String, text: String },
    Sms { body: String },
    Push { title: String, body: String, data: BTreeMap<String, String> },
}

impl Rendered {
    pub fn channel(&self) -> Channel {
        match self {
            Rendered::Email { .. } => Channel::Email,
            Rendered::Sms { .. } => Channel::Sms,
            Rendered::Push { .. } => Channel::Push,
        }
    }
}

/// A template that could not be rendered with the given data. Permanent: the same
/// data will fail the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub template: String,
    pub part: String,
    pub locale: Option<String>,
    pub message: String,
    /// The partial the error is in, when it is in one.
    pub source: Option<String>,
    /// 1-based position in the part (or the partial), when handlebars knows it.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl RenderError {
    /// `render_error:<template>:<part>`.
    pub fn reason(&self) -> String {
        format!("render_error:{}:{}", self.template, self.part)
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template `{}`, part `{}`", self.template, self.part)?;
        if let Some(l) = &self.locale {
            write!(f, " (locale {l})")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RenderError {}

/// `text` safe between tags and inside a double-quoted attribute: for pages herald
/// writes itself (the inbound function's, `herald preview`'s). Templates escape with
/// `engine::html_escape`, handlebars.js's set of characters.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// 1-based line and column (in characters) of byte `offset` in `source`; an offset
/// inside a character counts from that character.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// The starter kit (`templates/`) and every template's fixtures, as (name, template,
/// data), for the tests that go through each kit email.
#[cfg(test)]
pub(crate) fn kit_fixtures() -> (Catalogue, Vec<(String, crate::request::TemplateRef, serde_json::Value)>) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    let catalogue = Catalogue::load(&root).expect("the kit loads");
    let mut fixtures = Vec::new();
    for name in catalogue.names().map(str::to_owned).collect::<Vec<_>>() {
        let template: crate::request::TemplateRef = serde_json::from_value(serde_json::json!(name)).expect("name");
        let Ok(files) = std::fs::read_dir(root.join(&name).join("fixtures")) else { continue };
        for file in files {
            let text = std::fs::read_to_string(file.expect("entry").path()).expect("fixture");
            fixtures.push((name.clone(), template.clone(), serde_json::from_str(&text).expect("JSON")));
        }
    }
    (catalogue, fixtures)
}
