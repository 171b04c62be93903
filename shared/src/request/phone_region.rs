//! Where a phone number is: its region, and the IANA time zone when that region keeps
//! one clock. Used to pick per-country SMS settings and, for an SMS to a recipient
//! without a `timezone`, the zone of quiet hours.
//!
//! How [`PREFIXES`] was derived (`tests::table_matches_the_metadata` derives it again
//! and prints a replacement when it differs):
//! - Regions come from libphonenumber's PhoneNumberMetadata.xml as shipped in the
//!   `phonenumber` crate (0.3.10+9.0.33), a dev-dependency only: it takes 150-400 ms to
//!   load. A calling code with one region maps to it. Regions sharing a code are told
//!   apart by their `leadingDigits`, expanded into plain prefixes (+1 876 Jamaica, +44
//!   1624 Isle of Man, +7 7 Kazakhstan). The numbers no prefix claims belong to the
//!   regions without `leadingDigits`; when there are several, they count as the code's
//!   main country: Guernsey and Jersey as GB, Cocos and Christmas Islands as AU, Mayotte
//!   as RE, Saint-Barthélemy and Saint-Martin as GP. Except +1: the United States and
//!   Canada cannot be told apart by a prefix here (libphonenumber does it with full
//!   number patterns), and a US setting or clock is wrong for a Canadian number, so
//!   those numbers have no region and no zone. [`FOLDED`] lists the regions no number
//!   resolves to.
//! - Time zones come from the tz database's zone.tab (country -> zones; tzdata 2025b
//!   on the machine that generated it): a region gets its zone when it has one, or
//!   several whose clocks agree from 2026 to 2036 in jiff's bundled tzdb (2026f), taking
//!   the first listed (Germany's Berlin and Busingen, Argentina's twelve, Kazakhstan's
//!   seven). The numbers of several regions share a zone only when all their clocks
//!   agree: the UK, Guernsey and Jersey do (Europe/London); Réunion and Mayotte, an hour
//!   apart, do not. Regions with several clocks (the US, Canada, Australia, Brazil,
//!   Russia...) get none.
//!
//! To regenerate: update the `phonenumber` dev-dependency or the machine's tzdata
//! (/usr/share/zoneinfo/zone.tab), run `cargo test -p herald --lib phone_region`, and
//! replace the tables with what the failing test prints (then update the versions
//! above and [`tests::TZDATA_VERSION`]).

/// (digits after `+`, region, IANA zone). The longest listed prefix of a number
/// decides; a number no entry starts with has neither. Sorted by prefix.
const PREFIXES: &[(&str, Option<&str>, Option<&str>)] = &[
    ("1242", Some("BS"), Some("America/Nassau")),
    ("1246", Some("BB"), Some("America/Barbados")),
    ("1264", Some("AI"), Some("America/Anguilla")),
    ("1268", Some("AG"), Some("America/Antigua")),
    ("1284", Some("VG"), Some("America/Tortola")),
    ("1340", Some("VI"), Some("America/St_Thomas")),
    ("1345", Some("KY"), Some("America/Cayman")),
    ("1441", Some("BM"), Some("Atlantic/Bermuda")),
    ("1473", Some("GD"), Some("America/Grenada")),
    ("1649", Some("TC"), Some("America/Grand_Turk")),
    ("1658", Some("JM"), Some("America/Jamaica")),
    ("1664", Some("MS"), Some("America/Montserrat")),
    ("1670", Some("MP"), Some("Pacific/Saipan")),
    ("1671", Some("GU"), Some("Pacific/Guam")),
    ("1684", Some("AS"), Some("Pacific/Pago_Pago")),
    ("1721", Some("SX"), Some("America/Lower_Princes")),
    ("1758", Some("LC"), Some("America/St_Lucia")),
    ("1767", Some("DM"), Some("America/Dominica")),
    ("1784", Some("VC"), Some("America/St_Vincent")),
    ("1787", Some("PR"), Some("America/Puerto_Rico")),
    ("18001", Some("DO"), Some("America/Santo_Domingo")),
    ("1809", Some("DO"), Some("America/Santo_Domingo")),
    ("1829", Some("DO"), Some("America/Santo_Domingo")),
    ("1849", Some("DO"), Some("America/Santo_Domingo")),
    ("1868", Some("TT"), Some("America/Port_of_Spain")),
    ("1869", Some("KN"), Some("America/St_Kitts")),
    ("1876", Some("JM"), Some("America/Jamaica")),
    ("1939", Some("PR"), Some("America/Puerto_Rico")),
    ("20", Some("EG"), Some("Africa/Cairo")),
    ("211", Some("SS"), Some("Africa/Juba")),
    ("212", Some("EH"), Some("Africa/El_Aaiun")),
    ("2125", Some("MA"), Some("Africa/Casablanca")),
    ("2126", Some("MA"), Some("Africa/Casablanca")),
    ("2127", Some("MA"), Some("Africa/Casablanca")),
    ("2128", Some("MA"), Some("Africa/Casablanca")),
    ("213", Some("DZ"), Some("Africa/Algiers")),
    ("216", Some("TN"), Some("Africa/Tunis")),
    ("218", Some("LY"), Some("Africa/Tripoli")),
    ("220", Some("GM"), Some("Africa/Banjul")),
    ("221", Some("SN"), Some("Africa/Dakar")),
    ("222", Some("MR"), Some("Africa/Nouakchott")),
    ("223", Some("ML"), Some("Africa/Bamako")),
    ("224", Some("GN"), Some("Africa/Conakry")),
    ("225", Some("CI"), Some("Africa/Abidjan")),
    ("226", Some("BF"), Some("Africa/Ouagadougou")),
    ("227", Some("NE"), Some("Africa/Niamey")),
    ("228", Some("TG"), Some("Africa/Lome")),
    ("229", Some("BJ"), Some("Africa/Porto-Novo")),
    ("230", Some("MU"), Some("Indian/Mauritius")),
    ("231", Some("LR"), Some("Africa/Monrovia")),
    ("232", Some("SL"), Some("Africa/Freetown")),
    ("233", Some("GH"), Some("Africa/Accra")),
    ("234", Some("NG"), Some("Africa/Lagos")),
    ("235", Some("TD"), Some("Africa/Ndjamena")),
    ("236", Some("CF"), Some("Africa/Bangui")),
    ("237", Some("CM"), Some("Africa/Douala")),
    ("238", Some("CV"), Some("Atlantic/Cape_Verde")),
    ("239", Some("ST"), Some("Africa/Sao_Tome")),
    ("240", Some("GQ"), Some("Africa/Malabo")),
    ("241", Some("GA"), Some("Africa/Libreville")),
    ("242", Some("CG"), Some("Africa/Brazzaville")),
    ("243", Some("CD"), None),
    ("244", Some("AO"), Some("Africa/Luanda")),
    ("245", Some("GW"), Some("Africa/Bissau")),
    ("246", Some("IO"), Some("Indian/Chagos")),
    ("247", Some("AC"), None),
    ("248", Some("SC"), Some("Indian/Mahe")),
    ("249", Some("SD"), Some("Africa/Khartoum")),
    ("250", Some("RW"), Some("Africa/Kigali")),
    ("251", Some("ET"), Some("Africa/Addis_Ababa")),
    ("252", Some("SO"), Some("Africa/Mogadishu")),
    ("253", Some("DJ"), Some("Africa/Djibouti")),
    ("254", Some("KE"), Some("Africa/Nairobi")),
    ("255", Some("TZ"), Some("Africa/Dar_es_Salaam")),
    ("256", Some("UG"), Some("Africa/Kampala")),
    ("257", Some("BI"), Some("Africa/Bujumbura")),
    ("258", Some("MZ"), Some("Africa/Maputo")),
    ("260", Some("ZM"), Some("Africa/Lusaka")),
    ("261", Some("MG"), Some("Indian/Antananarivo")),
    ("262", Some("RE"), None),
    ("263", Some("ZW"), Some("Africa/Harare")),
    ("264", Some("NA"), Some("Africa/Windhoek")),
    ("265", Some("MW"), Some("Africa/Blantyre")),
    ("266", Some("LS"), Some("Africa/Maseru")),
    ("267", Some("BW"), Some("Africa/Gaborone")),
    ("268", Some("SZ"), Some("Africa/Mbabane")),
    ("269", Some("KM"), Some("Indian/Comoro")),
    ("27", Some("ZA"), Some("Africa/Johannesburg")),
    ("290", Some("SH"), Some("Atlantic/St_Helena")),
    ("2908", Some("TA"), None),
    ("291", Some("ER"), Some("Africa/Asmara")),
    ("297", Some("AW"), Some("America/Aruba")),
    ("298", Some("FO"), Some("Atlantic/Faroe")),
    ("299", Some("GL"), None),
    ("30", Some("GR"), Some("Europe/Athens")),
    ("31", Some("NL"), Some("Europe/Amsterdam")),
    ("32", Some("BE"), Some("Europe/Brussels")),
    ("33", Some("FR"), Some("Europe/Paris")),
    ("34", Some("ES"), None),
    ("350", Some("GI"), Some("Europe/Gibraltar")),
    ("351", Some("PT"), None),
    ("352", Some("LU"), Some("Europe/Luxembourg")),
    ("353", Some("IE"), Some("Europe/Dublin")),
    ("354", Some("IS"), Some("Atlantic/Reykjavik")),
    ("355", Some("AL"), Some("Europe/Tirane")),
    ("356", Some("MT"), Some("Europe/Malta")),
    ("357", Some("CY"), Some("Asia/Nicosia")),
    ("358", Some("FI"), Some("Europe/Helsinki")),
    ("35818", Some("AX"), Some("Europe/Mariehamn")),
    ("359", Some("BG"), Some("Europe/Sofia")),
    ("36", Some("HU"), Some("Europe/Budapest")),
    ("370", Some("LT"), Some("Europe/Vilnius")),
    ("371", Some("LV"), Some("Europe/Riga")),
    ("372", Some("EE"), Some("Europe/Tallinn")),
    ("373", Some("MD"), Some("Europe/Chisinau")),
    ("374", Some("AM"), Some("Asia/Yerevan")),
    ("375", Some("BY"), Some("Europe/Minsk")),
    ("376", Some("AD"), Some("Europe/Andorra")),
    ("377", Some("MC"), Some("Europe/Monaco")),
    ("378", Some("SM"), Some("Europe/San_Marino")),
    ("380", Some("UA"), None),
    ("381", Some("RS"), Some("Europe/Belgrade")),
    ("382", Some("ME"), Some("Europe/Podgorica")),
    ("383", Some("XK"), None),
    ("385", Some("HR"), Some("Europe/Zagreb")),
    ("386", Some("SI"), Some("Europe/Ljubljana")),
    ("387", Some("BA"), Some("Europe/Sarajevo")),
    ("389", Some("MK"), Some("Europe/Skopje")),
    ("39", Some("IT"), Some("Europe/Rome")),
    ("3906698", Some("VA"), Some("Europe/Vatican")),
    ("40", Some("RO"), Some("Europe/Bucharest")),
    ("41", Some("CH"), Some("Europe/Zurich")),
    ("420", Some("CZ"), Some("Europe/Prague")),
    ("421", Some("SK"), Some("Europe/Bratislava")),
    ("423", Some("LI"), Some("Europe/Vaduz")),
    ("43", Some("AT"), Some("Europe/Vienna")),
    ("44", Some("GB"), Some("Europe/London")),
    ("441624", Some("IM"), Some("Europe/Isle_of_Man")),
    ("4474576", Some("IM"), Some("Europe/Isle_of_Man")),
    ("447524", Some("IM"), Some("Europe/Isle_of_Man")),
    ("447624", Some("IM"), Some("Europe/Isle_of_Man")),
    ("45", Some("DK"), Some("Europe/Copenhagen")),
    ("46", Some("SE"), Some("Europe/Stockholm")),
    ("47", Some("NO"), Some("Europe/Oslo")),
    ("4779", Some("SJ"), Some("Arctic/Longyearbyen")),
    ("48", Some("PL"), Some("Europe/Warsaw")),
    ("49", Some("DE"), Some("Europe/Berlin")),
    ("500", Some("FK"), Some("Atlantic/Stanley")),
    ("501", Some("BZ"), Some("America/Belize")),
    ("502", Some("GT"), Some("America/Guatemala")),
    ("503", Some("SV"), Some("America/El_Salvador")),
    ("504", Some("HN"), Some("America/Tegucigalpa")),
    ("505", Some("NI"), Some("America/Managua")),
    ("506", Some("CR"), Some("America/Costa_Rica")),
    ("507", Some("PA"), Some("America/Panama")),
    ("508", Some("PM"), Some("America/Miquelon")),
    ("509", Some("HT"), Some("America/Port-au-Prince")),
    ("51", Some("PE"), Some("America/Lima")),
    ("52", Some("MX"), None),
    ("53", Some("CU"), Some("America/Havana")),
    ("54", Some("AR"), Some("America/Argentina/Buenos_Aires")),
    ("55", Some("BR"), None),
    ("56", Some("CL"), None),
    ("57", Some("CO"), Some("America/Bogota")),
    ("58", Some("VE"), Some("America/Caracas")),
    ("590", Some("GP"), Some("America/Guadeloupe")),
    ("591", Some("BO"), Some("America/La_Paz")),
    ("592", Some("GY"), Some("America/Guyana")),
    ("593", Some("EC"), None),
    ("594", Some("GF"), Some("America/Cayenne")),
    ("595", Some("PY"), Some("America/Asuncion")),
    ("596", Some("MQ"), Some("America/Martinique")),
    ("597", Some("SR"), Some("America/Paramaribo")),
    ("598", Some("UY"), Some("America/Montevideo")),
    ("599", Some("CW"), Some("America/Curacao")),
    ("5993", Some("BQ"), Some("America/Kralendijk")),
    ("5994", Some("BQ"), Some("America/Kralendijk")),
    ("5997", Some("BQ"), Some("America/Kralendijk")),
    ("60", Some("MY"), Some("Asia/Kuala_Lumpur")),
    ("61", Some("AU"), None),
    ("62", Some("ID"), None),
    ("63", Some("PH"), Some("Asia/Manila")),
    ("64", Some("NZ"), None),
    ("65", Some("SG"), Some("Asia/Singapore")),
    ("66", Some("TH"), Some("Asia/Bangkok")),
    ("670", Some("TL"), Some("Asia/Dili")),
    ("672", Some("NF"), Some("Pacific/Norfolk")),
    ("673", Some("BN"), Some("Asia/Brunei")),
    ("674", Some("NR"), Some("Pacific/Nauru")),
    ("675", Some("PG"), None),
    ("676", Some("TO"), Some("Pacific/Tongatapu")),
    ("677", Some("SB"), Some("Pacific/Guadalcanal")),
    ("678", Some("VU"), Some("Pacific/Efate")),
    ("679", Some("FJ"), Some("Pacific/Fiji")),
    ("680", Some("PW"), Some("Pacific/Palau")),
    ("681", Some("WF"), Some("Pacific/Wallis")),
    ("682", Some("CK"), Some("Pacific/Rarotonga")),
    ("683", Some("NU"), Some("Pacific/Niue")),
    ("685", Some("WS"), Some("Pacific/Apia")),
    ("686", Some("KI"), None),
    ("687", Some("NC"), Some("Pacific/Noumea")),
    ("688", Some("TV"), Some("Pacific/Funafuti")),
    ("689", Some("PF"), None),
    ("690", Some("TK"), Some("Pacific/Fakaofo")),
    ("691", Some("FM"), None),
    ("692", Some("MH"), Some("Pacific/Majuro")),
    ("7", Some("RU"), None),
    ("77", Some("KZ"), Some("Asia/Almaty")),
    ("81", Some("JP"), Some("Asia/Tokyo")),
    ("82", Some("KR"), Some("Asia/Seoul")),
    ("84", Some("VN"), Some("Asia/Ho_Chi_Minh")),
    ("850", Some("KP"), Some("Asia/Pyongyang")),
    ("852", Some("HK"), Some("Asia/Hong_Kong")),
    ("853", Some("MO"), Some("Asia/Macau")),
    ("855", Some("KH"), Some("Asia/Phnom_Penh")),
    ("856", Some("LA"), Some("Asia/Vientiane")),
    ("86", Some("CN"), None),
    ("880", Some("BD"), Some("Asia/Dhaka")),
    ("886", Some("TW"), Some("Asia/Taipei")),
    ("90", Some("TR"), Some("Europe/Istanbul")),
    ("91", Some("IN"), Some("Asia/Kolkata")),
    ("92", Some("PK"), Some("Asia/Karachi")),
    ("93", Some("AF"), Some("Asia/Kabul")),
    ("94", Some("LK"), Some("Asia/Colombo")),
    ("95", Some("MM"), Some("Asia/Yangon")),
    ("960", Some("MV"), Some("Indian/Maldives")),
    ("961", Some("LB"), Some("Asia/Beirut")),
    ("962", Some("JO"), Some("Asia/Amman")),
    ("963", Some("SY"), Some("Asia/Damascus")),
    ("964", Some("IQ"), Some("Asia/Baghdad")),
    ("965", Some("KW"), Some("Asia/Kuwait")),
    ("966", Some("SA"), Some("Asia/Riyadh")),
    ("967", Some("YE"), Some("Asia/Aden")),
    ("968", Some("OM"), Some("Asia/Muscat")),
    ("970", Some("PS"), Some("Asia/Gaza")),
    ("971", Some("AE"), Some("Asia/Dubai")),
    ("972", Some("IL"), Some("Asia/Jerusalem")),
    ("973", Some("BH"), Some("Asia/Bahrain")),
    ("974", Some("QA"), Some("Asia/Qatar")),
    ("975", Some("BT"), Some("Asia/Thimphu")),
    ("976", Some("MN"), None),
    ("977", Some("NP"), Some("Asia/Kathmandu")),
    ("98", Some("IR"), Some("Asia/Tehran")),
    ("992", Some("TJ"), Some("Asia/Dushanbe")),
    ("993", Some("TM"), Some("Asia/Ashgabat")),
    ("994", Some("AZ"), Some("Asia/Baku")),
    ("995", Some("GE"), Some("Asia/Tbilisi")),
    ("996", Some("KG"), Some("Asia/Bishkek")),
    ("998", Some("UZ"), Some("Asia/Samarkand")),
];

/// Regions no number resolves to, with their calling code and the region their numbers
/// count as (none: the numbers have no region).
const FOLDED: &[(&str, u16, Option<&str>)] = &[
    ("BL", 590, Some("GP")),
    ("CA", 1, None),
    ("CC", 61, Some("AU")),
    ("CX", 61, Some("AU")),
    ("GG", 44, Some("GB")),
    ("JE", 44, Some("GB")),
    ("MF", 590, Some("GP")),
    ("US", 1, None),
    ("YT", 262, Some("RE")),
];

/// The longest prefix of `digits` (an E.164 number without `+`) that the table lists.
fn entry(digits: &str) -> Option<&'static (&'static str, Option<&'static str>, Option<&'static str>)> {
    (1..=digits.len().min(MAX_PREFIX)).rev().find_map(|len| {
        let prefix = digits.get(..len)?;
        PREFIXES.binary_search_by_key(&prefix, |&(p, _, _)| p).ok().map(|at| &PREFIXES[at])
    })
}

/// The longest prefix in [`PREFIXES`]: a 3-digit code and 5 leading digits.
const MAX_PREFIX: usize = 8;

/// The region of a number (ISO 3166-1 alpha-2 as libphonenumber names regions).
pub(crate) fn region_of(digits: &str) -> Option<&'static str> {
    entry(digits).and_then(|&(_, region, _)| region)
}

/// The IANA time zone of a number, when its region keeps one clock.
pub(crate) fn time_zone_of(digits: &str) -> Option<&'static str> {
    entry(digits).and_then(|&(_, _, zone)| zone)
}

/// Whether some number resolves to `region`; if not, why not (for configuration errors).
pub fn check_region(region: &str) -> Result<(), String> {
    if PREFIXES.iter().any(|&(_, r, _)| r == Some(region)) {
        return Ok(());
    }
    match FOLDED.iter().find(|&&(r, _, _)| r == region) {
        Some((_, code, Some(main))) => Err(format!(
            "{region} numbers cannot be told apart from other +{code} numbers and count as {main}: key them \"{main}\" or \"+{code}\""
        )),
        Some((_, code, None)) => Err(format!(
            "{region} numbers cannot be told apart from other +{code} numbers by their prefix: key them \"+{code}\""
        )),
        None => Err("not a region a phone number can be placed in: use an ISO 3166-1 alpha-2 code such as \"GB\", or a calling code such as \"+44\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::request::address::is_calling_code;

    /// The tzdata release whose zone.tab the tables were derived from.
    pub(super) const TZDATA_VERSION: &str = "2025b";
    const ZONEINFO: &str = "/usr/share/zoneinfo";

    #[test]
    fn tables_are_sorted_and_prefix_lookup_takes_the_longest() {
        assert!(PREFIXES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(PREFIXES.iter().all(|&(p, r, z)| (1..=MAX_PREFIX).contains(&p.len()) && (r.is_some() || z.is_some())));
        for &(p, _, _) in PREFIXES {
            let code = (1..=3.min(p.len())).find_map(|len| p[..len].parse().ok().filter(|&c| is_calling_code(c)));
            assert!(code.is_some(), "+{p} starts with no assigned calling code");
        }
        assert_eq!(region_of("18765550123"), Some("JM"));
        assert_eq!(time_zone_of("18765550123"), Some("America/Jamaica"));
        assert_eq!(region_of("14155550123"), None, "US or Canada");
        assert_eq!(time_zone_of("14155550123"), None);
        assert_eq!(region_of("447700900123"), Some("GB"));
        assert_eq!(time_zone_of("447700900123"), Some("Europe/London"));
        assert_eq!(region_of("447624123456"), Some("IM"));
        assert_eq!(time_zone_of("4915123456789"), Some("Europe/Berlin"));
        assert_eq!(time_zone_of("61412345678"), None, "Australia keeps several clocks");
        assert_eq!(region_of("61412345678"), Some("AU"));
        assert_eq!(time_zone_of("262269123456"), None, "Réunion and Mayotte are an hour apart");
        assert!(check_region("GB").is_ok() && check_region("JM").is_ok());
        assert!(check_region("US").unwrap_err().contains("\"+1\""));
        assert!(check_region("GG").unwrap_err().contains("count as GB"));
        assert!(check_region("ZZ").is_err());
        let uk = crate::request::PhoneNumber::parse("+44 7700 900123").expect("valid");
        assert_eq!((uk.region(), uk.time_zone()), (Some("GB"), Some("Europe/London")));
    }

    #[test]
    fn every_zone_is_in_the_bundled_tzdb() {
        let db = jiff::tz::TimeZoneDatabase::bundled();
        for &(prefix, _, zone) in PREFIXES {
            if let Some(zone) = zone {
                assert!(db.get(zone).is_ok(), "+{prefix}: {zone} is not in jiff's bundled tzdb");
            }
        }
    }

    /// Expands a `leadingDigits` pattern into the prefixes it matches. Only the forms
    /// the metadata uses are understood (digits, `[...]` classes with ranges, `(?:...)`
    /// groups, `|`); anything else fails the test, to be taught here.
    fn expand(pattern: &str) -> Vec<String> {
        fn alternation(c: &[char], at: &mut usize) -> Vec<String> {
            let mut all = sequence(c, at);
            while c.get(*at) == Some(&'|') {
                *at += 1;
                all.extend(sequence(c, at));
            }
            all
        }
        fn sequence(c: &[char], at: &mut usize) -> Vec<String> {
            let mut acc = vec![String::new()];
            while let Some(&ch) = c.get(*at) {
                let options: Vec<String> = match ch {
                    '|' | ')' => break,
                    '0'..='9' => {
                        *at += 1;
                        vec![ch.to_string()]
                    }
                    '[' => {
                        let end = c[*at..].iter().position(|&x| x == ']').expect("unclosed class") + *at;
                        let class = &c[*at + 1..end];
                        *at = end + 1;
                        let mut digits = Vec::new();
                        let mut i = 0;
                        while i < class.len() {
                            if class.get(i + 1) == Some(&'-') {
                                digits.extend(class[i]..=class[i + 2]);
                                i += 3;
                            } else {
                                digits.push(class[i]);
                                i += 1;
                            }
                        }
                        assert!(digits.iter().all(char::is_ascii_digit), "class {class:?}");
                        digits.into_iter().map(String::from).collect()
                    }
                    '(' => {
                        assert_eq!(c.get(*at..*at + 3), Some(&['(', '?', ':'][..]), "only (?:...) groups");
                        *at += 3;
                        let inner = alternation(c, at);
                        assert_eq!(c.get(*at), Some(&')'), "unclosed group");
                        *at += 1;
                        inner
                    }
                    other => panic!("leading digits use {other:?}: teach expand() about it"),
                };
                acc = acc.iter().flat_map(|a| options.iter().map(move |o| format!("{a}{o}"))).collect();
            }
            acc
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut at = 0;
        let out = alternation(&chars, &mut at);
        assert_eq!(at, chars.len(), "unparsed rest in {pattern:?}");
        out
    }

    #[test]
    fn leading_digits_expand_into_prefixes() {
        assert_eq!(expand("658|876"), ["658", "876"]);
        assert_eq!(expand("8001|8[024]9"), ["8001", "809", "829", "849"]);
        assert_eq!(expand("74576|(?:16|7[56])24"), ["74576", "1624", "7524", "7624"]);
        assert_eq!(expand("[02-4]"), ["0", "2", "3", "4"]);
    }

    /// A zone's UTC offsets from 2026 to 2036: equal for two zones whose clocks agree.
    fn clocks(tz: &jiff::tz::TimeZone) -> Vec<(i64, i32)> {
        let start = jiff::Timestamp::from_second(1_767_225_600).expect("2026-01-01"); // 2026-01-01T00:00:00Z
        let end = jiff::Timestamp::from_second(2_082_758_400).expect("2036-01-01"); // 2036-01-01T00:00:00Z
        let mut out = vec![(start.as_second(), tz.to_offset(start).seconds())];
        for t in tz.following(start).take_while(|t| t.timestamp() < end) {
            let offset = t.offset().seconds();
            if out.last().map(|&(_, o)| o) != Some(offset) {
                out.push((t.timestamp().as_second(), offset));
            }
        }
        out
    }

    type Entry = (Option<String>, Option<String>);
    type Folded = Vec<(String, u16, Option<String>)>;

    /// Derives both tables from the `phonenumber` crate's metadata and `zone_tab`.
    fn derive(zone_tab: &str) -> (BTreeMap<String, Entry>, Folded) {
        let db = jiff::tz::TimeZoneDatabase::bundled();
        let mut zones_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for line in zone_tab.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            if let [country, _, zone, ..] = cols[..] {
                zones_of.entry(country).or_default().push(zone);
            }
        }
        let agree = |zones: &[&str]| {
            let tz = |z: &str| db.get(z).unwrap_or_else(|_| panic!("{z} is not in the bundled tzdb"));
            let first = clocks(&tz(zones[0]));
            zones.iter().all(|z| clocks(&tz(z)) == first)
        };
        // The zone of a region that keeps one clock.
        let zone = |region: &str| -> Option<String> {
            let zones = zones_of.get(region)?;
            agree(zones).then(|| zones[0].to_owned())
        };

        let database = &phonenumber::metadata::DATABASE;
        let mut prefixes: BTreeMap<String, Entry> = BTreeMap::new();
        let mut folded = Vec::new();
        for code in 1..1000u16 {
            // "001" holds the non-geographic codes (+800, +870...): no region, no zone.
            let regions: Vec<_> =
                database.by_code(&code).unwrap_or_default().into_iter().filter(|m| m.id() != "001").collect();
            let Some(&main) = regions.iter().find(|m| m.is_main_country_for_code()).or(regions.first()) else {
                continue;
            };
            for m in &regions {
                let Some(leading) = m.leading_digits() else { continue };
                for p in expand(leading.as_str()) {
                    let previous = prefixes.insert(format!("{code}{p}"), (Some(m.id().to_owned()), zone(m.id())));
                    assert!(previous.is_none(), "+{code}{p} is claimed twice");
                }
            }
            let mut rest: Vec<_> = regions.iter().copied().filter(|m| m.leading_digits().is_none()).collect();
            if rest.is_empty() {
                rest = vec![main];
            }
            let region = match rest.len() {
                1 => Some(rest[0].id()),
                // NANP: see the module comment.
                _ if code == 1 => None,
                _ => {
                    assert!(rest.iter().any(|m| m.id() == main.id()), "+{code}: the main country has a prefix");
                    Some(main.id())
                }
            };
            for m in &rest {
                if Some(m.id()) != region {
                    folded.push((m.id().to_owned(), code, region.map(str::to_owned)));
                }
            }
            let rest_zones: Option<Vec<String>> = rest.iter().map(|m| zone(m.id())).collect();
            let shared_zone =
                rest_zones.filter(|z| agree(&z.iter().map(String::as_str).collect::<Vec<_>>())).map(|z| {
                    // Named after the region the numbers count as, when it has the zone.
                    region.and_then(zone).unwrap_or_else(|| z[0].clone())
                });
            if region.is_some() || shared_zone.is_some() {
                prefixes.insert(code.to_string(), (region.map(str::to_owned), shared_zone));
            }
        }
        folded.sort();
        // A prefix that says what a shorter one already says is left out (+47 7[0-8]).
        let mut pruned: BTreeMap<String, Entry> = BTreeMap::new();
        for (prefix, entry) in prefixes {
            let parent = (1..prefix.len()).rev().find_map(|len| pruned.get(&prefix[..len]));
            if parent != Some(&entry) {
                pruned.insert(prefix, entry);
            }
        }
        (pruned, folded)
    }

    fn tzdata_version() -> Option<String> {
        let text = std::fs::read_to_string(format!("{ZONEINFO}/tzdata.zi")).ok()?;
        text.lines().next()?.strip_prefix("# version ").map(str::to_owned)
    }

    /// Derives the tables again and fails, printing the replacement, when they differ.
    /// Without zone.tab it skips; with another tzdata release it only reports the
    /// differences (a machine's tzdata is not pinned like a crate).
    #[test]
    fn table_matches_the_metadata() {
        let Ok(zone_tab) = std::fs::read_to_string(format!("{ZONEINFO}/zone.tab")) else {
            eprintln!("skipping: {ZONEINFO}/zone.tab not found (install tzdata to check the phone region table)");
            return;
        };
        let (prefixes, folded) = derive(&zone_tab);
        let quote = |s: &Option<String>| s.as_ref().map_or("None".to_owned(), |s| format!("Some(\"{s}\")"));
        let ours: BTreeMap<String, Entry> =
            PREFIXES.iter().map(|&(p, r, z)| (p.to_owned(), (r.map(str::to_owned), z.map(str::to_owned)))).collect();
        let ours_folded: Folded = FOLDED.iter().map(|&(r, c, m)| (r.to_owned(), c, m.map(str::to_owned))).collect();
        if ours == prefixes && ours_folded == folded {
            return;
        }
        let table: String =
            prefixes.iter().map(|(p, (r, z))| format!("    (\"{p}\", {}, {}),\n", quote(r), quote(z))).collect();
        let folded_table: String =
            folded.iter().map(|(r, c, m)| format!("    (\"{r}\", {c}, {}),\n", quote(m))).collect();
        let report = format!("PREFIXES:\n{table}\nFOLDED:\n{folded_table}");
        match tzdata_version() {
            Some(v) if v == TZDATA_VERSION => {
                panic!("the phone region tables are out of date; replace them with\n{report}")
            }
            v => eprintln!(
                "notice: the phone region tables come from tzdata {TZDATA_VERSION}; this machine has {}, which derives\n{report}",
                v.as_deref().unwrap_or("an unknown release")
            ),
        }
    }
}
