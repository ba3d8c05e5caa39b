//! The population: who each customer is, when they buy, what, and where the sale is routed.
//! A customer's profile depends only on the seed and the customer's number.

use chrono::{DateTime, Duration, Utc};
use rand::RngExt;
use salvage_domain::customer::{CardToken, Customer};
use salvage_domain::network::CardNetwork;
use salvage_domain::{GatewayId, GatewayProfileId};

use crate::rng::{stream, Site};
use crate::scenario::Scenario;

/// One customer of the population.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerProfile {
    pub index: u64,
    /// When the new sale is placed.
    pub arrival: DateTime<Utc>,
    /// The product bought: an index into [`Scenario::products`].
    pub product: usize,
    pub ip_address: Option<String>,
    /// The gateway of the first attempt.
    pub gateway: GatewayId,
    /// The ATRI gateway profile the sale went through, if any.
    pub gateway_profile: Option<GatewayProfileId>,
    /// The network of the customer's card (its BIN), whose retry rules apply (N1-N5).
    pub network: CardNetwork,
}

/// A BIN of each network (test card ranges): the network rules read only the network.
fn bin(network: CardNetwork) -> &'static str {
    match network {
        CardNetwork::Visa => "411111",
        CardNetwork::Mastercard => "555555",
        CardNetwork::Other => "378282",
    }
}

impl CustomerProfile {
    /// The customer as the CRM reports it (no personal data is simulated).
    pub fn customer(&self) -> Customer {
        Customer::default()
    }

    /// The card, as FlexFactor's tokenization leaves it (F2): one per customer, so its
    /// declines and reattempts accumulate across the customer's orders and cycles (N8); its BIN
    /// gives its network. No rule reads the last four or the holder, and the domain copies an
    /// order's card into every event and decision: empty strings cost no allocation in those
    /// millions of copies.
    pub fn card(&self) -> CardToken {
        CardToken {
            token: crate::names::numbered("sim-", self.index),
            bin: bin(self.network).to_string(),
            last4: String::new(),
            exp_month: 12,
            exp_year: 2030,
            holder: String::new(),
            fingerprint: None,
        }
    }
}

/// Draws customer profiles.
#[derive(Debug, Clone)]
pub struct Population {
    cumulative: Vec<u64>,
    total: u64,
    /// Cumulative weights of Visa, Mastercard, other networks.
    networks: [u64; 3],
}

impl Population {
    pub fn new(scenario: &Scenario) -> Population {
        let mut total = 0u64;
        let cumulative = scenario
            .products
            .iter()
            .map(|p| {
                total += u64::from(p.weight);
                total
            })
            .collect();
        let n = &scenario.spec.population.card_networks;
        let visa = u64::from(n.visa);
        let mastercard = visa + u64::from(n.mastercard);
        let networks = [visa, mastercard, mastercard + u64::from(n.other)];
        Population {
            cumulative,
            total,
            networks,
        }
    }

    /// Customer number `index` of the scenario, with the scenario's seed.
    pub fn customer(&self, scenario: &Scenario, index: u64) -> CustomerProfile {
        self.customer_of(scenario, scenario.spec.seed, index)
    }

    /// Customer number `index` of the traffic of `seed`.
    pub fn customer_of(&self, scenario: &Scenario, seed: u64, index: u64) -> CustomerProfile {
        let mut rng = stream(seed, index, Site::Profile);
        // Sales arrive within the horizon, whatever the window says.
        let window = scenario
            .spec
            .population
            .arrival_days
            .min(scenario.spec.horizon_days);
        let arrival_seconds = i64::from(window) * 86_400;
        let offset = if arrival_seconds > 0 {
            rng.random_range(0..arrival_seconds)
        } else {
            0
        };
        let pick = rng.random_range(0..self.total.max(1));
        let product = self.cumulative.partition_point(|c| *c <= pick);
        let has_ip = rng.random_bool(scenario.spec.population.ip_address_share);
        let member: u64 = rng.random();
        // Drawn last, so that the draws above are those of scenarios written before it.
        let network_pick = rng.random_range(0..self.networks[2].max(1));
        let network = match network_pick {
            p if p < self.networks[0] => CardNetwork::Visa,
            p if p < self.networks[1] => CardNetwork::Mastercard,
            _ => CardNetwork::Other,
        };
        let resolved = &scenario.products[product.min(scenario.products.len() - 1)];
        let (gateway, gateway_profile) = match (&resolved.gateway, &resolved.gateway_profile) {
            (Some(g), _) => (g.clone(), None),
            (None, Some((profile, members))) => (
                members[(member % members.len() as u64) as usize].clone(),
                Some(profile.clone()),
            ),
            // The scenario check refuses products that cannot be routed.
            (None, None) => (GatewayId::new("unrouted"), None),
        };
        CustomerProfile {
            index,
            arrival: scenario.start + Duration::seconds(offset),
            product,
            ip_address: has_ip.then(|| format!("198.51.100.{}", 1 + index % 254)),
            gateway,
            gateway_profile,
            network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::ScenarioOverrides;
    use std::path::Path;

    #[test]
    fn profiles_depend_only_on_seed_and_index() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/cascade_all.toml");
        let s = Scenario::load(&path, ScenarioOverrides::default()).unwrap();
        let p = Population::new(&s);
        let a: Vec<_> = (0..200).map(|i| p.customer(&s, i)).collect();
        let b: Vec<_> = (0..200).rev().map(|i| p.customer(&s, i)).collect();
        assert!(a.iter().eq(b.iter().rev()));
        assert!(a
            .iter()
            .all(|c| c.arrival >= s.start && c.arrival < s.end()));
        let without_ip = a.iter().filter(|c| c.ip_address.is_none()).count();
        assert!(without_ip > 10 && without_ip < 60, "{without_ip}");
        // ATRI sales go to a member of the profile, with the profile named.
        assert!(a.iter().any(|c| c.gateway_profile.is_some()
            && ["nmi-main", "authnet-1"].contains(&c.gateway.as_str())));
        assert!(a
            .iter()
            .any(|c| c.gateway_profile.is_none() && c.gateway.as_str() == "nmi-main"));
    }
}
