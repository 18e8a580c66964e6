//! Catalog apply logic (stub).
use super::{CheckStatusUpdate, DeregisterOp, RegisterOp, Response, State};
impl State {
    pub(crate) fn register(&mut self, _index: u64, _now: u64, _op: &RegisterOp) -> Response { Response::Rejected("unimplemented".into()) }
    pub(crate) fn deregister(&mut self, _index: u64, _now: u64, _op: &DeregisterOp) -> Response { Response::Rejected("unimplemented".into()) }
    pub(crate) fn check_update(&mut self, _index: u64, _now: u64, _u: &[CheckStatusUpdate]) -> Response { Response::Rejected("unimplemented".into()) }
}
