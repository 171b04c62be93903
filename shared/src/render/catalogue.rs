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
use std::path::Path;

use handlebars::Handlebars;
use serde::Deserialize;
use serde_json::Value;

use super::engine::{self, Escape};
use super::i18n::{self, StringFile};
use super::{RenderError, Rendered};
use crate::request::{Channel, Locale, TemplateRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Part {
    EmailSubject,
    EmailHtml,
    EmailMjml,
    EmailText,
    Sms,
    PushTitle,
    PushBody,
    PushData,
}

impl Part {
    const ALL: [Part; 8] = [
        Part::EmailSubject,
        Part::EmailHtml,
        Part::EmailMjml,
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
            Part::EmailMjml => "email.mjml.hbs",
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
            Part::EmailHtml | Part::EmailMjml => Escape::Html,
            Part::PushData => Escape::Json,
            _ => Escape::None,
        }
    }

    fn channel(self) -> Channel {
        match self {
            Part::EmailSubject | Part::EmailHtml | Part::EmailMjml | Part::EmailText => Channel::Email,
            Part::Sms => Channel::Sms,
            Part::PushTitle | Part::PushBody | Part::PushData => Channel::Push,
        }
    }

    /// The parts a folder must have to provide a channel; an email's body is either
    /// HTML or MJML.
    fn required(channel: Channel) -> &'static [&'static [Part]] {
        match channel {
            Channel::Email => &[&[Part::EmailSubject], &[Part::EmailHtml, Part::EmailMjml]],
            Channel::Sms => &[&[Part::Sms]],
            Channel::Push => &[&[Part::PushBody]],
        }
    }

    /// Whether `parts` provide `channel`.
    fn serves(parts: &BTreeSet<Part>, channel: Channel) -> bool {
        Part::required(channel).iter().all(|any| any.iter().any(|p| parts.contains(p)))
    }

    /// The required parts `parts` lack for `channel`, as file names.
    fn missing(parts: &BTreeSet<Part>, channel: Channel) -> Vec<String> {
        Part::required(channel)
            .iter()
            .filter(|any| !any.iter().any(|p| parts.contains(p)))
            .map(|any| any.iter().map(|p| p.file_name()).collect::<Vec<_>>().join(" or "))
            .collect()
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    description: Option<String>,
    /// The category the template is written for; a marketing email must carry the
    /// unsubscribe link (`herald templates check`).
    #[serde(default)]
    category: Option<String>,
    /// The locale of the root folder and the last step of the translation fallback.
    #[serde(default)]
    default_locale: Option<String>,
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
    category: Option<crate::request::Category>,
    default_locale: Option<Locale>,
    /// Where the template's files are, for messages (`templates/order-confirmation`).
    origin: String,
    /// Root first, then locale folders.
    variants: Vec<Variant>,
}

/// Public facts about a template, for `herald templates` and validation messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub default_locale: Option<String>,
    pub channels: Vec<Channel>,
    /// Every locale the template declares: its locale folders and string files.
    pub locales: Vec<String>,
    /// Where its files are (for messages).
    pub origin: String,
}

/// The catalogue could not be loaded: a template author's mistake, reported with
/// the file to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.location())]
pub struct CatalogueError {
    pub path: String,
    pub message: String,
    /// 1-based, where the file has a position for it.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl CatalogueError {
    /// `path:line:column`, as editors and CI annotations read it.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}", self.path),
            (Some(l), None) => format!("{}:{l}", self.path),
            _ => self.path.clone(),
        }
    }
}

fn cat_err(path: &Path, message: impl Into<String>) -> CatalogueError {
    CatalogueError { path: path.display().to_string(), message: message.into(), line: None, column: None }
}

/// A template that does not compile, at the line and column handlebars reports.
fn compile_err(origin: &str, rel: &str, what: &str, e: &handlebars::TemplateError) -> CatalogueError {
    let reason = match e.reason() {
        // pest's list of every token it expected says nothing useful to an author.
        handlebars::TemplateErrorReason::InvalidSyntax(_) => {
            "invalid syntax: a block left open (`{{#if}}` without `{{/if}}`) or a malformed tag at or before this \
             position"
                .to_owned()
        }
        other => other.to_string(),
    };
    let mut err = err_at(origin, rel, format!("{what} does not compile: {reason}"));
    if let Some((line, column)) = e.pos() {
        err.line = Some(line);
        err.column = Some(column);
    }
    err
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
                let needed = Part::missing(&BTreeSet::new(), *channel);
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
    /// The string files, read by the registries' `t` helpers.
    strings: i18n::SharedStrings,
    /// Partial name → file, for checks and messages.
    partials: BTreeMap<String, String>,
    /// The channels whose parts are compiled (None: all). A channel function renders
    /// its own channel only: compiling the others' parts was most of its cold start.
    only: Option<Vec<Channel>>,
}

/// A compiled template part, for static checks (`herald templates check`).
pub struct PartSource<'a> {
    /// The file, e.g. `templates/newsletter/fr/email.html.hbs`.
    pub file: String,
    pub channel: Channel,
    /// The locale folder it comes from (None: the template's root).
    pub locale: Option<&'a Locale>,
    pub template: &'a handlebars::template::Template,
    /// The registry it renders with (its helpers and partials).
    pub registry: &'a Handlebars<'static>,
}

impl fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Catalogue").field("templates", &self.entries.keys().collect::<Vec<_>>()).finish()
    }
}

impl Default for Catalogue {
    fn default() -> Self {
        let strings = i18n::SharedStrings::default();
        let registry = |escape: Escape| {
            let mut r = engine::registry(escape);
            r.register_helper("t", Box::new(i18n::TranslateHelper { strings: strings.clone(), escape }));
            r
        };
        Catalogue {
            entries: BTreeMap::new(),
            html: registry(Escape::Html),
            plain: registry(Escape::None),
            json: registry(Escape::Json),
            strings,
            partials: BTreeMap::new(),
            only: None,
        }
    }
}

fn registry_key(name: &str, locale: Option<&Locale>, part: Part) -> String {
    format!("{name}/{}/{}", locale.map_or("_", |l| l.as_str()), part.label())
}

/// Template files as (path relative to the catalogue root, with `/`, contents):
/// what a folder on disk or a set of files embedded in a binary provides.
pub type SourceFiles = Vec<(String, String)>;

/// Reads every file below `dir` (hidden files and folders skipped).
pub fn read_tree(dir: &Path) -> Result<SourceFiles, CatalogueError> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    // Folders by their real path: a symlink back up the tree is read once, not forever.
    let mut seen = std::collections::HashSet::new();
    while let Some(current) = stack.pop() {
        if !seen.insert(std::fs::canonicalize(&current).unwrap_or_else(|_| current.clone())) {
            continue;
        }
        // `<template>/fixtures/` is sample data (authoring::fixtures reads it), never sent.
        let rel = current.strip_prefix(dir).unwrap_or(&current);
        let in_template =
            rel.components().next().and_then(|c| c.as_os_str().to_str()).is_some_and(|n| !n.starts_with('_'));
        if rel.components().count() == 2 && in_template && current.file_name().is_some_and(|n| n == "fixtures") {
            continue;
        }
        let entries = std::fs::read_dir(&current).map_err(|e| cat_err(&current, format!("cannot read: {e}")))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).map_err(|_| cat_err(&path, "outside the template folder"))?;
            let rel = rel.to_str().ok_or_else(|| cat_err(&path, "file name is not UTF-8"))?.replace('\\', "/");
            let text = std::fs::read_to_string(&path).map_err(|e| cat_err(&path, format!("cannot read: {e}")))?;
            files.push((rel, text));
        }
    }
    files.sort();
    Ok(files)
}

fn err_at(origin: &str, rel: &str, message: impl Into<String>) -> CatalogueError {
    let path = if rel.is_empty() { origin.to_owned() } else { format!("{origin}/{rel}") };
    CatalogueError { path, message: message.into(), line: None, column: None }
}

impl Catalogue {
    /// Loads every template under `dir` (and its `_partials/`), compiling each once.
    pub fn load(dir: &Path) -> Result<Self, CatalogueError> {
        if !dir.is_dir() {
            return Err(cat_err(dir, "the template folder does not exist"));
        }
        Self::from_files(&dir.display().to_string(), read_tree(dir)?)
    }

    /// Builds a catalogue from files (e.g. embedded in a Lambda binary). `origin`
    /// prefixes the paths in error messages.
    pub fn from_files(origin: &str, files: SourceFiles) -> Result<Self, CatalogueError> {
        Self::from_files_with(origin, files, None)
    }

    /// [`Catalogue::from_files`] for a function that renders `channels` only: the other
    /// channels' parts are known (a lookup still says which channels a template has)
    /// but not compiled, and rendering them is an error. Partials are compiled once.
    pub fn from_files_for(origin: &str, files: SourceFiles, channels: &[Channel]) -> Result<Self, CatalogueError> {
        Self::from_files_with(origin, files, Some(channels.to_vec()))
    }

    /// [`Catalogue::load`] for a function that renders `channels` only.
    pub fn load_for(dir: &Path, channels: &[Channel]) -> Result<Self, CatalogueError> {
        if !dir.is_dir() {
            return Err(cat_err(dir, "the template folder does not exist"));
        }
        Self::from_files_for(&dir.display().to_string(), read_tree(dir)?, channels)
    }

    fn from_files_with(origin: &str, files: SourceFiles, only: Option<Vec<Channel>>) -> Result<Self, CatalogueError> {
        let mut cat = Catalogue { only, ..Catalogue::default() };
        let mut templates: BTreeMap<String, SourceFiles> = BTreeMap::new();
        for (rel, text) in files {
            if let Some(file) = rel.strip_prefix("_locales/") {
                let strings = string_file(origin, &rel, file, &text)?;
                cat.strings_mut().shared.push(strings);
                continue;
            }
            if let Some(partial) = rel.strip_prefix("_partials/") {
                let Some(name) = partial.strip_suffix(".hbs") else { continue };
                let source = super::compat::prepare_source(&text)
                    .map_err(|e| err_at(origin, &rel, format!("partial does not compile: {e}")))?;
                // Compiled once, registered in each registry (as `register_partial` would).
                let compiled = handlebars::Template::compile_with_name(source.as_ref(), name.to_owned())
                    .map_err(|e| compile_err(origin, &rel, "partial", &e))?;
                for reg in [&mut cat.plain, &mut cat.json] {
                    reg.register_template(name, compiled.clone());
                }
                cat.html.register_template(name, compiled);
                cat.partials.insert(name.to_owned(), format!("{origin}/{rel}"));
                continue;
            }
            let Some((folder, inner)) = rel.split_once('/') else { continue };
            if folder.starts_with(['_', '.']) {
                continue;
            }
            templates.entry(folder.to_owned()).or_default().push((inner.to_owned(), text));
        }
        for (name, files) in templates {
            cat.add_template(&name, files, &format!("{origin}/{name}"))?;
        }
        Ok(cat)
    }

    /// Adds one template folder from disk; its folder name is its name. Returns the name.
    pub fn add_template_dir(&mut self, folder: &Path) -> Result<String, CatalogueError> {
        let dir_name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| cat_err(folder, "template folder name is not UTF-8"))?
            .to_owned();
        let files = read_tree(folder)?;
        self.add_template(&dir_name, files, &folder.display().to_string())?;
        Ok(dir_name)
    }

    fn strings_mut(&mut self) -> std::sync::RwLockWriteGuard<'_, i18n::Strings> {
        // Poisoned only by a panic while loading; the table is still whole.
        self.strings.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds one template from its files (paths relative to the template folder).
    fn add_template(&mut self, dir_name: &str, files: SourceFiles, origin: &str) -> Result<(), CatalogueError> {
        let name = crate::request::TemplateName::parse(dir_name).map_err(|e| err_at(origin, "", e))?.to_string();
        let mut manifest = Manifest::default();
        let mut by_folder: BTreeMap<Option<String>, Vec<(String, String)>> = BTreeMap::new();
        let mut strings = Vec::new();
        for (rel, text) in files {
            if rel == "template.toml" {
                manifest = toml::from_str(&text).map_err(|e| err_at(origin, &rel, e.to_string()))?;
                continue;
            }
            // Sample data for `herald templates check` and `herald preview`, never sent.
            if rel.starts_with("fixtures/") {
                continue;
            }
            if let Some(file) = rel.strip_prefix("locales/") {
                strings.push(string_file(origin, &rel, file, &text)?);
                continue;
            }
            match rel.split_once('/') {
                None => by_folder.entry(None).or_default().push((rel, text)),
                Some((sub, file)) if !file.contains('/') => {
                    by_folder.entry(Some(sub.to_owned())).or_default().push((file.to_owned(), text));
                }
                Some(_) => {
                    return Err(err_at(origin, &rel, "template folders nest one level only (`<locale>/<part>`)"));
                }
            }
        }
        let mut variants = vec![self.load_variant(&name, by_folder.remove(&None).unwrap_or_default(), None, origin)?];
        for (sub, files) in by_folder {
            let sub = sub.unwrap_or_default();
            let locale = Locale::parse(&sub).map_err(|_| {
                err_at(origin, &sub, "a folder inside a template must be named after a locale (`fr`, `fr-CA`)")
            })?;
            if variants.iter().any(|v| v.locale.as_ref() == Some(&locale)) {
                return Err(err_at(origin, &sub, format!("locale {locale} is defined twice")));
            }
            variants.push(self.load_variant(&name, files, Some(locale), &format!("{origin}/{sub}"))?);
        }
        if variants.iter().all(|v| v.parts.is_empty()) {
            return Err(err_at(
                origin,
                "",
                "template has no parts (email.subject.hbs, email.html.hbs or email.mjml.hbs, sms.hbs, push.body.hbs...)",
            ));
        }
        let category = manifest
            .category
            .as_deref()
            .map(crate::request::Category::parse)
            .transpose()
            .map_err(|e| err_at(origin, "template.toml", format!("category: {e}")))?;
        let default_locale = manifest
            .default_locale
            .as_deref()
            .map(Locale::parse)
            .transpose()
            .map_err(|e| err_at(origin, "template.toml", format!("default_locale: {e}")))?;
        if let Some(l) = &default_locale
            && variants.iter().any(|v| v.locale.as_ref() == Some(l))
        {
            return Err(err_at(
                origin,
                l.as_str(),
                format!("{l} is the default locale (template.toml): its parts belong in the template's root folder"),
            ));
        }
        if !strings.is_empty() && default_locale.is_none() {
            return Err(err_at(
                origin,
                "template.toml",
                "a template with string files (locales/) names its default locale: default_locale = \"en\"",
            ));
        }
        if let Some(l) = &default_locale
            && !strings.is_empty()
            && !strings.iter().any(|f: &StringFile| f.locale.as_str().eq_ignore_ascii_case(l.as_str()))
        {
            return Err(err_at(
                origin,
                "locales",
                format!("the default locale's string file locales/{l}.json is missing"),
            ));
        }
        self.strings_mut()
            .templates
            .insert(name.clone(), i18n::TemplateStrings { default_locale: default_locale.clone(), own: strings });
        self.entries.insert(
            name,
            Entry {
                version: manifest.version,
                description: manifest.description,
                category,
                default_locale,
                origin: origin.to_owned(),
                variants,
            },
        );
        Ok(())
    }

    fn load_variant(
        &mut self,
        name: &str,
        files: Vec<(String, String)>,
        locale: Option<Locale>,
        origin: &str,
    ) -> Result<Variant, CatalogueError> {
        let mut parts = BTreeSet::new();
        for (file_name, source) in files {
            let part = Part::ALL.into_iter().find(|p| p.file_name() == file_name).ok_or_else(|| {
                let known: Vec<&str> = Part::ALL.iter().map(|p| p.file_name()).collect();
                err_at(origin, &file_name, format!("unknown template part; expected one of {}", known.join(", ")))
            })?;
            if self.only.as_ref().is_some_and(|only| !only.contains(&part.channel())) {
                parts.insert(part);
                continue;
            }
            let registry = match part.escape() {
                Escape::Html => &mut self.html,
                Escape::None => &mut self.plain,
                Escape::Json => &mut self.json,
            };
            // `{{^name}}` sections compile as handlebars.js reads them (compat.rs).
            let source = super::compat::prepare_source(&source)
                .map_err(|e| err_at(origin, &file_name, format!("template does not compile: {e}")))?;
            registry
                .register_template_string(&registry_key(name, locale.as_ref(), part), source.as_ref())
                .map_err(|e| compile_err(origin, &file_name, "template", &e))?;
            parts.insert(part);
        }
        if parts.contains(&Part::EmailHtml) && parts.contains(&Part::EmailMjml) {
            return Err(err_at(
                origin,
                "email.mjml.hbs",
                "an email body is HTML or MJML: remove email.html.hbs or email.mjml.hbs",
            ));
        }
        for channel in Channel::ALL {
            let has_any = parts.iter().any(|p| p.channel() == channel);
            let missing = Part::missing(&parts, channel);
            if has_any && !missing.is_empty() {
                return Err(err_at(
                    origin,
                    "",
                    format!("{channel} parts are incomplete: {} missing", missing.join(", ")),
                ));
            }
        }
        Ok(Variant { locale, parts })
    }

    /// Every compiled part of `name`, root folder first.
    pub fn part_sources(&self, name: &str) -> Vec<PartSource<'_>> {
        let Some(entry) = self.entries.get(name) else { return Vec::new() };
        let mut out = Vec::new();
        for v in &entry.variants {
            for part in &v.parts {
                let registry = self.registry_for(*part);
                let Some(template) = registry.get_template(&registry_key(name, v.locale.as_ref(), *part)) else {
                    continue;
                };
                let folder = v.locale.as_ref().map(|l| format!("{l}/")).unwrap_or_default();
                out.push(PartSource {
                    file: format!("{}/{folder}{}", entry.origin, part.file_name()),
                    channel: part.channel(),
                    locale: v.locale.as_ref(),
                    template,
                    registry,
                });
            }
        }
        out
    }

    /// The shared partials: (name, file, compiled), for static checks.
    pub fn partial_sources(&self) -> Vec<(&str, &str, &handlebars::template::Template)> {
        self.partials
            .iter()
            .filter_map(|(name, file)| self.html.get_template(name).map(|t| (name.as_str(), file.as_str(), t)))
            .collect()
    }

    /// The file of a partial, by the name templates call it with.
    pub fn partial_file(&self, name: &str) -> Option<&str> {
        self.partials.get(name).map(String::as_str)
    }

    /// The file a render error happened in: a partial's, or the part's own.
    pub fn error_file(&self, e: &RenderError) -> Option<String> {
        if let Some(file) = e.source.as_deref().and_then(|s| self.partial_file(s)) {
            return Some(file.to_owned());
        }
        let entry = self.entries.get(&e.template)?;
        let part = Part::ALL.into_iter().find(|p| p.label() == e.part)?;
        let folder = e.locale.as_ref().map(|l| format!("{l}/")).unwrap_or_default();
        Some(format!("{}/{folder}{}", entry.origin, part.file_name()))
    }

    /// The string files (for translation checks).
    pub fn strings(&self) -> std::sync::RwLockReadGuard<'_, i18n::Strings> {
        self.strings.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn registry_for(&self, part: Part) -> &Handlebars<'static> {
        match part.escape() {
            Escape::Html => &self.html,
            Escape::None => &self.plain,
            Escape::Json => &self.json,
        }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    pub fn info(&self, name: &str) -> Option<TemplateInfo> {
        let e = self.entries.get(name)?;
        let channels =
            Channel::ALL.into_iter().filter(|c| e.variants.iter().any(|v| Part::serves(&v.parts, *c))).collect();
        let mut locales: Vec<String> =
            e.variants.iter().filter_map(|v| v.locale.as_ref().map(|l| l.to_string())).collect();
        if let Ok(strings) = self.strings.read()
            && let Some(t) = strings.templates.get(name)
        {
            for f in &t.own {
                let tag = f.locale.to_string();
                if e.default_locale.as_ref() != Some(&f.locale) && !locales.contains(&tag) {
                    locales.push(tag);
                }
            }
        }
        locales.sort();
        Some(TemplateInfo {
            name: name.to_owned(),
            version: e.version.clone(),
            description: e.description.clone(),
            category: e.category.as_ref().map(|c| c.as_str().to_owned()),
            default_locale: e.default_locale.as_ref().map(|l| l.to_string()),
            channels,
            locales,
            origin: e.origin.clone(),
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
                suggestion: crate::request::value_de::closest(name, &known).map(str::to_owned),
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
        let serves = |v: &&Variant| Part::serves(&v.parts, channel);
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
        self.render_owned(template, channel, locale, context.clone())
    }

    /// [`Catalogue::render`] of a context the caller no longer needs: every part renders
    /// from it as it is, without the deep copy a borrowed context costs (the send path).
    pub fn render_owned(
        &self,
        template: &TemplateRef,
        channel: Channel,
        locale: Option<&Locale>,
        context: Value,
    ) -> Result<Rendered, RenderErrorOrLookup> {
        let variant = self.variant(template, channel, locale).map_err(RenderErrorOrLookup::Lookup)?;
        let name = template.name.as_str();
        if self.only.as_ref().is_some_and(|only| !only.contains(&channel)) {
            return Err(RenderErrorOrLookup::Render(Box::new(RenderError {
                template: name.to_owned(),
                part: channel.as_str().to_owned(),
                locale: None,
                message: format!("this catalogue compiles no {channel} parts (loaded for another channel)"),
                source: None,
                line: None,
                column: None,
            })));
        }
        // `t` finds the template's strings and the recipient's locale through this.
        let _scope = i18n::enter(name, locale);
        let ctx = handlebars::Context::from(context);
        let render = |part: Part| -> Result<Option<String>, RenderErrorOrLookup> {
            if !variant.parts.contains(&part) {
                return Ok(None);
            }
            self.registry_for(part)
                .render_with_context(&registry_key(name, variant.locale.as_ref(), part), &ctx)
                .map(Some)
                .map_err(|e| describe(name, part, variant.locale.as_ref(), &e).into())
        };
        let fail = |part: Part, message: &str| RenderError {
            template: name.to_owned(),
            part: part.label().to_owned(),
            locale: variant.locale.as_ref().map(|l| l.to_string()),
            message: message.to_owned(),
            source: None,
            line: None,
            column: None,
        };
        let out = match channel {
            Channel::Email => {
                let subject = single_line(&render(Part::EmailSubject)?.unwrap_or_default());
                if subject.is_empty() {
                    return Err(fail(Part::EmailSubject, "the subject rendered empty").into());
                }
                // MJML compiled to HTML, then CSS inlined into every HTML email (email.rs).
                let (rendered, mjml) = match render(Part::EmailMjml)? {
                    Some(mjml) => (mjml, true),
                    None => (render(Part::EmailHtml)?.unwrap_or_default(), false),
                };
                // Positions are in the markup after Handlebars (loops expanded), not lines
                // of the template file: said in the message, not given as the file's.
                let html = super::email::finish_html_of(name, &rendered, mjml).map_err(|e| {
                    let part = if mjml { Part::EmailMjml } else { Part::EmailHtml };
                    let at = match (e.line, e.column) {
                        (Some(l), Some(c)) => format!(" (line {l}, column {c} of the markup after Handlebars)"),
                        _ => String::new(),
                    };
                    fail(part, &format!("{}{at}", e.message))
                })?;
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

impl Catalogue {
    /// The Handlebars stage alone of one part (before MJML, CSS inlining and the text
    /// part): what handlebars.js would print for the same source and context. For the
    /// side-by-side benchmark (`scripts/bench.sh`); sends use [`Catalogue::render`].
    /// `file` names the part (`email.subject.hbs`, `email.mjml.hbs`, ...); None when the
    /// template has no such part, or the catalogue compiles none of its channel.
    pub fn render_handlebars(
        &self,
        template: &TemplateRef,
        file: &str,
        locale: Option<&Locale>,
        context: &handlebars::Context,
    ) -> Result<Option<String>, RenderErrorOrLookup> {
        let Some(part) = Part::ALL.into_iter().find(|p| p.file_name() == file) else {
            return Ok(None);
        };
        if self.only.as_ref().is_some_and(|only| !only.contains(&part.channel())) {
            return Ok(None);
        }
        let variant = self.variant(template, part.channel(), locale).map_err(RenderErrorOrLookup::Lookup)?;
        if !variant.parts.contains(&part) {
            return Ok(None);
        }
        let name = template.name.as_str();
        let _scope = i18n::enter(name, locale);
        self.registry_for(part)
            .render_with_context(&registry_key(name, variant.locale.as_ref(), part), context)
            .map(Some)
            .map_err(|e| describe(name, part, variant.locale.as_ref(), &e).into())
    }
}

/// Either failure of [`Catalogue::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderErrorOrLookup {
    Lookup(LookupError),
    /// Boxed: a render error carries its position and is larger than a lookup's.
    Render(Box<RenderError>),
}

impl RenderErrorOrLookup {
    /// The receipt reason of either failure.
    pub fn reason(&self) -> String {
        match self {
            RenderErrorOrLookup::Lookup(e) => e.reason(),
            RenderErrorOrLookup::Render(e) => e.reason(),
        }
    }
}

impl fmt::Display for RenderErrorOrLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderErrorOrLookup::Lookup(e) => e.fmt(f),
            RenderErrorOrLookup::Render(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RenderErrorOrLookup {}

impl From<RenderError> for RenderErrorOrLookup {
    fn from(e: RenderError) -> Self {
        RenderErrorOrLookup::Render(Box::new(e))
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
        R::HelperNotFound(helper) => format!("no helper named `{helper}` (see docs/templates.md for the helpers)"),
        R::PartialNotFound(partial) => format!("no partial named `{partial}` (templates/_partials/{partial}.hbs)"),
        other => other.to_string(),
    };
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        _ => String::new(),
    };
    // A partial's name, when the error is in one (a part's own key has slashes and `_`).
    let own = registry_key(name, locale, part);
    let source = e.template_name.clone().filter(|t| *t != own);
    RenderError {
        template: name.to_owned(),
        part: part.label().to_owned(),
        locale: locale.map(|l| l.to_string()),
        message: format!("{message}{at}"),
        source,
        line: e.line_no,
        column: e.column_no,
    }
}

/// Parses `locales/<tag>.json` (or `_locales/<tag>.json`).
fn string_file(origin: &str, rel: &str, file: &str, text: &str) -> Result<StringFile, CatalogueError> {
    let tag = file
        .strip_suffix(".json")
        .filter(|t| !t.contains('/'))
        .ok_or_else(|| err_at(origin, rel, "a string file is locales/<locale>.json, e.g. locales/fr-CA.json"))?;
    let locale = Locale::parse(tag).map_err(|e| err_at(origin, rel, format!("the file name is not a locale: {e}")))?;
    StringFile::parse(locale, format!("{origin}/{rel}"), text).map_err(|e| err_at(origin, rel, e))
}
