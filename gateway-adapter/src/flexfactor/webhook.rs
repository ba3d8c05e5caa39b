//! FlexFactor webhooks: verification (W1), replay defence (W2), parsing, and the mapping of each
//! event onto a domain-meaningful [`FlexFactorResult`].
//!
//! Order of the checks in [`WebhookVerifier::verify`]: body size (W5) → required headers →
//! content hash → `Signature=` (constant time) → `x-fc-signature` when present → date tolerance
//! → body parse (W5) → nonce (W2). The nonce is recorded only for a delivery that passed
//! everything else, so unauthenticated traffic cannot fill the nonce store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::Mac;
use salvage_domain::ids::{FlexFactorOrderId, OrderId};
use salvage_domain::setup::FlexFactorCredentials;
use salvage_domain::Clock;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::signer::{
    string_to_sign, WebhookKey, WebhookKeyError, AUTH_SCHEME, HEADER_AUTHORIZATION,
    HEADER_CONTENT_SHA512, HEADER_DATE, HEADER_NONCE, HEADER_SIGNATURE, SIGNED_HEADERS,
};
use super::transformers::{from_wire_value, parse_normalized, WebhookPayload};

/// Default tolerance on `x-fc-date`, either way (W2). **[inference]**: FlexFactor documents no
/// replay window.
pub const DEFAULT_DATE_TOLERANCE_SECS: i64 = 5 * 60;
/// Default largest accepted body (W5). The only known payload is 255 bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest accepted nonce (FlexFactor's are 32 hex digits).
pub const MAX_NONCE_LEN: usize = 128;

/// The verifier's policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookVerifierConfig {
    /// How far `x-fc-date` may lie from the clock's `now`, either way (W2).
    pub date_tolerance: Duration,
    /// Largest accepted body in bytes (W5).
    pub max_body_bytes: usize,
    /// Refuse deliveries without `x-fc-signature` (off by default: the `Signature=` of
    /// `x-fc-authorization` already covers the body through its hash).
    pub require_body_signature: bool,
}

impl Default for WebhookVerifierConfig {
    fn default() -> Self {
        WebhookVerifierConfig {
            date_tolerance: Duration::seconds(DEFAULT_DATE_TOLERANCE_SECS),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            require_body_signature: false,
        }
    }
}

/// Why a delivery was refused. [`WebhookError::http_status`] gives the answer for the HTTP layer
/// (W1: 401, W5: 4xx). Messages never contain the key or the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// A required header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unreadable.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// Which header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// `x-fc-content-sha512` does not match the body.
    #[error("x-fc-content-sha512 does not match the body")]
    BadContentHash,
    /// The `Signature=` of `x-fc-authorization` does not verify.
    #[error("the signature of x-fc-authorization does not verify")]
    BadSignature,
    /// `x-fc-signature` (HMAC over the body) does not verify.
    #[error("x-fc-signature does not verify")]
    BadBodySignature,
    /// `x-fc-date` lies outside the tolerance (W2).
    #[error("x-fc-date {date} is outside the tolerance around {now}")]
    StaleDate {
        /// The delivery's date.
        date: DateTime<Utc>,
        /// The verifier's clock.
        now: DateTime<Utc>,
    },
    /// The nonce was already seen within the tolerance (W2).
    #[error("nonce already seen: replayed delivery")]
    ReplayedNonce,
    /// The body is not a FlexFactor event (W5).
    #[error("malformed body: {0}")]
    MalformedBody(String),
    /// The body is larger than allowed (W5).
    #[error("body of {size} bytes exceeds the limit of {limit}")]
    BodyTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl WebhookError {
    /// The HTTP status to answer: 401 for anything that makes the delivery untrusted (W1, W2),
    /// 413 for an oversized body, 400 for a malformed one (W5).
    pub fn http_status(&self) -> u16 {
        match self {
            WebhookError::MissingHeader(_)
            | WebhookError::MalformedHeader { .. }
            | WebhookError::BadContentHash
            | WebhookError::BadSignature
            | WebhookError::BadBodySignature
            | WebhookError::StaleDate { .. }
            | WebhookError::ReplayedNonce => 401,
            WebhookError::BodyTooLarge { .. } => 413,
            WebhookError::MalformedBody(_) => 400,
        }
    }
}

/// Read access to a delivery's headers, by case-insensitive name.
pub trait WebhookHeaders {
    /// The value of the first header with that name, as text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl WebhookHeaders for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl WebhookHeaders for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<S: std::hash::BuildHasher> WebhookHeaders for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl WebhookHeaders for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

impl WebhookHeaders for Vec<(String, String)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

/// What a delivery means for the salvage, in the domain's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum FlexFactorResult {
    /// `order.completed`: FlexFactor rescued the order (O1, O4).
    Completed {
        /// FlexFactor's short confirmation id.
        confirmation_id: Option<String>,
    },
    /// `order.expired`: not rescued by `expiryDateUtc` (O2, O3, O5).
    Expired,
    /// `order.cancelled`: cancelled by FlexFactor or the merchant (O2, O3, O5).
    Cancelled,
    /// `order.refunded` (K3).
    Refunded,
    /// `payment.chargeback.received` (K1, K2).
    Chargeback,
    /// `order.capturerequired`: approved on authorization, to be captured.
    CaptureRequired,
    /// `challenge.*` and `payout.*`: acknowledged, nothing to apply.
    NotRelevant {
        /// The event name as sent.
        event: String,
    },
    /// Any other event: kept, never guessed (F5).
    Unknown {
        /// The event name as sent.
        event: String,
    },
}

/// A parsed delivery: the result and what identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOutcome {
    /// `Event` as sent.
    pub event: String,
    /// Its meaning.
    pub result: FlexFactorResult,
    /// `ExternalOrderId`: our (the CRM's) order id.
    pub external_order_id: Option<OrderId>,
    /// `OrderId`: FlexFactor's order id.
    pub flexfactor_order_id: Option<FlexFactorOrderId>,
    /// `ConfirmationId`, for any event that carries one.
    pub confirmation_id: Option<String>,
    /// `IsResent`: a redelivery (O7: apply at most once).
    pub is_resent: bool,
    /// `IsTestMode`: a sandbox delivery.
    pub is_test_mode: bool,
    /// `TimeStamp`, when readable.
    pub timestamp: Option<DateTime<Utc>>,
    /// `EventData`, as sent (its content is undocumented).
    pub event_data: Option<Value>,
}

/// Maps an event name onto its result, case-insensitively.
pub fn result_for_event(event: &str, confirmation_id: Option<String>) -> FlexFactorResult {
    let e = event.trim().to_ascii_lowercase();
    match e.as_str() {
        "order.completed" => FlexFactorResult::Completed { confirmation_id },
        "order.expired" => FlexFactorResult::Expired,
        "order.cancelled" | "order.canceled" => FlexFactorResult::Cancelled,
        "order.refunded" => FlexFactorResult::Refunded,
        "payment.chargeback.received" => FlexFactorResult::Chargeback,
        "order.capturerequired" => FlexFactorResult::CaptureRequired,
        _ if e.starts_with("challenge.") || e.starts_with("payout.") => {
            FlexFactorResult::NotRelevant {
                event: event.to_string(),
            }
        }
        _ => FlexFactorResult::Unknown {
            event: event.to_string(),
        },
    }
}

/// Parses a delivery's body (PascalCase, read case-insensitively; unknown fields ignored).
/// Only `Event` is required; the body must be a JSON object (W5).
pub fn parse_delivery(body: &[u8]) -> Result<WebhookOutcome, WebhookError> {
    let value = parse_normalized(body).map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
    if !value.is_object() {
        return Err(WebhookError::MalformedBody("not a JSON object".into()));
    }
    let payload: WebhookPayload =
        from_wire_value(value).map_err(|e| WebhookError::MalformedBody(e.to_string()))?;
    let event = payload
        .event
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| WebhookError::MalformedBody("no Event".into()))?
        .to_string();
    let clean = |s: &Option<String>| {
        s.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let confirmation_id = clean(&payload.confirmation_id);
    Ok(WebhookOutcome {
        result: result_for_event(&event, confirmation_id.clone()),
        external_order_id: clean(&payload.external_order_id).map(OrderId::new),
        flexfactor_order_id: clean(&payload.order_id).map(FlexFactorOrderId::new),
        confirmation_id,
        is_resent: payload.is_resent.unwrap_or(false),
        is_test_mode: payload.is_test_mode.unwrap_or(false),
        timestamp: payload.timestamp_utc(),
        event_data: payload.event_data.clone().filter(|v| !v.is_null()),
        event,
    })
}

// ---------------------------------------------------------------------------------------------
// Verification (W1, W2)
// ---------------------------------------------------------------------------------------------

/// What the signature check established about a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureCheck {
    /// `x-fc-nonce`.
    pub nonce: String,
    /// `x-fc-date`, parsed.
    pub date: DateTime<Utc>,
    /// The host the signature covered.
    pub host: String,
    /// Whether `x-fc-signature` was present and verified.
    pub body_signature_verified: bool,
}

/// A delivery that passed every check; apply its outcome (at most once, O7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDelivery {
    /// `x-fc-nonce` (recorded in the nonce store).
    pub nonce: String,
    /// `x-fc-date`.
    pub date: DateTime<Utc>,
    /// The host the signature covered.
    pub host: String,
    /// Whether `x-fc-signature` was present and verified too.
    pub body_signature_verified: bool,
    /// The parsed delivery.
    pub outcome: WebhookOutcome,
}

/// Verifies FlexFactor's deliveries (W1, W2). Time comes from the [`Clock`].
pub struct WebhookVerifier {
    key: WebhookKey,
    config: WebhookVerifierConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn required<'h, H: WebhookHeaders + ?Sized>(
    headers: &'h H,
    name: &'static str,
) -> Result<&'h str, WebhookError> {
    headers
        .header(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(WebhookError::MissingHeader(name))
}

/// Parses `HMAC-SHA512 SignedHeaders=...&Signature=...` into the signature bytes, requiring
/// the signed headers to be exactly FlexFactor's list.
fn parse_authorization(value: &str) -> Result<Vec<u8>, WebhookError> {
    let malformed = |reason: &str| WebhookError::MalformedHeader {
        header: HEADER_AUTHORIZATION,
        reason: reason.to_string(),
    };
    let (scheme, params) = value
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| malformed("no scheme"))?;
    if !scheme.eq_ignore_ascii_case(AUTH_SCHEME) {
        return Err(malformed("scheme is not HMAC-SHA512"));
    }
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.trim().split('&') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| malformed("parameter without '='"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "signedheaders" => signed_headers = Some(v.trim()),
            "signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let signed_headers = signed_headers.ok_or_else(|| malformed("no SignedHeaders"))?;
    if !signed_headers.eq_ignore_ascii_case(SIGNED_HEADERS) {
        return Err(malformed(
            "SignedHeaders is not x-fc-nonce;x-fc-date;host;x-fc-content-sha512",
        ));
    }
    let signature = signature.ok_or_else(|| malformed("no Signature"))?;
    STANDARD
        .decode(signature)
        .map_err(|_| malformed("Signature is not base64"))
}

/// Parses an `x-fc-date` (RFC 1123 / RFC 2822, `GMT`).
pub fn parse_fc_date(value: &str) -> Result<DateTime<Utc>, WebhookError> {
    DateTime::parse_from_rfc2822(value.trim())
        .map(|d| d.with_timezone(&Utc))
        .map_err(|_| WebhookError::MalformedHeader {
            header: HEADER_DATE,
            reason: "not an RFC 1123 date".into(),
        })
}

impl WebhookVerifier {
    /// A verifier with the given key, policy and clock.
    pub fn new(key: WebhookKey, config: WebhookVerifierConfig, clock: Arc<dyn Clock>) -> Self {
        WebhookVerifier { key, config, clock }
    }

    /// A verifier keyed with the gateway's HMACSigningKey (base64).
    pub fn from_credentials(
        credentials: &FlexFactorCredentials,
        config: WebhookVerifierConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, WebhookKeyError> {
        let key = WebhookKey::from_base64(&credentials.hmac_signing_key)?;
        Ok(Self::new(key, config, clock))
    }

    /// The policy in force.
    pub fn config(&self) -> &WebhookVerifierConfig {
        &self.config
    }

    /// The cryptographic and freshness checks alone (no nonce, no parse): body size, content
    /// hash, `Signature=`, `x-fc-signature` when present, and the date tolerance.
    ///
    /// `host` is the host the delivery was addressed to (the public host of the webhook URL);
    /// `None` takes the `Host` header.
    pub fn check_signature<H: WebhookHeaders + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        host: Option<&str>,
    ) -> Result<SignatureCheck, WebhookError> {
        if body.len() > self.config.max_body_bytes {
            return Err(WebhookError::BodyTooLarge {
                size: body.len(),
                limit: self.config.max_body_bytes,
            });
        }
        let authorization = required(headers, HEADER_AUTHORIZATION)?;
        let content_hash = required(headers, HEADER_CONTENT_SHA512)?;
        let nonce = required(headers, HEADER_NONCE)?;
        let date_text = required(headers, HEADER_DATE)?;
        let host = match host {
            Some(h) if !h.trim().is_empty() => h.trim(),
            _ => required(headers, "host")?,
        };
        if nonce.len() > MAX_NONCE_LEN {
            return Err(WebhookError::MalformedHeader {
                header: HEADER_NONCE,
                reason: format!("longer than {MAX_NONCE_LEN} characters"),
            });
        }

        // Content hash, constant time.
        let claimed = STANDARD
            .decode(content_hash)
            .map_err(|_| WebhookError::BadContentHash)?;
        let actual = Sha512::digest(body);
        if !bool::from(claimed.as_slice().ct_eq(actual.as_slice())) {
            return Err(WebhookError::BadContentHash);
        }

        // Signature over the signed headers, constant time (hmac's verify_slice).
        let signature = parse_authorization(authorization)?;
        let mut mac = self.key.mac();
        mac.update(string_to_sign(nonce, date_text, host, content_hash).as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| WebhookError::BadSignature)?;

        // The body-only signature, when present.
        let body_signature_verified = match headers.header(HEADER_SIGNATURE).map(str::trim) {
            Some(s) if !s.is_empty() => {
                let sig = STANDARD
                    .decode(s)
                    .map_err(|_| WebhookError::BadBodySignature)?;
                let mut mac = self.key.mac();
                mac.update(body);
                mac.verify_slice(&sig)
                    .map_err(|_| WebhookError::BadBodySignature)?;
                true
            }
            _ if self.config.require_body_signature => {
                return Err(WebhookError::MissingHeader(HEADER_SIGNATURE))
            }
            _ => false,
        };

        // Freshness (W2).
        let date = parse_fc_date(date_text)?;
        let now = self.clock.now();
        if (now - date).abs() > self.config.date_tolerance {
            return Err(WebhookError::StaleDate { date, now });
        }

        Ok(SignatureCheck {
            nonce: nonce.to_string(),
            date,
            host: host.to_string(),
            body_signature_verified,
        })
    }

    /// Verifies the signature and the date (W1, W2, W5) and parses the delivery. The nonce is
    /// left to the caller, which records it in the same transaction as the delivery's effect
    /// (`engine::webhook_intake`): a replay is refused there, and a delivery that could not be
    /// stored leaves no nonce behind (W3). There is no other nonce path.
    pub fn verify<H: WebhookHeaders + ?Sized>(
        &self,
        headers: &H,
        body: &[u8],
        host: Option<&str>,
    ) -> Result<VerifiedDelivery, WebhookError> {
        let checked = self.check_signature(headers, body, host)?;
        let outcome = parse_delivery(body)?;
        tracing::info!(
            event = %outcome.event,
            external_order_id = ?outcome.external_order_id,
            flexfactor_order_id = ?outcome.flexfactor_order_id,
            is_resent = outcome.is_resent,
            "FlexFactor webhook verified"
        );
        Ok(VerifiedDelivery {
            nonce: checked.nonce,
            date: checked.date,
            host: checked.host,
            body_signature_verified: checked.body_signature_verified,
            outcome,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_map_to_results() {
        assert_eq!(
            result_for_event("order.completed", Some("X".into())),
            FlexFactorResult::Completed {
                confirmation_id: Some("X".into())
            }
        );
        assert_eq!(
            result_for_event("ORDER.EXPIRED", None),
            FlexFactorResult::Expired
        );
        assert_eq!(
            result_for_event("order.cancelled", None),
            FlexFactorResult::Cancelled
        );
        assert_eq!(
            result_for_event("order.refunded", None),
            FlexFactorResult::Refunded
        );
        assert_eq!(
            result_for_event("payment.chargeback.received", None),
            FlexFactorResult::Chargeback
        );
        assert_eq!(
            result_for_event("order.capturerequired", None),
            FlexFactorResult::CaptureRequired
        );
        assert!(matches!(
            result_for_event("challenge.passed", None),
            FlexFactorResult::NotRelevant { .. }
        ));
        assert!(matches!(
            result_for_event("payout.created", None),
            FlexFactorResult::NotRelevant { .. }
        ));
        assert_eq!(
            result_for_event("order.declined", None),
            FlexFactorResult::Unknown {
                event: "order.declined".into()
            }
        );
    }

    #[test]
    fn authorization_header_parses() {
        let sig = parse_authorization(
            "HMAC-SHA512 SignedHeaders=x-fc-nonce;x-fc-date;host;x-fc-content-sha512&Signature=AAEC",
        )
        .unwrap();
        assert_eq!(sig, vec![0, 1, 2]);
        assert!(parse_authorization("Bearer x").is_err());
        assert!(
            parse_authorization("HMAC-SHA512 SignedHeaders=x-fc-nonce;host&Signature=AAEC")
                .is_err()
        );
    }

    #[test]
    fn status_codes_for_the_http_layer() {
        assert_eq!(WebhookError::BadSignature.http_status(), 401);
        assert_eq!(WebhookError::ReplayedNonce.http_status(), 401);
        assert_eq!(
            WebhookError::BodyTooLarge { size: 2, limit: 1 }.http_status(),
            413
        );
        assert_eq!(WebhookError::MalformedBody("x".into()).http_status(), 400);
    }
}
