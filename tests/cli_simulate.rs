//! `salvage simulate` and `salvage replay`, run as a user would.

use std::path::PathBuf;
use std::process::Command;

fn salvage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_salvage"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A fresh directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("salvage-cli-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn simulate_writes_the_json_and_html_reports_and_prints_a_table() {
    let out = temp_dir("simulate");
    let run = |dir: &PathBuf, threads: &str| {
        salvage()
            .arg("simulate")
            .arg(repo("simulator/scenarios/default.toml"))
            .args([
                "--customers",
                "200",
                "--horizon-days",
                "60",
                "--threads",
                threads,
            ])
            .arg("--out")
            .arg(dir)
            .output()
            .unwrap()
    };
    let result = run(&out, "2");
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(stdout.contains("recovered revenue"), "{stdout}");
    assert!(stdout.contains("no-flexfactor-recycle"), "{stdout}");
    let json = std::fs::read_to_string(out.join("report.json")).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(json.contains("\"format\": \"salvage-sim/report/v2\""));
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    // Self-contained: no script, no external stylesheet, image or font.
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }

    // Same scenario, same seed, another thread count: the same bytes.
    let again = temp_dir("simulate-again");
    assert!(run(&again, "1").status.success());
    assert_eq!(
        json,
        std::fs::read_to_string(again.join("report.json")).unwrap()
    );
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&again);
}

#[test]
fn simulate_names_the_file_and_field_of_a_bad_scenario() {
    let dir = temp_dir("bad-scenario");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        format!(
            "name = \"bad\"\nseed = 1\nhorizon_days = 10\nsetup = {{ path = {:?} }}\n[population]\ncustomers = 5\nproducts = [{{ campaign = \"coaching\", product = \"coaching-monthly\" }}]\n[flexfactor]\nrerun_recovery = 2.0\n",
            repo("simulator/scenarios/setup.toml").display().to_string()
        ),
    )
    .unwrap();
    let result = salvage()
        .arg("simulate")
        .arg(&file)
        .arg("--out")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(stderr.contains("flexfactor.rerun_recovery"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_prints_the_states_of_the_example_trace() {
    let result = salvage()
        .arg("replay")
        .arg(repo("simulator/traces/example.jsonl"))
        .arg("--setup")
        .arg(repo("examples/salvage.toml"))
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let json = String::from_utf8_lossy(&result.stdout).into_owned();
    assert!(
        json.contains("\"o-200\": {\n      \"status\": \"chargeback\""),
        "{json}"
    );
    assert!(json.contains("\"t-400\": {\n      \"status\": \"declined\""));
    assert!(json.contains("\"refused\": []"));

    let dir = temp_dir("replay");
    let file = dir.join("states.json");
    let result = salvage()
        .arg("replay")
        .arg(repo("simulator/traces/example.jsonl"))
        .arg("--setup")
        .arg(repo("examples/salvage.toml"))
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(result.status.success());
    let summary = String::from_utf8_lossy(&result.stdout);
    let line = |id: &str| {
        summary
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("r-100-1").contains("complete"), "{summary}");
    assert!(line("sub-100").contains("active") && line("sub-100").contains("cycle 2"));
    assert!(line("sub-400").contains("trial"), "{summary}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), json);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_names_the_line_of_a_bad_trace() {
    let dir = temp_dir("bad-trace");
    let file = dir.join("bad.jsonl");
    std::fs::write(
        &file,
        "{\"at\":\"2026-01-01T00:00:00Z\",\"kind\":\"advance_to\"}\n{\"at\":\"2026-01-02T00:00:00Z\",\"kind\":\"teleport\"}\n",
    )
    .unwrap();
    let result = salvage()
        .arg("replay")
        .arg(&file)
        .arg("--setup")
        .arg(repo("examples/salvage.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success());
    assert!(
        stderr.contains("bad.jsonl") && stderr.contains("line 2"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
