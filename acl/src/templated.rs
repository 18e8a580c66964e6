//! Consul's built-in templated policies (Consul 1.17+): named rule templates a token or role
//! links with variables (`{"TemplateName": "builtin/service", "TemplateVariables":
//! {"name": "api"}}`), expanded into rules like a service or node identity is. Pure: the
//! catalog validates and stores the links, the agent lists and previews the templates.
//!
//! ```text
//!   builtin/service + {name: "api"} ──validate──▶ render ──▶ rules text ──parse──▶ Rules
//! ```
//!
//! The template texts are Consul's, with `{{.Name}}` where the `name` variable goes, so the
//! `Template` a client reads is the one Consul shows. Names are checked before rendering (a
//! name can never close the quoted string it lands in).

use crate::rules::Rules;

/// The JSON schema of templates whose only (required) variable is `name`, as Consul shows it.
const NAME_SCHEMA: &str = "{\n\t\"type\": \"object\",\n\t\"properties\": {\n\t\t\"name\": { \"type\": \"string\", \"$ref\": \"#/definitions/min-length-one\" }\n\t},\n\t\"required\": [\"name\"],\n\t\"definitions\": {\n\t\t\"min-length-one\": {\n\t\t\t\t\"type\": \"string\",\n\t\t\t\t\"minLength\": 1\n\t\t}\n\t}\n}";

/// What the name variable of a template must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameRule {
    /// The template takes no variables (its schema is empty).
    None,
    /// A service or node identity name: lowercase alphanumerics, `-` and `_`.
    Identity(&'static str),
    /// Any non-empty string that cannot break out of the quoted rule name.
    Plain,
}

/// One built-in template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Template {
    /// `builtin/...`.
    pub name: &'static str,
    /// Consul's fixed ID for it (never shown; kept for a stable order and hashing).
    pub id: &'static str,
    /// The JSON schema of its variables (`""`: takes none).
    pub schema: &'static str,
    /// The rules, with `{{.Name}}` for the `name` variable.
    pub template: &'static str,
    /// What it grants, in Consul's words.
    pub description: &'static str,
    rule: NameRule,
}

/// Consul's built-in templates (its community edition's set).
pub const TEMPLATES: [Template; 6] = [
    Template {
        name: "builtin/service",
        id: "00000000-0000-0000-0000-000000000003",
        schema: NAME_SCHEMA,
        template: "\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice \"{{.Name}}-sidecar-proxy\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}",
        description: "Gives the token or role permissions to register a service and discover services in the Consul catalog. It also gives the specified service's sidecar proxy the permission to discover and route traffic to other services.",
        rule: NameRule::Identity("service"),
    },
    Template {
        name: "builtin/node",
        id: "00000000-0000-0000-0000-000000000004",
        schema: NAME_SCHEMA,
        template: "\nnode \"{{.Name}}\" {\n\tpolicy = \"write\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}",
        description: "Gives the token or role permissions for a register an agent/node into the catalog. A node is typically a consul agent but can also be a physical server, cloud instance or a container.",
        rule: NameRule::Identity("node"),
    },
    Template {
        name: "builtin/dns",
        id: "00000000-0000-0000-0000-000000000005",
        schema: "",
        template: "\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nquery_prefix \"\" {\n\tpolicy = \"read\"\n}",
        description: "Gives the token or role permissions for the Consul DNS to query services in the network.",
        rule: NameRule::None,
    },
    Template {
        name: "builtin/nomad-server",
        id: "00000000-0000-0000-0000-000000000006",
        schema: "",
        template: "\nacl = \"write\"\nagent_prefix \"\" {\n  policy = \"read\"\n}\nnode_prefix \"\" {\n  policy = \"read\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}",
        description: "Gives the token or role permissions required for integration with a nomad server.",
        rule: NameRule::None,
    },
    Template {
        name: "builtin/api-gateway",
        id: "00000000-0000-0000-0000-000000000008",
        schema: NAME_SCHEMA,
        template: "mesh = \"read\"\nnode_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice_prefix \"\" {\n\tpolicy = \"read\"\n}\nservice \"{{.Name}}\" {\n\tpolicy = \"write\"\n}",
        description: "Gives the token or role permissions for a Consul api gateway",
        rule: NameRule::Plain,
    },
    Template {
        name: "builtin/nomad-client",
        id: "00000000-0000-0000-0000-000000000009",
        schema: NAME_SCHEMA,
        template: "agent \"{{.Name}}\" {\n  policy = \"read\"\n}\nnode \"{{.Name}}\" {\n  policy = \"write\"\n}\nservice_prefix \"\" {\n  policy = \"write\"\n}\n",
        description: "Gives the token or role permissions required for integration with a nomad client.",
        rule: NameRule::Plain,
    },
];

/// The built-in template called `name`.
pub fn template(name: &str) -> Option<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name)
}

/// Lowercase alphanumerics, `-` and `_`, starting and ending alphanumeric, 1–256 bytes: the
/// names a service or node identity (and their templates) accept.
pub fn valid_identity_name(name: &str) -> bool {
    let b = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    (1..=256).contains(&b.len())
        && b.first().is_some_and(inner)
        && b.last().is_some_and(inner)
        && b.iter().all(|c| inner(c) || *c == b'-' || *c == b'_')
}

impl Template {
    /// Whether the template takes the `name` variable.
    pub fn takes_name(&self) -> bool {
        self.rule != NameRule::None
    }

    /// Checks the variables (`name`: the `name` variable, `None` when absent) against the
    /// schema, with Consul's texts.
    pub fn validate(&self, name: Option<&str>) -> Result<(), String> {
        let name = name.unwrap_or("");
        match self.rule {
            NameRule::None => Ok(()),
            _ if name.is_empty() => Err("name is required".into()),
            NameRule::Identity(kind) if !valid_identity_name(name) => Err(format!(
                "{kind} identity {name:?} has an invalid name. Only lowercase alphanumeric characters, '-' and '_' are allowed"
            )),
            NameRule::Plain
                if name
                    .chars()
                    .any(|c| c == '"' || c == '\\' || c.is_control()) =>
            {
                Err(format!(
                    "name {name:?} is invalid: quotes, backslashes and control characters are not allowed"
                ))
            }
            _ => Ok(()),
        }
    }

    /// The rules text for these variables (validate first: an invalid name is refused).
    pub fn render(&self, name: Option<&str>) -> Result<String, String> {
        self.validate(name)?;
        Ok(self.template.replace("{{.Name}}", name.unwrap_or("")))
    }

    /// The parsed rules for these variables.
    pub fn rules(&self, name: Option<&str>) -> Result<Rules, String> {
        let text = self.render(name)?;
        Rules::parse(&text).map_err(|e| e.to_string())
    }
}

/// The ID Consul gives the synthetic policy of a rendered template: Go's
/// `fmt.Sprintf("%x", fnv.New128a().Sum([]byte(rules)))`, which is the hex of the rules
/// followed by the hex of FNV-128a's offset basis (Go's `Sum` appends the hash of nothing
/// to its argument). Kept byte for byte so previews match Consul's.
pub fn synthetic_policy_id(rules: &str) -> String {
    const FNV128A_EMPTY: &str = "6c62272e07bb014262b821756295c58d";
    let mut out = String::with_capacity(rules.len() * 2 + FNV128A_EMPTY.len());
    for b in rules.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out.push_str(FNV128A_EMPTY);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Authorizer, Need, Resource, Root};

    #[test]
    fn every_template_renders_to_rules_that_parse() {
        for t in &TEMPLATES {
            let name = t.takes_name().then_some("web");
            let rules = t.rules(name);
            assert!(rules.is_ok(), "{}: {rules:?}", t.name);
        }
    }

    #[test]
    fn builtin_service_grants_the_named_service_only() {
        let t = template("builtin/service").expect("builtin/service");
        let a = Authorizer::new(t.rules(Some("api")).unwrap_or_default(), Root::Deny, None);
        assert!(a.allowed(Resource::Service, "api", Need::Write));
        assert!(a.allowed(Resource::Service, "api-sidecar-proxy", Need::Write));
        assert!(!a.allowed(Resource::Service, "web", Need::Write));
        assert!(a.allowed(Resource::Service, "web", Need::Read));
        assert!(a.allowed(Resource::Node, "n1", Need::Read));
    }

    #[test]
    fn names_are_checked_against_the_schema() {
        let service = template("builtin/service").expect("builtin/service");
        assert_eq!(service.validate(None), Err("name is required".into()));
        assert!(service.validate(Some("Bad Name")).is_err());
        let gw = template("builtin/api-gateway").expect("builtin/api-gateway");
        assert!(gw.validate(Some("gw\" { policy = \"deny\" }")).is_err());
        assert!(gw.validate(Some("My-Gateway")).is_ok());
        let dns = template("builtin/dns").expect("builtin/dns");
        assert!(dns.validate(None).is_ok());
        assert!(template("builtin/nope").is_none());
    }

    #[test]
    fn the_synthetic_id_is_consuls() {
        // Consul's docs show the builtin/dns preview's ID starting so.
        let dns = template("builtin/dns").expect("builtin/dns");
        let id = synthetic_policy_id(&dns.render(None).unwrap_or_default());
        assert!(id.starts_with("0a6e6f64655f70726566697"), "{id}");
        assert!(id.ends_with("6c62272e07bb014262b821756295c58d"));
    }
}
