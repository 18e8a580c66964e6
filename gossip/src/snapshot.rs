//! serf's local snapshot (`serf/local.snapshot`): the live peers this node knew, the highest
//! user-event Lamport time it delivered, and whether it left gracefully. A restarted node
//! reads it to rejoin its old peers (unless it left, or `rejoin_after_leave` says to anyway)
//! and to resume its event clock, so it neither re-delivers old events nor fires events the
//! others drop as too old.
//!
//! [`run`] keeps the file current from the pool's published members and events: it owns no
//! protocol state and never blocks the runtime. Writes are atomic (temp file, fsync, rename)
//! and rate-limited to one per interval; the last change is written when the pool stops.
//! Unlike serf's append-and-compact log this rewrites one small JSON document.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, sleep_until};
use tracing::{debug, warn};

use super::members::{Event, MemberStatus, MembersView};

/// After a failed write, the next attempt waits this many intervals.
const FAILED_WRITE_BACKOFF: u32 = 20;

/// The snapshot file under a data dir (serf's path).
pub fn local_snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join("serf").join("local.snapshot")
}

/// What survives a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// Peers (not us) last seen alive: name → gossip address (serf's `alive:` lines).
    pub alive: BTreeMap<String, SocketAddr>,
    /// Highest user-event Lamport time delivered (serf's `event-clock:`).
    pub event_ltime: Option<u64>,
    /// This node left the pool gracefully and has not rejoined since (serf's `leave`).
    pub left: bool,
}

/// Why the snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading, writing or renaming the file failed.
    #[error("gossip snapshot {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a snapshot.
    #[error("gossip snapshot {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

impl Snapshot {
    /// Reads `path`; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, SnapshotError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(SnapshotError::Io {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| SnapshotError::Json {
                path: path.to_owned(),
                source,
            })
    }

    /// Writes `path` atomically: a temp file in the same directory, fsync, rename.
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let io_err = |source| SnapshotError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let json = serde_json::to_vec_pretty(self).map_err(|source| SnapshotError::Json {
            path: path.to_owned(),
            source,
        })?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_err)?;
        tmp.write_all(&json).map_err(io_err)?;
        tmp.as_file().sync_all().map_err(io_err)?;
        tmp.persist(path).map_err(|e| io_err(e.error))?;
        Ok(())
    }

    /// The addresses to rejoin on start: the old peers, unless this node left gracefully
    /// and `rejoin_after_leave` is off (serf ignores its peers after a `leave`).
    pub fn rejoin_targets(&self, rejoin_after_leave: bool) -> Vec<SocketAddr> {
        if self.left && !rejoin_after_leave {
            return Vec::new();
        }
        self.alive.values().copied().collect()
    }

    /// Folds one members view into the snapshot (`seen`: the peers of the previous view).
    /// Alive peers are recorded, failed/left/vanished ones dropped, peers this run has not
    /// heard of kept (a rejoin may still reach them); once we are leaving it freezes, as
    /// serf stops recording after its leave.
    fn apply_view(&mut self, view: &MembersView, seen: &mut BTreeSet<String>) {
        if self.left {
            return;
        }
        let local = view.get(&view.local).map(|m| m.status);
        if matches!(local, Some(MemberStatus::Leaving | MemberStatus::Left)) {
            self.left = true;
            return;
        }
        let now: BTreeSet<String> = view
            .members
            .iter()
            .filter(|m| m.name != view.local)
            .map(|m| m.name.clone())
            .collect();
        for gone in seen.difference(&now) {
            self.alive.remove(gone);
        }
        for m in view.members.iter().filter(|m| m.name != view.local) {
            match m.status {
                MemberStatus::Alive => {
                    self.alive.insert(m.name.clone(), m.addr);
                }
                MemberStatus::Failed | MemberStatus::Left => {
                    self.alive.remove(&m.name);
                }
                MemberStatus::Leaving => {}
            }
        }
        *seen = now;
    }

    /// Records a delivered user event's Lamport time.
    fn witness_event(&mut self, ltime: u64) {
        self.event_ltime = Some(self.event_ltime.map_or(ltime, |t| t.max(ltime)));
    }

    /// A rejoined node has not "left" any more: a later crash must rejoin again.
    fn note_rejoined(&mut self, view: &MembersView) {
        let local_alive = view
            .get(&view.local)
            .is_some_and(|m| m.status == MemberStatus::Alive);
        let any_peer = view
            .members
            .iter()
            .any(|m| m.name != view.local && m.status == MemberStatus::Alive);
        if self.left && local_alive && any_peer {
            self.left = false;
        }
    }
}

/// Keeps `path` current until the pool stops (its members watch closes), writing at most
/// once per `interval`. `start` is what is on disk (or the default), so an unchanged state
/// is not rewritten.
pub async fn run(
    path: PathBuf,
    start: Snapshot,
    interval: Duration,
    mut members_rx: watch::Receiver<MembersView>,
    mut events_rx: broadcast::Receiver<Event>,
) {
    let mut written = start.clone();
    let mut state = start;
    let mut seen = BTreeSet::new();
    let mut next_write = Instant::now();
    let mut events_open = true;
    loop {
        let dirty = state != written;
        tokio::select! {
            changed = members_rx.changed() => {
                if changed.is_err() {
                    break; // the pool stopped
                }
                let view = members_rx.borrow_and_update().clone();
                state.note_rejoined(&view);
                state.apply_view(&view, &mut seen);
            }
            ev = events_rx.recv(), if events_open => match ev {
                Ok(Event::User(ev)) => state.witness_event(ev.ltime),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                // Closed with the pool; the watch above notices and ends the loop.
                Err(RecvError::Closed) => events_open = false,
            },
            _ = sleep_until(next_write), if dirty => {
                // A failed write (logged) is retried, but not at a rate that floods the log.
                let (saved, wait) = match write(&path, &state).await {
                    Some(saved) => (saved, interval),
                    None => (written, interval * FAILED_WRITE_BACKOFF),
                };
                written = saved;
                next_write = Instant::now() + wait;
            }
        }
    }
    // Events delivered just before the stop still count.
    while let Ok(ev) = events_rx.try_recv() {
        if let Event::User(ev) = ev {
            state.witness_event(ev.ltime);
        }
    }
    if state != written {
        let _ = write(&path, &state).await;
    }
    debug!("gossip snapshot stopped");
}

/// Saves off the async workers; `Some(state)` once it is on disk.
async fn write(path: &Path, state: &Snapshot) -> Option<Snapshot> {
    let (path, snap) = (path.to_owned(), state.clone());
    let saved = tokio::task::spawn_blocking(move || snap.save(&path).map(|()| snap)).await;
    match saved {
        Ok(Ok(snap)) => Some(snap),
        Ok(Err(e)) => {
            warn!(cause = %e, "failed to write the gossip snapshot");
            None
        }
        Err(e) => {
            warn!(cause = %e, "gossip snapshot writer panicked");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Tags;
    use crate::members::Member;

    fn member(name: &str, port: u16, status: MemberStatus) -> Member {
        Member {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            tags: Tags::default(),
            status,
            incarnation: 1,
        }
    }

    fn view(members: Vec<Member>) -> MembersView {
        MembersView {
            local: "me".into(),
            members,
        }
    }

    #[test]
    fn views_fold_into_alive_peers_and_a_leave_freezes_them() {
        let mut s = Snapshot::default();
        let mut seen = BTreeSet::new();
        let me = |st| member("me", 1, st);
        s.apply_view(
            &view(vec![
                me(MemberStatus::Alive),
                member("a", 2, MemberStatus::Alive),
                member("b", 3, MemberStatus::Alive),
                member("c", 4, MemberStatus::Failed),
            ]),
            &mut seen,
        );
        assert_eq!(s.alive.keys().collect::<Vec<_>>(), ["a", "b"]);
        // b fails, a is pruned (vanishes).
        s.apply_view(
            &view(vec![
                me(MemberStatus::Alive),
                member("b", 3, MemberStatus::Failed),
            ]),
            &mut seen,
        );
        assert!(s.alive.is_empty());
        s.apply_view(
            &view(vec![
                me(MemberStatus::Alive),
                member("b", 5, MemberStatus::Alive),
            ]),
            &mut seen,
        );
        assert_eq!(
            s.rejoin_targets(false),
            [SocketAddr::from(([127, 0, 0, 1], 5))]
        );
        s.apply_view(
            &view(vec![
                me(MemberStatus::Leaving),
                member("b", 5, MemberStatus::Alive),
            ]),
            &mut seen,
        );
        assert!(s.left);
        assert!(s.rejoin_targets(false).is_empty(), "left: no rejoin");
        assert_eq!(s.rejoin_targets(true).len(), 1, "unless rejoin_after_leave");
        s.apply_view(&view(vec![me(MemberStatus::Left)]), &mut seen);
        assert_eq!(s.alive.len(), 1, "frozen after the leave");
    }

    #[test]
    fn peers_from_a_previous_run_stay_until_heard_of_and_a_rejoin_clears_left() {
        let old = SocketAddr::from(([127, 0, 0, 1], 9));
        let mut s = Snapshot {
            alive: BTreeMap::from([("old".to_string(), old)]),
            event_ltime: Some(4),
            left: true,
        };
        let mut seen = BTreeSet::new();
        let v = view(vec![
            member("me", 1, MemberStatus::Alive),
            member("a", 2, MemberStatus::Alive),
        ]);
        s.note_rejoined(&v);
        s.apply_view(&v, &mut seen);
        assert!(!s.left);
        assert_eq!(s.alive.len(), 2);
        s.witness_event(3);
        assert_eq!(s.event_ltime, Some(4));
        s.witness_event(7);
        assert_eq!(s.event_ltime, Some(7));
    }

    #[test]
    fn save_and_load_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = local_snapshot_path(dir.path());
        assert_eq!(Snapshot::load(&path).expect("missing is fine"), None);
        let s = Snapshot {
            alive: BTreeMap::from([("a".to_string(), SocketAddr::from(([10, 0, 0, 1], 8301)))]),
            event_ltime: Some(12),
            left: true,
        };
        s.save(&path).expect("save");
        assert_eq!(Snapshot::load(&path).expect("load"), Some(s));
        std::fs::write(&path, "alive: a 10.0.0.1:8301\n").expect("write");
        assert!(matches!(
            Snapshot::load(&path),
            Err(SnapshotError::Json { .. })
        ));
    }
}
