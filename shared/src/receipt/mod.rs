//! Receipts: what happened to a request, one JSON object per outcome.
//!
//! Every request ends in exactly one terminal receipt (`sent`, `duplicate`,
//! `suppressed`, `unsubscribed`, `capped`, `expired`, `rejected`, `failed`), possibly
//! after `deferred` ones. `reason` is machine-readable (`frequency_capped:marketing:7d`,
//! `suppressed:hard_bounce`, `invalid_request:recipient.email`); `detail` is for humans
//! and never contains an address.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::request::{Channel, DeliveryRequest, RawFacts};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Sent,
    Duplicate,
    Suppressed,
    Unsubscribed,
    Capped,
    Expired,
    Rejected,
    Failed,
    /// Not terminal: the request is held until `deferred_until`.
    Deferred,
}

impl Status {
    pub const TERMINAL: [Status; 8] = [
        Status::Sent,
        Status::Duplicate,
        Status::Suppressed,
        Status::Unsubscribed,
        Status::Capped,
        Status::Expired,
        Status::Rejected,
        Status::Failed,
    ];

    pub fn is_terminal(self) -> bool {
        self != Status::Deferred
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Duplicate => "duplicate",
            Status::Suppressed => "suppressed",
            Status::Unsubscribed => "unsubscribed",
            Status::Capped => "capped",
            Status::Expired => "expired",
            Status::Rejected => "rejected",
            Status::Failed => "failed",
            Status::Deferred => "deferred",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Status::TERMINAL
            .into_iter()
            .chain([Status::Deferred])
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Receipt {
    /// The request's `id`; null only when the input was not JSON or had no usable id.
    pub request_id: Option<String>,
    pub status: Status,
    /// Machine-readable cause; null for `sent`.
    pub reason: Option<String>,
    /// Human-readable explanation (never contains addresses or tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The request's metadata, verbatim.
    pub metadata: BTreeMap<String, String>,
    #[schemars(with = "String")]
    pub at: Timestamp,
    /// The provider's id for the message (SES MessageId, outbox id...), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_message_id: Option<String>,
    /// For `deferred`: when the request becomes sendable again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub deferred_until: Option<Timestamp>,
    /// Where the request came from (`file:line`, an SQS message id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Receipt {
    pub fn for_request(request: &DeliveryRequest, status: Status, at: Timestamp) -> Self {
        Receipt {
            request_id: Some(request.id.as_str().to_owned()),
            status,
            reason: None,
            detail: None,
            channel: Some(request.channel),
            category: Some(request.category.as_str().to_owned()),
            tenant: request.tenant.as_ref().map(|t| t.as_str().to_owned()),
            recipient_id: Some(request.recipient.id.as_str().to_owned()),
            metadata: request.metadata.clone(),
            at,
            provider_message_id: None,
            deferred_until: None,
            source: None,
        }
    }

    /// A receipt for input that never became a request.
    pub fn for_raw(facts: &RawFacts, status: Status, at: Timestamp) -> Self {
        Receipt {
            request_id: facts.id.clone(),
            status,
            reason: None,
            detail: None,
            channel: facts.channel,
            category: facts.category.as_ref().map(|c| c.to_ascii_lowercase()),
            tenant: facts.tenant.clone(),
            recipient_id: facts.recipient_id.clone(),
            metadata: facts.metadata.clone(),
            at,
            provider_message_id: None,
            deferred_until: None,
            source: None,
        }
    }

    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn source(mut self, source: Option<&str>) -> Self {
        self.source = source.map(str::to_owned);
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub mod unsubscribe;

/// The JSON Schema of [`Receipt`], as published in `schema/receipt.v1.json`.
pub fn json_schema() -> serde_json::Value {
    schemars::schema_for!(Receipt).to_value()
}
