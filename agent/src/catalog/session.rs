//! Session apply logic (stub).
use super::{Response, Session, State};
impl State {
    pub(crate) fn session_create(&mut self, _index: u64, _s: &Session) -> Response { Response::Rejected("unimplemented".into()) }
    pub(crate) fn session_invalidate(&mut self, _index: u64, _now: u64, _id: &str) {}
}
