//! Who is asking: bearer tokens and sign-in sessions checked against the replicated state,
//! CSRF tokens derived from sessions, and the refusals counted as security events.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use roomraft_cluster::Consistency;
use roomraft_ops::Refusal;
use sha2::{Digest, Sha256};

use super::{AppError, AppState};
use crate::domain::people::Touch;
use crate::domain::{Actor, Bookings, Command, Credential, LogCommand, Op, Role, Tenant, TenantId};

/// Whether a session-authenticated request must prove its CSRF token, and what it sent.
pub enum CsrfProof<'a> {
    NotNeeded,
    Sent(Option<&'a str>),
}

/// The authenticated caller, and how: a session carries its cookie's hash.
pub struct Auth {
    pub actor: Actor,
    pub session: Option<String>,
    /// What apply checks again at the command's place in the log: the token or the session.
    /// None for the operator, whose token is in no state.
    pub credential: Option<Credential>,
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The CSRF token of a session: derived from the session secret, so pages can embed it and
/// a forger without the cookie cannot compute it.
pub fn csrf_token(session_token: &str) -> String {
    sha256_hex(&format!("roomraft-csrf\0{session_token}"))
}

/// How often a credential's last use is recorded at most.
const TOUCH_EVERY: Duration = Duration::from_secs(300);

fn stale(last: Option<Timestamp>, now: Timestamp, every: Duration) -> bool {
    last.is_none_or(|l| now.duration_since(l).as_secs() as u64 >= every.as_secs())
}

impl AppState {
    /// Records a credential's use in the background; losing one such update is harmless.
    fn touch(self: &Arc<Self>, sha256: String) {
        let state = self.clone();
        tokio::spawn(async move {
            let actor = Actor {
                tenant: None,
                role: Role::Operator,
                name: "system".into(),
                user: None,
            };
            let cmd = LogCommand::current(Command {
                time: Timestamp::now(),
                actor,
                request_key: format!("touch/{:032x}", rand::random::<u128>()),
                op: Op::from(Touch { sha256 }),
            });
            if let Err(e) = state.cluster.write(&cmd).await {
                tracing::debug!(error = %e, "recording a credential's last use failed");
            }
        });
    }

    pub(crate) async fn bearer(
        self: &Arc<Self>,
        token: &str,
        writes: bool,
    ) -> Result<Auth, AppError> {
        let hash = sha256_hex(token.trim());
        if let Some(op) = &self.operator_token_sha256 {
            if constant_time_eq(op.as_bytes(), hash.as_bytes()) {
                return Ok(Auth {
                    actor: Actor {
                        tenant: None,
                        role: Role::Operator,
                        name: "operator".into(),
                        user: None,
                    },
                    session: None,
                    credential: None,
                });
            }
        }
        let lookup = |s: &Bookings| {
            let t = s.token(&hash)?;
            let live = (s.for_tenant(t.tenant).tenant()).is_some_and(|x| !x.suspended);
            live.then(|| {
                let actor = Actor {
                    tenant: Some(t.tenant),
                    role: t.role,
                    name: format!("token:{}", t.name),
                    user: None,
                };
                (actor, t.last_used_at)
            })
        };
        // A token revoked through any node is refused by every node from the moment the
        // revocation is acknowledged. A read checks it with a linearizable read (a follower
        // that has not applied the revocation yet waits for it); a change checks it in this
        // node's own state, and apply checks it again at the command's place in the log
        // (`Credential`), so the write path pays no extra round to the leader.
        let found = if writes {
            match self.cluster.read_local(lookup) {
                Some(found) => Some(found),
                // A token created moments ago through another node may not be applied here yet.
                None => self.cluster.read(Consistency::Linearizable, lookup).await?,
            }
        } else {
            self.cluster.read(Consistency::Linearizable, lookup).await?
        };
        let (actor, last_used) = found.ok_or(AppError::Unauthorized)?;
        if stale(last_used, Timestamp::now(), TOUCH_EVERY) {
            self.touch(hash.clone());
        }
        Ok(Auth {
            actor,
            session: None,
            credential: Some(Credential::Token(hash)),
        })
    }

    pub(crate) async fn session(
        self: &Arc<Self>,
        token: &str,
        proof: CsrfProof<'_>,
    ) -> Result<Auth, AppError> {
        let hash = sha256_hex(token);
        let now = Timestamp::now();
        let lookup = |s: &Bookings| {
            s.live_session(&hash, now).map(|(sess, u)| {
                let actor = Actor {
                    tenant: Some(u.tenant),
                    role: u.role,
                    name: format!("user:{}", u.username),
                    user: Some(u.id),
                };
                (
                    actor,
                    sess.last_seen,
                    sess.idle_secs,
                    sess.csrf_sha256.clone(),
                )
            })
        };
        // Linearizable, so a sign-out or password change acknowledged through any node is
        // honoured by every node at once (a local read could still see the ended session).
        let found = self.cluster.read(Consistency::Linearizable, lookup).await?;
        let (actor, last_seen, idle_secs, csrf_sha) = found.ok_or(AppError::Unauthorized)?;
        if let CsrfProof::Sent(sent) = proof {
            let sent = sent.ok_or(AppError::Csrf)?;
            if !constant_time_eq(sha256_hex(sent).as_bytes(), csrf_sha.as_bytes()) {
                return Err(AppError::Csrf);
            }
        }
        let every = TOUCH_EVERY.min(Duration::from_secs(idle_secs as u64 / 10));
        if stale(Some(last_seen), now, every) {
            self.touch(hash.clone());
        }
        Ok(Auth {
            actor,
            credential: Some(Credential::Session(hash.clone())),
            session: Some(hash),
        })
    }

    /// The tenant as of a linearizable read.
    pub(crate) async fn tenant(&self, id: TenantId) -> Result<Tenant, AppError> {
        self.cluster
            .read(Consistency::Linearizable, |s| {
                s.for_tenant(id).tenant().cloned()
            })
            .await?
            .ok_or_else(|| AppError::not_found("tenant", id))
    }
}

impl Auth {
    pub(crate) fn tenant(&self) -> Result<TenantId, AppError> {
        self.actor.tenant.ok_or(AppError::Forbidden {
            reason: "an operator token has no tenant; use a tenant token".into(),
        })
    }

    pub(crate) fn require_operator(&self) -> Result<(), AppError> {
        match self.actor.role {
            Role::Operator => Ok(()),
            _ => Err(AppError::forbidden("operator token required")),
        }
    }

    pub(crate) fn require_admin(&self) -> Result<TenantId, AppError> {
        let t = self.tenant()?;
        match self.actor.role {
            Role::Admin => Ok(t),
            _ => Err(AppError::forbidden("only a tenant admin may do this")),
        }
    }
}

/// Counts a refusal in metrics and logs it as a security event.
pub(crate) fn refused(state: &AppState, r: Refusal) -> AppError {
    state
        .metrics
        .rate_limited
        .with_label_values(&[r.scope])
        .inc();
    state
        .metrics
        .security_events
        .with_label_values(&["rate_limited"])
        .inc();
    tracing::warn!(
        scope = r.scope,
        retry_after = r.retry_after_secs,
        "rate limited"
    );
    AppError::RateLimited {
        scope: r.scope,
        retry_after_secs: r.retry_after_secs,
    }
}

/// Counts a refused sign-in (metrics, a warning); the caller spends the failure budget.
pub(crate) fn sign_in_failed(state: &AppState, account: &str, client: IpAddr) {
    state
        .metrics
        .security_events
        .with_label_values(&["failed_sign_in"])
        .inc();
    tracing::warn!(%account, %client, "sign-in refused");
}
