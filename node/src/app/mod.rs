//! The use cases: the one layer between the adapters (the JSON API in `api`, the pages in `web`)
//! and the cluster. It builds the commands, replicates them through `Cluster::write`, reads
//! through `Cluster::read` (tenant data through a [`TenantView`] only), and answers with
//! domain values or an [`AppError`]. It knows nothing of JSON or HTML; `http` maps its errors
//! to statuses, and the adapters turn its results into responses.

mod auth;
pub mod bookings;
pub mod people;
pub mod school;

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::{Date, Time};
use jiff::Timestamp;
use roomraft_cluster::{Cluster, ClusterError, Consistency};

use crate::domain::{
    Actor, BookingId, Bookings, Clash, Command, Credential, LogCommand, Occurrence, Op, Outcome,
    Rejection, Request, RowError, SignInPolicy, TenantId, TenantView,
};

pub(crate) use auth::{constant_time_eq, refused, sign_in_failed};
pub use auth::{csrf_token, sha256_hex, Auth, CsrfProof};

/// Sign-in session lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
}

/// What every handler shares.
pub struct AppState {
    pub cluster: Cluster<Bookings>,
    pub operator_token_sha256: Option<String>,
    /// Hex SHA-256 of the token Prometheus scrapes `/metrics` with (the operator token works too).
    pub metrics_token_sha256: Option<String>,
    pub sessions: SessionPolicy,
    pub metrics: Arc<roomraft_ops::Metrics>,
    pub limits: Arc<roomraft_ops::Limiter>,
    /// The backup destination and keys, when `[backup]` is configured.
    pub backups: Option<Arc<crate::backup::Backups>>,
    /// Page-view capture for usage analytics.
    pub analytics: Arc<crate::analytics::Analytics>,
    /// How large and how slow a request body may be.
    pub body: BodyLimits,
    /// How many wrong passwords an account absorbs (`[limits]`), sent with each failure.
    pub sign_in_policy: SignInPolicy,
    /// Shortest new password accepted.
    pub password_min_length: usize,
}

/// How much of a request body one client may send, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    /// The whole body must arrive within this of the handler being chosen.
    pub read: Duration,
}

/// Why a use case did not happen. `http` gives each a status and a stable `code`; the pages
/// give each a sentence.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    BadRequest { message: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("sign in, or send a bearer token")]
    Unauthorized,
    #[error("invalid username or password")]
    BadCredentials,
    #[error("missing or wrong X-CSRF-Token header for a signed-in change")]
    Csrf,
    #[error("a change sent from another site is refused ({reason}); use this site's own pages")]
    CrossSite { reason: String },
    #[error("{reason}")]
    Forbidden { reason: String },
    #[error("{what} {id} not found")]
    NotFound { what: String, id: String },
    #[error("the slot clashes with {}", clash_text(.0))]
    Conflict(Clash),
    #[error("{what} {key} already exists")]
    AlreadyExists { what: String, key: String },
    #[error("booking {booking} is already cancelled")]
    AlreadyCancelled { booking: BookingId },
    #[error("booking {booking} is not waiting for approval")]
    NotPending { booking: BookingId },
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("{message}")]
    Rule { rule: String, message: String },
    #[error("{} rows have errors; nothing was imported", .0.len())]
    Rows(Vec<RowError>),
    #[error("{} occurrences clash; nothing was booked", .0.len())]
    SeriesConflicts(Vec<(Occurrence, Clash)>),
    #[error("too many requests ({scope}); retry after {retry_after_secs} s")]
    RateLimited {
        scope: &'static str,
        retry_after_secs: u64,
    },
    #[error("this school already stores {stored} {kind}, and may store at most {limit}; remove some, or ask the operator to raise the quota")]
    QuotaExceeded {
        kind: String,
        limit: u64,
        stored: u64,
    },
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    #[error("the request body did not arrive within {seconds} s")]
    RequestTimeout { seconds: u64 },
    #[error("{0}")]
    NotConfigured(String),
    #[error("{0}")]
    Backup(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

pub(crate) fn clash_text(c: &Clash) -> String {
    match c {
        Clash::Booking {
            id,
            start,
            end,
            title,
        } => format!("booking {id} \"{title}\" ({start} to {end})"),
        Clash::Lesson {
            subject,
            class_name,
            start,
            end,
            ..
        } => format!("the lesson {subject} {class_name} ({start} to {end})"),
        Clash::Closure { name, date, .. } => format!("the closure \"{name}\" on {date}"),
    }
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(what: &str, id: impl ToString) -> Self {
        AppError::NotFound {
            what: what.into(),
            id: id.to_string(),
        }
    }

    pub fn forbidden(reason: &str) -> Self {
        AppError::Forbidden {
            reason: reason.into(),
        }
    }
}

impl From<Rejection> for AppError {
    fn from(r: Rejection) -> Self {
        match r {
            Rejection::Conflict(c) => AppError::Conflict(c),
            Rejection::NotFound { what, id } => AppError::NotFound { what, id },
            Rejection::Invalid { field, message } => AppError::Invalid { field, message },
            Rejection::AlreadyExists { what, key } => AppError::AlreadyExists { what, key },
            Rejection::AlreadyCancelled { booking } => AppError::AlreadyCancelled { booking },
            Rejection::Forbidden { reason } => AppError::Forbidden { reason },
            Rejection::IdempotencyKeyReused => AppError::IdempotencyKeyReused,
            Rejection::Rule { rule, message } => AppError::Rule { rule, message },
            Rejection::Rows(rows) => AppError::Rows(rows),
            Rejection::SeriesConflicts(list) => AppError::SeriesConflicts(list),
            Rejection::NotPending { booking } => AppError::NotPending { booking },
            Rejection::QuotaExceeded {
                kind,
                limit,
                stored,
            } => AppError::QuotaExceeded {
                kind,
                limit,
                stored,
            },
            Rejection::Unauthorized => AppError::Unauthorized,
            Rejection::Locked { until } => AppError::RateLimited {
                scope: "sign_in_account",
                retry_after_secs: retry_after(until),
            },
        }
    }
}

/// Whole seconds from now until `until`, at least 1 (a `Retry-After` value).
pub(crate) fn retry_after(until: Timestamp) -> u64 {
    let ms = until.duration_since(Timestamp::now()).as_millis().max(1) as u64;
    ms.div_ceil(1000)
}

pub(crate) fn parse_time(field: &str, value: &str) -> Result<Timestamp, AppError> {
    value.parse().map_err(|_| {
        AppError::invalid(
            field,
            "must be an RFC 3339 time with an offset, like 2026-03-02T09:00:00Z",
        )
    })
}

pub(crate) fn parse_date(field: &str, value: &str) -> Result<Date, AppError> {
    value
        .parse()
        .map_err(|_| AppError::invalid(field, "must be a date like 2026-03-02"))
}

pub(crate) fn parse_clock(field: &str, value: &str) -> Result<Time, AppError> {
    value
        .parse()
        .map_err(|_| AppError::invalid(field, "must be a local time like 09:05"))
}

pub(crate) fn opt<T>(
    field: &str,
    v: &Option<String>,
    parse: fn(&str, &str) -> Result<T, AppError>,
) -> Result<Option<T>, AppError> {
    v.as_deref().map(|x| parse(field, x)).transpose()
}

pub(crate) fn parse_id(what: &str, raw: &str) -> Result<u64, AppError> {
    raw.parse().map_err(|_| AppError::not_found(what, raw))
}

/// Who a change is made for, and how apply checks them again: the actor, the credential it
/// authenticated with, and the key that makes the command idempotent.
#[derive(Debug, Clone)]
pub struct Caller {
    pub actor: Actor,
    credential: Option<Credential>,
    request_key: String,
}

impl Caller {
    /// An authenticated caller, with a fresh request key (which still makes the node's own
    /// forwarding retries safe).
    pub fn of(auth: &Auth) -> Caller {
        Caller {
            actor: auth.actor.clone(),
            credential: auth.credential.clone(),
            request_key: fresh_key("req"),
        }
    }

    /// A change the node makes on someone's behalf before they hold a credential (a sign-in,
    /// a failed password, a public enquiry): nothing for apply to check again.
    pub fn unauthenticated(actor: Actor) -> Caller {
        Caller {
            actor,
            credential: None,
            request_key: fresh_key("req"),
        }
    }

    /// The client's idempotency key, scoped to the principal that sent it, so another user or
    /// token reusing a key gets its own request, never the first one's answer.
    pub fn idempotent(mut self, key: Option<&str>) -> Result<Caller, AppError> {
        let Some(key) = key else { return Ok(self) };
        let valid =
            !key.is_empty() && key.len() <= 200 && key.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(AppError::BadRequest {
                message: "Idempotency-Key must be 1 to 200 visible ASCII characters".into(),
            });
        }
        self.request_key = format!("idem/{}/{key}", principal(&self.actor));
        Ok(self)
    }
}

fn fresh_key(prefix: &str) -> String {
    format!("{prefix}/{:032x}", rand::random::<u128>())
}

/// Who sent a request, uniquely: the tenant and the signed-in user, or the tenant and the
/// token's name (names are unique among a tenant's live tokens), or the operator.
fn principal(actor: &Actor) -> String {
    let tenant = actor
        .tenant
        .map(|t| t.to_string())
        .unwrap_or_else(|| "operator".into());
    match actor.user {
        Some(u) => format!("{tenant}/user:{u}"),
        None => format!("{tenant}/{}", actor.name),
    }
}

impl AppState {
    /// Replicates one command for `caller` and answers with the reply it declares; a
    /// rejection becomes its error.
    pub async fn submit<C: Request>(
        &self,
        caller: Caller,
        command: C,
    ) -> Result<C::Reply, AppError> {
        let outcome = self.write(caller, command.into()).await?;
        C::reply(outcome).map_err(unexpected)
    }

    /// Replicates `op` for `caller`; a rejection becomes its error.
    async fn write(&self, caller: Caller, op: Op) -> Result<Outcome, AppError> {
        let cmd = LogCommand::signed(
            Command {
                time: Timestamp::now(),
                actor: caller.actor,
                request_key: caller.request_key,
                op,
            },
            caller.credential,
        );
        let (_, outcome) = self.cluster.write(&cmd).await?;
        match outcome {
            Outcome::Rejected(r) => Err(r.into()),
            o => Ok(o),
        }
    }

    /// Reads one tenant's data: `f` sees that tenant's records only.
    pub async fn read_tenant<R>(
        &self,
        tenant: TenantId,
        consistency: Consistency,
        f: impl FnOnce(TenantView<'_>) -> R,
    ) -> Result<R, AppError> {
        Ok(self
            .cluster
            .read(consistency, move |st| f(st.for_tenant(tenant)))
            .await?)
    }
}

/// An outcome other than the one the command's apply answers with: a bug, said as one.
fn unexpected(o: Outcome) -> AppError {
    AppError::Cluster(ClusterError::Codec {
        what: "outcome",
        reason: format!("unexpected {o:?}"),
    })
}
