//! The agent's root and web UI paths, as Consul's HTTP server answers them.
//!
//! With the UI on (`-ui`, `ui_config.enabled`, always with `-dev`), `GET /` redirects to the
//! UI's content path (`/ui/` by default, `ui_config.content_path`) and that path serves a
//! small read-only page over this same API: services with their check counts, nodes with
//! their health, and the KV tree. With the UI off, `GET /` answers 200 with a line saying
//! so, as Consul's `Index` handler does. Either way `/` answers 2xx after redirects, which
//! health checks pointed at an agent's root (a common Consul habit) rely on.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;

/// The page served at the UI's content path.
const INDEX_HTML: &str = include_str!("ui/index.html");

/// What `GET /` says when the UI is off (Consul's text, naming the key that turns it on).
const UI_DISABLED: &str = "Meridian Agent: UI disabled. To enable, set ui_config.enabled=true in the agent configuration and restart.";

/// Routes for `/` and, when the UI is on, its content path.
pub(super) fn routes(ui_path: Option<&str>) -> Router<ApiState> {
    let Some(path) = ui_path else {
        return Router::new().route("/", get(|| async { UI_DISABLED }));
    };
    let dir = format!("/{}/", path.trim_matches('/'));
    let bare = dir.trim_end_matches('/').to_string();
    let target = dir.clone();
    let to_dir = move || {
        let target = target.clone();
        // 301, as Consul's `http.Redirect(..., StatusMovedPermanently)`.
        async move { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, target)]) }
    };
    let mut r = Router::new()
        .route("/", get(to_dir.clone()))
        .route(&dir, get(index))
        .route(&format!("{dir}{{*rest}}"), get(index));
    if !bare.is_empty() {
        r = r.route(&bare, get(to_dir));
    }
    r
}

async fn index(State(_): State<ApiState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        INDEX_HTML,
    )
        .into_response()
}
