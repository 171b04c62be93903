//! `[sms]`: the sender identity, price ceiling, length limit and transliteration of SMS,
//! with overrides per category, destination country and tenant.
//!
//! Sender settings (`sender_id`, `origination_number`, `max_price`) are looked up key by
//! key, most specific first: `[sms.tenants.<tenant>.countries.<country>]`, then
//! `[sms.tenants.<tenant>]`, then `[sms.countries.<country>]`, then `[sms]`. A country
//! is a region code (`GB`, `JM`) or a calling code (`"+44"`, `"+1"`); at one level the
//! region wins over the calling code. US and Canadian numbers share +1 with no prefix
//! that tells them apart, so they are keyed `"+1"`: see [`crate::request::phone_region`].
//!
//! A calling-code key reaches every number of the code, with one exception: an
//! origination number belongs to one country, so a calling-code key's
//! `origination_number` goes only to the numbers of the code's own country (`"+1"`: US
//! and Canadian numbers; `"+44"`: GB, with Guernsey and Jersey), never to a region that
//! shares the code (Jamaica's +1 876, the Isle of Man's +44 7624), which takes its own
//! from its region key, else from the tenant's or the top level. `sender_id` and
//! `max_price` do reach those regions: a sender id is a name, not a number of a
//! country's plan, and a price ceiling too low for a region's rates holds messages back
//! rather than overspends.
//!
//! Length and transliteration are set per category: `[sms.categories.<category>]`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::request::address::is_calling_code;
use crate::request::{Category, PhoneNumber, TenantId, phone_region};

/// When a body's typographic characters are replaced by GSM-7 ones
/// ([`crate::render::sms::transliterate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transliterate {
    /// Every category but `transactional`: a one-time code or an order update goes out
    /// as written, whatever it costs.
    #[default]
    NonTransactional,
    Always,
    Never,
}

impl Transliterate {
    /// As written in herald.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            Transliterate::NonTransactional => "non_transactional",
            Transliterate::Always => "always",
            Transliterate::Never => "never",
        }
    }

    pub fn applies(self, transactional: bool) -> bool {
        match self {
            Transliterate::NonTransactional => !transactional,
            Transliterate::Always => true,
            Transliterate::Never => false,
        }
    }
}

/// Sender settings at one level of `[sms]`; an absent key defers to the next level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmsSender {
    /// Alphanumeric sender id (SNS `AWS.SNS.SMS.SenderID`): 1 to 11 ASCII letters and
    /// digits, at least one a letter, no spaces.
    pub sender_id: Option<String>,
    /// The number to send from, E.164 (SNS `AWS.MM.SMS.OriginationNumber`).
    pub origination_number: Option<PhoneNumber>,
    /// The most one message may cost, in US dollars (SNS `AWS.SNS.SMS.MaxPrice`).
    pub max_price: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct CategorySms {
    max_segments: Option<u32>,
    transliterate: Option<Transliterate>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct TenantSms {
    sender: SmsSender,
    countries: BTreeMap<String, SmsSender>,
}

/// The checked `[sms]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// The top level's sender settings.
    pub sender: SmsSender,
    /// Longer messages fail (`sms_too_long`) instead of silently costing more. 1 to
    /// [`MAX_SEGMENTS_LIMIT`].
    pub max_segments: u32,
    pub transliterate: Transliterate,
    categories: BTreeMap<String, CategorySms>,
    countries: BTreeMap<String, SmsSender>,
    tenants: BTreeMap<String, TenantSms>,
}

pub const DEFAULT_MAX_SEGMENTS: u32 = 6;

/// The most `max_segments` may be. SNS refuses an SMS `Publish` over 1,600 characters:
/// 10 concatenated segments hold at most 1,530 GSM-7 characters (10 x 153) or 670 UCS-2
/// code units, so every body within 10 segments fits; 11 hold up to 1,683 GSM-7
/// characters, which SNS may refuse after herald has counted the message as sendable.
pub const MAX_SEGMENTS_LIMIT: u32 = 10;

impl Default for SmsSettings {
    fn default() -> Self {
        SmsSettings {
            sender: SmsSender::default(),
            max_segments: DEFAULT_MAX_SEGMENTS,
            transliterate: Transliterate::default(),
            categories: BTreeMap::new(),
            countries: BTreeMap::new(),
            tenants: BTreeMap::new(),
        }
    }
}

/// What one message is sent with: [`SmsSettings::for_message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsOptions {
    pub sender_id: Option<String>,
    /// E.164.
    pub origination_number: Option<String>,
    /// US dollars, a decimal string such as `0.50`.
    pub max_price: Option<String>,
    pub max_segments: u32,
    /// Whether to replace typographic characters by GSM-7 ones before sending.
    pub transliterate: bool,
}

impl SmsSettings {
    /// The settings of one message, to `to`, in `category` (lower case, as requests
    /// carry it), for `tenant`.
    pub fn for_message(
        &self,
        tenant: Option<&str>,
        to: &PhoneNumber,
        category: &str,
        transactional: bool,
    ) -> SmsOptions {
        let code = format!("+{}", to.country_code());
        // An origination number belongs to one country: a calling-code key gives its
        // origination_number only to the numbers of that code's own country (+1: the US
        // and Canada, which have no region; not Jamaica, whose +1 876 numbers are JM).
        let own_country = to.region() == phone_region::region_of(&to.country_code().to_string());
        // (key, whether its origination_number applies), the region first.
        let keys: Vec<(&str, bool)> =
            to.region().map(|r| (r, true)).into_iter().chain([(code.as_str(), own_country)]).collect();
        let tenant = tenant.and_then(|t| self.tenants.get(t));
        fn in_countries<'a>(
            countries: &'a BTreeMap<String, SmsSender>,
            keys: &[(&str, bool)],
        ) -> Vec<(&'a SmsSender, bool)> {
            keys.iter().filter_map(|&(k, origination)| countries.get(k).map(|s| (s, origination))).collect()
        }
        // Most specific first, each with whether it may give the origination number.
        let mut levels: Vec<(&SmsSender, bool)> = Vec::with_capacity(6);
        if let Some(t) = tenant {
            levels.extend(in_countries(&t.countries, &keys));
            levels.push((&t.sender, true));
        }
        levels.extend(in_countries(&self.countries, &keys));
        levels.push((&self.sender, true));

        let (_, transliterate) = self.transliteration(category);
        let category = self.categories.get(category);
        SmsOptions {
            sender_id: levels.iter().find_map(|(l, _)| l.sender_id.clone()),
            origination_number: levels
                .iter()
                .filter(|&&(_, origination)| origination)
                .find_map(|(l, _)| l.origination_number.as_ref().map(|n| n.as_str().to_owned())),
            max_price: levels.iter().find_map(|(l, _)| l.max_price.clone()),
            max_segments: category.and_then(|c| c.max_segments).unwrap_or(self.max_segments),
            transliterate: transliterate.applies(transactional),
        }
    }

    /// The setting that decides whether `category` (lower case) is transliterated, and
    /// what it says: `sms.categories.<category>.transliterate` when set, else
    /// `sms.transliterate` (built in: `non_transactional`).
    pub fn transliteration(&self, category: &str) -> (String, Transliterate) {
        match self.categories.get(category).and_then(|c| c.transliterate) {
            Some(t) => (format!("sms.categories.{category}.transliterate"), t),
            None => ("sms.transliterate".to_owned(), self.transliterate),
        }
    }

    /// Checks `[sms]` as written; errors name the key, never a value (a key with a
    /// number's worth of digits is hidden on its way into a `ConfigError`).
    pub(super) fn from_raw(raw: RawSms) -> Result<Self, String> {
        let sender = RawSender {
            sender_id: raw.sender_id,
            origination_number: raw.origination_number,
            max_price: raw.max_price,
        }
        .check("sms")?;
        let max_segments = raw.max_segments.unwrap_or(DEFAULT_MAX_SEGMENTS);
        check_segments("sms.max_segments", max_segments)?;
        let mut categories = BTreeMap::new();
        for (key, c) in raw.categories {
            let category = Category::parse(&key).map_err(|e| format!("sms.categories.{key}: {e}"))?;
            if let Some(n) = c.max_segments {
                check_segments(&format!("sms.categories.{key}.max_segments"), n)?;
            }
            let parsed = CategorySms { max_segments: c.max_segments, transliterate: c.transliterate };
            if categories.insert(category.as_str().to_owned(), parsed).is_some() {
                return Err(format!("sms.categories.{key}: the category is configured twice (categories ignore case)"));
            }
        }
        let countries = check_countries("sms.countries", raw.countries)?;
        let mut tenants = BTreeMap::new();
        for (key, t) in raw.tenants {
            let path = format!("sms.tenants.{key}");
            TenantId::parse(&key).map_err(|e| format!("{path}: {e}"))?;
            let sender =
                RawSender { sender_id: t.sender_id, origination_number: t.origination_number, max_price: t.max_price }
                    .check(&path)?;
            let countries = check_countries(&format!("{path}.countries"), t.countries)?;
            tenants.insert(key, TenantSms { sender, countries });
        }
        Ok(SmsSettings {
            sender,
            max_segments,
            transliterate: raw.transliterate.unwrap_or_default(),
            categories,
            countries,
            tenants,
        })
    }
}

fn check_segments(path: &str, n: u32) -> Result<(), String> {
    if n == 0 {
        return Err(format!("{path}: at least 1"));
    }
    if n > MAX_SEGMENTS_LIMIT {
        return Err(format!(
            "{path}: at most {MAX_SEGMENTS_LIMIT} (SNS refuses a message over 1,600 characters, and 11 segments \
             can hold more)"
        ));
    }
    Ok(())
}

/// Country keys, normalised (`gb` -> `GB`) and checked: a region a number can be placed
/// in, or an assigned calling code.
fn check_countries(path: &str, raw: BTreeMap<String, RawSender>) -> Result<BTreeMap<String, SmsSender>, String> {
    let mut out = BTreeMap::new();
    for (key, sender) in raw {
        let normal = if let Some(digits) = key.strip_prefix('+') {
            let code: Option<u16> = digits.parse().ok().filter(|_| digits.bytes().all(|b| b.is_ascii_digit()));
            if !code.is_some_and(is_calling_code) {
                return Err(format!("{path}.{key}: not an assigned calling code (write \"+44\", \"+1\"...)"));
            }
            key.clone()
        } else {
            let region = key.to_ascii_uppercase();
            if region.len() != 2 || !region.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "{path}.{key}: expected a region code such as \"GB\" or a calling code such as \"+44\""
                ));
            }
            phone_region::check_region(&region).map_err(|e| format!("{path}.{key}: {e}"))?;
            region
        };
        let sender = sender.check(&format!("{path}.{key}"))?;
        if out.insert(normal, sender).is_some() {
            return Err(format!("{path}.{key}: the country is configured twice"));
        }
    }
    Ok(out)
}

/// `[sms]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    // The sender keys of RawSender, spelt out: serde's `flatten` would turn
    // `deny_unknown_fields` off.
    #[serde(default)]
    sender_id: Option<QuotedText>,
    #[serde(default)]
    origination_number: Option<QuotedText>,
    #[serde(default)]
    max_price: Option<QuotedText>,
    #[serde(default)]
    max_segments: Option<u32>,
    #[serde(default)]
    transliterate: Option<Transliterate>,
    #[serde(default)]
    categories: BTreeMap<String, RawCategory>,
    #[serde(default)]
    countries: BTreeMap<String, RawSender>,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSender {
    #[serde(default)]
    sender_id: Option<QuotedText>,
    #[serde(default)]
    origination_number: Option<QuotedText>,
    #[serde(default)]
    max_price: Option<QuotedText>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCategory {
    #[serde(default)]
    max_segments: Option<u32>,
    #[serde(default)]
    transliterate: Option<Transliterate>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    sender_id: Option<QuotedText>,
    #[serde(default)]
    origination_number: Option<QuotedText>,
    #[serde(default)]
    max_price: Option<QuotedText>,
    #[serde(default)]
    countries: BTreeMap<String, RawSender>,
}

impl RawSender {
    fn check(self, path: &str) -> Result<SmsSender, String> {
        let sender_id = self.sender_id.map(|id| id.0);
        if let Some(id) = &sender_id
            && !is_sender_id(id)
        {
            return Err(format!(
                "{path}.sender_id: 1 to 11 ASCII letters and digits, at least one of them a letter, \
                 no spaces or punctuation (SNS alphanumeric sender id)"
            ));
        }
        // PhoneNumber's errors never repeat the number.
        let origination_number = self
            .origination_number
            .map(|n| PhoneNumber::parse(&n.0))
            .transpose()
            .map_err(|e| format!("{path}.origination_number: {e}"))?;
        let max_price =
            self.max_price.map(|p| check_price(&p.0)).transpose().map_err(|e| format!("{path}.max_price: {e}"))?;
        Ok(SmsSender { sender_id, origination_number, max_price })
    }
}

/// SNS's `AWS.SNS.SMS.SenderID`: 1 to 11 characters, ASCII letters and digits only, at
/// least one letter (an all-digit id would read as a number), no spaces.
fn is_sender_id(id: &str) -> bool {
    (1..=11).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric())
        && id.bytes().any(|b| b.is_ascii_alphabetic())
}

/// SNS's `AWS.SNS.SMS.MaxPrice`: a positive amount in US dollars, at most 5 decimals.
fn check_price(s: &str) -> Result<String, String> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() > 5 || whole.len() > 6 {
        return Err("expected an amount in US dollars with at most 5 decimals, as a string like \"0.50\"".into());
    }
    if s.bytes().all(|b| b == b'0' || b == b'.') {
        return Err("must be more than 0 (a message that may cost nothing is never sent)".into());
    }
    Ok(s.to_owned())
}

/// A value that must be a TOML string. Anything else is refused without repeating it:
/// an unquoted phone number parses as an integer, and errors never carry a number.
#[derive(Debug, Clone)]
struct QuotedText(String);

impl<'de> Deserialize<'de> for QuotedText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Quoted;
        impl Visitor<'_> for Quoted {
            type Value = QuotedText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quoted string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<QuotedText, E> {
                Ok(QuotedText(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<QuotedText, E> {
                Err(E::custom("expected a quoted string, got a number"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<QuotedText, E> {
                Err(E::custom("expected a quoted string, got a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<QuotedText, E> {
                Err(E::custom("expected a quoted string, got a number"))
            }
        }
        d.deserialize_any(Quoted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[sms]` as the configuration reads it (TOML errors included).
    fn sms(text: &str) -> Result<SmsSettings, String> {
        let raw: RawSms = toml::from_str(text).map_err(|e| super::super::toml_error(text, e))?;
        SmsSettings::from_raw(raw)
    }

    fn phone(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s).expect("a valid number")
    }

    const UK: &str = "+447700900123";
    const US: &str = "+14155550123";
    const JAMAICA: &str = "+18765550123";

    const LAYERED: &str = r#"
        sender_id = "ACME"
        max_price = "0.50"

        [countries.GB]
        sender_id = "ACMEUK"
        max_price = "0.10"

        [countries."+1"]
        origination_number = "+18005550111"

        [countries.JM]
        sender_id = "ACMEJM"

        [tenants.globex]
        sender_id = "GLOBEX"

        [tenants.globex.countries.GB]
        max_price = "0.05"
    "#;

    #[test]
    fn sender_settings_take_the_most_specific_level_key_by_key() {
        let s = sms(LAYERED).unwrap();
        let at = |tenant: Option<&str>, to: &str| s.for_message(tenant, &phone(to), "marketing", false);
        // Top level.
        let top = at(None, "+33612345678");
        assert_eq!(
            (top.sender_id.as_deref(), top.origination_number.as_deref(), top.max_price.as_deref()),
            (Some("ACME"), None, Some("0.50"))
        );
        // Country over top level, key by key.
        let uk = at(None, UK);
        assert_eq!((uk.sender_id.as_deref(), uk.max_price.as_deref()), (Some("ACMEUK"), Some("0.10")));
        assert_eq!(uk.origination_number, None);
        // Tenant over country; tenant+country over tenant.
        let globex_uk = at(Some("globex"), UK);
        assert_eq!((globex_uk.sender_id.as_deref(), globex_uk.max_price.as_deref()), (Some("GLOBEX"), Some("0.05")));
        let globex_fr = at(Some("globex"), "+33612345678");
        assert_eq!((globex_fr.sender_id.as_deref(), globex_fr.max_price.as_deref()), (Some("GLOBEX"), Some("0.50")));
        // A tenant without a section gets what everyone gets.
        assert_eq!(at(Some("initech"), UK), uk);
    }

    #[test]
    fn a_region_key_beats_its_calling_code_and_plus_one_reaches_us_numbers() {
        let s = sms(LAYERED).unwrap();
        let us = s.for_message(None, &phone(US), "marketing", false);
        assert_eq!((us.sender_id.as_deref(), us.origination_number.as_deref()), (Some("ACME"), Some("+18005550111")));
        let jm = s.for_message(None, &phone(JAMAICA), "marketing", false);
        assert_eq!(jm.sender_id.as_deref(), Some("ACMEJM"));
    }

    #[test]
    fn an_origination_number_stays_in_its_country() {
        let plus_one =
            "[countries.\"+1\"]\norigination_number = \"+18005550111\"\nmax_price = \"0.02\"\nsender_id = \"ACME\"\n";
        let s = sms(plus_one).unwrap();
        // A US toll-free number cannot text Jamaica: +1 876 gets none from "+1"...
        let jm = s.for_message(None, &phone(JAMAICA), "marketing", false);
        assert_eq!(jm.origination_number, None);
        // ...but its sender id and price ceiling (documented).
        assert_eq!((jm.sender_id.as_deref(), jm.max_price.as_deref()), (Some("ACME"), Some("0.02")));
        // Nor from a tenant's "+1".
        let tenant = sms("[tenants.t.countries.\"+1\"]\norigination_number = \"+18005550111\"\n").unwrap();
        assert_eq!(tenant.for_message(Some("t"), &phone(JAMAICA), "m", false).origination_number, None);
        assert_eq!(
            tenant.for_message(Some("t"), &phone(US), "m", false).origination_number.as_deref(),
            Some("+18005550111")
        );
        // Its own key gives it one.
        let own = sms(&format!("{plus_one}[countries.JM]\norigination_number = \"+18765550100\"\n")).unwrap();
        assert_eq!(
            own.for_message(None, &phone(JAMAICA), "m", false).origination_number.as_deref(),
            Some("+18765550100")
        );
        assert_eq!(own.for_message(None, &phone(US), "m", false).origination_number.as_deref(), Some("+18005550111"));
        // A calling code's own country keeps it: "+44" reaches GB, not the Isle of Man.
        let uk = sms("[countries.\"+44\"]\norigination_number = \"+447700900001\"\n").unwrap();
        assert_eq!(uk.for_message(None, &phone(UK), "m", false).origination_number.as_deref(), Some("+447700900001"));
        assert_eq!(uk.for_message(None, &phone("+447624123456"), "m", false).origination_number, None);
        // The top level is for every destination without one of its own.
        let top = sms("origination_number = \"+18005550100\"\n[countries.\"+1\"]\nmax_price = \"0.02\"\n").unwrap();
        assert_eq!(
            top.for_message(None, &phone(JAMAICA), "m", false).origination_number.as_deref(),
            Some("+18005550100")
        );
    }

    #[test]
    fn length_and_transliteration_go_by_category() {
        let s = sms(
            "max_segments = 4\n[categories.Marketing]\nmax_segments = 2\n[categories.otp]\ntransliterate = \"always\"\n",
        )
        .unwrap();
        let at = |category: &str, transactional: bool| s.for_message(None, &phone(UK), category, transactional);
        assert_eq!((at("marketing", false).max_segments, at("news", false).max_segments), (2, 4));
        // Built in: every category but transactional.
        assert!(at("marketing", false).transliterate);
        assert!(!at("transactional", true).transliterate);
        assert!(at("otp", false).transliterate);
        let never = sms("transliterate = \"never\"\n").unwrap();
        assert!(!never.for_message(None, &phone(UK), "marketing", false).transliterate);
        let always = sms("transliterate = \"always\"\n").unwrap();
        assert!(always.for_message(None, &phone(UK), "transactional", true).transliterate);
        // Nothing configured: 6 segments, as before.
        assert_eq!(sms("").unwrap(), SmsSettings::default());
        assert_eq!(SmsSettings::default().max_segments, 6);
    }

    #[test]
    fn max_segments_stops_where_sns_does() {
        assert_eq!(sms("max_segments = 10\n").unwrap().max_segments, 10);
        let s = sms("[categories.transactional]\nmax_segments = 10\n").unwrap();
        assert_eq!(s.for_message(None, &phone(UK), "transactional", true).max_segments, 10);
        let e = sms("max_segments = 11\n").unwrap_err();
        assert!(e.starts_with("sms.max_segments: at most 10"), "{e}");
        let e = sms("[categories.news]\nmax_segments = 40\n").unwrap_err();
        assert!(e.starts_with("sms.categories.news.max_segments: at most 10"), "{e}");
        // What the limit rests on: 10 full segments are within SNS's 1,600 characters, 11 are not.
        let ten = crate::render::sms::segment(&"a".repeat(10 * 153));
        assert_eq!(ten.segments, MAX_SEGMENTS_LIMIT);
        assert!(ten.characters <= 1_600 && 11 * 153 > 1_600);
    }

    #[test]
    fn the_transliteration_setting_of_a_category_is_named() {
        let s = sms("transliterate = \"never\"\n[categories.otp]\ntransliterate = \"always\"\n").unwrap();
        assert_eq!(s.transliteration("otp"), ("sms.categories.otp.transliterate".to_owned(), Transliterate::Always));
        assert_eq!(s.transliteration("marketing"), ("sms.transliterate".to_owned(), Transliterate::Never));
        let built_in = SmsSettings::default();
        assert_eq!(built_in.transliteration("x"), ("sms.transliterate".to_owned(), Transliterate::NonTransactional));
        assert_eq!(Transliterate::NonTransactional.as_str(), "non_transactional");
    }

    #[test]
    fn prices_are_positive_dollar_amounts_with_at_most_five_decimals() {
        for good in ["0.50", "1", "0.00581", "12.5"] {
            assert_eq!(check_price(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["", "0", "0.000", "-1", "1.", ".5", "0.000001", "1e3", "$1", " 1", "1,50", "1234567"] {
            assert!(check_price(bad).is_err(), "{bad:?}");
        }
        let e = sms("max_price = 0.5\n").unwrap_err();
        assert!(e.contains("quoted string"), "{e}");
    }

    #[test]
    fn errors_name_the_key_and_never_the_number() {
        let e = sms("[tenants.acme.countries.GB]\norigination_number = \"+44 7700 90\"\n").unwrap_err();
        assert!(e.starts_with("sms.tenants.acme.countries.GB.origination_number: "), "{e}");
        assert!(!e.contains("7700"), "{e}");
        // Unquoted, a number is a TOML integer: refused without repeating it.
        let e = sms("origination_number = 14155550100\n").unwrap_err();
        assert!(e.contains("quoted string") && !e.contains("4155550100"), "{e}");
        let e = sms("[countries.GB]\nsender_id = \"TOO-LONG-SENDER\"\n").unwrap_err();
        assert!(e.starts_with("sms.countries.GB.sender_id: 1 to 11"), "{e}");
        let e = sms("[categories.marketing]\nmax_segments = 0\n").unwrap_err();
        assert!(e.starts_with("sms.categories.marketing.max_segments: at least 1"), "{e}");
        assert!(sms("[countries.GB]\nsenderid = \"X\"\n").unwrap_err().contains("unknown field"));
        assert!(sms("[categories.x]\nsender_id = \"X\"\n").unwrap_err().contains("unknown field"));
    }

    #[test]
    fn sender_ids_are_what_sns_accepts() {
        for good in ["ACME", "A", "Acme2Go", "ABCDEFGHIJK", "2FA"] {
            let s = sms(&format!("sender_id = \"{good}\"\n")).unwrap();
            assert_eq!(s.sender.sender_id.as_deref(), Some(good));
        }
        // Too long, empty, a space, punctuation, a letter outside ASCII, digits only.
        for bad in ["ABCDEFGHIJKL", "", "ACME UK", "ACME-UK", "ACME_UK", "ÀCME", "Ａcme", "12345678"] {
            let e = sms(&format!("[tenants.t.countries.GB]\nsender_id = \"{bad}\"\n")).unwrap_err();
            assert!(e.starts_with("sms.tenants.t.countries.GB.sender_id: 1 to 11"), "{bad:?}: {e}");
            assert!(bad.is_empty() || !e.contains(bad), "{e}");
        }
    }

    #[test]
    fn country_keys_are_regions_numbers_resolve_to_or_calling_codes() {
        let s = sms("[countries.gb]\nsender_id = \"LOWER\"\n").unwrap();
        assert_eq!(s.for_message(None, &phone(UK), "m", false).sender_id.as_deref(), Some("LOWER"));
        let e = sms("[countries.US]\nsender_id = \"X\"\n").unwrap_err();
        assert!(e.starts_with("sms.countries.US: ") && e.contains("\"+1\""), "{e}");
        let e = sms("[countries.JE]\nsender_id = \"X\"\n").unwrap_err();
        assert!(e.contains("count as GB"), "{e}");
        for bad in ["ZZ", "GBR", "+999", "+", "+4a"] {
            let text = format!("[countries.\"{bad}\"]\nsender_id = \"X\"\n");
            assert!(sms(&text).unwrap_err().starts_with(&format!("sms.countries.{bad}: ")), "{bad}");
        }
        assert!(sms("[countries.GB]\n[countries.gb]\n").unwrap_err().contains("twice"));
        assert!(sms("[tenants.\"a b\"]\n").unwrap_err().starts_with("sms.tenants.a b: "));
    }
}
