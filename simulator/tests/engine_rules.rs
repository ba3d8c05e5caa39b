//! The engine drives the real domain: rule outcomes show in the report of small scenarios.

mod common;

use common::*;

fn base(body: &str) -> String {
    format!(
        r#"
name = "rules"
seed = 3
horizon_days = 150
setup = {{ path = "setup.toml" }}
{body}
"#
    )
}

/// C3: without ip_address, no sale cascades to FlexFactor; reruns still may (R2).
#[test]
fn c3_sales_without_ip_address_never_cascade_to_flexfactor() {
    let s = scenario(&base(
        r#"
[population]
customers = 300
ip_address_share = 0.0
products = [{ campaign = "skincare", product = "cleanser" }]
[gateways]
new_sale_approval = 0.3
soft_share = 1.0
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    let v = &r.variants[0];
    assert_eq!(v.flexfactor.by_route["cascade"].counts.submitted, 0);
    assert!(v.cascade.skipped["missing_ip_address"] > 100);
    assert!(v.flexfactor.by_route["rerun"].counts.submitted > 0);
}

/// C4: Single Transaction sales cascade to regular gateways only.
#[test]
fn c4_single_transaction_sales_never_cascade_to_flexfactor() {
    let s = scenario(&base(
        r#"
[population]
customers = 300
products = [{ campaign = "one-click-bundle", product = "bundle" }]
[gateways]
new_sale_approval = 0.3
soft_share = 1.0
[[variants]]
name = "off"
[[variants]]
name = "cascade_all"
cascade_all = true
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    for v in &r.variants {
        assert_eq!(
            v.flexfactor.by_route["cascade"].counts.submitted, 0,
            "{}",
            v.name
        );
    }
    assert!(r.variants[0].cascade.started > 0, "nmi-backup is tried");
    assert!(r.variants[1].cascade.skipped["single_transaction_campaign"] > 0);
}

/// C2: with cascade_all, soft-declined sales go straight (and only) to FlexFactor.
#[test]
fn c2_cascade_all_overrides_the_cascade_profiles() {
    let s = scenario(&base(
        r#"
[population]
customers = 300
ip_address_share = 1.0
products = [{ campaign = "coaching", product = "coaching-monthly" }]
[gateways]
new_sale_approval = 0.3
cascade_approval = 0.5
soft_share = 1.0
[[variants]]
name = "off"
cascade_all = false
[[variants]]
name = "on"
cascade_all = true
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    let (off, on) = (&r.variants[0], &r.variants[1]);
    assert!(off.cascade.approved_by_regular_gateway > 0);
    assert_eq!(on.cascade.approved_by_regular_gateway, 0);
    // Every soft-declined sale goes to FlexFactor, but for the Mastercard sales declined with
    // MAC 03 or 21: N3 stops their hand-over (N9's default obeys it), recorded blocked.
    let blocked: u64 = on.network.blocked.by_attempt["cascade_flexfactor"]
        .values()
        .sum();
    assert_eq!(
        blocked,
        on.network.blocked.by_attempt["cascade_flexfactor"]["N3"]
    );
    assert_eq!(
        on.flexfactor.by_route["cascade"].counts.submitted + blocked,
        on.new_sales.declined_soft
    );
}

/// K1, K2: chargebacks are recorded with include_chargebacks, acknowledged and ignored without.
#[test]
fn k1_k2_chargebacks_follow_include_chargebacks() {
    let s = scenario(&base(
        r#"
[population]
customers = 300
products = [{ campaign = "skincare", product = "cleanser" }]
[gateways]
new_sale_approval = 0.2
soft_share = 1.0
[flexfactor]
cascade_approval = 0.9
[after_sale]
chargeback_share = 0.5
chargeback_delay_days = [1, 10]
refund_share = 0.2
[[variants]]
name = "included"
include_chargebacks = true
[[variants]]
name = "not included"
include_chargebacks = false
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    let (on, off) = (&r.variants[0], &r.variants[1]);
    assert!(on.after_sale.chargebacks_recorded > 0);
    assert_eq!(on.after_sale.chargebacks_ignored, 0);
    assert_eq!(off.after_sale.chargebacks_recorded, 0);
    assert_eq!(
        off.after_sale.chargebacks_ignored,
        on.after_sale.chargebacks_recorded
    );
    assert!(on.after_sale.refunds > 0 && on.after_sale.refunds == off.after_sale.refunds);
    assert_eq!(
        on.orders_at_horizon["new_sale"]["chargeback"],
        on.summary.chargebacks
    );
}

/// O8: results whose webhook never comes are found by reconciliation after the expiry.
#[test]
fn o8_lost_webhooks_are_reconciled_after_the_expiry() {
    let s = scenario(&base(
        r#"
[population]
customers = 200
ip_address_share = 0.0
products = [{ campaign = "skincare", product = "cleanser" }]
[gateways]
new_sale_approval = 0.2
soft_share = 1.0
[crm]
rerun_share = 1.0
[flexfactor]
rerun_recovery = 0.8
lost_webhook_share = 1.0
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    let v = &r.variants[0];
    let rerun = &v.flexfactor.by_route["rerun"];
    assert!(rerun.counts.recovered > 0);
    assert_eq!(
        v.reconciled_by_poll,
        rerun.counts.recovered + rerun.counts.failed["expired"]
    );
    // Learnt only after the expiry (21 days) + 1 hour.
    assert!(rerun.hours_from_submission.p50.unwrap() >= 21 * 24);
}

/// D4: hard-declined rebills fail at once; Y4: soft ones without a FlexFactor slot exhaust the
/// profile.
#[test]
fn d4_y4_rebills_fail_hard_or_exhausted() {
    let text = |soft_share: &str| {
        base(&format!(
            r#"
[population]
customers = 100
arrival_days = 0
products = [{{ campaign = "coaching", product = "coaching-monthly" }}]
[gateways]
new_sale_approval = 1.0
rebill_approval = 0.0
recycle_approval = [0.0]
soft_share = {soft_share}
[[variants]]
name = "no FlexFactor"
recycle_flexfactor = {{ recycle-ladder = [] }}
"#
        ))
    };
    let hard = run(&scenario(&text("0.0")), 1);
    assert_sound(&hard);
    let v = &hard.variants[0];
    assert_eq!(v.subscriptions.created, 100);
    assert_eq!(v.recycle.started, 0, "D4: no recycle billing");
    assert_eq!(v.recycle.failed["hard_decline"], 100);

    let soft = run(&scenario(&text("1.0")), 1);
    assert_sound(&soft);
    let v = &soft.variants[0];
    assert_eq!(v.recycle.started, 100);
    assert_eq!(v.recycle.failed["exhausted"], 100, "Y4");
    // Every re-attempt is made but those the network rules stop: within 30 days of a Mastercard
    // decline with MAC 03 or 21 (N3), recorded blocked, and recycling moves on.
    let blocked = &v.network.blocked.by_attempt["recycle_reattempt"];
    assert!(blocked["N3"] > 0);
    assert_eq!(
        v.recycle.gateway_reattempts + blocked.values().sum::<u64>(),
        10 * 100
    );
    assert_eq!(v.subscriptions.status_at_horizon["recycle_failed"], 100);
}

/// O4, O5, O6: FlexFactor-salvaged sales subscribe with the card number; salvaged rebills advance
/// one cycle, failed ones make the subscription Recycle Failed.
#[test]
fn o4_o5_o6_flexfactor_outcomes_on_subscriptions() {
    let s = scenario(&base(
        r#"
[population]
customers = 200
arrival_days = 0
ip_address_share = 1.0
products = [{ campaign = "skincare", product = "serum-monthly" }]
[gateways]
new_sale_approval = 0.0
rebill_approval = 0.0
recycle_approval = [0.0]
soft_share = 1.0
[flexfactor]
cascade_approval = 1.0
[flexfactor.recycle_recovery]
"4-6" = 0.5
"7-9" = 0.5
final = 0.5
[after_sale]
chargeback_share = 0.0
refund_share = 0.0
"#,
    ));
    let r = run(&s, 2);
    assert_sound(&r);
    let v = &r.variants[0];
    // Every sale is salvaged by its FlexFactor cascade step, but for the Mastercard sales
    // declined with MAC 03 or 21: N3 stops their hand-over (N9's default obeys it).
    let blocked: u64 = v.network.blocked.by_attempt["cascade_flexfactor"]
        .values()
        .sum();
    assert!(blocked > 0);
    assert_eq!(v.subscriptions.with_card_number_without_cvv, 200 - blocked);
    assert_eq!(
        v.subscriptions.created,
        200 - blocked + v.cascade.approved_by_regular_gateway
    );
    let recycle = &v.flexfactor.by_route["recycle"].counts;
    assert!(recycle.recovered > 0);
    assert_eq!(v.subscriptions.advanced["flexfactor"], recycle.recovered);
    assert_eq!(
        v.recycle.failed["flexfactor_failed"],
        recycle.failed.values().sum::<u64>()
    );
}
