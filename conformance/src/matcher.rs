//! JSON paths and value matchers: what a scenario's `expect` tables say about an answer.
//!
//! A path is dotted: `status`, `salvage.state`, `history[0].type`, `history[*].type` (every
//! element), `orders[external_order_id=o-1].status` (the first element whose field has that
//! value). An expected value is either a literal (string, number, boolean, array: equal to the
//! actual value) or an inline table of matchers, all of which must hold:
//!
//! | matcher | holds when the actual value |
//! |---|---|
//! | `eq = V` / `ne = V` | equals / differs from `V` (any TOML value, tables included) |
//! | `absent = true` / `present = true` | is missing or `null` / is there and not `null` |
//! | `contains = V` | string: has `V` as a substring; array (or `[*]` path): has an element equal to `V` |
//! | `times = N` | with `contains`: the array has exactly `N` elements equal to `V` |
//! | `not_contains = V` | the opposite of `contains` |
//! | `one_of = [..]` | equals one of the values |
//! | `gt`, `gte`, `lt`, `lte` = number | compares as a number |
//! | `len = N` | array, string or object of that length |
//! | `starts_with = "..."` | string starting so |
//! | `days_from_now = N` | an RFC 3339 time `N` days after the step's time (± `tolerance_minutes`, default 5) |

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::vars::Vars;

/// One segment of a path.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
    All,
    Where { key: String, value: String },
}

/// A parsed JSON path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    text: String,
    segments: Vec<Segment>,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Path {
    /// Parses `a.b[0].c[*].d[k=v]`; the empty path (or `.`) is the whole value.
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut segments = Vec::new();
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed == "." {
            return Ok(Path {
                text: trimmed.to_string(),
                segments,
            });
        }
        for part in trimmed.split('.') {
            if part.is_empty() {
                return Err(format!("path {text:?}: empty segment"));
            }
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                segments.push(Segment::Key(name.to_string()));
            }
            while !rest.is_empty() {
                let Some(end) = rest.find(']') else {
                    return Err(format!("path {text:?}: `[` without `]`"));
                };
                if !rest.starts_with('[') {
                    return Err(format!("path {text:?}: unexpected {rest:?}"));
                }
                let inner = &rest[1..end];
                let seg = if inner == "*" {
                    Segment::All
                } else if let Some((k, v)) = inner.split_once('=') {
                    if k.trim().is_empty() {
                        return Err(format!("path {text:?}: `[key=value]` needs a key"));
                    }
                    Segment::Where {
                        key: k.trim().to_string(),
                        value: v.trim().to_string(),
                    }
                } else {
                    Segment::Index(inner.trim().parse().map_err(|_| {
                        format!("path {text:?}: [{inner}] is not an index, `*` or `key=value`")
                    })?)
                };
                segments.push(seg);
                rest = &rest[end + 1..];
            }
        }
        Ok(Path {
            text: trimmed.to_string(),
            segments,
        })
    }

    /// True when the path has a `[*]` (it resolves to a list).
    pub fn is_multi(&self) -> bool {
        self.segments.iter().any(|s| matches!(s, Segment::All))
    }

    /// The value at this path: `None` when missing; with `[*]`, an array of every match.
    pub fn resolve(&self, value: &Value) -> Option<Value> {
        let mut current = vec![value.clone()];
        let multi = self.is_multi();
        for seg in &self.segments {
            let mut next = Vec::new();
            for v in &current {
                match seg {
                    Segment::Key(k) => {
                        if let Some(x) = get_key(v, k) {
                            next.push(x.clone());
                        }
                    }
                    Segment::Index(i) => {
                        if let Some(x) = v.as_array().and_then(|a| a.get(*i)) {
                            next.push(x.clone());
                        }
                    }
                    Segment::All => {
                        if let Some(a) = v.as_array() {
                            next.extend(a.iter().cloned());
                        }
                    }
                    Segment::Where { key, value } => {
                        if let Some(x) = v.as_array().and_then(|a| {
                            a.iter()
                                .find(|e| get_key(e, key).is_some_and(|f| scalar_text(f) == *value))
                        }) {
                            next.push(x.clone());
                        }
                    }
                }
            }
            current = next;
        }
        if multi {
            Some(Value::Array(current))
        } else {
            current.into_iter().next()
        }
    }
}

/// A key of an object; an exact match first, then case-insensitively (FlexFactor's bodies).
fn get_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One check on a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    Eq(Value),
    Ne(Value),
    Absent,
    Present,
    Contains { value: Value, times: Option<u64> },
    NotContains(Value),
    OneOf(Vec<Value>),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Len(u64),
    StartsWith(String),
    DaysFromNow { days: i64, tolerance_minutes: i64 },
}

/// The checks on the value at one path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldExpectation {
    pub path: Path,
    pub checks: Vec<Check>,
}

/// Converts a TOML value to JSON (datetimes become RFC 3339 strings).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

fn number(v: &toml::Value, key: &str) -> Result<f64, String> {
    match v {
        toml::Value::Integer(i) => Ok(*i as f64),
        toml::Value::Float(f) => Ok(*f),
        _ => Err(format!("`{key}` needs a number")),
    }
}

fn count(v: &toml::Value, key: &str) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        _ => Err(format!("`{key}` needs a non-negative integer")),
    }
}

fn flag(v: &toml::Value, key: &str) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("`{key}` needs true or false"))
}

/// The names a matcher table may use.
pub const MATCHER_KEYS: &[&str] = &[
    "eq",
    "ne",
    "absent",
    "present",
    "contains",
    "times",
    "not_contains",
    "one_of",
    "gt",
    "gte",
    "lt",
    "lte",
    "len",
    "starts_with",
    "days_from_now",
    "tolerance_minutes",
];

/// Parses the expected value of one path (a literal, or a table of matchers).
pub fn parse_checks(v: &toml::Value) -> Result<Vec<Check>, String> {
    let toml::Value::Table(t) = v else {
        return Ok(vec![Check::Eq(toml_to_json(v))]);
    };
    if t.is_empty() {
        return Err(
            "an empty table is no expectation (use `eq = {}` for an empty object)".to_string(),
        );
    }
    let mut checks = Vec::new();
    for (key, value) in t {
        let check = match key.as_str() {
            "eq" => Check::Eq(toml_to_json(value)),
            "ne" => Check::Ne(toml_to_json(value)),
            "absent" => {
                if !flag(value, key)? {
                    return Err("`absent = false` means nothing; use `present = true`".into());
                }
                Check::Absent
            }
            "present" => {
                if !flag(value, key)? {
                    return Err("`present = false` means nothing; use `absent = true`".into());
                }
                Check::Present
            }
            "contains" => Check::Contains {
                value: toml_to_json(value),
                times: t.get("times").map(|n| count(n, "times")).transpose()?,
            },
            "times" => {
                if !t.contains_key("contains") {
                    return Err("`times` needs `contains`".into());
                }
                continue;
            }
            "not_contains" => Check::NotContains(toml_to_json(value)),
            "one_of" => match value {
                toml::Value::Array(a) => Check::OneOf(a.iter().map(toml_to_json).collect()),
                _ => return Err("`one_of` needs an array".into()),
            },
            "gt" => Check::Gt(number(value, key)?),
            "gte" => Check::Gte(number(value, key)?),
            "lt" => Check::Lt(number(value, key)?),
            "lte" => Check::Lte(number(value, key)?),
            "len" => Check::Len(count(value, key)?),
            "starts_with" => Check::StartsWith(
                value
                    .as_str()
                    .ok_or("`starts_with` needs a string")?
                    .to_string(),
            ),
            "days_from_now" => Check::DaysFromNow {
                days: value.as_integer().ok_or("`days_from_now` needs an integer")?,
                tolerance_minutes: t
                    .get("tolerance_minutes")
                    .map(|n| count(n, "tolerance_minutes"))
                    .transpose()?
                    .unwrap_or(5) as i64,
            },
            "tolerance_minutes" => {
                if !t.contains_key("days_from_now") {
                    return Err("`tolerance_minutes` needs `days_from_now`".into());
                }
                continue;
            }
            other => {
                return Err(format!(
                    "unknown matcher `{other}` (known: {}; to compare with an object use `eq = {{...}}`)",
                    MATCHER_KEYS.join(", ")
                ))
            }
        };
        checks.push(check);
    }
    Ok(checks)
}

/// Parses a table of `path = expected` entries.
pub fn parse_fields(t: &toml::Table) -> Result<Vec<FieldExpectation>, String> {
    let mut out = Vec::new();
    for (path, expected) in t {
        let parsed = Path::parse(path)?;
        let checks = parse_checks(expected).map_err(|e| format!("`{path}`: {e}"))?;
        out.push(FieldExpectation {
            path: parsed,
            checks,
        });
    }
    Ok(out)
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Short text of a value for messages.
pub fn show(v: Option<&Value>) -> String {
    match v {
        None => "(missing)".to_string(),
        Some(v) => {
            let s = v.to_string();
            if s.chars().count() > 300 {
                let cut: String = s.chars().take(300).collect();
                format!("{cut}…")
            } else {
                s
            }
        }
    }
}

fn as_number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Check {
    /// `None` when the check holds on `actual`, otherwise why not.
    pub fn failure(
        &self,
        actual: Option<&Value>,
        vars: &Vars,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let expand = |v: &Value| vars.expand_json(v);
        let present = actual.is_some_and(|v| !v.is_null());
        let ok = match self {
            Check::Eq(e) => actual.is_some_and(|a| json_eq(a, &expand(e))),
            Check::Ne(e) => !actual.is_some_and(|a| json_eq(a, &expand(e))),
            Check::Absent => !present,
            Check::Present => present,
            Check::Contains { value, times } => {
                let e = expand(value);
                match (actual, &e) {
                    (Some(Value::String(s)), Value::String(sub)) if times.is_none() => {
                        s.contains(sub.as_str())
                    }
                    (Some(Value::Array(a)), _) => {
                        let n = a.iter().filter(|x| json_eq(x, &e)).count() as u64;
                        match times {
                            Some(t) => n == *t,
                            None => n > 0,
                        }
                    }
                    _ => false,
                }
            }
            Check::NotContains(value) => {
                let e = expand(value);
                match (actual, &e) {
                    (Some(Value::String(s)), Value::String(sub)) => !s.contains(sub.as_str()),
                    (Some(Value::Array(a)), _) => !a.iter().any(|x| json_eq(x, &e)),
                    _ => true,
                }
            }
            Check::OneOf(list) => {
                actual.is_some_and(|a| list.iter().any(|e| json_eq(a, &expand(e))))
            }
            Check::Gt(n) => as_number(actual).is_some_and(|a| a > *n),
            Check::Gte(n) => as_number(actual).is_some_and(|a| a >= *n),
            Check::Lt(n) => as_number(actual).is_some_and(|a| a < *n),
            Check::Lte(n) => as_number(actual).is_some_and(|a| a <= *n),
            Check::Len(n) => match actual {
                Some(Value::Array(a)) => a.len() as u64 == *n,
                Some(Value::String(s)) => s.chars().count() as u64 == *n,
                Some(Value::Object(o)) => o.len() as u64 == *n,
                _ => false,
            },
            Check::StartsWith(p) => actual
                .and_then(Value::as_str)
                .is_some_and(|s| s.starts_with(vars.expand(p).as_str())),
            Check::DaysFromNow {
                days,
                tolerance_minutes,
            } => actual
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .is_some_and(|t| {
                    let want = now + chrono::Duration::days(*days);
                    (t.with_timezone(&Utc) - want).num_minutes().abs() <= *tolerance_minutes
                }),
        };
        if ok {
            return None;
        }
        let want = match self {
            Check::Eq(e) => format!("= {}", expand(e)),
            Check::Ne(e) => format!("≠ {}", expand(e)),
            Check::Absent => "absent".to_string(),
            Check::Present => "present".to_string(),
            Check::Contains { value, times } => match times {
                Some(t) => format!("contains {} exactly {t} time(s)", expand(value)),
                None => format!("contains {}", expand(value)),
            },
            Check::NotContains(v) => format!("does not contain {}", expand(v)),
            Check::OneOf(l) => format!(
                "one of {}",
                Value::Array(l.iter().map(expand).collect::<Vec<_>>())
            ),
            Check::Gt(n) => format!("> {n}"),
            Check::Gte(n) => format!("≥ {n}"),
            Check::Lt(n) => format!("< {n}"),
            Check::Lte(n) => format!("≤ {n}"),
            Check::Len(n) => format!("of length {n}"),
            Check::StartsWith(p) => format!("starting with {:?}", vars.expand(p)),
            Check::DaysFromNow {
                days,
                tolerance_minutes,
            } => format!(
                "{days} day(s) after {} (± {tolerance_minutes} min)",
                now.to_rfc3339()
            ),
        };
        Some(format!("expected {want}, got {}", show(actual)))
    }
}

impl FieldExpectation {
    /// Every failed check on `value`, as `path: why`.
    pub fn failures(&self, value: &Value, vars: &Vars, now: DateTime<Utc>) -> Vec<String> {
        let actual = self.path.resolve(value);
        self.checks
            .iter()
            .filter_map(|c| c.failure(actual.as_ref(), vars, now))
            .map(|why| format!("`{}`: {why}", self.path))
            .collect()
    }
}

/// Every failure of `fields` on `value`.
pub fn check_all(
    fields: &[FieldExpectation],
    value: &Value,
    vars: &Vars,
    now: DateTime<Utc>,
) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| f.failures(value, vars, now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(text: &str) -> Vec<FieldExpectation> {
        let t: toml::Table = toml::from_str(text).unwrap();
        parse_fields(&t).unwrap()
    }

    fn fails(text: &str, v: &Value) -> Vec<String> {
        check_all(&fields(text), v, &Vars::default(), Utc::now())
    }

    #[test]
    fn paths_resolve_keys_indexes_wildcards_and_filters() {
        let v = json!({"a": {"b": [{"t": "x", "n": 1}, {"t": "y", "n": 2}, {"t": "y", "n": 3}]}});
        let p = |s: &str| Path::parse(s).unwrap().resolve(&v);
        assert_eq!(p("a.b[1].n"), Some(json!(2)));
        assert_eq!(p("a.b[*].t"), Some(json!(["x", "y", "y"])));
        assert_eq!(p("a.b[t=y].n"), Some(json!(2)));
        assert_eq!(p("a.b[t=z].n"), None);
        assert_eq!(p("a.c"), None);
        assert_eq!(p(""), Some(v.clone()));
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse("a[x").is_err());
        assert!(Path::parse("a[x]").is_err());
    }

    #[test]
    fn keys_fall_back_to_case_insensitive() {
        let v = json!({"IsMIT": true});
        assert_eq!(Path::parse("isMIT").unwrap().resolve(&v), Some(json!(true)));
    }

    #[test]
    fn literals_and_matchers() {
        let v = json!({"s": "salvage_pending", "n": 1999, "h": ["A", "B", "B"], "z": null,
                       "t": (Utc::now() + chrono::Duration::days(21)).to_rfc3339()});
        assert!(fails(r#"s = "salvage_pending""#, &v).is_empty());
        assert!(fails("n = 1999.0", &v).is_empty());
        assert!(fails(
            r#"z = { absent = true }
                        q = { absent = true }
                        s = { present = true, starts_with = "salvage" }"#,
            &v
        )
        .is_empty());
        assert!(fails(r#"h = { contains = "B", times = 2, len = 3 }"#, &v).is_empty());
        assert!(fails(
            r#"s = { contains = "pend", one_of = ["x", "salvage_pending"] }"#,
            &v
        )
        .is_empty());
        assert!(fails("n = { gt = 1000, lte = 1999 }", &v).is_empty());
        assert!(fails("t = { days_from_now = 21 }", &v).is_empty());
        assert_eq!(fails(r#"s = "complete""#, &v).len(), 1);
        assert_eq!(fails(r#"h = { contains = "B", times = 1 }"#, &v).len(), 1);
        assert_eq!(fails("t = { days_from_now = 20 }", &v).len(), 1);
        let why = fails(r#"s = "complete""#, &v).remove(0);
        assert!(
            why.contains("`s`") && why.contains("complete") && why.contains("salvage_pending"),
            "{why}"
        );
    }

    #[test]
    fn bad_matchers_are_named() {
        let t: toml::Table = toml::from_str(r#"s = { equals = 1 }"#).unwrap();
        let e = parse_fields(&t).unwrap_err();
        assert!(e.contains("`s`") && e.contains("equals"), "{e}");
        let t: toml::Table = toml::from_str(r#"s = { times = 1 }"#).unwrap();
        assert!(parse_fields(&t).is_err());
    }

    #[test]
    fn variables_expand_in_expected_values() {
        let mut vars = Vars::default();
        vars.set("id", "sc-1");
        let f = fields(r#"order_id = "${id}-o1""#);
        assert!(check_all(&f, &json!({"order_id": "sc-1-o1"}), &vars, Utc::now()).is_empty());
    }
}
