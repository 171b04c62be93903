//! Provider events: the body of one message of the provider-events queue, read into
//! the delivery events it reports and what herald must do about them (suppress an
//! address, record an SMS opt-out or opt-in). Pure: no I/O, no clock.
//!
//! Bodies read, bare or inside an SNS envelope (`{"Type":"Notification","Message":...}`,
//! what SNS puts on a queue without raw message delivery):
//! - SES event publishing (configuration-set events, `eventType`);
//! - SES identity notifications (`notificationType`: Bounce, Complaint, Delivery);
//! - SNS SMS delivery status logs (`{"notification":..,"delivery":..,"status":..}`);
//! - inbound SMS from two-way messaging (`originationNumber`, `messageBody`...).
//!
//! Email events are split per recipient the provider names (a bounce of two recipients
//! gives two events), so each event names one address, by hash only
//! (`address_sha256`). Errors repeat nothing of a body but a provider's type name, and
//! events only provider vocabulary (types, SMTP status codes, reasons with addresses
//! and numbers removed), ids, times and the clicked link.

use jiff::Timestamp;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::bounded;
use super::event::{BounceFacts, BounceType, ComplaintFacts, DeliveryEvent, EventKind, tags};
use crate::ports::SuppressionReason;
use crate::request::{Channel, EmailAddress, PhoneNumber, SuppressionKey};

type Object = Map<String, Value>;

/// One event a provider message reports, with what herald must do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    pub event: DeliveryEvent,
    pub effects: Vec<Effect>,
    /// The provider's own payload (inside any SNS envelope), for the caller's audit
    /// trail. It holds addresses and phone numbers: keep it as personal data, never log it.
    pub raw: String,
}

/// A change to herald's state that a provider event calls for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stop sending to this address: a permanent bounce or a complaint. `tenant` is the
    /// tenant the message was sent for, when its tags say.
    Suppress { key: SuppressionKey, tenant: Option<String>, reason: SuppressionReason },
    /// The phone number opted out of SMS (a STOP reply, or the carrier says so).
    OptOut { key: SuppressionKey },
    /// The phone number opted back in (a START or UNSTOP reply).
    OptIn { key: SuppressionKey },
}

/// Why a body could not be read. Never carries a value of the body (addresses, phone
/// numbers, message text), only field names and provider type names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderEventError {
    #[error("{what} is not JSON (syntax error at line {line}, column {column})")]
    NotJson { what: &'static str, line: usize, column: usize },
    #[error("{what} is JSON but not an object")]
    NotAnObject { what: &'static str },
    /// A message on the queue that reports nothing (an SNS subscription confirmation):
    /// the caller may drop it instead of dead-lettering it.
    #[error("not a provider event: {reason}")]
    NotAnEvent { reason: &'static str },
    /// A type herald does not read; `kind` is the provider's name for it.
    #[error(
        "{payload} of a type herald does not read: `{kind}` (teach receipt::provider about it, or stop publishing it)"
    )]
    UnknownType { payload: &'static str, kind: String },
    #[error("{payload} without {field}")]
    Missing { payload: &'static str, field: &'static str },
    #[error("{payload} with an unreadable {field} (expected {expected})")]
    Invalid { payload: &'static str, field: &'static str, expected: &'static str },
    #[error(
        "inbound SMS without a time of its own: read it in its SNS envelope (no raw message \
         delivery) or pass the queue message's SentTimestamp to normalise_received"
    )]
    NoTime,
    #[error(
        "a JSON object that is none of the payloads herald reads (SES event, SES notification, \
         SNS envelope, SMS delivery status, inbound SMS)"
    )]
    Unrecognised,
}

type Result<T> = std::result::Result<T, ProviderEventError>;

/// What one provider-events message reports: usually one event, one per recipient for
/// email events naming several, none for an inbound SMS that is no opt-out or opt-in
/// keyword (HELP, a conversation: the provider answers HELP itself).
pub fn normalise(body: &str) -> Result<Vec<ProviderEvent>> {
    read(body, None)
}

/// [`normalise`] for a caller that knows when the message reached the queue (its
/// `SentTimestamp`): the time of events whose payload carries none (an inbound SMS
/// delivered raw). A time in the payload or its SNS envelope still wins.
pub fn normalise_received(body: &str, received_at: Timestamp) -> Result<Vec<ProviderEvent>> {
    read(body, Some(received_at))
}

/// A clicked link as events report it: scheme, host and path, without the query
/// string or fragment (tokens and personal data live there).
pub fn link_without_query(link: &str) -> String {
    let path = link.split(['?', '#']).next().unwrap_or_default();
    // An unsubscribe token in the path (`/unsubscribe/v2.<kid>.<claims>.<mac>`) is a
    // live credential naming the person: never forwarded.
    path.split('/')
        .map(
            |segment| if segment.starts_with("v2.") && segment.matches('.').count() == 3 { "<token>" } else { segment },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// The most recipients one SES message has.
const MAX_RECIPIENTS: usize = 50;

/// Hex SHA-256 of an address as herald normalises it: the lowercased email address or
/// the E.164 phone number. Upstream finds the person by hashing its own copy the same way.
pub fn address_sha256(normalised: &str) -> String {
    Sha256::digest(normalised.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// What an inbound SMS asks for, when it is a keyword herald acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKeyword {
    OptOut,
    OptIn,
}

/// Opt-out keywords: AWS End User Messaging's required list (ARRET, CANCEL, END,
/// OPT-OUT, OPTOUT, QUIT, REMOVE, STOP, TD, UNSUBSCRIBE: the provider opts the number
/// out on these, so herald must agree), CTIA's (REVOKE, OPT OUT), and the carrier
/// usage STOPALL / STOP ALL. Generous on purpose: a missed opt-out is a compliance
/// breach, a wrong one costs a START.
const OPT_OUT_KEYWORDS: [&str; 15] = [
    "STOP",
    "STOPALL",
    "STOP ALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "OPTOUT",
    "OPT-OUT",
    "OPT OUT",
    "REVOKE",
    "REMOVE",
    "TD",
    "ARRET",
    "ARRÊT",
];

/// Opt-in keywords: only CTIA's and AWS's resubscribe words. YES and SUBSCRIBE are
/// left out: a YES usually answers a question, and undoing an opt-out on a guess is the
/// costly mistake.
const OPT_IN_KEYWORDS: [&str; 2] = ["START", "UNSTOP"];

/// The keyword an inbound SMS is, if the whole message is one: case, surrounding
/// blanks and punctuation (`Stop.`, `"STOP!"`) and repeated inner spaces do not count;
/// `stop please` is not a keyword, as the providers themselves match.
pub fn sms_keyword(body: &str) -> Option<SmsKeyword> {
    // The longest keyword is a dozen bytes: anything much longer is a conversation.
    if body.len() > 64 {
        return None;
    }
    let word = keyword_word(body);
    if OPT_OUT_KEYWORDS.contains(&word.as_str()) {
        Some(SmsKeyword::OptOut)
    } else if OPT_IN_KEYWORDS.contains(&word.as_str()) {
        Some(SmsKeyword::OptIn)
    } else {
        None
    }
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c, '¡' | '¿' | '…' | '“' | '”' | '‘' | '’' | '«' | '»' | '。' | '！' | '？' | '．')
}

fn read(body: &str, received_at: Option<Timestamp>) -> Result<Vec<ProviderEvent>> {
    let outer = json_object(body, "the message body")?;
    let Some(sns_type) = sns_envelope_type(&outer) else {
        return dispatch(&outer, body, received_at);
    };
    match sns_type {
        "Notification" => {
            let message = text(&outer, "Message")
                .ok_or(ProviderEventError::Missing { payload: "SNS notification", field: "Message (a JSON string)" })?;
            let inner = json_object(message, "the SNS notification's Message")?;
            // SNS's publish time: the best time an inbound SMS gets (its payload has none).
            let published = match text(&outer, "Timestamp") {
                Some(t) => Some(t.parse::<Timestamp>().map_err(|_| ProviderEventError::Invalid {
                    payload: "SNS notification",
                    field: "Timestamp",
                    expected: "an RFC 3339 time",
                })?),
                None => None,
            };
            dispatch(&inner, message, published.or(received_at))
        }
        "SubscriptionConfirmation" => Err(ProviderEventError::NotAnEvent {
            reason: "an SNS SubscriptionConfirmation (a topic asks to confirm a subscription to the queue; \
                     confirm it with the SNS API if it is wanted)",
        }),
        "UnsubscribeConfirmation" => Err(ProviderEventError::NotAnEvent {
            reason: "an SNS UnsubscribeConfirmation (a subscription of the queue was removed)",
        }),
        other => Err(ProviderEventError::UnknownType { payload: "SNS message", kind: provider_word(other) }),
    }
}

/// The SNS `Type` of an envelope; None for a bare payload (none of them has a `Type`
/// beside a `TopicArn` or a `Message`).
fn sns_envelope_type(v: &Object) -> Option<&str> {
    let sns_type = v.get("Type")?.as_str()?;
    (v.contains_key("TopicArn") || v.contains_key("Message")).then_some(sns_type)
}

fn dispatch(v: &Object, raw: &str, time: Option<Timestamp>) -> Result<Vec<ProviderEvent>> {
    if let Some(t) = v.get("eventType") {
        let t = t.as_str().ok_or(invalid("SES event", "eventType", "a string"))?;
        return ses(v, raw, "SES event", t);
    }
    if let Some(t) = v.get("notificationType") {
        let t = t.as_str().ok_or(invalid("SES notification", "notificationType", "a string"))?;
        return ses(v, raw, "SES notification", t);
    }
    if v.contains_key("notification") && v.contains_key("status") {
        return sms_status(v, raw);
    }
    if v.contains_key("originationNumber") && v.contains_key("messageBody") {
        return inbound_sms(v, raw, time);
    }
    Err(ProviderEventError::Unrecognised)
}

// ---------------------------------------------------------------------------- SES

/// How one SES type reads: herald's kind and the object that holds its details.
struct SesType {
    kind: EventKind,
    section: Option<&'static str>,
}

fn ses_type(payload: &'static str, name: &str) -> Result<SesType> {
    let (kind, section) = match name {
        "Send" => (EventKind::ProviderAccepted, Some("send")),
        "Delivery" => (EventKind::Delivered, Some("delivery")),
        "Bounce" => (EventKind::Bounced, Some("bounce")),
        "Complaint" => (EventKind::Complained, Some("complaint")),
        "Reject" => (EventKind::RejectedByProvider, Some("reject")),
        "Open" => (EventKind::Opened, Some("open")),
        "Click" => (EventKind::Clicked, Some("click")),
        "Rendering Failure" => (EventKind::RejectedByProvider, Some("failure")),
        "DeliveryDelay" => (EventKind::DeliveryDelayed, Some("deliveryDelay")),
        "Subscription" => (EventKind::SubscriptionChanged, Some("subscription")),
        // What SES publishes once when a topic is set up for notifications.
        "AmazonSnsSubscriptionSucceeded" => {
            return Err(ProviderEventError::NotAnEvent {
                reason: "SES confirming that a topic now receives its notifications",
            });
        }
        other => return Err(ProviderEventError::UnknownType { payload, kind: provider_word(other) }),
    };
    Ok(SesType { kind, section })
}

/// One recipient an SES event is about.
#[derive(Default)]
struct Recipient<'a> {
    address: Option<&'a str>,
    /// The SMTP status code reported for it (bounces).
    status: Option<&'a str>,
}

fn ses(v: &Object, raw: &str, payload: &'static str, type_name: &str) -> Result<Vec<ProviderEvent>> {
    let SesType { kind, section } = ses_type(payload, type_name)?;
    let mail = object(v, "mail").ok_or(missing(payload, "mail"))?;
    let message_id = text(mail, "messageId").ok_or(missing(payload, "mail.messageId"))?;
    let details = section.and_then(|s| object(v, s));

    let at = match details.and_then(|d| text(d, "timestamp")) {
        Some(t) => parse_time(t).ok_or(invalid(payload, "event timestamp", "an RFC 3339 time"))?,
        None => {
            let t = text(mail, "timestamp").ok_or(missing(payload, "mail.timestamp"))?;
            parse_time(t).ok_or(invalid(payload, "mail.timestamp", "an RFC 3339 time"))?
        }
    };

    let request_id = tag(mail, tags::REQUEST_ID).and_then(tags::decode_request_id);
    let category = tag(mail, tags::CATEGORY).map(str::to_owned);
    let tenant = tag(mail, tags::TENANT).map(str::to_owned);

    let mut bounce = None;
    let mut complaint = None;
    let mut suppress = None;
    let mut link = None;
    let mut detail = None;
    // What tells this event from another of the same message: a feedback id where SES
    // gives one, else the event's own time (opens and clicks repeat), and the link.
    let mut discriminator = vec![at.to_string()];
    let recipients: Vec<Recipient> = match type_name {
        "Bounce" => {
            let d = details.ok_or(missing(payload, "bounce"))?;
            let bounce_type = match text(d, "bounceType") {
                Some("Permanent") => BounceType::Permanent,
                Some("Transient") => BounceType::Transient,
                Some("Undetermined") => BounceType::Undetermined,
                Some(_) => return Err(invalid(payload, "bounce.bounceType", "Permanent, Transient or Undetermined")),
                None => return Err(missing(payload, "bounce.bounceType")),
            };
            if bounce_type == BounceType::Permanent {
                suppress = Some(SuppressionReason::HardBounce);
            }
            bounce = Some(BounceFacts {
                bounce_type,
                bounce_subtype: text(d, "bounceSubType").map(provider_value),
                status_codes: Vec::new(),
            });
            if let Some(id) = text(d, "feedbackId") {
                discriminator = vec![id.to_owned()];
            }
            entries(d, "bouncedRecipients")
                .map(|r| Recipient { address: text(r, "emailAddress"), status: text(r, "status") })
                .collect()
        }
        "Complaint" => {
            let d = details.ok_or(missing(payload, "complaint"))?;
            let feedback_type = text(d, "complaintFeedbackType");
            // An ARF `not-spam` report says the opposite of a complaint.
            if !feedback_type.is_some_and(|f| f.eq_ignore_ascii_case("not-spam")) {
                suppress = Some(SuppressionReason::Complaint);
            }
            complaint = Some(ComplaintFacts {
                feedback_type: feedback_type.map(provider_value),
                complaint_subtype: text(d, "complaintSubType").map(provider_value),
            });
            if let Some(id) = text(d, "feedbackId") {
                discriminator = vec![id.to_owned()];
            }
            entries(d, "complainedRecipients")
                .map(|r| Recipient { address: text(r, "emailAddress"), status: None })
                .collect()
        }
        "Delivery" => details
            .map(|d| entries_str(d, "recipients").map(|a| Recipient { address: Some(a), status: None }).collect())
            .unwrap_or_default(),
        "DeliveryDelay" => {
            detail = details.and_then(|d| text(d, "delayType")).map(scrub);
            details
                .map(|d| {
                    entries(d, "delayedRecipients")
                        .map(|r| Recipient { address: text(r, "emailAddress"), status: None })
                        .collect()
                })
                .unwrap_or_default()
        }
        other => {
            match other {
                "Reject" => detail = details.and_then(|d| text(d, "reason")).map(scrub),
                // The error message can quote the rendering data: only the template's name.
                "Rendering Failure" => {
                    detail = Some(match details.and_then(|d| text(d, "templateName")) {
                        Some(name) => format!("SES could not render template {}", scrub(name)),
                        None => "SES could not render the message's template".to_owned(),
                    })
                }
                "Click" => {
                    link = details.and_then(|d| text(d, "link")).map(str::to_owned);
                    discriminator.push(link.clone().unwrap_or_default());
                }
                "Subscription" => detail = details.map(subscription_detail),
                _ => {}
            }
            Vec::new()
        }
    };

    let mut events = Vec::new();
    let mut seen = Vec::new();
    for recipient in recipients_or_destination(recipients, mail) {
        let address = recipient.address.map(EmailRecipient::of);
        let hash = address.as_ref().map(|a| a.hash.clone());
        // A recipient named twice (`A@x`, `a@x`) is one event.
        if seen.contains(&hash) {
            continue;
        }
        seen.push(hash.clone());
        let mut identity: Vec<&str> = vec![type_name, message_id];
        identity.extend(discriminator.iter().map(String::as_str));
        identity.push(hash.as_deref().unwrap_or(""));
        let mut event = DeliveryEvent::new(kind, Channel::Email, "ses", at, &identity);
        event.request_id = request_id.clone();
        event.category = category.clone();
        event.tenant = tenant.clone();
        event.provider_message_id = Some(message_id.to_owned());
        event.bounce = bounce.clone().map(|mut b| {
            b.status_codes = recipient.status.filter(|s| is_status_code(s)).map(str::to_owned).into_iter().collect();
            b
        });
        event.complaint = complaint.clone();
        event.address_sha256 = hash;
        // Without query or fragment: links carry login tokens and tracking parameters
        // (`?email=`), and an event names no person but by hash.
        event.link = link.as_deref().map(link_without_query);
        event.detail = detail.clone();
        // Only an address herald could send to needs suppressing.
        let effects = match (suppress, address.and_then(|a| a.parsed)) {
            (Some(reason), Some(parsed)) => {
                vec![Effect::Suppress { key: SuppressionKey::email(&parsed), tenant: tenant.clone(), reason }]
            }
            _ => Vec::new(),
        };
        events.push(ProviderEvent { event: event.bounded(), effects, raw: raw.to_owned() });
    }
    Ok(events)
}

/// At least one entry. Without a recipient list (opens, clicks, sends) the event is
/// about the message's only recipient, when it has one (herald sends to one address);
/// otherwise it names no address, and is still one event.
fn recipients_or_destination<'a>(mut recipients: Vec<Recipient<'a>>, mail: &'a Object) -> Vec<Recipient<'a>> {
    if !recipients.is_empty() {
        // SES takes 50 recipients per message: a longer list is not SES's, and each
        // entry costs an event and its writes.
        recipients.truncate(MAX_RECIPIENTS);
        return recipients;
    }
    let destination: Vec<&str> = entries_str(mail, "destination").collect();
    match destination.as_slice() {
        [only] => vec![Recipient { address: Some(*only), status: None }],
        _ => vec![Recipient::default()],
    }
}

struct EmailRecipient {
    hash: String,
    parsed: Option<EmailAddress>,
}

impl EmailRecipient {
    fn of(address: &str) -> Self {
        let parsed = EmailAddress::parse(address).ok();
        let normal = match &parsed {
            Some(p) => p.suppression_key(),
            None => address.trim().to_lowercase(),
        };
        EmailRecipient { hash: address_sha256(&normal), parsed }
    }
}

fn subscription_detail(d: &Object) -> String {
    let source = text(d, "source").map(scrub).unwrap_or_else(|| "unknown source".to_owned());
    let all = object(d, "newTopicPreferences").and_then(|p| p.get("unsubscribeAll")).and_then(Value::as_bool);
    match all {
        Some(true) => format!("{source}: unsubscribed from all topics"),
        _ => format!("{source}: topic preferences changed"),
    }
}

/// An RFC 3463 status code (`5.1.1`): anything else in the field is dropped.
fn is_status_code(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    matches!(parts.as_slice(), [class, subject, detail]
        if matches!(*class, "2" | "4" | "5")
            && [subject, detail].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())))
}

fn tag<'a>(mail: &'a Object, name: &str) -> Option<&'a str> {
    let value = match object(mail, "tags")?.get(name)? {
        Value::Array(values) => values.first()?.as_str()?,
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    (!value.is_empty()).then_some(value)
}

// ---------------------------------------------------------------------------- SMS

fn sms_status(v: &Object, raw: &str) -> Result<Vec<ProviderEvent>> {
    const PAYLOAD: &str = "SMS delivery status";
    let notification = object(v, "notification").ok_or(missing(PAYLOAD, "notification"))?;
    let message_id = text(notification, "messageId").ok_or(missing(PAYLOAD, "notification.messageId"))?;
    let time = text(notification, "timestamp").ok_or(missing(PAYLOAD, "notification.timestamp"))?;
    let at = parse_sms_time(time).ok_or(invalid(
        PAYLOAD,
        "notification.timestamp",
        "a UTC time like 2016-06-28 00:40:34.559",
    ))?;
    let status = text(v, "status").ok_or(missing(PAYLOAD, "status"))?;
    let kind = match status {
        "SUCCESS" => EventKind::Delivered,
        "FAILURE" => EventKind::Undelivered,
        other => return Err(ProviderEventError::UnknownType { payload: PAYLOAD, kind: provider_word(other) }),
    };
    let delivery = object(v, "delivery");
    // Delivery logs may mask the number (`+1XXX5550100`): then the event names none.
    let phone = delivery.and_then(|d| text(d, "destination")).and_then(|d| PhoneNumber::parse(d).ok());
    let response = delivery.and_then(|d| text(d, "providerResponse"));

    let mut event = DeliveryEvent::new(kind, Channel::Sms, "sns", at, &[message_id, status]);
    event.provider_message_id = Some(message_id.to_owned());
    event.address_sha256 = phone.as_ref().map(|p| address_sha256(p.as_str()));
    let mut effects = Vec::new();
    if kind == EventKind::Undelivered {
        event.detail = response.map(scrub);
        // "Phone number is opted out": SNS's own list has it; herald's should too.
        let opted_out = response.is_some_and(|r| r.to_ascii_lowercase().contains("opted out"));
        if let (true, Some(phone)) = (opted_out, &phone) {
            effects.push(Effect::OptOut { key: SuppressionKey::phone(phone) });
        }
    }
    Ok(vec![ProviderEvent { event: event.bounded(), effects, raw: raw.to_owned() }])
}

fn inbound_sms(v: &Object, raw: &str, time: Option<Timestamp>) -> Result<Vec<ProviderEvent>> {
    const PAYLOAD: &str = "inbound SMS";
    let body = v.get("messageBody").and_then(Value::as_str).ok_or(invalid(PAYLOAD, "messageBody", "a string"))?;
    let Some(keyword) = sms_keyword(body) else {
        return Ok(Vec::new());
    };
    let from = text(v, "originationNumber").ok_or(missing(PAYLOAD, "originationNumber"))?;
    let phone = PhoneNumber::parse(from).map_err(|_| invalid(PAYLOAD, "originationNumber", "an E.164 number"))?;
    let id = text(v, "inboundMessageId").ok_or(missing(PAYLOAD, "inboundMessageId"))?;
    let at = time.ok_or(ProviderEventError::NoTime)?;
    let key = SuppressionKey::phone(&phone);
    let (kind, effect) = match keyword {
        SmsKeyword::OptOut => (EventKind::OptedOut, Effect::OptOut { key }),
        SmsKeyword::OptIn => (EventKind::OptedIn, Effect::OptIn { key }),
    };
    let mut event = DeliveryEvent::new(kind, Channel::Sms, "sns", at, &[id]);
    // The message the reply answers, as on its `sent` receipt.
    event.provider_message_id = text(v, "previousPublishedMessageId").map(str::to_owned);
    event.address_sha256 = Some(address_sha256(phone.as_str()));
    // The whole message was the keyword: its canonical form says what was asked.
    event.detail = Some(format!("replied {}", keyword_word(body)));
    Ok(vec![ProviderEvent { event: event.bounded(), effects: vec![effect], raw: raw.to_owned() }])
}

fn keyword_word(body: &str) -> String {
    // Invisible characters and fullwidth forms must not hide a STOP: erring towards an
    // opt-out is the safe side.
    let folded: String = body
        .chars()
        .filter(|c| !matches!(c, '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            c => c,
        })
        .collect();
    let core = folded.trim_matches(|c: char| c.is_whitespace() || is_punctuation(c));
    core.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase()
}

// ---------------------------------------------------------------------------- helpers

fn json_object(s: &str, what: &'static str) -> Result<Object> {
    match serde_json::from_str::<Value>(s) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(ProviderEventError::NotAnObject { what }),
        // Position only: serde_json's message can quote the input.
        Err(e) => Err(ProviderEventError::NotJson { what, line: e.line(), column: e.column() }),
    }
}

fn object<'a>(v: &'a Object, key: &str) -> Option<&'a Object> {
    v.get(key)?.as_object()
}

fn text<'a>(v: &'a Object, key: &str) -> Option<&'a str> {
    v.get(key)?.as_str().filter(|s| !s.is_empty())
}

fn entries<'a>(v: &'a Object, key: &str) -> impl Iterator<Item = &'a Object> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

fn entries_str<'a>(v: &'a Object, key: &str) -> impl Iterator<Item = &'a str> {
    v.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).filter(|s| !s.is_empty())
}

fn missing(payload: &'static str, field: &'static str) -> ProviderEventError {
    ProviderEventError::Missing { payload, field }
}

fn invalid(payload: &'static str, field: &'static str, expected: &'static str) -> ProviderEventError {
    ProviderEventError::Invalid { payload, field, expected }
}

fn parse_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// SNS delivery logs write UTC without an offset (`2016-06-28 00:40:34.559`).
fn parse_sms_time(s: &str) -> Option<Timestamp> {
    parse_time(s).or_else(|| {
        let civil: jiff::civil::DateTime = s.parse().ok()?;
        jiff::tz::TimeZone::UTC.to_timestamp(civil).ok()
    })
}

/// A provider's name for something (a type, a subtype), cut short.
fn provider_value(s: &str) -> String {
    bounded(s, 64).0
}

/// A type name fit for an error: provider vocabulary passes, anything else (a forged
/// body could put any text there) is not repeated.
fn provider_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.' | ':');
    if !s.is_empty() && s.len() <= 64 && s.chars().all(plain) { s.to_owned() } else { "<not a type name>".to_owned() }
}

/// Provider text made fit for an event: any word with an `@` (an address) or six
/// digits or more (a phone number) is replaced, and the text cut to 200 characters
/// (the rule `adapters::aws::scrub` applies to send errors).
fn scrub(message: &str) -> String {
    let words: Vec<&str> = message
        .split_whitespace()
        .map(|w| {
            if w.contains('@') {
                "<address>"
            } else if w.chars().filter(char::is_ascii_digit).count() >= 6 {
                "<number>"
            } else {
                w
            }
        })
        .collect();
    words.join(" ").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// SES's permanent-bounce example (event publishing), with herald's tags.
    fn permanent_bounce() -> Value {
        json!({
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{
                    "emailAddress": "Recipient@Example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown <Recipient@Example.com>"
                }],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "reportingMTA": "dsn; mta.example.com"
            },
            "mail": {
                "timestamp": "2017-08-05T00:40:02.012Z",
                "source": "Sender Name <sender@example.com>",
                "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                "destination": ["Recipient@Example.com"],
                "tags": {
                    "ses:configuration-set": ["ConfigSet"],
                    "herald-request-id": [tags::encode_request_id("order:42/welcome").unwrap()],
                    "herald-category": ["transactional"],
                    "herald-tenant": ["acme"]
                }
            }
        })
    }

    fn one(body: &str) -> ProviderEvent {
        let mut events = normalise(body).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        events.remove(0)
    }

    fn envelope(message: &str, sns_id: &str) -> String {
        json!({
            "Type": "Notification",
            "MessageId": sns_id,
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:herald-ses-events",
            "Message": message,
            "Timestamp": "2024-05-01T10:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        })
        .to_string()
    }

    fn err(body: &str) -> ProviderEventError {
        normalise(body).unwrap_err()
    }

    #[test]
    fn opt_out_keywords_ignore_case_blanks_and_punctuation() {
        for body in [
            "STOP",
            "stop",
            " Stop. ",
            "STOP!!",
            "\"stop\"",
            "“Stop”",
            "stop all",
            "STOP   ALL",
            "StopAll",
            "opt-out",
            "Opt Out",
            "optout",
            "unsubscribe",
            "cancel",
            "End",
            "QUIT",
            "revoke",
            "remove",
            "TD",
            "arret",
            "Arrêt",
            "ARRÊT !",
            "\tstop\n",
            "ST\u{200B}OP",
            "\u{FEFF}stop",
            "ＳＴＯＰ",
        ] {
            assert_eq!(sms_keyword(body), Some(SmsKeyword::OptOut), "{body:?}");
        }
        for body in ["START", "start.", " Unstop "] {
            assert_eq!(sms_keyword(body), Some(SmsKeyword::OptIn), "{body:?}");
        }
        // The whole message must be the keyword, as providers match it.
        for body in [
            "stop please",
            "please stop",
            "don't stop",
            "STOP-ALL",
            "STOPP",
            "HELP",
            "info",
            "YES",
            "SUBSCRIBE",
            "",
            "!!!",
            "S T O P",
            &"stop ".repeat(20),
        ] {
            assert_eq!(sms_keyword(body), None, "{body:?}");
        }
    }

    #[test]
    fn a_permanent_bounce_suppresses_and_names_its_request() {
        let body = permanent_bounce().to_string();
        let e = one(&body);
        assert_eq!(e.event.event, EventKind::Bounced);
        assert_eq!(e.event.channel, Channel::Email);
        assert_eq!(e.event.provider, "ses");
        assert_eq!(e.event.request_id.as_deref(), Some("order:42/welcome"));
        assert_eq!(e.event.category.as_deref(), Some("transactional"));
        assert_eq!(e.event.tenant.as_deref(), Some("acme"));
        assert_eq!(e.event.at, "2017-08-05T00:41:02.669Z".parse::<Timestamp>().unwrap());
        assert_eq!(
            e.event.bounce,
            Some(BounceFacts {
                bounce_type: BounceType::Permanent,
                bounce_subtype: Some("General".into()),
                status_codes: vec!["5.1.1".into()],
            })
        );
        assert_eq!(e.event.address_sha256.as_deref(), Some(address_sha256("recipient@example.com").as_str()));
        let address = EmailAddress::parse("recipient@example.com").unwrap();
        assert_eq!(
            e.effects,
            vec![Effect::Suppress {
                key: SuppressionKey::email(&address),
                tenant: Some("acme".into()),
                reason: SuppressionReason::HardBounce,
            }]
        );
        assert_eq!(e.raw, body);
        // Neither the address nor the diagnostic text reaches the event.
        let json = e.event.to_json();
        assert!(!json.to_lowercase().contains("recipient@") && !json.contains("user unknown"), "{json}");
    }

    #[test]
    fn transient_and_undetermined_bounces_never_suppress() {
        for (bounce_type, subtype, expected) in [
            ("Transient", "MailboxFull", BounceType::Transient),
            ("Transient", "MessageTooLarge", BounceType::Transient),
            ("Undetermined", "Undetermined", BounceType::Undetermined),
        ] {
            let mut v = permanent_bounce();
            v["bounce"]["bounceType"] = json!(bounce_type);
            v["bounce"]["bounceSubType"] = json!(subtype);
            v["bounce"]["bouncedRecipients"][0]["status"] = json!("4.2.2");
            let e = one(&v.to_string());
            let facts = e.event.bounce.unwrap();
            assert_eq!(facts.bounce_type, expected);
            assert_eq!(facts.bounce_subtype.as_deref(), Some(subtype));
            assert_eq!(facts.status_codes, ["4.2.2"]);
            assert!(e.effects.is_empty(), "{bounce_type}: {:?}", e.effects);
        }
        let mut v = permanent_bounce();
        v["bounce"]["bounceType"] = json!("Sideways");
        assert_eq!(
            err(&v.to_string()),
            invalid("SES event", "bounce.bounceType", "Permanent, Transient or Undetermined")
        );
    }

    #[test]
    fn permanent_subtypes_all_suppress() {
        for subtype in ["General", "NoEmail", "Suppressed", "OnAccountSuppressionList"] {
            let mut v = permanent_bounce();
            v["bounce"]["bounceSubType"] = json!(subtype);
            assert_eq!(one(&v.to_string()).effects.len(), 1, "{subtype}");
        }
    }

    #[test]
    fn each_bounced_recipient_is_its_own_event() {
        let mut v = permanent_bounce();
        v["bounce"]["bouncedRecipients"] = json!([
            {"emailAddress": "a@example.com", "status": "5.1.1"},
            {"emailAddress": "b@example.com", "status": "not a code <b@example.com>"},
            {"emailAddress": "A@EXAMPLE.COM"},
            {"emailAddress": "not an address"}
        ]);
        let events = normalise(&v.to_string()).unwrap();
        assert_eq!(events.len(), 3, "the repeated recipient counts once");
        assert_ne!(events[0].event.event_id, events[1].event.event_id);
        assert_eq!(events[0].event.bounce.as_ref().unwrap().status_codes, ["5.1.1"]);
        assert!(events[1].event.bounce.as_ref().unwrap().status_codes.is_empty());
        assert_eq!(events[0].effects.len() + events[1].effects.len(), 2);
        // An address herald could never send to is reported, not suppressed.
        assert!(events[2].event.address_sha256.is_some() && events[2].effects.is_empty());
    }

    #[test]
    fn missing_tags_leave_the_request_unknown() {
        let mut v = permanent_bounce();
        v["mail"].as_object_mut().unwrap().remove("tags");
        let e = one(&v.to_string());
        assert_eq!((e.event.request_id, e.event.category, e.event.tenant.clone()), (None, None, None));
        assert!(matches!(&e.effects[..], [Effect::Suppress { tenant: None, .. }]));
        // A tag value that does not decode is no request id.
        let mut v = permanent_bounce();
        v["mail"]["tags"]["herald-request-id"] = json!(["b64.!!"]);
        assert_eq!(one(&v.to_string()).event.request_id, None);
    }

    #[test]
    fn an_envelope_gives_the_same_event_whatever_its_sns_id() {
        let bare = permanent_bounce().to_string();
        let direct = one(&bare);
        let first = one(&envelope(&bare, "sns-1"));
        let again = one(&envelope(&bare, "sns-2"));
        assert_eq!(first, direct);
        assert_eq!(again.event.event_id, direct.event.event_id);
        assert_eq!(first.raw, bare, "raw is the SES payload, not the envelope");
    }

    #[test]
    fn sns_housekeeping_is_not_an_event() {
        for sns_type in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let body = json!({
                "Type": sns_type, "MessageId": "m", "Token": "secret-token",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "You have chosen to subscribe",
                "SubscribeURL": "https://sns.example/?Token=secret-token", "Timestamp": "2024-05-01T10:00:00.000Z"
            });
            let e = err(&body.to_string());
            assert!(matches!(e, ProviderEventError::NotAnEvent { .. }), "{e}");
            assert!(!e.to_string().contains("secret-token"), "{e}");
        }
        let ses = json!({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have subscribed"});
        assert!(matches!(err(&ses.to_string()), ProviderEventError::NotAnEvent { .. }));
        let odd = json!({"Type": "Surprise", "TopicArn": "arn"});
        assert!(err(&odd.to_string()).to_string().contains("`Surprise`"));
    }

    #[test]
    fn unknown_types_are_named() {
        let mut v = permanent_bounce();
        v["eventType"] = json!("Teleport");
        let e = err(&v.to_string());
        assert_eq!(e, ProviderEventError::UnknownType { payload: "SES event", kind: "Teleport".into() });
        assert!(e.to_string().contains("`Teleport`"), "{e}");
        // A type that is no provider word is not repeated.
        v["eventType"] = json!("jane@example.com");
        assert!(!err(&v.to_string()).to_string().contains("jane"));
        let received = json!({"notificationType": "Received", "mail": {}});
        assert!(err(&received.to_string()).to_string().contains("`Received`"));
    }

    #[test]
    fn errors_never_echo_the_input() {
        let secret = "jane.doe@example.com";
        for body in [
            format!("{{\"eventType\": \"Bounce\", \"mail\": {{\"messageId\": {secret}}}"),
            format!("\"{secret}\""),
            format!("{{\"x\": \"{secret}\"}}"),
            envelope(&format!("{{{secret}"), "sns-1"),
            json!({"eventType": "Bounce", "bounce": {"bouncedRecipients": [{"emailAddress": secret}]}, "mail": {"destination": [secret]}}).to_string(),
            json!({"eventType": "Open", "mail": {"messageId": "m", "timestamp": secret}}).to_string(),
            json!({"originationNumber": "+1 415 CALL ME", "messageBody": "STOP", "inboundMessageId": "i"}).to_string(),
        ] {
            let e = err(&body);
            let text = e.to_string();
            assert!(!text.contains("jane") && !text.contains("CALL"), "{text}");
        }
        assert_eq!(err("{not json"), ProviderEventError::NotJson { what: "the message body", line: 1, column: 2 });
        assert_eq!(err("[1]"), ProviderEventError::NotAnObject { what: "the message body" });
        assert_eq!(err("{\"x\": 1}"), ProviderEventError::Unrecognised);
    }

    #[test]
    fn errors_name_the_missing_field() {
        let mut v = permanent_bounce();
        v["mail"].as_object_mut().unwrap().remove("messageId");
        assert_eq!(err(&v.to_string()).to_string(), "SES event without mail.messageId");
        let mut v = permanent_bounce();
        v.as_object_mut().unwrap().remove("mail");
        assert_eq!(err(&v.to_string()).to_string(), "SES event without mail");
        let mut v = permanent_bounce();
        v["bounce"]["timestamp"] = json!("yesterday");
        assert_eq!(err(&v.to_string()), invalid("SES event", "event timestamp", "an RFC 3339 time"));
        // Without an own time, the event takes the message's.
        let mut v = permanent_bounce();
        v["bounce"].as_object_mut().unwrap().remove("timestamp");
        assert_eq!(one(&v.to_string()).event.at, "2017-08-05T00:40:02.012Z".parse::<Timestamp>().unwrap());
    }

    #[test]
    fn a_not_spam_report_does_not_suppress() {
        let complaint = |feedback: Option<&str>| {
            let mut v = permanent_bounce();
            v["eventType"] = json!("Complaint");
            v.as_object_mut().unwrap().remove("bounce");
            v["complaint"] = json!({
                "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "feedback-1",
            });
            if let Some(f) = feedback {
                v["complaint"]["complaintFeedbackType"] = json!(f);
            }
            one(&v.to_string())
        };
        let abuse = complaint(Some("abuse"));
        assert!(matches!(&abuse.effects[..], [Effect::Suppress { reason: SuppressionReason::Complaint, .. }]));
        assert_eq!(abuse.event.complaint.unwrap().feedback_type.as_deref(), Some("abuse"));
        assert_eq!(complaint(None).effects.len(), 1);
        let not_spam = complaint(Some("not-spam"));
        assert_eq!(not_spam.event.event, EventKind::Complained);
        assert!(not_spam.effects.is_empty());
    }

    #[test]
    fn distinct_events_of_one_message_have_distinct_ids() {
        let click = |at: &str, link: &str| {
            let mut v = permanent_bounce();
            v["eventType"] = json!("Click");
            v.as_object_mut().unwrap().remove("bounce");
            v["click"] = json!({"timestamp": at, "link": link, "ipAddress": "192.0.2.1"});
            one(&v.to_string()).event
        };
        let a = click("2017-08-09T23:51:25.570Z", "https://example.com/a");
        assert_eq!(a.link.as_deref(), Some("https://example.com/a"));
        assert_eq!(link_without_query("https://e.com/reset?token=s3cr3t&email=a@b.c#x"), "https://e.com/reset");
        assert_eq!(
            link_without_query("https://u.example/unsubscribe/v2.k1.eyJy.sig?x=1"),
            "https://u.example/unsubscribe/<token>"
        );
        assert_eq!(a.event_id, click("2017-08-09T23:51:25.570Z", "https://example.com/a").event_id);
        assert_ne!(a.event_id, click("2017-08-09T23:51:25.570Z", "https://example.com/b").event_id);
        assert_ne!(a.event_id, click("2017-08-09T23:51:26.000Z", "https://example.com/a").event_id);
        // The same bounce through event publishing and an identity notification is one event.
        let mut notification = permanent_bounce();
        let obj = notification.as_object_mut().unwrap();
        obj.remove("eventType");
        obj.insert("notificationType".into(), json!("Bounce"));
        assert_eq!(one(&notification.to_string()).event.event_id, one(&permanent_bounce().to_string()).event.event_id);
    }

    #[test]
    fn rendering_failures_name_the_template_not_the_error() {
        let body = json!({
            "eventType": "Rendering Failure",
            "mail": {"timestamp": "2018-01-22T18:43:06.197Z", "messageId": "m-1", "destination": ["a@example.com"]},
            "failure": {"errorMessage": "Attribute 'name' is 'Jane Doe'", "templateName": "MyTemplate"}
        });
        let e = one(&body.to_string());
        assert_eq!(e.event.event, EventKind::RejectedByProvider);
        assert_eq!(e.event.detail.as_deref(), Some("SES could not render template MyTemplate"));
    }

    #[test]
    fn sms_opted_out_failure_opts_the_number_out() {
        let body = json!({
            "notification": {"messageId": "sns-msg-1", "timestamp": "2016-06-28 00:40:34.559"},
            "delivery": {"destination": "+14155550123", "providerResponse": "Phone number is opted out"},
            "status": "FAILURE"
        })
        .to_string();
        let e = one(&body);
        assert_eq!(e.event.event, EventKind::Undelivered);
        assert_eq!(e.event.channel, Channel::Sms);
        assert_eq!(e.event.provider, "sns");
        assert_eq!(e.event.provider_message_id.as_deref(), Some("sns-msg-1"));
        assert_eq!(e.event.at, "2016-06-28T00:40:34.559Z".parse::<Timestamp>().unwrap());
        assert_eq!(e.event.detail.as_deref(), Some("Phone number is opted out"));
        assert_eq!(e.event.address_sha256, Some(address_sha256("+14155550123")));
        let phone = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(e.effects, vec![Effect::OptOut { key: SuppressionKey::phone(&phone) }]);
        assert!(!e.event.to_json().contains("5550123"));
        // Another failure reports without an effect; a number in the response is scrubbed.
        let other = body.replace("Phone number is opted out", "Invalid phone number +14155550123");
        let e = one(&other);
        assert!(e.effects.is_empty());
        assert_eq!(e.event.detail.as_deref(), Some("Invalid phone number <number>"));
        let weird = body.replace("FAILURE", "MAYBE");
        assert!(err(&weird).to_string().contains("`MAYBE`"));
    }

    fn inbound(text: &str) -> String {
        json!({
            "originationNumber": "+14155550123",
            "destinationNumber": "+12125550101",
            "messageKeyword": "KEYWORD_123456789012",
            "messageBody": text,
            "inboundMessageId": "cae173d2-66b9-564c-8309-21f858e9fb84",
            "previousPublishedMessageId": "wJalrXUtnFEMI-EXAMPLE"
        })
        .to_string()
    }

    #[test]
    fn inbound_keywords_opt_out_and_in() {
        let phone = PhoneNumber::parse("+14155550123").unwrap();
        let stop = one(&envelope(&inbound("Stop."), "sns-1"));
        assert_eq!(stop.event.event, EventKind::OptedOut);
        assert_eq!(stop.event.at, "2024-05-01T10:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(stop.event.provider_message_id.as_deref(), Some("wJalrXUtnFEMI-EXAMPLE"));
        assert_eq!(stop.event.address_sha256, Some(address_sha256("+14155550123")));
        assert_eq!(stop.event.detail.as_deref(), Some("replied STOP"));
        assert_eq!(stop.effects, vec![Effect::OptOut { key: SuppressionKey::phone(&phone) }]);
        assert_eq!(stop.raw, inbound("Stop."));
        assert_eq!(one(&envelope(&inbound("Stop."), "sns-2")).event.event_id, stop.event.event_id);
        assert!(!stop.event.to_json().contains("5550123"));

        let start = one(&envelope(&inbound("START"), "sns-3"));
        assert_eq!(start.event.event, EventKind::OptedIn);
        assert_eq!(start.effects, vec![Effect::OptIn { key: SuppressionKey::phone(&phone) }]);

        for text in ["HELP", "what time is my appointment?", "stop please"] {
            assert_eq!(normalise(&envelope(&inbound(text), "sns-4")).unwrap(), vec![], "{text}");
        }
    }

    #[test]
    fn a_raw_inbound_sms_takes_the_queue_time() {
        assert_eq!(err(&inbound("STOP")), ProviderEventError::NoTime);
        let sent: Timestamp = "2024-05-01T10:00:05Z".parse().unwrap();
        let e = normalise_received(&inbound("STOP"), sent).unwrap();
        assert_eq!(e[0].event.at, sent);
        // Nothing to act on needs no time.
        assert_eq!(normalise(&inbound("HELP")).unwrap(), vec![]);
        let bad = inbound("STOP").replace("+14155550123", "+1 415 CALL");
        assert_eq!(
            normalise_received(&bad, sent).unwrap_err(),
            invalid("inbound SMS", "originationNumber", "an E.164 number")
        );
    }

    #[test]
    fn address_hash_is_plain_sha256_hex() {
        assert_eq!(address_sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(address_sha256("+14155550123").len(), 64);
    }

    #[test]
    fn every_field_is_bounded() {
        let mut v = permanent_bounce();
        v["eventType"] = json!("Click");
        v.as_object_mut().unwrap().remove("bounce");
        v["click"] =
            json!({"timestamp": "2017-08-09T23:51:25.570Z", "link": format!("https://e.com/{}", "x".repeat(5000))});
        v["mail"]["tags"]["herald-tenant"] = json!(["t".repeat(600)]);
        let e = one(&v.to_string()).event;
        assert!(e.link.as_ref().unwrap().len() <= super::super::limits::METADATA_VALUE);
        assert_eq!(e.truncated, ["tenant", "link"]);
    }
}
