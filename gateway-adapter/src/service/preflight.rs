//! What `salvage serve` builds from its configuration before it binds: the FlexFactor clients
//! (base URL parsed, credentials present), the webhook verifiers (each HMACSigningKey decoded),
//! the charge hook and the notifier (URLs parsed). `salvage check-config` runs exactly this,
//! so no configuration passes one and fails the other: there is one validation path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use salvage_domain::clock::Clock;
use salvage_domain::ports::FlexFactor;
use salvage_domain::setup::SetupViolation;
use salvage_domain::GatewayId;

use super::config::{ConfigError, ServiceConfig};
use crate::crm::{HttpChargeHook, Notifier};
use crate::flexfactor::{
    FlexFactorClient, FlexFactorConfig, WebhookVerifier, WebhookVerifierConfig,
};

/// The parts `serve` runs with.
pub struct Parts {
    pub clients: BTreeMap<GatewayId, Arc<dyn FlexFactor>>,
    pub verifiers: Vec<(GatewayId, WebhookVerifier)>,
    pub charge_hook: Option<HttpChargeHook>,
    pub notifier: Option<Notifier>,
}

/// An http(s) URL, as every outbound client needs it.
fn http_url(url: &str) -> Result<(), String> {
    match reqwest::Url::parse(url.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(_) => Err("url must be an http(s) URL with a host".to_string()),
        Err(e) => Err(format!("url is not a URL: {e}")),
    }
}

/// Builds the parts of `config`; every problem is reported, each naming its entry.
pub fn build(config: &ServiceConfig, clock: Arc<dyn Clock>) -> Result<Parts, ConfigError> {
    let mut problems = Vec::new();
    let mut problem = |rule: &'static str, entry: String, message: String| {
        problems.push(SetupViolation {
            rule,
            entry,
            message,
        })
    };
    let setup = &config.setup;
    let mut clients: BTreeMap<GatewayId, Arc<dyn FlexFactor>> = BTreeMap::new();
    let mut verifiers = Vec::new();
    for ff in setup.flexfactor_gateways() {
        let entry = format!("gateway {:?}", ff.id.as_str());
        let mut ff_config = FlexFactorConfig::new(config.flexfactor.base_url.clone());
        ff_config.request_timeout = Duration::from_millis(config.flexfactor.request_timeout_ms);
        ff_config.dynamic_descriptor = config.flexfactor.dynamic_descriptor.clone();
        for g in setup.gateways.iter().filter_map(|g| g.as_regular()) {
            ff_config
                .response_code_sources
                .insert(g.id.to_string(), g.processor.clone());
        }
        match FlexFactorClient::new(ff_config, ff.credentials.clone(), clock.clone()) {
            Ok(client) => {
                clients.insert(ff.id.clone(), Arc::new(client));
            }
            Err(e) => problem("S1", entry.clone(), e.to_string()),
        }
        match WebhookVerifier::from_credentials(
            &ff.credentials,
            WebhookVerifierConfig {
                date_tolerance: chrono::Duration::seconds(
                    i64::try_from(config.flexfactor.webhook_tolerance_seconds).unwrap_or(i64::MAX),
                ),
                max_body_bytes: config.service.request_body_limit,
                require_body_signature: false,
            },
            clock.clone(),
        ) {
            Ok(v) => verifiers.push((ff.id.clone(), v)),
            Err(e) => problem("S1", entry, format!("hmac_signing_key: {e}")),
        }
    }
    let charge_hook = match &config.charge_hook {
        Some(h) => {
            if let Err(m) = http_url(&h.url) {
                problem("config", "[charge_hook]".into(), m);
            }
            match HttpChargeHook::new(
                h.url.clone(),
                h.secret.clone(),
                Duration::from_millis(h.timeout_ms),
                clock.clone(),
            ) {
                Ok(hook) => Some(hook),
                Err(e) => {
                    problem("config", "[charge_hook]".into(), e.to_string());
                    None
                }
            }
        }
        None => None,
    };
    let notifier = match &config.notifications {
        Some(n) => {
            if let Err(m) = http_url(&n.url) {
                problem("config", "[notifications]".into(), m);
            }
            match Notifier::new(
                n.url.clone(),
                n.secret.clone(),
                Duration::from_millis(n.timeout_ms),
                chrono::Duration::hours(i64::try_from(n.retry_for_hours).unwrap_or(i64::MAX)),
            ) {
                Ok(n) => Some(n),
                Err(e) => {
                    problem("config", "[notifications]".into(), e.to_string());
                    None
                }
            }
        }
        None => None,
    };
    if problems.is_empty() {
        Ok(Parts {
            clients,
            verifiers,
            charge_hook,
            notifier,
        })
    } else {
        Err(ConfigError::Invalid {
            file: config.source.display().to_string(),
            problems,
        })
    }
}

/// `check-config` and `serve --config`'s one path: load the file as `serve` does (with the
/// environment) and build its parts.
pub fn check_file(
    path: &Path,
    env: super::config::Env<'_>,
    clock: Arc<dyn Clock>,
) -> Result<(ServiceConfig, Parts), ConfigError> {
    let config = ServiceConfig::load(path, env)?;
    let parts = build(&config, clock)?;
    Ok((config, parts))
}
