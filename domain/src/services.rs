//! What the aggregates need to decide: the setup and the clock. No I/O.

use std::sync::Arc;

use crate::clock::Clock;
use crate::setup::Setup;

/// The aggregates' `Services`: the setup they route with and the clock they read time from.
#[derive(Clone)]
pub struct DomainServices {
    pub setup: Arc<Setup>,
    pub clock: Arc<dyn Clock>,
}

impl DomainServices {
    pub fn new(setup: Arc<Setup>, clock: Arc<dyn Clock>) -> Self {
        DomainServices { setup, clock }
    }
}

impl std::fmt::Debug for DomainServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainServices").finish_non_exhaustive()
    }
}
