//! Campaigns and their products.

use serde::Deserialize;

use crate::ids::{CampaignId, GatewayId, GatewayProfileId, ProductId};
use crate::money::Currency;

/// A campaign: the products it sells and how its sales are routed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Campaign {
    pub id: CampaignId,
    /// Single Transaction orders: such sales never cascade to FlexFactor (C4).
    #[serde(default)]
    pub single_transaction: bool,
    /// The gateway new sales are charged on, if the campaign fixes one (S3: never FlexFactor).
    #[serde(default)]
    pub gateway: Option<GatewayId>,
    /// The ATRI gateway profile new sales are routed through, if any.
    #[serde(default)]
    pub gateway_profile: Option<GatewayProfileId>,
    pub currency: Currency,
    #[serde(default)]
    pub products: Vec<Product>,
}

/// A product of a campaign.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Product {
    pub id: ProductId,
    pub price_minor: i64,
    /// S3: assigning FlexFactor here is rejected.
    #[serde(default)]
    pub gateway: Option<GatewayId>,
    /// Present for a recurring (subscription) product.
    #[serde(default)]
    pub recurring: Option<Recurring>,
}

/// How a recurring product bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recurring {
    /// Days between two billing cycles.
    pub interval_days: i64,
    /// Days of trial before the first rebill (the trial completion); none when absent.
    #[serde(default)]
    pub trial_days: Option<i64>,
}

impl Campaign {
    pub fn product(&self, id: &ProductId) -> Option<&Product> {
        self.products.iter().find(|p| &p.id == id)
    }
}
