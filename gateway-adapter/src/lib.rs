//! # salvage-gateway
//!
//! Salvage's production adapters: the implementations of the domain's ports that talk to the
//! outside world.
//!
//! - [`flexfactor`]: the FlexFactor HTTP client (the domain's `FlexFactor` port over reqwest with
//!   rustls), FlexFactor's wire types, and the verifier and signer of its webhooks (W1, W2).

pub mod card_fingerprint;
pub mod crm;
pub mod feed;
pub mod flexfactor;
#[macro_use]
pub mod store;
pub mod engine;
pub mod metrics;
pub mod service;
