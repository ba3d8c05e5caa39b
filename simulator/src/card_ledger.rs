//! N8 in the simulator: a card's facts from every order and subscription of the runtime.
//!
//! The aggregates keep their own card facts in their state (`Order::card_facts`,
//! `Subscription::card_facts`, kept by `apply`), and the runtime's store holds every aggregate
//! as committed. So the ledger is read from the store when it is needed, instead of being copied
//! after every commit: when a command that may make an attempt on a card is decided, the
//! runtime gives it services whose [`LoadedLedger`] holds the facts of every other aggregate of
//! that card (the deciding aggregate's own facts come from its state, as in the service). The
//! commands are those the service's `engine/card_services.rs` gives a ledger (a declined new
//! sale, a cascade step's answer, a rerun, a due recycle re-attempt) and the FlexFactor answers
//! and results of a cascade step, which start the cascade's next step.
//!
//! Only facts the guard can still read are copied, so the copy stays small however long a
//! customer's history grows: attempts of the last 30 days (N2 and N5 count those), declines of
//! the last 60 days (an attempt in the window is a reattempt when a decline at most 30 days
//! before it exists, N2) or since the card's last approval (N1, N3, N4 read those; its own
//! instant is kept too, whichever way the guard reads a decline and an approval in one instant),
//! and that approval.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::network::{CardFact, CardHistory, CardKey, CardNetwork, LoadedLedger, WINDOW};
use salvage_domain::order::{AttemptResult, Order, OrderCommand, SalvageRoute};
use salvage_domain::subscription::{Subscription, SubscriptionCommand};
use salvage_domain::{DomainServices, OrderId, OrderType, SubscriptionId};

use crate::store::Store;

/// The aggregate a command is decided on: its own facts are its state's, not the ledger's.
#[derive(Debug, Clone, Copy)]
enum Deciding<'a> {
    Order(&'a OrderId),
    Subscription(&'a SubscriptionId),
}

/// The card `command` may make an attempt on, when the network rules can apply to it.
fn order_card(command: &OrderCommand, order: Option<&Order>) -> Option<CardKey> {
    let card = match command {
        // Only a new sale cascades on its decline; a rebill's first attempt is the CRM's.
        OrderCommand::Place(p)
            if p.order_type == OrderType::NewSale
                && matches!(p.result, AttemptResult::Declined(_)) =>
        {
            &p.card
        }
        OrderCommand::RecordCascadeStep { .. } | OrderCommand::RequestRerun { .. } => {
            &order?.details.as_ref()?.card
        }
        // A cascade's FlexFactor step declined (at once or later): the next step starts.
        OrderCommand::RecordFlexFactorAnswer { .. }
        | OrderCommand::ApplyFlexFactorResult { .. } => {
            let order = order?;
            let in_cascade = order
                .salvage
                .as_ref()
                .is_some_and(|s| matches!(s.route, SalvageRoute::Cascade { .. }));
            if !in_cascade {
                return None;
            }
            &order.details.as_ref()?.card
        }
        _ => return None,
    };
    guarded(CardKey::new(card.ledger_key(), &card.bin))
}

/// The card a subscription command may make an attempt on (a due re-attempt or hand-over).
fn subscription_card(
    command: &SubscriptionCommand,
    subscription: Option<&Subscription>,
) -> Option<CardKey> {
    match command {
        SubscriptionCommand::RunDueRecycleAttempt { .. } => guarded(subscription?.card.clone()?),
        _ => None,
    }
}

/// The rules guard Visa and Mastercard cards only: no other card needs a ledger.
fn guarded(card: CardKey) -> Option<CardKey> {
    (card.network != CardNetwork::Other).then_some(card)
}

/// The runtime's ledger for N8: one [`LoadedLedger`], refilled for each decision that needs a
/// card's history. Its buffers are reused (the facts' strings too, fact by fact), so a decision
/// allocates nothing for its history once the runtime has run a few.
#[derive(Debug, Default)]
pub(crate) struct Lender {
    ledger: Arc<LoadedLedger>,
}

impl Lender {
    /// The services to decide `command` on order `order_id` with, `base` with the facts of
    /// every other aggregate of `store` about the card `command` may attempt, as the guard can
    /// read them at `now`. `None`: the command makes no attempt on a guarded card.
    pub(crate) fn order_services(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        base: &DomainServices,
        order_id: &OrderId,
        command: &OrderCommand,
    ) -> Option<DomainServices> {
        let order = store.order(order_id);
        let card = order_card(command, order)?;
        let own = order.map_or(&[][..], |o| &o.card_facts[..]);
        Some(self.services(store, now, base, card, Deciding::Order(order_id), own))
    }

    /// The same for a command on a subscription.
    pub(crate) fn subscription_services(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        base: &DomainServices,
        subscription_id: &SubscriptionId,
        command: &SubscriptionCommand,
    ) -> Option<DomainServices> {
        let subscription = store.subscription(subscription_id);
        let card = subscription_card(command, subscription)?;
        let own = subscription.map_or(&[][..], |s| &s.card_facts[..]);
        let deciding = Deciding::Subscription(subscription_id);
        Some(self.services(store, now, base, card, deciding, own))
    }

    fn services(
        &mut self,
        store: &Store,
        now: DateTime<Utc>,
        base: &DomainServices,
        card: CardKey,
        deciding: Deciding<'_>,
        own: &[CardFact],
    ) -> DomainServices {
        // The services of the last decision are gone by now, so the ledger is this runtime's
        // alone; were it still shared, a new one is taken.
        if Arc::get_mut(&mut self.ledger).is_none() {
            self.ledger = Arc::new(LoadedLedger::default());
        }
        if let Some(ledger) = Arc::get_mut(&mut self.ledger) {
            fill(&mut ledger.history, store, &card, deciding, own, now);
            ledger.card = Some(card);
        }
        base.with_cards(self.ledger.clone())
    }
}

/// Puts into `history` the facts about `card` (its ledger key: the card's fingerprint, else its
/// token) of every aggregate of `store` but `deciding`, as the guard can still read them at
/// `now`; `own` are the deciding aggregate's facts (they can hold the card's last approval).
/// What `history` held before is overwritten, its buffers reused.
fn fill(
    history: &mut CardHistory,
    store: &Store,
    card: &CardKey,
    deciding: Deciding<'_>,
    own: &[CardFact],
    now: DateTime<Utc>,
) {
    let mut sources: Vec<&[CardFact]> = Vec::with_capacity(store.orders.len() + 1);
    sources.extend(others(store, card, deciding));
    let mut last_approval = None;
    for f in sources.iter().copied().flatten().chain(own) {
        if let CardFact::Approval { at } = f {
            if *at <= now && last_approval.is_none_or(|a| a < *at) {
                last_approval = Some(*at);
            }
        }
    }
    let window = now - WINDOW;
    let pairing = window - WINDOW;
    let readable = |f: &CardFact| match f {
        CardFact::Attempt { at, .. } => *at > window,
        CardFact::Decline { at, .. } => *at > pairing || last_approval.is_none_or(|a| *at >= a),
        CardFact::Approval { at } => Some(*at) == last_approval,
    };
    // The sources are left empty (no allocation): the decision reads the history through
    // `CardHistory::others`, which leaves out the deciding aggregate's entries by their source,
    // and this history holds none of them already.
    let facts = &mut history.facts;
    let mut n = 0;
    for f in others(store, card, deciding)
        .flatten()
        .filter(|f| readable(f))
    {
        match facts.get_mut(n) {
            Some((source, slot)) => {
                source.clear();
                assign(slot, f);
            }
            None => facts.push((String::new(), f.clone())),
        }
        n += 1;
    }
    facts.truncate(n);
}

/// The facts of every aggregate of `store` but `deciding` about `card`, aggregate by aggregate
/// (orders, then subscriptions, each in the order of their ids).
fn others<'s>(
    store: &'s Store,
    card: &'s CardKey,
    deciding: Deciding<'s>,
) -> impl Iterator<Item = &'s [CardFact]> + 's {
    let orders = store.orders.iter().filter_map(move |(id, held)| {
        let same = held
            .state
            .details
            .as_ref()
            .is_some_and(|d| d.card.ledger_key() == card.token);
        let me = matches!(deciding, Deciding::Order(d) if d == id);
        (same && !me).then_some(&held.state.card_facts[..])
    });
    let subscriptions = store.subscriptions.iter().filter_map(move |(id, held)| {
        let same = held
            .state
            .card
            .as_ref()
            .is_some_and(|c| c.token == card.token);
        let me = matches!(deciding, Deciding::Subscription(d) if d == id);
        (same && !me).then_some(&held.state.card_facts[..])
    });
    orders.chain(subscriptions)
}

/// `*to = from.clone()`, reusing `to`'s strings when it is the same kind of fact.
fn assign(to: &mut CardFact, from: &CardFact) {
    match (to, from) {
        (
            CardFact::Attempt {
                at,
                gateway,
                flexfactor,
            },
            CardFact::Attempt {
                at: from_at,
                gateway: from_gateway,
                flexfactor: from_flexfactor,
            },
        ) => {
            *at = *from_at;
            gateway.0.clone_from(&from_gateway.0);
            *flexfactor = *from_flexfactor;
        }
        (
            CardFact::Decline {
                at,
                gateway,
                response_code,
                visa_category,
                mastercard_advice_code,
            },
            CardFact::Decline {
                at: from_at,
                gateway: from_gateway,
                response_code: from_code,
                visa_category: from_category,
                mastercard_advice_code: from_advice,
            },
        ) => {
            *at = *from_at;
            gateway.0.clone_from(&from_gateway.0);
            response_code.clone_from(from_code);
            *visa_category = *from_category;
            mastercard_advice_code.clone_from(from_advice);
        }
        (to, from) => *to = from.clone(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use salvage_domain::network::{check, AttemptKind, GatewayFacts, NetworkRulesConfig};
    use salvage_domain::GatewayId;

    use super::*;
    use crate::store::Held;

    fn t(days: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
    }

    fn attempt(day: i64) -> CardFact {
        CardFact::Attempt {
            at: t(day),
            gateway: GatewayId::new("nmi"),
            flexfactor: false,
        }
    }

    fn decline(day: i64, category: u8) -> CardFact {
        CardFact::Decline {
            at: t(day),
            gateway: GatewayId::new("nmi"),
            response_code: "51".into(),
            visa_category: Some(category),
            mastercard_advice_code: None,
        }
    }

    /// The history [`fill`] gives from scratch.
    fn history(
        store: &Store,
        card: &CardKey,
        deciding: Deciding<'_>,
        own: &[CardFact],
        now: DateTime<Utc>,
    ) -> CardHistory {
        let mut history = CardHistory::default();
        fill(&mut history, store, card, deciding, own, now);
        history
    }

    fn subscription(token: &str, facts: Vec<CardFact>) -> Held<Subscription> {
        Held {
            state: Subscription {
                card: Some(CardKey::new(token, "411111")),
                card_facts: facts,
                ..Subscription::default()
            },
            sequence: 1,
        }
    }

    struct Gateways;

    impl GatewayFacts for Gateways {
        fn processor(&self, _gateway: &GatewayId) -> Option<&str> {
            None
        }
        fn hand_overs_count(&self, _gateway: &GatewayId) -> bool {
            false
        }
    }

    #[test]
    fn n8_the_history_holds_every_other_aggregate_of_the_card_and_only_them() {
        let mut store = Store::default();
        let me = SubscriptionId::new("me");
        store
            .subscriptions
            .insert(me.clone(), subscription("tok-a", vec![attempt(1)]));
        store.subscriptions.insert(
            SubscriptionId::new("other"),
            subscription("tok-a", vec![attempt(2), decline(2, 2)]),
        );
        store.subscriptions.insert(
            SubscriptionId::new("stranger"),
            subscription("tok-b", vec![attempt(3)]),
        );
        let card = CardKey::new("tok-a", "411111");
        let h = history(&store, &card, Deciding::Subscription(&me), &[], t(4));
        let facts: Vec<CardFact> = h.facts.into_iter().map(|(_, f)| f).collect();
        assert_eq!(facts, [attempt(2), decline(2, 2)]);
    }

    /// What is left out cannot change a verdict: histories of attempts, declines with every
    /// kind of advice and approvals, on either network, decided at many times.
    #[test]
    fn n8_pruned_facts_are_those_the_guard_cannot_read() {
        let config = NetworkRulesConfig::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let me = SubscriptionId::new("me");
        let mut blocked = 0;
        // One history refilled for every decision, as the runtime's: the same as a fresh one.
        let mut reused = CardHistory::default();
        for case in 0..300 {
            let network = if case % 2 == 0 {
                CardNetwork::Visa
            } else {
                CardNetwork::Mastercard
            };
            let bin = if case % 2 == 0 { "411111" } else { "555555" };
            let mut facts = Vec::new();
            let mut hour = 0i64;
            for _ in 0..(20 + next(60)) {
                // Facts in the same instant too (a decline with its attempt, an approval).
                hour += next(40) as i64;
                let at = t(0) + Duration::hours(hour);
                facts.push(match next(10) {
                    0..=4 => CardFact::Attempt {
                        at,
                        gateway: GatewayId::new("nmi"),
                        flexfactor: false,
                    },
                    5..=8 => CardFact::Decline {
                        at,
                        gateway: GatewayId::new("nmi"),
                        response_code: "05".into(),
                        visa_category: [None, Some(1), Some(2), Some(4)][next(4) as usize],
                        mastercard_advice_code: ["02", "03", "21", "01", "25", "30"]
                            .get(next(8) as usize)
                            .map(|m| m.to_string()),
                    },
                    _ => CardFact::Approval { at },
                });
            }
            let mut store = Store::default();
            let mut other = subscription("tok", facts.clone());
            other.state.card = Some(CardKey::new("tok", bin));
            store
                .subscriptions
                .insert(SubscriptionId::new("other"), other);
            let card = CardKey::new("tok", bin);
            let end = t(0) + Duration::hours(hour);
            for k in 0..8 {
                let now = end - Duration::hours(next(24 * 40) as i64) + Duration::hours(k);
                let h = history(&store, &card, Deciding::Subscription(&me), &[], now);
                fill(
                    &mut reused,
                    &store,
                    &card,
                    Deciding::Subscription(&me),
                    &[],
                    now,
                );
                assert_eq!(reused, h, "case {case} at {now}");
                let pruned: Vec<CardFact> = h.facts.into_iter().map(|(_, f)| f).collect();
                for kind in [
                    AttemptKind::Regular { can_wait: true },
                    AttemptKind::Regular { can_wait: false },
                ] {
                    let full = check(&config, &Gateways, network, &facts, now, kind);
                    let read = check(&config, &Gateways, network, &pruned, now, kind);
                    assert_eq!(full, read, "case {case} at {now}");
                    blocked += usize::from(full != salvage_domain::network::Verdict::Allow);
                }
            }
        }
        assert!(blocked > 100, "the cases exercise the rules: {blocked}");
    }
}
