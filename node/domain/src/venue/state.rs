//! The venue area's state: public facilities websites and their enquiries.

use std::collections::BTreeMap;

use crate::model::{Enquiry, EnquiryId, Site, TenantId};

/// The venue area's part of `Bookings`. Its fields are private to `venue/`: only this area's
/// apply and `index_venue` change them, so its indexes cannot drift from its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VenueState {
    /// Public facilities websites, by tenant.
    pub(super) sites: BTreeMap<TenantId, Site>,
    pub(super) enquiries: BTreeMap<EnquiryId, Enquiry>,
}

/// Read-only to the other areas: only this area's apply and index change it.
impl VenueState {
    pub(crate) fn sites(&self) -> &BTreeMap<TenantId, Site> {
        &self.sites
    }
}
