//! `meridian acl ...`: bootstrap, and create/read/update/delete/list of tokens, policies and
//! roles over `/v1/acl/*`, with Consul's flags (`-policy-name`, `-rules @file`,
//! `-format json`, ...) and its pretty output (`acl_print.rs`). Only the CLI uses this.

use std::io::Write;

use clap::Subcommand;
use serde_json::{Value, json};

use super::CliError;
use super::acl_print::{Kind, print};
use super::client::{ApiClient, HttpFlags};

/// `meridian acl <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum AclCommand {
    /// Bootstrap the ACL system and print the management token.
    Bootstrap(BootstrapArgs),
    /// Manage tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Set one of the agent's own tokens (`PUT /v1/agent/token/<type>`).
    SetAgentToken(SetAgentTokenArgs),
}

/// `acl set-agent-token TYPE TOKEN`.
#[derive(Debug, clap::Args)]
pub struct SetAgentTokenArgs {
    /// `default`, `agent`, `recovery` (or `agent_recovery`), `replication`,
    /// `config_file_service_registration` or `dns`.
    #[arg(value_name = "TYPE")]
    kind: String,
    /// The token's SecretID (`secret`: `token` is the `-token` flag's name).
    #[arg(value_name = "TOKEN")]
    secret: String,
    #[command(flatten)]
    http: HttpFlags,
}

/// Output flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FormatFlags {
    /// `pretty` (default) or `json`.
    #[arg(long, default_value = "pretty", value_parser = ["pretty", "json"])]
    pub format: String,
}

/// `acl bootstrap`.
#[derive(Debug, clap::Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    http: HttpFlags,
    #[command(flatten)]
    fmt: FormatFlags,
}

/// Links and identities, shared by tokens and roles.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LinkFlags {
    /// A policy to link, by name (repeatable).
    #[arg(long = "policy-name")]
    policy_name: Vec<String>,
    /// A policy to link, by ID (repeatable).
    #[arg(long = "policy-id")]
    policy_id: Vec<String>,
    /// `NAME[:DC1,DC2]`: a service identity (repeatable).
    #[arg(long = "service-identity")]
    service_identity: Vec<String>,
    /// `NAME:DC`: a node identity (repeatable).
    #[arg(long = "node-identity")]
    node_identity: Vec<String>,
    /// A templated policy to link (`builtin/service`, ...), with its `-var`s.
    #[arg(long = "templated-policy")]
    templated_policy: Option<String>,
    /// `VARIABLE:VALUE` for `-templated-policy` (`-var name:api`; repeatable).
    #[arg(long = "var", requires = "templated_policy")]
    var: Vec<String>,
}

/// Token fields.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TokenFields {
    /// Free text.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    links: LinkFlags,
    /// A role to link, by name (repeatable).
    #[arg(long = "role-name")]
    role_name: Vec<String>,
    /// A role to link, by ID (repeatable).
    #[arg(long = "role-id")]
    role_id: Vec<String>,
}

/// `acl token <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token.
    Create {
        #[command(flatten)]
        fields: TokenFields,
        /// Valid only in this datacenter.
        #[arg(long)]
        local: bool,
        /// Expire after this long (`5m`, at least 1m).
        #[arg(long = "expires-ttl")]
        expires_ttl: Option<String>,
        /// The AccessorID to use (default: generated).
        #[arg(long)]
        accessor: Option<String>,
        /// The SecretID to use (default: generated).
        #[arg(long)]
        secret: Option<String>,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Read a token by AccessorID, or the one in use (`-self`).
    Read {
        /// AccessorID.
        #[arg(long, required_unless_present = "self_")]
        id: Option<String>,
        /// The token the request carries.
        #[arg(long = "self")]
        self_: bool,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Update a token; links given replace the token's, others are kept.
    Update {
        /// AccessorID.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        fields: TokenFields,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Delete a token.
    Delete {
        /// AccessorID.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        http: HttpFlags,
    },
    /// List tokens.
    List {
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Copy a token's links into a new token.
    Clone {
        /// AccessorID of the token to copy.
        #[arg(long)]
        id: String,
        /// Description of the copy.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
}

/// Policy fields.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PolicyFields {
    /// Name.
    #[arg(long)]
    name: Option<String>,
    /// Free text.
    #[arg(long)]
    description: Option<String>,
    /// The rules, or `@FILE` to read them from a file.
    #[arg(long)]
    rules: Option<String>,
    /// A datacenter where the policy applies (repeatable; default all).
    #[arg(long = "valid-datacenter")]
    valid_datacenter: Vec<String>,
}

/// `acl policy <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create a policy.
    Create {
        #[command(flatten)]
        fields: PolicyFields,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Read a policy by ID or name.
    Read {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Update a policy; fields not given are kept.
    Update {
        /// ID.
        #[arg(long)]
        id: String,
        #[command(flatten)]
        fields: PolicyFields,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Delete a policy by ID or name.
    Delete {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        http: HttpFlags,
    },
    /// List policies.
    List {
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
}

/// `-id ID` or `-name NAME`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Which {
    /// ID.
    #[arg(long, required_unless_present = "name", conflicts_with = "name")]
    id: Option<String>,
    /// Name.
    #[arg(long)]
    name: Option<String>,
}

/// `acl role <subcommand>`.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role.
    Create {
        /// Name.
        #[arg(long)]
        name: String,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        links: LinkFlags,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Read a role by ID or name.
    Read {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Update a role; links given replace the role's, others are kept.
    Update {
        /// ID.
        #[arg(long)]
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// Free text.
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        links: LinkFlags,
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
    /// Delete a role by ID or name.
    Delete {
        #[command(flatten)]
        which: Which,
        #[command(flatten)]
        http: HttpFlags,
    },
    /// List roles.
    List {
        #[command(flatten)]
        http: HttpFlags,
        #[command(flatten)]
        fmt: FormatFlags,
    },
}

/// Runs `meridian acl ...`.
pub async fn run(cmd: AclCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        AclCommand::Bootstrap(a) => {
            let c = client(&a.http)?;
            let t = put(
                &c,
                "/v1/acl/bootstrap",
                json!({}),
                "Failed ACL bootstrapping",
            )
            .await?;
            print(out, Kind::Token, &t, &a.fmt.format)
        }
        AclCommand::Token(t) => token(t, out).await,
        AclCommand::Policy(p) => policy(p, out).await,
        AclCommand::Role(r) => role(r, out).await,
        AclCommand::SetAgentToken(a) => set_agent_token(a, out).await,
    }
}

/// `acl set-agent-token`: Consul's type names map to the agent endpoint's.
async fn set_agent_token(a: SetAgentTokenArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let path = match a.kind.as_str() {
        "recovery" | "agent_recovery" | "master" | "agent_master" => "agent_recovery",
        k @ ("default" | "agent" | "replication" | "config_file_service_registration" | "dns") => k,
        other => return Err(CliError::msg(format!("Unknown token type {other:?}"))),
    };
    let c = client(&a.http)?;
    c.put(
        &format!("/v1/agent/token/{path}"),
        &[],
        json!({ "Token": a.secret }).to_string().into_bytes(),
    )
    .await
    .map_err(CliError::http("Failed setting token"))?;
    writeln!(out, "ACL token {:?} set successfully", a.kind)?;
    Ok(())
}

fn client(http: &HttpFlags) -> Result<ApiClient, CliError> {
    ApiClient::new(http, None).map_err(CliError::http("Error connecting to Consul agent"))
}

async fn put(c: &ApiClient, path: &str, body: Value, what: &str) -> Result<Value, CliError> {
    let bytes = c
        .put(path, &[], body.to_string().into_bytes())
        .await
        .map_err(CliError::http(what))?;
    decode(&bytes)
}

async fn get(c: &ApiClient, path: &str, what: &str) -> Result<Value, CliError> {
    match c.get(path, &[]).await.map_err(CliError::http(what))? {
        Some(bytes) => decode(&bytes),
        None => Err(CliError::msg(format!("{what}: not found"))),
    }
}

fn decode(bytes: &[u8]) -> Result<Value, CliError> {
    serde_json::from_slice(bytes)
        .map_err(|e| CliError::msg(format!("invalid response from agent: {e}")))
}

fn links(l: &LinkFlags) -> Result<Vec<(&'static str, Value)>, CliError> {
    let mut out = Vec::new();
    if !l.policy_name.is_empty() || !l.policy_id.is_empty() {
        let by_name = l.policy_name.iter().map(|n| json!({"Name": n}));
        let by_id = l.policy_id.iter().map(|i| json!({"ID": i}));
        out.push(("Policies", Value::Array(by_name.chain(by_id).collect())));
    }
    if !l.service_identity.is_empty() {
        let ids = l.service_identity.iter().map(|s| match s.split_once(':') {
            Some((name, dcs)) => {
                json!({"ServiceName": name, "Datacenters": dcs.split(',').collect::<Vec<_>>()})
            }
            None => json!({"ServiceName": s}),
        });
        out.push(("ServiceIdentities", Value::Array(ids.collect())));
    }
    if !l.node_identity.is_empty() {
        let mut ids = Vec::new();
        for n in &l.node_identity {
            let Some((name, dc)) = n.split_once(':') else {
                return Err(CliError::msg(format!(
                    "Malformed -node-identity argument: {n:?} (want NAME:DATACENTER)"
                )));
            };
            ids.push(json!({"NodeName": name, "Datacenter": dc}));
        }
        out.push(("NodeIdentities", Value::Array(ids)));
    }
    if let Some(name) = &l.templated_policy {
        let mut vars = serde_json::Map::new();
        for v in &l.var {
            let Some((k, value)) = v.split_once(':') else {
                return Err(CliError::msg(format!(
                    "Malformed -var argument: {v:?}, expecting VariableName:Value"
                )));
            };
            vars.insert(k.to_ascii_lowercase(), json!(value));
        }
        let tp = json!({"TemplateName": name, "TemplateVariables": vars});
        out.push(("TemplatedPolicies", Value::Array(vec![tp])));
    }
    Ok(out)
}

fn token_body(f: &TokenFields, mut base: Value) -> Result<Value, CliError> {
    if let Some(d) = &f.description {
        base["Description"] = json!(d);
    }
    for (k, v) in links(&f.links)? {
        base[k] = v;
    }
    if !f.role_name.is_empty() || !f.role_id.is_empty() {
        let by_name = f.role_name.iter().map(|n| json!({"Name": n}));
        let by_id = f.role_id.iter().map(|i| json!({"ID": i}));
        base["Roles"] = Value::Array(by_name.chain(by_id).collect());
    }
    Ok(base)
}

async fn token(cmd: TokenCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        TokenCommand::Create {
            fields,
            local,
            expires_ttl,
            accessor,
            secret,
            http,
            fmt,
        } => {
            let mut body = token_body(&fields, json!({"Local": local}))?;
            if let Some(ttl) = expires_ttl {
                body["ExpirationTTL"] = json!(ttl);
            }
            if let Some(a) = accessor {
                body["AccessorID"] = json!(a);
            }
            if let Some(s) = secret {
                body["SecretID"] = json!(s);
            }
            let t = put(
                &client(&http)?,
                "/v1/acl/token",
                body,
                "Failed to create new token",
            )
            .await?;
            print(out, Kind::Token, &t, &fmt.format)
        }
        TokenCommand::Read {
            id,
            self_,
            http,
            fmt,
        } => {
            let path = match (self_, id) {
                (true, _) => "/v1/acl/token/self".to_string(),
                (false, Some(id)) => format!("/v1/acl/token/{id}"),
                (false, None) => return Err(CliError::msg("Must specify the -id parameter")),
            };
            let t = get(&client(&http)?, &path, "Error reading token").await?;
            print(out, Kind::Token, &t, &fmt.format)
        }
        TokenCommand::Update {
            id,
            fields,
            http,
            fmt,
        } => {
            let c = client(&http)?;
            let path = format!("/v1/acl/token/{id}");
            let mut old = get(&c, &path, "Error when retrieving current token").await?;
            // The server keeps SecretID, Local and expiry when they are omitted.
            if let Some(o) = old.as_object_mut() {
                for k in [
                    "SecretID",
                    "Hash",
                    "CreateIndex",
                    "ModifyIndex",
                    "CreateTime",
                    "ExpirationTime",
                ] {
                    o.remove(k);
                }
            }
            let body = token_body(&fields, old)?;
            let t = put(&c, &path, body, "Failed to update token").await?;
            print(out, Kind::Token, &t, &fmt.format)
        }
        TokenCommand::Delete { id, http } => {
            client(&http)?
                .delete(&format!("/v1/acl/token/{id}"), &[])
                .await
                .map_err(CliError::http(format!("Error deleting token {id:?}")))?;
            writeln!(out, "Token {id:?} deleted successfully")?;
            Ok(())
        }
        TokenCommand::List { http, fmt } => {
            let list = get(
                &client(&http)?,
                "/v1/acl/tokens",
                "Failed to retrieve the token list",
            )
            .await?;
            print(out, Kind::List(&Kind::Token), &list, &fmt.format)
        }
        TokenCommand::Clone {
            id,
            description,
            http,
            fmt,
        } => {
            let body = json!({"Description": description.unwrap_or_default()});
            let path = format!("/v1/acl/token/{id}/clone");
            let t = put(&client(&http)?, &path, body, "Failed to clone token").await?;
            print(out, Kind::Token, &t, &fmt.format)
        }
    }
}

/// `-rules` text, or the file named after `@`.
fn rules_text(rules: &str) -> Result<String, CliError> {
    match rules.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::msg(format!("Failed to read rules file {path:?}: {e}"))),
        None => Ok(rules.to_string()),
    }
}

fn policy_body(f: &PolicyFields, mut base: Value) -> Result<Value, CliError> {
    if let Some(n) = &f.name {
        base["Name"] = json!(n);
    }
    if let Some(d) = &f.description {
        base["Description"] = json!(d);
    }
    if let Some(r) = &f.rules {
        base["Rules"] = json!(rules_text(r)?);
    }
    if !f.valid_datacenter.is_empty() {
        base["Datacenters"] = json!(f.valid_datacenter);
    }
    Ok(base)
}

fn which_path(kind: &str, w: &Which) -> String {
    match (&w.id, &w.name) {
        (Some(id), _) => format!("/v1/acl/{kind}/{id}"),
        (None, name) => {
            let name = name.as_deref().unwrap_or_default();
            let enc: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
            format!("/v1/acl/{kind}/name/{enc}")
        }
    }
}

async fn policy(cmd: PolicyCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        PolicyCommand::Create { fields, http, fmt } => {
            if fields.name.as_deref().is_none_or(str::is_empty) {
                return Err(CliError::msg("Missing required '-name' flag"));
            }
            let body = policy_body(&fields, json!({}))?;
            let p = put(
                &client(&http)?,
                "/v1/acl/policy",
                body,
                "Failed to create new policy",
            )
            .await?;
            print(out, Kind::Policy, &p, &fmt.format)
        }
        PolicyCommand::Read { which, http, fmt } => {
            let p = get(
                &client(&http)?,
                &which_path("policy", &which),
                "Error reading policy",
            )
            .await?;
            print(out, Kind::Policy, &p, &fmt.format)
        }
        PolicyCommand::Update {
            id,
            fields,
            http,
            fmt,
        } => {
            let c = client(&http)?;
            let path = format!("/v1/acl/policy/{id}");
            let old = get(&c, &path, "Error retrieving current policy").await?;
            let base = json!({"Name": old["Name"], "Description": old["Description"],
                "Rules": old["Rules"], "Datacenters": old.get("Datacenters").cloned().unwrap_or(json!([]))});
            let p = put(
                &c,
                &path,
                policy_body(&fields, base)?,
                "Failed to update policy",
            )
            .await?;
            print(out, Kind::Policy, &p, &fmt.format)
        }
        PolicyCommand::Delete { which, http } => {
            let c = client(&http)?;
            let id =
                get(&c, &which_path("policy", &which), "Error reading policy").await?["ID"].clone();
            let id = id.as_str().unwrap_or_default().to_string();
            c.delete(&format!("/v1/acl/policy/{id}"), &[])
                .await
                .map_err(CliError::http(format!("Error deleting policy {id:?}")))?;
            writeln!(out, "Policy {id:?} deleted successfully")?;
            Ok(())
        }
        PolicyCommand::List { http, fmt } => {
            let list = get(
                &client(&http)?,
                "/v1/acl/policies",
                "Failed to retrieve the policy list",
            )
            .await?;
            print(out, Kind::List(&Kind::Policy), &list, &fmt.format)
        }
    }
}

async fn role(cmd: RoleCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        RoleCommand::Create {
            name,
            description,
            links: l,
            http,
            fmt,
        } => {
            let mut body = json!({"Name": name, "Description": description.unwrap_or_default()});
            for (k, v) in links(&l)? {
                body[k] = v;
            }
            let r = put(
                &client(&http)?,
                "/v1/acl/role",
                body,
                "Failed to create new role",
            )
            .await?;
            print(out, Kind::Role, &r, &fmt.format)
        }
        RoleCommand::Read { which, http, fmt } => {
            let r = get(
                &client(&http)?,
                &which_path("role", &which),
                "Error reading role",
            )
            .await?;
            print(out, Kind::Role, &r, &fmt.format)
        }
        RoleCommand::Update {
            id,
            name,
            description,
            links: l,
            http,
            fmt,
        } => {
            let c = client(&http)?;
            let path = format!("/v1/acl/role/{id}");
            let mut body = get(&c, &path, "Error retrieving current role").await?;
            if let Some(n) = name {
                body["Name"] = json!(n);
            }
            if let Some(d) = description {
                body["Description"] = json!(d);
            }
            for (k, v) in links(&l)? {
                body[k] = v;
            }
            let r = put(&c, &path, body, "Failed to update role").await?;
            print(out, Kind::Role, &r, &fmt.format)
        }
        RoleCommand::Delete { which, http } => {
            let c = client(&http)?;
            let id =
                get(&c, &which_path("role", &which), "Error reading role").await?["ID"].clone();
            let id = id.as_str().unwrap_or_default().to_string();
            c.delete(&format!("/v1/acl/role/{id}"), &[])
                .await
                .map_err(CliError::http(format!("Error deleting role {id:?}")))?;
            writeln!(out, "Role {id:?} deleted successfully")?;
            Ok(())
        }
        RoleCommand::List { http, fmt } => {
            let list = get(
                &client(&http)?,
                "/v1/acl/roles",
                "Failed to retrieve the role list",
            )
            .await?;
            print(out, Kind::List(&Kind::Role), &list, &fmt.format)
        }
    }
}
