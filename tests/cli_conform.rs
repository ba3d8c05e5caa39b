//! `salvage conform`, run as a user would: its help; the in-process scenario suite filtered by
//! rule, with JUnit XML and Markdown reports; refusals of bad options and unreachable targets;
//! a run against a deployment in test mode (the embedded default of `salvage serve`), where
//! each scenario runs in its own sandbox and none is skipped; and against one not in test
//! mode, where scenarios needing another setup or a driven clock are skipped.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn salvage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_salvage"))
}

/// Kills the child when the test ends, passed or failed.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("salvage-conform-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn help_lists_the_options() {
    let out = salvage().args(["conform", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--target",
        "--flexfactor",
        "--api-key",
        "--junit",
        "--markdown",
        "--only",
        "--setup",
        "--scenarios",
        "--notify-listen",
    ] {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }
    let top = salvage().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains("conform"));
}

#[test]
fn in_process_run_of_some_rules_writes_junit_and_markdown() {
    let dir = temp_dir("in-process");
    let junit = dir.join("out/junit.xml");
    let markdown = dir.join("out/report.md");
    let out = salvage()
        .args(["conform", "--only", "C3,R1", "--junit"])
        .arg(&junit)
        .arg("--markdown")
        .arg(&markdown)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("C3    passed"), "{stdout}");
    assert!(stdout.contains("R1    passed"), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.starts_with("<?xml") && xml.contains("<testcase") && xml.contains("[C3"),
        "{xml}"
    );
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("| C3 | ✅ passed"), "{md}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_options_and_unreachable_targets_are_refused() {
    let out = salvage()
        .args(["conform", "--only", "Z9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a rule ID"));

    let out = salvage()
        .args(["conform", "--target", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "--target needs --flexfactor");

    let out = salvage()
        .args([
            "conform",
            "--target",
            "http://127.0.0.1:9",
            "--flexfactor",
            "http://127.0.0.1:9/v1",
            "--only",
            "W1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach the service"), "{err}");

    let dir = temp_dir("bad-scenarios");
    std::fs::write(
        dir.join("x.toml"),
        "[[scenario]]\nid = \"x\"\nrules = [\"C1\"]\n",
    )
    .unwrap();
    let out = salvage()
        .args(["conform", "--scenarios"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("x.toml") && err.contains("when"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Spawns `salvage serve ARGS` in `dir`; its stdout lines arrive on the receiver.
fn spawn_serve(
    dir: &PathBuf,
    args: &[&std::ffi::OsStr],
) -> (Killed, std::sync::mpsc::Receiver<String>) {
    let mut child = Killed(
        salvage()
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Keep reading to the end: a closed pipe would make the service's next log line fail.
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Starts `salvage serve` (embedded sandbox) in `dir`: (the service URL, the fake's /v1 URL).
fn start_sandbox(dir: &PathBuf) -> (Killed, String, String) {
    let (child, rx) = spawn_serve(dir, &["--listen".as_ref(), "127.0.0.1:0".as_ref()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut service, mut fake) = (None, None);
    while service.is_none() || fake.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("salvage serve did not print its URLs"));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .map(str::to_string);
        if line.contains("Salvage sandbox listening on") {
            service = url;
        } else if line.contains("in-process fake at") {
            fake = url;
        }
    }
    (child, service.unwrap(), fake.unwrap())
}

#[test]
fn against_a_deployment_in_test_mode_every_scenario_runs_in_its_own_sandbox() {
    let dir = temp_dir("deployment");
    let (_sandbox, service, fake) = start_sandbox(&dir);
    let markdown = dir.join("remote.md");
    // C1, C3, W1, W4 run on the sample setup; O4 and Y1 move the clock; S3 is checked locally;
    // N9 needs another setup.
    let out = salvage()
        .args([
            "conform",
            "--target",
            &service,
            "--flexfactor",
            &fake,
            "--only",
            "C1,C3,W1,W4,S3,O4,Y1,N9",
            "--markdown",
        ])
        .arg(&markdown)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(a sandbox per scenario)"), "{stdout}");
    for rule in ["W1", "W4", "C1", "O4", "Y1", "N9"] {
        assert!(
            stdout.contains(&format!("{rule}    passed")),
            "{rule}: {stdout}"
        );
    }
    assert!(stdout.contains(" 0 failed, 0 skipped"), "{stdout}");
    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.contains("0 skipped"), "{md}");
    drop(_sandbox);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn against_a_deployment_not_in_test_mode_what_needs_the_clock_or_another_setup_is_skipped() {
    let dir = temp_dir("production");
    let (_sandbox, _, fake) = start_sandbox(&dir);
    // A deployment without test mode, on the sample setup, talking to the sandbox's fake.
    let config = dir.join("production.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"sqlite://{}\"\napi_keys = [\"sandbox-key-0123456789\"]\n[flexfactor]\nbase_url = \"{fake}\"\n",
            include_str!("../examples/salvage.toml"),
            dir.join("production.db").display()
        ),
    )
    .unwrap();
    let (_production, service) = start_configured(&dir, &config);
    // (It has no charge hook: scenarios cascading through regular gateways need one, so they
    // are not asked for here.)
    let out = salvage()
        .args([
            "conform",
            "--target",
            &service,
            "--flexfactor",
            &fake,
            "--only",
            "W1,W4,S3,O4,C2",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains("a sandbox per scenario"), "{stdout}");
    assert!(
        stdout.contains("W1    passed") && stdout.contains("W4    passed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("needs a setup the deployment does not have"),
        "{stdout}"
    );
    assert!(stdout.contains("moves the clock"), "{stdout}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    // Production is untouched: no test mode said, no test route, the real clock.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::new();
        let ready = http.get(format!("{service}/readyz")).send().await.unwrap();
        assert!(ready.headers().get("x-salvage-test-mode").is_none());
        let r = http
            .post(format!("{service}/v1/test/sandboxes"))
            .bearer_auth("sandbox-key-0123456789")
            .json(&serde_json::json!({"setup": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::NOT_FOUND);
        let before = chrono::Utc::now();
        let r = http
            .post(format!("{service}/v1/orders"))
            .bearer_auth("sandbox-key-0123456789")
            .json(&serde_json::json!({
                "order_id": "clock-1", "order_type": "new_sale", "campaign_id": "skincare",
                "amount_minor": 1999, "currency": "USD",
                "card": {"token": "tok_clock", "bin": "411111", "last4": "1111", "exp_month": 9, "exp_year": 2030},
                "items": [{"product_id": "cleanser", "quantity": 1, "price_minor": 1999}],
                "attempt": {"gateway_id": "stripe-eu", "result": "approved"}
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::CREATED);
        let order: serde_json::Value = r.json().await.unwrap();
        let at = order["history"][0]["at"].as_str().unwrap_or_default().to_string();
        let at = chrono::DateTime::parse_from_rfc3339(&at)
            .unwrap_or_else(|e| panic!("{order}: {e}"))
            .with_timezone(&chrono::Utc);
        assert!(
            (at - before).num_seconds().abs() < 60,
            "the real clock: {at} against {before}"
        );
    });
    drop(_production);
    drop(_sandbox);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `salvage serve --config FILE` in `dir`: the service URL.
fn start_configured(dir: &PathBuf, config: &std::path::Path) -> (Killed, String) {
    let (child, rx) = spawn_serve(dir, &["--config".as_ref(), config.as_os_str()]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("salvage serve --config did not print its URL"));
        if line.contains("Salvage listening on") {
            let url = line
                .split_whitespace()
                .find(|w| w.starts_with("http://127.0.0.1:"))
                .map(str::to_string)
                .unwrap();
            return (child, url);
        }
    }
}
