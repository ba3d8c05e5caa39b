//! Errors of the Subscription aggregate.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("subscription {0} already exists")]
    AlreadyExists(String),
    #[error("the subscription does not exist")]
    NotFound,
    #[error("S8: FlexFactor gateway {0} can never be a subscription's billing gateway")]
    BillingOnFlexFactor(String),
    #[error("gateway {0} is not in the setup")]
    UnknownGateway(String),
    #[error("the subscription is {0}; it does not bill")]
    NotBilling(&'static str),
    #[error("the subscription is already recycling rebill {0}")]
    AlreadyRecycling(String),
    #[error("no recycle billing of rebill {0} is under way")]
    NotRecycling(String),
    #[error("re-attempt {attempt} is not the next one (next is {next})")]
    UnexpectedAttempt { attempt: u32, next: u32 },
    #[error("re-attempt {0} is not due yet")]
    NotDue(u32),
    #[error("re-attempt {0} is not awaiting an answer")]
    NotAwaiting(u32),
}

impl SubscriptionError {
    /// The stable API error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubscriptionError::NotFound => "not_found",
            SubscriptionError::AlreadyExists(_)
            | SubscriptionError::AlreadyRecycling(_)
            | SubscriptionError::UnexpectedAttempt { .. }
            | SubscriptionError::NotAwaiting(_) => "conflict",
            _ => "invalid_request",
        }
    }
}
