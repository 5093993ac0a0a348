//! The people area's stored records: users, departments, sessions, API tokens and sign-in
//! guards.

use crate::apply::{id20, tkey, Bookings};
use crate::model::{ApiToken, Department, Session, SignInGuard, User};
use crate::quotas::Kind;
use crate::records::Record;

/// A stored record of the people area; its wire tag is in `records.rs`'s table.
#[derive(Debug, Clone)]
pub(crate) enum PeopleRecord {
    Token(ApiToken),
    User(User),
    Department(Department),
    Session(Session),
    SignInGuard(SignInGuard),
}

impl PeopleRecord {
    /// Where the record lives: under its school's `t/{tenant}/`.
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            PeopleRecord::Token(t) => tkey(t.tenant, "token", id20(t.id)),
            PeopleRecord::User(u) => tkey(u.tenant, "user", id20(u.id)),
            PeopleRecord::Department(d) => tkey(d.tenant, "department", id20(d.id)),
            PeopleRecord::Session(s) => tkey(s.tenant, "session", &s.sha256),
            PeopleRecord::SignInGuard(g) => tkey(g.tenant, "sign-in-guard", id20(g.user)),
        }
    }
}

impl From<PeopleRecord> for Record {
    fn from(record: PeopleRecord) -> Record {
        Record::People(record)
    }
}

impl Bookings {
    pub(crate) fn index_people(&mut self, record: PeopleRecord) {
        match record {
            PeopleRecord::Token(t) => {
                let was = self
                    .people
                    .tokens
                    .get(&t.sha256)
                    .is_some_and(|o| o.revoked_at.is_none());
                let is = t.revoked_at.is_none();
                self.count(t.tenant, Kind::Token, is as i64 - was as i64);
                self.people.tokens.insert(t.sha256.clone(), t);
            }
            PeopleRecord::User(u) => {
                if let Some(old) = self.people.users.get(&u.id) {
                    let (t, name, mail) = (old.tenant, old.username.clone(), old.email.clone());
                    self.people.logins.remove(&(t, name.to_lowercase()));
                    self.people.logins.remove(&(t, mail.to_lowercase()));
                }
                self.people
                    .logins
                    .insert((u.tenant, u.username.to_lowercase()), u.id);
                if !u.email.is_empty() {
                    self.people
                        .logins
                        .insert((u.tenant, u.email.to_lowercase()), u.id);
                }
                let tenant = u.tenant;
                if self.people.users.insert(u.id, u).is_none() {
                    self.count(tenant, Kind::User, 1);
                }
            }
            PeopleRecord::Department(d) => {
                let tenant = d.tenant;
                if self.people.departments.insert(d.id, d).is_none() {
                    self.count(tenant, Kind::Department, 1);
                }
            }
            PeopleRecord::Session(s) => {
                self.people
                    .session_expiry
                    .insert((s.expires_at, s.sha256.clone()));
                self.people.sessions.insert(s.sha256.clone(), s);
            }
            PeopleRecord::SignInGuard(g) => {
                if let Some(old) = self.people.sign_in_guards.get(&g.user) {
                    self.people
                        .guard_expiry
                        .remove(&(old.expires_at(), old.user));
                }
                self.people.guard_expiry.insert((g.expires_at(), g.user));
                self.people.sign_in_guards.insert(g.user, g);
            }
        }
    }

    pub(crate) fn discard_people(&mut self, record: PeopleRecord) {
        match record {
            PeopleRecord::Session(s) => {
                self.people.sessions.remove(&s.sha256);
                self.people.session_expiry.remove(&(s.expires_at, s.sha256));
            }
            PeopleRecord::Department(d) => {
                if self.people.departments.remove(&d.id).is_some() {
                    self.count(d.tenant, Kind::Department, -1);
                }
            }
            PeopleRecord::SignInGuard(g) => {
                self.people.guard_expiry.remove(&(g.expires_at(), g.user));
                self.people.sign_in_guards.remove(&g.user);
            }
            other => unreachable!("records of this kind are never deleted: {other:?}"),
        }
    }

    pub(crate) fn people_records(&self, out: &mut Vec<Record>) {
        let records = (self
            .people
            .tokens
            .values()
            .cloned()
            .map(PeopleRecord::Token))
        .chain(self.people.users.values().cloned().map(PeopleRecord::User))
        .chain(
            self.people
                .departments
                .values()
                .cloned()
                .map(PeopleRecord::Department),
        )
        .chain(
            self.people
                .sessions
                .values()
                .cloned()
                .map(PeopleRecord::Session),
        )
        .chain(
            self.people
                .sign_in_guards
                .values()
                .cloned()
                .map(PeopleRecord::SignInGuard),
        );
        out.extend(records.map(Record::People));
    }
}
