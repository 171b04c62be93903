//! The template catalogue: `templates/<name>/` folders compiled once per process.
//!
//! ```text
//! templates/
//!   _partials/footer.hbs          -> {{> footer}}
//!   _partials/layouts/email.hbs   -> {{#> layouts/email}}...{{/layouts/email}}
//!   order-confirmation/
//!     template.toml               optional: version, description
//!     email.subject.hbs  email.html.hbs  [email.text.hbs]
//!     sms.hbs  push.title.hbs  push.body.hbs  [push.data.json.hbs]
//!     fr/email.subject.hbs ...    a locale overrides whole channels
//!     fr-CA/...
//! ```
//! A locale folder is chosen per channel: `fr-CA/` if it has the channel's parts,
//! else `fr/`, else the template's root. Parts are never mixed across folders, so a
//! French subject never travels with an English body.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;
use serde::Deserialize;
use serde_json::Value;

use super::engine::{self, Escape};
use super::{RenderError, Rendered};
use crate::request::{Channel, Locale, TemplateRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Part {
    EmailSubject,
    EmailHtml,
    EmailText,
    Sms,
    PushTitle,
    PushBody,
    PushData,
}

impl Part {
    const ALL: [Part; 7] = [
        Part::EmailSubject,
        Part::EmailHtml,
        Part::EmailText,
        Part::Sms,
        Part::PushTitle,
        Part::PushBody,
        Part::PushData,
    ];

    fn file_name(self) -> &'static str {
        match self {
            Part::EmailSubject => "email.subject.hbs",
            Part::EmailHtml => "email.html.hbs",
            Part::EmailText => "email.text.hbs",
            Part::Sms => "sms.hbs",
            Part::PushTitle => "push.title.hbs",
            Part::PushBody => "push.body.hbs",
            Part::PushData => "push.data.json.hbs",
        }
    }

    fn label(self) -> &'static str {
        self.file_name().trim_end_matches(".hbs")
    }

    fn escape(self) -> Escape {
        match self {
            Part::EmailHtml => Escape::Html,
            Part::PushData => Escape::Json,
            _ => Escape::None,
        }
    }

    fn channel(self) -> Channel {
        match self {
            Part::EmailSubject | Part::EmailHtml | Part::EmailText => Channel::Email,
            Part::Sms => Channel::Sms,
            Part::PushTitle | Part::PushBody | Part::PushData => Channel::Push,
        }
    }

    /// The parts a folder must have to provide a channel.
    fn required(channel: Channel) -> &'static [Part] {
        match channel {
            Channel::Email => &[Part::EmailSubject, Part::EmailHtml],
            Channel::Sms => &[Part::Sms],
            Channel::Push => &[Part::PushBody],
        }
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Clone)]
struct Variant {
    /// None: the template's root folder (the default locale).
    locale: Option<Locale>,
    parts: BTreeSet<Part>,
}

#[derive(Debug, Clone)]
struct Entry {
    version: Option<String>,
    description: Option<String>,
    /// Root first, then locale folders.
    variants: Vec<Variant>,
}

/// Public facts about a template, for `herald templates` and validation messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub channels: Vec<Channel>,
    pub locales: Vec<String>,
}

/// The catalogue could not be loaded: a template author's mistake, reported with
/// the file to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct CatalogueError {
    pub path: String,
    pub message: String,
}

fn cat_err(path: &Path, message: impl Into<String>) -> CatalogueError {
    CatalogueError { path: path.display().to_string(), message: message.into() }
}

/// A request names a template the catalogue cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    Unknown { name: String, suggestion: Option<String> },
    Version { name: String, wanted: String, have: Option<String> },
    Channel { name: String, channel: Channel, locale: Option<String> },
}

impl LookupError {
    pub fn reason(&self) -> String {
        match self {
            LookupError::Unknown { name, .. } => format!("unknown_template:{name}"),
            LookupError::Version { name, wanted, .. } => format!("unknown_template_version:{name}@{wanted}"),
            LookupError::Channel { name, channel, .. } => format!("template_missing_channel:{name}:{channel}"),
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Unknown { name, suggestion } => {
                write!(f, "no template named `{name}` in the catalogue")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean `{s}`?)")?;
                }
                Ok(())
            }
            LookupError::Version { name, wanted, have } => match have {
                Some(h) => write!(f, "template `{name}` is version {h}, the request asks for version {wanted}"),
                None => write!(f, "template `{name}` has no version, the request asks for version {wanted}"),
            },
            LookupError::Channel { name, channel, locale } => {
                write!(f, "template `{name}` has no {channel} parts")?;
                if let Some(l) = locale {
                    write!(f, " for locale {l} or its fallbacks")?;
                }
                let needed: Vec<&str> = Part::required(*channel).iter().map(|p| p.file_name()).collect();
                write!(f, " (needs {})", needed.join(" and "))
            }
        }
    }
}

impl std::error::Error for LookupError {}

pub struct Catalogue {
    entries: BTreeMap<String, Entry>,
    html: Handlebars<'static>,
    plain: Handlebars<'static>,
    json: Handlebars<'static>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue").field("templates", &self.entries.keys().collect::<Vec<_>>()).finish()
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        Catalogue {
            entries: BTreeMap::new(),
            html: engine::registry(Escape::Html),
            plain: engine::registry(Escape::None),
            json: engine::registry(Escape::Json),
        }
    }
}

fn registry_key(name: &str, locale: Option<&Locale>, part: Part) -> String {
    format!("{name}/{}/{}", locale.map_or("_", |l| l.as_str()), part.label())
}

fn read(path: &Path) -> Result<String, CatalogueError> {
    std::fs::read_to_string(path).map_err(|e| cat_err(path, format!("cannot read: {e}")))
}

impl Catalogue {
    /// Loads every template under `dir` (and its `_partials/`), compiling each once.
    pub fn load(dir: &Path) -> Result<Self, CatalogueError> {
        let mut cat = Catalogue::default();
        let listing =
            std::fs::read_dir(dir).map_err(|e| cat_err(dir, format!("cannot read the template folder: {e}")))?;
        let partials = dir.join("_partials");
        if partials.is_dir() {
            cat.load_partials(&partials)?;
        }
        let mut folders: Vec<PathBuf> = listing
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with(['_', '.'])))
            .collect();
        folders.sort();
        for folder in folders {
            cat.add_template_dir(&folder)?;
        }
        Ok(cat)
    }

    fn load_partials(&mut self, root: &Path) -> Result<(), CatalogueError> {
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let entries = std::fs::read_dir(&dir).map_err(|e| cat_err(&dir, format!("cannot read: {e}")))?;
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let Some(rel) = path.strip_prefix(root).ok().and_then(|p| p.to_str()) else { continue };
                let Some(name) = rel.strip_suffix(".hbs") else { continue };
                let name = name.replace('\\', "/");
                let source = read(&path)?;
                for reg in [&mut self.html, &mut self.plain, &mut self.json] {
                    reg.register_partial(&name, &source)
                        .map_err(|e| cat_err(&path, format!("partial does not compile: {e}")))?;
                }
            }
        }
        Ok(())
    }

    /// Adds one template folder; its folder name is its name. Returns the name.
    pub fn add_template_dir(&mut self, folder: &Path) -> Result<String, CatalogueError> {
        let dir_name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| cat_err(folder, "template folder name is not UTF-8"))?;
        let name = crate::request::TemplateName::parse(dir_name).map_err(|e| cat_err(folder, e))?.to_string();
        let manifest_path = folder.join("template.toml");
        let manifest: Manifest = if manifest_path.is_file() {
            toml::from_str(&read(&manifest_path)?).map_err(|e| cat_err(&manifest_path, e.to_string()))?
        } else {
            Manifest::default()
        };
        let mut variants = vec![self.load_variant(&name, folder, None)?];
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(folder)
            .map_err(|e| cat_err(folder, format!("cannot read: {e}")))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            let tag = sub.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let locale = Locale::parse(tag).map_err(|_| {
                cat_err(&sub, "a folder inside a template must be named after a locale (`fr`, `fr-CA`)")
            })?;
            if variants.iter().any(|v| v.locale.as_ref() == Some(&locale)) {
                return Err(cat_err(&sub, format!("locale {locale} is defined twice")));
            }
            variants.push(self.load_variant(&name, &sub, Some(locale))?);
        }
        if variants.iter().all(|v| v.parts.is_empty()) {
            return Err(cat_err(
                folder,
                "template has no parts (email.subject.hbs, email.html.hbs, sms.hbs, push.body.hbs...)",
            ));
        }
        self.entries
            .insert(name.clone(), Entry { version: manifest.version, description: manifest.description, variants });
        Ok(name)
    }

    fn load_variant(&mut self, name: &str, dir: &Path, locale: Option<Locale>) -> Result<Variant, CatalogueError> {
        let mut parts = BTreeSet::new();
        let files = std::fs::read_dir(dir).map_err(|e| cat_err(dir, format!("cannot read: {e}")))?;
        for file in files.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()) {
            let file_name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if file_name == "template.toml" && locale.is_none() || file_name.starts_with('.') {
                continue;
            }
            let part = Part::ALL.into_iter().find(|p| p.file_name() == file_name).ok_or_else(|| {
                let known: Vec<&str> = Part::ALL.iter().map(|p| p.file_name()).collect();
                cat_err(&file, format!("unknown template part; expected one of {}", known.join(", ")))
            })?;
            let source = read(&file)?;
            let registry = match part.escape() {
                Escape::Html => &mut self.html,
                Escape::None => &mut self.plain,
                Escape::Json => &mut self.json,
            };
            registry
                .register_template_string(&registry_key(name, locale.as_ref(), part), &source)
                .map_err(|e| cat_err(&file, format!("does not compile: {e}")))?;
            parts.insert(part);
        }
        for channel in Channel::ALL {
            let has_any = parts.iter().any(|p| p.channel() == channel);
            let missing: Vec<&str> =
                Part::required(channel).iter().filter(|p| !parts.contains(p)).map(|p| p.file_name()).collect();
            if has_any && !missing.is_empty() {
                return Err(cat_err(dir, format!("{channel} parts are incomplete: {} missing", missing.join(", "))));
            }
        }
        Ok(Variant { locale, parts })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn info(&self, name: &str) -> Option<TemplateInfo> {
        let e = self.entries.get(name)?;
        let channels = Channel::ALL
            .into_iter()
            .filter(|c| e.variants.iter().any(|v| Part::required(*c).iter().all(|p| v.parts.contains(p))))
            .collect();
        Some(TemplateInfo {
            name: name.to_owned(),
            version: e.version.clone(),
            description: e.description.clone(),
            channels,
            locales: e.variants.iter().filter_map(|v| v.locale.as_ref().map(|l| l.to_string())).collect(),
        })
    }

    /// The folder serving `channel` for `locale`, after fallback.
    fn variant(
        &self,
        template: &TemplateRef,
        channel: Channel,
        locale: Option<&Locale>,
    ) -> Result<&Variant, LookupError> {
        let name = template.name.as_str();
        let entry = self.entries.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.entries.keys().map(String::as_str).collect();
            LookupError::Unknown {
                name: name.to_owned(),
                suggestion: crate::request::error::closest(name, &known).map(str::to_owned),
            }
        })?;
        if let Some(wanted) = &template.version
            && entry.version.as_ref() != Some(wanted)
        {
            return Err(LookupError::Version {
                name: name.to_owned(),
                wanted: wanted.clone(),
                have: entry.version.clone(),
            });
        }
        let serves = |v: &&Variant| Part::required(channel).iter().all(|p| v.parts.contains(p));
        let by_locale = locale.into_iter().flat_map(|l| l.fallbacks()).find_map(|tag| {
            entry
                .variants
                .iter()
                .filter(|v| v.locale.as_ref().is_some_and(|l| l.as_str().eq_ignore_ascii_case(tag)))
                .find(serves)
        });
        by_locale.or_else(|| entry.variants.iter().filter(|v| v.locale.is_none()).find(serves)).ok_or_else(|| {
            LookupError::Channel { name: name.to_owned(), channel, locale: locale.map(|l| l.to_string()) }
        })
    }

    /// Whether the catalogue can serve this template on this channel at all.
    pub fn check(&self, template: &TemplateRef, channel: Channel, locale: Option<&Locale>) -> Result<(), LookupError> {
        self.variant(template, channel, locale).map(|_| ())
    }

    /// Renders every part of `channel`. `context` is the full template context
    /// (request data plus the reserved `herald` object).
    pub fn render(
        &self,
        template: &TemplateRef,
        channel: Channel,
        locale: Option<&Locale>,
        context: &Value,
    ) -> Result<Rendered, RenderErrorOrLookup> {
        let variant = self.variant(template, channel, locale).map_err(RenderErrorOrLookup::Lookup)?;
        let name = template.name.as_str();
        let ctx = handlebars::Context::wraps(context).map_err(|e| {
            RenderErrorOrLookup::Render(RenderError {
                template: name.to_owned(),
                part: "context".into(),
                locale: None,
                message: e.to_string(),
            })
        })?;
        let render = |part: Part| -> Result<Option<String>, RenderError> {
            if !variant.parts.contains(&part) {
                return Ok(None);
            }
            let registry = match part.escape() {
                Escape::Html => &self.html,
                Escape::None => &self.plain,
                Escape::Json => &self.json,
            };
            registry
                .render_with_context(&registry_key(name, variant.locale.as_ref(), part), &ctx)
                .map(Some)
                .map_err(|e| describe(name, part, variant.locale.as_ref(), &e))
        };
        let fail = |part: Part, message: &str| RenderError {
            template: name.to_owned(),
            part: part.label().to_owned(),
            locale: variant.locale.as_ref().map(|l| l.to_string()),
            message: message.to_owned(),
        };
        let out = match channel {
            Channel::Email => {
                let subject = single_line(&render(Part::EmailSubject)?.unwrap_or_default());
                if subject.is_empty() {
                    return Err(fail(Part::EmailSubject, "the subject rendered empty").into());
                }
                let html = render(Part::EmailHtml)?.unwrap_or_default();
                let text = match render(Part::EmailText)? {
                    Some(t) => t.trim().to_owned() + "\n",
                    None => super::text::html_to_text(&html),
                };
                Rendered::Email { subject, html, text }
            }
            Channel::Sms => {
                let body = render(Part::Sms)?.unwrap_or_default().trim().to_owned();
                if body.is_empty() {
                    return Err(fail(Part::Sms, "the message rendered empty").into());
                }
                Rendered::Sms { body }
            }
            Channel::Push => {
                let title = single_line(&render(Part::PushTitle)?.unwrap_or_default());
                let body = render(Part::PushBody)?.unwrap_or_default().trim().to_owned();
                if body.is_empty() {
                    return Err(fail(Part::PushBody, "the notification body rendered empty").into());
                }
                let data = match render(Part::PushData)? {
                    Some(json) => push_data(&json).map_err(|m| fail(Part::PushData, &m))?,
                    None => BTreeMap::new(),
                };
                Rendered::Push { title, body, data }
            }
        };
        Ok(out)
    }
}

/// Either failure of [`Catalogue::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderErrorOrLookup {
    Lookup(LookupError),
    Render(RenderError),
}

impl From<RenderError> for RenderErrorOrLookup {
    fn from(e: RenderError) -> Self {
        RenderErrorOrLookup::Render(e)
    }
}

/// Headers and notification titles are one line: fold line breaks (no header
/// injection through data) and surrounding space.
fn single_line(s: &str) -> String {
    s.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Push data is a flat object of strings (FCM's rule); other scalars are stringified.
fn push_data(json: &str) -> Result<BTreeMap<String, String>, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("did not render to valid JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("must render to a JSON object".into());
    };
    map.into_iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                Value::Bool(_) | Value::Number(_) => v.to_string(),
                Value::Array(_) | Value::Object(_) => {
                    return Err(format!("value of `{k}` must be a string, number or boolean"));
                }
            };
            Ok((k, s))
        })
        .collect()
}

fn describe(name: &str, part: Part, locale: Option<&Locale>, e: &handlebars::RenderError) -> RenderError {
    use handlebars::RenderErrorReason as R;
    let message = match e.reason() {
        R::MissingVariable(Some(var)) => format!(
            "the data has no `{var}` (use {{{{default {var} \"...\"}}}} or {{{{#if {var}}}}} if it is optional)"
        ),
        R::MissingVariable(None) => "a variable the template prints is missing from the data".to_owned(),
        other => other.to_string(),
    };
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    };
    RenderError {
        template: name.to_owned(),
        part: part.label().to_owned(),
        locale: locale.map(|l| l.to_string()),
        message: format!("{message}{at}"),
    }
}
