use std::fmt;

/// Why a request was refused, naming the field a human has to fix.
///
/// `path` is a dotted JSON path (`recipient.email`, `data`, `json` for input that is
/// not JSON at all); it becomes the machine-readable reason `invalid_request:<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    path: String,
    message: String,
}

impl RequestError {
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError { path: path.into(), message: message.into() }
    }

    /// Input that is not a single well-formed JSON document.
    pub fn syntax(e: &serde_json::Error) -> Self {
        RequestError { path: "json".into(), message: format!("not valid JSON: {e}") }
    }

    pub fn from_serde(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => Self::syntax(&inner),
            _ => {
                let message = strip_position(&inner);
                Self::from_data_error(&path, message)
            }
        }
    }

    fn from_data_error(path: &str, message: String) -> Self {
        let mut parent = if path == "." { String::new() } else { path.to_owned() };
        // serde_path_to_error already ends the path with an unknown key; drop it so
        // it is not named twice.
        if let Some(field) = backticked_after(&message, "unknown field `")
            && (parent == field || parent.ends_with(&format!(".{field}")))
        {
            parent.truncate(parent.len() - field.len());
            let trimmed = parent.trim_end_matches('.').len();
            parent.truncate(trimmed);
        }
        let join = |field: &str| {
            if parent.is_empty() { field.to_owned() } else { format!("{parent}.{field}") }
        };
        // serde reports unknown and missing fields at the parent; point at the field.
        if let Some(field) = backticked_after(&message, "unknown field `") {
            let expected = expected_names(&message);
            let hint = closest(field, &expected).map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default();
            let allowed = if expected.is_empty() {
                String::new()
            } else {
                format!("; allowed fields here: {}", expected.join(", "))
            };
            return RequestError::field(join(field), format!("unknown field{hint}{allowed}"));
        }
        if let Some(field) = backticked_after(&message, "missing field `") {
            return RequestError::field(join(field), "missing: this field is required");
        }
        RequestError::field(if parent.is_empty() { "request".to_owned() } else { parent }, message)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Machine-readable receipt reason, e.g. `invalid_request:recipient.email`.
    pub fn reason(&self) -> String {
        format!("invalid_request:{}", self.path)
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for RequestError {}

/// serde_json appends " at line L column C"; the path already says where.
fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).map(str::to_owned).unwrap_or(full)
}

fn backticked_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

fn expected_names(message: &str) -> Vec<&str> {
    // serde says "expected `a`", "expected `a` or `b`" or "expected one of `a`, `b`, ...".
    let Some((_, tail)) = message.split_once("expected ") else {
        return Vec::new();
    };
    tail.split('`').skip(1).step_by(2).collect()
}

/// The known name within edit distance 2 of a misspelt one, if any.
pub(crate) fn closest<'a>(field: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(field, k), *k)).filter(|(d, _)| *d <= 2).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
