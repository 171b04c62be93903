//! Guard-rail decisions, pure: which caps apply, whether a send falls in quiet
//! hours and when the window opens, what admission to ask the state store for.
//! No I/O here; the store executes the admission atomically.

mod window;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

pub use window::{LocalTime, Window};

use crate::ports::{Admission, CapCheck, ConsentCheck};
use crate::request::{Channel, DeliveryRequest, SuppressionKey, TimeZoneName};

/// A frequency cap: at most `limit` messages per rolling `window` to one recipient,
/// counting the messages that match `channels` and `categories`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapRule {
    /// Name used in receipts (`frequency_capped:<name>`); derived when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// `channel = "email"` or `channels = ["sms", "push"]`; absent: every channel.
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// `category = "marketing"` or `categories = [...]`; absent: every
    /// non-transactional category.
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    pub limit: u32,
    pub window: Window,
}

impl CapRule {
    fn channel_set(&self) -> Vec<Channel> {
        let mut set: Vec<Channel> = self.channel.into_iter().chain(self.channels.iter().copied()).collect();
        set.sort();
        set.dedup();
        set
    }

    fn category_set(&self) -> Vec<String> {
        let mut set: Vec<String> =
            self.category.iter().chain(self.categories.iter()).map(|c| c.to_ascii_lowercase()).collect();
        set.sort();
        set.dedup();
        set
    }

    /// `marketing:7d`, `email:marketing:24h`, `all:30d`, `sms+push:promo:1h`.
    pub fn display_name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        let channels = self.channel_set();
        let categories = self.category_set();
        let mut parts = Vec::new();
        if !channels.is_empty() {
            parts.push(channels.iter().map(|c| c.as_str()).collect::<Vec<_>>().join("+"));
        }
        parts.push(if categories.is_empty() { "all".to_owned() } else { categories.join("+") });
        parts.push(self.window.to_string());
        parts.join(":")
    }

    pub fn applies_to(&self, request: &DeliveryRequest) -> bool {
        if request.is_transactional() {
            return false;
        }
        let channels = self.channel_set();
        let categories = self.category_set();
        (channels.is_empty() || channels.contains(&request.channel))
            && (categories.is_empty() || categories.iter().any(|c| c == request.category.as_str()))
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.limit == 0 {
            return Err(format!(
                "cap `{}`: limit must be at least 1 (use an unsubscribe to block a category)",
                self.display_name()
            ));
        }
        if self.category_set().iter().any(|c| c == "transactional") {
            return Err(format!("cap `{}`: transactional messages are never capped", self.display_name()));
        }
        Ok(())
    }
}

/// Hours during which non-transactional messages are held, in the recipient's
/// local time. `start > end` wraps past midnight (21:00 -> 08:00).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub start: LocalTime,
    pub end: LocalTime,
    /// Channels the window applies to; absent: all.
    #[serde(default)]
    pub channels: Vec<Channel>,
    /// Used when nothing tells where the recipient is: no `timezone`, and for an SMS a
    /// number for which the tz database has no zone at all (Ascension, Kosovo). A number
    /// whose country keeps several clocks (+1, +7, +61...) does not need it: the message
    /// waits until the window is open in every one of them (never "fail open").
    pub default_timezone: TimeZoneName,
}

/// `[quiet_hours]` in herald.toml: absent, a window, or `quiet_hours = "off"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QuietHoursSetting {
    /// No `[quiet_hours]`: non-transactional SMS (every category but `transactional`,
    /// one-time codes included) wait out [`SMS_QUIET_HOURS`] (21:00 to 08:00, the usual
    /// reading of the TCPA's calling hours) in the recipient's zone: their `timezone`,
    /// else their number's. A number whose country keeps several clocks (a US or
    /// Canadian number, from St. John's to Honolulu) waits until the window is open in
    /// all of them, which leaves about 18:00 to 23:30 UTC in summer. A number without any
    /// zone data (Ascension, Kosovo) is not held: there is no clock to go by. Other
    /// channels are never held.
    #[default]
    SmsDefault,
    /// A configured `[quiet_hours]` window, for the channels it lists.
    Window(QuietHours),
    /// `quiet_hours = "off"`: nothing is held.
    Off,
}

/// The built-in window for non-transactional SMS when `[quiet_hours]` is absent.
pub const SMS_QUIET_HOURS: (LocalTime, LocalTime) = (LocalTime::hm(21, 0), LocalTime::hm(8, 0));

impl<'de> Deserialize<'de> for QuietHoursSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Setting;
        impl<'de> serde::de::Visitor<'de> for Setting {
            type Value = QuietHoursSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a [quiet_hours] table, or \"off\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                match v {
                    "off" => Ok(QuietHoursSetting::Off),
                    _ => Err(E::custom("expected a [quiet_hours] table, or \"off\" to hold nothing")),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                QuietHours::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(QuietHoursSetting::Window)
            }
        }
        d.deserialize_any(Setting)
    }
}

impl QuietHours {
    pub fn validate(&self) -> Result<(), String> {
        if self.start == self.end {
            return Err("quiet_hours: start and end must differ".into());
        }
        // An SMS to a number with several clocks waits for a moment that suits them all:
        // the window must leave one.
        if self.applies_to(Channel::Sms)
            && let Some((prefix, region, spread)) = widest_clock_spread()
        {
            let open = open_time(self.start, self.end);
            if open <= spread {
                return Err(format!(
                    "quiet_hours: {}-{} leaves {} a day to send in, and the clocks an SMS to +{prefix}{} without a \
                     `timezone` may find are up to {} apart, so no moment would suit them all: leave more than {} \
                     between end and start (21:00-08:00 leaves 13h), or take sms out of `channels`",
                    hm(self.start),
                    hm(self.end),
                    duration(open),
                    region.map(|r| format!(" ({r})")).unwrap_or_default(),
                    duration(spread),
                    duration(spread),
                ));
            }
        }
        Ok(())
    }

    pub fn applies_to(&self, channel: Channel) -> bool {
        self.channels.is_empty() || self.channels.contains(&channel)
    }

    /// When `now` falls inside the window in `tz`, the instant it opens again.
    pub fn hold_until(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        hold_until(self.start, self.end, now, tz)
    }
}

/// When `now` falls inside `start..end` in any of `zones`, the first instant after it at
/// which the window is open in all of them: the latest opening, again until no zone has
/// gone quiet in the meantime. Found within a day when the zones' clocks are less far
/// apart than the window leaves open (what [`QuietHours::validate`] checks). No zones:
/// nothing to hold by.
fn hold_until_everywhere(start: LocalTime, end: LocalTime, now: Timestamp, zones: &[TimeZone]) -> Option<Timestamp> {
    let mut at = now;
    for _ in 0..MAX_STEPS {
        match zones.iter().filter_map(|tz| hold_until(start, end, at, tz)).max() {
            None => return (at != now).then_some(at),
            Some(later) => at = later,
        }
    }
    // Zones that never agree: still a hold (the message is looked at again then), never
    // a send in someone's night.
    Some(at)
}

/// Openings [`hold_until_everywhere`] tries before it gives up.
const MAX_STEPS: usize = 64;

/// How long a day the window leaves open: from `end` to `start`.
fn open_time(start: LocalTime, end: LocalTime) -> SignedDuration {
    let seconds = |t: LocalTime| i64::from(t.time().hour()) * 3_600 + i64::from(t.time().minute()) * 60;
    SignedDuration::from_secs((seconds(start) - seconds(end)).rem_euclid(86_400))
}

fn hm(t: LocalTime) -> String {
    format!("{:02}:{:02}", t.time().hour(), t.time().minute())
}

/// `13h`, `7h30m`.
fn duration(d: SignedDuration) -> String {
    let minutes = d.as_secs() / 60;
    match (minutes / 60, minutes % 60) {
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h{m:02}m"),
    }
}

/// The numbers whose clocks lie furthest apart, (prefix, region, spread): the highest
/// UTC offset any of their zones has from 2026 to 2036, less the lowest (+7: Kaliningrad
/// to Kamchatka, 10h; +1: St. John's in summer to Honolulu, 7h30m).
fn widest_clock_spread() -> Option<(&'static str, Option<&'static str>, SignedDuration)> {
    type Widest = Option<(&'static str, Option<&'static str>, SignedDuration)>;
    static WIDEST: std::sync::OnceLock<Widest> = std::sync::OnceLock::new();
    *WIDEST.get_or_init(|| {
        crate::request::phone_region::several_clocks()
            .map(|(prefix, region, zones)| (prefix, region, clock_spread(zones)))
            .max_by_key(|&(_, _, spread)| spread)
    })
}

/// The highest UTC offset of `zones` from 2026 to 2036, less the lowest.
fn clock_spread(zones: &[&str]) -> SignedDuration {
    const FROM: Timestamp = Timestamp::constant(1_767_225_600, 0); // 2026-01-01T00:00:00Z
    const UNTIL: Timestamp = Timestamp::constant(2_082_758_400, 0); // 2036-01-01T00:00:00Z
    let offsets = zones.iter().filter_map(|name| jiff::tz::db().get(name).ok()).flat_map(|tz| {
        let first = tz.to_offset(FROM).seconds();
        let later: Vec<i32> =
            tz.following(FROM).take_while(|t| t.timestamp() < UNTIL).map(|t| t.offset().seconds()).collect();
        std::iter::once(first).chain(later)
    });
    let (low, high) = offsets.fold((i32::MAX, i32::MIN), |(low, high), o| (low.min(o), high.max(o)));
    SignedDuration::from_secs(i64::from(high.saturating_sub(low).max(0)))
}

/// When `now` falls inside `start..end` in `tz`, the instant the window opens again.
fn hold_until(start: LocalTime, end: LocalTime, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    let local = now.to_zoned_datetime(tz.clone());
    let t = local.time();
    let (start, end) = (start.time(), end.time());
    let inside = if start < end { t >= start && t < end } else { t >= start || t < end };
    if !inside {
        return None;
    }
    // The window ends today if we are before `end`, else tomorrow (wrapped window).
    // The first instant after `now` whose wall clock reads `end`: in a DST fold
    // the end time happens twice and the earlier one may already be past; in a
    // gap it does not happen and the window opens after the jump (`compatible`).
    let today = local.date();
    let mut candidates = Vec::with_capacity(4);
    for date in [Some(today), today.tomorrow().ok()].into_iter().flatten() {
        let ambiguous = tz.to_ambiguous_timestamp(date.to_datetime(end));
        for d in [jiff::tz::Disambiguation::Compatible, jiff::tz::Disambiguation::Later] {
            if let Ok(t) = ambiguous.disambiguate(d) {
                candidates.push(t);
            }
        }
    }
    candidates.into_iter().filter(|c| *c > now).min()
}

/// What herald does when a provider may or may not have sent a message (a timeout
/// after the request was written, a connection lost mid-answer, a 5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guarantee {
    /// Never send twice: the request ends `failed` with `provider:unknown_outcome`.
    AtMostOnce,
    /// Never lose it: send again, which may deliver twice.
    AtLeastOnce,
}

/// The delivery guarantee of each category: `[guarantee]` in herald.toml.
/// Built in: `transactional` at least once (a missing code is worse than two),
/// every other category at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarantees {
    default: Guarantee,
    categories: std::collections::BTreeMap<String, Guarantee>,
}

impl Default for Guarantees {
    fn default() -> Self {
        let categories = [(crate::request::Category::TRANSACTIONAL.to_owned(), Guarantee::AtLeastOnce)].into();
        Guarantees { default: Guarantee::AtMostOnce, categories }
    }
}

impl Guarantees {
    /// `default` sets the fallback; every other key names a category.
    pub fn from_table(table: std::collections::BTreeMap<String, Guarantee>) -> Result<Self, String> {
        let mut out = Guarantees::default();
        for (key, g) in table {
            if key == "default" {
                out.default = g;
            } else {
                let category = crate::request::Category::parse(&key).map_err(|e| format!("guarantee.{key}: {e}"))?;
                out.categories.insert(category.as_str().to_owned(), g);
            }
        }
        Ok(out)
    }

    pub fn for_category(&self, category: &str) -> Guarantee {
        self.categories.get(category).copied().unwrap_or(self.default)
    }
}

/// Idempotency timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdempotencySettings {
    /// How long an IN_PROGRESS lock holds before a crashed attempt may be retried.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout: Window,
    /// How long a completed request is remembered (duplicates within it are caught).
    #[serde(default = "default_retention")]
    pub retention: Window,
}

fn default_lock_timeout() -> Window {
    Window::from_seconds(300)
}

fn default_retention() -> Window {
    Window::from_seconds(7 * 86_400)
}

impl Default for IdempotencySettings {
    fn default() -> Self {
        IdempotencySettings { lock_timeout: default_lock_timeout(), retention: default_retention() }
    }
}

/// All guard-rail settings together.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub caps: Vec<CapRule>,
    pub quiet_hours: QuietHoursSetting,
    pub idempotency: IdempotencySettings,
    pub guarantees: Guarantees,
    /// How far ahead `send_after` may lie.
    pub send_after_horizon: Window,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            caps: Vec::new(),
            quiet_hours: QuietHoursSetting::default(),
            idempotency: IdempotencySettings::default(),
            guarantees: Guarantees::default(),
            send_after_horizon: default_send_after_horizon(),
        }
    }
}

pub fn default_send_after_horizon() -> Window {
    Window::from_seconds(30 * 86_400)
}

impl Policy {
    pub fn validate(&self) -> Result<(), String> {
        for cap in &self.caps {
            cap.validate()?;
        }
        let mut names: Vec<String> = self.caps.iter().map(CapRule::display_name).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("two caps are both named `{}`: give one a `name`", w[0]));
        }
        if let QuietHoursSetting::Window(q) = &self.quiet_hours {
            q.validate()?;
        }
        // A completed request must be remembered past any redelivery of it: SQS keeps
        // a message at most 14 days, and a lock must outlive one attempt.
        if self.idempotency.retention.seconds() <= 2 * self.idempotency.lock_timeout.seconds() {
            return Err("idempotency.retention must be more than twice idempotency.lock_timeout".into());
        }
        Ok(())
    }

    pub fn guarantee(&self, request: &DeliveryRequest) -> Guarantee {
        self.guarantees.for_category(request.category.as_str())
    }

    /// A queued message older than this may outlive the idempotency record of an
    /// earlier attempt: it is refused (`stale_message`) instead of risking a resend.
    pub fn max_message_age(&self) -> SignedDuration {
        let secs = self.idempotency.retention.seconds() - 2 * self.idempotency.lock_timeout.seconds();
        SignedDuration::from_secs(secs.max(0))
    }

    /// Quiet hours: when a non-transactional request must wait, until when. The window
    /// is read in the recipient's zone ([`recipient_zones`]); for an SMS to a number whose
    /// country keeps several clocks, in every one of them (held until it is open in
    /// all); with no zone at all, in `default_timezone`, and not held by the built-in
    /// SMS window.
    pub fn quiet_hours_hold(&self, request: &DeliveryRequest, now: Timestamp) -> Option<Timestamp> {
        if request.is_transactional() {
            return None;
        }
        let (start, end, default_zone) = match &self.quiet_hours {
            QuietHoursSetting::Window(q) if q.applies_to(request.channel) => {
                (q.start, q.end, Some(q.default_timezone.time_zone()))
            }
            QuietHoursSetting::SmsDefault if request.channel == Channel::Sms => {
                (SMS_QUIET_HOURS.0, SMS_QUIET_HOURS.1, None)
            }
            _ => return None,
        };
        let mut zones = recipient_zones(request);
        if zones.is_empty() {
            zones.extend(default_zone);
        }
        hold_until_everywhere(start, end, now, &zones)
    }

    /// The atomic check-and-take the state store must perform for this request.
    pub fn admission(
        &self,
        request: &DeliveryRequest,
        fingerprint: &str,
        suppression_key: SuppressionKey,
        now: Timestamp,
    ) -> Admission {
        let recipient_key = request.recipient_key();
        let caps = self
            .caps
            .iter()
            .filter(|rule| rule.applies_to(request))
            .map(|rule| {
                let name = rule.display_name();
                CapCheck {
                    key: recipient_key.cap(&name),
                    recipient_key: recipient_key.clone(),
                    rule: name,
                    limit: rule.limit,
                    window_seconds: rule.window.seconds(),
                }
            })
            .collect();
        let consent = (!request.is_transactional())
            .then(|| ConsentCheck { recipient_key, category: request.category.as_str().to_owned() });
        Admission {
            idempotency_key: request.idempotency_key(),
            fingerprint: fingerprint.to_owned(),
            tenant_suppression_key: request.tenant.as_ref().map(|t| suppression_key.for_tenant(t)),
            suppression_key,
            consent,
            caps,
            now,
            lock_expires_at: add(now, self.idempotency.lock_timeout),
            retain_until: add(now, self.idempotency.retention),
        }
    }

    pub fn retain_until(&self, now: Timestamp) -> Timestamp {
        add(now, self.idempotency.retention)
    }
}

/// The zones the recipient may be in: their `timezone`, else for an SMS every clock of
/// the regions their number may be in (one for +44, sixteen for a US or Canadian
/// number); none when nothing tells. Only for SMS: it is where that message goes, while
/// for email or push a phone number says nothing about where the mail is read.
fn recipient_zones(request: &DeliveryRequest) -> Vec<TimeZone> {
    if let Some(tz) = &request.recipient.timezone {
        return vec![tz.time_zone()];
    }
    if request.channel != Channel::Sms {
        return Vec::new();
    }
    let Some(phone) = &request.recipient.phone else { return Vec::new() };
    phone.time_zones().iter().filter_map(|name| jiff::tz::db().get(name).ok()).collect()
}

pub(crate) fn add(t: Timestamp, w: Window) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(w.seconds())).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests;
