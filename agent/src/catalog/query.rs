//! Read queries over a state snapshot (stub).
/// A catalog service row.
pub struct ServiceRow;
/// A health entry.
pub struct HealthEntry;
