//! The integrator's contract in `/openapi.json`: the charge hook and every notification kind
//! are published as OpenAPI 3.1 `webhooks`, and one real instance of each, serialized by the
//! code that sends it, validates against the published schema.

use std::collections::BTreeSet;

use salvage_gateway::crm::wire::{self, ChargeHookAnswer, ChargeHookRequest, Notification};
use salvage_gateway::service::openapi::document;
use serde_json::{json, Value};

/// A JSON Schema (2020-12, OpenAPI 3.1's dialect) for component `name` of `doc`.
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"].clone(),
    });
    match jsonschema::draft202012::new(&schema) {
        Ok(v) => v,
        Err(e) => panic!("the published schema of {name} does not compile: {e}"),
    }
}

fn assert_valid(v: &jsonschema::Validator, instance: &Value) {
    let errors: Vec<String> = v.iter_errors(instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{instance}\n{errors:#?}");
}

#[test]
fn every_notification_kind_is_a_webhook_and_its_instance_validates() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let v = validator(&doc, "Notification");
    let mut kinds = BTreeSet::new();
    for n in wire::samples::notifications() {
        let body = serde_json::to_value(Notification::from(&n)).unwrap();
        assert_valid(&v, &body);
        let kind = body["kind"].as_str().unwrap().to_string();
        let hook = &doc["webhooks"][format!("notification.{kind}")]["post"];
        assert!(hook.is_object(), "notification.{kind} is not published");
        assert_eq!(
            hook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Notification"
        );
        assert_valid(
            &v,
            &hook["requestBody"]["content"]["application/json"]["example"],
        );
        kinds.insert(kind);
    }
    // Every kind the schema knows has its sample and its webhook, and no other is published.
    let schema_kinds: BTreeSet<String> = doc["components"]["schemas"]["NotificationKind"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            k["properties"]["kind"]["enum"][0]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds, schema_kinds);
    let published: BTreeSet<String> = doc["webhooks"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| k.strip_prefix("notification.").map(str::to_string))
        .collect();
    assert_eq!(published, schema_kinds);
}

#[test]
fn the_charge_hook_is_a_webhook_and_its_request_and_answers_validate() {
    let doc = document();
    let hook = &doc["webhooks"]["chargeHook"]["post"];
    assert_eq!(
        hook["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ChargeHookRequest"
    );
    let headers: Vec<&str> = hook["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        [
            "x-salvage-timestamp",
            "x-salvage-signature",
            "idempotency-key"
        ]
    );
    let request = validator(&doc, "ChargeHookRequest");
    for c in wire::samples::charges() {
        assert_valid(
            &request,
            &serde_json::to_value(ChargeHookRequest::from(&c)).unwrap(),
        );
    }
    let answer = validator(&doc, "ChargeHookAnswer");
    for a in [
        json!({"result": "approved", "transaction_id": "t-1"}),
        json!({"result": "declined", "response_code": "51", "response_message": "Insufficient funds",
               "decline_type": "soft", "visa_category": 2}),
        json!({"result": "declined", "response_code": "05", "response_message": "Do not honor",
               "decline_type": "hard", "mastercard_advice_code": "03"}),
        json!({"result": "pending", "transaction_id": "ref-9"}),
    ] {
        assert_valid(&answer, &a);
        // What the schema accepts, the charge hook reads.
        assert!(serde_json::from_value::<ChargeHookAnswer>(a).is_ok());
    }
}

#[test]
fn the_schemas_refuse_what_salvage_would_never_send() {
    let doc = document();
    let v = validator(&doc, "Notification");
    let mut bad =
        serde_json::to_value(Notification::from(&wire::samples::notifications()[0])).unwrap();
    bad["kind"] = json!("order_teleported");
    assert!(!v.is_valid(&bad), "an unknown kind must not validate");
    let mut advanced =
        serde_json::to_value(Notification::from(&wire::samples::notifications()[3])).unwrap();
    advanced.as_object_mut().unwrap().remove("cycle");
    assert!(
        !v.is_valid(&advanced),
        "subscription_advanced needs its cycle"
    );
    let answer = validator(&doc, "ChargeHookAnswer");
    assert!(!answer.is_valid(&json!({"result": "maybe"})));
}
