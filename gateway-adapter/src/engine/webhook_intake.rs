//! Webhook intake: a verified FlexFactor delivery is stored in one transaction (its nonce, W2;
//! its result applied to the order, O7; its record), so that it is either wholly stored or not
//! at all (W3), and only then acknowledged. A delivery already recorded is a duplicate with
//! nothing applied (O7: the record's key refuses the second one). A failure stores nothing, the
//! nonce neither, so that FlexFactor delivers again. A verified delivery for an order Salvage
//! does not know is kept for reconciliation (W4). The signature and the date (W1, W2) are
//! checked before, by [`crate::flexfactor::WebhookVerifier`]; this is the only nonce path.

use salvage_domain::order::{
    FlexFactorResult as DomainResult, OrderCommand, OrderError, ResultSource,
};

use super::Engine;
use crate::flexfactor::{FlexFactorResult, VerifiedDelivery};
use crate::store::guarded_commit::{self, CommitError, Write};
use crate::store::webhook_book::{self, UnmatchedDelivery};
use crate::store::{Backend, ExecuteError, StoreError};

/// What became of a stored delivery (the acknowledgement's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Its result was applied to the order.
    Applied,
    /// Stored before (a redelivery, or a concurrent request): nothing applied again (O7).
    Duplicate,
    /// For an order Salvage does not know: kept for reconciliation (W4).
    Unmatched,
    /// An event that means nothing for the salvage: recorded only.
    NotRelevant,
    /// An event this version does not know: recorded only.
    UnknownEvent,
}

impl Intake {
    /// The outcome's name, as the acknowledgement and the delivery's record give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Intake::Applied => "applied",
            Intake::Duplicate => "duplicate",
            Intake::Unmatched => "unmatched",
            Intake::NotRelevant => "not_relevant",
            Intake::UnknownEvent => "unknown_event",
        }
    }
}

/// Why a delivery was not stored. Nothing of it was (its nonce neither), except for
/// [`IntakeError::Replayed`], whose nonce was stored by the delivery seen first.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// W2: another delivery with this nonce was stored first.
    #[error("the nonce was seen before (W2)")]
    Replayed,
    /// The order's command did not commit: refused (and the delivery is no redelivery of a
    /// result the order has), or the store failed.
    #[error(transparent)]
    Command(ExecuteError<OrderError>),
    /// The store failed while checking the delivery.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The delivery's transaction did not commit.
    #[error("the delivery could not be stored: {0}")]
    NotStored(String),
}

/// The delivery's record key: its event, FlexFactor's order id and the CRM's.
fn delivery_key(delivery: &VerifiedDelivery) -> String {
    let o = &delivery.outcome;
    format!(
        "{}:{}:{}",
        o.event.trim().to_ascii_lowercase(),
        o.flexfactor_order_id
            .as_ref()
            .map(|f| f.as_str())
            .unwrap_or("-"),
        o.external_order_id
            .as_ref()
            .map(|f| f.as_str())
            .unwrap_or("-"),
    )
}

/// The result a delivery carries for the order, or none for an event that means nothing to the
/// salvage or that this version does not know.
fn domain_result(delivery: &VerifiedDelivery) -> Option<DomainResult> {
    let o = &delivery.outcome;
    Some(match &o.result {
        FlexFactorResult::NotRelevant { .. } | FlexFactorResult::Unknown { .. } => return None,
        FlexFactorResult::Completed { confirmation_id } => DomainResult::Completed {
            flexfactor_order_id: o.flexfactor_order_id.clone(),
            confirmation_id: confirmation_id.clone().or(o.confirmation_id.clone()),
        },
        FlexFactorResult::Expired => DomainResult::Expired,
        FlexFactorResult::Cancelled => DomainResult::Cancelled,
        FlexFactorResult::Refunded => DomainResult::Refunded,
        FlexFactorResult::Chargeback => DomainResult::Chargeback,
        FlexFactorResult::CaptureRequired => DomainResult::CaptureRequired,
    })
}

/// The delivery's record, with the outcome it had.
fn record_write(delivery: &VerifiedDelivery, key: &str, now: i64, outcome: Intake) -> Write {
    let o = &delivery.outcome;
    let order_id = o.external_order_id.as_ref().map(|x| x.to_string());
    let ff_id = o.flexfactor_order_id.as_ref().map(|x| x.to_string());
    webhook_book::delivery_write(
        key,
        &o.event,
        order_id.as_deref(),
        ff_id.as_deref(),
        now,
        outcome.as_str(),
    )
}

/// The order command that applies `result`, from the delivery recorded under `key`.
fn apply_command(delivery: &VerifiedDelivery, key: &str, result: DomainResult) -> OrderCommand {
    OrderCommand::ApplyFlexFactorResult {
        result,
        source: ResultSource::Webhook {
            delivery_id: key.to_string(),
            resent: delivery.outcome.is_resent,
        },
    }
}

/// A delivery with a result for a named order, as a command and the writes that commit with
/// its events when it is applied (its nonce and its record): what a group commit of concurrent
/// deliveries shares (see [`super::intake_queue`]). None for any other delivery.
#[derive(Debug)]
pub struct ForOrder {
    pub order_id: String,
    /// The delivery's nonce (W2) and its record's key (O7).
    pub nonce: String,
    pub delivery_key: String,
    pub command: OrderCommand,
    pub writes: Vec<Write>,
}

/// [`ForOrder`] of `delivery` received at `now` (ms).
pub fn for_order(delivery: &VerifiedDelivery, now: i64) -> Option<ForOrder> {
    let order_id = delivery.outcome.external_order_id.as_ref()?.to_string();
    let result = domain_result(delivery)?;
    let key = delivery_key(delivery);
    Some(ForOrder {
        order_id,
        nonce: delivery.nonce.clone(),
        writes: vec![
            webhook_book::nonce_write(&delivery.nonce, now),
            record_write(delivery, &key, now, Intake::Applied),
        ],
        command: apply_command(delivery, &key, result),
        delivery_key: key,
    })
}

impl Engine {
    /// Stores a verified delivery (see the module's doc); `body` is kept with an unmatched one.
    pub async fn take_delivery(
        &self,
        delivery: &VerifiedDelivery,
        body: &[u8],
    ) -> Result<Intake, IntakeError> {
        let o = &delivery.outcome;
        let backend = &self.store.backend;
        let now = self.now_ms();
        let key = delivery_key(delivery);
        let nonce = webhook_book::nonce_write(&delivery.nonce, now);
        let record = |outcome: Intake| record_write(delivery, &key, now, outcome);
        let store_only = |writes: Vec<Write>, outcome: Intake| {
            let nonce = nonce.clone();
            async move { store_writes(backend, nonce, writes, outcome).await }
        };
        let Some(result) = domain_result(delivery) else {
            let outcome = match o.result {
                FlexFactorResult::NotRelevant { .. } => Intake::NotRelevant,
                _ => Intake::UnknownEvent,
            };
            return store_only(vec![record(outcome)], outcome).await;
        };
        let order_id = o.external_order_id.as_ref().map(|x| x.to_string());
        // W4: kept for reconciliation.
        let park = |order_id: Option<String>| {
            webhook_book::unmatched_write(&UnmatchedDelivery {
                delivery_key: key.clone(),
                event: o.event.clone(),
                order_id,
                flexfactor_order_id: o.flexfactor_order_id.as_ref().map(|x| x.to_string()),
                body: String::from_utf8_lossy(body).into_owned(),
                received_at: now,
            })
        };
        let Some(order) = order_id else {
            let writes = vec![park(None), record(Intake::Unmatched)];
            return store_only(writes, Intake::Unmatched).await;
        };
        let command = apply_command(delivery, &key, result);
        let writes = [nonce.clone(), record(Intake::Applied)];
        match self
            .order_with(&order.as_str().into(), command, &writes)
            .await
        {
            Ok(_) => Ok(Intake::Applied),
            Err(ExecuteError::Refused(OrderError::NotPlaced)) => {
                let writes = vec![park(Some(order)), record(Intake::Unmatched)];
                store_only(writes, Intake::Unmatched).await
            }
            Err(ExecuteError::Guard(webhook_book::REPLAYED_NONCE)) => Err(IntakeError::Replayed),
            // O7: the delivery was stored before (a redelivery, or a concurrent request): keep
            // its nonce only, and acknowledge.
            Err(ExecuteError::Guard(_)) => store_only(Vec::new(), Intake::Duplicate).await,
            Err(e @ ExecuteError::Refused(_)) => {
                // A result the order refuses may be a redelivery of one it already has.
                if webhook_book::delivery_seen(backend, &key).await? {
                    return store_only(Vec::new(), Intake::Duplicate).await;
                }
                Err(IntakeError::Command(e))
            }
            Err(e) => Err(IntakeError::Command(e)),
        }
    }
}

/// Commits a delivery's nonce and `writes` (no command) in one transaction. A delivery already
/// recorded keeps its nonce only and is a duplicate (O7); a nonce seen before refuses it (W2).
async fn store_writes(
    backend: &Backend,
    nonce: Write,
    writes: Vec<Write>,
    outcome: Intake,
) -> Result<Intake, IntakeError> {
    let not_stored = |e: CommitError| IntakeError::NotStored(e.to_string());
    let mut all = vec![nonce.clone()];
    all.extend(writes);
    match guarded_commit::commit(backend, &[], &all).await {
        Ok(()) => Ok(outcome),
        Err(CommitError::Guard(webhook_book::REPLAYED_NONCE)) => Err(IntakeError::Replayed),
        Err(CommitError::Guard(_)) => match guarded_commit::commit(backend, &[], &[nonce]).await {
            Ok(()) => Ok(Intake::Duplicate),
            Err(CommitError::Guard(_)) => Err(IntakeError::Replayed),
            Err(e) => Err(not_stored(e)),
        },
        Err(e) => Err(not_stored(e)),
    }
}
