//! What a sender is handed: rendered content plus addressing, nothing to decide.

use std::collections::BTreeMap;

use crate::render::sms::SmsEncoding;
use crate::request::{EmailAddress, PhoneNumber, PushTarget};

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEmail {
    pub request_id: String,
    /// Scopes the request id (outbox folders, provider tags).
    pub tenant: Option<String>,
    /// RFC 5322 mailbox, e.g. `Acme <hello@acme.example>`.
    pub from: String,
    pub to: EmailAddress,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Extra headers (`List-Unsubscribe`, `List-Unsubscribe-Post`); values are
    /// single-line, checked when built.
    pub headers: Vec<(String, String)>,
    /// Provider tags (SES `EmailTags`) to match events back to the request.
    pub tags: Vec<(String, String)>,
    /// Whether the message is transactional (affects headers, SMS type...).
    pub transactional: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundSms {
    pub request_id: String,
    /// Scopes the request id (outbox folders, provider tags).
    pub tenant: Option<String>,
    pub to: PhoneNumber,
    /// What to send, already transliterated when the settings asked for it.
    pub body: String,
    pub encoding: SmsEncoding,
    pub segments: u32,
    /// Alphanumeric sender id (SNS `AWS.SNS.SMS.SenderID`).
    pub sender_id: Option<String>,
    /// The number (long code, toll-free, 10DLC) to send from, E.164 as `[sms]` checks it
    /// (SNS `AWS.MM.SMS.OriginationNumber`).
    pub origination_number: Option<String>,
    /// The most to spend on this message, in USD (a decimal string, e.g. `0.50`;
    /// SNS `AWS.SNS.SMS.MaxPrice`).
    pub max_price: Option<String>,
    /// Transactional or promotional (SNS `AWS.SNS.SMS.SMSType`).
    pub transactional: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutboundPush {
    pub request_id: String,
    /// Scopes the request id (outbox folders, provider tags).
    pub tenant: Option<String>,
    pub target: PushTarget,
    pub title: String,
    pub body: String,
    /// Custom key/value data (FCM requires string values).
    pub data: BTreeMap<String, String>,
    /// Sent at high priority (APNs 10, FCM `HIGH`, Web Push `Urgency: high`); otherwise
    /// normal (APNs 5, which lets iOS save power).
    pub transactional: bool,
    /// For the `token_invalid` event: whom the target belonged to, and the category.
    pub recipient_id: String,
    pub category: String,
    /// Not worth delivering after this instant (APNs `apns-expiration`, FCM `ttl`, Web
    /// Push `TTL`): the request's `expires_at`, or the configured default TTL from now.
    pub expires_at: jiff::Timestamp,
    /// Replaces an earlier notification with the same id still on the device or queued
    /// (APNs `apns-collapse-id`, FCM `collapse_key`, Web Push `Topic`).
    pub collapse_id: Option<String>,
}
