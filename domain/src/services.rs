//! What the aggregates need to decide: the setup, the clock and the card ledger. No I/O.

use std::sync::Arc;

use crate::clock::Clock;
use crate::network::{CardLedger, NoLedger};
use crate::setup::Setup;

/// The aggregates' `Services`: the setup they route with, the clock they read time from, and
/// the ledger of what other orders and subscriptions did with a card (N8).
#[derive(Clone)]
pub struct DomainServices {
    pub setup: Arc<Setup>,
    pub clock: Arc<dyn Clock>,
    pub cards: Arc<dyn CardLedger>,
}

impl DomainServices {
    /// Services with a ledger that knows of no other aggregate.
    pub fn new(setup: Arc<Setup>, clock: Arc<dyn Clock>) -> Self {
        DomainServices {
            setup,
            clock,
            cards: Arc::new(NoLedger),
        }
    }

    /// The same services reading card histories from `cards`.
    pub fn with_cards(&self, cards: Arc<dyn CardLedger>) -> Self {
        DomainServices {
            setup: self.setup.clone(),
            clock: self.clock.clone(),
            cards,
        }
    }
}

impl std::fmt::Debug for DomainServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainServices").finish_non_exhaustive()
    }
}
