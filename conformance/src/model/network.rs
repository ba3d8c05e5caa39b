//! The card-network retry rules N1-N5 (with N9's default for hand-overs), written a second time
//! for the model, apart from `salvage_domain::network`: what the reference model predicts the
//! guard decides, and the checker of the invariant "no attempt on a card breaks N1-N5, whatever
//! the order of events" ([`violations`]).
//!
//! A card's history is a list of [`Fact`]s in the order they happened (the order they were
//! committed), each with its time in seconds since the start. The rules, as `docs/rules.md`
//! states them with its decisions:
//!
//! - N1 (Visa): no attempt while a category 1 decline stands (no approval of the card since).
//! - N2 (Visa): a reattempt is an attempt that follows a decline of the card by at most 30 days;
//!   at most 15 reattempts in any 30 days. The CRM's own attempts count (Salvage cannot stop
//!   them, so only its own attempts can break the rule).
//! - N3 (Mastercard): no attempt within 30 days of a standing MAC 03, 21 or 99 decline; none at
//!   all while a MAC 01 decline stands.
//! - N4 (Mastercard): the latest standing decline with MAC 24-30 sets the earliest next regular
//!   attempt (1 h, 24 h, 2, 4, 6, 8, 10 days after it).
//! - N5 (Mastercard): at most 35 attempts on the card in any 30 days.
//! - N9 (the sample's FlexFactor gateway, `never_retry`): a hand-over to FlexFactor obeys N1 and
//!   N3 only and is not counted.
//!
//! "Stands": no approval of the card came after it. Other networks are not guarded.

use std::fmt;

/// 30 days, in seconds: the window of N2, N3 and N5.
pub const WINDOW: i64 = 30 * 24 * 3600;
/// N2: Visa's reattempts per card in 30 days.
pub const VISA_REATTEMPTS: usize = 15;
/// N5: Mastercard's attempts per card in 30 days.
pub const MASTERCARD_ATTEMPTS: usize = 35;

/// A card's network, from its BIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Visa,
    Mastercard,
    Other,
}

/// Who made an attempt on a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// The CRM's own attempt (a sale's, a rebill's): reported to Salvage, not made by it.
    Crm,
    /// A cascade step on a regular gateway (it cannot wait).
    CascadeStep,
    /// A recycle re-attempt on the billing gateway (it may be moved later).
    ReAttempt,
    /// A hand-over to FlexFactor (cascade step, rerun, recycle slot).
    HandOver,
}

impl Who {
    /// Whether the attempt counts against the card's limits (N2, N5; N9: hand-overs do not).
    pub fn counted(self) -> bool {
        self != Who::HandOver
    }
}

/// One fact about a card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Attempt(Who),
    /// A decline with its Visa category (given, or from the code table) and its Mastercard
    /// advice code, when there is one.
    Decline {
        category: u8,
        mac: Option<u8>,
    },
    Approval,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Seconds since the start.
    pub at: i64,
    pub what: What,
    /// Where it was seen (for messages): `order o3`, `subscription s2`.
    pub source: String,
}

impl Fact {
    pub fn new(at: i64, what: What, source: impl Into<String>) -> Fact {
        Fact {
            at,
            what,
            source: source.into(),
        }
    }
}

/// A rule an attempt would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    N1,
    N2,
    N3,
    /// N4, with the earliest time the attempt may be made.
    N4 {
        until: i64,
    },
    N5,
}

impl Broken {
    pub fn rule(self) -> &'static str {
        match self {
            Broken::N1 => "N1",
            Broken::N2 => "N2",
            Broken::N3 => "N3",
            Broken::N4 { .. } => "N4",
            Broken::N5 => "N5",
        }
    }
}

/// What the guard must answer for an attempt: the model's prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// N4, for an attempt that can wait: moved to `until`.
    Wait {
        until: i64,
    },
    /// Not made (N7), for this rule.
    Block(&'static str),
}

/// N4: the wait Mastercard advises with MAC 24-30, in seconds.
pub fn advised_wait(mac: u8) -> Option<i64> {
    let hour = 3600;
    let day = 24 * hour;
    Some(match mac {
        24 => hour,
        25 => day,
        26 => 2 * day,
        27 => 4 * day,
        28 => 6 * day,
        29 => 8 * day,
        30 => 10 * day,
        _ => return None,
    })
}

/// The declines of `prior` that still stand: those after the card's last approval.
fn standing(prior: &[Fact]) -> impl Iterator<Item = (i64, u8, Option<u8>)> + '_ {
    let from = prior
        .iter()
        .rposition(|f| f.what == What::Approval)
        .map_or(0, |i| i + 1);
    prior[from..].iter().filter_map(|f| match f.what {
        What::Decline { category, mac } => Some((f.at, category, mac)),
        _ => None,
    })
}

/// Whether an attempt at `at`, after `prior`, is a reattempt (N2): a decline of the card came
/// before it by at most 30 days.
fn reattempt(prior: &[Fact], at: i64) -> bool {
    prior
        .iter()
        .any(|f| matches!(f.what, What::Decline { .. }) && at - f.at <= WINDOW)
}

/// The card's counts at `at`: its reattempts (N2) and its attempts (N5) in the 30 days before,
/// hand-overs left out (N9). The generators use them to reach the limits exactly.
pub fn counts(prior: &[Fact], at: i64) -> (usize, usize) {
    let counted: Vec<(usize, &Fact)> = prior
        .iter()
        .enumerate()
        .filter(|(_, f)| matches!(f.what, What::Attempt(w) if w.counted()))
        .filter(|(_, f)| f.at > at - WINDOW)
        .collect();
    let reattempts = counted
        .iter()
        .filter(|(i, f)| reattempt(&prior[..*i], f.at))
        .count();
    (reattempts, counted.len())
}

/// Every rule an attempt of `who` at `at` would break, the card's history being `prior`; in the
/// order the rules are weighed (N1, N2; N3, N5, N4).
pub fn breaks(network: Network, prior: &[Fact], at: i64, who: Who) -> Vec<Broken> {
    let mut out = Vec::new();
    let hand_over = who == Who::HandOver;
    match network {
        Network::Other => {}
        Network::Visa => {
            if standing(prior).any(|(_, category, _)| category == 1) {
                out.push(Broken::N1);
            }
            if !hand_over && reattempt(prior, at) {
                let (earlier, _) = counts(prior, at);
                if earlier + 1 > VISA_REATTEMPTS {
                    out.push(Broken::N2);
                }
            }
        }
        Network::Mastercard => {
            if standing(prior).any(|(d, _, mac)| match mac {
                Some(1) => true,
                Some(3 | 21 | 99) => at - d < WINDOW,
                _ => false,
            }) {
                out.push(Broken::N3);
            }
            if !hand_over {
                let (_, attempts) = counts(prior, at);
                if attempts + 1 > MASTERCARD_ATTEMPTS {
                    out.push(Broken::N5);
                }
                let latest = standing(prior)
                    .filter_map(|(d, _, mac)| Some(d + advised_wait(mac?)?))
                    .last();
                if let Some(until) = latest.filter(|until| at < *until) {
                    out.push(Broken::N4 { until });
                }
            }
        }
    }
    out
}

/// What the guard must decide for an attempt of `who` at `at` on a card with history `prior`.
pub fn verdict(network: Network, prior: &[Fact], at: i64, who: Who) -> Verdict {
    match breaks(network, prior, at, who).first() {
        None => Verdict::Allow,
        Some(Broken::N4 { until }) if who == Who::ReAttempt => Verdict::Wait { until: *until },
        Some(b) => Verdict::Block(b.rule()),
    }
}

/// A rule broken by an attempt Salvage made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub rule: &'static str,
    pub attempt: Fact,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match &self.attempt.what {
            What::Attempt(Who::CascadeStep) => "a cascade step",
            What::Attempt(Who::ReAttempt) => "a recycle re-attempt",
            What::Attempt(Who::HandOver) => "a hand-over to FlexFactor",
            _ => "an attempt",
        };
        write!(
            f,
            "[{}] {who} of {} at second {} breaks {}",
            self.rule, self.attempt.source, self.attempt.at, self.rule
        )
    }
}

/// The invariant: every attempt Salvage made on a card of `network` whose history is `facts`
/// (in the order things happened) was allowed when it was made. The CRM's own attempts are not
/// checked (they count, but Salvage did not make them).
pub fn violations(network: Network, facts: &[Fact]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        let What::Attempt(who) = f.what else {
            continue;
        };
        if who == Who::Crm {
            continue;
        }
        for b in breaks(network, &facts[..i], f.at, who) {
            out.push(Violation {
                rule: b.rule(),
                attempt: f.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const D: i64 = 24 * H;

    fn attempt(at: i64, who: Who) -> Fact {
        Fact::new(at, What::Attempt(who), "test")
    }
    fn visa(at: i64, category: u8) -> Fact {
        Fact::new(
            at,
            What::Decline {
                category,
                mac: None,
            },
            "test",
        )
    }
    fn mc(at: i64, mac: u8) -> Fact {
        Fact::new(
            at,
            What::Decline {
                category: 4,
                mac: Some(mac),
            },
            "test",
        )
    }
    fn approval(at: i64) -> Fact {
        Fact::new(at, What::Approval, "test")
    }
    fn rules(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn n1_an_attempt_after_a_category_1_decline_is_a_violation_until_an_approval() {
        let mut h = vec![
            attempt(0, Who::Crm),
            visa(0, 1),
            attempt(0, Who::CascadeStep),
        ];
        assert_eq!(rules(&violations(Network::Visa, &h)), ["N1"]);
        h.push(attempt(400 * D, Who::HandOver));
        assert_eq!(rules(&violations(Network::Visa, &h)), ["N1", "N1"]);
        let lifted = vec![
            attempt(0, Who::Crm),
            visa(0, 1),
            attempt(D, Who::Crm),
            approval(D),
            attempt(2 * D, Who::ReAttempt),
        ];
        assert!(violations(Network::Visa, &lifted).is_empty());
        // The same history on a Mastercard or another network breaks nothing.
        assert!(violations(Network::Mastercard, &h).is_empty());
        assert!(violations(Network::Other, &h).is_empty());
    }

    #[test]
    fn n2_the_16th_reattempt_in_30_days_is_a_violation_and_older_ones_leave_the_window() {
        // The first attempt is not a reattempt; 15 more are.
        let mut h = vec![attempt(0, Who::Crm), visa(0, 2)];
        for i in 1..=15 {
            h.push(attempt(i * H, Who::ReAttempt));
            h.push(visa(i * H, 2));
        }
        assert!(violations(Network::Visa, &h).is_empty());
        let mut sixteenth = h.clone();
        sixteenth.push(attempt(20 * H, Who::CascadeStep));
        assert_eq!(rules(&violations(Network::Visa, &sixteenth)), ["N2"]);
        // Hand-overs are not held to it (N9), nor counted.
        let mut handed = h.clone();
        handed.push(attempt(20 * H, Who::HandOver));
        assert!(violations(Network::Visa, &handed).is_empty());
        // 30 days after the first reattempt it has left the window.
        let mut later = h.clone();
        later.push(attempt(H + WINDOW, Who::ReAttempt));
        assert!(violations(Network::Visa, &later).is_empty());
        // An attempt that follows no decline by 30 days is no reattempt.
        let mut fresh = h;
        fresh.push(attempt(15 * H + WINDOW + 1, Who::ReAttempt));
        assert!(violations(Network::Visa, &fresh).is_empty());
    }

    #[test]
    fn n3_mac_03_21_99_forbid_30_days_mac_01_forever() {
        for mac in [3, 21, 99] {
            let h = vec![
                attempt(0, Who::Crm),
                mc(0, mac),
                attempt(WINDOW - 1, Who::HandOver),
                attempt(WINDOW, Who::ReAttempt),
            ];
            assert_eq!(rules(&violations(Network::Mastercard, &h)), ["N3"], "{mac}");
        }
        let h = vec![
            attempt(0, Who::Crm),
            mc(0, 1),
            attempt(365 * D, Who::ReAttempt),
        ];
        assert_eq!(rules(&violations(Network::Mastercard, &h)), ["N3"]);
        let h = vec![
            attempt(0, Who::Crm),
            mc(0, 1),
            approval(D),
            attempt(2 * D, Who::ReAttempt),
        ];
        assert!(violations(Network::Mastercard, &h).is_empty());
    }

    #[test]
    fn n4_a_regular_attempt_before_the_advised_wait_is_a_violation() {
        let h = vec![
            attempt(0, Who::Crm),
            mc(0, 29),
            attempt(8 * D - 1, Who::ReAttempt),
            attempt(8 * D, Who::ReAttempt),
        ];
        let v = violations(Network::Mastercard, &h);
        assert_eq!(rules(&v), ["N4"]);
        assert_eq!(v[0].attempt.at, 8 * D - 1);
        // A hand-over is not held to it (N9).
        let h = vec![attempt(0, Who::Crm), mc(0, 24), attempt(0, Who::HandOver)];
        assert!(violations(Network::Mastercard, &h).is_empty());
        // The latest advice counts.
        let h = vec![
            attempt(0, Who::Crm),
            mc(0, 30),
            attempt(H, Who::Crm),
            mc(H, 24),
            attempt(2 * H, Who::CascadeStep),
        ];
        assert!(violations(Network::Mastercard, &h).is_empty());
        assert_eq!(
            verdict(Network::Mastercard, &h[..2], H, Who::ReAttempt),
            Verdict::Wait { until: 10 * D }
        );
        assert_eq!(
            verdict(Network::Mastercard, &h[..2], H, Who::CascadeStep),
            Verdict::Block("N4")
        );
    }

    #[test]
    fn n5_the_36th_attempt_in_30_days_is_a_violation() {
        let mut h = Vec::new();
        for i in 0..35 {
            h.push(attempt(i * H, Who::Crm));
            h.push(mc(i * H, 2));
        }
        let mut next = h.clone();
        next.push(attempt(40 * H, Who::CascadeStep));
        assert_eq!(rules(&violations(Network::Mastercard, &next)), ["N5"]);
        let mut later = h;
        later.push(attempt(WINDOW, Who::CascadeStep));
        assert!(violations(Network::Mastercard, &later).is_empty());
    }

    #[test]
    fn verdicts_weigh_the_rules_as_the_guard_does() {
        let h = vec![attempt(0, Who::Crm), visa(0, 1)];
        assert_eq!(
            verdict(Network::Visa, &h, 0, Who::HandOver),
            Verdict::Block("N1")
        );
        let h = vec![attempt(0, Who::Crm), mc(0, 21)];
        assert_eq!(
            verdict(Network::Mastercard, &h, 0, Who::ReAttempt),
            Verdict::Block("N3")
        );
        assert_eq!(
            verdict(Network::Other, &h, 0, Who::ReAttempt),
            Verdict::Allow
        );
    }
}
