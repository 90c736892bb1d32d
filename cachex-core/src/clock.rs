//! The clock that TTLs of the memory backend are measured with: read on every hit of a cache
//! that has a TTL, so it has to be cheap. On Linux it is `CLOCK_MONOTONIC_COARSE` (about 4 ns a
//! read against about 25 ns for `Instant::now()` on the project's machines), whose readings lag
//! real time by up to its resolution, the kernel tick (a few milliseconds); elsewhere it is
//! `Instant`. [`expiry`] takes the lag into account, so an entry never outlives its TTL; it may
//! expire up to two ticks early.

use std::time::Duration;

/// Nanoseconds on a monotonic clock with an arbitrary origin.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn now_nanos() -> u64 {
    nanos(rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse))
}

/// How far behind real time a reading of [`now_nanos`] may be.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn resolution_nanos() -> u64 {
    static RESOLUTION: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *RESOLUTION.get_or_init(|| nanos(rustix::time::clock_getres(rustix::time::ClockId::MonotonicCoarse)))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn nanos(time: rustix::time::Timespec) -> u64 {
    (time.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(time.tv_nsec as u64)
}

/// Nanoseconds on a monotonic clock with an arbitrary origin.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
pub(crate) fn now_nanos() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = ORIGIN.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// How far behind real time a reading of [`now_nanos`] may be.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn resolution_nanos() -> u64 {
    0
}

/// The reading of [`now_nanos`] from which an entry written now with `ttl` is expired.
///
/// A reading lags real time by less than the resolution `r`. Written at real time `t0` (read
/// `c0 > t0 - r`) and read at `t1 >= t0 + ttl` (read `c1 > t1 - r`): `c1 > c0 + ttl - r`, so
/// with the expiry at `c0 + ttl - r` the entry is expired whenever its TTL has passed.
pub(crate) fn expiry(ttl: Duration) -> u64 {
    let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
    now_nanos().saturating_add(ttl).saturating_sub(resolution_nanos())
}

/// At least the time that passed since `reading` (of [`now_nanos`]); up to a tick more.
pub(crate) fn elapsed_since(reading: u64) -> Duration {
    Duration::from_nanos(now_nanos().saturating_sub(reading).saturating_add(resolution_nanos()))
}

/// The reading of [`now_nanos`] from which `within` has passed since `since`: like
/// [`expiry`], never later than real time says (it may come up to two ticks early).
pub(crate) fn deadline(since: std::time::Instant, within: Duration) -> u64 {
    let elapsed = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
    expiry(within).saturating_sub(elapsed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn advances_with_real_time() {
        let before = super::now_nanos();
        std::thread::sleep(Duration::from_millis(30));
        let after = super::now_nanos();
        // At least the sleep minus one coarse tick (the kernel's tick is at most 10 ms).
        assert!(after - before >= 20_000_000, "{before} -> {after}");
    }

    #[test]
    fn a_deadline_counts_from_its_start() {
        let since = std::time::Instant::now() - Duration::from_millis(40);
        let deadline = super::deadline(since, Duration::from_millis(100));
        assert!(
            deadline <= super::expiry(Duration::from_millis(60)),
            "counted from the call"
        );
        std::thread::sleep((since + Duration::from_millis(100)).saturating_duration_since(std::time::Instant::now()));
        assert!(super::now_nanos() >= deadline, "not passed 100 ms after its start");
    }

    #[test]
    fn an_expiry_is_never_later_than_the_ttl() {
        for ttl in [Duration::ZERO, Duration::from_millis(1), Duration::from_millis(50)] {
            let expiry = super::expiry(ttl);
            std::thread::sleep(ttl);
            assert!(super::now_nanos() >= expiry, "{ttl:?}: not expired after its TTL");
        }
    }
}
