use std::fmt;

use super::value_de::{FieldError, mask_key};

/// Why a request was refused, naming the field a human has to fix.
///
/// `path` is a dotted JSON path (`recipient.email`, `data`, `json` for input that is
/// not JSON at all); it becomes the machine-readable reason `invalid_request:<path>`.
/// Neither part ever quotes a value from the request: keys the sender chose are
/// masked unless they are short identifiers, and values are named by kind only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    path: String,
    message: String,
}

impl RequestError {
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError { path: path.into(), message: message.into() }
    }

    /// Input that is not a single well-formed JSON document. serde_json's syntax
    /// messages name a position, never the text.
    pub fn syntax(e: &serde_json::Error) -> Self {
        RequestError { path: "json".into(), message: format!("not valid JSON: {e}") }
    }

    pub(crate) fn from_fields(e: serde_path_to_error::Error<FieldError>) -> Self {
        let mut segments: Vec<String> = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(mask_key(key)),
                serde_path_to_error::Segment::Enum { variant } => Some(mask_key(variant)),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        let inner = e.into_inner();
        // serde reports unknown and missing fields at the parent: point at the field
        // (serde_path_to_error already ends the path with an unknown key).
        match &inner {
            FieldError::UnknownField { field, path_segment, .. } => {
                if segments.last() == Some(path_segment) {
                    segments.pop();
                }
                segments.push(field.clone());
            }
            FieldError::MissingField(field) | FieldError::DuplicateField(field) => segments.push((*field).to_owned()),
            _ => {}
        }
        let path = if segments.is_empty() { "request".to_owned() } else { segments.join(".") };
        RequestError { path, message: inner.to_string() }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Machine-readable receipt reason, e.g. `invalid_request:recipient.email`.
    pub fn reason(&self) -> crate::receipt::Reason {
        crate::receipt::Reason::InvalidRequest(self.path.clone())
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for RequestError {}
