//! SNS mobile push: `Publish` to a platform endpoint ARN with `MessageStructure=json`,
//! the message holding the payload for the endpoint's platform (`APNS`, `APNS_SANDBOX`,
//! `GCM`; see `push::payload::sns_message`), plus the APNs headers SNS forwards as
//! message attributes (push type, priority, expiration, collapse id).
//!
//! A disabled endpoint (`EndpointDisabled`: the platform told SNS the token is gone) or
//! one that no longer exists (`NotFound`) is token-invalid: the target is suppressed
//! and announced (see `push::hygiene`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sns::types::MessageAttributeValue;

use super::classify::classify_send;
use crate::ports::{Clock, OutboundPush, PushSender, SendError};
use crate::push::payload::{self, PayloadError};
use crate::request::{PushTarget, SnsPlatform};

pub struct SnsPushSender {
    /// For `Publish`: no SDK retries (see `provider_config`).
    client: aws_sdk_sns::Client,
    clock: std::sync::Arc<dyn Clock>,
}

impl SnsPushSender {
    pub fn new(client: aws_sdk_sns::Client, clock: std::sync::Arc<dyn Clock>) -> Self {
        SnsPushSender { client, clock }
    }
}

fn attribute(value: String) -> Result<MessageAttributeValue, SendError> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(|e| {
        SendError::permanent("invalid_message", format!("the SNS message attribute could not be built: {e}"))
    })
}

/// The `MessageAttributes` of one push to an endpoint of `platform`.
fn attributes(
    push: &OutboundPush,
    platform: SnsPlatform,
    ttl: i64,
) -> Result<HashMap<String, MessageAttributeValue>, SendError> {
    let mut attrs = HashMap::new();
    if platform.is_apple() {
        attrs.insert("AWS.SNS.MOBILE.APNS.PUSH_TYPE".to_owned(), attribute("alert".into())?);
        attrs.insert("AWS.SNS.MOBILE.APNS.PRIORITY".to_owned(), attribute(payload::apns_priority(push).into())?);
        // The TTL attribute is named per platform (`APNS_SANDBOX` for sandbox endpoints).
        attrs.insert(format!("AWS.SNS.MOBILE.{}.TTL", platform.as_str()), attribute(ttl.to_string())?);
        if let Some(id) = payload::collapse_id(push) {
            attrs.insert("AWS.SNS.MOBILE.APNS.COLLAPSE_ID".to_owned(), attribute(id)?);
        }
    } else {
        attrs.insert("AWS.SNS.MOBILE.FCM.TTL".to_owned(), attribute(ttl.to_string())?);
    }
    Ok(attrs)
}

/// An endpoint the platform reported gone is a target to suppress.
fn token_invalid_or(e: SendError) -> SendError {
    match e.code() {
        "EndpointDisabled" | "EndpointDisabledException" => SendError::token_invalid(
            "endpoint_disabled",
            "SNS disabled the platform endpoint (the platform reported the token invalid)",
            None,
        ),
        "NotFound" | "NotFoundException" => {
            SendError::token_invalid("endpoint_not_found", "the SNS platform endpoint does not exist", None)
        }
        // What SNS answers a Publish to an endpoint ARN that was deleted.
        "InvalidParameter" if e.message().contains("No endpoint found") => {
            SendError::token_invalid("endpoint_not_found", "the SNS platform endpoint does not exist", None)
        }
        _ => e,
    }
}

#[async_trait]
impl PushSender for SnsPushSender {
    async fn send_push(&self, push: &OutboundPush) -> Result<String, SendError> {
        let PushTarget::Sns { endpoint_arn, platform } = &push.target else {
            return Err(SendError::permanent("wrong_provider", "not an SNS platform endpoint"));
        };
        let now = self.clock.now();
        let message = payload::sns_message(push, *platform, now)
            .map_err(|e: PayloadError| SendError::permanent("invalid_payload", e.to_string()))?;
        let output = self
            .client
            .publish()
            .target_arn(endpoint_arn)
            .message_structure("json")
            .message(message)
            .set_message_attributes(Some(attributes(push, *platform, payload::ttl_seconds(push, now))?))
            .send()
            .await
            .map_err(|e| token_invalid_or(classify_send(&e)))?;
        super::sns::accepted_id(output.message_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(collapse: Option<&str>) -> OutboundPush {
        OutboundPush {
            request_id: "r1".into(),
            tenant: None,
            target: PushTarget::Sns {
                endpoint_arn: "arn:aws:sns:us-east-1:123456789012:endpoint/APNS_SANDBOX/app/1".into(),
                platform: SnsPlatform::ApnsSandbox,
            },
            title: "t".into(),
            body: "b".into(),
            data: Default::default(),
            transactional: true,
            recipient_id: "u1".into(),
            category: "c".into(),
            expires_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            collapse_id: collapse.map(str::to_owned),
        }
    }

    #[test]
    fn attributes_are_named_per_platform_and_collapse_ids_fit_apns() {
        let long = "x".repeat(100);
        let attrs = attributes(&push(Some(&long)), SnsPlatform::ApnsSandbox, 60).unwrap();
        let value = |n: &str| attrs.get(n).and_then(|a| a.string_value()).map(str::to_owned);
        assert_eq!(value("AWS.SNS.MOBILE.APNS_SANDBOX.TTL").as_deref(), Some("60"));
        assert_eq!(value("AWS.SNS.MOBILE.APNS.TTL"), None);
        assert_eq!(value("AWS.SNS.MOBILE.APNS.PRIORITY").as_deref(), Some("10"));
        assert!(value("AWS.SNS.MOBILE.APNS.COLLAPSE_ID").is_some_and(|id| id.len() <= 64));
        let attrs = attributes(&push(None), SnsPlatform::Gcm, 60).unwrap();
        assert_eq!(attrs.keys().collect::<Vec<_>>(), ["AWS.SNS.MOBILE.FCM.TTL"]);
    }

    #[test]
    fn a_disabled_or_missing_endpoint_is_token_invalid_and_other_errors_stay() {
        let e = token_invalid_or(SendError::permanent("EndpointDisabled", "Endpoint is disabled"));
        assert_eq!((e.code(), e.is_token_invalid().is_some()), ("endpoint_disabled", true));
        let e = token_invalid_or(SendError::transient("NotFound", "Endpoint does not exist"));
        assert!(e.is_token_invalid().is_some() && e.is_permanent());
        let e = token_invalid_or(SendError::permanent(
            "InvalidParameter",
            "Invalid parameter: TargetArn Reason: No endpoint found for the target arn specified",
        ));
        assert_eq!((e.code(), e.is_token_invalid().is_some()), ("endpoint_not_found", true));
        let e = token_invalid_or(SendError::permanent("InvalidParameter", "x"));
        assert_eq!((e.code(), e.is_token_invalid()), ("InvalidParameter", None));
    }
}
