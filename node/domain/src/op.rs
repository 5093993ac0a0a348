//! A command's operation: one variant per business area, each holding that area's enum of
//! command structs (`school::SchoolOp`, `people::PeopleOp`, …).
//!
//! The wire format is not the nesting. Every log entry, every remembered request's fingerprint
//! and every peer message carries an `Op` as one flat enum: a tag (bincode's variant index,
//! serde's variant name) and then the command's fields. The table at the bottom fixes that tag
//! for each command, in the order the commands were first written, so entries in the log of
//! every earlier release decode into the nested shape unchanged and a node of this release
//! speaks to one of the release before. A new command takes the next tag; a tag is never
//! reused or reordered, and a command never moves its fields (append only, like any format).

use std::fmt;

use serde::de::{self, EnumAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::analytics::{self, AnalyticsOp};
use crate::booking::{self, BookingOp};
use crate::feeds::{self, FeedOp};
use crate::people::{self, PeopleOp};
use crate::school::{self, SchoolOp};
use crate::system::{self, SystemOp};
use crate::venue::{self, VenueOp};

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

/// Generates, from one line per command, the flat wire encoding of [`Op`] (serialize and
/// deserialize) and `From<Command> for Op`.
macro_rules! wire {
    ($($tag:literal $name:literal => $area:ident($module:ident::$area_op:ident::$command:ident),)*) => {
        /// Every command's wire name, indexed by tag.
        const NAMES: &[&str] = &[$($name),*];

        impl Serialize for Op {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Op::$area($area_op::$command(command)) => {
                        serializer.serialize_newtype_variant("Op", $tag, $name, command)
                    })*
                }
            }
        }

        impl<'de> Deserialize<'de> for Op {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Op, D::Error> {
                struct OpVisitor;

                impl<'de> Visitor<'de> for OpVisitor {
                    type Value = Op;

                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a Roomraft command")
                    }

                    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Op, A::Error> {
                        let (Tag(tag), command) = data.variant()?;
                        match tag {
                            $($tag => command.newtype_variant().map(|c| Op::$area($area_op::$command(c))),)*
                            _ => Err(de::Error::custom(format_args!(
                                "command kind {tag} is unknown to this build, which knows {}; \
                                 was it written by a newer Roomraft?",
                                NAMES.len()
                            ))),
                        }
                    }
                }

                deserializer.deserialize_enum("Op", NAMES, OpVisitor)
            }
        }

        $(impl From<$module::$command> for Op {
            fn from(command: $module::$command) -> Op {
                Op::$area($area_op::$command(command))
            }
        })*
    };
}

/// A command's tag as read: bincode gives its index, self-describing formats its name.
struct Tag(u32);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Tag, D::Error> {
        struct TagVisitor;

        impl Visitor<'_> for TagVisitor {
            type Value = Tag;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a command's index or name")
            }

            fn visit_u64<E: de::Error>(self, index: u64) -> Result<Tag, E> {
                // Out-of-range indexes reach the caller, which says what they are.
                Ok(Tag(u32::try_from(index).unwrap_or(u32::MAX)))
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Tag, E> {
                match NAMES.iter().position(|n| *n == name) {
                    Some(index) => Ok(Tag(index as u32)),
                    None => Err(de::Error::unknown_variant(name, NAMES)),
                }
            }
        }

        deserializer.deserialize_identifier(TagVisitor)
    }
}

// The wire table: tag, wire name, and where the command lives now. Append only.
wire! {
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

#[cfg(test)]
mod tests;
