//! Setup validation: every violation at once, each with its rule ID and the entry's name.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::{Gateway, Setup, DEFAULT_EXPIRY_DAYS, MIN_EXPIRY_DAYS};
use crate::ids::GatewayId;

/// Longest billing interval or trial, in days (ten years).
pub const MAX_PERIOD_DAYS: i64 = 3660;
/// Longest wait before a recycle re-attempt, in days.
pub const MAX_WAIT_DAYS: i64 = 365;

/// One thing wrong with a setup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupViolation {
    /// The rule broken: "S1".."S8", "D2", or "setup" for structure (duplicates, unknown names).
    pub rule: &'static str,
    /// The entry, for example `gateway "flexfactor"`.
    pub entry: String,
    pub message: String,
}

impl fmt::Display for SetupViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.entry, self.message)
    }
}

/// Why a setup could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("the setup is not valid TOML for Salvage: {0}")]
    Parse(String),
    #[error("the setup has {} problem(s):\n{}", .0.len(), render(.0))]
    Invalid(Vec<SetupViolation>),
}

fn render(v: &[SetupViolation]) -> String {
    v.iter()
        .map(|x| format!("  - {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Report(Vec<SetupViolation>);

impl Report {
    fn add(&mut self, rule: &'static str, entry: impl Into<String>, message: impl Into<String>) {
        self.0.push(SetupViolation {
            rule,
            entry: entry.into(),
            message: message.into(),
        });
    }
}

impl Setup {
    /// Checks the whole setup and returns every violation found.
    pub fn validate(&self) -> Result<(), Vec<SetupViolation>> {
        let mut r = Report(Vec::new());
        let gateways: HashMap<&GatewayId, &Gateway> =
            self.gateways.iter().map(|g| (g.id(), g)).collect();
        let is_ff = |id: &GatewayId| gateways.get(id).is_some_and(|g| g.is_flexfactor());
        // N6: every Visa category is 1-4.
        if let Err(e) = self.network_rules.visa_categories.check() {
            r.add("N6", "[network_rules]", e.to_string());
        }

        duplicates(
            &mut r,
            "gateway",
            self.gateways.iter().map(|g| g.id().as_str()),
        );
        duplicates(
            &mut r,
            "campaign",
            self.campaigns.iter().map(|c| c.id.as_str()),
        );
        duplicates(
            &mut r,
            "cascade profile",
            self.cascade_profiles.iter().map(|c| c.id.as_str()),
        );
        duplicates(
            &mut r,
            "gateway profile",
            self.gateway_profiles.iter().map(|c| c.id.as_str()),
        );
        duplicates(
            &mut r,
            "recycle profile",
            self.recycle_profiles.iter().map(|c| c.id.as_str()),
        );
        duplicates(
            &mut r,
            "decline mapping",
            self.decline_mappings.iter().map(|c| c.name.as_str()),
        );

        let mut cascade_all = 0;
        for g in &self.gateways {
            match g {
                Gateway::FlexFactor(ff) => {
                    let entry = format!("gateway {:?}", ff.id.as_str());
                    let missing = ff.credentials.missing();
                    if !missing.is_empty() {
                        r.add(
                            "S1",
                            &entry,
                            format!(
                                "FlexFactor needs all six credentials; missing or empty: {}",
                                missing.join(", ")
                            ),
                        );
                    }
                    if !(MIN_EXPIRY_DAYS..=DEFAULT_EXPIRY_DAYS).contains(&ff.expiry_days) {
                        r.add(
                            "S2",
                            &entry,
                            format!(
                                "expiry_days = {} is outside {MIN_EXPIRY_DAYS}..={DEFAULT_EXPIRY_DAYS}",
                                ff.expiry_days
                            ),
                        );
                    }
                    if ff.cascade_all {
                        cascade_all += 1;
                    }
                }
                Gateway::Regular(rg) => {
                    if let Some(cp) = &rg.cascade_profile {
                        if self.cascade_profile(cp).is_none() {
                            r.add(
                                "S5",
                                format!("gateway {:?}", rg.id.as_str()),
                                format!("direct cascade profile {:?} does not exist", cp.as_str()),
                            );
                        }
                    }
                }
            }
        }
        if cascade_all > 1 {
            r.add(
                "S7",
                "gateways",
                "cascade_all is on for more than one FlexFactor gateway: a soft decline could go to either",
            );
        }

        for c in &self.campaigns {
            let entry = format!("campaign {:?}", c.id.as_str());
            if let Some(g) = &c.gateway {
                check_ref(&mut r, &gateways, &entry, "gateway", g);
                if is_ff(g) {
                    r.add(
                        "S3",
                        &entry,
                        "FlexFactor is for decline salvage only: it cannot be a campaign's gateway",
                    );
                }
            }
            if let Some(p) = &c.gateway_profile {
                if self.gateway_profile(p).is_none() {
                    r.add(
                        "setup",
                        &entry,
                        format!("gateway profile {:?} does not exist", p.as_str()),
                    );
                }
            }
            duplicates(
                &mut r,
                &format!("{entry} product"),
                c.products.iter().map(|p| p.id.as_str()),
            );
            for p in &c.products {
                let pentry = format!("campaign {:?} product {:?}", c.id.as_str(), p.id.as_str());
                if p.price_minor < 0 {
                    r.add("setup", &pentry, "price_minor is negative");
                }
                if let Some(g) = &p.gateway {
                    check_ref(&mut r, &gateways, &pentry, "gateway", g);
                    if is_ff(g) {
                        r.add("S3", &pentry, "FlexFactor is for decline salvage only: it cannot be assigned to a campaign product");
                    }
                }
                if let Some(rec) = p.recurring {
                    if !(1..=MAX_PERIOD_DAYS).contains(&rec.interval_days) {
                        r.add(
                            "setup",
                            &pentry,
                            format!("recurring.interval_days must be 1 to {MAX_PERIOD_DAYS}"),
                        );
                    }
                    if rec
                        .trial_days
                        .is_some_and(|d| !(1..=MAX_PERIOD_DAYS).contains(&d))
                    {
                        r.add(
                            "setup",
                            &pentry,
                            format!("recurring.trial_days must be 1 to {MAX_PERIOD_DAYS} when set"),
                        );
                    }
                }
            }
        }

        for cp in &self.cascade_profiles {
            let entry = format!("cascade profile {:?}", cp.id.as_str());
            if cp.gateways.is_empty() {
                r.add("S5", &entry, "a cascade profile needs at least one gateway");
            }
            for g in &cp.gateways {
                check_ref(&mut r, &gateways, &entry, "gateway", g);
            }
        }

        for gp in &self.gateway_profiles {
            let entry = format!("gateway profile {:?}", gp.id.as_str());
            if gp.members.is_empty() {
                r.add(
                    "setup",
                    &entry,
                    "an ATRI gateway profile needs at least one member",
                );
            }
            for g in &gp.members {
                check_ref(&mut r, &gateways, &entry, "member", g);
                if is_ff(g) {
                    r.add("S4", &entry, format!("FlexFactor gateway {:?} may not be a member of an ATRI gateway profile", g.as_str()));
                }
            }
            if let Some(cp) = &gp.cascade_profile {
                if self.cascade_profile(cp).is_none() {
                    r.add(
                        "S5",
                        &entry,
                        format!("cascade profile {:?} does not exist", cp.as_str()),
                    );
                }
            }
        }

        let mut recycle_owner: HashMap<&GatewayId, &str> = HashMap::new();
        for rp in &self.recycle_profiles {
            let entry = format!("recycle profile {:?}", rp.id.as_str());
            for g in &rp.gateways {
                check_ref(&mut r, &gateways, &entry, "gateway", g);
                if is_ff(g) {
                    r.add("S8", &entry, format!("FlexFactor gateway {:?} cannot be a billing gateway, so it cannot be in a recycle profile's gateways", g.as_str()));
                }
                if let Some(other) = recycle_owner.insert(g, rp.id.as_str()) {
                    r.add("setup", &entry, format!("gateway {:?} is already in recycle profile {:?}; a gateway can be in only one", g.as_str(), other));
                }
            }
            let n = rp.attempts.len();
            for (i, a) in rp.attempts.iter().enumerate() {
                let number = i + 1;
                if !(0..=MAX_WAIT_DAYS).contains(&a.wait_days) {
                    r.add(
                        "Y1",
                        &entry,
                        format!("re-attempt {number}: wait_days must be 0 to {MAX_WAIT_DAYS}"),
                    );
                }
                if a.flexfactor && !(4..=9).contains(&number) && number != n {
                    r.add("S6", &entry, format!("re-attempt {number} is assigned to FlexFactor; FlexFactor may only take re-attempts 4-6, 7-9 or the final attempt"));
                }
            }
            let wants_ff = rp.attempts.iter().any(|a| a.flexfactor);
            match &rp.flexfactor_gateway {
                Some(g) => {
                    check_ref(&mut r, &gateways, &entry, "flexfactor_gateway", g);
                    if gateways.contains_key(g) && !is_ff(g) {
                        r.add(
                            "S6",
                            &entry,
                            format!(
                                "flexfactor_gateway {:?} is not a FlexFactor gateway",
                                g.as_str()
                            ),
                        );
                    }
                }
                None if wants_ff => {
                    r.add(
                        "S6",
                        &entry,
                        "re-attempts are assigned to FlexFactor but flexfactor_gateway is not set",
                    );
                }
                None => {}
            }
        }

        for m in &self.decline_mappings {
            let entry = format!("decline mapping {:?}", m.name);
            match (&m.gateway, &m.gateway_type) {
                (Some(_), Some(_)) | (None, None) => r.add(
                    "D2",
                    &entry,
                    "set exactly one scope: gateway_type (all gateways of a processor) or gateway (one MID)",
                ),
                (Some(g), None) => check_ref(&mut r, &gateways, &entry, "gateway", g),
                (None, Some(_)) => {}
            }
            if m.message_contains.trim().is_empty() {
                r.add(
                    "D2",
                    &entry,
                    "message_contains is empty: it would match nothing",
                );
            }
        }

        if r.0.is_empty() {
            Ok(())
        } else {
            Err(r.0)
        }
    }
}

fn duplicates<'a>(r: &mut Report, what: &str, ids: impl Iterator<Item = &'a str>) {
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id) {
            r.add(
                "setup",
                format!("{what} {id:?}"),
                "is defined more than once",
            );
        }
    }
}

fn check_ref(
    r: &mut Report,
    gateways: &HashMap<&GatewayId, &Gateway>,
    entry: &str,
    field: &str,
    id: &GatewayId,
) {
    if !gateways.contains_key(id) {
        r.add(
            "setup",
            entry,
            format!("{field} {:?} is not a gateway of this setup", id.as_str()),
        );
    }
}
