//! Test harness for the crash test (`tests/crash.rs`), not a product binary: places a stream of
//! orders and dispatches their effects to a local HTTP endpoint, so that the test can kill it with
//! SIGKILL at random points, restart it, and compare the end state with what it acknowledged.
//!
//! Usage: salvage-crash-child STORE_URL PG_SCHEMA|- ENDPOINT_URL ORDERS
//! Prints `ack ORDER_ID` once an order's commands are committed, and `done` at the end.

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use salvage_domain::order::OrderCommand;
use salvage_domain::ports::EvaluateAnswer;
use salvage_domain::process_manager::{Effect, FollowUp};
use salvage_domain::samples::sale;
use salvage_domain::{DomainServices, Setup, SystemClock};
use salvage_gateway::engine::{EffectHandler, EffectOutcome, Engine, EngineConfig};
use salvage_gateway::store::Store;

struct HttpHandler {
    client: reqwest::Client,
    endpoint: String,
}

#[async_trait]
impl EffectHandler for HttpHandler {
    async fn perform(&self, key: &str, _attempt: i64, effect: &Effect) -> EffectOutcome {
        let body = serde_json::json!({ "key": key, "effect": effect });
        match self.client.post(&self.endpoint).json(&body).send().await {
            Ok(r) if r.status().is_success() => match effect {
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
            },
            Ok(r) => EffectOutcome::Retry {
                after: Duration::milliseconds(50),
                reason: format!("endpoint answered {}", r.status()),
            },
            Err(e) => EffectOutcome::Retry {
                after: Duration::milliseconds(50),
                reason: e.to_string(),
            },
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        return Err("usage: salvage-crash-child STORE_URL PG_SCHEMA|- ENDPOINT_URL ORDERS".into());
    }
    let schema = (args[2] != "-").then(|| args[2].clone());
    let store = Arc::new(Store::open_in_schema(&args[1], schema.as_deref()).await?);
    let orders: usize = args[4].parse()?;
    let setup = Setup::from_toml_str(include_str!("../../../examples/salvage.toml"))?;
    let services = DomainServices::new(Arc::new(setup), Arc::new(SystemClock));
    let handler = Arc::new(HttpHandler {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(5))
            .build()?,
        endpoint: args[3].clone(),
    });
    let config = EngineConfig {
        lease: Duration::milliseconds(300),
        batch: 50,
        claim: 8,
    };
    let engine = Arc::new(Engine::new(store.clone(), services, handler, config));

    // Dispatch runs alongside the stream of commands, so kills land in both.
    let pump = {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                match engine.pump_once().await {
                    Ok(s) if s.is_idle() => {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await
                    }
                    Ok(_) => {}
                    Err(e) => {
                        eprintln!("pump: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }
            }
        })
    };

    let mut out = std::io::stdout();
    for i in 0..orders {
        let id = format!("crash-{i}");
        let (_, n) = store.orders.load(&id).await.map_err(|e| e.to_string())?;
        if n == 0 {
            let approved = i % 3 != 0;
            engine
                .order(&id.as_str().into(), sale(&id, approved))
                .await
                .map_err(|e| e.to_string())?;
            if !approved {
                engine
                    .order(
                        &id.as_str().into(),
                        OrderCommand::RequestRerun {
                            gateway: "flexfactor".into(),
                        },
                    )
                    .await
                    .map_err(|e| e.to_string())?;
            }
        } else if i % 3 == 0 && n < 4 {
            // Placed but killed before the rerun: finish it.
            engine
                .order(
                    &id.as_str().into(),
                    OrderCommand::RequestRerun {
                        gateway: "flexfactor".into(),
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
        }
        writeln!(out, "ack {id}")?;
        out.flush()?;
    }
    pump.abort();
    // Finish everything due now; rows leased by a killed run become free after their lease.
    loop {
        let s = engine.pump().await?;
        let stats = salvage_gateway::store::outbox::stats(
            &store.backend,
            chrono::Utc::now().timestamp_millis() + 1000,
        )
        .await?;
        if s.is_idle() && stats.due == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    writeln!(out, "done")?;
    out.flush()?;
    Ok(())
}
