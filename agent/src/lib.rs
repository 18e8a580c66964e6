//! Meridian agent library (being built up).
pub mod catalog;
pub mod raft;
pub mod store;
