//! Setup variants: the base setup with a few options changed (`cascade_all`, `expiry_days`,
//! `include_chargebacks`, which recycle re-attempts go to FlexFactor, the network rules...), and
//! the CRM policy each runs with. Every variant's setup is validated like a setup file (S1-S8); what it breaks is
//! reported with the variant's name and the rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use salvage_domain::network::FlexFactorNetworkRules;
use salvage_domain::setup::{Gateway, RecycleAttempt};
use salvage_domain::{GatewayId, RecycleProfileId, Setup};
use serde::{Deserialize, Serialize};

use crate::crm::{check_crm, CrmPolicy};
use crate::error::Problems;
use crate::scenario::FlexFactorModelSpec;

/// A re-attempt named by its number (1-based) or as `"final"` (the profile's last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttemptRef {
    Number(u32),
    Named(String),
}

/// One re-attempt of a replaced recycle profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttemptSpec {
    pub wait_days: i64,
    #[serde(default)]
    pub flexfactor: bool,
}

/// A variant as written under `[[variants]]`: what it changes in the base setup and policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The FlexFactor gateway the options below change; by default the setup's only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flexfactor_gateway: Option<GatewayId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_all: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_chargebacks: Option<bool>,
    /// Per recycle profile: the re-attempts that carry `flexfactor = true` (all others false).
    /// Only the first is used (Y3); `[]` takes FlexFactor out of the profile.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub recycle_flexfactor: BTreeMap<RecycleProfileId, Vec<AttemptRef>>,
    /// Per recycle profile: a whole new list of re-attempts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub recycle_attempts: BTreeMap<RecycleProfileId, Vec<AttemptSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_trial_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_delay_hours: Option<u32>,
    /// The setup's `[network_rules]`: `{ enabled = false }` switches the guard off (N1-N9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_rules: Option<NetworkRulesChange>,
    /// N9: the FlexFactor gateway's `network_rules` (`never_retry`, `enforce`, `ignore`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flexfactor_network_rules: Option<FlexFactorNetworkRules>,
    /// FlexFactor's model rates in this variant (what FlexFactor would do, not the setup: a
    /// what-if on its performance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flexfactor_model: Option<FlexFactorChange>,
}

/// What a variant changes in the FlexFactor model (`[flexfactor]` of the scenario).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlexFactorChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_approval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_recovery: Option<f64>,
    #[serde(
        default,
        rename = "recycle_recovery_4-6",
        skip_serializing_if = "Option::is_none"
    )]
    pub recycle_recovery_4_6: Option<f64>,
    #[serde(
        default,
        rename = "recycle_recovery_7-9",
        skip_serializing_if = "Option::is_none"
    )]
    pub recycle_recovery_7_9: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_recovery_final: Option<f64>,
}

impl FlexFactorChange {
    /// `spec` with these changes.
    pub fn apply(&self, spec: &FlexFactorModelSpec) -> FlexFactorModelSpec {
        let mut s = spec.clone();
        let r = &mut s.recycle_recovery;
        for (to, from) in [
            (&mut s.cascade_approval, self.cascade_approval),
            (&mut s.rerun_recovery, self.rerun_recovery),
            (&mut r.attempts_4_to_6, self.recycle_recovery_4_6),
            (&mut r.attempts_7_to_9, self.recycle_recovery_7_9),
            (&mut r.final_attempt, self.recycle_recovery_final),
        ] {
            if let Some(x) = from {
                *to = x;
            }
        }
        s
    }
}

/// What a variant changes in the setup's `[network_rules]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRulesChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A variant ready to run.
#[derive(Debug, Clone)]
pub struct Variant {
    pub spec: VariantSpec,
    pub setup: Arc<Setup>,
    pub crm: CrmPolicy,
    /// The FlexFactor gateway reruns name, if reruns can happen at all.
    pub rerun_gateway: Option<GatewayId>,
    /// The FlexFactor model of this variant: the scenario's, with `flexfactor_model`.
    pub flexfactor: FlexFactorModelSpec,
}

impl Variant {
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// Builds every variant of the scenario (one "base" variant when none is given), each with the
/// scenario's CRM `policy` and the variant's changes to it.
pub(crate) fn build_all(
    variants: &[VariantSpec],
    policy: &CrmPolicy,
    flexfactor: &FlexFactorModelSpec,
    base: &Setup,
    p: &mut Problems,
) -> Vec<Variant> {
    let specs = if variants.is_empty() {
        vec![VariantSpec {
            name: "base".into(),
            description: "the base setup as it is".into(),
            ..VariantSpec::default()
        }]
    } else {
        variants.to_vec()
    };
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for (i, v) in specs.into_iter().enumerate() {
        let field = format!("variants[{i}]");
        if v.name.trim().is_empty() {
            p.add(format!("{field}.name"), "is empty");
        }
        if let Some(first) = seen.insert(v.name.clone(), i) {
            p.add(
                format!("{field}.name"),
                format!("{:?} is also the name of variants[{first}]", v.name),
            );
        }
        let before = p.0.len();
        let setup = apply(&v, base, &field, p);
        let crm = CrmPolicy {
            rerun_share: v.rerun_share.unwrap_or(policy.rerun_share),
            rerun_trial_share: v.rerun_trial_share.unwrap_or(policy.rerun_trial_share),
            rerun_delay_hours: v.rerun_delay_hours.unwrap_or(policy.rerun_delay_hours),
            ..policy.clone()
        };
        check_crm(&crm, &field, p);
        let model = match &v.flexfactor_model {
            Some(change) => change.apply(flexfactor),
            None => flexfactor.clone(),
        };
        if let Some(c) = &v.flexfactor_model {
            for (name, x) in [
                ("cascade_approval", c.cascade_approval),
                ("rerun_recovery", c.rerun_recovery),
                ("recycle_recovery_4-6", c.recycle_recovery_4_6),
                ("recycle_recovery_7-9", c.recycle_recovery_7_9),
                ("recycle_recovery_final", c.recycle_recovery_final),
            ] {
                if let Some(x) = x {
                    p.share(format!("{field}.flexfactor_model.{name}"), x);
                }
            }
        }
        if p.0.len() > before {
            continue;
        }
        if let Err(violations) = setup.validate() {
            for violation in violations {
                p.add(
                    &field,
                    format!("variant {:?} makes an invalid setup: {violation}", v.name),
                );
            }
            continue;
        }
        let rerun_gateway = match &crm.rerun_gateway {
            Some(g) => {
                if !setup.is_flexfactor(g) {
                    p.add(
                        "crm.rerun_gateway",
                        format!("{:?} is not a FlexFactor gateway of the setup", g.as_str()),
                    );
                }
                Some(g.clone())
            }
            None => only_flexfactor(&setup),
        };
        if rerun_gateway.is_none() && (crm.rerun_share > 0.0 || crm.rerun_trial_share > 0.0) {
            p.add(
                format!("{field}.rerun_share"),
                "reruns need a FlexFactor gateway: name it in crm.rerun_gateway",
            );
        }
        out.push(Variant {
            spec: v,
            setup: Arc::new(setup),
            crm,
            rerun_gateway,
            flexfactor: model,
        });
    }
    out
}

fn only_flexfactor(setup: &Setup) -> Option<GatewayId> {
    let mut ff = setup.flexfactor_gateways();
    match (ff.next(), ff.next()) {
        (Some(g), None) => Some(g.id.clone()),
        _ => None,
    }
}

/// The base setup with the variant's changes. Problems go to `p`.
fn apply(v: &VariantSpec, base: &Setup, field: &str, p: &mut Problems) -> Setup {
    let mut setup = base.clone();
    let wants_ff = v.cascade_all.is_some()
        || v.expiry_days.is_some()
        || v.include_chargebacks.is_some()
        || v.flexfactor_network_rules.is_some()
        || v.recycle_flexfactor.values().any(|l| !l.is_empty());
    if let Some(enabled) = v.network_rules.as_ref().and_then(|n| n.enabled) {
        setup.network_rules.enabled = enabled;
    }
    let ff_id = match &v.flexfactor_gateway {
        Some(g) if setup.is_flexfactor(g) => Some(g.clone()),
        Some(g) => {
            p.add(
                format!("{field}.flexfactor_gateway"),
                format!("{:?} is not a FlexFactor gateway of the setup", g.as_str()),
            );
            None
        }
        None => only_flexfactor(&setup),
    };
    if wants_ff && ff_id.is_none() && v.flexfactor_gateway.is_none() {
        p.add(
            format!("{field}.flexfactor_gateway"),
            "the setup has no single FlexFactor gateway: name the one to change",
        );
    }
    if let Some(id) = &ff_id {
        for g in &mut setup.gateways {
            if let Gateway::FlexFactor(ff) = g {
                if &ff.id == id {
                    if let Some(on) = v.cascade_all {
                        ff.cascade_all = on;
                    }
                    if let Some(days) = v.expiry_days {
                        ff.expiry_days = days;
                    }
                    if let Some(on) = v.include_chargebacks {
                        ff.include_chargebacks = on;
                    }
                    if let Some(rules) = v.flexfactor_network_rules {
                        ff.network_rules = rules;
                    }
                }
            }
        }
    }
    for (profile, attempts) in &v.recycle_attempts {
        let f = format!("{field}.recycle_attempts.{:?}", profile.as_str());
        match setup.recycle_profiles.iter_mut().find(|r| &r.id == profile) {
            None => p.add(f, "is not a recycle profile of the setup"),
            Some(r) => {
                r.attempts = attempts
                    .iter()
                    .map(|a| RecycleAttempt {
                        wait_days: a.wait_days,
                        flexfactor: a.flexfactor,
                    })
                    .collect();
            }
        }
    }
    for (profile, refs) in &v.recycle_flexfactor {
        let f = format!("{field}.recycle_flexfactor.{:?}", profile.as_str());
        let Some(r) = setup.recycle_profiles.iter_mut().find(|r| &r.id == profile) else {
            p.add(f, "is not a recycle profile of the setup");
            continue;
        };
        let total = r.attempts.len();
        let mut numbers = Vec::new();
        for a in refs {
            match a {
                AttemptRef::Number(n) if (1..=total as u32).contains(n) => {
                    numbers.push(*n as usize)
                }
                AttemptRef::Number(n) => p.add(
                    &f,
                    format!("re-attempt {n} does not exist: the profile has {total}"),
                ),
                AttemptRef::Named(s) if s == "final" && total > 0 => numbers.push(total),
                AttemptRef::Named(s) => p.add(
                    &f,
                    format!("{s:?}: name re-attempts by number or as \"final\""),
                ),
            }
        }
        for (i, a) in r.attempts.iter_mut().enumerate() {
            a.flexfactor = numbers.contains(&(i + 1));
        }
        if !numbers.is_empty() && r.flexfactor_gateway.is_none() {
            r.flexfactor_gateway = ff_id.clone();
        }
    }
    setup
}
