//! Setup variants: the sample setup (`examples/salvage.toml`) with a scenario's edits applied,
//! and the service configuration built around it.
//!
//! An edit addresses a place in the setup by a path such as
//! `gateways[id=flexfactor].expiry_days` or `recycle_profiles[id=recycle-standard].attempts[3]`
//! (`[key=value]` picks the element of an array of tables whose `key` is `value`; `[N]` an
//! index):
//!
//! ```toml
//! setup = [
//!   { set = "gateways[id=flexfactor].cascade_all", value = true },
//!   { remove = "gateways[id=flexfactor].include_chargebacks" },
//!   { append = "gateway_profiles[id=atri-us].members", value = "flexfactor" },
//! ]
//! ```

use serde::Deserialize;

/// The sample setup every scenario starts from.
pub const SAMPLE_SETUP: &str = include_str!("../../examples/salvage.toml");

/// The service tables of a configuration (not part of the setup).
pub const SERVICE_TABLES: [&str; 4] = ["service", "flexfactor", "charge_hook", "notifications"];

/// One edit of the sample setup.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupEdit {
    /// Set the value at this path (created when missing).
    #[serde(default)]
    pub set: Option<String>,
    /// Remove the value at this path.
    #[serde(default)]
    pub remove: Option<String>,
    /// Append `value` to the array at this path.
    #[serde(default)]
    pub append: Option<String>,
    /// The value of `set` and `append`.
    #[serde(default)]
    pub value: Option<toml::Value>,
}

impl std::fmt::Display for SetupEdit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self
            .value
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default();
        match (&self.set, &self.remove, &self.append) {
            (Some(p), _, _) => write!(f, "{p} = {v}"),
            (_, Some(p), _) => write!(f, "without {p}"),
            (_, _, Some(p)) => write!(f, "{p} += {v}"),
            _ => write!(f, "(no edit)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
    Where(String, String),
}

fn parse_path(text: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    for part in text.trim().split('.') {
        if part.is_empty() {
            return Err(format!("path {text:?}: empty segment"));
        }
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            segs.push(Seg::Key(name.to_string()));
        }
        while !rest.is_empty() {
            let end = rest
                .find(']')
                .ok_or_else(|| format!("path {text:?}: `[` without `]`"))?;
            if !rest.starts_with('[') {
                return Err(format!("path {text:?}: unexpected {rest:?}"));
            }
            let inner = &rest[1..end];
            segs.push(match inner.split_once('=') {
                Some((k, v)) => Seg::Where(k.trim().to_string(), v.trim().to_string()),
                None => Seg::Index(inner.trim().parse().map_err(|_| {
                    format!("path {text:?}: [{inner}] is not an index or key=value")
                })?),
            });
            rest = &rest[end + 1..];
        }
    }
    if segs.is_empty() {
        return Err("empty path".into());
    }
    Ok(segs)
}

fn describe(seg: &Seg) -> String {
    match seg {
        Seg::Key(k) => k.clone(),
        Seg::Index(i) => format!("[{i}]"),
        Seg::Where(k, v) => format!("[{k}={v}]"),
    }
}

fn step<'a>(
    v: &'a mut toml::Value,
    seg: &Seg,
    create: bool,
) -> Result<&'a mut toml::Value, String> {
    match (seg, v) {
        (Seg::Key(k), toml::Value::Table(t)) => {
            if create && !t.contains_key(k) {
                t.insert(k.clone(), toml::Value::Table(toml::Table::new()));
            }
            t.get_mut(k).ok_or_else(|| format!("no `{k}`"))
        }
        (Seg::Index(i), toml::Value::Array(a)) => {
            let n = a.len();
            a.get_mut(*i)
                .ok_or_else(|| format!("index [{i}] out of range (length {n})"))
        }
        (Seg::Where(k, want), toml::Value::Array(a)) => a
            .iter_mut()
            .find(|e| {
                e.get(k.as_str()).is_some_and(|x| match x {
                    toml::Value::String(s) => s == want,
                    other => other.to_string() == *want,
                })
            })
            .ok_or_else(|| format!("no element with {k} = {want:?}")),
        (seg, _) => Err(format!("{} does not apply here", describe(seg))),
    }
}

fn parent<'a>(
    root: &'a mut toml::Value,
    segs: &[Seg],
    create: bool,
) -> Result<&'a mut toml::Value, String> {
    let mut cur = root;
    for seg in segs {
        cur = step(cur, seg, create)?;
    }
    Ok(cur)
}

impl SetupEdit {
    /// Checks the edit's shape (one operation, a value where needed, a valid path).
    pub fn validate(&self) -> Result<(), String> {
        let ops = [&self.set, &self.remove, &self.append]
            .iter()
            .filter(|o| o.is_some())
            .count();
        if ops != 1 {
            return Err("an edit has exactly one of `set`, `remove`, `append`".into());
        }
        if (self.set.is_some() || self.append.is_some()) && self.value.is_none() {
            return Err("`set` and `append` need a `value`".into());
        }
        if self.remove.is_some() && self.value.is_some() {
            return Err("`remove` takes no `value`".into());
        }
        let path = self
            .set
            .as_ref()
            .or(self.remove.as_ref())
            .or(self.append.as_ref())
            .map(String::as_str)
            .unwrap_or_default();
        parse_path(path).map(|_| ())
    }

    /// Applies the edit to a setup (a TOML table as a value).
    pub fn apply(&self, root: &mut toml::Value) -> Result<(), String> {
        self.validate()?;
        if let Some(path) = &self.set {
            let segs = parse_path(path)?;
            let (last, init) = segs.split_last().ok_or("empty path")?;
            let p = parent(root, init, true).map_err(|e| format!("{path}: {e}"))?;
            let value = self.value.clone().ok_or("`set` needs a `value`")?;
            match (last, p) {
                (Seg::Key(k), toml::Value::Table(t)) => {
                    t.insert(k.clone(), value);
                }
                (seg, p) => {
                    *step(p, seg, false).map_err(|e| format!("{path}: {e}"))? = value;
                }
            }
        } else if let Some(path) = &self.remove {
            let segs = parse_path(path)?;
            let (last, init) = segs.split_last().ok_or("empty path")?;
            let p = parent(root, init, false).map_err(|e| format!("{path}: {e}"))?;
            match (last, p) {
                (Seg::Key(k), toml::Value::Table(t)) => {
                    t.remove(k)
                        .ok_or_else(|| format!("{path}: nothing to remove"))?;
                }
                (Seg::Index(i), toml::Value::Array(a)) if *i < a.len() => {
                    a.remove(*i);
                }
                (Seg::Where(k, want), toml::Value::Array(a)) => {
                    let before = a.len();
                    a.retain(|e| {
                        !e.get(k.as_str()).is_some_and(|x| match x {
                            toml::Value::String(s) => s == want,
                            other => other.to_string() == *want,
                        })
                    });
                    if a.len() == before {
                        return Err(format!("{path}: nothing to remove"));
                    }
                }
                _ => return Err(format!("{path}: nothing to remove")),
            }
        } else if let Some(path) = &self.append {
            let segs = parse_path(path)?;
            let (last, init) = segs.split_last().ok_or("empty path")?;
            let p = parent(root, init, true).map_err(|e| format!("{path}: {e}"))?;
            let value = self.value.clone().ok_or("`append` needs a `value`")?;
            if let (Seg::Key(k), toml::Value::Table(t)) = (last, &mut *p) {
                t.entry(k.clone())
                    .or_insert_with(|| toml::Value::Array(Vec::new()));
            }
            match step(p, last, false).map_err(|e| format!("{path}: {e}"))? {
                toml::Value::Array(a) => a.push(value),
                _ => return Err(format!("{path}: not an array")),
            }
        }
        Ok(())
    }
}

/// The sample setup with `edits` applied, as a TOML table.
pub fn edited_setup(edits: &[SetupEdit]) -> Result<toml::Table, String> {
    edited(SAMPLE_SETUP, edits)
}

/// `base` (setup TOML) with `edits` applied.
pub fn edited(base: &str, edits: &[SetupEdit]) -> Result<toml::Table, String> {
    let table: toml::Table =
        toml::from_str(base).map_err(|e| format!("the base setup is not TOML: {e}"))?;
    let mut root = toml::Value::Table(table);
    for (i, e) in edits.iter().enumerate() {
        e.apply(&mut root)
            .map_err(|why| format!("setup edit {} ({e}): {why}", i + 1))?;
    }
    match root {
        toml::Value::Table(t) => Ok(t),
        _ => Err("the setup is not a table".into()),
    }
}

/// Reads a setup or service configuration file's text as a TOML table (service tables are
/// ignored where setups are compared).
pub fn parse(text: &str) -> Result<toml::Table, String> {
    toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))
}

/// The sample setup as a table.
pub fn sample() -> Result<toml::Table, String> {
    parse(SAMPLE_SETUP)
}

/// The setup part of a configuration, without service tables and credentials: what two
/// deployments must share for a scenario to mean the same thing on both.
pub fn comparable(setup: &toml::Table) -> toml::Table {
    let mut t = setup.clone();
    for s in SERVICE_TABLES {
        t.remove(s);
    }
    if let Some(toml::Value::Array(gateways)) = t.get_mut("gateways") {
        for g in gateways {
            if let toml::Value::Table(g) = g {
                g.remove("credentials");
            }
        }
    }
    t
}

/// The HMAC signing key (base64) of the first FlexFactor gateway of a setup.
pub fn hmac_key(setup: &toml::Table) -> Option<String> {
    setup
        .get("gateways")?
        .as_array()?
        .iter()
        .find(|g| g.get("kind").and_then(|k| k.as_str()) == Some("flexfactor"))?
        .get("credentials")?
        .get("hmac_signing_key")?
        .as_str()
        .map(str::to_string)
}

/// Every secret value of a setup's FlexFactor credentials (S1: none may ever be shown).
pub fn secrets(setup: &toml::Table) -> Vec<String> {
    let Some(gateways) = setup.get("gateways").and_then(|g| g.as_array()) else {
        return Vec::new();
    };
    gateways
        .iter()
        .filter_map(|g| g.get("credentials").and_then(|c| c.as_table()))
        .flat_map(|c| {
            ["app_secret", "environment_key", "hmac_signing_key"]
                .iter()
                .filter_map(|k| c.get(*k).and_then(|v| v.as_str()).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str) -> SetupEdit {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn set_remove_append() {
        let t = edited_setup(&[
            edit(
                r#"set = "gateways[id=flexfactor].expiry_days"
                    value = 7"#,
            ),
            edit(r#"remove = "gateways[id=flexfactor].include_chargebacks""#),
            edit(
                r#"append = "gateway_profiles[id=atri-us].members"
                    value = "flexfactor""#,
            ),
            edit(
                r#"set = "recycle_profiles[id=recycle-standard].attempts[0].flexfactor"
                    value = true"#,
            ),
        ])
        .unwrap();
        let ff = t["gateways"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["id"].as_str() == Some("flexfactor"))
            .unwrap();
        assert_eq!(ff["expiry_days"].as_integer(), Some(7));
        assert!(ff.get("include_chargebacks").is_none());
        let members = t["gateway_profiles"][0]["members"].as_array().unwrap();
        assert_eq!(members.last().unwrap().as_str(), Some("flexfactor"));
        assert_eq!(
            t["recycle_profiles"][0]["attempts"][0]["flexfactor"].as_bool(),
            Some(true)
        );
        // The result is still a setup the domain reads.
        let text = toml::to_string(&t).unwrap();
        assert!(text.contains("expiry_days = 7"));
    }

    #[test]
    fn bad_edits_are_named() {
        let e = edited_setup(&[edit(r#"remove = "gateways[id=nope].x""#)]).unwrap_err();
        assert!(e.contains("setup edit 1") && e.contains("nope"), "{e}");
        assert!(edit(r#"set = "a""#).validate().is_err());
        assert!(edit(
            r#"remove = "a"
                        set = "b"
                        value = 1"#
        )
        .validate()
        .is_err());
    }

    #[test]
    fn comparable_ignores_credentials_and_service_tables() {
        let a = edited_setup(&[]).unwrap();
        let mut b = edited_setup(&[edit(
            r#"set = "gateways[id=flexfactor].credentials.app_secret"
               value = "other""#,
        )])
        .unwrap();
        b.insert("service".into(), toml::Value::Table(toml::Table::new()));
        assert_eq!(comparable(&a), comparable(&b));
        assert!(hmac_key(&a).is_some());
        assert_eq!(secrets(&a).len(), 3);
    }
}
