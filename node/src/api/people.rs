//! Tenants, sign-in sessions, users, departments and API tokens.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roomraft_cluster::Consistency;
use serde::Deserialize;
use serde_json::{json, Value};

use super::observe::{self, ClientAddr};
use super::{
    created, csrf_token, parse_id, parse_json, retry_after, sha256_hex, submit, unexpected, Actor,
    ApiError, ApiToken, AppState, Arc, Auth, Op, Outcome, Path, Query, ReadParams, Role, Session,
    St, Tenant, TenantId, Timestamp, User, SESSION_COOKIE,
};

/// Longest password accepted (NIST SP 800-63B asks verifiers to allow at least 64).
const MAX_PASSWORD: usize = 256;

/// Checks a new password as NIST SP 800-63B-4 asks for single-factor passwords: at least
/// `min_length` characters (15 by default), any characters (spaces and Unicode included), no
/// composition rules, and not one that is commonly used or easily guessed. That last check is
/// zxcvbn's: common-password, word and name lists, keyboard patterns, repeats and sequences,
/// and the account's own details (`context`: username, name, email, school).
pub(crate) fn check_password(
    field: &str,
    p: &str,
    min_length: usize,
    context: &[&str],
) -> Result<(), ApiError> {
    let n = p.chars().count();
    if n < min_length {
        return Err(ApiError::invalid(
            field,
            format!(
                "must be at least {min_length} characters; a few unrelated words make a good one"
            ),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {MAX_PASSWORD} characters"),
        ));
    }
    let estimate = zxcvbn::zxcvbn(p, context);
    if estimate.score() < zxcvbn::Score::Three {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({})", w.to_string().trim_end_matches('.').to_lowercase()))
            .unwrap_or_default();
        return Err(ApiError::invalid(
            field,
            format!("is too easy to guess{why}; use a few unrelated words, not a common phrase, pattern or repeat"),
        ));
    }
    Ok(())
}

/// Checks a new password for the account `(username, name, email)` of `tenant` with this node's
/// policy, its own details and its school's names counting as easy guesses.
pub(crate) fn check_new_password(
    s: &AppState,
    field: &str,
    p: &str,
    tenant: TenantId,
    account: (&str, &str, &str),
) -> Result<(), ApiError> {
    let (slug, school) = s
        .cluster
        .read_local(|st| {
            st.tenants
                .get(&tenant)
                .map(|t| (t.slug.clone(), t.name.clone()))
        })
        .unwrap_or_default();
    let (username, name, email) = account;
    let local = email.split('@').next().unwrap_or_default();
    let context = [username, name, email, local, &slug, &school, "roomraft"];
    check_password(field, p, s.password_min_length, &context)
}

/// Hashes with argon2id (the crate's OWASP-recommended defaults) off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::BadRequest {
        message: format!("password hashing failed: {e}"),
    })?
    .map_err(|e| ApiError::BadRequest {
        message: format!("password hashing failed: {e}"),
    })
}

/// A hash to verify against when the user is unknown, so both cases cost the same.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(b"roomraft: no such user", &salt)
        .expect("argon2 hashes a constant")
        .to_string()
});

async fn verify_password(password: String, phc: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| DUMMY_HASH.clone());
        let ok = PasswordHash::new(&phc)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id, "username": u.username, "name": u.name, "email": u.email,
        "department_id": u.department, "role": u.role, "active": u.active,
        "created_at": u.created_at, "password_changed_at": u.password_changed_at,
    })
}

fn tenant_json(t: &Tenant) -> Value {
    json!({ "id": t.id, "slug": t.slug, "name": t.name, "time_zone": t.time_zone,
            "suspended": t.suspended, "created_at": t.created_at })
}

fn token_json(t: &ApiToken) -> Value {
    json!({ "id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at,
            "last_used_at": t.last_used_at, "revoked_at": t.revoked_at })
}

fn parse_role(field: &str, s: &str) -> Result<Role, ApiError> {
    Role::parse_tenant_role(s).ok_or_else(|| ApiError::invalid(field, "use admin, staff or viewer"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewTenant {
    slug: String,
    name: String,
    time_zone: Option<String>,
}

pub(super) async fn create_tenant(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    auth.require_operator()?;
    let req: NewTenant = parse_json(&body)?;
    let admin_token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let op = Op::CreateTenant {
        slug: req.slug,
        name: req.name,
        time_zone: req.time_zone.unwrap_or_else(|| "Europe/London".into()),
        admin_token_sha256: sha256_hex(&admin_token),
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::TenantCreated(t) => {
            let mut v = tenant_json(&t);
            v["admin_token"] = json!(admin_token);
            Ok(created(v))
        }
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_tenants(State(s): St, auth: Auth) -> Result<Json<Value>, ApiError> {
    auth.require_operator()?;
    let list = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            st.tenants.values().map(tenant_json).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(list)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TenantPatch {
    suspended: bool,
}

pub(super) async fn update_tenant(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    auth.require_operator()?;
    let tenant = parse_id("tenant", &id)?;
    let req: TenantPatch = parse_json(&body)?;
    let op = Op::SetTenantSuspended {
        tenant,
        suspended: req.suspended,
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::Tenant(t) => Ok(Json(tenant_json(&t))),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignIn {
    tenant: String,
    login: String,
    password: String,
}

pub(crate) fn session_cookie(value: &str, max_age: u64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax"
    ))
    .expect("cookie value is ASCII")
}

/// `POST /api/v1/session`: username or email and password → session cookie and CSRF token.
pub(super) async fn sign_in(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SignIn = parse_json(&body)?;
    let started = start_session(&s, client, &req.tenant, &req.login, req.password).await?;
    let body = json!({ "user": user_json(&started.user), "csrf_token": csrf_token(&started.token),
                       "expires_at": started.session.expires_at,
                       "idle_timeout_seconds": started.session.idle_secs });
    let mut resp = Json(body).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, started.cookie);
    Ok(resp)
}

/// A session just begun: its secret (the cookie's value) and the `Set-Cookie` header.
pub(crate) struct Started {
    pub user: User,
    pub session: Session,
    pub token: String,
    pub cookie: HeaderValue,
}

/// Checks a sign-in (rate-limited per address and per account) and begins a session.
pub(crate) async fn start_session(
    s: &Arc<AppState>,
    client: std::net::IpAddr,
    tenant: &str,
    login: &str,
    password: String,
) -> Result<Started, ApiError> {
    if password.len() > MAX_PASSWORD * 4 || login.len() > 254 || tenant.len() > 100 {
        return Err(ApiError::BadCredentials);
    }
    s.limits
        .check_sign_in(client)
        .map_err(|r| observe::refused(s, r))?;
    // School short names are lowercase; logins are matched case-folded.
    let (tenant, login) = (tenant.to_lowercase(), login.to_string());
    let now = Timestamp::now();
    let found = s
        .cluster
        .read(Consistency::Linearizable, {
            let (tenant, login) = (tenant.clone(), login.clone());
            move |st| {
                st.tenant_by_slug(&tenant)
                    .filter(|t| !t.suspended)
                    .and_then(|_| st.login_user(&tenant, &login))
                    .map(|u| (u.clone(), st.sign_in_lock(u.id, now)))
            }
        })
        .await?;
    let user = match found {
        Some((user, lock)) => {
            if let Some(until) = lock {
                return Err(locked(s, until));
            }
            if !verify_password(password, Some(user.password_phc.clone())).await {
                observe::sign_in_failed(s, &user_account(&tenant, &user), client);
                return Err(wrong_password(s, &user).await);
            }
            user
        }
        None => {
            // No such account: the same work as a real check, and a lock on this node for the
            // login as typed, so guessing costs the same whether or not the account exists.
            let account = format!("{tenant}/{}", login.to_lowercase());
            s.limits
                .check_login(&account)
                .map_err(|r| observe::refused(s, r))?;
            verify_password(password, None).await;
            s.limits.login_failed(&account);
            observe::sign_in_failed(s, &account, client);
            return Err(ApiError::BadCredentials);
        }
    };
    let token = hex::encode(rand::random::<[u8; 32]>());
    let csrf = csrf_token(&token);
    let actor = Actor {
        tenant: Some(user.tenant),
        role: user.role,
        name: format!("user:{}", user.username),
        user: Some(user.id),
    };
    let policy = s.sessions;
    let op = Op::CreateSession {
        tenant: user.tenant,
        user: user.id,
        sha256: sha256_hex(&token),
        csrf_sha256: sha256_hex(&csrf),
        idle_secs: policy.idle.as_secs().min(u32::MAX as u64) as u32,
        absolute_secs: policy.absolute.as_secs().min(u32::MAX as u64) as u32,
    };
    let session = match submit(s, &HeaderMap::new(), actor, op).await? {
        Outcome::Session(sess) => sess,
        other => return Err(unexpected(other)),
    };
    let cookie = session_cookie(&token, policy.absolute.as_secs());
    Ok(Started {
        user,
        session,
        token,
        cookie,
    })
}

/// How an account is named in logs: its school and username, whatever login was typed.
fn user_account(tenant: &str, u: &User) -> String {
    format!("{tenant}/{}", u.username)
}

/// A refusal because the account is locked, counted like every rate limit.
fn locked(s: &AppState, until: Timestamp) -> ApiError {
    observe::refused(
        s,
        roomraft_ops::Refusal {
            scope: "sign_in_account",
            retry_after_secs: retry_after(until),
        },
    )
}

/// Records a wrong password for `u` in the replicated state, where every node counts it. The
/// answer is the lock if this failure started one (so a guess made after the lock reads the
/// same whether it was right or wrong), else wrong credentials.
async fn wrong_password(s: &AppState, u: &User) -> ApiError {
    let actor = Actor {
        tenant: Some(u.tenant),
        role: Role::Viewer,
        name: "sign-in".into(),
        user: None,
    };
    let op = Op::RecordSignInFailure {
        tenant: u.tenant,
        user: u.id,
        policy: s.sign_in_policy,
    };
    match submit(s, &HeaderMap::new(), actor, op).await {
        Ok(Outcome::SignInGuard(g)) => match g.locked_at(Timestamp::now()) {
            Some(until) => locked(s, until),
            None => ApiError::BadCredentials,
        },
        Ok(other) => unexpected(other),
        Err(e) => e,
    }
}

pub(super) async fn whoami(State(s): St, auth: Auth) -> Result<Json<Value>, ApiError> {
    let tenant = auth.tenant()?;
    let t = s.tenant(tenant).await?;
    let user = match auth.actor.user {
        Some(id) => {
            s.cluster
                .read(Consistency::Linearizable, |st| {
                    st.users.get(&id).map(user_json)
                })
                .await?
        }
        None => None,
    };
    Ok(Json(json!({
        "tenant": tenant_json(&t), "user": user, "role": auth.actor.role,
        "principal": auth.actor.name, "via": if auth.session.is_some() { "session" } else { "token" },
    })))
}

pub(super) async fn sign_out(State(s): St, auth: Auth) -> Result<Response, ApiError> {
    let sha256 = auth.session.clone().ok_or_else(|| ApiError::BadRequest {
        message: "only a session signs out; revoke a token instead".into(),
    })?;
    submit(&s, &HeaderMap::new(), auth.actor, Op::EndSession { sha256 }).await?;
    let mut resp = axum::http::StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0));
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub(super) async fn change_password(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    auth: Auth,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: PasswordChange = parse_json(&body)?;
    let u = change_own_password(&s, auth, client, req.current_password, req.new_password).await?;
    Ok(Json(user_json(&u)))
}

/// A signed-in user's own password change; the session making it survives, others end.
pub(crate) async fn change_own_password(
    s: &AppState,
    auth: Auth,
    client: std::net::IpAddr,
    current: String,
    new: String,
) -> Result<User, ApiError> {
    let (Some(user), Some(session)) = (auth.actor.user, auth.session.clone()) else {
        return Err(ApiError::BadRequest {
            message: "sign in to change your password".into(),
        });
    };
    let now = Timestamp::now();
    let (u, lock) = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            st.users
                .get(&user)
                .map(|u| (u.clone(), st.sign_in_lock(u.id, now)))
        })
        .await?
        .ok_or(ApiError::Unauthorized)?;
    // Guesses of the current password spend the same budget as guesses at sign-in.
    if let Some(until) = lock {
        return Err(locked(s, until));
    }
    check_new_password(
        s,
        "new_password",
        &new,
        u.tenant,
        (&u.username, &u.name, &u.email),
    )?;
    s.limits
        .check_sign_in(client)
        .map_err(|r| observe::refused(s, r))?;
    if !verify_password(current, Some(u.password_phc.clone())).await {
        let tenant = s
            .cluster
            .read_local(|st| st.tenants.get(&u.tenant).map(|t| t.slug.clone()))
            .unwrap_or_default();
        observe::sign_in_failed(s, &user_account(&tenant, &u), client);
        return match wrong_password(s, &u).await {
            ApiError::BadCredentials => Err(ApiError::invalid(
                "current_password",
                "is not your current password",
            )),
            other => Err(other),
        };
    }
    let op = Op::SetPassword {
        tenant: auth.tenant()?,
        user,
        password_phc: hash_password(new).await?,
        keep_session: Some(session),
    };
    match submit(s, &HeaderMap::new(), auth.actor, op).await? {
        Outcome::User(u) => Ok(u),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    username: String,
    name: String,
    email: String,
    department_id: Option<u64>,
    role: String,
    password: String,
}

pub(super) async fn create_user(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = auth.require_admin()?;
    let req: NewUser = parse_json(&body)?;
    let role = parse_role("role", &req.role)?;
    check_new_password(
        &s,
        "password",
        &req.password,
        tenant,
        (&req.username, &req.name, &req.email),
    )?;
    let op = Op::CreateUser {
        tenant,
        username: req.username,
        name: req.name,
        email: req.email,
        department: req.department_id,
        role,
        password_phc: hash_password(req.password).await?,
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::User(u) => Ok(created(user_json(&u))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_users(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.tenant()?;
    let users = s
        .cluster
        .read(q.consistency()?, |st| {
            st.users
                .values()
                .filter(|u| u.tenant == tenant)
                .map(user_json)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(users)))
}

async fn user_of(s: &AppState, tenant: TenantId, id: &str) -> Result<User, ApiError> {
    let id = parse_id("user", id)?;
    s.cluster
        .read(Consistency::Linearizable, |st| {
            st.users.get(&id).filter(|u| u.tenant == tenant).cloned()
        })
        .await?
        .ok_or_else(|| ApiError::not_found("user", id))
}

pub(super) async fn get_user(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let u = user_of(&s, auth.tenant()?, &id).await?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    name: Option<String>,
    email: Option<String>,
    #[serde(default, with = "double_option")]
    department_id: Option<Option<u64>>,
    role: Option<String>,
    active: Option<bool>,
}

/// Tells an absent field (keep) from an explicit `null` (clear).
pub(super) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub(super) async fn update_user(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.require_admin()?;
    let req: UserPatch = parse_json(&body)?;
    let u = user_of(&s, tenant, &id).await?;
    let role = match &req.role {
        Some(r) => parse_role("role", r)?,
        None => u.role,
    };
    let op = Op::UpdateUser {
        tenant,
        user: u.id,
        name: req.name.unwrap_or(u.name),
        email: req.email.unwrap_or(u.email),
        department: req.department_id.unwrap_or(u.department),
        role,
        active: req.active.unwrap_or(u.active),
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::User(u) => Ok(Json(user_json(&u))),
        other => Err(unexpected(other)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordReset {
    new_password: String,
}

pub(super) async fn reset_password(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.require_admin()?;
    let req: PasswordReset = parse_json(&body)?;
    let u = user_of(&s, tenant, &id).await?;
    check_new_password(
        &s,
        "new_password",
        &req.new_password,
        tenant,
        (&u.username, &u.name, &u.email),
    )?;
    let op = Op::SetPassword {
        tenant,
        user: u.id,
        password_phc: hash_password(req.new_password).await?,
        keep_session: None,
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::User(u) => Ok(Json(user_json(&u))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn force_sign_out(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.require_admin()?;
    let user = parse_id("user", &id)?;
    submit(
        &s,
        &headers,
        auth.actor,
        Op::EndUserSessions { tenant, user },
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewDepartment {
    name: String,
}

pub(super) async fn create_department(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = auth.require_admin()?;
    let req: NewDepartment = parse_json(&body)?;
    let op = Op::CreateDepartment {
        tenant,
        name: req.name,
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::Department(d) => Ok(created(json!({ "id": d.id, "name": d.name }))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_departments(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.tenant()?;
    let list = s
        .cluster
        .read(q.consistency()?, |st| {
            st.departments
                .values()
                .filter(|d| d.tenant == tenant)
                .map(|d| json!({ "id": d.id, "name": d.name }))
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(list)))
}

pub(super) async fn delete_department(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.require_admin()?;
    let department = parse_id("department", &id)?;
    submit(
        &s,
        &headers,
        auth.actor,
        Op::DeleteDepartment { tenant, department },
    )
    .await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    name: String,
    role: String,
}

pub(super) async fn create_token(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let tenant = auth.require_admin()?;
    let req: NewToken = parse_json(&body)?;
    let role = parse_role("role", &req.role)?;
    let token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let op = Op::CreateToken {
        tenant,
        name: req.name,
        role,
        sha256: sha256_hex(&token),
    };
    match submit(&s, &headers, auth.actor, op).await? {
        Outcome::TokenCreated(t) => {
            let mut v = token_json(&t);
            v["token"] = json!(token);
            Ok(created(v))
        }
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_tokens(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.require_admin()?;
    let mut list = s
        .cluster
        .read(q.consistency()?, |st| {
            st.tokens
                .values()
                .filter(|t| t.tenant == tenant)
                .map(|t| (t.id, token_json(t)))
                .collect::<Vec<_>>()
        })
        .await?;
    list.sort_by_key(|(id, _)| *id);
    Ok(Json(json!(list
        .into_iter()
        .map(|(_, v)| v)
        .collect::<Vec<_>>())))
}

pub(super) async fn revoke_token(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = auth.require_admin()?;
    let token = parse_id("token", &id)?;
    match submit(&s, &headers, auth.actor, Op::RevokeToken { tenant, token }).await? {
        Outcome::Token(t) => Ok(Json(token_json(&t))),
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::check_password;

    fn check(p: &str) -> Result<(), String> {
        let context = [
            "jpatel",
            "Jay Patel",
            "jay.patel@oak.example",
            "oak",
            "Oak Academy",
        ];
        check_password("password", p, 15, &context).map_err(|e| e.to_string())
    }

    #[test]
    fn new_passwords_follow_nist_800_63b() {
        for weak in [
            "short but ok?",    // under 15 characters
            "aaaaaaaaaaaaaaa",  // a repeat
            "               ",  // spaces only
            "password1234567",  // a common password and a sequence
            "qwertyuiopasdfgh", // a keyboard walk
            "iloveyouiloveyou", // a common phrase, twice
            "hunter2hunter2hunter2",
        ] {
            assert!(check(weak).is_err(), "{weak:?} was accepted");
        }
        for good in [
            "correct horse battery",
            "the school hall key 9",
            "maple-orchard-falcon-42",
            "Ünïcödé pässwörds wörk",
            "spaces are fine in the middle",
        ] {
            assert_eq!(check(good), Ok(()), "{good:?}");
        }
        let long = "x".repeat(257);
        assert!(check(&long).unwrap_err().contains("at most 256"));
        assert!(check("short but ok?").unwrap_err().contains("at least 15"));
    }

    #[test]
    fn the_demo_schools_passwords_pass_the_policy() {
        for _ in 0..200 {
            for u in crate::seed::demo_users() {
                let context = [u.username.as_str(), u.name.as_str(), "demo", "Demo School"];
                assert_eq!(
                    check_password("password", &u.password, 15, &context)
                        .map_err(|e| e.to_string()),
                    Ok(()),
                    "{}",
                    u.password
                );
            }
        }
    }
}
