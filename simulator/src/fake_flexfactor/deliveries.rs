//! Webhook deliveries: the outbox's due entries are signed with FlexFactor's scheme (the
//! adapter's [`sign_webhook`], `x-fc-*` headers, `Host` = the webhook URL's host) and POSTed to
//! the configured URL; anything but a 2xx is redelivered later with `IsResent: true`, with
//! back-off. Delivery faults (duplicate, resent, reordered, bad signature; late is applied when
//! an event is queued) are applied here.

use chrono::{DateTime, Duration, Utc};
use salvage_domain::Clock;
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use serde::Serialize;
use serde_json::Value;

use super::error::FakeError;
use super::server::App;
use super::state::{Delivery, DeliveryAttempt};

/// When unacknowledged deliveries are sent again: `first_retry` after the first failure,
/// doubling up to `max_interval`, at most `max_attempts` sends in all. **[inference]**:
/// FlexFactor documents no redelivery schedule; `IsResent` shows that it redelivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    /// The wait after the first failed send.
    pub first_retry: Duration,
    /// The longest wait.
    pub max_interval: Duration,
    /// Sends before giving up.
    pub max_attempts: u32,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        RedeliveryPolicy {
            first_retry: Duration::seconds(60),
            max_interval: Duration::hours(1),
            max_attempts: 20,
        }
    }
}

impl RedeliveryPolicy {
    /// The wait after `failed_sends` failed sends (1 for the first).
    pub fn delay_after(&self, failed_sends: u32) -> Duration {
        let factor = 1i32
            .checked_shl(failed_sends.saturating_sub(1).min(30))
            .unwrap_or(i32::MAX);
        self.first_retry
            .checked_mul(factor)
            .unwrap_or(self.max_interval)
            .min(self.max_interval)
    }
}

/// What one delivery pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryReport {
    /// HTTP sends made (duplicates and resends included).
    pub sent: usize,
    /// Deliveries acknowledged with a 2xx in this pass.
    pub acknowledged: usize,
    /// Sends that got no 2xx.
    pub failed: usize,
    /// Deliveries still waiting for an acknowledgement after the pass.
    pub pending: usize,
}

/// Where deliveries go.
#[derive(Debug, Clone)]
pub(crate) struct WebhookTarget {
    pub url: reqwest::Url,
    /// The `Host` header and the signed host: the URL's host, with its port when the URL names
    /// one that is not the scheme's default.
    pub host: String,
}

impl WebhookTarget {
    pub(crate) fn parse(url: &str) -> Result<Self, FakeError> {
        let refuse = |reason: &str| FakeError::WebhookUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(url.trim()).map_err(|e| refuse(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(refuse("not http(s)"));
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| refuse("no host"))?
            .to_string();
        let host = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        Ok(WebhookTarget { url: parsed, host })
    }
}

/// A delivery's body, PascalCase and in the order of FlexFactor's published sample.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "Event")]
    event: &'a str,
    #[serde(rename = "TimeStamp")]
    timestamp: String,
    #[serde(rename = "EventData")]
    event_data: Option<Value>,
    #[serde(rename = "ExternalOrderId")]
    external_order_id: &'a str,
    #[serde(rename = "OrderId")]
    order_id: &'a str,
    #[serde(rename = "ConfirmationId")]
    confirmation_id: Option<&'a str>,
    #[serde(rename = "IsTestMode")]
    is_test_mode: bool,
    #[serde(rename = "IsResent")]
    is_resent: bool,
}

/// `TimeStamp` as in the sample: `2023-03-20T17:16:40.898703Z`.
fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// How one send went.
struct Sent {
    nonce: String,
    at: DateTime<Utc>,
    result: Result<u16, String>,
}

impl App {
    /// Delivers every webhook that is due on the fake's clock (after applying the transitions
    /// that became due). One pass at a time.
    pub(crate) async fn deliver_due(&self) -> DeliveryReport {
        let _gate = self.delivery_gate.lock().await;
        let now = self.clock.now();
        let target = self.webhook_target();
        let (mut batch, reorder) = {
            let mut st = self.lock();
            st.settle(now, self.settings.capture_window);
            let mut batch: Vec<Delivery> = st
                .outbox
                .iter()
                .filter(|d| !d.acknowledged && !d.gave_up && d.due_at <= now)
                .cloned()
                .collect();
            batch.sort_by_key(|d| (d.due_at, d.id));
            let reorder = target.is_some()
                && batch.len() > 1
                && st.faults.take_delivery("reordered").is_some();
            (batch, reorder)
        };
        let mut report = DeliveryReport::default();
        let Some(target) = target else {
            report.pending = self.pending_deliveries();
            return report;
        };
        if reorder {
            batch.reverse();
        }
        for delivery in batch {
            self.deliver_one(&target, delivery, &mut report).await;
        }
        report.pending = self.pending_deliveries();
        report
    }

    async fn deliver_one(
        &self,
        target: &WebhookTarget,
        delivery: Delivery,
        report: &mut DeliveryReport,
    ) {
        let is_resent = delivery.attempts > 0;
        let (bad_signature, duplicate) = {
            let mut st = self.lock();
            (
                st.faults.take_delivery("bad_signature").is_some(),
                st.faults.take_delivery("duplicate").is_some(),
            )
        };
        let sent = self.send(target, &delivery, is_resent, bad_signature).await;
        let ok = matches!(sent.result, Ok(s) if (200..300).contains(&s));
        self.record(&delivery, &sent, is_resent, false, bad_signature, report);
        let resend = {
            let mut st = self.lock();
            let policy = &self.settings.redelivery;
            if let Some(d) = st.outbox.iter_mut().find(|d| d.id == delivery.id) {
                d.attempts += 1;
                if ok {
                    d.acknowledged = true;
                } else if d.attempts >= policy.max_attempts {
                    d.gave_up = true;
                } else {
                    d.due_at = sent.at + policy.delay_after(d.attempts);
                }
            }
            ok && st.faults.take_delivery("resent").is_some()
        };
        if ok {
            report.acknowledged += 1;
        }
        if duplicate {
            let again = self.send(target, &delivery, is_resent, false).await;
            self.record(&delivery, &again, is_resent, true, false, report);
        }
        if resend {
            let again = self.send(target, &delivery, true, false).await;
            self.record(&delivery, &again, true, false, false, report);
        }
    }

    fn record(
        &self,
        delivery: &Delivery,
        sent: &Sent,
        is_resent: bool,
        duplicate: bool,
        bad_signature: bool,
        report: &mut DeliveryReport,
    ) {
        report.sent += 1;
        let (status, error) = match &sent.result {
            Ok(s) => (Some(*s), None),
            Err(e) => (None, Some(e.clone())),
        };
        if !matches!(status, Some(s) if (200..300).contains(&s)) {
            report.failed += 1;
        }
        tracing::debug!(
            delivery = delivery.id,
            event = %delivery.event,
            is_resent,
            duplicate,
            bad_signature,
            status = ?status,
            "fake FlexFactor delivered a webhook"
        );
        self.lock().attempts.push(DeliveryAttempt {
            delivery_id: delivery.id,
            event: delivery.event.clone(),
            order_id: delivery.order_id.clone(),
            is_resent,
            duplicate,
            bad_signature,
            at: sent.at,
            nonce: sent.nonce.clone(),
            status,
            error,
        });
    }

    async fn send(
        &self,
        target: &WebhookTarget,
        delivery: &Delivery,
        is_resent: bool,
        bad_signature: bool,
    ) -> Sent {
        let at = self.clock.now();
        let nonce = format!("{:016x}{:016x}", self.random_u64(), self.random_u64());
        let payload = Payload {
            event: &delivery.event,
            timestamp: timestamp(delivery.timestamp),
            event_data: None,
            external_order_id: &delivery.external_order_id,
            order_id: &delivery.order_id,
            confirmation_id: delivery.confirmation_id.as_deref(),
            is_test_mode: self.settings.test_mode,
            is_resent,
        };
        let body = match serde_json::to_vec(&payload) {
            Ok(b) => b,
            Err(e) => {
                return Sent {
                    nonce,
                    at,
                    result: Err(format!("cannot serialize the payload: {e}")),
                }
            }
        };
        let wrong_key;
        let key: &WebhookKey = if bad_signature {
            wrong_key = WebhookKey::from_bytes(b"not the merchant's HMAC signing key")
                .unwrap_or_else(|_| self.key.clone());
            &wrong_key
        } else {
            &self.key
        };
        let signed = sign_webhook(key, &target.host, &nonce, &format_fc_date(at), &body);
        let mut request = self
            .http
            .post(target.url.clone())
            .header("host", target.host.as_str())
            .header("content-type", "application/json")
            .body(body);
        for (name, value) in signed.pairs() {
            request = request.header(name, value);
        }
        let result = match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(e) => Err(e.without_url().to_string()),
        };
        Sent { nonce, at, result }
    }

    /// Deliveries not yet acknowledged (nor given up).
    pub(crate) fn pending_deliveries(&self) -> usize {
        self.lock()
            .outbox
            .iter()
            .filter(|d| !d.acknowledged && !d.gave_up)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_and_is_capped() {
        let p = RedeliveryPolicy::default();
        assert_eq!(p.delay_after(1), Duration::seconds(60));
        assert_eq!(p.delay_after(2), Duration::seconds(120));
        assert_eq!(p.delay_after(7), Duration::hours(1));
        assert_eq!(p.delay_after(40), Duration::hours(1));
    }

    #[test]
    fn host_includes_an_explicit_port() {
        let t = WebhookTarget::parse("http://127.0.0.1:8080/webhooks/flexfactor").unwrap();
        assert_eq!(t.host, "127.0.0.1:8080");
        let t = WebhookTarget::parse("https://crm.example.com/hook").unwrap();
        assert_eq!(t.host, "crm.example.com");
        assert!(WebhookTarget::parse("ftp://x/").is_err());
        assert!(WebhookTarget::parse("not a url").is_err());
    }
}
