//! The per-call work around a backend round trip: envelope encode/decode of a 1 KiB byte
//! vector and the storage key of an entry.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

fn micro(c: &mut Criterion) {
    let value = vec![7u8; 1024];
    let bytes = cachex::envelope::encode(&value, None).unwrap();
    c.bench_function("envelope decode 1 KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::decode::<Vec<u8>>(black_box(&bytes)).unwrap())
    });
    c.bench_function("envelope encode 1 KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::encode(black_box(&value), None).unwrap())
    });
    let key = cachex_core::Key([3; 32]);
    c.bench_function("key to hex", |b| b.iter(|| black_box(&key).to_hex()));
}

criterion_group!(benches, micro);
criterion_main!(benches);
