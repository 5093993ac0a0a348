use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp, ToSpan};
use roomraft_backup::{
    backup_id, choose, list, prune, read_backup, verify, write_backup, BackupError, Destination,
    Keyring, MasterKey, S3Options, Trigger,
};

use crate::{at, keyring, source};

fn folder() -> (tempfile::TempDir, Destination) {
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::open(dir.path().to_str().unwrap(), &S3Options::default()).unwrap();
    (dir, dest)
}

/// The ids of the backups `dest` lists, oldest first.
async fn listed_ids(dest: &Destination, keys: &Keyring) -> Vec<String> {
    list(dest, keys)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect()
}

async fn take(dest: &Destination, keys: &Keyring, when: Timestamp, index: u64) -> String {
    let id = backup_id(when, Trigger::Scheduled);
    write_backup(
        dest,
        keys,
        source(index, 20, 64, false),
        &id,
        Trigger::Scheduled,
        when,
        None,
    )
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn a_backup_round_trips_every_record_and_lists_with_its_manifest() {
    let (_dir, dest) = folder();
    let keys = keyring();
    let src = source(4242, 5000, 200, false);
    let expected = src.records.clone();
    let id = backup_id(at("2026-11-23T14:00:00Z"), Trigger::Scheduled);
    let m = write_backup(
        &dest,
        &keys,
        src,
        &id,
        Trigger::Scheduled,
        Timestamp::now(),
        None,
    )
    .await
    .unwrap();
    assert_eq!((m.index, m.term, m.records), (4242, 3, 5000));
    assert_eq!(m.id, "20261123T140000Z-scheduled");
    assert_eq!(m.key_id, keys.current().id());
    assert!(
        m.archive_bytes < m.plaintext_bytes / 3,
        "zstd shrinks repetitive records: {m:?}"
    );

    let listed = list(&dest, &keys).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].manifest.as_ref(), Some(&m));
    assert!(listed[0].problem.is_none());

    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let header = read_backup(
        &dest,
        &keys,
        &m,
        move |k, v| {
            sink.lock().unwrap().push((k, v));
            Ok(())
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(header.index, 4242);
    assert_eq!(*got.lock().unwrap(), expected);
    assert_eq!(verify(&dest, &keys, &id).await.unwrap(), m);
    assert_eq!(choose(&dest, &keys, None, None).await.unwrap(), m);
}

#[tokio::test]
async fn tampered_truncated_wrong_key_and_unknown_version_are_each_refused_with_their_own_error() {
    let (dir, dest) = folder();
    let keys = keyring();
    let src = source(7, 3000, 1000, true);
    let id = "20261123T150000Z-manual";
    write_backup(
        &dest,
        &keys,
        src,
        id,
        Trigger::Manual,
        Timestamp::now(),
        None,
    )
    .await
    .unwrap();
    let path = dir.path().join(format!("{id}.archive"));
    let original = std::fs::read(&path).unwrap();
    assert!(original.len() > 2 << 20, "spans several segments");

    let mut flipped = original.clone();
    let at = original.len() / 2;
    flipped[at] ^= 0x40;
    std::fs::write(&path, &flipped).unwrap();
    let err = verify(&dest, &keys, id).await.unwrap_err();
    assert!(matches!(err, BackupError::Tampered { segment: 1 }), "{err}");

    std::fs::write(&path, &original[..original.len() - 1000]).unwrap();
    let err = verify(&dest, &keys, id).await.unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::Tampered { .. } | BackupError::Truncated { .. }
        ),
        "{err}"
    );
    // Cut exactly after the second segment: the final segment is missing.
    let seg = (1 << 20) + 16;
    let hlen = 8 + 2 + 1 + 1 + keys.current().id().len() + 32 + 7 + 4 + 16;
    std::fs::write(&path, &original[..hlen + 2 * seg]).unwrap();
    let err = verify(&dest, &keys, id).await.unwrap_err();
    assert!(
        matches!(err, BackupError::Truncated { segments: 2 }),
        "{err}"
    );

    std::fs::write(&path, &original).unwrap();
    let impostor = Keyring::new(
        MasterKey::from_parts(keys.current().id().to_string(), [9; 32]),
        vec![],
    );
    let err = verify(&dest, &impostor, id).await.unwrap_err();
    assert!(matches!(err, BackupError::WrongKey(_)), "{err}");
    let err = verify(&dest, &keyring(), id).await.unwrap_err();
    assert!(matches!(err, BackupError::UnknownKey(_)), "{err}");

    let mut v9 = original.clone();
    v9[8..10].copy_from_slice(&9u16.to_be_bytes());
    std::fs::write(&path, &v9).unwrap();
    let err = verify(&dest, &keys, id).await.unwrap_err();
    assert!(matches!(err, BackupError::UnsupportedVersion(9)), "{err}");

    // The manifest is protected the same way.
    std::fs::write(&path, &original).unwrap();
    let mpath = dir.path().join(format!("{id}.manifest"));
    let mut m = std::fs::read(&mpath).unwrap();
    let last = m.len() - 1;
    m[last] ^= 1;
    std::fs::write(&mpath, &m).unwrap();
    let err = verify(&dest, &keys, id).await.unwrap_err();
    assert!(matches!(err, BackupError::Tampered { segment: 0 }), "{err}");
    let listed = list(&dest, &keys).await.unwrap();
    assert!(listed[0].manifest.is_none());
    assert_eq!(listed[0].key_id.as_deref(), Some(keys.current().id()));
    assert!(listed[0].problem.as_ref().unwrap().contains("tampered"));
}

#[tokio::test]
async fn a_rotated_key_encrypts_new_backups_while_old_ones_stay_readable() {
    let (_dir, dest) = folder();
    let old = MasterKey::generate();
    let new = MasterKey::from_parts(format!("{}-2", old.id()), [5; 32]);
    let before = Keyring::new(old.clone(), vec![]);
    let a = take(&dest, &before, at("2026-11-01T00:00:00Z"), 1).await;
    let after = Keyring::new(new.clone(), vec![old.clone()]);
    let b = take(&dest, &after, at("2026-11-02T00:00:00Z"), 2).await;
    assert_eq!(verify(&dest, &after, &a).await.unwrap().key_id, old.id());
    assert_eq!(verify(&dest, &after, &b).await.unwrap().key_id, new.id());
    // Retiring the old key leaves its backups unreadable, and says which key they need.
    let retired = Keyring::new(new, vec![]);
    let err = verify(&dest, &retired, &a).await.unwrap_err();
    assert!(
        matches!(err, BackupError::UnknownKey(ref id) if id == old.id()),
        "{err}"
    );
}

#[tokio::test]
async fn retention_over_seventy_simulated_days_keeps_sixty_one_and_never_the_newest_verified() {
    let (dir, dest) = folder();
    let keys = keyring();
    let retention = SignedDuration::from_hours(61 * 24);
    let start = at("2026-01-01T00:00:00Z");
    let mut taken: Vec<(String, Timestamp)> = Vec::new();
    // Every six hours for 70 days, pruning once a simulated day as the schedule would.
    for step in 0..(70 * 4) {
        let now = start + (step * 6).hours();
        let id = take(&dest, &keys, now, step as u64 + 1).await;
        taken.push((id, now));
        if step % 4 == 3 {
            let report = prune(&dest, &keys, retention, now, None).await.unwrap();
            assert_eq!(
                report.kept_newest_verified.as_deref(),
                Some(taken.last().unwrap().0.as_str())
            );
            let left = listed_ids(&dest, &keys).await;
            let expected: Vec<String> = taken
                .iter()
                .filter(|(_, t)| *t >= now - retention)
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(left, expected, "day {}", step / 4);
        }
    }
    let left = list(&dest, &keys).await.unwrap();
    assert_eq!(
        left.len(),
        61 * 4 + 1,
        "61 days of 6-hourly backups, both ends included"
    );

    // Backups stop; 70 more days pass, and the newest is corrupt: the newest that verifies stays.
    let newest = &taken.last().unwrap().0;
    let path = dir.path().join(format!("{newest}.archive"));
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len() - 1;
    bytes[n] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let later = taken.last().unwrap().1 + (70 * 24).hours();
    let report = prune(&dest, &keys, retention, later, None).await.unwrap();
    let second = &taken[taken.len() - 2].0;
    assert_eq!(report.kept_newest_verified.as_ref(), Some(second));
    let left = listed_ids(&dest, &keys).await;
    assert_eq!(left, vec![second.clone()]);

    // With nothing that verifies, prune deletes nothing.
    let path = dir.path().join(format!("{second}.archive"));
    std::fs::write(&path, b"RRBACKUP garbage").unwrap();
    let err = prune(&dest, &keys, retention, later, None)
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NothingVerifies(1)), "{err}");
}

#[tokio::test]
async fn an_archive_without_its_manifest_is_not_a_backup_and_prune_removes_it() {
    let (dir, dest) = folder();
    let keys = keyring();
    let good = take(&dest, &keys, Timestamp::now(), 1).await;
    std::fs::write(
        dir.path().join("20200101T000000Z-scheduled.archive"),
        b"partial",
    )
    .unwrap();
    let listed = list(&dest, &keys).await.unwrap();
    assert_eq!(
        listed.iter().map(|l| &l.id).collect::<Vec<_>>(),
        vec![&good]
    );
    let report = prune(
        &dest,
        &keys,
        SignedDuration::from_hours(24),
        Timestamp::now() + 2.hours(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        report.orphans_deleted,
        vec!["20200101T000000Z-scheduled".to_string()]
    );
    assert!(!dir
        .path()
        .join("20200101T000000Z-scheduled.archive")
        .exists());
}

#[tokio::test]
async fn choose_finds_the_newest_before_a_time() {
    let (_dir, dest) = folder();
    let keys = keyring();
    let a = take(&dest, &keys, at("2026-11-01T10:00:00Z"), 1).await;
    let b = take(&dest, &keys, at("2026-11-01T11:00:00Z"), 2).await;
    assert_eq!(
        choose(&dest, &keys, None, Some(at("2026-11-01T10:30:00Z")))
            .await
            .unwrap()
            .id,
        a
    );
    assert_eq!(choose(&dest, &keys, None, None).await.unwrap().id, b);
    assert_eq!(choose(&dest, &keys, Some(&a), None).await.unwrap().index, 1);
    let err = choose(&dest, &keys, None, Some(at("2026-10-01T00:00:00Z")))
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NotFound(_)), "{err}");
    let err = choose(&dest, &keys, Some("nope"), None).await.unwrap_err();
    assert!(matches!(err, BackupError::NotFound(_)), "{err}");
}
