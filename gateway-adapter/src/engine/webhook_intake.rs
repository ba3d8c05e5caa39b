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
        let order_id = o.external_order_id.as_ref().map(|x| x.to_string());
        let ff_id = o.flexfactor_order_id.as_ref().map(|x| x.to_string());
        let record = |outcome: Intake| {
            webhook_book::delivery_write(
                &key,
                &o.event,
                order_id.as_deref(),
                ff_id.as_deref(),
                now,
                outcome.as_str(),
            )
        };
        let store_only = |writes: Vec<Write>, outcome: Intake| {
            let nonce = nonce.clone();
            async move { store_writes(backend, nonce, writes, outcome).await }
        };
        let result = match &o.result {
            FlexFactorResult::NotRelevant { .. } => {
                return store_only(vec![record(Intake::NotRelevant)], Intake::NotRelevant).await
            }
            FlexFactorResult::Unknown { .. } => {
                return store_only(vec![record(Intake::UnknownEvent)], Intake::UnknownEvent).await
            }
            FlexFactorResult::Completed { confirmation_id } => DomainResult::Completed {
                flexfactor_order_id: o.flexfactor_order_id.clone(),
                confirmation_id: confirmation_id.clone().or(o.confirmation_id.clone()),
            },
            FlexFactorResult::Expired => DomainResult::Expired,
            FlexFactorResult::Cancelled => DomainResult::Cancelled,
            FlexFactorResult::Refunded => DomainResult::Refunded,
            FlexFactorResult::Chargeback => DomainResult::Chargeback,
            FlexFactorResult::CaptureRequired => DomainResult::CaptureRequired,
        };
        // W4: kept for reconciliation.
        let park = webhook_book::unmatched_write(&UnmatchedDelivery {
            delivery_key: key.clone(),
            event: o.event.clone(),
            order_id: order_id.clone(),
            flexfactor_order_id: ff_id.clone(),
            body: String::from_utf8_lossy(body).into_owned(),
            received_at: now,
        });
        let Some(order) = order_id.clone() else {
            return store_only(vec![park, record(Intake::Unmatched)], Intake::Unmatched).await;
        };
        let command = OrderCommand::ApplyFlexFactorResult {
            result,
            source: ResultSource::Webhook {
                delivery_id: key.clone(),
                resent: o.is_resent,
            },
        };
        let writes = [nonce.clone(), record(Intake::Applied)];
        match self
            .order_with(&order.as_str().into(), command, &writes)
            .await
        {
            Ok(_) => Ok(Intake::Applied),
            Err(ExecuteError::Refused(OrderError::NotPlaced)) => {
                store_only(vec![park, record(Intake::Unmatched)], Intake::Unmatched).await
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
