//! Typed errors of the FlexFactor client, the parsed form of FlexFactor's 400 answers, and their
//! mapping onto the domain's [`FlexFactorError`].
//!
//! No error message carries a secret: credentials never reach an error, URLs (whose query string
//! can hold the MID and the EnvironmentKey) are stripped from transport errors, and text copied
//! from FlexFactor's answers passes through [`redact_card_numbers`] first.

use std::collections::BTreeMap;
use std::fmt;

use salvage_domain::ports::FlexFactorError;

/// Everything that can go wrong in a call to FlexFactor, as a typed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlexFactorClientError {
    /// The client's configuration is unusable (bad base URL, a missing credential named by its
    /// field, an HTTP client that cannot be built).
    #[error("FlexFactor client configuration: {0}")]
    Config(String),
    /// The request cannot be built from the domain's data (e.g. a CIT without the customer's
    /// IP, C3): nothing was sent.
    #[error("the request cannot be built: {0}")]
    Request(String),
    /// 401 even after one fresh token (F1), or 400/401 from `/oauth2/token` (bad AppKey/AppSecret).
    #[error("FlexFactor refused the credentials")]
    Unauthorized,
    /// 403: the credentials are valid but may not do this.
    #[error("FlexFactor forbade the call (HTTP 403)")]
    Forbidden,
    /// 400 (or 422): the request was refused and not taken; the fields FlexFactor named.
    #[error("FlexFactor rejected the request: {0}")]
    Validation(ValidationErrors),
    /// 409: the idempotency key was reused with another body, or the first request with that key
    /// is still in progress.
    #[error(
        "FlexFactor answered 409: idempotency key reused with another body, or still in progress"
    )]
    IdempotencyConflict,
    /// 404: FlexFactor does not know the order.
    #[error("not found at FlexFactor (HTTP 404)")]
    NotFound,
    /// 5xx, after the retries the call's replay policy allows.
    #[error("FlexFactor answered HTTP {status}{}", retried_note(*.attempts))]
    Server {
        /// The last HTTP status.
        status: u16,
        /// How many times the request was sent.
        attempts: u32,
    },
    /// Another HTTP status the client has no meaning for.
    #[error("FlexFactor answered an unexpected HTTP {status}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
    },
    /// FlexFactor could not be reached: the request was never sent, so it cannot have been
    /// applied.
    #[error("could not reach FlexFactor: {0}")]
    Connect(String),
    /// The request was sent and no answer came back (timeout, connection cut): it may or may not
    /// have been applied. Reconcile; never resubmit under a new key (F3).
    #[error("the outcome of the call is unknown: {0}")]
    OutcomeUnknown(String),
    /// FlexFactor answered something that cannot be read.
    #[error("FlexFactor answered something unreadable: {0}")]
    Protocol(String),
}

fn retried_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

impl From<FlexFactorClientError> for FlexFactorError {
    fn from(e: FlexFactorClientError) -> Self {
        match e {
            FlexFactorClientError::Config(s) => {
                FlexFactorError::Invalid(format!("client configuration: {s}"))
            }
            FlexFactorClientError::Request(s) => FlexFactorError::Invalid(s),
            FlexFactorClientError::Unauthorized | FlexFactorClientError::Forbidden => {
                FlexFactorError::Unauthorized
            }
            FlexFactorClientError::Validation(v) => FlexFactorError::Invalid(v.to_string()),
            FlexFactorClientError::IdempotencyConflict => FlexFactorError::IdempotencyConflict,
            FlexFactorClientError::NotFound => FlexFactorError::NotFound,
            e @ FlexFactorClientError::Server { .. } => FlexFactorError::Unavailable(e.to_string()),
            FlexFactorClientError::Connect(s) => FlexFactorError::Unavailable(s),
            FlexFactorClientError::OutcomeUnknown(s) => FlexFactorError::OutcomeUnknown(s),
            e @ FlexFactorClientError::UnexpectedStatus { .. } => {
                FlexFactorError::Protocol(e.to_string())
            }
            FlexFactorClientError::Protocol(s) => FlexFactorError::Protocol(s),
        }
    }
}

/// One error of the C# tuple shape (`item1..item4`) seen in refund answers:
/// `{"item1": message, "item2": code, "item3": code, "item4": bool}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TupleError {
    /// `item1`: the message.
    pub message: String,
    /// `item2`: a code (the refund fixture repeats `responseCode` here).
    pub code: Option<String>,
    /// `item3`: a second code.
    pub code2: Option<String>,
    /// `item4`: a flag of unknown meaning.
    pub flag: Option<bool>,
}

/// The parsed body of a FlexFactor 400: the fields it names and their messages.
///
/// Three shapes are read (all case-insensitively):
/// - ProblemDetails: `{"status": 400, "title": ..., "traceId": ..., "errors": {"Field": ["msg"]}}`;
/// - the bare ModelState map: `{"ExpiryDateUtc": ["msg"], "TraceId": ["..."]}`;
/// - the C# tuple list: `{"errors": [{"item1": msg, "item2": code, ...}], "responseMessage": ...}`.
///
/// A `TraceId` entry among the fields is moved to [`trace_id`](Self::trace_id).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors {
    /// The HTTP status the answer came with, when known.
    pub status: Option<u16>,
    /// ProblemDetails' `title`, or `responseMessage`.
    pub title: Option<String>,
    /// The trace id FlexFactor gave, for support requests.
    pub trace_id: Option<String>,
    /// Field name as FlexFactor wrote it (e.g. `Transaction.ResponseCode`) → its messages.
    pub fields: BTreeMap<String, Vec<String>>,
    /// Errors of the tuple shape.
    pub tuples: Vec<TupleError>,
}

impl ValidationErrors {
    /// The messages for a field, matched case-insensitively (`transaction.responsecode` finds
    /// `Transaction.ResponseCode`).
    pub fn field(&self, name: &str) -> Option<&[String]> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The names of the fields FlexFactor complained about.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// True when nothing could be read from the answer.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.fields.is_empty() && self.tuples.is_empty()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(t) = &self.title {
            parts.push(t.clone());
        }
        for (field, messages) in &self.fields {
            parts.push(format!("{field}: {}", messages.join(" ")));
        }
        for t in &self.tuples {
            match &t.code {
                Some(code) => parts.push(format!("{} (code {code})", t.message)),
                None => parts.push(t.message.clone()),
            }
        }
        if parts.is_empty() {
            parts.push("no details given".to_string());
        }
        if let Some(status) = self.status {
            write!(f, "HTTP {status}: ")?;
        }
        f.write_str(&redact_card_numbers(&parts.join("; ")))
    }
}

/// Replaces every run of 12 or more digits (possibly separated by single spaces or dashes) with
/// `[REDACTED]`, so that a card number echoed in an answer never reaches a log or an error.
pub fn redact_card_numbers(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            // Extend over digits and single separators between digits.
            let mut j = i;
            let mut digits = 0;
            let mut end = i;
            while j < chars.len() {
                if chars[j].is_ascii_digit() {
                    digits += 1;
                    j += 1;
                    end = j;
                } else if (chars[j] == ' ' || chars[j] == '-')
                    && j + 1 < chars.len()
                    && chars[j + 1].is_ascii_digit()
                {
                    j += 1;
                } else {
                    break;
                }
            }
            if digits >= 12 {
                out.push_str("[REDACTED]");
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Shortens text copied from an answer into an error, after redaction.
pub(crate) fn snippet(text: &str) -> String {
    const MAX: usize = 300;
    let redacted = redact_card_numbers(text);
    if redacted.chars().count() <= MAX {
        redacted
    } else {
        let mut s: String = redacted.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// F2: card numbers echoed by FlexFactor never reach an error message.
    #[test]
    fn f2_card_numbers_are_redacted_from_messages() {
        assert_eq!(
            redact_card_numbers("card 4111111111111111 is invalid"),
            "card [REDACTED] is invalid"
        );
        assert_eq!(
            redact_card_numbers("card 4111 1111 1111 1111 bad"),
            "card [REDACTED] bad"
        );
        assert_eq!(
            redact_card_numbers("code 2001, amount 1.00"),
            "code 2001, amount 1.00"
        );
        assert_eq!(
            redact_card_numbers("trace 00-3b4af05c"),
            "trace 00-3b4af05c"
        );
    }

    #[test]
    fn validation_errors_display_names_fields() {
        let mut v = ValidationErrors {
            status: Some(400),
            ..Default::default()
        };
        v.fields.insert(
            "Transaction.ResponseCode".into(),
            vec!["The ResponseCode field is required.".into()],
        );
        let shown = v.to_string();
        assert!(shown.contains("Transaction.ResponseCode"), "{shown}");
        assert_eq!(
            v.field("transaction.responsecode").map(|m| m.len()),
            Some(1)
        );
    }

    #[test]
    fn client_errors_map_onto_the_domain() {
        assert_eq!(
            FlexFactorError::from(FlexFactorClientError::IdempotencyConflict),
            FlexFactorError::IdempotencyConflict
        );
        assert!(matches!(
            FlexFactorError::from(FlexFactorClientError::Server {
                status: 503,
                attempts: 3
            }),
            FlexFactorError::Unavailable(_)
        ));
        assert!(matches!(
            FlexFactorError::from(FlexFactorClientError::OutcomeUnknown("t".into())),
            FlexFactorError::OutcomeUnknown(_)
        ));
    }
}
