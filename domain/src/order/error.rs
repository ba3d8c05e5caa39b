//! Errors of the Order aggregate: why a command was refused.

use crate::routing::RerunRefusal;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("order {0} has already been placed")]
    AlreadyPlaced(String),
    #[error("the order has not been placed")]
    NotPlaced,
    #[error("campaign {0} is not in the setup")]
    UnknownCampaign(String),
    #[error("gateway {0} is not in the setup")]
    UnknownGateway(String),
    #[error("S3: FlexFactor gateway {0} is for decline salvage only; an order's first attempt cannot be on it")]
    FirstAttemptOnFlexFactor(String),
    #[error("the order's currency {order} differs from the campaign's {campaign}")]
    CurrencyMismatch { order: String, campaign: String },
    #[error("a {0} order needs a subscription_id")]
    MissingSubscription(&'static str),
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    #[error("{0}")]
    RerunRefused(RerunRefusal),
    #[error("no cascade step {0} is awaiting an answer")]
    UnexpectedCascadeStep(u32),
    #[error("no FlexFactor submission {0} is awaiting an answer")]
    UnexpectedSubmission(u32),
    #[error("gateway {0} is not a FlexFactor gateway")]
    NotFlexFactor(String),
    #[error("only a recurring order can be handed to FlexFactor by recycle billing")]
    NotRecurring,
}

impl OrderError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::AlreadyPlaced(_) => "conflict",
            OrderError::NotPlaced => "not_found",
            OrderError::RerunRefused(r) => r.code(),
            OrderError::UnexpectedCascadeStep(_) | OrderError::UnexpectedSubmission(_) => {
                "conflict"
            }
            _ => "invalid_request",
        }
    }
}
