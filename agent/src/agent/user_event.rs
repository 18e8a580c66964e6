//! A Consul user event as the agent keeps and serves it (`/v1/event/fire`, `/v1/event/list`)
//! and its gossip envelope. Below both the event buffer (`events`) and the event handlers
//! (`handlers`), which each take events of this type.

use serde::{Deserialize, Serialize};

use crate::gossip::UserEvent;

/// A Consul user event (`/v1/event/fire` reply and `/v1/event/list` entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulEvent {
    /// UUID.
    pub id: String,
    /// Event name.
    pub name: String,
    /// Opaque payload (`None` when fired without a body).
    pub payload: Option<Vec<u8>>,
    /// Node name regex.
    pub node_filter: String,
    /// Service name regex.
    pub service_filter: String,
    /// Tag regex (with a service filter).
    pub tag_filter: String,
    /// Gossip Lamport time (0 until received).
    pub ltime: u64,
}

/// The gossip payload: everything but the name and the ltime. Append fields only.
#[derive(Serialize, Deserialize)]
struct Envelope {
    id: [u8; 16],
    payload: Option<Vec<u8>>,
    node_filter: String,
    service_filter: String,
    tag_filter: String,
}

/// Why an envelope could not be built or read.
#[derive(Debug, thiserror::Error)]
#[error("user event envelope: {0}")]
pub struct EnvelopeError(#[from] postcard::Error);

impl ConsulEvent {
    /// A new event with a fresh ID.
    pub fn new(name: String, payload: Option<Vec<u8>>) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            name,
            payload,
            node_filter: String::new(),
            service_filter: String::new(),
            tag_filter: String::new(),
            ltime: 0,
        }
    }

    /// The bytes fired as the gossip event's payload.
    pub fn encode(&self) -> Result<Vec<u8>, EnvelopeError> {
        let id = uuid::Uuid::parse_str(&self.id)
            .map(|u| *u.as_bytes())
            .unwrap_or_default();
        Ok(postcard::to_allocvec(&Envelope {
            id,
            payload: self.payload.clone(),
            node_filter: self.node_filter.clone(),
            service_filter: self.service_filter.clone(),
            tag_filter: self.tag_filter.clone(),
        })?)
    }

    /// Reads a received gossip user event.
    pub fn decode(ev: &UserEvent) -> Result<Self, EnvelopeError> {
        let env: Envelope = postcard::from_bytes(&ev.payload)?;
        Ok(Self {
            id: uuid::Uuid::from_bytes(env.id).to_string(),
            name: ev.name.clone(),
            payload: env.payload,
            node_filter: env.node_filter,
            service_filter: env.service_filter,
            tag_filter: env.tag_filter,
            ltime: ev.ltime,
        })
    }

    /// Consul's `uuidToUint64`: the blocking index `/v1/event/list` reports for this event.
    pub fn index(&self) -> u64 {
        let hex: String = self.id.chars().filter(|c| *c != '-').collect();
        let (Some(low), Some(high)) = (hex.get(0..16), hex.get(16..32)) else {
            return 0;
        };
        let parse = |s: &str| u64::from_str_radix(s, 16).unwrap_or(0);
        parse(low) ^ parse(high)
    }
}
