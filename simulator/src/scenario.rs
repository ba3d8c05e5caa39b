//! A scenario: the base setup, the setup variants compared, the population and its traffic mix,
//! the gateway and FlexFactor models, the CRM's rerun policy, what happens after a salvage, the
//! horizon and the seed. Loaded from TOML and checked as a whole; every problem is reported with
//! the file and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use salvage_domain::setup::SetupError;
use salvage_domain::{CampaignId, Currency, GatewayId, ProductId, Setup};
use serde::{Deserialize, Serialize};

use crate::crm::check_crm;
use crate::error::{Problems, ScenarioError, ScenarioProblem};
use crate::sweep::{Sweep, SweepSpec};
use crate::variant::{Variant, VariantSpec};

pub use crate::crm::CrmPolicy;

/// The virtual time the simulation starts at when the scenario does not say.
pub const DEFAULT_START: &str = "2026-01-05T00:00:00Z";

/// The longest FlexFactor success delay the model can draw, in days: S2's maximum expiry.
pub const MAX_DELAY_DAYS: usize = 21;

/// A scenario file as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The seed of every random stream.
    pub seed: u64,
    /// How long the simulated period lasts; nothing is simulated after it.
    pub horizon_days: u32,
    /// RFC 3339 start of the virtual clock.
    #[serde(default = "default_start")]
    pub start: String,
    pub setup: SetupSource,
    pub population: PopulationSpec,
    #[serde(default)]
    pub gateways: GatewayModelSpec,
    #[serde(default)]
    pub flexfactor: FlexFactorModelSpec,
    #[serde(default)]
    pub crm: CrmPolicy,
    #[serde(default)]
    pub after_sale: AfterSaleSpec,
    /// The setup variants compared; none (and no sweep) means one variant, "base", the setup
    /// as it is.
    #[serde(default)]
    pub variants: Vec<VariantSpec>,
    /// Sweeps over one parameter each; every value is a variant, after `variants`.
    #[serde(default, rename = "sweep", skip_serializing_if = "Vec::is_empty")]
    pub sweeps: Vec<SweepSpec>,
}

fn default_start() -> String {
    DEFAULT_START.to_string()
}

/// Where the base setup comes from: a file (relative to the scenario file) or inline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// A whole setup, written as the setup file would be, under `[setup.inline]`.
    #[serde(default, skip_serializing)]
    pub inline: Option<toml::Table>,
}

/// Who buys what.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PopulationSpec {
    /// How many customers; each places one new sale.
    pub customers: u32,
    /// New sales arrive uniformly over the first `arrival_days` days (0: all at the start).
    #[serde(default = "default_arrival_days")]
    pub arrival_days: u32,
    /// The share of sales that carry an `ip_address` (C3: without one, no cascade to FlexFactor).
    #[serde(default = "default_ip_share")]
    pub ip_address_share: f64,
    /// The traffic mix: which campaign product a customer buys, by weight.
    pub products: Vec<ProductMix>,
    /// The networks of the customers' cards, by weight (N1-N5 guard Visa and Mastercard).
    #[serde(default)]
    pub card_networks: CardNetworkMix,
}

/// The customers' card networks, by weight. The default is an assumption, not a figure from
/// the reference: about the US shares of card purchase volume (Visa about 60%, Mastercard about
/// 30%, American Express, Discover and the rest about 10%).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardNetworkMix {
    pub visa: u32,
    pub mastercard: u32,
    pub other: u32,
}

impl Default for CardNetworkMix {
    fn default() -> Self {
        CardNetworkMix {
            visa: 60,
            mastercard: 30,
            other: 10,
        }
    }
}

fn default_arrival_days() -> u32 {
    30
}

fn default_ip_share() -> f64 {
    0.9
}

/// One product of the traffic mix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductMix {
    pub campaign: CampaignId,
    pub product: ProductId,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// One decline code of the gateway model's mix. The network advice goes with the card: a
/// decline of a Visa card carries `visa_category` (none: the setup's code tables decide, N6),
/// one of a Mastercard card `mastercard_advice_code`, one of any other card neither. One code
/// can be listed several times, with the advice codes it comes with and their weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclineCode {
    pub code: String,
    pub message: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visa_category: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mastercard_advice_code: Option<String>,
}

/// How regular processor gateways answer. Probabilities are in 0..=1.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayModelSpec {
    /// The first attempt of a new sale.
    pub new_sale_approval: f64,
    /// A cascade step on a regular gateway (the sale was just declined elsewhere).
    pub cascade_approval: f64,
    /// The first attempt of a rebill or trial completion.
    pub rebill_approval: f64,
    /// Recycle re-attempt 1, 2, ... on the billing gateway; the last value repeats.
    pub recycle_approval: Vec<f64>,
    /// The share of declines the processor calls soft (before decline mapping, D2).
    pub soft_share: f64,
    /// Approval factor of rebills billed with the card number and no CVV (O6).
    pub card_number_without_cvv_factor: f64,
    /// Approval factor of any attempt on a card once its issuer has said it will never approve
    /// it (a decline in Visa category 1, or with Mastercard advice 03, 21 or 99), until it is
    /// approved again: cascade steps, rebills, re-attempts, and FlexFactor's recoveries too.
    pub never_retry_approval_factor: f64,
    pub soft_declines: Vec<DeclineCode>,
    pub hard_declines: Vec<DeclineCode>,
    /// Per-gateway overrides of the figures above.
    pub per_gateway: BTreeMap<GatewayId, GatewayOverride>,
}

/// A gateway's own figures; what is absent comes from the defaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_sale_approval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cascade_approval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebill_approval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recycle_approval: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_share: Option<f64>,
}

fn code(
    code: &str,
    message: &str,
    weight: u32,
    visa_category: Option<u8>,
    mastercard_advice_code: Option<&str>,
) -> DeclineCode {
    DeclineCode {
        code: code.into(),
        message: message.into(),
        weight,
        visa_category,
        mastercard_advice_code: mastercard_advice_code.map(str::to_string),
    }
}

impl Default for GatewayModelSpec {
    /// Visa categories as the newer published lists give them (decline-domain.md §1.2);
    /// Mastercard advice codes as its decline groups map them (§1.3: lifecycle 14, 54 → MAC 01;
    /// policy 57, 61 → 02 or 03; security 41, 43 → 03), with insufficient funds answered with
    /// a retry time (MAC 24-30, the Authorization Optimizer on recurring payments) or MAC 02,
    /// and a few "do not honor" with MAC 03 or 21 (a recurring payment the cardholder
    /// stopped). How often each MAC comes is not published: these weights are assumptions.
    fn default() -> Self {
        let nsf = "Insufficient funds";
        let dnh = "Do not honor";
        GatewayModelSpec {
            new_sale_approval: 0.85,
            cascade_approval: 0.25,
            rebill_approval: 0.87,
            recycle_approval: vec![0.15, 0.12, 0.10, 0.08, 0.07, 0.06, 0.05, 0.05, 0.04],
            soft_share: 0.8,
            card_number_without_cvv_factor: 0.95,
            never_retry_approval_factor: 0.0,
            soft_declines: vec![
                code("51", nsf, 16, Some(2), None),
                code("51", nsf, 12, Some(2), Some("02")),
                code("51", nsf, 3, Some(2), Some("24")),
                code("51", nsf, 3, Some(2), Some("25")),
                code("51", nsf, 2, Some(2), Some("26")),
                code("51", nsf, 1, Some(2), Some("27")),
                code("51", nsf, 1, Some(2), Some("28")),
                code("51", nsf, 1, Some(2), Some("29")),
                code("51", nsf, 1, Some(2), Some("30")),
                code("05", dnh, 31, None, None),
                code("05", dnh, 2, None, Some("03")),
                code("05", dnh, 2, None, Some("21")),
                code("91", "Issuer unavailable", 10, Some(2), None),
                code(
                    "61",
                    "Exceeds withdrawal amount limit",
                    10,
                    Some(2),
                    Some("02"),
                ),
                code("96", "System malfunction", 5, Some(2), None),
            ],
            hard_declines: vec![
                code("54", "Expired card", 40, Some(3), Some("01")),
                code("14", "Invalid card number", 20, Some(1), Some("01")),
                code(
                    "57",
                    "Transaction not permitted to cardholder",
                    20,
                    Some(1),
                    Some("03"),
                ),
                code("41", "Lost card", 10, Some(1), Some("03")),
                code("43", "Stolen card", 10, Some(1), Some("03")),
            ],
            per_gateway: BTreeMap::new(),
        }
    }
}

/// FlexFactor's success probability per recycle slot (S6).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotRates {
    #[serde(rename = "4-6")]
    pub attempts_4_to_6: f64,
    #[serde(rename = "7-9")]
    pub attempts_7_to_9: f64,
    #[serde(rename = "final")]
    pub final_attempt: f64,
}

/// How FlexFactor answers. Asynchronous recoveries (reruns, recycle hand-overs) happen with the
/// given probability after a delay drawn from `delay_day_weights`; a delay past the submission's
/// expiry is an expiry, so a shorter `expiry_days` loses the late recoveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlexFactorModelSpec {
    /// C5: the share of cascade submissions approved at once.
    pub cascade_approval: f64,
    /// R2: the share of reruns FlexFactor would recover within 21 days.
    pub rerun_recovery: f64,
    /// Y3: the share of recycle hand-overs recovered within 21 days, per slot.
    pub recycle_recovery: SlotRates,
    /// Relative weights of a recovery landing on day 0, 1, ... 20 after the submission.
    pub delay_day_weights: Vec<u32>,
    /// The share of result webhooks that never arrive; reconciliation (O8) finds them.
    pub lost_webhook_share: f64,
}

impl Default for FlexFactorModelSpec {
    fn default() -> Self {
        FlexFactorModelSpec {
            cascade_approval: 0.25,
            rerun_recovery: 0.35,
            recycle_recovery: SlotRates {
                attempts_4_to_6: 0.40,
                attempts_7_to_9: 0.35,
                final_attempt: 0.30,
            },
            delay_day_weights: vec![
                20, 15, 12, 10, 8, 7, 6, 5, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1,
            ],
            lost_webhook_share: 0.01,
        }
    }
}

/// What happens to salvaged orders later (K1-K3).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AfterSaleSpec {
    /// The share of FlexFactor-salvaged orders charged back.
    pub chargeback_share: f64,
    /// The chargeback arrives uniformly between these days after the salvage.
    pub chargeback_delay_days: [u32; 2],
    /// The share of FlexFactor-salvaged orders refunded.
    pub refund_share: f64,
    pub refund_delay_days: [u32; 2],
}

impl Default for AfterSaleSpec {
    fn default() -> Self {
        AfterSaleSpec {
            chargeback_share: 0.01,
            chargeback_delay_days: [20, 90],
            refund_share: 0.03,
            refund_delay_days: [1, 30],
        }
    }
}

/// Values that replace the file's, for quick runs (CLI flags, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScenarioOverrides {
    pub seed: Option<u64>,
    pub customers: Option<u32>,
    pub horizon_days: Option<u32>,
}

/// A product of the mix, resolved against the base setup.
#[derive(Debug, Clone)]
pub struct ResolvedProduct {
    pub campaign: CampaignId,
    pub product: ProductId,
    pub price_minor: i64,
    pub weight: u32,
    pub recurring: bool,
    pub trial: bool,
    pub single_transaction: bool,
    /// The gateway of the first attempt, when fixed by the product or the campaign.
    pub gateway: Option<GatewayId>,
    /// The ATRI gateway profile and its members, when the campaign routes through one.
    pub gateway_profile: Option<(salvage_domain::GatewayProfileId, Vec<GatewayId>)>,
}

/// A loaded, checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from (for messages); a label for scenarios built from text.
    pub path: PathBuf,
    pub spec: ScenarioSpec,
    pub start: DateTime<Utc>,
    pub currency: Currency,
    pub base_setup: Arc<Setup>,
    pub products: Vec<ResolvedProduct>,
    pub variants: Vec<Variant>,
    /// The sweeps, each naming its variants.
    pub sweeps: Vec<Sweep>,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path, overrides: ScenarioOverrides) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_toml_str(&text, path, overrides)
    }

    /// Checks a shipped scenario ([`crate::shipped`]), its setup read from the embedded files.
    pub fn shipped(
        shipped: &crate::shipped::ShippedScenario,
        overrides: ScenarioOverrides,
    ) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_in(
            shipped.file.text,
            Path::new(shipped.file.path),
            overrides,
            Files::Shipped,
        )
    }

    /// Checks a scenario given as text; `path` names it in messages and anchors a relative setup
    /// path (on the disk).
    pub fn from_toml_str(
        text: &str,
        path: &Path,
        overrides: ScenarioOverrides,
    ) -> Result<Scenario, ScenarioError> {
        Scenario::from_toml_in(text, path, overrides, Files::Disk)
    }

    /// Checks a scenario given as text, reading the files it names from `files`.
    pub fn from_toml_in(
        text: &str,
        path: &Path,
        overrides: ScenarioOverrides,
        files: Files,
    ) -> Result<Scenario, ScenarioError> {
        let mut spec: ScenarioSpec = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if let Some(seed) = overrides.seed {
            spec.seed = seed;
        }
        if let Some(customers) = overrides.customers {
            spec.population.customers = customers;
        }
        if let Some(days) = overrides.horizon_days {
            spec.horizon_days = days;
        }
        let invalid = |problems: Problems| ScenarioError::Invalid {
            path: path.to_path_buf(),
            problems: problems.0,
        };

        let mut p = Problems::default();
        let start = match DateTime::parse_from_rfc3339(&spec.start) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => {
                p.add(
                    "start",
                    format!("{:?} is not an RFC 3339 time: {e}", spec.start),
                );
                DateTime::<Utc>::UNIX_EPOCH
            }
        };
        check_numbers(&spec, &mut p);
        let base = load_setup(&spec.setup, path, files, &mut p)?;
        let Some(base) = base else {
            return Err(invalid(p));
        };
        let products = resolve_products(&spec, &base, &mut p);
        let currency = products
            .first()
            .and_then(|r| base.campaign(&r.campaign))
            .map(|c| c.currency);
        let mut currencies: Vec<Currency> = products
            .iter()
            .filter_map(|r| base.campaign(&r.campaign).map(|c| c.currency))
            .collect();
        currencies.sort();
        currencies.dedup();
        if currencies.len() > 1 {
            p.add(
                "population.products",
                format!(
                    "the products are sold in several currencies ({}); a report adds amounts, so use one",
                    currencies
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        for g in spec.gateways.per_gateway.keys() {
            match base.gateway(g) {
                None => p.add(
                    format!("gateways.per_gateway.{g:?}"),
                    "is not a gateway of the setup",
                ),
                Some(gw) if gw.is_flexfactor() => p.add(
                    format!("gateways.per_gateway.{g:?}"),
                    "is the FlexFactor gateway; its answers are modelled under [flexfactor]",
                ),
                Some(_) => {}
            }
        }
        let (swept, sweeps) =
            crate::sweep::expand(&spec.sweeps, spec.variants.len(), &base, &mut p);
        let mut specs = spec.variants.clone();
        specs.extend(swept);
        let variants =
            crate::variant::build_all(&specs, &spec.crm, &spec.flexfactor, &base, &mut p);
        if !p.0.is_empty() {
            return Err(invalid(p));
        }
        let Some(currency) = currency else {
            let mut p = Problems::default();
            p.add("population.products", "the traffic mix is empty");
            return Err(invalid(p));
        };
        Ok(Scenario {
            path: path.to_path_buf(),
            spec,
            start,
            currency,
            base_setup: Arc::new(base),
            products,
            variants,
            sweeps,
        })
    }

    /// The end of the simulated period.
    pub fn end(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::days(i64::from(self.spec.horizon_days))
    }
}

fn check_numbers(spec: &ScenarioSpec, p: &mut Problems) {
    if spec.name.trim().is_empty() {
        p.add("name", "is empty");
    }
    if spec.horizon_days == 0 {
        p.add("horizon_days", "must be at least 1");
    }
    if spec.horizon_days > 3660 {
        p.add("horizon_days", "must be at most 3660 (ten years)");
    }
    let pop = &spec.population;
    if pop.customers == 0 {
        p.add("population.customers", "must be at least 1");
    }
    p.share("population.ip_address_share", pop.ip_address_share);
    if pop.products.is_empty() {
        p.add("population.products", "the traffic mix is empty");
    } else if pop.products.iter().all(|m| m.weight == 0) {
        p.add("population.products", "every weight is 0");
    }
    let n = &pop.card_networks;
    if n.visa == 0 && n.mastercard == 0 && n.other == 0 {
        p.add("population.card_networks", "every weight is 0");
    }

    let g = &spec.gateways;
    p.share("gateways.new_sale_approval", g.new_sale_approval);
    p.share("gateways.cascade_approval", g.cascade_approval);
    p.share("gateways.rebill_approval", g.rebill_approval);
    p.share("gateways.soft_share", g.soft_share);
    p.share(
        "gateways.card_number_without_cvv_factor",
        g.card_number_without_cvv_factor,
    );
    p.share(
        "gateways.never_retry_approval_factor",
        g.never_retry_approval_factor,
    );
    if g.recycle_approval.is_empty() {
        p.add("gateways.recycle_approval", "needs at least one value");
    }
    for (i, v) in g.recycle_approval.iter().enumerate() {
        p.share(format!("gateways.recycle_approval[{i}]"), *v);
    }
    for (name, codes) in [
        ("soft_declines", &g.soft_declines),
        ("hard_declines", &g.hard_declines),
    ] {
        if codes.iter().all(|c| c.weight == 0) {
            p.add(
                format!("gateways.{name}"),
                "needs at least one code with a weight above 0",
            );
        }
        for (i, c) in codes.iter().enumerate() {
            if let Some(category) = c.visa_category.filter(|c| !(1..=4).contains(c)) {
                p.add(
                    format!("gateways.{name}[{i}].visa_category"),
                    format!("{category} is not a Visa category (1 to 4)"),
                );
            }
            if let Some(mac) = &c.mastercard_advice_code {
                let two_digits = mac.len() == 2 && mac.bytes().all(|b| b.is_ascii_digit());
                if !two_digits {
                    p.add(
                        format!("gateways.{name}[{i}].mastercard_advice_code"),
                        format!("{mac:?} is not a Mastercard advice code (two digits, \"01\" to \"99\")"),
                    );
                }
            }
        }
    }
    for (id, o) in &g.per_gateway {
        let f = |name: &str| format!("gateways.per_gateway.{id:?}.{name}");
        for (name, v) in [
            ("new_sale_approval", o.new_sale_approval),
            ("cascade_approval", o.cascade_approval),
            ("rebill_approval", o.rebill_approval),
            ("soft_share", o.soft_share),
        ] {
            if let Some(v) = v {
                p.share(f(name), v);
            }
        }
        if let Some(list) = &o.recycle_approval {
            if list.is_empty() {
                p.add(f("recycle_approval"), "needs at least one value");
            }
            for (i, v) in list.iter().enumerate() {
                p.share(format!("{}[{i}]", f("recycle_approval")), *v);
            }
        }
    }

    let ff = &spec.flexfactor;
    p.share("flexfactor.cascade_approval", ff.cascade_approval);
    p.share("flexfactor.rerun_recovery", ff.rerun_recovery);
    p.share(
        "flexfactor.recycle_recovery.\"4-6\"",
        ff.recycle_recovery.attempts_4_to_6,
    );
    p.share(
        "flexfactor.recycle_recovery.\"7-9\"",
        ff.recycle_recovery.attempts_7_to_9,
    );
    p.share(
        "flexfactor.recycle_recovery.final",
        ff.recycle_recovery.final_attempt,
    );
    p.share("flexfactor.lost_webhook_share", ff.lost_webhook_share);
    if ff.delay_day_weights.is_empty() || ff.delay_day_weights.iter().all(|w| *w == 0) {
        p.add(
            "flexfactor.delay_day_weights",
            "needs at least one weight above 0",
        );
    }
    if ff.delay_day_weights.len() > MAX_DELAY_DAYS {
        p.add(
            "flexfactor.delay_day_weights",
            format!(
                "has {} weights; FlexFactor works at most {MAX_DELAY_DAYS} days (S2), so at most {MAX_DELAY_DAYS}",
                ff.delay_day_weights.len()
            ),
        );
    }

    check_crm(&spec.crm, "crm", p);

    let a = &spec.after_sale;
    p.share("after_sale.chargeback_share", a.chargeback_share);
    p.share("after_sale.refund_share", a.refund_share);
    if a.chargeback_share + a.refund_share > 1.0 {
        p.add("after_sale", "chargeback_share + refund_share is above 1");
    }
    for (name, [lo, hi]) in [
        ("chargeback_delay_days", a.chargeback_delay_days),
        ("refund_delay_days", a.refund_delay_days),
    ] {
        if lo > hi {
            p.add(
                format!("after_sale.{name}"),
                format!("[{lo}, {hi}]: the first day is after the last"),
            );
        }
    }
}

/// Where the files a scenario names (its setup) are read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// The file system, relative to the scenario file.
    Disk,
    /// The files compiled into the binary ([`crate::shipped`]), relative to the scenario's
    /// path in the repository.
    Shipped,
}

impl Files {
    fn read(self, path: &Path) -> Result<String, String> {
        match self {
            Files::Disk => std::fs::read_to_string(path).map_err(|e| e.to_string()),
            Files::Shipped => crate::shipped::file(path)
                .map(str::to_string)
                .ok_or_else(|| "not a shipped file".to_string()),
        }
    }
}

fn load_setup(
    source: &SetupSource,
    scenario: &Path,
    files: Files,
    p: &mut Problems,
) -> Result<Option<Setup>, ScenarioError> {
    let (label, text) = match (&source.path, &source.inline) {
        (Some(rel), None) => {
            let dir = scenario.parent().unwrap_or_else(|| Path::new(""));
            let full = dir.join(rel);
            let text = files.read(&full).map_err(|e| ScenarioError::Invalid {
                path: scenario.to_path_buf(),
                problems: vec![ScenarioProblem {
                    field: "setup.path".into(),
                    message: format!("cannot read {}: {e}", full.display()),
                }],
            })?;
            (rel.clone(), text)
        }
        (None, Some(table)) => {
            let text = toml::to_string(table).map_err(|e| ScenarioError::Setup {
                path: scenario.to_path_buf(),
                setup: "(inline)".into(),
                error: SetupError::Parse(e.to_string()),
            })?;
            ("(inline)".to_string(), text)
        }
        _ => {
            p.add(
                "setup",
                "give exactly one of `path` (a setup file, relative to the scenario) or `inline`",
            );
            return Ok(None);
        }
    };
    Setup::from_toml_str(&text)
        .map(Some)
        .map_err(|error| ScenarioError::Setup {
            path: scenario.to_path_buf(),
            setup: label,
            error,
        })
}

fn resolve_products(spec: &ScenarioSpec, setup: &Setup, p: &mut Problems) -> Vec<ResolvedProduct> {
    let mut out = Vec::new();
    for (i, mix) in spec.population.products.iter().enumerate() {
        let field = format!("population.products[{i}]");
        let Some(campaign) = setup.campaign(&mix.campaign) else {
            p.add(
                format!("{field}.campaign"),
                format!("campaign {:?} is not in the setup", mix.campaign.as_str()),
            );
            continue;
        };
        let Some(product) = campaign.product(&mix.product) else {
            p.add(
                format!("{field}.product"),
                format!(
                    "product {:?} is not in campaign {:?}",
                    mix.product.as_str(),
                    mix.campaign.as_str()
                ),
            );
            continue;
        };
        if product.price_minor <= 0 {
            p.add(
                format!("{field}.product"),
                "has no price: an order needs an amount above zero",
            );
        }
        let gateway = product.gateway.clone().or(campaign.gateway.clone());
        let gateway_profile = match (&gateway, &campaign.gateway_profile) {
            (None, Some(gp)) => setup
                .gateway_profile(gp)
                .map(|prof| (gp.clone(), prof.members.clone())),
            _ => None,
        };
        if gateway.is_none() && gateway_profile.as_ref().is_none_or(|(_, m)| m.is_empty()) {
            p.add(
                format!("{field}.campaign"),
                format!(
                    "campaign {:?} has no gateway nor gateway profile with members: the sale cannot be charged",
                    mix.campaign.as_str()
                ),
            );
        }
        out.push(ResolvedProduct {
            campaign: mix.campaign.clone(),
            product: mix.product.clone(),
            price_minor: product.price_minor,
            weight: mix.weight,
            recurring: product.recurring.is_some(),
            trial: product.recurring.is_some_and(|r| r.trial_days.is_some()),
            single_transaction: campaign.single_transaction,
            gateway,
            gateway_profile,
        });
    }
    out
}
