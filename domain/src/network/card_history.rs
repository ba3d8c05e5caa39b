//! What the network rules read: the facts about one card, from every order and subscription
//! that used it (N8).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::card_network::CardNetwork;
use crate::decline::DeclineFacts;
use crate::ids::GatewayId;

/// The card the rules count on: its token (a new card, or a new token for it, is a new key:
/// "until the card changes", N3) and its network.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CardKey {
    pub token: String,
    pub network: CardNetwork,
}

impl CardKey {
    pub fn new(token: impl Into<String>, bin: &str) -> CardKey {
        CardKey {
            token: token.into(),
            network: CardNetwork::from_bin(bin),
        }
    }
}

/// One fact about a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum CardFact {
    /// An authorization was sent for the card (`flexfactor`: a hand-over to FlexFactor, whose
    /// own retries are unknown, N9).
    Attempt {
        at: DateTime<Utc>,
        gateway: GatewayId,
        #[serde(default)]
        flexfactor: bool,
    },
    /// A regular gateway declined the card, with the network's advice when it gave one (D1).
    Decline {
        at: DateTime<Utc>,
        gateway: GatewayId,
        response_code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        visa_category: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mastercard_advice_code: Option<String>,
    },
    /// The card was approved: earlier declines no longer speak for it.
    Approval { at: DateTime<Utc> },
}

/// The ledger's name of an aggregate's facts: `order:ID`, `subscription:ID`.
pub fn source(aggregate_type: &str, id: &str) -> String {
    format!("{aggregate_type}:{id}")
}

impl CardFact {
    /// A decline as a fact about the card, with D1's network advice as the gateway gave it.
    pub fn declined(facts: &DeclineFacts, at: DateTime<Utc>) -> CardFact {
        CardFact::Decline {
            at,
            gateway: facts.gateway.clone(),
            response_code: facts.response_code.clone(),
            visa_category: facts.visa_category.map(|c| c.0),
            mastercard_advice_code: facts.mastercard_advice_code.as_ref().map(|m| m.0.clone()),
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            CardFact::Attempt { at, .. }
            | CardFact::Decline { at, .. }
            | CardFact::Approval { at } => *at,
        }
    }
}

/// The facts about one card, each with the aggregate it came from (`order:ID` or
/// `subscription:ID`), so an aggregate can replace its own entries by its exact state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardHistory {
    pub facts: Vec<(String, CardFact)>,
}

/// Whether `source` names aggregate `id` of type `aggregate_type` (it is [`source`]`(aggregate_type,
/// id)`), without formatting that name.
fn is_source(source: &str, aggregate_type: &str, id: &str) -> bool {
    source.len() == aggregate_type.len() + 1 + id.len()
        && source.starts_with(aggregate_type)
        && source.as_bytes()[aggregate_type.len()] == b':'
        && source.ends_with(id)
}

impl CardHistory {
    /// The facts of every aggregate but `id` of type `aggregate_type` (borrowed, in the
    /// history's order).
    pub fn others<'a>(
        &'a self,
        aggregate_type: &'a str,
        id: &'a str,
    ) -> impl Iterator<Item = &'a CardFact> + 'a {
        self.facts
            .iter()
            .filter(move |(s, _)| !is_source(s, aggregate_type, id))
            .map(|(_, f)| f)
    }

    /// The facts of every aggregate but `source`, then `own`, in time order.
    pub fn merged_with(&self, source: &str, own: &[CardFact]) -> Vec<CardFact> {
        let mut all: Vec<CardFact> = self
            .facts
            .iter()
            .filter(|(s, _)| s != source)
            .map(|(_, f)| f.clone())
            .chain(own.iter().cloned())
            .collect();
        all.sort_by_key(CardFact::at);
        all
    }
}

/// Where the facts of other aggregates come from (N8). The service reads them from the views
/// kept from the event log; the simulator from its own committed events. The default knows
/// nothing: only the aggregate's own facts count.
pub trait CardLedger: Send + Sync {
    fn history(&self, card: &CardKey) -> CardHistory;

    /// The history of `card`, borrowed when the ledger holds it (the decisions read it so,
    /// without a copy); the default copies it, through [`CardLedger::history`].
    fn history_of(&self, card: &CardKey) -> Cow<'_, CardHistory> {
        Cow::Owned(self.history(card))
    }
}

/// A ledger that knows of no other aggregate.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLedger;

impl CardLedger for NoLedger {
    fn history(&self, _card: &CardKey) -> CardHistory {
        CardHistory::default()
    }

    fn history_of(&self, _card: &CardKey) -> Cow<'_, CardHistory> {
        Cow::Owned(CardHistory::default())
    }
}

/// A ledger holding one card's history, loaded ahead of a decision.
#[derive(Debug, Clone, Default)]
pub struct LoadedLedger {
    pub card: Option<CardKey>,
    pub history: CardHistory,
}

impl CardLedger for LoadedLedger {
    fn history(&self, card: &CardKey) -> CardHistory {
        if self.card.as_ref() == Some(card) {
            self.history.clone()
        } else {
            CardHistory::default()
        }
    }

    fn history_of(&self, card: &CardKey) -> Cow<'_, CardHistory> {
        if self.card.as_ref() == Some(card) {
            Cow::Borrowed(&self.history)
        } else {
            Cow::Owned(CardHistory::default())
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn approval(day: u32) -> CardFact {
        CardFact::Approval {
            at: Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn others_leave_out_exactly_the_named_source() {
        let history = CardHistory {
            facts: vec![
                (source("order", "c1"), approval(1)),
                (source("order", "c1-c2"), approval(2)),
                (source("subscription", "c1"), approval(3)),
                (source("order", "c"), approval(4)),
                ("orderXc1".to_string(), approval(5)),
            ],
        };
        for (kind, id) in [
            ("order", "c1"),
            ("subscription", "c1"),
            ("order", "c"),
            ("x", ""),
        ] {
            let own = [approval(9)];
            let borrowed: Vec<CardFact> = history
                .others(kind, id)
                .chain(&own)
                .cloned()
                .collect::<Vec<_>>();
            let mut sorted = borrowed.clone();
            sorted.sort_by_key(CardFact::at);
            assert_eq!(
                sorted,
                history.merged_with(&source(kind, id), &own),
                "{kind}:{id}"
            );
            let ledger = LoadedLedger {
                card: Some(CardKey::new("tok", "411111")),
                history: history.clone(),
            };
            let card = CardKey::new("tok", "411111");
            assert!(matches!(ledger.history_of(&card), Cow::Borrowed(_)));
            assert_eq!(*ledger.history_of(&card), ledger.history(&card));
            let stranger = CardKey::new("other", "411111");
            assert_eq!(*ledger.history_of(&stranger), CardHistory::default());
        }
    }
}
