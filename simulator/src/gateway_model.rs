//! The statistical model of the regular processor gateways: approve, or decline with a code
//! drawn from the configured soft or hard mix, with the network advice of the card's network
//! (a Visa category, a Mastercard advice code). The processor's verdict is the mix's; decline
//! mapping (D2) and the network rules (N1-N6) are the domain's business, applied to these facts
//! as to real ones.

use std::collections::BTreeMap;

use rand::{Rng, RngExt};
use salvage_domain::customer::CredentialKind;
use salvage_domain::decline::{MastercardAdviceCode, VisaCategory};
use salvage_domain::network::CardNetwork;
use salvage_domain::order::AttemptResult;
use salvage_domain::ports::GatewayAnswer;
use salvage_domain::{DeclineFacts, DeclineType, GatewayId};

use crate::scenario::{DeclineCode, GatewayModelSpec};

/// Why a gateway is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The first attempt of a new sale.
    NewSale,
    /// A step of a cascade.
    Cascade,
    /// The first attempt of a rebill or trial completion.
    Rebill,
    /// Recycle re-attempt `attempt` (1-based).
    Recycle { attempt: u32 },
}

#[derive(Debug, Clone)]
struct Behaviour {
    new_sale: f64,
    cascade: f64,
    rebill: f64,
    recycle: Vec<f64>,
    soft_share: f64,
}

#[derive(Debug, Clone)]
struct Mix {
    codes: Vec<DeclineCode>,
    cumulative: Vec<u64>,
}

impl Mix {
    fn new(codes: &[DeclineCode]) -> Mix {
        let mut total = 0;
        let cumulative = codes
            .iter()
            .map(|c| {
                total += u64::from(c.weight);
                total
            })
            .collect();
        Mix {
            codes: codes.to_vec(),
            cumulative,
        }
    }

    fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &DeclineCode {
        let total = self.cumulative.last().copied().unwrap_or(0).max(1);
        let at = rng.random_range(0..total);
        let i = self.cumulative.partition_point(|c| *c <= at);
        &self.codes[i.min(self.codes.len() - 1)]
    }
}

/// What the models know of the card charged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChargedCard {
    /// Its network: which advice a decline carries.
    pub network: CardNetwork,
    /// Multiplies the approval probability: `[gateways] never_retry_approval_factor` once the
    /// card's issuer has said it will never approve it (until it is approved again), else 1.
    pub approval_factor: f64,
}

impl ChargedCard {
    /// A card of `network` nothing has been said against.
    pub fn new(network: CardNetwork) -> ChargedCard {
        ChargedCard {
            network,
            approval_factor: 1.0,
        }
    }
}

/// The regular gateways' answers.
#[derive(Debug, Clone)]
pub struct GatewayModel {
    default: Behaviour,
    per_gateway: BTreeMap<GatewayId, Behaviour>,
    without_cvv_factor: f64,
    soft: Mix,
    hard: Mix,
}

impl GatewayModel {
    pub fn new(spec: &GatewayModelSpec) -> GatewayModel {
        let default = Behaviour {
            new_sale: spec.new_sale_approval,
            cascade: spec.cascade_approval,
            rebill: spec.rebill_approval,
            recycle: spec.recycle_approval.clone(),
            soft_share: spec.soft_share,
        };
        let per_gateway = spec
            .per_gateway
            .iter()
            .map(|(id, o)| {
                let b = Behaviour {
                    new_sale: o.new_sale_approval.unwrap_or(default.new_sale),
                    cascade: o.cascade_approval.unwrap_or(default.cascade),
                    rebill: o.rebill_approval.unwrap_or(default.rebill),
                    recycle: o
                        .recycle_approval
                        .clone()
                        .unwrap_or_else(|| default.recycle.clone()),
                    soft_share: o.soft_share.unwrap_or(default.soft_share),
                };
                (id.clone(), b)
            })
            .collect();
        GatewayModel {
            default,
            per_gateway,
            without_cvv_factor: spec.card_number_without_cvv_factor,
            soft: Mix::new(&spec.soft_declines),
            hard: Mix::new(&spec.hard_declines),
        }
    }

    /// The probability that `gateway` approves a charge for `purpose`.
    pub fn approval(
        &self,
        gateway: &GatewayId,
        purpose: Purpose,
        credential: CredentialKind,
    ) -> f64 {
        let b = self.per_gateway.get(gateway).unwrap_or(&self.default);
        let p = match purpose {
            Purpose::NewSale => b.new_sale,
            Purpose::Cascade => b.cascade,
            Purpose::Rebill => b.rebill,
            Purpose::Recycle { attempt } => {
                let i = (attempt.max(1) as usize - 1).min(b.recycle.len().saturating_sub(1));
                b.recycle.get(i).copied().unwrap_or(0.0)
            }
        };
        match credential {
            CredentialKind::Token => p,
            CredentialKind::CardNumberWithoutCvv => p * self.without_cvv_factor,
        }
        .clamp(0.0, 1.0)
    }

    /// Draws the gateway's answer to a charge of `card`. The draws are always made in the same
    /// order (approval, then verdict, then code), so one stream gives comparable answers in
    /// every variant.
    pub fn answer<R: Rng + ?Sized>(
        &self,
        gateway: &GatewayId,
        purpose: Purpose,
        credential: CredentialKind,
        card: ChargedCard,
        rng: &mut R,
    ) -> GatewayAnswer {
        let p = self.approval(gateway, purpose, credential) * card.approval_factor;
        let approved = rng.random_bool(p.clamp(0.0, 1.0));
        let network = card.network;
        let b = self.per_gateway.get(gateway).unwrap_or(&self.default);
        let soft = rng.random_bool(b.soft_share);
        if approved {
            return GatewayAnswer::Approved {
                transaction_id: None,
            };
        }
        let (mix, verdict) = if soft {
            (&self.soft, DeclineType::Soft)
        } else {
            (&self.hard, DeclineType::Hard)
        };
        let c = mix.pick(rng);
        GatewayAnswer::Declined(DeclineFacts {
            gateway: gateway.clone(),
            response_code: c.code.clone(),
            response_message: c.message.clone(),
            processor_verdict: verdict,
            visa_category: match network {
                CardNetwork::Visa => c.visa_category.map(VisaCategory),
                _ => None,
            },
            mastercard_advice_code: match network {
                CardNetwork::Mastercard => {
                    c.mastercard_advice_code.clone().map(MastercardAdviceCode)
                }
                _ => None,
            },
        })
    }

    /// The same draw, as the result of an order's first attempt.
    pub fn attempt<R: Rng + ?Sized>(
        &self,
        gateway: &GatewayId,
        purpose: Purpose,
        credential: CredentialKind,
        card: ChargedCard,
        rng: &mut R,
    ) -> AttemptResult {
        match self.answer(gateway, purpose, credential, card, rng) {
            GatewayAnswer::Declined(facts) => AttemptResult::Declined(facts),
            _ => AttemptResult::Approved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Site};

    #[test]
    fn approval_rates_and_verdicts_follow_the_spec() {
        let mut spec = GatewayModelSpec {
            rebill_approval: 0.6,
            soft_share: 0.75,
            ..GatewayModelSpec::default()
        };
        spec.per_gateway.insert(
            "gw-b".into(),
            crate::scenario::GatewayOverride {
                rebill_approval: Some(0.0),
                ..Default::default()
            },
        );
        let model = GatewayModel::new(&spec);
        let gw = GatewayId::new("gw-a");
        let (mut approved, mut soft, n) = (0, 0, 20_000u64);
        for i in 0..n {
            let mut rng = stream(9, i, Site::Rebill { cycle: 1 });
            let visa = ChargedCard::new(CardNetwork::Visa);
            match model.answer(&gw, Purpose::Rebill, CredentialKind::Token, visa, &mut rng) {
                GatewayAnswer::Approved { .. } => approved += 1,
                GatewayAnswer::Declined(f) => {
                    assert_eq!(f.gateway, gw);
                    if f.processor_verdict == DeclineType::Soft {
                        soft += 1;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        let rate = approved as f64 / n as f64;
        assert!((rate - 0.6).abs() < 0.02, "{rate}");
        let soft_rate = soft as f64 / (n - approved) as f64;
        assert!((soft_rate - 0.75).abs() < 0.03, "{soft_rate}");
        assert_eq!(
            model.approval(&"gw-b".into(), Purpose::Rebill, CredentialKind::Token),
            0.0
        );
        let without_cvv =
            model.approval(&gw, Purpose::Rebill, CredentialKind::CardNumberWithoutCvv);
        assert!((without_cvv - 0.6 * 0.95).abs() < 1e-12);
        // The last recycle value repeats.
        let last = *spec.recycle_approval.last().unwrap();
        assert_eq!(
            model.approval(&gw, Purpose::Recycle { attempt: 40 }, CredentialKind::Token),
            last
        );
    }

    /// The advice goes with the card's network; the code drawn does not depend on it.
    #[test]
    fn declines_carry_the_advice_of_the_cards_network_only() {
        let spec = GatewayModelSpec {
            rebill_approval: 0.0,
            ..GatewayModelSpec::default()
        };
        let model = GatewayModel::new(&spec);
        let gw = GatewayId::new("gw");
        let (mut categories, mut macs) = (0, 0);
        for i in 0..2_000 {
            let facts = |network| {
                let mut rng = stream(5, i, Site::Rebill { cycle: 2 });
                let card = ChargedCard::new(network);
                match model.answer(&gw, Purpose::Rebill, CredentialKind::Token, card, &mut rng) {
                    GatewayAnswer::Declined(f) => f,
                    other => panic!("{other:?}"),
                }
            };
            let (visa, mc, other) = (
                facts(CardNetwork::Visa),
                facts(CardNetwork::Mastercard),
                facts(CardNetwork::Other),
            );
            assert_eq!(visa.response_code, mc.response_code);
            assert_eq!(visa.response_code, other.response_code);
            assert!(visa.mastercard_advice_code.is_none() && mc.visa_category.is_none());
            assert!(other.visa_category.is_none() && other.mastercard_advice_code.is_none());
            categories += usize::from(visa.visa_category.is_some());
            macs += usize::from(mc.mastercard_advice_code.is_some());
        }
        assert!(categories > 1_000, "{categories}");
        assert!(macs > 400 && macs < 1_500, "{macs}");
    }
}
