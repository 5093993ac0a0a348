//! Backups end to end against real destinations: a local folder and a real S3-protocol server.

mod local;
mod s3;

use jiff::Timestamp;
use roomraft_backup::{Keyring, MasterKey, Source};

pub fn keyring() -> Keyring {
    Keyring::new(MasterKey::generate(), Vec::new())
}

/// A state of `n` records of roughly `value_bytes` each; `noise` makes them incompressible.
pub fn source(index: u64, n: usize, value_bytes: usize, noise: bool) -> Source {
    use rand::RngCore;
    let mut rng = rand::thread_rng();
    let records = (0..n)
        .map(|i| {
            let key = format!("booking/{i:08}").into_bytes();
            let mut value = vec![b'x'; value_bytes];
            if noise {
                rng.fill_bytes(&mut value);
            } else {
                value[..8].copy_from_slice(&(i as u64).to_be_bytes());
            }
            (key, value)
        })
        .collect();
    Source {
        cluster_id: "c-test".into(),
        index,
        term: 3,
        state_sha256: "0".repeat(64),
        records,
    }
}

pub fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}
