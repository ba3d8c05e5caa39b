//! # salvage-domain
//!
//! The pure business rules of Salvage: the setup and its validation (S1-S8), money, declines and
//! decline mapping (D1-D4), routing decisions (cascades C1-C4, reruns R1-R5, recycle plans Y1-Y4),
//! the Order and Subscription aggregates (cqrs-es), the process manager that turns committed
//! events into follow-up commands and effects, and the ports (FlexFactor, Charge, Clock).
//!
//! Nothing here performs I/O: no network, no database, no runtime needed to test it.

// Macros first: the modules below use them.
#[macro_use]
mod apply_field;

pub mod clock;
pub mod customer;
mod decision;
pub mod decline;
pub mod decline_mapping;
pub mod idempotency;
pub mod ids;
pub mod money;
pub mod network;
pub mod order_type;
pub mod ports;
pub mod routing;
#[doc(hidden)]
pub mod samples;
pub mod setup;

pub use clock::{Clock, ManualClock, SystemClock};
pub use decline::{DeclineFacts, DeclineType, EffectiveDecline};
pub use ids::*;
pub use money::{Currency, Money};
pub use order_type::OrderType;
pub use setup::Setup;
pub mod order;
pub mod process_manager;
pub mod services;
pub mod subscription;
pub use services::DomainServices;
