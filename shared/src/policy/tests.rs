use jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::request::SuppressionKey;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn request(channel: &str, category: &str, tz: Option<&str>) -> DeliveryRequest {
    let mut v = json!({
        "id": "r1", "channel": channel, "category": category,
        "recipient": {"id": "u1", "email": "a@example.com", "phone": "+14155550123"},
        "template": "t"
    });
    if let Some(tz) = tz {
        v["recipient"]["timezone"] = json!(tz);
    }
    DeliveryRequest::from_json(&v.to_string()).unwrap()
}

fn quiet(start: &str, end: &str, default_tz: &str) -> QuietHours {
    QuietHours {
        start: LocalTime::parse(start).unwrap(),
        end: LocalTime::parse(end).unwrap(),
        channels: vec![],
        default_timezone: TimeZoneName::parse(default_tz).unwrap(),
    }
}

#[test]
fn windows_parse_and_print() {
    for (s, secs) in [
        ("90s", 90),
        ("15m", 900),
        ("1h", 3600),
        ("24h", 86_400),
        ("7d", 604_800),
        ("30d", 2_592_000),
        ("2w", 1_209_600),
    ] {
        let w = Window::parse(s).unwrap();
        assert_eq!(w.seconds(), secs, "{s}");
        assert_eq!(w.to_string(), s);
    }
    for bad in ["", "7", "d", "-1d", "0h", "1y", "1.5h", "400d"] {
        assert!(Window::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn wrapped_window_holds_until_the_morning_in_the_recipient_zone() {
    let q = quiet("21:00", "08:00", "UTC");
    let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    // 22:30 in Paris (UTC+1 in winter) -> held until 08:00 Paris next day = 07:00Z.
    assert_eq!(q.hold_until(ts("2026-11-28T21:30:00Z"), &paris), Some(ts("2026-11-29T07:00:00Z")));
    // 03:00 Paris -> same morning.
    assert_eq!(q.hold_until(ts("2026-11-29T02:00:00Z"), &paris), Some(ts("2026-11-29T07:00:00Z")));
    // 08:00 sharp is open; 20:59 is open; 21:00 is closed.
    assert_eq!(q.hold_until(ts("2026-11-29T07:00:00Z"), &paris), None);
    assert_eq!(q.hold_until(ts("2026-11-29T19:59:00Z"), &paris), None);
    assert!(q.hold_until(ts("2026-11-29T20:00:00Z"), &paris).is_some());
}

#[test]
fn same_day_window() {
    let q = quiet("12:00", "14:00", "UTC");
    let utc = jiff::tz::TimeZone::UTC;
    assert_eq!(q.hold_until(ts("2026-11-28T13:00:00Z"), &utc), Some(ts("2026-11-28T14:00:00Z")));
    assert_eq!(q.hold_until(ts("2026-11-28T14:00:00Z"), &utc), None);
    assert_eq!(q.hold_until(ts("2026-11-28T11:59:59Z"), &utc), None);
}

#[test]
fn window_opening_across_a_dst_change() {
    // New York springs forward on 2026-03-08 at 02:00. A window ending at 02:30
    // (a time that does not exist that day) opens at the first valid instant after.
    let q = quiet("22:00", "02:30", "UTC");
    let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let held = q.hold_until(ts("2026-03-08T04:00:00Z"), &ny).unwrap(); // 23:00 EST on the 7th
    assert_eq!(held, ts("2026-03-08T07:30:00Z")); // 03:30 EDT
    // Fall back on 2026-11-01: 08:00 exists once, in EST.
    let q = quiet("21:00", "08:00", "UTC");
    assert_eq!(q.hold_until(ts("2026-11-01T05:00:00Z"), &ny), Some(ts("2026-11-01T13:00:00Z")));
}

#[test]
fn policy_quiet_hours_skip_transactional_and_other_channels_and_use_the_default_zone() {
    let mut q = quiet("21:00", "08:00", "America/New_York");
    q.channels = vec![Channel::Sms];
    let policy = Policy { quiet_hours: QuietHoursSetting::Window(q), ..Policy::default() };
    let night_ny = ts("2026-11-29T03:00:00Z"); // 22:00 in New York
    // A +1 number without a timezone waits for the last US or Canadian clock to reach
    // 08:00: Honolulu's (UTC-10), not New York's.
    assert_eq!(policy.quiet_hours_hold(&request("sms", "marketing", None), night_ny), Some(ts("2026-11-29T18:00:00Z")));
    assert_eq!(policy.quiet_hours_hold(&request("sms", "transactional", None), night_ny), None);
    assert_eq!(policy.quiet_hours_hold(&request("email", "marketing", None), night_ny), None);
    // Same instant is 12:00 in Tokyo: open.
    assert_eq!(policy.quiet_hours_hold(&request("sms", "marketing", Some("Asia/Tokyo")), night_ny), None);
    // A number the tz database has no zone for (Kosovo) takes default_timezone.
    assert_eq!(policy.quiet_hours_hold(&sms_to(KOSOVO, "marketing", None), night_ny), Some(ts("2026-11-29T13:00:00Z")));
}

fn sms_to(phone: &str, category: &str, tz: Option<&str>) -> DeliveryRequest {
    let mut v = json!({
        "id": "r1", "channel": "sms", "category": category,
        "recipient": {"id": "u1", "phone": phone}, "template": "t"
    });
    if let Some(tz) = tz {
        v["recipient"]["timezone"] = json!(tz);
    }
    DeliveryRequest::from_json(&v.to_string()).unwrap()
}

const UK: &str = "+447700900123";
const SAN_FRANCISCO: &str = "+14155550123";
const KOSOVO: &str = "+38344123456";

#[test]
fn without_quiet_hours_non_transactional_sms_waits_for_the_morning_where_its_number_is() {
    let policy = Policy::default();
    assert_eq!(policy.quiet_hours, QuietHoursSetting::SmsDefault);
    // 22:00 in London (BST, UTC+1): held until 08:00 London.
    let night = ts("2026-07-15T21:00:00Z");
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", None), night), Some(ts("2026-07-16T07:00:00Z")));
    // 20:59 London is open; so is 08:00.
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", None), ts("2026-07-15T19:59:00Z")), None);
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", None), ts("2026-07-16T07:00:00Z")), None);
    // The recipient's own timezone wins over the number's: 17:00 in New York.
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", Some("America/New_York")), night), None);
    // Transactional SMS is never held, nor is another channel; every other category is
    // (a one-time code sent as `otp` too).
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "transactional", None), night), None);
    assert_eq!(policy.quiet_hours_hold(&request("email", "marketing", Some("Europe/London")), night), None);
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "otp", None), night), Some(ts("2026-07-16T07:00:00Z")));
    // A US number with a timezone goes by it.
    let sf_night = ts("2026-07-16T06:00:00Z"); // 23:00 in San Francisco
    let with_zone = sms_to(SAN_FRANCISCO, "marketing", Some("America/Los_Angeles"));
    assert_eq!(policy.quiet_hours_hold(&with_zone, sf_night), Some(ts("2026-07-16T15:00:00Z")));
    // A number without any zone data (Kosovo) has no clock to go by: not held.
    assert_eq!(policy.quiet_hours_hold(&sms_to(KOSOVO, "marketing", None), sf_night), None);
}

/// +1 numbers without a timezone: the window must be open from St. John's (UTC-2:30 in
/// summer, -3:30 in winter) to Honolulu (UTC-10), which leaves 18:00 to 23:30 UTC in
/// summer and 18:00 to 00:30 in winter.
#[test]
fn a_number_with_several_clocks_waits_until_the_window_is_open_in_all_of_them() {
    let mut configured = quiet("21:00", "08:00", "America/New_York");
    configured.channels = vec![Channel::Sms];
    let policies = [
        ("built in", Policy::default()),
        ("configured", Policy { quiet_hours: QuietHoursSetting::Window(configured), ..Policy::default() }),
    ];
    for (name, policy) in &policies {
        let hold = |at: &str, category: &str| policy.quiet_hours_hold(&sms_to(SAN_FRANCISCO, category, None), ts(at));
        // 03:00 in California (06:00 in New York, where default_timezone would say the
        // window is about to open): held until 08:00 in Honolulu.
        assert_eq!(hold("2026-07-01T10:00:00Z", "marketing"), Some(ts("2026-07-01T18:00:00Z")), "{name}");
        // 07:00 in Honolulu, 14:30 in St. John's: one more hour.
        assert_eq!(hold("2026-07-01T17:00:00Z", "marketing"), Some(ts("2026-07-01T18:00:00Z")), "{name}");
        // 13:00 in California, 10:00 in Honolulu, 17:30 in St. John's: sent.
        assert_eq!(hold("2026-07-01T20:00:00Z", "marketing"), None, "{name}");
        assert_eq!(hold("2026-07-01T18:00:00Z", "marketing"), None, "{name}");
        // 20:59 and 21:00 in St. John's: the window closes there first.
        assert_eq!(hold("2026-07-01T23:29:00Z", "marketing"), None, "{name}");
        assert_eq!(hold("2026-07-01T23:30:00Z", "marketing"), Some(ts("2026-07-02T18:00:00Z")), "{name}");
        // Winter: St. John's is an hour further from UTC.
        assert_eq!(hold("2026-12-01T00:29:00Z", "marketing"), None, "{name}");
        assert_eq!(hold("2026-12-01T00:30:00Z", "marketing"), Some(ts("2026-12-01T18:00:00Z")), "{name}");
        // Transactional is never held.
        assert_eq!(hold("2026-07-01T10:00:00Z", "transactional"), None, "{name}");
        // A UK number keeps its one clock: 11:00 in London is open, 22:00 is not.
        let uk = |at: &str| policy.quiet_hours_hold(&sms_to(UK, "marketing", None), ts(at));
        assert_eq!(uk("2026-07-01T10:00:00Z"), None, "{name}");
        assert_eq!(uk("2026-07-01T21:00:00Z"), Some(ts("2026-07-02T07:00:00Z")), "{name}");
        // Jamaica's +1 876 is one clock of its own (UTC-5): 05:00 there, open at 08:00.
        let jm = policy.quiet_hours_hold(&sms_to("+18765550123", "marketing", None), ts("2026-07-01T10:00:00Z"));
        assert_eq!(jm, Some(ts("2026-07-01T13:00:00Z")), "{name}");
    }
}

#[test]
fn the_wait_for_several_clocks_ends_when_one_goes_quiet_while_another_wakes() {
    // Russia (+7 9): Kaliningrad (UTC+2) to Kamchatka (UTC+12). At 20:00Z Kamchatka is at
    // 08:00 but Kaliningrad at 22:00; when Kaliningrad reaches 08:00 (06:00Z), Kamchatka
    // is at 18:00: open in all eleven clocks from 06:00Z to 09:00Z (21:00 in Kamchatka).
    let policy = Policy::default();
    let hold = |at: &str| policy.quiet_hours_hold(&sms_to("+79123456789", "news", None), ts(at));
    assert_eq!(hold("2026-07-01T20:00:00Z"), Some(ts("2026-07-02T06:00:00Z")));
    assert_eq!(hold("2026-07-02T08:59:00Z"), None);
    // 21:00 in Kamchatka: Kaliningrad must wait for its own 08:00 again after Kamchatka's.
    assert_eq!(hold("2026-07-02T09:00:00Z"), Some(ts("2026-07-03T06:00:00Z")));
    // Zones whose windows never meet still hold, never send.
    let (start, end) = (LocalTime::hm(20, 0), LocalTime::hm(10, 0));
    let zones: Vec<_> = ["Europe/Kaliningrad", "Asia/Kamchatka"].map(|z| jiff::tz::TimeZone::get(z).unwrap()).into();
    assert!(hold_until_everywhere(start, end, ts("2026-07-01T12:00:00Z"), &zones).is_some());
}

#[test]
fn a_configured_window_must_leave_a_moment_for_every_number() {
    // Russia's clocks span 10h: a window leaving 10h or less would hold +7 numbers for ever.
    let e = quiet("20:00", "10:00", "UTC").validate().unwrap_err();
    assert!(e.contains("leaves 10h") && e.contains("+7 (RU)") && e.contains("10h apart"), "{e}");
    assert!(quiet("21:00", "09:00", "UTC").validate().is_ok());
    // Without SMS no number is read for its clocks.
    let mut email_only = quiet("18:00", "10:00", "UTC");
    email_only.channels = vec![Channel::Email];
    assert!(email_only.validate().is_ok());
    // The built-in window leaves 13h: more than any number's clocks span.
    let (_, _, widest) = widest_clock_spread().unwrap();
    assert!(widest < open_time(SMS_QUIET_HOURS.0, SMS_QUIET_HOURS.1), "{widest:?}");
    assert_eq!(open_time(SMS_QUIET_HOURS.0, SMS_QUIET_HOURS.1), SignedDuration::from_hours(13));
    assert_eq!(open_time(LocalTime::hm(12, 0), LocalTime::hm(14, 0)), SignedDuration::from_hours(22));
}

#[test]
fn a_configured_window_takes_the_numbers_zone_before_its_default() {
    let mut q = quiet("21:00", "08:00", "America/New_York");
    q.channels = vec![Channel::Sms];
    let policy = Policy { quiet_hours: QuietHoursSetting::Window(q), ..Policy::default() };
    // 22:00 in London, 17:00 in New York.
    let t = ts("2026-07-15T21:00:00Z");
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", None), t), Some(ts("2026-07-16T07:00:00Z")));
    // +1 415 has no single zone, and no need of default_timezone: every US and Canadian
    // clock decides. 17:00 in New York, 18:30 in St. John's: open.
    assert_eq!(policy.quiet_hours_hold(&sms_to(SAN_FRANCISCO, "marketing", None), t), None);
    let ny_night = ts("2026-07-16T03:00:00Z"); // 23:00 in New York
    assert_eq!(
        policy.quiet_hours_hold(&sms_to(SAN_FRANCISCO, "marketing", None), ny_night),
        Some(ts("2026-07-16T18:00:00Z")),
        "08:00 in Honolulu"
    );
    // An email's recipient phone says nothing about where mail is read.
    let mut q = quiet("21:00", "08:00", "America/New_York");
    q.channels = vec![Channel::Email];
    let policy = Policy { quiet_hours: QuietHoursSetting::Window(q), ..Policy::default() };
    let mut email = json!({"id": "e", "channel": "email", "category": "marketing",
        "recipient": {"id": "u", "email": "a@example.com", "phone": UK}, "template": "t"});
    // 06:00 in New York, 11:00 in London: the default zone decides, not the phone.
    let ny_dawn = ts("2026-07-16T10:00:00Z");
    let email_request = DeliveryRequest::from_json(&email.to_string()).unwrap();
    assert_eq!(policy.quiet_hours_hold(&email_request, ny_dawn), Some(ts("2026-07-16T12:00:00Z")));
    email["recipient"]["timezone"] = json!("Europe/London");
    assert_eq!(policy.quiet_hours_hold(&DeliveryRequest::from_json(&email.to_string()).unwrap(), ny_dawn), None);
}

#[test]
fn quiet_hours_can_be_switched_off_or_configured_but_not_misspelt() {
    #[derive(Deserialize)]
    struct Doc {
        #[serde(default)]
        quiet_hours: QuietHoursSetting,
    }
    let parse = |t: &str| toml::from_str::<Doc>(t).map(|d| d.quiet_hours).map_err(|e| e.to_string());
    assert_eq!(parse("").unwrap(), QuietHoursSetting::SmsDefault);
    let off = parse("quiet_hours = \"off\"").unwrap();
    assert_eq!(off, QuietHoursSetting::Off);
    let policy = Policy { quiet_hours: off, ..Policy::default() };
    assert_eq!(policy.quiet_hours_hold(&sms_to(UK, "marketing", None), ts("2026-07-15T21:00:00Z")), None);
    let window = parse("[quiet_hours]\nstart = \"22:00\"\nend = \"07:00\"\ndefault_timezone = \"UTC\"").unwrap();
    assert!(matches!(window, QuietHoursSetting::Window(q) if q.start == LocalTime::hm(22, 0)));
    assert!(parse("quiet_hours = \"on\"").unwrap_err().contains("\"off\""));
    assert!(parse("quiet_hours = false").is_err());
    assert!(
        parse("[quiet_hours]\nstart = \"22:00\"\nend = \"07:00\"\ndefault_timezone = \"UTC\"\nsms = \"off\"")
            .unwrap_err()
            .contains("unknown field")
    );
}

fn cap(toml_text: &str) -> CapRule {
    toml::from_str(toml_text).unwrap()
}

#[test]
fn cap_rules_match_channel_and_category() {
    let any = cap("limit = 5\nwindow = \"24h\"");
    let mkt_email = cap("channel = \"email\"\ncategory = \"Marketing\"\nlimit = 3\nwindow = \"7d\"");
    let multi = cap("channels = [\"sms\", \"push\"]\ncategories = [\"promo\", \"news\"]\nlimit = 1\nwindow = \"1h\"");
    assert_eq!(any.display_name(), "all:24h");
    assert_eq!(mkt_email.display_name(), "email:marketing:7d");
    assert_eq!(multi.display_name(), "sms+push:news+promo:1h");
    assert!(any.applies_to(&request("sms", "promo", None)));
    assert!(!any.applies_to(&request("sms", "transactional", None)));
    assert!(mkt_email.applies_to(&request("email", "marketing", None)));
    assert!(!mkt_email.applies_to(&request("sms", "marketing", None)));
    assert!(!mkt_email.applies_to(&request("email", "news", None)));
    assert!(multi.applies_to(&request("sms", "news", None)));
    assert!(!multi.applies_to(&request("email", "news", None)));
}

#[test]
fn invalid_cap_rules_are_refused() {
    assert!(cap("limit = 0\nwindow = \"1h\"").validate().is_err());
    assert!(cap("category = \"transactional\"\nlimit = 1\nwindow = \"1h\"").validate().is_err());
    assert!(toml::from_str::<CapRule>("limit = 1\nwindow = \"1h\"\nchanel = \"sms\"").is_err());
    let dup = Policy {
        caps: vec![cap("limit = 1\nwindow = \"1h\""), cap("limit = 2\nwindow = \"1h\"")],
        ..Policy::default()
    };
    assert!(dup.validate().unwrap_err().contains("all:1h"));
}

#[test]
fn admission_lists_every_applicable_cap_and_skips_consent_for_transactional() {
    let policy = Policy {
        caps: vec![
            cap("limit = 5\nwindow = \"24h\""),
            cap("category = \"marketing\"\nlimit = 3\nwindow = \"7d\""),
            cap("channel = \"sms\"\nlimit = 1\nwindow = \"1h\""),
        ],
        ..Policy::default()
    };
    let now = ts("2026-11-28T12:00:00Z");
    let a = policy.admission(
        &request("email", "marketing", None),
        "fp",
        SuppressionKey::from_stored("email:a@example.com"),
        now,
    );
    assert_eq!(a.caps.iter().map(|c| c.rule.as_str()).collect::<Vec<_>>(), ["all:24h", "marketing:7d"]);
    assert_eq!(a.caps[1].limit, 3);
    assert_eq!(a.caps[1].window_seconds, 604_800);
    assert!(a.consent.is_some());
    assert_eq!(a.lock_expires_at, ts("2026-11-28T12:05:00Z"));
    assert_eq!(a.retain_until, ts("2026-12-05T12:00:00Z"));
    let t = policy.admission(&request("email", "transactional", None), "fp", SuppressionKey::from_stored("k"), now);
    assert!(t.caps.is_empty());
    assert!(t.consent.is_none());
}
