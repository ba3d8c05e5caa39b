//! Prometheus metrics (`GET /metrics`): requests and latencies by route, webhook verification
//! failures, salvage submissions and answers by route, notifications, scheduler lag and the
//! notification backlog.

use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use salvage_domain::ports::EvaluateAnswer;

/// The FlexFactor operations the service calls, as the metrics name them.
pub const FLEXFACTOR_OPERATIONS: [&str; 7] = [
    "tokenize",
    "evaluate",
    "capture",
    "order_status",
    "cancel",
    "external_cancel",
    "refund",
];

/// One FlexFactor operation's calls since start (the console's health page).
#[derive(Debug, Clone, PartialEq)]
pub struct FlexFactorCalls {
    pub operation: &'static str,
    pub calls: u64,
    pub errors: u64,
    pub mean_seconds: f64,
}

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    webhook_failures: IntCounterVec,
    charge_hook_calls: IntCounterVec,
    submissions: IntCounterVec,
    answers: IntCounterVec,
    notifications: IntCounterVec,
    network_blocked: IntCounterVec,
    network_delayed: IntCounterVec,
    flexfactor_calls: IntCounterVec,
    flexfactor_latency: HistogramVec,
    webhook_batches: Histogram,
    webhook_batches_undone: IntCounterVec,
    worker_yield_seconds: Counter,
    pub scheduler_lag_seconds: Gauge,
    pub notification_backlog: IntGauge,
    pub outbox_failed: IntGauge,
    pub sqlite_lock_retries: IntGauge,
    /// 1 when the service runs in test mode.
    pub test_mode: IntGauge,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("salvage".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        let webhook_failures = IntCounterVec::new(
            Opts::new(
                "webhooks_refused_total",
                "FlexFactor deliveries refused (nothing stored), by reason",
            ),
            &["reason"],
        )?;
        let charge_hook_calls = IntCounterVec::new(
            Opts::new(
                "charge_hook_calls_total",
                "Charge hook calls by outcome: approved, declined, pending, unknown (may have charged), not_sent",
            ),
            &["outcome"],
        )?;
        let submissions = IntCounterVec::new(
            Opts::new(
                "salvage_submissions_total",
                "Calls to FlexFactor /evaluate by route",
            ),
            &["route"],
        )?;
        let answers = IntCounterVec::new(
            Opts::new(
                "salvage_answers_total",
                "FlexFactor answers by route and status",
            ),
            &["route", "answer"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "crm_notifications_total",
                "CRM notification attempts by result",
            ),
            &["result"],
        )?;
        let network_blocked = IntCounterVec::new(
            Opts::new(
                "network_blocked_attempts_total",
                "Attempts not made because the card network forbids them (N7), by reason and rule",
            ),
            &["reason", "rule"],
        )?;
        let network_delayed = IntCounterVec::new(
            Opts::new(
                "network_delayed_attempts_total",
                "Recycle re-attempts moved to the card network's advised time (N4)",
            ),
            &["rule"],
        )?;
        let flexfactor_calls = IntCounterVec::new(
            Opts::new(
                "flexfactor_calls_total",
                "Calls to FlexFactor by operation and outcome (ok or the error's kind)",
            ),
            &["operation", "outcome"],
        )?;
        let flexfactor_latency = HistogramVec::new(
            HistogramOpts::new(
                "flexfactor_call_duration_seconds",
                "FlexFactor call latency by operation (retries included)",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["operation"],
        )?;
        let scheduler_lag_seconds = Gauge::new(
            "scheduler_lag_seconds",
            "Age of the oldest due outbox row (0 when nothing is waiting)",
        )?;
        let notification_backlog = IntGauge::new(
            "outbox_pending",
            "Outbox rows (effects, commands, timers) not done yet",
        )?;
        let outbox_failed = IntGauge::new("outbox_failed", "Outbox rows failed for good")?;
        let sqlite_lock_retries = IntGauge::new(
            "sqlite_lock_retries",
            "Times a SQLite connection found the write lock taken and retried (since start)",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(webhook_failures.clone()))?;
        registry.register(Box::new(charge_hook_calls.clone()))?;
        registry.register(Box::new(submissions.clone()))?;
        registry.register(Box::new(answers.clone()))?;
        registry.register(Box::new(notifications.clone()))?;
        registry.register(Box::new(network_blocked.clone()))?;
        registry.register(Box::new(network_delayed.clone()))?;
        registry.register(Box::new(flexfactor_calls.clone()))?;
        registry.register(Box::new(flexfactor_latency.clone()))?;
        registry.register(Box::new(scheduler_lag_seconds.clone()))?;
        registry.register(Box::new(notification_backlog.clone()))?;
        registry.register(Box::new(outbox_failed.clone()))?;
        registry.register(Box::new(sqlite_lock_retries.clone()))?;
        let test_mode = IntGauge::new(
            "test_mode",
            "1 when the service runs in test mode ([test_mode] enabled): not for production",
        )?;
        registry.register(Box::new(test_mode.clone()))?;
        let webhook_batches = Histogram::with_opts(
            HistogramOpts::new(
                "webhook_commit_batch_size",
                "Webhook deliveries committed together in one transaction (group commit)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
        )?;
        registry.register(Box::new(webhook_batches.clone()))?;
        let webhook_batches_undone = IntCounterVec::new(
            Opts::new(
                "webhook_batches_undone_total",
                "Group commits of webhook deliveries that wrote nothing (each delivery then stored alone), by reason",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(webhook_batches_undone.clone()))?;
        let worker_yield_seconds = Counter::new(
            "worker_yield_seconds_total",
            "Seconds the background worker held off while webhook deliveries kept arriving ([service] worker_yield_ms)",
        )?;
        registry.register(Box::new(worker_yield_seconds.clone()))?;
        Ok(Metrics {
            worker_yield_seconds,
            webhook_batches,
            webhook_batches_undone,
            registry,
            requests,
            latency,
            webhook_failures,
            charge_hook_calls,
            submissions,
            answers,
            notifications,
            network_blocked,
            network_delayed,
            flexfactor_calls,
            flexfactor_latency,
            scheduler_lag_seconds,
            notification_backlog,
            outbox_failed,
            sqlite_lock_retries,
            test_mode,
        })
    }

    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// One group commit of `size` webhook deliveries.
    pub fn webhook_batch(&self, size: usize) {
        self.webhook_batches.observe(size as f64);
    }

    /// A group commit that wrote nothing: `conflict`, `guard` or `store`.
    pub fn webhook_batch_undone(&self, reason: &str) {
        self.webhook_batches_undone
            .with_label_values(&[reason])
            .inc();
    }

    /// The background worker held off for `seconds` while deliveries kept arriving.
    pub fn worker_yielded(&self, seconds: f64) {
        self.worker_yield_seconds.inc_by(seconds);
    }

    pub fn webhook_refused(&self, reason: &str) {
        self.webhook_failures.with_label_values(&[reason]).inc();
    }

    pub fn charge_hook(&self, outcome: &str) {
        self.charge_hook_calls.with_label_values(&[outcome]).inc();
    }

    pub fn submission(&self, route: &str) {
        self.submissions.with_label_values(&[route]).inc();
    }

    pub fn answer(&self, route: &str, answer: &EvaluateAnswer) {
        let name = match answer {
            EvaluateAnswer::Approved { .. } => "approved",
            EvaluateAnswer::Declined { .. } => "declined",
            EvaluateAnswer::Challenge { .. } => "challenge",
            EvaluateAnswer::Submitted { .. } => "submitted",
            EvaluateAnswer::Processing { .. } => "processing",
            EvaluateAnswer::CaptureRequired { .. } => "capture_required",
            EvaluateAnswer::Unrecognized { .. } => "unrecognized",
            EvaluateAnswer::Rejected { .. } => "rejected",
            EvaluateAnswer::Unknown { .. } => "unknown",
        };
        self.answers.with_label_values(&[route, name]).inc();
    }

    /// N7: an attempt the card network forbids was not made.
    pub fn network_blocked(&self, reason: &str, rule: &str) {
        self.network_blocked
            .with_label_values(&[reason, rule])
            .inc();
    }

    /// N4: a re-attempt was moved to the network's advised time.
    pub fn network_delayed(&self, rule: &str) {
        self.network_delayed.with_label_values(&[rule]).inc();
    }

    pub fn notification(&self, acknowledged: bool) {
        self.notifications
            .with_label_values(&[if acknowledged {
                "acknowledged"
            } else {
                "not_yet"
            }])
            .inc();
    }

    /// A call to FlexFactor: its operation, its outcome (`ok` or the error's kind) and how long
    /// it took.
    pub fn flexfactor_call(&self, operation: &str, outcome: &str, seconds: f64) {
        self.flexfactor_calls
            .with_label_values(&[operation, outcome])
            .inc();
        self.flexfactor_latency
            .with_label_values(&[operation])
            .observe(seconds);
    }

    /// Per FlexFactor operation since start: calls, calls that failed, mean latency in seconds.
    pub fn flexfactor_summary(&self) -> Vec<FlexFactorCalls> {
        FLEXFACTOR_OPERATIONS
            .iter()
            .map(|op| {
                let h = self.flexfactor_latency.with_label_values(&[op]);
                let calls = h.get_sample_count();
                let ok = self.flexfactor_calls.with_label_values(&[op, "ok"]).get();
                FlexFactorCalls {
                    operation: op,
                    calls,
                    errors: calls.saturating_sub(ok),
                    mean_seconds: if calls == 0 {
                        0.0
                    } else {
                        h.get_sample_sum() / calls as f64
                    },
                }
            })
            .collect()
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
