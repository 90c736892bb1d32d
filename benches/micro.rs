use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
fn micro(c: &mut Criterion) {
    let v = vec![7u8; 1024];
    let bytes = cachex::envelope::encode(&v, None).unwrap();
    c.bench_function("decode 1KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::decode::<Vec<u8>>(black_box(&bytes)).unwrap())
    });
    c.bench_function("encode 1KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::encode(black_box(&v), None).unwrap())
    });
    let key = cachex_core::Key([3; 32]);
    c.bench_function("key hex + format", |b| {
        b.iter(|| format!("{}:{}", "cachex:bench", black_box(&key).to_hex()))
    });
}
criterion_group!(benches, micro);
criterion_main!(benches);
