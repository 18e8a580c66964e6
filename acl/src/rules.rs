//! A policy's `Rules`: parsed from Consul's HCL (`key_prefix "app/" { policy = "write" }`,
//! `operator = "read"`) or the JSON form of the same (`{"key_prefix":{"app/":{"policy":
//! "write"}}}`), and merged across the policies of one token.
//!
//! Parsing is as Consul's HCL1 decoder does it: blocks repeat, the label `""` is the catch-all
//! prefix, unknown resource names grant nothing and are ignored, a block without `policy` is
//! refused, `list` is a level only key rules take, and enterprise syntax (`namespace`,
//! `partition`, `sentinel`) is refused rather than silently dropped.

use std::collections::BTreeMap;
use std::fmt;

/// A rule's level. The derived order is the merge precedence: `Deny` wins over `Write` over
/// `List` over `Read` (Consul's `MergePolicies`, between identical rules only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `read`: read only (not `list`).
    Read,
    /// `list` (key rules only): read and list.
    List,
    /// `write`: everything.
    Write,
    /// `deny`: nothing.
    Deny,
}

impl Level {
    fn parse(s: &str, list_ok: bool) -> Option<Self> {
        match s {
            "read" => Some(Level::Read),
            "list" if list_ok => Some(Level::List),
            "write" => Some(Level::Write),
            "deny" => Some(Level::Deny),
            _ => None,
        }
    }

    /// Its name in rules and error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Read => "read",
            Level::List => "list",
            Level::Write => "write",
            Level::Deny => "deny",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One labeled rule: its level, and for service rules the optional `intentions` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// `policy = "..."`.
    pub level: Level,
    /// `intentions = "..."` (service rules only).
    pub intentions: Option<Level>,
}

impl Rule {
    fn merge(self, other: Rule) -> Rule {
        Rule {
            level: self.level.max(other.level),
            intentions: match (self.intentions, other.intentions) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            },
        }
    }
}

/// The labeled resources, in the order of [`LABELED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Labeled {
    Agent,
    Event,
    Key,
    Node,
    Query,
    Service,
    Session,
}

/// `(resource, exact name, prefix name)` as written in rules.
pub(crate) const LABELED: [(Labeled, &str, &str); 7] = [
    (Labeled::Agent, "agent", "agent_prefix"),
    (Labeled::Event, "event", "event_prefix"),
    (Labeled::Key, "key", "key_prefix"),
    (Labeled::Node, "node", "node_prefix"),
    (Labeled::Query, "query", "query_prefix"),
    (Labeled::Service, "service", "service_prefix"),
    (Labeled::Session, "session", "session_prefix"),
];

/// The unlabeled resources, in the order of [`SCALARS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Acl,
    Keyring,
    Operator,
    Mesh,
    Peering,
}

pub(crate) const SCALARS: [(Scalar, &str); 5] = [
    (Scalar::Acl, "acl"),
    (Scalar::Keyring, "keyring"),
    (Scalar::Operator, "operator"),
    (Scalar::Mesh, "mesh"),
    (Scalar::Peering, "peering"),
];

/// Rules on one labeled resource: exact names and prefixes, kept apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) exact: BTreeMap<String, Rule>,
    pub(crate) prefix: BTreeMap<String, Rule>,
    /// The byte lengths of the `prefix` keys, longest first, each once: `lookup` tries only
    /// these cuts of a name (a policy with `service_prefix ""` alone costs one map probe,
    /// not one per byte of the name). Kept by [`Table::insert_prefix`].
    prefix_lens: Vec<usize>,
}

impl Table {
    /// The rule governing `name`: an exact rule for it, else the longest prefix rule
    /// (matching is byte-wise: no globs, no case folding).
    pub(crate) fn lookup(&self, name: &str) -> Option<Rule> {
        if let Some(r) = self.exact.get(name) {
            return Some(*r);
        }
        // Longest candidate first; a cut inside a UTF-8 sequence matches no `str` key.
        self.prefix_lens
            .iter()
            .filter(|&&len| len <= name.len() && name.is_char_boundary(len))
            .find_map(|&len| self.prefix.get(&name[..len]).copied())
    }

    /// Adds (or merges into) the prefix rule `name`.
    pub(crate) fn insert_prefix(&mut self, name: String, rule: Rule) {
        if let Err(at) = self
            .prefix_lens
            .binary_search_by(|probe| name.len().cmp(probe))
        {
            self.prefix_lens.insert(at, name.len());
        }
        Self::insert(&mut self.prefix, name, rule);
    }

    fn insert(map: &mut BTreeMap<String, Rule>, name: String, rule: Rule) {
        map.entry(name)
            .and_modify(|r| *r = r.merge(rule))
            .or_insert(rule);
    }

    fn merge(&mut self, other: &Table) {
        for (k, r) in &other.exact {
            Self::insert(&mut self.exact, k.clone(), *r);
        }
        for (k, r) in &other.prefix {
            self.insert_prefix(k.clone(), *r);
        }
    }
}

/// A policy's rules (or the merge of several policies' rules).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub(crate) labeled: [Table; 7],
    pub(crate) scalars: [Option<Level>; 5],
}

/// Rules that cannot be used; the texts are Consul's, which clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not HCL or JSON.
    #[error("Failed to parse ACL rules: {0}")]
    Syntax(String),
    /// A rule with a missing or wrong level, or a construct Meridian does not take.
    #[error("Invalid {resource} policy: {detail}")]
    Invalid {
        /// The resource as written (`key`, `service_prefix`, `operator`, ...).
        resource: String,
        /// What is wrong.
        detail: String,
    },
}

fn invalid(resource: &str, detail: impl Into<String>) -> RulesError {
    RulesError::Invalid {
        resource: resource.to_string(),
        detail: detail.into(),
    }
}

/// One rule as read from either syntax, before it is checked.
struct RawRule {
    resource: String,
    label: Option<String>,
    policy: Option<String>,
    intentions: Option<String>,
}

impl Rules {
    /// Parses rules written in HCL or in JSON (a document starting with `{`). Empty rules
    /// are valid and grant nothing.
    pub fn parse(text: &str) -> Result<Rules, RulesError> {
        let raw = if text.trim_start().starts_with('{') {
            raw_from_json(text)?
        } else {
            raw_from_hcl(text)?
        };
        let mut rules = Rules::default();
        for r in raw {
            rules.add(r)?;
        }
        Ok(rules)
    }

    fn add(&mut self, r: RawRule) -> Result<(), RulesError> {
        let name = r.resource.as_str();
        if name.starts_with("namespace") || name.starts_with("partition") || name == "sentinel" {
            return Err(invalid(
                name,
                "namespaces, partitions and sentinel are Consul Enterprise rules",
            ));
        }
        if let Some(&(scalar, _)) = SCALARS.iter().find(|(_, n)| *n == name) {
            let Some(level) = r.policy.as_deref() else {
                return Err(invalid(name, "no level given"));
            };
            if r.label.is_some() {
                return Err(invalid(name, format!("{name} takes no label")));
            }
            let level = Level::parse(level, false)
                .ok_or_else(|| invalid(name, format!("{level:?} is not deny, read or write")))?;
            let slot = &mut self.scalars[scalar as usize];
            *slot = Some(slot.map_or(level, |l| l.max(level)));
            return Ok(());
        }
        let Some((i, prefix)) = LABELED.iter().enumerate().find_map(|(i, (_, exact, pre))| {
            (name == *exact)
                .then_some((i, false))
                .or((name == *pre).then_some((i, true)))
        }) else {
            // Consul's decoder ignores what it does not know: it grants nothing.
            return Ok(());
        };
        let label = r
            .label
            .ok_or_else(|| invalid(name, format!("{name} needs a name, as in {name} \"web\"")))?;
        let Some(level) = r.policy.as_deref() else {
            return Err(invalid(name, format!("{name} {label:?} has no policy")));
        };
        let is_key = LABELED[i].0 == Labeled::Key;
        let level = Level::parse(level, is_key).ok_or_else(|| {
            let levels = if is_key {
                "deny, read, list or write"
            } else {
                "deny, read or write"
            };
            invalid(name, format!("{name} {label:?}: {level:?} is not {levels}"))
        })?;
        let intentions = match (r.intentions.as_deref(), LABELED[i].0) {
            (None, _) => None,
            (Some(v), Labeled::Service) => Some(Level::parse(v, false).ok_or_else(|| {
                invalid(
                    name,
                    format!("{name} {label:?}: intentions {v:?} is not deny, read or write"),
                )
            })?),
            (Some(_), _) => {
                return Err(invalid(name, "only service rules take intentions"));
            }
        };
        let table = &mut self.labeled[i];
        let rule = Rule { level, intentions };
        if prefix {
            table.insert_prefix(label, rule);
        } else {
            Table::insert(&mut table.exact, label, rule);
        }
        Ok(())
    }

    /// These rules and `other`'s, merged per identical rule (deny > write > list > read).
    pub fn merge(&mut self, other: &Rules) {
        for (t, o) in self.labeled.iter_mut().zip(&other.labeled) {
            t.merge(o);
        }
        for (s, o) in self.scalars.iter_mut().zip(&other.scalars) {
            *s = match (*s, *o) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
    }

    /// Whether these rules grant nothing at all.
    pub fn is_empty(&self) -> bool {
        self.labeled
            .iter()
            .all(|t| t.exact.is_empty() && t.prefix.is_empty())
            && self.scalars.iter().all(Option::is_none)
    }

    pub(crate) fn table(&self, r: Labeled) -> &Table {
        &self.labeled[r as usize]
    }

    pub(crate) fn scalar(&self, s: Scalar) -> Option<Level> {
        self.scalars[s as usize]
    }
}

fn raw_from_hcl(text: &str) -> Result<Vec<RawRule>, RulesError> {
    let body: hcl::Body = text
        .parse()
        .map_err(|e: hcl::Error| RulesError::Syntax(e.to_string()))?;
    let mut out = Vec::new();
    for s in body.iter() {
        match s {
            hcl::Structure::Attribute(a) => {
                let resource = a.key.as_str().to_string();
                match &a.expr {
                    hcl::Expression::String(v) => out.push(RawRule {
                        resource,
                        label: None,
                        policy: Some(v.clone()),
                        intentions: None,
                    }),
                    // HCL1's `key = { "foo" = { policy = "read" } }` form.
                    hcl::Expression::Object(o) => {
                        for (k, v) in o {
                            let label = match k {
                                hcl::ObjectKey::Identifier(i) => i.as_str().to_string(),
                                hcl::ObjectKey::Expression(hcl::Expression::String(s)) => s.clone(),
                                _ => return Err(invalid(&resource, "a name must be a string")),
                            };
                            let fields = hcl_object_fields(&resource, v)?;
                            out.push(RawRule {
                                resource: resource.clone(),
                                label: Some(label),
                                policy: fields.0,
                                intentions: fields.1,
                            });
                        }
                    }
                    other => {
                        return Err(invalid(
                            &resource,
                            format!("expected a string level, found {other}"),
                        ));
                    }
                }
            }
            hcl::Structure::Block(b) => {
                let resource = b.identifier.as_str().to_string();
                let label = match b.labels.as_slice() {
                    [] => None,
                    [l] => Some(l.as_str().to_string()),
                    _ => return Err(invalid(&resource, "a rule takes one name")),
                };
                let (mut policy, mut intentions) = (None, None);
                for a in b.body.attributes() {
                    let value = match &a.expr {
                        hcl::Expression::String(v) => v.clone(),
                        other => {
                            return Err(invalid(
                                &resource,
                                format!("{} must be a string, found {other}", a.key.as_str()),
                            ));
                        }
                    };
                    match a.key.as_str() {
                        "policy" => policy = Some(value),
                        "intentions" => intentions = Some(value),
                        _ => {}
                    }
                }
                out.push(RawRule {
                    resource,
                    label,
                    policy,
                    intentions,
                });
            }
        }
    }
    Ok(out)
}

fn hcl_object_fields(
    resource: &str,
    v: &hcl::Expression,
) -> Result<(Option<String>, Option<String>), RulesError> {
    let hcl::Expression::Object(o) = v else {
        return Err(invalid(resource, "a rule must be a block"));
    };
    let (mut policy, mut intentions) = (None, None);
    for (k, v) in o {
        let key = match k {
            hcl::ObjectKey::Identifier(i) => i.as_str().to_string(),
            hcl::ObjectKey::Expression(hcl::Expression::String(s)) => s.clone(),
            _ => continue,
        };
        let hcl::Expression::String(v) = v else {
            return Err(invalid(resource, format!("{key} must be a string")));
        };
        match key.as_str() {
            "policy" => policy = Some(v.clone()),
            "intentions" => intentions = Some(v.clone()),
            _ => {}
        }
    }
    Ok((policy, intentions))
}

fn raw_from_json(text: &str) -> Result<Vec<RawRule>, RulesError> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
    let Value::Object(top) = doc else {
        return Err(RulesError::Syntax("rules must be a JSON object".into()));
    };
    let mut out = Vec::new();
    for (resource, v) in top {
        match v {
            Value::String(level) => out.push(RawRule {
                resource,
                label: None,
                policy: Some(level),
                intentions: None,
            }),
            // `{"key_prefix": {"a/": {...}}}` or HCL1-JSON's list of such objects.
            Value::Object(_) | Value::Array(_) => {
                let objects = match v {
                    Value::Array(a) => a,
                    o => vec![o],
                };
                for o in objects {
                    let Value::Object(named) = o else {
                        return Err(invalid(&resource, "expected an object of names"));
                    };
                    for (label, rule) in named {
                        let field = |f: &str| -> Result<Option<String>, RulesError> {
                            match rule.get(f) {
                                None | Some(Value::Null) => Ok(None),
                                Some(Value::String(s)) => Ok(Some(s.clone())),
                                Some(other) => Err(invalid(
                                    &resource,
                                    format!("{f} must be a string, found {other}"),
                                )),
                            }
                        };
                        if !rule.is_object() {
                            return Err(invalid(&resource, format!("{label:?} must be an object")));
                        }
                        out.push(RawRule {
                            resource: resource.clone(),
                            label: Some(label),
                            policy: field("policy")?,
                            intentions: field("intentions")?,
                        });
                    }
                }
            }
            other => {
                return Err(invalid(
                    &resource,
                    format!("expected a level or an object, found {other}"),
                ));
            }
        }
    }
    Ok(out)
}
