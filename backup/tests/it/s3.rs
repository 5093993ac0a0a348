//! Against a real S3-protocol server: moto_server (PyPI `moto[server]`), which the test command
//! installs, started on loopback for this test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use roomraft_backup::{
    backup_id, list, prune, verify, write_backup, Destination, S3Options, Trigger,
};

use crate::{keyring, source};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_moto(port: u16) -> Server {
    let child = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server must be installed (scripts/test.sh installs moto[server] with pip)");
    let server = Server(child);
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/moto-api/"))
            .send()
            .await
        {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not answer on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server
}

#[tokio::test]
async fn a_multipart_backup_round_trips_through_a_real_s3_server_and_prunes() {
    let port = 23900;
    let _server = start_moto(port).await;
    // Buckets are made by the operator; here, by a plain S3 CreateBucket call.
    let r = reqwest::Client::new()
        .put(format!("http://127.0.0.1:{port}/school-backups"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let s3 = S3Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("eu-west-2".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
    };
    let dest = Destination::open("s3://school-backups/roomraft/prod", &s3).unwrap();
    let keys = keyring();
    // Incompressible, so the archive spans several 8 MiB parts.
    let src = source(99, 20_000, 1024, true);
    let id = backup_id(Timestamp::now(), Trigger::Manual);
    let m = write_backup(
        &dest,
        &keys,
        src,
        &id,
        Trigger::Manual,
        Timestamp::now(),
        None,
    )
    .await
    .unwrap();
    assert!(m.archive_bytes > 16 << 20, "{m:?}");
    let listed = list(&dest, &keys).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest.as_ref(), Some(&m));
    assert_eq!(verify(&dest, &keys, &id).await.unwrap(), m);

    // The objects sit under the prefix.
    let body = reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{port}/school-backups?list-type=2&prefix=roomraft/prod/"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains(&format!("roomraft/prod/{id}.archive")),
        "{body}"
    );
    assert!(
        body.contains(&format!("roomraft/prod/{id}.manifest")),
        "{body}"
    );

    let report = prune(
        &dest,
        &keys,
        jiff::SignedDuration::from_hours(1),
        Timestamp::now(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.kept_newest_verified.as_deref(), Some(id.as_str()));
    assert!(report.deleted.is_empty());
}
