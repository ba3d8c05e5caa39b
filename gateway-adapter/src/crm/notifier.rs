//! CRM notifications: each state change the CRM must act on is POSTed to its endpoint, signed
//! (HMAC-SHA256 over timestamp and body), with the notification's stable `event_id` for
//! deduplication, and retried with back-off until acknowledged (see `effects.rs`).

use std::time::Duration;

use secrecy::SecretString;

use salvage_domain::process_manager::Notification;

use super::signing;
use super::wire;

/// What became of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    Acknowledged,
    /// Not acknowledged (non-2xx, timeout, connection refused): retry later.
    NotYet(String),
}

pub struct Notifier {
    client: reqwest::Client,
    url: String,
    secret: SecretString,
    pub retry_for: chrono::Duration,
}

impl Notifier {
    pub fn new(
        url: String,
        secret: SecretString,
        timeout: Duration,
        retry_for: chrono::Duration,
    ) -> Result<Self, reqwest::Error> {
        Ok(Notifier {
            client: reqwest::Client::builder().timeout(timeout).build()?,
            url,
            secret,
            retry_for,
        })
    }

    pub async fn send(&self, n: &Notification, now_unix: i64) -> Delivered {
        let body = match serde_json::to_vec(&wire::Notification::from(n)) {
            Ok(b) => b,
            Err(e) => return Delivered::NotYet(e.to_string()),
        };
        let r = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(signing::TIMESTAMP_HEADER, now_unix.to_string())
            .header(
                signing::SIGNATURE_HEADER,
                signing::sign(&self.secret, now_unix, &body),
            )
            .header("x-salvage-event-id", n.event_id.as_str())
            .body(body)
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => Delivered::Acknowledged,
            Ok(r) => Delivered::NotYet(format!("CRM answered {}", r.status())),
            Err(e) => Delivered::NotYet(e.without_url().to_string()),
        }
    }
}

/// The back-off before retry number `attempt` (1-based): 30 s doubling, at most one hour.
pub fn backoff(attempt: i64) -> chrono::Duration {
    let exp = attempt.clamp(1, 8) - 1;
    let secs = 30_i64.saturating_mul(1_i64 << exp);
    chrono::Duration::seconds(secs.min(3600))
}

#[cfg(test)]
mod tests {
    use super::backoff;

    #[test]
    fn backoff_doubles_then_caps_at_an_hour() {
        assert_eq!(backoff(1).num_seconds(), 30);
        assert_eq!(backoff(2).num_seconds(), 60);
        assert_eq!(backoff(7).num_seconds(), 1920);
        assert_eq!(backoff(8).num_seconds(), 3600);
        assert_eq!(backoff(50).num_seconds(), 3600);
    }
}
