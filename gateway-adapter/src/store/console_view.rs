//! The console's read side, kept by the projector in the same transaction as the other views:
//! the order view's columns the console filters and sorts by, and the hourly salvage funnel.
//!
//! The funnel is a cohort count: each order that was declined (D1) counts once, in the hour of
//! its first decline, under its current salvage route, recycle slot, currency and outcome. When a
//! batch moves an order from one outcome to another, the projector subtracts it from the old
//! cell and adds it to the new one, so the table always equals a count over the order view and
//! the overview reads a few hundred rows whatever the number of orders.

use std::collections::BTreeMap;

use salvage_domain::order::{Order, SalvageFailure, SalvageRoute, SalvageState};

use super::aggregate_at::{AggregateAt, Known};
use super::checkpointed;
use super::guarded_commit::{Bind, Write};

/// Where an order stands in the salvage funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// Declined and never sent to FlexFactor.
    NotSent,
    /// Sent to FlexFactor, no final answer yet.
    Pending,
    Recovered,
    Failed,
    /// The submission expired (FlexFactor never recovered it in time).
    Expired,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::NotSent,
        Outcome::Pending,
        Outcome::Recovered,
        Outcome::Failed,
        Outcome::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotSent => "not_sent",
            Outcome::Pending => "pending",
            Outcome::Recovered => "recovered",
            Outcome::Failed => "failed",
            Outcome::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// The salvage routes as the console names them (`none`: never sent).
pub const ROUTES: [&str; 4] = ["cascade", "rerun", "recycle", "none"];

/// One cell of the funnel (hourly; the daily table's cells have the day in `hour`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FunnelKey {
    /// Hours since the epoch of the order's first decline.
    pub hour: i64,
    pub route: &'static str,
    /// The recycle slot (`4-6`, `7-9`, `final`), empty for other routes.
    pub slot: &'static str,
    pub currency: String,
    pub outcome: Outcome,
}

/// An order's place in the funnel and the amount it counts for (minor units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FunnelEntry {
    pub key: FunnelKey,
    pub amount_minor: i64,
}

/// The order's outcome, if it was ever declined.
pub fn outcome(order: &Order) -> Option<Outcome> {
    order.declined_at?;
    Some(match &order.salvage {
        None => Outcome::NotSent,
        Some(s) => match s.state {
            SalvageState::Succeeded => Outcome::Recovered,
            SalvageState::Failed => match s.failure {
                Some(SalvageFailure::Expired) | Some(SalvageFailure::ExpiredUnreconciled) => {
                    Outcome::Expired
                }
                _ => Outcome::Failed,
            },
            _ => Outcome::Pending,
        },
    })
}

fn route_and_slot(order: &Order) -> (&'static str, &'static str) {
    match order.salvage.as_ref().map(|s| &s.route) {
        None => ("none", ""),
        Some(SalvageRoute::Recycle { slot, .. }) => ("recycle", slot.as_str()),
        Some(r) => (r.name(), ""),
    }
}

/// Where `order` counts in the funnel (`None`: never declined).
pub(crate) fn funnel_entry(order: &Order) -> Option<FunnelEntry> {
    let declined_at = order.declined_at?;
    let outcome = outcome(order)?;
    let (route, slot) = route_and_slot(order);
    let amount = match &order.salvage {
        Some(s) => s.amount,
        None => order.details.as_ref()?.amount,
    };
    Some(FunnelEntry {
        key: FunnelKey {
            hour: declined_at.timestamp().div_euclid(3600),
            route,
            slot,
            currency: amount.currency.as_str().to_string(),
            outcome,
        },
        amount_minor: amount.amount_minor,
    })
}

/// The funnel entries of the orders in `views` (their view rows, before a batch).
pub(crate) fn before(views: &Known) -> BTreeMap<String, FunnelEntry> {
    views
        .iter()
        .filter_map(|((_, id), at)| match at {
            AggregateAt::Order(o, _) => funnel_entry(o).map(|e| (id.clone(), e)),
            AggregateAt::Subscription(..) => None,
        })
        .collect()
}

/// Per funnel cell, the change in (orders, amount) that takes the table from `before` to the
/// orders of `after` (cells that do not change are absent).
pub(crate) fn funnel_deltas<'a>(
    before: &BTreeMap<String, FunnelEntry>,
    after: impl IntoIterator<Item = (&'a String, &'a Order)>,
) -> BTreeMap<FunnelKey, (i64, i64)> {
    let mut delta: BTreeMap<FunnelKey, (i64, i64)> = BTreeMap::new();
    for (id, o) in after {
        let new = funnel_entry(o);
        let old = before.get(id);
        if new.as_ref() == old {
            continue;
        }
        if let Some(old) = old {
            let d = delta.entry(old.key.clone()).or_default();
            d.0 -= 1;
            d.1 -= old.amount_minor;
        }
        if let Some(new) = new {
            let d = delta.entry(new.key).or_default();
            d.0 += 1;
            d.1 += new.amount_minor;
        }
    }
    delta.retain(|_, d| *d != (0, 0));
    delta
}

/// The funnel writes that take the tables (hourly and daily) from `before` to the orders of
/// `after`.
pub(crate) fn funnel_writes(before: &BTreeMap<String, FunnelEntry>, after: &Known) -> Vec<Write> {
    let orders = after.iter().filter_map(|((_, id), at)| match at {
        AggregateAt::Order(o, _) => Some((id, &**o)),
        AggregateAt::Subscription(..) => None,
    });
    let hourly = funnel_deltas(before, orders);
    let mut daily: BTreeMap<FunnelKey, (i64, i64)> = BTreeMap::new();
    for (k, (n, m)) in &hourly {
        let day = FunnelKey {
            hour: k.hour.div_euclid(24),
            ..k.clone()
        };
        let d = daily.entry(day).or_default();
        d.0 += n;
        d.1 += m;
    }
    daily.retain(|_, d| *d != (0, 0));
    let mut writes = cell_writes("salvage_funnel_hourly", "hour", hourly);
    writes.extend(cell_writes("salvage_funnel_daily", "day", daily));
    writes
}

/// Adds `deltas` to the cells of `table` (its period column `period`).
fn cell_writes(table: &str, period: &str, deltas: BTreeMap<FunnelKey, (i64, i64)>) -> Vec<Write> {
    let rows = deltas
        .into_iter()
        .map(|(k, (n, amount))| {
            vec![
                Bind::Int(k.hour),
                Bind::Text(k.route.to_string()),
                Bind::Text(k.slot.to_string()),
                Bind::Text(k.currency),
                Bind::Text(k.outcome.as_str().to_string()),
                Bind::Int(n),
                Bind::Int(amount),
            ]
        })
        .collect();
    checkpointed::rows(
        &format!(
            "INSERT INTO {table} ({period}, route, slot, currency, outcome, orders, amount_minor)"
        ),
        &format!(
            "ON CONFLICT ({period}, route, slot, currency, outcome) DO UPDATE SET \
             orders = {table}.orders + excluded.orders, \
             amount_minor = {table}.amount_minor + excluded.amount_minor"
        ),
        rows,
    )
}

/// The console's columns of the order view, in [`ORDER_COLUMNS`] order.
pub(crate) const ORDER_COLUMNS: &str = "placed_at, declined_at, customer_email, customer_name, \
    subscription_id, gateway, amount_minor, currency, route, slot, outcome, expires_at, card_bin, \
    card_last4";

/// `col = excluded.col` for every console column.
pub(crate) fn order_upsert_columns() -> String {
    ORDER_COLUMNS
        .split(',')
        .map(|c| {
            let c = c.trim();
            format!("{c} = excluded.{c}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The binds of [`ORDER_COLUMNS`] for `order`.
pub(crate) fn order_binds(order: &Order) -> Vec<Bind> {
    let d = order.details.as_ref();
    let subscription = d.and_then(|d| d.subscription_id.as_ref()).or_else(|| {
        match order.salvage.as_ref().map(|s| &s.route) {
            Some(SalvageRoute::Recycle {
                subscription_id, ..
            }) => Some(subscription_id),
            _ => None,
        }
    });
    let (route, slot) = route_and_slot(order);
    let name = d.map(|d| {
        format!("{} {}", d.customer.first_name, d.customer.last_name)
            .trim()
            .to_string()
    });
    vec![
        Bind::OptInt(order.placed_at.map(|t| t.timestamp_millis())),
        Bind::OptInt(order.declined_at.map(|t| t.timestamp_millis())),
        Bind::OptText(
            d.and_then(|d| d.customer.email.as_ref())
                .map(|e| e.trim().to_lowercase()),
        ),
        Bind::OptText(name),
        Bind::OptText(subscription.map(|s| s.to_string())),
        Bind::OptText(d.map(|d| d.gateway.to_string())),
        Bind::OptInt(d.map(|d| d.amount.amount_minor)),
        Bind::OptText(d.map(|d| d.amount.currency.as_str().to_string())),
        Bind::Text(route.to_string()),
        Bind::Text(slot.to_string()),
        Bind::OptText(outcome(order).map(|o| o.as_str().to_string())),
        Bind::OptInt(
            order
                .salvage
                .as_ref()
                .filter(|s| s.state.is_open())
                .and_then(|s| s.expires_at())
                .map(|t| t.timestamp_millis()),
        ),
        Bind::OptText(d.map(|d| d.card.bin.clone())),
        Bind::OptText(d.map(|d| d.card.last4.clone())),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_parses_back() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("nope"), None);
    }

    #[test]
    fn columns_and_binds_agree() {
        let n = ORDER_COLUMNS.split(',').count();
        assert_eq!(order_binds(&Order::default()).len(), n);
        assert_eq!(order_upsert_columns().split(", ").count(), n);
    }

    /// An order state from a few choices: never declined, not sent, or a salvage on one route
    /// in one state (amounts and hours vary).
    fn state(choice: u8, hour: i64, amount: i64, usd: bool) -> Order {
        let at = |h: i64| {
            chrono::DateTime::<chrono::Utc>::from_timestamp(h * 3600, 0)
                .unwrap_or_default()
                .to_rfc3339()
        };
        let currency = if usd { "USD" } else { "EUR" };
        if choice == 0 {
            return Order::default();
        }
        let mut v = serde_json::to_value(Order::default()).expect("an order as JSON");
        v["declined_at"] = serde_json::json!(at(hour));
        if choice > 1 {
            let route = match choice % 3 {
                0 => serde_json::json!({"route": "cascade", "step": 1}),
                1 => serde_json::json!({"route": "rerun"}),
                _ => {
                    serde_json::json!({"route": "recycle", "subscription_id": "s-1", "recycle_attempt": 5, "slot": if choice % 2 == 0 { "4-6" } else { "final" }})
                }
            };
            let (state, failure) = match choice % 5 {
                0 => ("succeeded", serde_json::Value::Null),
                1 => ("failed", serde_json::json!("expired")),
                2 => ("failed", serde_json::json!("declined")),
                3 => ("accepted", serde_json::Value::Null),
                _ => ("failed", serde_json::json!("expired_unreconciled")),
            };
            v["salvage"] = serde_json::json!({
                "attempt": 1, "route": route, "flexfactor_gateway": "ff", "idempotency_key": "k",
                "mode": {"kind": "cit", "customer_ip": "203.0.113.7"},
                "amount": {"amount_minor": amount, "currency": currency},
                "state": state, "submitted_at": at(hour), "failure": failure,
            });
        }
        serde_json::from_value(v).expect("an order state")
    }

    proptest::proptest! {
        /// Whatever batches move orders between cells, the funnel table kept by deltas equals
        /// a recount of the final states.
        #[test]
        fn deltas_keep_the_funnel_equal_to_a_recount(
            batches in proptest::collection::vec(
                proptest::collection::vec((0usize..12, 0u8..12, 0i64..5, 1i64..5_000, proptest::bool::ANY), 1..8),
                1..12,
            )
        ) {
            let mut views: BTreeMap<String, Order> = BTreeMap::new();
            let mut table: BTreeMap<FunnelKey, (i64, i64)> = BTreeMap::new();
            for batch in batches {
                let mut after: BTreeMap<String, Order> = BTreeMap::new();
                for (id, choice, hour, amount, usd) in batch {
                    after.insert(format!("o-{id}"), state(choice, 490_000 + hour, amount, usd));
                }
                let before: BTreeMap<String, FunnelEntry> = after
                    .keys()
                    .filter_map(|id| views.get(id).and_then(funnel_entry).map(|e| (id.clone(), e)))
                    .collect();
                for (k, (n, m)) in funnel_deltas(&before, after.iter()) {
                    let cell = table.entry(k).or_default();
                    cell.0 += n;
                    cell.1 += m;
                }
                views.extend(after);
            }
            table.retain(|_, c| *c != (0, 0));
            let mut recount: BTreeMap<FunnelKey, (i64, i64)> = BTreeMap::new();
            for o in views.values() {
                if let Some(e) = funnel_entry(o) {
                    let cell = recount.entry(e.key).or_default();
                    cell.0 += 1;
                    cell.1 += e.amount_minor;
                }
            }
            proptest::prop_assert_eq!(table, recount);
        }
    }

    #[test]
    fn the_state_templates_cover_every_outcome() {
        let outcomes: std::collections::BTreeSet<_> = (0..12u8)
            .filter_map(|c| outcome(&state(c, 490_000, 100, true)))
            .collect();
        assert_eq!(outcomes.len(), Outcome::ALL.len(), "{outcomes:?}");
    }

    #[test]
    fn an_order_never_declined_is_not_in_the_funnel() {
        assert_eq!(funnel_entry(&Order::default()), None);
        assert_eq!(outcome(&Order::default()), None);
    }
}
