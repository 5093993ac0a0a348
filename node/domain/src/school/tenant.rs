//! The school itself: creating it, suspending it, and its booking rules.

use std::collections::BTreeSet;

use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::model::{ApiToken, Outcome, Rejection, Role, Rules, Tenant, TenantId};
use crate::people::PeopleRecord;
use crate::school::SchoolRecord;

pub(crate) fn check_rules(r: &Rules) -> Result<(), Rejection> {
    if r.max_length_minutes == Some(0) {
        return Err(invalid("rules.max_length_minutes", "must be at least 1"));
    }
    if r.max_days_ahead.is_some_and(|d| d > 3660) {
        return Err(invalid("rules.max_days_ahead", "must be at most 3660"));
    }
    let mut seen = BTreeSet::new();
    for (role, _) in &r.max_active_per_user {
        if !role.can_book() || !seen.insert(*role) {
            return Err(invalid(
                "rules.max_active_per_user",
                "name each booking role (admin, staff) at most once",
            ));
        }
    }
    Ok(())
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

impl Bookings {
    pub(crate) fn create_tenant(
        &mut self,
        ctx: &mut Ctx,
        slug: &str,
        name: &str,
        time_zone: &str,
        admin_token_sha256: &str,
        writes: &mut WriteSet,
    ) -> Res {
        if ctx.actor.role != Role::Operator {
            return Err(forbidden("only an operator creates tenants"));
        }
        text("name", name, 200, true)?;
        if !valid_slug(slug) {
            return Err(invalid(
                "slug",
                "use 1 to 64 lowercase letters, digits and hyphens",
            ));
        }
        if jiff::tz::TimeZone::get(time_zone).is_err() {
            return Err(invalid(
                "time_zone",
                format!("unknown IANA time zone {time_zone:?}"),
            ));
        }
        if self.school.slugs.contains_key(slug) {
            return Err(Rejection::AlreadyExists {
                what: "tenant".into(),
                key: slug.into(),
            });
        }
        let id = ctx.new_id();
        let tenant = Tenant {
            id,
            slug: slug.into(),
            name: name.into(),
            time_zone: time_zone.into(),
            created_at: ctx.time,
            suspended: false,
            rules: Rules::default(),
        };
        let token = ApiToken {
            id: ctx.new_id(),
            sha256: admin_token_sha256.into(),
            tenant: id,
            role: Role::Admin,
            name: "admin".into(),
            created_at: ctx.time,
            last_used_at: None,
            revoked_at: None,
        };
        self.store(SchoolRecord::Tenant(tenant.clone()), writes);
        self.store(PeopleRecord::Token(token), writes);
        Ok(Outcome::TenantCreated(tenant))
    }

    pub(crate) fn set_suspended(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        suspended: bool,
        writes: &mut WriteSet,
    ) -> Res {
        if ctx.actor.role != Role::Operator {
            return Err(forbidden("only an operator suspends tenants"));
        }
        let mut t = self
            .school
            .tenants
            .get(&tenant)
            .cloned()
            .ok_or_else(|| not_found("tenant", tenant))?;
        t.suspended = suspended;
        self.store(SchoolRecord::Tenant(t.clone()), writes);
        Ok(Outcome::Tenant(t))
    }

    pub(crate) fn set_rules(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        rules: &Rules,
        writes: &mut WriteSet,
    ) -> Res {
        let mut t = self.admin(ctx, tenant)?.clone();
        let before = to_json(&t.rules);
        t.rules = rules.clone();
        self.store(SchoolRecord::Tenant(t.clone()), writes);
        self.audit(
            ctx,
            tenant,
            ("tenant", tenant),
            "rules_changed",
            Some(before),
            Some(to_json(rules)),
            writes,
        );
        Ok(Outcome::Tenant(t))
    }
}
