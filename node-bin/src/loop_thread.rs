//! The node loop runs on a thread of its own, on a single-threaded runtime. It is the node's one
//! serial resource: on the runtime shared with the API's connections, each of its wake-ups (a
//! command, a landed commit) would wait in the run queue behind hundreds of connection tasks.

use rhizome_node::{NodeFailure, NodeTask, Transport};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// How the loop's thread ended, when it did not return on its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the node loop thread ended without a result (it panicked)")]
pub struct LoopThreadLost;

/// The running loop: a future of its end, like a task's join handle.
#[derive(Debug)]
pub struct LoopThread {
    done: oneshot::Receiver<Result<(), NodeFailure>>,
    finished: bool,
}

impl LoopThread {
    /// Starts `task` on the `rhizome-loop` thread.
    pub fn spawn<T: Transport + Send + 'static>(task: NodeTask<T>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (sender, done) = oneshot::channel();
        std::thread::Builder::new().name("rhizome-loop".to_owned()).spawn(move || {
            // The daemon may have stopped waiting: nothing to tell then.
            let _ = sender.send(runtime.block_on(task.run()));
        })?;
        Ok(Self { done, finished: false })
    }

    /// True once the loop has ended and its result was taken.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl Future for LoopThread {
    type Output = Result<Result<(), NodeFailure>, LoopThreadLost>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let polled = Pin::new(&mut self.done).poll(cx);
        polled.map(|result| {
            self.finished = true;
            result.map_err(|_| LoopThreadLost)
        })
    }
}
