//! The FlexFactor adapter: the domain's `FlexFactor` port over HTTP, and FlexFactor's webhooks.
//!
//! - [`client`]: [`FlexFactorClient`] (`FlexFactorClient::new(config, credentials, clock)`),
//!   implementing `salvage_domain::ports::FlexFactor`; token caching (F1), tokenization (F2),
//!   idempotent submissions and the retry policy (F3), cents and dollars (F4).
//! - [`transformers`]: the wire types and their conversions to and from domain types; reading is
//!   case-insensitive and keeps unknown statuses (F5).
//! - [`auth`]: the access-token cache (single flight, Clock-driven expiry).
//! - [`webhook`]: [`WebhookVerifier`] (W1, W2, W5), [`parse_delivery`], and the mapping of each
//!   event onto a [`FlexFactorResult`].
//! - [`signer`]: [`sign_webhook`], the same scheme from the sending side.
//! - [`error`]: [`FlexFactorClientError`] and the parsed form of 400 answers.
//!
//! See `docs/flexfactor.md` for what is sent on each route and how answers map.

pub mod auth;
pub mod client;
pub mod error;
pub mod metered;
pub mod signer;
pub mod transformers;
pub mod webhook;

pub use auth::{AccessToken, TokenCache};
pub use client::{
    FlexFactorClient, FlexFactorConfig, RetryConfig, PRODUCTION_BASE_URL, SANDBOX_BASE_URL,
};
pub use error::{FlexFactorClientError, TupleError, ValidationErrors};
pub use signer::{
    content_sha512, format_fc_date, sign_webhook, SignedWebhookHeaders, WebhookKey, WebhookKeyError,
};
pub use transformers::{EvaluateRequest, WireError};
pub use webhook::{
    parse_delivery, FlexFactorResult, SignatureCheck, VerifiedDelivery, WebhookError,
    WebhookHeaders, WebhookOutcome, WebhookVerifier, WebhookVerifierConfig,
};
