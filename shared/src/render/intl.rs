//! Locale-aware helpers: `format_number`, `format_currency`, `format_percent`,
//! `pluralize` and `format_date`, on ICU4X's compiled CLDR data (baked into the
//! binary: no data files, no network at run time).
//!
//! The locale is the `locale="…"` hash argument, else `herald.locale` from the
//! context root, else `en`; the time zone is `format_date`'s third argument or `tz="…"`,
//! else `herald.timezone`, else UTC. Output follows JavaScript's `Intl` (ICU on CLDR
//! data too) for the same options; docs/templates.md lists the few places where they
//! differ and why.
//!
//! Building a formatter costs several times a warm call (a few µs against about half
//! a µs), so each thread keeps the ones it built, per locale, in a bounded map: locale
//! tags come from request data.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use fixed_decimal::{Decimal, FloatPrecision, SignedRoundingMode, UnsignedRoundingMode};
use handlebars::{Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, ScopedJson};
use icu_calendar::{Date, Gregorian, Iso};
use icu_datetime::DateTimeFormatter;
use icu_datetime::fieldsets::builder::{DateFields, FieldSetBuilder};
use icu_datetime::fieldsets::enums::CompositeDateTimeFieldSet;
use icu_datetime::input::{DateTime, Time};
use icu_datetime::options::{Length, TimePrecision};
use icu_datetime::pattern::{DateTimePattern, FixedCalendarDateTimeNames};
use icu_decimal::DecimalFormatter;
use icu_experimental::dimension::currency::CurrencyType;
use icu_experimental::dimension::currency::formatter::CurrencyFormatter;
use icu_experimental::dimension::percent::formatter::PercentFormatter;
use icu_locale_core::Locale;
use icu_plurals::{PluralCategory, PluralRules};
use serde_json::Value;
use writeable::{TryWriteable, Writeable};

use super::helpers::{HelperError, hash_value, value_param};

/// What went wrong, naming the argument, never its value (request data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntlError {
    #[error("{0} is not a number")]
    NotANumber(&'static str),
    #[error("{0} is not a BCP 47 locale tag such as `fr-CA`")]
    BadLocale(&'static str),
    #[error("{0} is not an ISO 4217 currency code such as `EUR`")]
    UnknownCurrency(&'static str),
    #[error("{0} is not an IANA time zone such as `Europe/Paris`")]
    UnknownTimeZone(&'static str),
    #[error("{0} is not an RFC 3339 instant, a YYYY-MM-DD date or a number of seconds since 1970")]
    BadDate(&'static str),
    #[error("{arg} must be {expected}")]
    BadOption { arg: &'static str, expected: &'static str },
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("the date pattern cannot be used: {0}")]
    BadPattern(String),
    #[error("the locale data cannot be loaded")]
    Data,
}

/// Fraction digits to show: at least `min`, at most `max` (rounding half away from zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digits {
    pub min: u8,
    pub max: u8,
}

impl Digits {
    /// `format_number`'s default, as `Intl.NumberFormat`: up to 3 fraction digits.
    pub const NUMBER: Digits = Digits { min: 0, max: 3 };
    /// `format_percent`'s default, as `Intl.NumberFormat` with `style: "percent"`.
    pub const PERCENT: Digits = Digits { min: 0, max: 0 };
}

/// How `format_currency` names the currency (`Intl.NumberFormat`'s `currencyDisplay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CurrencyDisplay {
    /// `€`, `US$` in fr, `CA$` in en-US.
    Symbol,
    /// `$` for any dollar.
    Narrow,
    /// `EUR`.
    Code,
    /// `euros` (plural-aware).
    Name,
}

/// How `format_date` lays out a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DateFormat {
    /// A strftime pattern (`%B %-d, %Y`), locale-independent (English names).
    Strftime(String),
    /// A localized style: `date` short/medium/long/full, `time` short/medium.
    Style { date: Option<DateStyle>, time: Option<TimeStyle> },
    /// A CLDR pattern (`EEEE d MMMM y`, `HH:mm`) with the locale's month and day names.
    Pattern(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateStyle {
    Short,
    Medium,
    Long,
    /// Long with the weekday.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeStyle {
    /// Hours and minutes.
    Short,
    /// Hours, minutes and seconds.
    Medium,
}

impl DateStyle {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "short" => DateStyle::Short,
            "medium" => DateStyle::Medium,
            "long" => DateStyle::Long,
            "full" => DateStyle::Full,
            _ => return None,
        })
    }
}

const DEFAULT_LOCALE: &str = "en";
/// Distinct locales a thread keeps formatters for; past that it starts over.
const MAX_LOCALES: usize = 64;
/// Distinct currencies, date formats or patterns a locale keeps; past that it starts over.
const MAX_PER_LOCALE: usize = 32;

/// Everything built for one locale, each part on first use.
struct LocaleData {
    locale: Locale,
    decimal: OnceCell<DecimalFormatter>,
    percent: OnceCell<PercentFormatter<DecimalFormatter>>,
    plurals: OnceCell<PluralRules>,
    currencies: Cache<(CurrencyType, CurrencyDisplay), CurrencyFormatter<DecimalFormatter>>,
    dates: Cache<(Option<DateStyle>, Option<TimeStyle>), DateTimeFormatter<CompositeDateTimeFieldSet>>,
    patterns: Cache<String, PatternFormatter>,
}

type Cache<K, V> = RefCell<HashMap<K, Rc<V>>>;

struct PatternFormatter {
    pattern: DateTimePattern,
    names: FixedCalendarDateTimeNames<Gregorian>,
    has_time: bool,
}

thread_local! {
    /// Keyed by the tag as written, so a hit costs no parsing.
    static LOCALES: RefCell<HashMap<String, Rc<LocaleData>>> = RefCell::new(HashMap::new());
}

fn locale_data(tag: &str, arg: &'static str) -> Result<Rc<LocaleData>, IntlError> {
    LOCALES.with_borrow_mut(|cache| {
        if let Some(data) = cache.get(tag) {
            return Ok(Rc::clone(data));
        }
        let locale = Locale::try_from_str(tag).map_err(|_| IntlError::BadLocale(arg))?;
        if cache.len() >= MAX_LOCALES {
            cache.clear();
        }
        let data = Rc::new(LocaleData {
            locale,
            decimal: OnceCell::new(),
            percent: OnceCell::new(),
            plurals: OnceCell::new(),
            currencies: RefCell::default(),
            dates: RefCell::default(),
            patterns: RefCell::default(),
        });
        cache.insert(tag.to_owned(), Rc::clone(&data));
        Ok(data)
    })
}

/// `OnceCell::get_or_try_init` is unstable: the same with a fallible builder.
fn get_or_try_init<T>(cell: &OnceCell<T>, make: impl FnOnce() -> Result<T, IntlError>) -> Result<&T, IntlError> {
    if let Some(v) = cell.get() {
        return Ok(v);
    }
    let v = make()?;
    Ok(cell.get_or_init(|| v))
}

fn cached<K: std::hash::Hash + Eq, V>(
    map: &Cache<K, V>,
    key: K,
    make: impl FnOnce() -> Result<V, IntlError>,
) -> Result<Rc<V>, IntlError> {
    if let Some(v) = map.borrow().get(&key) {
        return Ok(Rc::clone(v));
    }
    let v = Rc::new(make()?);
    let mut map = map.borrow_mut();
    if map.len() >= MAX_PER_LOCALE {
        map.clear();
    }
    map.insert(key, Rc::clone(&v));
    Ok(v)
}

impl LocaleData {
    fn decimal(&self) -> Result<&DecimalFormatter, IntlError> {
        get_or_try_init(&self.decimal, || {
            DecimalFormatter::try_new((&self.locale).into(), Default::default()).map_err(|_| IntlError::Data)
        })
    }

    fn plurals(&self) -> Result<&PluralRules, IntlError> {
        get_or_try_init(&self.plurals, || {
            PluralRules::try_new_cardinal((&self.locale).into()).map_err(|_| IntlError::Data)
        })
    }
}

// --- numbers ------------------------------------------------------------------------

/// A JSON number, or a string holding a decimal number (`"1234.50"`, kept exact).
fn to_decimal(v: &Value, arg: &'static str) -> Result<Decimal, IntlError> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(Decimal::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(Decimal::from(u))
            } else {
                let f = n.as_f64().ok_or(IntlError::NotANumber(arg))?;
                // The shortest digits that round-trip, as JS and ICU format a double.
                Decimal::try_from_f64(f, FloatPrecision::RoundTrip).map_err(|_| IntlError::NotANumber(arg))
            }
        }
        Value::String(s) => {
            let t = s.trim();
            let t = t.strip_prefix('+').unwrap_or(t);
            // JavaScript reads "5." as 5; the decimal parser wants a digit after the point.
            let t = t.strip_suffix('.').filter(|t| t.ends_with(|c: char| c.is_ascii_digit())).unwrap_or(t);
            Decimal::try_from_str(t).map_err(|_| IntlError::NotANumber(arg))
        }
        _ => Err(IntlError::NotANumber(arg)),
    }
}

fn apply_digits(d: &mut Decimal, digits: Digits) {
    d.round_with_mode(-i16::from(digits.max), SignedRoundingMode::Unsigned(UnsignedRoundingMode::HalfExpand));
    // No leading zeros (0.256 × 100 would print "026"), no trailing ones past `min`.
    d.absolute.trim_start();
    d.absolute.trim_end();
    d.absolute.pad_end(-i16::from(digits.min));
}

/// `1234.5` → "1,234.5" (en), "1 234,5" (fr, with U+202F), "1.234,5" (de).
pub fn format_number(value: &Value, locale: &str, digits: Digits) -> Result<String, IntlError> {
    let data = locale_data(locale, "the locale")?;
    let mut d = to_decimal(value, "the value")?;
    apply_digits(&mut d, digits);
    Ok(data.decimal()?.format(&d).write_to_string().into_owned())
}

/// `0.256` → "26%" (en), "26 %" (fr).
pub fn format_percent(value: &Value, locale: &str, digits: Digits) -> Result<String, IntlError> {
    let data = locale_data(locale, "the locale")?;
    let mut d = to_decimal(value, "the value")?;
    d.multiply_pow10(2);
    apply_digits(&mut d, digits);
    let percent = get_or_try_init(&data.percent, || {
        PercentFormatter::try_new((&data.locale).into(), Default::default()).map_err(|_| IntlError::Data)
    })?;
    Ok(percent.format(&d).write_to_string().into_owned())
}

/// Three ASCII letters, any case.
fn currency_type(code: &str) -> Result<CurrencyType, IntlError> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(IntlError::UnknownCurrency("the currency code"));
    }
    CurrencyType::try_from_str(code).map_err(|_| IntlError::UnknownCurrency("the currency code"))
}

/// Whether the code is a currency CLDR knows: one it names in English, which covers
/// the ISO 4217 list and the historic codes CLDR still carries. Intl accepts any
/// three letters ("XYZ 1.00"); a typo here is better caught.
fn known_currency(currency: CurrencyType) -> bool {
    use icu_experimental::dimension::provider::currency::extended::CurrencyExtendedDataV1;
    use icu_provider::prelude::*;

    let iso = currency.iso_code();
    let Ok(attributes) = DataMarkerAttributes::try_from_str(iso.as_str()) else { return false };
    let en = DataLocale::from(icu_locale_core::locale!("en"));
    // The same compiled data CurrencyFormatter::try_new_name reads; silent: a miss is an
    // answer, not a problem to log.
    let mut request = DataRequest {
        id: DataIdentifierBorrowed::for_marker_attributes_and_locale(attributes, &en),
        ..Default::default()
    };
    request.metadata.silent = true;
    DataProvider::<CurrencyExtendedDataV1>::load(&icu_experimental::provider::Baked, request).is_ok()
}

/// `1234.5, "EUR"` → "€1,234.50" (en-US), "1 234,50 €" (fr-FR), with the currency's
/// own fraction digits from CLDR (JPY 0, BHD 3).
pub fn format_currency(
    value: &Value,
    currency: &str,
    locale: &str,
    display: CurrencyDisplay,
) -> Result<String, IntlError> {
    let data = locale_data(locale, "the locale")?;
    let amount = to_decimal(value, "the amount")?;
    let code = currency_type(currency)?;
    // Checked when the formatter is built, so once per locale and currency.
    let formatter = cached(&data.currencies, (code, display), || {
        if !known_currency(code) {
            return Err(IntlError::UnknownCurrency("the currency code"));
        }
        let prefs = (&data.locale).into();
        match display {
            CurrencyDisplay::Symbol => CurrencyFormatter::try_new_symbol(prefs, code, Default::default()),
            CurrencyDisplay::Narrow => CurrencyFormatter::try_new_symbol_narrow(prefs, code, Default::default()),
            CurrencyDisplay::Code => CurrencyFormatter::try_new_code(prefs, code, Default::default()),
            CurrencyDisplay::Name => CurrencyFormatter::try_new_name(prefs, code),
        }
        .map_err(|_| IntlError::Data)
    })?;
    Ok(formatter.format_fixed_decimal(&amount).write_to_string().into_owned())
}

/// The cardinal plural categories `locale` uses for everyday counts, 0 to 1,000 and
/// halves (`["one", "other"]` in en, `["one", "few", "many", "other"]` in ru): the forms
/// a plural message for it needs. French `many`, which CLDR keeps for counts such as a
/// million ("1 000 000 de"), is not among them.
pub fn plural_categories(locale: &str) -> Result<Vec<&'static str>, IntlError> {
    let data = locale_data(locale, "the locale")?;
    let rules = data.plurals()?;
    let mut used: Vec<&'static str> = Vec::new();
    for n in (0..=1000u32).map(f64::from).chain([0.5, 1.5, 2.5]) {
        let mut d = Decimal::try_from_f64(n, FloatPrecision::RoundTrip).map_err(|_| IntlError::Data)?;
        apply_digits(&mut d, Digits::NUMBER);
        let c = category_name(rules.category_for(&d));
        if !used.contains(&c) {
            used.push(c);
        }
    }
    Ok(used)
}

fn category_name(c: PluralCategory) -> &'static str {
    match c {
        PluralCategory::Zero => "zero",
        PluralCategory::One => "one",
        PluralCategory::Two => "two",
        PluralCategory::Few => "few",
        PluralCategory::Many => "many",
        PluralCategory::Other => "other",
    }
}

/// The CLDR cardinal plural category of `count` as it prints with up to 3 fraction
/// digits ("one", "few", "other", …), and that printed count.
pub fn plural_category(count: &Value, locale: &str) -> Result<(&'static str, String), IntlError> {
    let data = locale_data(locale, "the locale")?;
    let mut d = to_decimal(count, "the count")?;
    apply_digits(&mut d, Digits::NUMBER);
    let category = category_name(data.plurals()?.category_for(&d));
    let printed = data.decimal()?.format(&d).write_to_string().into_owned();
    Ok((category, printed))
}

// --- dates --------------------------------------------------------------------------

const NO_TIME_OF_DAY: &str = "a YYYY-MM-DD date has no time of day to show";

/// An instant or a civil date, as found in the data.
enum When {
    Instant(jiff::Timestamp),
    Date(jiff::civil::Date),
}

fn parse_when(v: &Value) -> Result<When, IntlError> {
    let bad = IntlError::BadDate("the date");
    match v {
        Value::String(s) => {
            if let Ok(ts) = s.parse::<jiff::Timestamp>() {
                Ok(When::Instant(ts))
            } else if let Ok(date) = s.parse::<jiff::civil::Date>() {
                Ok(When::Date(date))
            } else {
                Err(bad)
            }
        }
        Value::Number(n) => {
            let ts = if let Some(s) = n.as_i64() {
                jiff::Timestamp::from_second(s)
            } else {
                let f = n.as_f64().ok_or(bad.clone())?;
                let (secs, frac) = (f.floor(), f - f.floor());
                if !(i64::MIN as f64..=i64::MAX as f64).contains(&secs) {
                    return Err(bad);
                }
                jiff::Timestamp::new(secs as i64, (frac * 1e9).round().min(999_999_999.0) as i32)
            };
            ts.map(When::Instant).map_err(|_| bad)
        }
        _ => Err(bad),
    }
}

fn time_zone(name: Option<&str>, arg: &'static str) -> Result<jiff::tz::TimeZone, IntlError> {
    match name {
        Some(z) => jiff::tz::db().get(z).map_err(|_| IntlError::UnknownTimeZone(arg)),
        None => Ok(jiff::tz::TimeZone::UTC),
    }
}

/// Formats `when` (RFC 3339 instant, `YYYY-MM-DD` date, or seconds since 1970) as a
/// local date/time in the IANA zone `time_zone` (UTC if `None`; a civil date is not
/// shifted).
pub fn format_date(
    when: &Value,
    format: &DateFormat,
    locale: &str,
    time_zone_name: Option<&str>,
) -> Result<String, IntlError> {
    format_date_in(when, format, locale, time_zone(time_zone_name, "the time zone")?)
}

fn format_date_in(
    when: &Value,
    format: &DateFormat,
    locale: &str,
    tz: jiff::tz::TimeZone,
) -> Result<String, IntlError> {
    let when = parse_when(when)?;
    // The wall-clock time in the zone: jiff applies the zone's offset at that instant,
    // so DST transitions land on the right side.
    let (date, time) = match &when {
        When::Instant(ts) => {
            let dt = ts.to_zoned_datetime(tz.clone()).datetime();
            (dt.date(), Some(dt.time()))
        }
        When::Date(d) => (*d, None),
    };
    match format {
        DateFormat::Strftime(pattern) => {
            match &when {
                When::Instant(ts) => jiff::fmt::strtime::format(pattern.as_str(), &ts.to_zoned_datetime(tz))
                    .map_err(|e| IntlError::BadPattern(e.to_string())),
                When::Date(d) => jiff::fmt::strtime::format(pattern.as_str(), *d).map_err(|e| {
                    // A pattern that works with a time of day asks for one the date lacks.
                    if jiff::fmt::strtime::format(pattern.as_str(), d.to_datetime(jiff::civil::Time::midnight()))
                        .is_ok()
                    {
                        IntlError::Unsupported(NO_TIME_OF_DAY)
                    } else {
                        IntlError::BadPattern(e.to_string())
                    }
                }),
            }
        }
        DateFormat::Style { date: date_style, time: time_style } => {
            if time_style.is_some() && time.is_none() {
                return Err(IntlError::Unsupported(NO_TIME_OF_DAY));
            }
            let data = locale_data(locale, "the locale")?;
            let formatter = cached(&data.dates, (*date_style, *time_style), || {
                let fields = date_style.map(|s| match s {
                    DateStyle::Full => DateFields::YMDE,
                    _ => DateFields::YMD,
                });
                let mut builder = FieldSetBuilder::new();
                builder.length = Some(match date_style {
                    Some(DateStyle::Short) => Length::Short,
                    Some(DateStyle::Long | DateStyle::Full) => Length::Long,
                    Some(DateStyle::Medium) | None => Length::Medium,
                });
                builder.date_fields = fields;
                builder.time_precision = time_style.map(|t| match t {
                    TimeStyle::Short => TimePrecision::Minute,
                    TimeStyle::Medium => TimePrecision::Second,
                });
                let field_set = builder
                    .build_composite_datetime()
                    .map_err(|_| IntlError::Unsupported("give a date style, a time style or both"))?;
                DateTimeFormatter::try_new((&data.locale).into(), field_set).map_err(|_| IntlError::Data)
            })?;
            let input = DateTime { date: iso_date(date)?, time: icu_time(time)? };
            Ok(plain_spaces(formatter.format(&input).write_to_string().into_owned()))
        }
        DateFormat::Pattern(pattern) => {
            let data = locale_data(locale, "the locale")?;
            let formatter = cached(&data.patterns, pattern.clone(), || {
                if pattern_fields(pattern).any(|c| matches!(c, 'z' | 'Z' | 'O' | 'v' | 'V' | 'x' | 'X')) {
                    return Err(IntlError::Unsupported(
                        "CLDR patterns cannot show the time zone (z, Z, O, v, V, x, X): use strftime's %Z or %z",
                    ));
                }
                let parsed =
                    DateTimePattern::try_from_pattern_str(pattern).map_err(|e| IntlError::BadPattern(e.to_string()))?;
                let mut names = FixedCalendarDateTimeNames::<Gregorian>::try_new((&data.locale).into())
                    .map_err(|_| IntlError::Data)?;
                names.include_for_pattern(&parsed).map_err(|e| IntlError::BadPattern(e.to_string()))?;
                Ok(PatternFormatter { pattern: parsed, names, has_time: pattern_has_time(pattern) })
            })?;
            if formatter.has_time && time.is_none() {
                return Err(IntlError::Unsupported(NO_TIME_OF_DAY));
            }
            let input = DateTime { date: iso_date(date)?.to_calendar(Gregorian), time: icu_time(time)? };
            formatter
                .names
                .with_pattern_unchecked(&formatter.pattern)
                .format(&input)
                .try_write_to_string()
                .map(|s| plain_spaces(s.into_owned()))
                .map_err(|(e, _)| IntlError::BadPattern(e.to_string()))
        }
    }
}

/// CLDR puts narrow no-break and thin spaces in dates and times ("3:00\u{202f}AM");
/// the JavaScript engines print plain spaces there for web compatibility, so do we.
fn plain_spaces(s: String) -> String {
    if s.contains(['\u{202f}', '\u{2009}']) { s.replace(['\u{202f}', '\u{2009}'], " ") } else { s }
}

fn iso_date(d: jiff::civil::Date) -> Result<Date<Iso>, IntlError> {
    Date::try_new_iso(i32::from(d.year()), d.month() as u8, d.day() as u8)
        .map_err(|_| IntlError::Unsupported("the date is out of range"))
}

fn icu_time(t: Option<jiff::civil::Time>) -> Result<Time, IntlError> {
    let Some(t) = t else { return Ok(Time::start_of_day()) };
    Time::try_new(t.hour() as u8, t.minute() as u8, t.second() as u8, t.subsec_nanosecond() as u32)
        .map_err(|_| IntlError::Unsupported("the time is out of range"))
}

/// The field letters of a CLDR pattern, outside quoted literals.
fn pattern_fields(pattern: &str) -> impl Iterator<Item = char> + '_ {
    let mut quoted = false;
    pattern.chars().filter(move |&c| {
        if c == '\'' {
            quoted = !quoted;
            return false;
        }
        !quoted && c.is_ascii_alphabetic()
    })
}

/// Whether a CLDR pattern has a time-of-day field (hour, minute, second, am/pm).
fn pattern_has_time(pattern: &str) -> bool {
    pattern_fields(pattern).any(|c| matches!(c, 'h' | 'H' | 'k' | 'K' | 'm' | 's' | 'S' | 'a' | 'b' | 'B' | 'A'))
}

// --- the helpers --------------------------------------------------------------------

/// The locale tag for a helper call: `locale="…"`, else `@root.herald.locale`, else
/// `en`; null or "" count as not given. Also what to call it in an error.
fn locale_tag<'a>(
    h: &'a Helper<'_>,
    ctx: &'a Context,
    helper: &'static str,
) -> Result<(&'a str, &'static str), RenderError> {
    if let Some(v) = hash_value(h, "locale")? {
        match v {
            Value::String(s) if !s.is_empty() => return Ok((s, "the `locale=` argument")),
            Value::String(_) | Value::Null => {}
            _ => return Err(HelperError::new(helper, IntlError::BadLocale("the `locale=` argument")).into()),
        }
    }
    match ctx.data().get("herald").and_then(|o| o.get("locale")) {
        Some(Value::String(s)) if !s.is_empty() => Ok((s, "herald.locale")),
        _ => Ok((DEFAULT_LOCALE, "the default locale")),
    }
}

/// Runs `f` with the resolved locale, naming the helper (and the locale's source) in errors.
fn with_locale<T>(
    h: &Helper<'_>,
    ctx: &Context,
    helper: &'static str,
    f: impl FnOnce(&str) -> Result<T, IntlError>,
) -> Result<T, RenderError> {
    let (tag, source) = locale_tag(h, ctx, helper)?;
    // Validate first so a bad tag is blamed on where it came from.
    locale_data(tag, source).map_err(|e| HelperError::new(helper, e))?;
    f(tag).map_err(|e| HelperError::new(helper, e).into())
}

/// A hash option that must be a string (`display="code"`); null or "" as not given.
fn hash_str<'a>(
    h: &'a Helper<'_>,
    key: &'static str,
    helper: &'static str,
    expected: &'static str,
) -> Result<Option<&'a str>, RenderError> {
    match hash_value(h, key)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(HelperError::new(helper, IntlError::BadOption { arg: hash_arg_name(key), expected }).into()),
    }
}

fn hash_arg_name(key: &'static str) -> &'static str {
    match key {
        "decimals" => "`decimals=`",
        "min_decimals" => "`min_decimals=`",
        "max_decimals" => "`max_decimals=`",
        "display" => "`display=`",
        "style" => "`style=`",
        "time" => "`time=`",
        "tz" => "`tz=`",
        _ => "an option",
    }
}

/// `decimals=`, or `min_decimals=`/`max_decimals=`, over `default`.
fn digits_option(h: &Helper<'_>, helper: &'static str, default: Digits) -> Result<Digits, RenderError> {
    const EXPECTED: &str = "a whole number from 0 to 20";
    let get = |key: &'static str| -> Result<Option<u8>, RenderError> {
        match hash_value(h, key)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => {
                v.as_f64().filter(|f| f.fract() == 0.0 && (0.0..=20.0).contains(f)).map(|f| Some(f as u8)).ok_or_else(
                    || {
                        HelperError::new(helper, IntlError::BadOption { arg: hash_arg_name(key), expected: EXPECTED })
                            .into()
                    },
                )
            }
        }
    };
    if let Some(n) = get("decimals")? {
        return Ok(Digits { min: n, max: n });
    }
    let min = get("min_decimals")?;
    let max = get("max_decimals")?;
    Ok(match (min, max) {
        (None, None) => default,
        (Some(min), None) => Digits { min, max: min.max(default.max) },
        (None, Some(max)) => Digits { min: default.min.min(max), max },
        (Some(min), Some(max)) if min <= max => Digits { min, max },
        _ => {
            return Err(HelperError::new(
                helper,
                IntlError::BadOption { arg: "`min_decimals=`", expected: "at most `max_decimals=`" },
            )
            .into());
        }
    })
}

fn string_result<'rc>(s: String) -> Result<ScopedJson<'rc>, RenderError> {
    Ok(ScopedJson::Derived(Value::String(s)))
}

/// `{{format_number value}}`, hash `decimals=`, `min_decimals=`, `max_decimals=`, `locale=`.
pub(super) struct FormatNumberHelper;

impl HelperDef for FormatNumberHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        const NAME: &str = "format_number";
        let value = value_param(h, 0, NAME)?;
        let digits = digits_option(h, NAME, Digits::NUMBER)?;
        string_result(with_locale(h, ctx, NAME, |locale| format_number(value, locale, digits))?)
    }
}

/// `{{format_percent ratio}}` (0.256 → 26%), hash as `format_number`.
pub(super) struct FormatPercentHelper;

impl HelperDef for FormatPercentHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        const NAME: &str = "format_percent";
        let value = value_param(h, 0, NAME)?;
        let digits = digits_option(h, NAME, Digits::PERCENT)?;
        string_result(with_locale(h, ctx, NAME, |locale| format_percent(value, locale, digits))?)
    }
}

/// `{{format_currency amount "EUR"}}`, hash `display=symbol|narrow|code|name`, `locale=`.
pub(super) struct FormatCurrencyHelper;

impl HelperDef for FormatCurrencyHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        const NAME: &str = "format_currency";
        const DISPLAYS: &str = "one of symbol, narrow, code, name";
        let value = value_param(h, 0, NAME)?;
        let code = match value_param(h, 1, NAME)? {
            Value::String(s) => s.as_str(),
            _ => return Err(HelperError::new(NAME, IntlError::UnknownCurrency("the currency code")).into()),
        };
        let display = match hash_str(h, "display", NAME, DISPLAYS)? {
            None | Some("symbol") => CurrencyDisplay::Symbol,
            Some("narrow") => CurrencyDisplay::Narrow,
            Some("code") => CurrencyDisplay::Code,
            Some("name") => CurrencyDisplay::Name,
            Some(_) => {
                return Err(
                    HelperError::new(NAME, IntlError::BadOption { arg: "`display=`", expected: DISPLAYS }).into()
                );
            }
        };
        string_result(with_locale(h, ctx, NAME, |locale| format_currency(value, code, locale, display))?)
    }
}

/// `{{pluralize count one="# item" other="# items"}}` (CLDR categories zero, one, two,
/// few, many, other; `#` is the formatted count) or `{{pluralize count "item" "items"}}`.
pub(super) struct PluralizeHelper;

const PLURAL_FORMS: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

impl HelperDef for PluralizeHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        const NAME: &str = "pluralize";
        let count = value_param(h, 0, NAME)?;
        let (category, printed) = with_locale(h, ctx, NAME, |locale| plural_category(count, locale))?;
        let form = |v: &Value| -> Result<String, RenderError> {
            match v {
                Value::String(s) => Ok(s.clone()),
                _ => {
                    Err(HelperError::new(NAME, IntlError::BadOption { arg: "each form", expected: "a string" }).into())
                }
            }
        };
        let chosen = if h.params().len() > 1 {
            // Short form: the singular for CLDR "one", the plural for every other category.
            if h.params().len() != 3 {
                return Err(HelperError::new(
                    NAME,
                    IntlError::Unsupported(
                        "the short form takes the singular and the plural: pluralize n \"item\" \"items\"",
                    ),
                )
                .into());
            }
            form(value_param(h, if category == "one" { 1 } else { 2 }, NAME)?)?
        } else {
            if h.hash().keys().any(|k| !PLURAL_FORMS.contains(k) && *k != "locale") {
                return Err(HelperError::new(
                    NAME,
                    IntlError::BadOption { arg: "each form", expected: "named zero, one, two, few, many or other" },
                )
                .into());
            }
            let other = hash_value(h, "other")?
                .ok_or_else(|| HelperError::new(NAME, IntlError::Unsupported("the `other=` form is required")))?;
            // An explicit zero= also serves an exact 0 where CLDR has no "zero" (as i18next does).
            let key = if category != "zero" && h.hash_get("zero").is_some() && printed_is_zero(count) {
                "zero"
            } else {
                category
            };
            match hash_value(h, key)? {
                Some(v) => form(v)?,
                None => form(other)?,
            }
        };
        string_result(chosen.replace('#', &printed))
    }
}

fn printed_is_zero(count: &Value) -> bool {
    to_decimal(count, "the count").is_ok_and(|mut d| {
        apply_digits(&mut d, Digits::NUMBER);
        d.absolute.is_zero()
    })
}

/// `{{format_date when [pattern|style] [tz]}}`, hash `style=`, `time=`, `tz=`, `locale=`.
/// A second argument with `%` is strftime; `short|medium|long|full` a localized style;
/// anything else a CLDR pattern. Without one: `style=`/`time=`, else `%Y-%m-%d`.
pub(super) struct FormatDateHelper;

impl HelperDef for FormatDateHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        const NAME: &str = "format_date";
        const STYLES: &str = "one of short, medium, long, full";
        const TIME_STYLES: &str = "short or medium";
        let fail = |e: IntlError| -> RenderError { HelperError::new(NAME, e).into() };
        let when = value_param(h, 0, NAME)?;
        let second = match h.param(1) {
            None => None,
            Some(_) => match value_param(h, 1, NAME)? {
                Value::String(s) if !s.is_empty() => Some(s.as_str()),
                Value::String(_) | Value::Null => None,
                _ => {
                    return Err(fail(IntlError::BadOption { arg: "the pattern (2nd argument)", expected: "a string" }));
                }
            },
        };
        let style = hash_str(h, "style", NAME, STYLES)?;
        let time = match hash_str(h, "time", NAME, TIME_STYLES)? {
            None => None,
            Some("short") => Some(TimeStyle::Short),
            Some("medium") => Some(TimeStyle::Medium),
            Some(_) => return Err(fail(IntlError::BadOption { arg: "`time=`", expected: TIME_STYLES })),
        };
        let format = match (second, style) {
            (Some(p), _) if p.contains('%') => DateFormat::Strftime(p.to_owned()),
            (Some(p), _) if DateStyle::parse(p).is_some() => DateFormat::Style { date: DateStyle::parse(p), time },
            (Some(p), _) => DateFormat::Pattern(p.to_owned()),
            (None, Some(s)) => match DateStyle::parse(s) {
                Some(d) => DateFormat::Style { date: Some(d), time },
                None => return Err(fail(IntlError::BadOption { arg: "`style=`", expected: STYLES })),
            },
            (None, None) if time.is_some() => DateFormat::Style { date: None, time },
            (None, None) => DateFormat::Strftime("%Y-%m-%d".to_owned()),
        };
        if time.is_some() && !matches!(format, DateFormat::Style { .. }) {
            return Err(fail(IntlError::Unsupported(
                "`time=` goes with a style (short, medium, long, full), not a pattern",
            )));
        }
        // The zone: third argument, else tz=, else herald.timezone, else UTC; null or ""
        // count as not given.
        const THIRD: &str = "the time zone (3rd argument)";
        let mut zone = match h.param(2) {
            None => None,
            Some(_) => match value_param(h, 2, NAME)? {
                Value::String(s) if !s.is_empty() => Some((s.as_str(), THIRD)),
                Value::String(_) | Value::Null => None,
                _ => return Err(fail(IntlError::UnknownTimeZone(THIRD))),
            },
        };
        if zone.is_none() {
            zone = hash_str(h, "tz", NAME, "an IANA time zone name such as `Europe/Paris`")?
                .map(|z| (z, "the `tz=` argument"));
        }
        if zone.is_none() {
            zone = match ctx.data().get("herald").and_then(|o| o.get("timezone")) {
                Some(Value::String(s)) if !s.is_empty() => Some((s.as_str(), "herald.timezone")),
                _ => None,
            };
        }
        let tz = time_zone(zone.map(|(z, _)| z), zone.map_or("the time zone", |(_, source)| source)).map_err(fail)?;
        string_result(with_locale(h, ctx, NAME, |locale| format_date_in(when, &format, locale, tz))?)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{CurrencyDisplay, DateFormat, DateStyle, Digits, IntlError, TimeStyle, format_currency, format_date};
    use crate::render::engine::{Escape, registry};

    use crate::render::engine::test_support::{ok, render};

    fn err(template: &str, data: Value) -> String {
        match render(template, &data) {
            Ok(out) => panic!("{template:?} with {data} rendered {out:?}, expected an error"),
            Err(e) => e,
        }
    }

    fn currency(amount: Value, code: &str, locale: &str) -> String {
        format_currency(&amount, code, locale, CurrencyDisplay::Symbol)
            .unwrap_or_else(|e| panic!("{amount} {code} in {locale}: {e}"))
    }

    // The expected strings below are what `Intl.NumberFormat` / `Intl.DateTimeFormat`
    // print in Node 20 (ICU 78, CLDR 48), e.g.
    // `new Intl.NumberFormat("fr-FR", {style: "currency", currency: "EUR"}).format(1234.5)`,
    // unless a comment says where ICU4X 2.4 (CLDR 49) differs and why.

    // --- format_currency ------------------------------------------------------------

    #[test]
    fn currency_eur_across_locales_matches_intl() {
        assert_eq!(currency(json!(1234.5), "EUR", "en-US"), "€1,234.50");
        // CLDR: narrow no-break space to group, no-break space before the symbol.
        assert_eq!(currency(json!(1234.5), "EUR", "fr-FR"), "1\u{202f}234,50\u{a0}€");
        assert_eq!(currency(json!(1234.5), "EUR", "de-DE"), "1.234,50\u{a0}€");
        assert_eq!(currency(json!(1234.5), "EUR", "ja-JP"), "€1,234.50");
        assert_eq!(currency(json!(1234.5), "EUR", "nl-NL"), "€\u{a0}1.234,50");
        assert_eq!(currency(json!(1234.5), "EUR", "es-ES"), "1234,50\u{a0}€"); // minimum grouping digits 2
        assert_eq!(currency(json!(1234.5), "USD", "fr-FR"), "1\u{202f}234,50\u{a0}$US");
        assert_eq!(currency(json!(1234.5), "CAD", "en-US"), "CA$1,234.50");
    }

    #[test]
    fn currency_uses_the_currencys_own_digits() {
        assert_eq!(currency(json!(1234.5), "JPY", "ja-JP"), "￥1,235"); // fullwidth yen in ja
        assert_eq!(currency(json!(1234.5), "JPY", "en-US"), "¥1,235");
        assert_eq!(currency(json!(1234.5), "BHD", "en-US"), "BHD\u{a0}1,234.500");
        assert_eq!(currency(json!(1234), "EUR", "en-US"), "€1,234.00");
        // Half away from zero, on the exact decimal of a string amount.
        assert_eq!(currency(json!("1234.565"), "USD", "en-US"), "$1,234.57");
        assert_eq!(currency(json!(0.005), "USD", "de-DE"), "0,01\u{a0}$");
        // ICU4X 2.4 (CLDR 49) where Intl (CLDR 48) prints "1 235 JPY": the French data's
        // symbol for JPY is the code itself, which ICU4X's compiled data leaves out, so
        // the root symbol "JP¥" shows through.
        assert_eq!(currency(json!(1234.5), "JPY", "fr-FR"), "1\u{202f}235\u{a0}JP¥");
    }

    #[test]
    fn currency_negative_amounts() {
        assert_eq!(currency(json!(-1234.5), "EUR", "en-US"), "-€1,234.50");
        assert_eq!(currency(json!(-1234.5), "EUR", "fr-FR"), "-1\u{202f}234,50\u{a0}€");
        assert_eq!(currency(json!(-1234.5), "EUR", "nl-NL"), "€\u{a0}-1.234,50");
        assert_eq!(currency(json!(-1234.5), "EUR", "sv-SE"), "−1\u{a0}234,50\u{a0}€"); // U+2212 minus
        assert_eq!(currency(json!("-0.0005"), "BHD", "en-US"), "-BHD\u{a0}0.001");
        assert_eq!(currency(json!(-0.4), "JPY", "en-US"), "-¥0");
    }

    #[test]
    fn currency_display_options() {
        let show = |d: CurrencyDisplay, amount: Value, code: &str, locale: &str| {
            format_currency(&amount, code, locale, d).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(show(CurrencyDisplay::Code, json!(1234.5), "EUR", "en-US"), "EUR\u{a0}1,234.50");
        assert_eq!(show(CurrencyDisplay::Narrow, json!(5), "CAD", "en-US"), "$5.00");
        assert_eq!(show(CurrencyDisplay::Name, json!(1234.5), "EUR", "en-US"), "1,234.50 euros");
        // "1.00" is plural "other" in English (visible fraction digits).
        assert_eq!(show(CurrencyDisplay::Name, json!(1), "EUR", "en-US"), "1.00 euros");
        assert_eq!(show(CurrencyDisplay::Name, json!(1234.5), "EUR", "fr-FR"), "1\u{202f}234,50 euros");
        let t = r#"{{format_currency a "EUR" display="code"}}|{{format_currency a "eur" display="name" locale="de"}}"#;
        assert_eq!(ok(t, json!({ "a": 2 })), "EUR\u{a0}2.00|2,00 Euro");
    }

    #[test]
    fn currency_code_is_checked() {
        for code in ["ZZZ", "EU", "EURO", "€", "", "12A"] {
            assert_eq!(
                format_currency(&json!(1), code, "en", CurrencyDisplay::Symbol),
                Err(IntlError::UnknownCurrency("the currency code")),
                "{code:?}"
            );
        }
        let e = err(r#"{{format_currency 5 code}}"#, json!({ "code": "QQX" }));
        assert!(e.contains("format_currency: the currency code is not an ISO 4217 currency code"), "{e}");
        assert!(!e.contains("QQX"), "the value must not be echoed: {e}");
        assert!(err(r#"{{format_currency 5 12}}"#, json!({})).contains("currency code"));
    }

    // --- format_number, format_percent ---------------------------------------------------

    #[test]
    fn numbers_across_locales_match_intl() {
        let t = "{{format_number n}}";
        let n = json!(1234567.891234);
        let with = |locale: &str| json!({ "n": n, "herald": { "locale": locale } });
        assert_eq!(ok(t, with("en-US")), "1,234,567.891");
        assert_eq!(ok(t, with("fr-FR")), "1\u{202f}234\u{202f}567,891");
        assert_eq!(ok(t, with("de-DE")), "1.234.567,891");
        assert_eq!(ok(t, with("ja-JP")), "1,234,567.891");
        assert_eq!(ok(t, with("en-IN")), "12,34,567.891");
        assert_eq!(ok(t, with("ar-EG")), "١٬٢٣٤٬٥٦٧٫٨٩١");
        assert_eq!(ok("{{format_number 1234 locale=\"es-ES\"}}", json!({})), "1234");
        assert_eq!(ok("{{format_number -1234.5 locale=\"fr\"}}", json!({})), "-1\u{202f}234,5");
        assert_eq!(ok("{{format_number 0}} {{format_number n}}", json!({ "n": -0.0001 })), "0 -0");
        assert_eq!(ok("{{format_number n}}", json!({ "n": 1e21 })), "1,000,000,000,000,000,000,000");
    }

    #[test]
    fn number_fraction_digits() {
        let data = json!({});
        assert_eq!(ok("{{format_number 2.5 decimals=0}}", data.clone()), "3"); // half away from zero
        assert_eq!(ok("{{format_number 1.005 decimals=2}}", data.clone()), "1.01");
        assert_eq!(ok("{{format_number 1.5 min_decimals=2}}", data.clone()), "1.50");
        assert_eq!(ok("{{format_number 1.23456 max_decimals=1}}", data.clone()), "1.2");
        assert_eq!(ok("{{format_number 1.0005}}", data.clone()), "1.001"); // 3 by default
        assert_eq!(ok("{{format_number \"1234.50\"}}", data.clone()), "1,234.5");
        // Strings as JavaScript's Number() reads them (the common decimal forms).
        assert_eq!(
            ok(
                r#"{{format_number " 7 "}} {{format_number "+5."}} {{format_number ".5"}} {{format_number "1e3"}}"#,
                data.clone()
            ),
            "7 5 0.5 1,000"
        );
        assert!(err("{{format_number 1 decimals=-1}}", data.clone()).contains("`decimals=` must be a whole number"));
        assert!(err("{{format_number 1 min_decimals=3 max_decimals=1}}", data).contains("min_decimals"));
    }

    #[test]
    fn percent_across_locales_matches_intl() {
        let t = "{{format_percent r}}|{{format_percent r decimals=1}}";
        let with = |locale: &str| json!({ "r": 0.2567, "herald": { "locale": locale } });
        assert_eq!(ok(t, with("en-US")), "26%|25.7%");
        assert_eq!(ok(t, with("fr-FR")), "26\u{a0}%|25,7\u{a0}%");
        assert_eq!(ok(t, with("de-DE")), "26\u{a0}%|25,7\u{a0}%");
        assert_eq!(ok(t, with("tr-TR")), "%26|%25,7");
        assert_eq!(ok(t, with("ja-JP")), "26%|25.7%");
        assert_eq!(
            ok("{{format_percent -0.05}} {{format_percent 1.5}} {{format_percent 0}}", json!({})),
            "-5% 150% 0%"
        );
    }

    #[test]
    fn non_numbers_are_errors_that_name_helper_and_argument() {
        for v in [json!("12 apples"), json!(true), json!({ "a": 1 }), json!([1]), json!(null), json!("")] {
            let data = json!({ "v": v });
            let e = err("{{format_number v}}", data.clone());
            assert!(e.contains("format_number: the value is not a number"), "{v}: {e}");
            let e = err("{{format_currency v \"EUR\"}}", data.clone());
            assert!(e.contains("format_currency: the amount is not a number"), "{v}: {e}");
            assert!(err("{{format_percent v}}", data.clone()).contains("format_percent: the value is not a number"));
            assert!(
                err("{{pluralize v one=\"a\" other=\"b\"}}", data).contains("pluralize: the count is not a number")
            );
        }
        let e = err("{{format_number v}}", json!({ "v": "secret 4242" }));
        assert!(!e.contains("4242"), "the value must not be echoed: {e}");
        // A missing variable is the strict-mode error, as for `{{v}}`.
        for t in ["{{format_number v}}", "{{format_currency v \"EUR\"}}", "{{format_percent v}}", "{{format_date v}}"] {
            let e = err(t, json!({}));
            assert!(e.contains("strict mode") && e.contains("\"v\""), "{t}: {e}");
        }
    }

    // --- locale resolution ----------------------------------------------------------------

    #[test]
    fn locale_comes_from_hash_then_herald_then_en() {
        let t = "{{format_number 1234.5}}";
        assert_eq!(ok(t, json!({})), "1,234.5");
        assert_eq!(ok(t, json!({ "herald": {} })), "1,234.5");
        assert_eq!(ok(t, json!({ "herald": { "locale": null } })), "1,234.5");
        assert_eq!(ok(t, json!({ "herald": { "locale": "de-DE" } })), "1.234,5");
        let t = "{{format_number 1234.5 locale=\"fr\"}}";
        assert_eq!(ok(t, json!({ "herald": { "locale": "de-DE" } })), "1\u{202f}234,5");
        // Inside a block, the root's herald object still decides.
        let t = "{{#each xs}}{{format_number this}} {{/each}}";
        assert_eq!(ok(t, json!({ "xs": [1000, 2000.5], "herald": { "locale": "de" } })), "1.000 2.000,5 ");
        // An unknown language falls back to CLDR's root data, as Intl falls back.
        assert_eq!(ok("{{format_number 1234.5 locale=\"xx\"}}", json!({})), "1,234.5");
    }

    #[test]
    fn bad_locale_is_an_error_naming_its_source() {
        let e = err("{{format_number 1 locale=\"not a locale!\"}}", json!({}));
        assert!(e.contains("format_number: the `locale=` argument is not a BCP 47 locale tag"), "{e}");
        let e = err("{{format_currency 1 \"EUR\"}}", json!({ "herald": { "locale": "en_US@x!" } }));
        assert!(e.contains("format_currency: herald.locale is not a BCP 47 locale tag"), "{e}");
        assert!(!e.contains("en_US@x!"), "{e}");
        assert!(err("{{format_number 1 locale=5}}", json!({})).contains("not a BCP 47 locale tag"));
    }

    #[test]
    fn many_locales_keep_working_past_the_cache_bound() {
        let tags: Vec<String> = (0..150).map(|i| format!("en-x-t{i}")).collect();
        for tag in tags.iter().chain(tags.iter()) {
            assert_eq!(super::format_number(&json!(1234.5), tag, Digits::NUMBER), Ok("1,234.5".to_owned()), "{tag}");
        }
    }

    // --- pluralize ------------------------------------------------------------------------

    fn plurals(locale: &str, forms: &str) -> String {
        let counts = json!([0, 1, 2, 3, 5, 11, 21, 22, 25, 101, 1.5]);
        let t = format!("{{{{#each n}}}}{{{{pluralize this {forms} locale=\"{locale}\"}}}}|{{{{/each}}}}");
        ok(&t, json!({ "n": counts }))
    }

    #[test]
    fn pluralize_follows_cldr_rules() {
        // Counts 0 1 2 3 5 11 21 22 25 101 1.5; categories as Intl.PluralRules gives them.
        assert_eq!(
            plurals("en", r##"one="# item" other="# items""##),
            "0 items|1 item|2 items|3 items|5 items|11 items|21 items|22 items|25 items|101 items|1.5 items|"
        );
        // French: 0 and 1.5 are "one".
        assert_eq!(
            plurals("fr", r##"one="# article" other="# articles""##),
            "0 article|1 article|2 articles|3 articles|5 articles|11 articles|21 articles|22 articles|25 articles|101 articles|1,5 article|"
        );
        assert_eq!(
            plurals("ru", r##"one="# файл" few="# файла" many="# файлов" other="# файла""##),
            "0 файлов|1 файл|2 файла|3 файла|5 файлов|11 файлов|21 файл|22 файла|25 файлов|101 файл|1,5 файла|"
        );
        assert_eq!(
            plurals("ar", r##"zero="z" one="o" two="t" few="f#" many="m#" other="x#""##),
            "z|o|t|f3|f5|m11|m21|m22|m25|x101|x1.5|"
        );
        assert_eq!(plurals("ja", r##"other="#個""##), "0個|1個|2個|3個|5個|11個|21個|22個|25個|101個|1.5個|");
        assert_eq!(plurals("pl", r##"one="o" few="f" many="m" other="x""##), "m|o|f|f|m|m|m|f|m|m|x|");
    }

    #[test]
    fn pluralize_forms() {
        let data = json!({ "n": 1234, "herald": { "locale": "de" } });
        assert_eq!(ok(r##"{{pluralize n one="# Artikel" other="# Artikel"}}"##, data.clone()), "1.234 Artikel");
        // A missing category falls back to other=.
        assert_eq!(ok(r##"{{pluralize 3 one="# file" other="# files" locale="ru"}}"##, json!({})), "3 files");
        // zero= also serves an exact 0 where the language has no "zero" category.
        assert_eq!(ok(r##"{{pluralize 0 zero="no items" one="# item" other="# items"}}"##, json!({})), "no items");
        assert_eq!(ok(r##"{{pluralize 0 one="# item" other="# items"}}"##, json!({})), "0 items");
        // Short form: singular for "one", plural otherwise; no count unless `#` is written.
        let t = r#"{{pluralize 1 "item" "items"}} {{pluralize 2 "item" "items"}} {{pluralize 0 "item" "items" locale="fr"}}"#;
        assert_eq!(ok(t, json!({})), "item items item");
        assert!(err(r#"{{pluralize 1 one="x"}}"#, json!({})).contains("pluralize: the `other=` form is required"));
        assert!(err(r#"{{pluralize 1 one="x" several="y" other="z"}}"#, json!({})).contains("named zero, one"));
        assert!(err(r#"{{pluralize 1 "item"}}"#, json!({})).contains("singular and the plural"));
        assert!(err(r#"{{pluralize 1 one=5 other="z"}}"#, json!({})).contains("must be a string"));
    }

    // --- format_date ----------------------------------------------------------------------

    fn style(date: Option<DateStyle>, time: Option<TimeStyle>) -> DateFormat {
        DateFormat::Style { date, time }
    }

    fn date(when: &str, format: &DateFormat, locale: &str, tz: &str) -> String {
        format_date(&json!(when), format, locale, Some(tz)).unwrap_or_else(|e| panic!("{when} {format:?}: {e}"))
    }

    #[test]
    fn date_styles_across_locales_match_intl() {
        let when = "2026-03-29T01:00:00Z"; // 03:00 in Paris, just after the switch to summer time
        let cases = [
            ("en-US", ["3/29/26", "Mar 29, 2026", "March 29, 2026", "Sunday, March 29, 2026"]),
            ("fr-FR", ["29/03/2026", "29 mars 2026", "29 mars 2026", "dimanche 29 mars 2026"]),
            ("de-DE", ["29.03.26", "29.03.2026", "29. März 2026", "Sonntag, 29. März 2026"]),
            ("ja-JP", ["2026/03/29", "2026/03/29", "2026年3月29日", "2026年3月29日日曜日"]),
        ];
        for (locale, expected) in cases {
            for (s, want) in
                [DateStyle::Short, DateStyle::Medium, DateStyle::Long, DateStyle::Full].into_iter().zip(expected)
            {
                assert_eq!(date(when, &style(Some(s), None), locale, "Europe/Paris"), want, "{locale} {s:?}");
            }
        }
        // With a time; JS engines print a plain space before AM/PM, and so do we.
        let long_short = style(Some(DateStyle::Long), Some(TimeStyle::Short));
        assert_eq!(date(when, &long_short, "en-US", "Europe/Paris"), "March 29, 2026 at 3:00 AM");
        assert_eq!(date(when, &long_short, "fr-FR", "Europe/Paris"), "29 mars 2026 à 03:00");
        assert_eq!(date(when, &long_short, "de-DE", "Europe/Paris"), "29. März 2026 um 03:00");
        assert_eq!(date(when, &long_short, "ja-JP", "Europe/Paris"), "2026年3月29日 3:00");
        let full_medium = style(Some(DateStyle::Full), Some(TimeStyle::Medium));
        assert_eq!(date(when, &full_medium, "en-US", "Europe/Paris"), "Sunday, March 29, 2026 at 3:00:00 AM");
        assert_eq!(date(when, &full_medium, "fr-CA", "Europe/Paris"), "dimanche 29 mars 2026 à 03 h 00 min 00 s");
        let short_short = style(Some(DateStyle::Short), Some(TimeStyle::Short));
        assert_eq!(date(when, &short_short, "en-GB", "Europe/Paris"), "29/03/2026, 03:00");
        assert_eq!(date(when, &style(None, Some(TimeStyle::Short)), "en-US", "Europe/Paris"), "3:00 AM");
    }

    #[test]
    fn dates_are_local_to_the_time_zone_across_dst() {
        let hm = DateFormat::Pattern("y-MM-dd HH:mm:ss".into());
        // Paris springs forward at 01:00 UTC on 2026-03-29: 01:59:59 CET, then 03:00:00 CEST.
        assert_eq!(date("2026-03-29T00:59:59Z", &hm, "en", "Europe/Paris"), "2026-03-29 01:59:59");
        assert_eq!(date("2026-03-29T01:00:00Z", &hm, "en", "Europe/Paris"), "2026-03-29 03:00:00");
        // New York falls back on 2026-11-01: 01:30 happens twice, EDT then EST.
        let with_zone = DateFormat::Strftime("%H:%M %Z".into());
        assert_eq!(date("2026-11-01T05:30:00Z", &with_zone, "en", "America/New_York"), "01:30 EDT");
        assert_eq!(date("2026-11-01T06:30:00Z", &with_zone, "en", "America/New_York"), "01:30 EST");
        let short = style(None, Some(TimeStyle::Short));
        assert_eq!(date("2026-11-01T05:30:00Z", &short, "en-US", "America/New_York"), "1:30 AM");
        assert_eq!(date("2026-11-01T06:30:00Z", &short, "en-US", "America/New_York"), "1:30 AM");
        assert_eq!(date("2026-11-01T07:30:00Z", &short, "en-US", "America/New_York"), "2:30 AM");
        // The same instant is a different day in Tokyo and Los Angeles.
        let day = style(Some(DateStyle::Long), None);
        assert_eq!(date("2026-12-31T20:00:00Z", &day, "en-US", "Asia/Tokyo"), "January 1, 2027");
        assert_eq!(date("2026-12-31T20:00:00Z", &day, "en-US", "America/Los_Angeles"), "December 31, 2026");
        // An instant with an offset is the same instant.
        assert_eq!(date("2026-03-29T03:00:00+02:00", &hm, "en", "UTC"), "2026-03-29 01:00:00");
    }

    #[test]
    fn date_patterns_use_localized_names() {
        let fr = json!({ "when": "2026-03-29T10:15:00Z", "herald": { "locale": "fr-FR", "timezone": "Europe/Paris" } });
        assert_eq!(ok(r#"{{format_date when "EEEE d MMMM y"}}"#, fr.clone()), "dimanche 29 mars 2026");
        assert_eq!(ok(r#"{{format_date when "d MMM y 'à' HH'h'mm"}}"#, fr.clone()), "29 mars 2026 à 12h15");
        assert_eq!(ok(r#"{{format_date when "EEE d. MMM" locale="de"}}"#, fr.clone()), "So. 29. März");
        assert_eq!(ok(r#"{{format_date when "h:mm a" locale="en"}}"#, fr.clone()), "12:15 PM");
        assert_eq!(
            ok(r#"{{format_date day "EEEE d MMMM"}}"#, json!({ "day": "2026-07-14", "herald": { "locale": "fr" } })),
            "mardi 14 juillet"
        );
        let e = err(r#"{{format_date when "HH:mm zzzz"}}"#, fr);
        assert!(e.contains("format_date: CLDR patterns cannot show the time zone"), "{e}");
    }

    #[test]
    fn format_date_arguments() {
        let data = json!({ "when": "2026-03-29T01:00:00Z", "day": "2026-12-24", "epoch": 1774746000 });
        // Unchanged: strftime patterns, the zone as third argument, YYYY-MM-DD by default.
        assert_eq!(
            ok(r#"{{format_date when "%B %-d, %Y %H:%M" "Europe/Paris"}}"#, data.clone()),
            "March 29, 2026 03:00"
        );
        assert_eq!(ok("{{format_date when}} {{format_date day}}", data.clone()), "2026-03-29 2026-12-24");
        assert_eq!(ok(r#"{{format_date day "%A"}}"#, data.clone()), "Thursday");
        // Styles by name, as second argument or style=, time= adds the time.
        assert_eq!(ok(r#"{{format_date when "long" locale="de"}}"#, data.clone()), "29. März 2026");
        assert_eq!(ok(r#"{{format_date when style="medium" time="short"}}"#, data.clone()), "Mar 29, 2026, 1:00 AM");
        assert_eq!(ok(r#"{{format_date when time="medium" tz="Asia/Tokyo"}}"#, data.clone()), "10:00:00 AM");
        assert_eq!(ok(r#"{{format_date day "full"}}"#, data.clone()), "Thursday, December 24, 2026");
        // Epoch seconds.
        assert_eq!(ok(r#"{{format_date epoch "%Y-%m-%dT%H:%M:%S%:z"}}"#, data.clone()), "2026-03-29T01:00:00+00:00");
        // The zone: third argument, else tz=, else herald.timezone, else UTC.
        let t = r#"{{format_date when "HH:mm"}}|{{format_date when "HH:mm" tz="Asia/Tokyo"}}|{{format_date when "HH:mm" "America/New_York" tz="Asia/Tokyo"}}"#;
        assert_eq!(ok(t, data.clone()), "01:00|10:00|21:00");
        let mut herald = data.clone();
        herald["herald"] = json!({ "timezone": "Europe/Paris", "locale": "fr" });
        assert_eq!(ok(t, herald), "03:00|10:00|21:00");
        // A date has no time of day.
        assert!(err(r#"{{format_date day "long" time="short"}}"#, data.clone()).contains("has no time of day"));
        assert!(err(r#"{{format_date day "HH:mm"}}"#, data.clone()).contains("has no time of day"));
        assert!(
            err(r#"{{format_date day "%d %H:%M"}}"#, data.clone())
                .contains("format_date: a YYYY-MM-DD date has no time of day")
        );
        assert!(
            err(r#"{{format_date day "%Q"}}"#, data.clone()).contains("format_date: the date pattern cannot be used")
        );
        assert!(err(r#"{{format_date when "%H" time="short"}}"#, data.clone()).contains("`time=` goes with a style"));
        assert!(
            err(r#"{{format_date when style="huge"}}"#, data)
                .contains("`style=` must be one of short, medium, long, full")
        );
    }

    #[test]
    fn date_errors_name_the_argument_not_the_value() {
        let data = json!({ "when": "2026-03-29T01:00:00Z", "bad": "sometime next week", "zone": "Mars/Olympus_Mons" });
        let e = err("{{format_date bad \"long\"}}", data.clone());
        assert!(e.contains("format_date: the date is not an RFC 3339 instant"), "{e}");
        assert!(!e.contains("next week"), "{e}");
        let e = err("{{format_date when \"long\" zone}}", data.clone());
        assert!(e.contains("format_date: the time zone (3rd argument) is not an IANA time zone"), "{e}");
        assert!(!e.contains("Olympus"), "{e}");
        let e = err("{{format_date when \"long\" tz=zone}}", data.clone());
        assert!(e.contains("the `tz=` argument is not an IANA time zone"), "{e}");
        let mut herald = data.clone();
        herald["herald"] = json!({ "timezone": "Nowhere/Land" });
        assert!(err("{{format_date when \"long\"}}", herald).contains("herald.timezone is not an IANA time zone"));
        let e = err("{{format_date when \"long\" locale=\"-bad-\"}}", data.clone());
        assert!(e.contains("format_date: the `locale=` argument is not a BCP 47 locale tag"), "{e}");
        assert!(err("{{format_date when 5}}", data.clone()).contains("the pattern (2nd argument) must be a string"));
        assert!(err("{{format_date true}}", data).contains("the date is not an RFC 3339 instant"));
    }

    // --- output in templates ----------------------------------------------------------------

    #[test]
    fn helper_output_is_escaped_in_html_like_any_value() {
        let html = registry(Escape::Html);
        let data = json!({ "a": 5, "herald": { "locale": "en" } });
        let out = html.render_template(r#"{{pluralize a other="<b>#</b> & more"}}"#, &data).map_err(|e| e.to_string());
        assert_eq!(out, Ok("&lt;b&gt;5&lt;/b&gt; &amp; more".to_owned()));
        let out = html.render_template(r#"{{{pluralize a other="<b>#</b>"}}}"#, &data).map_err(|e| e.to_string());
        assert_eq!(out, Ok("<b>5</b>".to_owned()));
    }

    #[test]
    fn plural_categories_are_those_everyday_counts_use() {
        let cats = |l: &str| {
            let mut c = super::plural_categories(l).expect("locale data");
            c.sort_by_key(|c| crate::render::i18n::PLURAL_CATEGORIES.iter().position(|p| p == c));
            c
        };
        assert_eq!(cats("en"), ["one", "other"]);
        assert_eq!(cats("fr"), ["one", "other"], "French `many` is for millions");
        assert_eq!(cats("ru"), ["one", "few", "many", "other"]);
        assert_eq!(cats("ar"), ["zero", "one", "two", "few", "many", "other"]);
        assert_eq!(cats("ja"), ["other"]);
    }
}
