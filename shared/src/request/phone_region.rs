//! Where a phone number is: its region, and the IANA time zones it may be in (one when
//! its region keeps one clock). Used to pick per-country SMS settings and, for an SMS to
//! a recipient without a `timezone`, the zones of quiet hours.
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
//!   on the machine that generated it), one per clock: zones whose clocks agree from
//!   2026 to 2036 in jiff's bundled tzdb (2026f) count once, as the first listed
//!   (Germany's Berlin and Busingen, Argentina's twelve, Kazakhstan's seven are one
//!   clock each). A number's zones are those of every region it may be in: the UK,
//!   Guernsey and Jersey share Europe/London; a +262 number may be in Réunion or
//!   Mayotte, an hour apart, and has both; a US or Canadian number has the sixteen
//!   clocks of the two countries, from America/St_Johns to Pacific/Honolulu; a +7 9
//!   number Russia's eleven. A region zone.tab does not list takes its calling code's
//!   zones (Tristan da Cunha, St Helena's); Ascension (+247) and Kosovo (+383) have
//!   none. Quiet hours hold a message to a number with several clocks until the
//!   window is open in all of them (see `crate::policy`).
//!
//! To regenerate: update the `phonenumber` dev-dependency or the machine's tzdata
//! (/usr/share/zoneinfo/zone.tab), run `cargo test -p herald --lib phone_region`, and
//! replace the tables with what the failing test prints (then update the versions
//! above and [`tests::TZDATA_VERSION`]).

/// (digits after `+`, region, IANA zones). The longest listed prefix of a number
/// decides; a number no entry starts with has neither. The zones are one per clock
/// among the regions the number may be in: one when they all keep the same time, none
/// when zone.tab lists none. Sorted by prefix.
const PREFIXES: &[(&str, Option<&str>, &[&str])] = &[
    (
        "1",
        None,
        &[
            "America/New_York",
            "America/Chicago",
            "America/Denver",
            "America/Phoenix",
            "America/Los_Angeles",
            "America/Anchorage",
            "America/Adak",
            "Pacific/Honolulu",
            "America/St_Johns",
            "America/Halifax",
            "America/Blanc-Sablon",
            "America/Atikokan",
            "America/Winnipeg",
            "America/Regina",
            "America/Edmonton",
            "America/Vancouver",
        ],
    ),
    ("1242", Some("BS"), &["America/Nassau"]),
    ("1246", Some("BB"), &["America/Barbados"]),
    ("1264", Some("AI"), &["America/Anguilla"]),
    ("1268", Some("AG"), &["America/Antigua"]),
    ("1284", Some("VG"), &["America/Tortola"]),
    ("1340", Some("VI"), &["America/St_Thomas"]),
    ("1345", Some("KY"), &["America/Cayman"]),
    ("1441", Some("BM"), &["Atlantic/Bermuda"]),
    ("1473", Some("GD"), &["America/Grenada"]),
    ("1649", Some("TC"), &["America/Grand_Turk"]),
    ("1658", Some("JM"), &["America/Jamaica"]),
    ("1664", Some("MS"), &["America/Montserrat"]),
    ("1670", Some("MP"), &["Pacific/Saipan"]),
    ("1671", Some("GU"), &["Pacific/Guam"]),
    ("1684", Some("AS"), &["Pacific/Pago_Pago"]),
    ("1721", Some("SX"), &["America/Lower_Princes"]),
    ("1758", Some("LC"), &["America/St_Lucia"]),
    ("1767", Some("DM"), &["America/Dominica"]),
    ("1784", Some("VC"), &["America/St_Vincent"]),
    ("1787", Some("PR"), &["America/Puerto_Rico"]),
    ("18001", Some("DO"), &["America/Santo_Domingo"]),
    ("1809", Some("DO"), &["America/Santo_Domingo"]),
    ("1829", Some("DO"), &["America/Santo_Domingo"]),
    ("1849", Some("DO"), &["America/Santo_Domingo"]),
    ("1868", Some("TT"), &["America/Port_of_Spain"]),
    ("1869", Some("KN"), &["America/St_Kitts"]),
    ("1876", Some("JM"), &["America/Jamaica"]),
    ("1939", Some("PR"), &["America/Puerto_Rico"]),
    ("20", Some("EG"), &["Africa/Cairo"]),
    ("211", Some("SS"), &["Africa/Juba"]),
    ("212", Some("EH"), &["Africa/El_Aaiun"]),
    ("2125", Some("MA"), &["Africa/Casablanca"]),
    ("2126", Some("MA"), &["Africa/Casablanca"]),
    ("2127", Some("MA"), &["Africa/Casablanca"]),
    ("2128", Some("MA"), &["Africa/Casablanca"]),
    ("213", Some("DZ"), &["Africa/Algiers"]),
    ("216", Some("TN"), &["Africa/Tunis"]),
    ("218", Some("LY"), &["Africa/Tripoli"]),
    ("220", Some("GM"), &["Africa/Banjul"]),
    ("221", Some("SN"), &["Africa/Dakar"]),
    ("222", Some("MR"), &["Africa/Nouakchott"]),
    ("223", Some("ML"), &["Africa/Bamako"]),
    ("224", Some("GN"), &["Africa/Conakry"]),
    ("225", Some("CI"), &["Africa/Abidjan"]),
    ("226", Some("BF"), &["Africa/Ouagadougou"]),
    ("227", Some("NE"), &["Africa/Niamey"]),
    ("228", Some("TG"), &["Africa/Lome"]),
    ("229", Some("BJ"), &["Africa/Porto-Novo"]),
    ("230", Some("MU"), &["Indian/Mauritius"]),
    ("231", Some("LR"), &["Africa/Monrovia"]),
    ("232", Some("SL"), &["Africa/Freetown"]),
    ("233", Some("GH"), &["Africa/Accra"]),
    ("234", Some("NG"), &["Africa/Lagos"]),
    ("235", Some("TD"), &["Africa/Ndjamena"]),
    ("236", Some("CF"), &["Africa/Bangui"]),
    ("237", Some("CM"), &["Africa/Douala"]),
    ("238", Some("CV"), &["Atlantic/Cape_Verde"]),
    ("239", Some("ST"), &["Africa/Sao_Tome"]),
    ("240", Some("GQ"), &["Africa/Malabo"]),
    ("241", Some("GA"), &["Africa/Libreville"]),
    ("242", Some("CG"), &["Africa/Brazzaville"]),
    ("243", Some("CD"), &["Africa/Kinshasa", "Africa/Lubumbashi"]),
    ("244", Some("AO"), &["Africa/Luanda"]),
    ("245", Some("GW"), &["Africa/Bissau"]),
    ("246", Some("IO"), &["Indian/Chagos"]),
    ("247", Some("AC"), &[]),
    ("248", Some("SC"), &["Indian/Mahe"]),
    ("249", Some("SD"), &["Africa/Khartoum"]),
    ("250", Some("RW"), &["Africa/Kigali"]),
    ("251", Some("ET"), &["Africa/Addis_Ababa"]),
    ("252", Some("SO"), &["Africa/Mogadishu"]),
    ("253", Some("DJ"), &["Africa/Djibouti"]),
    ("254", Some("KE"), &["Africa/Nairobi"]),
    ("255", Some("TZ"), &["Africa/Dar_es_Salaam"]),
    ("256", Some("UG"), &["Africa/Kampala"]),
    ("257", Some("BI"), &["Africa/Bujumbura"]),
    ("258", Some("MZ"), &["Africa/Maputo"]),
    ("260", Some("ZM"), &["Africa/Lusaka"]),
    ("261", Some("MG"), &["Indian/Antananarivo"]),
    ("262", Some("RE"), &["Indian/Reunion", "Indian/Mayotte"]),
    ("263", Some("ZW"), &["Africa/Harare"]),
    ("264", Some("NA"), &["Africa/Windhoek"]),
    ("265", Some("MW"), &["Africa/Blantyre"]),
    ("266", Some("LS"), &["Africa/Maseru"]),
    ("267", Some("BW"), &["Africa/Gaborone"]),
    ("268", Some("SZ"), &["Africa/Mbabane"]),
    ("269", Some("KM"), &["Indian/Comoro"]),
    ("27", Some("ZA"), &["Africa/Johannesburg"]),
    ("290", Some("SH"), &["Atlantic/St_Helena"]),
    ("2908", Some("TA"), &["Atlantic/St_Helena"]),
    ("291", Some("ER"), &["Africa/Asmara"]),
    ("297", Some("AW"), &["America/Aruba"]),
    ("298", Some("FO"), &["Atlantic/Faroe"]),
    ("299", Some("GL"), &["America/Nuuk", "America/Danmarkshavn", "America/Thule"]),
    ("30", Some("GR"), &["Europe/Athens"]),
    ("31", Some("NL"), &["Europe/Amsterdam"]),
    ("32", Some("BE"), &["Europe/Brussels"]),
    ("33", Some("FR"), &["Europe/Paris"]),
    ("34", Some("ES"), &["Europe/Madrid", "Atlantic/Canary"]),
    ("350", Some("GI"), &["Europe/Gibraltar"]),
    ("351", Some("PT"), &["Europe/Lisbon", "Atlantic/Azores"]),
    ("352", Some("LU"), &["Europe/Luxembourg"]),
    ("353", Some("IE"), &["Europe/Dublin"]),
    ("354", Some("IS"), &["Atlantic/Reykjavik"]),
    ("355", Some("AL"), &["Europe/Tirane"]),
    ("356", Some("MT"), &["Europe/Malta"]),
    ("357", Some("CY"), &["Asia/Nicosia"]),
    ("358", Some("FI"), &["Europe/Helsinki"]),
    ("35818", Some("AX"), &["Europe/Mariehamn"]),
    ("359", Some("BG"), &["Europe/Sofia"]),
    ("36", Some("HU"), &["Europe/Budapest"]),
    ("370", Some("LT"), &["Europe/Vilnius"]),
    ("371", Some("LV"), &["Europe/Riga"]),
    ("372", Some("EE"), &["Europe/Tallinn"]),
    ("373", Some("MD"), &["Europe/Chisinau"]),
    ("374", Some("AM"), &["Asia/Yerevan"]),
    ("375", Some("BY"), &["Europe/Minsk"]),
    ("376", Some("AD"), &["Europe/Andorra"]),
    ("377", Some("MC"), &["Europe/Monaco"]),
    ("378", Some("SM"), &["Europe/San_Marino"]),
    ("380", Some("UA"), &["Europe/Simferopol", "Europe/Kyiv"]),
    ("381", Some("RS"), &["Europe/Belgrade"]),
    ("382", Some("ME"), &["Europe/Podgorica"]),
    ("383", Some("XK"), &[]),
    ("385", Some("HR"), &["Europe/Zagreb"]),
    ("386", Some("SI"), &["Europe/Ljubljana"]),
    ("387", Some("BA"), &["Europe/Sarajevo"]),
    ("389", Some("MK"), &["Europe/Skopje"]),
    ("39", Some("IT"), &["Europe/Rome"]),
    ("3906698", Some("VA"), &["Europe/Vatican"]),
    ("40", Some("RO"), &["Europe/Bucharest"]),
    ("41", Some("CH"), &["Europe/Zurich"]),
    ("420", Some("CZ"), &["Europe/Prague"]),
    ("421", Some("SK"), &["Europe/Bratislava"]),
    ("423", Some("LI"), &["Europe/Vaduz"]),
    ("43", Some("AT"), &["Europe/Vienna"]),
    ("44", Some("GB"), &["Europe/London"]),
    ("441624", Some("IM"), &["Europe/Isle_of_Man"]),
    ("4474576", Some("IM"), &["Europe/Isle_of_Man"]),
    ("447524", Some("IM"), &["Europe/Isle_of_Man"]),
    ("447624", Some("IM"), &["Europe/Isle_of_Man"]),
    ("45", Some("DK"), &["Europe/Copenhagen"]),
    ("46", Some("SE"), &["Europe/Stockholm"]),
    ("47", Some("NO"), &["Europe/Oslo"]),
    ("4779", Some("SJ"), &["Arctic/Longyearbyen"]),
    ("48", Some("PL"), &["Europe/Warsaw"]),
    ("49", Some("DE"), &["Europe/Berlin"]),
    ("500", Some("FK"), &["Atlantic/Stanley"]),
    ("501", Some("BZ"), &["America/Belize"]),
    ("502", Some("GT"), &["America/Guatemala"]),
    ("503", Some("SV"), &["America/El_Salvador"]),
    ("504", Some("HN"), &["America/Tegucigalpa"]),
    ("505", Some("NI"), &["America/Managua"]),
    ("506", Some("CR"), &["America/Costa_Rica"]),
    ("507", Some("PA"), &["America/Panama"]),
    ("508", Some("PM"), &["America/Miquelon"]),
    ("509", Some("HT"), &["America/Port-au-Prince"]),
    ("51", Some("PE"), &["America/Lima"]),
    (
        "52",
        Some("MX"),
        &[
            "America/Mexico_City",
            "America/Cancun",
            "America/Matamoros",
            "America/Ciudad_Juarez",
            "America/Mazatlan",
            "America/Tijuana",
        ],
    ),
    ("53", Some("CU"), &["America/Havana"]),
    ("54", Some("AR"), &["America/Argentina/Buenos_Aires"]),
    ("55", Some("BR"), &["America/Noronha", "America/Belem", "America/Campo_Grande", "America/Eirunepe"]),
    ("56", Some("CL"), &["America/Santiago", "America/Coyhaique", "Pacific/Easter"]),
    ("57", Some("CO"), &["America/Bogota"]),
    ("58", Some("VE"), &["America/Caracas"]),
    ("590", Some("GP"), &["America/Guadeloupe"]),
    ("591", Some("BO"), &["America/La_Paz"]),
    ("592", Some("GY"), &["America/Guyana"]),
    ("593", Some("EC"), &["America/Guayaquil", "Pacific/Galapagos"]),
    ("594", Some("GF"), &["America/Cayenne"]),
    ("595", Some("PY"), &["America/Asuncion"]),
    ("596", Some("MQ"), &["America/Martinique"]),
    ("597", Some("SR"), &["America/Paramaribo"]),
    ("598", Some("UY"), &["America/Montevideo"]),
    ("599", Some("CW"), &["America/Curacao"]),
    ("5993", Some("BQ"), &["America/Kralendijk"]),
    ("5994", Some("BQ"), &["America/Kralendijk"]),
    ("5997", Some("BQ"), &["America/Kralendijk"]),
    ("60", Some("MY"), &["Asia/Kuala_Lumpur"]),
    (
        "61",
        Some("AU"),
        &[
            "Australia/Lord_Howe",
            "Antarctica/Macquarie",
            "Australia/Broken_Hill",
            "Australia/Brisbane",
            "Australia/Darwin",
            "Australia/Perth",
            "Australia/Eucla",
            "Indian/Cocos",
            "Indian/Christmas",
        ],
    ),
    ("62", Some("ID"), &["Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"]),
    ("63", Some("PH"), &["Asia/Manila"]),
    ("64", Some("NZ"), &["Pacific/Auckland", "Pacific/Chatham"]),
    ("65", Some("SG"), &["Asia/Singapore"]),
    ("66", Some("TH"), &["Asia/Bangkok"]),
    ("670", Some("TL"), &["Asia/Dili"]),
    ("672", Some("NF"), &["Pacific/Norfolk"]),
    ("673", Some("BN"), &["Asia/Brunei"]),
    ("674", Some("NR"), &["Pacific/Nauru"]),
    ("675", Some("PG"), &["Pacific/Port_Moresby", "Pacific/Bougainville"]),
    ("676", Some("TO"), &["Pacific/Tongatapu"]),
    ("677", Some("SB"), &["Pacific/Guadalcanal"]),
    ("678", Some("VU"), &["Pacific/Efate"]),
    ("679", Some("FJ"), &["Pacific/Fiji"]),
    ("680", Some("PW"), &["Pacific/Palau"]),
    ("681", Some("WF"), &["Pacific/Wallis"]),
    ("682", Some("CK"), &["Pacific/Rarotonga"]),
    ("683", Some("NU"), &["Pacific/Niue"]),
    ("685", Some("WS"), &["Pacific/Apia"]),
    ("686", Some("KI"), &["Pacific/Tarawa", "Pacific/Kanton", "Pacific/Kiritimati"]),
    ("687", Some("NC"), &["Pacific/Noumea"]),
    ("688", Some("TV"), &["Pacific/Funafuti"]),
    ("689", Some("PF"), &["Pacific/Tahiti", "Pacific/Marquesas", "Pacific/Gambier"]),
    ("690", Some("TK"), &["Pacific/Fakaofo"]),
    ("691", Some("FM"), &["Pacific/Chuuk", "Pacific/Pohnpei"]),
    ("692", Some("MH"), &["Pacific/Majuro"]),
    (
        "7",
        Some("RU"),
        &[
            "Europe/Kaliningrad",
            "Europe/Moscow",
            "Europe/Astrakhan",
            "Asia/Yekaterinburg",
            "Asia/Omsk",
            "Asia/Novosibirsk",
            "Asia/Irkutsk",
            "Asia/Chita",
            "Asia/Vladivostok",
            "Asia/Magadan",
            "Asia/Kamchatka",
        ],
    ),
    ("77", Some("KZ"), &["Asia/Almaty"]),
    ("81", Some("JP"), &["Asia/Tokyo"]),
    ("82", Some("KR"), &["Asia/Seoul"]),
    ("84", Some("VN"), &["Asia/Ho_Chi_Minh"]),
    ("850", Some("KP"), &["Asia/Pyongyang"]),
    ("852", Some("HK"), &["Asia/Hong_Kong"]),
    ("853", Some("MO"), &["Asia/Macau"]),
    ("855", Some("KH"), &["Asia/Phnom_Penh"]),
    ("856", Some("LA"), &["Asia/Vientiane"]),
    ("86", Some("CN"), &["Asia/Shanghai", "Asia/Urumqi"]),
    ("880", Some("BD"), &["Asia/Dhaka"]),
    ("886", Some("TW"), &["Asia/Taipei"]),
    ("90", Some("TR"), &["Europe/Istanbul"]),
    ("91", Some("IN"), &["Asia/Kolkata"]),
    ("92", Some("PK"), &["Asia/Karachi"]),
    ("93", Some("AF"), &["Asia/Kabul"]),
    ("94", Some("LK"), &["Asia/Colombo"]),
    ("95", Some("MM"), &["Asia/Yangon"]),
    ("960", Some("MV"), &["Indian/Maldives"]),
    ("961", Some("LB"), &["Asia/Beirut"]),
    ("962", Some("JO"), &["Asia/Amman"]),
    ("963", Some("SY"), &["Asia/Damascus"]),
    ("964", Some("IQ"), &["Asia/Baghdad"]),
    ("965", Some("KW"), &["Asia/Kuwait"]),
    ("966", Some("SA"), &["Asia/Riyadh"]),
    ("967", Some("YE"), &["Asia/Aden"]),
    ("968", Some("OM"), &["Asia/Muscat"]),
    ("970", Some("PS"), &["Asia/Gaza"]),
    ("971", Some("AE"), &["Asia/Dubai"]),
    ("972", Some("IL"), &["Asia/Jerusalem"]),
    ("973", Some("BH"), &["Asia/Bahrain"]),
    ("974", Some("QA"), &["Asia/Qatar"]),
    ("975", Some("BT"), &["Asia/Thimphu"]),
    ("976", Some("MN"), &["Asia/Ulaanbaatar", "Asia/Hovd"]),
    ("977", Some("NP"), &["Asia/Kathmandu"]),
    ("98", Some("IR"), &["Asia/Tehran"]),
    ("992", Some("TJ"), &["Asia/Dushanbe"]),
    ("993", Some("TM"), &["Asia/Ashgabat"]),
    ("994", Some("AZ"), &["Asia/Baku"]),
    ("995", Some("GE"), &["Asia/Tbilisi"]),
    ("996", Some("KG"), &["Asia/Bishkek"]),
    ("998", Some("UZ"), &["Asia/Samarkand"]),
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
fn entry(digits: &str) -> Option<&'static (&'static str, Option<&'static str>, &'static [&'static str])> {
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

/// The IANA time zone of a number, when the regions it may be in keep one clock.
pub(crate) fn time_zone_of(digits: &str) -> Option<&'static str> {
    match time_zones_of(digits) {
        &[zone] => Some(zone),
        _ => None,
    }
}

/// The IANA time zones a number may be in, one per clock: one when its region keeps
/// one clock, several for a country with several (+1 415: from St. John's to Honolulu;
/// +7 9: from Kaliningrad to Kamchatka), none when the tz database has no zone for it.
pub(crate) fn time_zones_of(digits: &str) -> &'static [&'static str] {
    entry(digits).map_or(&[], |&(_, _, zones)| zones)
}

/// Every entry whose numbers may be in several clocks: (prefix, region, zones).
pub(crate) fn several_clocks() -> impl Iterator<Item = (&'static str, Option<&'static str>, &'static [&'static str])> {
    PREFIXES.iter().copied().filter(|&(_, _, zones)| zones.len() > 1)
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
        assert!(
            PREFIXES.iter().all(|&(p, r, z)| (1..=MAX_PREFIX).contains(&p.len()) && (r.is_some() || !z.is_empty()))
        );
        for &(p, _, _) in PREFIXES {
            let code = (1..=3.min(p.len())).find_map(|len| p[..len].parse().ok().filter(|&c| is_calling_code(c)));
            assert!(code.is_some(), "+{p} starts with no assigned calling code");
        }
        assert_eq!(region_of("18765550123"), Some("JM"));
        assert_eq!(time_zone_of("18765550123"), Some("America/Jamaica"));
        assert_eq!(region_of("14155550123"), None, "US or Canada");
        assert_eq!(time_zone_of("14155550123"), None);
        let us_ca = time_zones_of("14155550123");
        assert!(us_ca.len() > 1 && us_ca.contains(&"America/St_Johns") && us_ca.contains(&"Pacific/Honolulu"));
        assert!(us_ca.contains(&"America/Los_Angeles") && us_ca.contains(&"America/New_York"));
        assert_eq!(time_zones_of("18765550123"), ["America/Jamaica"], "a +1 region of its own keeps its clock");
        assert_eq!(time_zones_of("447700900123"), ["Europe/London"]);
        assert_eq!(time_zones_of("262269123456"), ["Indian/Reunion", "Indian/Mayotte"]);
        assert!(time_zones_of("38344123456").is_empty(), "Kosovo: zone.tab has no XK");
        assert!(several_clocks().any(|(p, r, _)| p == "7" && r == Some("RU")));
        assert!(several_clocks().all(|(_, _, z)| z.len() > 1));
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
        for &(prefix, _, zones) in PREFIXES {
            for zone in zones {
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

    type Entry = (Option<String>, Vec<String>);
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
        let tz = |z: &str| db.get(z).unwrap_or_else(|_| panic!("{z} is not in the bundled tzdb"));
        // One zone per clock, the first listed of each, in order.
        let distinct = |zones: Vec<&str>| -> Vec<String> {
            let mut kept: Vec<(&str, Vec<(i64, i32)>)> = Vec::new();
            for z in zones {
                let clock = clocks(&tz(z));
                if !kept.iter().any(|(_, c)| *c == clock) {
                    kept.push((z, clock));
                }
            }
            kept.into_iter().map(|(z, _)| z.to_owned()).collect()
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
            // The zones of a region; one zone.tab does not list takes its calling code's.
            let code_zones: Vec<&str> =
                regions.iter().flat_map(|m| zones_of.get(m.id()).into_iter().flatten().copied()).collect();
            let zones_of_region = |region: &str| zones_of.get(region).cloned().unwrap_or_else(|| code_zones.clone());
            for m in &regions {
                let Some(leading) = m.leading_digits() else { continue };
                for p in expand(leading.as_str()) {
                    let entry = (Some(m.id().to_owned()), distinct(zones_of_region(m.id())));
                    let previous = prefixes.insert(format!("{code}{p}"), entry);
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
            // The zones of every region the numbers may be in, those of the region they
            // count as first (its zone names the clock they share).
            rest.sort_by_key(|m| Some(m.id()) != region);
            let zones = distinct(rest.iter().flat_map(|m| zones_of_region(m.id())).collect());
            if region.is_some() || !zones.is_empty() {
                prefixes.insert(code.to_string(), (region.map(str::to_owned), zones));
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
        let list = |z: &[String]| format!("&[{}]", z.iter().map(|z| format!("\"{z}\"")).collect::<Vec<_>>().join(", "));
        let ours: BTreeMap<String, Entry> = PREFIXES
            .iter()
            .map(|&(p, r, z)| (p.to_owned(), (r.map(str::to_owned), z.iter().map(|&z| z.to_owned()).collect())))
            .collect();
        let ours_folded: Folded = FOLDED.iter().map(|&(r, c, m)| (r.to_owned(), c, m.map(str::to_owned))).collect();
        if ours == prefixes && ours_folded == folded {
            return;
        }
        let table: String =
            prefixes.iter().map(|(p, (r, z))| format!("    (\"{p}\", {}, {}),\n", quote(r), list(z))).collect();
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
