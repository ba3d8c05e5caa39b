//! Webhook deliveries: the outbox's due entries are signed with FlexFactor's scheme (the
//! adapter's [`sign_webhook`], `x-fc-*` headers, `Host` = the webhook URL's host) and POSTed to
//! the configured URL; anything but a 2xx is redelivered later with `IsResent: true`, with
//! back-off. Delivery faults (duplicate, resent, reordered, bad signature; late is applied when
//! an event is queued) are applied here.

use chrono::{DateTime, Utc};
use salvage_domain::Clock;
use salvage_gateway::flexfactor::{format_fc_date, sign_webhook, WebhookKey};
use serde::Serialize;
use serde_json::Value;

use super::app::App;
use super::state::{Delivery, DeliveryAttempt};
use super::webhook_target::WebhookTarget;

pub use super::redelivery::RedeliveryPolicy;

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
