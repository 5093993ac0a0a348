//! Versioned stored shapes and their migrations.
//!
//! A shape that is written to disk, to the log, to a snapshot or a backup is a format: a build
//! must read every earlier version of it. Each such shape implements [`Migrate`]: its bytes are a
//! version byte and then its bincode body, and it names the shape it replaced
//! ([`Migrate::Previous`]) and how to turn one into itself ([`Migrate::migrate`]). [`decode`]
//! reads the version byte and walks back along the chain until a version matches, then migrates
//! forward one step at a time, so a build reads every version back to the first it supports and
//! each step is written, and tested, once. This is Garage's `util/migrate.rs` pattern.
//!
//! The frozen earlier shapes live in `formats/v{N}.rs`; `docs/ARCHITECTURE.md` says how to add a
//! field, a variant or an entity.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A stored shape with a version, and the shape it replaced.
pub trait Migrate: Serialize + DeserializeOwned {
    /// The version byte written before the body. Each step of a chain has a new one.
    const VERSION: u8;
    /// The shape this one replaced; [`NoPrevious`] for the oldest one still read.
    type Previous: Migrate;
    /// The current shape of what was written as the previous one.
    fn migrate(previous: Self::Previous) -> Self;
}

/// The end of a chain: no earlier version is read.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum NoPrevious {}

impl Migrate for NoPrevious {
    /// Never written: no shape has version 0.
    const VERSION: u8 = 0;
    type Previous = NoPrevious;
    fn migrate(previous: NoPrevious) -> Self {
        previous
    }
}

/// Bytes that no version of a shape reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Empty bytes: no version byte.
    Empty,
    /// A version this build does not know: written by a newer build, or not this shape at all.
    UnknownVersion { found: u8, newest: u8 },
    /// The version is known but the body does not decode as it.
    Body { version: u8, reason: String },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Empty => write!(f, "no version byte"),
            DecodeError::UnknownVersion { found, newest } => write!(
                f,
                "format version {found} is unknown to this build, which reads up to {newest}; \
                 was it written by a newer Roomraft?"
            ),
            DecodeError::Body { version, reason } => {
                write!(f, "format version {version} does not decode: {reason}")
            }
        }
    }
}

/// `value` as its current version: the version byte, then the bincode body.
pub fn encode<T: Migrate>(value: &T) -> Vec<u8> {
    let mut bytes = vec![T::VERSION];
    bincode::serialize_into(&mut bytes, value).expect("in-memory values serialize");
    bytes
}

/// Reads bytes written as any version of `T` this build knows, migrated to the current one.
pub fn decode<T: Migrate>(bytes: &[u8]) -> Result<T, DecodeError> {
    let Some(&version) = bytes.first() else {
        return Err(DecodeError::Empty);
    };
    decode_as(version, &bytes[1..]).map_err(|e| match e {
        DecodeError::UnknownVersion { found, .. } => DecodeError::UnknownVersion {
            found,
            newest: T::VERSION,
        },
        other => other,
    })
}

fn decode_as<T: Migrate>(version: u8, body: &[u8]) -> Result<T, DecodeError> {
    if T::VERSION == 0 {
        // Past the oldest version read.
        return Err(DecodeError::UnknownVersion {
            found: version,
            newest: 0,
        });
    }
    if version == T::VERSION {
        return bincode::deserialize(body).map_err(|e| DecodeError::Body {
            version,
            reason: e.to_string(),
        });
    }
    if version > T::VERSION {
        return Err(DecodeError::UnknownVersion {
            found: version,
            newest: T::VERSION,
        });
    }
    decode_as::<T::Previous>(version, body).map(T::migrate)
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::{decode, encode, DecodeError, Migrate, NoPrevious};

    // A shape that gained a field, then had one renamed and retyped: three versions.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct RoomV1 {
        name: String,
        capacity: u32,
    }
    impl Migrate for RoomV1 {
        const VERSION: u8 = 1;
        type Previous = NoPrevious;
        fn migrate(p: NoPrevious) -> Self {
            match p {}
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct RoomV2 {
        name: String,
        capacity: u32,
        hire_price_pence: Option<u64>,
    }
    impl Migrate for RoomV2 {
        const VERSION: u8 = 2;
        type Previous = RoomV1;
        fn migrate(p: RoomV1) -> Self {
            RoomV2 {
                name: p.name,
                capacity: p.capacity,
                hire_price_pence: None,
            }
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Room {
        name: String,
        seats: u64,
        hire_price_pence: Option<u64>,
    }
    impl Migrate for Room {
        const VERSION: u8 = 3;
        type Previous = RoomV2;
        fn migrate(p: RoomV2) -> Self {
            Room {
                name: p.name,
                seats: p.capacity.into(),
                hire_price_pence: p.hire_price_pence,
            }
        }
    }

    #[test]
    fn every_earlier_version_is_read_and_migrated_step_by_step() {
        let v1 = encode(&RoomV1 {
            name: "Hall".into(),
            capacity: 200,
        });
        let v2 = encode(&RoomV2 {
            name: "Hall".into(),
            capacity: 200,
            hire_price_pence: Some(4_500),
        });
        assert_eq!((v1[0], v2[0]), (1, 2));
        assert_eq!(
            decode::<Room>(&v1).unwrap(),
            Room {
                name: "Hall".into(),
                seats: 200,
                hire_price_pence: None
            }
        );
        assert_eq!(decode::<Room>(&v2).unwrap().hire_price_pence, Some(4_500));
        let now = Room {
            name: "Gym".into(),
            seats: 80,
            hire_price_pence: None,
        };
        assert_eq!(decode::<Room>(&encode(&now)).unwrap(), now);
        // An older build reads its own version and refuses a newer one, saying so.
        assert_eq!(decode::<RoomV2>(&v1).unwrap().capacity, 200);
        let newer = decode::<RoomV2>(&encode(&now)).unwrap_err();
        assert_eq!(
            newer,
            DecodeError::UnknownVersion {
                found: 3,
                newest: 2
            }
        );
        assert!(newer.to_string().contains("newer Roomraft"));
    }

    #[test]
    fn bytes_no_version_reads_are_refused_with_the_reason() {
        assert_eq!(decode::<Room>(&[]).unwrap_err(), DecodeError::Empty);
        assert!(matches!(
            decode::<Room>(&[0, 1, 2]).unwrap_err(),
            DecodeError::UnknownVersion { found: 0, .. }
        ));
        assert!(matches!(
            decode::<Room>(&[3, 0xff]).unwrap_err(),
            DecodeError::Body { version: 3, .. }
        ));
    }
}
