//! Cascade profiles (S5): ordered gateways tried after a soft-declined new sale.

use serde::Deserialize;

use crate::ids::{CascadeProfileId, GatewayId};

/// An ordered list of gateways; FlexFactor may be one of them (S5).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeProfile {
    pub id: CascadeProfileId,
    pub gateways: Vec<GatewayId>,
}
