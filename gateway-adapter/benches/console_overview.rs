//! The console's overview (issue 15) over a store of a million orders: p50/p95/p99/max of the
//! overview for 24 h, 7 d and 30 d, of `GET /v1/salvage/summary?window=30d`, and of the orders
//! page (first page, a filtered page, a search, a deep keyset page), through the real service on
//! loopback, on SQLite and on PostgreSQL.
//!
//! The store is seeded without replaying history: realistic order states are built in memory by
//! applying domain events (placed, declined, then for a share a cascade, a rerun or a recycle
//! hand-over to FlexFactor and its result) over 60 days, and written through the projector's own
//! view rows (`projection::seed_order_views`: the console columns and the funnel's deltas, as a
//! projected batch writes them). Seeding is timed and printed but not part of the figures. The
//! service then runs on that store with its clock at the end of the 60 days.
//!
//! Before timing, the bench checks that the figures are right: the summary of each window
//! (read from the hourly funnel) equals a direct count over the order view for the same window,
//! outcome by outcome, and the tally kept while generating; the overview page shows the same
//! number of declines. It exits with an error otherwise.
//!
//! Run: `cargo bench -p salvage-gateway --bench console_overview`
//! Environment: SALVAGE_BENCH_ORDERS (default 1000000), SALVAGE_BENCH_STORES (default
//! `sqlite,postgres`), SALVAGE_BENCH_REQUESTS (timed GETs per route, default 200),
//! SALVAGE_BENCH_ROUTE_SECONDS (a route stops early once its timed GETs took this long in all,
//! default 30), SALVAGE_BENCH_BATCH (orders per seeding commit), SALVAGE_BENCH_KEEP=1 keeps
//! the stores (and prints where they are) for EXPLAIN;
//! PostgreSQL from SALVAGE_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test),
//! in a fresh schema.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, Duration, TimeZone, Utc};
use cqrs_es::Aggregate;
use salvage_domain::customer::{Address, CardToken, Customer, OrderItem};
use salvage_domain::idempotency::IdempotencyKey;
use salvage_domain::order::{
    CascadeOutcome, Order, OrderDetails, OrderEvent, ResultSource, SalvageFailure, SalvageRoute,
};
use salvage_domain::ports::SubmissionMode;
use salvage_domain::routing::{CascadeRoute, CascadeSource, CascadeStep, RecycleSlot};
use salvage_domain::{
    Currency, DeclineFacts, DeclineType, EffectiveDecline, GatewayId, ManualClock, Money, OrderType,
};
use salvage_gateway::service::config::ServiceConfig;
use salvage_gateway::service::summary::Window;
use salvage_gateway::service::{start, RunningService, ServeOptions};
use salvage_gateway::store::console_view::{self, Outcome};
use salvage_gateway::store::{projection, Backend, Store};

const SAMPLE: &str = include_str!("../../examples/salvage.toml");
const KEY: &str = "bench-console-key-0123456789";
const DAYS: i64 = 60;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The end of the 60 days: the service's clock.
fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 9, 30, 0)
        .single()
        .expect("a valid end instant")
}

/// SplitMix64: a small deterministic generator, one stream per order.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5a17_c0de)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A fraction in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A duration between `lo` and `hi` minutes.
    fn minutes(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::minutes(lo + self.below((hi - lo).max(1) as u64) as i64)
    }
}

const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kim",
    "Liam", "Mia", "Noah", "Olga", "Pablo", "Quinn", "Rosa", "Sam", "Tess",
];
const LAST: &[&str] = &[
    "Smith", "Garcia", "Müller", "Rossi", "Dubois", "Nowak", "Silva", "Jensen", "Kowalski",
    "Tanaka", "Brown", "Martin", "Lopez", "Novak", "Weber", "Moreau", "Costa", "Berg",
];
const BINS: &[&str] = &["411111", "424242", "510510", "555555", "401288", "371449"];
const SOFT: &[(&str, &str)] = &[
    ("05", "Do not honor"),
    ("51", "Insufficient funds"),
    ("91", "Issuer unavailable"),
    ("61", "Exceeds withdrawal limit"),
];
const HARD: &[(&str, &str)] = &[
    ("04", "Pick up card"),
    ("14", "Invalid card number"),
    ("54", "Expired card"),
];

/// One generated order: its id, its state and how many events made it.
struct Generated {
    id: String,
    state: Order,
    events: i64,
}

/// Applies events to an order, counting them.
struct Builder {
    order: Order,
    events: i64,
}

impl Builder {
    fn apply(&mut self, e: OrderEvent) {
        self.order.apply(e);
        self.events += 1;
    }
}

fn decline(gateway: &str, soft: bool, rng: &mut Rng) -> (DeclineFacts, EffectiveDecline) {
    let (code, message) = *rng.pick(if soft { SOFT } else { HARD });
    let verdict = if soft {
        DeclineType::Soft
    } else {
        DeclineType::Hard
    };
    (
        DeclineFacts {
            gateway: gateway.into(),
            response_code: code.into(),
            response_message: message.into(),
            processor_verdict: verdict,
            visa_category: None,
            mastercard_advice_code: None,
        },
        EffectiveDecline {
            decline_type: verdict,
            mapped_by: None,
            customer_message: None,
        },
    )
}

/// How an asynchronous (MIT) salvage (the order's first) submitted at `submitted` stands at
/// `end`: its result event, if any yet.
fn mit_result(
    b: &mut Builder,
    rng: &mut Rng,
    route: SalvageRoute,
    submitted: DateTime<Utc>,
    expires: DateTime<Utc>,
    end: DateTime<Utc>,
    id: &str,
) {
    let attempt = 1;
    let roll = rng.unit();
    let answered = submitted + rng.minutes(60, 14 * 24 * 60);
    if roll < 0.80 {
        if answered > end {
            return; // still pending
        }
        let webhook = ResultSource::Webhook {
            delivery_id: format!("dlv-{id}-{attempt}"),
            resent: false,
        };
        if roll < 0.45 {
            b.apply(OrderEvent::SalvageSucceeded {
                attempt,
                route,
                flexfactor_order_id: Some(format!("ff-{id}").as_str().into()),
                confirmation_id: Some(format!("C{id}")),
                source: Some(webhook),
                at: answered,
            });
            b.apply(OrderEvent::FulfillmentRequested {
                at: answered + Duration::seconds(2),
            });
        } else {
            b.apply(OrderEvent::SalvageFailed {
                attempt,
                route,
                reason: SalvageFailure::Declined,
                source: Some(webhook),
                at: answered,
            });
        }
    } else {
        // No answer: it expires (reconciliation asks once more after the expiry).
        let at = expires + Duration::hours(1);
        if at > end {
            return;
        }
        let (reason, source) = if rng.chance(0.8) {
            (
                SalvageFailure::Expired,
                ResultSource::Webhook {
                    delivery_id: format!("dlv-{id}-{attempt}-x"),
                    resent: false,
                },
            )
        } else {
            (
                SalvageFailure::ExpiredUnreconciled,
                ResultSource::StatusPoll,
            )
        };
        b.apply(OrderEvent::SalvageFailed {
            attempt,
            route,
            reason,
            source: Some(source),
            at,
        });
    }
}

/// Order number `i` of `n`, placed in its slice of the 60 days before `end` (so orders come in
/// time order, as a store fills).
fn generate(i: u64, n: u64, end: DateTime<Utc>) -> Generated {
    let mut rng = Rng::new(i);
    let span_ms = DAYS * 86_400_000;
    let start = end - Duration::days(DAYS);
    let slot_ms = span_ms as f64 / n as f64;
    let placed_at = start
        + Duration::milliseconds((i as f64 * slot_ms + rng.unit() * slot_ms * 0.9) as i64)
        + Duration::milliseconds(1);
    let id = (30_000_000 + i).to_string();
    let currency = match rng.below(10) {
        0..=5 => Currency::USD,
        6..=8 => Currency::EUR,
        _ => Currency::new("GBP").expect("GBP"),
    };
    let amount_minor = (5 + rng.below(145) as i64) * 100 - 1;
    let amount = Money {
        amount_minor,
        currency,
    };
    let order_type = match rng.below(20) {
        0..=10 => OrderType::NewSale,
        11..=12 => OrderType::TrialCompletion,
        _ => OrderType::Recurring,
    };
    let customer_no = rng.below((n / 3).max(1));
    let first = FIRST[(customer_no % FIRST.len() as u64) as usize];
    let last = LAST[((customer_no / 7) % LAST.len() as u64) as usize];
    let subscription_id = (order_type != OrderType::NewSale)
        .then(|| format!("sub-{}", 5_000_000 + customer_no).as_str().into());
    let gateway = match (currency.as_str(), order_type) {
        (_, OrderType::Recurring) => "nmi-main",
        ("USD", _) => *rng.pick(&["nmi-main", "authnet-1"]),
        _ => "stripe-eu",
    };
    let ip = format!("198.51.100.{}", rng.below(250) + 1);
    let details = OrderDetails {
        order_id: id.as_str().into(),
        order_type,
        campaign_id: "skincare".into(),
        subscription_id: subscription_id.clone(),
        ip_address: Some(ip.clone()),
        amount,
        customer: Customer {
            first_name: first.into(),
            last_name: last.into(),
            email: Some(format!(
                "{}.{}{}@example.com",
                first.to_lowercase(),
                last.to_lowercase(),
                customer_no
            )),
            phone: None,
            billing_address: Address {
                line1: format!("{} Main Street", 1 + customer_no % 400),
                city: "Springfield".into(),
                zip: format!("{:05}", customer_no % 99_999),
                country: if currency == Currency::USD {
                    "US"
                } else {
                    "DE"
                }
                .into(),
                ..Address::default()
            },
        },
        card: CardToken {
            token: format!("tok_{:016x}", rng.next_u64()),
            bin: rng.pick(BINS).to_string(),
            last4: format!("{:04}", rng.below(10_000)),
            exp_month: 1 + rng.below(12) as u8,
            exp_year: 2027 + rng.below(5) as u16,
            holder: format!("{first} {last}"),
            fingerprint: None,
        },
        items: vec![OrderItem {
            product_id: if order_type == OrderType::NewSale {
                "cleanser"
            } else {
                "serum-monthly"
            }
            .into(),
            quantity: 1,
            price_minor: amount_minor,
        }],
        gateway: gateway.into(),
        gateway_profile: None,
        recurring_lines: Vec::new(),
    };
    let mut b = Builder {
        order: Order::default(),
        events: 0,
    };
    b.apply(OrderEvent::OrderPlaced {
        details: Arc::new(details),
        at: placed_at,
    });
    let attempt_at = placed_at + Duration::milliseconds(300);
    if rng.chance(0.07) {
        b.apply(OrderEvent::AttemptApproved {
            gateway: gateway.into(),
            at: attempt_at,
        });
        b.apply(OrderEvent::FulfillmentRequested {
            at: attempt_at + Duration::seconds(1),
        });
        return Generated {
            id,
            state: b.order,
            events: b.events,
        };
    }
    let soft = rng.chance(0.78);
    let (facts, effective) = decline(gateway, soft, &mut rng);
    b.apply(OrderEvent::AttemptDeclined {
        facts,
        effective,
        at: attempt_at,
    });
    let order_id = id.as_str().into();
    let ff = || -> GatewayId { "flexfactor".into() };
    match (soft, order_type) {
        (false, _) => {}
        (true, OrderType::NewSale) if rng.chance(0.65) => {
            // C5: a cascade, its last step FlexFactor, answered at once.
            let backup = if gateway == "nmi-main" {
                "nmi-backup"
            } else {
                "nmi-main"
            };
            b.apply(OrderEvent::CascadeStarted {
                route: CascadeRoute {
                    source: CascadeSource::Direct {
                        cascade_profile: "cascade-main".into(),
                    },
                    steps: vec![
                        CascadeStep {
                            gateway: backup.into(),
                            flexfactor: false,
                        },
                        CascadeStep {
                            gateway: ff(),
                            flexfactor: true,
                        },
                    ],
                    flexfactor_skipped: None,
                },
                at: attempt_at + Duration::milliseconds(5),
            });
            b.apply(OrderEvent::CascadeStepStarted {
                step: 1,
                gateway: backup.into(),
                idempotency_key: IdempotencyKey::cascade_charge(&order_id, 1),
                at: attempt_at + Duration::milliseconds(6),
            });
            let (facts, effective) = decline(backup, true, &mut rng);
            b.apply(OrderEvent::CascadeStepDeclined {
                step: 1,
                facts,
                effective,
                at: attempt_at + Duration::milliseconds(400),
            });
            let submitted = attempt_at + Duration::milliseconds(410);
            let route = SalvageRoute::Cascade { step: 2 };
            b.apply(OrderEvent::SalvageSubmitted {
                attempt: 1,
                route: route.clone(),
                flexfactor_gateway: ff(),
                idempotency_key: IdempotencyKey::salvage(&order_id, 1),
                mode: SubmissionMode::Cit { customer_ip: ip },
                amount,
                at: submitted,
            });
            let answered = submitted + Duration::milliseconds(900);
            if rng.chance(0.38) {
                b.apply(OrderEvent::SalvageSucceeded {
                    attempt: 1,
                    route,
                    flexfactor_order_id: Some(format!("ff-{id}").as_str().into()),
                    confirmation_id: None,
                    source: None,
                    at: answered,
                });
                b.apply(OrderEvent::CascadeEnded {
                    outcome: CascadeOutcome::Approved { gateway: ff() },
                    at: answered,
                });
                b.apply(OrderEvent::FulfillmentRequested {
                    at: answered + Duration::seconds(1),
                });
            } else {
                b.apply(OrderEvent::SalvageFailed {
                    attempt: 1,
                    route,
                    reason: SalvageFailure::NotApproved,
                    source: None,
                    at: answered,
                });
                b.apply(OrderEvent::CascadeEnded {
                    outcome: CascadeOutcome::Declined,
                    at: answered,
                });
            }
        }
        (true, OrderType::NewSale | OrderType::TrialCompletion) => {
            // R2: the CRM asks for a rerun a little later (or not at all).
            let submitted = attempt_at + rng.minutes(5, 6 * 60);
            if rng.chance(0.75) && submitted <= end {
                let expires = submitted + Duration::days(21);
                b.apply(OrderEvent::SalvageSubmitted {
                    attempt: 1,
                    route: SalvageRoute::Rerun,
                    flexfactor_gateway: ff(),
                    idempotency_key: IdempotencyKey::salvage(&order_id, 1),
                    mode: SubmissionMode::Mit {
                        expires_at: expires,
                        recurring: false,
                    },
                    amount,
                    at: submitted,
                });
                b.apply(OrderEvent::SalvageAccepted {
                    attempt: 1,
                    flexfactor_order_id: Some(format!("ff-{id}").as_str().into()),
                    status: "submitted".into(),
                    at: submitted + Duration::seconds(1),
                });
                mit_result(
                    &mut b,
                    &mut rng,
                    SalvageRoute::Rerun,
                    submitted,
                    expires,
                    end,
                    &id,
                );
            }
        }
        (true, OrderType::Recurring) => {
            // Y3: recycle billing re-attempts every two days; FlexFactor takes one slot.
            let (recycle_attempt, slot) = match rng.below(10) {
                0..=4 => (4 + rng.below(3) as u32, RecycleSlot::Attempts4To6),
                5..=7 => (7 + rng.below(3) as u32, RecycleSlot::Attempts7To9),
                _ => (10, RecycleSlot::Final),
            };
            let submitted =
                attempt_at + Duration::days(2 * i64::from(recycle_attempt)) + rng.minutes(0, 120);
            if rng.chance(0.15) {
                // Paid by a re-attempt on the billing gateway before FlexFactor's slot.
                let at = attempt_at + Duration::days(2 + 2 * rng.below(3) as i64);
                if at <= end {
                    b.apply(OrderEvent::PaidByRecycle {
                        gateway: gateway.into(),
                        recycle_attempt: 1 + rng.below(3) as u32,
                        at,
                    });
                }
            } else if submitted <= end {
                let route = SalvageRoute::Recycle {
                    subscription_id: subscription_id.clone().expect("a rebill's subscription"),
                    recycle_attempt,
                    slot,
                };
                let expires = submitted + Duration::days(21);
                b.apply(OrderEvent::SalvageSubmitted {
                    attempt: 1,
                    route: route.clone(),
                    flexfactor_gateway: ff(),
                    idempotency_key: IdempotencyKey::salvage(&order_id, 1),
                    mode: SubmissionMode::Mit {
                        expires_at: expires,
                        recurring: true,
                    },
                    amount,
                    at: submitted,
                });
                b.apply(OrderEvent::SalvageAccepted {
                    attempt: 1,
                    flexfactor_order_id: Some(format!("ff-{id}").as_str().into()),
                    status: "submitted".into(),
                    at: submitted + Duration::seconds(1),
                });
                mit_result(&mut b, &mut rng, route, submitted, expires, end, &id);
            }
        }
    }
    Generated {
        id,
        state: b.order,
        events: b.events,
    }
}

/// Per window (hours), per outcome: orders first declined in the window, as generated.
#[derive(Default)]
struct Tally {
    by_window: BTreeMap<i64, BTreeMap<Outcome, i64>>,
    events: i64,
    states: BTreeMap<Outcome, i64>,
    approved: i64,
}

const WINDOWS: [(&str, i64); 3] = [("24h", 24), ("7d", 24 * 7), ("30d", 24 * 30)];

/// The window's first hour, as the service reads it (24 h by the hour, 7 d and 30 d by whole
/// days).
fn since_hour(now: DateTime<Utc>, hours: i64) -> i64 {
    let window = match hours {
        24 => Window::Day,
        168 => Window::Week,
        _ => Window::Month,
    };
    window.since_hour(now)
}

impl Tally {
    fn add(&mut self, g: &Generated, now: DateTime<Utc>) {
        self.events += g.events;
        let Some(outcome) = console_view::outcome(&g.state) else {
            self.approved += 1;
            return;
        };
        *self.states.entry(outcome).or_default() += 1;
        let hour = g
            .state
            .declined_at
            .map(|t| t.timestamp().div_euclid(3600))
            .unwrap_or(i64::MIN);
        for (_, hours) in WINDOWS {
            if hour >= since_hour(now, hours) {
                *self
                    .by_window
                    .entry(hours)
                    .or_default()
                    .entry(outcome)
                    .or_default() += 1;
            }
        }
    }
}

enum Place {
    Sqlite {
        dir: std::path::PathBuf,
        url: String,
    },
    Postgres {
        url: String,
        schema: String,
    },
}

impl Place {
    fn url(&self) -> &str {
        match self {
            Place::Sqlite { url, .. } | Place::Postgres { url, .. } => url,
        }
    }

    fn schema(&self) -> Option<String> {
        match self {
            Place::Sqlite { .. } => None,
            Place::Postgres { schema, .. } => Some(schema.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Sqlite { url, .. } => url.clone(),
            Place::Postgres { url, schema } => format!("{url} (schema {schema})"),
        }
    }

    async fn cleanup(&self) {
        match self {
            Place::Sqlite { dir, .. } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Place::Postgres { url, schema } => {
                if let Ok(pool) = sqlx::PgPool::connect(url).await {
                    let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                }
            }
        }
    }
}

/// What the timed pages ask for: a keyset cursor in the middle of the orders (newest first,
/// `placed_ms.order_id`) and a customer's e-mail to search for.
#[derive(Default)]
struct Probes {
    deep_cursor: String,
    email: String,
}

/// Writes `n` generated orders through the projector's view rows, `batch` at a time, building
/// the next batch while the last one commits. Returns the tally and the probes.
async fn seed(backend: &Backend, n: u64, batch: u64, now: DateTime<Utc>) -> (Tally, Probes) {
    let mut tally = Tally::default();
    let mut probes = Probes::default();
    let build = move |from: u64| {
        tokio::task::spawn_blocking(move || {
            (from..(from + batch).min(n))
                .map(|i| generate(i, n, now))
                .collect::<Vec<_>>()
        })
    };
    let started = Instant::now();
    let mut next = Some(build(0));
    let mut from = 0;
    let mut position = 0i64;
    let mut last_report = Instant::now();
    while let Some(pending) = next.take() {
        let generated = pending.await.expect("generating orders");
        from += batch;
        if from < n {
            next = Some(build(from));
        }
        let mut rows = Vec::with_capacity(generated.len());
        for g in generated {
            tally.add(&g, now);
            let index = g.id.parse::<u64>().unwrap_or(0).saturating_sub(30_000_000);
            if probes.deep_cursor.is_empty() && index == n / 2 {
                let placed = g.state.placed_at.map(|t| t.timestamp_millis()).unwrap_or(0);
                probes.deep_cursor = format!("{placed}.{}", g.id);
            }
            if probes.email.is_empty() && index >= n / 3 && g.state.declined_at.is_some() {
                if let Some(e) = g
                    .state
                    .details
                    .as_ref()
                    .and_then(|d| d.customer.email.clone())
                {
                    probes.email = e;
                }
            }
            position += g.events;
            rows.push((g.id, g.state, g.events));
        }
        projection::seed_order_views(backend, rows, position)
            .await
            .expect("seeding the views through the projector's rows");
        if last_report.elapsed() > StdDuration::from_secs(30) {
            let done = from.min(n);
            eprintln!(
                "  seeded {done} of {n} orders ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    (tally, probes)
}

async fn service(place: &Place, clock: Arc<ManualClock>) -> RunningService {
    let text = format!(
        "{SAMPLE}\n[service]\nlisten = \"127.0.0.1:0\"\nstore_url = \"{}\"\napi_keys = [\"{KEY}\"]\n\
         [flexfactor]\nbase_url = \"http://127.0.0.1:9/v1\"\nrequest_timeout_ms = 200\n",
        place.url()
    );
    let config = ServiceConfig::from_str(&text, std::path::Path::new("bench.toml"), &|_| None)
        .expect("config");
    let mut options = ServeOptions::new(clock);
    options.pg_schema = place.schema();
    start(config, options).await.expect("service starts")
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The load average over 1, 5 and 15 minutes.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Fails the bench with `message`.
fn fail(message: String) -> ! {
    eprintln!("CHECK FAILED: {message}");
    std::process::exit(1);
}

/// The per-outcome counts of the orders first declined at or after `since_ms`, counted
/// directly over the order view.
async fn count_view(backend: &Backend, since_ms: i64) -> BTreeMap<String, i64> {
    let sql = "SELECT outcome, COUNT(*) FROM salvage_order_view \
               WHERE declined_at >= $1 GROUP BY outcome";
    let rows: Vec<(Option<String>, i64)> = match backend {
        Backend::Sqlite(pool) => sqlx::query_as(sql).bind(since_ms).fetch_all(pool).await,
        Backend::Postgres(pool) => sqlx::query_as(sql).bind(since_ms).fetch_all(pool).await,
    }
    .expect("counting the order view");
    rows.into_iter()
        .map(|(o, n)| (o.unwrap_or_else(|| "NULL".into()), n))
        .collect()
}

/// The summary's per-outcome counts, as the API answers them.
fn summary_counts(s: &serde_json::Value) -> BTreeMap<String, i64> {
    let get = |k: &str| s[k].as_i64().unwrap_or(-1);
    [
        ("not_sent", get("not_sent")),
        ("pending", get("pending")),
        ("recovered", get("recovered")),
        ("failed", get("failed")),
        ("expired", get("expired")),
    ]
    .into_iter()
    .filter(|(_, n)| *n != 0)
    .map(|(k, n)| (k.to_string(), n))
    .collect()
}

struct Client {
    http: reqwest::Client,
    base: String,
    cookie: String,
}

impl Client {
    async fn get(&self, path: &str) -> (u16, String) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        req = if path.starts_with("/v1/") {
            req.bearer_auth(KEY)
        } else {
            req.header("cookie", &self.cookie)
        };
        let r = req.send().await.expect("GET");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }
}

/// The figure `data-figure="NAME"` shows on the overview, digits only.
fn figure(html: &str, name: &str) -> Option<i64> {
    let at = html.find(&format!("data-figure=\"{name}\""))?;
    let rest = &html[at..];
    let open = rest.find('>')?;
    let close = rest[open..].find('<')?;
    let digits: String = rest[open + 1..open + close]
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

async fn verify(client: &Client, backend: &Backend, tally: &Tally, now: DateTime<Utc>) {
    for (name, hours) in WINDOWS {
        let since_ms = since_hour(now, hours) * 3_600_000;
        let (status, body) = client
            .get(&format!("/v1/salvage/summary?window={name}"))
            .await;
        if status != 200 {
            fail(format!("summary {name} answered {status}: {body}"));
        }
        let summary: serde_json::Value = serde_json::from_str(&body).expect("summary JSON");
        let declines = summary["declines_seen"].as_i64().unwrap_or(-1);
        let view = count_view(backend, since_ms).await;
        let counted: i64 = view.values().sum();
        if declines != counted {
            fail(format!(
                "{name}: the summary's declines_seen is {declines}, a COUNT over the order view \
                 gives {counted}"
            ));
        }
        let from_summary = summary_counts(&summary);
        if from_summary != view {
            fail(format!(
                "{name}: by outcome, the summary says {from_summary:?}, the order view {view:?}"
            ));
        }
        let generated: BTreeMap<String, i64> = tally
            .by_window
            .get(&hours)
            .map(|m| {
                m.iter()
                    .map(|(o, n)| (o.as_str().to_string(), *n))
                    .collect()
            })
            .unwrap_or_default();
        if generated != view {
            fail(format!(
                "{name}: generated {generated:?}, the order view has {view:?}"
            ));
        }
        let (status, html) = client.get(&format!("/console/?window={name}")).await;
        if status != 200 || figure(&html, "declines_seen") != Some(declines) {
            fail(format!(
                "{name}: the overview ({status}) shows {:?} declines, the summary {declines}",
                figure(&html, "declines_seen")
            ));
        }
        let (sql, since) = if hours == 24 {
            (
                "SELECT COUNT(*) FROM salvage_funnel_hourly WHERE hour >= $1",
                since_hour(now, hours),
            )
        } else {
            (
                "SELECT COUNT(*) FROM salvage_funnel_daily WHERE day >= $1",
                since_hour(now, hours) / 24,
            )
        };
        let cells: i64 = match backend {
            Backend::Sqlite(pool) => sqlx::query_scalar(sql).bind(since).fetch_one(pool).await,
            Backend::Postgres(pool) => sqlx::query_scalar(sql).bind(since).fetch_one(pool).await,
        }
        .expect("funnel rows in the window");
        println!(
            "  check {name:>3}: declines_seen {declines} = COUNT over the order view = generated; \
             by outcome {view:?}; the overview sums {cells} funnel rows"
        );
    }
}

struct Route {
    label: &'static str,
    path: String,
    /// Text the answer must contain (a sanity check that the page is the one meant).
    expect: &'static str,
}

/// Times `requests` GETs of each route, round-robin; a route stops early once its GETs have
/// taken `budget` in all (a slow page must not hold the whole run up; its count says so).
async fn measure(
    client: &Client,
    routes: &[Route],
    requests: usize,
    budget: StdDuration,
) -> Vec<Vec<f64>> {
    // Warm-up: connections, statement caches, the database's pages.
    for r in routes {
        for _ in 0..3 {
            let (status, body) = client.get(&r.path).await;
            if status != 200 || !body.contains(r.expect) {
                fail(format!(
                    "{} answered {status} without {:?}: {}",
                    r.path,
                    r.expect,
                    body.chars().take(300).collect::<String>()
                ));
            }
        }
    }
    let mut lat = vec![Vec::with_capacity(requests); routes.len()];
    let mut spent = vec![StdDuration::ZERO; routes.len()];
    // Round-robin, so that whatever else the machine does falls on every route alike.
    for _ in 0..requests {
        for (k, r) in routes.iter().enumerate() {
            if spent[k] > budget {
                continue;
            }
            let t = Instant::now();
            let (status, _) = client.get(&r.path).await;
            let took = t.elapsed();
            spent[k] += took;
            lat[k].push(took.as_secs_f64() * 1000.0);
            if status != 200 {
                fail(format!("{} answered {status}", r.path));
            }
        }
    }
    for l in &mut lat {
        l.sort_by(|a, b| a.total_cmp(b));
    }
    lat
}

async fn run(store: &str, n: u64, requests: usize, budget: StdDuration, keep: bool) {
    let now = end();
    let tag = format!("{}_{}", std::process::id(), now.timestamp());
    let place = match store {
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("salvage-bench-console-{tag}"));
            std::fs::create_dir_all(&dir).expect("temp dir");
            let url = format!("sqlite://{}", dir.join("store.db").display());
            Place::Sqlite { dir, url }
        }
        "postgres" => Place::Postgres {
            url: std::env::var("SALVAGE_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            schema: format!("salvage_bench_console_{tag}"),
        },
        other => fail(format!(
            "unknown store {other:?}: give sqlite and/or postgres"
        )),
    };
    println!("\n== {store}: {n} orders, {}", place.describe());
    let opened = Store::open_in_schema(place.url(), place.schema().as_deref())
        .await
        .expect("open the store");
    let batch = env_or(
        "SALVAGE_BENCH_BATCH",
        if store == "postgres" { 1_500 } else { 10_000 },
    );
    let started = Instant::now();
    let (tally, probes) = seed(&opened.backend, n, batch, now).await;
    let seeding = started.elapsed();
    let funnel_rows: i64 = {
        let sql = "SELECT COUNT(*) FROM salvage_funnel_hourly";
        match &opened.backend {
            Backend::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
            Backend::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        }
        .expect("funnel rows")
    };
    println!(
        "  seeded {n} orders ({} events applied, {} never declined) in {:.1} s ({:.0} orders/s; \
         batches of {batch}); {funnel_rows} funnel rows; outcomes {:?}",
        tally.events,
        tally.approved,
        seeding.as_secs_f64(),
        n as f64 / seeding.as_secs_f64(),
        tally
            .states
            .iter()
            .map(|(o, n)| (o.as_str(), *n))
            .collect::<Vec<_>>()
    );
    if let Backend::Postgres(pool) = &opened.backend {
        // What autovacuum does to a table that grew this much, done now so every run measures
        // the same steady state.
        let t = Instant::now();
        for table in [
            "salvage_order_view",
            "salvage_funnel_hourly",
            "salvage_pending_salvage_view",
        ] {
            sqlx::query(&format!("VACUUM ANALYZE {table}"))
                .execute(pool)
                .await
                .expect("vacuum analyze");
        }
        println!("  VACUUM ANALYZE in {:.1} s", t.elapsed().as_secs_f64());
    }
    match &opened.backend {
        Backend::Sqlite(pool) => pool.close().await,
        Backend::Postgres(pool) => pool.close().await,
    }

    let clock = Arc::new(ManualClock::new(now));
    let svc = service(&place, clock).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed = http
        .post(format!("{}/console/sign-in", svc.url()))
        .form(&[("key", KEY), ("next", "/console/")])
        .send()
        .await
        .expect("sign in");
    let cookie = signed
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_string)
        .unwrap_or_else(|| {
            fail(format!(
                "sign-in answered {} without a cookie",
                signed.status()
            ))
        });
    let client = Client {
        http,
        base: svc.url(),
        cookie,
    };
    verify(&client, &svc.state.store.backend, &tally, now).await;

    let routes = vec![
        Route {
            label: "overview 24h",
            path: "/console/?window=24h".into(),
            expect: "Salvage funnel",
        },
        Route {
            label: "overview 7d",
            path: "/console/?window=7d".into(),
            expect: "Salvage funnel",
        },
        Route {
            label: "overview 30d",
            path: "/console/?window=30d".into(),
            expect: "Salvage funnel",
        },
        Route {
            label: "summary API 30d",
            path: "/v1/salvage/summary?window=30d".into(),
            expect: "declines_seen",
        },
        Route {
            label: "orders, first page",
            path: "/console/orders".into(),
            expect: "rel=\"next\"",
        },
        Route {
            label: "orders, pending recycle",
            path: "/console/orders?outcome=pending&route=recycle".into(),
            expect: "rel=\"next\"",
        },
        Route {
            label: "orders, search by e-mail",
            path: format!("/console/orders?q={}", probes.email),
            expect: "data-order=",
        },
        Route {
            label: "orders, deep keyset page",
            path: format!("/console/orders?after={}", probes.deep_cursor),
            expect: "rel=\"next\"",
        },
    ];
    let t = Instant::now();
    let load_before = load_average();
    let lat = measure(&client, &routes, requests, budget).await;
    println!(
        "  up to {requests} timed GETs per route (at most {} s of GETs each), round-robin, one \
         at a time, after 3 of warm-up ({:.1} s); load average before {load_before}, after {}",
        budget.as_secs(),
        t.elapsed().as_secs_f64(),
        load_average()
    );
    println!(
        "  | store | route | GETs | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |\n  |---|---|---|---|---|---|---|"
    );
    for (r, l) in routes.iter().zip(&lat) {
        println!(
            "  | {store} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.label,
            l.len(),
            pct(l, 0.50),
            pct(l, 0.95),
            pct(l, 0.99),
            pct(l, 1.0)
        );
    }
    let overview_p99 = routes
        .iter()
        .zip(&lat)
        .filter(|(r, _)| r.label.starts_with("overview"))
        .map(|(_, l)| pct(l, 0.99))
        .fold(0.0, f64::max);
    println!(
        "  overview p99 (worst window): {overview_p99:.1} ms: target < 50 ms {}",
        if overview_p99 < 50.0 { "met" } else { "MISSED" }
    );
    svc.shutdown().await.expect("shutdown");
    if keep {
        println!("  kept: {}", place.describe());
    } else {
        place.cleanup().await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = env_or("SALVAGE_BENCH_ORDERS", 1_000_000);
    let requests: usize = env_or("SALVAGE_BENCH_REQUESTS", 200);
    let budget = StdDuration::from_secs(env_or("SALVAGE_BENCH_ROUTE_SECONDS", 30));
    let keep = std::env::var("SALVAGE_BENCH_KEEP").is_ok_and(|v| v == "1");
    let stores = std::env::var("SALVAGE_BENCH_STORES").unwrap_or_else(|_| "sqlite,postgres".into());
    println!(
        "console overview bench: {n} orders over {DAYS} days, clock at {}; load average: {}",
        end(),
        load_average()
    );
    let started = Instant::now();
    for store in stores.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        run(store, n, requests, budget, keep).await;
    }
    println!(
        "\ntotal {:.1} s; load average: {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}
