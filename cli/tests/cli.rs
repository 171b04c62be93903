//! The real `herald` binary, run on files as a user would, against a private
//! state folder. Receipts and outbox files are asserted exactly.

use std::collections::BTreeSet;

use herald_e2e::{Run, Sandbox, header};
use serde_json::{Value, json};

fn sandbox() -> Sandbox {
    Sandbox::new(env!("CARGO_BIN_EXE_herald"))
}

fn triple(id: &str, status: &str, reason: &str) -> (String, String, String) {
    (id.to_owned(), status.to_owned(), reason.to_owned())
}

fn names(sb: &Sandbox) -> BTreeSet<String> {
    sb.outbox_files().into_keys().collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn the_shipped_examples_send_and_a_second_run_reports_the_same_outcomes() {
    let sb = sandbox();
    let run = sb.run(&["send", "examples/requests.jsonl"]);
    run.assert_ok();
    let ids = [
        "order-A-1001-email",
        "order-A-1002-email-fr",
        "newsletter-2026-48-cust-3",
        "otp-7731",
        "order-A-1001-push",
        "otp-7732-apns",
        "reset-7f3a-email",
        "cart-c-88-email",
        "shipment-A-1001-push",
        "shipment-A-1002-sms-fr",
    ];
    let expected: Vec<_> = ids.iter().map(|id| triple(id, "sent", "")).collect();
    assert_eq!(run.outcomes(), expected, "{}", run.stderr);
    assert!(run.stderr.contains("10 request(s): 10 sent"), "{}", run.stderr);
    for r in run.receipts() {
        assert!(r["provider_message_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(r["at"].as_str().is_some());
        assert!(r["metadata"].is_object());
    }
    assert_eq!(
        run.receipts()[0]["metadata"],
        json!({"journey_id": "j-checkout", "step": "confirm", "order": "A-1001"})
    );
    assert_eq!(
        names(&sb),
        set(&[
            "cart-c-88-email.eml",
            "newsletter-2026-48-cust-3.eml",
            "order-A-1001-email.eml",
            "order-A-1001-push.push.json",
            "order-A-1002-email-fr.eml",
            "otp-7731.sms.json",
            "otp-7732-apns.push.json",
            "reset-7f3a-email.eml",
            "shipment-A-1001-push.push.json",
            "shipment-A-1002-sms-fr.sms.json",
        ])
    );
    let files = sb.outbox_files();

    // A real RFC 5322 message, one-click unsubscribe on marketing mail only.
    let news = &files["newsletter-2026-48-cust-3.eml"];
    assert_eq!(header(news, "To").as_deref(), Some("<grace@example.org>"));
    assert_eq!(header(news, "From").as_deref(), Some("\"Acme\" <hello@acme.example>"));
    assert_eq!(header(news, "Subject").as_deref(), Some("This week at Acme, Grace"));
    assert_eq!(header(news, "MIME-Version").as_deref(), Some("1.0"));
    assert!(header(news, "Message-ID").is_some_and(|m| m.ends_with("@acme.example>")));
    assert!(header(news, "Date").is_some());
    assert!(header(news, "Content-Type").unwrap().starts_with("multipart/alternative"));
    let list = header(news, "List-Unsubscribe").unwrap();
    assert!(list.starts_with("<https://acme.example/unsubscribe?token="), "{list}");
    assert!(list.contains("<mailto:unsubscribe@acme.example?subject=unsubscribe>"), "{list}");
    assert_eq!(header(news, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert!(news.contains("Content-Type: text/plain") && news.contains("Content-Type: text/html"));
    let order = &files["order-A-1001-email.eml"];
    assert!(header(order, "List-Unsubscribe").is_none(), "transactional mail has no unsubscribe header");
    assert_eq!(header(order, "Subject").as_deref(), Some("Your order A-1001 is confirmed"));
    // fr-CA falls back to the French template.
    let fr = &files["order-A-1002-email-fr.eml"];
    assert!(header(fr, "Subject").unwrap().starts_with("=?utf-8?"), "non-ASCII subject is RFC 2047 encoded");
    assert!(fr.contains("Merci,"), "{fr}");

    let sms: Value = serde_json::from_str(&files["otp-7731.sms.json"]).unwrap();
    assert_eq!(sms["to"], "+14155550123");
    assert_eq!(sms["encoding"], "gsm-7");
    assert_eq!(sms["segments"], 1);
    assert_eq!(sms["body"], "482913 is your Acme verification code. It expires in 5 minutes. Never share it.");
    let push: Value = serde_json::from_str(&files["order-A-1001-push.push.json"]).unwrap();
    assert_eq!(push["platform"], "fcm");
    assert_eq!(push["title"], "Order A-1001 confirmed");
    assert_eq!(push["data"]["order_number"], "A-1001");

    // The same file again: every request reports its recorded outcome again, under
    // the same receipt id, and nothing is sent twice.
    let again = sb.run(&["send", "examples/requests.jsonl"]);
    again.assert_ok();
    let same: Vec<_> = ids.iter().map(|id| triple(id, "sent", "")).collect();
    assert_eq!(again.outcomes(), same);
    for (first, second) in run.receipts().iter().zip(again.receipts()) {
        assert_eq!(first["receipt_id"], second["receipt_id"]);
        assert_eq!(first["provider_message_id"], second["provider_message_id"]);
    }
    assert_eq!(sb.outbox_files(), files, "nothing new in the outbox");
}

fn request(id: &str, channel: &str, category: &str, recipient: Value, template: &str, data: Value) -> String {
    json!({"id": id, "channel": channel, "category": category, "recipient": recipient, "template": template, "data": data,
           "metadata": {"test": id}})
    .to_string()
}

fn mixed_file() -> String {
    let order = json!({"customer": {"first_name": "Ada"}, "order": {"number": "A-1", "total": "$1", "items": []}});
    let ada = json!({"id": "u-ada", "email": "ada@example.com"});
    let lin = json!({"id": "u-lin", "email": "lin@example.net"});
    let phone = json!({"id": "u-sam", "phone": "+447700900123"});
    let news = json!({"intro": "hi", "articles": []});
    [
        request("m-order", "email", "transactional", ada.clone(), "order-confirmation", order.clone()),
        r#"{"id": "m-broken", "channel": "email", "#.to_owned(),
        request(
            "m-typo",
            "email",
            "transactional",
            json!({"id": "u", "emial": "a@example.com"}),
            "order-confirmation",
            order.clone(),
        ),
        request(
            "m-bad-email",
            "email",
            "transactional",
            json!({"id": "u", "email": "ada.example.com"}),
            "order-confirmation",
            order.clone(),
        ),
        request(
            "m-bad-phone",
            "sms",
            "transactional",
            json!({"id": "u", "phone": "0044 7700 900123"}),
            "one-time-code",
            json!({"code": "1"}),
        ),
        request("m-no-template", "email", "transactional", ada.clone(), "nope", json!({})),
        request("m-order", "email", "transactional", ada, "order-confirmation", order),
        request("p1", "email", "marketing", lin.clone(), "newsletter", news.clone()),
        request("p2", "email", "marketing", lin.clone(), "newsletter", news.clone()),
        request("p3", "email", "marketing", lin.clone(), "newsletter", news.clone()),
        request("p4", "email", "marketing", lin, "newsletter", news),
        request("s1", "sms", "promo", phone.clone(), "one-time-code", json!({"code": "A"})),
        request("s2", "sms", "promo", phone.clone(), "one-time-code", json!({"code": "B"})),
        request("s3", "sms", "promo", phone, "one-time-code", json!({"code": "C"})),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn a_mixed_file_gets_exactly_one_receipt_per_request() {
    let sb = sandbox();
    let file = sb.write("mixed.jsonl", &mixed_file());
    let run = sb.run(&["send", file.to_str().unwrap()]);
    run.assert_ok();
    let expected = vec![
        triple("m-order", "sent", ""),
        triple("", "rejected", "invalid_request:json"),
        triple("m-typo", "rejected", "invalid_request:recipient.emial"),
        triple("m-bad-email", "rejected", "invalid_request:recipient.email"),
        triple("m-bad-phone", "rejected", "invalid_request:recipient.phone"),
        triple("m-no-template", "rejected", "unknown_template:nope"),
        triple("m-order", "sent", ""),
        triple("p1", "sent", ""),
        triple("p2", "sent", ""),
        triple("p3", "sent", ""),
        triple("p4", "capped", "frequency_capped:marketing:7d"),
        triple("s1", "sent", ""),
        triple("s2", "sent", ""),
        triple("s3", "capped", "frequency_capped:daily-sms"),
    ];
    assert_eq!(run.outcomes(), expected, "{}", run.stderr);
    let receipts = run.receipts();
    // Every receipt says where its request came from, and echoes the metadata it could read.
    for (i, r) in receipts.iter().enumerate() {
        assert_eq!(r["source"], format!("{}:{}", file.display(), i + 1));
        if i != 1 {
            assert_eq!(r["metadata"]["test"], r["request_id"], "{r}");
        }
    }
    // Actionable details that name the field and never echo the address.
    let detail = |i: usize| receipts[i]["detail"].as_str().unwrap().to_owned();
    assert!(detail(2).contains("did you mean `email`"), "{}", detail(2));
    assert!(detail(3).starts_with("recipient.email:") && !detail(3).contains("ada.example.com"), "{}", detail(3));
    assert!(detail(4).contains("E.164") && !detail(4).contains("7700"), "{}", detail(4));
    assert!(detail(5).contains("no template named `nope`"), "{}", detail(5));
    // m-order is in the file twice, the same request: its one outcome, reported twice.
    assert!(run.stderr.contains("14 request(s): 7 sent, 2 capped, 5 rejected"), "{}", run.stderr);
    assert_eq!(receipts[0]["receipt_id"], receipts[6]["receipt_id"]);
    assert_eq!(names(&sb), set(&["m-order.eml", "p1.eml", "p2.eml", "p3.eml", "s1.sms.json", "s2.sms.json"]));

    // Resending the file: every request reports the same outcome under the same receipt
    // id (the capped ones stay capped), and nothing new is sent.
    let again = sb.run(&["send", file.to_str().unwrap()]);
    again.assert_ok();
    assert_eq!(again.outcomes(), expected);
    for (first, second) in receipts.iter().zip(again.receipts()) {
        assert_eq!(first["receipt_id"], second["receipt_id"], "{second}");
    }
    assert_eq!(names(&sb).len(), 6);
}

#[test]
fn arrays_single_objects_and_stdin_are_accepted() {
    let sb = sandbox();
    let a = request(
        "arr-1",
        "sms",
        "transactional",
        json!({"id": "u", "phone": "+33612345678"}),
        "one-time-code",
        json!({"code": "1"}),
    );
    let b = request(
        "arr-2",
        "sms",
        "transactional",
        json!({"id": "u", "phone": "+33612345678"}),
        "one-time-code",
        json!({"code": "2"}),
    );
    let arr = sb.write("batch.json", &format!("[{a},\n {b}, 42]"));
    let run = sb.run(&["send", arr.to_str().unwrap()]);
    run.assert_ok();
    assert_eq!(
        run.outcomes(),
        vec![
            triple("arr-1", "sent", ""),
            triple("arr-2", "sent", ""),
            triple("", "rejected", "invalid_request:request")
        ]
    );
    assert_eq!(run.receipts()[2]["source"], format!("{}[2]", arr.display()));

    let run = sb.run(&["send", "examples/order-email.json"]);
    assert_eq!(run.outcomes(), vec![triple("order-A-1001-email", "sent", "")]);

    let c = request(
        "stdin-1",
        "sms",
        "transactional",
        json!({"id": "u", "phone": "+33612345678"}),
        "one-time-code",
        json!({"code": "3"}),
    );
    let run = sb.run_with_stdin(&["send", "-"], &(c + "\n"));
    run.assert_ok();
    assert_eq!(run.outcomes(), vec![triple("stdin-1", "sent", "")]);
    assert_eq!(run.receipts()[0]["source"], "stdin", "a single JSON document is one request");
}

#[test]
fn a_missing_file_fails_the_run_but_not_the_other_files() {
    let sb = sandbox();
    let run = sb.run(&["send", "does-not-exist.jsonl", "examples/order-email.json"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("does-not-exist.jsonl"), "{}", run.stderr);
    assert_eq!(run.outcomes(), vec![triple("order-A-1001-email", "sent", "")]);
}

#[test]
fn quiet_hours_defer_and_flush_sends_when_the_window_opens() {
    let mut sb = sandbox();
    // 03:00 UTC = 22:00 in New York, inside 21:00-08:00. The +1 number has no timezone:
    // it waits for the window to open in every US and Canadian clock, the last of them
    // Honolulu's (UTC-10), not for the configured default zone.
    sb.now = Some("2026-11-28T03:00:00Z".into());
    let promo = request(
        "night-1",
        "sms",
        "promo",
        json!({"id": "u-night", "phone": "+12025550142"}),
        "one-time-code",
        json!({"code": "N"}),
    );
    let tokyo = request(
        "tokyo-1",
        "sms",
        "promo",
        json!({"id": "u-tokyo", "phone": "+819012345678", "timezone": "Asia/Tokyo"}),
        "one-time-code",
        json!({"code": "T"}),
    );
    let otp = request(
        "night-otp",
        "sms",
        "transactional",
        json!({"id": "u-night", "phone": "+12025550142"}),
        "one-time-code",
        json!({"code": "9"}),
    );
    let later = json!({"id": "later-1", "channel": "email", "category": "transactional", "recipient": {"id": "u", "email": "a@example.com"},
                       "template": "one-time-code", "data": {"code": "L"}, "send_after": "2026-11-28T05:00:00Z"})
    .to_string();
    let file = sb.write("night.jsonl", &[promo, tokyo, otp, later].join("\n"));
    let run = sb.run(&["send", file.to_str().unwrap()]);
    run.assert_ok();
    assert_eq!(
        run.outcomes(),
        vec![
            triple("night-1", "deferred", "quiet_hours"),
            triple("tokyo-1", "sent", ""),
            triple("night-otp", "sent", ""),
            triple("later-1", "deferred", "send_after"),
        ]
    );
    let receipts = run.receipts();
    assert_eq!(receipts[0]["deferred_until"], "2026-11-28T18:00:00Z", "08:00 in Honolulu");
    assert_eq!(receipts[3]["deferred_until"], "2026-11-28T05:00:00Z");

    // A deferred request has no outcome yet: `status` says it waits, and why.
    let status = sb.run(&["status", "night-1"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let line: serde_json::Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!((line["status"].as_str(), line["reason"].as_str()), (Some("deferred"), Some("quiet_hours")));

    // Nothing is due yet.
    let run = sb.run(&["flush"]);
    run.assert_ok();
    assert!(run.outcomes().is_empty());
    assert!(run.stderr.contains("2 request(s) still deferred"), "{}", run.stderr);

    sb.now = Some("2026-11-28T06:00:00Z".into());
    let run = sb.run(&["flush"]);
    assert_eq!(run.outcomes(), vec![triple("later-1", "sent", "")]);
    sb.now = Some("2026-11-28T13:00:00Z".into());
    let run = sb.run(&["flush"]);
    run.assert_ok();
    assert!(run.outcomes().is_empty(), "08:00 in New York is 03:00 in Honolulu: {:?}", run.outcomes());
    sb.now = Some("2026-11-28T18:00:00Z".into());
    let run = sb.run(&["flush"]);
    assert_eq!(run.outcomes(), vec![triple("night-1", "sent", "")]);
    assert_eq!(run.receipts()[0]["source"], format!("{}:1", file.display()));
    let run = sb.run(&["flush"]);
    assert!(run.outcomes().is_empty());
    assert!(names(&sb).contains("night-1.sms.json"));

    let status = sb.run(&["status", "night-1"]);
    status.assert_ok();
    let latest: Value = serde_json::from_str(status.stdout.trim()).unwrap();
    assert_eq!(latest["status"], "sent");
    assert_eq!(latest["at"], "2026-11-28T18:00:00Z", "when it was sent, not when it was deferred");
}

#[test]
fn suppression_and_unsubscribe_commands_apply_to_later_sends() {
    let sb = sandbox();
    sb.run(&["suppress", "Lin@Example.NET", "--reason", "hard_bounce"]).assert_ok();
    sb.run(&["suppress", "+44 7700 900123", "--reason", "complaint"]).assert_ok();
    sb.run(&["unsubscribe", "u-ada", "--category", "marketing"]).assert_ok();
    let news = json!({"intro": "hi", "articles": []});
    let file = sb.write(
        "r.jsonl",
        &[
            request(
                "a1",
                "email",
                "marketing",
                json!({"id": "u-x", "email": "lin@example.net"}),
                "newsletter",
                news.clone(),
            ),
            request(
                "a2",
                "sms",
                "transactional",
                json!({"id": "u-y", "phone": "+447700900123"}),
                "one-time-code",
                json!({"code": "1"}),
            ),
            request(
                "a3",
                "email",
                "marketing",
                json!({"id": "u-ada", "email": "ada@example.com"}),
                "newsletter",
                news.clone(),
            ),
            request(
                "a4",
                "email",
                "transactional",
                json!({"id": "u-ada", "email": "ada@example.com"}),
                "one-time-code",
                json!({"code": "2"}),
            ),
        ]
        .join("\n"),
    );
    let run = sb.run(&["send", file.to_str().unwrap()]);
    assert_eq!(
        run.outcomes(),
        vec![
            triple("a1", "suppressed", "suppressed:hard_bounce"),
            triple("a2", "suppressed", "suppressed:complaint"),
            triple("a3", "unsubscribed", "unsubscribed:marketing"),
            triple("a4", "sent", ""),
        ]
    );
    sb.run(&["unsuppress", "lin@example.net"]).assert_ok();
    sb.run(&["resubscribe", "u-ada", "--category", "marketing"]).assert_ok();
    let file = sb.write(
        "r2.jsonl",
        &[
            request(
                "b1",
                "email",
                "marketing",
                json!({"id": "u-x", "email": "lin@example.net"}),
                "newsletter",
                news.clone(),
            ),
            request("b2", "email", "marketing", json!({"id": "u-ada", "email": "ada@example.com"}), "newsletter", news),
        ]
        .join("\n"),
    );
    let run = sb.run(&["send", file.to_str().unwrap()]);
    assert_eq!(run.outcomes(), vec![triple("b1", "sent", ""), triple("b2", "sent", "")]);

    let bad = sb.run(&["suppress", "not an address"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--platform"), "{}", bad.stderr);
    let bad = sb.run(&["unsubscribe", "u-ada", "--category", "transactional"]);
    assert_ne!(bad.code, 0);
}

/// `herald render --channel sms` shows what goes out: transliterated only when the
/// category's setting says so, and it names the setting.
#[test]
fn render_follows_the_transliteration_setting_of_the_category() {
    let sb = sandbox();
    let data = sb.write("quote.json", r#"{"code": "48\u2019913", "minutes": 5}"#);
    let data = data.to_str().unwrap();
    let render = |config: Option<&str>, category: &str, format: &str| {
        let mut args = Vec::new();
        if let Some(c) = config {
            args.extend(["--config", c]);
        }
        args.extend(["render", "one-time-code", "--channel", "sms", "--data", data, "--category", category]);
        args.extend(["--format", format]);
        let run = sb.run(&args);
        run.assert_ok();
        run
    };
    // Built in: every category but transactional is transliterated.
    let otp = render(None, "otp", "text");
    assert!(otp.stdout.starts_with("48'913 is your"), "{}", otp.stdout);
    assert!(
        otp.stderr.contains("transliterated for category otp (sms.transliterate = \"non_transactional\")"),
        "{}",
        otp.stderr
    );
    assert!(otp.stderr.contains("1 segment(s), gsm-7"), "{}", otp.stderr);
    let code = render(None, "transactional", "text");
    assert!(code.stdout.starts_with("48\u{2019}913 is your"), "{}", code.stdout);
    assert!(code.stderr.contains("2 segment(s), ucs-2"), "{}", code.stderr);
    assert!(
        code.stderr.contains(
            "not transliterated: sms.transliterate = \"non_transactional\" sends category transactional as written"
        ),
        "{}",
        code.stderr
    );
    let json: Value = serde_json::from_str(&render(None, "transactional", "json").stdout).unwrap();
    assert_eq!(
        json["transliterate"],
        json!({"setting": "sms.transliterate", "value": "non_transactional", "applies": false})
    );
    assert!(json.get("transliterated").is_none(), "{json}");
    assert_eq!(json["encoding"], "ucs-2");

    // A configuration that says never, but always for one category.
    let templates = herald_e2e::repo_root().join("templates");
    let config = format!(
        "templates = {:?}\n[sms]\ntransliterate = \"never\"\n[sms.categories.promo]\ntransliterate = \"always\"\n",
        templates.display().to_string()
    );
    let config = sb.write("never.toml", &config);
    let config = config.to_str().unwrap();
    let marketing = render(Some(config), "marketing", "text");
    assert!(marketing.stdout.starts_with("48\u{2019}913"), "{}", marketing.stdout);
    assert!(
        marketing.stderr.contains("sms.transliterate = \"never\" sends category marketing as written"),
        "{}",
        marketing.stderr
    );
    let promo = render(Some(config), "promo", "json");
    let json: Value = serde_json::from_str(&promo.stdout).unwrap();
    assert_eq!(json["transliterate"]["setting"], "sms.categories.promo.transliterate");
    assert_eq!(json["transliterated"]["body"].as_str().map(|b| b.starts_with("48'913")), Some(true), "{json}");
}

#[test]
fn render_prints_each_part_and_the_sms_body_alone() {
    let sb = sandbox();
    let run = sb.run(&["render", "one-time-code", "--channel", "sms", "--data", "examples/data/otp.json"]);
    run.assert_ok();
    assert_eq!(run.stdout, "482913 is your Acme verification code. It expires in 5 minutes. Never share it.\n");
    assert!(run.stderr.contains("1 segment(s), gsm-7"), "{}", run.stderr);

    let run = sb.run(&[
        "render",
        "order-confirmation",
        "--channel",
        "email",
        "--data",
        "examples/data/order.json",
        "--locale",
        "fr-CA",
    ]);
    run.assert_ok();
    assert!(
        run.stdout.starts_with("=== subject ===\nVotre commande A-1001 est confirmée\n=== html ===\n<!DOCTYPE html>"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("=== text ===\n"), "{}", run.stdout);

    let run = sb.run(&[
        "render",
        "newsletter",
        "--channel",
        "push",
        "--data",
        "examples/data/newsletter.json",
        "--format",
        "json",
    ]);
    run.assert_ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["channel"], "push");
    assert_eq!(v["body"], "Brewing the perfect pour-over");
    // Each provider's payload against its limit, measured as the push function does.
    for (provider, limit) in [("apns", 4096), ("fcm", 4096), ("webpush", 3993)] {
        assert_eq!(v["payload"][provider]["limit"], limit, "{provider}: {}", v["payload"]);
        assert_eq!(v["payload"][provider]["fits"], true);
        let bytes = v["payload"][provider]["bytes"].as_u64().unwrap();
        assert!(bytes > "Brewing the perfect pour-over".len() as u64, "{provider}: {bytes}");
    }
    // Over a limit the text report says so, with the reason the push would end with.
    sb.write("drafts/huge/push.body.hbs", "{{body}}");
    let body = sb.write("huge.json", &format!(r#"{{"body": "{}"}}"#, "x".repeat(4000)));
    let dir = sb.path("drafts/huge");
    let run = sb.run(&["render", dir.to_str().unwrap(), "--channel", "push", "--data", body.to_str().unwrap()]);
    run.assert_ok();
    assert!(run.stderr.contains("herald: fcm payload 4013 of 4096 bytes"), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "herald: webpush payload 4011 bytes, OVER the 3993-byte limit: it would fail payload_too_large:4011"
        ),
        "{}",
        run.stderr
    );

    let run =
        sb.run_with_stdin(&["render", "one-time-code", "--channel", "email", "--data", "-", "--format", "json"], "{}");
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("`code`"), "names the missing variable: {}", run.stderr);

    // A template folder that is not in the catalogue yet, using the shared partials.
    sb.write("drafts/welcome/email.subject.hbs", "Welcome {{name}}");
    sb.write(
        "drafts/welcome/email.html.hbs",
        "{{#> layouts/email layout_title=\"Hi\"}}<p>Hi {{name}}</p>{{/layouts/email}}",
    );
    let data = sb.write("w.json", r#"{"name": "Zoé"}"#);
    let dir = sb.path("drafts/welcome");
    let run = sb.run(&[
        "render",
        dir.to_str().unwrap(),
        "--channel",
        "email",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.assert_ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["subject"], "Welcome Zoé");
    // The layout's CSS is inlined: the paragraph carries its style attribute.
    let html = v["html"].as_str().unwrap();
    assert!(html.contains(">Hi Zoé</p>") && html.contains("<p style=\""), "{html}");
    assert!(v["text"].as_str().unwrap().contains("Hi Zoé"));

    let run = sb.run(&["render", "order-confirmaton", "--channel", "email"]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("did you mean `order-confirmation`"), "{}", run.stderr);
}

#[test]
fn validate_reports_each_request() {
    let sb = sandbox();
    let file = sb.write("mixed.jsonl", &mixed_file());
    let run = sb.run(&["validate", file.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 14);
    assert!(lines[0].ends_with("\tok"));
    assert!(lines[2].contains("recipient.emial"));
    assert!(lines[5].contains("template: no template named `nope`"));
    let run = sb.run(&["validate", "examples/requests.jsonl"]);
    run.assert_ok();
    assert!(names(&sb).is_empty(), "validate sends nothing");

    // Valid requests whose data would fail the send fail here, with the send's reason.
    let token = "f".repeat(40);
    let failing = [
        json!({"id": "no-code", "channel": "sms", "category": "transactional",
               "recipient": {"id": "u1", "phone": "+14155550123"}, "template": "one-time-code", "data": {}}),
        json!({"id": "huge-push", "channel": "push", "category": "transactional",
               "recipient": {"id": "u1", "push": {"platform": "fcm", "token": token}},
               "template": "one-time-code", "data": {"code": "9".repeat(5000)}}),
        json!({"id": "fine", "channel": "push", "category": "transactional",
               "recipient": {"id": "u1", "push": {"platform": "fcm", "token": token}},
               "template": "one-time-code", "data": {"code": "123456"}}),
    ];
    let body: String = failing.iter().map(|r| format!("{r}\n")).collect();
    let file = sb.write("send-time.jsonl", &body);
    let run = sb.run(&["validate", file.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].contains("render_error:one-time-code:sms") && lines[0].contains("`code`"), "{}", lines[0]);
    assert!(lines[1].contains("\tpayload_too_large:"), "{}", lines[1]);
    assert!(lines[2].ends_with("\tok"), "{}", lines[2]);
    assert!(names(&sb).is_empty(), "validate sends nothing");
}

#[test]
fn config_errors_are_reported_with_the_file() {
    let sb = sandbox();
    let cfg = sb.write("bad.toml", "[[caps]]\nlimit = 3\nwindow = \"7 days\"\n");
    let run = sb.run(&["--config", cfg.to_str().unwrap(), "send", "examples/order-email.json"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("bad.toml") && run.stderr.contains("7 days"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn concurrent_processes_share_one_cap() {
    let sb = sandbox();
    let news = json!({"intro": "hi", "articles": []});
    let mut files = Vec::new();
    for p in 0..8 {
        let lines: Vec<String> = (0..4)
            .map(|i| {
                request(
                    &format!("c{p}-{i}"),
                    "email",
                    "marketing",
                    json!({"id": "u-busy", "email": "busy@example.com"}),
                    "newsletter",
                    news.clone(),
                )
            })
            .collect();
        files.push(sb.write(&format!("p{p}.jsonl"), &lines.join("\n")));
    }
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            sb.command(&["send", f.to_str().unwrap()])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sent = 0;
    let mut capped = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        run.assert_ok();
        for (_, status, _) in run.outcomes() {
            match status.as_str() {
                "sent" => sent += 1,
                "capped" => capped += 1,
                other => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!((sent, capped), (3, 29));
    assert_eq!(names(&sb).len(), 3);
}

/// The audit's DST fold: a quiet-hours window ending at 01:30 in New York on the night
/// the clocks fall back. At 06:15Z (01:15 EST, the second 01:15 of the night) the window
/// closes at 06:30Z; the first 01:30 (05:30Z) is past. The old code deferred to 05:30Z,
/// and `flush` then looped forever on a request that was always due and always deferred.
#[test]
fn quiet_hours_ending_in_a_dst_fold_defer_forward_and_flush_ends() {
    let mut sb = sandbox();
    let templates = herald_e2e::repo_root().join("templates");
    let config = format!(
        "templates = {:?}\n[quiet_hours]\nstart = \"21:00\"\nend = \"01:30\"\ndefault_timezone = \"America/New_York\"\n",
        templates.display().to_string()
    );
    let config = sb.write("dst.toml", &config);
    let config = config.to_str().unwrap();
    sb.now = Some("2026-11-01T06:15:00Z".into());
    // The recipient's own zone: a +1 number alone would wait for every US clock.
    let promo = request(
        "fold-1",
        "sms",
        "promo",
        json!({"id": "u", "phone": "+12025550142", "timezone": "America/New_York"}),
        "one-time-code",
        json!({"code": "F"}),
    );
    let file = sb.write("fold.jsonl", &promo);
    let run = sb.run(&["--config", config, "send", file.to_str().unwrap()]);
    run.assert_ok();
    assert_eq!(run.outcomes(), vec![triple("fold-1", "deferred", "quiet_hours")]);
    assert_eq!(run.receipts()[0]["deferred_until"], "2026-11-01T06:30:00Z");
    let run = sb.run(&["--config", config, "flush"]);
    run.assert_ok();
    assert!(run.outcomes().is_empty(), "nothing is due at 06:15Z: {:?}", run.outcomes());
    sb.now = Some("2026-11-01T06:30:00Z".into());
    let run = sb.run(&["--config", config, "flush"]);
    assert_eq!(run.outcomes(), vec![triple("fold-1", "sent", "")]);
}

/// The audit's outbox clash: a tenant named `a.eml` and a request `a` without a tenant
/// used to claim the same path (a folder and a file), and the loser was retried as a
/// transient failure forever. Both are written now, each where it belongs.
#[test]
fn a_tenant_folder_never_clashes_with_a_message_file() {
    let sb = sandbox();
    let plain = request(
        "a",
        "email",
        "transactional",
        json!({"id": "u", "email": "a@example.com"}),
        "one-time-code",
        json!({"code": "1"}),
    );
    let mut tenanted: Value = serde_json::from_str(&plain).unwrap();
    tenanted["tenant"] = json!("a.eml");
    tenanted["id"] = json!("b");
    let file = sb.write("clash.jsonl", &format!("{tenanted}\n{plain}\n"));
    let run = sb.run(&["send", file.to_str().unwrap()]);
    run.assert_ok();
    assert_eq!(run.outcomes(), vec![triple("b", "sent", ""), triple("a", "sent", "")]);
    let outbox = sb.outbox();
    assert!(outbox.join("a.eml").is_file());
    assert!(outbox.join("@a.eml").join("b.eml").is_file());
}

#[test]
fn render_takes_the_category_from_the_fixture_then_the_template() {
    let sb = sandbox();
    let sms = |template: &str, extra: &[&str]| -> Value {
        let data = format!("templates/{template}/fixtures/default.json");
        let mut args = vec!["render", template, "--channel", "sms", "--data", data.as_str(), "--format", "json"];
        args.extend_from_slice(extra);
        let run = sb.run(&args);
        run.assert_ok();
        serde_json::from_str(&run.stdout).unwrap()
    };
    // one-time-code says `category = "transactional"`: not transliterated by default.
    assert_eq!(sms("one-time-code", &[])["transliterate"]["applies"], false);
    assert_eq!(sms("one-time-code", &["--category", "marketing"])["transliterate"]["applies"], true);
    assert_eq!(sms("newsletter", &[])["transliterate"]["applies"], true);
    // A fixture's own `herald.category` wins over the template's.
    let fixture = sb.write(
        "fixture.json",
        r#"{"code": "482913", "expires_in_minutes": 5, "herald": {"category": "marketing", "timezone": "Asia/Tokyo"}}"#,
    );
    let run = sb.run(&[
        "render",
        "one-time-code",
        "--channel",
        "sms",
        "--data",
        fixture.to_str().unwrap(),
        "--format",
        "json",
    ]);
    run.assert_ok();
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["transliterate"]["applies"], true, "{v}");
}
