//! The reference model: a deliberately small, independent description of what Salvage must do
//! with the sample setup, and the transitions the state-machine tests draw from it.
//!
//! The model keeps, per order, its status, who paid it and where its FlexFactor salvage stands;
//! per subscription, its status, cycle, billing gateway and recycle position; and the clock. It
//! uses the domain's status enums only as labels: every decision is taken here, from
//! [`super::rules`].
//!
//! Bottom up: `vocabulary` (the transitions and what they talk about), `state` (the reference
//! state and how a transition changes it), `strategies` (what the tests draw, and
//! [`Reference`], the state machine).

mod state;
mod strategies;
mod vocabulary;

pub use state::{Expect, MOrder, MRecycle, MSalvage, MSub, RefState, Route, MAX_TICK};
pub use strategies::{
    advice, attempt, card, decline, decline_kind, delivery, ff_answer, gateway_behaviour,
    likely_soft_decline, transitions, Focus, Reference, Weights,
};
pub use vocabulary::{
    Advice, Attempt, Card, Decline, DeclineKind, Delivery, FfAnswer, GatewayBehaviour, Ip, Product,
    Sale, Transition, GIVE_UP_AFTER_EXPIRY, MAX_ADVANCE, MINUTES_PER_DAY,
};
