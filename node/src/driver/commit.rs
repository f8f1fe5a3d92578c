//! Group commit, pipelined. What the loop staged becomes durable in one write transaction; the
//! replies, events and messages that depend on it wait for it to land. While a commit is in
//! flight (on the daemon's commit thread) the loop keeps running calls and applying deltas into
//! the next batch, which is committed as soon as the first one lands; with the inline
//! committer (the simulator's) a commit lands before `flush` returns.

use super::{NodeFailure, NodeTask};
use crate::events::NodeEvent;
use crate::store::{CommitResult, StoreError};
use crate::transport::Transport;
use rhizome_core::{ContextId, Output};
use tokio::sync::oneshot;

/// A reply to send once its commit has landed.
pub(super) type Ack = Box<dyn FnOnce() + Send>;

/// The commit in flight and what waits for it.
pub(super) struct InFlight {
    done: oneshot::Receiver<CommitResult>,
    acks: Vec<Ack>,
    events: Vec<(ContextId, NodeEvent)>,
    outbox: Vec<Output>,
}

/// The result of the commit in flight, once it lands; never resolves if none is.
pub(super) async fn landed(in_flight: &mut Option<InFlight>) -> CommitResult {
    match in_flight {
        Some(in_flight) => (&mut in_flight.done).await.unwrap_or_else(|_| Err(committer_gone())),
        None => std::future::pending().await,
    }
}

fn committer_gone() -> StoreError {
    StoreError::CommitterGone
}

impl<T: Transport> NodeTask<T> {
    /// Rows staged for the next commit.
    pub(super) fn staged_rows(&self) -> usize {
        self.batch.row_count() + self.store.staged_len()
    }

    /// Starts a commit of what must be durable, or, if nothing must be, answers callers,
    /// publishes events and carries out the outputs at once. While a commit is in flight
    /// everything waits for it (and then for its own commit, if it needs one), so replies and
    /// messages leave in the order they were made. A failed commit stops the node: nothing it
    /// held back is sent, so no caller hears of a write that is not on disk.
    ///
    /// A batch of only what peers sent is not committed at once: it stays staged (reads see
    /// it) and joins the next commit, which comes with the next local write, call, handler run
    /// or context change, or once the oldest staged data is `max_non_durable_ms` old or the
    /// staged rows reach `max_staged_rows`. A crash loses at most that, and sync fetches it
    /// again; a commit per received gossip message was most of a simulated node's time.
    pub(super) fn flush(&mut self) -> Result<(), NodeFailure> {
        if self.in_flight.is_some() {
            // Calls keep joining the open batch while the commit is in flight (one delta of
            // many calls costs less than many deltas), but a batch big enough is made into its
            // delta now, so that little is left to do when the commit lands.
            if self.open_calls_len() >= self.config.max_calls_per_delta / 4 {
                self.seal_calls();
            }
            return Ok(());
        }
        if self.commit_due() {
            self.start_commit()?;
            return self.land_if_finished();
        }
        let (acks, events, outbox) = self.take_waiting();
        self.release(acks, events, outbox);
        Ok(())
    }

    /// Seals the open calls and decides whether what is staged must be committed now (see
    /// [`NodeTask::flush`]).
    fn commit_due(&mut self) -> bool {
        self.seal_calls();
        for context in std::mem::take(&mut self.rewrites) {
            let image = self.dag_image(&context);
            self.batch.dag_rewrites.push((context, image));
        }
        let staged_rows = self.staged_rows();
        if staged_rows == 0 {
            return false;
        }
        let now = self.clock.now();
        let oldest = *self.staged_since.get_or_insert(now);
        let batch = &self.batch;
        let due = batch.durable
            || !self.acks.is_empty()
            || !batch.contexts.is_empty()
            || !batch.apps.is_empty()
            || !batch.dag_rewrites.is_empty()
            || now >= oldest.add_millis(self.config.max_non_durable_ms)
            || staged_rows >= self.config.max_staged_rows;
        if !due {
            self.metrics.commits_deferred += 1;
        }
        due
    }

    /// Hands the staged batch, and what waits for it, to the committer.
    fn start_commit(&mut self) -> Result<(), NodeFailure> {
        let job = self.store.begin_commit(std::mem::take(&mut self.batch))?;
        self.staged_since = None;
        let (sender, done) = oneshot::channel();
        let (acks, events, outbox) = self.take_waiting();
        self.in_flight = Some(InFlight { done, acks, events, outbox });
        self.committer.start(job, sender);
        Ok(())
    }

    /// Lands the commit in flight if it has finished already (an inline committer's has).
    fn land_if_finished(&mut self) -> Result<(), NodeFailure> {
        let finished = match self.in_flight.as_mut().map(|in_flight| in_flight.done.try_recv()) {
            Some(Ok(result)) => result,
            Some(Err(oneshot::error::TryRecvError::Closed)) => Err(committer_gone()),
            Some(Err(oneshot::error::TryRecvError::Empty)) | None => return Ok(()),
        };
        self.land(finished)
    }

    /// The commit in flight landed. On success the next commit starts at once if one is due
    /// (the disk stays busy while replies go out); then what waited for the landed commit goes
    /// out, and only after it anything made since that needs no commit, so replies, events
    /// and messages keep the order they were made in.
    pub(super) fn land(&mut self, result: CommitResult) -> Result<(), NodeFailure> {
        let Some(landed) = self.in_flight.take() else { return Ok(()) };
        result?;
        self.store.end_commit();
        self.metrics.commits += 1;
        let next = if self.commit_due() { self.start_commit().map(|()| true) } else { Ok(false) };
        self.release(landed.acks, landed.events, landed.outbox);
        if next? {
            return self.land_if_finished();
        }
        let (acks, events, outbox) = self.take_waiting();
        self.release(acks, events, outbox);
        Ok(())
    }

    /// Waits for the commit in flight, if any, to land.
    pub(super) async fn await_landing(&mut self) -> Result<(), NodeFailure> {
        if self.in_flight.is_some() {
            let result = landed(&mut self.in_flight).await;
            self.land(result)?;
        }
        Ok(())
    }

    /// The last flush before the loop ends: whatever is staged is committed, and every commit
    /// has landed.
    pub(super) async fn flush_final(&mut self) -> Result<(), NodeFailure> {
        self.seal_calls();
        loop {
            self.await_landing().await?;
            self.batch.durable = true;
            self.flush()?;
            if self.in_flight.is_none() {
                return Ok(());
            }
        }
    }

    fn take_waiting(&mut self) -> (Vec<Ack>, Vec<(ContextId, NodeEvent)>, Vec<Output>) {
        (std::mem::take(&mut self.acks), std::mem::take(&mut self.events), std::mem::take(&mut self.outbox))
    }

    fn release(&mut self, acks: Vec<Ack>, events: Vec<(ContextId, NodeEvent)>, outbox: Vec<Output>) {
        for ack in acks {
            ack();
        }
        for (context, event) in events {
            self.subscribers.publish(&context, &event);
        }
        self.metrics.subscribers_dropped_slow = self.subscribers.dropped_slow;
        for output in outbox {
            self.carry_out(output);
        }
    }
}
