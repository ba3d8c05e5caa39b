//! The example trace, replayed through the domain, ends in the states its comments describe.

use std::path::Path;
use std::sync::Arc;

use salvage_domain::customer::CredentialKind;
use salvage_domain::order::{SalvageRoute, SalvageState};
use salvage_domain::process_manager::{Effect, NotificationKind};
use salvage_domain::Setup;
use salvage_sim::replay::{replay, ReplayOutcome};
use salvage_sim::trace;

fn example() -> ReplayOutcome {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = Setup::from_toml_str(
        &std::fs::read_to_string(root.join("../examples/salvage.toml")).unwrap(),
    )
    .unwrap();
    let text = std::fs::read_to_string(root.join("traces/example.jsonl")).unwrap();
    let lines = trace::parse(&text).unwrap();
    replay(Arc::new(setup), &lines)
}

fn status(o: &ReplayOutcome, id: &str) -> &'static str {
    o.orders[&id.into()].status.unwrap()
}

#[test]
fn the_example_trace_replays_without_refusal() {
    let o = example();
    assert!(o.refused.is_empty(), "{:#?}", o.refused);
    assert_eq!(o.lines, 22);
    assert_eq!(o.ended_at.to_rfc3339(), "2026-05-15T00:00:00+00:00");
}

/// C1, C5, O6: cascaded to FlexFactor, approved at once, the subscription bills on the
/// declining gateway with the card number and no CVV.
#[test]
fn c5_o6_cascade_approval_completes_and_subscribes_on_the_declining_gateway() {
    let o = example();
    assert_eq!(status(&o, "o-100"), "complete");
    let s = o.orders[&"o-100".into()].state.salvage.clone().unwrap();
    assert_eq!(s.route, SalvageRoute::Cascade { step: 1 });
    assert_eq!(s.state, SalvageState::Succeeded);
    let sub = &o.subscriptions[&"sub-100".into()];
    assert_eq!(
        sub.state.credential,
        Some(CredentialKind::CardNumberWithoutCvv)
    );
}

/// C3, R2, O1, K1: no cascade without ip_address; the rerun completes; the chargeback is
/// recorded (include_chargebacks is on in the sample setup).
#[test]
fn c3_r2_o1_k1_rerun_recovers_then_a_chargeback_is_recorded() {
    let o = example();
    let h = &o.orders[&"o-200".into()].history;
    assert!(h.contains(&"CascadeSkipped"), "{h:?}");
    assert!(h.contains(&"SalvageSucceeded"));
    assert_eq!(status(&o, "o-200"), "chargeback");
    assert!(o
        .notifications
        .iter()
        .any(|n| n.kind == NotificationKind::Chargeback));
}

/// C4: the single transaction sale cascades to nmi-backup only, never to FlexFactor.
#[test]
fn c4_single_transaction_sale_never_reaches_flexfactor() {
    let o = example();
    assert_eq!(status(&o, "o-300"), "declined");
    let order = &o.orders[&"o-300".into()];
    assert!(order.state.salvage.is_none());
    assert!(order.history.contains(&"CascadeStepDeclined"));
    assert!(o.effects.iter().any(|e| matches!(
        &e.effect,
        Effect::Charge(c) if c.order_id.as_str() == "o-300" && c.gateway.as_str() == "nmi-backup"
    )));
}

/// O3: the FlexFactor failure of a trial completion leaves its status as it was.
#[test]
fn o3_trial_completion_failure_keeps_its_status() {
    let o = example();
    assert_eq!(status(&o, "t-400"), "declined");
    assert_eq!(
        o.orders[&"t-400".into()].order_type,
        Some("trial_completion")
    );
    let s = o.orders[&"t-400".into()].state.salvage.clone().unwrap();
    assert_eq!(s.state, SalvageState::Failed);
    assert_eq!(o.subscriptions[&"sub-400".into()].status, Some("trial"));
    assert!(o
        .notifications
        .iter()
        .any(|n| n.kind == NotificationKind::TrialCompletionFailed));
}

/// Y1-Y3, O4: three re-attempts on the billing gateway, then one hand-over to FlexFactor, which
/// recovers: exactly one cycle, billing back on nmi-main.
#[test]
fn y3_o4_recycle_handover_recovers_one_cycle_on_the_declining_gateway() {
    let o = example();
    assert_eq!(status(&o, "r-100-1"), "complete");
    let recycle_charges = o
        .effects
        .iter()
        .filter(|e| matches!(&e.effect, Effect::Charge(c) if c.order_id.as_str() == "r-100-1"))
        .count();
    assert_eq!(recycle_charges, 3);
    let submissions = o
        .effects
        .iter()
        .filter(|e| matches!(&e.effect, Effect::SubmitToFlexFactor { order_id, .. } if order_id.as_str() == "r-100-1"))
        .count();
    assert_eq!(submissions, 1);
    let sub = &o.subscriptions[&"sub-100".into()];
    assert_eq!(sub.status, Some("active"));
    assert_eq!(sub.cycle, 2);
    assert_eq!(
        sub.state.billing_gateway.as_ref().map(|g| g.as_str()),
        Some("nmi-main")
    );
    assert_eq!(
        sub.history
            .iter()
            .filter(|e| **e == "CycleAdvanced")
            .count(),
        1
    );
}

#[test]
fn the_replay_outcome_serializes() {
    let json = example().to_json().unwrap();
    assert!(json.contains("\"sub-100\""));
}
