//! Meridian agent library (being built up).
pub mod agent;
pub mod catalog;
pub mod cli;
