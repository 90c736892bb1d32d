//! What a `#[cached]` call does: form the key, look it up, and on a miss compute once per key
//! (single-flight), store, and hand the value to the waiters. Used by the generated code.

use std::future::Future;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use crate::cache::{Cache, CacheValue, Filled, Leased, Load, OnError};
use crate::error::Error;
use crate::flight::{Joined, Leader, Waited};
use crate::key::{ArgEncoding, CallKey, KeyBuilder};
use crate::output::Output;
use crate::refresh::{catch_unwind_async, AsyncJob, AsyncRefresh, Detached, Job, Pool};
use crate::registry::Binding;
use crate::stale::{Found, Stale};

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
    // A byte-storing backend names the entry by its digest: computed once for the call (later
    // when a local tier answers hits by the in-process key).
    let key = builder.finish_in_place(resolved.cache.digests_eagerly())?;
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

/// Runs a blocking cached call. `args` are the function's arguments and `compute` its body,
/// a closure of them; `detach` hands both over for a refresh in the background, or gives them
/// back (see [`refresh`](crate::refresh)). A fresh hit returns here; the rest is out of line,
/// so the hit path stays a small function.
#[inline]
pub fn run<K, R, A, F, D>(
    prepared: Option<Prepared<'_>>,
    fail: Option<fn(Error) -> R>,
    args: A,
    compute: F,
    detach: D,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> R,
    D: FnOnce(A, F) -> Detached<A, F, Job<R::Value>>,
{
    let Some(Prepared { cache, key }) = prepared else {
        return compute(args);
    };
    match cache.lookup::<R::Value>(key, true) {
        Ok(Found::Fresh(value)) => R::from_value(value),
        Ok(Found::Miss) => compute_once(cache, key, fail, None, args, compute),
        Ok(Found::Stale(stale)) => serve_stale(cache, key, fail, stale, args, compute, detach),
        Err(error) => failed(cache, error, fail).unwrap_or_else(|| compute(args)),
    }
}

/// A miss (or a stale value only `stale_if_error` covers): the first caller of the key
/// computes and stores; concurrent callers wait for its value, at most the cache's
/// `lock_timeout`, then compute by themselves. A waiter whose leader produced nothing (an
/// error, a panic) gets the stale value when there is one, else looks again and competes to
/// lead. A call that re-enters a key its own thread is computing computes.
#[inline(never)]
fn compute_once<K, R: Output<K>, A, F: FnOnce(A) -> R>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    mut stale: Option<Stale<R::Value>>,
    args: A,
    compute: F,
) -> R {
    loop {
        let leader = match cache.flights.join_blocking(key.local()) {
            Joined::Leader(leader) => leader,
            Joined::Reentered => return compute(args),
            Joined::Waiter(waiter) => match waiter.wait::<R::Value>(cache.settings.lock_timeout) {
                Waited::Value(value) => return R::from_value(value),
                Waited::TimedOut => return compute_alone(cache, key, fail, stale, args, compute),
                Waited::Nothing { failed: leader_failed } => {
                    let found = cache.lookup::<R::Value>(key, true);
                    match after_leader(cache, key, found, &mut stale, leader_failed) {
                        AfterLeader::Value(value) => return R::from_value(value),
                        AfterLeader::Bypass(error) => {
                            return failed(cache, error, fail).unwrap_or_else(|| compute(args))
                        }
                        AfterLeader::Again => continue,
                    }
                }
            },
        };
        // A leader that finished between the lookup and the join has stored the value.
        if let Some(value) = cache.recheck::<R::Value>(key) {
            return R::from_value(value);
        }
        return lead(cache, key, fail, leader, stale, args, compute);
    }
}

/// What a waiter does when its leader ended without a value to share.
enum AfterLeader<V> {
    /// Return this value (fresh, or stale standing in for a failed computation).
    Value(V),
    /// The backend failed and there is no stale value: what `on_error` says.
    Bypass(Error),
    /// Join the key's flight again (lead it, or wait for the next leader).
    Again,
}

/// Decides [`AfterLeader`] from the waiter's new lookup (`found`), keeping a stale value it
/// finds in `stale`. When the leader's computation failed, the stale value stands in for it;
/// a leader that did not compute (cancelled, never started) leaves the key to the next one.
/// A new lookup that finds nothing drops the stale value found before waiting: the entry is
/// past its windows, or was removed, and is served no more. Only when the backend cannot be
/// read is the value found before waiting (at most `lock_timeout` earlier) still served.
fn after_leader<V>(
    cache: &Cache,
    key: &CallKey<'_>,
    found: Result<Found<V>, Error>,
    stale: &mut Option<Stale<V>>,
    leader_failed: bool,
) -> AfterLeader<V> {
    match found {
        Ok(Found::Fresh(value)) => return AfterLeader::Value(value),
        Ok(Found::Stale(found)) => *stale = Some(found),
        Ok(Found::Miss) => *stale = None,
        Err(error) if stale.is_none() => return AfterLeader::Bypass(error),
        Err(_) => {}
    }
    match stale.take_if(|_| leader_failed) {
        Some(stale) => AfterLeader::Value(cache.served_stale(key, stale.value, "after a failed computation")),
        None => AfterLeader::Again,
    }
}

/// The leader's computation: stores and shares its value (see [`settle`]).
fn lead<K, R: Output<K>, A, F: FnOnce(A) -> R>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    mut leader: Leader<'_>,
    stale: Option<Stale<R::Value>>,
    args: A,
    compute: F,
) -> R {
    let load = begin(cache, &stale);
    let leased = cache.lease(key);
    let outcome = match &stale {
        None => Ok(compute(args)),
        Some(_) => catch_unwind(AssertUnwindSafe(|| compute(args))),
    };
    match settle(cache, key, load, stale, outcome) {
        Ok(result) => {
            let (result, current) = store(cache, key, fail, leased, result);
            // Overtaken by a change of the entry: the value is this call's alone, and the
            // waiters look again.
            if current {
                leader.share_or_fail(result.value());
            }
            result
        }
        Err(stale) => {
            cache.release(key, &leased);
            leader.fail();
            stale
        }
    }
}

/// Starts a computation to cache: counted as a load, and over a stale value as a refresh.
fn begin<'c, V>(cache: &'c Cache, stale: &Option<Stale<V>>) -> Load<'c> {
    if stale.is_some() {
        cache.counters.refresh();
    }
    cache.load()
}

/// Counts a computation (a load; over a stale value, a refresh) and says what the call does
/// with it: `Ok` = store it (when it has a value) and return it; `Err` = return this instead.
/// Over a stale value (which is within its windows, or it would not have been found), a
/// computation that fails (an `Err`, a `None`, a panic) gives the stale value; without one,
/// a panic goes on unwinding.
fn settle<K, R: Output<K>>(
    cache: &Cache,
    key: &CallKey<'_>,
    load: Load<'_>,
    stale: Option<Stale<R::Value>>,
    outcome: std::thread::Result<R>,
) -> Result<R, R> {
    let (stale, why) = match (outcome, stale) {
        (Ok(result), None) => {
            load.finish(result.value().is_some());
            return Ok(result);
        }
        (Err(panic), None) => {
            drop(load);
            resume_unwind(panic)
        }
        (Ok(result), Some(_)) if result.value().is_some() => {
            load.finish(true);
            return Ok(result);
        }
        (Ok(_), Some(stale)) => (stale, "returned no value to cache (an Err or a None)"),
        (Err(_), Some(stale)) => (stale, "panicked"),
    };
    load.finish(false);
    cache.refresh_failed(key, why);
    Err(R::from_value(cache.served_stale(
        key,
        stale.value,
        "after a failed computation",
    )))
}

/// Stores a computed value under the lease taken before it was computed, blocking on the
/// backend (under `on_error = "fail"`, a failed store is the call's result); a result with
/// no value gives the lease up. Returns the call's result, and whether it is still current:
/// `false` when a change of the entry overtook the computation (its value is not stored, and
/// is returned to this caller only).
fn store<K, R: Output<K>>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    leased: Leased,
    result: R,
) -> (R, bool) {
    let Some(value) = result.value() else {
        cache.release(key, &leased);
        return (result, true);
    };
    stored(cache, fail, cache.fill(key, leased, value), result)
}

/// The call's result after its fill (see [`store`]).
fn stored<K, R: Output<K>>(
    cache: &Cache,
    fail: Option<fn(Error) -> R>,
    filled: Result<Filled, Error>,
    result: R,
) -> (R, bool) {
    match filled {
        Ok(filled) => (result, filled != Filled::Overtaken),
        Err(error) => match failed(cache, error, fail) {
            Some(failure) => (failure, true),
            None => (result, true),
        },
    }
}

/// A waiter whose leader did not finish within `lock_timeout`: computes and stores by itself.
#[cold]
fn compute_alone<K, R: Output<K>, A, F: FnOnce(A) -> R>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    stale: Option<Stale<R::Value>>,
    args: A,
    compute: F,
) -> R {
    warn_lock_timeout(cache);
    let load = begin(cache, &stale);
    let leased = cache.lease(key);
    let outcome = match &stale {
        None => Ok(compute(args)),
        Some(_) => catch_unwind(AssertUnwindSafe(|| compute(args))),
    };
    match settle(cache, key, load, stale, outcome) {
        Ok(result) => store(cache, key, fail, leased, result).0,
        Err(stale) => {
            cache.release(key, &leased);
            stale
        }
    }
}

#[cold]
fn warn_lock_timeout(cache: &Cache) {
    tracing::warn!(cache = %cache.settings.name, lock_timeout = ?cache.settings.lock_timeout,
        "cachex waited lock_timeout for a concurrent computation of the same key; computing here");
}

/// A stale value. Within `stale_while_revalidate` it is returned at once and one refresh of
/// the key starts: in the refresh pool when the arguments can be detached, else here (the
/// caller waits for its own refresh; concurrent callers get the stale value). Past that
/// window (within `stale_if_error`) it is a miss whose failure returns the stale value.
#[cold]
#[inline(never)]
fn serve_stale<K, R, A, F, D>(
    cache: &'static Cache,
    key: &CallKey<'static>,
    fail: Option<fn(Error) -> R>,
    stale: Stale<R::Value>,
    args: A,
    compute: F,
    detach: D,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> R,
    D: FnOnce(A, F) -> Detached<A, F, Job<R::Value>>,
{
    if stale.past >= cache.settings.stale.while_revalidate {
        return compute_once(cache, key, fail, Some(stale), args, compute);
    }
    let leader = match cache.flights.join_detached(key.local()) {
        Joined::Leader(leader) => leader,
        Joined::Waiter(_) | Joined::Reentered => {
            return R::from_value(cache.served_stale(key, stale.value, "stale_while_revalidate"))
        }
    };
    // A refresh that finished between the lookup and the join has stored a fresh value: no
    // second refresh.
    if let Some(value) = cache.recheck::<R::Value>(key) {
        return R::from_value(value);
    }
    match detach(args, compute) {
        Ok(job) => {
            let owned = key.clone();
            let refresh = move || refresh_in_background(cache, &owned, leader, job);
            if !Pool::shared().submit(Box::new(refresh)) {
                cache.refresh_skipped(key);
            }
            R::from_value(cache.served_stale(key, stale.value, "stale_while_revalidate"))
        }
        Err((args, compute)) => {
            leader.lead_here();
            lead(cache, key, fail, leader, Some(stale), args, compute)
        }
    }
}

/// A refresh on a thread of the refresh pool: stores the new value, or leaves the stale one.
fn refresh_in_background<V: CacheValue>(cache: &Cache, key: &CallKey<'_>, mut leader: Leader<'_>, job: Job<V>) {
    leader.lead_here();
    cache.counters.refresh();
    let load = cache.load();
    let leased = cache.lease(key);
    // A panic drops `load` unfinished: a failed load.
    let Ok(value) = catch_unwind(AssertUnwindSafe(job)) else {
        cache.release(key, &leased);
        leader.fail();
        return cache.refresh_failed(key, "panicked");
    };
    load.finish(value.is_some());
    let stored = match &value {
        Some(value) => Some(cache.fill(key, leased, value)),
        None => {
            cache.release(key, &leased);
            None
        }
    };
    refreshed(cache, key, &mut leader, value, stored);
}

/// What a background refresh computed: stored and handed to the waiters (also when the store
/// failed: the value is good; not when a change of the entry overtook it: they look again),
/// or a failure the waiters learn of.
fn refreshed<V: CacheValue>(
    cache: &Cache,
    key: &CallKey<'_>,
    leader: &mut Leader<'_>,
    value: Option<V>,
    stored: Option<Result<Filled, Error>>,
) {
    match value {
        Some(value) => match stored {
            Some(Ok(Filled::Overtaken)) => {}
            Some(Err(_)) => {
                cache.refresh_failed(key, "could not store its value");
                leader.share(&value);
            }
            _ => leader.share(&value),
        },
        None => {
            leader.fail();
            cache.refresh_failed(key, "returned no value to cache (an Err or a None)");
        }
    }
}

/// Runs an async cached call, like [`run`]: `compute` makes the body's future from the
/// arguments; a detached refresh runs on a blocking thread of the caller's tokio runtime.
pub async fn run_async<K, R, A, F, Fut, D>(
    prepared: Option<Prepared<'_>>,
    fail: Option<fn(Error) -> R>,
    args: A,
    compute: F,
    detach: D,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
    D: FnOnce(A, F) -> Detached<A, F, AsyncJob<R::Value>>,
{
    let Some(Prepared { cache, key }) = prepared else {
        return compute(args).await;
    };
    // A memory lookup never waits: asked directly, it costs no future of its own.
    let found = match cache.lookup_in_memory::<R::Value>(key, true) {
        Some(found) => Ok(found),
        None => cache.lookup_shared_async::<R::Value>(key, true).await,
    };
    match found {
        Ok(Found::Fresh(value)) => R::from_value(value),
        Ok(Found::Miss) => compute_once_async(cache, key, fail, None, args, compute).await,
        Ok(Found::Stale(stale)) => serve_stale_async(cache, key, fail, stale, args, compute, detach).await,
        Err(error) => match failed(cache, error, fail) {
            Some(failure) => failure,
            None => compute(args).await,
        },
    }
}

/// [`compute_once`] for an async call.
async fn compute_once_async<K, R, A, F, Fut>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    mut stale: Option<Stale<R::Value>>,
    args: A,
    compute: F,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
{
    loop {
        let leader = match cache.flights.join_async(key.local()) {
            Joined::Leader(leader) => leader,
            Joined::Reentered => return compute(args).await,
            Joined::Waiter(waiter) => match waiter.wait_async::<R::Value>(cache.settings.lock_timeout).await {
                Waited::Value(value) => return R::from_value(value),
                Waited::Nothing { failed: leader_failed } => {
                    let found = cache.lookup_async::<R::Value>(key, true).await;
                    match after_leader(cache, key, found, &mut stale, leader_failed) {
                        AfterLeader::Value(value) => return R::from_value(value),
                        AfterLeader::Bypass(error) => {
                            return match failed(cache, error, fail) {
                                Some(failure) => failure,
                                None => compute(args).await,
                            }
                        }
                        AfterLeader::Again => continue,
                    }
                }
                Waited::TimedOut => {
                    warn_lock_timeout(cache);
                    let load = begin(cache, &stale);
                    let leased = cache.lease_async(key).await;
                    let outcome = match &stale {
                        None => Ok(compute(args).await),
                        Some(_) => catch_unwind_async(compute(args)).await,
                    };
                    return match settle(cache, key, load, stale, outcome) {
                        Ok(result) => store_async(cache, key, fail, leased, result).await.0,
                        Err(stale) => {
                            cache.release_async(key, &leased).await;
                            stale
                        }
                    };
                }
            },
        };
        if let Some(value) = cache.recheck_async::<R::Value>(key).await {
            return R::from_value(value);
        }
        return lead_async(cache, key, fail, leader, stale, args, compute).await;
    }
}

/// [`lead`] for an async call.
async fn lead_async<K, R, A, F, Fut>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    mut leader: Leader<'_>,
    stale: Option<Stale<R::Value>>,
    args: A,
    compute: F,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
{
    let load = begin(cache, &stale);
    let leased = cache.lease_async(key).await;
    let outcome = match &stale {
        None => Ok(leader.scope(compute(args)).await),
        Some(_) => catch_unwind_async(leader.scope(compute(args))).await,
    };
    match settle(cache, key, load, stale, outcome) {
        Ok(result) => {
            let (result, current) = store_async(cache, key, fail, leased, result).await;
            if current {
                leader.share_or_fail(result.value());
            }
            result
        }
        Err(stale) => {
            cache.release_async(key, &leased).await;
            leader.fail();
            stale
        }
    }
}

/// [`store`], awaiting the backend.
async fn store_async<K, R: Output<K>>(
    cache: &Cache,
    key: &CallKey<'_>,
    fail: Option<fn(Error) -> R>,
    leased: Leased,
    result: R,
) -> (R, bool) {
    let Some(value) = result.value() else {
        cache.release_async(key, &leased).await;
        return (result, true);
    };
    let filled = cache.fill_async(key, leased, value).await;
    stored(cache, fail, filled, result)
}

/// [`serve_stale`] for an async call: a detached refresh runs on a blocking thread of the
/// caller's tokio runtime, which drives the body's future there (so the future need not be
/// `Send`); outside a tokio runtime the caller refreshes.
#[cold]
async fn serve_stale_async<K, R, A, F, Fut, D>(
    cache: &'static Cache,
    key: &CallKey<'static>,
    fail: Option<fn(Error) -> R>,
    stale: Stale<R::Value>,
    args: A,
    compute: F,
    detach: D,
) -> R
where
    R: Output<K>,
    F: FnOnce(A) -> Fut,
    Fut: Future<Output = R>,
    D: FnOnce(A, F) -> Detached<A, F, AsyncJob<R::Value>>,
{
    if stale.past >= cache.settings.stale.while_revalidate {
        return compute_once_async(cache, key, fail, Some(stale), args, compute).await;
    }
    let leader = match cache.flights.join_async(key.local()) {
        Joined::Leader(leader) => leader,
        Joined::Waiter(_) | Joined::Reentered => {
            return R::from_value(cache.served_stale(key, stale.value, "stale_while_revalidate"))
        }
    };
    if let Some(value) = cache.recheck_async::<R::Value>(key).await {
        return R::from_value(value);
    }
    let detached = match tokio::runtime::Handle::try_current() {
        Ok(runtime) => detach(args, compute).map(|job| (runtime, job)),
        Err(_) => Err((args, compute)),
    };
    match detached {
        Ok((runtime, job)) => {
            match AsyncRefresh::start() {
                Some(running) => {
                    let owned = key.clone();
                    let on = runtime.clone();
                    runtime.spawn_blocking(move || {
                        on.block_on(refresh_async_in_background(cache, &owned, leader, job));
                        drop(running);
                    });
                }
                None => cache.refresh_skipped(key),
            }
            R::from_value(cache.served_stale(key, stale.value, "stale_while_revalidate"))
        }
        Err((args, compute)) => lead_async(cache, key, fail, leader, Some(stale), args, compute).await,
    }
}

/// [`refresh_in_background`] for an async call.
async fn refresh_async_in_background<V: CacheValue>(
    cache: &Cache,
    key: &CallKey<'_>,
    mut leader: Leader<'_>,
    job: AsyncJob<V>,
) {
    cache.counters.refresh();
    let load = cache.load();
    let leased = cache.lease_async(key).await;
    let Ok(value) = catch_unwind_async(leader.scope(async move { job().await })).await else {
        cache.release_async(key, &leased).await;
        leader.fail();
        return cache.refresh_failed(key, "panicked");
    };
    load.finish(value.is_some());
    let stored = match &value {
        Some(value) => Some(cache.fill_async(key, leased, value).await),
        None => {
            cache.release_async(key, &leased).await;
            None
        }
    };
    refreshed(cache, key, &mut leader, value, stored);
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
