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

    for path in ["/ui/", "/ui/dc1/services"] {
        let page = client
            .get(format!("{}{path}", agent.url))
            .send()
            .expect("GET");
        assert_eq!(page.status().as_u16(), 200, "{path}");
        let ctype = page.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .to_string();
        assert!(ctype.starts_with("text/html"), "{path}: {ctype}");
        let html = page.text().unwrap_or_default();
        assert!(html.contains("<title>Meridian</title>"), "{path}: {html}");
        // The page reads the same API endpoints a user would.
        for endpoint in [
            "catalog/services",
            "health/state/any",
            "catalog/nodes",
            "agent/self",
        ] {
            assert!(html.contains(endpoint), "the page reads {endpoint}");
        }
    }

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
