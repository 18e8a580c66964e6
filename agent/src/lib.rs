//! Meridian agent library (being built up).
pub mod catalog;
