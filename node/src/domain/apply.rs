use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use roomraft_cluster::{App, LoadError, WriteSet};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::*;

/// Version of the record encoding below; bump with a migration when a record changes shape.
pub const STATE_FORMAT: u8 = 1;

/// How long a client's Idempotency-Key is remembered.
const IDEMPOTENCY_TTL: SignedDuration = SignedDuration::from_hours(24);
/// How long a key the node generated for one request is remembered (covers forwarding retries).
const INTERNAL_KEY_TTL: SignedDuration = SignedDuration::from_mins(10);
/// Longest booking accepted.
const MAX_BOOKING: SignedDuration = SignedDuration::from_hours(24 * 14);

/// A remembered request: what it asked (fingerprint) and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    pub fingerprint: String,
    pub outcome: Outcome,
    pub expires_at: Timestamp,
}

/// A persisted record; the enum is the record format's version tag (variants only appended).
#[derive(Serialize, Deserialize)]
enum Record {
    Tenant(Tenant),
    Room(Room),
    Booking(Booking),
    Token(ApiToken),
    Dedup(String, Dedup),
    Clock(Timestamp),
}

/// The whole replicated booking state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookings {
    pub tenants: BTreeMap<TenantId, Tenant>,
    pub rooms: BTreeMap<RoomId, Room>,
    pub bookings: BTreeMap<BookingId, Booking>,
    pub tokens: HashMap<String, ApiToken>,
    /// Active bookings of each room, by start: disjoint intervals, so overlap is a range probe.
    pub room_schedule: HashMap<RoomId, BTreeMap<(Timestamp, BookingId), Timestamp>>,
    slugs: HashMap<String, TenantId>,
    dedup: HashMap<String, Dedup>,
    dedup_expiry: BTreeSet<(Timestamp, String)>,
    /// The latest command time applied; drives expiry deterministically.
    clock: Timestamp,
}

fn key(kind: &str, id: u64) -> Vec<u8> {
    format!("{kind}/{id:020}").into_bytes()
}

fn encode(record: &Record) -> Vec<u8> {
    let mut v = vec![STATE_FORMAT];
    v.extend(bincode::serialize(record).expect("in-memory record serializes"));
    v
}

fn reject_invalid(field: &str, message: impl Into<String>) -> Outcome {
    Outcome::Rejected(Rejection::Invalid {
        field: field.into(),
        message: message.into(),
    })
}

fn not_found(what: &str, id: impl ToString) -> Outcome {
    Outcome::Rejected(Rejection::NotFound {
        what: what.into(),
        id: id.to_string(),
    })
}

/// Checks that hold for every replica regardless of the HTTP layer's own validation.
fn validate_text(field: &str, value: &str, max: usize, required: bool) -> Option<Outcome> {
    if required && value.trim().is_empty() {
        return Some(reject_invalid(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Some(reject_invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    None
}

impl Bookings {
    /// Active bookings of `room` overlapping `[from, to)`, by start.
    pub fn bookings_in(&self, room: RoomId, from: Timestamp, to: Timestamp) -> Vec<&Booking> {
        let Some(schedule) = self.room_schedule.get(&room) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // The one booking starting before `from` may still run into the window.
        if let Some(((_, id), end)) = schedule.range(..(from, 0)).next_back() {
            if *end > from {
                out.push(&self.bookings[id]);
            }
        }
        for ((start, id), _) in schedule.range((from, 0)..) {
            if *start >= to {
                break;
            }
            out.push(&self.bookings[id]);
        }
        out
    }

    /// The first active booking of `room` overlapping `[start, end)`.
    fn conflict(&self, room: RoomId, start: Timestamp, end: Timestamp) -> Option<&Booking> {
        self.bookings_in(room, start, end).into_iter().next()
    }

    pub fn token(&self, sha256: &str) -> Option<&ApiToken> {
        self.tokens.get(sha256)
    }

    fn put_booking(&mut self, b: Booking, writes: &mut WriteSet) {
        writes.put(key("booking", b.id), encode(&Record::Booking(b.clone())));
        let schedule = self.room_schedule.entry(b.room).or_default();
        match b.status {
            BookingStatus::Active => {
                schedule.insert((b.start, b.id), b.end);
            }
            BookingStatus::Cancelled => {
                schedule.remove(&(b.start, b.id));
            }
        }
        self.bookings.insert(b.id, b);
    }

    fn expire_dedup(&mut self, writes: &mut WriteSet) {
        while let Some((at, k)) = self.dedup_expiry.first().cloned() {
            if at > self.clock {
                break;
            }
            self.dedup_expiry.pop_first();
            self.dedup.remove(&k);
            writes.delete(format!("dedup/{k}").into_bytes());
        }
    }

    fn execute(&mut self, index: u64, cmd: &Command, writes: &mut WriteSet) -> Outcome {
        let t = cmd.time;
        match &cmd.op {
            Op::CreateTenant {
                slug,
                name,
                time_zone,
                admin_token_sha256,
            } => {
                if cmd.actor.role != Role::Operator {
                    return Outcome::Rejected(Rejection::Forbidden {
                        reason: "only an operator creates tenants".into(),
                    });
                }
                if let Some(o) = validate_text("name", name, 200, true) {
                    return o;
                }
                if slug.is_empty()
                    || slug.len() > 64
                    || !slug
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                {
                    return reject_invalid(
                        "slug",
                        "use 1 to 64 lowercase letters, digits and hyphens",
                    );
                }
                if jiff::tz::TimeZone::get(time_zone).is_err() {
                    return reject_invalid(
                        "time_zone",
                        format!("unknown IANA time zone {time_zone:?}"),
                    );
                }
                if self.slugs.contains_key(slug) {
                    return Outcome::Rejected(Rejection::AlreadyExists {
                        what: "tenant".into(),
                        key: slug.clone(),
                    });
                }
                let tenant = Tenant {
                    id: index,
                    slug: slug.clone(),
                    name: name.clone(),
                    time_zone: time_zone.clone(),
                    created_at: t,
                };
                let token = ApiToken {
                    sha256: admin_token_sha256.clone(),
                    tenant: index,
                    role: Role::Admin,
                    name: "admin".into(),
                    created_at: t,
                };
                writes.put(
                    key("tenant", index),
                    encode(&Record::Tenant(tenant.clone())),
                );
                writes.put(
                    format!("token/{}", token.sha256).into_bytes(),
                    encode(&Record::Token(token.clone())),
                );
                self.slugs.insert(slug.clone(), index);
                self.tokens.insert(token.sha256.clone(), token);
                self.tenants.insert(index, tenant.clone());
                Outcome::TenantCreated(tenant)
            }
            Op::CreateRoom {
                tenant,
                name,
                category,
                capacity,
            } => {
                if let Some(o) = self.require_admin(cmd, *tenant) {
                    return o;
                }
                if let Some(o) = validate_text("name", name, 200, true)
                    .or_else(|| validate_text("category", category, 64, true))
                {
                    return o;
                }
                let room = Room {
                    id: index,
                    tenant: *tenant,
                    name: name.clone(),
                    category: category.clone(),
                    capacity: *capacity,
                    created_at: t,
                };
                writes.put(key("room", index), encode(&Record::Room(room.clone())));
                self.rooms.insert(index, room.clone());
                Outcome::RoomCreated(room)
            }
            Op::CreateBooking {
                tenant,
                room,
                start,
                end,
                title,
                notes,
            } => {
                if cmd.actor.tenant != Some(*tenant) {
                    return not_found("room", room);
                }
                if !self.rooms.get(room).is_some_and(|r| r.tenant == *tenant) {
                    return not_found("room", room);
                }
                if end <= start {
                    return reject_invalid("end", "must be after start");
                }
                if end.duration_since(*start) > MAX_BOOKING {
                    return reject_invalid("end", "a booking may last at most 14 days");
                }
                if let Some(o) = validate_text("title", title, 200, true)
                    .or_else(|| validate_text("notes", notes, 4000, false))
                {
                    return o;
                }
                if let Some(c) = self.conflict(*room, *start, *end) {
                    return Outcome::Rejected(Rejection::Conflict {
                        booking: c.id,
                        start: c.start,
                        end: c.end,
                    });
                }
                let booking = Booking {
                    id: index,
                    tenant: *tenant,
                    room: *room,
                    start: *start,
                    end: *end,
                    title: title.clone(),
                    notes: notes.clone(),
                    status: BookingStatus::Active,
                    created_by: cmd.actor.name.clone(),
                    created_at: t,
                    cancelled_at: None,
                };
                self.put_booking(booking.clone(), writes);
                Outcome::BookingCreated(booking)
            }
            Op::CancelBooking { tenant, booking } => {
                let Some(b) = self
                    .bookings
                    .get(booking)
                    .filter(|b| b.tenant == *tenant && cmd.actor.tenant == Some(*tenant))
                else {
                    return not_found("booking", booking);
                };
                if b.status == BookingStatus::Cancelled {
                    return Outcome::Rejected(Rejection::AlreadyCancelled { booking: *booking });
                }
                let mut b = b.clone();
                b.status = BookingStatus::Cancelled;
                b.cancelled_at = Some(t);
                self.put_booking(b.clone(), writes);
                Outcome::BookingCancelled(b)
            }
            Op::CreateToken {
                tenant,
                name,
                role,
                sha256,
            } => {
                if let Some(o) = self.require_admin(cmd, *tenant) {
                    return o;
                }
                if *role == Role::Operator {
                    return reject_invalid("role", "a tenant token cannot be an operator");
                }
                if let Some(o) = validate_text("name", name, 100, true) {
                    return o;
                }
                if self.tokens.contains_key(sha256) {
                    return Outcome::Rejected(Rejection::AlreadyExists {
                        what: "token".into(),
                        key: name.clone(),
                    });
                }
                let token = ApiToken {
                    sha256: sha256.clone(),
                    tenant: *tenant,
                    role: *role,
                    name: name.clone(),
                    created_at: t,
                };
                writes.put(
                    format!("token/{sha256}").into_bytes(),
                    encode(&Record::Token(token.clone())),
                );
                self.tokens.insert(sha256.clone(), token);
                Outcome::TokenCreated {
                    name: name.clone(),
                    role: *role,
                }
            }
        }
    }

    fn require_admin(&self, cmd: &Command, tenant: TenantId) -> Option<Outcome> {
        if cmd.actor.tenant != Some(tenant) || !self.tenants.contains_key(&tenant) {
            return Some(not_found("tenant", tenant));
        }
        if cmd.actor.role != Role::Admin {
            return Some(Outcome::Rejected(Rejection::Forbidden {
                reason: "only a tenant admin may do this".into(),
            }));
        }
        None
    }
}

impl App for Bookings {
    type Command = LogCommand;
    type Outcome = Outcome;

    fn apply(&mut self, index: u64, command: LogCommand, writes: &mut WriteSet) -> Outcome {
        let LogCommand::V1(cmd) = command;
        if cmd.time > self.clock {
            self.clock = cmd.time;
            writes.put(b"clock".to_vec(), encode(&Record::Clock(self.clock)));
            self.expire_dedup(writes);
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
        let outcome = self.execute(index, &cmd, writes);
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
        writes.put(
            format!("dedup/{}", cmd.request_key).into_bytes(),
            encode(&Record::Dedup(cmd.request_key.clone(), entry.clone())),
        );
        self.dedup_expiry
            .insert((expires_at, cmd.request_key.clone()));
        self.dedup.insert(cmd.request_key, entry);
        outcome
    }

    fn load(records: &mut dyn Iterator<Item = (Vec<u8>, Vec<u8>)>) -> Result<Self, LoadError> {
        let mut s = Bookings::default();
        let mut writes = WriteSet::default();
        for (k, v) in records {
            let err = |reason: String| LoadError {
                key: String::from_utf8_lossy(&k).into_owned(),
                reason,
            };
            match v.first() {
                Some(&STATE_FORMAT) => {}
                other => return Err(err(format!("unknown record format {other:?}"))),
            }
            let record: Record = bincode::deserialize(&v[1..]).map_err(|e| err(e.to_string()))?;
            match record {
                Record::Tenant(t) => {
                    s.slugs.insert(t.slug.clone(), t.id);
                    s.tenants.insert(t.id, t);
                }
                Record::Room(r) => {
                    s.rooms.insert(r.id, r);
                }
                Record::Booking(b) => s.put_booking(b, &mut writes),
                Record::Token(t) => {
                    s.tokens.insert(t.sha256.clone(), t);
                }
                Record::Dedup(k, d) => {
                    s.dedup_expiry.insert((d.expires_at, k.clone()));
                    s.dedup.insert(k, d);
                }
                Record::Clock(c) => s.clock = c,
            }
        }
        Ok(s)
    }

    fn records(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(
            self.tenants.len() + self.rooms.len() + self.bookings.len() + self.dedup.len() + 1,
        );
        out.push((b"clock".to_vec(), encode(&Record::Clock(self.clock))));
        out.extend(
            self.tenants
                .values()
                .map(|t| (key("tenant", t.id), encode(&Record::Tenant(t.clone())))),
        );
        out.extend(
            self.rooms
                .values()
                .map(|r| (key("room", r.id), encode(&Record::Room(r.clone())))),
        );
        out.extend(
            self.bookings
                .values()
                .map(|b| (key("booking", b.id), encode(&Record::Booking(b.clone())))),
        );
        out.extend(self.tokens.values().map(|t| {
            (
                format!("token/{}", t.sha256).into_bytes(),
                encode(&Record::Token(t.clone())),
            )
        }));
        out.extend(self.dedup.iter().map(|(k, d)| {
            (
                format!("dedup/{k}").into_bytes(),
                encode(&Record::Dedup(k.clone(), d.clone())),
            )
        }));
        out
    }
}

#[cfg(test)]
mod tests;
