//! A memory-cache hit allocates nothing but the clone of the value it returns: counted with a
//! counting global allocator, per thread, so tests running in parallel do not disturb each
//! other. (A thread's first lookup registers its reader slot once; each test warms up first.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::task::{Context, Poll, Waker};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting touches only a
// const-initialised thread-local `Cell` (no allocation, no destructor).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The value of `f` and the number of allocations this thread made while it ran.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let value = f();
    (value, ALLOCATIONS.with(Cell::get) - before)
}

fn setup() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let memory = cachex::CacheConfig::memory;
        cachex::init_with(
            cachex::Config::new()
                .cache("alloc_u64", memory())
                .cache("alloc_kib", memory().ttl(std::time::Duration::from_secs(600)))
                .cache("alloc_async", memory()),
        )
        .unwrap();
    });
}

static COMPUTED: AtomicU32 = AtomicU32::new(0);

#[cachex::cached(name = "alloc_u64")]
fn square(n: u64) -> u64 {
    COMPUTED.fetch_add(1, Ordering::SeqCst);
    n * n
}

#[cachex::cached(name = "alloc_kib")]
fn page(name: String, n: u32) -> Vec<u8> {
    let mut page = vec![n as u8; 1024];
    page[..name.len()].copy_from_slice(name.as_bytes());
    page
}

#[cachex::cached(name = "alloc_async")]
async fn cube(n: u64) -> u64 {
    n * n * n
}

#[test]
fn a_u64_hit_allocates_nothing() {
    setup();
    assert_eq!(square(12), 144);
    let computed = COMPUTED.load(Ordering::SeqCst);
    let (value, allocations) = allocations(|| square(12));
    assert_eq!(value, 144);
    assert_eq!(COMPUTED.load(Ordering::SeqCst), computed, "it was a hit");
    assert_eq!(allocations, 0);
}

#[test]
fn a_vec_hit_allocates_only_the_returned_clone() {
    setup();
    let name = || String::from("dataset-00000042");
    let first = page(name(), 7);
    let argument = name();
    let (value, allocations) = allocations(|| page(argument, 7));
    assert_eq!(value, first);
    assert_eq!(cachex::cache("alloc_kib").unwrap().stats().hits, 1);
    assert_eq!(allocations, 1, "the clone of the 1 KiB value, nothing else");
}

#[test]
fn an_async_hit_allocates_nothing() {
    setup();
    // A memory hit completes on its first poll: no runtime needed to drive it.
    let poll_once = |future: &mut dyn FnMut(&mut Context<'_>) -> Poll<u64>| {
        let mut context = Context::from_waker(Waker::noop());
        future(&mut context)
    };
    let run = |n: u64| {
        let mut future = pin!(cube(n));
        poll_once(&mut |cx| future.as_mut().poll(cx))
    };
    assert_eq!(run(3), Poll::Ready(27));
    let (value, allocations) = allocations(|| run(3));
    assert_eq!(value, Poll::Ready(27));
    assert_eq!(cachex::cache("alloc_async").unwrap().stats().hits, 1);
    assert_eq!(allocations, 0);
}
