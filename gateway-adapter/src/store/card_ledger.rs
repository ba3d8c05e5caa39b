//! N8: what every order and subscription did with a card, read from the views (kept from the
//! ordered log, so the counts hold across restarts and across processes sharing one database).

use salvage_domain::network::{self, CardHistory, CardKey, CardLedger};
use salvage_domain::order::Order;
use salvage_domain::subscription::Subscription;

use super::{Backend, StoreError};

/// The card key (fingerprint, else token: `CardToken::ledger_key`) of order or subscription `id` (`kind`: `order` or `subscription`), as its
/// view has it; none when it has no view yet.
pub async fn card_token_of(
    backend: &Backend,
    kind: &str,
    id: &str,
) -> Result<Option<String>, StoreError> {
    let sql = match kind {
        "order" => "SELECT card_token FROM salvage_order_view WHERE order_id = $1",
        _ => "SELECT card_token FROM salvage_subscription_view WHERE subscription_id = $1",
    };
    let found: Option<(Option<String>,)> = crate::on_pool!(backend, pool => {
        sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
    });
    Ok(found.and_then(|(t,)| t))
}

/// How many orders and subscriptions of one card are read, the most recently changed first.
/// Each of them holds at least one attempt on the card, so 64 cover more attempts than either
/// network allows in 30 days (N2: 15 reattempts, N5: 35 attempts). What the bound can miss is a
/// never-retry decline (N1, N3) older than the card's 64 newest orders and subscriptions; a
/// card declined that way is declined the same way on its later orders, which are read. The
/// bound keeps a decision's cost flat however long a card's life.
pub const MAX_AGGREGATES: i64 = 64;

/// Every fact about card `token`, each with the aggregate it came from (the newest
/// [`MAX_AGGREGATES`] orders and subscriptions of the card).
pub async fn history(backend: &Backend, token: &str) -> Result<CardHistory, StoreError> {
    let rows: Vec<(String, String, String, i64)> = crate::on_pool!(backend, pool => {
        sqlx::query_as(
            "SELECT 'order', order_id, state, updated_position FROM salvage_order_view \
             WHERE card_token = $1 \
             UNION ALL \
             SELECT 'subscription', subscription_id, state, updated_position \
             FROM salvage_subscription_view WHERE card_token = $1 \
             ORDER BY 4 DESC LIMIT $2",
        )
        .bind(token)
        .bind(MAX_AGGREGATES)
        .fetch_all(pool)
        .await?
    });
    let mut out = CardHistory::default();
    for (kind, id, state, _) in rows {
        let facts = if kind == "order" {
            serde_json::from_str::<Order>(&state)?.card_facts
        } else {
            serde_json::from_str::<Subscription>(&state)?.card_facts
        };
        let source = network::source(&kind, &id);
        out.facts
            .extend(facts.into_iter().map(|f| (source.clone(), f)));
    }
    Ok(out)
}

/// A card's history, read ahead of one decision.
#[derive(Debug, Clone, Default)]
pub struct ReadLedger(pub CardHistory);

impl CardLedger for ReadLedger {
    fn history(&self, _card: &CardKey) -> CardHistory {
        self.0.clone()
    }
}
