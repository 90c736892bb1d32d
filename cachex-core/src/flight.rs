//! Single-flight: concurrent misses of one key compute once; the others wait for that result.
//! The leader's guard releases the waiters when it is dropped, also by a panic or a cancelled
//! future, so no waiter ever hangs on a computation that is gone. A waiter waits at most the
//! cache's `lock_timeout` (a leader that is alive but never polled again releases no one), and
//! a call that re-enters its own key (a cached function calling itself with the same
//! arguments, directly or through other functions, on the same thread or in the same task)
//! computes instead of waiting for itself. A computation that calls its own key from a thread
//! or task it spawned and waits for it cannot be told from another caller: that call waits
//! the `lock_timeout`, then computes.
//!
//! An async waiter's deadline is kept by a thread of the process ([`alarm`]), not by tokio's
//! timer, which a runtime may be built without (and other executors do not have).

use std::any::Any;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use event_listener::{Event, Listener};

use crate::key::LocalKey;

type Shared = Arc<dyn Any + Send + Sync>;

/// The keys a call stack is computing as leader: the address of their `Flights`, and the key.
type Leading = Vec<(usize, LocalKey)>;

thread_local! {
    /// The keys the blocking calls on this thread are computing.
    static LEADING_HERE: RefCell<Leading> = const { RefCell::new(Vec::new()) };
}

tokio::task_local! {
    /// The keys the async calls of this task are computing (set around a leader's computation).
    static LEADING_TASK: Leading;
}

/// The in-flight computations of one cache.
#[derive(Default)]
pub(crate) struct Flights {
    slots: Mutex<HashMap<LocalKey, Arc<Slot>>>,
}

#[derive(Default)]
pub(crate) struct Slot {
    /// `None` while the leader runs; what it left once it finished.
    outcome: Mutex<Option<Outcome>>,
    done: Event,
    /// The earliest alarm set for the slot's async waiters and not yet rung.
    alarm: Mutex<Option<Instant>>,
}

/// What a leader left.
enum Outcome {
    /// Its value.
    Shared(Shared),
    /// Its computation failed (an `Err`, a `None`, a panic it caught).
    Failed,
    /// It ended without computing (a cancelled future, a refresh that was not started, a
    /// panic going on unwinding).
    Abandoned,
}

pub(crate) enum Joined<'a> {
    Leader(Leader<'a>),
    Waiter(Waiter),
    /// The key is being computed by this very call stack: waiting would wait for itself.
    Reentered,
}

/// What a waiter got.
pub(crate) enum Waited<V> {
    /// The leader's value.
    Value(V),
    /// The leader finished without a value to share: `failed` when its computation failed,
    /// else it ended without computing.
    Nothing {
        /// The computation ran and failed.
        failed: bool,
    },
    /// The leader did not finish within the lock timeout.
    TimedOut,
}

impl Flights {
    fn id(&self) -> usize {
        self as *const Flights as usize
    }

    fn leads(&self, leading: &Leading, key: &[u8]) -> bool {
        let id = self.id();
        leading.iter().any(|(flights, k)| *flights == id && **k == *key)
    }

    /// Becomes the leader for the in-process key `key`, or a waiter on the leader already
    /// running; for a blocking call, which keeps the key in this thread's leading set while
    /// it leads.
    pub(crate) fn join_blocking(&self, key: &[u8]) -> Joined<'_> {
        let joined = self.join_detached(key);
        if let Joined::Leader(leader) = &joined {
            leader.lead_here();
        }
        joined
    }

    /// Like [`Flights::join_blocking`] for a leader that will run elsewhere (a refresh on
    /// another thread, or this one after [`Leader::lead_here`]): the key is not put in this
    /// thread's leading set.
    pub(crate) fn join_detached(&self, key: &[u8]) -> Joined<'_> {
        if LEADING_HERE.with(|leading| self.leads(&leading.borrow(), key)) {
            return Joined::Reentered;
        }
        self.join(key)
    }

    /// Like [`Flights::join_blocking`] for an async call: re-entry is detected through the
    /// task's leading set, which [`Leader::scope`] sets around the leader's computation.
    pub(crate) fn join_async(&self, key: &[u8]) -> Joined<'_> {
        if LEADING_TASK
            .try_with(|leading| self.leads(leading, key))
            .unwrap_or(false)
        {
            return Joined::Reentered;
        }
        self.join(key)
    }

    fn join(&self, key: &[u8]) -> Joined<'_> {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(key) {
            return Joined::Waiter(Waiter(Arc::clone(slot)));
        }
        let key = LocalKey::from_slice(key);
        let slot = Arc::new(Slot::default());
        slots.insert(key.clone(), Arc::clone(&slot));
        Joined::Leader(Leader {
            flights: self,
            key,
            slot,
            shared: None,
            failed: false,
        })
    }
}

/// The one computation of a key; dropping it releases the waiters.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: LocalKey,
    slot: Arc<Slot>,
    shared: Option<Shared>,
    failed: bool,
}

impl Leader<'_> {
    /// Tells the waiters, when this leader is dropped, that its computation failed.
    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// Hands `value` to the waiters when this leader is dropped.
    pub(crate) fn share<V: Clone + Send + Sync + 'static>(&mut self, value: &V) {
        self.shared = Some(Arc::new(value.clone()));
    }

    /// Hands `value` to the waiters, or tells them the computation failed when there is none.
    pub(crate) fn share_or_fail<V: Clone + Send + Sync + 'static>(&mut self, value: Option<&V>) {
        match value {
            Some(value) => self.share(value),
            None => self.fail(),
        }
    }

    /// Lets no more callers join: later ones find the key free and lead on their own. The
    /// waiters that joined already are released when this leader is dropped, as ever.
    pub(crate) fn close(&self) {
        let mut slots = self.flights.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if slots.get(&*self.key).is_some_and(|slot| Arc::ptr_eq(slot, &self.slot)) {
            slots.remove(&*self.key);
        }
    }

    /// Puts the key in this thread's leading set for as long as this leader lives, so a
    /// blocking call of the same key inside its computation computes instead of waiting.
    pub(crate) fn lead_here(&self) {
        LEADING_HERE.with(|leading| leading.borrow_mut().push((self.flights.id(), self.key.clone())));
    }

    /// Runs the leader's async computation with its key in the task's leading set, so a call
    /// of the same key inside it computes instead of waiting for itself.
    pub(crate) async fn scope<F: std::future::Future>(&self, compute: F) -> F::Output {
        let mut leading = LEADING_TASK.try_with(Clone::clone).unwrap_or_default();
        leading.push((self.flights.id(), self.key.clone()));
        LEADING_TASK.scope(leading, compute).await
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        let id = self.flights.id();
        // A blocking leader is the last entry of its thread's set (an async one is absent).
        let _ = LEADING_HERE.try_with(|leading| {
            let mut leading = leading.borrow_mut();
            if let Some(at) = leading.iter().rposition(|(f, k)| *f == id && **k == *self.key) {
                leading.remove(at);
            }
        });
        {
            let mut slots = self.flights.slots.lock().unwrap_or_else(PoisonError::into_inner);
            // Only our own slot: after a waiter gave up on us, the key may have a new leader.
            if slots.get(&*self.key).is_some_and(|slot| Arc::ptr_eq(slot, &self.slot)) {
                slots.remove(&*self.key);
            }
        }
        let outcome = match self.shared.take() {
            Some(shared) => Outcome::Shared(shared),
            None if self.failed => Outcome::Failed,
            None => Outcome::Abandoned,
        };
        *self.slot.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.slot.done.notify(usize::MAX);
    }
}

/// A caller waiting for a leader's result.
pub(crate) struct Waiter(Arc<Slot>);

impl Waiter {
    fn outcome<V: Clone + 'static>(&self) -> Option<Waited<V>> {
        self.0
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|outcome| match outcome {
                Outcome::Shared(shared) => match shared.downcast_ref::<V>().cloned() {
                    Some(value) => Waited::Value(value),
                    None => Waited::Nothing { failed: false },
                },
                Outcome::Failed => Waited::Nothing { failed: true },
                Outcome::Abandoned => Waited::Nothing { failed: false },
            })
    }

    /// Blocks until the leader is done, or `limit` has passed.
    pub(crate) fn wait<V: Clone + 'static>(self, limit: Duration) -> Waited<V> {
        let deadline = Instant::now().checked_add(limit);
        loop {
            let listener = self.0.done.listen();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            match deadline {
                Some(deadline) => {
                    if listener.wait_deadline(deadline).is_none() && Instant::now() >= deadline {
                        return self.outcome().unwrap_or(Waited::TimedOut);
                    }
                }
                None => listener.wait(),
            }
        }
    }

    /// Waits without blocking the thread until the leader is done, or `limit` has passed
    /// (on any executor, with or without tokio's timer: the process's [`alarm`] thread wakes
    /// the waiter at its deadline).
    pub(crate) async fn wait_async<V: Clone + 'static>(self, limit: Duration) -> Waited<V> {
        let deadline = Instant::now().checked_add(limit);
        loop {
            let listener = self.0.done.listen();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            if let Some(deadline) = deadline {
                if Instant::now() >= deadline {
                    return Waited::TimedOut;
                }
                // Rings at the deadline (or earlier, for another waiter: this one looks again).
                alarm::set(&self.0, deadline);
            }
            listener.await;
        }
    }
}

/// One thread of the process that wakes the async waiters of a slot at their deadlines.
mod alarm {
    use super::*;

    /// A slot to wake at an instant.
    struct Ring {
        at: Instant,
        slot: Weak<Slot>,
    }

    impl PartialEq for Ring {
        fn eq(&self, other: &Self) -> bool {
            self.at == other.at
        }
    }
    impl Eq for Ring {}
    impl PartialOrd for Ring {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Ring {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.at.cmp(&other.at)
        }
    }

    #[derive(Default)]
    struct Alarms {
        rings: Mutex<BinaryHeap<Reverse<Ring>>>,
        changed: Condvar,
    }

    /// The process's alarms, and their thread (started on first use); `None` when no thread
    /// could be started (then waiters are woken by their leader only).
    fn alarms() -> Option<&'static Alarms> {
        static ALARMS: OnceLock<Option<&'static Alarms>> = OnceLock::new();
        *ALARMS.get_or_init(|| {
            let alarms: &'static Alarms = Box::leak(Box::default());
            let started = std::thread::Builder::new()
                .name("cachex-alarms".into())
                .spawn(move || ring(alarms));
            match started {
                Ok(_) => Some(alarms),
                Err(error) => {
                    tracing::warn!(%error, "cachex: no thread for the deadlines of async waiters; they wait for their leader");
                    None
                }
            }
        })
    }

    /// Has the waiters of `slot` woken at `at`, unless an alarm at or before it is set already.
    pub(super) fn set(slot: &Arc<Slot>, at: Instant) {
        let Some(alarms) = alarms() else { return };
        {
            let mut armed = slot.alarm.lock().unwrap_or_else(PoisonError::into_inner);
            if armed.is_some_and(|armed| armed <= at) {
                return;
            }
            *armed = Some(at);
        }
        let mut rings = alarms.rings.lock().unwrap_or_else(PoisonError::into_inner);
        rings.push(Reverse(Ring {
            at,
            slot: Arc::downgrade(slot),
        }));
        alarms.changed.notify_one();
    }

    fn ring(alarms: &Alarms) {
        let mut rings = alarms.rings.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            while rings.peek().is_some_and(|Reverse(ring)| ring.at <= now) {
                let Some(Reverse(ring)) = rings.pop() else { break };
                if let Some(slot) = ring.slot.upgrade() {
                    let mut armed = slot.alarm.lock().unwrap_or_else(PoisonError::into_inner);
                    if *armed == Some(ring.at) {
                        *armed = None;
                    }
                    drop(armed);
                    slot.done.notify(usize::MAX);
                }
            }
            rings = match rings.peek() {
                Some(Reverse(next)) => {
                    let wait = next.at.saturating_duration_since(now);
                    alarms
                        .changed
                        .wait_timeout(rings, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => alarms.changed.wait(rings).unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}
