//! SMS through SNS `Publish` to a phone number, with the SMS attributes SNS reads:
//! the type (`Transactional` for the transactional category, `Promotional`
//! otherwise: SNS routes and prices them differently), and, when configured, the
//! sender id, the origination number and the most to spend on one message.
//!
//! Optionally, before the first send to a number in an invocation, SNS is asked
//! whether the number opted out (`CheckIfPhoneNumberIsOptedOut`): SNS does not deliver
//! to it anyway, but would accept the message, so without the check the receipt says
//! `sent`. The answers are kept until [`SnsSmsSender::new_invocation`], so a batch asks
//! once per number and an opt-out made since the last batch is seen.
//!
//! The port is narrow on purpose: AWS End User Messaging's `SendTextMessage` (what AWS
//! recommends for new SMS work: per-message configuration sets, phone pools, event
//! destinations) fits the same `SmsSender` trait (see the README).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::classify::classify_send;
use crate::ports::{OutboundSms, SendError, SmsSender};

/// The SNS message attributes herald sets, by name.
pub const SMS_ATTRIBUTES: &[&str] =
    &["AWS.SNS.SMS.SMSType", "AWS.SNS.SMS.SenderID", "AWS.MM.SMS.OriginationNumber", "AWS.SNS.SMS.MaxPrice"];

/// The detail of an opt-out, from the check or from a refused publish: fixed text, as
/// SNS's own may name the number.
const OPTED_OUT: &str = "the number opted out of SMS from this account (SNS)";

pub struct SnsSmsSender {
    /// For `Publish`: no SDK retries (see `provider_config`).
    client: aws_sdk_sns::Client,
    /// For the opt-out check, when on: a question with no side effect, so the SDK's own
    /// retries are safe, and a throttle costs a retry instead of an SQS redelivery.
    checker: Option<aws_sdk_sns::Client>,
    /// Number -> opted out, as SNS answered during this invocation.
    opted_out: Mutex<HashMap<String, bool>>,
}

impl SnsSmsSender {
    /// `checker`: when given, ask SNS through it whether a number opted out before
    /// sending to it (a client with retries on).
    pub fn new(client: aws_sdk_sns::Client, checker: Option<aws_sdk_sns::Client>) -> Self {
        SnsSmsSender { client, checker, opted_out: Mutex::new(HashMap::new()) }
    }

    /// Forgets the opt-out answers: called at the start of every invocation.
    pub fn new_invocation(&self) {
        if let Ok(mut cache) = self.opted_out.lock() {
            cache.clear();
        }
    }

    async fn is_opted_out(&self, number: &str) -> Result<bool, SendError> {
        let Some(client) = &self.checker else { return Ok(false) };
        if let Some(known) = self.opted_out.lock().ok().and_then(|c| c.get(number).copied()) {
            return Ok(known);
        }
        let answer = client.check_if_phone_number_is_opted_out().phone_number(number).send().await;
        let opted_out = match answer {
            Ok(out) => out.is_opted_out(),
            Err(e) => {
                let e = classify_send(&e);
                let message = format!("opt-out check: {}", e.message());
                // A question, not a send: whatever happened, nothing went out.
                return Err(if e.is_permanent() {
                    SendError::permanent(e.code().to_owned(), message)
                } else {
                    SendError::transient(e.code().to_owned(), message)
                });
            }
        };
        if let Ok(mut cache) = self.opted_out.lock() {
            cache.insert(number.to_owned(), opted_out);
        }
        Ok(opted_out)
    }
}

/// A refusal because the number opted out, should SNS answer a publish with one, is an
/// opt-out like the check's answer, not a provider failure.
fn opted_out_or(e: SendError) -> SendError {
    if e.is_permanent() && e.code().starts_with("OptedOut") { SendError::opted_out(OPTED_OUT) } else { e }
}

fn attribute(data_type: &str, value: &str) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder().data_type(data_type).string_value(value).build().map_err(|e| {
        SendError::permanent("invalid_message", format!("the SNS message attribute could not be built: {e}"))
    })
}

/// The `MessageAttributes` of one SMS.
fn attributes(sms: &OutboundSms) -> Result<HashMap<String, MessageAttributeValue>, SendError> {
    let mut attrs = HashMap::new();
    let kind = if sms.transactional { "Transactional" } else { "Promotional" };
    attrs.insert("AWS.SNS.SMS.SMSType".to_owned(), attribute("String", kind)?);
    if let Some(id) = &sms.sender_id {
        attrs.insert("AWS.SNS.SMS.SenderID".to_owned(), attribute("String", id)?);
    }
    if let Some(number) = &sms.origination_number {
        attrs.insert("AWS.MM.SMS.OriginationNumber".to_owned(), attribute("String", number)?);
    }
    if let Some(price) = &sms.max_price {
        attrs.insert("AWS.SNS.SMS.MaxPrice".to_owned(), attribute("Number", price)?);
    }
    Ok(attrs)
}

#[async_trait]
impl SmsSender for SnsSmsSender {
    async fn send_sms(&self, sms: &OutboundSms) -> Result<String, SendError> {
        let number = sms.to.as_str();
        if self.is_opted_out(number).await? {
            return Err(SendError::opted_out(OPTED_OUT));
        }
        let output = self
            .client
            .publish()
            .phone_number(number)
            .message(&sms.body)
            .set_message_attributes(Some(attributes(sms)?))
            .send()
            .await
            .map_err(|e| opted_out_or(classify_send(&e)))?;
        accepted_id(output.message_id())
    }
}

/// The id of a message SNS accepted (HTTP 200): the message is out, whatever the
/// answer lacks, so a missing id is an unknown outcome, never a failure.
pub(super) fn accepted_id(message_id: Option<&str>) -> Result<String, SendError> {
    message_id
        .map(str::to_owned)
        .ok_or_else(|| SendError::unknown_outcome("no_message_id", "SNS accepted the message without a MessageId"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::sms::SmsEncoding;
    use crate::request::PhoneNumber;

    fn sms(transactional: bool) -> OutboundSms {
        OutboundSms {
            request_id: "r1".into(),
            tenant: None,
            to: PhoneNumber::parse("+447700900123").unwrap(),
            body: "hi".into(),
            encoding: SmsEncoding::Gsm7,
            segments: 1,
            sender_id: None,
            origination_number: None,
            max_price: None,
            transactional,
        }
    }

    fn value(attrs: &HashMap<String, MessageAttributeValue>, name: &str) -> Option<(String, String)> {
        attrs.get(name).map(|a| (a.data_type().to_owned(), a.string_value().unwrap_or_default().to_owned()))
    }

    #[test]
    fn an_opt_out_refusal_is_an_opt_out_and_other_errors_stay_as_they_are() {
        assert!(opted_out_or(SendError::permanent("OptedOut", "x")).is_opted_out());
        assert!(opted_out_or(SendError::permanent("OptedOutException", "x")).is_opted_out());
        let other = opted_out_or(SendError::permanent("InvalidParameter", "x"));
        assert!(!other.is_opted_out() && other.code() == "InvalidParameter");
        assert!(opted_out_or(SendError::transient("Throttled", "x")).is_transient());
    }

    #[test]
    fn the_type_follows_the_category_and_only_configured_attributes_are_set() {
        let attrs = attributes(&sms(true)).unwrap();
        assert_eq!(value(&attrs, "AWS.SNS.SMS.SMSType"), Some(("String".into(), "Transactional".into())));
        assert_eq!(attrs.len(), 1);
        let mut marketing = sms(false);
        marketing.sender_id = Some("ACME".into());
        marketing.origination_number = Some("+18885550100".into());
        marketing.max_price = Some("0.50".into());
        let attrs = attributes(&marketing).unwrap();
        assert_eq!(value(&attrs, "AWS.SNS.SMS.SMSType"), Some(("String".into(), "Promotional".into())));
        assert_eq!(value(&attrs, "AWS.SNS.SMS.SenderID"), Some(("String".into(), "ACME".into())));
        assert_eq!(value(&attrs, "AWS.MM.SMS.OriginationNumber"), Some(("String".into(), "+18885550100".into())));
        assert_eq!(value(&attrs, "AWS.SNS.SMS.MaxPrice"), Some(("Number".into(), "0.50".into())));
        let names: Vec<&str> = SMS_ATTRIBUTES.to_vec();
        assert!(attrs.keys().all(|k| names.contains(&k.as_str())));
    }
}
