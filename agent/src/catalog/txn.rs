//! Txn apply logic (stub).
use super::{Response, State, TxnOp};
impl State {
    pub(crate) fn txn(&mut self, _index: u64, _now: u64, _ops: &[TxnOp]) -> Response { Response::Rejected("unimplemented".into()) }
}
