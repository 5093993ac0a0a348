//! The handlers of people's commands: departments, users, passwords, sessions, API tokens and
//! the sign-in guard.

use jiff::{SignedDuration, Timestamp};
use roomraft_replicated::WriteSet;

use crate::apply::{forbidden, invalid, not_found, text, to_json, Bookings, Ctx, Res};
use crate::model::{
    ApiToken, Department, DepartmentId, Outcome, Rejection, Role, Session, SignInGuard,
    SignInPolicy, Tenant, TenantId, TokenId, User, UserId,
};
use crate::people::PeopleRecord;
use crate::quotas::Kind;

use super::{CreateSession, CreateUser, UpdateUser};

fn valid_username(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn valid_email(e: &str) -> bool {
    e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !e.chars().any(char::is_whitespace)
        })
}

/// A user as recorded in audit history: everything but the password hash.
fn user_json(u: &User) -> String {
    let mut u = u.clone();
    u.password_phc = "(redacted)".into();
    to_json(&u)
}

impl Bookings {
    /// Drops sessions and sign-in guards whose time has passed, as the clock passes.
    pub(crate) fn expire_people(&mut self, writes: &mut WriteSet) {
        while let Some((at, k)) = self.people.session_expiry.first().cloned() {
            if at > self.clock {
                break;
            }
            let s = self.people.sessions[&k].clone();
            self.discard(PeopleRecord::Session(s), writes);
        }
        while let Some((at, user)) = self.people.guard_expiry.first().copied() {
            if at > self.clock {
                break;
            }
            let g = self.people.sign_in_guards[&user].clone();
            self.discard(PeopleRecord::SignInGuard(g), writes);
        }
    }

    pub(crate) fn create_department(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        name: &str,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        text("name", name, 100, true)?;
        self.check_quota(ctx, tenant, Kind::Department, 1)?;
        if self
            .people
            .departments
            .values()
            .any(|d| d.tenant == tenant && d.name.eq_ignore_ascii_case(name))
        {
            return Err(Rejection::AlreadyExists {
                what: "department".into(),
                key: name.into(),
            });
        }
        let d = Department {
            id: ctx.new_id(),
            tenant,
            name: name.into(),
        };
        self.store(PeopleRecord::Department(d.clone()), writes);
        Ok(Outcome::Department(d))
    }

    pub(crate) fn delete_department(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: DepartmentId,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        let d = self
            .people
            .departments
            .get(&id)
            .filter(|d| d.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("department", id))?;
        if let Some(u) = self
            .people
            .users
            .values()
            .find(|u| u.tenant == tenant && u.department == Some(id))
        {
            return Err(invalid(
                "department",
                format!("user {} still belongs to it; move them first", u.username),
            ));
        }
        self.discard(PeopleRecord::Department(d), writes);
        Ok(Outcome::Done)
    }

    fn check_department(&self, tenant: TenantId, d: Option<DepartmentId>) -> Result<(), Rejection> {
        match d {
            Some(id)
                if self
                    .people
                    .departments
                    .get(&id)
                    .is_none_or(|d| d.tenant != tenant) =>
            {
                Err(invalid("department_id", format!("no department {id}")))
            }
            _ => Ok(()),
        }
    }

    pub(crate) fn create_user(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateUser,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateUser {
            tenant,
            username,
            name,
            email,
            department,
            role,
            password_phc,
        } = op;
        self.admin(ctx, *tenant)?;
        if !valid_username(username) {
            return Err(invalid(
                "username",
                "use 1 to 64 letters, digits, dots, hyphens and underscores",
            ));
        }
        for login in [username, email] {
            if self
                .people
                .logins
                .contains_key(&(*tenant, login.to_lowercase()))
            {
                return Err(Rejection::AlreadyExists {
                    what: "user".into(),
                    key: login.clone(),
                });
            }
        }
        self.check_quota(ctx, *tenant, Kind::User, 1)?;
        let u = User {
            id: ctx.new_id(),
            tenant: *tenant,
            username: username.clone(),
            name: name.clone(),
            email: email.clone(),
            department: *department,
            role: *role,
            password_phc: password_phc.clone(),
            active: true,
            created_at: ctx.time,
            password_changed_at: ctx.time,
        };
        self.save_user(ctx, *tenant, u, writes)
    }

    pub(crate) fn update_user(
        &mut self,
        ctx: &mut Ctx,
        op: &UpdateUser,
        writes: &mut WriteSet,
    ) -> Res {
        let UpdateUser {
            tenant,
            user,
            name,
            email,
            department,
            role,
            active,
        } = op;
        self.admin(ctx, *tenant)?;
        let mut u = self
            .people
            .users
            .get(user)
            .filter(|u| u.tenant == *tenant)
            .cloned()
            .ok_or_else(|| not_found("user", user))?;
        if let Some(&other) = self.people.logins.get(&(*tenant, email.to_lowercase())) {
            if other != u.id {
                return Err(Rejection::AlreadyExists {
                    what: "user".into(),
                    key: email.clone(),
                });
            }
        }
        if ctx.actor.user == Some(u.id) && (*role != Role::Admin || !active) {
            return Err(invalid(
                "role",
                "you cannot demote or deactivate yourself; ask another admin",
            ));
        }
        u.name = name.clone();
        u.email = email.clone();
        u.department = *department;
        u.role = *role;
        u.active = *active;
        self.save_user(ctx, *tenant, u, writes)
    }

    /// What creating and editing a user share: the checks of the result, the store, the audit.
    fn save_user(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        user: User,
        writes: &mut WriteSet,
    ) -> Res {
        text("name", &user.name, 200, true)?;
        if !valid_email(&user.email) {
            return Err(invalid(
                "email",
                "must be an email address like name@school.org",
            ));
        }
        if user.role == Role::Operator {
            return Err(invalid("role", "use admin, staff or viewer"));
        }
        self.check_department(tenant, user.department)?;
        let before = self.people.users.get(&user.id).map(user_json);
        let action = if before.is_some() {
            "updated"
        } else {
            "created"
        };
        if !user.active {
            self.end_sessions_of(user.id, None, writes);
        }
        self.store(PeopleRecord::User(user.clone()), writes);
        self.audit(
            ctx,
            tenant,
            ("user", user.id),
            action,
            before,
            Some(user_json(&user)),
            writes,
        );
        Ok(Outcome::User(user))
    }

    pub(crate) fn set_password(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        user: UserId,
        phc: &str,
        keep_session: &Option<String>,
        writes: &mut WriteSet,
    ) -> Res {
        self.member(ctx, tenant)?;
        if ctx.actor.user != Some(user) && ctx.actor.role != Role::Admin {
            return Err(forbidden("only an admin may reset another user's password"));
        }
        if ctx.since(2) && ctx.actor.user == Some(user) {
            // A user's own change proved the current password; a locked account proves nothing.
            self.check_not_locked(user, ctx.time)?;
        }
        let mut u = self
            .people
            .users
            .get(&user)
            .filter(|u| u.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("user", user))?;
        if !phc.starts_with("$argon2id$") {
            return Err(invalid("password", "must be an argon2id hash"));
        }
        u.password_phc = phc.into();
        u.password_changed_at = ctx.time;
        self.end_sessions_of(user, keep_session.as_deref(), writes);
        self.store(PeopleRecord::User(u.clone()), writes);
        self.audit(
            ctx,
            tenant,
            ("user", user),
            "password_changed",
            None,
            None,
            writes,
        );
        Ok(Outcome::User(u))
    }

    fn end_sessions_of(&mut self, user: UserId, keep: Option<&str>, writes: &mut WriteSet) {
        let ended: Vec<Session> = self
            .people
            .sessions
            .values()
            .filter(|s| s.user == user && Some(s.sha256.as_str()) != keep)
            .cloned()
            .collect();
        for s in ended {
            self.discard(PeopleRecord::Session(s), writes);
        }
    }

    pub(crate) fn create_session(
        &mut self,
        ctx: &mut Ctx,
        op: &CreateSession,
        writes: &mut WriteSet,
    ) -> Res {
        let CreateSession {
            tenant,
            user,
            sha256,
            csrf_sha256,
            idle_secs,
            absolute_secs,
        } = op;
        // The receiving node checked the password; the session is for that user only.
        if ctx.actor.user != Some(*user) || ctx.actor.tenant != Some(*tenant) {
            return Err(forbidden("a session is created by its own user's sign-in"));
        }
        self.member(ctx, *tenant)?;
        let u = self
            .people
            .users
            .get(user)
            .filter(|u| u.tenant == *tenant && u.active)
            .ok_or_else(|| not_found("user", user))?;
        // A right password checked on a node that had not yet seen the lock is still refused:
        // no guess counts once the lock is in the log, wherever it was tried.
        if ctx.since(2) {
            self.check_not_locked(*user, ctx.time)?;
        }
        let s = Session {
            sha256: sha256.clone(),
            tenant: *tenant,
            user: u.id,
            csrf_sha256: csrf_sha256.clone(),
            created_at: ctx.time,
            last_seen: ctx.time,
            expires_at: ctx
                .time
                .saturating_add(SignedDuration::from_secs(*absolute_secs as i64))
                .unwrap_or(Timestamp::MAX),
            idle_secs: *idle_secs,
        };
        self.store(PeopleRecord::Session(s.clone()), writes);
        Ok(Outcome::Session(s))
    }

    pub(crate) fn end_session(
        &mut self,
        ctx: &mut Ctx,
        sha256: &str,
        writes: &mut WriteSet,
    ) -> Res {
        if let Some(s) = self.people.sessions.get(sha256).cloned() {
            if ctx.actor.user != Some(s.user) {
                return Err(forbidden("only its own user ends a session this way"));
            }
            self.discard(PeopleRecord::Session(s), writes);
        }
        Ok(Outcome::Done)
    }

    pub(crate) fn end_user_sessions(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        user: UserId,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        if self
            .people
            .users
            .get(&user)
            .is_none_or(|u| u.tenant != tenant)
        {
            return Err(not_found("user", user));
        }
        self.end_sessions_of(user, None, writes);
        self.audit(
            ctx,
            tenant,
            ("user", user),
            "signed_out_by_admin",
            None,
            None,
            writes,
        );
        Ok(Outcome::Done)
    }

    pub(crate) fn touch(&mut self, ctx: &mut Ctx, sha256: &str, writes: &mut WriteSet) -> Res {
        if let Some(mut s) = self.people.sessions.get(sha256).cloned() {
            s.last_seen = s.last_seen.max(ctx.time);
            self.store(PeopleRecord::Session(s), writes);
        } else if let Some(mut t) = self.people.tokens.get(sha256).cloned() {
            t.last_used_at = Some(t.last_used_at.unwrap_or(ctx.time).max(ctx.time));
            self.store(PeopleRecord::Token(t), writes);
        }
        Ok(Outcome::Done)
    }

    pub(crate) fn create_token(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        name: &str,
        role: Role,
        sha256: &str,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        if role == Role::Operator {
            return Err(invalid("role", "a tenant token cannot be an operator"));
        }
        text("name", name, 100, true)?;
        // A live token's name is its principal (idempotency keys are scoped by it), so two live
        // tokens of one school may not share one.
        if ctx.since(2)
            && self
                .people
                .tokens
                .values()
                .any(|t| t.tenant == tenant && t.revoked_at.is_none() && t.name == name)
        {
            return Err(Rejection::AlreadyExists {
                what: "token".into(),
                key: name.into(),
            });
        }
        self.check_quota(ctx, tenant, Kind::Token, 1)?;
        if self.people.tokens.contains_key(sha256) {
            return Err(Rejection::AlreadyExists {
                what: "token".into(),
                key: name.into(),
            });
        }
        let token = ApiToken {
            id: ctx.new_id(),
            sha256: sha256.into(),
            tenant,
            role,
            name: name.into(),
            created_at: ctx.time,
            last_used_at: None,
            revoked_at: None,
        };
        self.store(PeopleRecord::Token(token.clone()), writes);
        Ok(Outcome::TokenCreated(token))
    }

    pub(crate) fn revoke_token(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        id: TokenId,
        writes: &mut WriteSet,
    ) -> Res {
        self.admin(ctx, tenant)?;
        let mut t = self
            .people
            .tokens
            .values()
            .find(|t| t.id == id && t.tenant == tenant)
            .cloned()
            .ok_or_else(|| not_found("token", id))?;
        if t.revoked_at.is_none() {
            t.revoked_at = Some(ctx.time);
            self.store(PeopleRecord::Token(t.clone()), writes);
        }
        Ok(Outcome::Token(t))
    }

    fn check_not_locked(&self, user: UserId, now: Timestamp) -> Result<(), Rejection> {
        match self.sign_in_lock(user, now) {
            Some(until) => Err(Rejection::Locked { until }),
            None => Ok(()),
        }
    }

    /// Until when `user` may not sign in or change their password, if locked at `now`.
    pub fn sign_in_lock(&self, user: UserId, now: Timestamp) -> Option<Timestamp> {
        self.people.sign_in_guards.get(&user)?.locked_at(now)
    }

    /// A wrong password for `user`: one more failure in the account's bucket, and a lock once
    /// the bucket overflows.
    pub(crate) fn sign_in_failed(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        user: UserId,
        policy: &SignInPolicy,
        writes: &mut WriteSet,
    ) -> Res {
        if ctx.actor.tenant != Some(tenant) {
            return Err(forbidden("a sign-in failure is recorded in its own tenant"));
        }
        if self
            .people
            .users
            .get(&user)
            .is_none_or(|u| u.tenant != tenant)
        {
            return Err(not_found("user", user));
        }
        let now = ctx.time;
        let every = SignedDuration::from_secs(policy.refill_secs.max(1) as i64);
        let burst = every * policy.failures.max(1) as i32;
        let old = self.people.sign_in_guards.get(&user).cloned();
        let tat = old.as_ref().map_or(now, |g| g.tat.max(now));
        let failures = old
            .as_ref()
            .filter(|g| g.tat > now)
            .map_or(1, |g| g.failures.saturating_add(1));
        let next_tat = tat.saturating_add(every).unwrap_or(Timestamp::MAX);
        let was_locked = old.as_ref().and_then(|g| g.locked_at(now));
        // Allowed while the bucket holds no more than `failures` ahead of now; past that the
        // account waits until the next failure would fit, at most the longest lock.
        let overflow = next_tat.duration_since(now) > burst;
        let locked_until = if overflow {
            let fits = next_tat.checked_sub(burst).unwrap_or(now);
            let longest = now
                .saturating_add(SignedDuration::from_secs(policy.lock_max_secs.max(1) as i64))
                .unwrap_or(Timestamp::MAX);
            Some(fits.min(longest).max(was_locked.unwrap_or(now)))
        } else {
            was_locked
        };
        let guard = SignInGuard {
            tenant,
            user,
            tat: next_tat,
            locked_until,
            failures,
        };
        self.store(PeopleRecord::SignInGuard(guard.clone()), writes);
        if was_locked.is_none() && guard.locked_at(now).is_some() {
            self.audit(
                ctx,
                tenant,
                ("user", user),
                "sign_in_locked",
                None,
                Some(format!(
                    "{{\"failures\":{failures},\"locked_until\":\"{}\"}}",
                    guard.locked_until.unwrap_or(now)
                )),
                writes,
            );
        }
        Ok(Outcome::SignInGuard(guard))
    }

    /// A live session: known, not past its absolute or idle expiry at `now`.
    pub fn live_session(&self, sha256: &str, now: Timestamp) -> Option<(&Session, &User)> {
        let s = self.people.sessions.get(sha256)?;
        let idle_end = s
            .last_seen
            .saturating_add(SignedDuration::from_secs(s.idle_secs as i64))
            .ok()?;
        if now >= s.expires_at || now >= idle_end {
            return None;
        }
        let u = self.people.users.get(&s.user).filter(|u| u.active)?;
        let t = self.school.tenants().get(&s.tenant)?;
        (!t.suspended).then_some((s, u))
    }

    /// The user signing in with `login` (username or email) in tenant `slug`.
    pub fn login_user(&self, slug: &str, login: &str) -> Option<&User> {
        let t = self.school.slugs().get(slug)?;
        let id = self.people.logins.get(&(*t, login.to_lowercase()))?;
        self.people.users.get(id).filter(|u| u.active)
    }

    pub fn tenant_by_slug(&self, slug: &str) -> Option<&Tenant> {
        self.school
            .slugs()
            .get(slug)
            .and_then(|t| self.school.tenants().get(t))
    }

    /// Every school, by id: the operator's view.
    pub fn tenants(&self) -> impl Iterator<Item = &Tenant> {
        self.school.tenants().values()
    }
}
