//! Identifier newtypes, so that a gateway id is never passed where an order id is expected.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Appends the decimal digits of `n` to `s`, as `write!(s, "{n}")` would, without the
/// formatting machinery (ids and keys are built millions of times in a simulation).
pub fn push_decimal(s: &mut String, n: u64) {
    s.push_str(itoa::Buffer::new().format(n));
}

/// `parts` joined, each part text or a number, as `format!` would write them.
pub(crate) fn joined(parts: &[Part<'_>]) -> String {
    let len = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.len(),
            Part::Number(_) => 20,
        })
        .sum();
    let mut s = String::with_capacity(len);
    for p in parts {
        match p {
            Part::Text(t) => s.push_str(t),
            Part::Number(n) => push_decimal(&mut s, *n),
        }
    }
    s
}

/// A part of [`joined`].
pub(crate) enum Part<'a> {
    Text(&'a str),
    Number(u64),
}

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

#[cfg(test)]
mod tests {
    use super::{joined, Part};

    #[test]
    fn joined_reads_as_formatted() {
        for n in [0u64, 7, 10, 99, 1234567, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(
                joined(&[
                    Part::Text("order:"),
                    Part::Text("c1"),
                    Part::Text(":"),
                    Part::Number(n)
                ]),
                format!("order:c1:{n}")
            );
        }
        assert_eq!(joined(&[]), "");
    }
}
