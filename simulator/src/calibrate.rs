//! Calibration from real traffic (`salvage calibrate`): a trace (from `salvage export-trace`)
//! is replayed through the domain with the service's setup, and the population's parameters a
//! scenario needs are fitted from the events it commits: the order mix, `ip_address` share and
//! card networks; first-attempt approval of new sales and rebills; the decline code mix with
//! its Visa categories and Mastercard advice codes; cascade steps and recycle re-attempts on
//! regular gateways; FlexFactor's cascade approval, rerun and hand-over recovery by slot and
//! the days to a recovery; lost webhooks; chargebacks and refunds; the CRM's reruns. The result
//! is a scenario TOML in which every fitted value is commented with its sample size.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use salvage_domain::order::{
    CascadeOutcome, FlexFactorResult, OrderEvent, ResultSource, SalvageFailure, SalvageRoute,
};
use salvage_domain::routing::RecycleSlot;
use salvage_domain::subscription::{AdvanceVia, SubscriptionEvent};
use salvage_domain::{DeclineFacts, DeclineType, OrderId, OrderType, Setup};

use crate::recorded::Recorded;
use crate::scenario::MAX_DELAY_DAYS;

/// `hits` out of `n`: a fitted share and its sample size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub hits: u64,
    pub n: u64,
}

impl Share {
    fn add(&mut self, hit: bool) {
        self.n += 1;
        self.hits += u64::from(hit);
    }

    /// The fitted share (none without a sample).
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.hits as f64 / self.n as f64)
    }

    /// The 95% Wilson interval of the share (none without a sample).
    pub fn interval(&self) -> Option<(f64, f64)> {
        let p = self.rate()?;
        let n = self.n as f64;
        let z = 1.96f64;
        let z2 = z * z;
        let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
        let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
        Some((centre - half, centre + half))
    }
}

/// A decline code as seen: the code and message, and the advice by network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeSeen {
    pub count: u64,
    /// Visa categories on Visa cards (0: none given).
    pub visa_categories: BTreeMap<u8, u64>,
    /// Mastercard advice codes on Mastercard cards ("": none given).
    pub mastercard_advice: BTreeMap<String, u64>,
}

/// Everything fitted from a trace.
#[derive(Debug, Clone, Default)]
pub struct Fit {
    pub start: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
    pub last_sale: Option<DateTime<Utc>>,
    pub new_sales: u64,
    /// (campaign, product) → new sales.
    pub products: BTreeMap<(String, String), u64>,
    pub ip_address: Share,
    /// Visa, Mastercard, other.
    pub networks: [u64; 3],
    pub new_sale_approval: Share,
    pub rebill_approval: Share,
    /// Processor verdict soft, among first-attempt declines.
    pub soft: Share,
    /// (soft, code, message) → what was seen.
    pub codes: BTreeMap<(bool, String, String), CodeSeen>,
    pub cascade_approval: Share,
    /// Re-attempt number → approved among answered.
    pub recycle_approval: BTreeMap<u32, Share>,
    pub flexfactor_cascade: Share,
    pub rerun_recovery: Share,
    /// 4-6, 7-9, final.
    pub recycle_recovery: [Share; 3],
    /// Days from submission to a recovery (asynchronous routes).
    pub delay_days: Vec<u64>,
    /// Final results of asynchronous submissions learnt by a poll rather than a webhook.
    pub lost_webhook: Share,
    pub chargeback: Share,
    pub refund: Share,
    pub chargeback_days: Option<(u32, u32)>,
    pub refund_days: Option<(u32, u32)>,
    /// Soft-declined new sales not sent to FlexFactor by their cascade, rerun or not.
    pub rerun: Share,
    pub rerun_trial: Share,
}

fn network(bin: &str) -> usize {
    match bin.chars().next() {
        Some('4') => 0,
        Some('5') | Some('2') => 1,
        _ => 2,
    }
}

fn days(from: DateTime<Utc>, to: DateTime<Utc>) -> u32 {
    ((to - from).num_seconds().max(0) / 86_400) as u32
}

fn widen(range: &mut Option<(u32, u32)>, d: u32) {
    *range = Some(match *range {
        Some((lo, hi)) => (lo.min(d), hi.max(d)),
        None => (d, d),
    });
}

/// What is remembered of an order while its events are read.
#[derive(Default)]
struct OrderSeen {
    order_type: Option<OrderType>,
    network: usize,
    /// The last decline (first attempt or cascade step) was soft after mapping.
    soft_declined: bool,
    /// The cascade was skipped or ended declined: the CRM may rerun it (R1-R5).
    ended_declined: bool,
    cascade_to_flexfactor: bool,
    rerun: bool,
    submitted: BTreeMap<u32, DateTime<Utc>>,
    salvaged_at: Option<DateTime<Utc>>,
    /// Chargeback or refund recorded after a salvage.
    after_sale: Option<bool>,
}

impl Fit {
    /// Fits the parameters from the events of a replay (in commit order).
    pub fn of_events(setup: &Setup, events: &[Recorded]) -> Fit {
        let mut f = Fit::default();
        let mut orders: BTreeMap<OrderId, OrderSeen> = BTreeMap::new();
        for e in events {
            let at = match e {
                Recorded::Order(_, ev) => ev.at(),
                Recorded::Subscription(_, ev) => ev.at(),
            };
            f.last = Some(f.last.map_or(at, |l| l.max(at)));
            match e {
                Recorded::Order(id, ev) => f.order_event(setup, id, ev, &mut orders),
                Recorded::Subscription(_, ev) => f.subscription_event(ev),
            }
        }
        for o in orders.values() {
            let eligible = o.ended_declined && o.soft_declined && !o.cascade_to_flexfactor;
            match o.order_type {
                Some(OrderType::NewSale) if eligible => f.rerun.add(o.rerun),
                Some(OrderType::TrialCompletion) if eligible => f.rerun_trial.add(o.rerun),
                _ => {}
            }
            if o.salvaged_at.is_some() {
                f.chargeback.add(o.after_sale == Some(true));
                f.refund.add(o.after_sale == Some(false));
            }
        }
        f
    }

    fn decline(&mut self, facts: &DeclineFacts, network: usize) {
        let soft = facts.processor_verdict == DeclineType::Soft;
        self.soft.add(soft);
        let seen = self
            .codes
            .entry((
                soft,
                facts.response_code.clone(),
                facts.response_message.clone(),
            ))
            .or_default();
        seen.count += 1;
        match network {
            0 => {
                *seen
                    .visa_categories
                    .entry(facts.visa_category.map_or(0, |c| c.0))
                    .or_default() += 1
            }
            1 => {
                *seen
                    .mastercard_advice
                    .entry(
                        facts
                            .mastercard_advice_code
                            .as_ref()
                            .map(|m| m.0.clone())
                            .unwrap_or_default(),
                    )
                    .or_default() += 1
            }
            _ => {}
        }
    }

    fn order_event(
        &mut self,
        setup: &Setup,
        id: &OrderId,
        ev: &OrderEvent,
        orders: &mut BTreeMap<OrderId, OrderSeen>,
    ) {
        let o = orders.entry(id.clone()).or_default();
        match ev {
            OrderEvent::OrderPlaced { details, at } => {
                o.order_type = Some(details.order_type);
                o.network = network(&details.card.bin);
                if details.order_type == OrderType::NewSale {
                    self.new_sales += 1;
                    self.start = Some(self.start.map_or(*at, |s| s.min(*at)));
                    self.last_sale = Some(self.last_sale.map_or(*at, |s| s.max(*at)));
                    let product = details
                        .items
                        .first()
                        .map(|i| i.product_id.as_str().to_string())
                        .unwrap_or_default();
                    *self
                        .products
                        .entry((details.campaign_id.as_str().to_string(), product))
                        .or_default() += 1;
                    self.ip_address.add(details.ip_address.is_some());
                    self.networks[o.network] += 1;
                }
            }
            OrderEvent::AttemptApproved { .. } | OrderEvent::AttemptDeclined { .. } => {
                let approved = matches!(ev, OrderEvent::AttemptApproved { .. });
                match o.order_type {
                    Some(OrderType::NewSale) => self.new_sale_approval.add(approved),
                    Some(_) => self.rebill_approval.add(approved),
                    None => {}
                }
                if let OrderEvent::AttemptDeclined {
                    facts, effective, ..
                } = ev
                {
                    o.soft_declined = effective.may_go_to_flexfactor();
                    let n = o.network;
                    self.decline(facts, n);
                }
            }
            OrderEvent::CascadeStepDeclined {
                facts, effective, ..
            } => {
                o.soft_declined = effective.may_go_to_flexfactor();
                if !setup.is_flexfactor(&facts.gateway) {
                    self.cascade_approval.add(false);
                }
            }
            OrderEvent::CascadeSkipped { .. }
            | OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Declined,
                ..
            } => o.ended_declined = true,
            OrderEvent::CascadeEnded {
                outcome: CascadeOutcome::Approved { gateway },
                ..
            } if !setup.is_flexfactor(gateway) => self.cascade_approval.add(true),
            OrderEvent::SalvageSubmitted {
                attempt, route, at, ..
            } => {
                match route {
                    SalvageRoute::Cascade { .. } => o.cascade_to_flexfactor = true,
                    SalvageRoute::Rerun => o.rerun = true,
                    SalvageRoute::Recycle { .. } => {}
                }
                o.submitted.insert(*attempt, *at);
            }
            OrderEvent::SalvageSucceeded {
                attempt,
                route,
                source,
                at,
                ..
            } => {
                o.salvaged_at = Some(*at);
                let submitted = o.submitted.get(attempt).copied();
                self.resolved(route, true, source.as_ref(), submitted, *at);
            }
            OrderEvent::SalvageFailed {
                attempt,
                route,
                reason,
                source,
                at,
            } => {
                let submitted = o.submitted.get(attempt).copied();
                // A declined cascade answer, or an asynchronous submission that ended unpaid.
                let counts = match route {
                    SalvageRoute::Cascade { .. } => matches!(reason, SalvageFailure::Declined),
                    _ => !matches!(reason, SalvageFailure::Cancelled),
                };
                if counts {
                    self.resolved(route, false, source.as_ref(), submitted, *at);
                }
            }
            OrderEvent::ChargebackRecorded { at, .. } => {
                if let Some(s) = o.salvaged_at {
                    o.after_sale = Some(true);
                    widen(&mut self.chargeback_days, days(s, *at));
                }
            }
            OrderEvent::OrderRefunded { at, .. } => {
                if let Some(s) = o.salvaged_at {
                    o.after_sale = Some(false);
                    widen(&mut self.refund_days, days(s, *at));
                }
            }
            OrderEvent::ResultIgnored {
                result: FlexFactorResult::Chargeback,
                at,
                ..
            } => {
                // K2: a chargeback delivered while they are not included still happened.
                if let Some(s) = o.salvaged_at {
                    o.after_sale = Some(true);
                    widen(&mut self.chargeback_days, days(s, *at));
                }
            }
            _ => {}
        }
    }

    fn resolved(
        &mut self,
        route: &SalvageRoute,
        recovered: bool,
        source: Option<&ResultSource>,
        submitted: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) {
        let share = match route {
            SalvageRoute::Cascade { .. } => {
                self.flexfactor_cascade.add(recovered);
                return;
            }
            SalvageRoute::Rerun => &mut self.rerun_recovery,
            SalvageRoute::Recycle { slot, .. } => match slot {
                RecycleSlot::Attempts4To6 => &mut self.recycle_recovery[0],
                RecycleSlot::Attempts7To9 => &mut self.recycle_recovery[1],
                RecycleSlot::Final => &mut self.recycle_recovery[2],
            },
        };
        share.add(recovered);
        self.lost_webhook
            .add(matches!(source, Some(ResultSource::StatusPoll)));
        if let (true, Some(s)) = (recovered, submitted) {
            let d = (days(s, at) as usize).min(MAX_DELAY_DAYS - 1);
            if self.delay_days.len() <= d {
                self.delay_days.resize(d + 1, 0);
            }
            self.delay_days[d] += 1;
        }
    }

    fn subscription_event(&mut self, ev: &SubscriptionEvent) {
        match ev {
            SubscriptionEvent::RecycleAttemptDeclined { attempt, .. } => self
                .recycle_approval
                .entry(*attempt)
                .or_default()
                .add(false),
            SubscriptionEvent::CycleAdvanced {
                via: AdvanceVia::Recycle { attempt },
                ..
            } => self.recycle_approval.entry(*attempt).or_default().add(true),
            _ => {}
        }
    }

    /// The scenario TOML: every fitted value with its sample size in a comment; parameters
    /// without a sample keep the simulator's defaults (said so). `setup` is the setup file's
    /// path as the scenario should name it.
    pub fn to_scenario_toml(&self, name: &str, setup: &str, trace: &str) -> String {
        let mut o = String::new();
        let w = &mut o;
        let start = self.start.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let horizon = self.last.map_or(1, |l| days(start, l) + 1).max(1);
        let arrival = self.last_sale.map_or(0, |l| days(start, l) + 1);
        let _ = writeln!(w, "# Fitted by `salvage calibrate` from {trace}.");
        let _ = writeln!(
            w,
            "# Every fitted value is followed by its sample: \"k of n\" (a share) or \"n\" (a count)."
        );
        let _ = writeln!(
            w,
            "# Parameters the trace gives no sample of keep the simulator's defaults (docs/simulation.md)."
        );
        let _ = writeln!(w, "name = {:?}", name);
        let _ = writeln!(
            w,
            "description = {:?}",
            format!("Fitted from {trace}: {} new sales", self.new_sales)
        );
        let _ = writeln!(w, "seed = 1");
        let _ = writeln!(
            w,
            "horizon_days = {horizon}  # from the first new sale to the last event"
        );
        let _ = writeln!(w, "start = {:?}", start.to_rfc3339());
        let _ = writeln!(w, "\n[setup]\npath = {:?}", setup);
        let _ = writeln!(w, "\n[population]");
        let _ = writeln!(
            w,
            "customers = {}  # new sales in the trace",
            self.new_sales.max(1)
        );
        let _ = writeln!(
            w,
            "arrival_days = {arrival}  # from the first new sale to the last"
        );
        share_line(
            w,
            "ip_address_share",
            &self.ip_address,
            "new sales with ip_address",
        );
        let _ = writeln!(w, "products = [");
        for ((campaign, product), n) in &self.products {
            let _ = writeln!(
                w,
                "  {{ campaign = {campaign:?}, product = {product:?}, weight = {n} }},  # {n} of {} new sales",
                self.new_sales
            );
        }
        let _ = writeln!(w, "]");
        let [v, m, x] = self.networks;
        let _ = writeln!(
            w,
            "card_networks = {{ visa = {v}, mastercard = {m}, other = {x} }}  # by BIN, of {} new sales",
            v + m + x
        );

        let _ = writeln!(w, "\n[gateways]");
        share_line(
            w,
            "new_sale_approval",
            &self.new_sale_approval,
            "first attempts of new sales approved",
        );
        share_line(
            w,
            "cascade_approval",
            &self.cascade_approval,
            "cascade steps on regular gateways approved",
        );
        share_line(
            w,
            "rebill_approval",
            &self.rebill_approval,
            "first attempts of rebills and trial completions approved",
        );
        if !self.recycle_approval.is_empty() {
            let max = self.recycle_approval.keys().max().copied().unwrap_or(0);
            let mut values = Vec::new();
            let mut notes = Vec::new();
            let mut last = 0.0;
            for k in 1..=max {
                let s = self.recycle_approval.get(&k).copied().unwrap_or_default();
                let r = s.rate().unwrap_or(last);
                last = r;
                values.push(format!("{r:.4}"));
                notes.push(format!("{}/{}", s.hits, s.n));
            }
            let _ = writeln!(
                w,
                "recycle_approval = [{}]  # re-attempts 1..{max} approved: {}",
                values.join(", "),
                notes.join(", ")
            );
        } else {
            let _ = writeln!(
                w,
                "# recycle_approval: no re-attempt in the trace (default kept)"
            );
        }
        share_line(
            w,
            "soft_share",
            &self.soft,
            "first-attempt declines the processor called soft",
        );
        let _ = writeln!(
            w,
            "# No sample: card_number_without_cvv_factor, never_retry_approval_factor (defaults kept)."
        );
        for (soft, key) in [(true, "soft_declines"), (false, "hard_declines")] {
            let codes: Vec<_> = self
                .codes
                .iter()
                .filter(|((s, _, _), _)| *s == soft)
                .collect();
            if codes.is_empty() {
                let _ = writeln!(w, "# {key}: none in the trace (default kept)");
                continue;
            }
            let _ = writeln!(w, "{key} = [");
            for ((_, code, message), seen) in codes {
                let visa = seen
                    .visa_categories
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(c, _)| *c)
                    .filter(|c| *c > 0);
                let mc_total: u64 = seen.mastercard_advice.values().sum();
                let visa_note = visa
                    .map(|c| format!(", visa_category = {c}"))
                    .unwrap_or_default();
                if mc_total == 0 {
                    let _ = writeln!(
                        w,
                        "  {{ code = {code:?}, message = {message:?}, weight = {}{visa_note} }},  # {} declines",
                        seen.count, seen.count
                    );
                    continue;
                }
                // One entry per Mastercard advice code, the code's weight split as seen.
                for (mac, n) in &seen.mastercard_advice {
                    let weight = (seen.count * n).div_ceil(mc_total).max(1);
                    let mac_note = if mac.is_empty() {
                        String::new()
                    } else {
                        format!(", mastercard_advice_code = {mac:?}")
                    };
                    let _ = writeln!(
                        w,
                        "  {{ code = {code:?}, message = {message:?}, weight = {weight}{visa_note}{mac_note} }},  # {} declines; advice {:?} on {n} of {mc_total} Mastercard declines",
                        seen.count,
                        mac
                    );
                }
            }
            let _ = writeln!(w, "]");
        }

        let _ = writeln!(w, "\n[flexfactor]");
        share_line(
            w,
            "cascade_approval",
            &self.flexfactor_cascade,
            "cascade submissions approved",
        );
        share_line(
            w,
            "rerun_recovery",
            &self.rerun_recovery,
            "reruns recovered before their expiry (resolved ones)",
        );
        share_line(
            w,
            "lost_webhook_share",
            &self.lost_webhook,
            "asynchronous results learnt by a status poll",
        );
        let delays: u64 = self.delay_days.iter().sum();
        if delays > 0 {
            let _ = writeln!(
                w,
                "delay_day_weights = [{}]  # recoveries on day 0, 1, ... after the submission: {delays} recoveries",
                self.delay_days
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let _ = writeln!(w, "\n[flexfactor.recycle_recovery]");
        let defaults = crate::scenario::FlexFactorModelSpec::default().recycle_recovery;
        for ((name, s), default) in ["\"4-6\"", "\"7-9\"", "final"]
            .iter()
            .zip(&self.recycle_recovery)
            .zip([
                defaults.attempts_4_to_6,
                defaults.attempts_7_to_9,
                defaults.final_attempt,
            ])
        {
            if s.n == 0 {
                // The three slots go together: a slot without a sample keeps its default.
                let _ = writeln!(
                    w,
                    "{name} = {default}  # no hand-over in this slot: default kept"
                );
            } else {
                share_line(w, name, s, "hand-overs recovered (resolved ones)");
            }
        }

        let _ = writeln!(w, "\n[crm]");
        share_line(
            w,
            "rerun_share",
            &self.rerun,
            "soft-declined new sales not cascaded to FlexFactor, rerun",
        );
        share_line(
            w,
            "rerun_trial_share",
            &self.rerun_trial,
            "soft-declined trial completions, rerun",
        );

        let _ = writeln!(w, "\n[after_sale]");
        share_line(
            w,
            "chargeback_share",
            &self.chargeback,
            "FlexFactor-salvaged orders charged back",
        );
        if let Some((lo, hi)) = self.chargeback_days {
            let _ = writeln!(
                w,
                "chargeback_delay_days = [{lo}, {hi}]  # seen, of {} chargebacks",
                self.chargeback.hits
            );
        }
        share_line(
            w,
            "refund_share",
            &self.refund,
            "FlexFactor-salvaged orders refunded",
        );
        if let Some((lo, hi)) = self.refund_days {
            let _ = writeln!(
                w,
                "refund_delay_days = [{lo}, {hi}]  # seen, of {} refunds",
                self.refund.hits
            );
        }
        o
    }
}

fn share_line(w: &mut String, key: &str, s: &Share, what: &str) {
    match (s.rate(), s.interval()) {
        (Some(r), Some((lo, hi))) => {
            let _ = writeln!(
                w,
                "{key} = {r:.4}  # {} of {} {what} (95%: {lo:.4}-{hi:.4})",
                s.hits, s.n
            );
        }
        _ => {
            let _ = writeln!(w, "# {key}: no sample ({what}); default kept");
        }
    }
}
