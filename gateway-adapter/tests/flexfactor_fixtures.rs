//! Every real FlexFactor payload in `tests/fixtures/flexfactor/` (a copy of
//! `shared/reference/flexfactor-fixtures/`) parses into the
//! adapter's types (F5: case-insensitive, unknown fields ignored).

use salvage_domain::customer::CardDetails;
use salvage_domain::ids::FlexFactorOrderId;
use salvage_domain::ports::{EvaluateAnswer, RefundAnswer};
use salvage_gateway::flexfactor::transformers::{
    from_wire, parse_normalized, EvaluateResponse, StatusResponse, TokenResponse, TokenizeResponse,
};
use salvage_gateway::flexfactor::{parse_delivery, FlexFactorResult, ValidationErrors};
use secrecy::SecretString;
use serde_json::Value;

fn fixture_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/flexfactor/"
    ))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

fn card() -> CardDetails {
    CardDetails {
        number: SecretString::from("4111111111111111"),
        cvv: Some(SecretString::from("999")),
        exp_month: 9,
        exp_year: 2025,
        holder: "Cure Tester".into(),
    }
}

fn check_oauth2_token_response(bytes: &[u8]) {
    let t: TokenResponse = from_wire(bytes).unwrap();
    assert!(t.access_token.is_some());
    assert_eq!(t.expires_ms, Some(1_712_237_948_565));
    assert_eq!(
        t.expires_at().map(|e| e.timestamp_millis()),
        Some(1_712_237_948_565)
    );
    assert_eq!(t.success, Some(true));
}

fn check_evaluate_request(bytes: &[u8]) {
    let v = parse_normalized(bytes).unwrap();
    assert_eq!(v["isdeclined"], true);
    assert_eq!(v["transaction"]["amount"], 100);
    assert_eq!(v["paymentmethod"]["cardlast4digits"], "1111");
}

fn check_challenge(bytes: &[u8]) {
    let r: EvaluateResponse = from_wire(bytes).unwrap();
    assert_eq!(
        r.into_answer(),
        EvaluateAnswer::Challenge {
            flexfactor_order_id: Some(FlexFactorOrderId::new(
                "e97b1ff1-4449-46da-bc6c-a76d23f16353"
            ))
        }
    );
}

fn check_invalid_expiry(bytes: &[u8]) {
    let v = ValidationErrors::from_body(Some(400), bytes);
    assert_eq!(
        v.field("ExpiryDateUtc"),
        Some(&["The field ExpiryDateUtc is invalid.".to_string()][..])
    );
    assert_eq!(
        v.trace_id.as_deref(),
        Some("00-bf5a1XXXTRACEXXX174b8a-f58XXXIDXXX32-01")
    );
    assert!(v.field("TraceId").is_none(), "TraceId is not a field");
    assert!(v.to_string().contains("ExpiryDateUtc"));
}

fn check_validation_error(bytes: &[u8]) {
    let v = ValidationErrors::from_body(None, bytes);
    assert_eq!(v.status, Some(400));
    let names: Vec<&str> = v.field_names().collect();
    for field in [
        "OrderId",
        "IsDeclined",
        "IdempotencyKey",
        "Transaction.Id",
        "Transaction.ResponseCode",
        "Transaction.AvsResultCode",
        "Transaction.CvvResultCode",
    ] {
        assert!(names.contains(&field), "{field} in {names:?}");
    }
    assert_eq!(
        v.field("orderid"),
        Some(&["Merchant's orderId is required".to_string()][..])
    );
    assert_eq!(
        v.trace_id.as_deref(),
        Some("00-3b4af05c51be4aa7dd77104ac75f252b-004c728c64ca280d-01")
    );
}

fn check_refund_failed(bytes: &[u8]) {
    let r: StatusResponse = from_wire(bytes).unwrap();
    let tuples = r.tuple_errors();
    assert_eq!(tuples.len(), 1);
    assert_eq!(tuples[0].code.as_deref(), Some("2001"));
    assert_eq!(tuples[0].code2.as_deref(), Some("2001"));
    assert_eq!(tuples[0].flag, Some(true));
    match r.into_refund_answer() {
        Ok(RefundAnswer::Failed { code, message }) => {
            assert_eq!(code, "2001");
            assert!(message.starts_with("Amount to refund (1.00)"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // The same body as a 400 answer: the tuple errors are read too.
    let v = ValidationErrors::from_body(Some(400), bytes);
    assert_eq!(v.tuples.len(), 1);
    assert!(v
        .title
        .as_deref()
        .unwrap_or("")
        .starts_with("Amount to refund"));
}

fn check_tokenize(bytes: &[u8]) {
    let r: TokenizeResponse = from_wire(bytes).unwrap();
    let token = r.into_card_token(&card()).unwrap();
    assert_eq!(token.token, "d3e10716-6aac-4eb8-a74d-c1a3027f1d96");
    assert_eq!(token.bin, "411111");
    assert_eq!(token.last4, "1111");
    assert_eq!((token.exp_month, token.exp_year), (9, 2025));
    assert_eq!(token.holder, "Cure Tester");
}

fn check_outcome(bytes: &[u8]) {
    // The deprecated /outcome answer reads with the evaluate reader: status and confirmationId.
    let r: EvaluateResponse = from_wire(bytes).unwrap();
    assert_eq!(
        r.into_answer(),
        EvaluateAnswer::Approved {
            flexfactor_order_id: None,
            confirmation_id: Some("382AB3".into())
        }
    );
}

fn check_webhook(bytes: &[u8]) {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    let body = v["body"].as_str().unwrap();
    let o = parse_delivery(body.as_bytes()).unwrap();
    assert_eq!(
        o.result,
        FlexFactorResult::Completed {
            confirmation_id: Some("22ACD1D9".into())
        }
    );
}

/// F5: every fixture in the folder parses with the reader meant for it; a fixture added later
/// must at least be JSON readable case-insensitively.
#[test]
fn f5_every_fixture_parses() {
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(fixture_dir())
        .expect("the fixtures folder")
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = fixture(&name);
        match name.as_str() {
            "oauth2-token-response.json" => check_oauth2_token_response(&bytes),
            "evaluate-request-cit.json" => check_evaluate_request(&bytes),
            "evaluate-response-challenge.json" => check_challenge(&bytes),
            "evaluate-response-invalid-expiry.json" => check_invalid_expiry(&bytes),
            "evaluate-response-validation-error.json" => check_validation_error(&bytes),
            "refund-response-failed.json" => check_refund_failed(&bytes),
            "tokenize-response.json" => check_tokenize(&bytes),
            "outcome-response.json" => check_outcome(&bytes),
            "webhook-order-completed.json" => check_webhook(&bytes),
            other => {
                parse_normalized(&bytes).unwrap_or_else(|e| panic!("{other}: {e}"));
            }
        }
        seen += 1;
    }
    assert!(seen >= 9, "expected the nine known fixtures, saw {seen}");
}

/// F5: the challenge answer re-keyed in PascalCase and snake_case reads the same.
#[test]
fn f5_challenge_fixture_in_other_casings_reads_the_same() {
    let v: Value = serde_json::from_slice(&fixture("evaluate-response-challenge.json")).unwrap();
    let obj = v.as_object().unwrap();
    let pascal: serde_json::Map<String, Value> = obj
        .iter()
        .map(|(k, v)| {
            let mut c = k.chars();
            let first = c.next().unwrap().to_ascii_uppercase();
            (format!("{first}{}", c.as_str()), v.clone())
        })
        .collect();
    let snake: serde_json::Map<String, Value> = obj
        .iter()
        .map(|(k, v)| {
            let mut s = String::new();
            for ch in k.chars() {
                if ch.is_ascii_uppercase() {
                    s.push('_');
                    s.push(ch.to_ascii_lowercase());
                } else {
                    s.push(ch);
                }
            }
            (s, v.clone())
        })
        .collect();
    for m in [pascal, snake] {
        let bytes = serde_json::to_vec(&Value::Object(m)).unwrap();
        check_challenge(&bytes);
    }
}
