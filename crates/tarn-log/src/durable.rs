//! Waiting for durability without a blocked thread. [`ShardLog::durable`] returns a future that
//! resolves once an fsync covers the records below an offset, so an async server can acknowledge
//! a write without parking a thread per request on the fsync.
//!
//! The fsyncs those futures wait for are run by the log's syncer thread: it starts with the first
//! future that has to wait, runs group-commit rounds (the same rounds, linger included, as
//! blocked [`ShardLog::sync_to`] callers run, and shared with them) while futures wait, and ends
//! after [`SYNCER_IDLE`] without any.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::shard_log::{ShardLog, Waiter};

/// How long the syncer thread stays without a waiting future before it ends.
pub const SYNCER_IDLE: Duration = Duration::from_secs(1);

/// Resolves once the records below its offset are durable, or with the error that means they
/// never will be (an fsync failed: the log is poisoned). Dropping it stops the waiting, not the
/// write.
#[must_use = "records are not durable until the future resolves"]
pub struct Durable {
    log: Arc<ShardLog>,
    end_offset: u64,
    /// The registration among the log's waiters, while there is one.
    id: Option<u64>,
}

impl ShardLog {
    /// A future for the durability of every record below `end_offset` (an
    /// [`crate::Appended::end_offset`]).
    pub fn durable(self: &Arc<Self>, end_offset: u64) -> Durable {
        Durable { log: self.clone(), end_offset, id: None }
    }
}

impl Future for Durable {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        let this = &mut *self;
        let log = &this.log;
        let mut state = log.sync_state.lock().expect("sync lock");
        // Checked under the lock: a round updates the durable end and wakes under it too.
        if let Some(settled) = log.settled(this.end_offset) {
            if let Some(id) = this.id.take() {
                state.wakers.retain(|w| w.id != id);
            }
            return Poll::Ready(settled);
        }
        match this.id.and_then(|id| state.wakers.iter_mut().find(|w| w.id == id)) {
            Some(waiter) => waiter.waker.clone_from(cx.waker()),
            None => {
                let id = state.next_waiter_id;
                state.next_waiter_id += 1;
                state.wakers.push(Waiter { id, end_offset: this.end_offset, waker: cx.waker().clone() });
                this.id = Some(id);
            }
        }
        if state.syncer_running {
            log.syncer_wake.notify_one();
        } else {
            let syncer_log = log.clone();
            let spawned = std::thread::Builder::new().name("tarn-log-sync".into()).spawn(move || syncer(&syncer_log));
            if let Err(source) = spawned {
                let id = this.id.take();
                state.wakers.retain(|w| Some(w.id) != id);
                return Poll::Ready(Err(Error::Io { path: log.dir().to_owned(), source }));
            }
            state.syncer_running = true;
        }
        Poll::Pending
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.log.sync_state.lock().expect("sync lock").wakers.retain(|w| w.id != id);
        }
    }
}

/// The syncer thread: fsync rounds while futures wait, then, after [`SYNCER_IDLE`] without any, it
/// ends (the next waiting future starts another).
fn syncer(log: &ShardLog) {
    let mut state = log.sync_state.lock().expect("sync lock");
    loop {
        // Segments sealed by a roll are durable without a round.
        let poisoned = log.poisoned.load(Ordering::Acquire);
        state.wake_durable(log.durable_end(), poisoned);
        if poisoned {
            state.syncer_running = false;
            return;
        }
        if state.wakers.is_empty() {
            let (next, wait) = log.syncer_wake.wait_timeout(state, SYNCER_IDLE).expect("sync lock");
            state = next;
            if wait.timed_out() && state.wakers.is_empty() {
                state.syncer_running = false;
                return;
            }
        } else if state.in_progress {
            // A blocked sync_to runs an fsync; its end wakes the futures it covers.
            state = log.sync_done.wait(state).expect("sync lock");
        } else {
            // A failed fsync poisons the log, which the next turn reports to every future.
            state = log.sync_round(state, false).0;
        }
    }
}
