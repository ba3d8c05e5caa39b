//! The scenario files (`conformance/scenarios/*.toml`): their model and their loader.
//!
//! The format is documented in `docs/conformance.md`. In short, a file holds `[[scenario]]`
//! entries, each with `id`, `rules`, `title`, an optional `isolated`, a `given` (setup edits of
//! the sample setup and prior steps), `when` steps and `then` steps. Every step does exactly one
//! thing (`post`, `get`, `webhook`, `advance`, `settle`, `fault`, `clear_faults`,
//! `flexfactor_evaluate`, `flexfactor_calls`, `flexfactor_order`, `notifications`,
//! `start_service`) and may say what it expects. Files whose name starts with `_` hold shared
//! request templates (`[templates.NAME]`).
//!
//! Every problem is reported with the file, the scenario and the field.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::catalogue;
use crate::error::LoadError;
use crate::matcher::{self, Check, FieldExpectation};
use crate::setup::SetupEdit;
use crate::vars;

/// The endpoint names of FlexFactor's call counts (`flexfactor_calls`).
pub const ENDPOINTS: [&str; 9] = [
    "token",
    "tokenize",
    "evaluate",
    "order",
    "cancel",
    "external_cancel",
    "refund",
    "capture",
    "outcome",
];

/// Where a step sits in its scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Given,
    When,
    Then,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Given => "given",
            Phase::When => "when",
            Phase::Then => "then",
        })
    }
}

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// JSON (strings may hold `${...}`).
    Json(Value),
    /// Sent exactly as written.
    Raw {
        text: String,
        content_type: Option<String>,
    },
}

/// Which credentials a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The target's API key.
    Key,
    /// No `Authorization` header.
    None,
    /// A key the service does not know.
    Wrong,
}

/// What an answer must be.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpExpect {
    /// The status (a number or a matcher table).
    pub status: Vec<Check>,
    /// Fields of the JSON body.
    pub body: Vec<FieldExpectation>,
    /// Texts the raw body must not contain.
    pub body_excludes: Vec<String>,
    /// The body must contain none of the setup's FlexFactor secrets (S1).
    pub body_excludes_secrets: bool,
}

impl HttpExpect {
    /// True when nothing is expected.
    pub fn is_empty(&self) -> bool {
        self.status.is_empty()
            && self.body.is_empty()
            && self.body_excludes.is_empty()
            && !self.body_excludes_secrets
    }
}

/// A request to the service's API.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpStep {
    pub method: Method,
    pub path: String,
    pub body: Option<Body>,
    pub auth: Auth,
    pub expect: HttpExpect,
    pub capture: Vec<(String, matcher::Path)>,
    /// Repeat the request (letting due work run) until `expect` holds, for a few seconds.
    pub eventually: bool,
}

/// How a webhook delivery is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// Correctly, with the gateway's HMACSigningKey.
    Valid,
    /// With another key (W1).
    WrongKey,
    /// Correct signature, but `x-fc-content-sha512` does not match the body (W1).
    WrongContentHash,
    /// No `x-fc-*` headers at all.
    Unsigned,
}

/// A signed delivery to `POST /webhooks/flexfactor`, built like FlexFactor's.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookStep {
    pub event: String,
    pub external_order_id: Option<String>,
    pub flexfactor_order_id: Option<String>,
    pub confirmation_id: Option<String>,
    pub is_resent: bool,
    /// Sent instead of the built body.
    pub raw_body: Option<String>,
    /// Extra fields added to the built body (F5: unknown fields are ignored).
    pub extra: BTreeMap<String, Value>,
    /// Property names in lower case instead of FlexFactor's PascalCase (F5).
    pub lowercase_names: bool,
    /// Pad the body with spaces to this many bytes (W5).
    pub pad_to_bytes: Option<usize>,
    /// `x-fc-nonce` (default: a fresh one).
    pub nonce: Option<String>,
    /// Added to the current time for `x-fc-date` (W2).
    pub date_offset: chrono::Duration,
    pub signing: Signing,
    pub expect: HttpExpect,
}

/// `flexfactor_evaluate`: the `/evaluate` bodies the fake received for one merchant order.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluateCheck {
    pub order_id: String,
    pub count: Vec<Check>,
    pub first: Vec<FieldExpectation>,
    pub last: Vec<FieldExpectation>,
    pub each: Vec<FieldExpectation>,
}

/// `flexfactor_order`: the fake's orders for one merchant order (from `/admin/state`).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeOrderCheck {
    pub order_id: String,
    pub count: Vec<Check>,
    pub last: Vec<FieldExpectation>,
}

/// `notifications`: what the CRM was told about one order or subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationCheck {
    pub order_id: Option<String>,
    pub subscription_id: Option<String>,
    /// The kinds, in order, one per distinct `event_id`.
    pub kinds: Option<Vec<String>>,
    /// Only notifications of this kind count for `count` and `last`.
    pub kind: Option<String>,
    /// How many (of `kind`, if given).
    pub count: Vec<Check>,
    pub last: Vec<FieldExpectation>,
}

/// `start_service`: build the service from the scenario's setup.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StartExpect {
    /// The start must be refused.
    pub fails: bool,
    /// Texts the refusal must contain (rule IDs, field names).
    pub message_contains: Vec<String>,
    /// Texts it must not contain.
    pub message_excludes: Vec<String>,
    /// It must show none of the setup's FlexFactor secrets (S1).
    pub message_excludes_secrets: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Http(Box<HttpStep>),
    Webhook(Box<WebhookStep>),
    /// Move the clock (service and fake) and let due work run.
    Advance(chrono::Duration),
    /// Let due work run (deliveries, timers, notifications).
    Settle,
    /// Add a fault rule at the fake (`/admin/faults`).
    Fault(Value),
    /// Remove every fault rule.
    ClearFaults,
    FlexFactorEvaluate(Box<EvaluateCheck>),
    /// FlexFactor calls since the scenario began, per endpoint.
    FlexFactorCalls(Vec<(String, Vec<Check>)>),
    FlexFactorOrder(Box<FakeOrderCheck>),
    Notifications(Box<NotificationCheck>),
    StartService(StartExpect),
}

/// One step, with what it captures into variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub phase: Phase,
    /// 1-based within its phase.
    pub index: usize,
    pub action: Action,
    pub capture: Vec<(String, matcher::Path)>,
}

impl Step {
    /// `when[2]`.
    pub fn label(&self) -> String {
        format!("{}[{}]", self.phase, self.index)
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Http(h) => format!(
                "{} {}",
                match h.method {
                    Method::Get => "GET",
                    Method::Post => "POST",
                },
                h.path
            ),
            Action::Webhook(w) => format!("webhook {}", w.event),
            Action::Advance(d) => format!("advance {}", format_duration(*d)),
            Action::Settle => "settle".into(),
            Action::Fault(f) => format!("fault {f}"),
            Action::ClearFaults => "clear faults".into(),
            Action::FlexFactorEvaluate(e) => format!("FlexFactor /evaluate for {}", e.order_id),
            Action::FlexFactorCalls(_) => "FlexFactor calls".into(),
            Action::FlexFactorOrder(o) => format!("FlexFactor order {}", o.order_id),
            Action::Notifications(n) => format!(
                "notifications for {}",
                n.order_id
                    .as_deref()
                    .or(n.subscription_id.as_deref())
                    .unwrap_or("?")
            ),
            Action::StartService(_) => "start the service".into(),
        }
    }
}

/// One scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub rules: Vec<String>,
    /// Runs on its own service and fake (in-process).
    pub isolated: bool,
    pub setup: Vec<SetupEdit>,
    pub steps: Vec<Step>,
    /// The file it came from.
    pub file: PathBuf,
}

impl Scenario {
    /// True when it only validates a setup (no service to talk to).
    pub fn is_setup_check(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::StartService(_)))
    }

    /// True when it moves the clock.
    pub fn moves_clock(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Advance(_)))
    }

    /// True when it checks notifications.
    pub fn checks_notifications(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.action, Action::Notifications(_)))
    }
}

/// One scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFile {
    pub path: PathBuf,
    /// The file's stem (`c_cascades`).
    pub name: String,
    pub title: String,
    pub scenarios: Vec<Scenario>,
}

/// Every scenario file of a directory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Suite {
    pub files: Vec<ScenarioFile>,
}

impl Suite {
    /// Loads every `*.toml` of `dir` (sorted by name); `_*.toml` files hold shared templates.
    /// Scenario ids must be unique across the suite.
    pub fn load_dir(dir: &Path) -> Result<Suite, LoadError> {
        let entries = std::fs::read_dir(dir).map_err(|e| LoadError::Read {
            file: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        let mut templates = Templates::new();
        let (shared, scenario_files): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .into_iter()
            .partition(|p| file_stem(p).starts_with('_'));
        for p in &shared {
            let text = read(p)?;
            templates.extend(load_templates(&text, p)?);
        }
        let mut suite = Suite::default();
        for p in &scenario_files {
            let text = read(p)?;
            suite.files.push(load_file(&text, p, &templates)?);
        }
        if suite.files.is_empty() {
            return Err(LoadError::File {
                file: dir.to_path_buf(),
                reason: "no scenario files (*.toml) here".into(),
            });
        }
        suite.check_unique_ids()?;
        Ok(suite)
    }

    fn check_unique_ids(&self) -> Result<(), LoadError> {
        let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
        for f in &self.files {
            for s in &f.scenarios {
                if let Some(other) = seen.insert(&s.id, &f.path) {
                    return Err(LoadError::Scenario {
                        file: f.path.clone(),
                        scenario: s.id.clone(),
                        field: "id".into(),
                        reason: format!("also used in {}", other.display()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every scenario.
    pub fn scenarios(&self) -> impl Iterator<Item = &Scenario> {
        self.files.iter().flat_map(|f| f.scenarios.iter())
    }

    /// The rule IDs no scenario covers.
    pub fn uncovered_rules(&self) -> Vec<&'static str> {
        let covered: BTreeSet<&str> = self
            .scenarios()
            .flat_map(|s| s.rules.iter().map(String::as_str))
            .collect();
        catalogue::RULES
            .iter()
            .filter(|r| !covered.contains(r.id))
            .map(|r| r.id)
            .collect()
    }

    /// Keeps the scenarios covering a rule `filters` select (IDs or group letters); none: all.
    pub fn only(mut self, filters: &[String]) -> Suite {
        if filters.is_empty() {
            return self;
        }
        for f in &mut self.files {
            f.scenarios.retain(|s| {
                s.rules
                    .iter()
                    .any(|r| filters.iter().any(|flt| catalogue::selects(flt, r)))
            });
        }
        self.files.retain(|f| !f.scenarios.is_empty());
        self
    }
}

fn file_stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read(p: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(p).map_err(|e| LoadError::Read {
        file: p.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Request body templates by name.
pub type Templates = BTreeMap<String, Value>;

fn load_templates(text: &str, path: &Path) -> Result<Templates, LoadError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| LoadError::Toml {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let templates = table.remove("templates");
    if let Some(k) = table.keys().next() {
        return Err(LoadError::File {
            file: path.to_path_buf(),
            reason: format!(
                "unknown top-level key `{k}` (a template file holds only [templates.NAME])"
            ),
        });
    }
    templates_of(templates, path)
}

fn templates_of(v: Option<toml::Value>, path: &Path) -> Result<Templates, LoadError> {
    let mut out = Templates::new();
    match v {
        None => {}
        Some(toml::Value::Table(t)) => {
            for (name, body) in t {
                if !body.is_table() {
                    return Err(LoadError::File {
                        file: path.to_path_buf(),
                        reason: format!("templates.{name}: a template is a table (a JSON body)"),
                    });
                }
                out.insert(name, matcher::toml_to_json(&body));
            }
        }
        Some(_) => {
            return Err(LoadError::File {
                file: path.to_path_buf(),
                reason: "`templates` is a table of tables".into(),
            })
        }
    }
    Ok(out)
}

/// Loads one scenario file's text (`path` names it in errors) with the shared templates.
pub fn load_file(text: &str, path: &Path, shared: &Templates) -> Result<ScenarioFile, LoadError> {
    let mut table: toml::Table = toml::from_str(text).map_err(|e| LoadError::Toml {
        file: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let file_err = |reason: String| LoadError::File {
        file: path.to_path_buf(),
        reason,
    };
    let title = match table.remove("title") {
        None => String::new(),
        Some(toml::Value::String(s)) => s,
        Some(_) => return Err(file_err("`title` is a string".into())),
    };
    let mut templates = shared.clone();
    templates.extend(templates_of(table.remove("templates"), path)?);
    let scenarios = table.remove("scenario");
    if let Some(k) = table.keys().next() {
        return Err(file_err(format!(
            "unknown top-level key `{k}` (known: title, templates, scenario)"
        )));
    }
    let scenarios = match scenarios {
        Some(toml::Value::Array(a)) => a,
        Some(_) => {
            return Err(file_err(
                "`scenario` is an array of tables ([[scenario]])".into(),
            ))
        }
        None => return Err(file_err("no [[scenario]] in this file".into())),
    };
    let mut out = Vec::new();
    for (i, s) in scenarios.into_iter().enumerate() {
        let toml::Value::Table(t) = s else {
            return Err(file_err(format!("scenario #{}: not a table", i + 1)));
        };
        out.push(load_scenario(t, i, path, &templates)?);
    }
    Ok(ScenarioFile {
        path: path.to_path_buf(),
        name: file_stem(path),
        title,
        scenarios: out,
    })
}

/// The keys of a table, taken one by one, so that leftovers can be refused.
struct Fields {
    table: toml::Table,
    at: String,
}

impl Fields {
    fn new(table: toml::Table, at: impl Into<String>) -> Fields {
        Fields {
            table,
            at: at.into(),
        }
    }

    fn take(&mut self, key: &str) -> Option<toml::Value> {
        self.table.remove(key)
    }

    fn field(&self, key: &str) -> String {
        if self.at.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.at)
        }
    }

    fn string(&mut self, key: &str) -> Result<Option<String>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err((self.field(key), "must be a string".into())),
        }
    }

    fn boolean(&mut self, key: &str) -> Result<Option<bool>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Boolean(b)) => Ok(Some(b)),
            Some(_) => Err((self.field(key), "must be true or false".into())),
        }
    }

    fn table(&mut self, key: &str) -> Result<Option<toml::Table>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(_) => Err((self.field(key), "must be a table".into())),
        }
    }

    fn strings(&mut self, key: &str) -> Result<Option<Vec<String>>, (String, String)> {
        match self.take(key) {
            None => Ok(None),
            Some(toml::Value::Array(a)) => a
                .into_iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s),
                    _ => Err((self.field(key), "must be an array of strings".into())),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err((self.field(key), "must be an array of strings".into())),
        }
    }

    fn fields(&mut self, key: &str) -> Result<Vec<FieldExpectation>, (String, String)> {
        match self.table(key)? {
            None => Ok(Vec::new()),
            Some(t) => matcher::parse_fields(&t).map_err(|e| (self.field(key), e)),
        }
    }

    fn checks(&mut self, key: &str) -> Result<Vec<Check>, (String, String)> {
        match self.take(key) {
            None => Ok(Vec::new()),
            Some(v) => matcher::parse_checks(&v).map_err(|e| (self.field(key), e)),
        }
    }

    fn finish(self, known: &[&str]) -> Result<(), (String, String)> {
        match self.table.keys().next() {
            None => Ok(()),
            Some(k) => Err((
                self.field(k),
                format!("unknown field (known here: {})", known.join(", ")),
            )),
        }
    }
}

fn load_scenario(
    t: toml::Table,
    index: usize,
    path: &Path,
    templates: &Templates,
) -> Result<Scenario, LoadError> {
    let name = t
        .get("id")
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .unwrap_or_else(|| format!("#{}", index + 1));
    let err = |(field, reason): (String, String)| LoadError::Scenario {
        file: path.to_path_buf(),
        scenario: name.clone(),
        field,
        reason,
    };
    let mut f = Fields::new(t, "");
    let id = f
        .string("id")
        .map_err(err)?
        .ok_or_else(|| err(("id".into(), "required".into())))?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(err((
            "id".into(),
            "lower-case letters, digits and `-` only (it prefixes order ids)".into(),
        )));
    }
    let title = f.string("title").map_err(err)?.unwrap_or_default();
    let rules = f
        .strings("rules")
        .map_err(err)?
        .ok_or_else(|| err(("rules".into(), "required: the rule IDs it checks".into())))?;
    if rules.is_empty() {
        return Err(err(("rules".into(), "name at least one rule ID".into())));
    }
    for r in &rules {
        if catalogue::find(r).is_none() {
            return Err(err((
                "rules".into(),
                format!("{r:?} is not a rule ID of the catalogue"),
            )));
        }
    }
    let isolated = f.boolean("isolated").map_err(err)?.unwrap_or(false);
    let mut setup = Vec::new();
    let mut steps = Vec::new();
    if let Some(given) = f.table("given").map_err(err)? {
        let mut g = Fields::new(given, "given");
        if let Some(v) = g.take("setup") {
            let toml::Value::Array(edits) = v else {
                return Err(err(("given.setup".into(), "an array of edits".into())));
            };
            for (i, e) in edits.into_iter().enumerate() {
                let field = format!("given.setup[{}]", i + 1);
                let edit: SetupEdit = e
                    .try_into()
                    .map_err(|x: toml::de::Error| err((field.clone(), x.message().to_string())))?;
                edit.validate().map_err(|x| err((field.clone(), x)))?;
                setup.push(edit);
            }
            // The edits must give a setup: checked when the scenario runs (S rules expect
            // refusals), but the paths must exist now.
            crate::setup::edited_setup(&setup).map_err(|x| err(("given.setup".into(), x)))?;
        }
        if let Some(v) = g.take("steps") {
            steps.extend(load_steps(v, Phase::Given, templates).map_err(err)?);
        }
        g.finish(&["setup", "steps"]).map_err(err)?;
    }
    let when = f
        .take("when")
        .ok_or_else(|| err(("when".into(), "required: at least one step".into())))?;
    let when = load_steps(when, Phase::When, templates).map_err(err)?;
    if when.is_empty() {
        return Err(err(("when".into(), "at least one step".into())));
    }
    steps.extend(when);
    if let Some(v) = f.take("then") {
        steps.extend(load_steps(v, Phase::Then, templates).map_err(err)?);
    }
    f.finish(&["id", "title", "rules", "isolated", "given", "when", "then"])
        .map_err(err)?;
    let scenario = Scenario {
        id,
        title,
        rules,
        isolated,
        setup,
        steps,
        file: path.to_path_buf(),
    };
    check_shape(&scenario).map_err(err)?;
    Ok(scenario)
}

/// Whole-scenario checks: a setup check stands alone; variables are defined before use.
fn check_shape(s: &Scenario) -> Result<(), (String, String)> {
    if s.is_setup_check() {
        if let Some(other) = s
            .steps
            .iter()
            .find(|st| !matches!(st.action, Action::StartService(_)))
        {
            return Err((
                other.label(),
                "a scenario with `start_service` has no other steps".into(),
            ));
        }
    }
    let mut defined: BTreeSet<String> = BTreeSet::from(["id".to_string()]);
    for st in &s.steps {
        for name in step_references(st) {
            if !defined.contains(&name) {
                return Err((
                    st.label(),
                    format!(
                        "${{{name}}} is not defined before this step (define it with `capture`)"
                    ),
                ));
            }
        }
        for (name, _) in &st.capture {
            defined.insert(name.clone());
        }
    }
    Ok(())
}

fn refs_json(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vars::references(s),
        Value::Array(a) => a.iter().flat_map(refs_json).collect(),
        Value::Object(o) => o
            .iter()
            .flat_map(|(k, v)| {
                let mut r = vars::references(k);
                r.extend(refs_json(v));
                r
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn refs_checks(fields: &[FieldExpectation]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| f.checks.iter())
        .flat_map(|c| match c {
            Check::Eq(v) | Check::Ne(v) | Check::NotContains(v) => refs_json(v),
            Check::Contains { value, .. } => refs_json(value),
            Check::OneOf(l) => l.iter().flat_map(refs_json).collect(),
            Check::StartsWith(s) => vars::references(s),
            _ => Vec::new(),
        })
        .collect()
}

fn step_references(st: &Step) -> Vec<String> {
    let mut out = Vec::new();
    match &st.action {
        Action::Http(h) => {
            out.extend(vars::references(&h.path));
            match &h.body {
                Some(Body::Json(v)) => out.extend(refs_json(v)),
                Some(Body::Raw { text, .. }) => out.extend(vars::references(text)),
                None => {}
            }
            out.extend(refs_checks(&h.expect.body));
        }
        Action::Webhook(w) => {
            for s in [
                &w.external_order_id,
                &w.flexfactor_order_id,
                &w.confirmation_id,
                &w.nonce,
                &w.raw_body,
            ]
            .into_iter()
            .flatten()
            {
                out.extend(vars::references(s));
            }
            out.extend(refs_checks(&w.expect.body));
        }
        Action::FlexFactorEvaluate(e) => {
            out.extend(vars::references(&e.order_id));
            out.extend(refs_checks(&e.first));
            out.extend(refs_checks(&e.last));
            out.extend(refs_checks(&e.each));
        }
        Action::FlexFactorOrder(o) => {
            out.extend(vars::references(&o.order_id));
            out.extend(refs_checks(&o.last));
        }
        Action::Notifications(n) => {
            for s in [&n.order_id, &n.subscription_id].into_iter().flatten() {
                out.extend(vars::references(s));
            }
            out.extend(refs_checks(&n.last));
        }
        _ => {}
    }
    out
}

fn load_steps(
    v: toml::Value,
    phase: Phase,
    templates: &Templates,
) -> Result<Vec<Step>, (String, String)> {
    let toml::Value::Array(items) = v else {
        return Err((
            phase.to_string(),
            "an array of steps ([[scenario.when]] or `when = [...]`)".into(),
        ));
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{phase}[{}]", i + 1);
        let toml::Value::Table(t) = item else {
            return Err((at, "a step is a table".into()));
        };
        let (action, capture) = load_step(t, &at, templates)?;
        out.push(Step {
            phase,
            index: i + 1,
            action,
            capture,
        });
    }
    Ok(out)
}

/// The action keys of a step (exactly one per step).
pub const ACTIONS: &[&str] = &[
    "post",
    "get",
    "webhook",
    "advance",
    "settle",
    "fault",
    "clear_faults",
    "flexfactor_evaluate",
    "flexfactor_calls",
    "flexfactor_order",
    "notifications",
    "start_service",
];

type Loaded = (Action, Vec<(String, matcher::Path)>);

fn load_step(t: toml::Table, at: &str, templates: &Templates) -> Result<Loaded, (String, String)> {
    let present: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| t.contains_key(*a))
        .collect();
    let action = match present.as_slice() {
        [one] => *one,
        [] => {
            return Err((
                at.to_string(),
                format!("a step needs one of: {}", ACTIONS.join(", ")),
            ))
        }
        many => {
            return Err((
                at.to_string(),
                format!("a step does one thing; this one has {}", many.join(" and ")),
            ))
        }
    };
    let mut f = Fields::new(t, at);
    let capture = match f.table("capture")? {
        None => Vec::new(),
        Some(c) => c
            .into_iter()
            .map(|(name, p)| {
                let text = p
                    .as_str()
                    .ok_or_else(|| (f.field("capture"), format!("{name}: a path (string)")))?;
                let path = matcher::Path::parse(text).map_err(|e| (f.field("capture"), e))?;
                Ok((name, path))
            })
            .collect::<Result<Vec<_>, (String, String)>>()?,
    };
    let loaded = match action {
        "post" | "get" => {
            let method = if action == "post" {
                Method::Post
            } else {
                Method::Get
            };
            let path = f
                .string(action)?
                .ok_or_else(|| (f.field(action), "a path such as /v1/orders".into()))?;
            if !path.starts_with('/') {
                return Err((f.field(action), "the path starts with /".into()));
            }
            let body = load_body(&mut f, templates)?;
            if method == Method::Get && body.is_some() {
                return Err((f.field("body"), "a GET has no body".into()));
            }
            let auth = match f.string("auth")?.as_deref() {
                None | Some("key") => Auth::Key,
                Some("none") => Auth::None,
                Some("wrong") => Auth::Wrong,
                Some(other) => {
                    return Err((
                        f.field("auth"),
                        format!("{other:?}: one of \"key\", \"none\", \"wrong\""),
                    ))
                }
            };
            let expect = load_expect(&mut f)?;
            let eventually = f.boolean("eventually")?.unwrap_or(false);
            if eventually && method != Method::Get {
                return Err((
                    f.field("eventually"),
                    "only a GET is repeated until it holds".into(),
                ));
            }
            f.finish(&[
                action,
                "body",
                "template",
                "set",
                "unset",
                "raw_body",
                "content_type",
                "auth",
                "expect",
                "capture",
                "eventually",
            ])?;
            Action::Http(Box::new(HttpStep {
                method,
                path,
                body,
                auth,
                expect,
                capture: capture.clone(),
                eventually,
            }))
        }
        "webhook" => {
            let w = f.table("webhook")?.unwrap_or_default();
            let expect = load_expect(&mut f)?;
            f.finish(&["webhook", "expect", "capture"])?;
            Action::Webhook(Box::new(load_webhook(w, &format!("{at}.webhook"), expect)?))
        }
        "advance" => {
            let text = f
                .string("advance")?
                .ok_or_else(|| (f.field("advance"), "a duration such as \"1d1m\"".into()))?;
            let d = parse_duration(&text).map_err(|e| (f.field("advance"), e))?;
            if d <= chrono::Duration::zero() {
                return Err((f.field("advance"), "the clock only moves forward".into()));
            }
            f.finish(&["advance"])?;
            Action::Advance(d)
        }
        "settle" => {
            if f.boolean("settle")? != Some(true) {
                return Err((f.field("settle"), "write `settle = true`".into()));
            }
            f.finish(&["settle"])?;
            Action::Settle
        }
        "clear_faults" => {
            if f.boolean("clear_faults")? != Some(true) {
                return Err((
                    f.field("clear_faults"),
                    "write `clear_faults = true`".into(),
                ));
            }
            f.finish(&["clear_faults"])?;
            Action::ClearFaults
        }
        "fault" => {
            let v = f
                .take("fault")
                .ok_or_else(|| (f.field("fault"), "a fault rule".into()))?;
            let rule: salvage_sim::fake_flexfactor::FaultRule = v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| (f.field("fault"), e.message().to_string()))?;
            rule.validate().map_err(|e| (f.field("fault"), e))?;
            f.finish(&["fault"])?;
            Action::Fault(matcher::toml_to_json(&v))
        }
        "flexfactor_evaluate" => {
            let t = f.table("flexfactor_evaluate")?.unwrap_or_default();
            f.finish(&["flexfactor_evaluate"])?;
            let mut g = Fields::new(t, format!("{at}.flexfactor_evaluate"));
            let order_id = g.string("order_id")?.ok_or_else(|| {
                (
                    g.field("order_id"),
                    "required: the merchant's order id".into(),
                )
            })?;
            let check = EvaluateCheck {
                order_id,
                count: g.checks("count")?,
                first: g.fields("first")?,
                last: g.fields("last")?,
                each: g.fields("each")?,
            };
            g.finish(&["order_id", "count", "first", "last", "each"])?;
            Action::FlexFactorEvaluate(Box::new(check))
        }
        "flexfactor_calls" => {
            let t = f.table("flexfactor_calls")?.unwrap_or_default();
            f.finish(&["flexfactor_calls"])?;
            let mut counts = Vec::new();
            for (name, v) in t {
                if !ENDPOINTS.contains(&name.as_str()) {
                    return Err((
                        format!("{at}.flexfactor_calls.{name}"),
                        format!("unknown endpoint (known: {})", ENDPOINTS.join(", ")),
                    ));
                }
                let checks = matcher::parse_checks(&v)
                    .map_err(|e| (format!("{at}.flexfactor_calls.{name}"), e))?;
                counts.push((name, checks));
            }
            if counts.is_empty() {
                return Err((format!("{at}.flexfactor_calls"), "name an endpoint".into()));
            }
            Action::FlexFactorCalls(counts)
        }
        "flexfactor_order" => {
            let t = f.table("flexfactor_order")?.unwrap_or_default();
            f.finish(&["flexfactor_order"])?;
            let mut g = Fields::new(t, format!("{at}.flexfactor_order"));
            let order_id = g.string("order_id")?.ok_or_else(|| {
                (
                    g.field("order_id"),
                    "required: the merchant's order id".into(),
                )
            })?;
            let check = FakeOrderCheck {
                order_id,
                count: g.checks("count")?,
                last: g.fields("last")?,
            };
            g.finish(&["order_id", "count", "last"])?;
            Action::FlexFactorOrder(Box::new(check))
        }
        "notifications" => {
            let t = f.table("notifications")?.unwrap_or_default();
            f.finish(&["notifications"])?;
            let mut g = Fields::new(t, format!("{at}.notifications"));
            let check = NotificationCheck {
                order_id: g.string("order_id")?,
                subscription_id: g.string("subscription_id")?,
                kinds: g.strings("kinds")?,
                kind: g.string("kind")?,
                count: g.checks("count")?,
                last: g.fields("last")?,
            };
            if check.order_id.is_some() == check.subscription_id.is_some() {
                return Err((
                    g.field("order_id"),
                    "name exactly one of order_id, subscription_id".into(),
                ));
            }
            g.finish(&[
                "order_id",
                "subscription_id",
                "kinds",
                "kind",
                "count",
                "last",
            ])?;
            Action::Notifications(Box::new(check))
        }
        "start_service" => {
            if f.boolean("start_service")? != Some(true) {
                return Err((
                    f.field("start_service"),
                    "write `start_service = true`".into(),
                ));
            }
            let t = f.table("expect")?.unwrap_or_default();
            f.finish(&["start_service", "expect"])?;
            let mut g = Fields::new(t, format!("{at}.expect"));
            let e = StartExpect {
                fails: g.boolean("fails")?.unwrap_or(false),
                message_contains: g.strings("message_contains")?.unwrap_or_default(),
                message_excludes: g.strings("message_excludes")?.unwrap_or_default(),
                message_excludes_secrets: g.boolean("message_excludes_secrets")?.unwrap_or(false),
            };
            g.finish(&[
                "fails",
                "message_contains",
                "message_excludes",
                "message_excludes_secrets",
            ])?;
            if !e.fails && !e.message_contains.is_empty() {
                return Err((
                    format!("{at}.expect.message_contains"),
                    "only a refused start has a message (set `fails = true`)".into(),
                ));
            }
            Action::StartService(e)
        }
        other => return Err((at.to_string(), format!("unhandled action {other}"))),
    };
    let capture = match &loaded {
        Action::Http(_) | Action::Webhook(_) => capture,
        _ if capture.is_empty() => capture,
        _ => {
            return Err((
                format!("{at}.capture"),
                "only requests and webhooks capture values".into(),
            ))
        }
    };
    Ok((loaded, capture))
}

fn load_body(f: &mut Fields, templates: &Templates) -> Result<Option<Body>, (String, String)> {
    let body = f.table("body")?;
    let template = f.string("template")?;
    let set = f.table("set")?;
    let unset = f.strings("unset")?;
    let raw = f.string("raw_body")?;
    let content_type = f.string("content_type")?;
    if raw.is_some() && (body.is_some() || template.is_some() || set.is_some() || unset.is_some()) {
        return Err((
            f.field("raw_body"),
            "`raw_body` is sent as it is: no body, template, set or unset with it".into(),
        ));
    }
    if let Some(text) = raw {
        return Ok(Some(Body::Raw { text, content_type }));
    }
    if content_type.is_some() {
        return Err((f.field("content_type"), "only with `raw_body`".into()));
    }
    let mut json = match (body, template) {
        (Some(_), Some(_)) => {
            return Err((f.field("template"), "either `body` or `template`".into()))
        }
        (Some(b), None) => matcher::toml_to_json(&toml::Value::Table(b)),
        (None, Some(name)) => templates.get(&name).cloned().ok_or_else(|| {
            (
                f.field("template"),
                format!(
                    "no template {name:?} (known: {})",
                    templates.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?,
        (None, None) => {
            if set.is_some() || unset.is_some() {
                return Err((
                    f.field("set"),
                    "`set`/`unset` need a `body` or `template`".into(),
                ));
            }
            return Ok(None);
        }
    };
    for (path, v) in set.unwrap_or_default() {
        set_json(&mut json, &path, matcher::toml_to_json(&v))
            .map_err(|e| (f.field(&format!("set.\"{path}\"")), e))?;
    }
    for path in unset.unwrap_or_default() {
        unset_json(&mut json, &path).map_err(|e| (f.field("unset"), e))?;
    }
    Ok(Some(Body::Json(json)))
}

fn load_expect(f: &mut Fields) -> Result<HttpExpect, (String, String)> {
    let Some(t) = f.table("expect")? else {
        return Ok(HttpExpect::default());
    };
    let mut g = Fields::new(t, f.field("expect"));
    let e = HttpExpect {
        status: g.checks("status")?,
        body: g.fields("body")?,
        body_excludes: g.strings("body_excludes")?.unwrap_or_default(),
        body_excludes_secrets: g.boolean("body_excludes_secrets")?.unwrap_or(false),
    };
    g.finish(&["status", "body", "body_excludes", "body_excludes_secrets"])?;
    Ok(e)
}

fn load_webhook(
    t: toml::Table,
    at: &str,
    expect: HttpExpect,
) -> Result<WebhookStep, (String, String)> {
    let mut g = Fields::new(t, at);
    let raw_body = g.string("raw_body")?;
    let event = match g.string("event")? {
        Some(e) => e,
        None if raw_body.is_some() => String::new(),
        None => {
            return Err((
                g.field("event"),
                "required (e.g. \"order.completed\")".into(),
            ))
        }
    };
    let signing = match g.string("signing")?.as_deref() {
        None | Some("valid") => Signing::Valid,
        Some("wrong_key") => Signing::WrongKey,
        Some("wrong_content_hash") => Signing::WrongContentHash,
        Some("unsigned") => Signing::Unsigned,
        Some(other) => {
            return Err((
                g.field("signing"),
                format!(
                "{other:?}: one of \"valid\", \"wrong_key\", \"wrong_content_hash\", \"unsigned\""
            ),
            ))
        }
    };
    let date_offset = match g.string("date_offset")? {
        None => chrono::Duration::zero(),
        Some(s) => parse_duration(&s).map_err(|e| (g.field("date_offset"), e))?,
    };
    let pad_to_bytes = match g.take("pad_to_bytes") {
        None => None,
        Some(toml::Value::Integer(n)) if n > 0 => Some(n as usize),
        Some(_) => return Err((g.field("pad_to_bytes"), "a positive integer".into())),
    };
    let extra = g
        .table("extra")?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, matcher::toml_to_json(&v)))
        .collect();
    let w = WebhookStep {
        event,
        external_order_id: g.string("external_order_id")?,
        flexfactor_order_id: g.string("order_id")?,
        confirmation_id: g.string("confirmation_id")?,
        is_resent: g.boolean("is_resent")?.unwrap_or(false),
        raw_body,
        extra,
        lowercase_names: g.boolean("lowercase_names")?.unwrap_or(false),
        pad_to_bytes,
        nonce: g.string("nonce")?,
        date_offset,
        signing,
        expect,
    };
    g.finish(&[
        "event",
        "external_order_id",
        "order_id",
        "confirmation_id",
        "is_resent",
        "raw_body",
        "extra",
        "lowercase_names",
        "pad_to_bytes",
        "nonce",
        "date_offset",
        "signing",
    ])?;
    if w.raw_body.is_some()
        && (w.external_order_id.is_some() || w.flexfactor_order_id.is_some() || !w.extra.is_empty())
    {
        return Err((
            g_field(at, "raw_body"),
            "`raw_body` is sent as it is: no event fields with it".into(),
        ));
    }
    Ok(w)
}

fn g_field(at: &str, key: &str) -> String {
    format!("{at}.{key}")
}

/// Parses `1d`, `2h`, `30m`, `45s`, `1d1h30m`, `-10m` (a sign, then number-unit pairs).
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let t = text.trim();
    let (negative, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    if body.is_empty() {
        return Err(format!(
            "{text:?}: a duration such as \"1d\", \"2h\", \"1d1m\", \"30s\""
        ));
    }
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    for c in body.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("{text:?}: a number before each unit"))?;
        digits.clear();
        let part = match c {
            'd' => chrono::Duration::try_days(n),
            'h' => chrono::Duration::try_hours(n),
            'm' => chrono::Duration::try_minutes(n),
            's' => chrono::Duration::try_seconds(n),
            other => return Err(format!("{text:?}: unknown unit {other:?} (d, h, m, s)")),
        }
        .ok_or_else(|| format!("{text:?}: too large"))?;
        total = total
            .checked_add(&part)
            .ok_or_else(|| format!("{text:?}: too large"))?;
    }
    if !digits.is_empty() {
        return Err(format!("{text:?}: a unit after {digits} (d, h, m, s)"));
    }
    Ok(if negative { -total } else { total })
}

/// `1d1h` for reports.
pub fn format_duration(d: chrono::Duration) -> String {
    let mut s = d.num_seconds();
    let mut out = String::new();
    if s < 0 {
        out.push('-');
        s = -s;
    }
    for (unit, n) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if s >= n {
            out.push_str(&format!("{}{unit}", s / n));
            s %= n;
        }
    }
    if out.is_empty() || out == "-" {
        out.push_str("0s");
    }
    out
}

/// Sets the value at a dotted path of a JSON body (`attempt.gateway_id`, `items[0].price_minor`),
/// creating objects on the way.
pub fn set_json(root: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segs = json_segments(path)?;
    let mut cur = root;
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        cur = match seg {
            JsonSeg::Key(k) => {
                if cur.is_null() {
                    *cur = Value::Object(serde_json::Map::new());
                }
                let Value::Object(o) = cur else {
                    return Err(format!("{path}: `{k}` is not inside an object"));
                };
                if last {
                    o.insert(k.clone(), value);
                    return Ok(());
                }
                o.entry(k.clone()).or_insert(Value::Null)
            }
            JsonSeg::Index(n) => {
                let Value::Array(a) = cur else {
                    return Err(format!("{path}: [{n}] is not inside an array"));
                };
                let len = a.len();
                let slot = a
                    .get_mut(*n)
                    .ok_or_else(|| format!("{path}: index [{n}] out of range (length {len})"))?;
                if last {
                    *slot = value;
                    return Ok(());
                }
                slot
            }
        };
    }
    Ok(())
}

/// Removes the value at a dotted path (missing is an error: the template has no such field).
pub fn unset_json(root: &mut Value, path: &str) -> Result<(), String> {
    let segs = json_segments(path)?;
    let (last, init) = segs.split_last().ok_or("empty path")?;
    let mut cur = root;
    for seg in init {
        cur = match (seg, cur) {
            (JsonSeg::Key(k), Value::Object(o)) => {
                o.get_mut(k).ok_or_else(|| format!("{path}: no `{k}`"))?
            }
            (JsonSeg::Index(n), Value::Array(a)) => {
                a.get_mut(*n).ok_or_else(|| format!("{path}: no [{n}]"))?
            }
            _ => return Err(format!("{path}: no such field")),
        };
    }
    match (last, cur) {
        (JsonSeg::Key(k), Value::Object(o)) => o
            .remove(k)
            .map(|_| ())
            .ok_or_else(|| format!("{path}: no such field")),
        (JsonSeg::Index(n), Value::Array(a)) if *n < a.len() => {
            a.remove(*n);
            Ok(())
        }
        _ => Err(format!("{path}: no such field")),
    }
}

enum JsonSeg {
    Key(String),
    Index(usize),
}

fn json_segments(path: &str) -> Result<Vec<JsonSeg>, String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("{path:?}: empty segment"));
        }
        if !name.is_empty() {
            out.push(JsonSeg::Key(name.to_string()));
        }
        while let Some(end) = rest.find(']') {
            let n = rest[1..end]
                .parse()
                .map_err(|_| format!("{path:?}: [{}] is not an index", &rest[1..end]))?;
            out.push(JsonSeg::Index(n));
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(format!("{path:?}: `[` without `]`"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Result<ScenarioFile, LoadError> {
        let mut templates = Templates::new();
        templates.insert(
            "sale".into(),
            json!({"order_id": "x", "attempt": {"gateway_id": "nmi-main"}}),
        );
        load_file(text, Path::new("t.toml"), &templates)
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("1d1m").unwrap(),
            chrono::Duration::minutes(24 * 60 + 1)
        );
        assert_eq!(
            parse_duration("-10m").unwrap(),
            chrono::Duration::minutes(-10)
        );
        assert_eq!(
            parse_duration("90s").unwrap(),
            chrono::Duration::seconds(90)
        );
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(
            format_duration(chrono::Duration::minutes(24 * 60 + 1)),
            "1d1m"
        );
    }

    #[test]
    fn a_scenario_loads_with_templates_set_and_captures() {
        let f = load(
            r#"
            [[scenario]]
            id = "r2-x"
            rules = ["R2"]
            [[scenario.given.steps]]
            post = "/v1/orders"
            template = "sale"
            set = { order_id = "${id}-1", "attempt.decline_type" = "soft" }
            expect = { status = 201 }
            capture = { ff = "salvage.flexfactor_order_id" }
            [[scenario.when]]
            webhook = { event = "order.completed", external_order_id = "${id}-1", order_id = "${ff}" }
            expect = { status = 200, body = { status = "applied" } }
            [[scenario.then]]
            flexfactor_calls = { evaluate = 1, token = { lte = 1 } }
            "#,
        )
        .unwrap();
        let s = &f.scenarios[0];
        assert_eq!(s.steps.len(), 3);
        let Action::Http(h) = &s.steps[0].action else {
            panic!()
        };
        assert_eq!(
            h.body,
            Some(Body::Json(
                json!({"order_id": "${id}-1", "attempt": {"gateway_id": "nmi-main", "decline_type": "soft"}})
            ))
        );
        assert_eq!(s.steps[0].label(), "given[1]");
        assert_eq!(s.steps[1].label(), "when[1]");
    }

    #[test]
    fn errors_name_file_scenario_and_field() {
        let cases = [
            (
                r#"[[scenario]]
                id = "a"
                rules = ["Z9"]
                when = [{ settle = true }]"#,
                "rules",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", bdy = {} }]"#,
                "when[1].bdy",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", get = "/x" }]"#,
                "when[1]",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ get = "/v1/orders/${ff}" }]"#,
                "when[1]",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ post = "/v1/orders", template = "nope" }]"#,
                "when[1].template",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ get = "/v1/x", expect = { body = { status = { equals = 1 } } } }]"#,
                "when[1].expect.body",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]
                when = [{ fault = { endpoint = "webhooks", kind = "timeout", hold_ms = 1 } }]"#,
                "when[1].fault",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["S2"]
                given = { setup = [{ set = "gateways[id=nope].x", value = 1 }] }
                when = [{ start_service = true }]"#,
                "given.setup",
            ),
            (
                r#"[[scenario]]
                id = "a"
                rules = ["C1"]"#,
                "when",
            ),
            (
                r#"[[scenario]]
                id = "A b"
                rules = ["C1"]
                when = [{ settle = true }]"#,
                "id",
            ),
        ];
        for (text, field) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.starts_with("t.toml: scenario"), "{e}");
            assert!(
                e.contains(&format!(": {field}:")),
                "expected field {field} in: {e}"
            );
        }
        let e = load("x = 1").unwrap_err().to_string();
        assert!(e.contains("t.toml") && e.contains("`x`"), "{e}");
        let e = load("[[scenario]\n").unwrap_err().to_string();
        assert!(e.contains("t.toml: not valid TOML"), "{e}");
    }

    #[test]
    fn json_set_and_unset() {
        let mut v = json!({"a": {"b": 1}, "items": [{"p": 1}]});
        set_json(&mut v, "a.c", json!(2)).unwrap();
        set_json(&mut v, "items[0].p", json!(3)).unwrap();
        set_json(&mut v, "x.y", json!(true)).unwrap();
        unset_json(&mut v, "a.b").unwrap();
        assert_eq!(
            v,
            json!({"a": {"c": 2}, "items": [{"p": 3}], "x": {"y": true}})
        );
        assert!(unset_json(&mut v, "a.zz").is_err());
        assert!(set_json(&mut v, "items[5].p", json!(1)).is_err());
    }
}
