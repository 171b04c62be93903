//! `herald preview`: a local web server that shows each template rendered with one of
//! its fixtures, as a send would build it (the authoring `Sampler`: the pipeline's own
//! rendering and checks, with no senders). Bound to 127.0.0.1 only; requests for any
//! other host are refused (DNS rebinding); names in URLs are looked up in the catalogue
//! and the fixture list, never joined into a path.

mod assets;
mod pages;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HOST};
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Args;
use herald::authoring::{self, Fixture, SampleError, SampleSpec, Sampler};
use herald::config::Settings;
use herald::pipeline::{Prepared, PreviewError};
use herald::render::{Catalogue, CatalogueError, RenderErrorOrLookup, TemplateInfo};
use herald::request::{Channel, Locale};
use serde_json::{Value, json};

#[derive(Args)]
pub struct PreviewArgs {
    /// Template folder to serve (default: the configured `templates`).
    dir: Option<PathBuf>,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 4400)]
    port: u16,
    /// Open the page in the system's browser once the server listens.
    #[arg(long)]
    open: bool,
}

pub async fn run(args: &PreviewArgs, settings: Settings) -> Result<ExitCode> {
    let dir = args.dir.clone().unwrap_or_else(|| settings.templates.clone());
    if !dir.is_dir() {
        bail!("template folder {} not found", dir.display());
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, args.port)))
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{} (--port 0 picks a free port)", args.port))?;
    let port = listener.local_addr()?.port();
    let server = Arc::new(Server::new(dir, Arc::new(settings), port));
    let url = format!("http://127.0.0.1:{port}/");
    {
        // Tests and scripts wait for this line: flushed before the first request is served.
        let mut out = std::io::stdout().lock();
        writeln!(out, "herald preview: {url}")?;
        out.flush()?;
    }
    eprintln!("herald preview: serving {} (nothing is sent; Ctrl-C stops)", server.dir.display());
    if args.open {
        open_browser(&url);
    }
    axum::serve(listener, router(server)).await.context("the preview server stopped")?;
    Ok(ExitCode::SUCCESS)
}

fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/t/{name}", get(template_page))
        .route("/t/{name}/email.html", get(email_html))
        .route("/api/version", get(version))
        .route("/api/templates", get(api_templates))
        .route("/api/t/{name}", get(api_render))
        .route("/assets/preview.css", get(|| async { asset("text/css; charset=utf-8", assets::CSS) }))
        .route("/assets/preview.js", get(|| async { asset("text/javascript; charset=utf-8", assets::JS) }))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(server.clone(), guard))
        .with_state(server)
}

/// Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") { "open" } else { "xdg-open" };
    let spawned = if cfg!(windows) {
        std::process::Command::new("cmd").args(["/C", "start", "", url]).spawn()
    } else {
        std::process::Command::new(program).arg(url).spawn()
    };
    if let Err(e) = spawned {
        eprintln!("herald preview: could not open a browser ({e}); open {url} yourself");
    }
}

/// The templates folder and what was last loaded from it.
struct Server {
    dir: PathBuf,
    settings: Arc<Settings>,
    port: u16,
    current: Mutex<Arc<Snapshot>>,
}

/// The catalogue as compiled from one state of the folder.
struct Snapshot {
    fingerprint: u64,
    sampler: Result<Sampler, CatalogueError>,
}

impl Snapshot {
    fn version(&self) -> String {
        format!("{:016x}", self.fingerprint)
    }
}

impl Server {
    fn new(dir: PathBuf, settings: Arc<Settings>, port: u16) -> Self {
        let fingerprint = fingerprint(&dir);
        let snapshot = Arc::new(load(&dir, &settings, fingerprint));
        Server { dir, settings, port, current: Mutex::new(snapshot) }
    }

    /// The catalogue for the folder as it is now: compiled again when any file changed.
    fn snapshot(&self) -> Arc<Snapshot> {
        let now = fingerprint(&self.dir);
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.fingerprint != now {
            *current = Arc::new(load(&self.dir, &self.settings, now));
        }
        current.clone()
    }

    /// `127.0.0.1:<port>` or `localhost:<port>`: a page of another site that resolves its
    /// own name to 127.0.0.1 (DNS rebinding) sends its own name and is refused.
    fn allowed_host(&self, host: &str) -> bool {
        let (name, port) = match host.rsplit_once(':') {
            Some((name, port)) => (name, port.parse::<u16>().ok()),
            // Browsers leave out the default port.
            None => (host, Some(80)),
        };
        port == Some(self.port) && (name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost"))
    }
}

fn load(dir: &Path, settings: &Arc<Settings>, fingerprint: u64) -> Snapshot {
    let sampler = Catalogue::load(dir).map(|c| Sampler::new(Arc::new(c), settings.clone()));
    Snapshot { fingerprint, sampler }
}

/// Paths, sizes and modification times of every file below `dir` (hidden ones skipped, as
/// the catalogue skips them): cheap enough to compute on every request.
fn fingerprint(dir: &Path) -> u64 {
    let mut files = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0u32)];
    let mut hasher = DefaultHasher::new();
    while let Some((folder, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            folder.hash(&mut hasher);
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if entry.file_name().to_str().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            // A symlink loop must not hang every request.
            if meta.is_dir() {
                if depth < 16 {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default();
            files.push((path, meta.len(), modified));
        }
    }
    files.sort();
    files.hash(&mut hasher);
    hasher.finish()
}

/// Refuses other hosts, and sets the headers every answer carries.
async fn guard(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let host_ok = request.headers().get(HOST).and_then(|h| h.to_str().ok()).is_some_and(|h| server.allowed_host(h));
    // An absolute-form target (`GET http://host/ HTTP/1.1`) names its host too.
    let target_ok = request.uri().authority().is_none_or(|a| server.allowed_host(a.as_str()));
    let mut response = if host_ok && target_ok {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            "herald preview answers requests for 127.0.0.1 or localhost at its own port only\n",
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    headers.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("no-referrer"));
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    }
    response
}

/// The preview's own pages: its script and style files, nothing from elsewhere.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
                        frame-ancestors 'none'";

/// The email's HTML: its own opaque origin, no script, no form, nothing fetched but
/// images and inline styles (what a mail client allows, roughly).
const EMAIL_CSP: &str =
    "sandbox; default-src 'none'; img-src https: data:; style-src 'unsafe-inline'; frame-ancestors 'self'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn not_found(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.snapshot();
    html(StatusCode::NOT_FOUND, pages::not_found(&snapshot.version(), "Nothing here."))
}

async fn version(State(server): State<Arc<Server>>) -> Response {
    axum::Json(json!({ "version": server.snapshot().version() })).into_response()
}

/// One template as the index lists it.
struct Listing {
    info: TemplateInfo,
    fixtures: Result<Vec<Fixture>, CatalogueError>,
}

/// A template's fixtures, or the first file that is not one (shown as the problem to fix).
fn template_fixtures(dir: &Path) -> Result<Vec<Fixture>, CatalogueError> {
    let (fixtures, bad) = authoring::fixtures(dir);
    match bad.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(fixtures),
    }
}

fn listings(server: &Server, catalogue: &Catalogue) -> Vec<Listing> {
    catalogue
        .names()
        .filter_map(|name| catalogue.info(name))
        .map(|info| {
            let fixtures = template_fixtures(&server.dir.join(&info.name));
            Listing { info, fixtures }
        })
        .collect()
}

async fn index(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.snapshot();
    let (list, problem) = match &snapshot.sampler {
        Ok(sampler) => (listings(&server, sampler.catalogue()), None),
        Err(e) => (Vec::new(), Some(Problem::catalogue(e))),
    };
    html(StatusCode::OK, pages::index(&snapshot.version(), &server.dir.display().to_string(), &list, problem.as_ref()))
}

async fn api_templates(State(server): State<Arc<Server>>) -> Response {
    let snapshot = server.snapshot();
    let body = match &snapshot.sampler {
        Ok(sampler) => {
            let list: Vec<Value> = listings(&server, sampler.catalogue())
                .iter()
                .map(|l| {
                    json!({
                        "name": l.info.name,
                        "description": l.info.description,
                        "channels": l.info.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                        "default_locale": l.info.default_locale,
                        "locales": l.info.locales,
                        "category": l.info.category,
                        "fixtures": match &l.fixtures {
                            Ok(f) => json!(f.iter().map(|f| f.name.as_str()).collect::<Vec<_>>()),
                            Err(e) => json!({ "error": e.message, "location": e.location() }),
                        },
                    })
                })
                .collect();
            json!({ "version": snapshot.version(), "templates": list })
        }
        Err(e) => json!({ "version": snapshot.version(), "error": Problem::catalogue(e).to_json() }),
    };
    axum::Json(body).into_response()
}

/// What the URL's query asks for; every value is checked against the catalogue.
#[derive(Default)]
struct Query {
    channel: Option<String>,
    locale: Option<String>,
    fixture: Option<String>,
}

impl Query {
    fn parse(uri: &Uri) -> Self {
        let mut q = Query::default();
        for (key, value) in form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
            let value = Some(value.into_owned()).filter(|v| !v.is_empty());
            match key.as_ref() {
                "channel" => q.channel = value,
                "locale" => q.locale = value,
                "fixture" => q.fixture = value,
                _ => {}
            }
        }
        q
    }
}

/// A template, channel, locale and fixture, all found in the catalogue.
struct Selection {
    info: TemplateInfo,
    channel: Channel,
    /// None: the template's default locale.
    locale: Option<Locale>,
    fixtures: Result<Vec<Fixture>, CatalogueError>,
    fixture: Fixture,
}

impl Selection {
    fn spec(&self) -> SampleSpec<'_> {
        SampleSpec {
            template: &self.info.name,
            channel: self.channel,
            locale: self.locale.as_ref(),
            fixture: &self.fixture,
        }
    }

    /// The query string that selects this again, with another channel if given.
    fn query(&self, channel: Channel) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("channel", channel.as_str());
        if let Some(l) = &self.locale {
            q.append_pair("locale", l.as_str());
        }
        if !self.fixture.path.is_empty() {
            q.append_pair("fixture", &self.fixture.name);
        }
        q.finish()
    }
}

/// Why a URL selects nothing: answered as a page, never a 500.
enum Refusal {
    /// The catalogue does not load: shown in place of the template.
    Catalogue(Problem),
    NotFound(&'static str),
    BadRequest(&'static str),
}

fn select(server: &Server, catalogue: &Catalogue, name: &str, query: &Query) -> Result<Selection, Refusal> {
    // The name only ever selects an entry; the catalogue's own string is used from here on.
    let info = catalogue.info(name).ok_or(Refusal::NotFound("No template by that name."))?;
    let channel = match query.channel.as_deref() {
        None => info.channels.first().copied().unwrap_or(Channel::Email),
        Some(c) => Channel::ALL
            .into_iter()
            .find(|ch| ch.as_str() == c)
            .ok_or(Refusal::BadRequest("The channel is email, sms or push."))?,
    };
    let locale = match query.locale.as_deref() {
        None => None,
        Some(tag) => {
            let declared = info.locales.iter().chain(info.default_locale.as_ref()).find(|l| l.as_str() == tag);
            let tag = declared.ok_or(Refusal::NotFound("The template declares no such locale."))?;
            Some(Locale::parse(tag).map_err(|_| Refusal::NotFound("The template declares no such locale."))?)
        }
    };
    let fixtures = template_fixtures(&server.dir.join(&info.name));
    let fixture = match (&fixtures, query.fixture.as_deref()) {
        (Ok(list), Some(wanted)) => list
            .iter()
            .find(|f| f.name == wanted)
            .cloned()
            .ok_or(Refusal::NotFound("The template has no such fixture."))?,
        (Ok(list), None) => {
            list.iter().find(|f| f.name == "default").or(list.first()).cloned().unwrap_or_else(Fixture::empty)
        }
        // Shown as the pane's problem; the query cannot name one of an unreadable list.
        (Err(_), Some(_)) => return Err(Refusal::NotFound("The template has no such fixture.")),
        (Err(_), None) => Fixture::empty(),
    };
    Ok(Selection { info, channel, locale, fixtures, fixture })
}

/// Something a template author has to fix, with where.
struct Problem {
    title: String,
    message: String,
    /// `path[:line[:column]]`.
    location: Option<String>,
}

impl Problem {
    fn catalogue(e: &CatalogueError) -> Self {
        Problem {
            title: "The template folder does not load".into(),
            message: e.message.clone(),
            location: Some(e.location()),
        }
    }

    fn fixture(e: &CatalogueError) -> Self {
        Problem { title: "The fixture does not load".into(), message: e.message.clone(), location: Some(e.location()) }
    }

    fn sample(e: &SampleError, selection: &Selection, catalogue: &Catalogue) -> Self {
        match e {
            SampleError::Fixture(m) => Problem {
                title: "The fixture's recipient settings are not valid".into(),
                message: m.clone(),
                location: Some(selection.fixture.path.clone()).filter(|p| !p.is_empty()),
            },
            SampleError::Preview(PreviewError::Render(RenderErrorOrLookup::Render(r))) => {
                // The file to open (the partial the error is in, else the part's file in
                // the folder that served it), then the line, as editors read it.
                let mut file = catalogue.error_file(r).unwrap_or_else(|| selection.info.origin.clone());
                if let Some(line) = r.line {
                    file = format!("{file}:{line}");
                    if let Some(column) = r.column {
                        file = format!("{file}:{column}");
                    }
                }
                Problem { title: "The template does not render".into(), message: e.to_string(), location: Some(file) }
            }
            SampleError::Preview(PreviewError::Render(RenderErrorOrLookup::Lookup(_))) => {
                Problem { title: "Nothing to show".into(), message: e.to_string(), location: None }
            }
            SampleError::Preview(PreviewError::Check { .. }) => Problem {
                title: "A send would fail after rendering".into(),
                message: e.to_string(),
                location: Some(selection.info.origin.clone()),
            },
        }
    }

    fn to_json(&self) -> Value {
        json!({ "title": self.title, "message": self.message, "location": self.location })
    }
}

/// The sample's message, or what stops it.
fn render(sampler: &Sampler, selection: &Selection) -> Result<Prepared, Problem> {
    if let Err(e) = &selection.fixtures {
        return Err(Problem::fixture(e));
    }
    sampler.render(&selection.spec()).map_err(|e| Problem::sample(&e, selection, sampler.catalogue()))
}

/// The template, channel, locale and fixture a URL names, each found in the catalogue.
fn resolve<'a>(
    server: &Server,
    snapshot: &'a Snapshot,
    name: &str,
    uri: &Uri,
) -> Result<(&'a Sampler, Selection), Refusal> {
    match &snapshot.sampler {
        Ok(sampler) => select(server, sampler.catalogue(), name, &Query::parse(uri)).map(|s| (sampler, s)),
        Err(e) => Err(Refusal::Catalogue(Problem::catalogue(e))),
    }
}

/// The page that says why a URL selects nothing.
fn refused(snapshot: &Snapshot, refusal: Refusal) -> Response {
    let version = snapshot.version();
    match refusal {
        Refusal::Catalogue(problem) => html(StatusCode::OK, pages::problem_page(&version, &problem)),
        Refusal::NotFound(why) => html(StatusCode::NOT_FOUND, pages::not_found(&version, why)),
        Refusal::BadRequest(why) => html(StatusCode::BAD_REQUEST, pages::not_found(&version, why)),
    }
}

async fn template_page(State(server): State<Arc<Server>>, UrlPath(name): UrlPath<String>, uri: Uri) -> Response {
    let snapshot = server.snapshot();
    let (sampler, selection) = match resolve(&server, &snapshot, &name, &uri) {
        Ok(found) => found,
        Err(refusal) => return refused(&snapshot, refusal),
    };
    let category = sampler.category(&selection.spec());
    let rendered = render(sampler, &selection);
    html(StatusCode::OK, pages::template(&snapshot.version(), &selection, &category, &rendered))
}

/// The email's HTML alone, for the page's sandboxed iframe.
async fn email_html(State(server): State<Arc<Server>>, UrlPath(name): UrlPath<String>, uri: Uri) -> Response {
    let snapshot = server.snapshot();
    let (sampler, mut selection) = match resolve(&server, &snapshot, &name, &uri) {
        Ok(found) => found,
        Err(refusal) => return refused(&snapshot, refusal),
    };
    selection.channel = Channel::Email;
    let body = match render(sampler, &selection) {
        Ok(Prepared::Email(email)) => email.html,
        // The page shows the problem beside the frame; the frame stays empty.
        _ => String::new(),
    };
    (StatusCode::OK, [(CONTENT_TYPE, "text/html; charset=utf-8"), (CONTENT_SECURITY_POLICY, EMAIL_CSP)], body)
        .into_response()
}

/// The same sample as JSON (scripts and tests).
async fn api_render(State(server): State<Arc<Server>>, UrlPath(name): UrlPath<String>, uri: Uri) -> Response {
    let snapshot = server.snapshot();
    let version = snapshot.version();
    let (sampler, selection) = match resolve(&server, &snapshot, &name, &uri) {
        Ok(found) => found,
        Err(Refusal::Catalogue(p)) => {
            return axum::Json(json!({ "version": version, "error": p.to_json() })).into_response();
        }
        Err(Refusal::NotFound(why)) => {
            return (StatusCode::NOT_FOUND, axum::Json(json!({ "error": why }))).into_response();
        }
        Err(Refusal::BadRequest(why)) => {
            return (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": why }))).into_response();
        }
    };
    let mut body = json!({
        "version": version,
        "template": selection.info.name,
        "channel": selection.channel.as_str(),
        "locale": selection.locale.as_ref().map(|l| l.as_str()),
        "fixture": selection.fixture.name,
        "category": sampler.category(&selection.spec()),
    });
    match render(sampler, &selection) {
        Ok(prepared) => body["message"] = pages::message_json(&prepared),
        Err(p) => body["error"] = p.to_json(),
    }
    axum::Json(body).into_response()
}
