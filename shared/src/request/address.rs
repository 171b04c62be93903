//! Channel addresses, parsed once at the edge (parse, don't validate).
//!
//! [`EmailAddress`] and [`PhoneNumber`] can only be built through `parse`, so any
//! value of these types is known to be deliverable as far as syntax goes.
//!
//! Error messages explain what is wrong but never echo the address: addresses are
//! PII and these messages end up in logs and receipts.
//!
//! # Email policy (strict RFC 5321 `Mailbox`, for *sending*)
//! - Only surrounding spaces and tabs are trimmed. CR, LF and every other control
//!   character are rejected wherever they are, never cleaned up: a line break in an
//!   address is a header-injection attempt or corrupt input, not formatting.
//! - Local part: RFC 5321 `Dot-string` only (atext atoms joined by single dots).
//!   RFC 5321 `Quoted-string` local parts (`"john doe"@example.com`) are rejected:
//!   many ESPs refuse them, downstream systems (suppression lists, CRMs,
//!   unsubscribe links) mishandle them, and real mailboxes essentially never need
//!   them. Allowing them later is a one-branch change; taking them back is not.
//! - Domain: hostname of LDH labels (1-63 octets, no leading or trailing hyphen),
//!   at most 253 octets, no trailing root dot. Single-label domains (`test@io`) are
//!   accepted: syntactically valid, and deliverability is the MTA's business.
//!   An all-digit last label (`a@192.0.2.1`, `a@example.123`) is rejected: no TLD
//!   is numeric, so it is an unbracketed IP address or a typo.
//! - Address literals (`a@[192.0.2.1]`, `a@[IPv6:...]`) are rejected: ESPs do not
//!   deliver to them and they bypass DNS-based sender reputation.
//! - ASCII only. Internationalized mailboxes (SMTPUTF8) are rejected, and so are
//!   Unicode domains: SES does not support SMTPUTF8 and wants 7-bit addresses with
//!   IDNs in punycode, so an IDN must be given in its `xn--` form (accepted as is).
//!   We do not convert to punycode silently.
//! - No comments, folding white space or obsolete RFC 822 forms.
//! - Lengths: local part <= 64 octets, whole address <= 254 octets (the 256-octet
//!   RFC 5321 path minus the angle brackets).
//! - The address is kept as written (case included); compare mailboxes with
//!   [`EmailAddress::suppression_key`].
//!
//! # Phone policy (E.164)
//! - Must start with `+` and the country calling code; without it the country is
//!   unknown. Spaces, `-`, `.`, `(` and `)` after the `+` are tolerated and removed.
//!   A `(0)` trunk prefix is rejected rather than dropped, because removing it
//!   silently would be guessing.
//! - Letters, extensions and anything else are rejected, as is more than 15 digits.
//! - The country calling code must be assigned and the national number must have a
//!   *possible* length for it (libphonenumber metadata, union over the regions that
//!   share the code, without local-only lengths). Number-range validity is
//!   deliberately not checked: ranges change and a stale table would reject real
//!   numbers.
//! - The `phonenumber` crate holds the same metadata but takes 150-400 ms to load
//!   its database on first use (it parses every regex), which would land on a
//!   Lambda cold start, so the lengths live in `COUNTRY_LENGTHS` below. A unit
//!   test checks the table against the crate's database so the two cannot drift.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

const EMAIL_EXPECTED: &str = "expected an email address like name@example.com";
const PHONE_EXPECTED: &str = "expected an E.164 phone number like +14155550123";

const MAX_LOCAL_PART: usize = 64;
const MAX_DOMAIN: usize = 253;
const MAX_LABEL: usize = 63;
const MAX_EMAIL: usize = 254;
const MAX_E164_DIGITS: usize = 15;

/// Why an address was rejected. The message is written for a human and never
/// contains the address itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AddressError {
    message: String,
}

impl AddressError {
    fn email(reason: impl fmt::Display) -> Self {
        Self { message: format!("{EMAIL_EXPECTED}: {reason}") }
    }

    fn phone(reason: impl fmt::Display) -> Self {
        Self { message: format!("{PHONE_EXPECTED}: {reason}") }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A valid RFC 5321 mailbox (`local-part@domain`), as sent to an MTA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let address = trim_blanks(input);
        if address.is_empty() {
            return Err(AddressError::email("the address is empty"));
        }
        if address.bytes().any(|b| b.is_ascii_control()) {
            return Err(AddressError::email("it contains a line break or another control character"));
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return Err(AddressError::email("the domain is missing (there is no '@')"));
        };
        if local.is_empty() {
            return Err(AddressError::email("the local part before '@' is missing"));
        }
        if domain.is_empty() {
            return Err(AddressError::email("the domain after '@' is missing"));
        }
        // Checked before the '@' count: a quoted local part may contain '@'.
        if local.contains('"') {
            return Err(AddressError::email("quoted local parts (\"...\") are not supported"));
        }
        if local.contains('@') {
            return Err(AddressError::email("it contains more than one '@'"));
        }
        if address.contains(['(', ')']) {
            return Err(AddressError::email("comments in parentheses are not supported"));
        }
        if domain.starts_with('[') || domain.ends_with(']') {
            return Err(AddressError::email("address literals like [192.0.2.1] are not supported: use a domain name"));
        }
        if !local.is_ascii() {
            return Err(AddressError::email(
                "the local part contains non-ASCII characters \
                 (internationalized mailboxes are not supported)",
            ));
        }
        if !domain.is_ascii() {
            return Err(AddressError::email(
                "the domain contains non-ASCII characters: \
                 write an internationalized domain in its ASCII form (xn--...)",
            ));
        }
        check_local_part(local)?;
        check_domain(domain)?;
        if address.len() > MAX_EMAIL {
            return Err(AddressError::email(format_args!("the address is longer than {MAX_EMAIL} octets")));
        }
        Ok(Self(address.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.split().0
    }

    pub fn domain(&self) -> &str {
        self.split().1
    }

    /// Key for suppression lists: domain lower-cased, local part lower-cased too
    /// (providers treat mailboxes case-insensitively in practice).
    pub fn suppression_key(&self) -> String {
        // parse() guarantees ASCII, so this lower-cases both parts completely.
        self.0.to_ascii_lowercase()
    }

    fn split(&self) -> (&str, &str) {
        // parse() guarantees exactly one '@'; the fallback is unreachable.
        self.0.split_once('@').unwrap_or((self.0.as_str(), ""))
    }
}

fn trim_blanks(input: &str) -> &str {
    input.trim_matches([' ', '\t'])
}

/// RFC 5321 `atext`, the characters of a Dot-string atom.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
}

fn describe_char(c: char) -> Cow<'static, str> {
    match c {
        ' ' => "a space".into(),
        _ => format!("'{c}'").into(),
    }
}

fn check_local_part(local: &str) -> Result<(), AddressError> {
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::email(format_args!("the local part is longer than {MAX_LOCAL_PART} octets")));
    }
    if local.starts_with('.') {
        return Err(AddressError::email("the local part starts with a dot"));
    }
    if local.ends_with('.') {
        return Err(AddressError::email("the local part ends with a dot"));
    }
    if local.contains("..") {
        return Err(AddressError::email("the local part has two dots in a row"));
    }
    if let Some(c) = local.chars().find(|&c| c != '.' && !is_atext(c)) {
        return Err(AddressError::email(format_args!(
            "the local part contains {}, which is not allowed \
             (use letters, digits, dots and !#$%&'*+-/=?^_`{{|}}~)",
            describe_char(c)
        )));
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AddressError> {
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::email(format_args!("the domain is longer than {MAX_DOMAIN} octets")));
    }
    if domain.starts_with('.') {
        return Err(AddressError::email("the domain starts with a dot"));
    }
    if domain.ends_with('.') {
        return Err(AddressError::email("the domain ends with a dot"));
    }
    if domain.contains("..") {
        return Err(AddressError::email("the domain has two dots in a row"));
    }
    for label in domain.split('.') {
        if label.len() > MAX_LABEL {
            return Err(AddressError::email(format_args!(
                "a domain label (the text between dots) is longer than {MAX_LABEL} octets"
            )));
        }
        if let Some(c) = label.chars().find(|&c| !c.is_ascii_alphanumeric() && c != '-') {
            return Err(AddressError::email(format_args!(
                "the domain contains {}, which is not allowed \
                 (use letters, digits, hyphens and dots)",
                describe_char(c)
            )));
        }
        if label.starts_with('-') {
            return Err(AddressError::email("a domain label starts with a hyphen"));
        }
        if label.ends_with('-') {
            return Err(AddressError::email("a domain label ends with a hyphen"));
        }
    }
    let tld = domain.rsplit('.').next().unwrap_or(domain);
    if tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddressError::email("the top-level domain is all digits (an IP address is not a mail domain)"));
    }
    Ok(())
}

/// A phone number in canonical E.164 form: `+` then digits, e.g. `+14155550123`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, AddressError> {
        let number = trim_blanks(input);
        if number.is_empty() {
            return Err(AddressError::phone("the number is empty"));
        }
        let Some(rest) = number.strip_prefix('+') else {
            let hint =
                if number.starts_with("00") { " (write '+' instead of the international prefix 00)" } else { "" };
            return Err(AddressError::phone(format_args!("it must start with '+' and the country code{hint}")));
        };
        if rest.contains("(0)") {
            return Err(AddressError::phone("remove the trunk prefix '(0)': it is not dialled after the country code"));
        }
        let mut digits = String::with_capacity(MAX_E164_DIGITS);
        for (at, c) in rest.char_indices() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(unexpected_phone_char(&rest[at..])),
            }
        }
        if digits.is_empty() {
            return Err(AddressError::phone("the digits after '+' are missing"));
        }
        if digits.len() > MAX_E164_DIGITS {
            return Err(AddressError::phone(format_args!("it has more than {MAX_E164_DIGITS} digits")));
        }
        if digits.starts_with('0') {
            return Err(AddressError::phone("a country code never starts with 0"));
        }
        let Some((code, lengths, code_len)) = country_of(&digits) else {
            let prefix = &digits[..digits.len().min(3)];
            return Err(AddressError::phone(format_args!("+{prefix} is not an assigned country calling code")));
        };
        let national = digits.len() - code_len;
        if !lengths.iter().any(|&len| usize::from(len) == national) {
            let shortest = lengths.first().copied().map_or(0, usize::from);
            let longest = lengths.last().copied().map_or(0, usize::from);
            let problem = if national < shortest {
                "too short"
            } else if national > longest {
                "too long"
            } else {
                "the wrong length"
            };
            return Err(AddressError::phone(format_args!(
                "{problem} for country code +{code} ({} national digits expected)",
                describe_lengths(lengths)
            )));
        }
        digits.insert(0, '+');
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn country_code(&self) -> u16 {
        // parse() guarantees an assigned code; the fallback is unreachable.
        country_of(self.0.trim_start_matches('+')).map_or(0, |(code, _, _)| code)
    }

    /// The region the number belongs to (`GB`, `JM`), when its prefix tells: US and
    /// Canadian numbers do not (see [`super::phone_region`]).
    pub fn region(&self) -> Option<&'static str> {
        super::phone_region::region_of(self.0.trim_start_matches('+'))
    }

    /// The IANA time zone of the number's region, when the region keeps one clock
    /// (`Europe/London` for +44, none for +1 415).
    pub fn time_zone(&self) -> Option<&'static str> {
        super::phone_region::time_zone_of(self.0.trim_start_matches('+'))
    }

    /// The IANA time zones the number may be in, one per clock: `[Europe/London]` for
    /// +44, the sixteen clocks of the US and Canada for +1 415, none when the tz
    /// database has no zone for the number's region.
    pub fn time_zones(&self) -> &'static [&'static str] {
        super::phone_region::time_zones_of(self.0.trim_start_matches('+'))
    }
}

/// Whether `code` is an assigned country calling code.
pub fn is_calling_code(code: u16) -> bool {
    COUNTRY_LENGTHS.binary_search_by_key(&code, |&(c, _)| c).is_ok()
}

/// Explains the first character that is neither a digit nor a separator.
fn unexpected_phone_char(from: &str) -> AddressError {
    let lower = from.to_ascii_lowercase();
    let extension = lower.starts_with(['#', ';', ','])
        || ["ext", "x"].iter().any(|marker| {
            lower.strip_prefix(*marker).is_some_and(|after| {
                let after = after.trim_start_matches(['.', ':', '=', ' ']);
                !after.is_empty() && after.chars().all(|c| c.is_ascii_digit() || c == ' ')
            })
        });
    if extension {
        AddressError::phone("extensions are not supported: give the number without one")
    } else if from.starts_with(|c: char| c.is_alphabetic()) {
        AddressError::phone("it contains letters: spell the number as digits")
    } else if from.starts_with(|c: char| c.is_control()) {
        AddressError::phone("it contains a line break or another control character")
    } else if !from.is_ascii() {
        AddressError::phone("it contains non-ASCII characters: use the digits 0-9")
    } else {
        AddressError::phone("only digits may follow '+', separated by spaces, '-', '.', '(' or ')'")
    }
}

/// Finds the country calling code at the start of `digits` (E.164 codes are
/// prefix-free, so at most one of the 1-, 2- and 3-digit prefixes matches).
fn country_of(digits: &str) -> Option<(u16, &'static [u8], usize)> {
    (1..=3).filter(|&len| len <= digits.len()).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        let at = COUNTRY_LENGTHS.binary_search_by_key(&code, |&(code, _)| code).ok()?;
        Some((code, COUNTRY_LENGTHS[at].1, len))
    })
}

/// "10", "9 or 10", "4 to 13", "5 to 7, 9 or 10".
fn describe_lengths(lengths: &[u8]) -> String {
    let mut runs: Vec<(u8, u8)> = Vec::new();
    for &len in lengths {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == len => *end = len,
            _ => runs.push((len, len)),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for (start, end) in runs {
        match end - start {
            0 => parts.push(start.to_string()),
            1 => parts.extend([start.to_string(), end.to_string()]),
            _ => parts.push(format!("{start} to {end}")),
        }
    }
    match parts.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

macro_rules! string_newtype_impls {
    ($ty:ident, $expecting:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = AddressError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(ParseVisitor::<$ty>(PhantomData, $expecting))
            }
        }
    };
}

string_newtype_impls!(EmailAddress, "an email address string");
string_newtype_impls!(PhoneNumber, "an E.164 phone number string");

/// Deserializes from a borrowed or owned string by running `parse`.
struct ParseVisitor<T>(PhantomData<T>, &'static str);

impl<T: FromStr<Err = AddressError>> Visitor<'_> for ParseVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(|err: AddressError| E::custom(err.message))
    }
}

impl JsonSchema for EmailAddress {
    fn schema_name() -> Cow<'static, str> {
        "EmailAddress".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::EmailAddress").into()
    }

    fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "email",
            "maxLength": MAX_EMAIL,
            "description": "Email address (RFC 5321 mailbox): dot-atom local part of at most 64 \
                octets, '@', and a host name. ASCII only: give an internationalized domain in its \
                xn-- form. Quoted local parts, IP address literals and comments are rejected.",
            "examples": ["name@example.com"]
        })
    }
}

impl JsonSchema for PhoneNumber {
    fn schema_name() -> Cow<'static, str> {
        "PhoneNumber".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::PhoneNumber").into()
    }

    // The pattern is the canonical form that is always returned; formatted input
    // is accepted too (described below) but is not what clients should rely on.
    // 6 digits minimum: some countries (e.g. +43, +49) have 4-digit numbers.
    fn json_schema(_gen: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": PHONE_PATTERN,
            "description": "Phone number in E.164 form: '+', country calling code and national \
                number, 6 to 15 digits, e.g. +14155550123. Input may separate the digits after \
                '+' with spaces, '-', '.', '(' or ')'; they are removed and the number is always \
                returned in canonical form. The national number must have a possible length for \
                its country.",
            "examples": ["+14155550123"]
        })
    }
}

const PHONE_PATTERN: &str = r"^\+[1-9][0-9]{5,14}$";

/// Country calling code -> possible lengths of the national significant number,
/// derived from libphonenumber's PhoneNumberMetadata.xml as shipped in the
/// `phonenumber` crate (0.3.10+9.0.33): for every territory with the code, the
/// union of the `national` possible lengths of all number types except
/// `noInternationalDialling`, without `localOnly` lengths, and capped at 15 digits
/// in total. Sorted by code. `tests::table_matches_phonenumber_metadata` checks it
/// and prints a replacement when the crate's metadata changes.
const COUNTRY_LENGTHS: &[(u16, &[u8])] = &[
    (1, &[7, 10]),
    (7, &[10, 14]),
    (20, &[8, 9, 10]),
    (27, &[5, 6, 7, 8, 9, 10]),
    (30, &[10, 11, 12]),
    (31, &[5, 6, 7, 8, 9, 10, 11]),
    (32, &[8, 9]),
    (33, &[9]),
    (34, &[9]),
    (36, &[8, 9]),
    (39, &[6, 7, 8, 9, 10, 11, 12]),
    (40, &[6, 9]),
    (41, &[9, 12]),
    (43, &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    (44, &[7, 9, 10]),
    (45, &[8]),
    (46, &[6, 7, 8, 9, 10, 12]),
    (47, &[5, 8]),
    (48, &[6, 7, 8, 9, 10]),
    (49, &[4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
    (51, &[8, 9]),
    (52, &[10]),
    (53, &[6, 7, 8, 10]),
    (54, &[10, 11]),
    (55, &[8, 9, 10, 11]),
    (56, &[9, 10, 11]),
    (57, &[8, 10, 11]),
    (58, &[10]),
    (60, &[8, 9, 10]),
    (61, &[5, 6, 7, 8, 9, 10, 12]),
    (62, &[7, 8, 9, 10, 11, 12, 13]),
    (63, &[6, 8, 9, 10, 11, 12, 13]),
    (64, &[5, 6, 7, 8, 9, 10]),
    (65, &[8, 10, 11]),
    (66, &[8, 9, 10, 13]),
    (81, &[8, 9, 10, 11, 12, 13]),
    (82, &[5, 6, 8, 9, 10, 11, 12, 13]),
    (84, &[7, 8, 9, 10]),
    (86, &[7, 8, 9, 10, 11, 12]),
    (90, &[7, 10, 12, 13]),
    (91, &[8, 9, 10, 11, 12, 13]),
    (92, &[8, 9, 10, 11, 12]),
    (93, &[9]),
    (94, &[9]),
    (95, &[6, 7, 8, 9, 10]),
    (98, &[4, 5, 6, 7, 10]),
    (211, &[9]),
    (212, &[9]),
    (213, &[8, 9]),
    (216, &[8]),
    (218, &[9]),
    (220, &[7]),
    (221, &[9]),
    (222, &[8]),
    (223, &[8]),
    (224, &[8, 9]),
    (225, &[10]),
    (226, &[8]),
    (227, &[8]),
    (228, &[8]),
    (229, &[8, 10]),
    (230, &[7, 8, 10]),
    (231, &[7, 8, 9]),
    (232, &[8]),
    (233, &[8, 9]),
    (234, &[10, 11, 12]),
    (235, &[8]),
    (236, &[8]),
    (237, &[8, 9]),
    (238, &[7]),
    (239, &[7]),
    (240, &[9]),
    (241, &[7, 8]),
    (242, &[9]),
    (243, &[7, 8, 9, 10]),
    (244, &[9]),
    (245, &[7, 9]),
    (246, &[7]),
    (247, &[5, 6]),
    (248, &[7]),
    (249, &[9]),
    (250, &[8, 9]),
    (251, &[9]),
    (252, &[6, 7, 8, 9]),
    (253, &[8]),
    (254, &[7, 8, 9, 10]),
    (255, &[9]),
    (256, &[9]),
    (257, &[8]),
    (258, &[8, 9]),
    (260, &[9]),
    (261, &[9]),
    (262, &[9]),
    (263, &[5, 6, 7, 8, 9, 10]),
    (264, &[8, 9]),
    (265, &[7, 9]),
    (266, &[8]),
    (267, &[7, 8, 10]),
    (268, &[8, 9]),
    (269, &[7]),
    (290, &[4, 5]),
    (291, &[7]),
    (297, &[7]),
    (298, &[6]),
    (299, &[6]),
    (350, &[8]),
    (351, &[9]),
    (352, &[4, 5, 6, 7, 8, 9, 10, 11]),
    (353, &[7, 8, 9, 10]),
    (354, &[7, 9]),
    (355, &[6, 7, 8, 9]),
    (356, &[8]),
    (357, &[8]),
    (358, &[5, 6, 7, 8, 9, 10, 11, 12]),
    (359, &[6, 7, 8, 9, 12]),
    (370, &[8]),
    (371, &[8]),
    (372, &[7, 8, 10]),
    (373, &[8]),
    (374, &[8]),
    (375, &[6, 7, 8, 9, 10, 11]),
    (376, &[6, 8, 9]),
    (377, &[8, 9]),
    (378, &[8, 10]),
    (380, &[9, 10]),
    (381, &[6, 7, 8, 9, 10, 11, 12]),
    (382, &[8, 9]),
    (383, &[8, 9, 10, 11, 12]),
    (385, &[7, 8, 9]),
    (386, &[5, 6, 7, 8]),
    (387, &[8, 9]),
    (389, &[8]),
    (420, &[9, 10, 11, 12]),
    (421, &[6, 7, 9]),
    (423, &[7, 9]),
    (500, &[5]),
    (501, &[7, 11]),
    (502, &[8, 11]),
    (503, &[7, 8, 11]),
    (504, &[8, 11]),
    (505, &[8]),
    (506, &[8, 10]),
    (507, &[7, 8, 10, 11]),
    (508, &[6, 9]),
    (509, &[8]),
    (590, &[9]),
    (591, &[8, 9]),
    (592, &[7]),
    (593, &[8, 9, 10, 11]),
    (594, &[9]),
    (595, &[6, 7, 8, 9, 10, 11]),
    (596, &[9]),
    (597, &[6, 7]),
    (598, &[4, 5, 6, 7, 8, 9, 10, 11, 12]),
    (599, &[7, 8]),
    (670, &[7, 8]),
    (672, &[6]),
    (673, &[7]),
    (674, &[7]),
    (675, &[7, 8]),
    (676, &[5, 7]),
    (677, &[5, 7]),
    (678, &[5, 7]),
    (679, &[7, 11]),
    (680, &[7]),
    (681, &[6, 9]),
    (682, &[5]),
    (683, &[4, 7]),
    (685, &[5, 6, 7, 10]),
    (686, &[5, 8]),
    (687, &[6]),
    (688, &[5, 6, 7]),
    (689, &[6, 8, 9]),
    (690, &[4, 5, 6, 7]),
    (691, &[7]),
    (692, &[7]),
    (800, &[8]),
    (808, &[8]),
    (850, &[8, 10]),
    (852, &[5, 6, 7, 8, 9, 11]),
    (853, &[7, 8]),
    (855, &[8, 9, 10]),
    (856, &[8, 9, 10]),
    (870, &[9, 12]),
    (878, &[12]),
    (880, &[6, 7, 8, 9, 10]),
    (881, &[9, 10]),
    (882, &[7, 8, 9, 10, 11, 12]),
    (883, &[8, 9, 10, 11, 12]),
    (886, &[7, 8, 9, 10, 11]),
    (888, &[11]),
    (960, &[7, 10]),
    (961, &[7, 8]),
    (962, &[8, 9]),
    (963, &[8, 9]),
    (964, &[8, 9, 10]),
    (965, &[7, 8]),
    (966, &[9, 10]),
    (967, &[7, 8, 9]),
    (968, &[7, 8, 9]),
    (970, &[8, 9, 10]),
    (971, &[5, 6, 7, 8, 9, 10, 11, 12]),
    (972, &[7, 8, 9, 10, 11, 12]),
    (973, &[8]),
    (974, &[7, 8, 9, 11]),
    (975, &[7, 8]),
    (976, &[8, 9, 10]),
    (977, &[8, 10, 11]),
    (979, &[9]),
    (992, &[9]),
    (993, &[8]),
    (994, &[9]),
    (995, &[9]),
    (996, &[9, 10]),
    (998, &[9]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn email_err(input: &str) -> String {
        match EmailAddress::parse(input) {
            Ok(ok) => panic!("accepted {input:?} as {ok}"),
            Err(err) => err.message().to_owned(),
        }
    }

    fn phone_err(input: &str) -> String {
        match PhoneNumber::parse(input) {
            Ok(ok) => panic!("accepted {input:?} as {ok}"),
            Err(err) => err.message().to_owned(),
        }
    }

    fn assert_email_err(input: &str, expected: &str) {
        let message = email_err(input);
        assert!(message.contains(expected), "{input:?}: {message:?}");
        assert!(message.starts_with(EMAIL_EXPECTED), "{message:?}");
    }

    fn assert_phone_err(input: &str, expected: &str) {
        let message = phone_err(input);
        assert!(message.contains(expected), "{input:?}: {message:?}");
        assert!(message.starts_with(PHONE_EXPECTED), "{message:?}");
    }

    fn label(len: usize) -> String {
        "a".repeat(len)
    }

    #[test]
    fn header_injection_is_rejected_not_cleaned() {
        for input in [
            "a@b.com\r\nBcc: x@y.com",
            "a@b.com\nBcc: x@y.com",
            "a@b.com\r",
            "a@b.com\n",
            "\r\na@b.com",
            "a\r\n@b.com",
            "a@b.com\0",
        ] {
            let message = email_err(input);
            assert!(message.contains("line break"), "{input:?}: {message}");
            assert!(!message.contains("x@y.com"));
        }
        assert_email_err("a@b.com, x@y.com", "more than one '@'");
        assert_email_err("a@b.com,x.com", "contains ','");
        assert_email_err("<a@b.com>", "contains '<'");
        assert_email_err("a@b.com%0d%0aBcc", "contains '%'");
    }

    #[test]
    fn local_part_length_limit_is_64_octets() {
        let at_limit = format!("{}@example.com", label(64));
        assert_eq!(EmailAddress::parse(&at_limit).map(|e| e.local_part().len()), Ok(64));
        let over = format!("{}@example.com", label(65));
        assert_email_err(&over, "the local part is longer than 64 octets");
    }

    #[test]
    fn address_length_limit_is_254_octets() {
        // 64 + 1 + (63 + 1 + 63 + 1 + 61) = 254
        let domain = format!("{}.{}.{}", label(63), label(63), label(61));
        let at_limit = format!("{}@{domain}", label(64));
        assert_eq!(at_limit.len(), 254);
        assert!(EmailAddress::parse(&at_limit).is_ok());
        let over = format!("{}@{domain}a", label(64));
        assert_eq!(over.len(), 255);
        assert_email_err(&over, "the address is longer than 254 octets");

        let long_domain = format!("{}.{}.{}.{}", label(63), label(63), label(63), label(62));
        assert_eq!(long_domain.len(), 254);
        assert_email_err(&format!("a@{long_domain}"), "domain is longer than 253 octets");
    }

    #[test]
    fn domain_label_limit_is_63_octets() {
        assert!(EmailAddress::parse(&format!("a@{}.com", label(63))).is_ok());
        assert_email_err(&format!("a@{}.com", label(64)), "longer than 63 octets");
    }

    #[test]
    fn dots_are_checked() {
        assert_email_err("a.@example.com", "the local part ends with a dot");
        assert_email_err(".a@example.com", "the local part starts with a dot");
        assert_email_err("a..b@example.com", "the local part has two dots in a row");
        assert_email_err("a@example.com.", "the domain ends with a dot");
        assert_email_err("a@.example.com", "the domain starts with a dot");
        assert_email_err("a@example..com", "the domain has two dots in a row");
        assert!(EmailAddress::parse("first.middle.last@example.com").is_ok());
    }

    #[test]
    fn structure_errors_name_the_missing_part() {
        assert_email_err("", "the address is empty");
        assert_email_err("   ", "the address is empty");
        assert_email_err("name", "the domain is missing");
        assert_email_err("name@", "the domain after '@' is missing");
        assert_email_err("@example.com", "the local part before '@' is missing");
        assert_email_err("a@@example.com", "more than one '@'");
        assert_email_err("john doe@example.com", "contains a space");
        assert_email_err("a@exa mple.com", "contains a space");
        assert_email_err("a@-example.com", "starts with a hyphen");
        assert_email_err("a@example-.com", "ends with a hyphen");
        assert_email_err("a@ex_ample.com", "contains '_'");
    }

    #[test]
    fn rfc5321_extras_follow_the_documented_policy() {
        assert_email_err("\"john doe\"@example.com", "quoted local parts");
        assert_email_err("\"a@b\"@example.com", "quoted local parts");
        assert_email_err("a@[192.0.2.1]", "address literals");
        assert_email_err("a@[IPv6:2001:db8::1]", "address literals");
        assert_email_err("a@192.0.2.1", "top-level domain is all digits");
        assert_email_err("a@example.123", "top-level domain is all digits");
        assert_email_err("a(comment)@example.com", "comments");
        // Single-label domains are syntactically valid.
        assert!(EmailAddress::parse("test@io").is_ok());
        assert!(EmailAddress::parse("a@123.example").is_ok());
        assert!(EmailAddress::parse("!#$%&'*+-/=?^_`{|}~@example.com").is_ok());
    }

    #[test]
    fn non_ascii_is_rejected_with_a_hint() {
        assert_email_err("josé@example.com", "internationalized mailboxes are not supported");
        assert_email_err("user@bücher.de", "xn--");
        assert_email_err("user@example.com\u{a0}", "non-ASCII");
        let ascii = EmailAddress::parse("user@xn--bcher-kva.de");
        assert_eq!(ascii.map(|e| e.domain().to_owned()), Ok("xn--bcher-kva.de".to_owned()));
    }

    #[test]
    fn only_spaces_and_tabs_around_are_trimmed() {
        let email = EmailAddress::parse(" \tJohn.Doe@Example.COM \t");
        let Ok(email) = email else { panic!("{email:?}") };
        assert_eq!(email.as_str(), "John.Doe@Example.COM");
        assert_eq!(email.local_part(), "John.Doe");
        assert_eq!(email.domain(), "Example.COM");
        assert_eq!(email.suppression_key(), "john.doe@example.com");
        assert_eq!(email.to_string(), "John.Doe@Example.COM");
        assert_eq!(AsRef::<str>::as_ref(&email), "John.Doe@Example.COM");
        assert_eq!("John.Doe@Example.COM".parse::<EmailAddress>(), Ok(email));
    }

    #[test]
    fn messages_never_contain_the_address() {
        for input in [
            "john.doe@example..com",
            "john.doe.@example.com",
            "\"john.doe\"@example.com",
            "john.doe@[192.0.2.1]",
            "john.doé@example.com",
            "john.doe@example.com\r\n",
            "john.doe@",
            "john.doe",
        ] {
            let message = email_err(input);
            assert!(!message.contains("john"), "{input:?}: {message}");
        }
        for input in ["2128675309", "+1 212 867 53090", "+1 212 867 5309 x1", "+999 867 530"] {
            let message = phone_err(input);
            assert!(!message.contains("867"), "{input:?}: {message}");
        }
    }

    #[test]
    fn email_serde_round_trip_and_error() -> Result<(), serde_json::Error> {
        let email: EmailAddress = serde_json::from_str("\" name@example.com \"")?;
        assert_eq!(email.as_str(), "name@example.com");
        assert_eq!(serde_json::to_string(&email)?, "\"name@example.com\"");
        let again: EmailAddress = serde_json::from_str(&serde_json::to_string(&email)?)?;
        assert_eq!(again, email);

        let Err(err) = serde_json::from_str::<EmailAddress>("\"secret.person\"") else {
            panic!("accepted an address without a domain")
        };
        let text = err.to_string();
        assert!(text.starts_with("expected an email address like name@example.com: the domain is missing"), "{text}");
        assert!(!text.contains("secret"), "{text}");

        let Err(err) = serde_json::from_str::<EmailAddress>("42") else { panic!("accepted a number") };
        assert!(err.to_string().contains("expected an email address string"), "{err}");
        Ok(())
    }

    #[test]
    fn phone_serde_round_trip_and_error() -> Result<(), serde_json::Error> {
        let phone: PhoneNumber = serde_json::from_str("\"+1 (415) 555-0123\"")?;
        assert_eq!(phone.as_str(), "+14155550123");
        assert_eq!(serde_json::to_string(&phone)?, "\"+14155550123\"");
        let again: PhoneNumber = serde_json::from_value(serde_json::to_value(&phone)?)?;
        assert_eq!(again, phone);

        let Err(err) = serde_json::from_str::<PhoneNumber>("\"4155550123\"") else {
            panic!("accepted a number without '+'")
        };
        assert!(
            err.to_string().starts_with("expected an E.164 phone number like +14155550123: it must start with '+'"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn phone_formatting_is_normalised() {
        for (input, canonical, code) in [
            ("+14155550123", "+14155550123", 1),
            ("+1 (415) 555-0123", "+14155550123", 1),
            ("+1.415.555.0123", "+14155550123", 1),
            (" +44 20 7946 0958\t", "+442079460958", 44),
            ("+49 30 901820", "+4930901820", 49),
            ("+353 1 234 5678", "+35312345678", 353),
            // Possible but not in an assigned range: accepted on purpose.
            ("+1 555 555 0123", "+15555550123", 1),
        ] {
            let phone = PhoneNumber::parse(input);
            let Ok(phone) = phone else { panic!("{input:?}: {phone:?}") };
            assert_eq!(phone.as_str(), canonical);
            assert_eq!(phone.country_code(), code);
            assert_eq!(phone.to_string(), canonical);
            assert_eq!(input.parse::<PhoneNumber>(), Ok(phone));
        }
    }

    #[test]
    fn phone_rejects_explain_why() {
        assert_phone_err("", "the number is empty");
        assert_phone_err("4155550123", "it must start with '+' and the country code");
        assert_phone_err("0044 20 7946 0958", "instead of the international prefix 00");
        assert_phone_err("+", "the digits after '+' are missing");
        assert_phone_err("+0 123 4567", "never starts with 0");
        assert_phone_err("+999 123 456", "+999 is not an assigned country calling code");
        assert_phone_err("+1415555012", "the wrong length for country code +1 (7 or 10 national digits expected)");
        assert_phone_err("+1 415", "too short for country code +1 (7 or 10 national digits expected)");
        assert_phone_err("+1 415 555 01234", "too long for country code +1");
        assert_phone_err("+1234567890123456", "more than 15 digits");
        assert_phone_err("+1 415 555 0123 ext. 12", "extensions are not supported");
        assert_phone_err("+1 415 555 0123 x12", "extensions are not supported");
        assert_phone_err("+1 415 555 0123;ext=12", "extensions are not supported");
        assert_phone_err("+1 415 555 0123#12", "extensions are not supported");
        assert_phone_err("+1-800-FLOWERS", "letters");
        assert_phone_err("+1 800 XRAY", "letters");
        assert_phone_err("+1 415\n555 0123", "line break");
        assert_phone_err("+1 415/555/0123", "only digits may follow '+'");
        assert_phone_err("++1 415 555 0123", "only digits may follow '+'");
        assert_phone_err("+44 (0)20 7946 0958", "trunk prefix '(0)'");
        assert_phone_err("+44 07700 900123", "too long for country code +44 (7, 9 or 10 national digits expected)");
        assert_phone_err("+1 ٤١٥ 555 0123", "use the digits 0-9");
    }

    #[test]
    fn lengths_are_described_for_humans() {
        assert_eq!(describe_lengths(&[10]), "10");
        assert_eq!(describe_lengths(&[9, 10]), "9 or 10");
        assert_eq!(describe_lengths(&[7, 9, 10]), "7, 9 or 10");
        assert_eq!(describe_lengths(&[4, 5, 6, 7, 8]), "4 to 8");
        assert_eq!(describe_lengths(&[5, 6, 8, 9, 10, 11]), "5, 6 or 8 to 11");
    }

    #[test]
    fn country_table_is_sorted_prefix_free_and_fits_e164() {
        assert!(COUNTRY_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        let codes: Vec<String> = COUNTRY_LENGTHS.iter().map(|(c, _)| c.to_string()).collect();
        for a in &codes {
            for b in &codes {
                assert!(a == b || !b.starts_with(a.as_str()), "+{a} is a prefix of +{b}");
            }
        }
        for (code, lengths) in COUNTRY_LENGTHS {
            assert!(!lengths.is_empty() && lengths.windows(2).all(|w| w[0] < w[1]));
            // Total digits must fit PHONE_PATTERN: 6 to 15.
            let code_len = code.to_string().len();
            for &len in *lengths {
                let total = code_len + usize::from(len);
                assert!((6..=15).contains(&total), "+{code} with {len} digits");
            }
        }
        assert_eq!(PHONE_PATTERN, r"^\+[1-9][0-9]{5,14}$");
    }

    /// Regenerates the table from the `phonenumber` crate's copy of the
    /// libphonenumber metadata (slow to load, which is why it is not used at run
    /// time) and fails, printing the new table, if they differ.
    #[test]
    fn table_matches_phonenumber_metadata() {
        let mut expected: BTreeMap<u16, BTreeSet<u8>> = BTreeMap::new();
        // Walk by code: `Database::iter` keeps only one of the non-geographic
        // "001" entities (+800, +808, +870, ...) because they share an id.
        let database = &phonenumber::metadata::DATABASE;
        let all = (1..1000u16).filter_map(|code| database.by_code(&code));
        for meta in all.flatten() {
            let code = meta.country_code();
            let max_national = MAX_E164_DIGITS - code.to_string().len();
            let d = meta.descriptors();
            let lengths = expected.entry(code).or_default();
            for desc in [
                d.fixed_line(),
                d.mobile(),
                d.toll_free(),
                d.premium_rate(),
                d.shared_cost(),
                d.personal_number(),
                d.voip(),
                d.pager(),
                d.uan(),
                d.voicemail(),
            ]
            .into_iter()
            .flatten()
            {
                for &len in desc.possible_length() {
                    if (1..=max_national).contains(&usize::from(len)) {
                        lengths.insert(u8::try_from(len).unwrap_or(u8::MAX));
                    }
                }
            }
        }
        let actual: BTreeMap<u16, BTreeSet<u8>> =
            COUNTRY_LENGTHS.iter().map(|(code, lengths)| (*code, lengths.iter().copied().collect())).collect();
        if actual != expected {
            let table: String = expected
                .iter()
                .map(|(code, lengths)| {
                    let list: Vec<String> = lengths.iter().map(u8::to_string).collect();
                    format!("    ({code}, &[{}]),\n", list.join(", "))
                })
                .collect();
            panic!("COUNTRY_LENGTHS is out of date; replace its entries with:\n{table}");
        }
    }

    #[test]
    fn schemas_document_the_forms() -> Result<(), serde_json::Error> {
        let email = serde_json::to_value(schemars::schema_for!(EmailAddress))?;
        assert_eq!(email["type"], "string");
        assert_eq!(email["format"], "email");
        assert_eq!(email["maxLength"], 254);
        let phone = serde_json::to_value(schemars::schema_for!(PhoneNumber))?;
        assert_eq!(phone["type"], "string");
        assert_eq!(phone["pattern"], PHONE_PATTERN);
        Ok(())
    }
}
