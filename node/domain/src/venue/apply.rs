//! The handlers of the venue site's commands: its settings and the enquiries sent from it.

use jiff::ToSpan;
use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::calendar::{local_date, zone};
use crate::model::{Enquiry, EnquiryId, EnquirySpec, Outcome, Site, SiteSpec, Tenant, TenantId};
use crate::quotas::Kind;
use crate::venue::VenueRecord;

/// Most rooms a site may offer for hire.
pub const MAX_HIRE_ROOMS: usize = 100;
/// Open enquiries a school may hold; beyond it the form asks visitors to write instead.
pub const MAX_OPEN_ENQUIRIES: usize = 2_000;
/// How far ahead an enquiry may ask about.
const MAX_DAYS_AHEAD: i64 = 730;

/// A plausible email address: one `@`, something either side, a dot in the domain, no spaces.
pub fn plausible_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !e.chars().any(char::is_whitespace)
}

impl Bookings {
    /// The site of a tenant, published or not, with defaults when never set.
    pub(crate) fn site_of(&self, tenant: TenantId) -> SiteSpec {
        self.venue
            .sites
            .get(&tenant)
            .map(|s| s.spec.clone())
            .unwrap_or_default()
    }

    /// The published site and tenant behind a public slug.
    pub fn public_site(&self, slug: &str) -> Option<(&Tenant, &Site)> {
        let t = self.school.tenants().get(self.school.slugs().get(slug)?)?;
        let site = self.venue.sites.get(&t.id)?;
        (!t.suspended && site.spec.published).then_some((t, site))
    }

    /// A tenant's enquiries, newest first; only open ones unless `all`.
    pub(crate) fn enquiries_of(&self, tenant: TenantId, all: bool) -> Vec<&Enquiry> {
        self.venue
            .enquiries
            .values()
            .rev()
            .filter(|e| e.tenant == tenant && (all || e.handled_at.is_none()))
            .collect()
    }

    pub(crate) fn set_site(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        spec: &SiteSpec,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        text("description", &spec.description, 5_000, false)?;
        text("contact_email", &spec.contact_email, 254, false)?;
        if !spec.contact_email.is_empty() && !plausible_email(&spec.contact_email) {
            return Err(invalid("contact_email", "must be an email address"));
        }
        if spec.hire_rooms.len() > MAX_HIRE_ROOMS {
            return Err(invalid(
                "hire_rooms",
                format!("at most {MAX_HIRE_ROOMS} rooms"),
            ));
        }
        for (i, r) in spec.hire_rooms.iter().enumerate() {
            if self
                .school
                .rooms()
                .get(r)
                .is_none_or(|x| x.tenant != tenant)
            {
                return Err(not_found("room", r));
            }
            if spec.hire_rooms[..i].contains(r) {
                return Err(invalid("hire_rooms", format!("room {r} is listed twice")));
            }
        }
        let before = self.venue.sites.get(&tenant).map(|s| to_json(&s.spec));
        let site = Site {
            tenant,
            spec: spec.clone(),
            updated_at: ctx.time,
        };
        self.audit(
            ctx,
            tenant,
            ("site", tenant),
            "update",
            before,
            Some(to_json(spec)),
            writes,
        );
        self.store(VenueRecord::Site(site.clone()), writes);
        Ok(Outcome::Site(site))
    }

    pub(crate) fn create_enquiry(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        e: &EnquirySpec,
        writes: &mut WriteSet,
    ) -> Res {
        let t = self.member(ctx, tenant)?;
        let site = self
            .venue
            .sites
            .get(&tenant)
            .filter(|s| s.spec.published)
            .ok_or_else(|| forbidden("this school does not take enquiries online"))?;
        text("name", &e.name, 100, true)?;
        text("phone", &e.phone, 40, false)?;
        text("email", &e.email, 254, true)?;
        text("message", &e.message, 4_000, true)?;
        if !plausible_email(&e.email) {
            return Err(invalid(
                "email",
                "must be an email address like name@example.org",
            ));
        }
        if !e
            .phone
            .chars()
            .all(|c| c.is_ascii_digit() || " +()-.".contains(c))
        {
            return Err(invalid(
                "phone",
                "may hold digits, spaces and + ( ) - . only",
            ));
        }
        if let Some(r) = e.room {
            if !site.spec.hire_rooms.contains(&r) {
                return Err(invalid("room", "choose one of the facilities for hire"));
            }
        }
        let today = local_date(&zone(&t.time_zone), ctx.time);
        if e.first_date < today {
            return Err(invalid("first_date", "must be today or later"));
        }
        let latest = today.checked_add(MAX_DAYS_AHEAD.days()).unwrap_or(today);
        if e.first_date > latest {
            return Err(invalid(
                "first_date",
                format!("must be within {MAX_DAYS_AHEAD} days"),
            ));
        }
        if let Some(last) = e.last_date {
            if last < e.first_date {
                return Err(invalid("last_date", "must not be before the first date"));
            }
            if last > latest {
                return Err(invalid(
                    "last_date",
                    format!("must be within {MAX_DAYS_AHEAD} days"),
                ));
            }
        }
        if self.enquiries_of(tenant, false).len() >= MAX_OPEN_ENQUIRIES {
            return Err(forbidden(
                "the school has too many open enquiries; please write to them instead",
            ));
        }
        self.check_quota(ctx, tenant, Kind::Enquiry, 1)?;
        let enquiry = Enquiry {
            id: ctx.new_id(),
            tenant,
            spec: e.clone(),
            received_at: ctx.time,
            handled_at: None,
            handled_by: None,
        };
        self.store(VenueRecord::Enquiry(enquiry.clone()), writes);
        Ok(Outcome::Enquiry(enquiry))
    }

    pub(crate) fn set_enquiry_handled(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: EnquiryId,
        handled: bool,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        let mut e = self
            .venue
            .enquiries
            .get(&id)
            .filter(|e| e.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("enquiry", id))?;
        if e.handled_at.is_some() == handled {
            return Ok(Outcome::Enquiry(e));
        }
        (e.handled_at, e.handled_by) = if handled {
            (Some(ctx.time), Some(ctx.actor.name.clone()))
        } else {
            (None, None)
        };
        let action = if handled { "handled" } else { "reopened" };
        self.audit(ctx, tenant, ("enquiry", id), action, None, None, writes);
        self.store(VenueRecord::Enquiry(e.clone()), writes);
        Ok(Outcome::Enquiry(e))
    }
}
