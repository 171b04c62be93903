//! The preview's only style sheet and script, served from the binary (no CDN, nothing
//! fetched from elsewhere).

pub(super) const CSS: &str = r#":root { color-scheme: light; --line: #d8dce3; --muted: #5d6573; --accent: #2457d6; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1c2330; background: #f6f7f9; }
body > h1, body > p, body > nav, body > form, body > main { margin-left: 24px; margin-right: 24px; }
main { margin-bottom: 40px; }
.top { display: flex; gap: 16px; align-items: baseline; padding: 10px 24px; background: #1c2330; color: #e8ebf0; }
.top .brand { color: #fff; font-weight: 600; text-decoration: none; }
.top .note { color: #aab2c0; font-size: 13px; }
.top .live { margin-left: auto; font-size: 12px; color: #8fd19e; }
.top .live.off { color: #f2a7a1; }
.muted { color: var(--muted); }
.bad { color: var(--bad); }
.ok { color: #1e7b34; }
code, pre { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { white-space: pre-wrap; word-break: break-word; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px; }
table.list, table.sizes { border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
table.list th, table.list td, table.sizes th, table.sizes td { text-align: left; padding: 6px 12px; border-bottom: 1px solid var(--line); vertical-align: top; }
a { color: var(--accent); }
.crumbs { margin-top: 12px; font-size: 13px; }
.selectors { display: flex; gap: 16px; align-items: center; flex-wrap: wrap; margin-bottom: 12px; }
.tabs { display: flex; gap: 4px; border-bottom: 1px solid var(--line); margin-bottom: 16px; }
.tabs a { padding: 8px 16px; text-decoration: none; border: 1px solid transparent; border-bottom: none; border-radius: 6px 6px 0 0; }
.tabs a.active { background: #fff; border-color: var(--line); color: #1c2330; font-weight: 600; }
.problem { background: #fff4f3; border: 1px solid #f0c4c0; border-radius: 8px; padding: 12px 16px; }
.problem h2 { margin: 0 0 6px; font-size: 16px; color: var(--bad); }
.problem pre { background: #fff; }
dl.headers, dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 0 0 12px; }
dl dt { color: var(--muted); }
dl dd { margin: 0; word-break: break-all; }
.size.warn { color: var(--bad); font-weight: 600; }
.toolbar { display: flex; gap: 6px; margin: 8px 0; }
.toolbar button.active { background: #1c2330; color: #fff; }
.frame-wrap { background: #e9ecf1; border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
#email-frame { display: block; margin: 0 auto; height: 640px; border: 0; background: #fff; width: 100%; max-width: 960px; }
#email-frame.mobile { width: 375px; }
.phone { width: 340px; background: #fff; border: 10px solid #1c2330; border-radius: 32px; padding: 16px 14px 28px; margin-bottom: 12px; }
.phone .sender { text-align: center; font-size: 12px; color: var(--muted); margin-bottom: 12px; }
.phone .bubble { background: #e5e5ea; border-radius: 18px; padding: 8px 12px; white-space: pre-wrap; word-break: break-word; max-width: 85%; }
.push .card { width: 360px; background: #fff; border-radius: 14px; box-shadow: 0 2px 10px rgba(0,0,0,.15); padding: 12px 14px; margin-bottom: 12px; }
.push .app { font-size: 12px; color: var(--muted); text-transform: uppercase; }
.push .title { font-weight: 600; margin-top: 4px; }
.push .body { white-space: pre-wrap; }
"#;

/// Width toggle, selects that submit on change, and the re-render: polls the folder's
/// version every second and swaps in the freshly rendered pane when it changes.
pub(super) const JS: &str = r#""use strict";
(function () {
  var root = document.documentElement;
  var version = root.getAttribute("data-version");
  var width = "desktop";

  function applyWidth() {
    var frame = document.getElementById("email-frame");
    if (frame) { frame.className = width; }
    document.querySelectorAll("[data-width]").forEach(function (b) {
      b.classList.toggle("active", b.getAttribute("data-width") === width);
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-width]");
    if (button) { width = button.getAttribute("data-width"); applyWidth(); }
  });
  document.addEventListener("change", function (event) {
    var select = event.target.closest("select[data-autosubmit]");
    if (select && select.form) { select.form.submit(); }
  });

  function live(on, text) {
    var badge = document.getElementById("live");
    if (badge) { badge.textContent = text; badge.classList.toggle("off", !on); }
  }

  function refresh() {
    return fetch(location.href, { cache: "no-store" }).then(function (r) { return r.text(); }).then(function (html) {
      var fresh = new DOMParser().parseFromString(html, "text/html");
      ["content", "selectors"].forEach(function (id) {
        var now = document.getElementById(id), next = fresh.getElementById(id);
        if (now && next) { now.replaceWith(document.importNode(next, true)); }
      });
      var tabs = document.querySelector(".tabs"), nextTabs = fresh.querySelector(".tabs");
      if (tabs && nextTabs) { tabs.replaceWith(document.importNode(nextTabs, true)); }
      applyWidth();
    });
  }

  function poll() {
    fetch("/api/version", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (body) {
      if (body.version !== version) {
        version = body.version;
        root.setAttribute("data-version", version);
        return refresh().then(function () { live(true, "re-rendered " + new Date().toLocaleTimeString()); });
      }
      live(true, "live");
    }).catch(function () { live(false, "server stopped"); }).then(function () { setTimeout(poll, 1000); });
  }

  applyWidth();
  setTimeout(poll, 1000);
})();
"#;
