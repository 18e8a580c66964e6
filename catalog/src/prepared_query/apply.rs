//! Validation and apply of prepared-query writes, and their removal with a session. The
//! same [`validate`] runs in the HTTP handler (to answer 400 before proposing) and inside
//! `apply` (so a racing write cannot store what the first check allowed). No I/O here.

use super::PreparedQuery;
use super::error::QueryError;
use super::template::{self, TEMPLATE_NAME_PREFIX_MATCH};
use crate::rows::Table;
use crate::{Response, State};

/// The token value list/get responses show; storing it back would lose the real token.
pub const REDACTED_TOKEN: &str = "<hidden>";

/// Checks a create (`update == false`) or update of `q` against `state`: the ID must be new
/// (create) or exist (update); the name must be unique and not a UUID; a session must
/// exist; a template needs a known type, a compiling `Regexp` and well-formed `${...}`;
/// a static query needs `Service.Service`; `DNS.TTL` must be a duration.
pub fn validate(state: &State, q: &PreparedQuery, update: bool) -> Result<(), QueryError> {
    match (state.prepared_queries.contains_key(&q.id), update) {
        (false, true) => return Err(QueryError::NotFound),
        (true, false) => return Err(QueryError::invalid("ID", "a query with this ID exists")),
        _ => {}
    }
    if q.token == REDACTED_TOKEN {
        return Err(QueryError::invalid(
            "Token",
            "it looks like a query definition with a redacted token was submitted",
        ));
    }
    validate_name(state, q)?;
    if !q.session.is_empty() && !state.sessions.contains_key(&q.session) {
        return Err(QueryError::invalid(
            "Session",
            format!("session {:?} does not exist", q.session),
        ));
    }
    match q.template.kind.as_str() {
        "" => {
            if q.service.service.is_empty() {
                return Err(QueryError::invalid(
                    "Service.Service",
                    "must provide a Service name to query",
                ));
            }
        }
        TEMPLATE_NAME_PREFIX_MATCH => template::check(q)?,
        other => {
            return Err(QueryError::invalid(
                "Template.Type",
                format!("{other:?} is not a template type (want {TEMPLATE_NAME_PREFIX_MATCH:?})"),
            ));
        }
    }
    let f = &q.service.failover;
    if !f.targets.is_empty() && (f.nearest_n > 0 || !f.datacenters.is_empty()) {
        return Err(QueryError::invalid(
            "Service.Failover.Targets",
            "Targets cannot be combined with NearestN or Datacenters",
        ));
    }
    if !q.dns.ttl.is_empty() {
        meridian_config::duration::parse_go_duration(&q.dns.ttl).map_err(|e| {
            QueryError::invalid("DNS.TTL", format!("{:?} is not a duration: {e}", q.dns.ttl))
        })?;
    }
    Ok(())
}

fn validate_name(state: &State, q: &PreparedQuery) -> Result<(), QueryError> {
    if uuid::Uuid::parse_str(&q.name).is_ok() {
        // Lookups try IDs first; a UUID name could shadow (or hijack) another query.
        return Err(QueryError::invalid("Name", "query names cannot be UUIDs"));
    }
    let clash = state.prepared_queries.values().find(|o| {
        o.id != q.id
            && o.name == q.name
            // Several unnamed static queries are fine; only one catch-all template is.
            && (!q.name.is_empty() || (o.is_template() && q.is_template()))
    });
    match clash {
        None => Ok(()),
        Some(_) if q.name.is_empty() => Err(QueryError::invalid(
            "Name",
            "a query template with an empty name already exists",
        )),
        Some(o) => Err(QueryError::invalid(
            "Name",
            format!("name {:?} aliases an existing query ({})", q.name, o.id),
        )),
    }
}

impl State {
    /// Applies a create or update: validates again (deterministically, against this
    /// state), then stores `q` with the raft indexes set.
    pub(crate) fn prepared_query_set(
        &mut self,
        index: u64,
        q: &PreparedQuery,
        update: bool,
    ) -> Response {
        if let Err(e) = validate(self, q, update) {
            return Response::Rejected(e.to_string());
        }
        let create_index = self
            .prepared_queries
            .get(&q.id)
            .map_or(index, |old| old.create_index);
        let stored = PreparedQuery {
            create_index,
            modify_index: index,
            ..q.clone()
        };
        self.index_query_regex(&stored);
        self.prepared_queries.insert(q.id.clone(), stored);
        self.tables.prepared_queries = index;
        self.touch(Table::PreparedQueries, q.id.clone());
        Response::Ok
    }

    /// Deletes one query; rejected with [`QueryError::NotFound`]'s text if it is unknown.
    pub(crate) fn prepared_query_delete(&mut self, index: u64, id: &str) -> Response {
        if self.prepared_queries.remove(id).is_none() {
            return Response::Rejected(QueryError::NotFound.to_string());
        }
        self.query_regexes.remove(id);
        self.tables.prepared_queries = index;
        self.touch(Table::PreparedQueries, id.to_string());
        Response::Ok
    }

    /// Deletes every query tied to `session`; called when the session is invalidated.
    pub(crate) fn delete_session_queries(&mut self, index: u64, session: &str) {
        let ids: Vec<String> = self
            .prepared_queries
            .values()
            .filter(|q| q.session == session)
            .map(|q| q.id.clone())
            .collect();
        for id in ids {
            self.prepared_queries.remove(&id);
            self.query_regexes.remove(&id);
            self.tables.prepared_queries = index;
            self.touch(Table::PreparedQueries, id);
        }
    }
}
