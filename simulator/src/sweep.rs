//! Sweeps: `[[sweep]]` tables that vary one setup or FlexFactor parameter over a list of
//! values. Each value becomes a variant (named `parameter = value`) run on the same seeds as
//! the others, and the report draws recovered revenue, with its interval, against the value.
//!
//! ```toml
//! [[sweep]]
//! parameter = "flexfactor_slot"   # the re-attempt FlexFactor takes (or "final", "none")
//! profile = "recycle-ladder"
//! values = [4, 5, 6, 7, 8, 9, "final", "none"]
//! ```
//!
//! Parameters: `expiry_days` (S2), `cascade_all` (C2), `flexfactor_slot` (Y3, with `profile`),
//! `recycle_wait_days` (every re-attempt of `profile` waits this many days), and FlexFactor's
//! model rates `flexfactor.cascade_approval`, `flexfactor.rerun_recovery`,
//! `flexfactor.recycle_recovery.4-6`, `.7-9`, `.final`.

use std::collections::BTreeMap;

use salvage_domain::{RecycleProfileId, Setup};
use serde::{Deserialize, Serialize};

use crate::error::Problems;
use crate::variant::{AttemptRef, AttemptSpec, FlexFactorChange, VariantSpec};

/// A `[[sweep]]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    pub parameter: String,
    /// The recycle profile `flexfactor_slot` and `recycle_wait_days` change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<RecycleProfileId>,
    pub values: Vec<toml::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// The parameters a sweep can vary.
pub const PARAMETERS: [&str; 9] = [
    "expiry_days",
    "cascade_all",
    "flexfactor_slot",
    "recycle_wait_days",
    "flexfactor.cascade_approval",
    "flexfactor.rerun_recovery",
    "flexfactor.recycle_recovery.4-6",
    "flexfactor.recycle_recovery.7-9",
    "flexfactor.recycle_recovery.final",
];

/// A sweep ready to report: the parameter and, per value, its label and its variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sweep {
    pub parameter: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<RecycleProfileId>,
    pub description: String,
    /// (value as written, index of its variant in the scenario).
    pub points: Vec<(String, usize)>,
}

fn label(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The variants of every sweep, to append after `first` variants, and the sweeps that name
/// them. Problems go to `p` with the sweep's field.
pub(crate) fn expand(
    sweeps: &[SweepSpec],
    first: usize,
    base: &Setup,
    p: &mut Problems,
) -> (Vec<VariantSpec>, Vec<Sweep>) {
    let mut variants = Vec::new();
    let mut out = Vec::new();
    for (i, s) in sweeps.iter().enumerate() {
        let field = format!("sweep[{i}]");
        if !PARAMETERS.contains(&s.parameter.as_str()) {
            p.add(
                format!("{field}.parameter"),
                format!(
                    "{:?} cannot be swept; one of: {}",
                    s.parameter,
                    PARAMETERS.join(", ")
                ),
            );
            continue;
        }
        if s.values.is_empty() {
            p.add(format!("{field}.values"), "needs at least one value");
            continue;
        }
        let needs_profile = matches!(
            s.parameter.as_str(),
            "flexfactor_slot" | "recycle_wait_days"
        );
        let profile = match (&s.profile, needs_profile) {
            (Some(id), true) => match base.recycle_profiles.iter().find(|r| &r.id == id) {
                Some(r) => Some(r),
                None => {
                    p.add(
                        format!("{field}.profile"),
                        format!("{:?} is not a recycle profile of the setup", id.as_str()),
                    );
                    continue;
                }
            },
            (None, true) => {
                p.add(
                    format!("{field}.profile"),
                    format!("{} needs the recycle profile it changes", s.parameter),
                );
                continue;
            }
            (Some(_), false) => {
                p.add(
                    format!("{field}.profile"),
                    format!("{} does not change a recycle profile", s.parameter),
                );
                continue;
            }
            (None, false) => None,
        };
        let mut points = Vec::new();
        for (j, value) in s.values.iter().enumerate() {
            let vfield = format!("{field}.values[{j}]");
            let mut v = VariantSpec {
                name: format!("{} = {}", s.parameter, label(value)),
                description: format!("the sweep over {}: {}", s.parameter, label(value)),
                ..VariantSpec::default()
            };
            let bad = |p: &mut Problems, what: &str| {
                p.add(&vfield, format!("{value} is not {what}"));
            };
            match (s.parameter.as_str(), value) {
                ("expiry_days", toml::Value::Integer(n)) => v.expiry_days = Some(*n),
                ("expiry_days", _) => bad(p, "a number of days"),
                ("cascade_all", toml::Value::Boolean(b)) => v.cascade_all = Some(*b),
                ("cascade_all", _) => bad(p, "true or false"),
                ("flexfactor_slot", value) => {
                    let id = profile
                        .map(|r| r.id.clone())
                        .unwrap_or_else(|| RecycleProfileId::new(String::new()));
                    let refs = match value {
                        toml::Value::Integer(n) if *n >= 1 && *n <= i64::from(u32::MAX) => {
                            vec![AttemptRef::Number(*n as u32)]
                        }
                        toml::Value::String(s) if s == "final" => {
                            vec![AttemptRef::Named("final".into())]
                        }
                        toml::Value::String(s) if s == "none" => vec![],
                        _ => {
                            bad(p, "a re-attempt number, \"final\" or \"none\"");
                            continue;
                        }
                    };
                    v.recycle_flexfactor = BTreeMap::from([(id, refs)]);
                }
                ("recycle_wait_days", toml::Value::Integer(n)) => {
                    if let Some(r) = profile {
                        let attempts = r
                            .attempts
                            .iter()
                            .map(|a| AttemptSpec {
                                wait_days: *n,
                                flexfactor: a.flexfactor,
                            })
                            .collect();
                        v.recycle_attempts = BTreeMap::from([(r.id.clone(), attempts)]);
                    }
                }
                ("recycle_wait_days", _) => bad(p, "a number of days"),
                (rate, value) => {
                    let x = match value {
                        toml::Value::Float(x) => *x,
                        toml::Value::Integer(n) => *n as f64,
                        _ => {
                            bad(p, "a share between 0 and 1");
                            continue;
                        }
                    };
                    p.share(&vfield, x);
                    let mut c = FlexFactorChange::default();
                    match rate {
                        "flexfactor.cascade_approval" => c.cascade_approval = Some(x),
                        "flexfactor.rerun_recovery" => c.rerun_recovery = Some(x),
                        "flexfactor.recycle_recovery.4-6" => c.recycle_recovery_4_6 = Some(x),
                        "flexfactor.recycle_recovery.7-9" => c.recycle_recovery_7_9 = Some(x),
                        _ => c.recycle_recovery_final = Some(x),
                    }
                    v.flexfactor_model = Some(c);
                }
            }
            points.push((label(value), first + variants.len()));
            variants.push(v);
        }
        out.push(Sweep {
            parameter: s.parameter.clone(),
            profile: s.profile.clone(),
            description: s.description.clone(),
            points,
        });
    }
    (variants, out)
}
