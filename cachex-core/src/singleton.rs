//! Singletons (`#[singleton]`, the Python library's `cache_reference`): a value built once per
//! distinct arguments, lazily, shared as `Arc<T>`. Concurrent first calls build once; a build
//! that fails (an `Err`, or a panic) is not kept, and the next call builds again.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use crate::key::{Key, KeyBuilder, Seed};

/// The cells of a blocking singleton, one per distinct arguments (only for arguments whose
/// build succeeded, or is running).
///
/// ```
/// use cachex_core::{Key, Singleton};
/// static CLIENT: Singleton<String> = Singleton::new();
/// let a = CLIENT.get_or_try_init(Some(Key([0; 32])), || Ok::<_, ()>("built".to_string())).unwrap();
/// let b = CLIENT.get_or_try_init(Some(Key([0; 32])), || Ok::<_, ()>(unreachable!())).unwrap();
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// ```
pub struct Singleton<T> {
    cells: PerKey<Mutex<Option<Arc<T>>>>,
}

/// One cell per distinct arguments.
struct PerKey<C>(Mutex<Option<HashMap<Key, Arc<C>>>>);

impl<C: Default> PerKey<C> {
    const fn new() -> Self {
        PerKey(Mutex::new(None))
    }

    fn cell(&self, key: Key) -> Arc<C> {
        let mut cells = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cells.get_or_insert_with(HashMap::new).entry(key).or_default())
    }

    /// The cell of `key` if one exists (looking inserts nothing).
    fn existing(&self, key: &Key) -> Option<Arc<C>> {
        let cells = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        cells.as_ref().and_then(|cells| cells.get(key)).cloned()
    }

    /// Forgets the cell of `key` after a failed build, unless another caller holds it (that
    /// caller builds next, in the same cell) or it was replaced.
    fn forget(&self, key: &Key, cell: &Arc<C>) {
        let mut cells = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(map) = cells.as_mut() {
            // Held by the map and by `cell` alone: no one else can reach it without this lock.
            if map.get(key).is_some_and(|c| Arc::ptr_eq(c, cell)) && Arc::strong_count(cell) == 2 {
                map.remove(key);
            }
        }
    }
}

impl<T> Default for Singleton<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Singleton<T> {
    /// No value built yet.
    pub const fn new() -> Self {
        Singleton { cells: PerKey::new() }
    }

    /// The value for `key`, built by `build` if no call built it yet (an infallible build: see
    /// [`Singleton::get_or_try_init`]).
    pub fn get_or_init(&self, key: Option<Key>, build: impl FnOnce() -> T) -> Arc<T> {
        match self.get_or_try_init(key, || Ok::<T, Infallible>(build())) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The value for `key`, built by `build` if no call built it yet. Callers for the same key
    /// wait for the one building; a failed or panicking build leaves nothing behind. A `None`
    /// key (arguments that do not serialize) builds every time and keeps nothing.
    pub fn get_or_try_init<E>(&self, key: Option<Key>, build: impl FnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let Some(key) = key else {
            return build().map(Arc::new);
        };
        let cell = self.cells.cell(key);
        let mut slot = cell.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = slot.as_ref() {
            return Ok(Arc::clone(value));
        }
        // An `Err` or a panic of `build` leaves through the guard, which forgets the cell.
        let mut guard = ForgetOnFailure {
            cells: &self.cells,
            key,
            cell: &cell,
            armed: true,
        };
        let value = Arc::new(build()?);
        *slot = Some(Arc::clone(&value));
        guard.armed = false;
        Ok(value)
    }

    /// The value for `key` if it was built (asking inserts nothing).
    pub fn get(&self, key: Key) -> Option<Arc<T>> {
        self.cells
            .existing(&key)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Forgets a cell whose build failed (an `Err` or a panic), so failed arguments leave no
/// entry behind.
struct ForgetOnFailure<'a, C: Default> {
    cells: &'a PerKey<C>,
    key: Key,
    cell: &'a Arc<C>,
    armed: bool,
}

impl<C: Default> Drop for ForgetOnFailure<'_, C> {
    fn drop(&mut self) {
        if self.armed {
            self.cells.forget(&self.key, self.cell);
        }
    }
}

/// The cells of an async singleton, one per distinct arguments.
///
/// ```
/// use cachex_core::{AsyncSingleton, Key};
/// static POOL: AsyncSingleton<Vec<u8>> = AsyncSingleton::new();
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let pool = POOL.get_or_try_init(Some(Key([0; 32])), || async { Ok::<_, ()>(vec![1]) }).await.unwrap();
/// assert_eq!(*pool, vec![1]);
/// # });
/// ```
pub struct AsyncSingleton<T> {
    cells: PerKey<tokio::sync::OnceCell<Arc<T>>>,
}

impl<T> Default for AsyncSingleton<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> AsyncSingleton<T> {
    /// No value built yet.
    pub const fn new() -> Self {
        AsyncSingleton { cells: PerKey::new() }
    }

    /// The value for `key`, built by `build` if no call built it yet (an infallible build: see
    /// [`AsyncSingleton::get_or_try_init`]).
    pub async fn get_or_init<F: Future<Output = T>>(&self, key: Option<Key>, build: impl FnOnce() -> F) -> Arc<T> {
        let built = self
            .get_or_try_init(key, || async { Ok::<T, Infallible>(build().await) })
            .await;
        match built {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// The value for `key`, built by `build` if no call built it yet (see [`Singleton`]).
    pub async fn get_or_try_init<E, F: Future<Output = Result<T, E>>>(
        &self,
        key: Option<Key>,
        build: impl FnOnce() -> F,
    ) -> Result<Arc<T>, E> {
        let Some(key) = key else {
            return build().await.map(Arc::new);
        };
        let cell = self.cells.cell(key);
        let mut guard = ForgetOnFailure {
            cells: &self.cells,
            key,
            cell: &cell,
            armed: true,
        };
        let value = cell
            .get_or_try_init(|| async { build().await.map(Arc::new) })
            .await
            .cloned()?;
        guard.armed = false;
        Ok(value)
    }

    /// The value for `key` if it was built (asking inserts nothing).
    pub fn get(&self, key: Key) -> Option<Arc<T>> {
        self.cells.existing(&key)?.get().cloned()
    }
}

/// The key of a singleton call without arguments.
pub const NO_ARGUMENTS: Key = Key([0; 32]);

/// The key of a singleton call: `add` writes each argument (with `serde`); `None` when one
/// does not serialize (the call then builds and keeps nothing). Used by the code
/// `#[singleton]` emits.
///
/// ```
/// use cachex_core::__private::{singleton_key, NO_ARGUMENTS};
/// let key = singleton_key(|key| key.serde(&("db", 5432)));
/// assert!(key.is_some() && key != Some(NO_ARGUMENTS));
/// assert_eq!(key, singleton_key(|key| key.serde(&("db", 5432))));
/// ```
pub fn singleton_key(add: impl FnOnce(&mut KeyBuilder<'_>)) -> Option<Key> {
    let mut key = KeyBuilder::new(&Seed::UNBOUND);
    add(&mut key);
    key.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells<C>(per_key: &PerKey<C>) -> usize {
        per_key.0.lock().unwrap().as_ref().map_or(0, HashMap::len)
    }

    fn key(n: u8) -> Option<Key> {
        Some(Key([n; 32]))
    }

    #[test]
    fn failed_and_panicking_builds_leave_nothing_behind() {
        let single: Singleton<u8> = Singleton::new();
        for n in 0..100 {
            assert_eq!(single.get_or_try_init(key(n), || Err::<u8, _>("down")), Err("down"));
            assert!(single.get(Key([n; 32])).is_none());
        }
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            single.get_or_try_init(key(200), || -> Result<u8, ()> { panic!("builder bug") })
        }));
        assert!(panicked.is_err());
        assert_eq!(cells(&single.cells), 0, "no cell kept for failed arguments");
        assert_eq!(*single.get_or_try_init(key(1), || Ok::<_, ()>(7)).unwrap(), 7);
        assert_eq!(cells(&single.cells), 1);
    }

    #[test]
    fn failed_async_builds_leave_nothing_behind() {
        let single: AsyncSingleton<u8> = AsyncSingleton::new();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            for n in 0..100 {
                let built = single.get_or_try_init(key(n), || async { Err::<u8, _>("down") }).await;
                assert_eq!(built, Err("down"));
                assert!(single.get(Key([n; 32])).is_none());
            }
            assert_eq!(cells(&single.cells), 0, "no cell kept for failed arguments");
            let built = single.get_or_try_init(key(1), || async { Ok::<_, ()>(7) }).await;
            assert_eq!(*built.unwrap(), 7);
            assert_eq!(cells(&single.cells), 1);
        });
    }
}
