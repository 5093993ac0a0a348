//! A command's operation: one variant per business area, each holding that area's enum of
//! command structs (`school::SchoolOp`, `people::PeopleOp`, …).
//!
//! The wire format is not the nesting. Every log entry, every remembered request's fingerprint
//! and every peer message carries an `Op` as one flat enum: a tag (bincode's variant index,
//! serde's variant name) and then the command's fields (`crate::wire`). The table at the bottom
//! fixes that tag for each command, in the order the commands were first written, so entries in the log of
//! every earlier release decode into the nested shape unchanged and a node of this release
//! speaks to one of the release before. A new command takes the next tag; a tag is never
//! reused or reordered, and a command never moves its fields (append only, like any format).

use crate::analytics::{self, AnalyticsOp};
use crate::booking::{self, BookingOp};
use crate::feeds::{self, FeedOp};
use crate::model::Outcome;
use crate::people::{self, PeopleOp};
use crate::school::{self, SchoolOp};
use crate::system::{self, SystemOp};
use crate::venue::{self, VenueOp};
use crate::wire::flat_wire;

/// A state change, by business area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    School(SchoolOp),
    People(PeopleOp),
    Booking(BookingOp),
    Feeds(FeedOp),
    Venue(VenueOp),
    Analytics(AnalyticsOp),
    System(SystemOp),
}

// The wire table: tag, wire name, and where the command lives now. Append only.
flat_wire! {
    Op, "command", from;
    0 "CreateTenant" => School(school::SchoolOp::CreateTenant),
    1 "CreateRoom" => School(school::SchoolOp::CreateRoom),
    2 "CreateBooking" => Booking(booking::BookingOp::CreateBooking),
    3 "CancelBooking" => Booking(booking::BookingOp::CancelBooking),
    4 "CreateToken" => People(people::PeopleOp::CreateToken),
    5 "SetTenantSuspended" => School(school::SchoolOp::SetTenantSuspended),
    6 "SetTenantRules" => School(school::SchoolOp::SetTenantRules),
    7 "UpdateRoom" => School(school::SchoolOp::UpdateRoom),
    8 "CreateDepartment" => People(people::PeopleOp::CreateDepartment),
    9 "DeleteDepartment" => People(people::PeopleOp::DeleteDepartment),
    10 "CreateUser" => People(people::PeopleOp::CreateUser),
    11 "UpdateUser" => People(people::PeopleOp::UpdateUser),
    12 "SetPassword" => People(people::PeopleOp::SetPassword),
    13 "CreateSession" => People(people::PeopleOp::CreateSession),
    14 "EndSession" => People(people::PeopleOp::EndSession),
    15 "EndUserSessions" => People(people::PeopleOp::EndUserSessions),
    16 "Touch" => People(people::PeopleOp::Touch),
    17 "RevokeToken" => People(people::PeopleOp::RevokeToken),
    18 "SetWeekCycle" => School(school::SchoolOp::SetWeekCycle),
    19 "CreateYear" => School(school::SchoolOp::CreateYear),
    20 "CreateTerm" => School(school::SchoolOp::CreateTerm),
    21 "CreateClosure" => School(school::SchoolOp::CreateClosure),
    22 "DeleteCalendarItem" => School(school::SchoolOp::DeleteCalendarItem),
    23 "SetPeriods" => School(school::SchoolOp::SetPeriods),
    24 "CreateLesson" => School(school::SchoolOp::CreateLesson),
    25 "DeleteLesson" => School(school::SchoolOp::DeleteLesson),
    26 "ImportLessons" => School(school::SchoolOp::ImportLessons),
    27 "SetLessonRelease" => School(school::SchoolOp::SetLessonRelease),
    28 "CreateSeries" => Booking(booking::BookingOp::CreateSeries),
    29 "DecideBooking" => Booking(booking::BookingOp::DecideBooking),
    30 "CreateFeed" => Feeds(feeds::FeedOp::CreateFeed),
    31 "RevokeFeed" => Feeds(feeds::FeedOp::RevokeFeed),
    32 "SetClusterIdentity" => System(system::SystemOp::SetClusterIdentity),
    33 "ClaimBackup" => System(system::SystemOp::ClaimBackup),
    34 "BackupDone" => System(system::SystemOp::MarkBackupDone),
    35 "SetAnalyticsSalt" => Analytics(analytics::AnalyticsOp::SetAnalyticsSalt),
    36 "RecordPageViews" => Analytics(analytics::AnalyticsOp::RecordPageViews),
    37 "SetSite" => Venue(venue::VenueOp::SetSite),
    38 "CreateEnquiry" => Venue(venue::VenueOp::CreateEnquiry),
    39 "SetEnquiryHandled" => Venue(venue::VenueOp::SetEnquiryHandled),
    40 "RecordSignInFailure" => People(people::PeopleOp::RecordSignInFailure),
    41 "SetQuotas" => System(system::SystemOp::SetQuotas),
}

/// A command and what its apply answers with when it succeeds.
///
/// Every command struct declares its reply with [`replies!`] in its area's `ops.rs`, so the
/// use-case layer gets a typed value back (`Tenant`, `Vec<Booking>`, `()`) and only one place,
/// there, has to say what an outcome of another kind means (a bug). The domain tests check
/// that every command they run answers with what it declares ([`Op::replies_as_declared`]).
pub trait Request: Into<Op> {
    type Reply;

    /// The reply inside `outcome`, or `outcome` back when it is of another kind (a rejection,
    /// or a bug: the cold path, so it is handed back as it is rather than boxed).
    #[allow(clippy::result_large_err)]
    fn reply(outcome: Outcome) -> Result<Self::Reply, Outcome>;
}

/// `replies! { Command: Reply { Outcome::Variant(x) => x } .. }`, one line per command of an
/// area; a command whose older versions answered differently lists one arm for each.
macro_rules! replies {
    ($($(#[$doc:meta])* $command:ty : $reply:ty { $($pattern:pat => $value:expr),+ $(,)? })*) => {
        $($(#[$doc])* impl $crate::op::Request for $command {
            type Reply = $reply;

            fn reply(outcome: $crate::model::Outcome) -> Result<$reply, $crate::model::Outcome> {
                match outcome {
                    $($pattern => Ok($value),)+
                    other => Err(other),
                }
            }
        })*
    };
}

pub(crate) use replies;

#[cfg(test)]
mod tests;
