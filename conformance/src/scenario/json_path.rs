//! Dotted paths into a JSON body (`attempt.gateway_id`, `items[0].price_minor`): the `set` and
//! `unset` of a request step.

use serde_json::Value;

/// Sets the value at a dotted path of a JSON body (`attempt.gateway_id`, `items[0].price_minor`),
/// creating objects on the way.
pub fn set_json(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs = json_segments(path)?;
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        cur = match seg {
            JsonSeg::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(serde_json::Map::new());
                }
                let Value::Object(o) = cur else {
                    return Err(format!("{path}: `{k}` is not inside an object"));
                };
                if last {
                    o.insert(k.clone(), value);
                    return Ok(());
                }
                o.entry(k.clone()).or_insert(Value::Null)
            }
            JsonSeg::Index(n) => {
                let Value::Array(a) = cur else {
                    return Err(format!("{path}: [{n}] is not inside an array"));
                };
                let len = a.len();
                let slot = a
                    .get_mut(*n)
                    .ok_or_else(|| format!("{path}: index [{n}] out of range (length {len})"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
    }
    Ok(())
}

/// Removes the value at a dotted path (missing is an error: the template has no such field).
pub fn unset_json(root: &mut Value, path: &str) -> Result<(), String> {
    let segs = json_segments(path)?;
    let (last, init) = segs.split_last().ok_or("empty path")?;
    let mut cur = root;
    for seg in init {
        cur = match (seg, cur) {
            (JsonSeg::Key(k), Value::Object(o)) => {
                o.get_mut(k).ok_or_else(|| format!("{path}: no `{k}`"))?
            }
            (JsonSeg::Index(n), Value::Array(a)) => {
                a.get_mut(*n).ok_or_else(|| format!("{path}: no [{n}]"))?
            }
            _ => return Err(format!("{path}: no such field")),
        };
    }
    match (last, cur) {
        (JsonSeg::Key(k), Value::Object(o)) => o
            .remove(k)
            .map(|_| ())
            .ok_or_else(|| format!("{path}: no such field")),
        (JsonSeg::Index(n), Value::Array(a)) if *n < a.len() => {
            a.remove(*n);
            Ok(())
        }
        _ => Err(format!("{path}: no such field")),
    }
}

enum JsonSeg {
    Key(String),
    Index(usize),
}

fn json_segments(path: &str) -> Result<Vec<JsonSeg>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("{path:?}: empty segment"));
        }
        if !name.is_empty() {
            out.push(JsonSeg::Key(name.to_string()));
        }
        while let Some(end) = rest.find(']') {
            let n = rest[1..end]
                .parse()
                .map_err(|_| format!("{path:?}: [{}] is not an index", &rest[1..end]))?;
            out.push(JsonSeg::Index(n));
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("{path:?}: `[` without `]`"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_set_and_unset() {
        let mut v = json!({"a": {"b": 1}, "items": [{"p": 1}]});
        set_json(&mut v, "a.c", json!(2)).unwrap();
        set_json(&mut v, "items[0].p", json!(3)).unwrap();
        set_json(&mut v, "x.y", json!(true)).unwrap();
        unset_json(&mut v, "a.b").unwrap();
        assert_eq!(
            v,
            json!({"a": {"c": 2}, "items": [{"p": 3}], "x": {"y": true}})
        );
        assert!(unset_json(&mut v, "a.zz").is_err());
        assert!(set_json(&mut v, "items[5].p", json!(1)).is_err());
    }
}
