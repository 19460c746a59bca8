//! [`TextMap`]: a map from short texts (words, n-grams) to ids, tuned for
//! the many tiny lookups of prediction.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use rustc_hash::FxHashMap;

/// Texts of at most 8 bytes (most words and n-grams) are packed into a `u64`
/// (bytes in order, zero padded) and looked up by that number, which avoids
/// hashing and comparing strings; longer texts go to an ordinary map. The
/// packing is unambiguous because the texts stored here never contain a zero
/// byte (they are made of letters, digits and spaces).
#[derive(Debug, Clone, Default)]
pub(crate) struct TextMap {
    short: HashMap<u64, u32, BuildHasherDefault<PackedKeyHasher>>,
    long: FxHashMap<Box<str>, u32>,
}

const PACKED_BYTES: usize = 8;

/// Hashes a packed key with MurmurHash3's 64-bit finaliser (`fmix64`), which
/// spreads every input bit over the whole hash. A plain multiply (FxHash)
/// leaves keys that differ only in their last bytes in the same buckets.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PackedKeyHasher {
    key: u64,
}

impl Hasher for PackedKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.key = self.key.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.key = key;
    }

    fn finish(&self) -> u64 {
        let mut hash = self.key;
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^ (hash >> 33)
    }
}

fn pack(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    if bytes.len() > PACKED_BYTES {
        return None;
    }
    // Shifts rather than a copy into a byte array: a short copy followed by
    // an 8-byte read stalls the processor (store forwarding fails).
    let mut packed = 0u64;
    for (index, &byte) in bytes.iter().enumerate() {
        packed |= u64::from(byte) << (8 * index);
    }
    Some(packed)
}

impl TextMap {
    pub fn get(&self, text: &str) -> Option<u32> {
        match pack(text) {
            Some(key) => self.short.get(&key).copied(),
            None => self.long.get(text).copied(),
        }
    }

    /// Inserts unless present; returns the id now stored for `text`.
    pub fn get_or_insert(&mut self, text: &str, id: u32) -> u32 {
        match pack(text) {
            Some(key) => *self.short.entry(key).or_insert(id),
            None => *self.long.entry(text.into()).or_insert(id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_texts_are_found() {
        let mut map = TextMap::default();
        assert_eq!(map.get_or_insert(" inv", 1), 1);
        assert_eq!(map.get_or_insert("invoice", 2), 2);
        assert_eq!(map.get_or_insert("invoices!", 3), 3);
        assert_eq!(map.get_or_insert("größe", 4), 4);
        assert_eq!(map.get_or_insert("invoice", 9), 2);
        assert_eq!(map.get(" inv"), Some(1));
        assert_eq!(map.get("invoice"), Some(2));
        assert_eq!(map.get("invoices!"), Some(3));
        assert_eq!(map.get("größe"), Some(4));
        assert_eq!(map.get(" in"), None);
        assert_eq!(map.get("invoice "), None);
    }
}
