//! Whole-scenario checks run by the loader once a scenario is built.

use std::collections::BTreeSet;

use serde_json::Value;

use super::model::{Action, Body, Scenario, Step};
use crate::matcher::{Check, FieldExpectation};
use crate::vars;

/// Whole-scenario checks: a setup check stands alone; variables are defined before use.
pub(super) fn check_shape(s: &Scenario) -> Result<(), (String, String)> {
    if s.is_setup_check() {
        if let Some(other) = s
            .steps
            .iter()
            .find(|st| !matches!(st.action, Action::StartService(_)))
        {
            return Err((
                other.label(),
                "a scenario with `start_service` has no other steps".into(),
            ));
        }
    }
    let mut defined: BTreeSet<String> = BTreeSet::from(["id".to_string()]);
    for st in &s.steps {
        for name in step_references(st) {
            if !defined.contains(&name) {
                return Err((
                    st.label(),
                    format!(
                        "${{{name}}} is not defined before this step (define it with `capture`)"
                    ),
                ));
            }
        }
        for (name, _) in &st.capture {
            defined.insert(name.clone());
        }
    }
    Ok(())
}

fn refs_json(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vars::references(s),
        Value::Array(a) => a.iter().flat_map(refs_json).collect(),
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| {
                let mut r = vars::references(k);
                r.extend(refs_json(v));
                r
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn refs_checks(fields: &[FieldExpectation]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| f.checks.iter())
        .flat_map(|c| match c {
            Check::Eq(v) | Check::Ne(v) | Check::NotContains(v) => refs_json(v),
            Check::Contains { value, .. } => refs_json(value),
            Check::OneOf(l) => l.iter().flat_map(refs_json).collect(),
            Check::StartsWith(s) => vars::references(s),
            _ => Vec::new(),
        })
        .collect()
}

fn step_references(st: &Step) -> Vec<String> {
    let mut out = Vec::new();
    match &st.action {
        Action::Http(h) => {
            out.extend(vars::references(&h.path));
            match &h.body {
                Some(Body::Json(v)) => out.extend(refs_json(v)),
                Some(Body::Raw { text, .. }) => out.extend(vars::references(text)),
                None => {}
            }
            out.extend(refs_checks(&h.expect.body));
        }
        Action::Webhook(w) => {
            for s in [
                &w.external_order_id,
                &w.flexfactor_order_id,
                &w.confirmation_id,
                &w.nonce,
                &w.raw_body,
            ]
            .into_iter()
            .flatten()
            {
                out.extend(vars::references(s));
            }
            out.extend(refs_checks(&w.expect.body));
        }
        Action::FlexFactorEvaluate(e) => {
            out.extend(vars::references(&e.order_id));
            out.extend(refs_checks(&e.first));
            out.extend(refs_checks(&e.last));
            out.extend(refs_checks(&e.each));
        }
        Action::FlexFactorOrder(o) => {
            out.extend(vars::references(&o.order_id));
            out.extend(refs_checks(&o.last));
        }
        Action::Notifications(n) => {
            for s in [&n.order_id, &n.subscription_id].into_iter().flatten() {
                out.extend(vars::references(s));
            }
            out.extend(refs_checks(&n.last));
        }
        _ => {}
    }
    out
}
