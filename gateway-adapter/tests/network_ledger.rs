//! N8 in the service: a card's attempts on other orders count, read from the views kept from
//! the event log, so they hold after a restart and for another process on the same database.
//! Runs on SQLite and PostgreSQL.

#[macro_use]
mod support;

use std::sync::Arc;

use salvage_domain::decline::VisaCategory;
use salvage_domain::network::{NetworkBlock, NetworkRule};
use salvage_domain::order::{AttemptResult, OrderCommand, OrderEvent};
use salvage_domain::samples::{decline, new_sale, place};
use salvage_domain::{DeclineType, ManualClock, OrderId};
use salvage_gateway::store::card_ledger;
use support::*;

both_stores!(
    threads = 4;
    n8_attempts_on_other_orders_count_across_a_restart_and_a_second_process
);

/// A sale on `gateway` declined with Visa category 2, on the sample card.
fn declined_sale(order: &str, gateway: &str) -> OrderCommand {
    let mut f = decline(gateway, "Insufficient funds", DeclineType::Soft);
    f.visa_category = Some(VisaCategory(2));
    place(new_sale(
        order,
        gateway,
        Some("203.0.113.7"),
        AttemptResult::Declined(f),
    ))
}

async fn n8_attempts_on_other_orders_count_across_a_restart_and_a_second_process(place: Place) {
    let clock = Arc::new(ManualClock::new(t0()));
    {
        let store = Arc::new(place.open().await);
        let e = engine(store, clock.clone(), Arc::new(CountingHandler::default()));
        // 16 declined sales on stripe-eu (which cascades nowhere): the first attempt and 15
        // reattempts of the card.
        for i in 0..16 {
            let id = format!("other-{i}");
            e.order(&OrderId::new(id.as_str()), declined_sale(&id, "stripe-eu"))
                .await
                .unwrap_or_else(|err| panic!("{err}"));
        }
        e.pump_once().await.unwrap_or_else(|err| panic!("{err}"));
    }
    // A restarted service, and a second one, on the same database.
    for process in ["restarted", "second"] {
        let store = Arc::new(place.open().await);
        let history = card_ledger::history(&store.backend, "tok_1")
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(
            history.facts.len(),
            32,
            "{process}: an attempt and a decline per order"
        );
        let e = engine(store, clock.clone(), Arc::new(CountingHandler::default()));
        // A new sale on nmi-main cascades to nmi-backup, then FlexFactor: the step on
        // nmi-backup would be the 16th reattempt (N2), FlexFactor is tried (N9 default).
        let id = format!("new-{process}");
        let committed = e
            .order(&OrderId::new(id.as_str()), declined_sale(&id, "nmi-main"))
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        let events: Vec<&OrderEvent> = committed.iter().map(|c| &c.payload).collect();
        assert!(
            events.contains(&&OrderEvent::AttemptBlocked {
                gateway: "nmi-backup".into(),
                step: Some(1),
                reason: NetworkBlock::NetworkRetryLimit,
                rule: NetworkRule::N2,
                at: t0(),
            }),
            "{process}: {events:?}"
        );
        assert!(
            events.iter().any(|e| e.name() == "SalvageSubmitted"),
            "{process}: {events:?}"
        );
    }
}
