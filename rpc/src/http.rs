//! An HTTP API request as a client agent (or, across datacenters, a gateway) forwards it,
//! and the answer. The body travels as a frame's raw body, not in the JSON header.

use serde::{Deserialize, Serialize};

/// An HTTP API request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// Path and query string.
    pub uri: String,
    /// Headers worth forwarding (content type, token).
    pub headers: Vec<(String, String)>,
    /// Body bytes (carried raw, after the JSON header).
    #[serde(skip)]
    pub body: Vec<u8>,
    /// Set by a client agent on a write it may retry on another server (32 hex digits):
    /// the server derives the ids of the writes the request makes from it, so a retry is
    /// applied once. Absent from older agents (and on reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The answer to a forwarded HTTP request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Body bytes (carried raw).
    #[serde(skip)]
    pub body: Vec<u8>,
}
