//! The clock that TTLs of the memory backend are measured with: read on every hit of a cache
//! that has a TTL, so it has to be cheap. On Linux it is `CLOCK_MONOTONIC_COARSE` (about 4 ns a
//! read against about 25 ns for `Instant::now()` on the project's machines, with the kernel
//! tick as resolution, a few milliseconds); elsewhere it is `Instant`. An entry may so expire
//! up to one tick early, never late.

/// Nanoseconds on a monotonic clock with an arbitrary origin.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
pub(crate) fn now_nanos() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Nanoseconds on a monotonic clock with an arbitrary origin.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[inline]
pub(crate) fn now_nanos() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let elapsed = ORIGIN.get_or_init(std::time::Instant::now).elapsed();
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn advances_with_real_time() {
        let before = super::now_nanos();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let after = super::now_nanos();
        // At least the sleep minus one coarse tick (the kernel's tick is at most 10 ms).
        assert!(after - before >= 20_000_000, "{before} -> {after}");
    }
}
