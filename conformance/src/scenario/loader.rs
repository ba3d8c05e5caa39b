//! The hand-written loader of the scenario files: TOML tables to the scenario model, every
//! problem reported with the file, the scenario and the field.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::duration::parse_duration;
use super::fields::Fields;
use super::json_path::{set_json, unset_json};
use super::model::{
    Action, Auth, Body, EvaluateCheck, FakeOrderCheck, HttpExpect, HttpStep, Method,
    NotificationCheck, Phase, Scenario, ScenarioFile, Signing, StartExpect, Step, WebhookStep,
    ENDPOINTS,
};
use super::shape::check_shape;
use crate::catalogue;
use crate::error::LoadError;
use crate::matcher;
use crate::setup::SetupEdit;

pub(super) fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Request body templates by name.
pub type Templates = BTreeMap<String, Value>;

pub(super) fn load_templates(text: &str, path: &Path) -> Result<Templates, LoadError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| LoadError::Toml {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let templates = table.remove("templates");
    if let Some(k) = table.keys().next() {
        return Err(LoadError::File {
            file: path.to_path_buf(),
            reason: format!(
                "unknown top-level key `{k}` (a template file holds only [templates.NAME])"
            ),
        });
    }
    templates_of(templates, path)
}

fn templates_of(v: Option<toml::Value>, path: &Path) -> Result<Templates, LoadError> {
    let mut out = Templates::new();
    match v {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (name, body) in t {
                if !body.is_table() {
                    return Err(LoadError::File {
                        file: path.to_path_buf(),
                        reason: format!("templates.{name}: a template is a table (a JSON body)"),
                    });
                }
                out.insert(name, matcher::toml_to_json(&body));
            }
        }
        Some(_) => {
            return Err(LoadError::File {
                file: path.to_path_buf(),
                reason: "`templates` is a table of tables".into(),
            })
        }
    }
    Ok(out)
}

/// Loads one scenario file's text (`path` names it in errors) with the shared templates.
pub fn load_file(text: &str, path: &Path, shared: &Templates) -> Result<ScenarioFile, LoadError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| LoadError::Toml {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file_err = |reason: String| LoadError::File {
        file: path.to_path_buf(),
        reason,
    };
    let title = match table.remove("title") {
        None => String::new(),
        Some(toml::Value::String(s)) => s,
        Some(_) => return Err(file_err("`title` is a string".into())),
    };
    let mut templates = shared.clone();
    templates.extend(templates_of(table.remove("templates"), path)?);
    let scenarios = table.remove("scenario");
    if let Some(k) = table.keys().next() {
        return Err(file_err(format!(
            "unknown top-level key `{k}` (known: title, templates, scenario)"
        )));
    }
    let scenarios = match scenarios {
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(file_err(
                "`scenario` is an array of tables ([[scenario]])".into(),
            ))
        }
        None => return Err(file_err("no [[scenario]] in this file".into())),
    };
    let mut out = Vec::new();
    for (i, s) in scenarios.into_iter().enumerate() {
        let toml::Value::Table(t) = s else {
            return Err(file_err(format!("scenario #{}: not a table", i + 1)));
        };
        out.push(load_scenario(t, i, path, &templates)?);
    }
    Ok(ScenarioFile {
        path: path.to_path_buf(),
        name: file_stem(path),
        title,
        scenarios: out,
    })
}

fn load_scenario(
    t: toml::Table,
    index: usize,
    path: &Path,
    templates: &Templates,
) -> Result<Scenario, LoadError> {
    let name = t
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{}", index + 1));
    let err = |(field, reason): (String, String)| LoadError::Scenario {
        file: path.to_path_buf(),
        scenario: name.clone(),
        field,
        reason,
    };
    let mut f = Fields::new(t, "");
    let id = f
        .string("id")
        .map_err(err)?
        .ok_or_else(|| err(("id".into(), "required".into())))?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(err((
            "id".into(),
            "lower-case letters, digits and `-` only (it prefixes order ids)".into(),
        )));
    }
    let title = f.string("title").map_err(err)?.unwrap_or_default();
    let rules = f
        .strings("rules")
        .map_err(err)?
        .ok_or_else(|| err(("rules".into(), "required: the rule IDs it checks".into())))?;
    if rules.is_empty() {
        return Err(err(("rules".into(), "name at least one rule ID".into())));
    }
    for r in &rules {
        if catalogue::find(r).is_none() {
            return Err(err((
                "rules".into(),
                format!("{r:?} is not a rule ID of the catalogue"),
            )));
        }
    }
    let isolated = f.boolean("isolated").map_err(err)?.unwrap_or(false);
    let mut setup = Vec::new();
    let mut steps = Vec::new();
    if let Some(given) = f.table("given").map_err(err)? {
        let mut g = Fields::new(given, "given");
        if let Some(v) = g.take("setup") {
            let toml::Value::Array(edits) = v else {
                return Err(err(("given.setup".into(), "an array of edits".into())));
            };
            for (i, e) in edits.into_iter().enumerate() {
                let field = format!("given.setup[{}]", i + 1);
                let edit: SetupEdit = e
                    .try_into()
                    .map_err(|x: toml::de::Error| err((field.clone(), x.message().to_string())))?;
                edit.validate().map_err(|x| err((field.clone(), x)))?;
                setup.push(edit);
            }
            // The edits must give a setup: checked when the scenario runs (S rules expect
            // refusals), but the paths must exist now.
            crate::setup::edited_setup(&setup).map_err(|x| err(("given.setup".into(), x)))?;
        }
        if let Some(v) = g.take("steps") {
            steps.extend(load_steps(v, Phase::Given, templates).map_err(err)?);
        }
        g.finish(&["setup", "steps"]).map_err(err)?;
    }
    let when = f
        .take("when")
        .ok_or_else(|| err(("when".into(), "required: at least one step".into())))?;
    let when = load_steps(when, Phase::When, templates).map_err(err)?;
    if when.is_empty() {
        return Err(err(("when".into(), "at least one step".into())));
    }
    steps.extend(when);
    if let Some(v) = f.take("then") {
        steps.extend(load_steps(v, Phase::Then, templates).map_err(err)?);
    }
    f.finish(&["id", "title", "rules", "isolated", "given", "when", "then"])
        .map_err(err)?;
    let scenario = Scenario {
        id,
        title,
        rules,
        isolated,
        setup,
        steps,
        file: path.to_path_buf(),
    };
    check_shape(&scenario).map_err(err)?;
    Ok(scenario)
}

fn load_steps(
    v: toml::Value,
    phase: Phase,
    templates: &Templates,
) -> Result<Vec<Step>, (String, String)> {
    let toml::Value::Array(items) = v else {
        return Err((
            phase.to_string(),
            "an array of steps ([[scenario.when]] or `when = [...]`)".into(),
        ));
    };
    let mut tables = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{phase}[{}]", i + 1);
        let toml::Value::Table(t) = item else {
            return Err((at, "a step is a table".into()));
        };
        tables.extend(repeated(t, &at)?);
    }
    let mut out = Vec::new();
    for (i, t) in tables.into_iter().enumerate() {
        let at = format!("{phase}[{}]", i + 1);
        let (action, capture) = load_step(t, &at, templates)?;
        out.push(Step {
            phase,
            index: i + 1,
            action,
            capture,
        });
    }
    Ok(out)
}

/// The most copies `repeat` makes of one step.
pub const MAX_REPEAT: i64 = 100;

/// A step with `repeat = N` (1 to [`MAX_REPEAT`]) stands for N copies of itself, `${n}` in its
/// strings replaced by the copy's number (01, 02, ... padded to the width of N); any other step
/// stands for itself.
fn repeated(mut t: toml::Table, at: &str) -> Result<Vec<toml::Table>, (String, String)> {
    let Some(v) = t.remove("repeat") else {
        return Ok(vec![t]);
    };
    let n = v
        .as_integer()
        .filter(|n| (1..=MAX_REPEAT).contains(n))
        .ok_or_else(|| {
            (
                format!("{at}.repeat"),
                format!("a number of copies, 1 to {MAX_REPEAT}"),
            )
        })?;
    let width = n.to_string().len();
    Ok((1..=n)
        .map(|k| {
            let number = format!("{k:0width$}");
            let mut copy = toml::Value::Table(t.clone());
            replace_in_strings(&mut copy, "${n}", &number);
            match copy {
                toml::Value::Table(c) => c,
                _ => toml::Table::new(),
            }
        })
        .collect())
}

fn replace_in_strings(v: &mut toml::Value, from: &str, to: &str) {
    match v {
        toml::Value::String(s) => *s = s.replace(from, to),
        toml::Value::Array(a) => a.iter_mut().for_each(|x| replace_in_strings(x, from, to)),
        toml::Value::Table(t) => t
            .iter_mut()
            .for_each(|(_, x)| replace_in_strings(x, from, to)),
        _ => {}
    }
}

/// The action keys of a step (exactly one per step).
pub const ACTIONS: &[&str] = &[
    "post",
    "get",
    "webhook",
    "advance",
    "settle",
    "fault",
    "clear_faults",
    "flexfactor_evaluate",
    "flexfactor_calls",
    "flexfactor_order",
    "notifications",
    "start_service",
];

type Loaded = (Action, Vec<(String, matcher::Path)>);

fn load_step(t: toml::Table, at: &str, templates: &Templates) -> Result<Loaded, (String, String)> {
    let present: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| t.contains_key(*a))
        .collect();
    let action = match present.as_slice() {
        [one] => *one,
        [] => {
            return Err((
                at.to_string(),
                format!("a step needs one of: {}", ACTIONS.join(", ")),
            ))
        }
        many => {
            return Err((
                at.to_string(),
                format!("a step does one thing; this one has {}", many.join(" and ")),
            ))
        }
    };
    let mut f = Fields::new(t, at);
    let capture = match f.table("capture")? {
        None => Vec::new(),
        Some(c) => c
            .into_iter()
            .map(|(name, p)| {
                let text = p
                    .as_str()
                    .ok_or_else(|| (f.field("capture"), format!("{name}: a path (string)")))?;
                let path = matcher::Path::parse(text).map_err(|e| (f.field("capture"), e))?;
                Ok((name, path))
            })
            .collect::<Result<Vec<_>, (String, String)>>()?,
    };
    let loaded = match action {
        "post" | "get" => {
            let method = if action == "post" {
                Method::Post
            } else {
                Method::Get
            };
            let path = f
                .string(action)?
                .ok_or_else(|| (f.field(action), "a path such as /v1/orders".into()))?;
            if !path.starts_with('/') {
                return Err((f.field(action), "the path starts with /".into()));
            }
            let body = load_body(&mut f, templates)?;
            if method == Method::Get && body.is_some() {
                return Err((f.field("body"), "a GET has no body".into()));
            }
            let auth = match f.string("auth")?.as_deref() {
                None | Some("key") => Auth::Key,
                Some("none") => Auth::None,
                Some("wrong") => Auth::Wrong,
                Some(other) => {
                    return Err((
                        f.field("auth"),
                        format!("{other:?}: one of \"key\", \"none\", \"wrong\""),
                    ))
                }
            };
            let expect = load_expect(&mut f)?;
            let eventually = f.boolean("eventually")?.unwrap_or(false);
            if eventually && method != Method::Get {
                return Err((
                    f.field("eventually"),
                    "only a GET is repeated until it holds".into(),
                ));
            }
            f.finish(&[
                action,
                "body",
                "template",
                "set",
                "unset",
                "raw_body",
                "content_type",
                "auth",
                "expect",
                "capture",
                "eventually",
            ])?;
            Action::Http(Box::new(HttpStep {
                method,
                path,
                body,
                auth,
                expect,
                capture: capture.clone(),
                eventually,
            }))
        }
        "webhook" => {
            let w = f.table("webhook")?.unwrap_or_default();
            let expect = load_expect(&mut f)?;
            f.finish(&["webhook", "expect", "capture"])?;
            Action::Webhook(Box::new(load_webhook(w, &format!("{at}.webhook"), expect)?))
        }
        "advance" => {
            let text = f
                .string("advance")?
                .ok_or_else(|| (f.field("advance"), "a duration such as \"1d1m\"".into()))?;
            let d = parse_duration(&text).map_err(|e| (f.field("advance"), e))?;
            if d <= chrono::Duration::zero() {
                return Err((f.field("advance"), "the clock only moves forward".into()));
            }
            f.finish(&["advance"])?;
            Action::Advance(d)
        }
        "settle" => {
            if f.boolean("settle")? != Some(true) {
                return Err((f.field("settle"), "write `settle = true`".into()));
            }
            f.finish(&["settle"])?;
            Action::Settle
        }
        "clear_faults" => {
            if f.boolean("clear_faults")? != Some(true) {
                return Err((
                    f.field("clear_faults"),
                    "write `clear_faults = true`".into(),
                ));
            }
            f.finish(&["clear_faults"])?;
            Action::ClearFaults
        }
        "fault" => {
            let v = f
                .take("fault")
                .ok_or_else(|| (f.field("fault"), "a fault rule".into()))?;
            let rule: salvage_sim::fake_flexfactor::FaultRule = v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| (f.field("fault"), e.message().to_string()))?;
            rule.validate().map_err(|e| (f.field("fault"), e))?;
            f.finish(&["fault"])?;
            Action::Fault(matcher::toml_to_json(&v))
        }
        "flexfactor_evaluate" => {
            let t = f.table("flexfactor_evaluate")?.unwrap_or_default();
            f.finish(&["flexfactor_evaluate"])?;
            let mut g = Fields::new(t, format!("{at}.flexfactor_evaluate"));
            let order_id = g.string("order_id")?.ok_or_else(|| {
                (
                    g.field("order_id"),
                    "required: the merchant's order id".into(),
                )
            })?;
            let check = EvaluateCheck {
                order_id,
                count: g.checks("count")?,
                first: g.fields("first")?,
                last: g.fields("last")?,
                each: g.fields("each")?,
            };
            g.finish(&["order_id", "count", "first", "last", "each"])?;
            Action::FlexFactorEvaluate(Box::new(check))
        }
        "flexfactor_calls" => {
            let t = f.table("flexfactor_calls")?.unwrap_or_default();
            f.finish(&["flexfactor_calls"])?;
            let mut counts = Vec::new();
            for (name, v) in t {
                if !ENDPOINTS.contains(&name.as_str()) {
                    return Err((
                        format!("{at}.flexfactor_calls.{name}"),
                        format!("unknown endpoint (known: {})", ENDPOINTS.join(", ")),
                    ));
                }
                let checks = matcher::parse_checks(&v)
                    .map_err(|e| (format!("{at}.flexfactor_calls.{name}"), e))?;
                counts.push((name, checks));
            }
            if counts.is_empty() {
                return Err((format!("{at}.flexfactor_calls"), "name an endpoint".into()));
            }
            Action::FlexFactorCalls(counts)
        }
        "flexfactor_order" => {
            let t = f.table("flexfactor_order")?.unwrap_or_default();
            f.finish(&["flexfactor_order"])?;
            let mut g = Fields::new(t, format!("{at}.flexfactor_order"));
            let order_id = g.string("order_id")?.ok_or_else(|| {
                (
                    g.field("order_id"),
                    "required: the merchant's order id".into(),
                )
            })?;
            let check = FakeOrderCheck {
                order_id,
                count: g.checks("count")?,
                last: g.fields("last")?,
            };
            g.finish(&["order_id", "count", "last"])?;
            Action::FlexFactorOrder(Box::new(check))
        }
        "notifications" => {
            let t = f.table("notifications")?.unwrap_or_default();
            f.finish(&["notifications"])?;
            let mut g = Fields::new(t, format!("{at}.notifications"));
            let check = NotificationCheck {
                order_id: g.string("order_id")?,
                subscription_id: g.string("subscription_id")?,
                kinds: g.strings("kinds")?,
                kind: g.string("kind")?,
                count: g.checks("count")?,
                last: g.fields("last")?,
            };
            if check.order_id.is_some() == check.subscription_id.is_some() {
                return Err((
                    g.field("order_id"),
                    "name exactly one of order_id, subscription_id".into(),
                ));
            }
            g.finish(&[
                "order_id",
                "subscription_id",
                "kinds",
                "kind",
                "count",
                "last",
            ])?;
            Action::Notifications(Box::new(check))
        }
        "start_service" => {
            if f.boolean("start_service")? != Some(true) {
                return Err((
                    f.field("start_service"),
                    "write `start_service = true`".into(),
                ));
            }
            let t = f.table("expect")?.unwrap_or_default();
            f.finish(&["start_service", "expect"])?;
            let mut g = Fields::new(t, format!("{at}.expect"));
            let e = StartExpect {
                fails: g.boolean("fails")?.unwrap_or(false),
                message_contains: g.strings("message_contains")?.unwrap_or_default(),
                message_excludes: g.strings("message_excludes")?.unwrap_or_default(),
                message_excludes_secrets: g.boolean("message_excludes_secrets")?.unwrap_or(false),
            };
            g.finish(&[
                "fails",
                "message_contains",
                "message_excludes",
                "message_excludes_secrets",
            ])?;
            if !e.fails && !e.message_contains.is_empty() {
                return Err((
                    format!("{at}.expect.message_contains"),
                    "only a refused start has a message (set `fails = true`)".into(),
                ));
            }
            Action::StartService(e)
        }
        other => return Err((at.to_string(), format!("unhandled action {other}"))),
    };
    let capture = match &loaded {
        Action::Http(_) | Action::Webhook(_) => capture,
        _ if capture.is_empty() => capture,
        _ => {
            return Err((
                format!("{at}.capture"),
                "only requests and webhooks capture values".into(),
            ))
        }
    };
    Ok((loaded, capture))
}

fn load_body(f: &mut Fields, templates: &Templates) -> Result<Option<Body>, (String, String)> {
    let body = f.table("body")?;
    let template = f.string("template")?;
    let set = f.table("set")?;
    let unset = f.strings("unset")?;
    let raw = f.string("raw_body")?;
    let content_type = f.string("content_type")?;
    if raw.is_some() && (body.is_some() || template.is_some() || set.is_some() || unset.is_some()) {
        return Err((
            f.field("raw_body"),
            "`raw_body` is sent as it is: no body, template, set or unset with it".into(),
        ));
    }
    if let Some(text) = raw {
        return Ok(Some(Body::Raw { text, content_type }));
    }
    if content_type.is_some() {
        return Err((f.field("content_type"), "only with `raw_body`".into()));
    }
    let mut json = match (body, template) {
        (Some(_), Some(_)) => {
            return Err((f.field("template"), "either `body` or `template`".into()))
        }
        (Some(b), None) => matcher::toml_to_json(&toml::Value::Table(b)),
        (None, Some(name)) => templates.get(&name).cloned().ok_or_else(|| {
            (
                f.field("template"),
                format!(
                    "no template {name:?} (known: {})",
                    templates.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
        (None, None) => {
            if set.is_some() || unset.is_some() {
                return Err((
                    f.field("set"),
                    "`set`/`unset` need a `body` or `template`".into(),
                ));
            }
            return Ok(None);
        }
    };
    for (path, v) in set.unwrap_or_default() {
        set_json(&mut json, &path, matcher::toml_to_json(&v))
            .map_err(|e| (f.field(&format!("set.\"{path}\"")), e))?;
    }
    for path in unset.unwrap_or_default() {
        unset_json(&mut json, &path).map_err(|e| (f.field("unset"), e))?;
    }
    Ok(Some(Body::Json(json)))
}

fn load_expect(f: &mut Fields) -> Result<HttpExpect, (String, String)> {
    let Some(t) = f.table("expect")? else {
        return Ok(HttpExpect::default());
    };
    let mut g = Fields::new(t, f.field("expect"));
    let e = HttpExpect {
        status: g.checks("status")?,
        body: g.fields("body")?,
        body_excludes: g.strings("body_excludes")?.unwrap_or_default(),
        body_contains: g.strings("body_contains")?.unwrap_or_default(),
        body_excludes_secrets: g.boolean("body_excludes_secrets")?.unwrap_or(false),
    };
    g.finish(&[
        "status",
        "body",
        "body_excludes",
        "body_contains",
        "body_excludes_secrets",
    ])?;
    Ok(e)
}

fn load_webhook(
    t: toml::Table,
    at: &str,
    expect: HttpExpect,
) -> Result<WebhookStep, (String, String)> {
    let mut g = Fields::new(t, at);
    let raw_body = g.string("raw_body")?;
    let event = match g.string("event")? {
        Some(e) => e,
        None if raw_body.is_some() => String::new(),
        None => {
            return Err((
                g.field("event"),
                "required (e.g. \"order.completed\")".into(),
            ))
        }
    };
    let signing = match g.string("signing")?.as_deref() {
        None | Some("valid") => Signing::Valid,
        Some("wrong_key") => Signing::WrongKey,
        Some("wrong_content_hash") => Signing::WrongContentHash,
        Some("unsigned") => Signing::Unsigned,
        Some(other) => {
            return Err((
                g.field("signing"),
                format!(
                "{other:?}: one of \"valid\", \"wrong_key\", \"wrong_content_hash\", \"unsigned\""
            ),
            ))
        }
    };
    let date_offset = match g.string("date_offset")? {
        None => chrono::Duration::zero(),
        Some(s) => parse_duration(&s).map_err(|e| (g.field("date_offset"), e))?,
    };
    let pad_to_bytes = match g.take("pad_to_bytes") {
        None => None,
        Some(toml::Value::Integer(n)) if n > 0 => Some(n as usize),
        Some(_) => return Err((g.field("pad_to_bytes"), "a positive integer".into())),
    };
    let extra = g
        .table("extra")?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, matcher::toml_to_json(&v)))
        .collect();
    let w = WebhookStep {
        event,
        external_order_id: g.string("external_order_id")?,
        flexfactor_order_id: g.string("order_id")?,
        confirmation_id: g.string("confirmation_id")?,
        is_resent: g.boolean("is_resent")?.unwrap_or(false),
        raw_body,
        extra,
        lowercase_names: g.boolean("lowercase_names")?.unwrap_or(false),
        pad_to_bytes,
        nonce: g.string("nonce")?,
        date_offset,
        signing,
        expect,
    };
    g.finish(&[
        "event",
        "external_order_id",
        "order_id",
        "confirmation_id",
        "is_resent",
        "raw_body",
        "extra",
        "lowercase_names",
        "pad_to_bytes",
        "nonce",
        "date_offset",
        "signing",
    ])?;
    if w.raw_body.is_some()
        && (w.external_order_id.is_some() || w.flexfactor_order_id.is_some() || !w.extra.is_empty())
    {
        return Err((
            g_field(at, "raw_body"),
            "`raw_body` is sent as it is: no event fields with it".into(),
        ));
    }
    Ok(w)
}

fn g_field(at: &str, key: &str) -> String {
    format!("{at}.{key}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<ScenarioFile, LoadError> {
        let mut templates = Templates::new();
        templates.insert(
            "sale".into(),
            json!({"order_id": "x", "attempt": {"gateway_id": "nmi-main"}}),
        );
        load_file(text, Path::new("t.toml"), &templates)
    }
    #[test]
    fn a_scenario_loads_with_templates_set_and_captures() {
        let f = load(
            r#"
            [[scenario]]
            id = "r2-x"
            rules = ["R2"]
            [[scenario.given.steps]]
            post = "/v1/orders"
            template = "sale"
            set = { order_id = "${id}-1", "attempt.decline_type" = "soft" }
            expect = { status = 201 }
            capture = { ff = "salvage.flexfactor_order_id" }
            [[scenario.when]]
            webhook = { event = "order.completed", external_order_id = "${id}-1", order_id = "${ff}" }
            expect = { status = 200, body = { status = "applied" } }
            [[scenario.then]]
            flexfactor_calls = { evaluate = 1, token = { lte = 1 } }
            "#,
        )
        .unwrap();
        let s = &f.scenarios[0];
        assert_eq!(s.steps.len(), 3);
        let Action::Http(h) = &s.steps[0].action else {
            panic!()
        };
        assert_eq!(
            h.body,
            Some(Body::Json(
                json!({"order_id": "${id}-1", "attempt": {"gateway_id": "nmi-main", "decline_type": "soft"}})
            ))
        );
        assert_eq!(s.steps[0].label(), "given[1]");
        assert_eq!(s.steps[1].label(), "when[1]");
    }

    #[test]
    fn a_repeated_step_is_copied_with_its_number() {
        let f = load(
            r#"
            [[scenario]]
            id = "c1-x"
            rules = ["C1"]
            [[scenario.given.steps]]
            post = "/v1/orders"
            template = "sale"
            repeat = 10
            set = { order_id = "${id}-${n}" }
            [[scenario.when]]
            settle = true
            "#,
        )
        .unwrap();
        let s = &f.scenarios[0];
        assert_eq!(s.steps.len(), 11);
        let ids: Vec<String> = s.steps[..10]
            .iter()
            .map(|st| match &st.action {
                Action::Http(h) => match &h.body {
                    Some(Body::Json(b)) => b["order_id"].as_str().unwrap_or("").to_string(),
                    _ => String::new(),
                },
                _ => String::new(),
            })
            .collect();
        assert_eq!(ids[0], "${id}-01");
        assert_eq!(ids[9], "${id}-10");
        assert_eq!(s.steps[9].label(), "given[10]");
        assert_eq!(s.steps[10].label(), "when[1]");
        for bad in ["0", "101", "\"x\""] {
            let e = load(&format!(
                "[[scenario]]\nid = \"a\"\nrules = [\"C1\"]\nwhen = [{{ settle = true, repeat = {bad} }}]"
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("when[1].repeat"), "{e}");
        }
    }

    #[test]
    fn errors_name_file_scenario_and_field() {
        let cases = [
            (
                r#"[[scenario]]
                id = "a"
                rules = ["Z9"]
                when = [{ settle = true }]"#,
                "rules",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", bdy = {} }]"#,
                "when[1].bdy",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", get = "/x" }]"#,
                "when[1]",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ get = "/v1/orders/${ff}" }]"#,
                "when[1]",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", template = "nope" }]"#,
                "when[1].template",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ get = "/v1/x", expect = { body = { status = { equals = 1 } } } }]"#,
                "when[1].expect.body",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ fault = { endpoint = "webhooks", kind = "timeout", hold_ms = 1 } }]"#,
                "when[1].fault",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["S2"]
                given = { setup = [{ set = "gateways[id=nope].x", value = 1 }] }
                when = [{ start_service = true }]"#,
                "given.setup",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]"#,
                "when",
            ),
            (
                r#"[[scenario]]
                id = "A b"
                rules = ["C1"]
                when = [{ settle = true }]"#,
                "id",
            ),
        ];
        for (text, field) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.starts_with("t.toml: scenario"), "{e}");
            assert!(
                e.contains(&format!(": {field}:")),
                "expected field {field} in: {e}"
            );
        }
        let e = load("x = 1").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("`x`"), "{e}");
        let e = load("[[scenario]\n").unwrap_err().to_string();
        assert!(e.contains("t.toml: not valid TOML"), "{e}");
    }
}
