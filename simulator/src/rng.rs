//! Seeded random streams: one ChaCha8 stream per (scenario seed, customer, draw site).
//!
//! Every random draw of the simulation comes from the stream of the place it is made for (the
//! first attempt of a customer's sale, re-attempt 3 of the rebill of cycle 5, the FlexFactor
//! outcome of a rerun...). Variants therefore see the same traffic ("common random numbers"):
//! the rebill of cycle 5 gets the same gateway answer in every variant that reaches it, whatever
//! happened elsewhere; and no draw depends on the thread that runs it.

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;

/// Where a draw is made. The numbers only need to differ between sites; they are part of the
/// report's reproducibility contract, so they never change meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// The customer's attributes: arrival time, product, ip_address, routed gateway.
    Profile,
    /// The first attempt of the new sale.
    SaleAttempt,
    /// A cascade step on a regular gateway.
    CascadeStep { step: u32 },
    /// FlexFactor's handling of submission `attempt` of order `order` (0: the sale; n: the
    /// rebill of cycle n).
    FlexFactor { order: u32, attempt: u32 },
    /// The first attempt of the rebill of cycle `cycle`.
    Rebill { cycle: u32 },
    /// Re-attempt `attempt` of the rebill of cycle `cycle`.
    Recycle { cycle: u32, attempt: u32 },
    /// The CRM's decision to rerun order `order` on FlexFactor.
    Rerun { order: u32 },
    /// What happens after a salvage of order `order`: chargeback, refund or nothing.
    AfterSale { order: u32 },
}

impl Site {
    fn key(self) -> [u64; 3] {
        match self {
            Site::Profile => [1, 0, 0],
            Site::SaleAttempt => [2, 0, 0],
            Site::CascadeStep { step } => [3, step.into(), 0],
            Site::FlexFactor { order, attempt } => [4, order.into(), attempt.into()],
            Site::Rebill { cycle } => [5, cycle.into(), 0],
            Site::Recycle { cycle, attempt } => [6, cycle.into(), attempt.into()],
            Site::Rerun { order } => [7, order.into(), 0],
            Site::AfterSale { order } => [8, order.into(), 0],
        }
    }
}

/// SplitMix64's finalizer: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stream of one draw site of one customer.
pub fn stream(seed: u64, customer: u64, site: Site) -> ChaCha8Rng {
    let [a, b, c] = site.key();
    let mut h = mix(seed);
    let mut bytes = [0u8; 32];
    for (i, word) in [customer, a, b, c].into_iter().enumerate() {
        h = mix(h ^ word.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        bytes[i * 8..i * 8 + 8].copy_from_slice(&h.to_le_bytes());
    }
    ChaCha8Rng::from_seed(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_fixed_by_seed_customer_and_site() {
        let draw = |seed, customer, site| stream(seed, customer, site).random::<u64>();
        assert_eq!(draw(1, 2, Site::Profile), draw(1, 2, Site::Profile));
        assert_ne!(draw(1, 2, Site::Profile), draw(1, 3, Site::Profile));
        assert_ne!(draw(1, 2, Site::Profile), draw(2, 2, Site::Profile));
        assert_ne!(
            draw(1, 2, Site::Rebill { cycle: 1 }),
            draw(1, 2, Site::Rebill { cycle: 2 })
        );
        assert_ne!(
            draw(
                1,
                2,
                Site::Recycle {
                    cycle: 1,
                    attempt: 2
                }
            ),
            draw(
                1,
                2,
                Site::Recycle {
                    cycle: 2,
                    attempt: 1
                }
            )
        );
    }
}
