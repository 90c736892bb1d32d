//! Single-flight: concurrent misses of one key compute once; the others wait for that result.
//! The leader's guard releases the waiters when it is dropped, also by a panic or a cancelled
//! future, so no waiter ever hangs on a computation that is gone.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use event_listener::{Event, Listener};

use crate::key::LocalKey;

type Shared = Arc<dyn Any + Send + Sync>;

/// The in-flight computations of one cache.
#[derive(Default)]
pub(crate) struct Flights {
    slots: Mutex<HashMap<LocalKey, Arc<Slot>>>,
}

#[derive(Default)]
pub(crate) struct Slot {
    /// `None` while the leader runs; `Some(result)` once it finished (`result` is `None` when
    /// it produced nothing to share: an error, a panic, a cancelled future).
    outcome: Mutex<Option<Option<Shared>>>,
    done: Event,
}

pub(crate) enum Joined<'a> {
    Leader(Leader<'a>),
    Waiter(Waiter),
}

impl Flights {
    /// Becomes the leader for the in-process key `key`, or a waiter on the leader already
    /// running.
    pub(crate) fn join(&self, key: &[u8]) -> Joined<'_> {
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
        })
    }
}

/// The one computation of a key; dropping it releases the waiters.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: LocalKey,
    slot: Arc<Slot>,
    shared: Option<Shared>,
}

impl Leader<'_> {
    /// Hands `value` to the waiters when this leader is dropped.
    pub(crate) fn share<V: Clone + Send + Sync + 'static>(&mut self, value: &V) {
        self.shared = Some(Arc::new(value.clone()));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&*self.key);
        *self.slot.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(self.shared.take());
        self.slot.done.notify(usize::MAX);
    }
}

/// A caller waiting for a leader's result.
pub(crate) struct Waiter(Arc<Slot>);

impl Waiter {
    fn outcome<V: Clone + 'static>(&self) -> Option<Option<V>> {
        self.0
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|shared| shared.as_ref().and_then(|v| v.downcast_ref::<V>().cloned()))
    }

    /// Blocks until the leader is done; its value, or `None` if it produced none.
    pub(crate) fn wait<V: Clone + 'static>(self) -> Option<V> {
        loop {
            let listener = self.0.done.listen();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            listener.wait();
        }
    }

    /// Waits without blocking the thread until the leader is done.
    pub(crate) async fn wait_async<V: Clone + 'static>(self) -> Option<V> {
        loop {
            let listener = self.0.done.listen();
            if let Some(outcome) = self.outcome() {
                return outcome;
            }
            listener.await;
        }
    }
}
