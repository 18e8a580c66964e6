//! The agent's root and web UI paths, as Consul's HTTP server answers them.
//!
//! With the UI on (`-ui`, `ui_config.enabled`, always with `-dev`), `GET /` redirects to the
//! UI's content path (`/ui/` by default, `ui_config.content_path`), under which the web UI
//! built from `ui/` (Preact + TypeScript, see ui/README.md) is served from `ui/dist`,
//! embedded in the binary at compile time: nothing is read from disk or fetched at run time.
//! It is a single-page app, so every path under the content path that is not an asset
//! answers its `index.html` (shared links such as `/ui/dc2/services/web` work); the
//! placeholder base path the bundle is built with is rewritten to the content path there.
//! Hashed assets (`assets/*`) are cached for good, `index.html` is revalidated every time
//! (ETag), and text is gzipped once at start-up for clients that accept it.
//! With the UI off, `GET /` answers 200 with a line saying so, as Consul's `Index` handler
//! does. Either way `/` answers 2xx after redirects, which health checks pointed at an
//! agent's root (a common Consul habit) rely on.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;

/// The built UI (`npm run build` in ui/; the output is committed so no Node is needed to
/// build the agent). `debug-embed` makes debug builds embed it too.
#[derive(rust_embed::RustEmbed)]
#[folder = "../ui/dist/"]
struct Dist;

/// The base path the bundle is built with (ui/vite.config.ts), replaced in `index.html`.
const BASE_PLACEHOLDER: &str = "/__MERIDIAN_UI__/";

/// What `GET /` says when the UI is off (Consul's text, naming the key that turns it on).
const UI_DISABLED: &str = "Meridian Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.";

/// Hashed file names never change content: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The page may load only its own scripts and styles and talk only to this agent.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// One file ready to serve.
struct Asset {
    body: Bytes,
    /// The gzipped body, for text worth compressing.
    gzip: Option<Bytes>,
    content_type: &'static str,
    cache: &'static str,
    etag: HeaderValue,
}

/// Every file of the UI by its path under the content path, and the SPA's page.
struct Site {
    files: HashMap<String, Asset>,
    index: Asset,
}

/// Routes for `/` and, when the UI is on, its content path.
pub(super) fn routes(ui_path: Option<&str>) -> Router<ApiState> {
    let Some(path) = ui_path else {
        return Router::new().route("/", get(|| async { UI_DISABLED }));
    };
    let trimmed = path.trim_matches('/');
    let dir = if trimmed.is_empty() {
        "/".to_string()
    } else {
        format!("/{trimmed}/")
    };
    let bare = dir.trim_end_matches('/').to_string();
    let target = dir.clone();
    let to_dir = move || {
        let target = target.clone();
        // 301, as Consul's `http.Redirect(..., StatusMovedPermanently)`.
        async move { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, target)]) }
    };
    let site = Arc::new(Site::load(&dir));
    let at_dir = site.clone();
    let under_dir = site;
    // At the root (`content_path = "/"`) only the page and its assets: a catch-all there
    // would also answer API paths that no route matches (a client agent forwards those).
    let (wildcard, strip) = if dir == "/" {
        ("/assets/{*rest}".to_string(), "assets/")
    } else {
        (format!("{dir}{{*rest}}"), "")
    };
    let mut r = Router::new()
        .route(
            &dir,
            get(move |h: HeaderMap| {
                let site = at_dir.clone();
                async move { site.serve("", &h) }
            }),
        )
        .route(
            &wildcard,
            get(move |Path(rest): Path<String>, h: HeaderMap| {
                let site = under_dir.clone();
                async move { site.serve(&format!("{strip}{rest}"), &h) }
            }),
        );
    if dir != "/" {
        r = r.route("/", get(to_dir.clone()));
    }
    if !bare.is_empty() {
        r = r.route(&bare, get(to_dir));
    }
    r
}

impl Site {
    /// Reads the embedded files; `dir` is the content path (`/ui/`).
    fn load(dir: &str) -> Self {
        let mut files = HashMap::new();
        let mut index = None;
        for name in Dist::iter() {
            let Some(file) = Dist::get(&name) else {
                continue;
            };
            let content_type = content_type(&name);
            if name == "index.html" {
                let html = String::from_utf8_lossy(&file.data).replace(BASE_PLACEHOLDER, dir);
                index = Some(Asset::new(html.into_bytes(), content_type, "no-cache"));
                continue;
            }
            let cache = if name.starts_with("assets/") {
                IMMUTABLE
            } else {
                "no-cache"
            };
            files.insert(
                name.to_string(),
                Asset::new(file.data.into_owned(), content_type, cache),
            );
        }
        let index = index.unwrap_or_else(|| {
            Asset::new(
                b"<!doctype html><title>Meridian</title>ui/dist has no index.html: run npm run build in ui/".to_vec(),
                "text/html; charset=utf-8",
                "no-cache",
            )
        });
        Self { files, index }
    }

    /// `rest` is the path under the content path (already percent-decoded).
    fn serve(&self, rest: &str, req: &HeaderMap) -> Response {
        if let Some(asset) = self.files.get(rest) {
            return asset.respond(req, false);
        }
        // A missing script or style is a 404, not the page (a stale tab after an upgrade
        // then fails visibly instead of parsing HTML as JavaScript).
        if rest.starts_with("assets/") {
            return (StatusCode::NOT_FOUND, "no such UI asset").into_response();
        }
        self.index.respond(req, true)
    }
}

impl Asset {
    fn new(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, &body);
        let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&digest.as_ref()[..16])))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        let compressible = content_type.starts_with("text/")
            || content_type.starts_with("application/javascript")
            || content_type.starts_with("application/json")
            || content_type.starts_with("image/svg");
        let gzip = (compressible && body.len() > 512)
            .then(|| gzip(&body))
            .flatten();
        Self {
            body: Bytes::from(body),
            gzip,
            content_type,
            cache,
            etag,
        }
    }

    fn respond(&self, req: &HeaderMap, page: bool) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(self.cache));
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if page {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
        }
        if self.gzip.is_some() {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        let fresh = req
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == self.etag));
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        match &self.gzip {
            Some(gz) if accepts_gzip(req) => {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                (StatusCode::OK, headers, gz.clone()).into_response()
            }
            _ => (StatusCode::OK, headers, self.body.clone()).into_response(),
        }
    }
}

fn accepts_gzip(req: &HeaderMap) -> bool {
    req.get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn gzip(body: &[u8]) -> Option<Bytes> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(body).ok()?;
    let out = enc.finish().ok()?;
    (out.len() < body.len()).then(|| Bytes::from(out))
}

/// The content type of a built file, by extension (what Vite emits).
fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "application/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
