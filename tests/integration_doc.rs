//! `docs/integration.md` checked against the code: its two `x-salvage-signature` verifying
//! snippets (Python and Node) are run, as written there, against requests signed by Salvage's
//! own signing code; its JSON examples of charge-hook requests and notifications are exactly
//! what serializing those values gives; every notification kind and every recycle-failure
//! reason is documented. `python3` and `node` must be on PATH: without them this test fails.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use secrecy::SecretString;
use serde_json::Value;

use salvage_domain::customer::CredentialKind;
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::ports::{ChargePurpose, ChargeRequest};
use salvage_domain::process_manager::{Notification, NotificationKind};
use salvage_domain::subscription::RecycleFailure;
use salvage_domain::{Currency, Money};
use salvage_gateway::crm::signing;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/integration.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fenced code blocks of `doc`: (the line before the fence, the fence's info string, the
/// block's text).
fn code_blocks(doc: &str) -> Vec<(String, String, String)> {
    let mut blocks = Vec::new();
    let mut previous = "";
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("```") {
            let mut text = String::new();
            for inner in lines.by_ref() {
                if inner.starts_with("```") {
                    break;
                }
                text.push_str(inner);
                text.push('\n');
            }
            blocks.push((previous.trim().to_string(), info.trim().to_string(), text));
            previous = "";
        } else if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

/// The blocks that directly follow a marker line `<!-- {tag}: NAME -->`, by NAME, with their
/// info strings.
fn marked(doc: &str, tag: &str) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for (before, info, text) in code_blocks(doc) {
        let name = before
            .strip_prefix("<!--")
            .and_then(|m| m.strip_suffix("-->"))
            .and_then(|m| m.trim().strip_prefix(tag))
            .and_then(|m| m.strip_prefix(':'))
            .map(|m| m.trim().to_string());
        if let Some(name) = name {
            assert!(
                out.insert(name.clone(), (info, text)).is_none(),
                "docs/integration.md marks two blocks `{tag}: {name}`"
            );
        }
    }
    out
}

/// The snippet marked `<!-- snippet: {name} -->`, which must be fenced as `lang`.
fn snippet(doc: &str, name: &str, lang: &str) -> String {
    let snippets = marked(doc, "snippet");
    let Some((info, text)) = snippets.get(name) else {
        panic!("docs/integration.md has no block right after `<!-- snippet: {name} -->`");
    };
    assert_eq!(info, lang, "the snippet {name} must be fenced as ```{lang}");
    text.clone()
}

// ------------------------------------------------------------------ the signature snippets

struct Request {
    secret: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// Runs a snippet with `interpreter` (`python3 -c` or `node -e`) on `request` (the secret and
/// headers in the environment, the body on stdin) and returns what it printed.
fn run(interpreter: &str, flag: &str, code: &str, request: &Request) -> String {
    let mut child = Command::new(interpreter)
        .arg(flag)
        .arg(code)
        .env("SALVAGE_SECRET", &request.secret)
        .env("X_SALVAGE_TIMESTAMP", &request.timestamp)
        .env("X_SALVAGE_SIGNATURE", &request.signature)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("`{interpreter}` must be on PATH to run the snippet of docs/integration.md: {e}")
        });
    {
        let mut stdin = child
            .stdin
            .take()
            .unwrap_or_else(|| panic!("{interpreter}: no stdin"));
        stdin
            .write_all(&request.body)
            .unwrap_or_else(|e| panic!("{interpreter}: writing the body: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{interpreter}: {e}"));
    assert!(
        out.status.success(),
        "{interpreter} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn now_unix() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("the clock is before 1970: {e}"));
    i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
}

/// A request signed by Salvage's signing code with `signed_with`, sent at `timestamp`, verified
/// with `secret`.
fn signed(secret: &str, signed_with: &str, timestamp: i64, body: &[u8]) -> Request {
    Request {
        secret: secret.to_string(),
        timestamp: timestamp.to_string(),
        signature: signing::sign(
            &SecretString::from(signed_with.to_string()),
            timestamp,
            body,
        ),
        body: body.to_vec(),
    }
}

#[test]
fn the_verifying_snippets_accept_salvages_signature_and_refuse_the_rest() {
    let doc = doc();
    let python = snippet(&doc, "verify-python", "python");
    let node = snippet(&doc, "verify-node", "javascript");
    let secret = "notify-secret-0f9e8d7c";
    let notification = Notification {
        event_id: "order:o-1001:6".into(),
        kind: NotificationKind::OrderCompleted,
        order_id: Some("o-1001".into()),
        subscription_id: Some("sub-1".into()),
        at: Utc::now(),
    };
    let body = serde_json::to_vec(&notification).unwrap_or_else(|e| panic!("{e}"));
    let tampered = String::from_utf8_lossy(&body)
        .replace("o-1001", "o-1009")
        .into_bytes();
    assert_ne!(tampered, body);
    let now = now_unix();
    let cases = [
        (
            "a request just signed",
            signed(secret, secret, now, &body),
            "valid",
        ),
        (
            "a request signed a minute ago",
            signed(secret, secret, now - 60, &body),
            "valid",
        ),
        (
            "a tampered body",
            Request {
                body: tampered,
                ..signed(secret, secret, now, &body)
            },
            "invalid",
        ),
        (
            "a wrong secret",
            signed(secret, "another-secret", now, &body),
            "invalid",
        ),
        (
            "a correct signature ten minutes old",
            signed(secret, secret, now - 600, &body),
            "invalid",
        ),
        (
            "a correct signature ten minutes ahead",
            signed(secret, secret, now + 600, &body),
            "invalid",
        ),
        (
            "a signature of another timestamp",
            Request {
                timestamp: (now - 1).to_string(),
                ..signed(secret, secret, now, &body)
            },
            "invalid",
        ),
    ];
    for (what, request, expected) in &cases {
        for (interpreter, flag, code) in [("python3", "-c", &python), ("node", "-e", &node)] {
            assert_eq!(
                run(interpreter, flag, code, request),
                *expected,
                "{interpreter} on {what}"
            );
        }
    }
}

// ------------------------------------------------------------------ the JSON examples

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .unwrap_or_else(|| panic!("a valid date"))
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD).unwrap_or_else(|e| panic!("{e}"))
}

/// One instance of every notification kind. The match below has no wildcard: a new kind does not
/// compile here until it is added (and then documented).
fn every_kind() -> Vec<NotificationKind> {
    let kinds = vec![
        NotificationKind::OrderCompleted,
        NotificationKind::OrderDeclined,
        NotificationKind::TrialCompletionFailed,
        NotificationKind::SubscriptionAdvanced {
            billing_gateway: "nmi-main".into(),
            cycle: 2,
        },
        NotificationKind::RecycleFailed {
            reason: RecycleFailure::Exhausted,
        },
        NotificationKind::Chargeback,
        NotificationKind::Refunded,
    ];
    for k in &kinds {
        match k {
            NotificationKind::OrderCompleted
            | NotificationKind::OrderDeclined
            | NotificationKind::TrialCompletionFailed
            | NotificationKind::SubscriptionAdvanced { .. }
            | NotificationKind::RecycleFailed { .. }
            | NotificationKind::Chargeback
            | NotificationKind::Refunded => {}
        }
    }
    kinds
}

/// Every recycle-failure reason (the match has no wildcard, as above).
fn every_reason() -> Vec<RecycleFailure> {
    let reasons = vec![
        RecycleFailure::HardDecline,
        RecycleFailure::Exhausted,
        RecycleFailure::NoRecycleProfile,
        RecycleFailure::FlexFactorFailed,
        RecycleFailure::NetworkNeverRetry,
    ];
    for r in &reasons {
        match r {
            RecycleFailure::HardDecline
            | RecycleFailure::Exhausted
            | RecycleFailure::NoRecycleProfile
            | RecycleFailure::FlexFactorFailed
            | RecycleFailure::NetworkNeverRetry => {}
        }
    }
    reasons
}

fn kind_name(kind: &NotificationKind) -> String {
    let n = Notification {
        event_id: "order:o-1:1".into(),
        kind: kind.clone(),
        order_id: None,
        subscription_id: None,
        at: at(),
    };
    let v = serde_json::to_value(&n).unwrap_or_else(|e| panic!("{e}"));
    v["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("no kind in {v}"))
        .to_string()
}

fn notification(event_id: &str, kind: NotificationKind, order: &str, sub: Option<&str>) -> Value {
    let n = Notification {
        event_id: event_id.into(),
        kind,
        order_id: Some(order.into()),
        subscription_id: sub.map(Into::into),
        at: at(),
    };
    serde_json::to_value(&n).unwrap_or_else(|e| panic!("{e}"))
}

fn charge(
    key: IdempotencyKey,
    order: &str,
    sub: Option<&str>,
    gateway: &str,
    minor: i64,
    credential: CredentialKind,
    purpose: ChargePurpose,
) -> Value {
    let r = ChargeRequest {
        idempotency_key: key,
        order_id: order.into(),
        subscription_id: sub.map(Into::into),
        gateway: gateway.into(),
        amount: usd(minor),
        credential,
        purpose,
    };
    serde_json::to_value(&r).unwrap_or_else(|e| panic!("{e}"))
}

/// What each `<!-- example: NAME -->` block of the document must be: real values serialized.
fn expected_examples() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut put = |name: &str, v: Value| {
        out.insert(name.to_string(), v);
    };
    put(
        "charge.cascade",
        charge(
            IdempotencyKey::cascade_charge(&"o-1001".into(), 1),
            "o-1001",
            None,
            "nmi-backup",
            3999,
            CredentialKind::Token,
            ChargePurpose::Cascade { step: 1 },
        ),
    );
    put(
        "charge.recycle",
        charge(
            IdempotencyKey::recycle_charge(&"sub-1-c3".into(), 2),
            "sub-1-c3",
            Some("sub-1"),
            "nmi-main",
            3999,
            CredentialKind::Token,
            ChargePurpose::Recycle { attempt: 2 },
        ),
    );
    // The key of a scheduled rebill, as `engine/effects.rs` makes it.
    put(
        "charge.rebill",
        charge(
            IdempotencyKey("rebill/sub-1/2".into()),
            "sub-1-c3",
            Some("sub-1"),
            "nmi-main",
            3999,
            CredentialKind::CardNumberWithoutCvv,
            ChargePurpose::Rebill { cycle: 2 },
        ),
    );
    for kind in every_kind() {
        let name = format!("notification.{}", kind_name(&kind));
        let v = match &kind {
            NotificationKind::OrderCompleted => {
                notification("order:o-1001:6", kind, "o-1001", Some("sub-1"))
            }
            NotificationKind::OrderDeclined => notification("order:o-1002:8", kind, "o-1002", None),
            NotificationKind::TrialCompletionFailed => {
                notification("order:sub-1-c2:5", kind, "sub-1-c2", Some("sub-1"))
            }
            NotificationKind::SubscriptionAdvanced { .. } => {
                notification("subscription:sub-1:2", kind, "sub-1-c2", Some("sub-1"))
            }
            NotificationKind::RecycleFailed { .. } => {
                notification("subscription:sub-1:9", kind, "sub-1-c3", Some("sub-1"))
            }
            NotificationKind::Chargeback => notification("order:o-1003:9", kind, "o-1003", None),
            NotificationKind::Refunded => notification("order:o-1003:8", kind, "o-1003", None),
        };
        put(&name, v);
    }
    out
}

#[test]
fn the_json_examples_are_what_salvage_serializes() {
    let doc = doc();
    let documented = marked(&doc, "example");
    let expected = expected_examples();
    for (name, want) in &expected {
        let Some((info, text)) = documented.get(name) else {
            panic!(
                "docs/integration.md has no `<!-- example: {name} -->` block; it must be:\n{want}"
            );
        };
        assert_eq!(info, "json", "the example {name} must be fenced as ```json");
        let got: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the example {name} is not JSON: {e}\n{text}"));
        assert_eq!(&got, want, "the example {name} must be:\n{want}");
    }
    for name in documented.keys() {
        assert!(
            expected.contains_key(name),
            "docs/integration.md has an example {name} that this test does not check"
        );
    }
    // Every other JSON block is at least JSON.
    for (_, info, text) in code_blocks(&doc) {
        if info == "json" {
            if let Err(e) = serde_json::from_str::<Value>(&text) {
                panic!("a ```json block of docs/integration.md is not JSON: {e}\n{text}");
            }
        }
    }
}

#[test]
fn every_notification_kind_and_recycle_failure_reason_is_documented() {
    let doc = doc();
    for kind in every_kind() {
        let name = kind_name(&kind);
        for needle in [
            format!("#### `{name}`"),
            format!("<!-- example: notification.{name} -->"),
            format!("`notification.{name}`"),
        ] {
            assert!(
                doc.contains(&needle),
                "docs/integration.md does not document the notification kind {name}: no {needle}"
            );
        }
    }
    for reason in every_reason() {
        let v = serde_json::to_value(reason).unwrap_or_else(|e| panic!("{e}"));
        let name = v.as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/integration.md does not document the recycle_failed reason {name}"
        );
    }
}
