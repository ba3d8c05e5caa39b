//! Charges on regular gateways: the CRM's charge hook over HTTP (signed, with a timeout), and
//! the sandbox processor used by the embedded default.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Deserialize;

use salvage_domain::clock::Clock;
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::ports::{Charge, ChargeError, ChargeRequest, GatewayAnswer};
use salvage_domain::{DeclineFacts, DeclineType};

use super::signing;

/// The CRM's charge endpoint. It receives the `ChargeRequest` as JSON (with its
/// `idempotency_key`: a repeated call with the same key must not charge again) and answers
/// `{"result": "approved"|"declined"|"pending", "transaction_id", "response_code",
/// "response_message", "decline_type", "visa_category", "mastercard_advice_code"}`.
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

#[derive(Deserialize)]
struct HookAnswer {
    result: String,
    #[serde(default)]
    transaction_id: Option<String>,
    #[serde(default)]
    response_code: Option<String>,
    #[serde(default)]
    response_message: Option<String>,
    #[serde(default)]
    decline_type: Option<String>,
    #[serde(default)]
    visa_category: Option<u8>,
    #[serde(default)]
    mastercard_advice_code: Option<String>,
}

#[async_trait]
impl Charge for HttpChargeHook {
    async fn charge(&self, request: &ChargeRequest) -> Result<GatewayAnswer, ChargeError> {
        let body = serde_json::to_vec(request).map_err(|e| ChargeError::NotSent(e.to_string()))?;
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
        let answer: HookAnswer = match response.json().await {
            Ok(a) => a,
            Err(e) => {
                return Ok(GatewayAnswer::Unknown {
                    detail: format!("charge hook answer unreadable: {}", e.without_url()),
                })
            }
        };
        Ok(match answer.result.as_str() {
            "approved" => GatewayAnswer::Approved {
                transaction_id: answer.transaction_id,
            },
            "declined" => GatewayAnswer::Declined(DeclineFacts {
                gateway: request.gateway.clone(),
                response_code: answer.response_code.unwrap_or_default(),
                response_message: answer.response_message.unwrap_or_default(),
                processor_verdict: if answer.decline_type.as_deref() == Some("hard") {
                    DeclineType::Hard
                } else {
                    DeclineType::Soft
                },
                visa_category: answer.visa_category.map(VisaCategory),
                mastercard_advice_code: answer.mastercard_advice_code.map(MastercardAdviceCode),
            }),
            "pending" => GatewayAnswer::Pending {
                reference: answer.transaction_id,
            },
            other => GatewayAnswer::Unknown {
                detail: format!("charge hook result {other:?}"),
            },
        })
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
