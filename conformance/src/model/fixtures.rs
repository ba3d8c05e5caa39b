//! Fixtures of the model tests: the sample setup, the start time, cards and customers.

use chrono::{DateTime, TimeZone, Utc};
use salvage_domain::customer::{Address, CardToken, Customer};
use salvage_domain::{Currency, Money, Setup};

/// The sample setup the model is written for (`examples/salvage.toml`).
pub const SAMPLE_SETUP: &str = include_str!("../../../examples/salvage.toml");

/// The sample setup, loaded and validated. It is a fixture of this crate: a failure to load it
/// is a broken build of the suite, not a finding.
pub fn sample_setup() -> Setup {
    match Setup::from_toml_str(SAMPLE_SETUP) {
        Ok(s) => s,
        Err(e) => panic!("examples/salvage.toml must be a valid setup: {e}"),
    }
}

/// When every model run starts.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// US dollars, in cents (the model's amounts are fixed positive constants).
pub fn usd(minor: i64) -> Money {
    Money {
        amount_minor: minor,
        currency: Currency::USD,
    }
}

pub fn card() -> CardToken {
    CardToken {
        token: "tok_model".into(),
        bin: "411111".into(),
        last4: "1111".into(),
        exp_month: 9,
        exp_year: 2030,
        holder: "Model Tester".into(),
        fingerprint: None,
    }
}

pub fn customer() -> Customer {
    Customer {
        first_name: "Model".into(),
        last_name: "Tester".into(),
        email: Some("model@example.com".into()),
        phone: None,
        billing_address: Address {
            line1: "1 Model Street".into(),
            city: "Ottawa".into(),
            zip: "K1C2N6".into(),
            country: "CA".into(),
            ..Address::default()
        },
    }
}
