//! Rules C1-C4 (cascade router), R1/R3/R5 (rerun admissibility), Y1-Y4 and S6 (recycle
//! planner), as pure functions; with property tests.

mod common;

use chrono::Duration;
use common::*;
use proptest::prelude::*;
use salvage_domain::decline::EffectiveDecline;
use salvage_domain::routing::*;
use salvage_domain::setup::{RecycleAttempt, RecycleProfile};
use salvage_domain::{DeclineType, GatewayId, OrderType, Setup};

fn eff(t: DeclineType) -> EffectiveDecline {
    EffectiveDecline {
        decline_type: t,
        mapped_by: None,
        customer_message: None,
    }
}

fn route(
    setup: &Setup,
    campaign: &str,
    gateway: &str,
    profile: Option<&str>,
    ip: Option<&str>,
    t: DeclineType,
) -> CascadeDecision {
    let campaign = campaign.into();
    let gateway = gateway.into();
    let profile = profile.map(Into::into);
    let decline = eff(t);
    cascade_route(
        setup,
        &CascadeInput {
            order_type: OrderType::NewSale,
            campaign: &campaign,
            declined_gateway: &gateway,
            gateway_profile: profile.as_ref(),
            ip_address: ip,
            decline: &decline,
        },
    )
}

fn steps(d: &CascadeDecision) -> Vec<String> {
    match d {
        CascadeDecision::Cascade(r) => r.steps.iter().map(|s| s.gateway.to_string()).collect(),
        CascadeDecision::NoCascade { reason } => vec![format!("none:{}", reason.as_str())],
    }
}

const IP: Option<&str> = Some("203.0.113.7");

#[test]
fn c1_direct_cascade_profile_of_the_declining_gateway() {
    let s = sample_setup();
    let d = route(&s, "skincare", "nmi-main", None, IP, DeclineType::Soft);
    assert_eq!(steps(&d), vec!["nmi-backup", "flexfactor"]);
    match d {
        CascadeDecision::Cascade(r) => assert_eq!(
            r.source,
            CascadeSource::Direct {
                cascade_profile: "cascade-main".into()
            }
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn c1_atri_profile_cascade_when_the_sale_went_through_a_profile() {
    let s = sample_setup();
    let d = route(
        &s,
        "skincare",
        "nmi-main",
        Some("atri-us"),
        IP,
        DeclineType::Soft,
    );
    assert_eq!(
        steps(&d),
        vec!["flexfactor"],
        "the profile's cascade, not nmi-main's direct one"
    );
    // A profile without a cascade profile: no cascade, even though the gateway has a direct one.
    let d = route(
        &s,
        "skincare",
        "nmi-main",
        Some("atri-eu"),
        IP,
        DeclineType::Soft,
    );
    assert_eq!(steps(&d), vec!["none:no_cascade_profile"]);
}

#[test]
fn c1_no_cascade_profile_means_no_cascade() {
    let s = sample_setup();
    let d = route(&s, "skincare", "stripe-eu", None, IP, DeclineType::Soft);
    assert_eq!(steps(&d), vec!["none:no_cascade_profile"]);
}

#[test]
fn c2_cascade_all_overrides_every_cascade_profile() {
    let mut s = sample_setup();
    for g in &mut s.gateways {
        if let salvage_domain::setup::Gateway::FlexFactor(ff) = g {
            ff.cascade_all = true;
        }
    }
    for (gw, profile) in [
        ("nmi-main", None),
        ("stripe-eu", None),
        ("nmi-main", Some("atri-eu")),
    ] {
        let d = route(&s, "skincare", gw, profile, IP, DeclineType::Soft);
        assert_eq!(steps(&d), vec!["flexfactor"], "{gw} {profile:?}");
        assert!(matches!(
            d,
            CascadeDecision::Cascade(CascadeRoute {
                source: CascadeSource::CascadeAll,
                ..
            })
        ));
    }
    // C3 still holds with cascade_all.
    let d = route(&s, "skincare", "nmi-main", None, None, DeclineType::Soft);
    assert_eq!(steps(&d), vec!["none:missing_ip_address"]);
}

#[test]
fn c3_no_flexfactor_step_without_ip_address() {
    let s = sample_setup();
    // The profile's regular gateway is still tried; FlexFactor is left out, with the reason.
    let d = route(&s, "skincare", "nmi-main", None, None, DeclineType::Soft);
    assert_eq!(steps(&d), vec!["nmi-backup"]);
    match d {
        CascadeDecision::Cascade(r) => {
            assert_eq!(
                r.flexfactor_skipped,
                Some(NoCascadeReason::MissingIpAddress)
            )
        }
        other => panic!("{other:?}"),
    }
    // A FlexFactor-only route does not cascade at all.
    let d = route(
        &s,
        "skincare",
        "nmi-main",
        Some("atri-us"),
        Some("  "),
        DeclineType::Soft,
    );
    assert_eq!(steps(&d), vec!["none:missing_ip_address"]);
}

#[test]
fn c4_single_transaction_campaign_never_cascades_to_flexfactor() {
    let s = sample_setup();
    let d = route(
        &s,
        "one-click-bundle",
        "nmi-main",
        None,
        IP,
        DeclineType::Soft,
    );
    assert_eq!(steps(&d), vec!["nmi-backup"]);
    let d = route(
        &s,
        "one-click-bundle",
        "nmi-main",
        Some("atri-us"),
        IP,
        DeclineType::Soft,
    );
    assert_eq!(steps(&d), vec!["none:single_transaction_campaign"]);
}

#[test]
fn d3_hard_decline_does_not_cascade() {
    let s = sample_setup();
    let d = route(&s, "skincare", "nmi-main", None, IP, DeclineType::Hard);
    assert_eq!(steps(&d), vec!["none:hard_decline"]);
}

fn rerun_facts(decline: &EffectiveDecline) -> RerunFacts<'_> {
    RerunFacts {
        order_type: OrderType::NewSale,
        declined: true,
        salvage_pending: false,
        paid: false,
        decline: Some(decline),
    }
}

#[test]
fn r1_rerun_names_the_flexfactor_gateway_never_an_atri_profile() {
    let s = sample_setup();
    let d = eff(DeclineType::Soft);
    assert_eq!(
        rerun_admissible(&s, &rerun_facts(&d), &"flexfactor".into()),
        Ok(())
    );
    let err = rerun_admissible(&s, &rerun_facts(&d), &"atri-us".into()).unwrap_err();
    assert_eq!(err.code(), "rerun_on_gateway_profile");
    let err = rerun_admissible(&s, &rerun_facts(&d), &"nmi-backup".into()).unwrap_err();
    assert_eq!(err.code(), "not_flexfactor_gateway");
}

#[test]
fn r3_only_effective_soft_declines_can_be_rerun() {
    let s = sample_setup();
    let d = eff(DeclineType::Hard);
    let err = rerun_admissible(&s, &rerun_facts(&d), &"flexfactor".into()).unwrap_err();
    assert_eq!(err.code(), "hard_decline");
}

#[test]
fn r5_pending_complete_or_salvaging_orders_are_refused() {
    let s = sample_setup();
    let d = eff(DeclineType::Soft);
    let mut f = rerun_facts(&d);
    f.salvage_pending = true;
    assert_eq!(
        rerun_admissible(&s, &f, &"flexfactor".into())
            .unwrap_err()
            .code(),
        "salvage_pending"
    );
    let mut f = rerun_facts(&d);
    f.paid = true;
    assert_eq!(
        rerun_admissible(&s, &f, &"flexfactor".into())
            .unwrap_err()
            .code(),
        "not_declined"
    );
    let mut f = rerun_facts(&d);
    f.declined = false;
    assert_eq!(
        rerun_admissible(&s, &f, &"flexfactor".into())
            .unwrap_err()
            .code(),
        "not_declined"
    );
}

fn profile(flags: &[bool]) -> RecycleProfile {
    RecycleProfile {
        id: "rp".into(),
        gateways: vec!["nmi-main".into()],
        flexfactor_gateway: Some("flexfactor".into()),
        attempts: flags
            .iter()
            .enumerate()
            .map(|(i, f)| RecycleAttempt {
                wait_days: i as i64 + 1,
                flexfactor: *f,
            })
            .collect(),
    }
}

#[test]
fn y1_waits_are_counted_from_the_previous_attempt() {
    let p = profile(&[false, false, false]);
    let plan = recycle_plan(Some(&p));
    assert_eq!(plan.due_at(1, t0()), Some(t0() + Duration::days(1)));
    assert_eq!(
        plan.due_at(3, t0() + Duration::days(10)),
        Some(t0() + Duration::days(13))
    );
}

#[test]
fn y2_attempts_not_assigned_to_flexfactor_run_on_the_billing_gateway() {
    let plan = recycle_plan(Some(&profile(&[false, false, false, true])));
    for n in 1..=3 {
        assert_eq!(
            plan.attempt(n).unwrap().target,
            RecycleTarget::BillingGateway
        );
    }
}

#[test]
fn y3_plan_ends_at_the_first_flexfactor_slot() {
    let plan = recycle_plan(Some(&profile(&[
        false, false, false, true, true, true, false,
    ])));
    assert_eq!(plan.attempts.len(), 4, "later slots are not used");
    assert_eq!(
        plan.handover().unwrap().target,
        RecycleTarget::FlexFactor {
            gateway: "flexfactor".into(),
            slot: RecycleSlot::Attempts4To6
        }
    );
    let plan = recycle_plan(Some(&profile(
        &[false; 6]
            .iter()
            .copied()
            .chain([true, true])
            .collect::<Vec<_>>(),
    )));
    assert_eq!(plan.handover().unwrap().number, 7);
    let plan = recycle_plan(Some(&profile(&[false, false, true])));
    assert!(matches!(
        plan.handover().unwrap().target,
        RecycleTarget::FlexFactor {
            slot: RecycleSlot::Final,
            ..
        }
    ));
}

#[test]
fn y4_no_profile_gives_no_attempts() {
    assert!(recycle_plan(None).is_empty());
    assert!(recycle_plan(Some(&profile(&[false, false])))
        .handover()
        .is_none());
}

#[test]
fn s6_slot_positions() {
    assert_eq!(RecycleSlot::of(3, 10), None);
    assert_eq!(RecycleSlot::of(4, 10), Some(RecycleSlot::Attempts4To6));
    assert_eq!(RecycleSlot::of(9, 10), Some(RecycleSlot::Attempts7To9));
    assert_eq!(RecycleSlot::of(10, 10), Some(RecycleSlot::Final));
    assert_eq!(RecycleSlot::of(2, 2), Some(RecycleSlot::Final));
}

fn arb_gateway() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        Just("nmi-main"),
        Just("nmi-backup"),
        Just("authnet-1"),
        Just("stripe-eu")
    ]
}

proptest! {
    /// Cascade router properties (C1-C4, D3): whatever the input, a route never retries the
    /// declining gateway, never repeats a gateway, holds FlexFactor only with an ip_address on a
    /// campaign without Single Transaction, and exists only for soft declines.
    #[test]
    fn cascade_router_properties(
        gw in arb_gateway(),
        profile in prop_oneof![Just(None), Just(Some("atri-us")), Just(Some("atri-eu"))],
        campaign in prop_oneof![Just("skincare"), Just("one-click-bundle")],
        ip in prop_oneof![Just(None), Just(Some("198.51.100.4")), Just(Some(""))],
        hard in any::<bool>(),
        cascade_all in any::<bool>(),
    ) {
        let mut s = sample_setup();
        for g in &mut s.gateways {
            if let salvage_domain::setup::Gateway::FlexFactor(ff) = g { ff.cascade_all = cascade_all; }
        }
        let t = if hard { DeclineType::Hard } else { DeclineType::Soft };
        let d = route(&s, campaign, gw, profile, ip, t);
        if let CascadeDecision::Cascade(r) = &d {
            prop_assert!(!hard, "D3");
            prop_assert!(!r.steps.is_empty());
            let ids: Vec<&GatewayId> = r.steps.iter().map(|s| &s.gateway).collect();
            prop_assert!(ids.iter().all(|g| g.as_str() != gw));
            let mut dedup = ids.clone();
            dedup.sort();
            dedup.dedup();
            prop_assert_eq!(dedup.len(), ids.len());
            let has_ff = r.steps.iter().any(|s| s.flexfactor);
            if has_ff {
                prop_assert!(ip.is_some_and(|i| !i.is_empty()), "C3");
                prop_assert!(campaign != "one-click-bundle", "C4");
            }
            if cascade_all {
                let ff = GatewayId::new("flexfactor");
                prop_assert_eq!(ids, vec![&ff], "C2");
            }
        }
    }

    /// Recycle planner properties (Y1-Y4, S6): numbering is 1..n, at most one FlexFactor
    /// attempt and only at its end, in a slot S6 allows.
    #[test]
    fn recycle_planner_properties(flags in proptest::collection::vec(any::<bool>(), 0..12)) {
        let p = profile(&flags);
        let plan = recycle_plan(Some(&p));
        for (i, a) in plan.attempts.iter().enumerate() {
            prop_assert_eq!(a.number as usize, i + 1);
            prop_assert!(a.wait_days >= 0);
        }
        let ff: Vec<_> = plan.attempts.iter().filter(|a| matches!(a.target, RecycleTarget::FlexFactor { .. })).collect();
        prop_assert!(ff.len() <= 1);
        if let Some(h) = ff.first() {
            prop_assert_eq!(h.number as usize, plan.attempts.len(), "Y3: nothing after the hand-over");
            prop_assert!(RecycleSlot::of(h.number as usize, flags.len()).is_some(), "S6");
        } else {
            prop_assert_eq!(plan.attempts.len(), flags.len(), "Y4: every attempt on the billing gateway");
        }
    }
}
