//! Runs scenarios black-box over HTTP and says which passed, failed or were skipped.
//!
//! In-process, every scenario file gets one service and fake per distinct setup (and one of its
//! own for an `isolated` scenario); files run concurrently, the scenarios of one world one after
//! the other, each with its own ids (`${id}`). Against a deployment, scenarios run one after
//! the other with ids prefixed by a run id; those needing another setup, or a clock the
//! deployment does not share, are skipped with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use futures::StreamExt;
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::{start, ServeOptions};
use secrecy::SecretString;
use serde_json::Value;

use crate::crm::Inbox;
use crate::error::RunError;
use crate::matcher;
use crate::scenario::{
    Action, Auth, Body, EvaluateCheck, FakeOrderCheck, HttpExpect, HttpStep, Method,
    NotificationCheck, Scenario, Signing, StartExpect, Step, Suite, WebhookStep,
};
use crate::setup;
use crate::target::{self, Env};
use crate::vars::Vars;

/// How one scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Passed,
    Failed,
    Skipped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        })
    }
}

/// The result of one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The scenario file's name (`c_cascades`).
    pub file: String,
    pub id: String,
    pub title: String,
    pub rules: Vec<String>,
    pub status: Status,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// What failed (step, expectation, what came back).
    pub failures: Vec<String>,
    /// Remarks (e.g. checks that could not be made against this target).
    pub notes: Vec<String>,
    pub duration: StdDuration,
}

/// The results of a run.
#[derive(Debug, Clone)]
pub struct SuiteResult {
    /// `in-process` or the target's URL.
    pub target: String,
    pub results: Vec<ScenarioResult>,
    pub duration: StdDuration,
}

impl SuiteResult {
    /// How many scenarios ended so.
    pub fn count(&self, status: Status) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }

    /// True when no scenario failed.
    pub fn ok(&self) -> bool {
        self.count(Status::Failed) == 0
    }
}

/// A deployment to run against.
pub struct RemoteOptions {
    /// The service's base URL.
    pub target: String,
    /// The fake FlexFactor's URL (its `/v1` base or its root).
    pub flexfactor: String,
    pub api_key: String,
    /// The deployment's setup (the sample setup unless told otherwise).
    pub setup: toml::Table,
    /// The HMACSigningKey (base64) to sign webhooks with; default: the setup's.
    pub hmac_key: Option<String>,
    /// Where the deployment's notifications arrive, when the runner receives them.
    pub notifications: Option<Arc<Inbox>>,
    /// A deployment in test mode: leave each scenario's sandbox at the end.
    pub keep: bool,
    /// A deployment in test mode: how many sandboxes run at once.
    pub jobs: usize,
}

/// How scenarios see a target.
struct Context<'a> {
    env: &'a Env,
    /// Prefix of `${id}`.
    prefix: String,
}

/// What [`run_in_process_with`] calls after each scenario that ran in a world, with the scenario
/// and that world (its service still running, shared with the scenario's file mates): the
/// failures it returns become the scenario's.
pub type AfterScenario<'h> =
    dyn for<'a> Fn(&'a Scenario, &'a Env) -> LocalBoxFuture<'a, Vec<String>> + 'h;

/// Runs every scenario in-process; at most `concurrency` worlds at a time.
pub async fn run_in_process(suite: &Suite, concurrency: usize) -> SuiteResult {
    run_in_process_with(suite, concurrency, None).await
}

/// [`run_in_process`], calling `after` (when given) after each scenario that ran in a world:
/// not after a setup check (`start_service`, which leaves no service behind) nor a scenario
/// whose setup or world could not be made.
pub async fn run_in_process_with(
    suite: &Suite,
    concurrency: usize,
    after: Option<&AfterScenario<'_>>,
) -> SuiteResult {
    let started = Instant::now();
    // Groups of scenarios that share one world, in suite order.
    let mut groups: Vec<(toml::Table, Vec<(usize, Scenario)>)> = Vec::new();
    let mut setup_checks: Vec<(usize, Scenario)> = Vec::new();
    let mut failed_setup: Vec<(usize, ScenarioResult)> = Vec::new();
    let mut order = 0usize;
    for file in &suite.files {
        let mut file_groups: Vec<(toml::Table, Vec<(usize, Scenario)>)> = Vec::new();
        for s in &file.scenarios {
            order += 1;
            if s.is_setup_check() {
                setup_checks.push((order, s.clone()));
                continue;
            }
            let setup = match setup::edited_setup(&s.setup) {
                Ok(t) => t,
                Err(e) => {
                    failed_setup.push((order, failed(s, vec![format!("given.setup: {e}")])));
                    continue;
                }
            };
            match file_groups.iter_mut().find(|(t, members)| {
                !s.isolated && *t == setup && !members.iter().any(|(_, m)| m.isolated)
            }) {
                Some((_, members)) => members.push((order, s.clone())),
                None => file_groups.push((setup, vec![(order, s.clone())])),
            }
        }
        groups.extend(file_groups);
    }
    // Concurrently on this task (the service's store futures are not `Send` in every
    // lifetime, so no `tokio::spawn`); each world's own server tasks run on the runtime.
    let worlds: Vec<Vec<(usize, ScenarioResult)>> = futures::stream::iter(groups)
        .map(|(setup, members)| run_world(setup, members, after))
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut results: Vec<(usize, ScenarioResult)> = failed_setup;
    for (i, s) in setup_checks {
        results.push((i, run_setup_check(&s).await));
    }
    results.extend(worlds.into_iter().flatten());
    results.sort_by_key(|(i, _)| *i);
    SuiteResult {
        target: "in-process".into(),
        results: results.into_iter().map(|(_, r)| r).collect(),
        duration: started.elapsed(),
    }
}

async fn run_world(
    setup: toml::Table,
    members: Vec<(usize, Scenario)>,
    after: Option<&AfterScenario<'_>>,
) -> Vec<(usize, ScenarioResult)> {
    let env = match Env::in_process(&setup).await {
        Ok(env) => env,
        Err(e) => {
            return members
                .into_iter()
                .map(|(i, s)| {
                    (
                        i,
                        failed(&s, vec![format!("the service did not start: {e}")]),
                    )
                })
                .collect()
        }
    };
    let ctx = Context {
        env: &env,
        prefix: String::new(),
    };
    let mut out = Vec::new();
    for (i, s) in members {
        let mut result = run_scenario(&ctx, &s).await;
        if let Some(after) = after {
            let failures = after(&s, &env).await;
            if !failures.is_empty() {
                result.status = Status::Failed;
                result.failures.extend(
                    failures
                        .into_iter()
                        .map(|f| format!("after the scenario: {f}")),
                );
            }
        }
        out.push((i, result));
    }
    env.shutdown().await;
    out
}

/// Checks that the deployment and its fake FlexFactor answer.
async fn reachable(env: &Env) -> Result<(), RunError> {
    let health = format!("{}/healthz", env.api);
    match env.http.get(&health).send().await {
        Ok(r) if r.status().is_success() => {}
        Ok(r) => {
            return Err(RunError::Target(format!(
                "{health} answered {}",
                r.status()
            )))
        }
        Err(e) => {
            return Err(RunError::Target(format!(
                "cannot reach the service at {}: {}",
                env.api,
                e.without_url()
            )))
        }
    }
    env.admin("GET", "/admin/calls", None).await.map_err(|e| {
        RunError::Target(format!(
            "cannot reach the fake FlexFactor's admin endpoints at {}/admin: {e}",
            env.fake
        ))
    })?;
    Ok(())
}

/// Runs every scenario against a deployment, one after the other.
pub async fn run_remote(suite: &Suite, options: RemoteOptions) -> Result<SuiteResult, RunError> {
    let started = Instant::now();
    if target::in_test_mode(&options.target)
        .await
        .map_err(RunError::Target)?
    {
        return Ok(run_sandboxed(suite, &options, started).await);
    }
    let hmac = options
        .hmac_key
        .clone()
        .or_else(|| setup::hmac_key(&options.setup))
        .unwrap_or_default();
    let deployment = setup::comparable(&options.setup);
    let run_id = format!("c{}", Utc::now().format("%y%m%d%H%M%S"));
    let mut results = Vec::new();
    let env = Env::remote(
        &options.target,
        &options.flexfactor,
        &options.api_key,
        &hmac,
        setup::secrets(&options.setup),
        options.notifications.clone(),
    )
    .map_err(RunError::Target)?;
    reachable(&env).await?;
    let ctx = Context {
        env: &env,
        prefix: format!("{run_id}-"),
    };
    for s in suite.scenarios() {
        if s.is_setup_check() {
            let mut r = run_setup_check(s).await;
            r.notes.push(
                "setup validation checked locally (this binary), not on the deployment".into(),
            );
            results.push(r);
            continue;
        }
        let wanted = match setup::edited_setup(&s.setup) {
            Ok(t) => setup::comparable(&t),
            Err(e) => {
                results.push(failed(s, vec![format!("given.setup: {e}")]));
                continue;
            }
        };
        if wanted != deployment {
            let edits: Vec<String> = s.setup.iter().map(ToString::to_string).collect();
            results.push(skipped(
                s,
                format!(
                    "needs a setup the deployment does not have ({})",
                    if edits.is_empty() {
                        "the sample setup".to_string()
                    } else {
                        format!("the sample setup edited: {}", edits.join("; "))
                    }
                ),
            ));
            continue;
        }
        if s.moves_clock() {
            results.push(skipped(
                s,
                "moves the clock: needs the service and FlexFactor on one driven clock (in-process mode)".into(),
            ));
            continue;
        }
        results.push(run_scenario(&ctx, s).await);
    }
    Ok(SuiteResult {
        target: options.target.clone(),
        results,
        duration: started.elapsed(),
    })
}

/// Runs every scenario against a deployment in test mode, each in its own sandbox (its setup,
/// its clock), several at once: none is skipped for the clock or the setup.
async fn run_sandboxed(suite: &Suite, options: &RemoteOptions, started: Instant) -> SuiteResult {
    let mut results: Vec<(usize, ScenarioResult)> = Vec::new();
    let mut work = Vec::new();
    for (i, s) in suite.scenarios().enumerate() {
        if s.is_setup_check() {
            let mut r = run_setup_check(s).await;
            r.notes.push(
                "setup validation checked locally (this binary), not on the deployment".into(),
            );
            results.push((i, r));
            continue;
        }
        match setup::edited_setup(&s.setup) {
            Ok(t) => work.push((i, s, t)),
            Err(e) => results.push((i, failed(s, vec![format!("given.setup: {e}")]))),
        }
    }
    let ran: Vec<(usize, ScenarioResult)> = futures::stream::iter(work)
        .map(|(i, s, setup)| async move {
            let env =
                match Env::sandbox(&options.target, &options.api_key, &setup, options.keep).await {
                    Ok(env) => env,
                    Err(e) => {
                        return (i, failed(s, vec![format!("no sandbox for it: {e}")]));
                    }
                };
            let ctx = Context {
                env: &env,
                prefix: String::new(),
            };
            let mut r = run_scenario(&ctx, s).await;
            if let target::Driver::Sandbox(w) = &env.driver {
                if options.keep {
                    r.notes.push(format!("sandbox {} kept", w.id));
                }
            }
            env.shutdown().await;
            (i, r)
        })
        .buffer_unordered(options.jobs.max(1))
        .collect()
        .await;
    results.extend(ran);
    results.sort_by_key(|(i, _)| *i);
    SuiteResult {
        target: format!("{} (a sandbox per scenario)", options.target),
        results: results.into_iter().map(|(_, r)| r).collect(),
        duration: started.elapsed(),
    }
}

fn base_result(s: &Scenario, status: Status) -> ScenarioResult {
    ScenarioResult {
        file: s
            .file
            .file_stem()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default(),
        id: s.id.clone(),
        title: s.title.clone(),
        rules: s.rules.clone(),
        status,
        skip_reason: None,
        failures: Vec::new(),
        notes: Vec::new(),
        duration: StdDuration::ZERO,
    }
}

fn failed(s: &Scenario, failures: Vec<String>) -> ScenarioResult {
    let mut r = base_result(s, Status::Failed);
    r.failures = failures;
    r
}

fn skipped(s: &Scenario, reason: String) -> ScenarioResult {
    let mut r = base_result(s, Status::Skipped);
    r.skip_reason = Some(reason);
    r
}

/// The longest a scenario may take.
const SCENARIO_TIMEOUT: StdDuration = StdDuration::from_secs(90);

async fn run_scenario(ctx: &Context<'_>, s: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut result = base_result(s, Status::Passed);
    let mut vars = Vars::default();
    vars.set("id", format!("{}{}", ctx.prefix, s.id));
    let outcome = tokio::time::timeout(
        SCENARIO_TIMEOUT,
        run_steps(ctx, s, &mut vars, &mut result.notes),
    )
    .await;
    let failures = match outcome {
        Ok(f) => f,
        Err(_) => vec![format!("timed out after {} s", SCENARIO_TIMEOUT.as_secs())],
    };
    if s.steps
        .iter()
        .any(|st| matches!(st.action, Action::Fault(_)))
    {
        if let Err(e) = ctx.env.admin("DELETE", "/admin/faults", None).await {
            result
                .notes
                .push(format!("could not clear the faults: {e}"));
        }
    }
    if !failures.is_empty() {
        result.status = Status::Failed;
        result.failures = failures;
    }
    result.duration = started.elapsed();
    result
}

async fn call_counts(env: &Env) -> Result<BTreeMap<String, u64>, String> {
    let calls = env.admin("GET", "/admin/calls", None).await?;
    Ok(calls
        .get("counts")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default())
}

/// Runs the steps; the failures (empty: passed).
async fn run_steps(
    ctx: &Context<'_>,
    s: &Scenario,
    vars: &mut Vars,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let baseline = match call_counts(ctx.env).await {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot read FlexFactor's calls: {e}")],
    };
    for step in &s.steps {
        let failures = match run_step(ctx, step, vars, &baseline, notes).await {
            Ok(f) => f,
            Err(e) => vec![e],
        };
        if !failures.is_empty() {
            return failures
                .into_iter()
                .map(|f| format!("{} ({}): {f}", step.label(), vars.expand(&step.describe())))
                .collect();
        }
    }
    Vec::new()
}

/// One answer from the service.
struct Answer {
    status: u16,
    text: String,
    json: Value,
}

async fn send(ctx: &Context<'_>, h: &HttpStep, vars: &Vars) -> Result<Answer, String> {
    let env = ctx.env;
    let url = format!("{}{}", env.api, vars.expand(&h.path));
    let mut req = match h.method {
        Method::Get => env.http.get(&url),
        Method::Post => env.http.post(&url),
    };
    req = match h.auth {
        Auth::Key => req.bearer_auth(&env.api_key),
        Auth::Wrong => req.bearer_auth("not-a-key-of-this-service-000"),
        Auth::None => req,
    };
    req = match &h.body {
        Some(Body::Json(v)) => req.json(&vars.expand_json(v)),
        Some(Body::Raw { text, content_type }) => req
            .header(
                "content-type",
                content_type.as_deref().unwrap_or("application/json"),
            )
            .body(vars.expand(text)),
        None => req,
    };
    let r = req
        .send()
        .await
        .map_err(|e| format!("no answer: {}", e.without_url()))?;
    let status = r.status().as_u16();
    let text = r
        .text()
        .await
        .map_err(|e| format!("answer cut: {}", e.without_url()))?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, text, json })
}

fn check_answer(
    expect: &HttpExpect,
    a: &Answer,
    env: &Env,
    vars: &Vars,
    now: DateTime<Utc>,
) -> Vec<String> {
    let mut out = Vec::new();
    let status = Value::from(a.status);
    for c in &expect.status {
        if let Some(why) = c.failure(Some(&status), vars, now) {
            out.push(format!("status: {why} (body: {})", snippet(&a.text)));
        }
    }
    let body_failures = matcher::check_all(&expect.body, &a.json, vars, now);
    if !body_failures.is_empty() {
        out.extend(body_failures);
        out.push(format!("the answer was {} {}", a.status, snippet(&a.text)));
    }
    for text in &expect.body_excludes {
        let t = vars.expand(text);
        if a.text.contains(&t) {
            out.push(format!("the body contains {t:?}, which it must not"));
        }
    }
    for text in &expect.body_contains {
        let t = vars.expand(text);
        if !a.text.contains(&t) {
            out.push(format!(
                "the body does not contain {t:?} (body: {})",
                snippet(&a.text)
            ));
        }
    }
    if expect.body_excludes_secrets {
        for secret in &env.secrets {
            if !secret.is_empty() && a.text.contains(secret.as_str()) {
                out.push("the body shows a FlexFactor secret (S1)".into());
            }
        }
    }
    out
}

/// With `SALVAGE_CONFORMANCE_TRACE` set, every answer is printed (for scenario authors).
fn trace(step: &Step, vars: &Vars, a: &Answer) {
    if std::env::var_os("SALVAGE_CONFORMANCE_TRACE").is_some() {
        eprintln!(
            "[{}] {} {}: {} {}",
            vars.get("id").unwrap_or_default(),
            step.label(),
            vars.expand(&step.describe()),
            a.status,
            a.text
        );
    }
}

fn trace_value(what: &str, v: &Value) {
    if std::env::var_os("SALVAGE_CONFORMANCE_TRACE").is_some() {
        eprintln!("[trace] {what}: {v}");
    }
}

fn snippet(text: &str) -> String {
    let t: String = text.chars().take(600).collect();
    if text.chars().count() > 600 {
        format!("{t}…")
    } else {
        t
    }
}

fn capture(step: &Step, json: &Value, vars: &mut Vars) -> Vec<String> {
    let mut out = Vec::new();
    for (name, path) in &step.capture {
        match path.resolve(json) {
            Some(Value::String(s)) => vars.set(name, s),
            Some(Value::Null) | None => out.push(format!(
                "capture {name}: nothing at `{path}` in {}",
                matcher::show(Some(json))
            )),
            Some(other) => vars.set(name, other.to_string()),
        }
    }
    out
}

async fn run_step(
    ctx: &Context<'_>,
    step: &Step,
    vars: &mut Vars,
    baseline: &BTreeMap<String, u64>,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let env = ctx.env;
    match &step.action {
        Action::Http(h) => {
            let deadline = Instant::now() + StdDuration::from_secs(8);
            loop {
                let now = env.now();
                let answer = send(ctx, h, vars).await?;
                trace(step, vars, &answer);
                let failures = check_answer(&h.expect, &answer, env, vars, now);
                if failures.is_empty() {
                    return Ok(capture(step, &answer.json, vars));
                }
                if !h.eventually || Instant::now() > deadline {
                    return Ok(failures);
                }
                env.settle().await?;
                tokio::time::sleep(StdDuration::from_millis(100)).await;
            }
        }
        Action::Webhook(w) => {
            let now = env.now();
            let answer = deliver(ctx, w, vars).await?;
            trace(step, vars, &answer);
            let mut failures = check_answer(&w.expect, &answer, env, vars, now);
            if failures.is_empty() {
                failures = capture(step, &answer.json, vars);
            }
            Ok(failures)
        }
        Action::Advance(d) => {
            env.advance(*d).await?;
            Ok(Vec::new())
        }
        Action::Settle => {
            env.settle().await?;
            Ok(Vec::new())
        }
        Action::Fault(f) => {
            env.admin("POST", "/admin/faults", Some(f)).await?;
            Ok(Vec::new())
        }
        Action::ClearFaults => {
            env.admin("DELETE", "/admin/faults", None).await?;
            Ok(Vec::new())
        }
        Action::FlexFactorEvaluate(e) => check_evaluate(env, e, vars).await,
        Action::FlexFactorCalls(counts) => {
            let now_counts = call_counts(env).await?;
            let mut out = Vec::new();
            for (endpoint, checks) in counts {
                let delta = now_counts
                    .get(endpoint)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(baseline.get(endpoint).copied().unwrap_or(0));
                let v = Value::from(delta);
                for c in checks {
                    if let Some(why) = c.failure(Some(&v), vars, env.now()) {
                        out.push(format!("calls to {endpoint} during the scenario: {why}"));
                    }
                }
            }
            Ok(out)
        }
        Action::FlexFactorOrder(o) => check_fake_order(env, o, vars).await,
        Action::Notifications(n) => check_notifications(env, n, vars, notes).await,
        Action::StartService(_) => Err("`start_service` runs alone (setup checks)".into()),
    }
}

async fn check_evaluate(env: &Env, e: &EvaluateCheck, vars: &Vars) -> Result<Vec<String>, String> {
    let calls = env.admin("GET", "/admin/calls", None).await?;
    trace_value("FlexFactor calls", &calls);
    let order_id = vars.expand(&e.order_id);
    let bodies: Vec<Value> = calls
        .get("evaluate_bodies")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|b| {
                    matcher::Path::parse("orderId")
                        .ok()
                        .and_then(|p| p.resolve(b))
                        .and_then(|v| v.as_str().map(str::to_string))
                        == Some(order_id.clone())
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let now = env.now();
    let mut out = Vec::new();
    let n = Value::from(bodies.len());
    for c in &e.count {
        if let Some(why) = c.failure(Some(&n), vars, now) {
            out.push(format!("number of /evaluate calls for {order_id}: {why}"));
        }
    }
    let parts: [(&str, &[matcher::FieldExpectation], Vec<&Value>); 3] = [
        ("first", &e.first, bodies.first().into_iter().collect()),
        ("last", &e.last, bodies.last().into_iter().collect()),
        ("each", &e.each, bodies.iter().collect()),
    ];
    for (which, fields, chosen) in parts {
        if fields.is_empty() {
            continue;
        }
        if chosen.is_empty() {
            out.push(format!(
                "no /evaluate call for {order_id} to check ({which})"
            ));
            continue;
        }
        for (i, b) in chosen.iter().enumerate() {
            for f in matcher::check_all(fields, b, vars, now) {
                out.push(format!(
                    "/evaluate {which}{}: {f}",
                    if which == "each" {
                        format!(" #{}", i + 1)
                    } else {
                        String::new()
                    }
                ));
            }
        }
    }
    Ok(out)
}

async fn check_fake_order(
    env: &Env,
    o: &FakeOrderCheck,
    vars: &Vars,
) -> Result<Vec<String>, String> {
    let state = env.admin("GET", "/admin/state", None).await?;
    trace_value(
        "FlexFactor orders",
        state.get("orders").unwrap_or(&Value::Null),
    );
    let order_id = vars.expand(&o.order_id);
    let orders: Vec<&Value> = state
        .get("orders")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter(|x| {
                    x.get("external_order_id").and_then(Value::as_str) == Some(order_id.as_str())
                })
                .collect()
        })
        .unwrap_or_default();
    let now = env.now();
    let mut out = Vec::new();
    let n = Value::from(orders.len());
    for c in &o.count {
        if let Some(why) = c.failure(Some(&n), vars, now) {
            out.push(format!("number of FlexFactor orders for {order_id}: {why}"));
        }
    }
    if !o.last.is_empty() {
        match orders.last() {
            None => out.push(format!("FlexFactor has no order for {order_id}")),
            Some(last) => out.extend(
                matcher::check_all(&o.last, last, vars, now)
                    .into_iter()
                    .map(|f| format!("FlexFactor's order: {f}")),
            ),
        }
    }
    Ok(out)
}

async fn check_notifications(
    env: &Env,
    n: &NotificationCheck,
    vars: &Vars,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let Some(inbox) = &env.crm else {
        notes.push("notifications not checked: the runner does not receive this deployment's notifications (--notify-listen)".into());
        return Ok(Vec::new());
    };
    let (key, id) = match (&n.order_id, &n.subscription_id) {
        (Some(o), _) => ("order_id", vars.expand(o)),
        (None, Some(s)) => ("subscription_id", vars.expand(s)),
        (None, None) => return Err("notifications: name order_id or subscription_id".into()),
    };
    let of_kind = |list: &[Value]| -> Vec<Value> {
        list.iter()
            .filter(|x| match &n.kind {
                Some(k) => x.get("kind").and_then(Value::as_str) == Some(k.as_str()),
                None => true,
            })
            .cloned()
            .collect()
    };
    // Wait for what is expected to arrive (notifications go out after the answers).
    let enough = |list: &[Value]| -> bool {
        let all = n.kinds.as_ref().is_none_or(|k| list.len() >= k.len());
        let chosen = of_kind(list);
        let count = n.count.is_empty()
            || n.count.iter().all(|c| {
                c.failure(Some(&Value::from(chosen.len())), vars, env.now())
                    .is_none()
            });
        let last = n.last.is_empty() || !chosen.is_empty();
        all && count && last
    };
    let deadline =
        Instant::now() + StdDuration::from_secs(if env.settles_on_request() { 3 } else { 10 });
    let mut list = inbox.about(key, &id);
    while !enough(&list) && Instant::now() < deadline {
        env.settle().await?;
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        list = inbox.about(key, &id);
    }
    // One more round, so that a second (wrong) notification has its chance to show.
    env.settle().await?;
    list = inbox.about(key, &id);
    trace_value("notifications", &Value::Array(list.clone()));
    let mut out = Vec::new();
    let kinds: Vec<String> = list
        .iter()
        .map(|x| {
            x.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    if let Some(expected) = &n.kinds {
        if &kinds != expected {
            out.push(format!(
                "the CRM was told {kinds:?} about {key} {id}, expected {expected:?}"
            ));
        }
    }
    let chosen = of_kind(&list);
    let what = match &n.kind {
        Some(k) => format!("{k} notifications"),
        None => "notifications".to_string(),
    };
    for c in &n.count {
        if let Some(why) = c.failure(Some(&Value::from(chosen.len())), vars, env.now()) {
            out.push(format!(
                "number of {what} about {key} {id}: {why} (all: {kinds:?})"
            ));
        }
    }
    if !n.last.is_empty() {
        match chosen.last() {
            None => out.push(format!("no {what} about {key} {id} (all: {kinds:?})")),
            Some(last) => out.extend(
                matcher::check_all(&n.last, last, vars, env.now())
                    .into_iter()
                    .map(|f| format!("last of the {what}: {f}")),
            ),
        }
    }
    Ok(out)
}

/// A key the gateway does not have (W1).
const WRONG_HMAC_KEY: &str = "d3JvbmctaG1hYy1rZXktd3JvbmctaG1hYy1rZXktd3JvbmctaG1hYy1rZXktd3Jvbmc=";

fn fresh_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = Utc::now().timestamp_nanos_opt().unwrap_or(0) as u64;
    format!("{t:016x}{:016x}", n ^ (std::process::id() as u64) << 32)
}

fn webhook_body(w: &WebhookStep, vars: &Vars, now: DateTime<Utc>) -> String {
    if let Some(raw) = &w.raw_body {
        return vars.expand(raw);
    }
    let opt = |v: &Option<String>| match v {
        Some(s) => Value::String(vars.expand(s)),
        None => Value::Null,
    };
    let mut pairs: Vec<(String, Value)> = vec![
        ("Event".into(), Value::String(w.event.clone())),
        (
            "TimeStamp".into(),
            Value::String(now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()),
        ),
        ("EventData".into(), Value::Null),
        ("ExternalOrderId".into(), opt(&w.external_order_id)),
        ("OrderId".into(), opt(&w.flexfactor_order_id)),
        ("ConfirmationId".into(), opt(&w.confirmation_id)),
        ("IsTestMode".into(), Value::Bool(true)),
        ("IsResent".into(), Value::Bool(w.is_resent)),
    ];
    for (k, v) in &w.extra {
        pairs.push((k.clone(), vars.expand_json(v)));
    }
    // FlexFactor's order of properties (serde_json's map would sort them).
    let fields: Vec<String> = pairs
        .into_iter()
        .map(|(k, v)| {
            let k = if w.lowercase_names {
                k.to_ascii_lowercase()
            } else {
                k
            };
            format!("{}:{v}", Value::String(k))
        })
        .collect();
    format!("{{{}}}", fields.join(","))
}

async fn deliver(ctx: &Context<'_>, w: &WebhookStep, vars: &Vars) -> Result<Answer, String> {
    let env = ctx.env;
    let now = env.now();
    let mut body = webhook_body(w, vars, now);
    if let Some(n) = w.pad_to_bytes {
        while body.len() < n {
            body.push(' ');
        }
    }
    let nonce = match &w.nonce {
        Some(n) => vars.expand(n),
        None => fresh_nonce(),
    };
    let date = format_fc_date(now + w.date_offset);
    let key_text = match w.signing {
        Signing::WrongKey => WRONG_HMAC_KEY.to_string(),
        _ => env.hmac_key.clone(),
    };
    let key = WebhookKey::from_base64(&SecretString::from(key_text))
        .map_err(|e| format!("the HMAC signing key: {e}"))?;
    let mut req = env
        .http
        .post(format!("{}/webhooks/flexfactor", env.api))
        .header("content-type", "application/json");
    match w.signing {
        Signing::Unsigned => {}
        Signing::WrongContentHash => {
            // A consistent signature, but of another body.
            let signed = sign_webhook(
                &key,
                &env.webhook_host,
                &nonce,
                &date,
                format!("{body} ").as_bytes(),
            );
            for (k, v) in signed.pairs() {
                req = req.header(k, v);
            }
        }
        Signing::Valid | Signing::WrongKey => {
            let signed = sign_webhook(&key, &env.webhook_host, &nonce, &date, body.as_bytes());
            for (k, v) in signed.pairs() {
                req = req.header(k, v);
            }
        }
    }
    let r = req
        .body(body)
        .send()
        .await
        .map_err(|e| format!("no answer: {}", e.without_url()))?;
    let status = r.status().as_u16();
    let text = r
        .text()
        .await
        .map_err(|e| format!("answer cut: {}", e.without_url()))?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer { status, text, json })
}

/// Runs a setup check: builds (and starts) a service from the scenario's setup.
async fn run_setup_check(s: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut result = base_result(s, Status::Passed);
    let mut failures = Vec::new();
    for step in &s.steps {
        let Action::StartService(expect) = &step.action else {
            continue;
        };
        let f = match setup::edited_setup(&s.setup) {
            Ok(setup) => check_start(&setup, expect).await,
            Err(e) => vec![format!("given.setup: {e}")],
        };
        failures.extend(
            f.into_iter()
                .map(|x| format!("{} ({}): {x}", step.label(), step.describe())),
        );
    }
    if !failures.is_empty() {
        result.status = Status::Failed;
        result.failures = failures;
    }
    result.duration = started.elapsed();
    result
}

/// Whether a service starts with `setup` (`Ok(Err(refusal))` when it does not); `Err` when
/// the configuration text cannot even be built (a fault of the scenario, not of the service).
pub async fn start_with(setup: &toml::Table) -> Result<Result<(), String>, String> {
    let text =
        target::in_process_config(setup, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/notify")?;
    let config =
        match ServiceConfig::from_str(&text, std::path::Path::new("salvage.toml"), &|_| None) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.to_string())),
        };
    let mut options = ServeOptions::new(Arc::new(salvage_domain::ManualClock::new(
        target::world_start(),
    )));
    options.sandbox_charges = true;
    match start(config, options).await {
        Ok(running) => {
            let _ = running.shutdown().await;
            Ok(Ok(()))
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

async fn check_start(setup: &toml::Table, expect: &StartExpect) -> Vec<String> {
    let outcome = match start_with(setup).await {
        Ok(o) => o,
        Err(e) => return vec![e],
    };
    if std::env::var_os("SALVAGE_CONFORMANCE_TRACE").is_some() {
        eprintln!("[trace] start: {outcome:?}");
    }
    let mut out = Vec::new();
    match (&outcome, expect.fails) {
        (Ok(()), true) => out.push("the service started; expected a refusal".to_string()),
        (Err(e), false) => out.push(format!("the service did not start: {e}")),
        _ => {}
    }
    if let Err(message) = &outcome {
        for t in &expect.message_contains {
            if !message.contains(t.as_str()) {
                out.push(format!("the refusal does not say {t:?}: {message}"));
            }
        }
        for t in &expect.message_excludes {
            if message.contains(t.as_str()) {
                out.push(format!("the refusal shows {t:?}, which it must not"));
            }
        }
        if expect.message_excludes_secrets {
            for secret in setup::secrets(setup) {
                if !secret.is_empty() && message.contains(&secret) {
                    out.push("the refusal shows a FlexFactor secret (S1)".into());
                }
            }
        }
    }
    out
}
