//! The preview's HTML, written out by hand: every value from a template, a fixture or a
//! file name goes through [`esc`] (or [`segment`] inside a URL).

use std::fmt::Write;

use herald::pipeline::Prepared;
use herald::ports::{OutboundEmail, OutboundPush, OutboundSms};
use herald::receipt::SmsFacts;
use herald::render::sms;
use herald::request::Channel;
use serde_json::{Value, json};

use super::{Listing, Problem, Selection};
use herald::push::payload::sizes as push_sizes;

/// Gmail shows "[Message clipped]" past 102 KB of HTML.
use herald::authoring::check::GMAIL_CLIP_BYTES;

/// Text for HTML content and quoted attribute values.
pub(super) use herald::render::escape_html as esc;

/// One URL path segment: everything but unreserved characters percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn layout(title: &str, version: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\" data-version=\"{version}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} · herald preview</title>\n<link rel=\"stylesheet\" href=\"/assets/preview.css\">\n\
         <script src=\"/assets/preview.js\" defer></script>\n</head>\n<body>\n\
         <header class=\"top\"><a class=\"brand\" href=\"/\">herald preview</a>\
         <span class=\"note\">rendered as a send would build it; nothing is sent</span>\
         <span id=\"live\" data-testid=\"live\" class=\"live\">live</span></header>\n{body}\n</body>\n</html>\n",
        version = esc(version),
        title = esc(title),
    )
}

pub(super) fn not_found(version: &str, why: &str) -> String {
    let body = format!(
        "<main id=\"content\"><section class=\"problem\" data-testid=\"not-found\"><h2>Not found</h2><p>{}</p>\
         <p><a href=\"/\">All templates</a></p></section></main>",
        esc(why)
    );
    layout("Not found", version, &body)
}

pub(super) fn problem_page(version: &str, problem: &Problem) -> String {
    let body = format!(
        "<nav class=\"crumbs\"><a href=\"/\">All templates</a></nav>\n<main id=\"content\">{}</main>",
        problem_box(problem)
    );
    layout(&problem.title, version, &body)
}

fn problem_box(problem: &Problem) -> String {
    let location = problem
        .location
        .as_deref()
        .map(|l| format!("<p class=\"location\"><code data-testid=\"problem-location\">{}</code></p>", esc(l)))
        .unwrap_or_default();
    format!(
        "<section class=\"problem\" data-testid=\"problem\"><h2>{}</h2>{location}\
         <pre data-testid=\"problem-message\">{}</pre></section>",
        esc(&problem.title),
        esc(&problem.message)
    )
}

fn channel_label(channel: Channel) -> &'static str {
    match channel {
        Channel::Email => "Email",
        Channel::Sms => "SMS",
        Channel::Push => "Push",
    }
}

pub(super) fn index(version: &str, dir: &str, list: &[Listing], problem: Option<&Problem>) -> String {
    let mut body = String::from("<main id=\"content\">\n");
    let _ = write!(body, "<h1>Templates</h1>\n<p class=\"muted\">In <code>{}</code>.</p>\n", esc(dir));
    if let Some(p) = problem {
        body.push_str(&problem_box(p));
    }
    if problem.is_none() && list.is_empty() {
        body.push_str("<p data-testid=\"no-templates\">The folder has no templates.</p>\n");
    }
    if !list.is_empty() {
        body.push_str(
            "<table class=\"list\" data-testid=\"template-list\"><thead><tr><th>Template</th><th>Description</th>\
             <th>Channels</th><th>Locales</th><th>Category</th><th>Fixtures</th></tr></thead><tbody>\n",
        );
        for item in list {
            let info = &item.info;
            let name = esc(&info.name);
            let channels: Vec<&str> = info.channels.iter().map(|c| channel_label(*c)).collect();
            let mut locales = Vec::new();
            if let Some(d) = &info.default_locale {
                locales.push(format!("{} (default)", esc(d)));
            }
            locales.extend(info.locales.iter().map(|l| esc(l)));
            let category = match &info.category {
                Some(c) => esc(c),
                None => "<span class=\"muted\">marketing (assumed)</span>".to_owned(),
            };
            let fixtures = match &item.fixtures {
                Ok(f) if f.is_empty() => "<span class=\"muted\">none</span>".to_owned(),
                Ok(f) => f.len().to_string(),
                Err(e) => format!(
                    "<span class=\"bad\" data-testid=\"fixture-error-{name}\"><code>{}</code>: {}</span>",
                    esc(&e.location()),
                    esc(&e.message)
                ),
            };
            let _ = writeln!(
                body,
                "<tr data-testid=\"template-row-{name}\"><td><a href=\"/t/{}\" data-testid=\"template-link-{name}\">\
                 {name}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{category}</td><td>{fixtures}</td></tr>",
                segment(&info.name),
                esc(info.description.as_deref().unwrap_or("")),
                channels.join(", "),
                if locales.is_empty() { "<span class=\"muted\">-</span>".to_owned() } else { locales.join(", ") },
            );
        }
        body.push_str("</tbody></table>\n");
    }
    body.push_str("</main>");
    layout("Templates", version, &body)
}

pub(super) fn template(
    version: &str,
    selection: &Selection,
    category: &str,
    rendered: &Result<Prepared, Problem>,
) -> String {
    let info = &selection.info;
    let name = segment(&info.name);
    let mut body = String::new();
    let _ = write!(
        body,
        "<nav class=\"crumbs\"><a href=\"/\" data-testid=\"back\">All templates</a></nav>\n\
         <h1 data-testid=\"template-name\">{}</h1>\n<p class=\"muted\">{}</p>\n",
        esc(&info.name),
        esc(info.description.as_deref().unwrap_or(""))
    );

    // Locale and fixture: a plain GET form (the script submits it on change).
    let _ = write!(
        body,
        "<form class=\"selectors\" method=\"get\" action=\"/t/{name}\" id=\"selectors\">\
         <input type=\"hidden\" name=\"channel\" value=\"{}\">",
        selection.channel.as_str()
    );
    let default_label = match &info.default_locale {
        Some(d) => format!("default ({})", esc(d)),
        None => "default".to_owned(),
    };
    let _ = write!(
        body,
        "<label>Locale <select name=\"locale\" data-testid=\"select-locale\" data-autosubmit>\
         <option value=\"\"{}>{default_label}</option>",
        if selection.locale.is_none() { " selected" } else { "" }
    );
    for l in &info.locales {
        let selected = selection.locale.as_ref().is_some_and(|s| s.as_str() == l);
        let _ = write!(body, "<option value=\"{0}\"{1}>{0}</option>", esc(l), if selected { " selected" } else { "" });
    }
    body.push_str("</select></label>");
    body.push_str("<label>Fixture <select name=\"fixture\" data-testid=\"select-fixture\" data-autosubmit>");
    match &selection.fixtures {
        Ok(list) if !list.is_empty() => {
            for f in list {
                let selected = f.name == selection.fixture.name;
                let _ = write!(
                    body,
                    "<option value=\"{0}\"{1}>{0}</option>",
                    esc(&f.name),
                    if selected { " selected" } else { "" }
                );
            }
        }
        _ => body.push_str("<option value=\"\" selected>(no fixture: empty data)</option>"),
    }
    let _ = writeln!(
        body,
        "</select></label><button type=\"submit\">Show</button>\
         <span class=\"muted\">category <strong data-testid=\"category\">{}</strong></span></form>",
        esc(category)
    );

    body.push_str("<nav class=\"tabs\">");
    for channel in &info.channels {
        let active = *channel == selection.channel;
        let _ = write!(
            body,
            "<a href=\"/t/{name}?{}\" data-testid=\"channel-{}\"{}>{}</a>",
            esc(&selection.query(*channel)),
            channel.as_str(),
            if active { " class=\"active\" aria-current=\"page\"" } else { "" },
            channel_label(*channel)
        );
    }
    body.push_str("</nav>\n<main id=\"content\">");
    match rendered {
        Ok(Prepared::Email(email)) => email_pane(&mut body, email, selection),
        Ok(Prepared::Sms(message, facts)) => sms_pane(&mut body, message, facts),
        Ok(Prepared::Push(push)) => push_pane(&mut body, push),
        Err(problem) => body.push_str(&problem_box(problem)),
    }
    body.push_str("</main>");
    layout(&info.name, version, &body)
}

fn email_pane(out: &mut String, email: &OutboundEmail, selection: &Selection) {
    out.push_str("<section class=\"email\" data-testid=\"email-pane\"><dl class=\"headers\">");
    let mut row = |label: &str, id: &str, value: &str| {
        let _ = write!(out, "<dt>{}</dt><dd data-testid=\"{id}\">{}</dd>", esc(label), esc(value));
    };
    row("From", "email-from", &email.from);
    row("To", "email-to", email.to.as_str());
    if let Some(r) = &email.reply_to {
        row("Reply-To", "email-reply-to", r);
    }
    row("Subject", "email-subject", &email.subject);
    for (header, value) in &email.headers {
        let id = format!("email-header-{}", segment(&header.to_ascii_lowercase()));
        row(header, &id, value);
    }
    out.push_str("</dl>");
    if !email.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case("List-Unsubscribe")) {
        out.push_str(
            "<p class=\"muted\" data-testid=\"email-no-unsubscribe\">No List-Unsubscribe header: transactional \
             mail carries none.</p>",
        );
    }
    let bytes = email.html.len();
    let clipped = bytes > GMAIL_CLIP_BYTES;
    let _ = write!(
        out,
        "<p class=\"size{}\" data-testid=\"email-html-size\">HTML {:.1} KB ({bytes} bytes){}</p>",
        if clipped { " warn" } else { "" },
        bytes as f64 / 1024.0,
        if clipped { ": over 102 KB, Gmail clips the message and hides the rest behind a link" } else { "" }
    );
    let src = format!("/t/{}/email.html?{}", segment(&selection.info.name), selection.query(Channel::Email));
    let _ = write!(
        out,
        "<div class=\"toolbar\"><button type=\"button\" data-width=\"desktop\" data-testid=\"width-desktop\">Desktop\
         </button><button type=\"button\" data-width=\"mobile\" data-testid=\"width-mobile\">Mobile</button></div>\
         <div class=\"frame-wrap\"><iframe id=\"email-frame\" data-testid=\"email-frame\" class=\"desktop\" \
         sandbox=\"\" referrerpolicy=\"no-referrer\" title=\"The email's HTML\" src=\"{}\"></iframe></div>\
         <h2>Text part</h2><pre class=\"text-part\" data-testid=\"email-text\">{}</pre></section>",
        esc(&src),
        esc(&email.text)
    );
}

/// How many more one-unit characters fit before the body needs another segment: found
/// by appending, so it follows `sms::segment`'s own filling (whole characters per segment).
fn room_left(body: &str, segments: u32) -> u32 {
    // No segment holds more than 160 units: 161 more never fit.
    let (mut fits, mut too_many) = (0u32, 161u32);
    while too_many - fits > 1 {
        let probe = fits + (too_many - fits) / 2;
        let mut longer = String::with_capacity(body.len() + probe as usize);
        longer.push_str(body);
        longer.extend(std::iter::repeat_n('a', probe as usize));
        if sms::segment(&longer).segments == segments {
            fits = probe;
        } else {
            too_many = probe;
        }
    }
    fits
}

fn encoding_label(facts: &SmsFacts) -> &'static str {
    match facts.encoding {
        sms::SmsEncoding::Gsm7 => "GSM-7",
        sms::SmsEncoding::Ucs2 => "UCS-2",
    }
}

fn sms_pane(out: &mut String, message: &OutboundSms, facts: &SmsFacts) {
    let sender = message.sender_id.as_deref().or(message.origination_number.as_deref()).unwrap_or("SMS");
    let left = room_left(&message.body, facts.segments);
    let _ = write!(
        out,
        "<section class=\"sms\" data-testid=\"sms-pane\"><div class=\"phone\"><div class=\"sender\" \
         data-testid=\"sms-sender\">{}</div><div class=\"bubble\" data-testid=\"sms-body\">{}</div></div>\
         <dl class=\"facts\"><dt>Encoding</dt><dd data-testid=\"sms-encoding\">{}</dd>\
         <dt>Segments</dt><dd data-testid=\"sms-segments\">{}</dd>\
         <dt>Characters</dt><dd data-testid=\"sms-characters\">{}</dd>\
         <dt>Left in this segment</dt><dd data-testid=\"sms-left\">{left}</dd>",
        esc(sender),
        esc(&message.body),
        encoding_label(facts),
        facts.segments,
        facts.characters,
    );
    if !facts.transliterated.is_empty() {
        let _ = write!(
            out,
            "<dt>Transliterated</dt><dd data-testid=\"sms-transliterated\">{} replaced by GSM-7 look-alikes \
             (the category's sms.transliterate setting)</dd>",
            esc(&facts.transliterated.join(", "))
        );
    }
    if !facts.non_gsm_characters.is_empty() || facts.non_gsm_others > 0 {
        let mut why = facts.non_gsm_characters.join(", ");
        if facts.non_gsm_others > 0 {
            let _ = write!(why, "{}{} other(s)", if why.is_empty() { "" } else { " and " }, facts.non_gsm_others);
        }
        let _ = write!(out, "<dt>UCS-2 because of</dt><dd data-testid=\"sms-non-gsm\">{}</dd>", esc(&why));
    }
    out.push_str(
        "</dl><p class=\"muted\">Characters left count GSM-7 septets (an extension character such as € or [ takes \
         two) or UCS-2 code units (an emoji takes two).</p></section>",
    );
}

fn push_pane(out: &mut String, push: &OutboundPush) {
    let _ = write!(
        out,
        "<section class=\"push\" data-testid=\"push-pane\"><div class=\"card\"><div class=\"app\">{} · now</div>\
         <div class=\"title\" data-testid=\"push-title\">{}</div><div class=\"body\" data-testid=\"push-body\">{}</div>\
         </div>",
        esc(push.target.platform().as_str()),
        esc(&push.title),
        esc(&push.body)
    );
    if !push.data.is_empty() {
        let data = serde_json::to_string_pretty(&push.data).unwrap_or_default();
        let _ = write!(out, "<h2>Data</h2><pre data-testid=\"push-data\">{}</pre>", esc(&data));
    }
    out.push_str(
        "<h2>Payload size</h2><table class=\"sizes\" data-testid=\"push-sizes\"><thead><tr><th>Provider</th>\
         <th>Bytes</th><th>Limit</th><th></th></tr></thead><tbody>",
    );
    for (provider, size) in push_sizes(&push.title, &push.body, &push.data) {
        match size {
            Ok((bytes, limit)) => {
                let fits = bytes <= limit;
                let _ = write!(
                    out,
                    "<tr data-testid=\"push-size-{provider}\"><td>{provider}</td><td>{bytes}</td><td>{limit}</td>\
                     <td class=\"{}\">{}</td></tr>",
                    if fits { "ok" } else { "bad" },
                    if fits { format!("{} left", limit - bytes) } else { "over the limit".to_owned() }
                );
            }
            Err(e) => {
                let _ = write!(
                    out,
                    "<tr data-testid=\"push-size-{provider}\"><td>{provider}</td><td colspan=\"3\" class=\"bad\">{}</td></tr>",
                    esc(&e)
                );
            }
        }
    }
    out.push_str("</tbody></table></section>");
}

/// The sample as `/api/t/<name>` answers it.
pub(super) fn message_json(prepared: &Prepared) -> Value {
    match prepared {
        Prepared::Email(e) => json!({
            "from": e.from,
            "to": e.to.as_str(),
            "reply_to": e.reply_to,
            "subject": e.subject,
            "headers": e.headers.iter().map(|(h, v)| json!([h, v])).collect::<Vec<_>>(),
            "html": e.html,
            "html_bytes": e.html.len(),
            "text": e.text,
        }),
        Prepared::Sms(m, facts) => json!({
            "body": m.body,
            "encoding": facts.encoding,
            "segments": facts.segments,
            "units": facts.units,
            "characters": facts.characters,
            "left_in_segment": room_left(&m.body, facts.segments),
            "transliterated": facts.transliterated,
        }),
        Prepared::Push(p) => json!({
            "title": p.title,
            "body": p.body,
            "data": p.data,
            "payload": herald::push::payload::sizes_json(&p.title, &p.body, &p.data),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn path_segments_keep_no_slash_or_dot_dot_meaning() {
        assert_eq!(segment("order-confirmation"), "order-confirmation");
        assert_eq!(segment("../a/b c"), "..%2Fa%2Fb%20c");
    }

    #[test]
    fn room_left_follows_the_segment_sizes() {
        assert_eq!(room_left("", 1), 160);
        assert_eq!(room_left(&"a".repeat(150), 1), 10);
        // 161 septets: two segments of 153, the second holding 8.
        assert_eq!(room_left(&"a".repeat(161), 2), 145);
        // UCS-2: 70 code units in one.
        assert_eq!(room_left("é€😀", 1), 70 - 4);
        assert_eq!(room_left("\u{4e2d}", 1), 69);
    }
}
