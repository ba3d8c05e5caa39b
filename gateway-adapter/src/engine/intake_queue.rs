//! Group commit of concurrent webhook deliveries. A verified delivery with a result for an
//! order joins a queue; the committer takes whatever has gathered while the batch before was in
//! flight (up to [`MAX_BATCH`]; see [`batches_in_flight`]), folds those orders with one query,
//! decides each result on its own order, and commits every accepted result with its nonce and
//! its record in one transaction. Each delivery is answered only once that transaction is durable (W3), so a burst
//! shares commits instead of queueing for them one by one, and a lone delivery waits for nothing.
//!
//! What a batch cannot settle falls back to [`Engine::take_delivery`], the one-delivery path,
//! which says what became of it exactly as before: a delivery already recorded or a nonce already
//! seen (found with one query before the batch), a result the order refuses or already has (an
//! order Salvage does not know), a second delivery for an order, nonce or record already in the
//! batch (it goes after), and every delivery of a batch whose commit failed (a replayed
//! nonce, a recorded delivery, another writer first, the store): nothing of that batch was
//! written, and each delivery is then tried alone.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use tokio::time::Instant;

use std::collections::HashSet;

use super::webhook_intake::{for_order, ForOrder, Intake, IntakeError};
use super::Engine;
use crate::flexfactor::VerifiedDelivery;
use crate::store::guarded_commit::CommitError;
use crate::store::held_connection::HeldConnection;
use crate::store::webhook_book;
use crate::store::Backend;
use crate::store::{BatchCommand, BatchError, BatchOutcome};

/// At most this many deliveries share a commit.
pub const MAX_BATCH: usize = 64;

/// Deliveries waiting for the committer, bounded so that a flood waits in the HTTP layer
/// rather than in memory.
const QUEUE: usize = 4 * MAX_BATCH;

/// What the committer answers a delivery: stored with the batch, or left to the caller.
type Answer = Option<Intake>;

struct Job {
    delivery: ForOrder,
    reply: oneshot::Sender<Answer>,
}

/// Hands deliveries to the committer (see the module's doc).
#[derive(Clone)]
pub struct IntakeQueue {
    engine: Arc<Engine>,
    jobs: mpsc::Sender<Job>,
    activity: Arc<Activity>,
}

/// Whether deliveries are coming in: the background worker yields to a burst
/// (`[service] worker_yield_ms`).
struct Activity {
    /// Deliveries being stored now.
    in_flight: AtomicUsize,
    /// When the last one finished, in milliseconds after `origin`.
    last_done_ms: AtomicU64,
    origin: Instant,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// Milliseconds since `origin`, from 1 (0 is "no delivery yet").
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    /// Counts a delivery in flight until the guard is dropped.
    fn start(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self)
    }

    fn busy(&self, quiet: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let last = self.last_done_ms.load(Ordering::Relaxed);
        if last == 0 {
            return false;
        }
        self.now_ms().saturating_sub(last) < u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Counts a delivery in flight until dropped.
struct InFlight<'a>(&'a Activity);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let a = self.0;
        a.last_done_ms.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl IntakeQueue {
    /// Starts the committer; it stops when every handle of the queue is dropped, after the
    /// deliveries already queued.
    pub fn start(engine: Arc<Engine>) -> (IntakeQueue, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(commit_batches(engine.clone(), rx));
        let activity = Arc::new(Activity::new());
        (
            IntakeQueue {
                engine,
                jobs,
                activity,
            },
            task,
        )
    }

    /// Whether a delivery is being stored now or one finished within `quiet`.
    pub fn busy(&self, quiet: Duration) -> bool {
        self.activity.busy(quiet)
    }

    /// Stores a verified delivery and says what became of it, as
    /// [`Engine::take_delivery`] does, sharing the commit with concurrent deliveries.
    pub async fn take(
        &self,
        delivery: &VerifiedDelivery,
        body: &[u8],
    ) -> Result<Intake, IntakeError> {
        let _counted = self.activity.start();
        let Some(for_order) = for_order(delivery, self.engine.now_ms()) else {
            return self.engine.take_delivery(delivery, body).await;
        };
        let (reply, answer) = oneshot::channel();
        let job = Job {
            delivery: for_order,
            reply,
        };
        if self.jobs.send(job).await.is_ok() {
            if let Ok(Some(intake)) = answer.await {
                return Ok(intake);
            }
        }
        // Not stored with a batch (or the committer has stopped): alone, as before.
        self.engine.take_delivery(delivery, body).await
    }
}

/// How many batches may commit at once. One while deliveries arrive at a steady pace: those
/// that arrive while a batch commits gather for the next, so the busier the service, the more
/// each commit carries. On PostgreSQL a batch may start beside the one in flight only when it
/// is full ([`MAX_BATCH`] waiting: a burst), up to four side by side, which share the log's
/// flush. Measured over sixteen connections (docs/benchmarks.md, issue 18, third round): one
/// in flight gave 5,800-6,900 deliveries/s, two 6,100-6,300, four 5,000-5,500, with the least
/// CPU time per delivery for one; a burst of 20,000 over 256 connections was acknowledged in
/// 6.1 s with one, 3.4-3.6 s with four. SQLite has one writer: one in flight (two only had the
/// second wait for the write lock: measured slower).
fn batches_in_flight(backend: &Backend) -> usize {
    match backend {
        Backend::Postgres(_) => 4,
        Backend::Sqlite(_) => 1,
    }
}

/// Below this many deliveries a batch commits without first looking for redeliveries and
/// replayed nonces (one round trip saved, on the path every delivery of the batch waits on; if
/// one is there, the batch's commit fails and each of its deliveries is stored alone, at most
/// this many). A burst's larger batches look first: undoing one would cost dozens of commits.
/// Measured (issue 18, third round): looking first from four deliveries on, 4,900-6,200/s over
/// sixteen connections on PostgreSQL; from sixteen on, 6,300-6,700/s.
const LOOK_FIRST: usize = 16;

async fn commit_batches(engine: Arc<Engine>, mut rx: mpsc::Receiver<Job>) {
    let max = batches_in_flight(&engine.store.backend);
    let in_flight = Arc::new(Semaphore::new(max));
    // Told when a batch has committed and given back its permit.
    let finished = Arc::new(Notify::new());
    // The committers' connections, kept from batch to batch (see [`HeldConnection`]).
    let connections: Arc<std::sync::Mutex<Vec<HeldConnection>>> = Arc::default();
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    loop {
        // While every batch is in flight, deliveries gather in the queue for the next one.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            break;
        }
        // Another batch in flight: this one gathers until that one has committed, unless it
        // fills up first (see [`batches_in_flight`]).
        loop {
            let done = finished.notified();
            tokio::pin!(done);
            // Registered before looking, so that a batch finishing after the look wakes it.
            done.as_mut().enable();
            let others = max - in_flight.available_permits() - 1;
            if others == 0 || jobs.len() >= MAX_BATCH {
                break;
            }
            let room = MAX_BATCH - jobs.len();
            tokio::select! {
                n = rx.recv_many(&mut jobs, room) => if n == 0 { break },
                _ = &mut done => {}
            }
        }
        let batch = std::mem::replace(&mut jobs, Vec::with_capacity(MAX_BATCH));
        let engine = engine.clone();
        let connections = connections.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let mut held = take_connection(&connections);
            commit_batch(&engine, batch, &mut held).await;
            if held.holds() {
                if let Ok(mut kept) = connections.lock() {
                    kept.push(held);
                }
            }
            drop(permit);
            finished.notify_waiters();
        });
    }
}

/// A kept connection, or an empty holder that takes one from the pool when first used.
fn take_connection(kept: &std::sync::Mutex<Vec<HeldConnection>>) -> HeldConnection {
    kept.lock()
        .ok()
        .and_then(|mut k| k.pop())
        .unwrap_or_default()
}

/// Commits one batch and answers each of its deliveries.
async fn commit_batch(engine: &Engine, jobs: Vec<Job>, held: &mut HeldConnection) {
    // Redeliveries and replayed nonces would fail their guards and undo the whole batch: they
    // go the one-delivery path, which says what they are. (A look that fails leaves them in;
    // the commit then decides. A small batch is not looked for, see [`LOOK_FIRST`].)
    let stored = if jobs.len() < LOOK_FIRST {
        HashSet::new()
    } else {
        let nonces: Vec<&str> = jobs.iter().map(|j| j.delivery.nonce.as_str()).collect();
        let keys: Vec<&str> = jobs
            .iter()
            .map(|j| j.delivery.delivery_key.as_str())
            .collect();
        webhook_book::already_stored(&engine.store.backend, held, &nonces, &keys)
            .await
            .unwrap_or_default()
    };
    let mut orders = HashSet::with_capacity(jobs.len());
    let mut nonces = HashSet::with_capacity(jobs.len());
    let mut keys = HashSet::with_capacity(jobs.len());
    let mut batch = Vec::with_capacity(jobs.len());
    let mut later = Vec::new();
    for job in jobs {
        let d = &job.delivery;
        let alone = stored.contains(&d.nonce)
            || stored.contains(&d.delivery_key)
            || !orders.insert(d.order_id.clone())
            || !nonces.insert(d.nonce.clone())
            || !keys.insert(d.delivery_key.clone());
        if alone {
            later.push(job);
        } else {
            batch.push(job);
        }
    }
    if batch.is_empty() {
        for job in later {
            let _ = job.reply.send(None);
        }
        return;
    }
    if let Some(m) = &engine.metrics {
        m.webhook_batch(batch.len());
    }
    let mut replies = Vec::with_capacity(batch.len());
    let commands = batch
        .into_iter()
        .map(|job| {
            replies.push(job.reply);
            BatchCommand {
                id: job.delivery.order_id,
                command: job.delivery.command,
                writes: job.delivery.writes,
            }
        })
        .collect();
    match engine
        .store
        .orders
        .execute_batch_held(commands, &engine.services, held)
        .await
    {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let answer = match outcome {
                    BatchOutcome::Committed(_) => Some(Intake::Applied),
                    BatchOutcome::Refused(_) | BatchOutcome::Unchanged => None,
                };
                // A caller that has gone away (its connection closed) learns nothing more; what
                // was committed stays committed, as with a delivery answered alone.
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            if let Some(m) = &engine.metrics {
                m.webhook_batch_undone(match &e {
                    BatchError::Commit(CommitError::Conflict) => "conflict",
                    BatchError::Commit(CommitError::Guard(_)) => "guard",
                    _ => "store",
                });
            }
            tracing::debug!(error = %e, size = replies.len(),
                            "a batch of deliveries did not commit; each is tried alone");
            for reply in replies {
                let _ = reply.send(None);
            }
        }
    }
    // After the batch's commit, so that they find what it wrote.
    for job in later {
        let _ = job.reply.send(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn busy_while_a_delivery_is_in_flight_and_for_a_quiet_moment_after() {
        let quiet = Duration::from_millis(10);
        let a = Activity::new();
        assert!(!a.busy(quiet), "no delivery yet");
        let first = a.start();
        let second = a.start();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(a.busy(quiet), "two in flight");
        drop(first);
        assert!(a.busy(quiet), "one still in flight");
        drop(second);
        assert!(a.busy(quiet), "the last one just finished");
        tokio::time::advance(Duration::from_millis(9)).await;
        assert!(a.busy(quiet));
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(!a.busy(quiet), "quiet for longer than `quiet`");
    }
}
