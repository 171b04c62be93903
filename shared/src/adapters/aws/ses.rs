//! Email through SES v2 `SendEmail`, Simple content: subject, HTML and text parts,
//! custom headers (`List-Unsubscribe`, `List-Unsubscribe-Post`), the configuration
//! set, and tags carrying request id, category and tenant so SES events can be
//! matched back to the request.

use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message, MessageHeader, MessageTag};

use super::classify::classify_send;
use crate::ports::{EmailSender, OutboundEmail, SendError};

#[derive(Debug, Clone)]
pub struct SesSender {
    client: aws_sdk_sesv2::Client,
    configuration_set: Option<String>,
}

impl SesSender {
    pub fn new(client: aws_sdk_sesv2::Client, configuration_set: Option<String>) -> Self {
        SesSender { client, configuration_set }
    }
}

/// SES tag values allow `[A-Za-z0-9_.@-]`, 1 to 256 characters.
pub fn tag_value(v: &str) -> String {
    let cleaned: String = v
        .chars()
        .take(256)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@') { c } else { '_' })
        .collect();
    if cleaned.is_empty() { "_".to_owned() } else { cleaned }
}

fn build_error(e: impl std::fmt::Display) -> SendError {
    SendError::permanent("invalid_message", format!("the SES request could not be built: {e}"))
}

fn text(data: &str) -> Result<Content, SendError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(build_error)
}

#[async_trait]
impl EmailSender for SesSender {
    async fn send_email(&self, email: &OutboundEmail) -> Result<String, SendError> {
        let mut message = Message::builder()
            .subject(text(&email.subject)?)
            .body(Body::builder().html(text(&email.html)?).text(text(&email.text)?).build());
        for (name, value) in &email.headers {
            if value.contains(['\r', '\n']) {
                return Err(SendError::permanent("header_injection", "a header value contains a line break"));
            }
            message = message.headers(MessageHeader::builder().name(name).value(value).build().map_err(build_error)?);
        }
        let mut request = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(Destination::builder().to_addresses(email.to.as_str()).build())
            .content(EmailContent::builder().simple(message.build()).build())
            .set_configuration_set_name(self.configuration_set.clone());
        if let Some(reply_to) = &email.reply_to {
            request = request.reply_to_addresses(reply_to);
        }
        for (name, value) in &email.tags {
            request = request.email_tags(
                MessageTag::builder().name(tag_value(name)).value(tag_value(value)).build().map_err(build_error)?,
            );
        }
        let output = request.send().await.map_err(|e| classify_send(&e))?;
        output
            .message_id()
            .map(str::to_owned)
            // SES accepted it (HTTP 200): the mail is out, whatever the answer lacks.
            .ok_or_else(|| SendError::unknown_outcome("no_message_id", "SES accepted the message without a MessageId"))
    }
}
