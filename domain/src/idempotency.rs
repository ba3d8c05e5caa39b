//! F3: idempotency keys fixed by what they identify, so a retry after a crash or a timeout is a
//! replay, never a second submission or charge.

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use uuid::{Builder, Uuid};

use crate::ids::{joined, OrderId, Part};

/// Salvage's UUID namespace for name-based (v5) keys.
const NAMESPACE: Uuid = Uuid::from_u128(0x5a17_a9e0_f1ec_4f7a_9c3d_2b6e_8d40_1c55);

/// A deterministic key, rendered as a GUID (FlexFactor's `idempotencyKey` is a GUID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(pub String);

impl IdempotencyKey {
    fn from_name(name: &str) -> Self {
        Self::from_bytes(name.as_bytes())
    }

    fn from_bytes(name: &[u8]) -> Self {
        // `Uuid::new_v5(&NAMESPACE, name)` (the SHA-1 of the namespace and the name, version
        // and variant set), hashed by the `sha1` crate: with the CPU's SHA instructions where
        // it has them, several times faster than `uuid`'s portable SHA-1. The keys are the
        // same (the test below compares them with `new_v5`).
        let mut hasher = Sha1::new();
        hasher.update(NAMESPACE.as_bytes());
        hasher.update(name);
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        let uuid = Builder::from_sha1_bytes(bytes).into_uuid();
        // The hyphenated lower-case form `to_string` gives, without the formatting machinery.
        let mut buf = Uuid::encode_buffer();
        let text = uuid.hyphenated().encode_lower(&mut buf);
        IdempotencyKey(text.to_string())
    }

    /// The key named `{kind}/{order}/{number}` (the name is built on the stack when short).
    fn of(kind: &str, order: &OrderId, number: u32) -> Self {
        let mut digits = itoa::Buffer::new();
        let parts: [&[u8]; 5] = [
            kind.as_bytes(),
            b"/",
            order.as_str().as_bytes(),
            b"/",
            digits.format(number).as_bytes(),
        ];
        let mut name = [0u8; 128];
        let mut len = 0;
        for p in parts {
            let Some(to) = name.get_mut(len..len + p.len()) else {
                // A long order id: the name on the heap.
                return Self::from_name(&joined(&[
                    Part::Text(kind),
                    Part::Text("/"),
                    Part::Text(order.as_str()),
                    Part::Text("/"),
                    Part::Number(u64::from(number)),
                ]));
            };
            to.copy_from_slice(p);
            len += p.len();
        }
        Self::from_bytes(&name[..len])
    }

    /// The key of FlexFactor submission number `attempt` of an order (F3).
    pub fn salvage(order: &OrderId, attempt: u32) -> Self {
        Self::of("salvage", order, attempt)
    }

    /// The key of a charge on a regular gateway during a cascade.
    pub fn cascade_charge(order: &OrderId, step: u32) -> Self {
        Self::of("cascade-charge", order, step)
    }

    /// The key of a recycle re-attempt on the billing gateway.
    pub fn recycle_charge(order: &OrderId, attempt: u32) -> Self {
        Self::of("recycle-charge", order, attempt)
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
        // The names and their rendering, as they were first written (keys are stored: they
        // never change).
        let long = OrderId::new("o".repeat(200));
        for (key, name) in [
            (
                IdempotencyKey::salvage(&o, 12),
                "salvage/o-1/12".to_string(),
            ),
            (
                IdempotencyKey::cascade_charge(&o, 3),
                "cascade-charge/o-1/3".to_string(),
            ),
            (
                IdempotencyKey::recycle_charge(&o, u32::MAX),
                format!("recycle-charge/o-1/{}", u32::MAX),
            ),
            (
                IdempotencyKey::salvage(&long, 0),
                format!("salvage/{}/0", "o".repeat(200)),
            ),
        ] {
            assert_eq!(
                key.as_str(),
                Uuid::new_v5(&NAMESPACE, name.as_bytes()).to_string()
            );
        }
    }

    /// The key of a name is `uuid`'s v5 of it, for names of every length around SHA-1's
    /// 64-byte blocks (the namespace takes 16 bytes of the first).
    #[test]
    fn keys_are_uuid_v5_of_their_names() {
        for len in 0..300 {
            let name: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(
                IdempotencyKey::from_bytes(&name).as_str(),
                Uuid::new_v5(&NAMESPACE, &name).to_string()
            );
        }
    }
}
