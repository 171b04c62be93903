use serde_json::json;

use super::*;

fn base() -> serde_json::Value {
    json!({
        "id": "req-1",
        "channel": "email",
        "category": "Marketing",
        "recipient": {"id": "user-1", "email": "ada@example.com", "locale": "fr_ca", "timezone": "Europe/Paris"},
        "template": "newsletter",
        "data": {"first_name": "Ada"},
        "metadata": {"journey_id": "j-1"}
    })
}

fn parse(v: serde_json::Value) -> Result<DeliveryRequest, RequestError> {
    DeliveryRequest::from_json(&v.to_string())
}

fn err(v: serde_json::Value) -> RequestError {
    match parse(v) {
        Ok(r) => panic!("expected an error, parsed {r:?}"),
        Err(e) => e,
    }
}

/// serde_json reads an object whose first key is its private raw-value token as the JSON
/// text in it. A request's `data` is what the producer sent: such an object stays an
/// object, the key as written (an earlier release rebuilt `data` through serde_json's
/// value reader and so replaced it, or refused the request when the text was not JSON).
#[test]
fn data_is_kept_as_sent_even_with_serde_jsons_private_keys() {
    for inner in [json!("[1,2]"), json!("{"), json!(1)] {
        let mut v = base();
        v["data"] = json!({"x": {"$serde_json::private::RawValue": inner}});
        let r = DeliveryRequest::from_json(&v.to_string()).expect("data is the producer's");
        assert_eq!(r.data["x"], json!({"$serde_json::private::RawValue": inner}));
    }
}

#[test]
fn parses_a_full_request_and_normalises() {
    let r = parse(base()).unwrap();
    assert_eq!(r.id.as_str(), "req-1");
    assert_eq!(r.channel, Channel::Email);
    assert_eq!(r.category.as_str(), "marketing");
    assert!(!r.is_transactional());
    assert_eq!(r.recipient.locale.as_ref().unwrap().as_str(), "fr-CA");
    assert_eq!(r.recipient.timezone.as_ref().unwrap().as_str(), "Europe/Paris");
    assert_eq!(r.template.name.as_str(), "newsletter");
    assert_eq!(r.template.version, None);
    assert_eq!(r.metadata["journey_id"], "j-1");
}

#[test]
fn template_may_be_an_object_with_a_version() {
    let mut v = base();
    v["template"] = json!({"name": "newsletter", "version": "3"});
    let r = parse(v).unwrap();
    assert_eq!(r.template.version.as_deref(), Some("3"));
    let mut v = base();
    v["template"] = json!({"name": "newsletter", "versoin": "3"});
    let e = err(v);
    assert_eq!(e.reason().to_string(), "invalid_request:template.versoin");
    assert!(e.message().contains("did you mean `version`"), "{e}");
}

#[test]
fn round_trips_through_json() {
    let r = parse(base()).unwrap();
    let again = DeliveryRequest::from_json(&r.to_json()).unwrap();
    assert_eq!(r, again);
}

#[test]
fn not_json_is_a_syntax_error() {
    let e = DeliveryRequest::from_json("{\"id\": ").unwrap_err();
    assert_eq!(e.reason().to_string(), "invalid_request:json");
    let e = DeliveryRequest::from_json(&format!("{} trailing", base())).unwrap_err();
    assert_eq!(e.reason().to_string(), "invalid_request:json");
}

#[test]
fn unknown_fields_are_named_with_a_suggestion() {
    let mut v = base();
    v["recipient"]["emial"] = v["recipient"]["email"].take();
    let e = err(v);
    assert_eq!(e.reason().to_string(), "invalid_request:recipient.emial");
    assert!(e.message().contains("did you mean `email`"), "{e}");

    let mut v = base();
    v["sendafter"] = json!("2026-01-01T00:00:00Z");
    let e = err(v);
    assert_eq!(e.path(), "sendafter");
    assert!(e.message().contains("send_after"), "{e}");
}

#[test]
fn missing_and_mistyped_fields_name_the_field() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("id");
    assert_eq!(err(v).reason().to_string(), "invalid_request:id");

    let mut v = base();
    v["recipient"]["id"] = json!(42);
    let e = err(v);
    assert_eq!(e.reason().to_string(), "invalid_request:recipient.id");
    assert!(e.message().contains("expected a string"), "{e}");

    let mut v = base();
    v["channel"] = json!("fax");
    let e = err(v);
    assert_eq!(e.reason().to_string(), "invalid_request:channel");
    assert!(e.message().contains("email"), "{e}");

    let mut v = base();
    v["data"] = json!([1, 2]);
    assert_eq!(err(v).reason().to_string(), "invalid_request:data");

    let mut v = base();
    v["metadata"] = json!({"n": 1});
    assert_eq!(err(v).reason().to_string(), "invalid_request:metadata.n");
}

#[test]
fn the_channel_needs_its_address() {
    let mut v = base();
    v["channel"] = json!("sms");
    let e = err(v);
    assert_eq!(e.reason().to_string(), "invalid_request:recipient.phone");
    assert!(e.message().contains("E.164"), "{e}");

    let mut v = base();
    v["channel"] = json!("push");
    assert_eq!(err(v).reason().to_string(), "invalid_request:recipient.push");

    let mut v = base();
    v["recipient"].as_object_mut().unwrap().remove("email");
    assert_eq!(err(v).reason().to_string(), "invalid_request:recipient.email");
}

#[test]
fn bad_addresses_are_rejected_without_echoing_them() {
    for bad in [
        "ada",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "ada@example..com",
        "a b@example.com",
        "ada@example.com\r\nBcc: x@y.z",
    ] {
        let mut v = base();
        v["recipient"]["email"] = json!(bad);
        let e = err(v);
        assert_eq!(e.reason().to_string(), "invalid_request:recipient.email", "{bad}");
        assert!(!e.to_string().contains("ada@"), "error must not echo the address: {e}");
    }
    for bad in ["555-0123", "+1", "+999123456789", "+1415555012", "+44 abc", "14155550123"] {
        let mut v = base();
        v["channel"] = json!("sms");
        v["recipient"]["phone"] = json!(bad);
        let e = err(v);
        assert_eq!(e.reason().to_string(), "invalid_request:recipient.phone", "{bad}: {e}");
    }
}

#[test]
fn phone_numbers_are_normalised_to_e164() {
    let mut v = base();
    v["channel"] = json!("sms");
    v["recipient"]["phone"] = json!("+1 (415) 555-0123");
    let r = parse(v).unwrap();
    assert_eq!(r.recipient.phone.unwrap().as_str(), "+14155550123");
}

#[test]
fn push_targets_are_checked_per_platform() {
    let fcm = "c".repeat(40) + ":APA91b" + &"x".repeat(100);
    let apns = "a1".repeat(32);
    let ok = [
        json!({"platform": "fcm", "token": fcm}),
        json!({"platform": "apns", "token": apns.to_uppercase()}),
        json!({"platform": "webpush", "endpoint": "https://fcm.googleapis.com/fcm/send/abc",
               "keys": {"p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
                        "auth": "tBHItJI5svbpez7KI4CCXg"}}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/shop/5b8f2c1e-0d4a-3f6b-9a7c-1e2d3c4b5a69"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/APNS_SANDBOX/shop-ios/1"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws-cn:sns:cn-north-1:123456789012:endpoint/APNS/shop/1"}),
        json!({"platform": "apns", "token": apns, "environment": "sandbox"}),
        json!({"platform": "apns", "token": apns, "environment": "production"}),
    ];
    for target in ok {
        let mut v = base();
        v["channel"] = json!("push");
        v["recipient"]["push"] = target.clone();
        let r = parse(v).unwrap_or_else(|e| panic!("{target}: {e}"));
        assert!(matches!(r.destination().unwrap(), Destination::Push(_)));
    }
    let bad = [
        json!({"platform": "fcm"}),
        json!({"platform": "fcm", "token": "short"}),
        json!({"platform": "apns", "token": "xyz"}),
        json!({"platform": "apns", "token": apns, "endpoint": "https://x"}),
        json!({"platform": "webpush", "endpoint": "http://insecure.example/x", "keys": {"p256dh": "AA", "auth": "AA"}}),
        json!({"platform": "webpush", "endpoint": "https://push.example/x", "keys": {"p256dh": "AAAA", "auth": "tBHItJI5svbpez7KI4CCXg"}}),
        json!({"platform": "sms", "token": "x"}),
        json!({"platform": "sns"}),
        json!({"platform": "apns", "token": apns, "environment": "staging"}),
        json!({"platform": "fcm", "token": fcm, "environment": "sandbox"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/ADM/app/1"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:us-east-1:123456789012:my-topic"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sqs:us-east-1:123456789012:endpoint/GCM/app/1"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:us-east-1:1234:endpoint/GCM/app/1"}),
        json!({"platform": "sns", "endpoint_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1", "token": "x"}),
        json!({"platform": "fcm", "token": fcm, "endpoint_arn": "arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/1"}),
    ];
    for target in bad {
        let mut v = base();
        v["channel"] = json!("push");
        v["recipient"]["push"] = target.clone();
        let e = err(v);
        assert!(e.path().starts_with("recipient.push"), "{target}: {e}");
    }
}

#[test]
fn scalar_fields_are_bounded() {
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("id", json!("")),
        ("id", json!("x".repeat(129))),
        ("id", json!("line\nbreak")),
        ("category", json!("has space")),
        ("template", json!("../etc/passwd")),
        ("tenant", json!("a/b")),
        ("send_after", json!("tomorrow")),
        ("expires_at", json!("2026-01-01")),
        ("schema_version", json!(2)),
    ];
    for (field, value) in cases {
        let mut v = base();
        v[field] = value.clone();
        let e = err(v);
        assert_eq!(e.path(), field, "{field}={value}: {e}");
    }
    let mut v = base();
    v["id"] = json!("x".repeat(128));
    assert!(parse(v).is_ok());
    let mut v = base();
    v["recipient"]["timezone"] = json!("Mars/Olympus");
    assert_eq!(err(v).reason().to_string(), "invalid_request:recipient.timezone");
    let mut v = base();
    v["recipient"]["locale"] = json!("english please");
    assert_eq!(err(v).reason().to_string(), "invalid_request:recipient.locale");
}

#[test]
fn send_after_must_precede_expiry() {
    let mut v = base();
    v["send_after"] = json!("2026-12-01T10:00:00Z");
    v["expires_at"] = json!("2026-12-01T09:00:00Z");
    assert_eq!(err(v).reason().to_string(), "invalid_request:send_after");
}

#[test]
fn metadata_is_limited() {
    let mut v = base();
    let big: serde_json::Map<String, serde_json::Value> = (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    v["metadata"] = serde_json::Value::Object(big);
    assert_eq!(err(v).reason().to_string(), "invalid_request:metadata");
}

#[test]
fn locale_fallbacks() {
    let l = Locale::parse("zh_hant_tw").unwrap();
    assert_eq!(l.as_str(), "zh-Hant-TW");
    assert_eq!(l.fallbacks(), vec!["zh-Hant-TW", "zh-Hant", "zh"]);
    assert_eq!(Locale::parse("EN").unwrap().fallbacks(), vec!["en"]);
}

#[test]
fn keys_are_scoped_by_tenant() {
    let a = parse(base()).unwrap();
    let mut v = base();
    v["tenant"] = json!("acme");
    let b = parse(v).unwrap();
    assert_ne!(a.idempotency_key(), b.idempotency_key());
    assert_ne!(a.recipient_key(), b.recipient_key());
    // A tenant cannot forge another tenant's key through the id.
    let t1 = TenantId::parse("a").unwrap();
    let t2 = TenantId::parse("a-1").unwrap();
    assert_ne!(RecipientKey::new(Some(&t1), "1/x"), RecipientKey::new(Some(&t2), "x"));
}

#[test]
fn raw_facts_survive_invalid_requests() {
    let mut v = base();
    v["recipient"]["email"] = json!("nope");
    let facts = RawFacts::from_json(&v.to_string());
    assert_eq!(facts.id.as_deref(), Some("req-1"));
    assert_eq!(facts.channel, Some(Channel::Email));
    assert_eq!(facts.recipient_id.as_deref(), Some("user-1"));
    assert_eq!(facts.metadata["journey_id"], "j-1");
    let facts = RawFacts::from_json("not json");
    assert!(facts.id.is_none());
}

// ------------------------------------------------------------------ hostile input

/// The whole error a receipt or log would carry.
fn error_text(v: serde_json::Value) -> String {
    let e = DeliveryRequest::from_json(&v.to_string()).expect_err("should be refused");
    format!("{} {}", e.reason(), e)
}

#[test]
fn errors_never_echo_request_values() {
    let secret_email = "someone.private@example.org";
    let phone = "+14155559876";
    let mut v = base();
    v["recipient"]["id"] = json!(secret_email);
    v["schema_version"] = json!(secret_email);
    let e = error_text(v);
    assert!(!e.contains("someone.private"), "{e}");
    let mut v = base();
    v["channel"] = json!(phone);
    let e = error_text(v);
    assert!(!e.contains("5559876") && e.contains("email, sms, push"), "{e}");
    let mut v = base();
    v["recipient"][secret_email] = json!(1);
    let e = error_text(v);
    assert!(!e.contains("someone.private") && e.contains("recipient.<key>"), "{e}");
    let mut v = base();
    v["metadata"] = json!({ secret_email: 7 });
    let e = error_text(v);
    assert!(!e.contains("someone.private"), "{e}");
    let mut v = base();
    v["recipient"]["timezone"] = json!("Private/Zone-of-someone");
    let e = error_text(v);
    assert!(!e.contains("Zone-of-someone"), "{e}");
    let mut v = base();
    v["recipient"]["locale"] = json!("secret-value-here");
    let e = error_text(v);
    assert!(!e.contains("secret-value"), "{e}");
    let mut v = base();
    v["send_after"] = json!("2026-13-45Tsecret");
    let e = error_text(v);
    assert!(!e.contains("secret"), "{e}");
}

#[test]
fn a_positional_array_is_not_a_request() {
    let e = DeliveryRequest::from_json(r#"["req-1", "email", "marketing", {"id": "u"}, "newsletter"]"#).unwrap_err();
    assert_eq!(e.reason().to_string(), "invalid_request:request");
    assert_eq!(e.message(), "expected a JSON object, got an array");
}

#[test]
fn a_key_given_twice_is_refused_anywhere() {
    let v = base().to_string();
    let twice = v.replacen("\"id\":\"req-1\"", "\"id\":\"req-1\",\"id\":\"req-2\"", 1);
    assert_ne!(twice, v);
    let e = DeliveryRequest::from_json(&twice).unwrap_err();
    assert_eq!(e.reason().to_string(), "invalid_request:json");
    let nested = v.replacen("\"first_name\":\"Ada\"", "\"first_name\":\"Ada\",\"first_name\":\"Bob\"", 1);
    assert!(DeliveryRequest::from_json(&nested).is_err());
}

#[test]
fn sizes_are_bounded_in_bytes() {
    let mut v = base();
    v["metadata"] = json!({ "k": "é".repeat(600) }); // 600 characters, 1200 bytes
    assert_eq!(err(v).reason().to_string(), "invalid_request:metadata.k");
    let mut v = base();
    let many: serde_json::Map<String, serde_json::Value> =
        (0..20).map(|i| (format!("k{i}"), json!("x".repeat(500)))).collect();
    v["metadata"] = serde_json::Value::Object(many);
    assert_eq!(err(v).reason().to_string(), "invalid_request:metadata");
    let mut v = base();
    v["data"] = json!({ "blob": "x".repeat(limits::REQUEST_BYTES) });
    assert_eq!(DeliveryRequest::from_json(&v.to_string()).unwrap_err().reason().to_string(), "invalid_request:request");
    let mut v = base();
    v["data"] = json!({ "note": "a\u{fffe}b" });
    assert_eq!(err(v).reason().to_string(), "invalid_request:data");
}

#[test]
fn the_fingerprint_ignores_key_order_and_sees_content() {
    let a = DeliveryRequest::from_json(r#"{"id":"f","channel":"email","category":"x","recipient":{"id":"u","email":"a@example.com"},"template":"t","data":{"a":1,"b":{"c":2,"d":3}}}"#).unwrap();
    let b = DeliveryRequest::from_json(r#"{"template":"t","data":{"b":{"d":3,"c":2},"a":1},"recipient":{"email":"a@example.com","id":"u"},"category":"x","channel":"email","id":"f"}"#).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    let c = DeliveryRequest::from_json(r#"{"id":"f","channel":"email","category":"x","recipient":{"id":"u","email":"a@example.com"},"template":"t","data":{"a":2}}"#).unwrap();
    assert_ne!(a.fingerprint(), c.fingerprint());
}

/// Fingerprints are stored with idempotency records: a release that computed them
/// differently would take every redelivery across the upgrade for another message
/// reusing its id. This one was computed by the first release's code.
#[test]
fn the_fingerprint_is_stable_across_releases() {
    let r = DeliveryRequest::from_json(
        r#"{"id":"f-1","channel":"email","category":"marketing","tenant":"acme",
            "recipient":{"id":"u-\u00e9","email":"a@example.com","timezone":"Europe/Paris"},
            "template":{"name":"t","version":"2"},"metadata":{"z":"1","a":"\"quoted\" \\ \u0001"},
            "data":{"n":[1,-2.5,1e3,true,null,"x\ny"],"nested":{"b":{},"a":[]},"emoji":"\ud83d\ude00","big":18446744073709551615}}"#,
    )
    .unwrap();
    assert_eq!(r.fingerprint(), "e12645ed0d101803cadfdcf18217a59a");
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::receipt::{MAX_RECEIPT_BYTES, Receipt, Status};

    /// A JSON value built from strings the test can look for afterwards.
    fn marked_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            "[a-z]{0,4}MARK[a-z@+0-9]{0,8}".prop_map(serde_json::Value::String),
            any::<i64>().prop_map(|n| json!(n)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(serde_json::Value::Null),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                // Keys an orchestrator may legitimately echo back are identifiers; the
                // ones generated here never are (an address, a phone, free text).
                prop::collection::btree_map("[a-z]{0,3}MARK[@+ ][a-z0-9]{0,6}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever replaces a field of a valid request: no panic, and the error never
        /// carries a value or a key of its own choosing.
        #[test]
        fn errors_never_echo_what_replaced_a_field(
            field in prop::sample::select(vec![
                "id", "channel", "category", "recipient", "template", "send_after", "expires_at",
                "metadata", "tenant", "schema_version", "data",
            ]),
            nested in any::<bool>(),
            value in marked_value(),
        ) {
            let mut v = base();
            if nested {
                v["recipient"][field] = value;
            } else {
                v[field] = value;
            }
            if let Err(e) = DeliveryRequest::from_json(&v.to_string()) {
                let text = format!("{} {}", e.reason(), e);
                prop_assert!(!text.contains("MARK"), "{}", text);
            }
        }

        /// The fingerprint writes `data` where it stands instead of copying the request
        /// into one JSON value: the bytes are the whole value's canonical form still.
        #[test]
        fn the_fingerprint_is_the_canonical_form_of_the_whole_request(
            data in prop::collection::btree_map("[a-z_]{0,6}", marked_value(), 0..6),
            metadata in prop::collection::btree_map("[a-z]{1,4}", "[a-z\"\\\\]{0,6}", 0..3),
            tenant in proptest::option::of("[a-z]{1,5}"),
        ) {
            let mut v = base();
            v["data"] = json!(data);
            v["metadata"] = json!(metadata);
            if let Some(t) = &tenant {
                v["tenant"] = json!(t);
            }
            let r = DeliveryRequest::from_json(&v.to_string()).expect("a valid request");
            let mut whole = Vec::new();
            super::write_canonical(&serde_json::to_value(&r).expect("to value"), &mut whole);
            let expected = crate::receipt::receipt_id(&[b"request.v1".as_slice(), &whole]);
            prop_assert_eq!(r.fingerprint(), expected);
        }

        /// `data` moved out of the value reads as the deserializer reading it in place
        /// would: the same request, or the same error, whatever `data` and its
        /// neighbours hold.
        #[test]
        fn data_moved_out_reads_as_data_read_in_place(
            data in prop_oneof![
                prop::collection::btree_map("[a-zé_]{0,6}", marked_value(), 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
                marked_value(),
            ],
            drop_data in any::<bool>(),
            field in prop::sample::select(vec!["id", "channel", "tenant", "unknown", "schema_version"]),
            value in marked_value(),
            spoil in any::<bool>(),
        ) {
            let mut v = base();
            if drop_data {
                if let Some(m) = v.as_object_mut() {
                    m.remove("data");
                }
            } else {
                v["data"] = data;
            }
            if spoil {
                v[field] = value;
            }
            let in_place = super::value_de::from_value::<DeliveryRequest>(v.clone())
                .map_err(RequestError::from_fields)
                .and_then(|r| r.validate().map(|()| r));
            let moved = DeliveryRequest::from_value(v);
            match (moved, in_place) {
                (Ok(a), Ok(b)) => {
                    prop_assert_eq!(&a, &b);
                    prop_assert_eq!(a.fingerprint(), b.fingerprint());
                }
                (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => prop_assert!(false, "moved {:?} / in place {:?}", a, b),
            }
        }

        /// Arbitrary bytes never panic the parser.
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            let _ = DeliveryRequest::from_json(&text);
        }

        /// A receipt stays within its bound whatever the input's metadata and id
        /// (values long in bytes: multi-byte characters, and past every limit).
        #[test]
        fn receipts_of_any_input_stay_bounded(
            id in "[a-zé\u{ffff}\u{1F600}]{0,300}",
            metadata in prop::collection::btree_map("[a-zé]{1,200}", "[a-zé\"\\\u{1}\u{ffff}]{0,1500}", 0..60),
            reason in "[a-z\u{1}\"]{0,2000}",
        ) {
            let raw = json!({ "id": id, "metadata": metadata }).to_string();
            let facts = RawFacts::from_json(&raw);
            let r = Receipt::for_raw(&facts, &raw, Status::Rejected, jiff::Timestamp::UNIX_EPOCH)
                .reason(crate::receipt::Reason::InvalidRequest(reason.clone()))
                .detail(&reason);
            prop_assert!(r.to_json().len() <= MAX_RECEIPT_BYTES, "{}", r.to_json().len());
        }
    }
}
