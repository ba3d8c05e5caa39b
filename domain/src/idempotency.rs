//! F3: idempotency keys fixed by what they identify, so a retry after a crash or a timeout is a
//! replay, never a second submission or charge.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ids::OrderId;

/// Salvage's UUID namespace for name-based (v5) keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x5a17_a9e0_f1ec_4f7a_9c3d_2b6e_8d40_1c55);

/// A deterministic key, rendered as a GUID (FlexFactor's `idempotencyKey` is a GUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    fn from_name(name: &str) -> Self {
        IdempotencyKey(Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string())
    }

    /// The key of FlexFactor submission number `attempt` of an order (F3).
    pub fn salvage(order: &OrderId, attempt: u32) -> Self {
        Self::from_name(&format!("salvage/{order}/{attempt}"))
    }

    /// The key of a charge on a regular gateway during a cascade.
    pub fn cascade_charge(order: &OrderId, step: u32) -> Self {
        Self::from_name(&format!("cascade-charge/{order}/{step}"))
    }

    /// The key of a recycle re-attempt on the billing gateway.
    pub fn recycle_charge(order: &OrderId, attempt: u32) -> Self {
        Self::from_name(&format!("recycle-charge/{order}/{attempt}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F3: the key is fixed by (order, salvage attempt).
    #[test]
    fn f3_salvage_key_is_fixed_by_order_and_attempt() {
        let o = OrderId::new("o-1");
        assert_eq!(
            IdempotencyKey::salvage(&o, 1),
            IdempotencyKey::salvage(&o, 1)
        );
        assert_ne!(
            IdempotencyKey::salvage(&o, 1),
            IdempotencyKey::salvage(&o, 2)
        );
        assert_ne!(
            IdempotencyKey::salvage(&o, 1),
            IdempotencyKey::salvage(&OrderId::new("o-2"), 1)
        );
        assert!(Uuid::parse_str(IdempotencyKey::salvage(&o, 1).as_str()).is_ok());
    }
}
