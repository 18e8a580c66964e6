//! Output of `meridian acl ...`: `-format json` prints the API's JSON indented as Consul's
//! CLI does (four spaces); the default prints Consul's aligned `Key: value` blocks.

use std::io::Write;

use serde_json::Value;

use super::CliError;

/// What is printed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind<'a> {
    /// A token.
    Token,
    /// A policy.
    Policy,
    /// A role.
    Role,
    /// A list of one of the above.
    List(&'a Kind<'a>),
}

/// Prints `v` as `format` (`json` or `pretty`).
pub(super) fn print(
    out: &mut dyn Write,
    kind: Kind<'_>,
    v: &Value,
    format: &str,
) -> Result<(), CliError> {
    if format == "json" {
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(v, &mut ser)
            .map_err(|e| CliError::msg(format!("Failed to encode output: {e}")))?;
        out.write_all(&buf)?;
        writeln!(out)?;
        return Ok(());
    }
    match kind {
        Kind::List(inner) => {
            for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                print(out, *inner, item, format)?;
            }
            Ok(())
        }
        Kind::Token => token(out, v),
        Kind::Policy => policy(out, v),
        Kind::Role => role(out, v),
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn links(out: &mut dyn Write, title: &str, v: &Value) -> Result<(), CliError> {
    if let Some(items) = v.as_array().filter(|a| !a.is_empty()) {
        writeln!(out, "{title}:")?;
        for l in items {
            writeln!(out, "   {} - {}", s(&l["ID"]), s(&l["Name"]))?;
        }
    }
    Ok(())
}

fn identities(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    if let Some(items) = v["ServiceIdentities"].as_array().filter(|a| !a.is_empty()) {
        writeln!(out, "Service Identities:")?;
        for i in items {
            let dcs = i["Datacenters"]
                .as_array()
                .map(|d| d.iter().map(s).collect::<Vec<_>>().join(", "));
            writeln!(
                out,
                "   {} (Datacenters: {})",
                s(&i["ServiceName"]),
                dcs.filter(|d| !d.is_empty())
                    .unwrap_or_else(|| "all".into())
            )?;
        }
    }
    if let Some(items) = v["NodeIdentities"].as_array().filter(|a| !a.is_empty()) {
        writeln!(out, "Node Identities:")?;
        for i in items {
            writeln!(
                out,
                "   {} (Datacenter: {})",
                s(&i["NodeName"]),
                s(&i["Datacenter"])
            )?;
        }
    }
    if let Some(items) = v["TemplatedPolicies"].as_array().filter(|a| !a.is_empty()) {
        writeln!(out, "Templated Policies:")?;
        for i in items {
            writeln!(out, "   {}", s(&i["TemplateName"]))?;
            if let Some(name) = i["TemplateVariables"]["name"].as_str() {
                writeln!(out, "      Name: {name}")?;
            }
            let dcs = i["Datacenters"]
                .as_array()
                .map(|d| d.iter().map(s).collect::<Vec<_>>().join(", "))
                .filter(|d| !d.is_empty());
            writeln!(
                out,
                "      Datacenters: {}",
                dcs.unwrap_or_else(|| "all".into())
            )?;
        }
    }
    Ok(())
}

fn token(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    writeln!(out, "AccessorID:       {}", s(&v["AccessorID"]))?;
    writeln!(out, "SecretID:         {}", s(&v["SecretID"]))?;
    writeln!(out, "Description:      {}", s(&v["Description"]))?;
    writeln!(out, "Local:            {}", s(&v["Local"]))?;
    writeln!(out, "Create Time:      {}", s(&v["CreateTime"]))?;
    if v.get("ExpirationTime").is_some() {
        writeln!(out, "Expiration Time:  {}", s(&v["ExpirationTime"]))?;
    }
    links(out, "Policies", &v["Policies"])?;
    links(out, "Roles", &v["Roles"])?;
    identities(out, v)
}

fn policy(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    writeln!(out, "ID:           {}", s(&v["ID"]))?;
    writeln!(out, "Name:         {}", s(&v["Name"]))?;
    writeln!(out, "Description:  {}", s(&v["Description"]))?;
    let dcs = v["Datacenters"]
        .as_array()
        .map(|d| d.iter().map(s).collect::<Vec<_>>().join(", "));
    writeln!(out, "Datacenters:  {}", dcs.unwrap_or_default())?;
    if v.get("Rules").is_some() {
        writeln!(out, "Rules:\n{}", s(&v["Rules"]))?;
    }
    Ok(())
}

fn role(out: &mut dyn Write, v: &Value) -> Result<(), CliError> {
    writeln!(out, "ID:           {}", s(&v["ID"]))?;
    writeln!(out, "Name:         {}", s(&v["Name"]))?;
    writeln!(out, "Description:  {}", s(&v["Description"]))?;
    links(out, "Policies", &v["Policies"])?;
    identities(out, v)
}
