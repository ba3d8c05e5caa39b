//! The service's effect handler: performs what the process manager asks for, with the outbox
//! key as idempotency key, and returns the commands the answers call for.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use tracing::{info, warn};

use salvage_domain::clock::Clock;
use salvage_domain::order::{
    AttemptResult, FlexFactorResult, Order, OrderCommand, ResultSource, Salvage, SalvageRoute,
};
use salvage_domain::ports::{
    Charge, ChargeError, ChargePurpose, ChargeRequest, EvaluateAnswer, FlexFactor, FlexFactorError,
    GatewayAnswer, SalvageRequest, SubscriptionInfo,
};
use salvage_domain::process_manager::{Effect, FollowUp};
use salvage_domain::subscription::{
    rebill_order_id, Rebill, RebillParts, SubscriptionCommand, SubscriptionStatus,
};
use salvage_domain::{GatewayId, OrderId};

use super::{EffectHandler, EffectOutcome};
use crate::crm::{backoff, Delivered, Notifier};
use crate::metrics::Metrics;
use crate::store::Store;

/// How many times a charge that could not be sent is retried before it is recorded unknown.
const CHARGE_SEND_RETRIES: i64 = 10;

pub struct ServiceEffects {
    pub store: Arc<Store>,
    pub flexfactor: BTreeMap<GatewayId, Arc<dyn FlexFactor>>,
    pub charge: Option<Arc<dyn Charge>>,
    pub notifier: Option<Notifier>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<Metrics>,
}

fn retry(after: Duration, reason: impl Into<String>) -> EffectOutcome {
    EffectOutcome::Retry {
        after,
        reason: reason.into(),
    }
}

fn record(order_id: &OrderId, attempt: u32, answer: EvaluateAnswer) -> EffectOutcome {
    EffectOutcome::Done(vec![FollowUp::Order {
        order_id: order_id.clone(),
        command: OrderCommand::RecordFlexFactorAnswer { attempt, answer },
    }])
}

impl ServiceEffects {
    fn client(&self, gateway: &GatewayId) -> Option<&Arc<dyn FlexFactor>> {
        self.flexfactor.get(gateway)
    }

    async fn load_order(&self, id: &OrderId) -> Result<Order, EffectOutcome> {
        match self.store.orders.load(id.as_str()).await {
            Ok((o, _)) => Ok(o),
            Err(e) => Err(retry(Duration::seconds(5), format!("store: {e}"))),
        }
    }

    /// Submission `attempt` of an order while it is still open; otherwise the outcome to return
    /// (nothing left to do, or the store's error).
    async fn open_salvage(
        &self,
        order_id: &OrderId,
        attempt: u32,
    ) -> Result<Salvage, EffectOutcome> {
        let order = self.load_order(order_id).await?;
        order
            .salvage
            .filter(|s| s.attempt == attempt && s.state.is_open())
            .ok_or(EffectOutcome::Done(Vec::new()))
    }

    /// The `/evaluate` request of submission `attempt` of an order.
    async fn salvage_request(&self, order: &Order, attempt: u32) -> Option<SalvageRequest> {
        let details = order.details.as_ref()?;
        let salvage = order.salvage.as_ref().filter(|s| s.attempt == attempt)?;
        let decline = order.first_decline.clone()?;
        let subscription = match &salvage.route {
            SalvageRoute::Recycle {
                subscription_id, ..
            } => {
                let (sub, _) = self
                    .store
                    .subscriptions
                    .load(subscription_id.as_str())
                    .await
                    .ok()?;
                Some(SubscriptionInfo {
                    subscription_id: subscription_id.clone(),
                    interval_days: sub.terms.map(|t| t.interval_days).unwrap_or(30),
                    price: sub.price.unwrap_or(details.amount),
                    payment_number: Some(sub.cycle + 1),
                })
            }
            _ => None,
        };
        Some(SalvageRequest {
            flexfactor_gateway: salvage.flexfactor_gateway.clone(),
            order_id: details.order_id.clone(),
            idempotency_key: salvage.idempotency_key.clone(),
            mode: salvage.mode.clone(),
            amount: salvage.amount,
            decline,
            card: details.card.clone(),
            customer: details.customer.clone(),
            items: details.items.clone(),
            subscription,
        })
    }

    async fn submit(&self, order_id: &OrderId, attempt: u32) -> EffectOutcome {
        match self.load_order(order_id).await {
            Ok(order) => self.submit_order(order_id, attempt, &order).await,
            Err(r) => r,
        }
    }

    /// Submission `attempt` of `order`, as just read or committed.
    async fn submit_order(&self, order_id: &OrderId, attempt: u32, order: &Order) -> EffectOutcome {
        let Some(request) = self.salvage_request(order, attempt).await else {
            return EffectOutcome::Done(Vec::new());
        };
        if order.salvage.as_ref().is_some_and(|s| !s.state.is_open()) {
            return EffectOutcome::Done(Vec::new());
        }
        let Some(client) = self.client(&request.flexfactor_gateway) else {
            return EffectOutcome::Failed(format!(
                "no FlexFactor client for gateway {}",
                request.flexfactor_gateway
            ));
        };
        let route = order
            .salvage
            .as_ref()
            .map(|s| s.route.name())
            .unwrap_or("unknown");
        self.metrics.submission(route);
        match client.evaluate(&request).await {
            Ok(answer) => {
                self.metrics.answer(route, &answer);
                record(order_id, attempt, answer)
            }
            Err(FlexFactorError::Unavailable(reason)) if route == "cascade" => {
                // C5: the shopper is waiting; nothing was sent, so the step simply declines.
                record(
                    order_id,
                    attempt,
                    EvaluateAnswer::Rejected {
                        reason: format!("FlexFactor unavailable: {reason}"),
                    },
                )
            }
            Err(FlexFactorError::Unavailable(reason)) => {
                // Nothing was sent: safe to send again under the same key.
                retry(Duration::seconds(10), reason)
            }
            Err(FlexFactorError::Invalid(reason)) => {
                record(order_id, attempt, EvaluateAnswer::Rejected { reason })
            }
            Err(FlexFactorError::IdempotencyConflict) => EffectOutcome::Failed(
                "FlexFactor refused the idempotency key with another body (409)".into(),
            ),
            Err(e) => record(
                order_id,
                attempt,
                EvaluateAnswer::Unknown {
                    detail: e.to_string(),
                },
            ),
        }
    }

    async fn capture(&self, order_id: &OrderId, attempt: u32) -> EffectOutcome {
        let s = match self.open_salvage(order_id, attempt).await {
            Ok(s) => s,
            Err(done) => return done,
        };
        let (Some(client), Some(ff_id)) =
            (self.client(&s.flexfactor_gateway), &s.flexfactor_order_id)
        else {
            return EffectOutcome::Failed("capture without a FlexFactor order id".into());
        };
        match client.capture(ff_id, s.amount).await {
            Ok(answer) => record(order_id, attempt, answer),
            Err(FlexFactorError::Unavailable(reason)) => retry(Duration::seconds(10), reason),
            Err(e) => record(
                order_id,
                attempt,
                EvaluateAnswer::Unknown {
                    detail: e.to_string(),
                },
            ),
        }
    }

    async fn reconcile(&self, order_id: &OrderId, attempt: u32) -> EffectOutcome {
        let s = match self.open_salvage(order_id, attempt).await {
            Ok(s) => s,
            Err(done) => return done,
        };
        let Some(client) = self.client(&s.flexfactor_gateway) else {
            return EffectOutcome::Failed(format!(
                "no FlexFactor client for {}",
                s.flexfactor_gateway
            ));
        };
        match &s.flexfactor_order_id {
            // O8: ask where it stands.
            Some(ff_id) => match client.order_status(ff_id).await {
                Ok(status) => EffectOutcome::Done(vec![FollowUp::Order {
                    order_id: order_id.clone(),
                    command: OrderCommand::ApplyFlexFactorResult {
                        result: FlexFactorResult::from_status(&status),
                        source: ResultSource::StatusPoll,
                    },
                }]),
                Err(e) => retry(Duration::minutes(15), e.to_string()),
            },
            // F3: the submission's outcome is unknown: replay it under the same key.
            None => self.submit(order_id, attempt).await,
        }
    }

    async fn external_cancel(&self, order_id: &OrderId, gateway: &GatewayId) -> EffectOutcome {
        let Some(client) = self.client(gateway) else {
            return EffectOutcome::Failed(format!("no FlexFactor client for {gateway}"));
        };
        match client.external_cancel(order_id).await {
            Ok(()) | Err(FlexFactorError::NotFound) => EffectOutcome::Done(Vec::new()),
            Err(e) => retry(Duration::seconds(30), e.to_string()),
        }
    }

    /// Counts a charge hook call by outcome and warns about the ones that failed (never with
    /// a secret or card data: the order, the purpose and the idempotency key).
    fn count_charge(&self, request: &ChargeRequest, charged: &Result<GatewayAnswer, ChargeError>) {
        let outcome = match charged {
            Ok(GatewayAnswer::Approved { .. }) => "approved",
            Ok(GatewayAnswer::Declined(_)) => "declined",
            Ok(GatewayAnswer::Pending { .. }) => "pending",
            Ok(GatewayAnswer::Unknown { detail }) => {
                warn!(order = %request.order_id, key = %request.idempotency_key.as_str(),
                      detail = %detail, "charge hook call with an unknown outcome");
                "unknown"
            }
            Err(e) => {
                warn!(order = %request.order_id, key = %request.idempotency_key.as_str(),
                      error = %e, "charge hook call not sent");
                "not_sent"
            }
        };
        self.metrics.charge_hook(outcome);
    }

    async fn charge(&self, attempt: i64, request: &ChargeRequest) -> EffectOutcome {
        let Some(charge) = &self.charge else {
            return EffectOutcome::Failed(
                "no charge hook is configured: regular gateways cannot be charged".into(),
            );
        };
        let charged = charge.charge(request).await;
        self.count_charge(request, &charged);
        let answer = match charged {
            Ok(a) => a,
            Err(ChargeError::NotSent(reason)) if attempt < CHARGE_SEND_RETRIES => {
                return retry(backoff(attempt), reason)
            }
            Err(e) => GatewayAnswer::Unknown {
                detail: e.to_string(),
            },
        };
        let follow = match &request.purpose {
            ChargePurpose::Cascade { step } => FollowUp::Order {
                order_id: request.order_id.clone(),
                command: OrderCommand::RecordCascadeStep {
                    step: *step,
                    answer,
                },
            },
            ChargePurpose::Recycle { attempt } => match &request.subscription_id {
                Some(sub) => FollowUp::Subscription {
                    subscription_id: sub.clone(),
                    command: SubscriptionCommand::RecordRecycleAttemptResult {
                        order_id: request.order_id.clone(),
                        attempt: *attempt,
                        answer,
                    },
                },
                None => return EffectOutcome::Failed("recycle charge without subscription".into()),
            },
            ChargePurpose::Rebill { .. } => {
                // Scheduled rebills are charged by `bill` below.
                return EffectOutcome::Done(Vec::new());
            }
        };
        EffectOutcome::Done(vec![follow])
    }

    /// A subscription's scheduled rebill, charged through the hook; the result is reported as a
    /// rebill order, built as the CRM's reported rebills are (`Subscription::rebill_order`).
    async fn bill(
        &self,
        attempt: i64,
        sub_id: &salvage_domain::SubscriptionId,
        cycle: u32,
    ) -> EffectOutcome {
        let Some(charge) = &self.charge else {
            info!(subscription = %sub_id, cycle, "rebill due; no charge hook configured, the CRM bills it");
            return EffectOutcome::Done(Vec::new());
        };
        let (sub, _) = match self.store.subscriptions.load(sub_id.as_str()).await {
            Ok(s) => s,
            Err(e) => return retry(Duration::seconds(30), e.to_string()),
        };
        let billing = matches!(
            sub.status,
            Some(SubscriptionStatus::Active | SubscriptionStatus::Trial)
        );
        if sub.cycle != cycle || !billing {
            return EffectOutcome::Done(Vec::new());
        }
        let (Some(gateway), Some(price), Some(credential)) =
            (sub.billing_gateway.clone(), sub.price, sub.credential)
        else {
            return EffectOutcome::Failed("subscription without billing data".into());
        };
        let order_id = rebill_order_id(sub_id, cycle);
        let request = ChargeRequest {
            idempotency_key: salvage_domain::idempotency::IdempotencyKey(format!(
                "rebill/{sub_id}/{cycle}"
            )),
            order_id: order_id.clone(),
            subscription_id: Some(sub_id.clone()),
            gateway: gateway.clone(),
            amount: price,
            credential,
            purpose: ChargePurpose::Rebill { cycle },
        };
        let charged = charge.charge(&request).await;
        self.count_charge(&request, &charged);
        let answer = match charged {
            Ok(a) => a,
            Err(ChargeError::NotSent(reason)) if attempt < CHARGE_SEND_RETRIES => {
                return retry(backoff(attempt), reason)
            }
            Err(e) => GatewayAnswer::Unknown {
                detail: e.to_string(),
            },
        };
        let result = match answer {
            GatewayAnswer::Approved { .. } => AttemptResult::Approved,
            GatewayAnswer::Declined(facts) => AttemptResult::Declined(facts),
            GatewayAnswer::Pending { .. } | GatewayAnswer::Unknown { .. } => {
                warn!(subscription = %sub_id, cycle, "rebill outcome unknown; the CRM must report it");
                return EffectOutcome::Done(Vec::new());
            }
        };
        // The rebill becomes an order, exactly as if the CRM had posted it.
        let Some(origin) = sub.origin_order_id.as_ref() else {
            return EffectOutcome::Failed("subscription without its origin order".into());
        };
        let origin = match self.load_order(origin).await {
            Ok(o) => o,
            Err(r) => return r,
        };
        let Some(details) = origin.details else {
            return EffectOutcome::Failed("the subscription's origin order is missing".into());
        };
        let parts = RebillParts::from_origin(&details, &sub);
        let rebill = Rebill {
            order_id: Some(order_id.clone()),
            amount: Some(price),
            gateway,
            result,
        };
        EffectOutcome::Done(vec![FollowUp::Order {
            order_id,
            command: OrderCommand::Place(Box::new(sub.rebill_order(sub_id, parts, rebill))),
        }])
    }

    async fn notify(
        &self,
        attempt: i64,
        n: &salvage_domain::process_manager::Notification,
    ) -> EffectOutcome {
        let Some(notifier) = &self.notifier else {
            info!(event_id = %n.event_id, kind = ?n.kind, "CRM notification (no endpoint configured)");
            return EffectOutcome::Done(Vec::new());
        };
        let now = self.clock.now();
        match notifier.send(n, now.timestamp()).await {
            Delivered::Acknowledged => {
                self.metrics.notification(true);
                EffectOutcome::Done(Vec::new())
            }
            Delivered::NotYet(reason) => {
                self.metrics.notification(false);
                warn!(event_id = %n.event_id, attempt, reason = %reason,
                      "CRM notification not acknowledged; it will be retried");
                if now - n.at > notifier.retry_for {
                    EffectOutcome::Failed(format!(
                        "not acknowledged for {} hours: {reason}",
                        notifier.retry_for.num_hours()
                    ))
                } else {
                    retry(backoff(attempt), reason)
                }
            }
        }
    }
}

#[async_trait]
impl EffectHandler for ServiceEffects {
    async fn perform_knowing(
        &self,
        key: &str,
        attempt: i64,
        effect: &Effect,
        order: &Order,
    ) -> EffectOutcome {
        match effect {
            // Run in the request that just committed the submission: no need to read it back.
            Effect::SubmitToFlexFactor {
                order_id,
                attempt: a,
            } if order
                .details
                .as_ref()
                .is_some_and(|d| &d.order_id == order_id) =>
            {
                self.submit_order(order_id, *a, order).await
            }
            _ => self.perform(key, attempt, effect).await,
        }
    }

    async fn perform(&self, _key: &str, attempt: i64, effect: &Effect) -> EffectOutcome {
        match effect {
            Effect::SubmitToFlexFactor {
                order_id,
                attempt: a,
            } => self.submit(order_id, *a).await,
            Effect::Capture {
                order_id,
                attempt: a,
            } => self.capture(order_id, *a).await,
            Effect::ExternalCancel {
                order_id,
                flexfactor_gateway,
                ..
            } => self.external_cancel(order_id, flexfactor_gateway).await,
            Effect::ReconcileSalvage {
                order_id,
                attempt: a,
            } => self.reconcile(order_id, *a).await,
            Effect::Charge(request) => self.charge(attempt, request).await,
            Effect::BillSubscription {
                subscription_id,
                cycle,
            } => self.bill(attempt, subscription_id, *cycle).await,
            Effect::NotifyCrm(n) => self.notify(attempt, n).await,
        }
    }
}
