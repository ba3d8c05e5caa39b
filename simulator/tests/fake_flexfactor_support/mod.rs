//! Shared by the `fake_flexfactor_*` tests: a fake on a driven clock, a webhook receiver that
//! verifies every delivery with the adapter's `WebhookVerifier` (same key, same clock), the real
//! `FlexFactorClient` pointed at the fake, and domain requests.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use salvage_domain::customer::{Address, CardDetails, CardToken, Customer};
use salvage_domain::decline::{DeclineFacts, DeclineType};
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::ids::{GatewayId, OrderId};
use salvage_domain::money::{Currency, Money};
use salvage_domain::ports::{FlexFactor, SalvageRequest, SubmissionMode};
use salvage_domain::Clock;
use salvage_gateway::flexfactor::{
    FlexFactorClient, FlexFactorConfig, RetryConfig, WebhookError, WebhookOutcome, WebhookVerifier,
    WebhookVerifierConfig,
};
use salvage_sim::fake_flexfactor::{FakeConfig, FakeFlexFactor, RunningFake};
use secrecy::SecretString;
use serde_json::Value;

/// The fake's first `now`.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The verifier's verdict.
    pub verdict: Result<WebhookOutcome, WebhookError>,
    /// The raw body.
    pub body: Value,
    /// `x-fc-nonce`.
    pub nonce: String,
    /// The status answered.
    pub answered: u16,
}

/// A webhook endpoint verifying deliveries like the service will.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

struct ReceiverState {
    verifier: WebhookVerifier,
    /// The nonces of the deliveries accepted (W2: a replay is refused, as the service's intake
    /// refuses it).
    seen: Mutex<std::collections::HashSet<String>>,
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<VecDeque<u16>>>,
}

async fn receive(
    State(s): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verdict = s.verifier.verify(&headers, &body, None).and_then(|d| {
        if s.seen.lock().unwrap().insert(d.nonce.clone()) {
            Ok(d.outcome)
        } else {
            Err(WebhookError::ReplayedNonce)
        }
    });
    let answered = match &verdict {
        Ok(_) => s.answers.lock().unwrap().pop_front().unwrap_or(200),
        Err(e) => e.http_status(),
    };
    s.received.lock().unwrap().push(Received {
        verdict,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        nonce: headers
            .get("x-fc-nonce")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    /// Starts a receiver verifying with `hmac_key` (base64) on `clock`.
    pub async fn start(hmac_key: &str, clock: Arc<dyn Clock>) -> Receiver {
        let mut creds = salvage_domain::setup::FlexFactorCredentials::default();
        creds.set("hmac_signing_key", SecretString::from(hmac_key));
        let verifier =
            WebhookVerifier::from_credentials(&creds, WebhookVerifierConfig::default(), clock)
                .unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(VecDeque::new()));
        let state = Arc::new(ReceiverState {
            verifier,
            seen: Mutex::new(std::collections::HashSet::new()),
            received: received.clone(),
            answers: answers.clone(),
        });
        let app = Router::new()
            .route("/webhooks/flexfactor", post(receive))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/webhooks/flexfactor"),
            received,
            answers,
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The verified deliveries' outcomes.
    pub fn verified(&self) -> Vec<WebhookOutcome> {
        self.received()
            .into_iter()
            .filter_map(|r| r.verdict.ok())
            .collect()
    }

    /// The events of verified deliveries, in arrival order.
    pub fn events(&self) -> Vec<String> {
        self.verified().into_iter().map(|o| o.event).collect()
    }

    /// Answers the next verified deliveries with these statuses (then 200).
    pub fn answer_next(&self, statuses: &[u16]) {
        self.answers
            .lock()
            .unwrap()
            .extend(statuses.iter().copied());
    }
}

/// A fake on a driven clock with a verifying receiver, and clients.
pub struct Harness {
    pub fake: RunningFake,
    pub receiver: Receiver,
}

impl Harness {
    pub async fn new() -> Harness {
        Self::with(|c| c).await
    }

    /// With a changed configuration (driven clock at [`start`] and the receiver's URL are set
    /// first).
    pub async fn with(change: impl FnOnce(FakeConfig) -> FakeConfig) -> Harness {
        let config = change(FakeConfig::driven(start()));
        let key = salvage_sim::fake_flexfactor::sandbox::HMAC_SIGNING_KEY;
        let fake = FakeFlexFactor::start(config).await.unwrap();
        let receiver = Receiver::start(key, fake.clock()).await;
        fake.set_webhook_url(Some(&receiver.url)).unwrap();
        Harness { fake, receiver }
    }

    pub fn config(&self) -> FlexFactorConfig {
        let mut c = FlexFactorConfig::new(self.fake.base_url());
        c.request_timeout = Duration::from_secs(5);
        c.connect_timeout = Duration::from_secs(2);
        c.retry = RetryConfig {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
        };
        c.response_code_sources
            .insert("nmi-main".into(), "nmi".into());
        c
    }

    /// The real client, on the fake's clock.
    pub fn client(&self) -> FlexFactorClient {
        self.client_with(self.config())
    }

    pub fn client_with(&self, config: FlexFactorConfig) -> FlexFactorClient {
        FlexFactorClient::new(config, self.fake.credentials(), self.fake.clock()).unwrap()
    }

    /// A bearer token fetched with a raw request.
    pub async fn raw_token(&self) -> String {
        let r: Value = reqwest::Client::new()
            .post(format!("{}/oauth2/token", self.fake.base_url()))
            .json(&serde_json::json!({"AppKey": "sandbox-app-key", "AppSecret": "sandbox-app-secret"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r["accessToken"].as_str().unwrap().to_string()
    }

    /// A raw authenticated POST; (status, body).
    pub async fn raw_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let token = self.raw_token().await;
        let r = reqwest::Client::new()
            .post(format!("{}{path}", self.fake.base_url()))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// A card to tokenize.
pub fn card(number: &str, cvv: Option<&str>) -> CardDetails {
    CardDetails {
        number: SecretString::from(number),
        cvv: cvv.map(SecretString::from),
        exp_month: 9,
        exp_year: 2030,
        holder: "Cure Tester".into(),
    }
}

/// Tokenizes a card at the fake.
pub async fn token_for(client: &FlexFactorClient, number: &str, cvv: Option<&str>) -> CardToken {
    client.tokenize(&card(number, cvv)).await.unwrap()
}

pub fn customer() -> Customer {
    Customer {
        first_name: "Cure".into(),
        last_name: "Tester".into(),
        email: Some("test@gmail.com".into()),
        phone: Some("(555)555-5555".into()),
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

/// A submission of `order` with `card`.
pub fn request(order: &str, card: CardToken, mode: SubmissionMode) -> SalvageRequest {
    let order_id = OrderId::new(order);
    SalvageRequest {
        flexfactor_gateway: GatewayId::new("flexfactor"),
        idempotency_key: IdempotencyKey::salvage(&order_id, 1),
        order_id,
        mode,
        amount: Money::new(1999, Currency::USD).unwrap(),
        decline: DeclineFacts {
            gateway: GatewayId::new("nmi-main"),
            response_code: "51".into(),
            response_message: "Insufficient funds".into(),
            processor_verdict: DeclineType::Soft,
            visa_category: None,
            mastercard_advice_code: None,
        },
        card,
        customer: customer(),
        items: vec![],
        subscription: None,
    }
}

/// A cascade (CIT) submission.
pub fn cit(order: &str, card: CardToken) -> SalvageRequest {
    request(
        order,
        card,
        SubmissionMode::Cit {
            customer_ip: "203.0.113.7".into(),
        },
    )
}

/// A managed MIT submission expiring 21 days after [`start`].
pub fn mit(order: &str, card: CardToken) -> SalvageRequest {
    request(
        order,
        card,
        SubmissionMode::Mit {
            expires_at: start() + chrono::Duration::days(21),
            recurring: false,
        },
    )
}
