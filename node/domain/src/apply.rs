//! The replicated state and its apply function: deduplication, records, audit, and the hand-off
//! of each command to its business area (`school`, `people`, `booking`, `feeds`, `venue`,
//! `analytics`, `system`; one folder each).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use roomraft_replicated::{App, LoadError, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::quotas::Kind;
use crate::analytics::{DayStats, MonthKey, Tally, Totals, Visitor, VisitorKey};
use crate::codec::{self, Migrate, NoPrevious};
use crate::model::{
    Actor, ApiToken, AuditEntry, BackupSlot, Booking, BookingId, Calendar, ClusterIdentity,
    Credential, Department, DepartmentId, Enquiry, EnquiryId, Feed, Lesson, LessonId, LogCommand,
    Outcome, Quotas, Rejection, Role, Room, RoomId, Series, SeriesId, Session, SignInGuard, Site,
    Tenant, TenantId, User, UserId,
};
use crate::op::Op;

/// Version of the record encoding below (its [`Migrate::VERSION`]); a change of shape adds one.
pub const STATE_FORMAT: u8 = 2;

/// How long a client's Idempotency-Key is remembered.
const IDEMPOTENCY_TTL: SignedDuration = SignedDuration::from_hours(24);
/// How long a key the node generated for one request is remembered (covers forwarding retries).
const INTERNAL_KEY_TTL: SignedDuration = SignedDuration::from_mins(10);

/// A remembered request: what it asked (fingerprint) and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    pub fingerprint: String,
    pub outcome: Outcome,
    pub expires_at: Timestamp,
}

/// A persisted record; the enum is the record format's version tag (variants only appended).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Record {
    Tenant(Tenant),
    Room(Room),
    Booking(Booking),
    Token(ApiToken),
    Dedup(String, Dedup),
    Clock(Timestamp),
    User(User),
    Department(Department),
    Session(Session),
    Calendar(TenantId, Calendar),
    Lesson(Lesson),
    Series(Series),
    Feed(Feed),
    Audit(AuditEntry),
    Identity(ClusterIdentity),
    BackupSlot(BackupSlot),
    AnalyticsSalt(jiff::civil::Date, String),
    AnalyticsDay(TenantId, jiff::civil::Date, DayStats),
    AnalyticsMonth(MonthKey, Totals),
    AnalyticsVisitor(VisitorKey, Visitor),
    Site(Site),
    Enquiry(Enquiry),
    SignInGuard(SignInGuard),
    Quotas(Quotas),
}

/// Records that never leave the cluster: the analytics salts (destroyed after two days, so a
/// backup must not keep them) and the visitor state keyed by them.
const PRIVATE_PREFIX: &[u8] = b"analytics/";

fn tkey(tenant: TenantId, kind: &str, id: impl std::fmt::Display) -> Vec<u8> {
    format!("t/{tenant:020}/{kind}/{id}").into_bytes()
}

fn id20(id: u64) -> String {
    format!("{id:020}")
}

impl Record {
    /// Where the record lives; everything a tenant owns is under `t/{tenant}/`.
    pub(super) fn key(&self) -> Vec<u8> {
        match self {
            Record::Tenant(t) => tkey(t.id, "tenant", id20(t.id)),
            Record::Room(r) => tkey(r.tenant, "room", id20(r.id)),
            Record::Booking(b) => tkey(b.tenant, "booking", id20(b.id)),
            Record::Token(t) => tkey(t.tenant, "token", id20(t.id)),
            Record::Dedup(k, _) => format!("dedup/{k}").into_bytes(),
            Record::Clock(_) => b"clock".to_vec(),
            Record::User(u) => tkey(u.tenant, "user", id20(u.id)),
            Record::Department(d) => tkey(d.tenant, "department", id20(d.id)),
            Record::Session(s) => tkey(s.tenant, "session", &s.sha256),
            Record::Calendar(t, _) => tkey(*t, "calendar", "0"),
            Record::Lesson(l) => tkey(l.tenant, "lesson", id20(l.id)),
            Record::Series(s) => tkey(s.tenant, "series", id20(s.id)),
            Record::Feed(f) => tkey(f.tenant, "feed", id20(f.id)),
            Record::Audit(a) => tkey(a.tenant, "audit", id20(a.id)),
            Record::Identity(_) => b"cluster/identity".to_vec(),
            Record::BackupSlot(b) => format!("backup/{:020}", b.slot.as_second()).into_bytes(),
            Record::AnalyticsSalt(day, _) => format!("analytics/salt/{day}").into_bytes(),
            Record::AnalyticsDay(t, day, _) => tkey(*t, "analytics-day", day),
            Record::AnalyticsMonth((t, y, m), _) => {
                tkey(*t, "analytics-month", format!("{y:04}-{m:02}"))
            }
            Record::AnalyticsVisitor(k, _) => Record::visitor_key(k),
            Record::Site(s) => tkey(s.tenant, "site", "0"),
            Record::Enquiry(e) => tkey(e.tenant, "enquiry", id20(e.id)),
            Record::SignInGuard(g) => tkey(g.tenant, "sign-in-guard", id20(g.user)),
            Record::Quotas(_) => b"cluster/quotas".to_vec(),
        }
    }

    pub(super) fn visitor_key((day, tenant, id): &VisitorKey) -> Vec<u8> {
        format!("analytics/visitor/{day}/{tenant:020}/{}", hex::encode(id)).into_bytes()
    }

    pub(super) fn decode(v: &[u8]) -> Result<Self, String> {
        codec::decode(v).map_err(|e| e.to_string())
    }

    pub(super) fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
}

/// Version 2 is the oldest record format read (version 1 was never released). A change of any
/// type a record holds adds a version: `docs/ARCHITECTURE.md`, "Changing a stored shape".
impl Migrate for Record {
    const VERSION: u8 = STATE_FORMAT;
    type Previous = NoPrevious;
    fn migrate(previous: NoPrevious) -> Self {
        match previous {}
    }
}

/// The whole replicated state of every tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookings {
    pub tenants: BTreeMap<TenantId, Tenant>,
    pub rooms: BTreeMap<RoomId, Room>,
    /// Shared, as below: a change stores a new booking rather than editing one in place.
    pub bookings: BTreeMap<BookingId, Arc<Booking>>,
    pub users: BTreeMap<UserId, User>,
    pub departments: BTreeMap<DepartmentId, Department>,
    pub calendars: BTreeMap<TenantId, Calendar>,
    pub lessons: BTreeMap<LessonId, Lesson>,
    pub series: BTreeMap<SeriesId, Series>,
    /// Entries and request-key records never change once written: shared, so copying the state
    /// (for a backup or a snapshot, while writes wait) copies a pointer, not their strings.
    pub audit: BTreeMap<u64, Arc<AuditEntry>>,
    /// By SHA-256 of the secret.
    pub tokens: BTreeMap<String, ApiToken>,
    pub sessions: BTreeMap<String, Session>,
    pub feeds: BTreeMap<String, Feed>,
    /// Bookings holding each room's slots, by start: disjoint intervals, so overlap is a range probe.
    pub room_schedule: BTreeMap<RoomId, BTreeMap<(Timestamp, BookingId), Timestamp>>,
    pub(super) room_lessons: BTreeMap<RoomId, BTreeSet<LessonId>>,
    pub(super) user_bookings: BTreeMap<UserId, BTreeSet<BookingId>>,
    /// (tenant, lowercase username or email) → user.
    pub(super) logins: BTreeMap<(TenantId, String), UserId>,
    pub(super) slugs: BTreeMap<String, TenantId>,
    dedup: BTreeMap<String, Arc<Dedup>>,
    dedup_expiry: BTreeSet<(Timestamp, String)>,
    session_expiry: BTreeSet<(Timestamp, String)>,
    /// The latest command time applied; drives expiry deterministically.
    pub(super) clock: Timestamp,
    pub identity: Option<ClusterIdentity>,
    /// The most recent scheduled backup slots, by slot start.
    pub backups: BTreeMap<Timestamp, BackupSlot>,
    /// Usage analytics of every tenant.
    pub tally: Tally,
    /// Salts keying visitor ids, by UTC day (yesterday's and today's only).
    pub(super) salts: BTreeMap<jiff::civil::Date, String>,
    /// Public facilities websites, by tenant.
    pub sites: BTreeMap<TenantId, Site>,
    pub enquiries: BTreeMap<EnquiryId, Enquiry>,
    /// Failed sign-ins per account, by user; dropped once their bucket is empty and unlocked.
    pub sign_in_guards: BTreeMap<UserId, SignInGuard>,
    pub(super) guard_expiry: BTreeSet<(Timestamp, UserId)>,
    /// Per-school caps on stored records, and what each school stores (derived, not stored).
    /// `None` until an operator sets them: the defaults apply.
    pub quotas: Option<Quotas>,
    pub(super) counts: BTreeMap<(TenantId, Kind), u64>,
    /// Ids already handed out in the log entry being applied.
    pub(super) entry_ids: EntryIds,
}

/// How many ids the commands of one log entry applied so far used. Not part of the state: an
/// entry is applied whole or not at all, so after a restart or a snapshot install the next entry
/// starts afresh; it compares equal whatever it holds.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct EntryIds {
    index: u64,
    used: u64,
}

impl PartialEq for EntryIds {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for EntryIds {}

/// One command being applied: where ids and times come from.
pub(super) struct Ctx<'a> {
    pub index: u64,
    pub time: Timestamp,
    pub actor: &'a Actor,
    /// The command's version (`LogCommand`): which rules apply to it.
    pub version: u8,
    next_id: u64,
}

/// Ids are the log index times this plus a sequence through the entry's commands (several share
/// an entry under load): unique, deterministic, and exact as JSON numbers (below 2^53) for the
/// first nine billion log entries.
pub const IDS_PER_ENTRY: u64 = 1_000_000;

impl Ctx<'_> {
    /// Whether rules introduced with command version `version` apply to this command.
    pub fn since(&self, version: u8) -> bool {
        self.version >= version
    }

    /// A fresh id for an object this command creates.
    pub fn new_id(&mut self) -> u64 {
        let id = self.index * IDS_PER_ENTRY + self.next_id;
        self.next_id += 1;
        id
    }

    /// How many more ids this command may take.
    pub fn ids_left(&self) -> u64 {
        IDS_PER_ENTRY - self.next_id
    }
}

pub(super) type Res = Result<Outcome, Rejection>;

pub(super) fn invalid(field: &str, message: impl Into<String>) -> Rejection {
    Rejection::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

pub(super) fn not_found(what: &str, id: impl ToString) -> Rejection {
    Rejection::NotFound {
        what: what.into(),
        id: id.to_string(),
    }
}

pub(super) fn forbidden(reason: &str) -> Rejection {
    Rejection::Forbidden {
        reason: reason.into(),
    }
}

/// Checks that hold for every replica regardless of the HTTP layer's own validation.
pub(super) fn text(field: &str, value: &str, max: usize, required: bool) -> Result<(), Rejection> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

pub(super) fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("in-memory value serializes")
}

impl Bookings {
    /// Writes `record` and indexes it in memory.
    pub(super) fn store(&mut self, record: Record, writes: &mut WriteSet) {
        writes.put(record.key(), record.encode());
        self.index(record);
    }

    /// Deletes `record` from storage and memory.
    pub(super) fn discard(&mut self, record: Record, writes: &mut WriteSet) {
        writes.delete(record.key());
        match record {
            Record::Session(s) => {
                self.sessions.remove(&s.sha256);
                self.session_expiry.remove(&(s.expires_at, s.sha256));
            }
            Record::Department(d) => {
                if self.departments.remove(&d.id).is_some() {
                    self.count(d.tenant, Kind::Department, -1);
                }
            }
            Record::Lesson(l) => {
                if self.lessons.remove(&l.id).is_some() {
                    self.count(l.tenant, Kind::Lesson, -1);
                }
                if let Some(set) = self.room_lessons.get_mut(&l.room) {
                    set.remove(&l.id);
                    if set.is_empty() {
                        self.room_lessons.remove(&l.room);
                    }
                }
            }
            Record::Dedup(k, d) => {
                self.dedup.remove(&k);
                self.dedup_expiry.remove(&(d.expires_at, k));
            }
            Record::BackupSlot(b) => {
                self.backups.remove(&b.slot);
            }
            Record::AnalyticsSalt(day, _) => {
                self.salts.remove(&day);
            }
            Record::SignInGuard(g) => {
                self.guard_expiry.remove(&(g.expires_at(), g.user));
                self.sign_in_guards.remove(&g.user);
            }
            other => unreachable!("records of this kind are never deleted: {other:?}"),
        }
    }

    fn index(&mut self, record: Record) {
        match record {
            Record::Tenant(t) => {
                self.slugs.insert(t.slug.clone(), t.id);
                self.tenants.insert(t.id, t);
            }
            Record::Room(r) => {
                let tenant = r.tenant;
                if self.rooms.insert(r.id, r).is_none() {
                    self.count(tenant, Kind::Room, 1);
                }
            }
            Record::Booking(b) => {
                let schedule = self.room_schedule.entry(b.room).or_default();
                if b.status.holds_slot() {
                    schedule.insert((b.start, b.id), b.end);
                } else {
                    schedule.remove(&(b.start, b.id));
                }
                if let Some(u) = b.user {
                    self.user_bookings.entry(u).or_default().insert(b.id);
                }
                let tenant = b.tenant;
                if self.bookings.insert(b.id, Arc::new(b)).is_none() {
                    self.count(tenant, Kind::Booking, 1);
                }
            }
            Record::Token(t) => {
                let was = self
                    .tokens
                    .get(&t.sha256)
                    .is_some_and(|o| o.revoked_at.is_none());
                let is = t.revoked_at.is_none();
                self.count(t.tenant, Kind::Token, is as i64 - was as i64);
                self.tokens.insert(t.sha256.clone(), t);
            }
            Record::Dedup(k, d) => {
                if let Some(old) = self.dedup.get(&k) {
                    self.dedup_expiry.remove(&(old.expires_at, k.clone()));
                }
                self.dedup_expiry.insert((d.expires_at, k.clone()));
                self.dedup.insert(k, Arc::new(d));
            }
            Record::Clock(c) => self.clock = c,
            Record::User(u) => {
                if let Some(old) = self.users.get(&u.id) {
                    let (t, name, mail) = (old.tenant, old.username.clone(), old.email.clone());
                    self.logins.remove(&(t, name.to_lowercase()));
                    self.logins.remove(&(t, mail.to_lowercase()));
                }
                self.logins
                    .insert((u.tenant, u.username.to_lowercase()), u.id);
                if !u.email.is_empty() {
                    self.logins.insert((u.tenant, u.email.to_lowercase()), u.id);
                }
                let tenant = u.tenant;
                if self.users.insert(u.id, u).is_none() {
                    self.count(tenant, Kind::User, 1);
                }
            }
            Record::Department(d) => {
                let tenant = d.tenant;
                if self.departments.insert(d.id, d).is_none() {
                    self.count(tenant, Kind::Department, 1);
                }
            }
            Record::Session(s) => {
                self.session_expiry.insert((s.expires_at, s.sha256.clone()));
                self.sessions.insert(s.sha256.clone(), s);
            }
            Record::Calendar(t, c) => {
                self.calendars.insert(t, c);
            }
            Record::Lesson(l) => {
                self.room_lessons.entry(l.room).or_default().insert(l.id);
                let tenant = l.tenant;
                if self.lessons.insert(l.id, l).is_none() {
                    self.count(tenant, Kind::Lesson, 1);
                }
            }
            Record::Series(s) => {
                self.series.insert(s.id, s);
            }
            Record::Feed(f) => {
                let was = self
                    .feeds
                    .get(&f.sha256)
                    .is_some_and(|o| o.revoked_at.is_none());
                let is = f.revoked_at.is_none();
                self.count(f.tenant, Kind::Feed, is as i64 - was as i64);
                self.feeds.insert(f.sha256.clone(), f);
            }
            Record::Audit(a) => {
                self.audit.insert(a.id, Arc::new(a));
            }
            Record::Identity(i) => self.identity = Some(i),
            Record::BackupSlot(b) => {
                self.backups.insert(b.slot, b);
            }
            Record::AnalyticsSalt(day, salt) => {
                self.salts.insert(day, salt);
            }
            Record::AnalyticsDay(t, day, stats) => {
                self.tally.days.insert((t, day), stats);
            }
            Record::AnalyticsMonth(key, totals) => {
                self.tally.months.insert(key, totals);
            }
            Record::AnalyticsVisitor(key, v) => {
                self.tally.visitors.insert(key, v);
            }
            Record::Site(site) => {
                self.sites.insert(site.tenant, site);
            }
            Record::Enquiry(e) => {
                let tenant = e.tenant;
                if self.enquiries.insert(e.id, e).is_none() {
                    self.count(tenant, Kind::Enquiry, 1);
                }
            }
            Record::SignInGuard(g) => {
                if let Some(old) = self.sign_in_guards.get(&g.user) {
                    self.guard_expiry.remove(&(old.expires_at(), old.user));
                }
                self.guard_expiry.insert((g.expires_at(), g.user));
                self.sign_in_guards.insert(g.user, g);
            }
            Record::Quotas(q) => self.quotas = Some(q),
        }
    }

    /// Appends an audit entry: who changed what, with the object before and after.
    // Each argument is one column of the entry; a struct for them would only be built here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn audit(
        &mut self,
        ctx: &mut Ctx,
        tenant: TenantId,
        object: (&str, u64),
        action: &str,
        before: Option<String>,
        after: Option<String>,
        writes: &mut WriteSet,
    ) {
        let entry = AuditEntry {
            id: ctx.new_id(),
            tenant,
            at: ctx.time,
            actor: ctx.actor.name.clone(),
            user: ctx.actor.user,
            object: object.0.into(),
            object_id: object.1,
            action: action.into(),
            before,
            after,
        };
        self.store(Record::Audit(entry), writes);
    }

    /// The tenant the actor belongs to, if it exists and is not suspended.
    pub(super) fn member(&self, ctx: &Ctx, tenant: TenantId) -> Result<&Tenant, Rejection> {
        let t = self
            .tenants
            .get(&tenant)
            .filter(|_| ctx.actor.tenant == Some(tenant))
            .ok_or_else(|| not_found("tenant", tenant))?;
        if t.suspended {
            return Err(forbidden("this tenant is suspended"));
        }
        Ok(t)
    }

    pub(super) fn admin(&self, ctx: &Ctx, tenant: TenantId) -> Result<&Tenant, Rejection> {
        let t = self.member(ctx, tenant)?;
        if ctx.actor.role != Role::Admin {
            return Err(forbidden("only a tenant admin may do this"));
        }
        Ok(t)
    }

    /// Whether `c` still authenticates `actor` at `now`: a token not revoked, of a school not
    /// suspended, or a session not ended.
    fn credential_live(&self, c: &Credential, actor: &Actor, now: Timestamp) -> bool {
        match c {
            Credential::Token(sha) => self.token(sha).is_some_and(|t| {
                Some(t.tenant) == actor.tenant
                    && self.tenants.get(&t.tenant).is_some_and(|x| !x.suspended)
            }),
            Credential::Session(sha) => self
                .live_session(sha, now)
                .is_some_and(|(s, _)| Some(s.user) == actor.user),
        }
    }

    pub fn token(&self, sha256: &str) -> Option<&ApiToken> {
        self.tokens.get(sha256).filter(|t| t.revoked_at.is_none())
    }

    pub fn calendar(&self, tenant: TenantId) -> Calendar {
        self.calendars.get(&tenant).cloned().unwrap_or_default()
    }

    fn expire(&mut self, writes: &mut WriteSet) {
        while let Some((at, k)) = self.dedup_expiry.first().cloned() {
            if at > self.clock {
                break;
            }
            let d = Dedup::clone(&self.dedup[&k]);
            self.discard(Record::Dedup(k, d), writes);
        }
        while let Some((at, k)) = self.session_expiry.first().cloned() {
            if at > self.clock {
                break;
            }
            let s = self.sessions[&k].clone();
            self.discard(Record::Session(s), writes);
        }
        while let Some((at, user)) = self.guard_expiry.first().copied() {
            if at > self.clock {
                break;
            }
            let g = self.sign_in_guards[&user].clone();
            self.discard(Record::SignInGuard(g), writes);
        }
        self.expire_analytics(writes);
    }

    /// Hands the command to its business area.
    fn execute(&mut self, ctx: &mut Ctx, op: &Op, writes: &mut WriteSet) -> Res {
        match op {
            Op::School(op) => self.apply_school(ctx, op, writes),
            Op::People(op) => self.apply_people(ctx, op, writes),
            Op::Booking(op) => self.apply_booking(ctx, op, writes),
            Op::Feeds(op) => self.apply_feeds(ctx, op, writes),
            Op::Venue(op) => self.apply_venue(ctx, op, writes),
            Op::Analytics(op) => self.apply_analytics(ctx, op, writes),
            Op::System(op) => self.apply_system(ctx, op, writes),
        }
    }
}

impl App for Bookings {
    type Command = LogCommand;
    type Outcome = Outcome;

    fn apply(&mut self, index: u64, command: LogCommand, writes: &mut WriteSet) -> Outcome {
        let (version, cmd, credential) = command.into_parts();
        if cmd.time > self.clock {
            self.clock = cmd.time;
            writes.put(b"clock".to_vec(), Record::Clock(self.clock).encode());
            self.expire(writes);
        }
        let fingerprint = hex::encode(Sha256::digest(
            bincode::serialize(&cmd.op).expect("op serializes"),
        ));
        if let Some(seen) = self.dedup.get(&cmd.request_key) {
            if seen.fingerprint != fingerprint {
                return Outcome::Rejected(Rejection::IdempotencyKeyReused);
            }
            return seen.outcome.clone();
        }
        if let Some(c) = &credential {
            if !self.credential_live(c, &cmd.actor, cmd.time) {
                // Not remembered: the key's owner may still send it with a live credential.
                return Outcome::Rejected(Rejection::Unauthorized);
            }
        }
        if self.entry_ids.index != index {
            self.entry_ids = EntryIds { index, used: 0 };
        }
        if self.entry_ids.used >= IDS_PER_ENTRY / 2 {
            // Unreachable while the cluster gives large commands an entry of their own; refused
            // rather than risk an id of the next entry, and not remembered, so a retry can pass.
            return Outcome::Rejected(invalid(
                "request",
                "too large to share a log entry with others; send it again",
            ));
        }
        let mut ctx = Ctx {
            index,
            time: cmd.time,
            actor: &cmd.actor,
            version,
            next_id: self.entry_ids.used,
        };
        // Every handler validates before it writes, so a rejection leaves no partial change.
        let outcome = self
            .execute(&mut ctx, &cmd.op, writes)
            .unwrap_or_else(Outcome::Rejected);
        self.entry_ids.used = ctx.next_id;
        let ttl = if cmd.request_key.starts_with("idem/") {
            IDEMPOTENCY_TTL
        } else {
            INTERNAL_KEY_TTL
        };
        let expires_at = cmd
            .time
            .saturating_add(ttl)
            .expect("saturating add of a fixed span");
        let entry = Dedup {
            fingerprint,
            outcome: outcome.clone(),
            expires_at,
        };
        self.store(Record::Dedup(cmd.request_key, entry), writes);
        outcome
    }

    fn load(records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Self, LoadError> {
        let mut s = Bookings::default();
        for (k, v) in records {
            let err = |reason: String| LoadError {
                key: String::from_utf8_lossy(&k).into_owned(),
                reason,
            };
            s.index(Record::decode(&v).map_err(err)?);
        }
        Ok(s)
    }

    fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all: Vec<Record> = Vec::new();
        all.push(Record::Clock(self.clock));
        all.extend(self.tenants.values().cloned().map(Record::Tenant));
        all.extend(self.rooms.values().cloned().map(Record::Room));
        all.extend(
            self.bookings
                .values()
                .map(|b| Record::Booking(Booking::clone(b))),
        );
        all.extend(self.tokens.values().cloned().map(Record::Token));
        all.extend(
            self.dedup
                .iter()
                .map(|(k, d)| Record::Dedup(k.clone(), Dedup::clone(d))),
        );
        all.extend(self.users.values().cloned().map(Record::User));
        all.extend(self.departments.values().cloned().map(Record::Department));
        all.extend(self.sessions.values().cloned().map(Record::Session));
        all.extend(
            self.calendars
                .iter()
                .map(|(t, c)| Record::Calendar(*t, c.clone())),
        );
        all.extend(self.lessons.values().cloned().map(Record::Lesson));
        all.extend(self.series.values().cloned().map(Record::Series));
        all.extend(self.feeds.values().cloned().map(Record::Feed));
        all.extend(
            self.audit
                .values()
                .map(|a| Record::Audit(AuditEntry::clone(a))),
        );
        all.extend(self.identity.clone().map(Record::Identity));
        all.extend(self.backups.values().cloned().map(Record::BackupSlot));
        all.extend(
            self.salts
                .iter()
                .map(|(d, s)| Record::AnalyticsSalt(*d, s.clone())),
        );
        all.extend(
            self.tally
                .days
                .iter()
                .map(|(&(t, d), s)| Record::AnalyticsDay(t, d, s.clone())),
        );
        all.extend(
            self.tally
                .months
                .iter()
                .map(|(k, t)| Record::AnalyticsMonth(*k, *t)),
        );
        all.extend(
            self.tally
                .visitors
                .iter()
                .map(|(k, v)| Record::AnalyticsVisitor(*k, v.clone())),
        );
        all.extend(self.sites.values().cloned().map(Record::Site));
        all.extend(self.enquiries.values().cloned().map(Record::Enquiry));
        all.extend(
            self.sign_in_guards
                .values()
                .cloned()
                .map(Record::SignInGuard),
        );
        all.extend(self.quotas.clone().map(Record::Quotas));
        all.into_iter().map(|r| (r.key(), r.encode())).collect()
    }

    fn backup_records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut all = self.records();
        all.retain(|(k, _)| !k.starts_with(PRIVATE_PREFIX));
        all
    }
}

#[cfg(test)]
mod tests;
