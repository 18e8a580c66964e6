//! Which token a request carries (reference/acl.md §5.1, Consul's `parseTokenInternal`):
//! `?token=` (non-empty) → `X-Consul-Token` → `Authorization: Bearer <v>` (scheme matched
//! case-insensitively) → the agent's `acl.tokens.default` → anonymous. Pure: no I/O.

use axum::http::HeaderMap;

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `?token=`, `X-Consul-Token` or `Authorization`: the request named a token.
    Request,
    /// The agent's `acl.tokens.default`.
    AgentDefault,
    /// None at all: the anonymous token.
    Anonymous,
}

/// The secret a request presents and where it came from; `""` means anonymous.
pub fn extract(
    query_token: Option<&str>,
    headers: &HeaderMap,
    agent_default: Option<&str>,
) -> (String, TokenSource) {
    if let Some(t) = query_token.filter(|t| !t.is_empty()) {
        return (t.to_string(), TokenSource::Request);
    }
    if let Some(t) = header(headers, "x-consul-token") {
        return (t.to_string(), TokenSource::Request);
    }
    if let Some(v) = header(headers, "authorization") {
        let mut words = v.split_whitespace();
        if let (Some(scheme), Some(t)) = (words.next(), words.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return (t.to_string(), TokenSource::Request);
        }
    }
    match agent_default.filter(|t| !t.is_empty()) {
        Some(t) => (t.to_string(), TokenSource::AgentDefault),
        None => (String::new(), TokenSource::Anonymous),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, axum::http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_query_wins_then_the_header_then_bearer_then_the_agent_default() {
        let both = headers(&[("x-consul-token", "B"), ("authorization", "Bearer C")]);
        assert_eq!(extract(Some("A"), &both, None).0, "A");
        assert_eq!(extract(Some(""), &both, None).0, "B");
        let bearer = headers(&[("authorization", "bEaReR C")]);
        assert_eq!(extract(None, &bearer, Some("D")).0, "C");
        let basic = headers(&[("authorization", "Basic xyz")]);
        assert_eq!(
            extract(None, &basic, Some("D")),
            ("D".into(), TokenSource::AgentDefault)
        );
        assert_eq!(
            extract(None, &HeaderMap::new(), None),
            (String::new(), TokenSource::Anonymous)
        );
    }
}
