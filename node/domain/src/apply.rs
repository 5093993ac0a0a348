//! The replicated state and its apply function: deduplication, records, audit, and the hand-off
//! of each command to its business area (`school`, `people`, `booking`, `feeds`, `venue`,
//! `analytics`, `system`; one folder each).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use roomraft_replicated::{App, LoadError, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::quotas::Kind;
use crate::analytics::AnalyticsState;
use crate::analytics::PRIVATE_PREFIX;
use crate::audit::AuditLog;
use crate::booking::BookingState;
use crate::feeds::FeedState;
use crate::model::{
    Actor, ApiToken, AuditEntry, Booking, Calendar, Credential, LogCommand, Outcome, Rejection,
    Role, Tenant, TenantId,
};
use crate::op::Op;
use crate::people::PeopleState;
use crate::records::Record;
use crate::school::SchoolState;
use crate::system::SystemState;
use crate::venue::VenueState;

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

/// A remembered request as memory holds it: the fingerprint as bytes, the outcome encoded (it is
/// read again only when the request is retried) or, for a new booking, shared with the state,
/// and the key shared with the expiry index. Under load the cluster remembers every request of
/// the last ten minutes, millions of them; this is about a third of a `Dedup`'s size.
#[derive(Debug)]
struct Remembered {
    fingerprint: Fingerprint,
    expires_at: Timestamp,
    outcome: Kept,
}

/// An outcome as remembered.
#[derive(Debug)]
enum Kept {
    Encoded(Box<[u8]>),
    /// `Outcome::BookingCreated` of the booking the state holds, unchanged since.
    Booked(Arc<Booking>),
}

/// Equal when they say the same, however the outcome is kept.
impl PartialEq for Remembered {
    fn eq(&self, other: &Self) -> bool {
        self.fingerprint == other.fingerprint
            && self.expires_at == other.expires_at
            && self.outcome() == other.outcome()
    }
}

impl Eq for Remembered {}

/// A request's fingerprint: the SHA-256 that apply writes, as bytes, or any other text as is.
#[derive(Debug, PartialEq, Eq)]
enum Fingerprint {
    Sha256([u8; 32]),
    Other(Box<str>),
}

impl Fingerprint {
    fn of(hex_text: &str) -> Fingerprint {
        let mut bytes = [0u8; 32];
        match hex::decode_to_slice(hex_text, &mut bytes) {
            Ok(()) if hex_text.bytes().all(|b| !b.is_ascii_uppercase()) => {
                Fingerprint::Sha256(bytes)
            }
            _ => Fingerprint::Other(hex_text.into()),
        }
    }

    fn text(&self) -> String {
        match self {
            Fingerprint::Sha256(bytes) => hex::encode(bytes),
            Fingerprint::Other(text) => text.to_string(),
        }
    }
}

impl Remembered {
    /// `booked` is the state's copy of the booking the outcome created, if it has one.
    fn new(d: &Dedup, booked: Option<&Arc<Booking>>) -> Remembered {
        let outcome = match (&d.outcome, booked) {
            (Outcome::BookingCreated(b), Some(held)) if **held == *b => Kept::Booked(held.clone()),
            (outcome, _) => Kept::Encoded(
                bincode::serialize(outcome)
                    .expect("an outcome serializes")
                    .into_boxed_slice(),
            ),
        };
        Remembered {
            fingerprint: Fingerprint::of(&d.fingerprint),
            expires_at: d.expires_at,
            outcome,
        }
    }

    fn outcome(&self) -> Outcome {
        match &self.outcome {
            Kept::Encoded(bytes) => {
                bincode::deserialize(bytes).expect("an outcome this node encoded decodes")
            }
            Kept::Booked(b) => Outcome::BookingCreated(Booking::clone(b)),
        }
    }

    fn dedup(&self) -> Dedup {
        Dedup {
            fingerprint: self.fingerprint.text(),
            outcome: self.outcome(),
            expires_at: self.expires_at,
        }
    }
}

/// The records every area shares: remembered requests, the clock, the audit trail.
#[derive(Debug, Clone)]
pub(crate) enum CoreRecord {
    Dedup((String, Dedup)),
    Clock(Timestamp),
    Audit(AuditEntry),
}

impl CoreRecord {
    pub(crate) fn key(&self) -> Vec<u8> {
        match self {
            CoreRecord::Dedup((k, _)) => format!("dedup/{k}").into_bytes(),
            CoreRecord::Clock(_) => b"clock".to_vec(),
            CoreRecord::Audit(a) => tkey(a.tenant, "audit", id20(a.id)),
        }
    }
}

impl From<CoreRecord> for Record {
    fn from(record: CoreRecord) -> Record {
        Record::Core(record)
    }
}

pub(crate) fn tkey(tenant: TenantId, kind: &str, id: impl std::fmt::Display) -> Vec<u8> {
    format!("t/{tenant:020}/{kind}/{id}").into_bytes()
}

pub(crate) fn id20(id: u64) -> String {
    format!("{id:020}")
}

/// The whole replicated state of every tenant: each business area's own, and what they share.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookings {
    pub(crate) school: SchoolState,
    pub(crate) people: PeopleState,
    pub(crate) booking: BookingState,
    pub(crate) feeds: FeedState,
    pub(crate) venue: VenueState,
    pub(crate) analytics: AnalyticsState,
    pub(crate) system: SystemState,
    /// The audit history, compressed (`audit.rs`).
    pub(crate) audit: AuditLog,
    /// Request-key records, in structurally shared maps (like the booking area's): under load
    /// there are millions, and copying the state (for a backup or a snapshot, while writes wait)
    /// copies the maps' roots.
    dedup: imbl::OrdMap<Arc<str>, Arc<Remembered>>,
    dedup_expiry: imbl::OrdSet<(Timestamp, Arc<str>)>,
    /// The latest command time applied; drives expiry deterministically.
    pub(crate) clock: Timestamp,
    /// What each school stores, by kind (derived, not stored): what quotas are checked against.
    pub(crate) counts: BTreeMap<(TenantId, Kind), u64>,
    /// Ids already handed out in the log entry being applied.
    pub(crate) entry_ids: EntryIds,
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
    pub(super) fn store(&mut self, record: impl Into<Record>, writes: &mut WriteSet) {
        let record = record.into();
        writes.put(record.key(), record.encode());
        self.index(record);
    }

    /// Deletes `record` from storage and memory.
    pub(super) fn discard(&mut self, record: impl Into<Record>, writes: &mut WriteSet) {
        let record = record.into();
        writes.delete(record.key());
        match record {
            Record::School(r) => self.discard_school(r),
            Record::People(r) => self.discard_people(r),
            Record::Analytics(r) => self.discard_analytics(r),
            Record::System(r) => self.discard_system(r),
            Record::Core(CoreRecord::Dedup((k, d))) => {
                self.dedup.remove(k.as_str());
                self.dedup_expiry.remove(&(d.expires_at, Arc::from(k)));
            }
            other => unreachable!("records of this kind are never deleted: {other:?}"),
        }
    }

    /// Indexes a record read or written in memory: each area its own.
    fn index(&mut self, record: Record) {
        match record {
            Record::School(r) => self.index_school(r),
            Record::People(r) => self.index_people(r),
            Record::Booking(r) => self.index_booking(r),
            Record::Feeds(r) => self.index_feeds(r),
            Record::Venue(r) => self.index_venue(r),
            Record::Analytics(r) => self.index_analytics(r),
            Record::System(r) => self.index_system(r),
            Record::Core(CoreRecord::Dedup((k, d))) => {
                let k: Arc<str> = k.into();
                if let Some(old) = self.dedup.get(&k) {
                    self.dedup_expiry.remove(&(old.expires_at, k.clone()));
                }
                self.dedup_expiry.insert((d.expires_at, k.clone()));
                let booked = match &d.outcome {
                    Outcome::BookingCreated(b) => self.booking.bookings().get(&b.id),
                    _ => None,
                };
                let remembered = Remembered::new(&d, booked);
                self.dedup.insert(k, Arc::new(remembered));
            }
            Record::Core(CoreRecord::Clock(c)) => self.clock = c,
            Record::Core(CoreRecord::Audit(a)) => {
                self.audit.insert(a);
            }
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
        self.store(CoreRecord::Audit(entry), writes);
    }

    /// The tenant the actor belongs to, if it exists and is not suspended.
    pub(super) fn member(&self, ctx: &Ctx, tenant: TenantId) -> Result<&Tenant, Rejection> {
        let t = self
            .school
            .tenants()
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
                    && self
                        .school
                        .tenants()
                        .get(&t.tenant)
                        .is_some_and(|x| !x.suspended)
            }),
            Credential::Session(sha) => self
                .live_session(sha, now)
                .is_some_and(|(s, _)| Some(s.user) == actor.user),
        }
    }

    pub fn token(&self, sha256: &str) -> Option<&ApiToken> {
        self.people
            .tokens()
            .get(sha256)
            .filter(|t| t.revoked_at.is_none())
    }

    pub fn calendar(&self, tenant: TenantId) -> Calendar {
        self.school
            .calendars()
            .get(&tenant)
            .cloned()
            .unwrap_or_default()
    }

    fn expire(&mut self, writes: &mut WriteSet) {
        while let Some((at, k)) = self.dedup_expiry.get_min().cloned() {
            if at > self.clock {
                break;
            }
            let d = self.dedup[&k].dedup();
            self.discard(CoreRecord::Dedup((k.to_string(), d)), writes);
        }
        self.expire_people(writes);
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
            self.store(CoreRecord::Clock(self.clock), writes);
            self.expire(writes);
        }
        let fingerprint = hex::encode(Sha256::digest(
            bincode::serialize(&cmd.op).expect("op serializes"),
        ));
        if let Some(seen) = self.dedup.get(cmd.request_key.as_str()) {
            if seen.fingerprint != Fingerprint::of(&fingerprint) {
                return Outcome::Rejected(Rejection::IdempotencyKeyReused);
            }
            return seen.outcome();
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
        self.store(CoreRecord::Dedup((cmd.request_key, entry)), writes);
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
        let mut all: Vec<Record> = vec![CoreRecord::Clock(self.clock).into()];
        self.school_records(&mut all);
        self.people_records(&mut all);
        self.booking_records(&mut all);
        self.feed_records(&mut all);
        self.venue_records(&mut all);
        self.analytics_records(&mut all);
        self.system_records(&mut all);
        let dedup = (self.dedup.iter()).map(|(k, d)| CoreRecord::Dedup((k.to_string(), d.dedup())));
        let audit = (self.audit.all()).map(|a| CoreRecord::Audit(Arc::unwrap_or_clone(a)));
        all.extend(dedup.chain(audit).map(Record::Core));
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
