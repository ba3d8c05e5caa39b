//! `salvage fake-flexfactor`, run as a user would: its help, and a start on a free port that
//! prints where it listens and answers there.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

#[test]
fn help_lists_the_options() {
    let out = salvage()
        .args(["fake-flexfactor", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--listen",
        "--webhook-url",
        "--scenario",
        "--seed",
        "--clock",
    ] {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }
    let top = salvage().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&top.stdout).contains("fake-flexfactor"));
}

#[test]
fn starts_prints_where_it_listens_and_answers() {
    let child = salvage()
        .args([
            "fake-flexfactor",
            "--listen",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:9/webhooks/flexfactor",
            "--seed",
            "7",
            "--clock",
            "driven",
            "--start",
            "2026-03-01T12:00:00Z",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let mut line = String::new();
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading to the end: a closed pipe would make the server's next log line fail.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:") && w.ends_with("/v1"))
        .unwrap_or_else(|| panic!("no base URL in {line:?}"));
    let addr = base
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .to_string();

    // GET /admin/state answers with the driven clock's time.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /admin/state HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("2026-03-01T12:00:00Z"), "{answer}");
    assert!(answer.contains("\"clock\":\"driven\""), "{answer}");
}

#[test]
fn a_bad_scenario_file_stops_the_start_with_its_name() {
    let dir = std::env::temp_dir().join(format!("salvage-fake-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad-scenario.toml");
    std::fs::write(&file, "[[rules]]\noutcome = \"maybe\"\n").unwrap();
    let out = salvage()
        .args([
            "fake-flexfactor",
            "--listen",
            "127.0.0.1:0",
            "--webhook-url",
            "http://127.0.0.1:9/",
        ])
        .arg("--scenario")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad-scenario.toml"), "{err}");
}
