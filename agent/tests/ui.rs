//! The agent's root path and web UI, as Consul answers them: `/` redirects to `/ui/` when
//! the UI is on (always with `-dev`) and says the UI is off otherwise. Health checks that
//! point at an agent's own root (py-consul's suite does) must pass either way.

mod common;

use std::time::Duration;

use common::{Agent, wait_until};

fn no_redirects() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[test]
fn dev_agent_redirects_root_to_the_ui_which_reads_the_api() {
    let agent = Agent::dev();
    let client = no_redirects();

    let root = client.get(format!("{}/", agent.url)).send().expect("GET /");
    assert_eq!(root.status().as_u16(), 301, "Consul answers / with 301");
    assert_eq!(
        root.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/ui/")
    );
    let bare = client
        .get(format!("{}/ui", agent.url))
        .send()
        .expect("GET /ui");
    assert_eq!(bare.status().as_u16(), 301);

    // Every path under /ui/ that is not an asset is the single-page app (shared links work),
    // revalidated on every load.
    let mut script = String::new();
    for path in ["/ui/", "/ui/dc1/services", "/ui/dc2/kv/config/"] {
        let page = client
            .get(format!("{}{path}", agent.url))
            .send()
            .expect("GET");
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let h = page.headers().clone();
        let ctype = h["content-type"].to_str().unwrap_or("");
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let html = page.text().unwrap_or_default();
        assert!(html.contains("<title>Meridian</title>"), "{path}: {html}");
        assert!(
            !html.contains("__MERIDIAN_UI__"),
            "the base path is rewritten: {html}"
        );
        script = html
            .split("src=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or_default()
            .to_string();
        assert!(script.starts_with("/ui/assets/"), "{path}: {script}");
    }

    // The bundle is served from the binary, with its type, cached for good, gzipped on request.
    let js = client
        .get(format!("{}{script}", agent.url))
        .header("accept-encoding", "gzip")
        .send()
        .expect("GET script");
    assert_eq!(js.status().as_u16(), 200, "{script}");
    let h = js.headers().clone();
    assert!(
        h["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/javascript"),
        "{h:?}"
    );
    assert!(
        h["cache-control"]
            .to_str()
            .unwrap_or("")
            .contains("immutable"),
        "{h:?}"
    );
    assert_eq!(h["content-encoding"], "gzip");
    let etag = h["etag"].clone();
    let again = client
        .get(format!("{}{script}", agent.url))
        .header("if-none-match", etag)
        .send()
        .expect("GET script again");
    assert_eq!(again.status().as_u16(), 304, "revalidation by ETag");
    let plain = client
        .get(format!("{}{script}", agent.url))
        .send()
        .expect("GET script without gzip");
    assert!(plain.headers().get("content-encoding").is_none());
    let code = plain.text().unwrap_or_default();
    for endpoint in ["/v1/catalog/services", "/v1/health/state/any", "/v1/kv/"] {
        assert!(code.contains(endpoint), "the UI reads {endpoint}");
    }
    // A missing asset is a 404, not the page.
    let (s, _, _) = agent.get("/ui/assets/no-such-file.js");
    assert_eq!(s, 404);

    // An HTTP check on the agent's own root follows the redirect and passes, as on Consul.
    let check = format!(
        r#"{{"Name":"root","HTTP":"{}/","Interval":"1s"}}"#,
        agent.url
    );
    let (s, body) = agent.put("/v1/agent/check/register", check);
    assert_eq!(s, 200, "{body}");
    wait_until(Duration::from_secs(20), "the root check to pass", || {
        agent.get_json("/v1/agent/checks")["root"]["Status"] == "passing"
    });
}

#[test]
fn the_ui_is_served_at_its_content_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("ui.hcl");
    std::fs::write(&cfg, r#"ui_config { content_path = "/console/" }"#).expect("write config");
    let cfg = cfg.to_string_lossy().to_string();
    let agent = Agent::start(&common::dev_args(&["-config-file", &cfg]));
    let root = no_redirects()
        .get(format!("{}/", agent.url))
        .send()
        .expect("GET /");
    assert_eq!(
        root.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/console/")
    );
    let (s, _, html) = agent.get("/console/dc1/nodes");
    assert_eq!(s, 200);
    assert!(html.contains("content=\"/console/\""), "{html}");
    assert!(html.contains("src=\"/console/assets/"), "{html}");
    let (s, _, _) = agent.get("/ui/");
    assert_eq!(s, 404, "only the configured path serves the UI");
}

#[test]
fn without_the_ui_root_says_so_and_ui_paths_are_not_found() {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = Agent::durable(dir.path());
    let (s, _, body) = agent.get("/");
    assert_eq!(s, 200);
    assert!(body.contains("UI disabled"), "{body}");
    assert!(body.contains("ui_config.enabled"), "names the key: {body}");
    let (s, _, _) = agent.get("/ui/");
    assert_eq!(s, 404);
}
