//! Refreshes that run off the caller (`stale_while_revalidate`): the choice, made at compile
//! time for each `#[cached]` function, of whether its arguments can be handed to another
//! thread at all; the small bounded pool of threads that refreshes blocking functions; and the
//! blocking thread of the caller's tokio runtime that refreshes `async` ones.
//!
//! A call hands over its arguments and its body, a closure that captures nothing. The
//! arguments can be handed over when they are owned (`'static`, which the macro sees in the
//! signature) and `Send` (which [`Detach`] finds out without requiring it): a function taking
//! `&str` or `Rc<T>`, or a method, refreshes inline instead, and still compiles.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::Poll;

use crate::output::ValueOf;

/// A call's body bound to its arguments, ready to run on another thread; it gives the value
/// to cache, if the call produced one.
pub type Job<V> = Box<dyn FnOnce() -> Option<V> + Send>;

/// An async call's body bound to its arguments: made on another thread, its future runs there.
pub type AsyncJob<V> = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = Option<V>>>> + Send>;

/// A call's arguments and body, handed over as a job `J`, or given back when they cannot
/// leave the caller's thread.
pub type Detached<A, F, J> = Result<J, (A, F)>;

/// Finds out, for arguments of type `A`, whether they can leave the caller's thread: the
/// methods of [`DetachYes`] apply when `A: Send + 'static`, else those of [`DetachNo`]
/// (autoref specialization, resolved at compile time where `A` is concrete).
///
/// ```
/// use cachex_core::output::Whole;
/// use cachex_core::refresh::{DetachNo as _, DetachYes as _, Detach};
/// let owned = (7u32, String::from("a"));
/// let job = (&Detach::of(&owned)).detach::<Whole, _, _>(owned, |(n, s): (u32, String)| n as usize + s.len());
/// assert_eq!(job.ok().and_then(|job| job()), Some(8));
/// let shared = (std::rc::Rc::new(7u32),);
/// let given_back = (&Detach::of(&shared)).detach::<Whole, _, _>(shared, |(n,): (std::rc::Rc<u32>,)| *n);
/// assert!(given_back.is_err());
/// ```
pub struct Detach<A>(PhantomData<A>);

impl<A> Detach<A> {
    /// The probe for arguments like `args`.
    pub fn of(_args: &A) -> Self {
        Detach(PhantomData)
    }
}

/// Detaching arguments that can leave the caller's thread.
pub trait DetachYes<A> {
    /// `body` bound to `args`, as a job for another thread.
    fn detach<K, F, T>(&self, args: A, body: F) -> Detached<A, F, Job<T::Value>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        T: ValueOf<K>;

    /// The async `body` bound to `args`, as a job for another thread.
    fn detach_async<K, F, Fut>(&self, args: A, body: F) -> Detached<A, F, AsyncJob<<Fut::Output as ValueOf<K>>::Value>>
    where
        F: FnOnce(A) -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: ValueOf<K>;
}

impl<A: Send + 'static> DetachYes<A> for Detach<A> {
    fn detach<K, F, T>(&self, args: A, body: F) -> Detached<A, F, Job<T::Value>>
    where
        F: FnOnce(A) -> T + Send + 'static,
        T: ValueOf<K>,
    {
        Ok(Box::new(move || body(args).into_value()))
    }

    fn detach_async<K, F, Fut>(&self, args: A, body: F) -> Detached<A, F, AsyncJob<<Fut::Output as ValueOf<K>>::Value>>
    where
        F: FnOnce(A) -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: ValueOf<K>,
    {
        Ok(Box::new(move || Box::pin(async move { body(args).await.into_value() })))
    }
}

/// Detaching arguments that cannot: they are given back.
pub trait DetachNo<A> {
    /// `args` and `body`, given back.
    fn detach<K, F, T>(&self, args: A, body: F) -> Detached<A, F, Job<T::Value>>
    where
        F: FnOnce(A) -> T,
        T: ValueOf<K>;

    /// `args` and `body`, given back.
    fn detach_async<K, F, Fut>(&self, args: A, body: F) -> Detached<A, F, AsyncJob<<Fut::Output as ValueOf<K>>::Value>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future,
        Fut::Output: ValueOf<K>;
}

impl<A> DetachNo<A> for &Detach<A> {
    fn detach<K, F, T>(&self, args: A, body: F) -> Detached<A, F, Job<T::Value>>
    where
        F: FnOnce(A) -> T,
        T: ValueOf<K>,
    {
        Err((args, body))
    }

    fn detach_async<K, F, Fut>(&self, args: A, body: F) -> Detached<A, F, AsyncJob<<Fut::Output as ValueOf<K>>::Value>>
    where
        F: FnOnce(A) -> Fut,
        Fut: Future,
        Fut::Output: ValueOf<K>,
    {
        Err((args, body))
    }
}

/// The detaching of a function whose arguments the macro saw borrowed (or a method): they
/// are given back, always.
pub fn inline<A, F, J>(args: A, body: F) -> Detached<A, F, J> {
    Err((args, body))
}

/// A task of the refresh pool.
type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of threads running refreshes of blocking functions, with a bounded queue: a
/// refresh that finds every thread busy and the queue full is not started.
pub(crate) struct Pool {
    queue: Option<SyncSender<Task>>,
}

/// The threads of the process's refresh pool.
pub(crate) const POOL_THREADS: usize = 4;
/// The refreshes that may wait for a thread of the pool.
pub(crate) const POOL_QUEUE: usize = 32;

impl Pool {
    /// A pool of `threads` threads and `queue` waiting tasks (none if no thread would start).
    pub(crate) fn new(threads: usize, queue: usize) -> Pool {
        let (sender, receiver) = sync_channel::<Task>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let started = (0..threads)
            .filter(|i| {
                let receiver = Arc::clone(&receiver);
                std::thread::Builder::new()
                    .name(format!("cachex-refresh-{i}"))
                    .spawn(move || work(&receiver))
                    .map_err(|error| tracing::error!(%error, "cachex could not start a refresh thread"))
                    .is_ok()
            })
            .count();
        Pool {
            queue: (started > 0).then_some(sender),
        }
    }

    /// The process's refresh pool, started on its first refresh.
    pub(crate) fn shared() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool::new(POOL_THREADS, POOL_QUEUE))
    }

    /// Queues `task`; `false` (and the task dropped) when the pool is full.
    pub(crate) fn submit(&self, task: Task) -> bool {
        match &self.queue {
            Some(queue) => match queue.try_send(task) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }
}

/// A pool thread: runs tasks until the pool is gone; a task that panics ends only itself.
fn work(receiver: &Mutex<Receiver<Task>>) {
    loop {
        let task = receiver.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match task {
            Ok(task) => {
                let _ = catch_unwind(AssertUnwindSafe(task));
            }
            Err(_) => return,
        }
    }
}

/// The background refreshes of async functions that may run at once in the process (each
/// holds a blocking thread of its runtime while it runs); beyond, a refresh is skipped and
/// counted, as when the pool of blocking functions is full.
pub(crate) const ASYNC_REFRESHES: usize = POOL_THREADS + POOL_QUEUE;

/// One running background refresh of an async function, counted until dropped.
pub(crate) struct AsyncRefresh(());

static RUNNING_ASYNC: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl AsyncRefresh {
    /// A place for one more async refresh; `None` when [`ASYNC_REFRESHES`] are running.
    pub(crate) fn start() -> Option<AsyncRefresh> {
        use std::sync::atomic::Ordering;
        RUNNING_ASYNC
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |running| {
                (running < ASYNC_REFRESHES).then_some(running + 1)
            })
            .ok()
            .map(|_| AsyncRefresh(()))
    }
}

impl Drop for AsyncRefresh {
    fn drop(&mut self) {
        RUNNING_ASYNC.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Runs `future`, catching a panic of one of its polls.
pub(crate) async fn catch_unwind_async<F: Future>(future: F) -> Result<F::Output, Box<dyn Any + Send>> {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn a_full_pool_refuses_and_a_panicking_task_ends_only_itself() {
        let pool = Pool::new(1, 1);
        let (release, held) = channel::<()>();
        let (started, running) = channel::<()>();
        assert!(pool.submit(Box::new(move || {
            started.send(()).unwrap();
            held.recv().unwrap();
        })));
        running.recv().unwrap(); // the thread is busy
        assert!(pool.submit(Box::new(|| panic!("a refresh that panics"))), "one waits");
        assert!(!pool.submit(Box::new(|| ())), "a full pool refuses");
        release.send(()).unwrap();
        let (done, finished) = channel::<u32>();
        // The panicking task has run by the time the thread takes this one, and the thread lives.
        let submitted = loop {
            let done = done.clone();
            if pool.submit(Box::new(move || done.send(7).unwrap())) {
                break true;
            }
            std::thread::yield_now();
        };
        assert!(submitted);
        assert_eq!(finished.recv().unwrap(), 7);
    }

    #[test]
    fn async_refreshes_are_bounded() {
        // Other tests of this binary start none: the count is this test's.
        let running: Vec<AsyncRefresh> = std::iter::from_fn(AsyncRefresh::start)
            .take(ASYNC_REFRESHES + 1)
            .collect();
        assert_eq!(running.len(), ASYNC_REFRESHES);
        drop(running);
        assert!(AsyncRefresh::start().is_some(), "each place is given back");
    }

    #[test]
    fn a_panic_in_a_future_is_caught() {
        let caught = block_on(catch_unwind_async(async { panic!("inside") }));
        assert!(caught.is_err());
        let value = block_on(catch_unwind_async(async { 3 }));
        assert_eq!(value.ok(), Some(3));
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }
}
