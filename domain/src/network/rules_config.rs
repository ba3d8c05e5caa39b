//! The setup's `[network_rules]` table and the FlexFactor gateway's `network_rules` option.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::code_table::VisaCategoryTables;

/// `[network_rules]`: on unless `enabled = false` (which `check-config` warns about), with the
/// setup's Visa category tables laid over the shipped ones (N6).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRulesConfig {
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Per-processor raw response code → Visa category; `default` for every processor.
    #[serde(default)]
    pub visa_categories: VisaCategoryTables,
    #[serde(skip)]
    effective: OnceLock<VisaCategoryTables>,
}

fn enabled_by_default() -> bool {
    true
}

impl Default for NetworkRulesConfig {
    fn default() -> Self {
        NetworkRulesConfig {
            enabled: true,
            visa_categories: VisaCategoryTables::default(),
            effective: OnceLock::new(),
        }
    }
}

impl NetworkRulesConfig {
    /// The tables the rules use: the shipped ones with the setup's laid over them.
    pub fn tables(&self) -> &VisaCategoryTables {
        self.effective
            .get_or_init(|| VisaCategoryTables::shipped().overlaid_with(&self.visa_categories))
    }

    /// The guard on, with the setup's `tables` over the shipped ones.
    pub fn with_tables(visa_categories: VisaCategoryTables) -> NetworkRulesConfig {
        NetworkRulesConfig {
            visa_categories,
            ..NetworkRulesConfig::default()
        }
    }

    /// The guard switched off (only by an explicit `enabled = false`).
    pub fn disabled() -> NetworkRulesConfig {
        NetworkRulesConfig {
            enabled: false,
            ..NetworkRulesConfig::default()
        }
    }
}

/// N9: how hand-overs to a FlexFactor gateway obey the network rules. Whether FlexFactor's own
/// retries count against a card is not public, so by default a hand-over obeys only the rules
/// that forbid any reattempt (N1, N3).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlexFactorNetworkRules {
    /// The default: N1 and N3 (never-retry advice) stop a hand-over; hand-overs are not
    /// counted against the card's limits.
    #[default]
    NeverRetry,
    /// FlexFactor's retries count: hand-overs obey every N rule and count like any attempt.
    Enforce,
    /// FlexFactor has said its retries are its own: no N rule applies to a hand-over.
    Ignore,
}

impl FlexFactorNetworkRules {
    pub fn as_str(self) -> &'static str {
        match self {
            FlexFactorNetworkRules::NeverRetry => "never_retry",
            FlexFactorNetworkRules::Enforce => "enforce",
            FlexFactorNetworkRules::Ignore => "ignore",
        }
    }
}
