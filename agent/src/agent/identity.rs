//! The node's persistent identity: a UUID kept in `data_dir/node-id` (as Consul does), and
//! the raft server ID derived from it.

use std::path::Path;

use super::AgentError;

/// Reads `node-id` from `dir`, or writes `configured` (or a new UUID) there.
pub(super) fn node_id(dir: &Path, configured: Option<&str>) -> Result<String, AgentError> {
    let path = dir.join("node-id");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if let Some(c) = configured
            && c != existing
        {
            return Err(AgentError::Config(format!(
                "-node-id {c} differs from the ID {existing} stored in {}",
                path.display()
            )));
        }
        return Ok(existing);
    }
    let id = match configured {
        Some(c) => uuid::Uuid::parse_str(c)
            .map_err(|e| AgentError::Config(format!("node_id {c:?} is not a UUID: {e}")))?
            .to_string(),
        None => uuid::Uuid::new_v4().to_string(),
    };
    std::fs::write(&path, &id).map_err(AgentError::DataDir)?;
    Ok(id)
}

/// The raft server ID of a node: the first 8 bytes of its UUID (never 0).
pub(super) fn raft_id(node_id: &str) -> u64 {
    let bytes = uuid::Uuid::parse_str(node_id)
        .map(|u| *u.as_bytes())
        .unwrap_or_default();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(id).max(1)
}
