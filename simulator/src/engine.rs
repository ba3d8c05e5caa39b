//! The discrete-event simulation engine.
//!
//! Customers do not interact (each has its own orders and subscription), so the engine runs
//! each customer's whole timeline, from the new sale to the horizon, on its own virtual clock:
//! the real Order and Subscription aggregates and the real process manager in a [`Runtime`],
//! every effect answered by the gateway and FlexFactor models, every timer (recycle re-attempts,
//! next bills, FlexFactor's delayed results, reconciliation, chargebacks) run in time order.
//! What happens is counted in a [`Tally`] as it happens; tallies merge by addition.
//!
//! Every random draw comes from the stream of (seed, customer, draw site) ([`crate::rng`]), so a
//! run gives the same tallies whatever the number of threads and whichever order the customers
//! are run in, and all variants see the same traffic.

use std::sync::atomic::{AtomicU64, Ordering};

use salvage_domain::customer::{CredentialKind, OrderItem};
use salvage_domain::order::{AttemptResult, OrderCommand, PlaceOrder};
use salvage_domain::process_manager::Effect;
use salvage_domain::{GatewayId, Money, OrderId, OrderType, SubscriptionId};

use crate::customer::{CustomerDriver, OrderInfos, Prefix};
use crate::flexfactor_model::FlexFactorModel;
use crate::gateway_model::{ChargedCard, GatewayModel, Purpose};
use crate::population::{CustomerProfile, Population};
use crate::rng::{stream, Site};
use crate::runtime::{Driver, Refused, Runtime, Snapshot};
use crate::scenario::Scenario;
use crate::tally::{Merge, Tally};
use crate::variant::Variant;

pub use crate::recorded::{apply_recorded, Recorded};

/// Customers per unit of work handed to a thread.
const CHUNK: u64 = 256;

/// How to run.
#[derive(Clone, Copy, Default)]
pub struct RunOptions<'a> {
    /// Worker threads (at least 1). The report does not depend on it.
    pub threads: usize,
    /// Called with the number of customers just finished (summed over variants).
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

/// The models of a scenario, built once.
#[derive(Debug, Clone)]
pub struct Engine<'s> {
    pub scenario: &'s Scenario,
    pub gateways: GatewayModel,
    /// FlexFactor's model per variant (a variant may change its rates).
    pub flexfactor: Vec<FlexFactorModel>,
    pub population: Population,
}

impl<'s> Engine<'s> {
    pub fn new(scenario: &'s Scenario) -> Engine<'s> {
        Engine {
            scenario,
            gateways: GatewayModel::new(&scenario.spec.gateways),
            flexfactor: scenario
                .variants
                .iter()
                .map(|v| FlexFactorModel::new(&v.flexfactor))
                .collect(),
            population: Population::new(scenario),
        }
    }

    /// The work of a whole run of one seed: customers × variants.
    pub fn total_work(&self) -> u64 {
        u64::from(self.scenario.spec.population.customers) * self.scenario.variants.len() as u64
    }

    /// Runs every customer through every variant with the scenario's seed; one tally per
    /// variant, in scenario order.
    pub fn run(&self, options: &RunOptions<'_>) -> Vec<Tally> {
        self.run_seeds(&[self.scenario.spec.seed], options)
            .pop()
            .unwrap_or_default()
    }

    /// Runs every customer through every variant once per seed: for each seed (in the order
    /// given), one tally per variant. A thread takes a chunk of customers of one seed, draws
    /// their traffic (profiles) once, and runs the chunk through every variant in turn; the
    /// tallies do not depend on the threads.
    pub fn run_seeds(&self, seeds: &[u64], options: &RunOptions<'_>) -> Vec<Vec<Tally>> {
        let customers = u64::from(self.scenario.spec.population.customers);
        let variants = self.scenario.variants.len();
        let chunks = customers.div_ceil(CHUNK);
        let items = chunks * seeds.len() as u64;
        let threads = options.threads.clamp(1, items.max(1) as usize);
        let next = AtomicU64::new(0);
        let shares = self.shares_prefix();
        let sharing = shares.iter().filter(|s| **s).count() > 1;
        let work = || {
            let mut runners: Vec<VariantRunner<'_, 's>> =
                (0..variants).map(|v| self.runner(v)).collect();
            let mut prefix_runner = sharing.then(|| self.runner(0));
            let mut tallies = vec![vec![Tally::default(); variants]; seeds.len()];
            let mut profiles = Vec::with_capacity(CHUNK as usize);
            let mut prefixes: Vec<Prefixed> = Vec::with_capacity(CHUNK as usize);
            loop {
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= items {
                    break;
                }
                let (s, chunk) = ((item / chunks) as usize, item % chunks);
                let seed = seeds[s];
                let lo = chunk * CHUNK;
                let hi = (lo + CHUNK).min(customers);
                // The chunk's traffic, drawn once for every variant; each variant then runs
                // the whole chunk (its runtime stays warm).
                profiles.clear();
                profiles
                    .extend((lo..hi).map(|c| self.population.customer_of(self.scenario, seed, c)));
                // Each customer's run up to its first decline, once for the variants that
                // share it (see `customer::Prefix`).
                let mut shared = Tally::default();
                prefixes.clear();
                if let Some(runner) = &mut prefix_runner {
                    for profile in &profiles {
                        let mut own = Tally::default();
                        let prefixed = runner.prefix(seed, profile, &mut own);
                        if !matches!(prefixed, Prefixed::Void) {
                            shared.merge(&own);
                        }
                        prefixes.push(prefixed);
                    }
                }
                for (v, (runner, tally)) in
                    runners.iter_mut().zip(tallies[s].iter_mut()).enumerate()
                {
                    if !(sharing && shares[v]) {
                        for profile in &profiles {
                            runner.run_profile(seed, profile, tally, None);
                        }
                        continue;
                    }
                    tally.merge(&shared);
                    for (profile, prefixed) in profiles.iter().zip(&prefixes) {
                        match prefixed {
                            Prefixed::Whole => {}
                            Prefixed::Fork(fork) => runner.resume(seed, profile, fork, tally),
                            Prefixed::Void => runner.run_profile(seed, profile, tally, None),
                        }
                    }
                }
                if let Some(progress) = options.progress {
                    progress((hi - lo) * variants as u64);
                }
            }
            tallies
        };
        let shards: Vec<Vec<Vec<Tally>>> = if threads == 1 {
            vec![work()]
        } else {
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads).map(|_| s.spawn(work)).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            })
        };
        let mut total = vec![vec![Tally::default(); variants]; seeds.len()];
        for shard in &shards {
            for (per_seed, shard_seed) in total.iter_mut().zip(shard) {
                for (t, s) in per_seed.iter_mut().zip(shard_seed) {
                    t.merge(s);
                }
            }
        }
        total
    }

    /// Which variants share the customers' runs up to their first decline with the first
    /// variant (see `customer::Prefix`): those whose setup is the first's in everything such a
    /// run reads (the campaigns and their products, the gateways and which are FlexFactor's).
    /// What else a variant may change (FlexFactor's options, recycle profiles, the network
    /// rules, the CRM's reruns, the FlexFactor model) is read only once an attempt declined.
    fn shares_prefix(&self) -> Vec<bool> {
        let reads = |v: &Variant| {
            let setup = &v.setup;
            let gateways: Vec<(&GatewayId, bool)> = setup
                .gateways
                .iter()
                .map(|g| (g.id(), g.is_flexfactor()))
                .collect();
            format!("{:?} {:?}", setup.campaigns, gateways)
        };
        let variants = &self.scenario.variants;
        let Some(first) = variants.first().map(reads) else {
            return Vec::new();
        };
        variants.iter().map(|v| reads(v) == first).collect()
    }

    /// A runner for variant number `variant`, to simulate customers one by one.
    pub fn runner(&self, variant: usize) -> VariantRunner<'_, 's> {
        let v = &self.scenario.variants[variant];
        let mut runtime = Runtime::new(v.setup.clone(), self.scenario.start);
        // A variant without the network rules reports the attempts they would have stopped.
        runtime.watch_unguarded();
        VariantRunner {
            engine: self,
            variant: v,
            flexfactor: &self.flexfactor[variant],
            runtime,
        }
    }
}

/// Simulates customers of one variant, reusing one runtime.
pub struct VariantRunner<'e, 's> {
    engine: &'e Engine<'s>,
    variant: &'e Variant,
    flexfactor: &'e FlexFactorModel,
    runtime: Runtime,
}

/// What a customer's shared run (see `customer::Prefix`) left for the variants.
pub(crate) enum Prefixed {
    /// Nothing declined up to the horizon: the run, counted once, is every sharing variant's.
    Whole,
    /// A rebill's attempt declines: each variant continues from here.
    Fork(Box<Fork>),
    /// Not shared: each variant runs the customer from the start.
    Void,
}

/// Where the variants part: the runtime's and the driver's state just before the bill whose
/// attempt declines.
pub(crate) struct Fork {
    snapshot: Snapshot,
    orders: OrderInfos,
    subscriptions: Vec<SubscriptionId>,
    bill: Effect,
}

impl<'e> VariantRunner<'e, '_> {
    /// Runs the customer `profile` up to its first declined attempt (see `customer::Prefix`),
    /// counting into `tally` (to be merged into every sharing variant's, unless void).
    fn prefix(&mut self, seed: u64, profile: &CustomerProfile, tally: &mut Tally) -> Prefixed {
        let Some(mut driver) = self.start(seed, profile, tally, None, true) else {
            return Prefixed::Void;
        };
        let end = self.engine.scenario.end();
        self.runtime.advance_to(end, &mut driver);
        let Some(prefix) = driver.prefix.take() else {
            return Prefixed::Void;
        };
        if prefix.void {
            return Prefixed::Void;
        }
        match prefix.halted {
            None => {
                driver.finish(&self.runtime.store);
                Prefixed::Whole
            }
            Some(bill) => Prefixed::Fork(Box::new(Fork {
                snapshot: self.runtime.snapshot(),
                orders: std::mem::take(&mut driver.orders),
                subscriptions: std::mem::take(&mut driver.subscriptions),
                bill,
            })),
        }
    }

    /// Continues the customer `profile` from `fork` to the horizon, in this variant.
    fn resume(&mut self, seed: u64, profile: &CustomerProfile, fork: &Fork, tally: &mut Tally) {
        let engine = self.engine;
        let scenario = engine.scenario;
        self.runtime.restore(&fork.snapshot);
        let mut driver = CustomerDriver::new(
            scenario,
            seed,
            &engine.gateways,
            self.flexfactor,
            self.variant,
            profile,
            tally,
            None,
        );
        driver.orders = fork.orders.clone();
        driver.subscriptions = fork.subscriptions.clone();
        self.runtime.resume(fork.bill.clone(), &mut driver);
        self.runtime.advance_to(scenario.end(), &mut driver);
        driver.finish(&self.runtime.store);
    }

    /// Simulates customer `index` of the scenario's seed from its sale to the horizon, counting
    /// into `tally` and, when asked, recording every committed event.
    pub fn customer(&mut self, index: u64, tally: &mut Tally, record: Option<&mut Vec<Recorded>>) {
        let scenario = self.engine.scenario;
        let profile = self.engine.population.customer(scenario, index);
        self.run_profile(scenario.spec.seed, &profile, tally, record);
    }

    /// Simulates the customer `profile` (of the traffic of `seed`) from its sale to the
    /// horizon.
    pub fn run_profile(
        &mut self,
        seed: u64,
        profile: &CustomerProfile,
        tally: &mut Tally,
        record: Option<&mut Vec<Recorded>>,
    ) {
        if let Some(mut driver) = self.start(seed, profile, tally, record, false) {
            self.runtime
                .advance_to(self.engine.scenario.end(), &mut driver);
            driver.finish(&self.runtime.store);
        }
    }

    /// Counts the customer and places its new sale (and everything that follows at once);
    /// `None` when it arrives after the horizon, or, for a `prefix` run, when the sale's
    /// attempt declines (no prefix: nothing of it is to be shared).
    fn start<'d>(
        &mut self,
        seed: u64,
        profile: &'d CustomerProfile,
        tally: &'d mut Tally,
        record: Option<&'d mut Vec<Recorded>>,
        prefix: bool,
    ) -> Option<CustomerDriver<'d>>
    where
        'e: 'd,
    {
        let engine = self.engine;
        let scenario = engine.scenario;
        let index = profile.index;
        let end = scenario.end();
        tally.customers += 1;
        if profile.arrival >= end {
            return None;
        }
        let result = engine.gateways.attempt(
            &profile.gateway,
            Purpose::NewSale,
            CredentialKind::Token,
            ChargedCard::new(profile.network),
            &mut stream(seed, index, Site::SaleAttempt),
        );
        if prefix && matches!(result, AttemptResult::Declined(_)) {
            return None;
        }
        self.runtime.reset(profile.arrival);
        let product = &scenario.products[profile.product];
        let sale = &mut tally.new_sales;
        sale.placed += 1;
        sale.placed_minor += product.price_minor;
        sale.with_recurring_product += u64::from(product.recurring);
        sale.with_trial_product += u64::from(product.trial);
        sale.on_single_transaction_campaign += u64::from(product.single_transaction);
        sale.without_ip_address += u64::from(profile.ip_address.is_none());

        let mut driver = CustomerDriver::new(
            scenario,
            seed,
            &engine.gateways,
            self.flexfactor,
            self.variant,
            profile,
            tally,
            record,
        );
        if prefix {
            driver.prefix = Some(Prefix::default());
        }
        let order_id = OrderId::new(crate::names::numbered("c", index));
        let place = PlaceOrder {
            order_id: order_id.clone(),
            order_type: OrderType::NewSale,
            campaign_id: product.campaign.clone(),
            subscription_id: None,
            ip_address: profile.ip_address.clone(),
            amount: Money {
                amount_minor: product.price_minor,
                currency: scenario.currency,
            },
            customer: driver.customer.clone(),
            card: driver.card.clone(),
            items: vec![OrderItem {
                product_id: product.product.clone(),
                quantity: 1,
                price_minor: product.price_minor,
            }],
            gateway: profile.gateway.clone(),
            gateway_profile: profile.gateway_profile.clone(),
            result,
        };
        driver.orders.insert(order_id.clone(), Default::default());
        if let Err(error) = self.runtime.order_command(
            order_id.clone(),
            OrderCommand::Place(Box::new(place)),
            &mut driver,
        ) {
            driver.refused(Refused::Order { order_id, error });
        }
        Some(driver)
    }
}
