use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub type TenantId = u64;
pub type RoomId = u64;
pub type BookingId = u64;

/// Who may do what inside a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Runs the platform: creates tenants. Belongs to no tenant.
    Operator,
    /// Administers one tenant.
    Admin,
    /// Books rooms in one tenant.
    Staff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: RoomId,
    pub tenant: TenantId,
    pub name: String,
    pub category: String,
    pub capacity: u32,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookingStatus {
    Active,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Booking {
    pub id: BookingId,
    pub tenant: TenantId,
    pub room: RoomId,
    pub start: Timestamp,
    pub end: Timestamp,
    pub title: String,
    pub notes: String,
    pub status: BookingStatus,
    pub created_by: String,
    pub created_at: Timestamp,
    pub cancelled_at: Option<Timestamp>,
}

/// An API token: only its SHA-256 is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    pub sha256: String,
    pub tenant: TenantId,
    pub role: Role,
    pub name: String,
    pub created_at: Timestamp,
}

/// Who sent a command, as authenticated by the node that received it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub tenant: Option<TenantId>,
    pub role: Role,
    /// A printable principal, e.g. `token:admin`.
    pub name: String,
}

/// A command as replicated through the Raft log. The enum is the log format's version tag:
/// variants are only ever appended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LogCommand {
    V1(Command),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Command {
    /// Wall-clock time at the receiving node; the only time apply ever sees.
    pub time: Timestamp,
    pub actor: Actor,
    /// Deduplicates retries: the client's Idempotency-Key (scoped by tenant) or a key the
    /// receiving node generated for this request.
    pub request_key: String,
    pub op: Op,
}

/// A state change. Variants are only ever appended (the bincode variant index is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    CreateTenant {
        slug: String,
        name: String,
        time_zone: String,
        admin_token_sha256: String,
    },
    CreateRoom {
        tenant: TenantId,
        name: String,
        category: String,
        capacity: u32,
    },
    CreateBooking {
        tenant: TenantId,
        room: RoomId,
        start: Timestamp,
        end: Timestamp,
        title: String,
        notes: String,
    },
    CancelBooking {
        tenant: TenantId,
        booking: BookingId,
    },
    CreateToken {
        tenant: TenantId,
        name: String,
        role: Role,
        sha256: String,
    },
}

/// The result of applying a command. Rejections are outcomes, identical on every replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    TenantCreated(Tenant),
    RoomCreated(Room),
    BookingCreated(Booking),
    BookingCancelled(Booking),
    TokenCreated { name: String, role: Role },
    Rejected(Rejection),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rejection {
    /// The slot is taken by an active booking.
    Conflict {
        booking: BookingId,
        start: Timestamp,
        end: Timestamp,
    },
    NotFound {
        what: String,
        id: String,
    },
    Invalid {
        field: String,
        message: String,
    },
    AlreadyExists {
        what: String,
        key: String,
    },
    AlreadyCancelled {
        booking: BookingId,
    },
    Forbidden {
        reason: String,
    },
    /// The same idempotency key was used earlier for a different request.
    IdempotencyKeyReused,
}
