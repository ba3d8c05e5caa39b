//! Decline mapping (D2): rules that re-classify a decline as soft or hard.

use serde::Deserialize;

use crate::decline::{DeclineFacts, DeclineType, EffectiveDecline};
use crate::ids::GatewayId;
use crate::order_type::OrderType;

/// Which orders a mapping rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MappingOrderType {
    #[default]
    All,
    /// New sales only.
    NewSales,
    /// Recurring orders only. Trial completions count as recurring (the billing after a trial).
    Recurring,
}

impl MappingOrderType {
    fn matches(self, order_type: OrderType) -> bool {
        match self {
            MappingOrderType::All => true,
            MappingOrderType::NewSales => order_type == OrderType::NewSale,
            MappingOrderType::Recurring => order_type.is_recurring_billing(),
        }
    }
}

/// One decline mapping rule, as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineMappingRule {
    /// A name for the record (it is kept on the decline it re-classifies).
    pub name: String,
    /// Scope: every gateway of this processor type ("Gateway")...
    #[serde(default)]
    pub gateway_type: Option<String>,
    /// ... or exactly one gateway, that is one MID ("Merchant"). Exactly one of the two.
    #[serde(default)]
    pub gateway: Option<GatewayId>,
    #[serde(default)]
    pub order_type: MappingOrderType,
    /// Case-insensitive "contained in" match on the decline message.
    pub message_contains: String,
    pub map_to: DeclineType,
    /// Optional customer-facing message.
    #[serde(default)]
    pub customer_message: Option<String>,
}

impl DeclineMappingRule {
    /// Whether this rule applies to a decline of `order_type` on `gateway` (of processor type
    /// `processor`, if it is a regular gateway).
    pub fn matches(
        &self,
        facts: &DeclineFacts,
        processor: Option<&str>,
        order_type: OrderType,
    ) -> bool {
        let in_scope = match (&self.gateway, &self.gateway_type) {
            (Some(g), _) => g == &facts.gateway,
            (None, Some(t)) => processor.is_some_and(|p| p.eq_ignore_ascii_case(t)),
            (None, None) => false,
        };
        in_scope
            && self.order_type.matches(order_type)
            && contains_ignore_case(&facts.response_message, &self.message_contains)
    }
}

/// Case-insensitive substring test (Unicode lower-casing). Without allocating when both are
/// ASCII (lower-casing ASCII text changes no length, so the windows of the haystack are those
/// of its lower-cased copy).
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    if haystack.is_ascii() && needle.is_ascii() {
        let needle = needle.as_bytes();
        return haystack
            .as_bytes()
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle));
    }
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

/// D2: the first rule, in configured order, that matches decides; with none the processor's
/// verdict stands.
pub fn effective_decline(
    rules: &[DeclineMappingRule],
    facts: &DeclineFacts,
    processor: Option<&str>,
    order_type: OrderType,
) -> EffectiveDecline {
    match rules
        .iter()
        .find(|r| r.matches(facts, processor, order_type))
    {
        Some(rule) => EffectiveDecline {
            decline_type: rule.map_to,
            mapped_by: Some(rule.name.clone()),
            customer_message: rule.customer_message.clone(),
        },
        None => EffectiveDecline {
            decline_type: facts.processor_verdict,
            mapped_by: None,
            customer_message: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::decline as facts;
    use proptest::prelude::*;

    fn rule(name: &str, message: &str, map_to: DeclineType) -> DeclineMappingRule {
        DeclineMappingRule {
            name: name.into(),
            gateway_type: Some("nmi".into()),
            gateway: None,
            order_type: MappingOrderType::All,
            message_contains: message.into(),
            map_to,
            customer_message: None,
        }
    }

    #[test]
    fn d2_contained_in_match_is_case_insensitive() {
        let rules = vec![rule("nsf", "insufficient FUNDS", DeclineType::Soft)];
        let f = facts(
            "nmi-1",
            "DECLINE: Insufficient Funds (51)",
            DeclineType::Hard,
        );
        let e = effective_decline(&rules, &f, Some("NMI"), OrderType::NewSale);
        assert_eq!(e.decline_type, DeclineType::Soft);
        assert_eq!(e.mapped_by.as_deref(), Some("nsf"));
    }

    #[test]
    fn d2_first_match_wins() {
        let rules = vec![
            rule("first", "do not honor", DeclineType::Hard),
            rule("second", "honor", DeclineType::Soft),
        ];
        let f = facts("nmi-1", "Do Not Honor", DeclineType::Soft);
        let e = effective_decline(&rules, &f, Some("nmi"), OrderType::NewSale);
        assert_eq!(e.decline_type, DeclineType::Hard);
        assert_eq!(e.mapped_by.as_deref(), Some("first"));
    }

    #[test]
    fn d2_scope_by_gateway_and_by_type() {
        let mut by_mid = rule("mid", "pick up", DeclineType::Soft);
        by_mid.gateway_type = None;
        by_mid.gateway = Some("nmi-2".into());
        let rules = vec![by_mid];
        let on_other = facts("nmi-1", "Pick up card", DeclineType::Hard);
        let on_mid = facts("nmi-2", "Pick up card", DeclineType::Hard);
        assert_eq!(
            effective_decline(&rules, &on_other, Some("nmi"), OrderType::NewSale).decline_type,
            DeclineType::Hard
        );
        assert_eq!(
            effective_decline(&rules, &on_mid, Some("nmi"), OrderType::NewSale).decline_type,
            DeclineType::Soft
        );
        // Scope by processor type: another processor is out of scope.
        let rules = vec![rule("t", "pick up", DeclineType::Soft)];
        assert_eq!(
            effective_decline(&rules, &on_other, Some("authnet"), OrderType::NewSale).decline_type,
            DeclineType::Hard
        );
    }

    #[test]
    fn d2_order_type_scope() {
        let mut r = rule("rec", "declined", DeclineType::Soft);
        r.order_type = MappingOrderType::Recurring;
        let rules = vec![r];
        let f = facts("nmi-1", "Declined", DeclineType::Hard);
        assert_eq!(
            effective_decline(&rules, &f, Some("nmi"), OrderType::NewSale).decline_type,
            DeclineType::Hard
        );
        assert_eq!(
            effective_decline(&rules, &f, Some("nmi"), OrderType::Recurring).decline_type,
            DeclineType::Soft
        );
        assert_eq!(
            effective_decline(&rules, &f, Some("nmi"), OrderType::TrialCompletion).decline_type,
            DeclineType::Soft
        );
    }

    #[test]
    fn d3_unmapped_hard_decline_stays_hard_and_may_not_go_to_flexfactor() {
        let f = facts("nmi-1", "Stolen card", DeclineType::Hard);
        let e = effective_decline(&[], &f, Some("nmi"), OrderType::NewSale);
        assert!(!e.may_go_to_flexfactor());
        let rules = vec![rule("m", "stolen", DeclineType::Soft)];
        let e = effective_decline(&rules, &f, Some("nmi"), OrderType::NewSale);
        assert!(
            e.may_go_to_flexfactor(),
            "D3: a hard decline mapped soft may go"
        );
    }

    fn arb_type() -> impl Strategy<Value = DeclineType> {
        prop_oneof![Just(DeclineType::Soft), Just(DeclineType::Hard)]
    }

    proptest! {
        /// The ASCII path reads as the lower-cased containment, and non-ASCII text (the Kelvin
        /// sign lower-cases to an ASCII k, the dotted I to two characters) takes the other.
        #[test]
        fn contains_ignore_case_is_containment_of_the_lower_cased(
            haystack in "[a-zA-Z \u{e9}\u{c9}\u{130}\u{212a}]{0,12}",
            needle in "[a-zA-Z \u{e9}\u{c9}\u{130}\u{212a}]{0,4}",
        ) {
            let expected =
                !needle.is_empty() && haystack.to_lowercase().contains(&needle.to_lowercase());
            prop_assert_eq!(contains_ignore_case(&haystack, &needle), expected);
        }

        /// D2 properties: no rule matches → the processor's verdict; otherwise the verdict is the
        /// first matching rule's, whatever the case of the message.
        #[test]
        fn d2_engine_properties(
            msgs in proptest::collection::vec("[a-z]{1,4}", 0..6),
            targets in proptest::collection::vec(arb_type(), 6),
            message in "[a-zA-Z ]{0,24}",
            verdict in arb_type(),
        ) {
            let rules: Vec<_> = msgs.iter().enumerate()
                .map(|(i, m)| rule(&format!("r{i}"), m, targets[i]))
                .collect();
            let f = facts("nmi-1", &message, verdict);
            let e = effective_decline(&rules, &f, Some("nmi"), OrderType::NewSale);
            let first = msgs.iter().position(|m| message.to_lowercase().contains(m.as_str()));
            match first {
                None => {
                    prop_assert_eq!(e.decline_type, verdict);
                    prop_assert!(e.mapped_by.is_none());
                }
                Some(i) => {
                    prop_assert_eq!(e.decline_type, targets[i]);
                    prop_assert_eq!(e.mapped_by, Some(format!("r{i}")));
                }
            }
            // Upper-casing the message changes nothing.
            let upper = facts("nmi-1", &message.to_uppercase(), verdict);
            let e2 = effective_decline(&rules, &upper, Some("nmi"), OrderType::NewSale);
            prop_assert_eq!(effective_decline(&rules, &f, Some("nmi"), OrderType::NewSale), e2);
        }
    }
}
