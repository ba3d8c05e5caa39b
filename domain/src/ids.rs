//! Identifier newtypes, so that a gateway id is never passed where an order id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

id_type!(
    /// A gateway of the setup: a regular processor or the FlexFactor gateway.
    GatewayId
);
id_type!(
    /// An ATRI gateway profile (load-balancing profile).
    GatewayProfileId
);
id_type!(
    /// A cascade profile.
    CascadeProfileId
);
id_type!(
    /// A recycle billing profile.
    RecycleProfileId
);
id_type!(
    /// A campaign.
    CampaignId
);
id_type!(
    /// A product of a campaign.
    ProductId
);
id_type!(
    /// The CRM's order id; also the Order aggregate id and FlexFactor's merchant `orderId`.
    OrderId
);
id_type!(
    /// The CRM's subscription (purchase) id; the Subscription aggregate id.
    SubscriptionId
);
id_type!(
    /// FlexFactor's own order id (its `orderSessionKey`).
    FlexFactorOrderId
);
