//! A stored record, by business area: each area's folder has its `records.rs` with its enum,
//! its keys and how its records are indexed in memory; this file only joins them.
//!
//! Records are stored as one flat enum (`crate::wire`): the table below fixes each kind's tag,
//! in the order the kinds were first written, so every data directory, snapshot and backup of
//! an earlier release reads unchanged. A new kind takes the next tag; a tag is never reused.

use crate::analytics::{self, AnalyticsRecord};
use crate::apply::{self, CoreRecord};
use crate::booking::{self, BookingRecord};
use crate::codec::{self, Migrate, NoPrevious};
use crate::feeds::{self, FeedRecord};
use crate::people::{self, PeopleRecord};
use crate::school::{self, SchoolRecord};
use crate::system::{self, SystemRecord};
use crate::venue::{self, VenueRecord};
use crate::wire::flat_wire;

/// Version of the record encoding (its [`Migrate::VERSION`]); a change of shape adds one.
pub const STATE_FORMAT: u8 = 2;

/// A persisted record, by business area.
#[derive(Debug, Clone)]
pub(crate) enum Record {
    School(SchoolRecord),
    People(PeopleRecord),
    Booking(BookingRecord),
    Feeds(FeedRecord),
    Venue(VenueRecord),
    Analytics(AnalyticsRecord),
    System(SystemRecord),
    /// What every area shares: remembered requests, the clock, the audit trail.
    Core(CoreRecord),
}

impl Record {
    /// Where the record lives; everything a tenant owns is under `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            Record::School(r) => r.key(),
            Record::People(r) => r.key(),
            Record::Booking(r) => r.key(),
            Record::Feeds(r) => r.key(),
            Record::Venue(r) => r.key(),
            Record::Analytics(r) => r.key(),
            Record::System(r) => r.key(),
            Record::Core(r) => r.key(),
        }
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Self, String> {
        codec::decode(v).map_err(|e| e.to_string())
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// Version 2 is the oldest record format read (version 1 was never released). A change of any
/// type a record holds adds a version: `docs/ARCHITECTURE.md`, "Changing a stored shape".
impl Migrate for Record {
    const VERSION: u8 = STATE_FORMAT;
    type Previous = NoPrevious;
    fn migrate(previous: NoPrevious) -> Self {
        match previous {}
    }
}

// The wire table: tag, wire name, and where the kind lives now. Append only.
flat_wire! {
    Record, "record";
    0 "Tenant" => School(school::SchoolRecord::Tenant),
    1 "Room" => School(school::SchoolRecord::Room),
    2 "Booking" => Booking(booking::BookingRecord::Booking),
    3 "Token" => People(people::PeopleRecord::Token),
    4 "Dedup" => Core(apply::CoreRecord::Dedup),
    5 "Clock" => Core(apply::CoreRecord::Clock),
    6 "User" => People(people::PeopleRecord::User),
    7 "Department" => People(people::PeopleRecord::Department),
    8 "Session" => People(people::PeopleRecord::Session),
    9 "Calendar" => School(school::SchoolRecord::Calendar),
    10 "Lesson" => School(school::SchoolRecord::Lesson),
    11 "Series" => Booking(booking::BookingRecord::Series),
    12 "Feed" => Feeds(feeds::FeedRecord::Feed),
    13 "Audit" => Core(apply::CoreRecord::Audit),
    14 "Identity" => System(system::SystemRecord::Identity),
    15 "BackupSlot" => System(system::SystemRecord::BackupSlot),
    16 "AnalyticsSalt" => Analytics(analytics::AnalyticsRecord::Salt),
    17 "AnalyticsDay" => Analytics(analytics::AnalyticsRecord::Day),
    18 "AnalyticsMonth" => Analytics(analytics::AnalyticsRecord::Month),
    19 "AnalyticsVisitor" => Analytics(analytics::AnalyticsRecord::Visitor),
    20 "Site" => Venue(venue::VenueRecord::Site),
    21 "Enquiry" => Venue(venue::VenueRecord::Enquiry),
    22 "SignInGuard" => People(people::PeopleRecord::SignInGuard),
    23 "Quotas" => System(system::SystemRecord::Quotas),
}

#[cfg(test)]
pub(crate) mod tests;
