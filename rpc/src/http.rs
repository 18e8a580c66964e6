//! An HTTP API request as a client agent (or, across datacenters, a gateway) forwards it,
//! and the answer. The body travels as a frame's raw body, not in the JSON header.

use std::time::Duration;

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

impl HttpRequest {
    /// The first value of query parameter `name` (percent-decoded); `Some("")` for a bare
    /// `?name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let (_, query) = self.uri.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A read (`GET`/`HEAD`): safe to run again anywhere.
    pub fn is_read(&self) -> bool {
        matches!(self.method.as_str(), "GET" | "HEAD")
    }

    /// A blocking query (`?index=` other than 0).
    pub fn is_blocking(&self) -> bool {
        self.query_param("index")
            .is_some_and(|i| !i.is_empty() && i != "0")
    }

    /// How long answering may take at most: a blocking query (`?index=`) waits up to its
    /// `wait` (default 5 min, at most 10 min, plus Consul's 1/16 jitter); anything else
    /// `normal`.
    pub fn budget(&self, normal: Duration) -> Duration {
        if !self.is_blocking() {
            return normal;
        }
        let wait = self
            .query_param("wait")
            .and_then(|w| parse_wait(&w))
            .unwrap_or(Duration::from_secs(300))
            .min(Duration::from_secs(600));
        wait + wait / 16 + normal
    }
}

/// A Go-style `wait` value: `30s`, `5m`, `100ms`, or bare seconds.
fn parse_wait(w: &str) -> Option<Duration> {
    let (num, unit) = w
        .find(|c: char| !c.is_ascii_digit())
        .map_or((w, "s"), |i| w.split_at(i));
    let n: u64 = num.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.saturating_mul(60))),
        "h" => Some(Duration::from_secs(n.saturating_mul(3600))),
        _ => None,
    }
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

/// The server protocol's `Http` request, as its forward payload: what a gateway sends a
/// server to run an HTTP API request there. Encoded exactly as the agent's own `Op::Http`
/// (a test in the agent holds the two together), so the gateway needs none of the agent.
#[derive(Serialize, Deserialize)]
enum ServerOp {
    Http(HttpRequest),
}

/// The server protocol's replies to an `Http` request.
#[derive(Deserialize)]
enum ServerReply {
    Http(HttpResponse),
    Failed { kind: String, message: String },
}

/// A server's refusal to run a forwarded HTTP request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("server refused the request ({kind}): {message}")]
pub struct ServerRefusal {
    /// The server's failure kind (`Rejected`, `NoLeader`, ...).
    pub kind: String,
    /// Its message.
    pub message: String,
}

/// The forward payload that asks a server to run `req`.
pub fn server_request_payload(req: &HttpRequest) -> Result<Vec<u8>, String> {
    let op = ServerOp::Http(HttpRequest {
        body: Vec::new(),
        ..req.clone()
    });
    crate::frame::pack("forward request", &op, &req.body)
}

/// A server's reply payload to [`server_request_payload`]: the HTTP response, or the
/// server's refusal (outer error: the payload did not decode).
pub fn server_response(payload: &[u8]) -> Result<Result<HttpResponse, ServerRefusal>, String> {
    let (reply, body): (ServerReply, Vec<u8>) = crate::frame::unpack("forward reply", payload)?;
    Ok(match reply {
        ServerReply::Http(mut r) => {
            r.body = body;
            Ok(r)
        }
        ServerReply::Failed { kind, message } => Err(ServerRefusal { kind, message }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(uri: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            uri: uri.into(),
            headers: Vec::new(),
            body: Vec::new(),
            request_id: None,
        }
    }

    #[test]
    fn query_params_and_budgets() {
        let r = get("/v1/kv/a?dc=dc%202&index=7&wait=30s");
        assert_eq!(r.query_param("dc").as_deref(), Some("dc 2"));
        assert_eq!(r.query_param("nope"), None);
        let normal = Duration::from_secs(5);
        assert_eq!(
            r.budget(normal),
            Duration::from_secs(30) + Duration::from_secs(30) / 16 + normal
        );
        assert_eq!(get("/v1/kv/a?dc=dc2").budget(normal), normal);
        assert_eq!(get("/v1/kv/a?index=0").budget(normal), normal);
        assert_eq!(
            get("/v1/kv/a?index=3&wait=1h").budget(normal),
            Duration::from_secs(600) + Duration::from_secs(600) / 16 + normal
        );
    }

    #[test]
    fn server_payloads_round_trip() {
        let mut r = get("/v1/kv/a");
        r.body = b"raw".to_vec();
        let p = server_request_payload(&r).expect("pack");
        let (op, body): (ServerOp, Vec<u8>) = crate::frame::unpack("t", &p).expect("unpack");
        let ServerOp::Http(back) = op;
        assert_eq!(
            (back.uri.as_str(), body.as_slice()),
            ("/v1/kv/a", &b"raw"[..])
        );
        let failed = crate::frame::pack(
            "t",
            &serde_json::json!({"Failed": {"kind": "NoLeader", "message": "m"}}),
            b"",
        )
        .expect("pack");
        let refusal = server_response(&failed)
            .expect("decodes")
            .expect_err("refusal");
        assert_eq!(refusal.kind, "NoLeader");
        assert!(server_response(b"junk").is_err());
    }
}
