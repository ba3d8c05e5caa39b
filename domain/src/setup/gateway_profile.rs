//! ATRI gateway profiles (load-balancing profiles). FlexFactor may not be a member (S4).

use serde::Deserialize;

use crate::ids::{CascadeProfileId, GatewayId, GatewayProfileId};

/// An ATRI gateway profile: the gateways a sale may be routed to, and an optional cascade
/// profile tried when the routed gateway soft-declines (C1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayProfile {
    pub id: GatewayProfileId,
    pub members: Vec<GatewayId>,
    #[serde(default)]
    pub cascade_profile: Option<CascadeProfileId>,
}
