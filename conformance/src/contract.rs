//! The contract suite: Salvage's FlexFactor client (`salvage_gateway::flexfactor::
//! FlexFactorClient`) against a FlexFactor: the fake (in-process, on a driven clock) or
//! FlexFactor's sandbox when credentials are in the environment.
//!
//! The same checks run against both; a check that needs the fake's controls (moving its clock,
//! counting the orders it holds) does its extra part only there. Sandbox environment:
//! `SALVAGE_FLEXFACTOR_SANDBOX_APP_KEY`, `..._APP_SECRET`, `..._MID`, `..._SITE_ID`,
//! `..._ENVIRONMENT_KEY` and optionally `SALVAGE_FLEXFACTOR_SANDBOX_URL` (default FlexFactor's
//! sandbox URL).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use salvage_domain::customer::{Address, CardDetails, CardToken, Customer};
use salvage_domain::decline::{DeclineFacts, DeclineType};
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::ids::{FlexFactorOrderId, GatewayId, OrderId};
use salvage_domain::money::{Currency, Money};
use salvage_domain::ports::{
    EvaluateAnswer, FlexFactor, FlexFactorOrderStatus, RefundAnswer, SalvageRequest, SubmissionMode,
};
use salvage_domain::setup::FlexFactorCredentials;
use salvage_domain::Clock;
use salvage_gateway::flexfactor::{
    FlexFactorClient, FlexFactorClientError, FlexFactorConfig, SANDBOX_BASE_URL,
};
use salvage_sim::fake_flexfactor::RunningFake;
use secrecy::SecretString;

/// The environment variables of the sandbox run (the URL is optional).
pub const SANDBOX_ENV: [(&str, &str); 5] = [
    ("app_key", "SALVAGE_FLEXFACTOR_SANDBOX_APP_KEY"),
    ("app_secret", "SALVAGE_FLEXFACTOR_SANDBOX_APP_SECRET"),
    ("mid", "SALVAGE_FLEXFACTOR_SANDBOX_MID"),
    ("site_id", "SALVAGE_FLEXFACTOR_SANDBOX_SITE_ID"),
    (
        "environment_key",
        "SALVAGE_FLEXFACTOR_SANDBOX_ENVIRONMENT_KEY",
    ),
];
/// The sandbox's base URL variable.
pub const SANDBOX_URL_ENV: &str = "SALVAGE_FLEXFACTOR_SANDBOX_URL";

/// FlexFactor's sandbox test cards.
pub const APPROVED_CARD: &str = "4111111111111111";
pub const DECLINED_CARD: &str = "4000300011112220";

/// What the suite runs against.
pub struct ContractTarget<'a> {
    /// For reports: `fake FlexFactor` or `FlexFactor sandbox`.
    pub name: String,
    pub config: FlexFactorConfig,
    pub credentials: FlexFactorCredentials,
    /// The clock the client and the requests use (the fake's, or the wall clock).
    pub clock: Arc<dyn Clock>,
    /// The fake, when it is one (for the checks' extra parts).
    pub fake: Option<&'a RunningFake>,
    /// Prefixes merchant order ids: the sandbox keeps every order, so ids differ per run.
    pub run_id: String,
}

/// The sandbox's configuration and credentials from the environment: `Ok(None)` when none of
/// the variables is set, an error naming the missing ones when only some are.
pub fn sandbox_from_env(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(FlexFactorConfig, FlexFactorCredentials)>, String> {
    let values: Vec<(&str, &str, Option<String>)> = SANDBOX_ENV
        .iter()
        .map(|(field, var)| (*field, *var, env(var).filter(|v| !v.trim().is_empty())))
        .collect();
    if values.iter().all(|(_, _, v)| v.is_none()) {
        return Ok(None);
    }
    let missing: Vec<&str> = values
        .iter()
        .filter(|(_, _, v)| v.is_none())
        .map(|(_, var, _)| *var)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the sandbox contract suite needs {} as well",
            missing.join(", ")
        ));
    }
    let mut credentials = FlexFactorCredentials::default();
    for (field, _, value) in values {
        credentials.set(field, SecretString::from(value.unwrap_or_default()));
    }
    let url = env(SANDBOX_URL_ENV)
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| SANDBOX_BASE_URL.to_string());
    Ok(Some((FlexFactorConfig::new(url), credentials)))
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed,
    Failed(String),
}

/// One check of the contract.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: &'static str,
    pub rules: &'static [&'static str],
    pub outcome: CheckOutcome,
    pub duration: StdDuration,
}

/// The results against one target.
#[derive(Debug, Clone)]
pub struct ContractReport {
    pub target: String,
    pub checks: Vec<CheckResult>,
}

impl ContractReport {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.outcome == CheckOutcome::Passed)
    }

    /// A text table.
    pub fn render(&self) -> String {
        let mut out = format!("FlexFactor contract suite against {}\n", self.target);
        for c in &self.checks {
            let (status, why) = match &c.outcome {
                CheckOutcome::Passed => ("passed", String::new()),
                CheckOutcome::Failed(w) => ("FAILED", format!(": {w}")),
            };
            out.push_str(&format!(
                "  {status:<6} [{}] {}{why}\n",
                c.rules.join(","),
                c.name
            ));
        }
        let passed = self
            .checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Passed)
            .count();
        out.push_str(&format!("{passed}/{} checks passed\n", self.checks.len()));
        out
    }
}

fn customer(phone: Option<&str>) -> Customer {
    Customer {
        first_name: "Cure".into(),
        last_name: "Tester".into(),
        email: Some("cure@example.com".into()),
        phone: phone.map(str::to_string),
        billing_address: Address {
            line1: "456 My Street".into(),
            line2: None,
            city: "Ottawa".into(),
            state: Some("ON".into()),
            zip: "K1C2N6".into(),
            country: "CA".into(),
        },
    }
}

fn card(number: &str, cvv: &str) -> CardDetails {
    CardDetails {
        number: SecretString::from(number),
        cvv: Some(SecretString::from(cvv)),
        exp_month: 9,
        exp_year: 2030,
        holder: "Cure Tester".into(),
    }
}

fn usd(cents: i64) -> Result<Money, String> {
    Money::new(cents, Currency::USD).map_err(|e| format!("{e:?}"))
}

struct Ctx<'a> {
    target: &'a ContractTarget<'a>,
    client: FlexFactorClient,
}

impl Ctx<'_> {
    fn order_id(&self, name: &str) -> OrderId {
        OrderId::new(format!("{}-{name}", self.target.run_id))
    }

    async fn token(&self, number: &str, cvv: &str) -> Result<CardToken, String> {
        self.client
            .tokenize(&card(number, cvv))
            .await
            .map_err(|e| format!("tokenize: {e}"))
    }

    fn request(
        &self,
        order: &OrderId,
        card: CardToken,
        mode: SubmissionMode,
        cents: i64,
        phone: Option<&str>,
    ) -> Result<SalvageRequest, String> {
        Ok(SalvageRequest {
            flexfactor_gateway: GatewayId::new("flexfactor"),
            idempotency_key: IdempotencyKey::salvage(order, 1),
            order_id: order.clone(),
            mode,
            amount: usd(cents)?,
            decline: DeclineFacts {
                gateway: GatewayId::new("nmi-main"),
                response_code: "51".into(),
                response_message: "Insufficient funds".into(),
                processor_verdict: DeclineType::Soft,
                visa_category: None,
                mastercard_advice_code: None,
            },
            card,
            customer: customer(phone),
            items: Vec::new(),
            subscription: None,
        })
    }

    fn cit(&self) -> SubmissionMode {
        SubmissionMode::Cit {
            customer_ip: "203.0.113.7".into(),
        }
    }

    fn mit(&self) -> SubmissionMode {
        SubmissionMode::Mit {
            expires_at: self.target.clock.now() + chrono::Duration::days(21),
            recurring: false,
        }
    }

    /// A CIT for `name` with `number`/`cvv`: its answer.
    async fn cit_for(
        &self,
        name: &str,
        number: &str,
        cvv: &str,
        phone: Option<&str>,
    ) -> Result<(SalvageRequest, EvaluateAnswer), String> {
        let token = self.token(number, cvv).await?;
        let req = self.request(&self.order_id(name), token, self.cit(), 1999, phone)?;
        let answer = self
            .client
            .evaluate(&req)
            .await
            .map_err(|e| format!("evaluate: {e}"))?;
        Ok((req, answer))
    }
}

fn ff_id(answer: &EvaluateAnswer) -> Result<FlexFactorOrderId, String> {
    answer
        .flexfactor_order_id()
        .cloned()
        .ok_or_else(|| format!("no FlexFactor order id in {answer:?}"))
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

async fn f1_token_reused_then_refreshed(c: &Ctx<'_>) -> Result<(), String> {
    let before = c.client.token_fetch_count();
    c.token(APPROVED_CARD, "123").await?;
    c.token(APPROVED_CARD, "123").await?;
    let after = c.client.token_fetch_count();
    expect(after <= before + 1, || {
        format!("{} tokens fetched for two calls", after - before)
    })?;
    if let Some(fake) = c.target.fake {
        // Past `expires` (10 minutes) a new token is fetched before the call.
        fake.advance(chrono::Duration::minutes(11));
        c.token(APPROVED_CARD, "123").await?;
        let again = c.client.token_fetch_count();
        expect(again == after + 1, || {
            format!(
                "after the token expired, {} fetches instead of one",
                again - after
            )
        })?;
    }
    Ok(())
}

async fn f1_unknown_credentials_are_refused(c: &Ctx<'_>) -> Result<(), String> {
    let mut creds = c.target.credentials.clone();
    creds.set("app_secret", SecretString::from("not-the-secret"));
    let client = FlexFactorClient::new(c.target.config.clone(), creds, c.target.clock.clone())
        .map_err(|e| e.to_string())?;
    match client
        .order_status_detailed(&FlexFactorOrderId::new("no-such-order"))
        .await
    {
        Err(FlexFactorClientError::Unauthorized) => Ok(()),
        other => Err(format!("expected Unauthorized, got {other:?}")),
    }
}

async fn f2_tokenize(c: &Ctx<'_>) -> Result<(), String> {
    let t = c.token(APPROVED_CARD, "123").await?;
    expect(!t.token.is_empty() && t.token != APPROVED_CARD, || {
        "the token is empty or the card number".into()
    })?;
    expect(t.bin == "411111" && t.last4 == "1111", || {
        format!("BIN {} and last four {}", t.bin, t.last4)
    })
}

async fn c5_cit_approved_and_completed(c: &Ctx<'_>) -> Result<(), String> {
    let (_, answer) = c.cit_for("cit-ok", APPROVED_CARD, "123", None).await?;
    expect(matches!(answer, EvaluateAnswer::Approved { .. }), || {
        format!("expected APPROVED, got {answer:?}")
    })?;
    let id = ff_id(&answer)?;
    let status = c
        .client
        .order_status(&id)
        .await
        .map_err(|e| format!("GET /orders/{{id}}: {e}"))?;
    expect(
        matches!(status, FlexFactorOrderStatus::Completed { .. }),
        || format!("order status {status:?}"),
    )
}

async fn c5_cit_declined(c: &Ctx<'_>) -> Result<(), String> {
    let (_, answer) = c
        .cit_for("cit-declined", DECLINED_CARD, "123", None)
        .await?;
    expect(matches!(answer, EvaluateAnswer::Declined { .. }), || {
        format!("expected DECLINED, got {answer:?}")
    })
}

async fn r2_mit_submitted_then_pending(c: &Ctx<'_>) -> Result<(), String> {
    let token = c.token(APPROVED_CARD, "123").await?;
    let req = c.request(&c.order_id("mit"), token, c.mit(), 1999, None)?;
    let answer = c
        .client
        .evaluate(&req)
        .await
        .map_err(|e| format!("evaluate: {e}"))?;
    expect(
        matches!(
            answer,
            EvaluateAnswer::Submitted { .. } | EvaluateAnswer::Processing { .. }
        ),
        || format!("expected SUBMITTED, got {answer:?}"),
    )?;
    let id = ff_id(&answer)?;
    let status = c
        .client
        .order_status(&id)
        .await
        .map_err(|e| format!("GET /orders/{{id}}: {e}"))?;
    expect(status == FlexFactorOrderStatus::Pending, || {
        format!("a submitted MIT reads {status:?}")
    })?;
    // O8/F5: cancel it (a void), then it reads cancelled.
    c.client
        .cancel(&id)
        .await
        .map_err(|e| format!("cancel: {e}"))?;
    let status = c
        .client
        .order_status(&id)
        .await
        .map_err(|e| format!("GET /orders/{{id}} after cancel: {e}"))?;
    expect(
        matches!(
            status,
            FlexFactorOrderStatus::Cancelled
                | FlexFactorOrderStatus::Declined
                | FlexFactorOrderStatus::Expired
        ),
        || format!("a cancelled order reads {status:?}"),
    )
}

async fn c5_external_cancel(c: &Ctx<'_>) -> Result<(), String> {
    // A challenged CIT (CVV 999) stays on hold until cancelled.
    let (req, answer) = c
        .cit_for("cit-challenge", APPROVED_CARD, "999", None)
        .await?;
    expect(matches!(answer, EvaluateAnswer::Challenge { .. }), || {
        format!("expected CHALLENGE, got {answer:?}")
    })?;
    c.client
        .external_cancel(&req.order_id)
        .await
        .map_err(|e| format!("external-cancel: {e}"))?;
    // Cancel and external-cancel are idempotent.
    c.client
        .external_cancel(&req.order_id)
        .await
        .map_err(|e| format!("external-cancel again: {e}"))?;
    let id = ff_id(&answer)?;
    let status = c
        .client
        .order_status(&id)
        .await
        .map_err(|e| format!("GET /orders/{{id}}: {e}"))?;
    expect(status == FlexFactorOrderStatus::Cancelled, || {
        format!("after external-cancel the order reads {status:?}")
    })
}

async fn f4_refund_in_dollars(c: &Ctx<'_>) -> Result<(), String> {
    let (_, answer) = c.cit_for("refund", APPROVED_CARD, "123", None).await?;
    let id = ff_id(&answer)?;
    let refund = c
        .client
        .refund(&id, usd(500)?)
        .await
        .map_err(|e| format!("refund: {e}"))?;
    expect(refund == RefundAnswer::Refunded, || {
        format!("refund of 5.00: {refund:?}")
    })?;
    // More than what is left: a failure, not an error.
    let too_much = c
        .client
        .refund(&id, usd(100_000)?)
        .await
        .map_err(|e| format!("refund beyond the amount: {e}"))?;
    expect(matches!(too_much, RefundAnswer::Failed { .. }), || {
        format!("refund of 1000.00 of 19.99: {too_much:?}")
    })?;
    if let Some(fake) = c.target.fake {
        let order = fake
            .order(id.as_str())
            .ok_or("the fake does not know the order")?;
        expect(order.refunded_cents == 500, || {
            format!("the fake refunded {} cents", order.refunded_cents)
        })?;
    }
    Ok(())
}

async fn f4_capture_in_cents(c: &Ctx<'_>) -> Result<(), String> {
    // Phone 998888 on a CIT needs a capture (sandbox behaviour).
    let (_, answer) = c
        .cit_for("capture", APPROVED_CARD, "123", Some("998888"))
        .await?;
    expect(
        matches!(answer, EvaluateAnswer::CaptureRequired { .. }),
        || format!("expected CAPTUREREQUIRED, got {answer:?}"),
    )?;
    let id = ff_id(&answer)?;
    let captured = c
        .client
        .capture(&id, usd(1999)?)
        .await
        .map_err(|e| format!("capture: {e}"))?;
    expect(matches!(captured, EvaluateAnswer::Approved { .. }), || {
        format!("capture of the full amount: {captured:?}")
    })?;
    if let Some(fake) = c.target.fake {
        let order = fake
            .order(id.as_str())
            .ok_or("the fake does not know the order")?;
        expect(order.paid_cents == 1999, || {
            format!("the fake collected {} cents", order.paid_cents)
        })?;
    }
    Ok(())
}

async fn f3_idempotent_replay(c: &Ctx<'_>) -> Result<(), String> {
    let token = c.token(APPROVED_CARD, "123").await?;
    let req = c.request(&c.order_id("replay"), token, c.mit(), 1999, None)?;
    let first = c
        .client
        .evaluate(&req)
        .await
        .map_err(|e| format!("evaluate: {e}"))?;
    let second = c
        .client
        .evaluate(&req)
        .await
        .map_err(|e| format!("evaluate again: {e}"))?;
    let (a, b) = (ff_id(&first)?, ff_id(&second)?);
    expect(a == b, || {
        format!("the replay made a second order: {a} then {b}")
    })?;
    if let Some(fake) = c.target.fake {
        let orders = fake
            .state()
            .orders
            .iter()
            .filter(|o| o.external_order_id == req.order_id.as_str())
            .count();
        expect(orders == 1, || format!("the fake holds {orders} orders"))?;
    }
    Ok(())
}

async fn f3_same_key_other_body_is_409(c: &Ctx<'_>) -> Result<(), String> {
    let token = c.token(APPROVED_CARD, "123").await?;
    let req = c.request(&c.order_id("conflict"), token, c.mit(), 1999, None)?;
    c.client
        .evaluate(&req)
        .await
        .map_err(|e| format!("evaluate: {e}"))?;
    let mut other = req.clone();
    other.amount = usd(2999)?;
    match c.client.evaluate_detailed(&other).await {
        Err(FlexFactorClientError::IdempotencyConflict) => Ok(()),
        other => Err(format!("expected a 409 conflict, got {other:?}")),
    }
}

/// Runs every check against `target`.
pub async fn run(target: &ContractTarget<'_>) -> Result<ContractReport, String> {
    let client = FlexFactorClient::new(
        target.config.clone(),
        target.credentials.clone(),
        target.clock.clone(),
    )
    .map_err(|e| e.to_string())?;
    let c = Ctx { target, client };
    let mut checks = Vec::new();
    macro_rules! check {
        ($f:ident, $rules:expr) => {{
            let started = Instant::now();
            let outcome = match $f(&c).await {
                Ok(()) => CheckOutcome::Passed,
                Err(why) => CheckOutcome::Failed(why),
            };
            checks.push(CheckResult {
                name: stringify!($f),
                rules: $rules,
                outcome,
                duration: started.elapsed(),
            });
        }};
    }
    check!(f1_token_reused_then_refreshed, &["F1"]);
    check!(f1_unknown_credentials_are_refused, &["F1", "S1"]);
    check!(f2_tokenize, &["F2"]);
    check!(c5_cit_approved_and_completed, &["C5", "O8"]);
    check!(c5_cit_declined, &["C5"]);
    check!(r2_mit_submitted_then_pending, &["R2", "O8"]);
    check!(c5_external_cancel, &["C5"]);
    check!(f4_refund_in_dollars, &["F4", "K3"]);
    check!(f4_capture_in_cents, &["F4"]);
    check!(f3_idempotent_replay, &["F3"]);
    check!(f3_same_key_other_body_is_409, &["F3"]);
    Ok(ContractReport {
        target: target.name.clone(),
        checks,
    })
}

/// A run id for merchant order ids (`ct` and the time).
pub fn run_id() -> String {
    format!("ct{}", Utc::now().format("%y%m%d%H%M%S%3f"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_env_is_all_or_nothing() {
        assert!(matches!(sandbox_from_env(&|_| None), Ok(None)));
        let e =
            sandbox_from_env(&|v| (v == "SALVAGE_FLEXFACTOR_SANDBOX_APP_KEY").then(|| "k".into()))
                .unwrap_err();
        assert!(e.contains("SALVAGE_FLEXFACTOR_SANDBOX_APP_SECRET"), "{e}");
        assert!(!e.contains("SALVAGE_FLEXFACTOR_SANDBOX_APP_KEY,"), "{e}");
        let all = sandbox_from_env(&|v| Some(format!("value-of-{v}"))).unwrap();
        let (config, creds) = all.unwrap();
        assert!(config
            .base_url
            .contains("value-of-SALVAGE_FLEXFACTOR_SANDBOX_URL"));
        assert!(creds.missing().contains(&"hmac_signing_key"));
        assert_eq!(creds.missing().len(), 1);
    }
}
