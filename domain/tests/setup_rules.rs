//! Rules S1-S8: the setup model, its loading and its validation.

mod common;

use common::*;
use salvage_domain::setup::{SetupError, SetupViolation};
use salvage_domain::Setup;

fn violations(text: &str) -> Vec<SetupViolation> {
    match Setup::from_toml_str(text) {
        Err(SetupError::Invalid(v)) => v,
        Err(SetupError::Parse(e)) => panic!("expected violations, got a parse error: {e}"),
        Ok(_) => panic!("expected violations, the setup was accepted"),
    }
}

fn has(v: &[SetupViolation], rule: &str, entry_part: &str) -> bool {
    v.iter()
        .any(|x| x.rule == rule && x.entry.contains(entry_part))
}

const FF_CREDS: &str = r#"
[gateways.credentials]
app_key = "k"
app_secret = "s"
mid = "m"
site_id = "site"
environment_key = "e"
hmac_signing_key = "aGVsbG8="
"#;

fn ff_gateway(extra: &str) -> String {
    format!("[[gateways]]\nkind = \"flexfactor\"\nid = \"ff\"\n{extra}\n{FF_CREDS}\n")
}

const REGULAR: &str = r#"
[[gateways]]
kind = "regular"
id = "nmi"
processor = "nmi"
"#;

#[test]
fn sample_setup_is_valid_and_exercises_every_feature() {
    let s = sample_setup();
    assert!(s.flexfactor_gateways().count() == 1);
    assert!(s.campaigns.iter().any(|c| c.single_transaction));
    assert!(s
        .campaigns
        .iter()
        .flat_map(|c| &c.products)
        .any(|p| p.recurring.is_some_and(|r| r.trial_days.is_some())));
    assert!(s
        .gateway_profiles
        .iter()
        .any(|p| p.cascade_profile.is_some()));
    assert!(s
        .gateway_profiles
        .iter()
        .any(|p| p.cascade_profile.is_none()));
    assert!(s.cascade_profiles.len() >= 2);
    assert!(s
        .recycle_profiles
        .iter()
        .any(|p| p.attempts.iter().any(|a| a.flexfactor)));
    assert!(s.decline_mappings.iter().any(|m| m.gateway.is_some()));
    assert!(s.decline_mappings.iter().any(|m| m.gateway_type.is_some()));
    let summary = s.summary();
    assert!(summary.contains("FlexFactor flexfactor"), "{summary}");
}

#[test]
fn s1_all_six_credentials_are_required() {
    let text = format!(
        "{REGULAR}[[gateways]]\nkind = \"flexfactor\"\nid = \"ff\"\n[gateways.credentials]\napp_key = \"k\"\n"
    );
    let v = violations(&text);
    let s1: Vec<_> = v.iter().filter(|x| x.rule == "S1").collect();
    assert_eq!(s1.len(), 1, "{v:?}");
    for name in [
        "app_secret",
        "mid",
        "site_id",
        "environment_key",
        "hmac_signing_key",
    ] {
        assert!(s1[0].message.contains(name), "{}", s1[0].message);
    }
    assert!(!s1[0].message.contains("app_key,"), "app_key was given");
}

#[test]
fn s1_secrets_never_appear_in_errors_or_debug() {
    let text = format!("{REGULAR}{}", ff_gateway("expiry_days = 99"))
        .replace("\"s\"", "\"very-secret-app-secret\"");
    let err = Setup::from_toml_str(&text).unwrap_err().to_string();
    assert!(!err.contains("very-secret-app-secret"), "{err}");
    let ok = Setup::from_toml_str(
        &format!("{REGULAR}{}", ff_gateway("")).replace("\"s\"", "\"very-secret-app-secret\""),
    )
    .unwrap();
    assert!(!format!("{ok:?}").contains("very-secret-app-secret"));
}

#[test]
fn s2_expiry_days_defaults_to_21_and_is_bounded() {
    let s = Setup::from_toml_str(&format!("{REGULAR}{}", ff_gateway(""))).unwrap();
    assert_eq!(s.flexfactor(&"ff".into()).unwrap().expiry_days, 21);
    for bad in ["0", "22", "-3"] {
        let v = violations(&format!(
            "{REGULAR}{}",
            ff_gateway(&format!("expiry_days = {bad}"))
        ));
        assert!(has(&v, "S2", "\"ff\""), "{bad}: {v:?}");
        assert!(v.iter().any(|x| x.message.contains("expiry_days")));
    }
    for good in ["1", "7", "21"] {
        assert!(Setup::from_toml_str(&format!(
            "{REGULAR}{}",
            ff_gateway(&format!("expiry_days = {good}"))
        ))
        .is_ok());
    }
}

#[test]
fn s3_flexfactor_cannot_be_placed_on_a_campaign_product() {
    let text = format!(
        "{REGULAR}{}\n[[campaigns]]\nid = \"c\"\ncurrency = \"USD\"\n[[campaigns.products]]\nid = \"p\"\nprice_minor = 100\ngateway = \"ff\"\n",
        ff_gateway("")
    );
    let v = violations(&text);
    assert!(has(&v, "S3", "product \"p\""), "{v:?}");
    let text = format!(
        "{REGULAR}{}\n[[campaigns]]\nid = \"c\"\ncurrency = \"USD\"\ngateway = \"ff\"\n",
        ff_gateway("")
    );
    assert!(has(&violations(&text), "S3", "campaign \"c\""));
}

#[test]
fn s4_flexfactor_cannot_be_an_atri_profile_member() {
    let text = format!(
        "{REGULAR}{}\n[[gateway_profiles]]\nid = \"atri\"\nmembers = [\"nmi\", \"ff\"]\n",
        ff_gateway("")
    );
    assert!(has(&violations(&text), "S4", "gateway profile \"atri\""));
}

#[test]
fn s5_flexfactor_may_be_in_a_cascade_profile_attached_directly_or_to_a_profile() {
    let text = format!(
        "[[gateways]]\nkind = \"regular\"\nid = \"nmi\"\nprocessor = \"nmi\"\ncascade_profile = \"cp\"\n{}\n[[cascade_profiles]]\nid = \"cp\"\ngateways = [\"ff\"]\n[[gateway_profiles]]\nid = \"atri\"\nmembers = [\"nmi\"]\ncascade_profile = \"cp\"\n",
        ff_gateway("")
    );
    assert!(Setup::from_toml_str(&text).is_ok());
    // An attachment to a profile that does not exist is refused, naming the entry.
    let broken = text
        .replace(
            "cascade_profile = \"cp\"\n{",
            "cascade_profile = \"nope\"\n{",
        )
        .replace(
            "members = [\"nmi\"]\ncascade_profile = \"cp\"",
            "members = [\"nmi\"]\ncascade_profile = \"missing\"",
        );
    let v = violations(&broken);
    assert!(has(&v, "S5", "gateway profile \"atri\""), "{v:?}");
}

#[test]
fn s6_flexfactor_only_on_reattempts_4_to_9_or_the_final_one() {
    let profile = |flags: &[bool]| {
        let attempts: Vec<String> = flags
            .iter()
            .map(|f| format!("{{ wait_days = 1, flexfactor = {f} }}"))
            .collect();
        format!(
            "{REGULAR}{}\n[[recycle_profiles]]\nid = \"rp\"\ngateways = [\"nmi\"]\nflexfactor_gateway = \"ff\"\nattempts = [{}]\n",
            ff_gateway(""),
            attempts.join(", ")
        )
    };
    // Allowed: 4, 7, final.
    let mut f = vec![false; 10];
    f[3] = true;
    assert!(Setup::from_toml_str(&profile(&f)).is_ok());
    let mut f = vec![false; 10];
    f[6] = true;
    assert!(Setup::from_toml_str(&profile(&f)).is_ok());
    let mut f = vec![false; 3];
    f[2] = true;
    assert!(Setup::from_toml_str(&profile(&f)).is_ok(), "final attempt");
    // Refused: 1-3, and 10 when it is not the final.
    for bad in [0usize, 1, 2, 9] {
        let mut f = vec![false; 11];
        f[bad] = true;
        let v = violations(&profile(&f));
        assert!(
            has(&v, "S6", "recycle profile \"rp\""),
            "attempt {}: {v:?}",
            bad + 1
        );
        assert!(v[0].message.contains(&format!("re-attempt {}", bad + 1)));
    }
}

#[test]
fn s7_cascade_all_and_include_chargebacks_are_off_by_default() {
    let s = Setup::from_toml_str(&format!("{REGULAR}{}", ff_gateway(""))).unwrap();
    let ff = s.flexfactor(&"ff".into()).unwrap();
    assert!(!ff.cascade_all);
    assert!(!ff.include_chargebacks);
}

#[test]
fn s8_flexfactor_cannot_be_a_billing_gateway_in_a_recycle_profile() {
    let text = format!(
        "{REGULAR}{}\n[[recycle_profiles]]\nid = \"rp\"\ngateways = [\"ff\"]\nattempts = [{{ wait_days = 1 }}]\n",
        ff_gateway("")
    );
    assert!(has(&violations(&text), "S8", "recycle profile \"rp\""));
}

#[test]
fn every_violation_is_reported_at_once_with_rule_and_entry() {
    let text = format!(
        "{REGULAR}{}\n[[gateway_profiles]]\nid = \"atri\"\nmembers = [\"ff\"]\n[[campaigns]]\nid = \"c\"\ncurrency = \"USD\"\ngateway = \"ff\"\n[[recycle_profiles]]\nid = \"rp\"\ngateways = [\"ff\"]\nflexfactor_gateway = \"ff\"\nattempts = [{{ wait_days = 1, flexfactor = true }}, {{ wait_days = 1 }}]\n[[decline_mappings]]\nname = \"m\"\nmessage_contains = \"x\"\nmap_to = \"soft\"\n",
        ff_gateway("expiry_days = 40")
    );
    let v = violations(&text);
    for rule in ["S2", "S3", "S4", "S6", "S8", "D2"] {
        assert!(v.iter().any(|x| x.rule == rule), "missing {rule} in {v:?}");
    }
    let rendered = SetupError::Invalid(v.clone()).to_string();
    assert!(rendered.contains(&format!("{} problem(s)", v.len())));
    assert!(
        rendered.contains("[S4] gateway profile \"atri\""),
        "{rendered}"
    );
}

#[test]
fn unknown_references_and_fields_are_reported() {
    let v = violations(&format!(
        "{REGULAR}\n[[cascade_profiles]]\nid = \"cp\"\ngateways = [\"ghost\"]\n"
    ));
    assert!(has(&v, "setup", "cascade profile \"cp\""));
    assert!(v[0].message.contains("ghost"));
    match Setup::from_toml_str(
        "[[gateways]]\nkind = \"regular\"\nid = \"x\"\nprocessor = \"nmi\"\nbogus = 1\n",
    ) {
        Err(SetupError::Parse(e)) => assert!(e.contains("bogus"), "{e}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn y1_periods_and_waits_are_bounded_so_dates_cannot_overflow() {
    let text = format!(
        "{REGULAR}\n[[campaigns]]\nid = \"c\"\ncurrency = \"USD\"\n[[campaigns.products]]\nid = \"p\"\nprice_minor = 100\nrecurring = {{ interval_days = 9223372036854775807, trial_days = 99999 }}\n[[recycle_profiles]]\nid = \"rp\"\ngateways = [\"nmi\"]\nattempts = [{{ wait_days = 400 }}]\n"
    );
    let v = violations(&text);
    assert!(
        v.iter()
            .any(|x| x.message.contains("interval_days must be 1 to")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|x| x.message.contains("trial_days must be 1 to")),
        "{v:?}"
    );
    assert!(has(&v, "Y1", "recycle profile \"rp\""), "{v:?}");
}
