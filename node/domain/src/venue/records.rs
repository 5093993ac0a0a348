//! The venue area's stored records: each school's site and its enquiries.

use crate::apply::{id20, tkey, Bookings};
use crate::model::{Enquiry, Site};
use crate::quotas::Kind;
use crate::records::Record;

/// A stored record of the venue area; its wire tag is in `records.rs`'s table.
#[derive(Debug, Clone)]
pub(crate) enum VenueRecord {
    Site(Site),
    Enquiry(Enquiry),
}

impl VenueRecord {
    /// Where the record lives: under its school's `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            VenueRecord::Site(s) => tkey(s.tenant, "site", "0"),
            VenueRecord::Enquiry(e) => tkey(e.tenant, "enquiry", id20(e.id)),
        }
    }
}

impl From<VenueRecord> for Record {
    fn from(record: VenueRecord) -> Record {
        Record::Venue(record)
    }
}

impl Bookings {
    pub(crate) fn index_venue(&mut self, record: VenueRecord) {
        match record {
            VenueRecord::Site(site) => {
                self.venue.sites.insert(site.tenant, site);
            }
            VenueRecord::Enquiry(e) => {
                let tenant = e.tenant;
                if self.venue.enquiries.insert(e.id, e).is_none() {
                    self.count(tenant, Kind::Enquiry, 1);
                }
            }
        }
    }

    pub(crate) fn venue_records(&self, out: &mut Vec<Record>) {
        let records = (self.venue.sites.values().cloned().map(VenueRecord::Site)).chain(
            self.venue
                .enquiries
                .values()
                .cloned()
                .map(VenueRecord::Enquiry),
        );
        out.extend(records.map(Record::Venue));
    }
}
