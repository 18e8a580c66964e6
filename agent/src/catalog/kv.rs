//! KV apply logic (stub, filled in next).
use super::{KvOp, KvOutcome, State};
impl State {
    pub(crate) fn kv_apply(&mut self, _index: u64, _now: u64, _op: &KvOp) -> Result<KvOutcome, String> {
        Err("unimplemented".into())
    }
}
