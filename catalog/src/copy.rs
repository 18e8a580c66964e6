//! The catalog copy: the catalog and health tables of a [`State`] (nodes, services, checks,
//! per-service indexes and coordinates) as one self-describing body, which another
//! datacenter's gateways keep so its servers can answer stale reads of this datacenter
//! while it is cut off. No KV, sessions, queries or config entries: they are not read
//! across datacenters from a copy. No I/O here.
//!
//! Format (version 1), one JSON document per line, so a reader can decode row by row:
//!
//! ```text
//! {"format":"meridian-catalog-copy","version":1,"index":N}
//! [<table id>,"<row key>",<row JSON as the state store keeps it>]
//! ...
//! ```
//!
//! Rows are the state store's own encoding (`rows.rs`), so a copy restores through
//! [`State::restore`] and reads exactly like the state it was taken from.

use serde::{Deserialize, Serialize};

use super::State;
use super::rows::{Row, RowError, Table};

/// The format name on a copy's first line.
pub const COPY_FORMAT: &str = "meridian-catalog-copy";
/// The version written; a reader refuses others.
pub const COPY_VERSION: u32 = 1;

/// The tables a copy carries.
const TABLES: [Table; 6] = [
    Table::Meta,
    Table::Nodes,
    Table::Services,
    Table::Checks,
    Table::ServiceIndex,
    Table::Coordinates,
];

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
    index: u64,
}

/// A copy could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// The first line is not a copy header of a known version.
    #[error("not a catalog copy of version {COPY_VERSION}: {0}")]
    Header(String),
    /// A row line is not `[table, key, value]`.
    #[error("catalog copy line {line}: {source}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A row names a table a copy does not carry.
    #[error("catalog copy line {line}: table {table} is not part of a copy")]
    Table {
        /// 1-based line number.
        line: usize,
        /// The table id.
        table: u8,
    },
    /// A row's value does not decode.
    #[error(transparent)]
    Row(#[from] RowError),
}

impl State {
    /// The index a copy is taken at: the last change to nodes, services or checks.
    /// Coordinates ride along but do not move it, so agents' coordinate updates alone
    /// never make another datacenter download the catalog again.
    pub fn copy_index(&self) -> u64 {
        let t = &self.tables;
        t.nodes.max(t.services).max(t.checks)
    }

    /// The catalog and health tables as a copy body (see the module doc).
    pub fn encode_copy(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * (1 + self.services.len() + self.checks.len()));
        let header = Header {
            format: COPY_FORMAT.to_string(),
            version: COPY_VERSION,
            index: self.copy_index(),
        };
        // Plain structs with string keys: serializing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &header);
        out.push(b'\n');
        let mut line = |table: Table, key: &str, value: Vec<u8>| {
            out.push(b'[');
            out.extend_from_slice((table as u8).to_string().as_bytes());
            out.push(b',');
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b',');
            out.extend_from_slice(&value);
            out.extend_from_slice(b"]\n");
        };
        for row in self.rows_of(&TABLES) {
            line(row.table, &row.key, row.value);
        }
        out
    }

    /// Rebuilds the catalog of a copy body; the copy's index comes with it.
    pub fn decode_copy(body: &[u8]) -> Result<(u64, State), CopyError> {
        let mut lines = body.split(|b| *b == b'\n');
        let first = lines.next().unwrap_or_default();
        let header: Header =
            serde_json::from_slice(first).map_err(|e| CopyError::Header(e.to_string()))?;
        if header.format != COPY_FORMAT || header.version != COPY_VERSION {
            return Err(CopyError::Header(format!(
                "{} version {}",
                header.format, header.version
            )));
        }
        let mut rows = Vec::new();
        for (n, text) in lines.enumerate().filter(|(_, l)| !l.is_empty()) {
            let line = n + 2;
            let (table, key, value) =
                split_line(text).map_err(|source| CopyError::Line { line, source })?;
            let t = Table::from_u8(table)
                .filter(|t| TABLES.contains(t))
                .ok_or(CopyError::Table { line, table })?;
            rows.push(Row {
                table: t,
                key,
                value: value.to_vec(),
            });
        }
        Ok((header.index, State::restore(rows)?))
    }
}

/// `[table,"key",value]` → its parts, the value's bytes as they are (no JSON tree is built:
/// a copy of 10,000 instances decodes in one pass; the row decoders check the value).
fn split_line(text: &[u8]) -> Result<(u8, String, &[u8]), serde_json::Error> {
    use serde::de::Error;
    let bad = |what: &str| serde_json::Error::custom(format!("expected {what}"));
    let inner = text
        .strip_prefix(b"[")
        .and_then(|t| t.strip_suffix(b"]"))
        .ok_or_else(|| bad("[table,key,value]"))?;
    let comma = inner
        .iter()
        .position(|b| *b == b',')
        .ok_or_else(|| bad("a table id"))?;
    let table: u8 = serde_json::from_slice(&inner[..comma])?;
    let rest = &inner[comma + 1..];
    let mut keys = serde_json::Deserializer::from_slice(rest).into_iter::<String>();
    let key = keys.next().ok_or_else(|| bad("a row key"))??;
    let value = rest[keys.byte_offset()..]
        .strip_prefix(b",")
        .ok_or_else(|| bad("a value after the key"))?;
    Ok((table, key, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Check, Command, HealthStatus, Node, RegisterOp, Request, Service};

    fn register(s: &mut State, index: u64, node: &str, id: &str) {
        let op = RegisterOp {
            node: Node {
                node: node.into(),
                address: "10.0.0.1".into(),
                ..Node::default()
            },
            service: Some(Service {
                id: id.into(),
                service: "web".into(),
                port: 80,
                tags: vec!["a".into()],
                ..Service::default()
            }),
            checks: vec![Check {
                node: node.into(),
                check_id: format!("c-{id}"),
                service_id: id.into(),
                status: HealthStatus::Critical,
                ..Check::default()
            }],
            ..RegisterOp::default()
        };
        s.apply(index, &Request::new(1, Command::Register(Box::new(op))));
    }

    #[test]
    fn a_copy_reads_like_its_state_and_carries_no_kv() {
        let mut s = State::new();
        register(&mut s, 5, "n1", "web-1");
        register(&mut s, 7, "n2", "web-2");
        let body = s.encode_copy();
        let (index, copy) = State::decode_copy(&body).expect("decode");
        assert_eq!(index, 7);
        assert_eq!(copy.copy_index(), 7);
        assert_eq!(copy.service_index("web"), s.service_index("web"));
        let statuses = |s: &State| -> Vec<_> {
            s.service_health("web")
                .map(|(n, svc, h)| (n.node.clone(), svc.id.clone(), h))
                .collect()
        };
        assert_eq!(statuses(&copy), statuses(&s));
        assert_eq!(statuses(&copy).len(), 2);
        assert_eq!(copy.service_rows("web").len(), 2);
        assert_eq!(copy.counts().kv_entries, 0);
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        let bad: [&[u8]; 7] = [
            b"",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":2,\"index\":1}\n",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":1,\"index\":1}\n[4,\"k\",{}]\n",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":1,\"index\":1}\n[1,\n",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":1,\"index\":1}\n[1,\"n\"]\n",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":1,\"index\":1}\n[1,\"n\",{\"Node\":]\n",
            b"{\"format\":\"meridian-catalog-copy\",\"version\":1,\"index\":1}\n[x,\"n\",{}]\n",
        ];
        for b in bad {
            assert!(
                State::decode_copy(b).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
    }
}
