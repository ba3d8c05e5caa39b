//! N1-N5, N9: the card network's verdict on an attempt this order is about to make.

use chrono::{DateTime, Utc};

use super::decision::Decision;
use crate::network::{self, AttemptKind, CardKey, Verdict};
use crate::services::DomainServices;

/// The verdict on an attempt of kind `kind` now, from the order's own facts (as decided so far)
/// and the other aggregates' facts about its card (N8).
pub(super) fn verdict(
    d: &Decision<'_>,
    services: &DomainServices,
    kind: AttemptKind,
    now: DateTime<Utc>,
) -> Verdict {
    let state = d.state();
    let Some(details) = &state.details else {
        return Verdict::Allow;
    };
    let setup = services.setup.as_ref();
    if !setup.network_rules.enabled {
        return Verdict::Allow;
    }
    let card = CardKey::new(details.card.ledger_key(), &details.card.bin);
    network::check_card(
        &setup.network_rules,
        setup,
        &card,
        services.cards.as_ref(),
        ("order", details.order_id.as_str()),
        &state.card_facts,
        now,
        kind,
    )
}
