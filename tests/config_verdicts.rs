//! One validation path: for every configuration in the table, `salvage check-config FILE` and
//! `salvage serve --config FILE` give the same verdict, and a refused file the same message.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SAMPLE: &str = include_str!("../examples/salvage.toml");
const KEY: &str = "verdict-key-0123456789";

fn salvage() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_salvage"));
    c.env_remove("SALVAGE_API_KEYS")
        .env_remove("SALVAGE_STORE_URL")
        .env_remove("SALVAGE_CONFIG")
        .env("RUST_LOG", "error");
    c
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("salvage-verdicts-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The sample setup served on a fresh SQLite file, with `edit` applied to its text.
fn config(name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let d = dir();
    let store = d.join(format!("{name}.db"));
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"sqlite://{}\"\napi_keys = [\"{KEY}\"]\n",
        store.display()
    );
    let path = d.join(format!("{name}.toml"));
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// check-config's verdict: Ok, or the message on stderr.
fn check(path: &Path) -> Result<(), String> {
    let out = salvage().arg("check-config").arg(path).output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        assert_eq!(out.status.code(), Some(1), "check-config exit code");
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// serve's verdict: Ok once it listens (then it is stopped), or the message on stderr.
fn serve(path: &Path) -> Result<(), String> {
    let mut child = salvage()
        .args(["serve", "--config"])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("listening on") {
                let _ = tx.send(());
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if rx.try_recv().is_ok() {
            child.kill().ok();
            child.wait().ok();
            return Ok(());
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).unwrap();
            }
            assert_eq!(status.code(), Some(1), "serve exit code; stderr: {err}");
            return Err(err.trim().to_string());
        }
        assert!(
            Instant::now() < deadline,
            "serve neither listened nor stopped"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn check_config_and_serve_agree_on_every_configuration() {
    let rows: Vec<(&str, PathBuf, Option<&str>)> = vec![
        ("good", config("good", |t| t), None),
        (
            "hmac_signing_key not base64",
            config("hmac", |t| {
                let key = "XRmKBxG5uvt1qWzqvp+T6CAbTo0MB89GTxXZD5cHA56RP7Mj4NbnHQOR1Y8uorUU9YQz8ujaVRUdm9vTSkPZSw==";
                t.replace(key, "NOTBASE64-HMACSECRET-$$$")
            }),
            Some("[S1] gateway \"flexfactor\": hmac_signing_key"),
        ),
        (
            "FlexFactor base_url not a URL",
            config("base", |t| t + "[flexfactor]\nbase_url = \"not a url\"\n"),
            Some("[flexfactor]: base_url must be an http(s) URL"),
        ),
        (
            "charge hook URL without a host",
            config("hook", |t| {
                t + "[charge_hook]\nurl = \"http://\"\nsecret = \"hook-secret\"\n"
            }),
            Some("[charge_hook]: url"),
        ),
        (
            "no API key",
            config("nokey", |t| {
                t.replace(&format!("api_keys = [\"{KEY}\"]"), "")
            }),
            Some("no API key"),
        ),
        (
            "expiry_days out of range",
            config("expiry", |t| {
                t.replace("expiry_days = 21", "expiry_days = 40")
            }),
            Some("[S2] gateway \"flexfactor\""),
        ),
        (
            "notifications retried for under a day",
            config("notify", |t| {
                t + "[notifications]\nurl = \"http://127.0.0.1:9/n\"\nsecret = \"s\"\nretry_for_hours = 2\n"
            }),
            Some("retry_for_hours must be at least 24"),
        ),
        (
            "a Visa category that does not exist",
            config("category", |t| {
                t + "[network_rules.visa_categories.nmi]\n\"05\" = 9\n"
            }),
            Some("[N6]"),
        ),
        (
            "a scheduler cadence out of range",
            config("poll", |t| {
                t.replace("api_keys = [", "scheduler_poll_ms = 5\napi_keys = [")
            }),
            Some("scheduler_poll_ms must be 10 to 60000"),
        ),
        (
            "a worker yield beyond the bound",
            config("yield", |t| {
                t.replace("api_keys = [", "worker_yield_ms = 60001\napi_keys = [")
            }),
            Some("worker_yield_ms must be 0 to 60000"),
        ),
        (
            "a recycle wait beyond the bound",
            config("wait", |t| {
                t.replacen("{ wait_days = 1 }", "{ wait_days = 400 }", 1)
            }),
            Some("wait_days must be 0 to"),
        ),
    ];
    for (name, path, refused_with) in rows {
        let checked = check(&path);
        let served = serve(&path);
        assert_eq!(checked, served, "{name}: check-config and serve disagree");
        match (refused_with, checked) {
            (None, Ok(())) => {}
            (Some(needle), Err(message)) => {
                assert!(
                    message.contains(needle),
                    "{name}: {needle:?} not in {message}"
                )
            }
            (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
    }
}
