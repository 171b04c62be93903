//! Reading RFC 8058's one-click request: a POST whose form body carries
//! `List-Unsubscribe=One-Click`, as `application/x-www-form-urlencoded` (what mail
//! providers and the confirmation page send) or `multipart/form-data` (which RFC 8058
//! also allows).

/// The field and value RFC 8058 puts in the POST body.
const FIELD: &str = "List-Unsubscribe";
const VALUE: &str = "One-Click";

/// Whether `body` is a one-click unsubscribe request. Other fields are ignored; an
/// unknown or missing content type is read as urlencoded (what RFC 8058 specifies).
pub fn is_one_click(content_type: Option<&str>, body: &[u8]) -> bool {
    let content_type = content_type.unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("multipart/form-data") {
        return match boundary(content_type) {
            Some(boundary) => multipart_has_one_click(body, &boundary),
            None => false,
        };
    }
    form_urlencoded::parse(body).any(|(name, value)| name == FIELD && value.trim() == VALUE)
}

/// The `boundary` parameter of a multipart content type, unquoted.
fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        // RFC 2046: 1 to 70 characters.
        (!value.is_empty() && value.len() <= 70).then(|| value.to_owned())
    })
}

/// Whether one part of the multipart `body` is the field `List-Unsubscribe` with the
/// value `One-Click`.
fn multipart_has_one_click(body: &[u8], boundary: &str) -> bool {
    let Ok(text) = std::str::from_utf8(body) else { return false };
    let delimiter = format!("--{boundary}");
    // The preamble before the first delimiter, then one part per delimiter; the
    // close delimiter's part starts with "--".
    text.split(delimiter.as_str()).skip(1).filter(|part| !part.starts_with("--")).any(|part| {
        let part = part.strip_prefix("\r\n").or_else(|| part.strip_prefix('\n')).unwrap_or(part);
        let Some((headers, value)) = part.split_once("\r\n\r\n").or_else(|| part.split_once("\n\n")) else {
            return false;
        };
        let named = headers.lines().any(|line| {
            let Some((name, rest)) = line.split_once(':') else { return false };
            name.trim().eq_ignore_ascii_case("content-disposition")
                && rest.split(';').any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("name") && v.trim().trim_matches('"') == FIELD
                    })
                })
        });
        // The part's value ends with the CRLF that precedes the next delimiter.
        named && value.trim_end_matches(['\r', '\n']).trim() == VALUE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencoded() {
        let form = Some("application/x-www-form-urlencoded");
        assert!(is_one_click(form, b"List-Unsubscribe=One-Click"));
        assert!(is_one_click(form, b"a=b&List-Unsubscribe=One-Click&c"));
        assert!(is_one_click(
            Some("application/x-www-form-urlencoded; charset=utf-8"),
            b"List-Unsubscribe=One%2DClick"
        ));
        assert!(is_one_click(None, b"List-Unsubscribe=One-Click"), "RFC 8058 says urlencoded");
        assert!(!is_one_click(form, b""));
        assert!(!is_one_click(form, b"List-Unsubscribe=Two-Click"));
        assert!(!is_one_click(form, b"list-unsubscribe=one-click"));
        assert!(!is_one_click(form, b"List-Unsubscribe"));
    }

    #[test]
    fn multipart() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n\
                    --XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(is_one_click(Some("multipart/form-data; boundary=XyZ"), body.as_bytes()));
        assert!(is_one_click(Some("Multipart/Form-Data; boundary=\"XyZ\""), body.as_bytes()));
        assert!(!is_one_click(Some("multipart/form-data; boundary=Other"), body.as_bytes()));
        assert!(!is_one_click(Some("multipart/form-data"), body.as_bytes()), "no boundary");
        let wrong = body.replace("One-Click", "No");
        assert!(!is_one_click(Some("multipart/form-data; boundary=XyZ"), wrong.as_bytes()));
        let only_other = "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        assert!(!is_one_click(Some("multipart/form-data; boundary=XyZ"), only_other.as_bytes()));
    }
}
