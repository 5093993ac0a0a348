//! The nested [`Record`] must encode exactly as the flat enum it replaced: every data directory,
//! snapshot and backup written before depends on it. The fixtures of earlier releases
//! (`node/tests/it/formats.rs`) check that byte for byte for every kind they hold; these check
//! the table itself.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Record, NAMES};
use crate::analytics::{DayStats, MonthKey, Totals, Visitor, VisitorKey};
use crate::apply::{CoreRecord, Dedup};
use crate::booking::BookingRecord;
use crate::model::{
    ApiToken, AuditEntry, BackupSlot, Booking, BookingStatus, Calendar, ClusterIdentity,
    Department, Enquiry, Feed, Lesson, Quotas, Room, Series, Session, SignInGuard, Site, Tenant,
    TenantId, User,
};

/// The record enum as releases up to 0.2 defined it.
#[derive(Debug, Serialize, Deserialize)]
enum FlatRecord {
    Tenant(Tenant),
    Room(Room),
    Booking(Booking),
    Token(ApiToken),
    Dedup(String, Dedup),
    Clock(Timestamp),
    User(User),
    Department(Department),
    Session(Session),
    Calendar(TenantId, Calendar),
    Lesson(Lesson),
    Series(Series),
    Feed(Feed),
    Audit(AuditEntry),
    Identity(ClusterIdentity),
    BackupSlot(BackupSlot),
    AnalyticsSalt(Date, String),
    AnalyticsDay(TenantId, Date, DayStats),
    AnalyticsMonth(MonthKey, Totals),
    AnalyticsVisitor(VisitorKey, Visitor),
    Site(Site),
    Enquiry(Enquiry),
    SignInGuard(SignInGuard),
    Quotas(Quotas),
}

/// Every record of a state reads as the flat enum and writes back the same bytes, and reads as
/// the nested one under the same key. The domain's tests call it on the state each one built,
/// so between them every kind is checked.
pub(crate) fn same_as_flat(records: &[(Vec<u8>, Vec<u8>)]) {
    for (key, bytes) in records {
        let what = String::from_utf8_lossy(key);
        assert_eq!(bytes[0], super::STATE_FORMAT, "{what}");
        let flat: FlatRecord = bincode::deserialize(&bytes[1..]).unwrap();
        assert_eq!(bincode::serialize(&flat).unwrap(), bytes[1..], "{what}");
        let nested = Record::decode(bytes).unwrap();
        assert_eq!(
            (nested.key(), nested.encode()),
            (key.clone(), bytes.clone())
        );
    }
}

/// The kinds, in the order releases up to 0.2 declared them in their flat `Record` enum.
const FLAT: &[&str] = &[
    "Tenant",
    "Room",
    "Booking",
    "Token",
    "Dedup",
    "Clock",
    "User",
    "Department",
    "Session",
    "Calendar",
    "Lesson",
    "Series",
    "Feed",
    "Audit",
    "Identity",
    "BackupSlot",
    "AnalyticsSalt",
    "AnalyticsDay",
    "AnalyticsMonth",
    "AnalyticsVisitor",
    "Site",
    "Enquiry",
    "SignInGuard",
    "Quotas",
];

#[test]
fn every_kind_keeps_the_tag_the_flat_enum_gave_it() {
    assert_eq!(NAMES, FLAT);
}

#[test]
fn a_record_is_its_tag_then_its_fields() {
    let at: Timestamp = "2026-12-03T09:00:00Z".parse().unwrap();
    let clock = Record::from(CoreRecord::Clock(at));
    let mut want = vec![super::STATE_FORMAT];
    want.extend(5u32.to_le_bytes());
    want.extend(bincode::serialize(&at).unwrap());
    assert_eq!(clock.encode(), want);

    let booking = Booking {
        id: 7,
        tenant: 1,
        room: 2,
        start: at,
        end: at,
        title: "Year 9 drama".into(),
        notes: String::new(),
        status: BookingStatus::Active,
        created_by: "user:ana".into(),
        created_at: at,
        cancelled_at: None,
        user: Some(3),
        period: Some("P1".into()),
        series: None,
        override_reason: None,
        decided_by: None,
    };
    let record = Record::from(BookingRecord::Booking(booking.clone()));
    let mut want = vec![super::STATE_FORMAT];
    want.extend(2u32.to_le_bytes());
    want.extend(bincode::serialize(&booking).unwrap());
    assert_eq!(record.encode(), want);
    match Record::decode(&want).unwrap() {
        Record::Booking(BookingRecord::Booking(b)) => assert_eq!(b, booking),
        other => panic!("decoded as {other:?}"),
    }
}

#[test]
fn a_record_from_a_newer_build_is_refused_with_a_reason() {
    let mut bytes = vec![super::STATE_FORMAT];
    bytes.extend((NAMES.len() as u32).to_le_bytes());
    let err = Record::decode(&bytes).unwrap_err();
    assert!(err.contains("newer Roomraft"), "{err}");
}
