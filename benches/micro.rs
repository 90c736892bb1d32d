//! The per-call work around a lookup:
//! - key derivation alone for typical argument shapes (u64; a 16-byte String; a struct of four
//!   fields; a 1 KiB `Vec<u8>`), each encoded the way `#[cached]` encodes an argument of its
//!   type: the in-process key a memory hit builds, and the blake3 digest that byte-storing
//!   backends (file, Redis, MongoDB, Memcached) name the entry by;
//! - envelope encode/decode of a 1 KiB byte vector and the hex of a digest.

use std::hint::black_box;

use cachex_core::key::{KeyBuilder, Seed};
use cachex_core::ArgEncoding;
use criterion::{criterion_group, criterion_main, Criterion};

#[derive(serde::Serialize, serde::Deserialize)]
struct Query {
    user: u64,
    region: String,
    page: u32,
    exact: bool,
}

/// Benches the key of one argument of type `$ty`, encoded as generated code encodes it.
macro_rules! derive {
    ($c:expr, $shape:expr, $ty:ty, $value:expr) => {{
        let seed = Seed::new("bench", "micro::derive", 0);
        let value: &$ty = $value;
        let mut group = $c.benchmark_group(format!("key derivation, {}", $shape));
        group.bench_function("in-process key (memory backend)", |b| {
            b.iter(|| {
                let mut builder = KeyBuilder::new(&seed);
                cachex_core::__encode_arg!(&mut builder, ArgEncoding::Serde, black_box(value), $ty);
                black_box(builder.finish_in_place(false).map(|key| key.local().len()))
            })
        });
        group.bench_function("digest (byte-storing backends)", |b| {
            b.iter(|| {
                let mut builder = KeyBuilder::new(&seed);
                cachex_core::__encode_arg!(&mut builder, ArgEncoding::Serde, black_box(value), $ty);
                black_box(builder.finish_in_place(true).map(|key| key.digest()))
            })
        });
        group.finish();
    }};
}

fn micro(c: &mut Criterion) {
    derive!(c, "u64", u64, &40_000);
    derive!(c, "String of 16 bytes", String, &"dataset-00000042".to_string());
    let query = Query {
        user: 42,
        region: "eu-west-3".into(),
        page: 7,
        exact: true,
    };
    derive!(c, "struct of 4 fields", Query, &query);
    derive!(c, "1 KiB Vec<u8>", Vec<u8>, &vec![7u8; 1024]);

    let value = vec![7u8; 1024];
    let bytes = cachex::envelope::encode(&value, None).unwrap();
    c.bench_function("envelope decode 1 KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::decode::<Vec<u8>>(black_box(&bytes)).unwrap())
    });
    c.bench_function("envelope encode 1 KiB Vec<u8>", |b| {
        b.iter(|| cachex::envelope::encode(black_box(&value), None).unwrap())
    });
    // About 1 KiB of bincode: 24 records of a struct with a 40-byte string.
    let records: Vec<Query> = (0..24)
        .map(|i| Query {
            user: i,
            region: format!("{i:0>40}"),
            page: i as u32,
            exact: i % 2 == 0,
        })
        .collect();
    let bytes = cachex::envelope::encode(&records, None).unwrap();
    c.bench_function("envelope decode 1 KiB of 24 structs", |b| {
        b.iter(|| cachex::envelope::decode::<Vec<Query>>(black_box(&bytes)).unwrap())
    });
    let key = cachex_core::Key([3; 32]);
    c.bench_function("key to hex", |b| b.iter(|| black_box(&key).to_hex()));
}

criterion_group!(benches, micro);
criterion_main!(benches);
