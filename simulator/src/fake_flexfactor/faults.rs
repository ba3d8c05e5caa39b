//! Fault injection: per API endpoint (5xx, timeouts, slow answers, forced 401) and on webhook
//! deliveries (duplicate, late, resent, reordered, bad signature). Each rule fires `times` times
//! (forever when not given), counted in the order requests arrive.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The fake's API endpoints (also the keys of the call counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `POST /v1/oauth2/token`.
    Token,
    /// `POST /v1/tokenize`.
    Tokenize,
    /// `POST /v1/evaluate`.
    Evaluate,
    /// `GET /v1/orders/{id}`.
    Order,
    /// `POST /v1/orders/{id}/cancel`.
    Cancel,
    /// `POST /v1/orders/{id}/external-cancel`.
    ExternalCancel,
    /// `POST /v1/orders/{id}/refund`.
    Refund,
    /// `POST /v1/capture`.
    Capture,
    /// `POST /v1/outcome` (deprecated by FlexFactor, kept for old clients).
    Outcome,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::Token,
        Endpoint::Tokenize,
        Endpoint::Evaluate,
        Endpoint::Order,
        Endpoint::Cancel,
        Endpoint::ExternalCancel,
        Endpoint::Refund,
        Endpoint::Capture,
        Endpoint::Outcome,
    ];

    /// The snake_case name (as in scenario files).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Tokenize => "tokenize",
            Endpoint::Evaluate => "evaluate",
            Endpoint::Order => "order",
            Endpoint::Cancel => "cancel",
            Endpoint::ExternalCancel => "external_cancel",
            Endpoint::Refund => "refund",
            Endpoint::Capture => "capture",
            Endpoint::Outcome => "outcome",
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a fault applies: one endpoint, every endpoint (`"*"`), or the webhook deliveries
/// (`"webhooks"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FaultTarget {
    /// Every API endpoint.
    AnyEndpoint,
    /// One API endpoint.
    Endpoint(Endpoint),
    /// Webhook deliveries.
    Webhooks,
}

impl TryFrom<String> for FaultTarget {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase().replace('-', "_");
        match t.as_str() {
            "*" | "any" | "all" => Ok(FaultTarget::AnyEndpoint),
            "webhooks" | "webhook" | "deliveries" => Ok(FaultTarget::Webhooks),
            _ => Endpoint::ALL
                .into_iter()
                .find(|e| e.name() == t)
                .map(FaultTarget::Endpoint)
                .ok_or_else(|| {
                    format!(
                        "unknown fault target {s:?} (expected \"*\", \"webhooks\" or one of {})",
                        Endpoint::ALL.map(Endpoint::name).join(", ")
                    )
                }),
        }
    }
}

impl From<FaultTarget> for String {
    fn from(t: FaultTarget) -> String {
        match t {
            FaultTarget::AnyEndpoint => "*".into(),
            FaultTarget::Webhooks => "webhooks".into(),
            FaultTarget::Endpoint(e) => e.name().into(),
        }
    }
}

fn default_5xx() -> u16 {
    503
}

fn yes() -> bool {
    true
}

/// One kind of fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// API: answer this 5xx status at once, doing nothing.
    ServerError {
        /// 500-599 (default 503).
        #[serde(default = "default_5xx")]
        status: u16,
    },
    /// API: hold the request `hold_ms` milliseconds, then answer 504 like FlexFactor's API
    /// gateway. With `applied` (the default) the request takes effect before the hold, so a
    /// client that gave up does not know the outcome.
    Timeout {
        /// How long to hold the request.
        hold_ms: u64,
        /// Whether the request takes effect.
        #[serde(default = "yes")]
        applied: bool,
    },
    /// API: answer normally after `delay_ms` milliseconds.
    Slow {
        /// The delay.
        delay_ms: u64,
    },
    /// API: answer 401 as for an expired access token.
    ExpiredToken,
    /// Webhooks: send each delivery a second time (same body, new nonce).
    Duplicate,
    /// Webhooks: a delivery becomes due `delay_secs` after its event.
    Late {
        /// The lateness, in seconds of the fake's clock.
        delay_secs: i64,
    },
    /// Webhooks: after an acknowledged delivery, send it again with `IsResent: true`.
    Resent,
    /// Webhooks: send the deliveries that are due together in reverse order.
    Reordered,
    /// Webhooks: sign with a wrong key (the receiver must refuse; redelivery follows).
    BadSignature,
}

impl Fault {
    /// True for the faults of webhook deliveries.
    pub fn is_delivery_fault(&self) -> bool {
        matches!(
            self,
            Fault::Duplicate
                | Fault::Late { .. }
                | Fault::Resent
                | Fault::Reordered
                | Fault::BadSignature
        )
    }

    /// The snake_case kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::ServerError { .. } => "server_error",
            Fault::Timeout { .. } => "timeout",
            Fault::Slow { .. } => "slow",
            Fault::ExpiredToken => "expired_token",
            Fault::Duplicate => "duplicate",
            Fault::Late { .. } => "late",
            Fault::Resent => "resent",
            Fault::Reordered => "reordered",
            Fault::BadSignature => "bad_signature",
        }
    }
}

/// A fault and where and how often it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// `"evaluate"`, `"token"`, ..., `"*"` or `"webhooks"`.
    pub endpoint: FaultTarget,
    /// The fault.
    #[serde(flatten)]
    pub fault: Fault,
    /// How many times it fires; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A fault on one endpoint, firing `times` times (forever with `None`).
    pub fn on(endpoint: Endpoint, fault: Fault, times: Option<u32>) -> Self {
        FaultRule {
            endpoint: FaultTarget::Endpoint(endpoint),
            fault,
            times,
        }
    }

    /// A fault on every endpoint.
    pub fn on_every_endpoint(fault: Fault, times: Option<u32>) -> Self {
        FaultRule {
            endpoint: FaultTarget::AnyEndpoint,
            fault,
            times,
        }
    }

    /// A webhook delivery fault.
    pub fn on_webhooks(fault: Fault, times: Option<u32>) -> Self {
        FaultRule {
            endpoint: FaultTarget::Webhooks,
            fault,
            times,
        }
    }

    /// Checks that the fault fits its target.
    pub fn validate(&self) -> Result<(), String> {
        let delivery = self.fault.is_delivery_fault();
        match self.endpoint {
            FaultTarget::Webhooks if !delivery => Err(format!(
                "{} is an API fault: aim it at an endpoint, not at webhooks",
                self.fault.kind()
            )),
            FaultTarget::Endpoint(_) | FaultTarget::AnyEndpoint if delivery => Err(format!(
                "{} is a webhook fault: aim it at \"webhooks\"",
                self.fault.kind()
            )),
            _ => match &self.fault {
                Fault::ServerError { status } if !(500..=599).contains(status) => {
                    Err(format!("server_error status {status} is not a 5xx"))
                }
                Fault::Late { delay_secs } if *delay_secs < 0 => {
                    Err("late delay_secs must not be negative".into())
                }
                _ => Ok(()),
            },
        }
    }
}

/// The faults in force and how often each fired.
#[derive(Debug, Clone, Default)]
pub(crate) struct FaultBook {
    rules: Vec<(FaultRule, u32)>,
}

impl FaultBook {
    pub(crate) fn new(rules: Vec<FaultRule>) -> Self {
        FaultBook {
            rules: rules.into_iter().map(|r| (r, 0)).collect(),
        }
    }

    pub(crate) fn rules(&self) -> Vec<FaultRule> {
        self.rules.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Takes over how often the first rules already fired (when a rule is added).
    pub(crate) fn restore_counts(&mut self, fired: &[u32]) {
        for ((_, n), f) in self.rules.iter_mut().zip(fired) {
            *n = *f;
        }
    }

    /// The state for `/admin/state`: each rule with how often it fired.
    pub(crate) fn fired(&self) -> Vec<(FaultRule, u32)> {
        self.rules.clone()
    }

    fn take(&mut self, pred: impl Fn(&FaultRule) -> bool) -> Option<Fault> {
        let (rule, fired) = self
            .rules
            .iter_mut()
            .find(|(r, fired)| pred(r) && r.times.is_none_or(|t| *fired < t))?;
        *fired += 1;
        Some(rule.fault.clone())
    }

    /// The next API fault for a request to `endpoint`, consuming one firing.
    pub(crate) fn take_request(&mut self, endpoint: Endpoint) -> Option<Fault> {
        self.take(|r| match r.endpoint {
            FaultTarget::AnyEndpoint => true,
            FaultTarget::Endpoint(e) => e == endpoint,
            FaultTarget::Webhooks => false,
        })
    }

    /// Whether a webhook fault of `kind` fires now (consuming one firing); for `late` its delay.
    pub(crate) fn take_delivery(&mut self, kind: &str) -> Option<Fault> {
        self.take(|r| r.endpoint == FaultTarget::Webhooks && r.fault.kind() == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_as_often_as_told() {
        let mut book = FaultBook::new(vec![FaultRule::on(
            Endpoint::Evaluate,
            Fault::ServerError { status: 502 },
            Some(2),
        )]);
        assert!(book.take_request(Endpoint::Token).is_none());
        assert!(book.take_request(Endpoint::Evaluate).is_some());
        assert!(book.take_request(Endpoint::Evaluate).is_some());
        assert!(book.take_request(Endpoint::Evaluate).is_none());
    }

    #[test]
    fn targets_must_fit() {
        assert!(FaultRule::on_webhooks(Fault::ExpiredToken, None)
            .validate()
            .is_err());
        assert!(FaultRule::on(Endpoint::Evaluate, Fault::Duplicate, None)
            .validate()
            .is_err());
        assert!(FaultRule::on_webhooks(Fault::Reordered, None)
            .validate()
            .is_ok());
    }

    #[test]
    fn rules_read_from_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"endpoint":"external-cancel","kind":"timeout","hold_ms":50,"times":1}"#,
        )
        .unwrap();
        assert_eq!(r.endpoint, FaultTarget::Endpoint(Endpoint::ExternalCancel));
        assert_eq!(
            r.fault,
            Fault::Timeout {
                hold_ms: 50,
                applied: true
            }
        );
    }
}
