//! Stable names of domain outcomes, used as keys of the report's counters (`BTreeMap`s, so the
//! report lists them in name order).

use salvage_domain::ids::push_decimal;
use salvage_domain::order::{IgnoredBecause, OrderError, SalvageFailure};
use salvage_domain::process_manager::NotificationKind;
use salvage_domain::routing::RerunRefusal;
use salvage_domain::subscription::{AdvanceVia, RecycleFailure, SubscriptionError};

/// `prefix`, `middle`, `-` and the decimal `n` (`format!("{prefix}{middle}-{n}")`), without the
/// formatting machinery: the engine names millions of orders and FlexFactor ids.
pub(crate) fn id_of(prefix: &str, middle: &str, n: Option<u64>) -> String {
    let mut s = String::with_capacity(prefix.len() + middle.len() + 21);
    s.push_str(prefix);
    s.push_str(middle);
    if let Some(n) = n {
        s.push('-');
        push_decimal(&mut s, n);
    }
    s
}

/// `prefix` and the decimal `n` (`format!("{prefix}{n}")`).
pub(crate) fn numbered(prefix: &str, n: u64) -> String {
    let mut s = String::with_capacity(prefix.len() + 20);
    s.push_str(prefix);
    push_decimal(&mut s, n);
    s
}

pub(crate) fn failure_name(f: &SalvageFailure) -> &'static str {
    match f {
        SalvageFailure::Declined => "declined",
        SalvageFailure::Challenge => "challenge",
        SalvageFailure::Expired => "expired",
        SalvageFailure::Cancelled => "cancelled",
        SalvageFailure::Rejected => "rejected",
        SalvageFailure::OutcomeUnknown => "outcome_unknown",
        SalvageFailure::NotApproved => "not_approved",
        SalvageFailure::ExpiredUnreconciled => "expired_unreconciled",
    }
}

pub(crate) fn recycle_failure_name(f: &RecycleFailure) -> &'static str {
    match f {
        RecycleFailure::HardDecline => "hard_decline",
        RecycleFailure::Exhausted => "exhausted",
        RecycleFailure::NoRecycleProfile => "no_recycle_profile",
        RecycleFailure::FlexFactorFailed => "flexfactor_failed",
        RecycleFailure::NetworkNeverRetry => "network_never_retry",
    }
}

pub(crate) fn notification_name(k: &NotificationKind) -> &'static str {
    match k {
        NotificationKind::OrderCompleted => "order_completed",
        NotificationKind::OrderDeclined => "order_declined",
        NotificationKind::TrialCompletionFailed => "trial_completion_failed",
        NotificationKind::SubscriptionAdvanced { .. } => "subscription_advanced",
        NotificationKind::RecycleFailed { .. } => "recycle_failed",
        NotificationKind::Chargeback => "chargeback",
        NotificationKind::Refunded => "refunded",
    }
}

pub(crate) fn ignored_name(r: &IgnoredBecause) -> &'static str {
    match r {
        IgnoredBecause::AlreadyResolved => "already_resolved",
        IgnoredBecause::NoSalvage => "no_salvage",
        IgnoredBecause::NotApplicable => "not_applicable",
        IgnoredBecause::ChargebacksNotIncluded => "chargebacks_not_included",
    }
}

pub(crate) fn order_error_name(e: &OrderError) -> &'static str {
    match e {
        OrderError::AlreadyPlaced(_) => "order: already_placed",
        OrderError::NotPlaced => "order: not_placed",
        OrderError::UnknownCampaign(_) => "order: unknown_campaign",
        OrderError::UnknownGateway(_) => "order: unknown_gateway",
        OrderError::FirstAttemptOnFlexFactor(_) => "order: first_attempt_on_flexfactor",
        OrderError::CurrencyMismatch { .. } => "order: currency_mismatch",
        OrderError::MissingSubscription(_) => "order: missing_subscription",
        OrderError::ZeroAmount => "order: zero_amount",
        OrderError::RerunRefused(r) => match r {
            RerunRefusal::RerunOnGatewayProfile(_) => "rerun: rerun_on_gateway_profile",
            RerunRefusal::NotFlexFactorGateway(_) => "rerun: not_flexfactor_gateway",
            RerunRefusal::UnknownGateway(_) => "rerun: unknown_gateway",
            RerunRefusal::HardDecline => "rerun: hard_decline",
            RerunRefusal::NotDeclined(_) => "rerun: not_declined",
            RerunRefusal::AlreadyPending => "rerun: salvage_pending",
            RerunRefusal::RecurringOrder => "rerun: recurring_order",
        },
        OrderError::UnexpectedCascadeStep(_) => "order: unexpected_cascade_step",
        OrderError::UnexpectedSubmission(_) => "order: unexpected_submission",
        OrderError::NotFlexFactor(_) => "order: not_flexfactor",
        OrderError::NotRecurring => "order: not_recurring",
    }
}

pub(crate) fn subscription_error_name(e: &SubscriptionError) -> &'static str {
    match e {
        SubscriptionError::AlreadyExists(_) => "subscription: already_exists",
        SubscriptionError::NotFound => "subscription: not_found",
        SubscriptionError::BillingOnFlexFactor(_) => "subscription: billing_on_flexfactor",
        SubscriptionError::UnknownGateway(_) => "subscription: unknown_gateway",
        SubscriptionError::NotBilling(_) => "subscription: not_billing",
        SubscriptionError::AlreadyRecycling(_) => "subscription: already_recycling",
        SubscriptionError::NotRecycling(_) => "subscription: not_recycling",
        SubscriptionError::UnexpectedAttempt { .. } => "subscription: unexpected_attempt",
        SubscriptionError::NotDue(_) => "subscription: not_due",
        SubscriptionError::NotAwaiting(_) => "subscription: not_awaiting",
    }
}

pub(crate) fn advance_name(via: &AdvanceVia) -> &'static str {
    match via {
        AdvanceVia::Rebill => "rebill",
        AdvanceVia::Recycle { .. } => "recycle",
        AdvanceVia::FlexFactor => "flexfactor",
    }
}

#[cfg(test)]
mod tests {
    use super::{id_of, numbered};

    #[test]
    fn ids_read_as_formatted() {
        for n in [0u64, 9, 10, 4711, u64::MAX] {
            assert_eq!(numbered("c", n), format!("c{n}"));
            assert_eq!(id_of("ff-", "c1-c2", Some(n)), format!("ff-c1-c2-{n}"));
        }
        assert_eq!(id_of("whk-", "c1", None), "whk-c1");
    }
}
