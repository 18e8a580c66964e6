//! Query lookup and template rendering (Consul's `prepared_query/template.go` and
//! `PreparedQueryResolve`). A `name_prefix_match` template answers every name it is a prefix
//! of; the longest prefix wins and static names win over templates. Rendering interpolates
//! `${name.full}`, `${name.prefix}`, `${name.suffix}`, `${match(N)}` and `${agent.segment}`
//! into every string of `Service`. No I/O here.

use regex::Regex;

use super::error::QueryError;
use super::{PreparedQuery, ServiceQuery};
use crate::State;

/// The one template type Consul defines.
pub const TEMPLATE_NAME_PREFIX_MATCH: &str = "name_prefix_match";

/// What the `${...}` variables of one rendering stand for.
struct Vars<'a> {
    full: &'a str,
    prefix: &'a str,
    suffix: &'a str,
    /// Captures of `Template.Regexp` on the full name (empty when it does not match).
    matches: Vec<String>,
}

/// Expands the `${...}` references of `s`. `$${` is a literal `${`. Unknown variables and
/// unterminated references are errors; `match(N)` past the captures is "".
fn interpolate(s: &str, vars: &Vars<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find("${") {
        if rest[..pos].ends_with('$') {
            out.push_str(&rest[..pos - 1]);
            out.push_str("${");
            rest = &rest[pos + 2..];
            continue;
        }
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated \"${{\" in {s:?}"))?;
        out.push_str(&variable(after[..end].trim(), vars)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn variable(expr: &str, vars: &Vars<'_>) -> Result<String, String> {
    Ok(match expr {
        "name.full" => vars.full.to_string(),
        "name.prefix" => vars.prefix.to_string(),
        "name.suffix" => vars.suffix.to_string(),
        // Network segments are an Enterprise feature; every agent is in the default one.
        "agent.segment" => String::new(),
        _ => {
            let n = expr
                .strip_prefix("match")
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
                .ok_or_else(|| format!("unknown variable \"${{{expr}}}\""))?;
            let n: usize = n
                .parse()
                .map_err(|_| format!("match() wants a capture number, got {n:?}"))?;
            vars.matches.get(n).cloned().unwrap_or_default()
        }
    })
}

/// Rewrites every string of `svc` with `f`; an error names the field it came from.
fn map_strings(
    svc: &mut ServiceQuery,
    f: &dyn Fn(&str) -> Result<String, String>,
) -> Result<(), (&'static str, String)> {
    fn one(
        field: &'static str,
        s: &mut String,
        f: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<(), (&'static str, String)> {
        *s = f(s).map_err(|e| (field, e))?;
        Ok(())
    }
    one("Service.Service", &mut svc.service, f)?;
    one("Service.Namespace", &mut svc.namespace, f)?;
    one("Service.Near", &mut svc.near, f)?;
    for s in &mut svc.failover.datacenters {
        one("Service.Failover.Datacenters", s, f)?;
    }
    for t in &mut svc.failover.targets {
        one("Service.Failover.Targets.PeerName", &mut t.peer_name, f)?;
        one("Service.Failover.Targets.Datacenter", &mut t.datacenter, f)?;
    }
    for s in &mut svc.ignore_check_ids {
        one("Service.IgnoreCheckIDs", s, f)?;
    }
    for s in &mut svc.tags {
        one("Service.Tags", s, f)?;
    }
    for v in svc.node_meta.values_mut() {
        one("Service.NodeMeta", v, f)?;
    }
    for v in svc.service_meta.values_mut() {
        one("Service.ServiceMeta", v, f)?;
    }
    Ok(())
}

fn compile(q: &PreparedQuery) -> Result<Option<Regex>, regex::Error> {
    if q.template.regexp.is_empty() {
        return Ok(None);
    }
    Regex::new(&q.template.regexp).map(Some)
}

/// Validates a template: its regexp compiles and every `${...}` in `Service` parses.
pub(super) fn check(q: &PreparedQuery) -> Result<(), QueryError> {
    compile(q).map_err(|e| QueryError::Invalid {
        field: "Template.Regexp",
        reason: format!("{:?} does not compile: {e}", q.template.regexp),
    })?;
    let vars = Vars {
        full: "",
        prefix: "",
        suffix: "",
        matches: Vec::new(),
    };
    let mut svc = q.service.clone();
    map_strings(&mut svc, &|s| interpolate(s, &vars))
        .map_err(|(field, reason)| QueryError::Invalid { field, reason })
}

/// Renders template `q` for the queried `name` with `re`, its regexp compiled when the
/// query was stored. Strings that fail to interpolate (only possible for rows stored before
/// validation) are kept as they are.
fn render(q: &PreparedQuery, re: Option<&Regex>, name: &str) -> PreparedQuery {
    let matches = re
        .and_then(|re| re.captures(name))
        .map(|c| {
            c.iter()
                .map(|m| m.map_or_else(String::new, |m| m.as_str().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let vars = Vars {
        full: name,
        prefix: &q.name,
        suffix: name.strip_prefix(q.name.as_str()).unwrap_or(name),
        matches,
    };
    let mut out = q.clone();
    // `f` never fails, so neither does the walk.
    let _ = map_strings(&mut out.service, &|s| {
        Ok(interpolate(s, &vars).unwrap_or_else(|_| s.to_string()))
    });
    if q.template.remove_empty_tags {
        out.service.tags.retain(|t| !t.is_empty());
    }
    out
}

impl State {
    /// Compiles `q`'s `Template.Regexp` once, when `q` is stored (apply or restore), into
    /// the index `resolve_query` reads. A regexp that does not compile (refused by
    /// validation, so only in rows from before it) gets no entry: no captures, as before.
    pub(crate) fn index_query_regex(&mut self, q: &PreparedQuery) {
        match compile(q) {
            Ok(Some(re)) if q.is_template() => {
                self.query_regexes
                    .insert(q.id.clone(), std::sync::Arc::new(re));
            }
            _ => {
                self.query_regexes.remove(&q.id);
            }
        }
    }

    /// The compiled `Template.Regexp` of query `id` (`None`: not a template, no regexp).
    pub fn query_regex(&self, id: &str) -> Option<&std::sync::Arc<Regex>> {
        self.query_regexes.get(id)
    }

    /// Finds the query that answers `id_or_name` and returns it ready to execute (a
    /// template rendered for that name). Order: exact ID, exact name, then the template
    /// with the longest name that is a prefix of `id_or_name` (Name "" matches everything).
    /// `None` when nothing matches or `id_or_name` is empty.
    pub fn resolve_query(&self, id_or_name: &str) -> Option<PreparedQuery> {
        if id_or_name.is_empty() {
            return None;
        }
        let found = self.prepared_queries.get(id_or_name).or_else(|| {
            let all = || self.prepared_queries.values();
            all().find(|q| q.name == id_or_name).or_else(|| {
                all()
                    .filter(|q| q.is_template() && id_or_name.starts_with(q.name.as_str()))
                    .max_by_key(|q| q.name.len())
            })
        })?;
        Some(if found.is_template() {
            let re = self.query_regexes.get(&found.id).map(|re| &**re);
            render(found, re, id_or_name)
        } else {
            found.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(matches: &[&str]) -> Vars<'static> {
        Vars {
            full: "geo-db-redis-primary",
            prefix: "geo-db-",
            suffix: "redis-primary",
            matches: matches.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn interpolates_names_matches_and_escapes() {
        let v = vars(&["geo-db-redis-primary", "redis", "primary"]);
        let got = interpolate("${name.prefix}|${ name.suffix }|${name.full}", &v);
        assert_eq!(
            got.as_deref(),
            Ok("geo-db-|redis-primary|geo-db-redis-primary")
        );
        assert_eq!(
            interpolate("${match(1)}-${match( 2 )}-${match(9)}", &v).as_deref(),
            Ok("redis-primary-")
        );
        assert_eq!(
            interpolate("$${name.full}", &v).as_deref(),
            Ok("${name.full}")
        );
        assert_eq!(interpolate("plain", &v).as_deref(), Ok("plain"));
        assert!(interpolate("${name.bogus}", &v).is_err());
        assert!(interpolate("${match(x)}", &v).is_err());
        assert!(interpolate("${name.full", &v).is_err());
    }
}
