//! What every handler shares.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Notify;

use cqrs_es::EventEnvelope;
use salvage_domain::clock::Clock;
use salvage_domain::order::Order;
use salvage_domain::ports::FlexFactor;
use salvage_domain::{GatewayId, Setup};

use crate::card_fingerprint::CardFingerprinter;
use crate::engine::intake_queue::IntakeQueue;
use crate::engine::{Engine, EngineError};
use crate::flexfactor::WebhookVerifier;
use crate::metrics::Metrics;
use crate::store::Store;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads and changes: the API, the console, retries.
    Operator,
    /// Reads everything, changes nothing (support staff).
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::ReadOnly => "read-only",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }
}

pub struct AppState {
    pub engine: Arc<Engine>,
    /// Webhook deliveries, committed in groups (see [`IntakeQueue`]).
    pub intake: IntakeQueue,
    pub store: Arc<Store>,
    pub setup: Arc<Setup>,
    pub clock: Arc<dyn Clock>,
    pub api_keys: Vec<SecretString>,
    /// `[test_mode] enabled`: said in every answer's header, `/readyz` and the metrics.
    pub test_mode: bool,
    /// The sandboxes (test mode only).
    pub sandboxes: Option<Arc<crate::service::sandbox::Sandboxes>>,
    /// Keys that read but change nothing.
    pub read_only_keys: Vec<SecretString>,
    /// The console's sessions and what it shows about the deployment.
    pub console: crate::service::console::ConsoleSettings,
    /// The FlexFactor client that tokenizes cards.
    pub tokenizer: Option<Arc<dyn FlexFactor>>,
    /// Fingerprints the card numbers it tokenizes (N8).
    pub fingerprinter: Option<Arc<CardFingerprinter>>,
    /// One verifier per FlexFactor gateway (each has its own HMACSigningKey).
    pub verifiers: Vec<(GatewayId, WebhookVerifier)>,
    pub metrics: Arc<Metrics>,
    /// Wakes the background worker when there is new work.
    pub wake: Arc<Notify>,
}

impl AppState {
    /// Whether `key` is one of the API keys (of either role), compared in constant time.
    pub fn knows_key(&self, key: &str) -> bool {
        self.role_of(key).is_some()
    }

    /// The role of `key`, compared in constant time against every key.
    pub fn role_of(&self, key: &str) -> Option<Role> {
        let matches = |keys: &[SecretString]| {
            let mut found = false;
            for k in keys {
                let eq: bool =
                    subtle::ConstantTimeEq::ct_eq(k.expose_secret().as_bytes(), key.as_bytes())
                        .into();
                found |= eq;
            }
            found
        };
        let operator = matches(&self.api_keys);
        let read_only = matches(&self.read_only_keys);
        if operator {
            Some(Role::Operator)
        } else if read_only {
            Some(Role::ReadOnly)
        } else {
            None
        }
    }

    /// Runs an order's own follow-ups within the request (a cascade answers with its final
    /// status), then wakes the background worker for the rest. Returns the order and its
    /// whole history when they are known without reading them again.
    pub async fn drive_order(
        &self,
        order_id: &salvage_domain::OrderId,
        start: crate::engine::ToDrive,
    ) -> Result<Option<(Order, Vec<EventEnvelope<Order>>)>, EngineError> {
        let r = self
            .engine
            .drive_order_to_rest(order_id, start, std::time::Duration::from_secs(30))
            .await;
        self.wake.notify_one();
        r
    }

    /// Wakes the background worker: there is new work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs every round of work due now (tests and operators; the worker does this anyway).
    pub async fn drive(&self) -> Result<(), EngineError> {
        let r = self.engine.pump().await.map(|_| ());
        self.wake.notify_one();
        r
    }
}
