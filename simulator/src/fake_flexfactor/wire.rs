//! FlexFactor's wire shapes on the server side: reading requests case-insensitively (property
//! names are normalized with the adapter's `normalize_keys`, as ASP.NET binds them), FlexFactor's
//! error formats, and the answer bodies of each endpoint.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use salvage_gateway::flexfactor::transformers::{normalize_key, parse_normalized};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// An HTTP answer of the fake (kept as is for idempotent replays).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    pub content_type: &'static str,
    pub www_authenticate: Option<String>,
}

const JSON: &str = "application/json; charset=utf-8";
const PROBLEM: &str = "application/problem+json; charset=utf-8";

impl Reply {
    /// A JSON answer.
    pub(crate) fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            content_type: JSON,
            www_authenticate: None,
        }
    }

    /// A JSON problem answer (ASP.NET's `application/problem+json`).
    pub(crate) fn problem(status: u16, body: Value) -> Self {
        Reply {
            content_type: PROBLEM,
            ..Reply::json(status, body)
        }
    }

    /// 401 as ASP.NET's JWT bearer handler gives it: no body, a `WWW-Authenticate` header.
    pub(crate) fn unauthorized(description: Option<String>) -> Self {
        let value = match description {
            Some(d) => format!("Bearer error=\"invalid_token\", error_description=\"{d}\""),
            None => "Bearer".to_string(),
        };
        Reply {
            status: 401,
            body: None,
            content_type: JSON,
            www_authenticate: Some(value),
        }
    }

    /// 401 for a token past its expiry (also the `expired_token` fault).
    pub(crate) fn token_expired(expired_at: Option<DateTime<Utc>>) -> Self {
        let when = expired_at
            .map(|t| t.format("%m/%d/%Y %H:%M:%S").to_string())
            .unwrap_or_else(|| "an earlier time".into());
        Reply::unauthorized(Some(format!("The token expired at '{when}'")))
    }

    /// 404 for an unknown id.
    pub(crate) fn not_found(trace_id: &str) -> Self {
        Reply::problem(
            404,
            json!({"type": "https://tools.ietf.org/html/rfc7231#section-6.5.4",
                   "title": "Not Found", "status": 404, "traceId": trace_id}),
        )
    }

    /// 409: an idempotency key came back with another body.
    pub(crate) fn conflict(trace_id: &str) -> Self {
        Reply::problem(
            409,
            json!({"type": "https://tools.ietf.org/html/rfc7231#section-6.5.8",
                   "title": "Conflict", "status": 409,
                   "detail": "The idempotency key was already used with a different request.",
                   "traceId": trace_id}),
        )
    }

    /// An injected 5xx (the body of FlexFactor's AWS API gateway).
    pub(crate) fn server_error(status: u16) -> Self {
        Reply::json(status, json!({"message": "Internal server error"}))
    }

    /// 504 after a held request (AWS API gateway's integration timeout).
    pub(crate) fn gateway_timeout() -> Self {
        Reply::json(504, json!({"message": "Endpoint request timed out"}))
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self
            .body
            .as_ref()
            .and_then(|b| serde_json::to_vec(b).ok())
            .unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        if self.body.is_some() {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            );
        }
        if let Some(value) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        headers.insert("server", HeaderValue::from_static("Kestrel"));
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// A body parsed with normalized property names; `Err` is the 400 to answer.
pub(crate) fn parse_object(body: &[u8], trace_id: &str) -> Result<Value, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(json_error(
            "A non-empty request body is required.",
            trace_id,
        ));
    }
    match parse_normalized(body) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(json_error(
            "The JSON value could not be converted to the request model.",
            trace_id,
        )),
        Err(_) => Err(json_error("The JSON value is not valid JSON.", trace_id)),
    }
}

/// A body that may be empty (cancel): `{}` when empty.
pub(crate) fn parse_optional_object(body: &[u8], trace_id: &str) -> Result<Value, Reply> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    parse_object(body, trace_id)
}

fn json_error(message: &str, trace_id: &str) -> Reply {
    let mut errors = FieldErrors::default();
    errors.add("$", message);
    errors.into_reply(trace_id)
}

/// The value at a path of normalized names.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// Text of a scalar: trimmed, non-empty.
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

/// A bool given as a bool or as `"true"`/`"false"`.
pub(crate) fn boolean(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// An integer given as a number or as numeric text.
pub(crate) fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads a top-level decimal amount of dollars exactly (never through a float): the raw JSON
/// number (or numeric string) of the property `name` (normalized), as integer cents.
/// `Ok(None)` when absent, `Err` when present but not an amount with at most two decimals.
pub(crate) fn dollars_as_cents(body: &[u8], name: &str) -> Result<Option<i64>, ()> {
    let map: BTreeMap<String, Box<RawValue>> = serde_json::from_slice(body).map_err(|_| ())?;
    let Some(raw) = map
        .iter()
        .find(|(k, _)| normalize_key(k) == name)
        .map(|(_, v)| v.get().trim())
    else {
        return Ok(None);
    };
    if raw == "null" {
        return Ok(None);
    }
    let text = if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        inner.trim()
    } else {
        raw
    };
    parse_decimal_cents(text).map(Some).ok_or(())
}

/// `"12"`, `"12.5"`, `"12.50"`, `"12.500"` → cents; more than two decimals only when the extra
/// ones are zeros; no sign, no exponent.
pub(crate) fn parse_decimal_cents(text: &str) -> Option<i64> {
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) || (text.contains('.') && frac.is_empty()) {
        return None;
    }
    if frac.len() > 2 && frac[2..].chars().any(|c| c != '0') {
        return None;
    }
    let mut cents_text: String = frac.chars().take(2).collect();
    while cents_text.len() < 2 {
        cents_text.push('0');
    }
    let whole: i64 = whole.parse().ok()?;
    let cents: i64 = cents_text.parse().ok()?;
    whole.checked_mul(100)?.checked_add(cents)
}

/// Integer cents as decimal dollars (`1999` → `19.99`).
pub(crate) fn cents_as_dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// An ISO-8601 UTC time as FlexFactor writes it.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// 400 field errors
// ---------------------------------------------------------------------------------------------

/// ASP.NET ModelState errors: field path (PascalCase, dotted) → messages.
#[derive(Debug, Default)]
pub(crate) struct FieldErrors {
    fields: BTreeMap<String, Vec<String>>,
}

impl FieldErrors {
    pub(crate) fn add(&mut self, field: &str, message: &str) {
        self.fields
            .entry(field.to_string())
            .or_default()
            .push(message.to_string());
    }

    /// `field` is required and missing or empty.
    pub(crate) fn required(&mut self, field: &str) {
        let last = field.rsplit('.').next().unwrap_or(field);
        self.add(field, &format!("The {last} field is required."));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The answer in the shape of `evaluate-response-validation-error.json`:
    /// `{"status": "400", "errors": {field: [messages], "TraceId": [id]}}`; a lone
    /// `ExpiryDateUtc` error comes bare like `evaluate-response-invalid-expiry.json`.
    pub(crate) fn into_reply(self, trace_id: &str) -> Reply {
        let only_expiry = self.fields.len() == 1 && self.fields.contains_key("ExpiryDateUtc");
        let mut errors = Map::new();
        for (field, messages) in self.fields {
            errors.insert(field, json!(messages));
        }
        errors.insert("TraceId".into(), json!([trace_id]));
        if only_expiry {
            Reply::problem(400, Value::Object(errors))
        } else {
            Reply::problem(400, json!({"status": "400", "errors": errors}))
        }
    }
}

/// The `errors` tuple list of FlexFactor's status answers (C# `Tuple<string,string,string,bool>`).
pub(crate) fn tuple_errors(message: &str, code: &str) -> Value {
    json!([{"item1": message, "item2": code, "item3": code, "item4": true}])
}

// ---------------------------------------------------------------------------------------------
// Answer bodies
// ---------------------------------------------------------------------------------------------

/// The envelope common to FlexFactor's answers.
fn envelope(mut fields: Map<String, Value>, success: bool) -> Value {
    for (k, v) in [
        ("success", json!(success)),
        ("result", Value::Null),
        ("statusCode", Value::Null),
        ("customProperties", json!({})),
    ] {
        fields.entry(k).or_insert(v);
    }
    fields.entry("status").or_insert(Value::Null);
    fields.entry("errors").or_insert(json!([]));
    Value::Object(fields)
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `/oauth2/token` (shape of `oauth2-token-response.json`).
pub(crate) fn token_body(access: &str, refresh: &str, expires_ms: i64, id: &str) -> Value {
    envelope(
        object(json!({
            "accessToken": access, "refreshToken": refresh, "expires": expires_ms, "id": id,
            "session": null, "daysToEnforceMFA": null, "skipAvailable": null,
        })),
        true,
    )
}

/// Bad AppKey/AppSecret (400, as ActiveMerchant's remote test saw it; body inferred).
pub(crate) fn bad_credentials_body() -> Value {
    envelope(
        object(json!({
            "accessToken": null, "status": "FAILED",
            "errors": tuple_errors("Invalid AppKey or AppSecret", "401"),
        })),
        false,
    )
}

/// The card of a `/tokenize` answer.
pub(crate) struct TokenizedCard<'a> {
    pub token: &'a str,
    pub pan: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub month: Option<i64>,
    pub year: Option<i64>,
    pub now: DateTime<Utc>,
}

/// `/tokenize` (shape of `tokenize-response.json`).
pub(crate) fn tokenize_body(c: &TokenizedCard<'_>) -> Value {
    let first = if c.pan.len() >= 16 { 8 } else { 6 };
    let first_digits: String = c.pan.chars().take(first).collect();
    let last4: String = c.pan.chars().skip(c.pan.len().saturating_sub(4)).collect();
    let at = c.now.to_rfc3339_opts(SecondsFormat::Micros, true);
    envelope(
        object(json!({
            "transaction": {
                "on_test_gateway": true, "created_at": at, "updated_at": at, "succeeded": true,
                "state": null, "token": null, "amount": 0, "currency_code": null,
                "retain_on_success": null, "payment_method_added": false, "message": null,
                "payment_method": {
                    "token": c.token, "created_at": at, "storage_state": null, "test": true,
                    "last_four_digits": last4, "first_six_digits": first_digits,
                    "card_type": null, "first_name": c.first_name, "last_name": c.last_name,
                    "month": c.month, "year": c.year, "fingerprint": null,
                    "verification_value": null, "number": null,
                },
            },
            "cardBinInfo": null,
        })),
        true,
    )
}

/// `/evaluate` (shape of `evaluate-response-challenge.json`).
pub(crate) fn evaluate_body(order_id: &str, status: &str, sense_key: Option<String>) -> Value {
    envelope(
        object(json!({
            "orderSessionKey": order_id, "senseKey": sense_key, "orderId": order_id,
            "result": "Success", "status": status,
        })),
        true,
    )
}

/// `/capture` and `/orders/{id}/refund` success.
pub(crate) fn success_body(extra: Value) -> Value {
    let mut fields = object(extra);
    fields.insert("status".into(), json!("SUCCESS"));
    envelope(fields, true)
}

/// `/capture` and `/orders/{id}/refund` failure (shape of `refund-response-failed.json`).
pub(crate) fn failed_body(code: &str, message: &str) -> Value {
    envelope(
        object(json!({
            "responseCode": code, "responseMessage": message, "transactionId": null,
            "status": "FAILED", "errors": tuple_errors(message, code),
        })),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_read_exactly() {
        assert_eq!(parse_decimal_cents("12"), Some(1200));
        assert_eq!(parse_decimal_cents("12.5"), Some(1250));
        assert_eq!(parse_decimal_cents("19.99"), Some(1999));
        assert_eq!(parse_decimal_cents("0.10"), Some(10));
        assert_eq!(parse_decimal_cents("1.000"), Some(100));
        assert_eq!(parse_decimal_cents("1.001"), None);
        assert_eq!(parse_decimal_cents("-1"), None);
        assert_eq!(parse_decimal_cents("1e2"), None);
        assert_eq!(parse_decimal_cents("1."), None);
        assert_eq!(
            dollars_as_cents(br#"{"AmountToRefund": 19.99}"#, "amounttorefund"),
            Ok(Some(1999))
        );
        assert_eq!(
            dollars_as_cents(br#"{"amount_to_refund": "0.3"}"#, "amounttorefund"),
            Ok(Some(30))
        );
        assert_eq!(dollars_as_cents(br#"{}"#, "amounttorefund"), Ok(None));
        assert_eq!(cents_as_dollars(1999), "19.99");
        assert_eq!(cents_as_dollars(100), "1.00");
    }

    #[test]
    fn validation_errors_have_the_fixture_shape() {
        let mut e = FieldErrors::default();
        e.required("Transaction.Id");
        e.add("OrderId", "Merchant's orderId is required");
        let body = e.into_reply("00-t-01").body.unwrap();
        assert_eq!(body["status"], "400");
        assert_eq!(
            body["errors"]["Transaction.Id"][0],
            "The Id field is required."
        );
        assert_eq!(body["errors"]["TraceId"][0], "00-t-01");
        let mut e = FieldErrors::default();
        e.add("ExpiryDateUtc", "The field ExpiryDateUtc is invalid.");
        let body = e.into_reply("t").body.unwrap();
        assert_eq!(
            body["ExpiryDateUtc"][0],
            "The field ExpiryDateUtc is invalid."
        );
    }
}
