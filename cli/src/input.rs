//! Reading request files: one JSON document (an object or an array of them) or
//! JSON Lines, from a path or `-` (stdin).

use std::io::Read;
use std::path::Path;

/// One request's raw JSON and where it came from (`file:line`, `file[index]`).
pub struct Item {
    pub source: String,
    pub raw: String,
}

pub fn read(path: &Path) -> std::io::Result<Vec<Item>> {
    let (name, text) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        ("stdin".to_owned(), text)
    } else {
        (path.display().to_string(), std::fs::read_to_string(path)?)
    };
    Ok(split(&name, &text))
}

/// A whole-file JSON object is one request and a whole-file array is a list of
/// them; anything else is JSON Lines, where each non-blank line stands alone, so
/// one bad line is one rejected request and the others still go through.
///
/// Items keep their exact text, so each is parsed like a queued message: a key given
/// twice is refused the same way in a file, an array or JSON Lines.
pub fn split(name: &str, text: &str) -> Vec<Item> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Ok(items) = serde_json::from_str::<Vec<&serde_json::value::RawValue>>(text) {
        return items
            .into_iter()
            .enumerate()
            .map(|(i, v)| Item { source: format!("{name}[{i}]"), raw: v.get().to_owned() })
            .collect();
    }
    if text.trim_start().starts_with('{') && serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok() {
        return vec![Item { source: name.to_owned(), raw: text.trim().to_owned() }];
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| Item { source: format!("{name}:{}", i + 1), raw: l.to_owned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_array_and_lines() {
        assert_eq!(split("f", r#"{"id":"a"}"#).len(), 1);
        let arr = split("f", r#"[{"id":"a"}, {"id":"b"}, 3]"#);
        assert_eq!(arr.iter().map(|i| i.source.as_str()).collect::<Vec<_>>(), ["f[0]", "f[1]", "f[2]"]);
        let lines = split("f", "{\"id\":\"a\"}\n\n{not json\n{\"id\":\"c\"}\n");
        assert_eq!(lines.iter().map(|i| i.source.as_str()).collect::<Vec<_>>(), ["f:1", "f:3", "f:4"]);
        assert_eq!(lines[1].raw, "{not json");
    }

    #[test]
    fn items_keep_their_text_so_repeated_keys_are_seen() {
        let arr = split("f", r#"[{"id":"a","id":"b"}]"#);
        assert_eq!(arr[0].raw, r#"{"id":"a","id":"b"}"#);
        let one = split("f", "{\"id\": \"a\",\n \"id\": \"b\"}\n");
        assert_eq!(one.len(), 1);
        assert!(one[0].raw.contains(r#""id": "a""#) && one[0].raw.contains(r#""id": "b""#));
    }

    #[test]
    fn pretty_printed_single_object_is_one_request() {
        let items = split("f", "{\n  \"id\": \"a\"\n}\n");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].source, "f");
    }
}
