//! What a `#[cached]` call does: form the key, look it up, and on a miss compute once per key
//! (single-flight), store, and hand the value to the waiters. Used by the generated code.

use std::future::Future;

use crate::cache::{Cache, OnError};
use crate::error::Error;
use crate::flight::{Joined, Waited};
use crate::key::{ArgEncoding, CallKey, KeyBuilder};
use crate::output::Output;
use crate::registry::Binding;

/// A call whose key is known: its cache, and its key where the generated code formed it.
pub struct Prepared<'k> {
    cache: &'static Cache,
    key: &'k CallKey<'static>,
}

/// Where the generated code forms a call's key: a local of the cached function, so the key is
/// written once, in place, and never copied.
// Moving the key (returning it by value) cost a memory hit a third of its time.
pub type KeySlot = Option<KeyBuilder<'static>>;

/// Forms the key of one call of `binding` in `slot`; `encode` adds the arguments. `None` when
/// the call must run uncached (cachex did not initialise, the binding is invalid, or an
/// argument could not be encoded).
#[inline]
pub fn prepare<'k>(
    slot: &'k mut KeySlot,
    binding: &'static Binding,
    encode: impl FnOnce(&mut KeyBuilder<'static>, &[ArgEncoding]),
) -> Option<Prepared<'k>> {
    let resolved = binding.resolved()?;
    let builder = slot.insert(KeyBuilder::new(&resolved.seed));
    encode(builder, &resolved.encodings);
    // A byte-storing backend names the entry by its digest: computed once for the call.
    let key = builder.finish_in_place(resolved.cache.stores_bytes())?;
    Some(Prepared {
        cache: &resolved.cache,
        key,
    })
}

/// Under `on_error = "fail"`, the error as the function's return value.
fn failed<R>(cache: &Cache, error: Error, fail: Option<fn(Error) -> R>) -> Option<R> {
    match (cache.settings.on_error, fail) {
        (OnError::Fail, Some(fail)) => Some(fail(error)),
        _ => None,
    }
}

/// Runs a blocking cached call: a hit returns here; a miss goes to `compute_once`, out of
/// line, so the hit path stays a small function.
#[inline]
pub fn run<K, R: Output<K>>(
    prepared: Option<Prepared<'_>>,
    fail: Option<fn(Error) -> R>,
    compute: impl FnOnce() -> R,
) -> R {
    let Some(Prepared { cache, key }) = prepared else {
        return compute();
    };
    match cache.lookup::<R::Value>(key, true) {
        Ok(Some(value)) => R::from_value(value),
        Ok(None) => compute_once(cache, key, fail, compute),
        Err(error) => failed(cache, error, fail).unwrap_or_else(compute),
    }
}

/// A miss: the first caller of the key computes and stores; concurrent callers wait for its
/// value, at most the cache's `lock_timeout`, then compute by themselves. A waiter whose
/// leader produced nothing (an error, a panic) looks again, then competes to lead. A call that
/// re-enters a key its own thread is computing computes.
#[inline(never)]
fn compute_once<K, R: Output<K>>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    compute: impl FnOnce() -> R,
) -> R {
    loop {
        let mut leader = match cache.flights.join_blocking(key.local()) {
            Joined::Leader(leader) => leader,
            Joined::Reentered => return compute(),
            Joined::Waiter(waiter) => match waiter.wait::<R::Value>(cache.settings.lock_timeout) {
                Waited::Value(value) => return R::from_value(value),
                Waited::TimedOut => return compute_alone(cache, key, fail, compute),
                Waited::Nothing => match cache.lookup::<R::Value>(key, true) {
                    Ok(Some(value)) => return R::from_value(value),
                    Ok(None) => continue,
                    Err(error) => return failed(cache, error, fail).unwrap_or_else(compute),
                },
            },
        };
        // A leader that finished between the lookup and the join has stored the value.
        if let Ok(Some(value)) = cache.lookup::<R::Value>(key, false) {
            return R::from_value(value);
        }
        let result = compute();
        if let Some(value) = result.value() {
            if let Err(error) = cache.store(key, value) {
                if let Some(failure) = failed(cache, error, fail) {
                    return failure;
                }
            }
            leader.share(value);
        }
        return result;
    }
}

/// A waiter whose leader did not finish within `lock_timeout`: computes and stores by itself.
#[cold]
fn compute_alone<K, R: Output<K>>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    compute: impl FnOnce() -> R,
) -> R {
    tracing::warn!(cache = %cache.settings.name, lock_timeout = ?cache.settings.lock_timeout,
        "cachex waited lock_timeout for a concurrent computation of the same key; computing here");
    let result = compute();
    if let Some(value) = result.value() {
        if let Err(error) = cache.store(key, value) {
            if let Some(failure) = failed(cache, error, fail) {
                return failure;
            }
        }
    }
    result
}

/// Runs an async cached call.
pub async fn run_async<K, R: Output<K>>(
    prepared: Option<Prepared<'_>>,
    fail: Option<fn(Error) -> R>,
    compute: impl Future<Output = R>,
) -> R {
    let Some(Prepared { cache, key }) = prepared else {
        return compute.await;
    };
    loop {
        // A memory lookup never waits: asked directly, it costs no future of its own.
        let found = match cache.lookup_in_memory::<R::Value>(key, true) {
            Some(found) => Ok(found),
            None => cache.lookup_async::<R::Value>(key, true).await,
        };
        match found {
            Ok(Some(value)) => return R::from_value(value),
            Ok(None) => {}
            Err(error) => {
                return match failed(cache, error, fail) {
                    Some(failure) => failure,
                    None => compute.await,
                }
            }
        }
        let mut leader = match cache.flights.join_async(key.local()) {
            Joined::Leader(leader) => leader,
            Joined::Reentered => return compute.await,
            Joined::Waiter(waiter) => match waiter.wait_async::<R::Value>(cache.settings.lock_timeout).await {
                Waited::Value(value) => return R::from_value(value),
                Waited::Nothing => continue,
                Waited::TimedOut => {
                    tracing::warn!(cache = %cache.settings.name, lock_timeout = ?cache.settings.lock_timeout,
                        "cachex waited lock_timeout for a concurrent computation of the same key; computing here");
                    let result = compute.await;
                    if let Some(value) = result.value() {
                        if let Err(error) = cache.store_async(key, value).await {
                            if let Some(failure) = failed(cache, error, fail) {
                                return failure;
                            }
                        }
                    }
                    return result;
                }
            },
        };
        if let Ok(Some(value)) = cache.lookup_async::<R::Value>(key, false).await {
            return R::from_value(value);
        }
        let result = leader.scope(compute).await;
        if let Some(value) = result.value() {
            if let Err(error) = cache.store_async(key, value).await {
                if let Some(failure) = failed(cache, error, fail) {
                    return failure;
                }
            }
            leader.share(value);
        }
        return result;
    }
}

/// Removes the entry of one call (the `<fn>_invalidate` companion of a cached function).
pub fn invalidate(prepared: Option<Prepared<'_>>) -> Result<(), Error> {
    match prepared {
        Some(Prepared { cache, key }) => cache.remove(key),
        None => Ok(()),
    }
}

/// Removes the entry of one call, awaiting the backend.
pub async fn invalidate_async(prepared: Option<Prepared<'_>>) -> Result<(), Error> {
    match prepared {
        Some(Prepared { cache, key }) => cache.remove_async(key).await,
        None => Ok(()),
    }
}
