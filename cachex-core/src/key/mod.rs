//! Cache keys. The key material of a call is its binding's seed followed by each kept
//! argument, framed. Inside the process, short material is the key itself: the memory backend
//! and single-flight compare it whole, with a 4-byte process-local id standing for the seed, so
//! a hit hashes a few bytes with a fast hasher instead of running blake3. Material that leaves
//! the process (every byte-storing backend), and material too long to keep on the stack,
//! becomes a blake3 digest keyed by the seed: the same digest for the same call in every
//! process, on every machine.

mod arg;
mod builder;
mod digest;
mod fast_path;
mod seed;

pub use arg::{probe, ArgCaps, ArgEncoding, CustomEncodeFn};
pub(crate) use builder::LocalKey;
pub use builder::{CallKey, KeyBuilder, LITERAL_MATERIAL};
pub use digest::Key;
pub use fast_path::{ByteSequence, Integer, Unordered};
pub use seed::{binding_seed, Seed};

/// Version of the key format; part of every key, so a change of format never reads old entries.
pub const KEY_FORMAT_VERSION: u32 = 2;

#[cfg(test)]
mod tests {
    use super::builder::LOCAL_LEN;
    use super::seed::DIGESTED;
    use super::*;

    fn seed(function: &str) -> Seed {
        Seed::new("c", function, 0)
    }

    /// Text framing pinned by vectors computed independently (Python's `blake3`):
    /// seed = blake3(u32le 2 ‖ u64le 1 ‖ "c" ‖ u64le 1 ‖ "f" ‖ u32le 0);
    /// `display("A")` then serde `"x"` is `d 01 'A' 00 s 01 'x'`, and a 600-byte text is
    /// `d ff <255> ff <255> 5a <90> 00` (chunks split bytes, even inside a character).
    #[test]
    fn text_framing_vectors() {
        let seed = seed("f");
        let mut short = KeyBuilder::new(&seed);
        short.display("A");
        short.serde("x");
        assert_eq!(
            short.finish().unwrap().to_hex(),
            "c6bbf55e8704075f553172024aef28d54731ec4c8f37254299041cc2b92556f8"
        );
        let mut long = KeyBuilder::new(&seed);
        long.display(&"é".repeat(300));
        assert_eq!(
            long.finish().unwrap().to_hex(),
            "920048f609680d0454523b4628f33b95ca4eb7a7d94dbf0bf51b8e005ffb5d54"
        );
    }

    /// One argument of a random list, as the binding's type and encoder would give it.
    #[derive(Debug, Clone, PartialEq)]
    enum Arg {
        Serde(String),
        Integer(i64),
        ByteVec(Vec<u8>),
        Display(String),
        Debug(String),
        Raw(Vec<u8>),
        Skip,
    }

    fn arg() -> impl proptest::strategy::Strategy<Value = Arg> {
        use proptest::prelude::*;
        // Any char: NUL, control characters and multi-byte ones included.
        let text = || proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter);
        let bytes = || proptest::collection::vec(any::<u8>(), 0..8);
        prop_oneof![
            text().prop_map(Arg::Serde),
            any::<i64>().prop_map(Arg::Integer),
            bytes().prop_map(Arg::ByteVec),
            text().prop_map(Arg::Display),
            text().prop_map(Arg::Debug),
            bytes().prop_map(Arg::Raw),
            Just(Arg::Skip),
        ]
    }

    fn encode(builder: &mut KeyBuilder<'_>, arg: &Arg) {
        match arg {
            Arg::Serde(text) => builder.serde(text),
            Arg::Integer(n) => builder.integer(*n),
            Arg::ByteVec(bytes) => builder.byte_sequence(bytes),
            Arg::Display(text) => builder.display(text),
            Arg::Debug(text) => builder.debug(text),
            Arg::Raw(bytes) => builder.bytes(bytes),
            Arg::Skip => builder.skip(),
        }
    }

    /// Reads key material back, knowing each argument's kind (as its binding does); `None`
    /// where the material does not frame the kinds exactly.
    fn read_back(mut material: &[u8], kinds: &[Arg]) -> Option<Vec<Arg>> {
        fn serde_value<T: serde::de::DeserializeOwned>(material: &mut &[u8]) -> Option<T> {
            let (value, used) = bincode::serde::decode_from_slice(material, bincode::config::standard()).ok()?;
            *material = &material[used..];
            Some(value)
        }
        fn take<'a>(material: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = (material.get(..n)?, material.get(n..)?);
            *material = rest;
            Some(head)
        }
        fn text(material: &mut &[u8]) -> Option<String> {
            let mut bytes = Vec::new();
            loop {
                let len = usize::from(take(material, 1)?[0]);
                if len == 0 {
                    return String::from_utf8(bytes).ok();
                }
                bytes.extend_from_slice(take(material, len)?);
            }
        }
        let mut args = Vec::new();
        for kind in kinds {
            let tag = take(&mut material, 1)?[0];
            args.push(match (kind, tag) {
                (Arg::Serde(_), b's') => Arg::Serde(serde_value(&mut material)?),
                (Arg::Integer(_), b's') => Arg::Integer(serde_value(&mut material)?),
                (Arg::ByteVec(_), b's') => Arg::ByteVec(serde_value(&mut material)?),
                (Arg::Display(_), b'd') => Arg::Display(text(&mut material)?),
                (Arg::Debug(_), b'g') => Arg::Debug(text(&mut material)?),
                (Arg::Raw(_), b'b') => {
                    let len = u64::from_le_bytes(take(&mut material, 8)?.try_into().ok()?);
                    Arg::Raw(take(&mut material, usize::try_from(len).ok()?)?.to_vec())
                }
                (Arg::Skip, b'k') => Arg::Skip,
                _ => return None,
            });
        }
        material.is_empty().then_some(args)
    }

    proptest::proptest! {
        /// Key material reads back into its argument list, so two different lists never share
        /// material: the framing is injective (random lists alone would rarely collide).
        #[test]
        fn key_material_reads_back_into_its_arguments(args in proptest::collection::vec(arg(), 0..5)) {
            let seed = seed("f");
            let mut builder = KeyBuilder::new(&seed);
            for arg in &args {
                encode(&mut builder, arg);
            }
            let key = builder.finish_call().unwrap();
            // Short lists stay literal: the in-process key is the id, then the material.
            proptest::prop_assume!(key.local()[..LOCAL_LEN] == seed.local.to_le_bytes());
            let expected: Vec<Arg> = args
                .iter()
                .map(|arg| match arg {
                    Arg::Debug(text) => Arg::Debug(format!("{text:?}")),
                    other => other.clone(),
                })
                .collect();
            proptest::prop_assert_eq!(read_back(&key.local()[LOCAL_LEN..], &args), Some(expected));
        }
    }

    /// The collision of the old framing (text, then its length): a `display` argument
    /// followed by a serde `String`.
    #[test]
    fn the_old_text_framing_collision_is_gone() {
        let seed = seed("f");
        let key = |first: &str, second: &str| {
            let mut builder = KeyBuilder::new(&seed);
            builder.display(first);
            builder.serde(second);
            builder.finish_call().unwrap()
        };
        let a = key("A", "\x0b\0\0\0\0\0\0\0s\x01x");
        let b = key("A\x01\0\0\0\0\0\0\0s\x0b", "x");
        assert_ne!(a.local(), b.local());
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn framing_separates_arguments() {
        let seed = seed("f");
        let key = |parts: [&str; 2]| {
            let mut builder = KeyBuilder::new(&seed);
            builder.display(parts[0]);
            builder.display(parts[1]);
            builder.finish_call().unwrap()
        };
        let (a, b) = (key(["ab", "c"]), key(["a", "bc"]));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(a.local(), b.local());
    }

    #[test]
    fn encodings_give_different_keys() {
        let seed = seed("f");
        let mut a = KeyBuilder::new(&seed);
        a.display(&7u32);
        let mut b = KeyBuilder::new(&seed);
        b.debug(&7u32);
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn seed_depends_on_every_part() {
        let base = binding_seed("c", "f", 0);
        assert_ne!(base, binding_seed("d", "f", 0));
        assert_ne!(base, binding_seed("c", "g", 0));
        assert_ne!(base, binding_seed("c", "f", 1));
        assert_ne!(binding_seed("ab", "c", 0), binding_seed("a", "bc", 0));
    }

    #[test]
    fn local_ids_are_equal_exactly_when_seeds_are() {
        assert_eq!(seed("f").local, seed("f").local);
        assert_ne!(seed("f").local, seed("g").local);
        assert_ne!(seed("f").local, Seed::UNBOUND.local);
        assert_eq!(seed("f").local & DIGESTED, 0);
    }

    /// Whether the material stays literal or spills into the hasher, the digest is blake3
    /// keyed by the seed over the whole argument stream: the format every store relies on.
    #[test]
    fn literal_and_spilled_material_digest_like_one_stream() {
        let seed = seed("f");
        for len in [
            0usize,
            1,
            LITERAL_MATERIAL - 9,
            LITERAL_MATERIAL - 8,
            LITERAL_MATERIAL,
            1024,
        ] {
            let bytes = vec![0xa5u8; len];
            let build = || {
                let mut builder = KeyBuilder::new(&seed);
                builder.bytes(&bytes);
                builder
            };
            let key = build().finish_call().unwrap();
            let mut stream = b"b".to_vec();
            stream.extend_from_slice(&(len as u64).to_le_bytes());
            stream.extend_from_slice(&bytes);
            let expected = Key(*blake3::keyed_hash(seed.digest(), &stream).as_bytes());
            assert_eq!(key.digest(), expected, "{len} bytes");
            assert_eq!(build().finish_in_place(true).unwrap().digest, Some(expected));
            let local = key.local();
            let id = u32::from_le_bytes(local[..LOCAL_LEN].try_into().unwrap());
            if stream.len() <= LITERAL_MATERIAL {
                assert_eq!(id, seed.local, "{len} bytes");
                assert_eq!(&local[LOCAL_LEN..], &stream[..]);
            } else {
                assert_eq!(id, seed.local | DIGESTED, "{len} bytes");
                assert_eq!(&local[LOCAL_LEN..], &expected.0[..]);
            }
        }
    }

    /// serde hands a byte vector over one element at a time; gathered or not, the digest is
    /// blake3 over the bincode encoding of the whole value.
    #[test]
    fn serde_byte_vectors_digest_like_their_encoding() {
        let seed = seed("f");
        let value: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
        let mut builder = KeyBuilder::new(&seed);
        builder.serde(&value);
        let mut stream = b"s".to_vec();
        stream.extend(bincode::serde::encode_to_vec(&value, bincode::config::standard()).unwrap());
        let expected = Key(*blake3::keyed_hash(seed.digest(), &stream).as_bytes());
        assert_eq!(builder.finish(), Some(expected));
    }

    #[test]
    fn byte_sequences_give_the_material_serde_gives() {
        let seed = seed("f");
        for len in [0usize, 1, 40, 250, 251, 3000, 70_000] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let by_serde = || {
                let mut builder = KeyBuilder::new(&seed);
                builder.serde(&value);
                builder.finish_call().unwrap()
            };
            let mut builder = KeyBuilder::new(&seed);
            builder.byte_sequence(&value);
            let at_once = builder.finish_call().unwrap();
            assert_eq!(at_once.local(), by_serde().local(), "{len} bytes");
            assert_eq!(at_once.digest(), by_serde().digest(), "{len} bytes");
        }
    }

    #[test]
    fn integers_give_the_material_serde_gives() {
        let seed = seed("f");
        fn check<I: Integer + serde::Serialize + std::fmt::Debug>(seed: &Seed, value: I) {
            let mut at_once = KeyBuilder::new(seed);
            at_once.integer(value);
            let mut by_serde = KeyBuilder::new(seed);
            by_serde.serde(&value);
            let (at_once, by_serde) = (at_once.finish_call().unwrap(), by_serde.finish_call().unwrap());
            assert_eq!(at_once.local(), by_serde.local(), "{value:?}");
        }
        for v in [0u64, 250, 251, 65_535, 65_536, u32::MAX as u64, u64::MAX] {
            check(&seed, v);
            check(&seed, v as usize);
            check(&seed, u128::from(v) << 1);
            check(&seed, v as u32);
            check(&seed, v as u16);
            check(&seed, v as u8);
        }
        for v in [0i64, -1, 1, -126, 126, i64::MIN, i64::MAX] {
            check(&seed, v);
            check(&seed, v as isize);
            check(&seed, i128::from(v) * 3);
            check(&seed, v as i32);
            check(&seed, v as i16);
            check(&seed, v as i8);
        }
        check(&seed, true);
        check(&seed, false);
    }

    #[test]
    fn local_keys_differ_with_seed_and_arguments() {
        let key = |seed: &Seed, n: u64| {
            let mut builder = KeyBuilder::new(seed);
            builder.serde(&n);
            builder.finish_call().unwrap().local().to_vec()
        };
        let (f, g) = (seed("f"), seed("g"));
        assert_eq!(key(&f, 7), key(&f, 7));
        assert_ne!(key(&f, 7), key(&f, 8));
        assert_ne!(key(&f, 7), key(&g, 7));
    }

    #[test]
    fn unusable_builder_gives_no_key() {
        let seed = seed("f");
        let unusable = || {
            let mut builder = KeyBuilder::new(&seed);
            builder.serde(&1u8);
            builder.invalidate();
            builder
        };
        assert!(unusable().finish_call().is_none());
        assert!(unusable().finish().is_none());
    }
}
