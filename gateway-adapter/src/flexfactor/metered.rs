//! Every FlexFactor call counted and timed (`salvage_flexfactor_calls_total{operation,outcome}`,
//! `salvage_flexfactor_call_duration_seconds{operation}`): a decorator over the port, so the
//! client keeps no metrics of its own and every caller (effects, tokenization) is measured alike.
//! Latency is wall time (`Instant`), as the HTTP latency is: it measures the network, not the
//! business clock.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use salvage_domain::customer::{CardDetails, CardToken};
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::money::Money;
use salvage_domain::ports::{
    EvaluateAnswer, FlexFactor, FlexFactorError, FlexFactorOrderStatus, RefundAnswer,
    SalvageRequest,
};

use crate::metrics::Metrics;

/// A FlexFactor port whose calls are measured.
pub struct Metered {
    inner: Arc<dyn FlexFactor>,
    metrics: Arc<Metrics>,
}

impl Metered {
    pub fn new(inner: Arc<dyn FlexFactor>, metrics: Arc<Metrics>) -> Self {
        Metered { inner, metrics }
    }

    fn record<T>(&self, operation: &str, started: Instant, r: &Result<T, FlexFactorError>) {
        self.metrics
            .flexfactor_call(operation, outcome(r), started.elapsed().as_secs_f64());
    }
}

/// `ok`, or the kind of the error.
fn outcome<T>(r: &Result<T, FlexFactorError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(FlexFactorError::Unauthorized) => "unauthorized",
        Err(FlexFactorError::Invalid(_)) => "invalid",
        Err(FlexFactorError::IdempotencyConflict) => "idempotency_conflict",
        Err(FlexFactorError::Unavailable(_)) => "unavailable",
        Err(FlexFactorError::OutcomeUnknown(_)) => "outcome_unknown",
        Err(FlexFactorError::Protocol(_)) => "protocol",
        Err(FlexFactorError::NotFound) => "not_found",
    }
}

#[async_trait]
impl FlexFactor for Metered {
    async fn tokenize(&self, card: &CardDetails) -> Result<CardToken, FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.tokenize(card).await;
        self.record("tokenize", t, &r);
        r
    }

    async fn evaluate(&self, request: &SalvageRequest) -> Result<EvaluateAnswer, FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.evaluate(request).await;
        // A transport failure after sending is an answer (Unknown), and still a failed call.
        let counted = match &r {
            Ok(EvaluateAnswer::Unknown { detail }) => {
                Err(FlexFactorError::OutcomeUnknown(detail.clone()))
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e.clone()),
        };
        self.record("evaluate", t, &counted);
        r
    }

    async fn order_status(
        &self,
        id: &FlexFactorOrderId,
    ) -> Result<FlexFactorOrderStatus, FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.order_status(id).await;
        self.record("order_status", t, &r);
        r
    }

    async fn cancel(&self, id: &FlexFactorOrderId) -> Result<(), FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.cancel(id).await;
        self.record("cancel", t, &r);
        r
    }

    async fn external_cancel(&self, order: &OrderId) -> Result<(), FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.external_cancel(order).await;
        self.record("external_cancel", t, &r);
        r
    }

    async fn refund(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<RefundAnswer, FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.refund(id, amount).await;
        self.record("refund", t, &r);
        r
    }

    async fn capture(
        &self,
        id: &FlexFactorOrderId,
        amount: Money,
    ) -> Result<EvaluateAnswer, FlexFactorError> {
        let t = Instant::now();
        let r = self.inner.capture(id, amount).await;
        self.record("capture", t, &r);
        r
    }
}
