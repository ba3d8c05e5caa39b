//! N8: the services a command is decided with, carrying its card's history from the views when
//! the command may make an attempt on the card (a declined sale's cascade, a cascade's next
//! step, a rerun, a recycle re-attempt). Other commands are decided with the plain services.

use std::sync::Arc;

use salvage_domain::order::{AttemptResult, Order, OrderCommand};
use salvage_domain::subscription::SubscriptionCommand;
use salvage_domain::{DomainServices, OrderId, OrderType, SubscriptionId};

use super::Engine;
use crate::store::card_ledger::{self, ReadLedger};
use crate::store::StoreError;

impl Engine {
    /// The services for `command` on order `id`; `known` is the order as the caller has read
    /// it, if it has.
    pub(crate) async fn order_services(
        &self,
        id: &OrderId,
        command: &OrderCommand,
        known: Option<&Order>,
    ) -> Result<DomainServices, StoreError> {
        if !self.services.setup.network_rules.enabled {
            return Ok(self.services.clone());
        }
        let token = match command {
            // Only a declined new sale cascades; a rebill's first attempt is the CRM's.
            OrderCommand::Place(p)
                if p.order_type == OrderType::NewSale
                    && matches!(p.result, AttemptResult::Declined(_)) =>
            {
                Some(p.card.ledger_key().to_string())
            }
            // A step's decline, FlexFactor's refusal of a cascade and a rerun may each lead to
            // another attempt on the card.
            OrderCommand::RecordCascadeStep { .. }
            | OrderCommand::RequestRerun { .. }
            | OrderCommand::RecordFlexFactorAnswer { .. } => {
                match known.and_then(|o| o.details.as_ref()) {
                    Some(d) => Some(d.card.ledger_key().to_string()),
                    None => self.order_card(id).await?,
                }
            }
            _ => None,
        };
        self.with_card(token).await
    }

    /// The services for `command` on subscription `id`.
    pub(crate) async fn subscription_services(
        &self,
        id: &SubscriptionId,
        command: &SubscriptionCommand,
    ) -> Result<DomainServices, StoreError> {
        if !self.services.setup.network_rules.enabled
            || !matches!(command, SubscriptionCommand::RunDueRecycleAttempt { .. })
        {
            return Ok(self.services.clone());
        }
        let backend = &self.store.backend;
        let token = match card_ledger::card_token_of(backend, "subscription", id.as_str()).await? {
            Some(t) => Some(t),
            None => {
                let (s, _) = self
                    .store
                    .subscriptions
                    .load(id.as_str())
                    .await
                    .map_err(|e| StoreError::Events(e.to_string()))?;
                s.card.map(|c| c.token)
            }
        };
        self.with_card(token).await
    }

    /// The card of order `id`: from its view, or from its history when it has no view yet.
    async fn order_card(&self, id: &OrderId) -> Result<Option<String>, StoreError> {
        let backend = &self.store.backend;
        if let Some(t) = card_ledger::card_token_of(backend, "order", id.as_str()).await? {
            return Ok(Some(t));
        }
        let (o, _) = self
            .store
            .orders
            .load(id.as_str())
            .await
            .map_err(|e| StoreError::Events(e.to_string()))?;
        Ok(o.details.map(|d| d.card.ledger_key().to_string()))
    }

    async fn with_card(&self, token: Option<String>) -> Result<DomainServices, StoreError> {
        let Some(token) = token else {
            return Ok(self.services.clone());
        };
        let history = card_ledger::history(&self.store.backend, &token).await?;
        Ok(self.services.with_cards(Arc::new(ReadLedger(history))))
    }
}
