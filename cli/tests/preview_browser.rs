//! `herald preview` in a real browser: Debian's headless Chromium driven over W3C
//! WebDriver (chromedriver, plain HTTP/JSON). Opens the index, picks the shipped
//! newsletter, checks the email view (subject, List-Unsubscribe, the HTML inside the
//! sandboxed frame, the text part) and the SMS view (body, segment count), sees the page
//! re-render after a template file changes, and saves screenshots to
//! target/test-artifacts/preview-email.png and preview-sms.png.

mod preview_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use preview_support::{Preview, collapse, http, repo_root};
use serde_json::{Value, json};
use tempfile::TempDir;

/// W3C WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver on a free port, killed when dropped (after the session's browser).
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
}

impl Driver {
    fn start(chromedriver: &Path) -> Driver {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let mut driver = Driver { child, port, session: None };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let status = driver.call("GET", "/status", None);
                if status["ready"] == true {
                    return driver;
                }
            }
            if let Ok(Some(exit)) = driver.child.try_wait() {
                panic!("chromedriver exited at start: {exit}");
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready on port {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A WebDriver command; its `value`, or a panic with WebDriver's error.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let host = format!("127.0.0.1:{}", self.port);
        let r = http(self.port, method, path, Some(&host), body.as_deref().or((method == "POST").then_some("{}")));
        let answer: Value = serde_json::from_str(&r.body)
            .unwrap_or_else(|e| panic!("{method} {path}: WebDriver answered {} ({e}): {}", r.status, r.body));
        assert_eq!(r.status, 200, "{method} {path}: {answer}");
        answer["value"].clone()
    }

    fn session(&self) -> &str {
        self.session.as_deref().expect("a session")
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session()), body)
    }

    fn open_session(&mut self, chromium: &Path, profile: &Path) {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,1200",
            // Hermetic: the email's https images (and anything else) resolve nowhere.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": { "binary": chromium.display().to_string(), "args": args },
            "timeouts": { "implicit": 0, "pageLoad": 60_000, "script": 30_000 },
        }}});
        let value = self.call("POST", "/session", Some(caps));
        self.session = Some(value["sessionId"].as_str().expect("a session id").to_owned());
    }

    fn navigate(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })));
    }

    fn current_url(&self) -> String {
        self.cmd("GET", "/url", None).as_str().unwrap_or_default().to_owned()
    }

    /// The first element matching a CSS selector, waiting for it up to 15 s.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let r = self.raw("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
            if let Some(id) = r.get(ELEMENT).and_then(Value::as_str) {
                return id.to_owned();
            }
            assert!(Instant::now() < deadline, "no element {css}: {r}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A command whose failure is an answer (no such element), not a panic.
    fn raw(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string());
        let host = format!("127.0.0.1:{}", self.port);
        let target = format!("/session/{}{path}", self.session());
        let r = http(self.port, method, &target, Some(&host), body.as_deref());
        serde_json::from_str::<Value>(&r.body).map(|v| v["value"].clone()).unwrap_or(Value::Null)
    }

    fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.cmd("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or_default().to_owned()
    }

    fn attribute(&self, css: &str, name: &str) -> Value {
        let id = self.find(css);
        self.cmd("GET", &format!("/element/{id}/attribute/{name}"), None)
    }

    fn click(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", &format!("/element/{id}/click"), None);
    }

    fn enter_frame(&self, css: &str) {
        let id = self.find(css);
        self.cmd("POST", "/frame", Some(json!({ "id": { ELEMENT: id } })));
    }

    fn leave_frames(&self) {
        self.cmd("POST", "/frame", Some(json!({ "id": null })));
    }

    /// The viewport as PNG, written to `path`.
    fn screenshot(&self, path: &Path) {
        let encoded = self.cmd("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(encoded.as_str().unwrap_or_default()).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "a real PNG: {} bytes", png.len());
        std::fs::write(path, png).unwrap();
    }

    /// Waits until `check` holds for the text of `css` (the element may be replaced meanwhile).
    fn wait_text(&self, css: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.raw("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
            if let Some(id) = r.get(ELEMENT).and_then(Value::as_str) {
                let text = self.raw("GET", &format!("/element/{id}/text"), None);
                if let Some(t) = text.as_str().filter(|t| check(t)) {
                    return t.to_owned();
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what} in {css}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            // Closes the browser it started.
            let host = format!("127.0.0.1:{}", self.port);
            let _ = std::panic::catch_unwind(|| http(self.port, "DELETE", &format!("/session/{s}"), Some(&host), None));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `token=...` values replaced by `token=*`.
fn without_tokens(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find("token=") {
        out.push_str(&rest[..at + 6]);
        out.push('*');
        rest = &rest[at + 6..];
        rest = &rest[rest.find(|c: char| c.is_whitespace() || c == '>').unwrap_or(rest.len())..];
    }
    out.push_str(rest);
    out
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"));
    let dir = if target.is_absolute() { target } else { repo_root().join(target) }.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_preview_shows_the_newsletter_email_and_sms_in_headless_chromium() {
    let (Some(chromium), Some(chromedriver)) = (find_program("chromium"), find_program("chromedriver")) else {
        panic!(
            "the browser test needs Debian's chromium and chromedriver: run scripts/test.sh (it installs them), \
             or apt-get install chromium chromium-driver"
        );
    };
    let tmp = TempDir::new().unwrap();
    let templates = tmp.path().join("templates");
    preview_support::copy_dir(&repo_root().join("templates"), &templates);
    let preview = Preview::start(&templates);

    // What the server renders, to compare the browser's view with.
    let email = preview.json("/api/t/newsletter?channel=email");
    let message = email.get("message").unwrap_or_else(|| panic!("the newsletter's email renders: {email}"));
    let subject = message["subject"].as_str().unwrap().to_owned();
    assert!(message["html_bytes"].as_u64().unwrap() > 500, "the newsletter has HTML: {message}");
    let sms = preview.json("/api/t/newsletter?channel=sms");
    let sms = sms.get("message").unwrap_or_else(|| panic!("the newsletter's SMS renders: {sms}")).clone();

    let mut driver = Driver::start(&chromedriver);
    driver.open_session(&chromium, &tmp.path().join("profile"));

    driver.navigate(&preview.url);
    assert_eq!(driver.text("h1"), "Templates");
    driver.click("[data-testid=template-link-newsletter]");
    assert!(driver.current_url().ends_with("/t/newsletter"), "{}", driver.current_url());

    // The email as the recipient sees it.
    driver.find("[data-testid=email-pane]");
    assert_eq!(driver.text("[data-testid=email-subject]"), subject);
    assert_eq!(driver.text("[data-testid=category]"), "marketing");
    let unsubscribe = driver.text("[data-testid=email-header-list-unsubscribe]");
    assert!(unsubscribe.starts_with("<https://") && unsubscribe.contains("<mailto:"), "{unsubscribe}");
    assert_eq!(driver.text("[data-testid=email-header-list-unsubscribe-post]"), "List-Unsubscribe=One-Click");
    let text_part = driver.text("[data-testid=email-text]");
    assert!(!text_part.trim().is_empty(), "the text part is shown");
    // Each render signs a fresh unsubscribe token (its expiry moves with the clock).
    assert_eq!(without_tokens(&collapse(&text_part)), without_tokens(&collapse(message["text"].as_str().unwrap())));
    assert_eq!(driver.attribute("[data-testid=email-frame]", "sandbox"), json!(""), "no allow-* in the sandbox");

    // Inside the sandboxed frame: the HTML, rendered (the fixture's intro is in it).
    let fixture = email["fixture"].as_str().unwrap();
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(templates.join(format!("newsletter/fixtures/{fixture}.json"))).unwrap(),
    )
    .unwrap();
    let intro = data["intro"].as_str().expect("the newsletter fixture has an intro").to_owned();
    driver.enter_frame("[data-testid=email-frame]");
    let shown = driver.wait_text("body", "the email's HTML", |t| !t.trim().is_empty());
    assert!(collapse(&shown).contains(&collapse(&intro)), "the frame shows the intro {intro:?}: {shown}");
    driver.leave_frames();

    // The mobile width toggle narrows the frame.
    driver.click("[data-testid=width-mobile]");
    assert_eq!(driver.attribute("[data-testid=email-frame]", "class"), json!("mobile"));
    driver.click("[data-testid=width-desktop]");
    let dir = artifacts();
    driver.screenshot(&dir.join("preview-email.png"));

    // The SMS as a phone shows it, with what it costs.
    driver.click("[data-testid=channel-sms]");
    driver.find("[data-testid=sms-pane]");
    let body = driver.text("[data-testid=sms-body]");
    assert_eq!(collapse(&body), collapse(sms["body"].as_str().unwrap()));
    let segments = driver.text("[data-testid=sms-segments]");
    assert_eq!(segments, sms["segments"].to_string());
    assert!(segments.parse::<u32>().is_ok_and(|n| n >= 1), "{segments}");
    let encoding = driver.text("[data-testid=sms-encoding]");
    assert!(encoding == "GSM-7" || encoding == "UCS-2", "{encoding}");
    assert_eq!(driver.text("[data-testid=sms-left]"), sms["left_in_segment"].to_string());
    driver.screenshot(&dir.join("preview-sms.png"));

    // Editing the template re-renders the open page, without navigating.
    let url = driver.current_url();
    let sms_file = templates.join("newsletter/sms.hbs");
    let source = std::fs::read_to_string(&sms_file).unwrap();
    std::fs::write(&sms_file, format!("EDITED {source}")).unwrap();
    driver.wait_text("[data-testid=sms-body]", "the edited SMS", |t| t.starts_with("EDITED "));
    assert_eq!(driver.current_url(), url);
    let live = driver.text("[data-testid=live]");
    assert!(live.starts_with("re-rendered"), "{live}");
}
