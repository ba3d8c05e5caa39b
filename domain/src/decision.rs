//! The scratch state both aggregates decide with: each decided event is applied at once, so
//! later decisions in the same command see it.

use cqrs_es::Aggregate;

pub(crate) struct Decision<A: Aggregate> {
    pub state: A,
    pub events: Vec<A::Event>,
}

impl<A: Aggregate + Clone> Decision<A> {
    /// Starts from a copy of the aggregate's state.
    pub fn from(state: &A) -> Self {
        Decision {
            state: state.clone(),
            events: Vec::new(),
        }
    }

    /// Records a decided event and applies it to the scratch state.
    pub fn emit(&mut self, e: A::Event) {
        self.state.apply(e.clone());
        self.events.push(e);
    }
}
