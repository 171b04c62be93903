//! `herald::request::address` against external material in `../shared/spec/`:
//! the isemail suites (email-validation/isemail) and libphonenumber's example
//! numbers (phone-e164). When that folder is absent the spec-driven tests print a
//! notice and pass; the hand-written tables at the bottom always run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use herald::request::address::{EmailAddress, PhoneNumber};
use serde::Deserialize;

fn spec_root() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec");
    if root.is_dir() {
        Some(root)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("cannot parse {}: {err}", path.display()))
}

// ---------------------------------------------------------------- email

#[derive(Deserialize)]
struct IsEmailSuite {
    tests: Vec<IsEmailCase>,
}

#[derive(Deserialize)]
struct IsEmailCase {
    id: String,
    address: String,
    category: String,
    diagnosis: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accept,
    Reject,
}

/// The documented policy of `EmailAddress::parse`, by isemail category and
/// diagnosis. `None` means the suite has a diagnosis we have no policy for yet.
fn policy(category: &str, diagnosis: &str) -> Option<Expect> {
    use Expect::{Accept, Reject};
    match category {
        // DNSWARN cases depend on live DNS: syntactically they are valid.
        "ISEMAIL_VALID_CATEGORY" | "ISEMAIL_DNSWARN" => Some(Accept),
        "ISEMAIL_ERR" => Some(Reject),
        "ISEMAIL_RFC5321" => match diagnosis {
            // Single-label domain (test@io): valid, deliverability is the MTA's call.
            "ISEMAIL_RFC5321_TLD" => Some(Accept),
            // All-digit TLD (a@192.0.2.1, a@example.123): an unbracketed IP or a typo.
            "ISEMAIL_RFC5321_TLDNUMERIC" => Some(Reject),
            // "quoted"@local parts: refused by many ESPs, mishandled downstream.
            "ISEMAIL_RFC5321_QUOTEDSTRING" => Some(Reject),
            // [IPv4] / [IPv6:...] literals: not deliverable through an ESP.
            "ISEMAIL_RFC5321_ADDRESSLITERAL" | "ISEMAIL_RFC5321_IPV6DEPRECATED" => Some(Reject),
            _ => None,
        },
        // RFC 5322-only forms: domain literals, and over-long local part, label,
        // domain or address (LOCAL_TOOLONG, LABEL_TOOLONG, DOMAIN_TOOLONG, TOOLONG),
        // which RFC 5322 tolerates but RFC 5321 forbids, so they are errors for
        // sending.
        "ISEMAIL_RFC5322" => Some(Reject),
        // Comments and folding white space have no place in an envelope address.
        "ISEMAIL_CFWS" => Some(Reject),
        // Obsolete RFC 822 syntax.
        "ISEMAIL_DEPREC" => Some(Reject),
        _ => None,
    }
}

/// Cases that do not follow their category's policy, with the reason.
const EXCEPTIONS: &[(&str, &str, Expect, &str)] = &[
    (
        "tests.json",
        "157",
        Expect::Accept,
        "' test@iana.org' is CFWS only by its leading space, which parse trims by policy",
    ),
    (
        "tests.json",
        "158",
        Expect::Accept,
        "'test@iana.org ' is CFWS only by its trailing space, which parse trims by policy",
    ),
];

/// The suites encode control characters as U+2400+n ("SYMBOL FOR ..."); map
/// them back to ASCII n (U+2421 SYMBOL FOR DELETE is 0x7F).
fn decode_control_pictures(address: &str) -> String {
    address
        .chars()
        .map(|c| match u32::from(c) {
            n @ 0x2400..=0x2420 => char::from((n - 0x2400) as u8),
            0x2421 => '\x7f',
            _ => c,
        })
        .collect()
}

#[test]
fn isemail_suites_follow_the_documented_policy() {
    let Some(root) = spec_root() else { return };
    let dir = root.join("email-validation/isemail");
    let mut counts: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut exceptions_used = 0;

    for file in ["tests.json", "tests-original.json"] {
        let suite: IsEmailSuite = read_json(&dir.join(file));
        assert!(!suite.tests.is_empty(), "{file} has no cases");
        for case in suite.tests {
            let address = decode_control_pictures(&case.address);
            let exception = EXCEPTIONS.iter().find(|(f, id, _, _)| *f == file && *id == case.id);
            let expected = match exception {
                Some((_, _, expect, _)) => {
                    exceptions_used += 1;
                    *expect
                }
                None => match policy(&case.category, &case.diagnosis) {
                    Some(expect) => expect,
                    None => {
                        failures.push(format!(
                            "{file} #{}: {address:?} {}/{}: no policy for this diagnosis",
                            case.id, case.category, case.diagnosis
                        ));
                        continue;
                    }
                },
            };
            let parsed = EmailAddress::parse(&address);
            let count = counts.entry((file.to_owned(), case.category.clone())).or_default();
            match &parsed {
                Ok(_) => count.0 += 1,
                Err(_) => count.1 += 1,
            }
            let problem = match (expected, parsed) {
                (Expect::Accept, Ok(email)) => {
                    let trimmed = address.trim_matches([' ', '\t']);
                    let rebuilt = format!("{}@{}", email.local_part(), email.domain());
                    if email.as_str() != trimmed || rebuilt != trimmed {
                        Some(format!("accepted but stored as {:?}", email.as_str()))
                    } else {
                        None
                    }
                }
                (Expect::Accept, Err(err)) => Some(format!("rejected: {err}")),
                (Expect::Reject, Ok(email)) => Some(format!("accepted as {:?}", email.as_str())),
                (Expect::Reject, Err(err)) => {
                    // PII: the message must not echo the address.
                    let echoed = address.len() >= 3 && err.message().contains(address.as_str());
                    echoed.then(|| format!("message echoes the address: {err}"))
                }
            };
            if let Some(problem) = problem {
                failures.push(format!(
                    "{file} #{}: {address:?} {}/{}: expected {expected:?}, {problem}",
                    case.id, case.category, case.diagnosis
                ));
            }
        }
    }

    let mut report = String::from("isemail results (accepted / rejected):\n");
    for ((file, category), (accepted, rejected)) in &counts {
        let _ = writeln!(report, "  {file:<20} {category:<24} {accepted:>3} / {rejected:>3}");
    }
    println!("{report}");
    assert_eq!(exceptions_used, EXCEPTIONS.len(), "an exception no longer matches a case");
    assert!(
        failures.is_empty(),
        "{} isemail case(s) do not follow the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------- phone

#[derive(Deserialize)]
struct ExampleNumbers {
    count: usize,
    examples: Vec<ExampleNumber>,
}

#[derive(Deserialize)]
struct ExampleNumber {
    region: String,
    country_code: u16,
    #[serde(rename = "type")]
    kind: String,
    national_number: String,
    e164: String,
}

/// "+44 (20) 79-46.0958" style: the same digits with every separator we
/// tolerate. Two digits go in the parentheses so that a national number starting
/// with 0 (Italy) does not look like a "(0)" trunk prefix.
fn formatted(example: &ExampleNumber) -> String {
    let national = &example.national_number;
    let split = (national.len() / 2).max(2);
    format!(
        "  +{} ({}) {}-{}.{}\t",
        example.country_code,
        &national[..2],
        &national[2..split],
        &national[split..national.len() - 1],
        &national[national.len() - 1..]
    )
}

#[test]
fn libphonenumber_example_numbers_are_accepted() {
    let Some(root) = spec_root() else { return };
    let suite: ExampleNumbers = read_json(&root.join("phone-e164/libphonenumber-example-numbers.json"));
    assert_eq!(suite.count, suite.examples.len());
    let mut failures = Vec::new();
    let mut passed = 0;
    for example in &suite.examples {
        let label = format!("{} {} {}", example.region, example.kind, example.e164);
        for input in [example.e164.clone(), formatted(example)] {
            match PhoneNumber::parse(&input) {
                Ok(phone) if phone.as_str() != example.e164 => {
                    failures.push(format!("{label}: {input:?} gave {}", phone.as_str()));
                }
                Ok(phone) if phone.country_code() != example.country_code => {
                    failures.push(format!("{label}: country code {}", phone.country_code()));
                }
                Ok(_) => passed += 1,
                Err(err) => failures.push(format!("{label}: {input:?} rejected: {err}")),
            }
        }
    }
    println!(
        "libphonenumber examples: {passed} of {} inputs accepted ({} numbers, plain and formatted)",
        suite.examples.len() * 2,
        suite.examples.len()
    );
    assert!(failures.is_empty(), "{} example number(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn formatted_phone_numbers_are_normalised() {
    let cases = [
        ("+14155550123", "+14155550123", 1),
        ("+1 (415) 555-0123", "+14155550123", 1),
        ("+1 415.555.0123", "+14155550123", 1),
        ("+1-415-555-0123", "+14155550123", 1),
        ("\t+1 415 555 0123  ", "+14155550123", 1),
        ("+44 20 7946 0958", "+442079460958", 44),
        ("+44 7700 900123", "+447700900123", 44),
        ("+33 1 23 45 67 89", "+33123456789", 33),
        ("+49 (30) 901820", "+4930901820", 49),
        ("+39 06 6982 1234", "+390669821234", 39),
        ("+61 4 1234 5678", "+61412345678", 61),
        ("+91 98765-43210", "+919876543210", 91),
        ("+86 138 0013 8000", "+8613800138000", 86),
        ("+800 1234 5678", "+80012345678", 800),
        // Possible length, not an assigned range: accepted on purpose.
        ("+1 555 555 0123", "+15555550123", 1),
    ];
    for (input, canonical, code) in cases {
        match PhoneNumber::parse(input) {
            Ok(phone) => {
                assert_eq!(phone.as_str(), canonical, "{input:?}");
                assert_eq!(phone.country_code(), code, "{input:?}");
            }
            Err(err) => panic!("{input:?} rejected: {err}"),
        }
    }
}

#[test]
fn bad_phone_numbers_are_rejected_with_a_reason() {
    let cases = [
        ("", "the number is empty"),
        ("4155550123", "it must start with '+' and the country code"),
        ("1 415 555 0123", "it must start with '+' and the country code"),
        ("0044 20 7946 0958", "write '+' instead of the international prefix 00"),
        ("+", "the digits after '+' are missing"),
        ("+ ( ) -", "the digits after '+' are missing"),
        ("+0 123 456 789", "a country code never starts with 0"),
        ("+999 123 456", "+999 is not an assigned country calling code"),
        ("+28 123 456 789", "+281 is not an assigned country calling code"),
        ("+1415555012", "the wrong length for country code +1 (7 or 10 national digits expected)"),
        ("+1 415", "too short for country code +1 (7 or 10 national digits expected)"),
        ("+1 415 555 01234", "too long for country code +1 (7 or 10 national digits expected)"),
        ("+44 07700 900123", "too long for country code +44 (7, 9 or 10 national digits expected)"),
        ("+44 (0)20 7946 0958", "remove the trunk prefix '(0)'"),
        ("+1234567890123456", "it has more than 15 digits"),
        ("+1 415 555 0123 ext 12", "extensions are not supported"),
        ("+1 415 555 0123 x12", "extensions are not supported"),
        ("+1 415 555 0123;ext=12", "extensions are not supported"),
        ("+1 415 555 0123 #12", "extensions are not supported"),
        ("+1 415 555 0123, 12", "extensions are not supported"),
        ("+1-800-FLOWERS", "it contains letters"),
        ("+1 415 555 O123", "it contains letters"),
        ("+1 415 555 0123\r\n", "line break"),
        ("+1 415/555/0123", "only digits may follow '+'"),
        ("+1 415 555 0123 +", "only digits may follow '+'"),
        ("(+1) 415 555 0123", "it must start with '+'"),
        ("+１ 415 555 0123", "use the digits 0-9"),
    ];
    let mut failures = Vec::new();
    for (input, expected) in cases {
        match PhoneNumber::parse(input) {
            Ok(phone) => failures.push(format!("{input:?} accepted as {phone}")),
            Err(err) => {
                let message = err.message();
                if !message.starts_with("expected an E.164 phone number like +14155550123: ")
                    || !message.contains(expected)
                {
                    failures.push(format!("{input:?}: {message:?} lacks {expected:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
