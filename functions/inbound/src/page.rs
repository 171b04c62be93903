//! The HTML pages a person sees, and the headers every answer carries.
//!
//! Pages are plain HTML with one inline style sheet and no script: the
//! Content-Security-Policy allows that sheet by its hash and nothing else, so even a
//! value that escaped escaping could not run. Everything interpolated goes through
//! [`escape`], including category names from a verified token.

use crate::Response;

/// The page's only style sheet; [`CONTENT_SECURITY_POLICY`] names its SHA-256 (a unit
/// test recomputes it, so editing one without the other fails).
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;\
line-height:1.5;color:#222}button{font:inherit;padding:.6rem 1.4rem;cursor:pointer}";

/// No script, no plugin, no framing, no outside resource; forms post only to this origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
style-src 'sha256-pBkI2Qkpu4beWtbVzsnMG/kubX8AIULYZJPG7uY+s3k='; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers on every answer: nothing is cached, indexed, framed, sniffed or referred.
pub fn security_headers() -> Vec<(&'static str, String)> {
    vec![
        ("Cache-Control", "no-store".to_owned()),
        ("X-Robots-Tag", "noindex".to_owned()),
        ("Referrer-Policy", "no-referrer".to_owned()),
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY.to_owned()),
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("X-Frame-Options", "DENY".to_owned()),
    ]
}

pub use herald::render::escape_html as escape;

/// A page: `title` is text, `body` is HTML already escaped by its builder.
pub fn html(status: u16, title: &str, body: &str) -> Response {
    let title = escape(title);
    let text = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n"
    );
    let mut response = Response::new(status, "text/html; charset=utf-8", text);
    response.headers.extend(security_headers());
    response
}

/// A paragraph of escaped text.
pub fn para(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

/// The button that unsubscribes: a POST to the page's own URL (no `action`, so the
/// token travels exactly as the mail gave it) carrying RFC 8058's one-click field.
pub fn one_click_form(category: &str) -> String {
    format!(
        "<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
         <button type=\"submit\">Unsubscribe from {}</button></form>",
        escape(category)
    )
}

pub fn confirm(category: &str) -> Response {
    let body = [
        para(&format!("You will no longer receive {category} email from us.")),
        one_click_form(category),
        para("If you did not mean to come here, close this page: nothing has changed."),
    ]
    .concat();
    html(200, &format!("Unsubscribe from {category}?"), &body)
}

pub fn unsubscribed(category: &str) -> Response {
    let body = [
        para(&format!("You will no longer receive {category} email from us.")),
        para("A message already on its way may still arrive. Other email, such as receipts, is not affected."),
    ]
    .concat();
    html(200, "You are unsubscribed", &body)
}

pub fn already_used(category: &str) -> Response {
    let body = para(&format!(
        "This link was already used: you are unsubscribed from {category}. There is nothing more to do."
    ));
    html(409, "Already unsubscribed", &body)
}

/// A POST without RFC 8058's `List-Unsubscribe=One-Click`: offer the real button.
pub fn not_one_click(category: &str) -> Response {
    let body =
        [para("This request did not ask to unsubscribe. Use the button to do so."), one_click_form(category)].concat();
    html(400, &format!("Unsubscribe from {category}?"), &body)
}

pub fn malformed() -> Response {
    let body = para(
        "This unsubscribe link is incomplete or damaged. Open the link again from the email, copying all of it, \
         or use the unsubscribe link in a more recent email from us.",
    );
    html(400, "This link does not work", &body)
}

pub fn invalid() -> Response {
    let body = para(
        "This unsubscribe link is not valid. Use the unsubscribe link in a recent email from us, \
         or reply to that email to ask us to stop.",
    );
    html(403, "This link is not valid", &body)
}

pub fn expired() -> Response {
    let body = para(
        "This unsubscribe link has expired. Use the unsubscribe link in a more recent email from us, \
         or reply to that email to ask us to stop.",
    );
    html(410, "This link has expired", &body)
}

pub fn busy() -> Response {
    let mut response = html(503, "One moment", &para("We are still handling this request. Try again in a minute."));
    response.headers.push(("Retry-After", crate::unsubscribe::RETRY_AFTER_SECONDS.to_string()));
    response
}

pub fn failed() -> Response {
    html(
        500,
        "Something went wrong",
        &para("We could not unsubscribe you just now: nothing has changed. Try the link again in a few minutes."),
    )
}

pub fn not_found() -> Response {
    html(404, "Not found", &para("There is nothing at this address."))
}

pub fn method_not_allowed(allow: &str) -> Response {
    let mut response = html(405, "Method not allowed", &para(&format!("This address answers {allow} only.")));
    response.headers.push(("Allow", allow.to_owned()));
    response
}

pub fn too_large() -> Response {
    html(413, "Request too large", &para("The request is larger than this address accepts."))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use sha2::Digest as _;

    use super::*;

    #[test]
    fn the_policy_names_the_style_sheet_by_its_hash() {
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE.as_bytes()));
        assert!(CONTENT_SECURITY_POLICY.contains(&format!("'sha256-{hash}'")), "style hash is {hash}");
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src"), "default-src 'none' covers scripts");
        assert!(CONTENT_SECURITY_POLICY.starts_with("default-src 'none';"));
    }

    #[test]
    fn everything_interpolated_is_escaped() {
        let nasty = "<script>alert(\"x\")</script>&'";
        let page = confirm(nasty);
        assert!(!page.body.contains("<script>"), "{}", page.body);
        assert!(page.body.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"), "{}", page.body);
        assert!(!page.body.contains("<script"));
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
    }
}
