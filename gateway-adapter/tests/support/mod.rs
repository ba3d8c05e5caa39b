//! Shared helpers of the persistence tests: stores on SQLite and PostgreSQL, a fixed clock, a
//! counting effect handler, sample commands.
// Each test binary uses some of these.
#![allow(dead_code, unused_imports)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use salvage_domain::customer::OrderItem;
use salvage_domain::order::OrderCommand;
use salvage_domain::ports::EvaluateAnswer;
use salvage_domain::process_manager::{Effect, FollowUp};
use salvage_domain::{Currency, DomainServices, ManualClock, Money, Setup};
use salvage_gateway::engine::{EffectHandler, EffectOutcome, Engine, EngineConfig};
use salvage_gateway::store::Store;

pub const SAMPLE: &str = include_str!("../../../examples/salvage.toml");

pub fn setup() -> Setup {
    Setup::from_toml_str(SAMPLE).expect("sample setup")
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
}

/// The PostgreSQL used by tests. It must be reachable: a Postgres test that cannot connect
/// fails, it does not skip.
pub fn postgres_url() -> String {
    std::env::var("SALVAGE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        nanos
    )
}

/// Where a test's store lives, so that a second process (or pool) can open the same one.
#[derive(Clone, Debug)]
pub enum Place {
    Sqlite(String),
    Postgres(String),
}

impl Place {
    pub fn new_sqlite() -> Place {
        let dir = std::env::temp_dir().join("salvage-tests");
        std::fs::create_dir_all(&dir).unwrap();
        Place::Sqlite(format!(
            "sqlite://{}",
            dir.join(format!("{}.db", unique("store"))).display()
        ))
    }

    pub fn new_postgres() -> Place {
        Place::Postgres(unique("salvage_test"))
    }

    pub async fn open(&self) -> Store {
        match self {
            Place::Sqlite(url) => Store::open(url).await.expect("open sqlite store"),
            Place::Postgres(schema) => Store::open_in_schema(&postgres_url(), Some(schema))
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL at {} is required by this test and could not be used: {e}",
                        postgres_url()
                    )
                }),
        }
    }

    /// Drops what the test created (best effort).
    pub async fn cleanup(&self) {
        match self {
            Place::Sqlite(url) => {
                let path = url.trim_start_matches("sqlite://");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{path}{suffix}"));
                }
            }
            Place::Postgres(schema) => {
                if let Ok(pool) = sqlx::PgPool::connect(&postgres_url()).await {
                    let _ = sqlx::raw_sql(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .execute(&pool)
                        .await;
                }
            }
        }
    }
}

pub fn services_with(clock: Arc<ManualClock>) -> DomainServices {
    DomainServices::new(Arc::new(setup()), clock)
}

/// Counts effects by key; FlexFactor submissions are answered SUBMITTED.
#[derive(Default)]
pub struct CountingHandler {
    pub calls: Mutex<HashMap<String, usize>>,
    pub effects: Mutex<Vec<(String, Effect)>>,
}

impl CountingHandler {
    pub fn total(&self) -> usize {
        self.calls.lock().unwrap().values().sum()
    }
    pub fn distinct(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
    pub fn max_per_key(&self) -> usize {
        self.calls
            .lock()
            .unwrap()
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

#[async_trait]
impl EffectHandler for CountingHandler {
    async fn perform(&self, key: &str, _attempt: i64, effect: &Effect) -> EffectOutcome {
        *self
            .calls
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default() += 1;
        self.effects
            .lock()
            .unwrap()
            .push((key.to_string(), effect.clone()));
        match effect {
            Effect::SubmitToFlexFactor { order_id, attempt } => {
                EffectOutcome::Done(vec![FollowUp::Order {
                    order_id: order_id.clone(),
                    command: OrderCommand::RecordFlexFactorAnswer {
                        attempt: *attempt,
                        answer: EvaluateAnswer::Submitted {
                            flexfactor_order_id: Some(format!("ff-{order_id}").as_str().into()),
                        },
                    },
                }])
            }
            _ => EffectOutcome::Done(Vec::new()),
        }
    }
}

pub fn engine(
    store: Arc<Store>,
    clock: Arc<ManualClock>,
    handler: Arc<dyn EffectHandler>,
) -> Engine {
    Engine::new(
        store,
        services_with(clock),
        handler,
        EngineConfig::default(),
    )
}

pub use salvage_domain::samples::{customer, sale};

/// A recurring sale on nmi-main, approved: creates subscription `{order}-serum-monthly`.
pub fn subscribing_sale(order: &str) -> OrderCommand {
    let OrderCommand::Place(mut p) = sale(order, true) else {
        unreachable!()
    };
    p.gateway = "nmi-main".into();
    p.amount = Money::new(3999, Currency::USD).unwrap();
    p.items = vec![OrderItem {
        product_id: "serum-monthly".into(),
        quantity: 1,
        price_minor: 3999,
    }];
    OrderCommand::Place(p)
}

/// Runs each named `async fn(Place)` as two tests, `sqlite::NAME` and `postgres::NAME`, each on
/// a store of its own, with `threads` runtime workers.
#[allow(unused_macros)]
macro_rules! both_stores {
    (threads = $threads:literal; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $name() {
                    let place = super::Place::new_sqlite();
                    super::$name(place.clone()).await;
                    place.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
                async fn $name() {
                    let place = super::Place::new_postgres();
                    super::$name(place.clone()).await;
                    place.cleanup().await;
                }
            )*
        }
    };
}
