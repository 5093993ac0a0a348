//! The venue area's entities: the public site and its enquiries.

use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::model::{EnquiryId, RoomId, TenantId};

/// What an admin sets of the public facilities website.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSpec {
    /// Off until the school publishes it; an unpublished site is a 404 to the public.
    pub published: bool,
    /// The school's description, plain text (paragraphs separated by blank lines).
    pub description: String,
    /// Where hirers write to besides the form.
    pub contact_email: String,
    /// Rooms shown for hire, in this order.
    pub hire_rooms: Vec<RoomId>,
}

/// A school's public facilities website at `/v/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub tenant: TenantId,
    pub spec: SiteSpec,
    pub updated_at: Timestamp,
}

/// What a visitor sends with the enquiry form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnquirySpec {
    pub name: String,
    pub phone: String,
    pub email: String,
    /// The facility asked about; `None` for a general enquiry.
    pub room: Option<RoomId>,
    pub first_date: Date,
    pub last_date: Option<Date>,
    pub message: String,
}

/// A hire enquiry waiting in the school's admin pages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enquiry {
    pub id: EnquiryId,
    pub tenant: TenantId,
    pub spec: EnquirySpec,
    pub received_at: Timestamp,
    pub handled_at: Option<Timestamp>,
    pub handled_by: Option<String>,
}
