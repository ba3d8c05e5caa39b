//! The scenario model: scenarios, their steps and what the steps expect, as the loader builds
//! them and the runner runs them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::duration::format_duration;
use crate::matcher::{self, Check, FieldExpectation};
use crate::setup::SetupEdit;

/// The endpoint names of FlexFactor's call counts (`flexfactor_calls`).
pub const ENDPOINTS: [&str; 9] = [
    "token",
    "tokenize",
    "evaluate",
    "order",
    "cancel",
    "external_cancel",
    "refund",
    "capture",
    "outcome",
];

/// Where a step sits in its scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Given,
    When,
    Then,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Given => "given",
            Phase::When => "when",
            Phase::Then => "then",
        })
    }
}

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON (strings may hold `${...}`).
    Json(Value),
    /// Sent exactly as written.
    Raw {
        text: String,
        content_type: Option<String>,
    },
}

/// Which credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The target's API key.
    Key,
    /// No `Authorization` header.
    None,
    /// A key the service does not know.
    Wrong,
}

/// What an answer must be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpExpect {
    /// The status (a number or a matcher table).
    pub status: Vec<Check>,
    /// Fields of the JSON body.
    pub body: Vec<FieldExpectation>,
    /// Texts the raw body must not contain.
    pub body_excludes: Vec<String>,
    /// Texts the raw body must contain (a text answer, e.g. `/metrics`).
    pub body_contains: Vec<String>,
    /// The body must contain none of the setup's FlexFactor secrets (S1).
    pub body_excludes_secrets: bool,
}

impl HttpExpect {
    /// True when nothing is expected.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
            && self.body.is_empty()
            && self.body_excludes.is_empty()
            && self.body_contains.is_empty()
            && !self.body_excludes_secrets
    }
}

/// A request to the service's API.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    pub method: Method,
    pub path: String,
    pub body: Option<Body>,
    pub auth: Auth,
    pub expect: HttpExpect,
    pub capture: Vec<(String, matcher::Path)>,
    /// Repeat the request (letting due work run) until `expect` holds, for a few seconds.
    pub eventually: bool,
}

/// How a webhook delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Correctly, with the gateway's HMACSigningKey.
    Valid,
    /// With another key (W1).
    WrongKey,
    /// Correct signature, but `x-fc-content-sha512` does not match the body (W1).
    WrongContentHash,
    /// No `x-fc-*` headers at all.
    Unsigned,
}

/// A signed delivery to `POST /webhooks/flexfactor`, built like FlexFactor's.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookStep {
    pub event: String,
    pub external_order_id: Option<String>,
    pub flexfactor_order_id: Option<String>,
    pub confirmation_id: Option<String>,
    pub is_resent: bool,
    /// Sent instead of the built body.
    pub raw_body: Option<String>,
    /// Extra fields added to the built body (F5: unknown fields are ignored).
    pub extra: BTreeMap<String, Value>,
    /// Property names in lower case instead of FlexFactor's PascalCase (F5).
    pub lowercase_names: bool,
    /// Pad the body with spaces to this many bytes (W5).
    pub pad_to_bytes: Option<usize>,
    /// `x-fc-nonce` (default: a fresh one).
    pub nonce: Option<String>,
    /// Added to the current time for `x-fc-date` (W2).
    pub date_offset: chrono::Duration,
    pub signing: Signing,
    pub expect: HttpExpect,
}

/// `flexfactor_evaluate`: the `/evaluate` bodies the fake received for one merchant order.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateCheck {
    pub order_id: String,
    pub count: Vec<Check>,
    pub first: Vec<FieldExpectation>,
    pub last: Vec<FieldExpectation>,
    pub each: Vec<FieldExpectation>,
}

/// `flexfactor_order`: the fake's orders for one merchant order (from `/admin/state`).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOrderCheck {
    pub order_id: String,
    pub count: Vec<Check>,
    pub last: Vec<FieldExpectation>,
}

/// `notifications`: what the CRM was told about one order or subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationCheck {
    pub order_id: Option<String>,
    pub subscription_id: Option<String>,
    /// The kinds, in order, one per distinct `event_id`.
    pub kinds: Option<Vec<String>>,
    /// Only notifications of this kind count for `count` and `last`.
    pub kind: Option<String>,
    /// How many (of `kind`, if given).
    pub count: Vec<Check>,
    pub last: Vec<FieldExpectation>,
}

/// `start_service`: build the service from the scenario's setup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartExpect {
    /// The start must be refused.
    pub fails: bool,
    /// Texts the refusal must contain (rule IDs, field names).
    pub message_contains: Vec<String>,
    /// Texts it must not contain.
    pub message_excludes: Vec<String>,
    /// It must show none of the setup's FlexFactor secrets (S1).
    pub message_excludes_secrets: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Http(Box<HttpStep>),
    Webhook(Box<WebhookStep>),
    /// Move the clock (service and fake) and let due work run.
    Advance(chrono::Duration),
    /// Let due work run (deliveries, timers, notifications).
    Settle,
    /// Add a fault rule at the fake (`/admin/faults`).
    Fault(Value),
    /// Remove every fault rule.
    ClearFaults,
    FlexFactorEvaluate(Box<EvaluateCheck>),
    /// FlexFactor calls since the scenario began, per endpoint.
    FlexFactorCalls(Vec<(String, Vec<Check>)>),
    FlexFactorOrder(Box<FakeOrderCheck>),
    Notifications(Box<NotificationCheck>),
    StartService(StartExpect),
}

/// One step, with what it captures into variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub phase: Phase,
    /// 1-based within its phase.
    pub index: usize,
    pub action: Action,
    pub capture: Vec<(String, matcher::Path)>,
}

impl Step {
    /// `when[2]`.
    pub fn label(&self) -> String {
        format!("{}[{}]", self.phase, self.index)
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Http(h) => format!(
                "{} {}",
                match h.method {
                    Method::Get => "GET",
                    Method::Post => "POST",
                },
                h.path
            ),
            Action::Webhook(w) => format!("webhook {}", w.event),
            Action::Advance(d) => format!("advance {}", format_duration(*d)),
            Action::Settle => "settle".into(),
            Action::Fault(f) => format!("fault {f}"),
            Action::ClearFaults => "clear faults".into(),
            Action::FlexFactorEvaluate(e) => format!("FlexFactor /evaluate for {}", e.order_id),
            Action::FlexFactorCalls(_) => "FlexFactor calls".into(),
            Action::FlexFactorOrder(o) => format!("FlexFactor order {}", o.order_id),
            Action::Notifications(n) => format!(
                "notifications for {}",
                n.order_id
                    .as_deref()
                    .or(n.subscription_id.as_deref())
                    .unwrap_or("?")
            ),
            Action::StartService(_) => "start the service".into(),
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub rules: Vec<String>,
    /// Runs on its own service and fake (in-process).
    pub isolated: bool,
    pub setup: Vec<SetupEdit>,
    pub steps: Vec<Step>,
    /// The file it came from.
    pub file: PathBuf,
}

impl Scenario {
    /// True when it only validates a setup (no service to talk to).
    pub fn is_setup_check(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::StartService(_)))
    }

    /// True when it moves the clock.
    pub fn moves_clock(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Advance(_)))
    }

    /// True when it checks notifications.
    pub fn checks_notifications(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Notifications(_)))
    }
}

/// One scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFile {
    pub path: PathBuf,
    /// The file's stem (`c_cascades`).
    pub name: String,
    pub title: String,
    pub scenarios: Vec<Scenario>,
}
