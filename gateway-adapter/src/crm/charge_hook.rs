//! Charges on regular gateways: the CRM's charge hook over HTTP (signed, with a timeout), and
//! the sandbox processor used by the embedded default.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use salvage_domain::clock::Clock;
use salvage_domain::ports::{Charge, ChargeError, ChargeRequest, GatewayAnswer};
use salvage_domain::{DeclineFacts, DeclineType};

use super::signing;
use super::wire::{ChargeHookAnswer, ChargeHookRequest};

/// The CRM's charge endpoint. It receives a [`ChargeHookRequest`] as JSON (with its
/// `idempotency_key`: a repeated call with the same key must not charge again) and answers a
/// [`ChargeHookAnswer`]; see `docs/integration.md`.
pub struct HttpChargeHook {
    client: reqwest::Client,
    url: String,
    secret: SecretString,
    clock: std::sync::Arc<dyn Clock>,
}

impl HttpChargeHook {
    pub fn new(
        url: String,
        secret: SecretString,
        timeout: Duration,
        clock: std::sync::Arc<dyn Clock>,
    ) -> Result<Self, ChargeError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ChargeError::NotSent(e.to_string()))?;
        Ok(HttpChargeHook {
            client,
            url,
            secret,
            clock,
        })
    }
}

#[async_trait]
impl Charge for HttpChargeHook {
    async fn charge(&self, request: &ChargeRequest) -> Result<GatewayAnswer, ChargeError> {
        let body = serde_json::to_vec(&ChargeHookRequest::from(request))
            .map_err(|e| ChargeError::NotSent(e.to_string()))?;
        let ts = self.clock.now().timestamp();
        let sent = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(signing::TIMESTAMP_HEADER, ts.to_string())
            .header(
                signing::SIGNATURE_HEADER,
                signing::sign(&self.secret, ts, &body),
            )
            .header("idempotency-key", request.idempotency_key.as_str())
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(ChargeError::NotSent(e.without_url().to_string()))
            }
            Err(e) => {
                return Ok(GatewayAnswer::Unknown {
                    detail: format!("charge hook: {}", e.without_url()),
                })
            }
        };
        if !response.status().is_success() {
            return Ok(GatewayAnswer::Unknown {
                detail: format!("charge hook answered {}", response.status()),
            });
        }
        let answer: ChargeHookAnswer = match response.json().await {
            Ok(a) => a,
            Err(e) => {
                return Ok(GatewayAnswer::Unknown {
                    detail: format!("charge hook answer unreadable: {}", e.without_url()),
                })
            }
        };
        Ok(answer.into_answer(&request.gateway))
    }
}

/// The sandbox processor of the embedded default: no CRM to call, so regular gateways answer
/// by amount. Minor units ending in `01`: soft decline ("Issuer unavailable"); in `05`: hard
/// decline ("Pick up card"); anything else: approved. Documented in docs/configuration.md.
pub struct SandboxProcessor;

#[async_trait]
impl Charge for SandboxProcessor {
    async fn charge(&self, request: &ChargeRequest) -> Result<GatewayAnswer, ChargeError> {
        let decline = |code: &str, message: &str, t: DeclineType| {
            GatewayAnswer::Declined(DeclineFacts {
                gateway: request.gateway.clone(),
                response_code: code.into(),
                response_message: message.into(),
                processor_verdict: t,
                visa_category: None,
                mastercard_advice_code: None,
            })
        };
        Ok(match request.amount.amount_minor % 100 {
            1 => decline("91", "Issuer unavailable", DeclineType::Soft),
            5 => decline("04", "Pick up card", DeclineType::Hard),
            _ => GatewayAnswer::Approved {
                transaction_id: Some(format!("sandbox-{}", request.idempotency_key)),
            },
        })
    }
}
