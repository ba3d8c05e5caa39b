//! Gateways: regular processors and the FlexFactor gateway (S1, S2, S7).

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::network::FlexFactorNetworkRules;

use crate::ids::{CascadeProfileId, GatewayId};

/// Default and maximum of `expiry_days` (S2).
pub const DEFAULT_EXPIRY_DAYS: i64 = 21;
/// Smallest accepted `expiry_days` (S2).
pub const MIN_EXPIRY_DAYS: i64 = 1;

/// A gateway of the setup.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Gateway {
    /// A regular payment processor (NMI, Authorize.Net, ...).
    Regular(RegularGateway),
    /// The FlexFactor decline-recovery gateway.
    #[serde(rename = "flexfactor")]
    FlexFactor(FlexFactorGateway),
}

/// A regular processor gateway: one MID.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegularGateway {
    pub id: GatewayId,
    /// The processor type ("nmi", "authorize_net"...): decline mappings can be scoped by it.
    pub processor: String,
    /// The merchant id, for the record.
    #[serde(default)]
    pub mid: Option<String>,
    /// The direct cascade profile tried when this gateway soft-declines a new sale (C1).
    #[serde(default)]
    pub cascade_profile: Option<CascadeProfileId>,
}

/// The FlexFactor gateway and its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlexFactorGateway {
    pub id: GatewayId,
    /// The six credentials of S1.
    #[serde(default)]
    pub credentials: FlexFactorCredentials,
    /// S2: how long FlexFactor may work an asynchronous salvage; 1..=21, default 21.
    #[serde(default = "default_expiry_days")]
    pub expiry_days: i64,
    /// S7/C2: send every soft-declined new sale straight to FlexFactor. Off by default.
    #[serde(default)]
    pub cascade_all: bool,
    /// S7/K1: ingest FlexFactor chargebacks. Off by default.
    #[serde(default)]
    pub include_chargebacks: bool,
    /// N9: how hand-overs to this gateway obey the card-network rules: `never_retry` (the
    /// default: N1 and N3 only), `enforce` (every N rule, and hand-overs count against the card)
    /// or `ignore`.
    #[serde(default)]
    pub network_rules: FlexFactorNetworkRules,
}

fn default_expiry_days() -> i64 {
    DEFAULT_EXPIRY_DAYS
}

/// S1: the six credentials of a FlexFactor gateway. Every one is a secret: `Debug` shows
/// `[REDACTED]`, and nothing in the domain prints them.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlexFactorCredentials {
    #[serde(default = "empty_secret")]
    pub app_key: SecretString,
    #[serde(default = "empty_secret")]
    pub app_secret: SecretString,
    #[serde(default = "empty_secret")]
    pub mid: SecretString,
    #[serde(default = "empty_secret")]
    pub site_id: SecretString,
    /// FlexFactor's Tokenization Key.
    #[serde(default = "empty_secret")]
    pub environment_key: SecretString,
    /// Base64 key of the webhook HMAC (W1).
    #[serde(default = "empty_secret")]
    pub hmac_signing_key: SecretString,
}

fn empty_secret() -> SecretString {
    SecretString::from("")
}

impl Default for FlexFactorCredentials {
    fn default() -> Self {
        FlexFactorCredentials {
            app_key: empty_secret(),
            app_secret: empty_secret(),
            mid: empty_secret(),
            site_id: empty_secret(),
            environment_key: empty_secret(),
            hmac_signing_key: empty_secret(),
        }
    }
}

impl std::fmt::Debug for FlexFactorCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FlexFactorCredentials([REDACTED])")
    }
}

impl FlexFactorCredentials {
    /// The names of the credentials that are missing or empty (S1).
    pub fn missing(&self) -> Vec<&'static str> {
        [
            ("app_key", &self.app_key),
            ("app_secret", &self.app_secret),
            ("mid", &self.mid),
            ("site_id", &self.site_id),
            ("environment_key", &self.environment_key),
            ("hmac_signing_key", &self.hmac_signing_key),
        ]
        .into_iter()
        .filter(|(_, v)| v.expose_secret().trim().is_empty())
        .map(|(k, _)| k)
        .collect()
    }

    /// Sets a credential by its field name; used to apply environment overrides.
    /// Returns false when the name is not one of the six.
    pub fn set(&mut self, name: &str, value: SecretString) -> bool {
        let slot = match name {
            "app_key" => &mut self.app_key,
            "app_secret" => &mut self.app_secret,
            "mid" => &mut self.mid,
            "site_id" => &mut self.site_id,
            "environment_key" => &mut self.environment_key,
            "hmac_signing_key" => &mut self.hmac_signing_key,
            _ => return false,
        };
        *slot = value;
        true
    }
}

impl Gateway {
    pub fn id(&self) -> &GatewayId {
        match self {
            Gateway::Regular(g) => &g.id,
            Gateway::FlexFactor(g) => &g.id,
        }
    }

    pub fn is_flexfactor(&self) -> bool {
        matches!(self, Gateway::FlexFactor(_))
    }

    pub fn as_flexfactor(&self) -> Option<&FlexFactorGateway> {
        match self {
            Gateway::FlexFactor(g) => Some(g),
            Gateway::Regular(_) => None,
        }
    }

    pub fn as_regular(&self) -> Option<&RegularGateway> {
        match self {
            Gateway::Regular(g) => Some(g),
            Gateway::FlexFactor(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S1: secrets never show in Debug output.
    #[test]
    fn s1_credentials_are_redacted_in_debug() {
        let mut c = FlexFactorCredentials::default();
        c.set("app_secret", SecretString::from("top-secret-value"));
        let gw = FlexFactorGateway {
            id: "ff".into(),
            credentials: c,
            expiry_days: 21,
            cascade_all: false,
            include_chargebacks: false,
            network_rules: Default::default(),
        };
        let shown = format!("{gw:?}");
        assert!(!shown.contains("top-secret-value"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    /// S1: all six credentials are required; the missing ones are named.
    #[test]
    fn s1_missing_credentials_are_named() {
        let mut c = FlexFactorCredentials::default();
        assert_eq!(c.missing().len(), 6);
        for name in ["app_key", "app_secret", "mid", "site_id", "environment_key"] {
            assert!(c.set(name, SecretString::from("x")));
        }
        assert_eq!(c.missing(), vec!["hmac_signing_key"]);
        assert!(!c.set("password", SecretString::from("x")));
    }
}
