//! The CRM's own policy in a scenario or a variant: rerunning declined sales and trial
//! completions on FlexFactor, cancelling after a chargeback; and its check.

use salvage_domain::GatewayId;
use serde::{Deserialize, Serialize};

use crate::error::Problems;

/// What the CRM does on its own: rerunning declined sales and trial completions on FlexFactor,
/// cancelling the subscriptions of a customer who charged back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrmPolicy {
    /// R2: the share of soft-declined new sales (after their cascade) rerun on FlexFactor.
    pub rerun_share: f64,
    /// The share of soft-declined trial completions rerun on FlexFactor.
    pub rerun_trial_share: f64,
    /// How long after the decline the rerun is requested.
    pub rerun_delay_hours: u32,
    /// Rerun a sale whose cascade already went to FlexFactor (and was declined there).
    pub rerun_after_cascade_flexfactor: bool,
    /// The FlexFactor gateway reruns name (R1); by default the setup's only FlexFactor gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_gateway: Option<GatewayId>,
    /// Cancel the customer's subscriptions when a chargeback is recorded (K1).
    pub cancel_on_chargeback: bool,
}

impl Default for CrmPolicy {
    fn default() -> Self {
        CrmPolicy {
            rerun_share: 0.5,
            rerun_trial_share: 0.5,
            rerun_delay_hours: 24,
            rerun_after_cascade_flexfactor: false,
            rerun_gateway: None,
            cancel_on_chargeback: true,
        }
    }
}

pub(crate) fn check_crm(crm: &CrmPolicy, at: &str, p: &mut Problems) {
    p.share(format!("{at}.rerun_share"), crm.rerun_share);
    p.share(format!("{at}.rerun_trial_share"), crm.rerun_trial_share);
}
