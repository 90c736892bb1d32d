//! Stored bytes cannot crash a reader or make it allocate without bound: valid envelopes of
//! several shapes (recursive ones included) are mutated at random, and hand-made payloads
//! claim huge lengths or nest 20,000 levels deep at 1 KiB, 8 MiB and 9 MiB. Each is decoded
//! under a global allocator that tracks this thread's peak bytes: no panic, no abort, and the
//! peak stays within 8 times the stored size plus 64 KiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use cachex::envelope::{decode, encode, DecodeError, HEADER_LEN};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

struct Peak;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    let _ = LIVE.try_with(|live| {
        live.set(live.get() + bytes);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(live.get())));
    });
}

fn shrank(bytes: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the bookkeeping touches
// only const-initialised thread-local `Cell`s (no allocation, no destructor).
unsafe impl GlobalAlloc for Peak {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        let moved = System.realloc(ptr, layout, new_size);
        shrank(layout.size());
        moved
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Peak = Peak;

/// Decodes `bytes` as `T`; the outcome and the peak bytes allocated on top of what was live.
fn decode_measured<T: DeserializeOwned + 'static>(bytes: &[u8]) -> (Result<(), DecodeError>, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    let outcome = decode::<T>(bytes).map(drop);
    (outcome, PEAK.with(Cell::get) - base)
}

fn bound(stored: usize) -> usize {
    8 * stored + 64 * 1024
}

#[track_caller]
fn assert_bounded<T: DeserializeOwned + 'static>(bytes: &[u8]) -> Result<(), DecodeError> {
    let (outcome, peak) = decode_measured::<T>(bytes);
    assert!(
        peak <= bound(bytes.len()),
        "{} stored bytes took a peak of {peak} bytes to decode as {}",
        bytes.len(),
        std::any::type_name::<T>()
    );
    outcome
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Comment {
    text: String,
    replies: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Role {
    Reader,
    Admin { scopes: Vec<String> },
    Service(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Account {
    id: i64,
    name: String,
    role: Role,
    tags: HashMap<String, u32>,
    avatar: Option<Vec<u8>>,
}

fn comment() -> impl Strategy<Value = Comment> {
    let leaf = ".{0,12}".prop_map(|text| Comment {
        text,
        replies: Vec::new(),
    });
    leaf.prop_recursive(6, 64, 4, |inner| {
        (".{0,12}", proptest::collection::vec(inner, 0..4)).prop_map(|(text, replies)| Comment { text, replies })
    })
}

fn account() -> impl Strategy<Value = Account> {
    let role = prop_oneof![
        Just(Role::Reader),
        proptest::collection::vec(".{0,8}", 0..4).prop_map(|scopes| Role::Admin { scopes }),
        any::<u64>().prop_map(Role::Service),
    ];
    (
        any::<i64>(),
        ".{0,16}",
        role,
        proptest::collection::hash_map(".{0,8}", any::<u32>(), 0..6),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(id, name, role, tags, avatar)| Account {
            id,
            name,
            role,
            tags,
            avatar,
        })
}

/// A mutation of stored bytes: overwrite, insert, remove or truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Set(at, byte)),
        // 251..=254 are varint markers: the next bytes become a large length.
        2 => (any::<usize>(), proptest::collection::vec(prop_oneof![Just(251u8), Just(252), Just(253), Just(254), Just(255), any::<u8>()], 1..10))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ];
    proptest::collection::vec(one, 1..6)
}

/// Applies the mutations to the payload only (a mutated header is refused before decoding
/// starts), and fixes the length field so the payload is decoded.
fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    let mut payload = bytes.split_off(HEADER_LEN);
    for mutation in mutations {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
        match mutation {
            Mutation::Set(i, byte) if !payload.is_empty() => {
                let i = at(*i, payload.len());
                payload[i] = *byte;
            }
            Mutation::Insert(i, inserted) => {
                let i = at(*i, payload.len() + 1);
                payload.splice(i..i, inserted.iter().copied());
            }
            Mutation::Remove(i) if !payload.is_empty() => {
                let i = at(*i, payload.len());
                payload.remove(i);
            }
            Mutation::Truncate(i) => payload.truncate(at(*i, payload.len() + 1)),
            _ => {}
        }
    }
    let len = payload.len() as u64;
    bytes[HEADER_LEN - 8..].copy_from_slice(&len.to_le_bytes());
    bytes.extend_from_slice(&payload);
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_comments_decode_bounded(value in comment(), mutations in mutations()) {
        let bytes = encode(&value, None).unwrap();
        prop_assert_eq!(assert_bounded::<Comment>(&bytes), Ok(()));
        let _ = assert_bounded::<Comment>(&mutate(bytes, &mutations));
    }

    #[test]
    fn mutated_accounts_decode_bounded(value in account(), mutations in mutations()) {
        let bytes = encode(&value, None).unwrap();
        prop_assert_eq!(assert_bounded::<Account>(&bytes), Ok(()));
        let _ = assert_bounded::<Account>(&mutate(bytes, &mutations));
    }

    #[test]
    fn mutated_collections_decode_bounded(
        words in proptest::collection::vec(".{0,24}", 0..40),
        numbers in proptest::collection::vec(any::<u64>(), 0..200),
        mutations in mutations(),
    ) {
        let bytes = encode(&words, None).unwrap();
        prop_assert_eq!(assert_bounded::<Vec<String>>(&bytes), Ok(()));
        let _ = assert_bounded::<Vec<String>>(&mutate(bytes, &mutations));
        let bytes = encode(&numbers, None).unwrap();
        prop_assert_eq!(assert_bounded::<Vec<u64>>(&bytes), Ok(()));
        let _ = assert_bounded::<Vec<u64>>(&mutate(bytes.clone(), &mutations));
        // The same bytes read as other types: their fingerprints differ, so retyped.
        let _ = assert_bounded::<Vec<Vec<u32>>>(&mutate(bytes, &mutations));
    }
}

/// An envelope for `T` around a hand-made payload (the header of a real `T` entry).
fn envelope_of<T: Serialize + DeserializeOwned + Default + 'static>(payload: &[u8]) -> Vec<u8> {
    let mut bytes = encode(&T::default(), None).unwrap();
    bytes.truncate(HEADER_LEN);
    bytes.extend_from_slice(payload);
    bytes[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes
}

/// A payload of `size` bytes whose first length field claims `claim` elements or bytes.
fn claiming(claim: u64, size: usize) -> Vec<u8> {
    let mut payload = vec![253u8];
    payload.extend_from_slice(&claim.to_le_bytes());
    payload.resize(size, 7);
    payload
}

#[test]
fn huge_length_claims_are_refused_within_the_bound() {
    for size in [1024, 8 << 20, 9 << 20] {
        for claim in [u64::MAX, 1 << 40, (size as u64) * 64, size as u64 + 1] {
            let payload = claiming(claim, size);
            assert!(assert_bounded::<String>(&envelope_of::<String>(&payload)).is_err());
            assert!(assert_bounded::<Vec<u8>>(&envelope_of::<Vec<u8>>(&payload)).is_err());
            assert!(assert_bounded::<Vec<u64>>(&envelope_of::<Vec<u64>>(&payload)).is_err());
            assert!(assert_bounded::<Vec<String>>(&envelope_of::<Vec<String>>(&payload)).is_err());
            assert!(assert_bounded::<HashMap<String, u64>>(&envelope_of::<HashMap<String, u64>>(&payload)).is_err());
            assert!(assert_bounded::<Comment>(&envelope_of::<Comment>(&payload)).is_err());
        }
    }
}

#[test]
fn every_level_claiming_a_huge_list_stays_within_the_bound() {
    // Each level of a Comment claims as many replies as there are bytes: the hints share one
    // budget, so the levels cannot each pre-allocate that much.
    for size in [1024usize, 8 << 20] {
        let mut payload = Vec::new();
        while payload.len() + 12 < size {
            payload.push(0); // empty text
            payload.push(253);
            payload.extend_from_slice(&(size as u64).to_le_bytes());
        }
        payload.resize(size, 0);
        assert!(assert_bounded::<Comment>(&envelope_of::<Comment>(&payload)).is_err());
    }
}

#[test]
fn twenty_thousand_levels_are_an_error_on_a_small_stack() {
    for size in [1024usize, 40_002, 8 << 20, 9 << 20] {
        // One reply per level: an empty text (0), then a list of one (1), to the last byte.
        let mut payload = [0u8, 1].repeat(size / 2 - 1);
        payload.extend_from_slice(&[0, 0]);
        let bytes = envelope_of::<Comment>(&payload);
        let outcome = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || assert_bounded::<Comment>(&bytes))
            .unwrap()
            .join()
            .expect("no stack overflow, no panic");
        match outcome {
            Err(DecodeError::Payload(message)) => assert!(message.contains("nested deeper"), "{message}"),
            other => panic!("expected a nesting error, got {other:?}"),
        }
    }
}
