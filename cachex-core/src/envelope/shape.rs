//! The structural fingerprint of a stored type: what makes a value written by one deploy a
//! miss in another whose type has the same name and a different shape.
//!
//! The shape is traced through the type's `Deserialize` impl with `serde-reflection`: every
//! struct, enum and newtype it reaches, with field names and their order, variant names and
//! their order, primitive kinds (`i64` is not `u64`, `u32` is not `u64`), options, sequences,
//! maps, tuples and nesting (recursive types included). Any change to those is a miss:
//! swapped, added, removed or renamed fields, reordered or added variants, a changed integer
//! width or signedness, a container renamed.
//!
//! What decodes by design: changes the shape does not show, such as a custom `Deserialize`
//! whose meaning changes behind the same primitive, or a value's units. Bump `version` on the
//! binding for those. A type whose `Deserialize` cannot be traced (it validates its input, like
//! a URL or a date parsed from a string, or asks for `deserialize_any`) falls back to its name
//! and its size in memory, for the whole value: `version` is the switch there too.

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

use serde::de::DeserializeOwned;
use serde_reflection::{FormatHolder, Samples, Tracer, TracerConfig};

use crate::passthrough::PassThrough;

/// A type's 128-bit structural fingerprint, as stored in every envelope.
///
/// ```
/// use cachex_core::envelope::fingerprint;
/// #[derive(serde::Deserialize)]
/// struct User { name: String, age: u32 }
/// assert_eq!(fingerprint::<User>(), fingerprint::<User>());
/// assert_ne!(fingerprint::<u64>(), fingerprint::<i64>());
/// assert_ne!(fingerprint::<User>(), fingerprint::<(String, u32)>());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 16]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// The structural fingerprint of `T` (see the module docs). Traced once per type and process;
/// later calls on a thread read a per-thread table.
pub fn fingerprint<T: DeserializeOwned + 'static>() -> Fingerprint {
    thread_local! {
        static KNOWN: RefCell<HashMap<TypeId, Fingerprint, PassThrough>> = RefCell::default();
    }
    let id = TypeId::of::<T>();
    KNOWN
        .try_with(|known| {
            if let Some(&fingerprint) = known.borrow().get(&id) {
                return fingerprint;
            }
            let fingerprint = shared::<T>();
            known.borrow_mut().insert(id, fingerprint);
            fingerprint
        })
        .unwrap_or_else(|_| shared::<T>())
}

/// The fingerprint from the process-wide table, traced on first use.
fn shared<T: DeserializeOwned + 'static>() -> Fingerprint {
    static TRACED: Mutex<Option<HashMap<TypeId, Fingerprint>>> = Mutex::new(None);
    let id = TypeId::of::<T>();
    if let Some(&fingerprint) = TRACED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .get(&id)
    {
        return fingerprint;
    }
    // Traced outside the lock: a Deserialize impl may itself ask for a fingerprint.
    let fingerprint = compute::<T>();
    TRACED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(HashMap::new)
        .insert(id, fingerprint);
    fingerprint
}

fn compute<T: DeserializeOwned + 'static>() -> Fingerprint {
    let mut hasher = blake3::Hasher::new();
    match catch_unwind(AssertUnwindSafe(shape::<T>)).ok().flatten() {
        Some(shape) => {
            hasher.update(b"cachex shape v1\0");
            hasher.update(&shape);
        }
        None => {
            hasher.update(b"cachex name and size v1\0");
            hasher.update(std::any::type_name::<T>().as_bytes());
            hasher.update(&(std::mem::size_of::<T>() as u64).to_le_bytes());
        }
    }
    let mut first = [0u8; 16];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Fingerprint(first)
}

/// Passes over the type before giving up on finding every variant of its enums (each pass
/// reaches at least one variant not seen before).
const MAX_PASSES: usize = 1024;

/// The traced shape of `T`, serialized: its root format and every container it reaches.
/// `None` when the type cannot be traced.
///
/// serde-reflection explores one new variant of an enum per pass and then marks it
/// incomplete; an enum nested in `T` is only explored further once that mark is reset. The
/// names of such enums are learnt from the registry's `MissingVariants` answer, and the
/// tracing starts over resetting their marks after every pass until none is left.
fn shape<T: DeserializeOwned>() -> Option<Vec<u8>> {
    let samples = Samples::new();
    let mut enums: Vec<String> = Vec::new();
    let mut passes = 0;
    loop {
        let mut tracer = Tracer::new(TracerConfig::default());
        let mut root = loop {
            passes += 1;
            if passes > MAX_PASSES {
                return None;
            }
            let (root, _values) = tracer.trace_type::<T>(&samples).ok()?;
            let mut pending = false;
            for name in &enums {
                pending |= tracer.check_incomplete_enum(name).is_some();
            }
            if !pending {
                break root;
            }
        };
        match tracer.registry() {
            Ok(registry) => {
                root.normalize().ok()?;
                return bincode::serde::encode_to_vec((&root, &registry), bincode::config::standard()).ok();
            }
            Err(serde_reflection::Error::MissingVariants(names)) if names.iter().any(|n| !enums.contains(n)) => {
                enums.extend(names);
            }
            Err(_) => return None,
        }
    }
}
