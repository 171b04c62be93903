//! The file outbox: writes what a provider would have received.
//!
//! ```text
//! <dir>/<request id>.eml         RFC 5322 message (multipart/alternative)
//! <dir>/<request id>.sms.json    body, encoding, segment count, sender settings
//! <dir>/<request id>.push.json   platform, target, title, body, data
//! <dir>/@<tenant>/...            the same, for requests with a tenant
//! ```
//! Request ids that are not plain file names are made safe and suffixed with a hash.
//! Tenant folders start with `@`, which no message file does: a tenant named `a.eml`
//! and a request `a` can never claim the same path.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use serde_json::json;
use sha2::Digest;

use crate::ports::{EmailSender, OutboundEmail, OutboundPush, OutboundSms, PushSender, SendError, SmsSender};
use crate::render::sms;
use crate::request::PushTarget;

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Outbox { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a request's message lands (`ext` is `eml`, `sms.json` or `push.json`).
    pub fn path_for(&self, tenant: Option<&str>, request_id: &str, ext: &str) -> PathBuf {
        let mut dir = self.dir.clone();
        if let Some(t) = tenant {
            dir.push(format!("@{}", safe_name(t)));
        }
        dir.join(format!("{}.{ext}", safe_name(request_id)))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), SendError> {
        let io = |e: std::io::Error| SendError::transient("outbox_io", format!("cannot write the outbox: {e}"));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // Write then rename, so a reader never sees half a message.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

/// A file-name-safe form of an id: unchanged when it already is one.
pub fn safe_name(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 100
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if plain {
        return id.to_owned();
    }
    let cleaned: String = id
        .chars()
        .take(80)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') { c } else { '_' })
        .collect();
    let hash = sha2::Sha256::digest(id.as_bytes());
    let short: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{cleaned}-{short}")
}

/// `Name <addr>` -> (Some(name), addr); a bare address -> (None, addr).
fn split_mailbox(s: &str) -> (Option<String>, String) {
    match s.split_once('<') {
        Some((name, rest)) => {
            let name = name.trim().trim_matches('"').trim();
            let addr = rest.trim_end_matches('>').trim();
            ((!name.is_empty()).then(|| name.to_owned()), addr.to_owned())
        }
        None => (None, s.trim().to_owned()),
    }
}

fn single_line(value: &str) -> Result<&str, SendError> {
    if value.contains(['\r', '\n']) {
        return Err(SendError::permanent("header_injection", "a header value contains a line break"));
    }
    Ok(value)
}

/// The RFC 5322 bytes of an email, as a provider would receive them.
pub fn build_mime(email: &OutboundEmail, message_id: &str, date_unix: i64) -> Result<Vec<u8>, SendError> {
    let (from_name, from_addr) = split_mailbox(&email.from);
    let domain = from_addr.rsplit_once('@').map_or("localhost", |(_, d)| d).to_owned();
    let mut builder = MessageBuilder::new()
        .from(Address::new_address(from_name, from_addr))
        .to(Address::new_address(None::<String>, email.to.as_str().to_owned()))
        .subject(single_line(&email.subject)?.to_owned())
        .message_id(format!("{message_id}@{domain}"))
        .date(date_unix)
        .text_body(email.text.clone())
        .html_body(email.html.clone());
    if let Some(reply_to) = &email.reply_to {
        builder = builder.reply_to(Address::new_address(None::<String>, reply_to.clone()));
    }
    for (name, value) in &email.headers {
        builder = builder.header(name.clone(), Raw::new(single_line(value)?.to_owned()));
    }
    builder.write_to_vec().map_err(|e| SendError::permanent("mime", format!("cannot build the message: {e}")))
}

#[async_trait]
impl EmailSender for Outbox {
    async fn send_email(&self, email: &OutboundEmail) -> Result<String, SendError> {
        let id = uuid::Uuid::new_v4().to_string();
        let bytes = build_mime(email, &id, jiff::Timestamp::now().as_second())?;
        self.write(&self.path_for(email.tenant.as_deref(), &email.request_id, "eml"), &bytes)?;
        Ok(id)
    }
}

#[async_trait]
impl SmsSender for Outbox {
    async fn send_sms(&self, m: &OutboundSms) -> Result<String, SendError> {
        let id = uuid::Uuid::new_v4().to_string();
        let info = sms::segment(&m.body);
        let doc = json!({
            "message_id": id,
            "request_id": m.request_id,
            "to": m.to.as_str(),
            "sender_id": m.sender_id,
            "origination_number": m.origination_number,
            "max_price": m.max_price,
            "body": m.body,
            "encoding": m.encoding,
            "segments": m.segments,
            "units": info.units,
            "characters": info.characters,
            "non_gsm_characters": sms::non_gsm_characters(&m.body).into_iter().map(String::from).collect::<Vec<_>>(),
            "type": if m.transactional { "transactional" } else { "promotional" },
        });
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        self.write(&self.path_for(m.tenant.as_deref(), &m.request_id, "sms.json"), &bytes)?;
        Ok(id)
    }
}

#[async_trait]
impl PushSender for Outbox {
    async fn send_push(&self, m: &OutboundPush) -> Result<String, SendError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut doc = json!({
            "message_id": id,
            "request_id": m.request_id,
            "platform": m.target.platform().as_str(),
            "title": m.title,
            "body": m.body,
            "data": m.data,
            "type": if m.transactional { "transactional" } else { "promotional" },
        });
        match &m.target {
            PushTarget::Fcm { token } => doc["token"] = json!(token),
            PushTarget::Apns { token, environment } => {
                doc["token"] = json!(token);
                if let Some(environment) = environment {
                    doc["environment"] = json!(environment);
                }
            }
            PushTarget::WebPush { endpoint, .. } => doc["endpoint"] = json!(endpoint),
            PushTarget::Sns { endpoint_arn, .. } => doc["endpoint_arn"] = json!(endpoint_arn),
        }
        doc["expires_at"] = json!(m.expires_at.to_string());
        if let Some(id) = &m.collapse_id {
            doc["collapse_id"] = json!(id);
        }
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        self.write(&self.path_for(m.tenant.as_deref(), &m.request_id, "push.json"), &bytes)?;
        Ok(id)
    }
}
