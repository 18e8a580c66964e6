//! Why a prepared-query write is refused: below validation (`apply`) and templates
//! (`template`), which both refuse queries.

/// Why a prepared-query write is refused. Messages name the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No query has that ID (update, delete).
    #[error("Query not found")]
    NotFound,
    /// A field is invalid.
    #[error("Invalid prepared query: bad {field}: {reason}")]
    Invalid {
        /// Dotted field path, e.g. `Service.Service`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl QueryError {
    /// True when the query does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound)
    }

    pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
