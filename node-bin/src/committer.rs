//! The daemon's write transactions run on a thread of their own, so the node loop stages the
//! next batch (runs calls, applies deltas) while the last one is being written and synced.

use rhizome_node::store::{CommitJob, CommitResult, Committer};
use tokio::sync::oneshot;

/// Commits queued for the thread. The node loop starts a commit only once the last one has
/// landed, so one slot is all it ever uses.
const COMMITS_QUEUED_MAX: usize = 1;

/// Runs commits on the `rhizome-commit` thread. The thread ends when this is dropped.
#[derive(Debug)]
pub struct ThreadCommitter {
    jobs: std::sync::mpsc::SyncSender<(CommitJob, oneshot::Sender<CommitResult>)>,
}

impl ThreadCommitter {
    /// Starts the thread.
    pub fn spawn() -> std::io::Result<Self> {
        let (jobs, queue) =
            std::sync::mpsc::sync_channel::<(CommitJob, oneshot::Sender<CommitResult>)>(COMMITS_QUEUED_MAX);
        std::thread::Builder::new().name("rhizome-commit".to_owned()).spawn(move || {
            for (job, done) in queue {
                // The loop may have stopped waiting (it is shutting down on an error): nothing to tell.
                let _ = done.send(job.run());
            }
        })?;
        Ok(Self { jobs })
    }
}

impl Committer for ThreadCommitter {
    fn start(&mut self, job: CommitJob, done: oneshot::Sender<CommitResult>) {
        if let Err(std::sync::mpsc::SendError((_, done))) = self.jobs.send((job, done)) {
            let _ = done.send(Err(rhizome_node::StoreError::CommitterGone));
        }
    }
}
