//! Card-network retry rules (N1-N9): Visa's Excessive Reattempts rule and Mastercard's
//! Merchant Advice Codes, enforced before Salvage makes any attempt on a card.
//!
//! Pure: the guard reads a card's attempt history (its own and, through the ledger, the other
//! orders' and subscriptions' attempts on the same card, N8) and the time, and answers whether
//! the attempt may be made now, later, or not at all.

mod block;
mod card_history;
mod card_network;
mod code_table;
mod guard;
mod rules_config;

pub use block::{NetworkBlock, NetworkRule};
pub use card_history::{
    source, CardFact, CardHistory, CardKey, CardLedger, LoadedLedger, NoLedger,
};
pub use card_network::CardNetwork;
pub use code_table::{CodeTableError, VisaCategoryTables, SHIPPED_VISA_CATEGORIES};
pub use guard::{
    check, check_card, AttemptKind, GatewayFacts, Verdict, MASTERCARD_MAX_ATTEMPTS,
    VISA_MAX_REATTEMPTS, WINDOW,
};
pub use rules_config::{FlexFactorNetworkRules, NetworkRulesConfig};
