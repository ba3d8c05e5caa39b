//! The production service (`salvage serve`): the CRM-facing API under `/v1`, FlexFactor's
//! webhooks, the charge hook and CRM notifications, operations endpoints, and the background
//! worker over the engine. See `docs/api.md` and `docs/operations.md`.

pub mod api;
pub mod config;
pub mod console;
pub mod convert;
pub mod dto;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod preflight;
pub mod sandbox;
pub mod server;
pub mod state;
pub mod summary;
pub mod webhooks;

pub use config::{ConfigError, ServiceConfig};
pub use server::{start, RunningService, ServeOptions, ServiceError};
