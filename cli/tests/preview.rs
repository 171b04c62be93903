//! `herald preview` over HTTP: the real binary on a template folder the test writes, its
//! pages and JSON, the refusals (paths outside the folder, other hosts), a render error
//! shown as a message, and the re-render after a file changes.

mod preview_support;

use std::path::Path;
use std::time::{Duration, Instant};

use preview_support::{Preview, collapse, http};
use serde_json::json;
use tempfile::TempDir;

/// A valid FCM registration token shape (the sample recipient's device).
const TOKEN: &str = "fcm-token-0123456789abcdefghijklmnopqrstuvwxyz";

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// `<tmp>/templates` with `welcome` (every channel, an fr folder, four fixtures) and
/// `broken` (renders with a missing variable); `<tmp>/secret.txt` beside it, outside.
fn folder() -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new().unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "TOP-SECRET-42").unwrap();
    let t = tmp.path().join("templates");
    write(&t, "welcome/template.toml", "description = \"Welcome for <new> customers\"\ncategory = \"marketing\"\n");
    write(&t, "welcome/email.subject.hbs", "Welcome, {{name}}!");
    write(
        &t,
        "welcome/email.html.hbs",
        "<!doctype html><html><body><h1>Hello {{name}}</h1><p>Your code is {{code}}.</p>\
         <script>document.title = 'ran'</script></body></html>",
    );
    write(&t, "welcome/sms.hbs", "Hi {{name}}, welcome to Acme. Your code is {{code}}.");
    write(&t, "welcome/push.title.hbs", "Welcome {{name}}");
    write(&t, "welcome/push.body.hbs", "Tap to see your code {{code}}.");
    write(&t, "welcome/push.data.json.hbs", "{\"screen\": \"welcome\"}");
    write(&t, "welcome/fr/email.subject.hbs", "Bienvenue, {{name}} !");
    write(&t, "welcome/fr/email.html.hbs", "<p>Bonjour {{name}}</p>");
    let push = json!({ "platform": "fcm", "token": TOKEN });
    write(
        &t,
        "welcome/fixtures/default.json",
        &json!({ "name": "Ada", "code": "1234", "herald": { "push": push } }).to_string(),
    );
    write(
        &t,
        "welcome/fixtures/markup.json",
        &json!({ "name": "<script>alert(1)</script>", "code": "\"5\" & 'six'" }).to_string(),
    );
    write(&t, "welcome/fixtures/emoji.json", &json!({ "name": "Zoë 🙂", "code": "7" }).to_string());
    write(&t, "welcome/fixtures/long.json", &json!({ "name": "A".repeat(150), "code": "8" }).to_string());
    write(&t, "broken/email.subject.hbs", "Hello {{user.name}}");
    write(&t, "broken/email.html.hbs", "<p>Hi</p>");
    write(&t, "_partials/greet.hbs", "<p>\n{{who.name}}</p>");
    write(&t, "partial-error/email.subject.hbs", "Fine");
    write(&t, "partial-error/email.html.hbs", "<div>{{> greet}}</div>");
    (tmp, t)
}

fn testid<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let marker = format!("data-testid=\"{id}\">");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('<')? + start;
    Some(&page[start..end])
}

#[test]
fn the_index_lists_templates_with_channels_locales_category_and_fixtures() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    assert!(preview.url.starts_with("http://127.0.0.1:"), "{}", preview.url);

    let page = preview.get("/");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{csp}");
    assert!(page.body.contains("<a href=\"/t/welcome\" data-testid=\"template-link-welcome\">"), "{}", page.body);
    assert!(page.body.contains("data-testid=\"template-link-broken\""), "{}", page.body);
    // The description is escaped, not markup.
    assert!(page.body.contains("Welcome for &lt;new&gt; customers"), "{}", page.body);
    let row = &page.body[page.body.find("template-row-welcome").unwrap()..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("<td>Email, SMS, Push</td>"), "{row}");
    assert!(row.contains("<td>fr</td>"), "{row}");
    assert!(row.contains("<td>marketing</td>"), "{row}");
    assert!(row.contains("<td>4</td>"), "fixtures count: {row}");

    let list = preview.json("/api/templates");
    let welcome = list["templates"].as_array().unwrap().iter().find(|t| t["name"] == "welcome").unwrap();
    assert_eq!(welcome["channels"], json!(["email", "sms", "push"]));
    assert_eq!(welcome["locales"], json!(["fr"]));
    assert_eq!(welcome["fixtures"], json!(["default", "emoji", "long", "markup"]));

    // The script and style are the preview's own, served with it.
    let js = preview.get("/assets/preview.js");
    assert_eq!(js.status, 200);
    assert!(js.body.contains("/api/version"), "the page polls the version");
    assert_eq!(preview.get("/assets/preview.css").status, 200);
}

#[test]
fn the_email_pane_shows_headers_a_sandboxed_frame_and_the_text_part() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    let page = preview.get("/t/welcome");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert_eq!(testid(body, "email-subject"), Some("Welcome, Ada!"), "{body}");
    assert_eq!(testid(body, "email-from"), Some("Acme &lt;hello@acme.example&gt;"));
    assert_eq!(testid(body, "email-to"), Some("recipient@example.com"));
    assert_eq!(testid(body, "email-reply-to"), Some("support@acme.example"));
    assert_eq!(testid(body, "category"), Some("marketing"));
    let unsubscribe = testid(body, "email-header-list-unsubscribe").expect("List-Unsubscribe shown for marketing");
    assert!(unsubscribe.starts_with("&lt;https://acme.example/unsubscribe?token="), "{unsubscribe}");
    assert!(unsubscribe.contains("&lt;mailto:unsubscribe@acme.example"), "{unsubscribe}");
    assert_eq!(testid(body, "email-header-list-unsubscribe-post"), Some("List-Unsubscribe=One-Click"));
    assert!(testid(body, "email-html-size").unwrap().contains(" bytes)"), "{body}");
    assert!(collapse(testid(body, "email-text").unwrap()).contains("Hello Ada"), "{body}");

    // The HTML is in a frame with every sandbox restriction, loaded from its own route.
    let frame = &body[body.find("<iframe").unwrap()..];
    let frame = &frame[..frame.find('>').unwrap()];
    assert!(frame.contains(" sandbox=\"\""), "{frame}");
    assert!(!frame.contains("allow-"), "{frame}");
    let src = frame.split("src=\"").nth(1).unwrap().split('"').next().unwrap().replace("&amp;", "&");
    assert_eq!(src, "/t/welcome/email.html?channel=email&fixture=default");
    let html = preview.get(&src);
    assert_eq!(html.status, 200);
    assert_eq!(
        html.header("content-security-policy"),
        Some("sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; frame-ancestors 'self'")
    );
    assert!(html.body.contains("<h1>Hello Ada</h1>"), "{}", html.body);

    // The other locale, picked by the selector.
    let fr = preview.get("/t/welcome?channel=email&locale=fr&fixture=default");
    assert_eq!(testid(&fr.body, "email-subject"), Some("Bienvenue, Ada !"), "{}", fr.body);
    assert!(fr.body.contains("<option value=\"fr\" selected>fr</option>"), "{}", fr.body);
    let fr_html = preview.get("/t/welcome/email.html?channel=email&locale=fr&fixture=default");
    assert!(fr_html.body.contains("Bonjour Ada"), "{}", fr_html.body);

    let api = preview.json("/api/t/welcome?locale=fr");
    assert_eq!(api["message"]["subject"], "Bienvenue, Ada !");
    assert_eq!(api["locale"], "fr");
}

#[test]
fn the_sms_and_push_panes_show_what_they_cost() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);

    let page = preview.get("/t/welcome?channel=sms");
    assert_eq!(page.status, 200, "{}", page.body);
    let body = "Hi Ada, welcome to Acme. Your code is 1234.";
    assert_eq!(testid(&page.body, "sms-body"), Some(body), "{}", page.body);
    assert_eq!(testid(&page.body, "sms-sender"), Some("ACME"));
    assert_eq!(testid(&page.body, "sms-encoding"), Some("GSM-7"));
    assert_eq!(testid(&page.body, "sms-segments"), Some("1"));
    assert_eq!(testid(&page.body, "sms-characters"), Some(body.len().to_string().as_str()));
    assert_eq!(testid(&page.body, "sms-left"), Some((160 - body.len()).to_string().as_str()));

    // UCS-2: 70 code units in one segment; the emoji takes two.
    let emoji = preview.json("/api/t/welcome?channel=sms&fixture=emoji");
    let m = &emoji["message"];
    assert_eq!(m["body"], "Hi Zoë 🙂, welcome to Acme. Your code is 7.");
    assert_eq!((m["encoding"].as_str(), m["segments"].as_u64()), (Some("ucs-2"), Some(1)), "{m}");
    assert_eq!(m["left_in_segment"], 70 - m["units"].as_u64().unwrap());
    let page = preview.get("/t/welcome?channel=sms&fixture=emoji");
    assert_eq!(testid(&page.body, "sms-encoding"), Some("UCS-2"));

    // 150 letters of name: two concatenated segments of 153 septets.
    let long = preview.json("/api/t/welcome?channel=sms&fixture=long");
    let m = &long["message"];
    let units = m["units"].as_u64().unwrap();
    assert_eq!(m["segments"], 2, "{m}");
    assert_eq!(m["left_in_segment"], 2 * 153 - units, "{m}");
    let page = preview.get("/t/welcome?channel=sms&fixture=long");
    assert_eq!(testid(&page.body, "sms-segments"), Some("2"));

    let page = preview.get("/t/welcome?channel=push");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(testid(&page.body, "push-title"), Some("Welcome Ada"), "{}", page.body);
    assert_eq!(testid(&page.body, "push-body"), Some("Tap to see your code 1234."));
    assert!(testid(&page.body, "push-data").unwrap().contains("&quot;screen&quot;: &quot;welcome&quot;"));
    for provider in ["apns", "fcm", "webpush"] {
        assert!(page.body.contains(&format!("data-testid=\"push-size-{provider}\"")), "{provider}: {}", page.body);
    }
    let push = preview.json("/api/t/welcome?channel=push");
    for provider in ["apns", "fcm", "webpush"] {
        let size = &push["message"]["payload"][provider];
        let (bytes, limit) = (size["bytes"].as_u64().unwrap(), size["limit"].as_u64().unwrap());
        assert!(bytes > 20 && bytes < limit && size["fits"] == true, "{provider}: {size}");
        assert!(page.body.contains(&format!("<td>{bytes}</td><td>{limit}</td>")), "{provider}: {}", page.body);
    }
}

#[test]
fn values_from_fixtures_are_escaped_everywhere_on_the_page() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    for channel in ["email", "sms", "push"] {
        let page = preview.get(&format!("/t/welcome?channel={channel}&fixture=markup"));
        assert_eq!(page.status, 200, "{channel}: {}", page.body);
        assert!(!page.body.contains("<script>alert"), "{channel}: {}", page.body);
        assert!(!page.body.contains("'six'"), "{channel}: {}", page.body);
    }
    let sms = preview.get("/t/welcome?channel=sms&fixture=markup");
    assert_eq!(
        testid(&sms.body, "sms-body"),
        Some(
            "Hi &lt;script&gt;alert(1)&lt;/script&gt;, welcome to Acme. Your code is &quot;5&quot; &amp; &#39;six&#39;."
        )
    );
}

#[test]
fn a_render_error_is_shown_with_its_file_instead_of_the_pane() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    let page = preview.get("/t/broken");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains("data-testid=\"email-pane\""), "{}", page.body);
    let location = testid(&page.body, "problem-location").expect("the file is named");
    assert!(location.contains("/broken/email.subject.hbs:1"), "{location}");
    let message = testid(&page.body, "problem-message").unwrap();
    assert!(message.contains("user.name") && message.contains("line 1"), "{message}");
    let api = preview.json("/api/t/broken");
    assert!(api["error"]["message"].as_str().unwrap().contains("user.name"), "{api}");
    assert!(api.get("message").is_none(), "{api}");
    // An error inside a partial names the partial's file.
    let page = preview.get("/t/partial-error");
    let location = testid(&page.body, "problem-location").expect("the partial is named");
    assert!(location.contains("/_partials/greet.hbs:2"), "{location}: {}", page.body);
    // The frame's own route answers an empty document, not an error.
    assert_eq!(preview.get("/t/broken/email.html").status, 200);
}

#[test]
fn names_in_urls_never_reach_the_file_system() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    let refused = [
        "/t/..",
        "/t/%2e%2e",
        "/t/%2E%2E",
        "/t/..%2fsecret.txt",
        "/t/%2e%2e%2fsecret.txt",
        "/t/..%5csecret.txt",
        "/t/welcome%2f..%2f..%2fsecret.txt",
        "/t/%2Fetc%2Fpasswd",
        "/t/../../secret.txt",
        "/../secret.txt",
        "/secret.txt",
        "/etc/passwd",
        "//etc/passwd",
        "/templates/welcome/email.html.hbs",
        "/welcome/fixtures/default.json",
        "/t/welcome/fixtures/default.json",
        "/t/welcome/email.subject.hbs",
        "/t/welcome?fixture=../../secret",
        "/t/welcome?fixture=..%2f..%2fsecret",
        "/t/welcome?fixture=%2e%2e%2f%2e%2e%2fsecret",
        "/t/welcome?fixture=%2Fetc%2Fpasswd",
        "/t/welcome?fixture=default.json",
        "/t/welcome?locale=../fr",
        "/t/welcome?locale=%2e%2e",
        "/t/welcome?locale=%2Ftmp",
        "/t/welcome?channel=..%2fsms",
        "/t/welcome/email.html?fixture=../../secret",
        "/api/t/..%2fsecret.txt",
        "/api/t/welcome?fixture=../../secret",
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
    ];
    for target in refused {
        let r = http(preview.port, "GET", target, Some(&format!("127.0.0.1:{}", preview.port)), None);
        assert!(r.status == 404 || r.status == 400, "{target}: {} {}", r.status, r.body);
        assert!(!r.body.contains("TOP-SECRET") && !r.body.contains("root:"), "{target}: {}", r.body);
        assert!(!r.body.contains("{{name}}"), "{target} served a template file: {}", r.body);
    }
    // Nothing in the answers echoes what was asked for.
    let r = preview.get("/t/%3Cb%3Eyo%3C%2Fb%3E");
    assert_eq!(r.status, 404);
    assert!(!r.body.contains("<b>yo") && !r.body.contains("&lt;b&gt;yo"), "{}", r.body);
    // Only GET.
    let post = http(preview.port, "POST", "/t/welcome", Some(&format!("127.0.0.1:{}", preview.port)), Some("{}"));
    assert_eq!(post.status, 405);
}

#[test]
fn requests_for_another_host_are_refused() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    let port = preview.port;
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("LocalHost:{port}")] {
        let r = http(port, "GET", "/", Some(&host), None);
        assert_eq!(r.status, 200, "{host}");
    }
    let others = [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("0.0.0.0:{port}"),
        format!("[::1]:{port}"),
    ];
    for host in &others {
        for target in ["/", "/api/version", "/api/t/welcome", "/t/welcome/email.html"] {
            let r = http(port, "GET", target, Some(host), None);
            assert_eq!(r.status, 403, "{host} {target}: {}", r.body);
            assert!(!r.body.contains("evil") && !r.body.contains("Ada"), "{}", r.body);
        }
    }
    // Absolute-form target naming another host.
    let r = http(port, "GET", &format!("http://evil.example:{port}/"), Some(&format!("127.0.0.1:{port}")), None);
    assert_eq!(r.status, 403, "{}", r.body);
    // No Host at all.
    let r = http(port, "GET", "/", None, None);
    assert!(r.status == 400 || r.status == 403, "{}", r.status);
    // The logs say nothing of the requests.
    assert!(!preview.stderr().contains("evil"), "{}", preview.stderr());
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_changed_template_file_is_rendered_again() {
    let (_tmp, dir) = folder();
    let preview = Preview::start(&dir);
    let first = preview.json("/api/version")["version"].as_str().unwrap().to_owned();
    assert_eq!(preview.json("/api/version")["version"], first, "nothing changed, same version");
    let sms = preview.json("/api/t/welcome?channel=sms");
    assert_eq!(sms["message"]["body"], "Hi Ada, welcome to Acme. Your code is 1234.");

    std::fs::write(dir.join("welcome/sms.hbs"), "Changed for {{name}}: code {{code}}, twice {{code}}.").unwrap();
    wait_for("a new version", || preview.json("/api/version")["version"] != first);
    let sms = preview.json("/api/t/welcome?channel=sms");
    assert_eq!(sms["message"]["body"], "Changed for Ada: code 1234, twice 1234.", "{sms}");
    let page = preview.get("/t/welcome?channel=sms");
    assert_eq!(testid(&page.body, "sms-body"), Some("Changed for Ada: code 1234, twice 1234."));

    // A template that stops compiling: the index and the page say where, and recover.
    let second = preview.json("/api/version")["version"].as_str().unwrap().to_owned();
    std::fs::write(dir.join("welcome/sms.hbs"), "Hi {{#if name}}unclosed").unwrap();
    wait_for("the broken version", || preview.json("/api/version")["version"] != second);
    let index = preview.get("/");
    assert_eq!(index.status, 200, "{}", index.body);
    let location = testid(&index.body, "problem-location").expect("the catalogue error is shown");
    assert!(location.contains("welcome/sms.hbs"), "{location}");
    let page = preview.get("/t/welcome?channel=sms");
    assert_eq!(page.status, 200);
    assert!(testid(&page.body, "problem-location").unwrap().contains("welcome/sms.hbs"), "{}", page.body);

    std::fs::write(dir.join("welcome/sms.hbs"), "Fixed, {{name}}.").unwrap();
    write(&dir, "second/sms.hbs", "Another one.");
    wait_for("the fixed version", || preview.json("/api/t/welcome?channel=sms")["message"]["body"] == "Fixed, Ada.");
    assert!(preview.get("/").body.contains("data-testid=\"template-link-second\""));
    let second = preview.json("/api/t/second");
    assert_eq!(second["channel"], "sms", "the first channel it serves: {second}");
    assert_eq!(second["message"]["body"], "Another one.");
}

#[test]
fn a_port_in_use_is_an_error_not_another_port() {
    let (_tmp, dir) = folder();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("--config")
        .arg(preview_support::repo_root().join("herald.toml"))
        .args(["preview", dir.to_str().unwrap(), "--port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}
