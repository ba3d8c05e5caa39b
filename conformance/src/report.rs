//! Reports of a run: the terminal table of rule IDs, JUnit XML and Markdown.

use std::fmt::Write as _;
use std::path::Path;

use crate::catalogue::RULES;
use crate::error::RunError;
use crate::runner::{ScenarioResult, Status, SuiteResult};

/// How one rule fared over the scenarios that cover it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStatus {
    Passed,
    Failed,
    Skipped,
    /// No scenario of this run covers it.
    NotRun,
}

impl std::fmt::Display for RuleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RuleStatus::Passed => "passed",
            RuleStatus::Failed => "FAILED",
            RuleStatus::Skipped => "skipped",
            RuleStatus::NotRun => "not run",
        })
    }
}

/// One row of the rule table.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub id: &'static str,
    pub name: &'static str,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub status: RuleStatus,
}

/// One row per rule of the catalogue: failed when any scenario covering it failed, passed when
/// one passed, skipped when all were skipped.
pub fn rule_rows(result: &SuiteResult) -> Vec<RuleRow> {
    RULES
        .iter()
        .map(|rule| {
            let covering: Vec<&ScenarioResult> = result
                .results
                .iter()
                .filter(|r| r.rules.iter().any(|x| x == rule.id))
                .collect();
            let n = |s: Status| covering.iter().filter(|r| r.status == s).count();
            let (passed, failed, skipped) =
                (n(Status::Passed), n(Status::Failed), n(Status::Skipped));
            let status = if failed > 0 {
                RuleStatus::Failed
            } else if passed > 0 {
                RuleStatus::Passed
            } else if skipped > 0 {
                RuleStatus::Skipped
            } else {
                RuleStatus::NotRun
            };
            RuleRow {
                id: rule.id,
                name: rule.name,
                passed,
                failed,
                skipped,
                status,
            }
        })
        .collect()
}

/// The terminal report: the rule table, then every failure and skip.
pub fn terminal(result: &SuiteResult) -> String {
    let rows = rule_rows(result);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Salvage conformance: scenarios against {}",
        result.target
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<5} {:<9} {:>6} {:>6} {:>7}  rule",
        "ID", "result", "passed", "failed", "skipped"
    );
    for r in rows.iter().filter(|r| r.status != RuleStatus::NotRun) {
        let _ = writeln!(
            out,
            "{:<5} {:<9} {:>6} {:>6} {:>7}  {}",
            r.id,
            r.status.to_string(),
            r.passed,
            r.failed,
            r.skipped,
            r.name
        );
    }
    let not_run: Vec<&str> = rows
        .iter()
        .filter(|r| r.status == RuleStatus::NotRun)
        .map(|r| r.id)
        .collect();
    if !not_run.is_empty() {
        let _ = writeln!(out, "not run: {}", not_run.join(" "));
    }
    let failed: Vec<&ScenarioResult> = result
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Failed scenarios:");
        for r in failed {
            let _ = writeln!(out, "  {}/{} [{}]", r.file, r.id, r.rules.join(", "));
            for f in &r.failures {
                let _ = writeln!(out, "    - {f}");
            }
        }
    }
    let skipped: Vec<&ScenarioResult> = result
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped)
        .collect();
    if !skipped.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Skipped scenarios:");
        for r in skipped {
            let _ = writeln!(
                out,
                "  {}/{} [{}]: {}",
                r.file,
                r.id,
                r.rules.join(", "),
                r.skip_reason.as_deref().unwrap_or("")
            );
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} scenarios: {} passed, {} failed, {} skipped in {:.1} s",
        result.results.len(),
        result.count(Status::Passed),
        result.count(Status::Failed),
        result.count(Status::Skipped),
        result.duration.as_secs_f64()
    );
    out
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per scenario file, one test case per scenario (named by its rules
/// and id).
pub fn junit(result: &SuiteResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        out,
        r#"<testsuites name="salvage-conformance" tests="{}" failures="{}" skipped="{}" time="{:.3}">"#,
        result.results.len(),
        result.count(Status::Failed),
        result.count(Status::Skipped),
        result.duration.as_secs_f64()
    );
    let mut seen = std::collections::BTreeSet::new();
    let files: Vec<&str> = result
        .results
        .iter()
        .map(|r| r.file.as_str())
        .filter(|f| seen.insert(*f))
        .collect();
    for file in files {
        let cases: Vec<&ScenarioResult> =
            result.results.iter().filter(|r| r.file == file).collect();
        let time: f64 = cases.iter().map(|c| c.duration.as_secs_f64()).sum();
        let _ = writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{}" skipped="{}" time="{:.3}">"#,
            xml(file),
            cases.len(),
            cases.iter().filter(|c| c.status == Status::Failed).count(),
            cases.iter().filter(|c| c.status == Status::Skipped).count(),
            time
        );
        for c in cases {
            let _ = write!(
                out,
                r#"    <testcase classname="conformance.{}" name="[{}] {}" time="{:.3}""#,
                xml(file),
                xml(&c.rules.join(",")),
                xml(&c.id),
                c.duration.as_secs_f64()
            );
            match c.status {
                Status::Passed if c.notes.is_empty() => {
                    let _ = writeln!(out, "/>");
                }
                Status::Passed => {
                    let _ = writeln!(out, ">");
                    let _ = writeln!(
                        out,
                        "      <system-out>{}</system-out>",
                        xml(&c.notes.join("\n"))
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
                Status::Failed => {
                    let _ = writeln!(out, ">");
                    let first = c.failures.first().map(String::as_str).unwrap_or("failed");
                    let _ = writeln!(
                        out,
                        r#"      <failure message="{}">{}</failure>"#,
                        xml(first),
                        xml(&c.failures.join("\n"))
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
                Status::Skipped => {
                    let _ = writeln!(out, ">");
                    let _ = writeln!(
                        out,
                        r#"      <skipped message="{}"/>"#,
                        xml(c.skip_reason.as_deref().unwrap_or(""))
                    );
                    let _ = writeln!(out, "    </testcase>");
                }
            }
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    let _ = writeln!(out, "</testsuites>");
    out
}

fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The Markdown report: the rule table, then the scenarios, then failures and skips.
pub fn markdown(result: &SuiteResult) -> String {
    let rows = rule_rows(result);
    let mut out = String::new();
    let _ = writeln!(out, "## Conformance scenarios ({})", result.target);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} scenarios: **{} passed, {} failed, {} skipped** in {:.1} s.",
        result.results.len(),
        result.count(Status::Passed),
        result.count(Status::Failed),
        result.count(Status::Skipped),
        result.duration.as_secs_f64()
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "| rule | result | passed | failed | skipped | what |");
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for r in &rows {
        let status = match r.status {
            RuleStatus::Passed => "✅ passed",
            RuleStatus::Failed => "❌ **failed**",
            RuleStatus::Skipped => "⏭ skipped",
            RuleStatus::NotRun => "– not run",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            r.id,
            status,
            r.passed,
            r.failed,
            r.skipped,
            md(r.name)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "### Scenarios");
    let _ = writeln!(out);
    let _ = writeln!(out, "| file | scenario | rules | result | time |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in &result.results {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} ms |",
            md(&r.file),
            md(&r.id),
            r.rules.join(", "),
            r.status,
            r.duration.as_millis()
        );
    }
    let failed: Vec<&ScenarioResult> = result
        .results
        .iter()
        .filter(|r| r.status == Status::Failed)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### Failures");
        for r in failed {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "- **{}/{}** ({}): {}",
                r.file,
                r.id,
                r.rules.join(", "),
                md(&r.title)
            );
            for f in &r.failures {
                let _ = writeln!(out, "  - `{}`", f.replace('`', "'").replace('\n', " "));
            }
        }
    }
    let noted: Vec<&ScenarioResult> = result
        .results
        .iter()
        .filter(|r| r.status == Status::Skipped || !r.notes.is_empty())
        .collect();
    if !noted.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "### Skips and notes");
        let _ = writeln!(out);
        for r in noted {
            let text = r
                .skip_reason
                .iter()
                .chain(r.notes.iter())
                .cloned()
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(out, "- {}/{} ({}): {}", r.file, r.id, r.status, md(&text));
        }
    }
    out
}

/// Writes `text` to `path`, creating its directory.
pub fn write(path: &Path, text: &str) -> Result<(), RunError> {
    let err = |e: std::io::Error| RunError::Report {
        file: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)
}
