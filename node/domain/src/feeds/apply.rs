//! Calendar feeds: creating and revoking a secret iCalendar address.

use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, not_found, Bookings, Ctx, Res};
use crate::feeds::FeedRecord;
use crate::model::{Feed, FeedId, FeedTarget, Outcome, Role, TenantId};
use crate::quotas::Kind;

impl Bookings {
    /// The feed whose secret hashes to `sha256`, unless it was revoked.
    pub fn live_feed(&self, sha256: &str) -> Option<&Feed> {
        self.feeds
            .feeds
            .get(sha256)
            .filter(|f| f.revoked_at.is_none())
    }

    pub(crate) fn create_feed(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        target: FeedTarget,
        sha256: &str,
        writes: &mut WriteSet,
    ) -> Res {
        self.member(ctx, tenant)?;
        match target {
            FeedTarget::Room(r) => {
                if self
                    .school
                    .rooms()
                    .get(&r)
                    .is_none_or(|x| x.tenant != tenant)
                {
                    return Err(not_found("room", r));
                }
            }
            FeedTarget::User(u) => {
                if self
                    .people
                    .users()
                    .get(&u)
                    .is_none_or(|x| x.tenant != tenant)
                {
                    return Err(not_found("user", u));
                }
                if ctx.actor.user != Some(u) && ctx.actor.role != Role::Admin {
                    return Err(forbidden("only an admin creates another user's feed"));
                }
            }
        }
        self.check_quota(ctx, tenant, Kind::Feed, 1)?;
        let feed = Feed {
            id: ctx.new_id(),
            sha256: sha256.into(),
            tenant,
            target,
            created_at: ctx.time,
            revoked_at: None,
        };
        self.store(FeedRecord::Feed(feed.clone()), writes);
        Ok(Outcome::FeedCreated(feed))
    }

    pub(crate) fn revoke_feed(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: FeedId,
        writes: &mut WriteSet,
    ) -> Res {
        self.member(ctx, tenant)?;
        let mut f = self
            .feeds
            .feeds
            .values()
            .find(|f| f.id == id && f.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("feed", id))?;
        let own = matches!(f.target, FeedTarget::User(u) if ctx.actor.user == Some(u));
        if !own && ctx.actor.role != Role::Admin {
            return Err(forbidden("only an admin or the feed's own user revokes it"));
        }
        if f.revoked_at.is_none() {
            f.revoked_at = Some(ctx.time);
            self.store(FeedRecord::Feed(f.clone()), writes);
        }
        Ok(Outcome::Feed(f))
    }
}
