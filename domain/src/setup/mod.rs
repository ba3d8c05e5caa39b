//! The setup: gateways, campaigns, cascade profiles, ATRI gateway profiles, recycle profiles and
//! decline mappings, loaded from TOML and validated as a whole (S1-S8).

mod campaign;
mod cascade_profile;
mod gateway;
mod gateway_profile;
mod recycle_profile;
mod validation;

pub use campaign::{Campaign, Product, Recurring};
pub use cascade_profile::CascadeProfile;
pub use gateway::{
    FlexFactorCredentials, FlexFactorGateway, Gateway, RegularGateway, DEFAULT_EXPIRY_DAYS,
    MIN_EXPIRY_DAYS,
};
pub use gateway_profile::GatewayProfile;
pub use recycle_profile::{RecycleAttempt, RecycleProfile};
pub use validation::{SetupError, SetupViolation};

use serde::Deserialize;

use crate::decline::{DeclineFacts, EffectiveDecline};
use crate::decline_mapping::{effective_decline, DeclineMappingRule};
use crate::ids::{CampaignId, CascadeProfileId, GatewayId, GatewayProfileId};
use crate::network::{FlexFactorNetworkRules, GatewayFacts, NetworkRulesConfig};
use crate::order_type::OrderType;

/// The whole setup. Build it with [`Setup::from_toml_str`] (which validates) or deserialize it
/// and call [`Setup::validate`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    #[serde(default)]
    pub gateways: Vec<Gateway>,
    #[serde(default)]
    pub campaigns: Vec<Campaign>,
    #[serde(default)]
    pub cascade_profiles: Vec<CascadeProfile>,
    #[serde(default)]
    pub gateway_profiles: Vec<GatewayProfile>,
    #[serde(default)]
    pub recycle_profiles: Vec<RecycleProfile>,
    #[serde(default)]
    pub decline_mappings: Vec<DeclineMappingRule>,
    /// N1-N9: the card-network retry rules (on unless `enabled = false`).
    #[serde(default)]
    pub network_rules: NetworkRulesConfig,
}

impl Setup {
    /// Parses and validates a setup. Every violation is reported, not only the first.
    pub fn from_toml_str(text: &str) -> Result<Setup, SetupError> {
        let setup: Setup = toml::from_str(text).map_err(|e| SetupError::Parse(e.to_string()))?;
        setup.validate().map_err(SetupError::Invalid)?;
        Ok(setup)
    }

    pub fn gateway(&self, id: &GatewayId) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.id() == id)
    }

    pub fn flexfactor(&self, id: &GatewayId) -> Option<&FlexFactorGateway> {
        self.gateway(id).and_then(Gateway::as_flexfactor)
    }

    pub fn flexfactor_gateways(&self) -> impl Iterator<Item = &FlexFactorGateway> {
        self.gateways.iter().filter_map(Gateway::as_flexfactor)
    }

    /// The FlexFactor gateway with `cascade_all` on, if there is one (C2).
    pub fn cascade_all_gateway(&self) -> Option<&FlexFactorGateway> {
        self.flexfactor_gateways().find(|g| g.cascade_all)
    }

    pub fn is_flexfactor(&self, id: &GatewayId) -> bool {
        self.flexfactor(id).is_some()
    }

    pub fn campaign(&self, id: &CampaignId) -> Option<&Campaign> {
        self.campaigns.iter().find(|c| &c.id == id)
    }

    pub fn cascade_profile(&self, id: &CascadeProfileId) -> Option<&CascadeProfile> {
        self.cascade_profiles.iter().find(|c| &c.id == id)
    }

    pub fn gateway_profile(&self, id: &GatewayProfileId) -> Option<&GatewayProfile> {
        self.gateway_profiles.iter().find(|p| &p.id == id)
    }

    /// The recycle profile applied to a billing gateway (a gateway is in at most one).
    pub fn recycle_profile_for(&self, gateway: &GatewayId) -> Option<&RecycleProfile> {
        self.recycle_profiles
            .iter()
            .find(|p| p.gateways.iter().any(|g| g == gateway))
    }

    /// D2 applied with this setup's rules.
    pub fn effective_decline(
        &self,
        facts: &DeclineFacts,
        order_type: OrderType,
    ) -> EffectiveDecline {
        let processor = self
            .gateway(&facts.gateway)
            .and_then(Gateway::as_regular)
            .map(|g| g.processor.as_str());
        effective_decline(&self.decline_mappings, facts, processor, order_type)
    }

    /// N9: how hand-overs to FlexFactor gateway `id` obey the network rules.
    pub fn flexfactor_network_rules(&self, id: &GatewayId) -> FlexFactorNetworkRules {
        self.flexfactor(id)
            .map(|g| g.network_rules)
            .unwrap_or_default()
    }

    /// What is valid but unwise, for `check-config` and the service's start to say.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.network_rules.enabled {
            out.push(
                "[network_rules] enabled = false: the card-network retry rules (N1-N9) are off; \
                 Salvage will reattempt cards that Visa and Mastercard fine for every reattempt"
                    .to_string(),
            );
        }
        out
    }

    /// A one-screen summary for people.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let regular = self.gateways.iter().filter(|g| !g.is_flexfactor()).count();
        out.push_str(&format!(
            "gateways: {} ({} regular, {} FlexFactor)\n",
            self.gateways.len(),
            regular,
            self.gateways.len() - regular
        ));
        for ff in self.flexfactor_gateways() {
            out.push_str(&format!(
                "  FlexFactor {}: expiry_days={} cascade_all={} include_chargebacks={}\n",
                ff.id, ff.expiry_days, ff.cascade_all, ff.include_chargebacks
            ));
        }
        out.push_str(&format!(
            "campaigns: {} ({} products, {} recurring)\n",
            self.campaigns.len(),
            self.campaigns
                .iter()
                .map(|c| c.products.len())
                .sum::<usize>(),
            self.campaigns
                .iter()
                .flat_map(|c| &c.products)
                .filter(|p| p.recurring.is_some())
                .count()
        ));
        out.push_str(&format!(
            "cascade profiles: {}\n",
            self.cascade_profiles.len()
        ));
        out.push_str(&format!(
            "ATRI gateway profiles: {}\n",
            self.gateway_profiles.len()
        ));
        out.push_str(&format!(
            "recycle profiles: {}\n",
            self.recycle_profiles.len()
        ));
        for rp in &self.recycle_profiles {
            let ff: Vec<String> = rp
                .attempts
                .iter()
                .enumerate()
                .filter(|(_, a)| a.flexfactor)
                .map(|(i, _)| (i + 1).to_string())
                .collect();
            out.push_str(&format!(
                "  {}: {} re-attempts, FlexFactor on {}\n",
                rp.id,
                rp.attempts.len(),
                if ff.is_empty() {
                    "none".to_string()
                } else {
                    ff.join(",")
                }
            ));
        }
        out.push_str(&format!(
            "decline mappings: {}\n",
            self.decline_mappings.len()
        ));
        out
    }
}

impl GatewayFacts for Setup {
    fn processor(&self, gateway: &GatewayId) -> Option<&str> {
        self.gateway(gateway)
            .and_then(Gateway::as_regular)
            .map(|g| g.processor.as_str())
    }

    fn hand_overs_count(&self, gateway: &GatewayId) -> bool {
        self.flexfactor_network_rules(gateway) == FlexFactorNetworkRules::Enforce
    }
}
