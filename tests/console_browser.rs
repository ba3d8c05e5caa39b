//! The operator console in a real browser: headless Chromium driven over WebDriver (fantoccini
//! talking to a chromedriver this test starts), against a Salvage service started in-process
//! over a temporary SQLite store, with the fake FlexFactor as its upstream and a CRM
//! notification receiver that fails until it is switched up.
//!
//! The store is seeded through the API: sales that cascade to FlexFactor and are recovered or
//! declined by the sandbox test cards, a rerun still pending, declined sales never sent (enough
//! for two pages), a customer named `<script>alert(1)</script>`, refused webhook deliveries and
//! one parked for an unknown order, and CRM notifications failing in the outbox.
//!
//! Each test signs in through the form and saves a screenshot under
//! `target/console-screenshots/<name>.png` (the overview also at 1366 px and at a phone's 390 px).
//! The same pages over plain HTTP: `gateway-adapter/tests/console_http.rs`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them when missing); without
//! chromedriver every test here fails and says so. `CHROMEDRIVER` and `CHROME_BIN` point at other
//! binaries.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use salvage_domain::{Clock, ManualClock};
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use salvage_sim::fake_flexfactor::{ClockMode, FakeConfig, FakeFlexFactor, RunningFake};
use secrecy::SecretString;
use serde_json::{json, Value};

const SAMPLE: &str = include_str!("../examples/salvage.toml");
const KEY: &str = "browser-operator-key-0123456789";
const READ_ONLY: &str = "browser-support-read-only-0123456789";
/// The sample setup's webhook key (FlexFactor signs its deliveries with it).
const HMAC: &str =
    "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";
/// Another key: deliveries signed with it are refused (bad signature).
const WRONG_HMAC: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";
/// Sandbox test cards: FlexFactor approves the first and declines the second.
const APPROVED_CARD: &str = "4111111111111111";
const DECLINED_CARD: &str = "4000300011112220";
const HOSTILE: &str = "<script>alert(1)</script>";
/// Declined sales never sent to FlexFactor: more than one page of 50.
const NOT_SENT: usize = 60;
/// How long a browser step may wait for a page.
const WAIT: StdDuration = StdDuration::from_secs(15);

/// At most two tests run at once (each a service, a fake FlexFactor and a Chromium): six
/// browsers starting together overwhelm a small CI machine. A test holds a permit throughout.
static AT_ONCE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

async fn turn() -> tokio::sync::SemaphorePermit<'static> {
    AT_ONCE
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

// ------------------------------------------------------------------------------------ paths

/// The target directory: `CARGO_TARGET_DIR` (relative to the workspace), else `target/`.
fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR").or(option_env!("CARGO_TARGET_DIR").map(Into::into)) {
        Some(d) => root.join(d),
        None => root.join("target"),
    }
}

fn screenshot_dir() -> PathBuf {
    let dir = target_dir().join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/console-screenshots");
    dir
}

fn unique_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "salvage-browser-{name}-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

// ------------------------------------------------------------------------------ chromedriver

fn chromedriver_path() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMEDRIVER") {
        return PathBuf::from(p);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("chromedriver"));
    let known = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .map(PathBuf::from);
    on_path
        .chain(known)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
            "chromedriver was not found (not on PATH, not /usr/bin/chromedriver, no CHROMEDRIVER): \
             the console's browser tests run in real headless Chromium. Install chromium and \
             chromium-driver: `apt-get update && apt-get install -y chromium chromium-driver` \
             (.ci/run does this when chromedriver is missing)."
        )
        })
}

fn chromium_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROME_BIN") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A chromedriver this test started, with the browser's profile in a directory of its own.
/// Dropping it (also when the test panics) ends the browser session if it is still open (a
/// plain `DELETE /session/{id}` to chromedriver, which quits its Chromium), then chromedriver
/// itself, and removes the profile. No signal is sent to anything but the chromedriver this
/// test started.
struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
    /// The browser session, once there is one.
    session: Option<String>,
    /// The session was closed by the test (Chromium has quit).
    closed: bool,
}

impl Driver {
    fn start(name: &str) -> Driver {
        let path = chromedriver_path();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = unique_dir(name);
        let log = std::fs::File::create(dir.join("chromedriver.log")).expect("log file");
        let child = Command::new(&path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{} could not start ({e}): install chromium and chromium-driver \
                     (`apt-get install -y chromium chromium-driver`)",
                    path.display()
                )
            });
        let mut driver = Driver {
            child,
            port,
            dir,
            session: None,
            closed: false,
        };
        let deadline = Instant::now() + StdDuration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited at start ({status}): {}", driver.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on port {port} within 10 s: {}",
                driver.log()
            );
            std::thread::sleep(StdDuration::from_millis(20));
        }
        driver
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default()
    }

    /// Asks chromedriver to end the session (it quits Chromium), synchronously: this runs in
    /// `Drop`, perhaps while a panic unwinds.
    fn end_session(&self) {
        let Some(id) = &self.session else { return };
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut s) = TcpStream::connect_timeout(&addr, StdDuration::from_secs(2)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(StdDuration::from_secs(10)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        if s.write_all(request.as_bytes()).is_ok() {
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.closed {
            self.end_session();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------- browser

/// A Chromium session on `base` (the service's URL).
struct Browser {
    client: Client,
    base: String,
    // Last: dropped after the client.
    driver: Driver,
}

impl Browser {
    async fn open(name: &str, base: &str) -> Browser {
        let mut driver = Driver::start(name);
        let mut chrome = json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1366,900", "--force-device-scale-factor=1", "--hide-scrollbars",
                "--no-first-run", "--no-default-browser-check", "--lang=en-US",
                format!("--user-data-dir={}", driver.dir.join("profile").display()),
            ]
        });
        if let Some(bin) = chromium_path() {
            chrome["binary"] = json!(bin.display().to_string());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        // An alert stays open (and is found below) instead of being dismissed unseen.
        caps.insert("unhandledPromptBehavior".into(), json!("ignore"));
        caps.insert("goog:chromeOptions".into(), chrome);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "no Chromium session ({e}); chromedriver said: {}",
                    driver.log()
                )
            });
        driver.session = client.session_id().await.ok().flatten();
        Browser {
            client,
            base: base.to_string(),
            driver,
        }
    }

    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Waits until the current path (with its query) satisfies `ok`.
    async fn wait_path(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let p = self.path().await;
            if ok(&p) {
                return p;
            }
            assert!(Instant::now() < deadline, "{what}: still at {p}");
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
    }

    /// Waits for an element matching `css`.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!("no {css} on {}: {e}", self.path_now().await),
        }
    }

    async fn path_now(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    async fn all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
    }

    async fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.all(css).await {
            out.push(e.attr(attr).await.expect("attr").unwrap_or_default());
        }
        out
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in self.all(css).await {
            out.push(e.text().await.expect("text"));
        }
        out
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Signs in through the form the console sends a signed-out browser to.
    async fn sign_in(&self, key: &str, going_to: &str) {
        self.goto(going_to).await;
        self.wait_path("the sign-in form", |p| p.starts_with("/console/sign-in"))
            .await;
        let next = self.find("input[name=next]").await;
        assert_eq!(
            next.prop("value").await.expect("next").as_deref(),
            Some(going_to),
            "the form remembers where the browser was going"
        );
        self.find("input#key")
            .await
            .send_keys(key)
            .await
            .expect("type the key");
        self.click("main.sign-in button[type=submit]").await;
        self.wait_path("signed in", |p| p == going_to).await;
        let cookies = self.client.get_all_cookies().await.expect("cookies");
        let session = cookies
            .iter()
            .find(|c| c.name() == "salvage_console")
            .expect("a session cookie");
        assert_eq!(session.http_only(), Some(true));
        assert!(!session.value().contains(key), "the cookie holds no key");
    }

    /// Resizes the window to `width` and the page's height (at most 1600 px of page), so the
    /// screenshot holds the whole page. (The window is taller than its viewport by the
    /// browser's frame, even headless.)
    async fn fit(&self, width: u32) {
        self.client
            .set_window_size(width, 900)
            .await
            .expect("resize");
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight]",
                vec![],
            )
            .await
            .expect("page height");
        let page = v[0].as_u64().unwrap_or(900).clamp(300, 1600);
        let frame = v[1].as_u64().unwrap_or(0).min(400);
        self.client
            .set_window_size(width, (page + frame) as u32)
            .await
            .expect("resize");
    }

    /// The page's layout width and the viewport's (a page wider than its viewport scrolls
    /// sideways as a whole: broken on a phone).
    async fn widths(&self) -> (u64, u64) {
        let v = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth]",
                vec![],
            )
            .await
            .expect("widths");
        (
            v[0].as_u64().unwrap_or(0),
            v[1].as_u64().unwrap_or(u64::MAX),
        )
    }

    /// Saves a screenshot as `target/console-screenshots/{name}.png`.
    async fn shot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = screenshot_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write the screenshot");
        path
    }

    /// No alert is open (a script that ran would have opened one).
    async fn no_alert(&self) {
        if let Ok(text) = self.client.get_alert_text().await {
            panic!("an alert opened ({text:?}): a script ran");
        }
    }

    async fn close(self) {
        let Browser {
            client, mut driver, ..
        } = self;
        driver.closed = client.close().await.is_ok();
        drop(driver);
    }
}

// ---------------------------------------------------------------------------- CRM receiver

/// A CRM notification receiver: `503` while down, `200` (keeping the body) once switched up.
struct Crm {
    up: Arc<AtomicBool>,
    delivered: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<usize>>,
    url: String,
}

impl Crm {
    fn start() -> Crm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the CRM receiver");
        let url = format!(
            "http://{}/notify",
            listener.local_addr().expect("CRM address")
        );
        let crm = Crm {
            up: Arc::new(AtomicBool::new(false)),
            delivered: Arc::default(),
            refused: Arc::default(),
            url,
        };
        let (up, delivered, refused) = (crm.up.clone(), crm.delivered.clone(), crm.refused.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (up, delivered, refused) = (up.clone(), delivered.clone(), refused.clone());
                std::thread::spawn(move || serve_crm(stream, &up, &delivered, &refused));
            }
        });
        crm
    }

    fn delivered(&self) -> Vec<Value> {
        self.delivered.lock().expect("lock").clone()
    }
}

/// Answers the requests of one connection (HTTP/1.1, bodies by Content-Length).
fn serve_crm(
    mut s: TcpStream,
    up: &AtomicBool,
    delivered: &Mutex<Vec<Value>>,
    refused: &Mutex<usize>,
) {
    let _ = s.set_read_timeout(Some(StdDuration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + length {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buf.drain(..end + 4 + length).skip(end + 4).collect();
        let answer = if up.load(Ordering::SeqCst) {
            delivered
                .lock()
                .expect("lock")
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        } else {
            *refused.lock().expect("lock") += 1;
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n"
        };
        if s.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

// ------------------------------------------------------------------------------ the world

/// The service over a temporary SQLite store with the fake FlexFactor and the CRM receiver, on
/// one manual clock.
struct World {
    svc: RunningService,
    fake: RunningFake,
    clock: Arc<ManualClock>,
    http: reqwest::Client,
    crm: Crm,
    dir: PathBuf,
}

impl World {
    async fn start(name: &str) -> World {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let mut fake_config = FakeConfig::sandbox_defaults();
        fake_config.clock = ClockMode::Shared(clock.clone());
        fake_config.auto_deliver = None;
        let fake = FakeFlexFactor::start(fake_config)
            .await
            .expect("fake FlexFactor");
        let crm = Crm::start();
        let dir = unique_dir(name);
        let text = format!(
            "{SAMPLE}\n[notifications]\nurl = \"{}\"\nsecret = \"notify-secret-0123456789\"\n\
             [service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"sqlite://{}\"\n\
             api_keys = [\"{KEY}\"]\nread_only_api_keys = [\"{READ_ONLY}\"]\n\
             console_session_minutes = 60\n[flexfactor]\nbase_url = \"{}\"\n",
            crm.url,
            dir.join("salvage.db").display(),
            fake.base_url()
        );
        let config =
            ServiceConfig::from_str(&text, Path::new("browser.toml"), &|_| None).expect("config");
        let mut options = ServeOptions::new(clock.clone());
        options.sandbox_charges = true;
        let svc = start(config, options).await.expect("service");
        fake.set_webhook_url(Some(&format!("{}/webhooks/flexfactor", svc.url())))
            .expect("webhook url");
        World {
            svc,
            fake,
            clock,
            http: reqwest::Client::new(),
            crm,
            dir,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.svc.url()))
            .bearer_auth(KEY)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let out: Value = r.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "POST {path}: {status} {out}");
        out
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.svc.url()))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("GET");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("JSON")
    }

    /// Runs the background work and the fake's deliveries until nothing is due now.
    async fn settle(&self) {
        let deadline = Instant::now() + StdDuration::from_secs(20);
        loop {
            self.svc.state.drive().await.expect("drive");
            let report = self.fake.deliver_due().await;
            let now = self.clock.now().timestamp_millis();
            let stats = salvage_gateway::store::outbox::stats(&self.svc.state.store.backend, now)
                .await
                .expect("outbox stats");
            if stats.due == 0 && report.sent == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "the service did not settle");
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    }

    /// A FlexFactor delivery for `order`, signed with `key`, dated `age` ago.
    async fn deliver(&self, key: &str, order: &str, nonce: &str, age: Duration) -> u16 {
        let body = format!(
            r#"{{"Event":"order.completed","TimeStamp":"2026-03-20T17:16:40Z","EventData":null,"ExternalOrderId":"{order}","OrderId":"ff-{order}","ConfirmationId":"X1","IsTestMode":true,"IsResent":false}}"#
        );
        let key = WebhookKey::from_base64(&SecretString::from(key)).expect("webhook key");
        let signed = sign_webhook(
            &key,
            &self.svc.addr.to_string(),
            nonce,
            &format_fc_date(self.clock.now() - age),
            body.as_bytes(),
        );
        let mut req = self
            .http
            .post(format!("{}/webhooks/flexfactor", self.svc.url()))
            .body(body);
        for (k, v) in signed.pairs() {
            req = req.header(k, v);
        }
        req.send().await.expect("deliver").status().as_u16()
    }

    /// The seeded store (see the module's documentation).
    async fn seed(&self) {
        for i in 0..3 {
            let out = self
                .post(
                    "/v1/orders",
                    &sale(
                        &format!("o-ok-{i}"),
                        "nmi-main",
                        APPROVED_CARD,
                        1999 + i,
                        "Ada",
                    ),
                )
                .await;
            assert_eq!(out["status"], "complete", "recovered by the cascade: {out}");
        }
        for i in 0..2 {
            let out = self
                .post(
                    "/v1/orders",
                    &sale(&format!("o-no-{i}"), "nmi-main", DECLINED_CARD, 2500, "Bo"),
                )
                .await;
            assert_eq!(out["status"], "declined", "declined by FlexFactor: {out}");
        }
        // stripe-eu does not cascade; a rerun through FlexFactor waits for its webhook.
        self.post(
            "/v1/orders",
            &sale("o-rerun", "stripe-eu", APPROVED_CARD, 4200, "Cy"),
        )
        .await;
        let out = self
            .post(
                "/v1/orders/o-rerun/rerun",
                &json!({"gateway_id": "flexfactor"}),
            )
            .await;
        assert_eq!(out["status"], "salvage_pending", "{out}");
        for i in 0..NOT_SENT {
            let name = if i == 7 { HOSTILE } else { "Dee" };
            let mut body = sale(
                &format!("o-ns-{i:02}"),
                "nmi-main",
                APPROVED_CARD,
                1000 + i as i64,
                name,
            );
            // No customer IP: the cascade keeps it from FlexFactor (C3).
            body.as_object_mut().map(|o| o.remove("ip_address"));
            body["customer"]["email"] = json!(format!("dee{i}@example.com"));
            self.post("/v1/orders", &body).await;
        }
        // Refused deliveries: unsigned, signed with another key, an hour old.
        let r = self
            .http
            .post(format!("{}/webhooks/flexfactor", self.svc.url()))
            .header("content-type", "application/json")
            .body(r#"{"Event":"order.approved"}"#)
            .send()
            .await
            .expect("unsigned delivery");
        assert!(r.status().is_client_error());
        let s = self
            .deliver(WRONG_HMAC, "o-ok-0", "nonce-wrong-key", Duration::zero())
            .await;
        assert!((400..500).contains(&s), "{s}");
        let s = self
            .deliver(HMAC, "o-ok-0", "nonce-stale", Duration::hours(1))
            .await;
        assert!((400..500).contains(&s), "{s}");
        // A genuine delivery for an order Salvage does not know: parked (W4).
        let s = self
            .deliver(HMAC, "o-unknown", "nonce-unknown", Duration::zero())
            .await;
        assert!((200..300).contains(&s), "{s}");
        self.settle().await;
    }

    async fn stop(self) {
        self.svc.shutdown().await.expect("shutdown");
        self.fake.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn sale(id: &str, gateway: &str, card: &str, amount: i64, first_name: &str) -> Value {
    let mut body = json!({
        "order_id": id, "order_type": "new_sale", "campaign_id": "skincare", "ip_address": "203.0.113.7",
        "amount_minor": amount, "currency": "USD",
        "customer": {"first_name": first_name, "last_name": "Tester", "email": format!("{id}@example.com"),
                     "billing_address": {"line1": "1 Street", "city": "Ottawa", "zip": "K1C2N6", "country": "CA"}},
        "card": {"number": card, "cvv": "123", "exp_month": 9, "exp_year": 2030, "holder": "Cure Tester"},
        "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": amount}],
        "attempt": {"gateway_id": gateway, "result": "declined", "response_code": "91",
                    "response_message": "Issuer unavailable", "decline_type": "soft"}
    });
    if gateway == "nmi-main" {
        // Through the ATRI profile whose cascade goes to FlexFactor (C1).
        body["attempt"]["gateway_profile_id"] = json!("atri-us");
    }
    body
}

/// A figure as the console writes it (`1,234`, `12.5%`) as a number.
fn number(text: &str) -> i64 {
    text.replace(',', "")
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a count: {text:?}"))
}

// ---------------------------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_the_summary_apis_numbers_at_1366_px_and_on_a_phone() {
    let _turn = turn().await;
    let w = World::start("overview").await;
    w.seed().await;
    let b = Browser::open("overview", &w.svc.url()).await;

    // A wrong key is refused in the form, with a message.
    b.goto("/console/sign-in").await;
    b.find("input#key").await;
    b.shot("sign-in").await;
    b.find("input#key")
        .await
        .send_keys("not-a-key-0000000000")
        .await
        .expect("type");
    b.click("main.sign-in button[type=submit]").await;
    assert!(b
        .text("p.error")
        .await
        .contains("not one of this deployment"));

    b.sign_in(KEY, "/console/").await;
    for window in ["24h", "7d"] {
        if window != "24h" {
            b.click(&format!("nav.tabs a[href='/console/?window={window}']"))
                .await;
            b.wait_path("the 7 d tab", |p| p.ends_with("window=7d"))
                .await;
        }
        let api = w.get(&format!("/v1/salvage/summary?window={window}")).await;
        for (figure, field) in [
            ("declines_seen", "declines_seen"),
            ("sent", "sent"),
            ("recovered", "recovered"),
            ("failed", "failed"),
            ("expired", "expired"),
            ("pending", "pending"),
        ] {
            let shown = number(&b.text(&format!("[data-figure={figure}]")).await);
            assert_eq!(Some(shown), api[field].as_i64(), "{window} {figure}: {api}");
        }
        assert_eq!(api["declines_seen"], 66, "{api}");
        assert_eq!(api["not_sent"], NOT_SENT, "{api}");
        assert_eq!(api["recovered"], 3, "{api}");
        assert_eq!(api["failed"], 2, "{api}");
        assert_eq!(api["pending"], 1, "{api}");
        // The table by route: the same numbers.
        for route in api["by_route"].as_array().expect("by_route") {
            let css = match route["slot"].as_str() {
                Some(slot) => format!("#by-route tr[data-route=recycle][data-slot='{slot}'] td"),
                None => format!(
                    "#by-route tr[data-route={}][data-slot=''] td",
                    route["route"].as_str().unwrap_or("")
                ),
            };
            let cells: Vec<i64> = b.texts(&css).await[..5].iter().map(|t| number(t)).collect();
            let want: Vec<i64> = ["sent", "recovered", "failed", "expired", "pending"]
                .iter()
                .map(|k| route[*k].as_i64().unwrap_or(-1))
                .collect();
            assert_eq!(cells, want, "{css}");
        }
        // Recovered revenue: 19.99 + 20.00 + 20.01 USD.
        let usd = b.find("#revenue tr[data-currency=USD] td").await;
        assert_eq!(
            usd.attr("data-minor").await.expect("attr").as_deref(),
            Some("6000")
        );
        assert_eq!(usd.text().await.expect("text"), "60.00 USD");
        assert_eq!(api["recovered_revenue"][0]["amount_minor"], 6000);
    }
    // The chart is drawn by the server: an inline SVG, no script on the page.
    b.find("svg.chart").await;
    assert!(b.all("script").await.is_empty());

    // 1366 px: the layout's width; the page does not scroll sideways.
    b.goto("/console/").await;
    b.fit(1366).await;
    let (page, view) = b.widths().await;
    assert!(
        page <= view,
        "1366 px: the page is {page} px wide in {view}"
    );
    b.shot("overview-1366").await;
    // A phone: everything still fits its width (wide tables scroll inside their box).
    b.fit(390).await;
    let (page, view) = b.widths().await;
    assert!(view <= 420, "the window did not narrow: {view}");
    assert!(page <= view, "390 px: the page is {page} px wide in {view}");
    b.shot("overview-390").await;
    b.goto("/console/orders").await;
    b.fit(390).await;
    let (page, view) = b.widths().await;
    assert!(page <= view, "orders on a phone: {page} px wide in {view}");
    b.shot("orders-390").await;

    // Health names the store and the caught-up workers.
    b.client.set_window_size(1366, 900).await.expect("resize");
    b.goto("/console/health").await;
    assert_eq!(b.text("[data-figure=store]").await, "sqlite");
    b.find("tr[data-checkpoint=projections]").await;
    b.fit(1366).await;
    b.shot("health").await;
    b.goto("/console/").await;
    b.fit(1366).await;
    b.shot("the_overview_shows_the_summary_apis_numbers").await;
    b.close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_filter_page_and_open_a_timeline() {
    let _turn = turn().await;
    let w = World::start("orders").await;
    w.seed().await;
    let b = Browser::open("orders", &w.svc.url()).await;
    b.sign_in(KEY, "/console/orders").await;
    assert_eq!(b.all("#orders tbody tr[data-order]").await.len(), 50);

    // Filter: not sent, highest amount first, through the form.
    b.find("form.filters select[name=outcome]")
        .await
        .select_by_value("not_sent")
        .await
        .expect("select outcome");
    b.find("form.filters select[name=sort]")
        .await
        .select_by_value("amount_desc")
        .await
        .expect("select sort");
    b.click("form.filters button[type=submit]").await;
    b.wait_path("the filtered page", |p| {
        p.contains("outcome=not_sent") && p.contains("sort=amount_desc")
    })
    .await;
    let first = b.attrs("#orders tbody tr[data-order]", "data-order").await;
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], "o-ns-59", "the highest amount first");
    let outcomes = b.texts("#orders tbody tr[data-order] .badge").await;
    assert!(outcomes.iter().all(|o| o == "not sent"), "{outcomes:?}");
    b.fit(1366).await;
    b.shot("orders").await;

    // The next page (keyset): the other 10, none twice, and no further page.
    b.click("nav.pager a[rel=next]").await;
    b.wait_path("page 2", |p| p.contains("after=")).await;
    let second = b.attrs("#orders tbody tr[data-order]", "data-order").await;
    assert_eq!(second.len(), NOT_SENT - 50, "{second:?}");
    let mut all: Vec<&String> = first.iter().chain(&second).collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), NOT_SENT);
    assert!(b.all("nav.pager a[rel=next]").await.is_empty());
    b.click("nav.pager a:first-child").await;
    b.wait_path("back to page 1", |p| !p.contains("after="))
        .await;

    // Search by e-mail, then by route: one cascade that FlexFactor recovered.
    b.goto("/console/orders").await;
    let q = b.find("form.filters input[name=q]").await;
    q.send_keys("o-ok-1@example.com").await.expect("type");
    b.click("form.filters button[type=submit]").await;
    b.wait_path("the search", |p| p.contains("q=o-ok-1")).await;
    assert_eq!(
        b.attrs("#orders tbody tr[data-order]", "data-order").await,
        vec!["o-ok-1"]
    );
    b.goto("/console/orders?route=cascade").await;
    let mut cascades = b.attrs("#orders tbody tr[data-order]", "data-order").await;
    cascades.sort();
    assert_eq!(cascades, ["o-no-0", "o-no-1", "o-ok-0", "o-ok-1", "o-ok-2"]);

    // The order's page: its state and the whole history as a timeline.
    b.click("tr[data-order=o-ok-1] td a").await;
    b.wait_path("the order", |p| p == "/console/orders/o-ok-1")
        .await;
    assert_eq!(b.text("h1").await, "Order o-ok-1");
    let state = b.text("#order-state").await;
    assert!(state.contains("20.00 USD"), "{state}");
    assert!(state.contains("411111"), "BIN and last four: {state}");
    assert!(!state.contains(APPROVED_CARD), "never the card number");
    let types = b.attrs("#timeline li[data-kind=event]", "data-type").await;
    for t in ["OrderPlaced", "AttemptDeclined", "SalvageSucceeded"] {
        assert!(types.iter().any(|x| x == t), "{t} in {types:?}");
    }
    assert!(
        !b.all("#timeline li[data-kind=webhook]").await.is_empty(),
        "FlexFactor's webhook is in the timeline"
    );
    let outbox = b.texts("#timeline li[data-kind=outbox]").await;
    assert!(
        outbox.iter().any(|o| o.contains("CRM notification")),
        "the CRM notification and its attempts: {outbox:?}"
    );
    b.fit(1366).await;
    b.shot("order-detail").await;
    b.shot("orders_filter_page_and_open_a_timeline").await;
    b.close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_webhooks_are_in_the_inbox_with_their_reasons() {
    let _turn = turn().await;
    let w = World::start("inbox").await;
    w.seed().await;
    let b = Browser::open("inbox", &w.svc.url()).await;
    b.sign_in(KEY, "/console/inbox").await;
    let mut reasons = b.attrs("#refused tbody tr", "data-reason").await;
    reasons.sort();
    assert_eq!(
        reasons,
        ["bad_signature", "missing_header", "stale_timestamp"]
    );
    let shown = b
        .texts("#refused tbody tr[data-reason=bad_signature] td")
        .await;
    assert_eq!(shown[1], "bad_signature");
    assert!(shown[3].contains("nonce-wrong-key"), "{shown:?}");
    let parked = b.text("#parked tbody").await;
    assert!(parked.contains("o-unknown"), "W4: {parked}");
    b.fit(1366).await;
    b.shot("inbox").await;
    b.shot("refused_webhooks_are_in_the_inbox_with_their_reasons")
        .await;
    b.close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_retries_a_failed_notification_and_sees_it_delivered() {
    let _turn = turn().await;
    let w = World::start("retry").await;
    w.seed().await;
    assert!(*w.crm.refused.lock().expect("lock") > 0, "the CRM was down");
    assert!(w.crm.delivered().is_empty());
    let b = Browser::open("retry", &w.svc.url()).await;
    b.sign_in(KEY, "/console/outbox").await;
    assert_eq!(b.text("header.top .role").await, "operator");

    // The failing notification of o-ok-2, with its last error.
    let css = "#outbox tbody tr[data-key^='order:o-ok-2:']";
    let rows = b.texts(css).await;
    let row = rows
        .iter()
        .find(|r| r.contains("CRM notification"))
        .unwrap_or_else(|| panic!("o-ok-2's notification in the outbox: {rows:?}"));
    assert!(row.contains("503"), "the last error: {row}");
    let mut key = String::new();
    for tr in b.all(css).await {
        if tr.text().await.expect("text").contains("CRM notification") {
            key = tr.attr("data-key").await.expect("attr").unwrap_or_default();
        }
    }
    b.fit(1366).await;
    b.shot("outbox").await;

    // The CRM is back; the operator presses "Retry now" on that row.
    w.crm.up.store(true, Ordering::SeqCst);
    b.click(&format!("#outbox tr[data-key='{key}'] button[type=submit]"))
        .await;
    b.wait_path("back on the outbox", |p| p.contains("result=due"))
        .await;
    assert!(b.text("#notice").await.contains("is due now"));
    // The worker delivers it (woken by the retry; driven here too), and only it.
    let deadline = Instant::now() + WAIT;
    while w.crm.delivered().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the retried notification was not delivered"
        );
        w.svc.state.drive().await.expect("drive");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    w.settle().await;
    let delivered = w.crm.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert!(delivered[0].to_string().contains("o-ok-2"), "{delivered:?}");
    b.goto("/console/outbox").await;
    assert!(
        b.all(&format!("#outbox tr[data-key='{key}']"))
            .await
            .is_empty(),
        "no longer pending"
    );
    // The order's timeline shows it done.
    b.goto("/console/orders/o-ok-2").await;
    let outbox = b.texts("#timeline li[data-kind=outbox]").await;
    assert!(
        outbox
            .iter()
            .any(|o| o.contains("CRM notification") && o.contains("done")),
        "{outbox:?}"
    );
    b.fit(1366).await;
    b.shot("an_operator_retries_a_failed_notification_and_sees_it_delivered")
        .await;
    b.close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_key_sees_no_retry_button_and_a_forged_post_is_refused() {
    let _turn = turn().await;
    let w = World::start("read-only").await;
    w.seed().await;
    let b = Browser::open("read-only", &w.svc.url()).await;
    b.sign_in(READ_ONLY, "/console/outbox").await;
    assert_eq!(b.text("header.top .role").await, "read-only");
    let keys = b.attrs("#outbox tbody tr[data-key]", "data-key").await;
    assert!(!keys.is_empty(), "the read-only key sees the outbox");
    assert!(
        b.all("#outbox button").await.is_empty(),
        "no retry button for a read-only key"
    );
    assert!(b.text("main").await.contains("signed in read-only"));
    b.fit(1366).await;
    b.shot("outbox-read-only").await;

    // A forged form: the retry POST the page does not offer, sent from this very session with
    // its own CSRF token (the sign-out form's). Refused, nothing done.
    let token = b
        .find("form[action='/console/sign-out'] input[name=csrf]")
        .await
        .prop("value")
        .await
        .expect("csrf")
        .unwrap_or_default();
    assert!(!token.is_empty());
    let forge = "const [token, key] = arguments; const f = document.createElement('form'); \
                 f.method = 'post'; f.action = '/console/outbox/retry'; \
                 for (const [n, v] of [['csrf', token], ['key', key]]) { \
                   const i = document.createElement('input'); i.type = 'hidden'; i.name = n; \
                   i.value = v; f.appendChild(i); } \
                 document.body.appendChild(f); f.submit();";
    w.crm.up.store(true, Ordering::SeqCst);
    b.client
        .execute(forge, vec![json!(token), json!(keys[0])])
        .await
        .expect("forge a form");
    b.wait_path("the forged POST", |p| p == "/console/outbox/retry")
        .await;
    assert_eq!(b.text("h1").await, "Read-only access");
    b.shot("a_read_only_key_sees_no_retry_button_and_a_forged_post_is_refused")
        .await;
    // And a forged token is refused before the role is even asked.
    b.goto("/console/outbox").await;
    b.client
        .execute(forge, vec![json!("forged"), json!(keys[0])])
        .await
        .expect("forge a form");
    b.wait_path("the forged POST", |p| p == "/console/outbox/retry")
        .await;
    assert_eq!(b.text("h1").await, "This form has expired");
    // Nothing was retried: every row is still pending and waiting, nothing delivered.
    w.settle().await;
    assert!(w.crm.delivered().is_empty(), "{:?}", w.crm.delivered());
    b.goto("/console/outbox").await;
    assert_eq!(
        b.attrs("#outbox tbody tr[data-key]", "data-key").await,
        keys
    );
    b.close().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_customer_name_stays_text() {
    let _turn = turn().await;
    let w = World::start("hostile").await;
    w.seed().await;
    let b = Browser::open("hostile", &w.svc.url()).await;
    b.sign_in(KEY, "/console/orders").await;
    let q = b.find("form.filters input[name=q]").await;
    q.send_keys("dee7@example.com").await.expect("type");
    b.click("form.filters button[type=submit]").await;
    b.wait_path("the search", |p| p.contains("q=dee7")).await;
    assert_eq!(
        b.attrs("#orders tbody tr[data-order]", "data-order").await,
        vec!["o-ns-07"]
    );
    b.no_alert().await;
    let customer = b.text("tr[data-order=o-ns-07] td:nth-child(3)").await;
    assert!(
        customer.contains("<script>alert(1)</script> Tester"),
        "the name is shown as typed: {customer:?}"
    );
    assert!(b.all("script").await.is_empty(), "no script element");
    b.fit(1366).await;
    b.shot("a_hostile_customer_name_stays_text").await;
    b.click("tr[data-order=o-ns-07] td a").await;
    b.wait_path("the order", |p| p == "/console/orders/o-ns-07")
        .await;
    b.no_alert().await;
    assert!(b.text("#order-state").await.contains(HOSTILE));
    assert!(b.all("script").await.is_empty(), "no script element");
    b.close().await;
    w.stop().await;
}
