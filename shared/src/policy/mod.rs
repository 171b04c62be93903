//! Guard-rail decisions, pure: which caps apply, whether a send falls in quiet
//! hours and when the window opens, what admission to ask the state store for.
//! No I/O here; the store executes the admission atomically.

mod window;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;

pub use window::{LocalTime, Window};

use crate::ports::{Admission, CapCheck, ConsentCheck};
use crate::request::{Channel, DeliveryRequest, TimeZoneName};

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
    /// Used when the recipient has no `timezone` (never "fail open").
    pub default_timezone: TimeZoneName,
}

impl QuietHours {
    pub fn validate(&self) -> Result<(), String> {
        if self.start == self.end {
            return Err("quiet_hours: start and end must differ".into());
        }
        Ok(())
    }

    pub fn applies_to(&self, channel: Channel) -> bool {
        self.channels.is_empty() || self.channels.contains(&channel)
    }

    /// When `now` falls inside the window in `tz`, the instant it opens again.
    pub fn hold_until(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = now.to_zoned_datetime(tz.clone());
        let t = local.time();
        let (start, end) = (self.start.time(), self.end.time());
        let inside = if start < end { t >= start && t < end } else { t >= start || t < end };
        if !inside {
            return None;
        }
        // The window ends today if we are before `end`, else tomorrow (wrapped window).
        let mut date = local.date();
        if t >= end {
            date = date.tomorrow().ok()?;
        }
        // `compatible` disambiguation: an end time inside a DST gap moves forward.
        let opening = date.to_datetime(end).to_zoned_datetime(tz.clone()).ok()?;
        Some(opening.timestamp())
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
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Policy {
    pub caps: Vec<CapRule>,
    pub quiet_hours: Option<QuietHours>,
    pub idempotency: IdempotencySettings,
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
        if let Some(q) = &self.quiet_hours {
            q.validate()?;
        }
        Ok(())
    }

    /// Quiet hours: when a non-transactional request must wait, until when.
    pub fn quiet_hours_hold(&self, request: &DeliveryRequest, now: Timestamp) -> Option<Timestamp> {
        let q = self.quiet_hours.as_ref()?;
        if request.is_transactional() || !q.applies_to(request.channel) {
            return None;
        }
        let tz = request.recipient.timezone.as_ref().unwrap_or(&q.default_timezone).time_zone();
        q.hold_until(now, &tz)
    }

    /// The atomic check-and-take the state store must perform for this request.
    pub fn admission(&self, request: &DeliveryRequest, suppression_key: String, now: Timestamp) -> Admission {
        let recipient_key = request.recipient_key();
        let caps = self
            .caps
            .iter()
            .filter(|rule| rule.applies_to(request))
            .map(|rule| {
                let name = rule.display_name();
                CapCheck {
                    key: format!("{recipient_key}#{name}"),
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

pub(crate) fn add(t: Timestamp, w: Window) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(w.seconds())).unwrap_or(Timestamp::MAX)
}

#[cfg(test)]
mod tests;
