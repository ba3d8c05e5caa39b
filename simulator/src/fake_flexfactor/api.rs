//! FlexFactor's `/v1` endpoints: faults first, then authentication, then the endpoint's logic
//! under the state lock (so each request sees and changes one consistent state).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use salvage_domain::Clock;
use salvage_gateway::flexfactor::transformers::canonical_status;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use super::app::App;
use super::faults::{Endpoint, Fault};
use super::rules::{digits, Facts, Mode, Outcome};
use super::state::{Action, Order, OrderStatus, State as FakeState, Stored, VaultCard};
use super::wire::{
    bad_credentials_body, boolean, cents_as_dollars, dollars_as_cents, evaluate_body, failed_body,
    get as at, int, iso, parse_object, parse_optional_object, success_body, text, token_body,
    tokenize_body, FieldErrors, Reply, TokenizedCard,
};

/// The `/v1` routes.
pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v1/oauth2/token", post(plain(Endpoint::Token)))
        .route("/v1/tokenize", post(plain(Endpoint::Tokenize)))
        .route("/v1/evaluate", post(plain(Endpoint::Evaluate)))
        .route("/v1/outcome", post(plain(Endpoint::Outcome)))
        .route("/v1/capture", post(plain(Endpoint::Capture)))
        .route("/v1/orders/{id}", get(of_order(Endpoint::Order)))
        .route("/v1/orders/{id}/cancel", post(of_order(Endpoint::Cancel)))
        .route(
            "/v1/orders/{id}/external-cancel",
            post(of_order(Endpoint::ExternalCancel)),
        )
        .route("/v1/orders/{id}/refund", post(of_order(Endpoint::Refund)))
}

/// One request, as the endpoint logic sees it.
struct Request<'a> {
    id: Option<String>,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

type Handled = Pin<Box<dyn Future<Output = Response> + Send>>;

/// The handler of an endpoint without a path parameter.
fn plain(
    endpoint: Endpoint,
) -> impl Fn(State<Arc<App>>, Uri, HeaderMap, Bytes) -> Handled + Clone + Send + Sync + 'static {
    move |State(app), uri, headers, body| Box::pin(handle(app, endpoint, None, uri, headers, body))
}

/// The handler of an endpoint of one order (`/v1/orders/{id}...`).
fn of_order(
    endpoint: Endpoint,
) -> impl Fn(State<Arc<App>>, Path<String>, Uri, HeaderMap, Bytes) -> Handled
       + Clone
       + Send
       + Sync
       + 'static {
    move |State(app), Path(id), uri, headers, body| {
        Box::pin(handle(app, endpoint, Some(id), uri, headers, body))
    }
}

/// Counts the call, applies a fault, then the endpoint.
async fn handle(
    app: Arc<App>,
    endpoint: Endpoint,
    id: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = {
        let mut st = app.lock();
        st.record_call(endpoint, &body);
        st.faults.take_request(endpoint)
    };
    let request = Request {
        id,
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    match fault {
        Some(Fault::ServerError { status }) => return Reply::server_error(status).into_response(),
        Some(Fault::ExpiredToken) => return Reply::token_expired(None).into_response(),
        Some(Fault::Slow { delay_ms }) => {
            tokio::time::sleep(StdDuration::from_millis(delay_ms)).await;
        }
        Some(Fault::Timeout { hold_ms, applied }) => {
            if applied {
                let _ = app.process(endpoint, &request);
            }
            tokio::time::sleep(StdDuration::from_millis(hold_ms)).await;
            return Reply::gateway_timeout().into_response();
        }
        _ => {}
    }
    app.process(endpoint, &request).into_response()
}

impl App {
    /// The endpoint's logic, under the state lock.
    fn process(&self, endpoint: Endpoint, req: &Request<'_>) -> Reply {
        let now = self.clock.now();
        let trace = self.trace_id();
        let mut st = self.lock();
        st.settle(now, self.settings.capture_window);
        let open = match endpoint {
            Endpoint::Token => true,
            Endpoint::Tokenize => self.query_credentials_ok(req.query),
            _ => false,
        };
        if !open {
            if let Err(reply) = authorize(&st, req.headers, now) {
                return reply;
            }
        }
        match endpoint {
            Endpoint::Token => self.token(&mut st, req, now, &trace),
            Endpoint::Tokenize => self.tokenize(&mut st, req, now, &trace),
            Endpoint::Evaluate => self.evaluate(&mut st, req, now, &trace),
            Endpoint::Order => order_view(&st, req, &trace),
            Endpoint::Outcome => outcome_view(&st, req, &trace),
            Endpoint::Cancel | Endpoint::ExternalCancel => {
                self.cancel(&mut st, endpoint, req, now, &trace)
            }
            Endpoint::Refund => self.refund(&mut st, req, now, &trace),
            Endpoint::Capture => self.capture(&mut st, req, now, &trace),
        }
    }

    /// `/tokenize?mid=...&environment=...`: the tokenization key is the credential.
    fn query_credentials_ok(&self, query: Option<&str>) -> bool {
        let Some(query) = query else { return false };
        let (mut mid, mut env) = (None, None);
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k.to_ascii_lowercase().as_str() {
                "mid" => mid = Some(v),
                "environment" => env = Some(v),
                _ => {}
            }
        }
        mid.as_deref() == Some(self.settings.mid.expose_secret())
            && env.as_deref() == Some(self.settings.environment_key.expose_secret())
    }

    fn token(
        &self,
        st: &mut FakeState,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        let v = match parse_object(req.body, trace) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let key = text(at(&v, &["appkey"]));
        let secret = text(at(&v, &["appsecret"]));
        let mut errors = FieldErrors::default();
        if key.is_none() {
            errors.required("AppKey");
        }
        if secret.is_none() {
            errors.required("AppSecret");
        }
        if !errors.is_empty() {
            return errors.into_reply(trace);
        }
        if key.as_deref() != Some(self.settings.app_key.expose_secret())
            || secret.as_deref() != Some(self.settings.app_secret.expose_secret())
        {
            tracing::info!("fake FlexFactor refused unknown credentials");
            return Reply::json(400, bad_credentials_body());
        }
        let access = format!(
            "{:016x}{:016x}{:016x}",
            self.random_u64(),
            self.random_u64(),
            self.random_u64()
        );
        let refresh = format!("{:016x}{:016x}", self.random_u64(), self.random_u64());
        let expires = now + self.settings.token_lifetime;
        st.tokens
            .retain(|_, exp| *exp + chrono::Duration::hours(1) > now);
        st.tokens.insert(access.clone(), expires);
        let id = st.ids.uuid();
        Reply::json(
            200,
            token_body(&access, &refresh, expires.timestamp_millis(), &id),
        )
    }

    fn tokenize(
        &self,
        st: &mut FakeState,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        let v = match parse_object(req.body, trace) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let card = at(&v, &["paymentmethod", "creditcard"]);
        let field = |name: &str| text(card.and_then(|c| c.get(name)));
        let mut errors = FieldErrors::default();
        let number = field("number").map(|n| digits(&n));
        match &number {
            None => errors.add(
                "PaymentMethod.CreditCard.Number",
                "The Number field is required.",
            ),
            Some(n) if !(12..=19).contains(&n.len()) => errors.add(
                "PaymentMethod.CreditCard.Number",
                "The Number field is invalid.",
            ),
            _ => {}
        }
        let first = field("firstname");
        let last = field("lastname");
        if first.is_none() {
            errors.required("PaymentMethod.CreditCard.FirstName");
        }
        if last.is_none() {
            errors.required("PaymentMethod.CreditCard.LastName");
        }
        let (Some(pan), Some(first), Some(last)) = (number, first, last) else {
            return errors.into_reply(trace);
        };
        if !errors.is_empty() {
            return errors.into_reply(trace);
        }
        let token = st.ids.uuid();
        st.vault.insert(
            token.clone(),
            VaultCard {
                pan: pan.clone(),
                cvv: field("verificationvalue"),
            },
        );
        let month = int(card.and_then(|c| c.get("month")));
        let year = int(card.and_then(|c| c.get("year")));
        Reply::json(
            200,
            tokenize_body(&TokenizedCard {
                token: &token,
                pan: &pan,
                first_name: &first,
                last_name: &last,
                month,
                year,
                now,
            }),
        )
    }

    fn evaluate(
        &self,
        st: &mut FakeState,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        let v = match parse_object(req.body, trace) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let is_mit = boolean(at(&v, &["ismit"])) == Some(true);
        let mut errors = FieldErrors::default();
        let order_ref = text(at(&v, &["orderid"]));
        if order_ref.is_none() {
            errors.add("OrderId", "Merchant's orderId is required");
        }
        let key = text(at(&v, &["idempotencykey"]));
        if key.is_none() {
            errors.required("IdempotencyKey");
        }
        if boolean(at(&v, &["isdeclined"])).is_none() {
            errors.required("IsDeclined");
        }
        match at(&v, &["transaction"]) {
            Some(Value::Object(_)) => {
                for (name, field) in [
                    ("id", "Transaction.Id"),
                    ("responsecode", "Transaction.ResponseCode"),
                    ("responsecodesource", "Transaction.ResponseCodeSource"),
                    ("avsresultcode", "Transaction.AvsResultCode"),
                    ("cvvresultcode", "Transaction.CvvResultCode"),
                    ("cavvresultcode", "Transaction.CavvResultCode"),
                ] {
                    if text(at(&v, &["transaction", name])).is_none() {
                        errors.required(field);
                    }
                }
            }
            _ => errors.required("Transaction"),
        }
        let mut expiry = None;
        if is_mit {
            let parsed = text(at(&v, &["expirydateutc"]))
                .and_then(|t| parse_utc(&t))
                .filter(|t| *t > now);
            match parsed {
                Some(t) => expiry = Some(t),
                None => errors.add("ExpiryDateUtc", "The field ExpiryDateUtc is invalid."),
            }
        } else if text(at(&v, &["customerip"])).is_none() {
            errors.required("CustomerIp");
        }
        let (Some(order_ref), Some(key)) = (order_ref, key) else {
            return errors.into_reply(trace);
        };
        if !errors.is_empty() {
            return errors.into_reply(trace);
        }
        if let Some(reply) = self.replay(st, Endpoint::Evaluate, &key, &v, now, trace) {
            return reply;
        }

        // The facts the rules look at.
        let card_number = text(at(&v, &["paymentmethod", "cardnumber"]));
        let token_flag = boolean(at(&v, &["paymentmethod", "token"]));
        let vaulted = card_number
            .as_deref()
            .filter(|_| token_flag != Some(false))
            .and_then(|n| st.vault.get(n))
            .cloned();
        let pan = match &vaulted {
            Some(c) => Some(c.pan.clone()),
            None => card_number
                .as_deref()
                .filter(|_| token_flag != Some(true))
                .map(digits)
                .filter(|d| (12..=19).contains(&d.len())),
        };
        let cvv = vaulted
            .and_then(|c| c.cvv)
            .or_else(|| text(at(&v, &["paymentmethod", "verificationvalue"])));
        let bin = text(at(&v, &["paymentmethod", "cardbinnumber"]));
        let phones: Vec<String> = [
            at(&v, &["billinginformation", "phone"]),
            at(&v, &["payer", "phone"]),
        ]
        .into_iter()
        .filter_map(text)
        .collect();
        let amount = int(at(&v, &["transaction", "amount"]));
        let response_code = text(at(&v, &["transaction", "responsecode"]));
        let mode = if is_mit { Mode::Mit } else { Mode::Cit };
        let facts = Facts {
            mode,
            pan: pan.as_deref(),
            bin: bin.as_deref(),
            response_code: response_code.as_deref(),
            cvv: cvv.as_deref(),
            phones: phones.iter().map(String::as_str).collect(),
            amount,
        };
        let decision = st.rules.decide(&facts, self.settings.seed, &key);
        let authorization_only = text(at(&v, &["transactiontype"]))
            .is_some_and(|t| canonical_status(&t) == "AUTHORIZATION");

        let id = st.ids.uuid();
        st.insert_order(Order {
            id: id.clone(),
            external_order_id: order_ref,
            idempotency_key: key.clone(),
            mode,
            status: OrderStatus::Processing,
            resolution: None,
            outcome: decision.outcome,
            rule: decision.rule.clone(),
            amount_cents: amount.unwrap_or(0),
            currency: text(at(&v, &["transaction", "currency"])).unwrap_or_else(|| "USD".into()),
            paid_cents: 0,
            refunded_cents: 0,
            confirmation_id: None,
            authorization_only,
            chargeback: false,
            created_at: now,
            expiry,
            first_name: text(at(&v, &["billinginformation", "firstname"])),
            last_name: text(at(&v, &["billinginformation", "lastname"])),
            email: text(at(&v, &["payer", "email"])),
            phone: phones.first().cloned(),
            refund_after: decision.refund_after,
            chargeback_after: decision.chargeback_after,
        });
        let notify = self.settings.webhooks_for_sync_answers;
        let window = self.settings.capture_window;
        let status = match (mode, decision.outcome, expiry) {
            (Mode::Cit, Outcome::Approved, _) if !authorization_only => {
                st.complete(&id, now, notify);
                "APPROVED"
            }
            (Mode::Cit, Outcome::Approved | Outcome::CaptureRequired, _) => {
                st.require_capture(&id, now, window, notify);
                "CAPTUREREQUIRED"
            }
            (Mode::Cit, Outcome::Challenge, _) => {
                if let Some(o) = st.orders.get_mut(&id) {
                    o.status = OrderStatus::OnHold;
                }
                "CHALLENGE"
            }
            (Mode::Cit, _, _) => {
                st.close(&id, "declined");
                "DECLINED"
            }
            (Mode::Mit, outcome, Some(expiry)) => {
                let due = now + decision.delay;
                let action = match outcome {
                    Outcome::Approved if authorization_only => Some(Action::RequireCapture),
                    Outcome::CaptureRequired => Some(Action::RequireCapture),
                    Outcome::Approved => Some(Action::Complete),
                    Outcome::Cancelled => Some(Action::Cancel),
                    _ => None,
                };
                match action {
                    Some(action) if due < expiry => st.schedule(due, &id, action),
                    _ => st.schedule(expiry, &id, Action::Expire),
                }
                "SUBMITTED"
            }
            (Mode::Mit, _, None) => "SUBMITTED",
        };
        tracing::info!(
            order = %id,
            status,
            rule = ?decision.rule,
            "fake FlexFactor evaluated a submission"
        );
        let reply = Reply::json(200, evaluate_body(&id, status, text(at(&v, &["sensekey"]))));
        self.remember(st, Endpoint::Evaluate, &key, v, &reply, now);
        reply
    }

    /// The stored answer for a key within the window: the same body replays it, another one is
    /// a 409. `None`: a new request.
    fn replay(
        &self,
        st: &mut FakeState,
        scope: Endpoint,
        key: &str,
        fingerprint: &Value,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Option<Reply> {
        let stored = st.idempotency.get(&(scope, key.to_string()))?;
        if now - stored.at > self.settings.idempotency_window {
            return None;
        }
        if &stored.fingerprint == fingerprint {
            tracing::info!(scope = %scope, "fake FlexFactor replayed an idempotent answer");
            Some(stored.reply.clone())
        } else {
            Some(Reply::conflict(trace))
        }
    }

    fn remember(
        &self,
        st: &mut FakeState,
        scope: Endpoint,
        key: &str,
        fingerprint: Value,
        reply: &Reply,
        now: DateTime<Utc>,
    ) {
        st.remember_idempotent(
            (scope, key.to_string()),
            Stored {
                fingerprint,
                reply: reply.clone(),
                at: now,
            },
            self.settings.idempotency_window,
        );
    }

    fn cancel(
        &self,
        st: &mut FakeState,
        endpoint: Endpoint,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        let v = match parse_optional_object(req.body, trace) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let id = req.id.clone().unwrap_or_default();
        let key = text(at(&v, &["idempotencykey"]));
        let fingerprint = json!({"path": format!("{endpoint}/{id}"), "body": v});
        if let Some(key) = &key {
            if let Some(reply) = self.replay(st, Endpoint::Cancel, key, &fingerprint, now, trace) {
                return reply;
            }
        }
        let targets = if endpoint == Endpoint::ExternalCancel {
            st.orders_by_external(&id)
        } else if st.orders.contains_key(&id) {
            vec![id.clone()]
        } else {
            Vec::new()
        };
        if targets.is_empty() {
            return Reply::not_found(trace);
        }
        let mut refused = None;
        let mut changed = false;
        for target in &targets {
            let Some(status) = st.orders.get(target).map(|o| o.status) else {
                continue;
            };
            match status {
                OrderStatus::Draft
                | OrderStatus::OnHold
                | OrderStatus::Processing
                | OrderStatus::CaptureRequired => {
                    st.close(target, "cancelled");
                    st.enqueue("order.cancelled", target, now);
                    changed = true;
                }
                OrderStatus::Cancelled => {}
                other => refused = Some(other),
            }
        }
        let reply = match refused {
            Some(status) if !changed => Reply::json(
                400,
                failed_body(
                    "400",
                    &format!(
                        "Order in status {} cannot be cancelled; refund it instead",
                        status.name()
                    ),
                ),
            ),
            _ => Reply::json(200, json!({})),
        };
        if let Some(key) = key {
            self.remember(st, Endpoint::Cancel, &key, fingerprint, &reply, now);
        }
        reply
    }

    fn refund(
        &self,
        st: &mut FakeState,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        if let Err(r) = parse_object(req.body, trace) {
            return r;
        }
        let amount = match dollars_as_cents(req.body, "amounttorefund") {
            Ok(Some(a)) if a > 0 => a,
            Ok(Some(_)) => {
                let mut e = FieldErrors::default();
                e.add(
                    "AmountToRefund",
                    "The field AmountToRefund must be greater than 0.",
                );
                return e.into_reply(trace);
            }
            Ok(None) => {
                let mut e = FieldErrors::default();
                e.required("AmountToRefund");
                return e.into_reply(trace);
            }
            Err(()) => {
                let mut e = FieldErrors::default();
                e.add("AmountToRefund", "The field AmountToRefund is invalid.");
                return e.into_reply(trace);
            }
        };
        let id = req.id.clone().unwrap_or_default();
        if let Some((last, reply, when)) = st.refunds.get(&id) {
            if *last == amount && now - *when <= self.settings.idempotency_window {
                return reply.clone();
            }
        }
        let max = st
            .orders
            .get(&id)
            .filter(|o| matches!(o.status, OrderStatus::Completed | OrderStatus::Returned))
            .map(|o| o.paid_cents - o.refunded_cents)
            .unwrap_or(0)
            .max(0);
        if amount > max {
            let message = format!(
                "Amount to refund ({}) is greater than maximum refund amount in ({}))",
                cents_as_dollars(amount),
                cents_as_dollars(max)
            );
            return Reply::json(400, failed_body("2001", &message));
        }
        let transaction = st.ids.uuid();
        if let Some(o) = st.orders.get_mut(&id) {
            o.refunded_cents += amount;
            if o.refunded_cents >= o.paid_cents {
                o.status = OrderStatus::Returned;
            }
        }
        st.unschedule(&id);
        st.enqueue("order.refunded", &id, now);
        let reply = Reply::json(
            200,
            success_body(json!({
                "responseCode": "0", "responseMessage": "APPROVED",
                "transactionId": transaction,
            })),
        );
        st.refunds.insert(id, (amount, reply.clone(), now));
        reply
    }

    fn capture(
        &self,
        st: &mut FakeState,
        req: &Request<'_>,
        now: DateTime<Utc>,
        trace: &str,
    ) -> Reply {
        let v = match parse_object(req.body, trace) {
            Ok(v) => v,
            Err(r) => return r,
        };
        let mut errors = FieldErrors::default();
        let key = text(at(&v, &["idempotencykey"]));
        let id = text(at(&v, &["orderid"]));
        let amount = int(at(&v, &["amount"]));
        if key.is_none() {
            errors.required("IdempotencyKey");
        }
        if id.is_none() {
            errors.required("OrderId");
        }
        if amount.is_none() {
            errors.required("Amount");
        }
        let (Some(key), Some(id), Some(amount)) = (key, id, amount) else {
            return errors.into_reply(trace);
        };
        if let Some(reply) = self.replay(st, Endpoint::Capture, &key, &v, now, trace) {
            return reply;
        }
        let Some(order) = st.orders.get(&id) else {
            return Reply::not_found(trace);
        };
        let currency = text(at(&v, &["currency"]));
        let reply = if order.status != OrderStatus::CaptureRequired {
            Reply::json(
                200,
                failed_body(
                    "2002",
                    &format!("Order in status {} cannot be captured", order.status.name()),
                ),
            )
        } else if amount != order.amount_cents
            || currency.is_some_and(|c| !c.eq_ignore_ascii_case(&order.currency))
        {
            Reply::json(
                200,
                failed_body(
                    "2003",
                    "Partial capture and capture above the authorized amount are not supported",
                ),
            )
        } else {
            st.complete(&id, now, true);
            Reply::json(200, success_body(json!({})))
        };
        self.remember(st, Endpoint::Capture, &key, v, &reply, now);
        reply
    }
}

/// Checks the bearer token (`Bearer ` prefix optional, as some FlexFactor examples omit it).
fn authorize(st: &FakeState, headers: &HeaderMap, now: DateTime<Utc>) -> Result<(), Reply> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or_default();
    let token = match raw.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => raw,
    };
    match st.tokens.get(token) {
        Some(expires) if *expires > now => Ok(()),
        Some(expires) => Err(Reply::token_expired(Some(*expires))),
        None => Err(Reply::unauthorized(None)),
    }
}

fn order_view(st: &FakeState, req: &Request<'_>, trace: &str) -> Reply {
    let Some(o) = req.id.as_deref().and_then(|id| st.orders.get(id)) else {
        return Reply::not_found(trace);
    };
    Reply::json(
        200,
        json!({
            "id": o.id, "correlationId": null, "referenceNumber": o.external_order_id,
            "status": o.status.code(), "statusName": o.status.name(),
            "orderPlacedDate": iso(o.created_at), "expiryDate": o.expiry.map(iso),
            "confirmationId": o.confirmation_id,
            "amount": o.amount_cents, "currencyCode": o.currency,
            "currencySymbol": if o.currency == "USD" { "$" } else { "" },
            "firstName": o.first_name, "lastName": o.last_name, "email": o.email,
            "phone": o.phone, "secondaryEmail": null,
            "billingAddress": null, "shippingAddress": null,
        }),
    )
}

fn outcome_view(st: &FakeState, req: &Request<'_>, trace: &str) -> Reply {
    let v = match parse_object(req.body, trace) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let order = text(at(&v, &["ordersessionkey"])).and_then(|id| st.orders.get(&id));
    let (status, confirmation) = match order {
        None => ("NOTFOUND", None),
        Some(o) => (
            match (o.status, o.resolution.as_deref()) {
                (OrderStatus::Completed | OrderStatus::Returned, _) => "APPROVED",
                (OrderStatus::Processing | OrderStatus::Draft, _) => "PROCESSING",
                (OrderStatus::OnHold, _) => "CHALLENGE",
                (OrderStatus::CaptureRequired, _) => "CAPTUREREQUIRED",
                (_, Some("expired")) => "EXPIRED",
                (_, Some("declined")) => "DECLINED",
                _ => "CANCELLED",
            },
            o.confirmation_id.clone(),
        ),
    };
    Reply::json(
        200,
        json!({"status": status, "confirmationId": confirmation, "success": true,
               "result": null, "statusCode": null, "errors": [], "customProperties": {}}),
    )
}

/// An ISO-8601 time: RFC 3339, or zone-less (taken as UTC).
fn parse_utc(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Decodes `%XX` and `+` of a query value.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| char::from(b).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
