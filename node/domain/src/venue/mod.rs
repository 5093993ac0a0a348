//! The public side of lettings: each school's facilities website (what it says, which rooms it
//! lets) and the hire enquiries visitors send from it.

mod apply;
mod model;
mod ops;
mod records;
mod state;

pub use model::{Enquiry, EnquirySpec, Site, SiteSpec};
pub use ops::{CreateEnquiry, SetEnquiryHandled, SetSite, VenueOp};
pub(crate) use records::VenueRecord;
pub(crate) use state::VenueState;

use roomraft_replicated::WriteSet;

use crate::apply::{Bookings, Ctx, Res};

impl Bookings {
    pub(crate) fn apply_venue(
        &mut self,
        ctx: &mut Ctx,
        op: &VenueOp,
        writes: &mut WriteSet,
    ) -> Res {
        match op {
            VenueOp::SetSite(SetSite { tenant, site }) => self.set_site(ctx, *tenant, site, writes),
            VenueOp::CreateEnquiry(CreateEnquiry { tenant, enquiry }) => {
                self.create_enquiry(ctx, *tenant, enquiry, writes)
            }
            VenueOp::SetEnquiryHandled(SetEnquiryHandled {
                tenant,
                enquiry,
                handled,
            }) => self.set_enquiry_handled(ctx, *tenant, *enquiry, *handled, writes),
        }
    }
}
