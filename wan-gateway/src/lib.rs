//! `meridian-gateway`: a datacenter's door to the federation. It is a member of its
//! datacenter's LAN pool (role `gateway`, so servers find it) and of the WAN pool on 8302
//! (`<node>.<dc>`, its own keyring), and relays cross-datacenter requests:
//!
//! ```text
//!   dc1 server ─Relay─▶ dc1 gateway ─Deliver─▶ dc2 gateway ─Http─▶ dc2 server
//! ```
//!
//! Only gateways touch the WAN. `options` is the command line, `directory` picks peers
//! from the pools, `relay` answers the RPC ops, `copies` keeps a copy of every remote
//! datacenter's catalog (stored in `copy_store`), `run` wires sockets and pools.

pub mod copies;
pub mod copy_store;
pub mod directory;
pub mod error;
pub mod options;
pub mod relay;
pub mod run;

pub use error::GatewayError;
pub use options::Options;
pub use run::{Gateway, start};
