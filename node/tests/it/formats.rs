//! Formats written by earlier builds (`node/tests/fixtures/<release>/`, made by the
//! `format_fixtures` example of that build): the current build decodes their log commands, loads
//! their records, and applying the same commands gives byte for byte the outcomes and records
//! that build gave, whatever rules were added since.

use roomraft_cluster::{App, WriteSet};
use roomraft_node::domain::{Bookings, LogCommand};

/// Every release whose fixtures are committed, oldest first.
const RELEASES: &[&str] = &["v0.1-4a6e50d"];

fn read<T: serde::de::DeserializeOwned>(release: &str, file: &str) -> T {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(release)
        .join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bincode::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn earlier_builds_log_and_records_are_read_and_applied_as_they_were() {
    for release in RELEASES {
        let log: Vec<(u64, Vec<u8>)> = read(release, "log.bin");
        let outcomes: Vec<Vec<u8>> = read(release, "outcomes.bin");
        let records: Vec<(Vec<u8>, Vec<u8>)> = read(release, "records.bin");
        assert!(log.len() >= 10 && log.len() == outcomes.len(), "{release}");
        let loaded = Bookings::load(&mut records.clone().into_iter())
            .unwrap_or_else(|e| panic!("{release}: its records do not load: {e}"));
        let mut replayed = Bookings::default();
        for ((index, bytes), want) in log.iter().zip(&outcomes) {
            let cmd: LogCommand = bincode::deserialize(bytes)
                .unwrap_or_else(|e| panic!("{release}: entry {index} does not decode: {e}"));
            let got = replayed.apply(*index, cmd, &mut WriteSet::default());
            assert_eq!(
                &bincode::serialize(&got).unwrap(),
                want,
                "{release}: entry {index} applied otherwise than it was: {got:?}"
            );
        }
        let mut now = replayed.records();
        now.sort();
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let differ: Vec<String> = now
            .iter()
            .filter(|r| !records.contains(r))
            .map(|(k, _)| format!("now {}", show(k)))
            .chain(
                records
                    .iter()
                    .filter(|r| !now.contains(r))
                    .map(|(k, _)| format!("then {}", show(k))),
            )
            .collect();
        assert!(
            differ.is_empty(),
            "{release}: records differ after replaying its log: {differ:?}"
        );
        assert_eq!(replayed, loaded, "{release}");
    }
}
