//! # The fake FlexFactor server
//!
//! A stateful HTTP server (axum) speaking FlexFactor's wire contract as
//! `../shared/reference/flexfactor-api.md` describes it: `/v1/oauth2/token` (10-minute tokens),
//! `/v1/tokenize`, `/v1/evaluate` (CIT answered at once, managed MIT answered `SUBMITTED` with
//! the result later by webhook), `/v1/orders/{id}`, `/cancel`, `/external-cancel`, `/refund`
//! (decimal dollars), `/v1/capture` and the deprecated `/v1/outcome`; idempotency-key replay
//! within 24 hours and 409 on a key reused with another body; FlexFactor's 400 field-error
//! format; case-insensitive property names; outcomes from scenario rules (sandbox test cards,
//! decline codes, seeded probabilities); signed webhooks (the adapter's signer) redelivered with
//! `IsResent: true` until acknowledged; a real or driven clock; fault injection per endpoint and
//! on deliveries; admin endpoints. See `docs/fake-flexfactor.md`.
//!
//! Start it in-process:
//!
//! ```no_run
//! # async fn demo() -> Result<(), salvage_sim::fake_flexfactor::FakeError> {
//! use salvage_sim::fake_flexfactor::{FakeConfig, FakeFlexFactor};
//! let fake = FakeFlexFactor::start(
//!     FakeConfig::sandbox_defaults().with_webhook_url("http://127.0.0.1:8080/webhooks/flexfactor"),
//! )
//! .await?;
//! println!("FlexFactor at {}", fake.base_url());
//! fake.advance(chrono::Duration::hours(2));
//! fake.deliver_due().await;
//! fake.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Files: [`config`] (configuration, scenario files), [`clock`], [`rules`], [`faults`],
//! `state` (orders, tokens, idempotency, outbox), `wire` (request reading, answer shapes),
//! `redelivery` (when webhooks are sent again), `webhook_target` (where they go), `app` (the
//! shared core the endpoints and deliveries work on), `api` (the `/v1` endpoints),
//! [`deliveries`] (signing and sending webhooks), [`admin`], [`server`] (start,
//! [`RunningFake`]), [`error`].

pub mod admin;
mod api;
mod app;
pub mod clock;
pub mod config;
pub mod deliveries;
pub mod error;
pub mod faults;
mod redelivery;
pub mod rules;
pub mod sandbox_starter;
pub mod server;
mod state;
mod webhook_target;
mod wire;

pub use admin::{FaultState, StateView};
pub use clock::ClockMode;
pub use config::{sandbox, FakeConfig, FakeScenario};
pub use deliveries::{DeliveryReport, RedeliveryPolicy};
pub use error::FakeError;
pub use faults::{Endpoint, Fault, FaultRule, FaultTarget};
pub use rules::{Decision, Facts, Mode, Outcome, Rule, RuleSet};
pub use sandbox_starter::FakeStarter;
pub use server::{FakeFlexFactor, RunningFake};
pub use state::{Action, CallLog, Delivery, DeliveryAttempt, Order, OrderStatus, Scheduled};
