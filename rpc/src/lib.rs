//! The RPC seam: what a Meridian server and a WAN gateway both speak on their RPC port,
//! with nothing of what either does with a request. Servers answer forwarded writes, read
//! indexes and HTTP requests (in `meridian-agent`); a gateway relays them to another
//! datacenter — both by implementing [`Handler`] behind a [`ForwardEndpoint`].
//!
//! ```text
//!   caller ── call(channels, addr, dc, payload) ──gRPC Forward──▶ ForwardEndpoint<H>
//!              │ TransportError: Unreachable (never sent) /            │ checks dc
//!              │ NoAnswer (maybe received) / Protocol                  ▼
//!              └◀──────────────────── reply payload ────────── H::handle(payload)
//! ```
//!
//! Payloads are [`frame`]s: a JSON header plus a raw body, so HTTP bodies and snapshots are
//! not JSON-escaped. Whether a failure happened before the request left matters to every
//! caller (a write that was never sent may be retried anywhere), so the transport says so.

pub mod authorize;
pub mod channels;
pub mod failover;
pub mod frame;
pub mod gateway;
pub mod http;
pub mod serve;
pub mod transport;
pub mod wire;

pub use authorize::RequirePeer;
pub use channels::{Channels, MAX_MESSAGE};
pub use http::{HttpRequest, HttpResponse, ServerRefusal};
pub use serve::serve;
pub use transport::{ForwardEndpoint, Handler, TransportError, call, call_named};
