//! Scenario variables: `${id}` (the scenario's unique prefix for order and subscription ids) and
//! the values steps capture from answers (`capture = { ff = "salvage.flexfactor_order_id" }`,
//! then `${ff}`).

use std::collections::BTreeMap;

use serde_json::Value;

/// The variables of one scenario run.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    /// Sets `name`.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.values.insert(name.to_string(), value.into());
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// `text` with every `${name}` replaced (unknown names are left as they are; the loader
    /// refuses them beforehand).
    pub fn expand(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('}') {
                Some(end) => {
                    let name = &after[..end];
                    match self.values.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("${");
                            out.push_str(name);
                            out.push('}');
                        }
                    }
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str(&rest[start..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// A JSON value with every string expanded (keys too).
    pub fn expand_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.expand(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.expand_json(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.expand(k), self.expand_json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The `${name}` references in `text`.
pub fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                out.push(after[..end].to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

/// The `${name}` references anywhere in a TOML value.
pub fn references_in(v: &toml::Value) -> Vec<String> {
    match v {
        toml::Value::String(s) => references(s),
        toml::Value::Array(a) => a.iter().flat_map(references_in).collect(),
        toml::Value::Table(t) => t
            .iter()
            .flat_map(|(k, v)| {
                let mut r = references(k);
                r.extend(references_in(v));
                r
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_known_names_and_keeps_unknown_ones() {
        let mut v = Vars::default();
        v.set("id", "s1");
        assert_eq!(v.expand("/v1/orders/${id}-o1"), "/v1/orders/s1-o1");
        assert_eq!(v.expand("${x} ${id}"), "${x} s1");
        assert_eq!(v.expand("a ${"), "a ${");
        assert_eq!(references("${a}-${b}"), vec!["a", "b"]);
    }
}
