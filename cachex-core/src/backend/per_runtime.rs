//! A connection that lives on a tokio runtime, made again on the caller's runtime once its own
//! is gone.
//!
//! Async clients (redis-rs's `ConnectionManager`, a pool of tokio sockets) run their I/O on the
//! runtime that made them. A process can outlive that runtime: a test harness, a CLI that
//! builds a runtime per command, an application that shuts one runtime down and starts
//! another. Without this, the first call on the new runtime fails on a dead connection.
//! Liveness is one atomic load per operation: a task parked on the making runtime holds one
//! end of a channel, and is dropped with that runtime.

use std::future::Future;
use std::sync::PoisonError;

use crossbeam_utils::sync::ShardedLock;
use tokio::sync::oneshot;

/// A value made on a tokio runtime, valid while that runtime runs.
pub(crate) struct PerRuntime<T> {
    current: ShardedLock<Option<Bound<T>>>,
    /// One connect at a time: concurrent first calls share it.
    connecting: tokio::sync::Mutex<()>,
}

struct Bound<T> {
    value: T,
    /// Closed when the task holding the other end is dropped, with its runtime.
    alive: oneshot::Sender<()>,
}

impl<T: Clone> PerRuntime<T> {
    pub(crate) fn new() -> Self {
        PerRuntime {
            current: ShardedLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
        }
    }

    /// The value, if it was made and its runtime still runs.
    #[inline]
    pub(crate) fn get(&self) -> Option<T> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|bound| !bound.alive.is_closed())
            .map(|bound| bound.value.clone())
    }

    /// The value, made with `make` on the caller's runtime when there is none or its runtime
    /// is gone. Must be called inside a tokio runtime.
    pub(crate) async fn get_or_make<E, F: Future<Output = Result<T, E>>>(
        &self,
        make: impl FnOnce() -> F,
    ) -> Result<T, E> {
        if let Some(value) = self.get() {
            return Ok(value);
        }
        let _one = self.connecting.lock().await;
        if let Some(value) = self.get() {
            return Ok(value);
        }
        let value = make().await?;
        let (alive, watched) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _watched = watched;
            std::future::pending::<()>().await
        });
        let replaced = self
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(Bound {
                value: value.clone(),
                alive,
            });
        drop(replaced);
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_again_once_its_runtime_is_gone() {
        let holder = PerRuntime::<u32>::new();
        let made = std::sync::atomic::AtomicU32::new(0);
        let make = || async { Ok::<_, ()>(made.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) };
        let first = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(first.block_on(holder.get_or_make(make)), Ok(0));
        assert_eq!(
            first.block_on(holder.get_or_make(make)),
            Ok(0),
            "kept while its runtime runs"
        );
        drop(first);
        assert_eq!(holder.get(), None, "gone with its runtime");
        let second = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(second.block_on(holder.get_or_make(make)), Ok(1), "made again");
        assert_eq!(holder.get(), Some(1));
    }
}
