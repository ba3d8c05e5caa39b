//! Recycle billing profiles (Y1-Y4, S6).

use serde::Deserialize;

use crate::ids::{GatewayId, RecycleProfileId};

/// A recycle billing profile: ordered re-attempts of a soft-declined rebill, applied to the
/// subscriptions billing on its gateways.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecycleProfile {
    pub id: RecycleProfileId,
    /// "Apply to Gateways": a gateway belongs to at most one profile; never FlexFactor (S8).
    pub gateways: Vec<GatewayId>,
    /// The FlexFactor gateway used by the attempts marked `flexfactor`.
    #[serde(default)]
    pub flexfactor_gateway: Option<GatewayId>,
    /// Re-attempt 1, 2, ... in order.
    pub attempts: Vec<RecycleAttempt>,
}

/// One re-attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecycleAttempt {
    /// Days to wait, counted from the previous attempt (Y1).
    pub wait_days: i64,
    /// Hand the rebill to FlexFactor at this attempt (S6: only 4-6, 7-9 or the final one).
    #[serde(default)]
    pub flexfactor: bool,
}
