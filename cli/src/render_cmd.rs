//! `herald render`: what a template produces for given data, without sending.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use herald::config::Settings;
use herald::render::{Catalogue, Rendered, sms};
use herald::request::{Channel, Locale, TemplateRef};
use serde_json::{Value, json};

#[derive(Args)]
pub struct RenderArgs {
    /// A template name from the catalogue, or the path of a template folder.
    template: String,
    #[arg(long)]
    channel: ChannelArg,
    /// JSON object with the personalisation data (`-` for stdin); a fixture file works
    /// as is (its `herald` object sets the sample recipient's timezone and category).
    #[arg(long)]
    data: Option<PathBuf>,
    /// BCP 47 locale, e.g. fr-CA (falls back to fr, then the default).
    #[arg(long)]
    locale: Option<String>,
    /// Category the preview assumes (transactional mail has no unsubscribe link); default:
    /// the data's `herald.category`, else the template's `category`, else marketing.
    #[arg(long)]
    category: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum ChannelArg {
    Email,
    Sms,
    Push,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: &RenderArgs, settings: &Settings) -> Result<ExitCode> {
    let channel = match args.channel {
        ChannelArg::Email => Channel::Email,
        ChannelArg::Sms => Channel::Sms,
        ChannelArg::Push => Channel::Push,
    };
    let path = Path::new(&args.template);
    let is_folder = path.is_dir() && (args.template.contains(['/', '\\']) || args.template.starts_with('.'));
    let mut catalogue = if settings.templates.is_dir() {
        Catalogue::load(&settings.templates).context("loading the template catalogue")?
    } else if is_folder {
        Catalogue::default()
    } else {
        bail!("template folder {} not found", settings.templates.display());
    };
    let name = if is_folder { catalogue.add_template_dir(path)? } else { args.template.clone() };
    let template: TemplateRef = serde_json::from_value(json!(name)).map_err(|e| anyhow::anyhow!("template: {e}"))?;
    let locale = args.locale.as_deref().map(Locale::parse).transpose().map_err(anyhow::Error::msg)?;
    let mut data = match &args.data {
        Some(p) => read_data(p)?,
        None => serde_json::Map::new(),
    };
    // A fixture's sample-recipient settings (see herald::authoring), not data.
    let sample = match data.remove("herald") {
        Some(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let category = args
        .category
        .clone()
        .or_else(|| sample.get("category").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| catalogue.info(&name).and_then(|i| i.category))
        .unwrap_or_else(|| "marketing".to_owned());
    let category = herald::request::Category::parse(&category).map_err(anyhow::Error::msg)?;
    let mut herald_ctx = json!({
        "request_id": "preview",
        "recipient_id": "preview",
        "channel": channel.as_str(),
        "category": category.as_str(),
        "template": name,
    });
    if let Some(l) = &locale {
        herald_ctx["locale"] = json!(l.as_str());
    }
    for key in ["timezone", "tenant"] {
        if let Some(v) = sample.get(key).and_then(Value::as_str) {
            herald_ctx[key] = json!(v);
        }
    }
    if channel == Channel::Email && !category.is_transactional() {
        herald_ctx["unsubscribe_url"] = json!("https://example.invalid/unsubscribe/preview");
    }
    data.insert("herald".into(), herald_ctx);
    let mut context = Value::Object(data);
    // As a send renders: numbers print as handlebars.js prints them.
    herald::render::compat::js_numbers(&mut context);
    let rendered = match catalogue.render(&template, channel, locale.as_ref(), &context) {
        Ok(r) => r,
        Err(e) => bail!("{e}"),
    };
    // Whether an SMS in this category is transliterated, and which setting says so.
    let (setting, value) = settings.sms.transliteration(category.as_str());
    let transliteration =
        Transliteration { setting, value: value.as_str(), applies: value.applies(category.is_transactional()) };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&as_json(&rendered, &transliteration))?),
        Format::Text => print_text(&rendered, &transliteration, category.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

/// The transliteration setting in force for the preview's category.
struct Transliteration {
    /// `sms.transliterate` or `sms.categories.<category>.transliterate`.
    setting: String,
    value: &'static str,
    applies: bool,
}

impl Transliteration {
    /// `sms.transliterate = "non_transactional"`.
    fn describe(&self) -> String {
        format!("{} = \"{}\"", self.setting, self.value)
    }
}

fn read_data(path: &Path) -> Result<serde_json::Map<String, Value>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(path).with_context(|| path.display().to_string())?
    };
    match serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{}: the data must be a JSON object", path.display()),
    }
}

fn as_json(r: &Rendered, transliteration: &Transliteration) -> Value {
    match r {
        Rendered::Email { subject, html, text } => {
            json!({"channel": "email", "subject": subject, "html": html, "text": text})
        }
        Rendered::Sms { body } => {
            let info = sms::segment(body);
            let mut out = json!({"channel": "sms", "body": body, "encoding": info.encoding, "segments": info.segments,
                   "characters": info.characters, "non_gsm_characters": sms::non_gsm_characters(body),
                   "transliterate": {"setting": transliteration.setting, "value": transliteration.value,
                                     "applies": transliteration.applies}});
            // What goes out, when the category's setting transliterates and that helps.
            if let Some(t) = sms::transliterate(body).filter(|_| transliteration.applies) {
                let after = sms::segment(&t.body);
                out["transliterated"] = json!({"body": t.body, "encoding": after.encoding, "segments": after.segments,
                    "replaced": t.replaced.iter().map(|&c| sms::code_point(c)).collect::<Vec<_>>()});
            }
            out
        }
        Rendered::Push { title, body, data } => {
            let sizes = herald::push::payload::sizes_json(title, body, data);
            json!({"channel": "push", "title": title, "body": body, "data": data, "payload": sizes})
        }
    }
}

fn print_text(r: &Rendered, transliteration: &Transliteration, category: &str) {
    match r {
        Rendered::Email { subject, html, text } => {
            println!(
                "=== subject ===\n{subject}\n=== html ===\n{}\n=== text ===\n{}",
                html.trim_end(),
                text.trim_end()
            );
        }
        Rendered::Sms { body } => {
            // What goes out alone on stdout, so it can be piped: transliterated when the
            // category's setting says so; the cost and the setting on stderr.
            let rewrite = sms::transliterate(body);
            let sent = match &rewrite {
                Some(t) if transliteration.applies => &t.body,
                _ => body,
            };
            println!("{sent}");
            let info = sms::segment(sent);
            eprintln!("herald: {} segment(s), {}, {} characters", info.segments, info.encoding, info.characters);
            if let Some(t) = &rewrite {
                let replaced: Vec<String> = t.replaced.iter().map(|&c| sms::code_point(c)).collect();
                if transliteration.applies {
                    let before = sms::segment(body);
                    eprintln!(
                        "herald: transliterated for category {category} ({}), replacing {}; as rendered: {} segment(s), {}",
                        transliteration.describe(),
                        replaced.join(", "),
                        before.segments,
                        before.encoding
                    );
                } else {
                    let after = sms::segment(&t.body);
                    eprintln!(
                        "herald: not transliterated: {} sends category {category} as written; transliterated it would be {} segment(s), {} (replacing {})",
                        transliteration.describe(),
                        after.segments,
                        after.encoding,
                        replaced.join(", ")
                    );
                }
            }
        }
        Rendered::Push { title, body, data } => {
            println!("=== title ===\n{title}\n=== body ===\n{body}");
            if !data.is_empty() {
                println!("=== data ===\n{}", serde_json::to_string_pretty(data).unwrap_or_default());
            }
            // The payload sizes on stderr, like an SMS's cost: over a limit, the push fails
            // `payload_too_large:<bytes>` at that provider (nothing is truncated).
            for (provider, size) in herald::push::payload::sizes(title, body, data) {
                match size {
                    Ok((bytes, limit)) if bytes <= limit => {
                        eprintln!("herald: {provider} payload {bytes} of {limit} bytes")
                    }
                    Ok((bytes, limit)) => eprintln!(
                        "herald: {provider} payload {bytes} bytes, OVER the {limit}-byte limit: it would fail payload_too_large:{bytes}"
                    ),
                    Err(e) => eprintln!("herald: {provider}: {e}"),
                }
            }
        }
    }
}
