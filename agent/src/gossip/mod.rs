//! LAN (and later WAN) gossip: SWIM membership over UDP with foca, an encrypted keyring,
//! user events and Vivaldi network coordinates. Built once as a library piece, configured per
//! pool, so the WAN gateway reuses it on 8302.
//!
//! Today this holds the pure parts; the foca driver and transport land with issue #3.

pub mod coordinate;
