//! Runner tests with real `sh` processes: serf's environment and stdin, serial execution in
//! event order, failures that do not stop later scripts, the timeout killing a whole process
//! group, and the bounded queue counting drops. Waits have deadlines.

use std::net::SocketAddr;
use std::path::Path;

use tokio_util::task::TaskTracker;

use super::*;
use crate::gossip::{MemberStatus, Role};

const DEADLINE: Duration = Duration::from_secs(15);

fn member(name: &str) -> Member {
    let mut tags = Tags::new(Role::Server, "dc1");
    tags.set("my-tag.x", "v");
    Member {
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 8301)),
        tags,
        status: MemberStatus::Alive,
        incarnation: 1,
    }
}

fn view() -> watch::Receiver<MembersView> {
    let (_tx, rx) = watch::channel(MembersView {
        local: "self".into(),
        members: vec![member("self")],
    });
    rx
}

fn handler(v: &str) -> EventHandler {
    EventHandler::parse(v).expect("valid handler")
}

fn user_job(name: &str, payload: &str) -> Job {
    let mut ev = ConsulEvent::new(name.into(), Some(payload.as_bytes().to_vec()));
    ev.ltime = 7;
    Job::user(&ev)
}

async fn wait_for_file(path: &Path, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if cond(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; file has {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn member_lines_and_env_follow_serf() {
    let m = member("web\t1");
    assert_eq!(
        member_line(&m),
        "web\\t1\t127.0.0.1\tconsul\tdc=dc1,my-tag.x=v,role=consul\n"
    );
    let job = Job::member(&Event::MemberJoin(m)).expect("member event");
    assert_eq!(job.kind, "member-join");
    let env = job_env(&job, "self", &member("self").tags);
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("SERF_EVENT"), Some("member-join"));
    assert_eq!(get("SERF_SELF_NAME"), Some("self"));
    assert_eq!(get("SERF_SELF_ROLE"), Some("consul"));
    assert_eq!(get("SERF_TAG_MY_TAG_X"), Some("v"));
    assert_eq!(get("SERF_TAG_DC"), Some("dc1"));
    assert_eq!(get("SERF_USER_EVENT"), None);

    let job = user_job("deploy", "v2");
    assert_eq!(job.stdin, b"v2\n", "serf terminates the payload");
    let env = job_env(&job, "self", &Tags::default());
    assert!(env.contains(&("SERF_USER_EVENT".into(), "deploy".into())));
    assert!(env.contains(&("SERF_USER_LTIME".into(), "7".into())));
    assert_eq!(Job::user(&ConsulEvent::new("e".into(), None)).stdin, b"");
}

/// Three events for a handler that records start and end: each run finishes before the next
/// starts, in the order queued; a failing handler before it changes nothing.
#[tokio::test]
async fn scripts_run_one_at_a_time_in_order_and_failures_do_not_stop_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let record = format!(
        "user=echo start-$SERF_USER_EVENT-$(cat) >> {0}; sleep 0.05; echo end-$SERF_USER_EVENT >> {0}",
        out.display()
    );
    let handlers = vec![
        handler("user=exit 3"),
        handler("user=/nonexistent/handler.sh"),
        handler(&record),
    ];
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let queue = spawn(
        handlers,
        HandlerConfig::default(),
        view(),
        &tracker,
        token.clone(),
    )
    .expect("runner");
    for name in ["a", "b", "c"] {
        queue.push(user_job(name, name));
    }
    // Not matched by any handler: never queued.
    queue.push(Job::member(&Event::MemberJoin(member("x"))).expect("member event"));
    let text = wait_for_file(&out, "three runs", |t| t.contains("end-c")).await;
    assert_eq!(
        text,
        "start-a-a\nend-a\nstart-b-b\nend-b\nstart-c-c\nend-c\n"
    );
    assert_eq!(queue.dropped(), 0);
    token.cancel();
    tracker.close();
    tracker.wait().await;
}

/// A hung script and the process it started are killed at the timeout; the next event runs.
#[tokio::test]
async fn a_hung_script_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let after = dir.path().join("after");
    let handlers = vec![
        handler(&format!(
            "user:hang=sleep 30 & echo $! > {}; wait",
            pid_file.display()
        )),
        handler(&format!("user:next=echo ran > {}", after.display())),
    ];
    // Long enough for a shell to start and write the pid on a loaded machine (at 300 ms
    // under a full test run the script was sometimes killed before `echo`).
    let cfg = HandlerConfig {
        timeout: Duration::from_secs(2),
        ..HandlerConfig::default()
    };
    let tracker = TaskTracker::new();
    let token = CancellationToken::new();
    let queue = spawn(handlers, cfg, view(), &tracker, token.clone()).expect("runner");
    queue.push(user_job("hang", ""));
    queue.push(user_job("next", ""));
    wait_for_file(&after, "the next event's script", |t| t == "ran\n").await;
    let pid = std::fs::read_to_string(&pid_file).expect("pid written");
    let stat = format!("/proc/{}/stat", pid.trim());
    // Gone, or a zombie waiting for a reaper that is not ours.
    wait_for_file(Path::new(&stat), "the background sleep to die", |s| {
        s.is_empty() || s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z'))
    })
    .await;
    token.cancel();
    tracker.close();
    tracker.wait().await;
}

#[test]
fn a_full_queue_drops_and_counts() {
    let (jobs_tx, mut jobs_rx) = mpsc::channel(1);
    let queue = HandlerQueue {
        handlers: vec![handler("member-join=true")].into(),
        jobs_tx,
        dropped: Arc::default(),
    };
    let join = || Job::member(&Event::MemberJoin(member("x"))).expect("member event");
    queue.push(join());
    queue.push(join());
    queue.push(join());
    assert_eq!(queue.dropped(), 2);
    assert!(jobs_rx.try_recv().is_ok());
    assert!(jobs_rx.try_recv().is_err());
    // Unmatched kinds are not queued, so they cannot be dropped either.
    queue.push(user_job("e", ""));
    assert_eq!(queue.dropped(), 2);
}
