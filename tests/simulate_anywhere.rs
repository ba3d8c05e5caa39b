//! `salvage simulate` with the binary alone: run from an empty directory outside the
//! repository, it runs the shipped scenarios compiled into it, by name; a path still works; a
//! missing scenario is named once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh empty directory under the system's temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "salvage-anywhere-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `salvage simulate ARGS` run in `dir`, small and quick.
fn simulate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_salvage"))
        .current_dir(dir)
        .arg("simulate")
        .args(args)
        .args([
            "--customers",
            "40",
            "--horizon-days",
            "40",
            "--seeds",
            "2",
            "--quiet",
        ])
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_default_scenario_runs_from_an_empty_directory() {
    let dir = temp_dir("default");
    let out = simulate(&dir, &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.starts_with("default:"), "{stdout}");
    assert!(stdout.contains("no-flexfactor-recycle"), "{stdout}");
    // The report lands in the working directory.
    assert!(dir.join("simulation/report.json").is_file());
    assert!(dir.join("simulation/report.html").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shipped_scenarios_are_listed_and_run_by_name_or_repository_path() {
    let dir = temp_dir("names");
    let list = Command::new(env!("CARGO_BIN_EXE_salvage"))
        .current_dir(&dir)
        .args(["simulate", "--list"])
        .output()
        .unwrap();
    let listed = text(&list.stdout);
    assert!(list.status.success());
    for name in [
        "default",
        "slots",
        "cascade_all",
        "expiry_days",
        "network_rules",
    ] {
        assert!(
            listed.lines().any(|l| l.starts_with(name)),
            "{name} in\n{listed}"
        );
    }
    assert!(!listed.lines().any(|l| l.starts_with("setup")), "{listed}");

    for arg in ["slots", "slots.toml", "simulator/scenarios/slots.toml"] {
        let out = simulate(&dir, &[arg, "--out", "slots"]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{arg}: {}", text(&out.stderr));
        assert!(stdout.starts_with("slots:"), "{arg}: {stdout}");
        assert!(stdout.contains("slot 7-9"), "{stdout}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_path_still_works_and_wins_over_a_shipped_name() {
    let dir = temp_dir("path");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A scenario file of the user's own, next to a setup of its own, named like a shipped one.
    std::fs::copy(
        repo.join("simulator/scenarios/setup.toml"),
        dir.join("setup.toml"),
    )
    .unwrap();
    let own = std::fs::read_to_string(repo.join("simulator/scenarios/expiry_days.toml"))
        .unwrap()
        .replace("name = \"expiry_days\"", "name = \"my own\"");
    std::fs::write(dir.join("slots.toml"), own).unwrap();
    let out = simulate(&dir, &["slots.toml"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.starts_with("my own:"), "{stdout}");
    // An absolute path from elsewhere.
    let file = repo.join("simulator/scenarios/cascade_all.toml");
    let out = simulate(&dir, &[file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("cascade_all:"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_scenario_is_named_once_with_the_shipped_names() {
    let dir = temp_dir("missing");
    let out = simulate(&dir, &["nowhere/else.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("nowhere/else.toml").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "the OS error once: {stderr}"
    );
    assert!(stderr.contains("slots"), "the shipped names: {stderr}");

    // A file that exists but is no scenario: named once too, with what is wrong.
    std::fs::write(dir.join("bad.toml"), "name = 3\n").unwrap();
    let out = simulate(&dir, &["bad.toml"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("bad.toml").count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_writes_a_scenario_that_simulate_runs() {
    let dir = temp_dir("calibrate");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_salvage"))
        .current_dir(&dir)
        .arg("calibrate")
        .arg(repo.join("simulator/traces/example.jsonl"))
        .arg("--setup")
        .arg(repo.join("examples/salvage.toml"))
        .args(["--out", "fitted.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fitted = std::fs::read_to_string(dir.join("fitted.toml")).unwrap();
    assert!(
        fitted.contains("# Fitted by `salvage calibrate`"),
        "{fitted}"
    );
    assert!(fitted.contains("new_sale_approval = "), "{fitted}");
    assert!(
        fitted.contains("first attempts of new sales approved"),
        "{fitted}"
    );
    let run = simulate(&dir, &["fitted.toml"]);
    assert!(run.status.success(), "{}\n{fitted}", text(&run.stderr));
    assert!(text(&run.stdout).starts_with("calibrated:"));

    // A missing trace is named once.
    let out = Command::new(env!("CARGO_BIN_EXE_salvage"))
        .current_dir(&dir)
        .args(["calibrate", "missing.jsonl"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.matches("missing.jsonl").count(), 1, "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
