//! The operator console over HTTP: sign-in and its cookie, session expiry, the security headers,
//! CSRF and the read-only role on the retry form, the overview against the summary API, keyset
//! pages, the CSV export, a refused webhook in the inbox, and escaping of what customers type.
//! The same pages in a real browser: `tests/console_browser.rs` at the workspace root.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::StatusCode as AxStatus;
use axum::routing::post;
use axum::Router;
use chrono::Duration;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE, X_FRAME_OPTIONS};
use reqwest::StatusCode;
use salvage_domain::ManualClock;
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::console::CONTENT_SECURITY_POLICY as CSP;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use serde_json::{json, Value};
use support::*;

const KEY: &str = "test-api-key-0123456789";
const READ_ONLY: &str = "support-read-only-0123456789";

struct Console {
    running: RunningService,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    place: Place,
}

impl Console {
    async fn start(place: Place, extra: &str) -> Console {
        let store_url = match &place {
            Place::Sqlite(url) => url.clone(),
            Place::Postgres(_) => postgres_url(),
        };
        let text = format!(
            "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{store_url}\"\n\
             api_keys = [\"{KEY}\"]\nread_only_api_keys = [\"{READ_ONLY}\"]\nconsole_session_minutes = 30\n\
             [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\nrequest_timeout_ms = 500\n{extra}"
        );
        let config = ServiceConfig::from_str(&text, std::path::Path::new("test.toml"), &|_| None)
            .expect("config");
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        if let Place::Postgres(schema) = &place {
            options.pg_schema = Some(schema.clone());
        }
        let running = start(config, options).await.expect("service starts");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Console {
            running,
            http,
            clock,
            place,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.running.url())
    }

    async fn api_post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn api_get(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Signs in with `key`; returns the cookie (`name=value`) and the Set-Cookie header.
    async fn sign_in(&self, key: &str, tls: bool) -> (String, String) {
        let mut req = self
            .http
            .post(self.url("/console/sign-in"))
            .form(&[("key", key), ("next", "/console/orders")]);
        if tls {
            req = req.header("x-forwarded-proto", "https");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[LOCATION], "/console/orders");
        let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
        let cookie = set.split(';').next().unwrap().to_string();
        (cookie, set)
    }

    async fn page(
        &self,
        cookie: &str,
        path: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, String) {
        let r = self
            .http
            .get(self.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let s = r.status();
        let h = r.headers().clone();
        (s, h, r.text().await.unwrap())
    }

    async fn form(&self, cookie: &str, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("cookie", cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Runs the background work until the views have caught up.
    async fn settle(&self) {
        for _ in 0..5 {
            self.running.state.drive().await.unwrap();
        }
    }

    async fn stop(self) {
        self.running.shutdown().await.unwrap();
        self.place.cleanup().await;
    }
}

/// A sale declined on `gateway` with no customer IP: C3 keeps it from FlexFactor (not sent).
fn declined(id: &str, first_name: &str, email: &str, amount: i64) -> Value {
    json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare",
        "amount_minor": amount, "currency": "USD",
        "customer": {"first_name": first_name, "last_name": "Tester", "email": email,
                     "billing_address": {"line1": "1 Street", "city": "Ottawa", "zip": "K1C2N6", "country": "CA"}},
        "card": {"token": "tok_test", "bin": "411111", "last4": "1111", "exp_month": 9, "exp_year": 2030, "holder": "T"},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": amount}],
        "attempt": {"gateway_id": "nmi-main", "gateway_profile_id": "atri-us", "result": "declined",
                    "response_code": "05", "response_message": "Do not honor", "decline_type": "soft"}
    })
}

/// The text of the element marked `data-figure="{id}"`.
fn figure(html: &str, id: &str) -> String {
    let marker = format!("data-figure=\"{id}\">");
    let start = html.find(&marker).map(|i| i + marker.len()).unwrap_or(0);
    html[start..].split('<').next().unwrap_or("").to_string()
}

/// The order ids of the rows of an orders page, in order.
fn order_rows(html: &str) -> Vec<String> {
    html.split("data-order=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect()
}

/// The value of the hidden CSRF field of a page.
fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("a csrf field");
    html[start..].split('"').next().unwrap().to_string()
}

both_stores!(
    threads = 2;
    the_console_signs_in_and_shows_the_store_as_the_api_does,
);

async fn the_console_signs_in_and_shows_the_store_as_the_api_does(place: Place) {
    let c = Console::start(place, "").await;

    // Signed out: every page sends the browser to sign in, and says where it was going.
    let r = c
        .http
        .get(c.url("/console/orders?outcome=pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        "/console/sign-in?next=/console/orders%3Foutcome%3Dpending"
    );
    let r = c
        .http
        .post(c.url("/console/sign-in"))
        .form(&[("key", "not-a-key-0000000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not one of this deployment"));

    // The cookie: HttpOnly, SameSite=Strict, scoped to the console; Secure only over TLS.
    let (cookie, set) = c.sign_in(KEY, false).await;
    assert!(
        set.contains("HttpOnly")
            && set.contains("SameSite=Strict")
            && set.contains("Path=/console"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
    assert!(!set.contains(KEY), "the cookie holds no key");
    let (_, tls_set) = c.sign_in(KEY, true).await;
    assert!(tls_set.contains("; Secure"), "{tls_set}");

    // 60 declined orders, one with a hostile name, one whose name a spreadsheet would run.
    for i in 0..60 {
        let name = match i {
            7 => "<script>alert(1)</script>",
            8 => "=HYPERLINK(\"http://x\")",
            _ => "Cure",
        };
        let (s, out) = c
            .api_post(
                "/v1/orders",
                &declined(
                    &format!("o-{i:02}"),
                    name,
                    &format!("c{i}@example.com"),
                    1000 + i,
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{out}");
    }
    c.settle().await;

    // The overview: the figures are the summary API's, with the security headers.
    let (s, h, html) = c.page(&cookie, "/console/").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h[CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(h[X_FRAME_OPTIONS], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let api = c.api_get("/v1/salvage/summary?window=24h").await;
    assert_eq!(api["declines_seen"], 60, "{api}");
    assert_eq!(api["not_sent"], 60, "{api}");
    assert_eq!(figure(&html, "declines_seen"), "60");
    assert_eq!(figure(&html, "sent"), api["sent"].to_string());
    assert!(html.contains("<svg class=\"chart\""));
    // The funnel kept by deltas equals the funnel rebuilt from the log.
    let month = c.api_get("/v1/salvage/summary?window=30d").await;
    salvage_gateway::store::projection::rebuild(&c.running.state.store.backend)
        .await
        .unwrap();
    assert_eq!(c.api_get("/v1/salvage/summary?window=30d").await, month);
    let r = c
        .http
        .get(c.url("/v1/salvage/summary?window=1y"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Orders: 50 per page by keyset, the next page continues with no overlap.
    let (_, _, first) = c
        .page(&cookie, "/console/orders?outcome=not_sent&sort=amount_desc")
        .await;
    let page1 = order_rows(&first);
    assert_eq!(page1.len(), 50);
    assert_eq!(page1[0], "o-59", "highest amount first");
    let next = first
        .split("rel=\"next\"")
        .next()
        .and_then(|s| s.rsplit("href=\"").next())
        .map(|s| s.split('"').next().unwrap().replace("&amp;", "&"))
        .expect("a next link");
    let (_, _, second) = c.page(&cookie, &next).await;
    let page2 = order_rows(&second);
    assert_eq!(page2.len(), 10, "{next}");
    let all: BTreeSet<_> = page1.iter().chain(&page2).collect();
    assert_eq!(all.len(), 60);
    assert!(!second.contains("rel=\"next\""));

    // A hostile name is text, everywhere.
    let (_, _, found) = c.page(&cookie, "/console/orders?q=C7%40EXAMPLE.com").await;
    assert_eq!(order_rows(&found), vec!["o-07"]);
    assert!(found.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!found.contains("<script>"));
    let (_, _, detail) = c.page(&cookie, "/console/orders/o-07").await;
    assert!(!detail.contains("<script>"));
    assert!(detail.contains("OrderPlaced") && detail.contains("AttemptDeclined"));
    assert!(
        detail.contains("411111") && !detail.contains("tok_test"),
        "card: BIN and last four only"
    );

    // A bad filter says what is wrong.
    let (s, _, bad) = c
        .page(&cookie, "/console/orders?outcome=won&from=yesterday")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(bad.contains("unknown outcome") && bad.contains("not a date"));

    // CSV: every order the filter shows (all pages), defused and quoted.
    let (s, h, csv) = c
        .page(&cookie, "/console/orders.csv?outcome=not_sent")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 61, "header and 60 orders");
    assert!(lines[0].starts_with("order_id,order_type,status,placed_at"));
    let o08 = lines.iter().find(|l| l.starts_with("o-08,")).unwrap();
    assert!(
        o08.contains("\"'=HYPERLINK(\"\"http://x\"\") Tester\""),
        "{o08}"
    );
    let o59 = lines.iter().find(|l| l.starts_with("o-59,")).unwrap();
    assert!(o59.contains(",1059,10.59,USD,none,,not_sent,"), "{o59}");

    // A refused delivery is in the inbox with its reason.
    let r = c
        .http
        .post(c.url("/webhooks/flexfactor"))
        .header("content-type", "application/json")
        .body("{\"event\":\"order.approved\"}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    let (_, _, inbox) = c.page(&cookie, "/console/inbox").await;
    assert!(inbox.contains("data-reason=\"missing_header\""), "{inbox}");

    // Health names the store.
    let (_, _, health) = c.page(&cookie, "/console/health").await;
    assert!(health.contains("data-checkpoint=\"projections\""));
    assert!(figure(&health, "store") == "sqlite" || figure(&health, "store") == "postgres");

    c.stop().await;
}

#[derive(Default)]
struct Receiver {
    up: AtomicBool,
    delivered: std::sync::Mutex<Vec<Value>>,
}

async fn receiver(r: Arc<Receiver>) -> String {
    let app = Router::new().route(
        "/notify",
        post(move |body: String| {
            let r = r.clone();
            async move {
                if !r.up.load(Ordering::SeqCst) {
                    return AxStatus::SERVICE_UNAVAILABLE;
                }
                r.delivered
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                AxStatus::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/notify")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_needs_an_operator_and_the_sessions_csrf_token_and_goes_through_the_outbox() {
    let crm = Arc::new(Receiver::default());
    let url = receiver(crm.clone()).await;
    let c = Console::start(
        Place::new_sqlite(),
        &format!("[notifications]\nurl = \"{url}\"\nsecret = \"notify-secret-0123456789\"\n"),
    )
    .await;
    // An approved sale: the CRM is told to fulfil it (order_completed).
    let mut approved = declined("o-n", "Cure", "n@example.com", 1999);
    approved["attempt"]["result"] = json!("approved");
    let (s, out) = c.api_post("/v1/orders", &approved).await;
    assert_eq!(s, StatusCode::CREATED, "{out}");
    c.settle().await;

    // The CRM is down: the notification waits in the outbox with its error.
    let (cookie, _) = c.sign_in(KEY, false).await;
    let (_, _, page) = c.page(&cookie, "/console/outbox").await;
    let key = page
        .split("data-key=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a pending notification")
        .to_string();
    assert!(page.contains("CRM notification"), "{page}");
    assert!(page.contains("503"), "the last error is shown: {page}");
    assert!(crm.delivered.lock().unwrap().is_empty());
    let token = csrf(&page);

    // Without the session's token: refused, nothing done.
    let r = c
        .form(
            &cookie,
            "/console/outbox/retry",
            &[("csrf", "forged"), ("key", &key)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A token from another session: refused.
    c.clock.advance(Duration::seconds(5));
    let (other, _) = c.sign_in(KEY, false).await;
    assert_ne!(other, cookie);
    let r = c
        .form(
            &other,
            "/console/outbox/retry",
            &[("csrf", &token), ("key", &key)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A read-only key sees the row but no button, and cannot retry even with its own token.
    let (ro, _) = c.sign_in(READ_ONLY, false).await;
    let (_, _, ro_page) = c.page(&ro, "/console/outbox").await;
    assert!(ro_page.contains(&key));
    assert!(!ro_page.contains("Retry now"));
    let ro_token = csrf(&ro_page);
    let r = c
        .form(
            &ro,
            "/console/outbox/retry",
            &[("csrf", &ro_token), ("key", &key)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("read-only"));
    // Nor through the API.
    let r = c
        .http
        .post(c.url("/v1/orders"))
        .bearer_auth(READ_ONLY)
        .json(&declined("o-ro", "Cure", "ro@example.com", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .http
        .get(c.url("/v1/orders/o-n"))
        .bearer_auth(READ_ONLY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The CRM is back; the operator retries now: the row is due at once and delivered by the
    // worker, without waiting for its back-off.
    crm.up.store(true, Ordering::SeqCst);
    let r = c
        .form(
            &cookie,
            "/console/outbox/retry",
            &[("csrf", &token), ("key", &key)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(to.ends_with("result=due"), "{to}");
    c.settle().await;
    assert_eq!(crm.delivered.lock().unwrap().len(), 1, "delivered once");
    let (_, _, after) = c.page(&cookie, &to).await;
    assert!(after.contains("is due now"));
    assert!(
        !after.contains(&format!("data-key=\"{key}\"")),
        "no longer pending"
    );
    // Asking again: it is done, nothing happens.
    let r = c
        .form(
            &cookie,
            "/console/outbox/retry",
            &[("csrf", &token), ("key", &key)],
        )
        .await;
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .ends_with("result=done"));
    c.settle().await;
    assert_eq!(crm.delivered.lock().unwrap().len(), 1);

    // Signing out needs the token too.
    let r = c
        .form(&cookie, "/console/sign-out", &[("csrf", "nope")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .form(&cookie, "/console/sign-out", &[("csrf", &token)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_at_its_expiry() {
    let c = Console::start(Place::new_sqlite(), "").await;
    let (cookie, set) = c.sign_in(KEY, false).await;
    assert!(set.contains("Max-Age=1800"), "{set}");
    let (s, _, _) = c.page(&cookie, "/console/health").await;
    assert_eq!(s, StatusCode::OK);
    c.clock.advance(Duration::minutes(29));
    assert_eq!(c.page(&cookie, "/console/health").await.0, StatusCode::OK);
    c.clock.advance(Duration::minutes(2));
    let (s, h, _) = c.page(&cookie, "/console/health").await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h[LOCATION], "/console/sign-in?next=/console/health");
    // A tampered cookie is no session either.
    let tampered = cookie.replace("operator", "read-only");
    assert_eq!(
        c.page(&tampered, "/console/").await.0,
        StatusCode::SEE_OTHER
    );
    c.stop().await;
}
