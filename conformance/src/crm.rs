//! A stand-in for the CRM's notification endpoint: it acknowledges every notification the
//! service POSTs and keeps it, so that scenarios can check what the CRM was told.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde_json::Value;

/// The received notifications.
#[derive(Debug, Default)]
pub struct Inbox {
    received: Mutex<Vec<Value>>,
}

impl Inbox {
    /// Every notification received so far, in arrival order (retries included).
    pub fn all(&self) -> Vec<Value> {
        self.received
            .lock()
            .map(|v| v.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn push(&self, v: Value) {
        match self.received.lock() {
            Ok(mut g) => g.push(v),
            Err(p) => p.into_inner().push(v),
        }
    }

    /// The notifications about one order or subscription, one per distinct `event_id`
    /// (a retry of the same notification is the same notification).
    pub fn about(&self, key: &str, id: &str) -> Vec<Value> {
        let mut seen = std::collections::BTreeSet::new();
        self.all()
            .into_iter()
            .filter(|n| n.get(key).and_then(Value::as_str) == Some(id))
            .filter(|n| {
                let eid = n
                    .get("event_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                seen.insert(eid)
            })
            .collect()
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, body: String) -> StatusCode {
    match serde_json::from_str::<Value>(&body) {
        Ok(v) => {
            inbox.push(v);
            StatusCode::OK
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

/// A running receiver.
pub struct CrmReceiver {
    pub inbox: Arc<Inbox>,
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl CrmReceiver {
    /// Listens on `listen` (`127.0.0.1:0` for any free port) at `/notify`.
    pub async fn start(listen: SocketAddr) -> Result<CrmReceiver, String> {
        let inbox = Arc::new(Inbox::default());
        let app = Router::new()
            .route("/notify", post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(CrmReceiver { inbox, addr, task })
    }

    /// Where the service must POST notifications.
    pub fn url(&self) -> String {
        format!("http://{}/notify", self.addr)
    }
}

impl Drop for CrmReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
