//! Byte strings in bincode, written as bytes.
//!
//! serde writes a `Vec<u8>` as a sequence, one call per byte, and reads it back the same way.
//! bincode's encoding of a byte string is the same as that sequence's (a `u64` length, then the
//! bytes), so writing byte strings as bytes (`serde_bytes`) keeps every log entry, journal record,
//! snapshot and peer message readable both ways, and copies each string in one go: about 16 times
//! faster for a batch of commands (docs/benchmarks.md).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::{ByteBuf, Bytes};

/// Records: each key with its value.
pub(crate) type Records = Vec<(Vec<u8>, Vec<u8>)>;
/// Changes: each key set to a value, or deleted.
pub(crate) type ChangeList = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// `with` for a `Vec<Vec<u8>>`.
pub(crate) mod byte_strings {
    use super::{ByteBuf, Bytes, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|b| Bytes::new(b)))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = Vec::<ByteBuf>::deserialize(d)?;
        Ok(v.into_iter().map(ByteBuf::into_vec).collect())
    }
}

/// `with` for a `Vec<(Vec<u8>, Vec<u8>)>`: records, key and value.
pub(crate) mod byte_pairs {
    use super::{ByteBuf, Bytes, Deserialize, Deserializer, Records, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        v: &[(Vec<u8>, Vec<u8>)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(k, v)| (Bytes::new(k), Bytes::new(v))))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Records, D::Error> {
        let v = Vec::<(ByteBuf, ByteBuf)>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect())
    }
}

/// `with` for a `Vec<(Vec<u8>, Option<Vec<u8>>)>`: changes, a key set to a value or deleted.
pub(crate) mod byte_changes {
    use super::{ByteBuf, Bytes, ChangeList, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        v: &[(Vec<u8>, Option<Vec<u8>>)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            v.iter()
                .map(|(k, v)| (Bytes::new(k), v.as_deref().map(Bytes::new))),
        )
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ChangeList, D::Error> {
        let v = Vec::<(ByteBuf, Option<ByteBuf>)>::deserialize(d)?;
        Ok(v.into_iter()
            .map(|(k, v)| (k.into_vec(), v.map(ByteBuf::into_vec)))
            .collect())
    }
}

/// A list of byte strings on its own: a batch entry's commands, or its outcomes.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct ByteStrings(#[serde(with = "byte_strings")] pub(crate) Vec<Vec<u8>>);

/// An apply call's changes, borrowed, written as a journal record.
pub(crate) struct ChangesRef<'a>(pub(crate) &'a [(Vec<u8>, Option<Vec<u8>>)]);

impl Serialize for ChangesRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        byte_changes::serialize(self.0, s)
    }
}

/// An apply call's changes, read back from a journal record.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct Changes(
    #[serde(deserialize_with = "byte_changes::deserialize")]
    pub(crate)  Vec<(Vec<u8>, Option<Vec<u8>>)>,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{decode, encode};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Pairs(#[serde(with = "byte_pairs")] Vec<(Vec<u8>, Vec<u8>)>);

    // Data written before this module (plain `Vec<u8>`s) must read back, and data written
    // after it must read as plain `Vec<u8>`s: the same bytes on disk and on the wire.
    #[test]
    fn byte_strings_encode_exactly_as_plain_byte_vectors() {
        let strings = vec![b"one".to_vec(), Vec::new(), vec![0xff; 300]];
        let plain = encode(&strings);
        assert_eq!(encode(&ByteStrings(strings.clone())), plain);
        assert_eq!(decode::<ByteStrings>("t", &plain).unwrap().0, strings);

        let changes = vec![
            (b"k".to_vec(), Some(vec![7; 200])),
            (b"gone".to_vec(), None),
        ];
        let plain = encode(&changes);
        assert_eq!(encode(&ChangesRef(&changes)), plain);
        assert_eq!(decode::<Changes>("t", &plain).unwrap().0, changes);

        let pairs = vec![(b"a".to_vec(), b"1".to_vec()), (Vec::new(), vec![9; 129])];
        let plain = encode(&pairs);
        assert_eq!(encode(&Pairs(pairs.clone())), plain);
        assert_eq!(decode::<Pairs>("t", &plain).unwrap().0, pairs);
    }

    #[test]
    fn a_cut_byte_string_is_an_error_not_a_short_value() {
        let mut bytes = encode(&ByteStrings(vec![vec![1; 64]]));
        bytes.truncate(bytes.len() - 1);
        assert!(decode::<ByteStrings>("t", &bytes).is_err());
    }
}
