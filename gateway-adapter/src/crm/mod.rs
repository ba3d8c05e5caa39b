//! The calls Salvage makes to the CRM: the charge hook (regular gateways are charged through
//! the CRM), CRM notifications, and the HMAC signing both carry. See `docs/configuration.md`.

pub mod charge_hook;
pub mod notifier;
pub mod signing;
pub mod wire;

pub use charge_hook::{HttpChargeHook, SandboxProcessor};
pub use notifier::{backoff, Delivered, Notifier};
