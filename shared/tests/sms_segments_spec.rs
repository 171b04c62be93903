//! Checks `render::sms` against the reference data in ../shared/spec/sms-segments:
//! the cases extracted from Twilio's message-segment-calculator tests, and the
//! Unicode consortium's GSM 03.38 mapping table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use herald::render::sms::{
    GSM7_BASIC, GSM7_EXTENSION, SmsEncoding, SmsSegments, non_gsm_characters, segment, transliterate,
};
use serde_json::Value;

/// Cases that cannot match, with the reason. Empty today; a listed case that
/// starts matching fails the test so this list stays honest.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

/// Bits of user data header per segment of a concatenated message.
const UDH_BITS: u64 = 48;

fn spec_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/spec/sms-segments");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipping: ../shared/spec not found");
        None
    }
}

fn encoding_name(e: SmsEncoding) -> &'static str {
    match e {
        SmsEncoding::Gsm7 => "GSM-7",
        SmsEncoding::Ucs2 => "UCS-2",
    }
}

/// Every mismatch between our result and one expected key, as text.
fn check_key(body: &str, got: &SmsSegments, key: &str, want: &Value) -> Option<String> {
    let message_bits = u64::from(got.units)
        * match got.encoding {
            SmsEncoding::Gsm7 => 7,
            SmsEncoding::Ucs2 => 16,
        };
    let actual: Value = match key {
        "encoding" => encoding_name(got.encoding).into(),
        "segments" => got.segments.into(),
        "message_size_bits" => message_bits.into(),
        "total_size_bits" => {
            let udh = if got.segments > 1 { UDH_BITS * u64::from(got.segments) } else { 0 };
            (message_bits + udh).into()
        }
        "characters_graphemes" => got.characters.into(),
        // Not something segment() reports; checked so a mis-read body shows up.
        "unicode_scalars" => body.chars().count().into(),
        "all_chars_non_gsm7" => {
            let non_gsm = non_gsm_characters(body);
            (got.encoding == SmsEncoding::Ucs2 && body.chars().all(|c| non_gsm.contains(&c))).into()
        }
        "non_gsm_characters" => {
            non_gsm_characters(body).iter().map(|c| Value::from(c.to_string())).collect::<Vec<_>>().into()
        }
        other => return Some(format!("unknown expected key {other:?}")),
    };
    (actual != *want).then(|| format!("{key}: expected {want}, got {actual}"))
}

#[test]
fn twilio_segment_cases() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = spec_dir() else {
        return Ok(());
    };
    let data: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("twilio-segment-cases.json"))?)?;
    let cases = data["cases"].as_array().ok_or("no cases array")?;
    assert!(!cases.is_empty(), "no cases in twilio-segment-cases.json");

    let (mut matched, mut checks, mut deviations) = (0, 0, 0);
    let mut failures = Vec::new();
    for case in cases {
        let description = case["description"].as_str().ok_or("case without description")?;
        let body = case["body"].as_str().ok_or("case without body")?;
        let expected = case["expected"].as_object().ok_or("case without expected")?;
        let got = segment(body);

        let mut problems: Vec<String> =
            expected.iter().filter_map(|(key, want)| check_key(body, &got, key, want)).collect();
        checks += expected.len();
        // The per-case UTF-16 length is our unit count whenever the body is UCS-2.
        if let Some(cu) = case["utf16_code_units"].as_u64()
            && got.encoding == SmsEncoding::Ucs2
        {
            checks += 1;
            if u64::from(got.units) != cu {
                problems.push(format!("units: expected {cu} UTF-16 code units, got {}", got.units));
            }
        }

        let known = KNOWN_DEVIATIONS.iter().find(|(d, _)| *d == description);
        match (problems.is_empty(), known) {
            (true, None) => matched += 1,
            (false, Some((_, reason))) => {
                deviations += 1;
                eprintln!("known deviation: {description}: {} ({reason})", problems.join("; "));
            }
            (true, Some(_)) => {
                failures.push(format!("{description}: listed in KNOWN_DEVIATIONS but now matches; remove it"))
            }
            (false, None) => failures.push(format!("{description}: {}", problems.join("; "))),
        }
    }

    eprintln!(
        "twilio segment cases: {matched}/{} match ({checks} expected values checked), {deviations} known deviations",
        cases.len()
    );
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    Ok(())
}

/// Transliteration leaves every case as written: the GSM-7 ones need nothing, and the
/// UCS-2 ones are UCS-2 because of emoji (the ZWJ inside the rainbow flag included) and
/// accented letters, which it never touches. The cases carry no Twilio "smart encoding"
/// expectations; this checks that the rewrite does not disturb what they measure.
#[test]
fn twilio_cases_survive_transliteration() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = spec_dir() else {
        return Ok(());
    };
    let data: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("twilio-segment-cases.json"))?)?;
    let cases = data["cases"].as_array().ok_or("no cases array")?;
    let mut changed = Vec::new();
    for case in cases {
        let body = case["body"].as_str().ok_or("case without body")?;
        if let Some(t) = transliterate(body) {
            changed.push(format!("{}: {:?}", case["description"], t.replaced));
        }
    }
    assert!(changed.is_empty(), "rewritten:\n{}", changed.join("\n"));
    let joined = cases.iter().filter(|c| c["body"].as_str().is_some_and(|b| b.contains('\u{200D}'))).count();
    assert!(joined > 0, "the cases with a zero width joiner inside an emoji are gone");
    eprintln!("twilio segment cases: all {} left as written by transliterate ({joined} with a ZWJ emoji)", cases.len());
    Ok(())
}

/// Mappings of GSM0338.TXT: (basic by septet, extension by septet after ESC,
/// commented-out alternates by septet).
type FileTable = (BTreeMap<u8, char>, BTreeMap<u8, char>, BTreeMap<u8, Vec<char>>);

fn parse_gsm0338(text: &str) -> Result<FileTable, Box<dyn std::error::Error>> {
    let (mut basic, mut extension, mut alternates) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::<u8, Vec<char>>::new());
    for line in text.lines() {
        let (commented, line) = match line.strip_prefix('#') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        // Data lines are "0xGG<TAB>0xUUUU<TAB>#<TAB>NAME"; header comments don't start with 0x.
        let mut cols = line.split('\t');
        let (Some(gsm), Some(uni)) = (cols.next(), cols.next()) else {
            continue;
        };
        let (Some(gsm), Some(uni)) = (gsm.strip_prefix("0x"), uni.strip_prefix("0x")) else {
            continue;
        };
        let gsm = u16::from_str_radix(gsm.trim(), 16)?;
        let uni = char::from_u32(u32::from_str_radix(uni.trim(), 16)?).ok_or("bad scalar")?;
        if commented {
            alternates.entry(u8::try_from(gsm)?).or_default().push(uni);
        } else if gsm > 0xFF {
            let [esc, code] = gsm.to_be_bytes();
            assert_eq!(esc, 0x1B, "two-byte entry that is not an ESC sequence: {gsm:#06X}");
            assert!(extension.insert(code, uni).is_none(), "duplicate {gsm:#06X}");
        } else {
            assert!(basic.insert(u8::try_from(gsm)?, uni).is_none(), "duplicate {gsm:#04X}");
        }
    }
    Ok((basic, extension, alternates))
}

#[test]
fn gsm_table_matches_gsm0338_txt() -> Result<(), Box<dyn std::error::Error>> {
    let Some(dir) = spec_dir() else {
        return Ok(());
    };
    let (mut file_basic, file_extension, alternates) =
        parse_gsm0338(&std::fs::read_to_string(dir.join("GSM0338.TXT"))?)?;
    assert_eq!(file_basic.len(), 128, "GSM0338.TXT basic table size");

    let mut ours_basic: BTreeMap<u8, char> =
        GSM7_BASIC.iter().enumerate().filter_map(|(i, c)| Some((u8::try_from(i).ok()?, (*c)?))).collect();
    let ours_extension: BTreeMap<u8, char> = GSM7_EXTENSION.iter().copied().collect();

    // The two documented differences (see GSM7_BASIC), checked precisely rather than skipped.
    // 0x09: the file maps small c-cedilla and lists capital C-cedilla as a commented
    // alternate; we follow the ETSI glyph (capital), as Twilio does.
    assert_eq!(file_basic.remove(&0x09), Some('\u{00E7}'));
    assert!(alternates.get(&0x09).is_some_and(|a| a.contains(&'\u{00C7}')));
    assert_eq!(ours_basic.remove(&0x09), Some('\u{00C7}'));
    // 0x1B: ESC, shown as NO-BREAK SPACE by the file; not an encodable character.
    assert_eq!(file_basic.remove(&0x1B), Some('\u{00A0}'));
    assert_eq!(GSM7_BASIC[0x1B], None);

    // Map equality checks both directions: nothing missing, nothing extra, same codes.
    assert_eq!(ours_basic, file_basic, "basic table differs from GSM0338.TXT");
    assert_eq!(ours_extension, file_extension, "extension table differs from GSM0338.TXT");
    eprintln!(
        "GSM0338.TXT: {} basic + {} extension mappings equal to the Rust table; 2 documented differences (0x09 'Ç' for 'ç', 0x1B ESC not NBSP)",
        ours_basic.len(),
        ours_extension.len()
    );
    Ok(())
}
