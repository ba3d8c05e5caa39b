//! The guard: may an attempt on a card be made now (N1-N5, N9)?

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::block::{NetworkBlock, NetworkRule};
use super::card_history::{CardFact, CardKey, CardLedger};
use super::card_network::CardNetwork;
use super::rules_config::{FlexFactorNetworkRules, NetworkRulesConfig};
use crate::ids::GatewayId;

/// The window of every count and of N3's "not within 30 days".
pub const WINDOW: Duration = Duration::days(30);
/// N2: Visa fines every reattempt after the 15th in 30 days.
pub const VISA_MAX_REATTEMPTS: usize = 15;
/// N5: Mastercard fines attempts past 35 on one card in 30 days.
pub const MASTERCARD_MAX_ATTEMPTS: usize = 35;

/// What the guard needs to know of the gateways: the processor of a regular gateway (N6), and
/// whether a FlexFactor gateway's hand-overs count against the card (N9).
pub trait GatewayFacts {
    fn processor(&self, gateway: &GatewayId) -> Option<&str>;
    fn hand_overs_count(&self, gateway: &GatewayId) -> bool;
}

/// The attempt to be decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptKind {
    /// A charge on a regular gateway; `can_wait`: it may be moved to a later time (a recycle
    /// re-attempt may, a cascade step may not).
    Regular { can_wait: bool },
    /// A hand-over to FlexFactor, under its gateway's `network_rules`.
    FlexFactor { rules: FlexFactorNetworkRules },
}

/// The guard's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    /// N4: not before `until`; the attempt is moved there.
    WaitUntil {
        until: DateTime<Utc>,
        rule: NetworkRule,
    },
    /// Not made (N7).
    Block {
        reason: NetworkBlock,
        rule: NetworkRule,
    },
}

fn mac(code: &Option<String>) -> Option<u8> {
    code.as_deref().and_then(|c| c.trim().parse().ok())
}

/// N4: the wait Mastercard advises with MAC 24-30.
fn advised_wait(mac: u8) -> Option<Duration> {
    Some(match mac {
        24 => Duration::hours(1),
        25 => Duration::hours(24),
        26 => Duration::days(2),
        27 => Duration::days(4),
        28 => Duration::days(6),
        29 => Duration::days(8),
        30 => Duration::days(10),
        _ => return None,
    })
}

/// Decides one attempt on a card of `network` whose history is `facts` (every order's and
/// subscription's, in any order) at `now`.
pub fn check(
    config: &NetworkRulesConfig,
    gateways: &dyn GatewayFacts,
    network: CardNetwork,
    facts: &[CardFact],
    now: DateTime<Utc>,
    kind: AttemptKind,
) -> Verdict {
    if unguarded(config, network, kind) {
        return Verdict::Allow;
    }
    let facts: Vec<&CardFact> = facts.iter().filter(|f| f.at() <= now).collect();
    check_facts(config, gateways, network, facts, now, kind)
}

/// Whether the rules leave every attempt of `kind` on a card of `network` alone, whatever its
/// history.
fn unguarded(config: &NetworkRulesConfig, network: CardNetwork, kind: AttemptKind) -> bool {
    !config.enabled
        || network == CardNetwork::Other
        || matches!(
            kind,
            AttemptKind::FlexFactor {
                rules: FlexFactorNetworkRules::Ignore
            }
        )
}

/// [`check`] on a card's facts as the aggregate deciding sees them: the facts of every other
/// aggregate about `card` from `ledger` (borrowed when it holds them), then its own, `own`. The
/// deciding aggregate is `id` of type `aggregate_type` (the ledger's entries of it are left
/// out: its state is newer). The same verdict as [`check`] on
/// `ledger.history(card).merged_with(&source(aggregate_type, id), own)`, without copying a fact
/// when the ledger lends its history ([`CardLedger::history_of`]).
#[allow(clippy::too_many_arguments)]
pub fn check_card(
    config: &NetworkRulesConfig,
    gateways: &dyn GatewayFacts,
    card: &CardKey,
    ledger: &dyn CardLedger,
    (aggregate_type, id): (&str, &str),
    own: &[CardFact],
    now: DateTime<Utc>,
    kind: AttemptKind,
) -> Verdict {
    if unguarded(config, card.network, kind) {
        return Verdict::Allow;
    }
    let history = ledger.history_of(card);
    let facts: Vec<&CardFact> = history
        .others(aggregate_type, id)
        .chain(own)
        .filter(|f| f.at() <= now)
        .collect();
    check_facts(config, gateways, card.network, facts, now, kind)
}

/// [`check`] on the facts up to `now` (borrowed, in the history's order).
fn check_facts(
    config: &NetworkRulesConfig,
    gateways: &dyn GatewayFacts,
    network: CardNetwork,
    mut facts: Vec<&CardFact>,
    now: DateTime<Utc>,
    kind: AttemptKind,
) -> Verdict {
    if !config.enabled || network == CardNetwork::Other {
        return Verdict::Allow;
    }
    let (never_retry_only, can_wait) = match kind {
        AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::Ignore,
        } => return Verdict::Allow,
        AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::NeverRetry,
        } => (true, false),
        AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::Enforce,
        } => (false, false),
        AttemptKind::Regular { can_wait } => (false, can_wait),
    };
    facts.sort_by_key(|f| f.at());
    let window_start = now - WINDOW;
    // Declines since the card was last approved: an approval shows the issuer approves it again.
    // An approval and a decline in the same instant: the approval is taken as the later (test
    // worlds with a stopped clock decide many things in one instant; real ones do not).
    let last_approval = facts
        .iter()
        .filter_map(|f| match f {
            CardFact::Approval { at } => Some(*at),
            _ => None,
        })
        .max();
    let declines = facts.iter().filter_map(|f| match f {
        CardFact::Decline {
            at,
            gateway,
            response_code,
            visa_category,
            mastercard_advice_code,
        } if last_approval.is_none_or(|a| *at > a) => Some((
            *at,
            gateway,
            response_code,
            *visa_category,
            mastercard_advice_code,
        )),
        _ => None,
    });
    let counts = |f: &&&CardFact| match f {
        CardFact::Attempt {
            flexfactor,
            gateway,
            ..
        } => !flexfactor || gateways.hand_overs_count(gateway),
        _ => false,
    };
    match network {
        CardNetwork::Visa => {
            let never = declines.into_iter().any(|(_, gateway, code, category, _)| {
                let category = category
                    .unwrap_or_else(|| config.tables().category(gateways.processor(gateway), code));
                category == 1
            });
            if never {
                return Verdict::Block {
                    reason: NetworkBlock::NetworkNeverRetry,
                    rule: NetworkRule::N1,
                };
            }
            if never_retry_only {
                return Verdict::Allow;
            }
            // N2: reattempts in the window: attempts that came after a decline of the card (in
            // the history's order) by at most 30 days. The attempt to be made is one only when
            // such a decline precedes it. Some decline before an instant is at most 30 days
            // before it exactly when the latest one is.
            let mut latest_decline: Option<DateTime<Utc>> = None;
            let mut reattempts = 0;
            for f in &facts {
                match f {
                    CardFact::Decline { at, .. } => {
                        latest_decline = Some(latest_decline.map_or(*at, |d| d.max(*at)))
                    }
                    CardFact::Attempt { at, .. }
                        if counts(&f)
                            && *at > window_start
                            && latest_decline.is_some_and(|d| *at - d <= WINDOW) =>
                    {
                        reattempts += 1
                    }
                    _ => {}
                }
            }
            if latest_decline.is_none_or(|d| now - d > WINDOW) {
                return Verdict::Allow;
            }
            if reattempts >= VISA_MAX_REATTEMPTS {
                return Verdict::Block {
                    reason: NetworkBlock::NetworkRetryLimit,
                    rule: NetworkRule::N2,
                };
            }
            Verdict::Allow
        }
        CardNetwork::Mastercard => {
            let advised: Vec<(DateTime<Utc>, u8)> = declines
                .filter_map(|(at, _, _, _, code)| mac(code).map(|m| (at, m)))
                .collect();
            let never = advised
                .iter()
                .any(|(at, m)| *m == 1 || (matches!(m, 3 | 21 | 99) && *at > window_start));
            if never {
                return Verdict::Block {
                    reason: NetworkBlock::NetworkNeverRetry,
                    rule: NetworkRule::N3,
                };
            }
            if never_retry_only {
                return Verdict::Allow;
            }
            let attempts = facts
                .iter()
                .filter(counts)
                .filter(|f| f.at() > window_start)
                .count();
            if attempts >= MASTERCARD_MAX_ATTEMPTS {
                return Verdict::Block {
                    reason: NetworkBlock::NetworkRetryLimit,
                    rule: NetworkRule::N5,
                };
            }
            // N4: the latest decline with a wait advice sets the earliest next attempt.
            if let Some(until) = advised
                .iter()
                .rev()
                .find_map(|(at, m)| advised_wait(*m).map(|w| *at + w))
            {
                if now < until {
                    return if can_wait {
                        Verdict::WaitUntil {
                            until,
                            rule: NetworkRule::N4,
                        }
                    } else {
                        Verdict::Block {
                            reason: NetworkBlock::NetworkWait,
                            rule: NetworkRule::N4,
                        }
                    };
                }
            }
            Verdict::Allow
        }
        CardNetwork::Other => Verdict::Allow,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    struct Gateways {
        hand_overs_count: bool,
    }

    impl GatewayFacts for Gateways {
        fn processor(&self, gateway: &GatewayId) -> Option<&str> {
            (gateway.as_str() == "nmi").then_some("nmi")
        }
        fn hand_overs_count(&self, _gateway: &GatewayId) -> bool {
            self.hand_overs_count
        }
    }

    const GW: Gateways = Gateways {
        hand_overs_count: false,
    };
    const REGULAR: AttemptKind = AttemptKind::Regular { can_wait: true };
    const CASCADE: AttemptKind = AttemptKind::Regular { can_wait: false };

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn attempt(at: DateTime<Utc>) -> CardFact {
        CardFact::Attempt {
            at,
            gateway: GatewayId::new("nmi"),
            flexfactor: false,
        }
    }

    fn visa(at: DateTime<Utc>, code: &str, category: Option<u8>) -> CardFact {
        CardFact::Decline {
            at,
            gateway: GatewayId::new("nmi"),
            response_code: code.into(),
            visa_category: category,
            mastercard_advice_code: None,
        }
    }

    fn mc(at: DateTime<Utc>, mac: &str) -> CardFact {
        CardFact::Decline {
            at,
            gateway: GatewayId::new("nmi"),
            response_code: "05".into(),
            visa_category: None,
            mastercard_advice_code: Some(mac.into()),
        }
    }

    fn declined(at: DateTime<Utc>, f: CardFact) -> [CardFact; 2] {
        [attempt(at), f]
    }

    fn run(
        network: CardNetwork,
        facts: &[CardFact],
        now: DateTime<Utc>,
        kind: AttemptKind,
    ) -> Verdict {
        check(
            &NetworkRulesConfig::default(),
            &GW,
            network,
            facts,
            now,
            kind,
        )
    }

    fn blocked(reason: NetworkBlock, rule: NetworkRule) -> Verdict {
        Verdict::Block { reason, rule }
    }

    #[test]
    fn n1_a_visa_category_1_decline_blocks_every_later_attempt_on_any_gateway() {
        let h = declined(t0(), visa(t0(), "05", Some(1)));
        let never = blocked(NetworkBlock::NetworkNeverRetry, NetworkRule::N1);
        assert_eq!(run(CardNetwork::Visa, &h, t0(), CASCADE), never);
        let later = t0() + Duration::days(400);
        assert_eq!(run(CardNetwork::Visa, &h, later, REGULAR), never);
        for rules in [
            FlexFactorNetworkRules::NeverRetry,
            FlexFactorNetworkRules::Enforce,
        ] {
            let kind = AttemptKind::FlexFactor { rules };
            assert_eq!(run(CardNetwork::Visa, &h, later, kind), never);
        }
    }

    #[test]
    fn n1_an_approval_after_the_decline_lifts_it() {
        let mut h = declined(t0(), visa(t0(), "05", Some(1))).to_vec();
        h.push(CardFact::Approval {
            at: t0() + Duration::days(1),
        });
        assert_eq!(
            run(CardNetwork::Visa, &h, t0() + Duration::days(2), REGULAR),
            Verdict::Allow
        );
    }

    #[test]
    fn n2_the_16th_visa_reattempt_in_30_days_is_not_made() {
        let mut h = declined(t0(), visa(t0(), "51", None)).to_vec();
        for i in 1..=15 {
            let at = t0() + Duration::days(i);
            h.extend(declined(at, visa(at, "51", None)));
            let now = at + Duration::hours(1);
            let v = run(CardNetwork::Visa, &h, now, REGULAR);
            if i < 15 {
                assert_eq!(v, Verdict::Allow, "reattempt {} allowed", i + 1);
            } else {
                assert_eq!(v, blocked(NetworkBlock::NetworkRetryLimit, NetworkRule::N2));
            }
        }
    }

    #[test]
    fn n2_reattempts_older_than_30_days_leave_the_window() {
        let mut h = declined(t0(), visa(t0(), "51", None)).to_vec();
        for i in 1..=15 {
            let at = t0() + Duration::hours(i);
            h.extend(declined(at, visa(at, "51", None)));
        }
        assert_eq!(
            run(CardNetwork::Visa, &h, t0() + Duration::days(2), REGULAR),
            blocked(NetworkBlock::NetworkRetryLimit, NetworkRule::N2)
        );
        let last = t0() + Duration::hours(15);
        assert_eq!(
            run(CardNetwork::Visa, &h, last + Duration::days(31), REGULAR),
            Verdict::Allow
        );
    }

    #[test]
    fn n3_mastercard_mac_03_21_99_block_for_30_days() {
        for code in ["03", "21", "99"] {
            let h = declined(t0(), mc(t0(), code));
            let never = blocked(NetworkBlock::NetworkNeverRetry, NetworkRule::N3);
            assert_eq!(
                run(CardNetwork::Mastercard, &h, t0(), CASCADE),
                never,
                "{code}"
            );
            let kind = AttemptKind::FlexFactor {
                rules: FlexFactorNetworkRules::NeverRetry,
            };
            assert_eq!(
                run(CardNetwork::Mastercard, &h, t0() + Duration::days(29), kind),
                never
            );
            assert_eq!(
                run(
                    CardNetwork::Mastercard,
                    &h,
                    t0() + Duration::days(31),
                    REGULAR
                ),
                Verdict::Allow,
                "{code} after 30 days"
            );
        }
    }

    #[test]
    fn n3_mac_01_blocks_until_the_card_changes() {
        let h = declined(t0(), mc(t0(), "01"));
        assert_eq!(
            run(
                CardNetwork::Mastercard,
                &h,
                t0() + Duration::days(365),
                REGULAR
            ),
            blocked(NetworkBlock::NetworkNeverRetry, NetworkRule::N3)
        );
        // A changed card is another key, with a history of its own.
        assert_eq!(
            run(CardNetwork::Mastercard, &[], t0(), REGULAR),
            Verdict::Allow
        );
    }

    #[test]
    fn n4_mac_24_to_30_move_a_waiting_attempt_and_block_one_that_cannot_wait() {
        let waits = [
            ("24", Duration::hours(1)),
            ("25", Duration::hours(24)),
            ("26", Duration::days(2)),
            ("27", Duration::days(4)),
            ("28", Duration::days(6)),
            ("29", Duration::days(8)),
            ("30", Duration::days(10)),
        ];
        for (code, wait) in waits {
            let h = declined(t0(), mc(t0(), code));
            assert_eq!(
                run(
                    CardNetwork::Mastercard,
                    &h,
                    t0() + Duration::minutes(30),
                    REGULAR
                ),
                Verdict::WaitUntil {
                    until: t0() + wait,
                    rule: NetworkRule::N4
                },
                "MAC {code}"
            );
            assert_eq!(
                run(CardNetwork::Mastercard, &h, t0(), CASCADE),
                blocked(NetworkBlock::NetworkWait, NetworkRule::N4)
            );
            assert_eq!(
                run(CardNetwork::Mastercard, &h, t0() + wait, REGULAR),
                Verdict::Allow
            );
        }
    }

    #[test]
    fn n5_the_36th_mastercard_attempt_in_30_days_is_not_made() {
        let mut h = Vec::new();
        for i in 0..35 {
            let at = t0() + Duration::hours(i * 10);
            h.extend(declined(at, mc(at, "02")));
        }
        let now = t0() + Duration::hours(351);
        assert_eq!(
            run(CardNetwork::Mastercard, &h, now, REGULAR),
            blocked(NetworkBlock::NetworkRetryLimit, NetworkRule::N5)
        );
        let h34 = &h[2..];
        assert_eq!(
            run(CardNetwork::Mastercard, h34, now, REGULAR),
            Verdict::Allow
        );
    }

    #[test]
    fn n6_without_a_category_the_processor_table_decides() {
        // 41 (lost card) is category 1 in the shipped default table.
        let h = declined(t0(), visa(t0(), "41", None));
        assert_eq!(
            run(CardNetwork::Visa, &h, t0(), REGULAR),
            blocked(NetworkBlock::NetworkNeverRetry, NetworkRule::N1)
        );
        // An unknown code is category 4: retried within the limits.
        let h = declined(t0(), visa(t0(), "zz", None));
        assert_eq!(run(CardNetwork::Visa, &h, t0(), REGULAR), Verdict::Allow);
        // The setup's table makes it category 1 for this processor.
        let config = NetworkRulesConfig::with_tables(
            crate::network::VisaCategoryTables::from_toml("[nmi]\n\"zz\" = 1\n").unwrap(),
        );
        assert_eq!(
            check(&config, &GW, CardNetwork::Visa, &h, t0(), REGULAR),
            blocked(NetworkBlock::NetworkNeverRetry, NetworkRule::N1)
        );
    }

    #[test]
    fn n9_hand_overs_obey_only_never_retry_by_default_and_nothing_when_ignored() {
        let mut h = Vec::new();
        for i in 0..20 {
            let at = t0() + Duration::hours(i);
            h.extend(declined(at, visa(at, "51", None)));
        }
        let now = t0() + Duration::days(1);
        let default = AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::NeverRetry,
        };
        assert_eq!(run(CardNetwork::Visa, &h, now, default), Verdict::Allow);
        let enforce = AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::Enforce,
        };
        assert_eq!(
            run(CardNetwork::Visa, &h, now, enforce),
            blocked(NetworkBlock::NetworkRetryLimit, NetworkRule::N2)
        );
        let never = declined(t0(), visa(t0(), "04", None));
        let ignore = AttemptKind::FlexFactor {
            rules: FlexFactorNetworkRules::Ignore,
        };
        assert_eq!(run(CardNetwork::Visa, &never, now, ignore), Verdict::Allow);
    }

    #[test]
    fn n9_hand_overs_count_against_the_card_only_when_their_gateway_enforces() {
        let mut h = declined(t0(), visa(t0(), "51", None)).to_vec();
        for i in 1..=15 {
            h.push(CardFact::Attempt {
                at: t0() + Duration::hours(i),
                gateway: GatewayId::new("ff"),
                flexfactor: true,
            });
        }
        let now = t0() + Duration::days(1);
        assert_eq!(run(CardNetwork::Visa, &h, now, REGULAR), Verdict::Allow);
        let counting = Gateways {
            hand_overs_count: true,
        };
        assert_eq!(
            check(
                &NetworkRulesConfig::default(),
                &counting,
                CardNetwork::Visa,
                &h,
                now,
                REGULAR
            ),
            blocked(NetworkBlock::NetworkRetryLimit, NetworkRule::N2)
        );
    }

    #[test]
    fn the_guard_off_or_another_network_allows_everything() {
        let h = declined(t0(), visa(t0(), "04", Some(1)));
        let off = NetworkRulesConfig::disabled();
        assert_eq!(
            check(&off, &GW, CardNetwork::Visa, &h, t0(), REGULAR),
            Verdict::Allow
        );
        assert_eq!(run(CardNetwork::Other, &h, t0(), REGULAR), Verdict::Allow);
    }
}
