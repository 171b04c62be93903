//! The template catalogue: loading, locale fallback, strict variables, escaping,
//! and the shipped templates rendering with the shipped example data.

use std::path::{Path, PathBuf};

use herald::render::{Catalogue, RenderErrorOrLookup, Rendered};
use herald::request::{Channel, Locale, TemplateRef};
use serde_json::{Value, json};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn tref(name: &str) -> TemplateRef {
    serde_json::from_value(json!(name)).unwrap()
}

fn render(
    cat: &Catalogue,
    name: &str,
    channel: Channel,
    locale: Option<&str>,
    data: Value,
) -> Result<Rendered, RenderErrorOrLookup> {
    let locale = locale.map(|l| Locale::parse(l).unwrap());
    cat.render(&tref(name), channel, locale.as_ref(), &data)
}

fn subject(r: Rendered) -> String {
    match r {
        Rendered::Email { subject, .. } => subject,
        other => panic!("{other:?}"),
    }
}

fn multilingual() -> (tempfile::TempDir, Catalogue) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "_partials/sig.hbs", "-- {{team}}");
    write(t, "_partials/layouts/box.hbs", "<div class=\"box\">{{> @partial-block}}</div>");
    write(t, "welcome/email.subject.hbs", "Welcome {{name}}");
    write(t, "welcome/email.html.hbs", "{{#> layouts/box}}<p>Hi {{name}}</p>{{> sig}}{{/layouts/box}}");
    write(t, "welcome/email.text.hbs", "Hi {{name}}\n{{> sig}}");
    write(t, "welcome/sms.hbs", "Hi {{name}}");
    write(t, "welcome/fr/email.subject.hbs", "Bienvenue {{name}}");
    write(t, "welcome/fr/email.html.hbs", "<p>Salut {{name}}</p>");
    write(t, "welcome/fr-CA/email.subject.hbs", "Bienvenue, {{name}} (Canada)");
    write(t, "welcome/fr-CA/email.html.hbs", "<p>Allo {{name}}</p>");
    write(t, "welcome/de/sms.hbs", "Hallo {{name}}");
    let cat = Catalogue::load(t).unwrap();
    (dir, cat)
}

#[test]
fn locale_falls_back_region_then_language_then_default() {
    let (_d, cat) = multilingual();
    let data = json!({"name": "Zoé", "team": "Acme"});
    let s = |l: Option<&str>| subject(render(&cat, "welcome", Channel::Email, l, data.clone()).unwrap());
    assert_eq!(s(Some("fr-CA")), "Bienvenue, Zoé (Canada)");
    assert_eq!(s(Some("fr-ca")), "Bienvenue, Zoé (Canada)");
    assert_eq!(s(Some("fr-BE")), "Bienvenue Zoé");
    assert_eq!(s(Some("fr")), "Bienvenue Zoé");
    assert_eq!(s(Some("en-GB")), "Welcome Zoé");
    assert_eq!(s(None), "Welcome Zoé");
    // `de` has only SMS: German email uses the default, German SMS the `de` folder.
    assert_eq!(s(Some("de-AT")), "Welcome Zoé");
    let Rendered::Sms { body } = render(&cat, "welcome", Channel::Sms, Some("de-AT"), data.clone()).unwrap() else {
        panic!()
    };
    assert_eq!(body, "Hallo Zoé");
}

#[test]
fn parts_never_mix_across_locale_folders() {
    let (_d, cat) = multilingual();
    let data = json!({"name": "Zoé", "team": "Acme"});
    let Rendered::Email { html, text, .. } = render(&cat, "welcome", Channel::Email, Some("fr"), data.clone()).unwrap()
    else {
        panic!()
    };
    assert_eq!(html, "<p>Salut Zoé</p>");
    // fr has no email.text.hbs: the text comes from the French HTML, not the English text template.
    assert_eq!(text.trim(), "Salut Zoé");
    let Rendered::Email { html, text, .. } = render(&cat, "welcome", Channel::Email, None, data).unwrap() else {
        panic!()
    };
    assert_eq!(html, "<div class=\"box\"><p>Hi Zoé</p>-- Acme</div>");
    assert_eq!(text, "Hi Zoé\n-- Acme\n");
}

#[test]
fn strict_variables_but_lenient_blocks_and_default() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(
        t,
        "s/sms.hbs",
        "{{#if vip}}VIP {{/if}}{{#unless vip}}Dear {{/unless}}{{default name \"friend\"}}{{#each items}} [{{this}}]{{else}} (no items){{/each}}{{#with order}} #{{id}}{{/with}}",
    );
    write(t, "m/sms.hbs", "Hi {{user.first_name}}");
    let cat = Catalogue::load(t).unwrap();
    let body = |d: Value| match render(&cat, "s", Channel::Sms, None, d).unwrap() {
        Rendered::Sms { body } => body,
        other => panic!("{other:?}"),
    };
    assert_eq!(body(json!({})), "Dear friend (no items)");
    assert_eq!(body(json!({"name": "", "vip": false})), "Dear friend (no items)");
    assert_eq!(body(json!({"name": "Ann", "vip": true, "items": [1, "b"], "order": {"id": 7}})), "VIP Ann [1] [b] #7");
    let err = render(&cat, "m", Channel::Sms, None, json!({"user": {}})).unwrap_err();
    let RenderErrorOrLookup::Render(e) = err else { panic!("{err:?}") };
    assert_eq!(e.reason(), "render_error:m:sms");
    assert!(e.message.contains("user.first_name"), "{}", e.message);
    assert!(e.message.contains("line 1"), "{}", e.message);
}

#[test]
fn html_is_escaped_by_default_and_triple_stash_opts_out() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "x/email.subject.hbs", "{{s}}");
    write(t, "x/email.html.hbs", "<p>{{s}}</p><div>{{{trusted}}}</div>");
    let cat = Catalogue::load(t).unwrap();
    let data = json!({"s": "<b>\"Tom\" & 'Jerry'</b>", "trusted": "<b>bold</b>"});
    let Rendered::Email { subject, html, .. } = render(&cat, "x", Channel::Email, None, data).unwrap() else {
        panic!()
    };
    assert_eq!(subject, "<b>\"Tom\" & 'Jerry'</b>", "subjects are not HTML");
    assert_eq!(html, "<p>&lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;</p><div><b>bold</b></div>");
}

#[test]
fn push_data_is_json_escaped_and_must_be_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "p/push.title.hbs", "T");
    write(t, "p/push.body.hbs", "B");
    write(t, "p/push.data.json.hbs", "{\"msg\": \"{{msg}}\"}");
    write(t, "q/push.body.hbs", "B");
    write(t, "q/push.data.json.hbs", "[1]");
    let cat = Catalogue::load(t).unwrap();
    let nasty = "quote \" backslash \\ newline \n end";
    let Rendered::Push { data, .. } = render(&cat, "p", Channel::Push, None, json!({"msg": nasty})).unwrap() else {
        panic!()
    };
    assert_eq!(data["msg"], nasty);
    let err = render(&cat, "q", Channel::Push, None, json!({})).unwrap_err();
    assert!(matches!(err, RenderErrorOrLookup::Render(ref e) if e.message.contains("object")), "{err:?}");
}

#[test]
fn helpers_format_text_and_dates() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "h/sms.hbs",
        "{{upper a}} {{lower b}} {{truncate c 5}} {{format_date when \"%d %b %Y %H:%M\" \"Europe/Paris\"}} {{format_date day \"%A\"}}",
    );
    let cat = Catalogue::load(dir.path()).unwrap();
    let data = json!({"a": "straße", "b": "ÉTÉ", "c": "abcdefgh", "when": "2026-07-14T10:00:00Z", "day": "2026-12-25"});
    let Rendered::Sms { body } = render(&cat, "h", Channel::Sms, None, data).unwrap() else { panic!() };
    assert_eq!(body, "STRASSE été abcd… 14 Jul 2026 12:00 Friday");
    let err = render(&cat, "h", Channel::Sms, None, json!({"b": "", "c": "", "when": "", "day": ""}));
    assert!(err.is_err(), "a missing variable in a helper is an error too");
}

#[test]
fn catalogue_errors_name_the_file() {
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("a/email.subjet.hbs", "x")], "email.subjet.hbs"),
        (vec![("a/email.subject.hbs", "x")], "email.html.hbs or email.mjml.hbs missing"),
        (vec![("a/sms.hbs", "{{#if}}")], "does not compile"),
        (vec![("a/sms.hbs", "x"), ("a/english/sms.hbs", "x")], "named after a locale"),
        (vec![("_partials/p.hbs", "{{#each}}"), ("a/sms.hbs", "x")], "partial"),
        (vec![("a/template.toml", "versoin = \"1\""), ("a/sms.hbs", "x")], "template.toml"),
    ];
    for (files, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        for (rel, text) in &files {
            write(dir.path(), rel, text);
        }
        let err = Catalogue::load(dir.path()).unwrap_err();
        assert!(err.to_string().contains(needle), "{files:?}: {err}");
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn with_herald(mut data: Value, channel: Channel) -> Value {
    data["herald"] = json!({"request_id": "r", "recipient_id": "u", "channel": channel.as_str(), "category": "marketing",
                            "template": "t", "unsubscribe_url": "https://acme.example/u?token=t"});
    data
}

#[test]
fn shipped_templates_render_every_channel_and_locale_with_the_example_data() {
    let cat = Catalogue::load(&repo().join("templates")).unwrap();
    let data = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(repo().join("examples/data").join(f)).unwrap()).unwrap()
    };
    let cases =
        [("order-confirmation", "order.json"), ("newsletter", "newsletter.json"), ("one-time-code", "otp.json")];
    let mut rendered = 0;
    for (name, file) in cases {
        let info = cat.info(name).unwrap_or_else(|| panic!("{name} missing"));
        for channel in &info.channels {
            for locale in std::iter::once(None).chain(info.locales.iter().map(|l| Some(l.as_str()))) {
                let r = render(&cat, name, *channel, locale, with_herald(data(file), *channel))
                    .unwrap_or_else(|e| panic!("{name} {channel} {locale:?}: {e:?}"));
                if let Rendered::Email { subject, html, text } = &r {
                    assert!(!subject.is_empty() && html.contains("</html>") && !text.is_empty());
                    assert!(!text.contains('<') || text.contains("<cocoa>"), "tags leaked into text: {text}");
                }
                rendered += 1;
            }
        }
    }
    assert!(rendered >= 9, "{rendered}");
    // The newsletter loop renders every article and escapes the one with markup.
    let Rendered::Email { html, .. } =
        render(&cat, "newsletter", Channel::Email, None, with_herald(data("newsletter.json"), Channel::Email)).unwrap()
    else {
        panic!()
    };
    assert_eq!(html.matches("class=\"article\"").count(), 3);
    assert!(html.contains("Notes of &lt;cocoa&gt; and orange."));
}

#[test]
fn each_and_with_tolerate_absent_values_and_keep_their_features() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(
        t,
        "a/sms.hbs",
        "[{{#each missing}}x{{/each}}|{{#each nothing}}x{{/each}}|{{#with missing}}w{{/with}}|{{#with nothing}}{{id}}{{/with}}]",
    );
    write(
        t,
        "b/sms.hbs",
        "{{#each items}}{{@index}}{{#if @first}}F{{/if}}{{#if @last}}L{{/if}}={{name}}/{{../who}} {{/each}}{{#each map}}{{@key}}:{{this}} {{/each}}{{#each items as |it i|}}{{i}}{{it.name}} {{/each}}{{#with person as |p|}}{{p.name}}{{/with}}{{#each items}}{{#with this}}{{@index}}{{name}}{{/with}}{{/each}}",
    );
    let cat = Catalogue::load(t).unwrap();
    let body = |name: &str, d: Value| match render(&cat, name, Channel::Sms, None, d).unwrap() {
        Rendered::Sms { body } => body,
        other => panic!("{other:?}"),
    };
    assert_eq!(body("a", json!({"nothing": null})), "[|||]");
    let data = json!({"who": "W", "items": [{"name": "a"}, {"name": "b"}], "map": {"k1": 1, "k2": 2}, "person": {"name": "P"}});
    assert_eq!(body("b", data), "0F=a/W 1L=b/W k1:1 k2:2 0a 1b P0a1b");
    // Strictness still applies inside the block.
    let dir2 = tempfile::tempdir().unwrap();
    write(dir2.path(), "c/sms.hbs", "{{#each items}}{{nmae}}{{/each}}");
    let cat2 = Catalogue::load(dir2.path()).unwrap();
    assert!(render(&cat2, "c", Channel::Sms, None, json!({"items": [{"name": "a"}]})).is_err());
}

// --- translations ------------------------------------------------------------------

fn translated() -> (tempfile::TempDir, Catalogue) {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "_locales/en.json", r#"{"footer": "Sent by {brand}"}"#);
    write(t, "_locales/fr.json", r#"{"footer": "Envoyé par {brand}"}"#);
    write(t, "_partials/footer.hbs", "{{t \"footer\" brand=brand}}");
    write(t, "cart/template.toml", "default_locale = \"en\"\ncategory = \"marketing\"\n");
    write(t, "cart/email.subject.hbs", "{{t \"subject\" name=name}}");
    write(t, "cart/email.html.hbs", "<p>{{t \"items\" count=count}}</p><p>{{t \"note\"}}</p>{{> footer}}");
    write(t, "cart/sms.hbs", "{{t \"items\" count=count}} {{t \"positional\" name}}");
    write(t, "cart/push.body.hbs", "{{t \"subject\" name=name}}");
    write(t, "cart/push.data.json.hbs", "{\"title\": \"{{t \"subject\" name=name}}\"}");
    write(
        t,
        "cart/locales/en.json",
        r##"{"subject": "{name}, your cart", "items": {"one": "# item", "other": "# items"},
            "note": "<b>Free</b> returns", "positional": "for {0}"}"##,
    );
    write(
        t,
        "cart/locales/fr.json",
        r##"{"subject": "{name}, votre panier", "items": {"one": "# article", "other": "# articles"},
            "note": "Retours <b>gratuits</b>", "positional": "pour {0}"}"##,
    );
    write(t, "cart/locales/fr-CA.json", r#"{"subject": "{name}, votre chariot"}"#);
    write(
        t,
        "cart/locales/ru.json",
        r##"{"items": {"one": "# товар", "few": "# товара", "many": "# товаров", "other": "# товара"}}"##,
    );
    let cat = Catalogue::load(t).unwrap();
    (dir, cat)
}

#[test]
fn t_follows_the_locale_chain_with_plural_rules_and_escaped_arguments() {
    let (_d, cat) = translated();
    let data = |count: f64| json!({"name": "Zoë <Z>", "count": count, "brand": "Acme & Co", "herald": {}});
    let email = |locale: Option<&str>, count: f64| match render(&cat, "cart", Channel::Email, locale, data(count)) {
        Ok(Rendered::Email { subject, html, .. }) => (subject, html),
        other => panic!("{other:?}"),
    };
    // The subject is plain text; the body escapes the arguments, not the message's markup.
    let (subject, html) = email(None, 1.0);
    assert_eq!(subject, "Zoë <Z>, your cart");
    assert!(html.contains("<p>1 item</p><p><b>Free</b> returns</p>Sent by Acme &amp; Co"), "{html}");
    let (subject, html) = email(Some("fr-CA"), 0.0);
    assert_eq!(subject, "Zoë <Z>, votre chariot", "fr-CA's own key");
    // French: 0 is `one`; fr-CA falls back to fr for what it lacks, and _locales too.
    assert!(html.contains("<p>0 article</p><p>Retours <b>gratuits</b></p>Envoyé par Acme &amp; Co"), "{html}");
    let (_, html) = email(Some("fr"), 1234.0);
    assert!(html.contains("1\u{202f}234 articles"), "the count in the locale's digits: {html}");
    // Russian plural categories; a key ru.json lacks comes from the default (en).
    for (n, want) in [(1.0, "1 товар"), (3.0, "3 товара"), (5.0, "5 товаров"), (21.0, "21 товар"), (1.5, "1,5 товара")]
    {
        let (subject, html) = email(Some("ru"), n);
        assert!(html.contains(&format!("<p>{want}</p>")), "{n}: {html}");
        assert_eq!(subject, "Zoë <Z>, your cart");
    }
    match render(&cat, "cart", Channel::Sms, Some("fr"), data(2.0)) {
        Ok(Rendered::Sms { body }) => assert_eq!(body, "2 articles pour Zoë <Z>"),
        other => panic!("{other:?}"),
    }
    // In push data the message and arguments are JSON-escaped.
    match render(&cat, "cart", Channel::Push, None, json!({"name": "A \"quoted\" name", "herald": {}})) {
        Ok(Rendered::Push { data, .. }) => assert_eq!(data["title"], "A \"quoted\" name, your cart"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn t_fails_the_render_on_an_unknown_key_or_a_missing_argument() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "x/template.toml", "default_locale = \"en\"\n");
    write(t, "x/sms.hbs", "{{t \"nope\"}}");
    write(t, "x/push.body.hbs", "{{t \"hello\"}}");
    write(t, "x/locales/en.json", r##"{"hello": "Hello {name}", "n": {"one": "#", "other": "#"}}"##);
    let cat = Catalogue::load(t).unwrap();
    let err = render(&cat, "x", Channel::Sms, Some("fr"), json!({})).unwrap_err().to_string();
    assert!(err.contains("no translation for `nope` in fr, en"), "{err}");
    let err = render(&cat, "x", Channel::Push, None, json!({})).unwrap_err().to_string();
    assert!(err.contains("{name}") && err.contains("name=<value>"), "{err}");
    // A count that names missing data is reported as that variable.
    write(t, "x/email.subject.hbs", "s");
    write(t, "x/email.html.hbs", "{{t \"n\" count=cart.size}}");
    let cat = Catalogue::load(t).unwrap();
    let err = render(&cat, "x", Channel::Email, None, json!({"cart": {}})).unwrap_err().to_string();
    assert!(err.contains("the data has no `cart.size`"), "{err}");
    let err = render(&cat, "x", Channel::Email, None, json!({"cart": {"size": "many"}})).unwrap_err().to_string();
    assert!(err.contains("t: `n`") && !err.contains("many"), "names the key, never the value: {err}");
    // A position past every possible argument is a missing one, not an overflow (the
    // key itself is argument 0 of the helper).
    write(t, "x/locales/en.json", r##"{"hello": "Hello {18446744073709551615}"}"##);
    let cat = Catalogue::load(t).unwrap();
    let err = render(&cat, "x", Channel::Push, None, json!({})).unwrap_err().to_string();
    assert!(err.contains("pass 18446744073709551615=<value>"), "{err}");
}

#[test]
fn string_files_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "x/sms.hbs", "hi");
    write(t, "x/locales/en.json", r#"{"a": "b"}"#);
    let err = Catalogue::load(t).unwrap_err().to_string();
    assert!(err.contains("default_locale"), "string files need a default locale: {err}");
    write(t, "x/template.toml", "default_locale = \"de\"\n");
    let err = Catalogue::load(t).unwrap_err().to_string();
    assert!(err.contains("locales/de.json is missing"), "{err}");
    write(t, "x/template.toml", "default_locale = \"en\"\n");
    write(t, "x/locales/fr.json", r#"{"a": 3}"#);
    let err = Catalogue::load(t).unwrap_err().to_string();
    assert!(err.contains("x/locales/fr.json") && err.contains("`a`"), "{err}");
    write(t, "x/locales/fr.json", r#"{"a": "b"}"#);
    write(t, "x/locales/not a locale.json", "{}");
    assert!(Catalogue::load(t).unwrap_err().to_string().contains("not a locale"));
    std::fs::remove_file(t.join("x/locales/not a locale.json")).unwrap();
    // Fixtures are sample data, never template parts.
    write(t, "x/fixtures/default.json", "{}");
    let cat = Catalogue::load(t).unwrap();
    let info = cat.info("x").unwrap();
    assert_eq!(info.locales, ["fr"], "a string file declares its locale; the default is not listed");
    assert_eq!(info.default_locale.as_deref(), Some("en"));
}

// --- MJML and CSS inlining -----------------------------------------------------------

#[test]
fn mjml_parts_compile_and_every_html_email_is_inlined() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "news/email.subject.hbs", "News");
    write(
        t,
        "news/email.mjml.hbs",
        "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{name}}</mj-text>\
         <mj-button href=\"{{url}}\">Read</mj-button></mj-column></mj-section></mj-body></mjml>",
    );
    write(t, "plain/email.subject.hbs", "Plain");
    write(
        t,
        "plain/email.html.hbs",
        "<html><head><style>.note { color: #c00 } @media (max-width: 600px) { .note { color: blue } }</style></head>\
         <body><p class=\"note\">Hi {{name}}</p><a href=\"{{url}}\">Read</a></body></html>",
    );
    let cat = Catalogue::load(t).unwrap();
    let data = json!({"name": "Ada & <Bob>", "url": "https://acme.example/a?b=1&c=2"});
    let Ok(Rendered::Email { html, text, .. }) = render(&cat, "news", Channel::Email, None, data.clone()) else {
        panic!("mjml renders")
    };
    assert!(html.to_ascii_lowercase().starts_with("<!doctype html>"), "{}", &html[..80.min(html.len())]);
    assert!(html.contains("Hello Ada &amp; &lt;Bob&gt;"), "data stays escaped through MJML");
    assert!(!html.contains("<mj-"), "every mj- element compiled");
    assert!(text.contains("Hello Ada & <Bob>") && text.contains("Read (https://acme.example/a?b=1&c=2)"), "{text}");
    let Ok(Rendered::Email { html, .. }) = render(&cat, "plain", Channel::Email, None, data) else {
        panic!("html renders")
    };
    assert!(html.contains("style=\"color: #c00"), "the class rule is inlined: {html}");
    assert!(html.contains("@media (max-width: 600px)"), "media queries stay in a style block: {html}");
    // A broken MJML part fails the render with the part named.
    write(t, "broken/email.subject.hbs", "x");
    write(
        t,
        "broken/email.mjml.hbs",
        "<mjml><mj-body><mj-section><mj-colum>x</mj-colum></mj-section></mj-body></mjml>",
    );
    let cat = Catalogue::load(t).unwrap();
    let err = render(&cat, "broken", Channel::Email, None, json!({})).unwrap_err();
    assert_eq!(err.reason(), "render_error:broken:email.mjml");
    assert!(err.to_string().contains("mj-colum"), "{err}");
    // Both bodies in one folder is a load error.
    write(t, "broken/email.html.hbs", "<p>x</p>");
    assert!(Catalogue::load(t).unwrap_err().to_string().contains("HTML or MJML"));
}

#[test]
fn t_keeps_markup_hashes_prints_arguments_as_values_and_escapes_once_in_subexpressions() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path();
    write(t, "x/template.toml", "default_locale = \"de\"\n");
    write(t, "x/email.subject.hbs", "{{t \"order\" number=order.number}}");
    write(
        t,
        "x/email.html.hbs",
        "{{t \"items\" count=n}}|{{default missing (t \"title\" name=name)}}|{{t \"prénom\" prénom=name}}",
    );
    write(t, "x/push.body.hbs", "{{t \"order\" number=order.number}}");
    write(t, "x/push.data.json.hbs", "{\"title\": \"{{default missing (t \"title\" name=name)}}\"}");
    write(
        t,
        "x/locales/de.json",
        r##"{"order": "Bestellung {number}", "title": "„Hallo“ {name}",
            "items": {"one": "Du hast&#39;s: # <a href=\"#top\" style=\"color:#c00\">Artikel</a>",
                      "other": "Du hast&#39;s: # <a href=\"#top\" style=\"color:#c00\">Artikel</a>"},
            "prénom": "Salut { prénom }"}"##,
    );
    let cat = Catalogue::load(t).unwrap();
    let data = json!({"order": {"number": 100234}, "n": 1234.5, "name": "O'Brien <b>", "herald": {}});
    let Ok(Rendered::Email { subject, html, .. }) = render(&cat, "x", Channel::Email, Some("de-CH"), data.clone())
    else {
        panic!("renders")
    };
    // An order number is a value, not a quantity: no grouping, as {{order.number}} prints it.
    assert_eq!(subject, "Bestellung 100234");
    // `#` is the count only outside entities and tags; de-CH digits for a de-CH reader.
    assert!(html.starts_with("Du hast&#39;s: 1'234.5 <a href=\"#top\" style=\"color:#c00\">Artikel</a>|"), "{html}");
    // A subexpression's text is escaped once, by the outer {{…}}.
    assert!(html.contains("|„Hallo“ O&#x27;Brien &lt;b&gt;|"), "{html}");
    assert!(html.ends_with("|Salut O&#x27;Brien &lt;b&gt;"), "Unicode placeholder names: {html}");
    let Ok(Rendered::Push { body, data: push_data, .. }) = render(&cat, "x", Channel::Push, None, data) else {
        panic!("renders")
    };
    assert_eq!(body, "Bestellung 100234");
    assert_eq!(push_data["title"], "„Hallo“ O'Brien <b>", "JSON-escaped once, so it parses back intact");
    // A missing argument is the same error as printing the variable.
    let err = render(&cat, "x", Channel::Push, None, json!({"order": {}})).unwrap_err().to_string();
    assert!(err.contains("the data has no `order.number`"), "{err}");
}

#[test]
fn plural_messages_are_validated_when_loaded() {
    for (json, needle) in [
        (r##"{"n": {"few": "#", "many": "#"}}"##, "needs an `other` form"),
        (r##"{"n": {"one": "#", "other": "#", "=0": "none"}}"##, "`=0` is not one"),
        (r#"{"a.b": "x", "a": {"b": "y"}}"#, "defined twice"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x/template.toml", "default_locale = \"en\"\n");
        write(dir.path(), "x/sms.hbs", "hi");
        write(dir.path(), "x/locales/en.json", json);
        let err = Catalogue::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
}

/// A channel function compiles its own channel's parts only: the SMS function neither
/// pays for the email parts at cold start nor fails to start on an email part's syntax
/// error, and still tells a template without SMS parts from one it cannot render.
#[test]
fn a_catalogue_for_one_channel_compiles_and_renders_that_channel_only() {
    let files = |email_html: &str| {
        vec![
            ("otp/sms.hbs".to_owned(), "Code {{code}}".to_owned()),
            ("otp/email.subject.hbs".to_owned(), "Your code".to_owned()),
            ("otp/email.html.hbs".to_owned(), email_html.to_owned()),
            ("welcome/email.subject.hbs".to_owned(), "Hi".to_owned()),
            ("welcome/email.html.hbs".to_owned(), "<p>{{> footer}}</p>".to_owned()),
            ("_partials/footer.hbs".to_owned(), "Acme".to_owned()),
        ]
    };
    let sms =
        Catalogue::from_files_for("t", files("<p>{{#if}}</p>"), &[Channel::Sms]).expect("email parts not compiled");
    let data = json!({"code": "123456"});
    match sms.render(&tref("otp"), Channel::Sms, None, &data) {
        Ok(Rendered::Sms { body }) => assert_eq!(body, "Code 123456"),
        other => panic!("{other:?}"),
    }
    match sms.render(&tref("otp"), Channel::Email, None, &data) {
        Err(RenderErrorOrLookup::Render(e)) => assert!(e.message.contains("compiles no email parts"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(sms.render(&tref("welcome"), Channel::Sms, None, &data), Err(RenderErrorOrLookup::Lookup(_))));
    // Every channel: the same files fail, naming the file; valid ones render with the
    // partial compiled once for every registry.
    let err = Catalogue::from_files("t", files("<p>{{#if}}</p>")).expect_err("syntax error");
    assert!(err.to_string().contains("email.html.hbs"), "{err}");
    let all = Catalogue::from_files_for("t", files("<p>{{code}}</p>"), &Channel::ALL).expect("valid");
    match all.render(&tref("welcome"), Channel::Email, None, &json!({})) {
        Ok(Rendered::Email { html, .. }) => assert!(html.contains("<p>Acme</p>"), "{html}"),
        other => panic!("{other:?}"),
    }
}
