//! Caps on what one school may store, per kind of record: a cluster setting, replicated so
//! every replica refuses the same command, and checked in apply for commands of version 2 on.

use roomraft_replicated::WriteSet;

use super::apply::{forbidden, invalid, Bookings, Ctx, Res};
use super::model::{Outcome, Quotas, Rejection, Role, TenantId};
use crate::system::SystemRecord;

/// What is counted against a school's quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Room,
    User,
    Department,
    Lesson,
    /// Bookings of every status, recurring occurrences included (they stay as history).
    Booking,
    /// Tokens not revoked.
    Token,
    /// Calendar feeds not revoked.
    Feed,
    Enquiry,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Room => "rooms",
            Kind::User => "users",
            Kind::Department => "departments",
            Kind::Lesson => "lessons",
            Kind::Booking => "bookings",
            Kind::Token => "api_tokens",
            Kind::Feed => "feeds",
            Kind::Enquiry => "enquiries",
        }
    }
}

impl Quotas {
    /// The cap on `kind`.
    pub fn of(&self, kind: Kind) -> u64 {
        match kind {
            Kind::Room => self.rooms,
            Kind::User => self.users,
            Kind::Department => self.departments,
            Kind::Lesson => self.lessons,
            Kind::Booking => self.bookings,
            Kind::Token => self.api_tokens,
            Kind::Feed => self.feeds,
            Kind::Enquiry => self.enquiries,
        }
    }
}

impl Bookings {
    /// Counts one more (or one fewer) `kind` for `tenant`.
    pub(super) fn count(&mut self, tenant: TenantId, kind: Kind, delta: i64) {
        let n = self.counts.entry((tenant, kind)).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.counts.remove(&(tenant, kind));
        }
    }

    /// The caps in force: the operator's, or the defaults.
    pub fn quotas(&self) -> Quotas {
        self.system.quotas().cloned().unwrap_or_default()
    }

    /// How many `kind` records `tenant` holds.
    pub fn stored(&self, tenant: TenantId, kind: Kind) -> u64 {
        self.counts.get(&(tenant, kind)).copied().unwrap_or(0)
    }

    /// Refuses a command of version 2 or later that would take `tenant` past its quota of
    /// `kind` by `adding` more.
    pub(super) fn check_quota(
        &self,
        ctx: &Ctx,
        tenant: TenantId,
        kind: Kind,
        adding: u64,
    ) -> Result<(), Rejection> {
        if !ctx.since(2) {
            return Ok(());
        }
        let limit = self.quotas().of(kind);
        let have = self.stored(tenant, kind);
        if have.saturating_add(adding) > limit {
            return Err(Rejection::QuotaExceeded {
                kind: kind.name().into(),
                limit,
                stored: have,
            });
        }
        Ok(())
    }

    /// `SetQuotas`: an operator changes the caps for every school.
    pub(super) fn set_quotas(&mut self, ctx: &mut Ctx, q: &Quotas, writes: &mut WriteSet) -> Res {
        if ctx.actor.role != Role::Operator {
            return Err(forbidden("only an operator sets quotas"));
        }
        for (name, v) in q.fields() {
            if v == 0 {
                return Err(invalid(name, "must be at least 1"));
            }
        }
        self.store(SystemRecord::Quotas(q.clone()), writes);
        Ok(Outcome::Quotas(q.clone()))
    }
}
