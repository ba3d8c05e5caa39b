//! The network fees an attempt the guard did not let be made would have cost: the published
//! figures the reference gives (`../shared/reference/decline-domain.md` §1.2-1.3), in US cents.
//! They are estimates: the figures come from acquirers' and processors' pages, not from Visa or
//! Mastercard, vary by region and date, and a fee is charged to the merchant by its acquirer,
//! which may pass it on differently.

use chrono::{DateTime, Utc};
use salvage_domain::network::{CardFact, NetworkRule, WINDOW};

/// Visa's Excessive Reattempts fee, per reattempt, domestic (cross-border: $0.15). Charged on
/// any reattempt after a category 1 decline (N1) and on each after the 15th in 30 days after a
/// category 2-4 decline (N2).
pub const VISA_REATTEMPT_USD_MINOR: i64 = 10;
/// Mastercard's fee on a card-not-present authorization retried within 30 days of a MAC 03 or
/// 21 decline (N3).
pub const MASTERCARD_MAC_03_21_USD_MINOR: i64 = 3;
/// Mastercard's excessive attempts fee, per attempt past 35 on one card in 30 days (N5), as
/// from 1 January 2025.
pub const MASTERCARD_EXCESSIVE_USD_MINOR: i64 = 50;

/// The fee a blocked attempt avoided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Avoided {
    /// The published fee, in US cents.
    Fee(i64),
    /// The rule has no published fee for this case: an N3 block after MAC 01 or 99 only.
    Unpriced,
    /// No fee falls on an early or late attempt: N4's advice (the Authorization Optimizer fee
    /// applies whether the merchant waits or not, §1.3).
    NoFee,
}

/// The fee an attempt blocked at `now` by `rule` avoided; `facts` are the card facts of the
/// aggregate that recorded the block (its own declines hold the advice that blocked it).
pub fn avoided(rule: NetworkRule, facts: &[CardFact], now: DateTime<Utc>) -> Avoided {
    match rule {
        NetworkRule::N1 | NetworkRule::N2 => Avoided::Fee(VISA_REATTEMPT_USD_MINOR),
        NetworkRule::N5 => Avoided::Fee(MASTERCARD_EXCESSIVE_USD_MINOR),
        NetworkRule::N4 => Avoided::NoFee,
        NetworkRule::N3 => {
            let approved = facts
                .iter()
                .filter_map(|f| match f {
                    CardFact::Approval { at } if *at <= now => Some(*at),
                    _ => None,
                })
                .max();
            let fined = facts.iter().any(|f| match f {
                CardFact::Decline {
                    at,
                    mastercard_advice_code: Some(mac),
                    ..
                } => {
                    matches!(mac.trim(), "03" | "3" | "21")
                        && *at <= now
                        && now - *at < WINDOW
                        && approved.is_none_or(|a| *at > a)
                }
                _ => false,
            });
            if fined {
                Avoided::Fee(MASTERCARD_MAC_03_21_USD_MINOR)
            } else {
                Avoided::Unpriced
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use salvage_domain::GatewayId;

    use super::*;

    fn mc(day: i64, mac: &str) -> CardFact {
        CardFact::Decline {
            at: t(day),
            gateway: GatewayId::new("nmi"),
            response_code: "05".into(),
            visa_category: None,
            mastercard_advice_code: Some(mac.into()),
        }
    }

    fn t(day: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(day)
    }

    #[test]
    fn fees_follow_the_published_figures() {
        assert_eq!(avoided(NetworkRule::N1, &[], t(0)), Avoided::Fee(10));
        assert_eq!(avoided(NetworkRule::N2, &[], t(0)), Avoided::Fee(10));
        assert_eq!(avoided(NetworkRule::N5, &[], t(0)), Avoided::Fee(50));
        assert_eq!(
            avoided(NetworkRule::N4, &[mc(0, "25")], t(0)),
            Avoided::NoFee
        );
        assert_eq!(
            avoided(NetworkRule::N3, &[mc(0, "03")], t(1)),
            Avoided::Fee(3)
        );
        assert_eq!(
            avoided(NetworkRule::N3, &[mc(0, "21")], t(29)),
            Avoided::Fee(3)
        );
        // MAC 01 and 99 have no published fee; nor has MAC 03 after 30 days.
        assert_eq!(
            avoided(NetworkRule::N3, &[mc(0, "01")], t(1)),
            Avoided::Unpriced
        );
        assert_eq!(
            avoided(NetworkRule::N3, &[mc(0, "99")], t(1)),
            Avoided::Unpriced
        );
        assert_eq!(
            avoided(NetworkRule::N3, &[mc(0, "03")], t(31)),
            Avoided::Unpriced
        );
        let approved = [mc(0, "03"), CardFact::Approval { at: t(1) }];
        assert_eq!(avoided(NetworkRule::N3, &approved, t(2)), Avoided::Unpriced);
        // As in the guard, an approval in the same instant as the decline is taken as the later.
        let same = [mc(1, "03"), CardFact::Approval { at: t(1) }];
        assert_eq!(avoided(NetworkRule::N3, &same, t(2)), Avoided::Unpriced);
    }
}
