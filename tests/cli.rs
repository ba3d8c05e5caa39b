//! The `salvage` binary, run as a user would.

use std::process::Command;

fn salvage() -> Command {
    Command::new(env!("CARGO_BIN_EXE_salvage"))
}

#[test]
fn help_lists_the_subcommands() {
    let out = salvage().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("check-config"), "{text}");
}

#[test]
fn check_config_accepts_the_sample_setup() {
    // As `serve --config` would take it: the sample has no [service] table, so the API key
    // comes from the environment.
    let out = salvage()
        .env("SALVAGE_API_KEYS", "sample-key-0123456789")
        .args([
            "check-config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/examples/salvage.toml"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("valid"));
    assert!(text.contains("recycle profiles: 2"), "{text}");
}

#[test]
fn check_config_names_file_entry_and_rule_for_every_problem() {
    let dir = std::env::temp_dir().join(format!("salvage-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        r#"
[[gateways]]
kind = "flexfactor"
id = "ff"
expiry_days = 30
[[gateway_profiles]]
id = "atri"
members = ["ff"]
"#,
    )
    .unwrap();
    let out = salvage().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "bad.toml",
        "[S1] gateway \"ff\"",
        "[S2] gateway \"ff\"",
        "[S4] gateway profile \"atri\"",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
}

#[test]
fn check_config_on_a_missing_file_says_so() {
    let out = salvage()
        .args(["check-config", "/nonexistent/salvage.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the setup file"));
}

#[test]
fn rebuild_projections_on_a_fresh_store() {
    let dir = std::env::temp_dir().join(format!("salvage-cli-rebuild-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("s.db");
    let out = salvage()
        .args([
            "rebuild-projections",
            "--store",
            &format!("sqlite://{}", db.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("rebuilt projections from 0 events"));
    let out = salvage()
        .args(["rebuild-projections", "--store", "mysql://x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sqlite://"));
}
