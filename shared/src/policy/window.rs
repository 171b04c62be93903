use std::fmt;

use serde::{Deserialize, Deserializer};

/// A duration written the way people write cap windows: `90s`, `15m`, `1h`, `24h`,
/// `7d`, `2w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Window {
    seconds: i64,
    text_unit: char,
}

impl Window {
    pub fn from_seconds(seconds: i64) -> Self {
        let text_unit = if seconds % 86_400 == 0 {
            'd'
        } else if seconds % 3_600 == 0 {
            'h'
        } else if seconds % 60 == 0 {
            'm'
        } else {
            's'
        };
        Window { seconds, text_unit }
    }

    pub fn seconds(self) -> i64 {
        self.seconds
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid duration {s:?}: expected a whole number and a unit, like 90s, 15m, 1h, 24h, 7d or 2w");
        let s = s.trim();
        let unit = s.chars().last().ok_or_else(bad)?;
        let number: i64 = s[..s.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
        let per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        if number <= 0 {
            return Err(format!("invalid duration {s:?}: must be positive"));
        }
        if number > 366 * 86_400 / per {
            return Err(format!("invalid duration {s:?}: at most a year"));
        }
        Ok(Window { seconds: number * per, text_unit: unit })
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = match self.text_unit {
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => 1,
        };
        write!(f, "{}{}", self.seconds / per, self.text_unit)
    }
}

impl<'de> Deserialize<'de> for Window {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Window::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A wall-clock time of day, `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime(jiff::civil::Time);

impl LocalTime {
    /// `hour:minute`; panics at compile time when out of range (for constants).
    pub const fn hm(hour: i8, minute: i8) -> Self {
        LocalTime(jiff::civil::Time::constant(hour, minute, 0, 0))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid time of day {s:?}: expected HH:MM (24-hour), like 21:00");
        let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
        let h: i8 = h.parse().map_err(|_| bad())?;
        let m: i8 = m.parse().map_err(|_| bad())?;
        jiff::civil::Time::new(h, m, 0, 0).map(LocalTime).map_err(|_| bad())
    }

    pub fn time(self) -> jiff::civil::Time {
        self.0
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).map_err(serde::de::Error::custom)
    }
}
