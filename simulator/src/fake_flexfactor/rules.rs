//! Scenario rules: which outcome an `/evaluate` gets, chosen by card number or BIN (like
//! FlexFactor's sandbox test cards), decline code, CVV, phone, amount and mode, optionally with a
//! seeded probability; and when an asynchronous result (and a later refund or chargeback)
//! happens.
//!
//! Rules are tried in order; the first that matches (and wins its probability draw) decides.
//! Draws are a hash of (seed, idempotency key, rule position): the same seed gives the same
//! outcomes whatever the order or concurrency of the requests.

use chrono::Duration;
use serde::{Deserialize, Serialize};

/// What FlexFactor does with a submission. How each reads for a CIT and a managed MIT is in
/// `docs/fake-flexfactor.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// CIT: `APPROVED` at once (`CAPTUREREQUIRED` for `transactionType: AUTHORIZATION`).
    /// MIT: `order.completed` after the rule's delay, if that is before `expiryDateUtc`.
    Approved,
    /// CIT: `DECLINED`. MIT: not rescued: `order.expired` at `expiryDateUtc`.
    Declined,
    /// CIT: `CHALLENGE` (the order waits on hold). MIT: as `declined`.
    Challenge,
    /// CIT: `CAPTUREREQUIRED` at once. MIT: `order.capturerequired` after the delay.
    CaptureRequired,
    /// CIT: `DECLINED`. MIT: `order.expired` at `expiryDateUtc`.
    Expired,
    /// CIT: `DECLINED`. MIT: `order.cancelled` after the delay (FlexFactor gave up).
    Cancelled,
}

/// Which kind of submission a rule applies to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Customer-initiated (cascade): `customerIp`, real-time answer.
    #[default]
    Cit,
    /// Managed merchant-initiated: `isMIT` and `expiryDateUtc`, answered `SUBMITTED`.
    Mit,
}

/// One scenario rule: matchers (all optional; all given must hold) and an effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A name for logs, `/admin/state` and error messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only this kind of submission.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The whole card number (digits; a token from `/tokenize` is resolved to its number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// A prefix of the card number (or of `cardBinNumber` when the number is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// The processor's decline codes (`transaction.responseCode`); empty matches any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_codes: Vec<String>,
    /// The CVV (from `/tokenize` or `verificationValue`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv: Option<String>,
    /// A phone number of the billing information or the payer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Smallest `transaction.amount` in cents, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_amount: Option<i64>,
    /// Largest `transaction.amount` in cents, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_amount: Option<i64>,
    /// The outcome when the rule applies.
    pub outcome: Outcome,
    /// The chance (0 < p <= 1) that a matching submission takes this rule; otherwise the next
    /// rules are tried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// MIT: seconds from submission to the result (default: the rule set's `mit_delay_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_secs: Option<i64>,
    /// MIT: when given, the delay is drawn uniformly in `delay_secs..=delay_max_secs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_max_secs: Option<i64>,
    /// After a completion: FlexFactor refunds the order this many seconds later
    /// (`order.refunded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_after_secs: Option<i64>,
    /// After a completion: a chargeback arrives this many seconds later
    /// (`payment.chargeback.received`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chargeback_after_secs: Option<i64>,
}

impl Rule {
    /// A rule with only an outcome (matches everything).
    pub fn new(outcome: Outcome) -> Self {
        Rule {
            name: None,
            mode: None,
            card: None,
            bin: None,
            response_codes: Vec::new(),
            cvv: None,
            phone: None,
            min_amount: None,
            max_amount: None,
            outcome,
            probability: None,
            delay_secs: None,
            delay_max_secs: None,
            refund_after_secs: None,
            chargeback_after_secs: None,
        }
    }

    /// Names the rule.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only for this card number.
    pub fn card(mut self, number: impl Into<String>) -> Self {
        self.card = Some(number.into());
        self
    }

    /// Only for card numbers starting with `prefix`.
    pub fn bin(mut self, prefix: impl Into<String>) -> Self {
        self.bin = Some(prefix.into());
        self
    }

    /// Only for this decline code.
    pub fn response_code(mut self, code: impl Into<String>) -> Self {
        self.response_codes.push(code.into());
        self
    }

    /// Only for this kind of submission.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Only with this CVV.
    pub fn cvv(mut self, cvv: impl Into<String>) -> Self {
        self.cvv = Some(cvv.into());
        self
    }

    /// Only with this phone number.
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }

    /// Applies with probability `p`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// MIT result after `secs` seconds.
    pub fn delay_secs(mut self, secs: i64) -> Self {
        self.delay_secs = Some(secs);
        self
    }

    /// A refund by FlexFactor `secs` seconds after completion.
    pub fn refund_after_secs(mut self, secs: i64) -> Self {
        self.refund_after_secs = Some(secs);
        self
    }

    /// A chargeback `secs` seconds after completion.
    pub fn chargeback_after_secs(mut self, secs: i64) -> Self {
        self.chargeback_after_secs = Some(secs);
        self
    }

    fn label(&self, index: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("rule #{}", index + 1))
    }

    fn validate(&self, index: usize) -> Result<(), String> {
        let label = self.label(index);
        if let Some(p) = self.probability {
            if !(p > 0.0 && p <= 1.0) {
                return Err(format!("{label}: probability must be in (0, 1], not {p}"));
            }
        }
        for (what, v) in [
            ("delay_secs", self.delay_secs),
            ("delay_max_secs", self.delay_max_secs),
            ("refund_after_secs", self.refund_after_secs),
            ("chargeback_after_secs", self.chargeback_after_secs),
        ] {
            if matches!(v, Some(s) if s < 0) {
                return Err(format!("{label}: {what} must not be negative"));
            }
        }
        if let (Some(min), Some(max)) = (self.delay_secs, self.delay_max_secs) {
            if max < min {
                return Err(format!("{label}: delay_max_secs is below delay_secs"));
            }
        }
        if let (Some(min), Some(max)) = (self.min_amount, self.max_amount) {
            if max < min {
                return Err(format!("{label}: max_amount is below min_amount"));
            }
        }
        for (what, v) in [("card", &self.card), ("bin", &self.bin)] {
            if let Some(v) = v {
                if v.is_empty()
                    || !v
                        .chars()
                        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
                {
                    return Err(format!("{label}: {what} must be digits"));
                }
            }
        }
        Ok(())
    }

    fn matches(&self, facts: &Facts<'_>) -> bool {
        if matches!(self.mode, Some(m) if m != facts.mode) {
            return false;
        }
        if let Some(card) = &self.card {
            if facts.pan != Some(digits(card).as_str()) {
                return false;
            }
        }
        if let Some(bin) = &self.bin {
            let bin = digits(bin);
            let known = facts.pan.or(facts.bin).unwrap_or_default();
            if !known.starts_with(&bin) {
                return false;
            }
        }
        if !self.response_codes.is_empty()
            && !self.response_codes.iter().any(|c| {
                facts
                    .response_code
                    .is_some_and(|r| r.trim().eq_ignore_ascii_case(c.trim()))
            })
        {
            return false;
        }
        if let Some(cvv) = &self.cvv {
            if facts.cvv != Some(cvv.trim()) {
                return false;
            }
        }
        if let Some(phone) = &self.phone {
            let want = digits(phone);
            if !facts.phones.iter().any(|p| digits(p) == want) {
                return false;
            }
        }
        if matches!(self.min_amount, Some(min) if facts.amount.is_none_or(|a| a < min)) {
            return false;
        }
        if matches!(self.max_amount, Some(max) if facts.amount.is_none_or(|a| a > max)) {
            return false;
        }
        true
    }
}

/// The digits of a card number or phone.
pub(crate) fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// The rules in force and what happens when none applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Tried in order.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// The outcome of a CIT no rule took.
    pub default_cit: Outcome,
    /// The outcome of a managed MIT no rule took.
    pub default_mit: Outcome,
    /// The delay of a MIT result when the rule gives none, in seconds.
    pub mit_delay_secs: i64,
}

/// FlexFactor's sandbox test cards, as the reference lists them (§8): Visa 4000002760003184,
/// Visa 4111111111111111, Mastercard 51002600235851 succeed; 4000300011112220 and other cards
/// decline; 4111111111111111 with CVV 999 on a CIT is challenged; phone 998888 on a CIT needs a
/// capture.
pub const SANDBOX_APPROVED_CARDS: [&str; 3] =
    ["4000002760003184", "4111111111111111", "51002600235851"];
/// The sandbox's declined test card.
pub const SANDBOX_DECLINED_CARD: &str = "4000300011112220";

impl Default for RuleSet {
    fn default() -> Self {
        RuleSet::sandbox()
    }
}

impl RuleSet {
    /// No rules: every CIT declined, every MIT expires.
    pub fn empty() -> Self {
        RuleSet {
            rules: Vec::new(),
            default_cit: Outcome::Declined,
            default_mit: Outcome::Expired,
            mit_delay_secs: 3600,
        }
    }

    /// The sandbox-like rules: [`sandbox_rules`](Self::sandbox_rules), other cards declined.
    pub fn sandbox() -> Self {
        RuleSet {
            rules: Self::sandbox_rules(),
            ..Self::empty()
        }
    }

    /// The sandbox test-card rules alone (to append after a scenario's own rules).
    pub fn sandbox_rules() -> Vec<Rule> {
        let mut rules = vec![
            Rule::new(Outcome::CaptureRequired)
                .named("sandbox: phone 998888 needs a capture (CIT)")
                .mode(Mode::Cit)
                .phone("998888"),
            Rule::new(Outcome::Challenge)
                .named("sandbox: 4111111111111111 with CVV 999 is challenged (CIT)")
                .mode(Mode::Cit)
                .card("4111111111111111")
                .cvv("999"),
        ];
        for card in SANDBOX_APPROVED_CARDS {
            rules.push(
                Rule::new(Outcome::Approved)
                    .named(format!("sandbox: {card} succeeds"))
                    .card(card),
            );
        }
        rules.push(
            Rule::new(Outcome::Declined)
                .named(format!("sandbox: {SANDBOX_DECLINED_CARD} declines"))
                .card(SANDBOX_DECLINED_CARD),
        );
        rules
    }

    /// Checks every rule; the message names the rule.
    pub fn validate(&self) -> Result<(), String> {
        if self.mit_delay_secs < 0 {
            return Err("mit_delay_secs must not be negative".into());
        }
        self.rules
            .iter()
            .enumerate()
            .try_for_each(|(i, r)| r.validate(i))
    }

    /// The decision for a submission. `draw_key` identifies it (its idempotency key) for the
    /// seeded draws.
    pub fn decide(&self, facts: &Facts<'_>, seed: u64, draw_key: &str) -> Decision {
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.matches(facts) {
                continue;
            }
            if let Some(p) = rule.probability {
                if unit_draw(seed, draw_key, i as u64, 0) >= p {
                    continue;
                }
            }
            let delay = match (rule.delay_secs, rule.delay_max_secs) {
                (Some(min), Some(max)) if max > min => {
                    let span = (max - min) as u64 + 1;
                    min + (mix(seed, draw_key, i as u64, 1) % span) as i64
                }
                (Some(s), _) => s,
                (None, _) => self.mit_delay_secs,
            };
            return Decision {
                outcome: rule.outcome,
                rule: Some(rule.label(i)),
                delay: Duration::seconds(delay),
                refund_after: rule.refund_after_secs.map(Duration::seconds),
                chargeback_after: rule.chargeback_after_secs.map(Duration::seconds),
            };
        }
        Decision {
            outcome: match facts.mode {
                Mode::Cit => self.default_cit,
                Mode::Mit => self.default_mit,
            },
            rule: None,
            delay: Duration::seconds(self.mit_delay_secs),
            refund_after: None,
            chargeback_after: None,
        }
    }
}

/// The facts of a submission the rules look at.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// CIT or MIT.
    pub mode: Mode,
    /// The card number, when known (digits).
    pub pan: Option<&'a str>,
    /// `cardBinNumber`.
    pub bin: Option<&'a str>,
    /// `transaction.responseCode`.
    pub response_code: Option<&'a str>,
    /// The CVV, when known.
    pub cvv: Option<&'a str>,
    /// Phones of the billing information and the payer.
    pub phones: Vec<&'a str>,
    /// `transaction.amount` in cents.
    pub amount: Option<i64>,
}

/// What the rules decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// The rule that decided, `None` for the default.
    pub rule: Option<String>,
    /// MIT: time from submission to the result.
    pub delay: Duration,
    /// Time from completion to a refund by FlexFactor.
    pub refund_after: Option<Duration>,
    /// Time from completion to a chargeback.
    pub chargeback_after: Option<Duration>,
}

/// SplitMix64's finalizer.
pub(crate) fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic 64-bit draw for (seed, key, a, b).
fn mix(seed: u64, key: &str, a: u64, b: u64) -> u64 {
    // FNV-1a over the key, then SplitMix64 over everything.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.as_bytes() {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    splitmix(splitmix(splitmix(seed ^ h) ^ a) ^ b)
}

/// A deterministic draw in [0, 1).
fn unit_draw(seed: u64, key: &str, a: u64, b: u64) -> f64 {
    (mix(seed, key, a, b) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cit(pan: &str) -> Facts<'_> {
        Facts {
            mode: Mode::Cit,
            pan: Some(pan),
            ..Facts::default()
        }
    }

    #[test]
    fn sandbox_cards_decide_like_the_sandbox() {
        let rules = RuleSet::sandbox();
        let d = |f: &Facts<'_>| rules.decide(f, 1, "k").outcome;
        assert_eq!(d(&cit("4000002760003184")), Outcome::Approved);
        assert_eq!(d(&cit("4111111111111111")), Outcome::Approved);
        assert_eq!(d(&cit("51002600235851")), Outcome::Approved);
        assert_eq!(d(&cit("4000300011112220")), Outcome::Declined);
        assert_eq!(d(&cit("4242424242424242")), Outcome::Declined);
        let mut challenged = cit("4111111111111111");
        challenged.cvv = Some("999");
        assert_eq!(d(&challenged), Outcome::Challenge);
        let mut mit = cit("4242424242424242");
        mit.mode = Mode::Mit;
        assert_eq!(d(&mit), Outcome::Expired);
    }

    #[test]
    fn probability_draws_are_seeded_and_roughly_right() {
        let rules = RuleSet {
            rules: vec![Rule::new(Outcome::Approved).probability(0.3)],
            ..RuleSet::empty()
        };
        let count = |seed| {
            (0..2000)
                .filter(|i| {
                    rules.decide(&cit("1"), seed, &format!("key-{i}")).outcome == Outcome::Approved
                })
                .count()
        };
        let a = count(7);
        assert_eq!(a, count(7));
        assert!((500..700).contains(&a), "{a}");
    }

    #[test]
    fn invalid_rules_are_named() {
        let rules = RuleSet {
            rules: vec![Rule::new(Outcome::Approved).named("bad").probability(1.5)],
            ..RuleSet::empty()
        };
        assert!(rules.validate().unwrap_err().contains("bad"));
    }
}
