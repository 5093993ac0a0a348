//! Commands of this area: one struct each, and the enum `Op::Venue` holds.

use serde::{Deserialize, Serialize};

use crate::model::Outcome;
use crate::model::{Enquiry, Site};
use crate::op::replies;

use crate::model::{EnquiryId, EnquirySpec, SiteSpec, TenantId};

/// The public facilities website and its hire enquiries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VenueOp {
    SetSite(SetSite),
    CreateEnquiry(CreateEnquiry),
    SetEnquiryHandled(SetEnquiryHandled),
}

/// The school's public facilities website: what it says and which rooms it lets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetSite {
    pub tenant: TenantId,
    pub site: SiteSpec,
}

/// A hire enquiry from the public website (the actor is the anonymous visitor).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateEnquiry {
    pub tenant: TenantId,
    pub enquiry: EnquirySpec,
}

/// An admin marks an enquiry dealt with, or open again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetEnquiryHandled {
    pub tenant: TenantId,
    pub enquiry: EnquiryId,
    pub handled: bool,
}

replies! {
    SetSite: Site { Outcome::Site(s) => s }
    CreateEnquiry: Enquiry { Outcome::Enquiry(e) => e }
    SetEnquiryHandled: Enquiry { Outcome::Enquiry(e) => e }
}
