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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
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

/// Septets `c` costs in GSM-7, or `None` if it has no GSM-7 encoding. Called for every
/// character of every SMS, several times: a table lookup, not a scan of the alphabet.
fn gsm7_septets(c: char) -> Option<u32> {
    static SEPTETS: std::sync::OnceLock<std::collections::HashMap<char, u32>> = std::sync::OnceLock::new();
    let table = SEPTETS.get_or_init(|| {
        let basic = GSM7_BASIC.iter().flatten().map(|&c| (c, 1));
        // Extension characters are not in the basic table, so nothing is overwritten.
        let extension = GSM7_EXTENSION.iter().map(|&(_, c)| (c, 2));
        basic.chain(extension).collect()
    });
    table.get(&c).copied()
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

/// Non-GSM characters and the GSM-7 text that replaces them, after Twilio's "Smart
/// Encoding" list, kept to replacements a reader would not notice: typographic quotes,
/// primes and guillemets, dashes and the minus sign, the ellipsis, Unicode spaces, and
/// invisible characters (removed). Letters are never replaced: `á` -> `a` changes a
/// word. Fullwidth forms are left out: they come with CJK text, which stays UCS-2
/// anyway. Nor are the grave accent (U+0060, the backtick) and the acute accent
/// (U+00B4): a reader tells them from an apostrophe, and a code or a reference in a
/// non-transactional category may carry one, so they go out as written. Sorted by
/// character (binary search).
const TRANSLITERATIONS: &[(char, &str)] = &[
    ('\u{00A0}', " "),  // no-break space
    ('\u{00AB}', "\""), // « left guillemet
    ('\u{00AD}', ""),   // soft hyphen: invisible unless a line breaks there
    ('\u{00BB}', "\""), // » right guillemet
    ('\u{02B9}', "'"),  // ʹ modifier letter prime
    ('\u{02BA}', "\""), // ʺ modifier letter double prime
    ('\u{02BB}', "'"),  // ʻ modifier letter turned comma (ʻokina)
    ('\u{02BC}', "'"),  // ʼ modifier letter apostrophe
    ('\u{02BD}', "'"),  // ʽ modifier letter reversed comma
    ('\u{02C8}', "'"),  // ˈ modifier letter vertical line
    ('\u{02CA}', "'"),  // ˊ modifier letter acute accent
    ('\u{02CB}', "'"),  // ˋ modifier letter grave accent
    ('\u{02EE}', "\""), // ˮ modifier letter double apostrophe
    ('\u{2000}', " "),  // en quad
    ('\u{2001}', " "),  // em quad
    ('\u{2002}', " "),  // en space
    ('\u{2003}', " "),  // em space
    ('\u{2004}', " "),  // three-per-em space
    ('\u{2005}', " "),  // four-per-em space
    ('\u{2006}', " "),  // six-per-em space
    ('\u{2007}', " "),  // figure space
    ('\u{2008}', " "),  // punctuation space
    ('\u{2009}', " "),  // thin space
    ('\u{200A}', " "),  // hair space
    ('\u{200B}', ""),   // zero width space
    // Joiners only matter between characters that join (emoji, Indic and Arabic
    // scripts); none of those is GSM-7, and a body that keeps one is never changed,
    // so a joiner is only ever removed from between GSM-7 characters.
    ('\u{200C}', ""),    // zero width non-joiner
    ('\u{200D}', ""),    // zero width joiner
    ('\u{2010}', "-"),   // ‐ hyphen
    ('\u{2011}', "-"),   // ‑ non-breaking hyphen
    ('\u{2012}', "-"),   // ‒ figure dash
    ('\u{2013}', "-"),   // – en dash
    ('\u{2014}', "-"),   // — em dash
    ('\u{2015}', "-"),   // ― horizontal bar
    ('\u{2018}', "'"),   // ‘ left single quote
    ('\u{2019}', "'"),   // ’ right single quote, the typographic apostrophe
    ('\u{201A}', "'"),   // ‚ single low-9 quote (opening quote in German)
    ('\u{201B}', "'"),   // ‛ single high-reversed-9 quote
    ('\u{201C}', "\""),  // “ left double quote
    ('\u{201D}', "\""),  // ” right double quote
    ('\u{201E}', "\""),  // „ double low-9 quote
    ('\u{201F}', "\""),  // ‟ double high-reversed-9 quote
    ('\u{2026}', "..."), // … ellipsis
    ('\u{2028}', "\n"),  // line separator
    ('\u{2029}', "\n"),  // paragraph separator
    ('\u{202F}', " "),   // narrow no-break space (French punctuation)
    ('\u{2032}', "'"),   // ′ prime
    ('\u{2033}', "\""),  // ″ double prime
    ('\u{2035}', "'"),   // ‵ reversed prime
    // Single guillemets are quotation marks (French, Swiss German), like « »: they
    // become quotes, not the less-than and greater-than signs they resemble.
    ('\u{2039}', "'"),  // ‹
    ('\u{203A}', "'"),  // ›
    ('\u{2043}', "-"),  // ⁃ hyphen bullet
    ('\u{2044}', "/"),  // ⁄ fraction slash
    ('\u{205F}', " "),  // medium mathematical space
    ('\u{2060}', ""),   // word joiner
    ('\u{2212}', "-"),  // − minus sign
    ('\u{2215}', "/"),  // ∕ division slash
    ('\u{275B}', "'"),  // ❛ heavy single turned comma quote ornament
    ('\u{275C}', "'"),  // ❜ heavy single comma quote ornament
    ('\u{275D}', "\""), // ❝ heavy double turned comma quote ornament
    ('\u{275E}', "\""), // ❞ heavy double comma quote ornament
    ('\u{3000}', " "),  // ideographic space
    ('\u{301D}', "\""), // 〝 reversed double prime quote
    ('\u{301E}', "\""), // 〞 double prime quote
    ('\u{FEFF}', ""),   // byte order mark / zero width no-break space
];

/// A body rewritten by [`transliterate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transliterated {
    pub body: String,
    /// The characters replaced (deduplicated, in order of first appearance).
    pub replaced: Vec<char>,
}

/// Every character [`transliterate`] replaces, with its replacement.
pub fn transliterations() -> impl Iterator<Item = (char, &'static str)> {
    TRANSLITERATIONS.iter().copied()
}

fn replacement(c: char) -> Option<&'static str> {
    TRANSLITERATIONS.binary_search_by_key(&c, |&(from, _)| from).ok().map(|at| TRANSLITERATIONS[at].1)
}

/// Replaces the non-GSM characters that only look different from GSM-7 ones (curly
/// quotes, dashes, Unicode spaces...), so that one smart quote does not send the whole
/// message as UCS-2 at up to three times the price.
///
/// `None` (send the body as written) unless the result is entirely GSM-7 and needs no
/// more segments: when an emoji or a Greek or Cyrillic letter keeps the message UCS-2
/// anyway, replacing its quotes changes the text for no saving; and `…` becomes three
/// septets, so a body of ellipses could grow.
pub fn transliterate(body: &str) -> Option<Transliterated> {
    // The common case, a body already GSM-7, allocates nothing.
    if body.chars().all(|c| gsm7_septets(c).is_some()) {
        return None;
    }
    let mut out = String::with_capacity(body.len());
    let mut replaced = Vec::new();
    for c in body.chars() {
        if gsm7_septets(c).is_some() {
            out.push(c);
        } else {
            // A character without a GSM-7 equivalent keeps the message UCS-2.
            let text = replacement(c)?;
            out.push_str(text);
            if !replaced.contains(&c) {
                replaced.push(c);
            }
        }
    }
    if replaced.is_empty() || segment(&out).segments > segment(body).segments {
        return None;
    }
    Some(Transliterated { body: out, replaced })
}

/// At most this many characters are named as the reason a body is UCS-2.
pub const MAX_NAMED_NON_GSM: usize = 5;

/// The characters to name as the reason a body is UCS-2, and how many others there are.
///
/// A rendered body carries personal data (a name, a street), so the characters named
/// are never letters or digits, which could spell part of it, and at most
/// [`MAX_NAMED_NON_GSM`] of them: the culprit a template author can fix is almost
/// always a symbol, an emoji or punctuation in the template, and the count of the
/// others still says that letters (a Greek or Cyrillic name, say) played a part.
pub fn named_non_gsm_characters(body: &str) -> (Vec<char>, usize) {
    let all = non_gsm_characters(body);
    let named: Vec<char> = all.iter().copied().filter(|c| !c.is_alphanumeric()).take(MAX_NAMED_NON_GSM).collect();
    let others = all.len() - named.len();
    (named, others)
}

/// `U+2019`: how receipts and details name a character, readable whatever it is (a
/// no-break space, a joiner, a right-to-left mark).
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
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

    #[test]
    fn transliteration_table_is_sorted_and_maps_into_gsm7() {
        assert!(TRANSLITERATIONS.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicates");
        for &(from, to) in TRANSLITERATIONS {
            assert!(gsm7_septets(from).is_none(), "{} is already GSM-7", code_point(from));
            assert!(
                to.chars().all(|c| gsm7_septets(c) == Some(1)),
                "{} maps outside the basic table",
                code_point(from)
            );
        }
    }

    #[test]
    fn smart_punctuation_becomes_gsm7() {
        let t = transliterate("It\u{2019}s \u{201C}on\u{201D} \u{2014} 10\u{00A0}%\u{2026}").unwrap();
        assert_eq!(t.body, "It's \"on\" - 10 %...");
        assert_eq!(t.replaced, vec!['\u{2019}', '\u{201C}', '\u{201D}', '\u{2014}', '\u{00A0}', '\u{2026}']);
        assert_eq!(segment(&t.body).encoding, SmsEncoding::Gsm7);
        // Invisible characters go; guillemets and primes become quotes.
        let t = transliterate("\u{FEFF}a\u{200B}b\u{00AD}c \u{00AB}d\u{00BB} \u{2039}e\u{203A} 5\u{2032}9\u{2033}")
            .unwrap();
        assert_eq!(t.body, "abc \"d\" 'e' 5'9\"");
    }

    #[test]
    fn backticks_and_acute_accents_are_never_rewritten() {
        // A reader sees them, and a code may carry one: `Ab1` is not 'Ab1'.
        for body in ["Your code: `Ab1\u{00B4}9`", "Ref \u{00B4}K7", "`x` \u{2019}"] {
            assert_eq!(transliterate(body), None, "{body}");
        }
        for (c, _) in transliterations() {
            assert!(!matches!(c, '\u{0060}' | '\u{00B4}'), "{} is in the table", code_point(c));
        }
    }

    #[test]
    fn a_message_that_stays_ucs2_is_left_as_written() {
        // An emoji, a Greek small letter, an accented letter outside GSM-7: the quote stays.
        for body in ["Don\u{2019}t miss it \u{1F600}", "\u{03B1}\u{2019}", "Ol\u{00E1} \u{2014} hi"] {
            assert_eq!(transliterate(body), None, "{body}");
        }
        // A joiner inside an emoji sequence is never removed.
        let family = "Hi \u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        assert_eq!(transliterate(family), None);
        // Between GSM-7 characters it is invisible, and goes.
        assert_eq!(transliterate("a\u{200D}b").map(|t| t.body), Some("ab".to_owned()));
    }

    #[test]
    fn gsm7_bodies_are_untouched_and_growth_is_refused() {
        assert_eq!(transliterate("Hello {name} \u{20AC}5 [ok] \"quoted\" 'single' - ..."), None);
        assert_eq!(transliterate(""), None);
        // 70 ellipses: one UCS-2 segment, but 210 septets (two GSM-7 segments).
        assert_eq!(transliterate(&"\u{2026}".repeat(70)), None);
        // 40 of them: one segment either way (120 septets), so GSM-7 it is.
        assert!(transliterate(&"\u{2026}".repeat(40)).is_some());
    }

    #[test]
    fn letters_and_digits_are_counted_not_named() {
        let (named, others) = named_non_gsm_characters("\u{0416}\u{00E1} \u{1F600}\u{2022}\u{0663}");
        assert_eq!((named, others), (vec!['\u{1F600}', '\u{2022}'], 3), "Cyrillic, accented and Arabic-Indic digit");
        let symbols: String = ('\u{2600}'..='\u{2607}').collect();
        let (named, others) = named_non_gsm_characters(&symbols);
        assert_eq!((named.len(), others), (MAX_NAMED_NON_GSM, 3));
        assert_eq!(named_non_gsm_characters("plain"), (vec![], 0));
    }

    #[test]
    fn code_points_are_named_readably() {
        assert_eq!(code_point('\u{2019}'), "U+2019");
        assert_eq!(code_point('\u{A0}'), "U+00A0");
        assert_eq!(code_point('\u{1F600}'), "U+1F600");
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Bodies mixing GSM-7 text (extension characters too), characters the table
        /// replaces, and characters that keep a message UCS-2.
        fn body() -> impl Strategy<Value = String> {
            let mut pool: Vec<char> = "aZ09 .,!?'\"-\n\r@\u{00E9}\u{00DF}\u{0394}{}[]~^|\\\u{20AC}".chars().collect();
            pool.extend(TRANSLITERATIONS.iter().map(|&(c, _)| c));
            pool.extend(['\u{1F600}', '\u{1F3FD}', '\u{FE0F}', '\u{03B1}', '\u{0436}', '\u{00E1}', '\u{4E2D}']);
            let weighted = prop_oneof![
                8 => prop::sample::select(vec!['a', 'b', ' ', 'e', '1']),
                4 => prop::sample::select(pool),
            ];
            prop::collection::vec(weighted, 0..400).prop_map(|cs| cs.into_iter().collect())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn a_rewrite_is_gsm7_and_never_costs_more(body in body()) {
                if let Some(t) = transliterate(&body) {
                    prop_assert_ne!(&t.body, &body);
                    prop_assert_eq!(segment(&t.body).encoding, SmsEncoding::Gsm7);
                    prop_assert!(segment(&t.body).segments <= segment(&body).segments);
                    prop_assert!(!t.replaced.is_empty());
                    prop_assert!(t.replaced.iter().all(|c| body.contains(*c) && !t.body.contains(*c)));
                }
            }

            #[test]
            fn gsm7_text_is_left_alone(body in "[a-zA-Z0-9 @$_!?.,;:'\"()*+/<=>#%&{}~^|\\\\\n\u{00E9}\u{20AC}\u{0394}-]{0,400}") {
                prop_assert_eq!(segment(&body).encoding, SmsEncoding::Gsm7);
                prop_assert_eq!(transliterate(&body), None);
            }
        }
    }
}
