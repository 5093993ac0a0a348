//! Formats written by earlier builds (`node/tests/fixtures/<release>/`, made by the
//! `format_fixtures` example of that build): the current build decodes their log commands, loads
//! their records, and applying the same commands gives the outcomes and records that build gave
//! (byte for byte while the record format is the one it wrote), whatever rules were added since.

use roomraft_cluster::{App, WriteSet};
use roomraft_node::domain::{Bookings, LogCommand, Outcome, STATE_FORMAT};

use crate::harness::wait_ready;

/// Every release whose fixtures are committed, oldest first.
const RELEASES: &[&str] = &["v0.1-4a6e50d", "v0.2-98adf9a"];

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
            // Outcome bytes are those of the release's record format (2 for every release so far).
            let then: Outcome = bincode::deserialize(want)
                .unwrap_or_else(|e| panic!("{release}: outcome {index} does not decode: {e}"));
            assert_eq!(
                got, then,
                "{release}: entry {index} applied otherwise than it was"
            );
        }
        // The same records under the same keys, each holding the same value as this build reads it.
        let keys = |r: &[(Vec<u8>, Vec<u8>)]| -> Vec<String> {
            let mut k: Vec<String> = r
                .iter()
                .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(&replayed.records()), keys(&records), "{release}");
        // While the record format is the one the release wrote, the bytes are the same too.
        if records
            .iter()
            .all(|(_, v)| v.first() == Some(&STATE_FORMAT))
        {
            let mut now = replayed.records();
            now.sort();
            let differ: Vec<String> = now
                .iter()
                .zip(&records)
                .filter(|(a, b)| a != b)
                .map(|((k, _), _)| String::from_utf8_lossy(k).into_owned())
                .collect();
            assert!(
                differ.is_empty(),
                "{release}: records differ after replaying its log: {differ:?}"
            );
        }
        assert_eq!(replayed, loaded, "{release}");
    }
}

/// Every release whose stopped node is committed (`node/tests/fixtures/<release>/cluster/`, made
/// by `node/tests/fixtures/make-release.sh` with that build), oldest first.
const NODE_RELEASES: &[&str] = &["v0.2-98adf9a"];

/// Copies `from` into `to`, folders and all.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The reads a release's build answered (`reads.txt`, one path a line, answers in `reads/<n>`).
fn recorded_reads(fixture: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(fixture.join("reads.txt"))
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, path)| {
            let answer =
                std::fs::read_to_string(fixture.join("reads").join((i + 1).to_string())).unwrap();
            (path.to_string(), answer)
        })
        .collect()
}

/// Asks node `url` every recorded read and checks it answers as the release did.
async fn answers_as_recorded(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    reads: &[(String, String)],
    what: &str,
) {
    for (path, then) in reads {
        let r = http
            .get(format!("{url}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{what}: GET {path}");
        let now = r.text().await.unwrap();
        match (
            serde_json::from_str::<serde_json::Value>(then),
            serde_json::from_str::<serde_json::Value>(&now),
        ) {
            (Ok(mut then), Ok(mut now)) => {
                if path.starts_with("/api/v1/tokens") {
                    // The reads themselves use the admin token, which stamps when it was last used.
                    for answer in [&mut then, &mut now] {
                        for token in answer.as_array_mut().into_iter().flatten() {
                            token.as_object_mut().unwrap().remove("last_used_at");
                        }
                    }
                }
                assert_eq!(now, then, "{what}: GET {path} answers otherwise")
            }
            _ => assert_eq!(now, *then, "{what}: GET {path} answers otherwise"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn earlier_builds_data_folder_opens_and_their_backup_restores_with_every_record_and_answer_equal(
) {
    use roomraft_node::config::Config;
    use roomraft_node::server::Node;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for release in NODE_RELEASES {
        let fixture = fixtures.join(release);
        let dir = tempfile::tempdir().unwrap();
        let cluster = dir.path().join("cluster");
        copy_tree(&fixture.join("cluster"), &cluster);
        let data = cluster.join("node1/data");
        let (then_index, then_records): (u64, roomraft_cluster::Records) =
            read(release, "state.bin");
        let then = Bookings::load(&mut then_records.into_iter())
            .unwrap_or_else(|e| panic!("{release}: its records do not load: {e}"));

        // The data folder, as the current build opens it: the same state at the same index.
        let (index, records) = roomraft_cluster::stored_records::<Bookings>(&data)
            .unwrap_or_else(|e| panic!("{release}: its data folder does not open: {e}"));
        assert_eq!(index, then_index, "{release}");
        let now = Bookings::load(&mut records.into_iter()).unwrap();
        assert!(
            now == then,
            "{release}: the data folder holds another state"
        );

        // Served by the current build, it answers every read as the release did.
        let reads = recorded_reads(&fixture);
        assert!(reads.len() >= 20, "{release}");
        let token = std::fs::read_to_string(cluster.join("admin.token")).unwrap();
        let token = token.trim();
        let http = roomraft_node::client::https_client(
            &cluster.join("ca.pem"),
            std::time::Duration::from_secs(30),
        )
        .unwrap();
        let config_path = cluster.join("node1/node.toml");
        let mut config = Config::load(&config_path).unwrap();
        config.backup = None;
        let url = format!("https://{}", config.client_listen);
        let node = Node::start(config.clone()).await.unwrap();
        wait_ready(&http, &url, release).await;
        answers_as_recorded(
            &http,
            &url,
            token,
            &reads,
            &format!("{release} data folder"),
        )
        .await;
        node.shutdown().await;
        drop(node);

        // Its backup, restored by the current build into a new cluster, answers the same.
        let restored = dir.path().join("restored");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_roomraft"))
            .args(["restore", "--latest", "--from"])
            .arg(cluster.join("backups"))
            .arg("--key-file")
            .arg(cluster.join("backup.key"))
            .arg("--data-dir")
            .arg(&restored)
            .args(["--node-id", "1"])
            .args(["--peer-addr", &config.cluster.advertise.peer_addr])
            .args(["--client-addr", &config.cluster.advertise.client_addr])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{release}: restore: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        config.cluster.data_dir = restored;
        let node = Node::start(config).await.unwrap();
        wait_ready(&http, &url, release).await;
        answers_as_recorded(&http, &url, token, &reads, &format!("{release} backup")).await;
        node.shutdown().await;
    }
}
