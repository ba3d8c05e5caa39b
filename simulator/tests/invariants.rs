//! Random scenarios (small populations): the simulation's invariants hold whatever the
//! parameters: recoveries never exceed submissions and every submission ends recovered, failed
//! or pending; recovered money equals the salvaged orders' amounts in their final states; no
//! rebill both advances and fails its subscription, none advances it twice (O4, O7); a
//! FlexFactor failure on a trial completion leaves its status as it was (O3); variants see the
//! same traffic; the report does not depend on the thread count.

mod common;

use common::*;
use proptest::prelude::*;

/// A variant: cascade_all, expiry_days, include_chargebacks, which recycle slot.
type VariantParams = (Option<bool>, Option<i64>, Option<bool>, u8);

#[derive(Debug, Clone)]
struct Params {
    seed: u64,
    customers: u32,
    horizon: u32,
    arrival: u32,
    ip: u32,
    weights: Vec<u32>,
    gateways: (u32, u32, u32, u32, Vec<u32>),
    flexfactor: (u32, u32, [u32; 3], u32, Vec<u32>),
    crm: (u32, u32, u32, bool, bool),
    after_sale: (u32, u32),
    variants: Vec<VariantParams>,
}

fn share() -> impl Strategy<Value = u32> {
    0u32..=1000
}

fn f(x: u32) -> String {
    format!("{:?}", f64::from(x) / 1000.0)
}

fn params() -> impl Strategy<Value = Params> {
    (
        (any::<u64>(), 4u32..30, 10u32..150, 0u32..40, share()),
        proptest::collection::vec(0u32..4, 5),
        (
            share(),
            share(),
            share(),
            share(),
            proptest::collection::vec(share(), 1..5),
        ),
        (
            share(),
            share(),
            [share(), share(), share()],
            0u32..400,
            proptest::collection::vec(0u32..5, 1..=21),
        ),
        (share(), share(), 0u32..72, any::<bool>(), any::<bool>()),
        (0u32..300, 0u32..300),
        proptest::collection::vec(
            (
                proptest::option::of(any::<bool>()),
                proptest::option::of(1i64..=21),
                proptest::option::of(any::<bool>()),
                0u8..5,
            ),
            1..4,
        ),
    )
        .prop_map(
            |(
                (seed, customers, horizon, arrival, ip),
                weights,
                gateways,
                flexfactor,
                crm,
                after_sale,
                variants,
            )| {
                Params {
                    seed,
                    customers,
                    horizon,
                    arrival,
                    ip,
                    weights,
                    gateways,
                    flexfactor,
                    crm,
                    after_sale,
                    variants,
                }
            },
        )
}

fn toml_of(p: &Params) -> String {
    let products = [
        "serum-trial",
        "serum-monthly",
        "cleanser",
        "coaching-monthly",
        "bundle",
    ];
    let campaigns = [
        "skincare",
        "skincare",
        "skincare",
        "coaching",
        "one-click-bundle",
    ];
    let mut mix: Vec<String> = products
        .iter()
        .zip(campaigns)
        .zip(&p.weights)
        .map(|((prod, camp), w)| {
            format!("{{ campaign = \"{camp}\", product = \"{prod}\", weight = {w} }}")
        })
        .collect();
    // At least one product sells; trials always do a little, for O3.
    mix.push("{ campaign = \"skincare\", product = \"serum-trial\", weight = 1 }".into());
    let (g_new, g_cascade, g_rebill, g_soft, g_recycle) = &p.gateways;
    let (ff_cascade, ff_rerun, slots, lost, delays) = &p.flexfactor;
    let delays: Vec<u32> = if delays.iter().all(|d| *d == 0) {
        vec![1]
    } else {
        delays.clone()
    };
    let (rerun, rerun_trial, delay_h, after_ff, cancel) = &p.crm;
    let mut text = format!(
        r#"
name = "random"
seed = {seed}
horizon_days = {horizon}
setup = {{ path = "setup.toml" }}

[population]
customers = {customers}
arrival_days = {arrival}
ip_address_share = {ip}
products = [{mix}]

[gateways]
new_sale_approval = {g_new}
cascade_approval = {g_cascade}
rebill_approval = {g_rebill}
soft_share = {g_soft}
recycle_approval = [{g_recycle}]

[flexfactor]
cascade_approval = {ff_cascade}
rerun_recovery = {ff_rerun}
recycle_recovery = {{ "4-6" = {s0}, "7-9" = {s1}, final = {s2} }}
lost_webhook_share = {lost}
delay_day_weights = {delays:?}

[crm]
rerun_share = {rerun}
rerun_trial_share = {rerun_trial}
rerun_delay_hours = {delay_h}
rerun_after_cascade_flexfactor = {after_ff}
cancel_on_chargeback = {cancel}

[after_sale]
chargeback_share = {cb}
refund_share = {rf}
"#,
        seed = p.seed,
        horizon = p.horizon,
        customers = p.customers,
        arrival = p.arrival,
        ip = f(p.ip),
        mix = mix.join(", "),
        g_new = f(*g_new),
        g_cascade = f(*g_cascade),
        g_rebill = f(*g_rebill),
        g_soft = f(*g_soft),
        g_recycle = g_recycle
            .iter()
            .map(|x| f(*x))
            .collect::<Vec<_>>()
            .join(", "),
        ff_cascade = f(*ff_cascade),
        ff_rerun = f(*ff_rerun),
        s0 = f(slots[0]),
        s1 = f(slots[1]),
        s2 = f(slots[2]),
        lost = f(*lost),
        rerun = f(*rerun),
        rerun_trial = f(*rerun_trial),
        cb = f(p.after_sale.0),
        rf = f(p.after_sale.1),
    );
    for (i, (cascade_all, expiry, chargebacks, slot)) in p.variants.iter().enumerate() {
        text.push_str(&format!("\n[[variants]]\nname = \"v{i}\"\n"));
        if let Some(b) = cascade_all {
            text.push_str(&format!("cascade_all = {b}\n"));
        }
        if let Some(d) = expiry {
            text.push_str(&format!("expiry_days = {d}\n"));
        }
        if let Some(b) = chargebacks {
            text.push_str(&format!("include_chargebacks = {b}\n"));
        }
        let slots = ["[4]", "[7]", "[\"final\"]", "[]", "[5, 8]"];
        text.push_str(&format!(
            "recycle_flexfactor = {{ recycle-ladder = {} }}\n",
            slots[*slot as usize]
        ));
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_on_random_scenarios(p in params()) {
        let s = scenario(&toml_of(&p));
        let report = run(&s, 2);
        assert_sound(&report);
        let first = &report.variants[0];
        for v in &report.variants {
            // O4, O7 and "no subscription both advances and fails in one cycle".
            prop_assert_eq!(v.invariants.advanced_and_failed_same_cycle, 0);
            prop_assert_eq!(v.invariants.advanced_twice_same_cycle, 0);
            // O3.
            prop_assert_eq!(v.invariants.trial_status_changed_by_failure, 0);
            // Money is conserved.
            prop_assert_eq!(v.audit.recovered_minor_from_events, v.audit.salvaged_minor_from_states);
            // The same traffic in every variant.
            prop_assert_eq!(&v.new_sales, &first.new_sales);
            prop_assert_eq!(v.customers, u64::from(p.customers));
            // Only expected refusals: stale recycle timers of a subscription cancelled after a
            // chargeback.
            for k in v.refused_commands.keys() {
                prop_assert!(*k == "subscription: not_recycling", "unexpected refusal {}", k);
            }
        }
        prop_assert_eq!(report.to_json().unwrap(), run(&s, 1).to_json().unwrap());
    }
}
