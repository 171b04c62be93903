//! SMS encoding (GSM-7 / UCS-2) and segment counting.
//!
//! The counts follow what carriers bill and what Twilio's segment calculator
//! reports: a body is GSM-7 when every character is in the GSM 03.38 default
//! alphabet (basic table, or extension table at 2 septets each), otherwise the
//! whole body goes out as UCS-2 and every UTF-16 code unit counts. One SMS
//! carries 160 septets / 70 code units; a concatenated one loses 6 octets to
//! the user data header and carries 153 / 67.
//!
//! Segments are filled greedily with whole grapheme clusters, as Twilio does,
//! so an ESC pair, a surrogate pair or a multi-code-point emoji never straddles
//! two segments. Two exceptions, both Twilio's behaviour too: `\r\n` counts as
//! two characters (UAX #29 makes it one cluster, but it is two septets a phone
//! shows separately), and a cluster too large for any segment on its own (only
//! possible with long combining/ZWJ sequences) is split between code points.
//!
//! An empty body is 1 segment of 0 units: Twilio's calculator reports that,
//! and a provider that accepts an empty message still sends (and bills) one SMS.

use std::collections::HashSet;

use unicode_segmentation::UnicodeSegmentation;

/// Encoding an SMS body is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SmsEncoding {
    // Explicit names: serde's kebab-case turns `Gsm7` into "gsm7", not "gsm-7".
    #[serde(rename = "gsm-7")]
    Gsm7,
    #[serde(rename = "ucs-2")]
    Ucs2,
}

impl SmsEncoding {
    /// The name used in receipts, the outbox and messages: `gsm-7` or `ucs-2`.
    pub fn as_str(self) -> &'static str {
        match self {
            SmsEncoding::Gsm7 => "gsm-7",
            SmsEncoding::Ucs2 => "ucs-2",
        }
    }
}

impl std::fmt::Display for SmsEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How many SMS a body costs, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SmsSegments {
    pub encoding: SmsEncoding,
    pub segments: u32,
    /// Septets for GSM-7 (extension characters count 2), UTF-16 code units for UCS-2.
    pub units: u32,
    /// Grapheme clusters (what a reader calls characters), with `\r\n` counted as two.
    pub characters: u32,
}

/// GSM 03.38 default alphabet, indexed by septet value, transcribed from the
/// Unicode consortium's GSM0338.TXT with two deliberate differences:
/// - 0x09 is 'Ç' (the glyph in ETSI TS 100 900 / 3GPP TS 23.038, listed as a
///   commented alternate in GSM0338.TXT) rather than the file's 'ç'. Twilio and
///   Android use 'Ç' too, so counting 'ç' as GSM-7 would promise a cheaper
///   message than the provider will send.
/// - 0x1B is the escape to the extension table, not a character (the file maps
///   it to NO-BREAK SPACE for display only).
pub const GSM7_BASIC: [Option<char>; 128] = {
    const fn c(ch: char) -> Option<char> {
        Some(ch)
    }
    [
        // 0x00
        c('@'),
        c('\u{00A3}'), // £
        c('$'),
        c('\u{00A5}'), // ¥
        c('\u{00E8}'), // è
        c('\u{00E9}'), // é
        c('\u{00F9}'), // ù
        c('\u{00EC}'), // ì
        c('\u{00F2}'), // ò
        c('\u{00C7}'), // Ç (see above)
        c('\n'),
        c('\u{00D8}'), // Ø
        c('\u{00F8}'), // ø
        c('\r'),
        c('\u{00C5}'), // Å
        c('\u{00E5}'), // å
        // 0x10
        c('\u{0394}'), // Greek Δ
        c('_'),
        c('\u{03A6}'), // Greek Φ
        c('\u{0393}'), // Greek Γ
        c('\u{039B}'), // Greek Λ
        c('\u{03A9}'), // Greek Ω
        c('\u{03A0}'), // Greek Π
        c('\u{03A8}'), // Greek Ψ
        c('\u{03A3}'), // Greek Σ
        c('\u{0398}'), // Greek Θ
        c('\u{039E}'), // Greek Ξ
        None,          // ESC
        c('\u{00C6}'), // Æ
        c('\u{00E6}'), // æ
        c('\u{00DF}'), // ß
        c('\u{00C9}'), // É
        // 0x20
        c(' '),
        c('!'),
        c('"'),
        c('#'),
        c('\u{00A4}'), // ¤ (not $)
        c('%'),
        c('&'),
        c('\''),
        c('('),
        c(')'),
        c('*'),
        c('+'),
        c(','),
        c('-'),
        c('.'),
        c('/'),
        // 0x30
        c('0'),
        c('1'),
        c('2'),
        c('3'),
        c('4'),
        c('5'),
        c('6'),
        c('7'),
        c('8'),
        c('9'),
        c(':'),
        c(';'),
        c('<'),
        c('='),
        c('>'),
        c('?'),
        // 0x40
        c('\u{00A1}'), // ¡ (not @)
        c('A'),
        c('B'),
        c('C'),
        c('D'),
        c('E'),
        c('F'),
        c('G'),
        c('H'),
        c('I'),
        c('J'),
        c('K'),
        c('L'),
        c('M'),
        c('N'),
        c('O'),
        // 0x50
        c('P'),
        c('Q'),
        c('R'),
        c('S'),
        c('T'),
        c('U'),
        c('V'),
        c('W'),
        c('X'),
        c('Y'),
        c('Z'),
        c('\u{00C4}'), // Ä
        c('\u{00D6}'), // Ö
        c('\u{00D1}'), // Ñ
        c('\u{00DC}'), // Ü
        c('\u{00A7}'), // §
        // 0x60
        c('\u{00BF}'), // ¿
        c('a'),
        c('b'),
        c('c'),
        c('d'),
        c('e'),
        c('f'),
        c('g'),
        c('h'),
        c('i'),
        c('j'),
        c('k'),
        c('l'),
        c('m'),
        c('n'),
        c('o'),
        // 0x70
        c('p'),
        c('q'),
        c('r'),
        c('s'),
        c('t'),
        c('u'),
        c('v'),
        c('w'),
        c('x'),
        c('y'),
        c('z'),
        c('\u{00E4}'), // ä
        c('\u{00F6}'), // ö
        c('\u{00F1}'), // ñ
        c('\u{00FC}'), // ü
        c('\u{00E0}'), // à
    ]
};

/// GSM 03.38 extension table: (septet sent after ESC 0x1B, character).
pub const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{000C}'), // form feed
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '\u{20AC}'), // €
];

const GSM7_SINGLE: u32 = 160;
const GSM7_CONCATENATED: u32 = 153;
const UCS2_SINGLE: u32 = 70;
const UCS2_CONCATENATED: u32 = 67;

/// Septets `c` costs in GSM-7, or `None` if it has no GSM-7 encoding.
fn gsm7_septets(c: char) -> Option<u32> {
    if GSM7_BASIC.contains(&Some(c)) {
        Some(1)
    } else if GSM7_EXTENSION.iter().any(|&(_, e)| e == c) {
        Some(2)
    } else {
        None
    }
}

fn units_of(c: char, encoding: SmsEncoding) -> u32 {
    match encoding {
        // Only called for GSM-7 bodies, where every char is encodable.
        SmsEncoding::Gsm7 => gsm7_septets(c).unwrap_or(1),
        SmsEncoding::Ucs2 => c.len_utf16() as u32,
    }
}

/// Greedy filler for concatenated segments.
struct Filler {
    capacity: u32,
    segments: u32,
    used: u32,
}

impl Filler {
    fn place(&mut self, units: u32) {
        if self.used + units > self.capacity && self.used > 0 {
            self.segments += 1;
            self.used = 0;
        }
        self.used = self.used.saturating_add(units);
    }
}

/// Encoding, segment count and sizes of an SMS body.
pub fn segment(body: &str) -> SmsSegments {
    let encoding = if body.chars().all(|c| gsm7_septets(c).is_some()) { SmsEncoding::Gsm7 } else { SmsEncoding::Ucs2 };
    let (single, concatenated) = match encoding {
        SmsEncoding::Gsm7 => (GSM7_SINGLE, GSM7_CONCATENATED),
        SmsEncoding::Ucs2 => (UCS2_SINGLE, UCS2_CONCATENATED),
    };

    let mut units: u32 = 0;
    let mut characters: u32 = 0;
    // Filled alongside the totals; only used when the body needs more than one SMS.
    let mut filler = Filler { capacity: concatenated, segments: 1, used: 0 };
    for grapheme in body.graphemes(true) {
        // CR LF is one cluster to UAX #29 but two characters to a phone (and to Twilio).
        let pieces: &[&str] = if grapheme == "\r\n" { &["\r", "\n"] } else { &[grapheme] };
        for piece in pieces {
            characters = characters.saturating_add(1);
            let cost: u32 = piece.chars().map(|c| units_of(c, encoding)).sum();
            units = units.saturating_add(cost);
            if cost <= concatenated {
                filler.place(cost);
            } else {
                // No segment can hold this cluster: split it, but between code points
                // so a surrogate pair still stays whole.
                for c in piece.chars() {
                    filler.place(units_of(c, encoding));
                }
            }
        }
    }

    let segments = if units <= single { 1 } else { filler.segments };
    SmsSegments { encoding, segments, units, characters }
}

/// The characters that force UCS-2 (deduplicated, in order of first appearance),
/// so a template author can see why a message costs 3x.
pub fn non_gsm_characters(body: &str) -> Vec<char> {
    let mut seen = HashSet::new();
    body.chars().filter(|&c| gsm7_septets(c).is_none() && seen.insert(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_one_empty_gsm_segment() {
        let s = segment("");
        assert_eq!(s, SmsSegments { encoding: SmsEncoding::Gsm7, segments: 1, units: 0, characters: 0 });
        assert!(non_gsm_characters("").is_empty());
    }

    #[test]
    fn plain_ascii_boundaries() {
        assert_eq!(segment(&"a".repeat(160)).segments, 1);
        assert_eq!(segment(&"a".repeat(161)).segments, 2);
        assert_eq!(segment(&"a".repeat(306)).segments, 2);
        assert_eq!(segment(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn extension_chars_cost_two_septets() {
        let s = segment("{x}");
        assert_eq!((s.encoding, s.units, s.characters), (SmsEncoding::Gsm7, 5, 3));
        assert_eq!(segment(&"€".repeat(80)).segments, 1);
        assert_eq!(segment(&"€".repeat(81)).segments, 2);
    }

    #[test]
    fn esc_pair_is_not_split_across_segments() {
        // 306 septets would fit in 2 x 153, but the '€' at septets 153-154 must move whole.
        let body = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        let s = segment(&body);
        assert_eq!((s.units, s.segments), (306, 3));
    }

    #[test]
    fn surrogate_pair_is_not_split_across_segments() {
        // 134 code units would fit in 2 x 67, but the emoji at units 67-68 moves whole.
        let body = format!("{}😀{}", "a".repeat(66), "a".repeat(66));
        let s = segment(&body);
        assert_eq!((s.encoding, s.units, s.segments), (SmsEncoding::Ucs2, 134, 3));
    }

    #[test]
    fn grapheme_cluster_is_not_split_across_segments() {
        // Rainbow flag: 4 code points, 6 code units, one cluster.
        let flag = "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}";
        let body = format!("{}{flag}{}", "a".repeat(64), "a".repeat(64));
        let s = segment(&body);
        assert_eq!((s.units, s.characters, s.segments), (134, 129, 3));
    }

    #[test]
    fn oversized_cluster_is_split_between_code_points() {
        // 'e' followed by 100 combining acute accents is one 101-unit cluster.
        let body = format!("e{}", "\u{0301}".repeat(100));
        let s = segment(&body);
        assert_eq!((s.units, s.characters, s.segments), (101, 1, 2));
    }

    #[test]
    fn crlf_counts_as_two_characters() {
        let s = segment("a\r\nb");
        assert_eq!((s.units, s.characters), (4, 4));
    }

    #[test]
    fn gsm_lookalikes_are_not_gsm() {
        // Lowercase c-cedilla, NBSP, curly quote, Latin 'A' lookalike Greek Alpha.
        for c in ['ç', '\u{00A0}', '\u{2019}', '\u{0391}'] {
            assert_eq!(segment(&c.to_string()).encoding, SmsEncoding::Ucs2, "{c:?}");
        }
        assert_eq!(segment("Ç").encoding, SmsEncoding::Gsm7);
    }

    #[test]
    fn gsm_chars_cost_one_unit_in_ucs2() {
        // Once the body is UCS-2, ']' is one code unit, not an ESC pair.
        let s = segment("😀]]");
        assert_eq!((s.encoding, s.units), (SmsEncoding::Ucs2, 4));
    }

    #[test]
    fn non_gsm_characters_are_deduplicated_in_order() {
        assert_eq!(non_gsm_characters("Olá, ça va? Olá 👋 – ok"), vec!['á', 'ç', '👋', '–']);
        assert!(non_gsm_characters("Hello {name} €5 [ok]").is_empty());
    }

    #[test]
    fn serializes_with_hyphenated_encoding_names() -> Result<(), serde_json::Error> {
        let json = serde_json::to_value(segment("hi"))?;
        assert_eq!(json, serde_json::json!({"encoding": "gsm-7", "segments": 1, "units": 2, "characters": 2}));
        assert_eq!(serde_json::to_value(SmsEncoding::Ucs2)?, "ucs-2");
        Ok(())
    }

    #[test]
    fn table_has_no_duplicate_characters() {
        let mut all: Vec<char> = GSM7_BASIC.iter().flatten().copied().collect();
        all.extend(GSM7_EXTENSION.iter().map(|&(_, c)| c));
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n);
        assert_eq!(n, 127 + 10);
    }
}
