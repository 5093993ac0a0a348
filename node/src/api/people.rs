//! Tenants, sign-in sessions, users, departments and API tokens.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roomraft_cluster::Consistency;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    caller, created, csrf_token, parse_id, parse_json, sha256_hex, unexpected, ApiToken, AppError,
    AppState, Auth, Op, Outcome, Path, Query, ReadParams, Role, St, Tenant, TenantId, User,
};
use crate::app::people::{
    self, change_own_password, check_new_password, hash_password, start_session,
};
use crate::domain::people::{
    CreateDepartment, CreateToken, DeleteDepartment, EndUserSessions, RevokeToken, SetPassword,
    UpdateUser,
};
use crate::domain::school::{CreateTenant, SetTenantSuspended};
use crate::http::observe::ClientAddr;
use crate::http::session_cookie;

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

fn parse_role(field: &str, s: &str) -> Result<Role, AppError> {
    Role::parse_tenant_role(s).ok_or_else(|| AppError::invalid(field, "use admin, staff or viewer"))
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
) -> Result<Response, AppError> {
    auth.require_operator()?;
    let req: NewTenant = parse_json(&body)?;
    let admin_token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let op = Op::from(CreateTenant {
        slug: req.slug,
        name: req.name,
        time_zone: req.time_zone.unwrap_or_else(|| "Europe/London".into()),
        admin_token_sha256: sha256_hex(&admin_token),
    });
    match s.write(caller(&headers, &auth)?, op).await? {
        Outcome::TenantCreated(t) => {
            let mut v = tenant_json(&t);
            v["admin_token"] = json!(admin_token);
            Ok(created(v))
        }
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_tenants(State(s): St, auth: Auth) -> Result<Json<Value>, AppError> {
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
) -> Result<Json<Value>, AppError> {
    auth.require_operator()?;
    let tenant = parse_id("tenant", &id)?;
    let req: TenantPatch = parse_json(&body)?;
    let op = Op::from(SetTenantSuspended {
        tenant,
        suspended: req.suspended,
    });
    match s.write(caller(&headers, &auth)?, op).await? {
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

/// `POST /api/v1/session`: username or email and password → session cookie and CSRF token.
pub(super) async fn sign_in(
    State(s): St,
    Extension(ClientAddr(client)): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, AppError> {
    let req: SignIn = parse_json(&body)?;
    let started = start_session(&s, client, &req.tenant, &req.login, req.password).await?;
    let body = json!({ "user": user_json(&started.user), "csrf_token": csrf_token(&started.token),
                       "expires_at": started.session.expires_at,
                       "idle_timeout_seconds": started.session.idle_secs });
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&started.token, s.sessions.absolute.as_secs()),
    );
    Ok(resp)
}

pub(super) async fn whoami(State(s): St, auth: Auth) -> Result<Json<Value>, AppError> {
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

pub(super) async fn sign_out(State(s): St, auth: Auth) -> Result<Response, AppError> {
    people::sign_out(&s, &auth).await?;
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
) -> Result<Json<Value>, AppError> {
    let req: PasswordChange = parse_json(&body)?;
    let u = change_own_password(&s, auth, client, req.current_password, req.new_password).await?;
    Ok(Json(user_json(&u)))
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
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewUser = parse_json(&body)?;
    let role = parse_role("role", &req.role)?;
    let new = people::NewUser {
        username: req.username,
        name: req.name,
        email: req.email,
        department: req.department_id,
        role,
        password: req.password,
    };
    let u = people::create_user(&s, caller(&headers, &auth)?, tenant, new).await?;
    Ok(created(user_json(&u)))
}

pub(super) async fn list_users(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Value>, AppError> {
    let tenant = auth.tenant()?;
    let users = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school.users().map(user_json).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(json!(users)))
}

async fn user_of(s: &AppState, tenant: TenantId, id: &str) -> Result<User, AppError> {
    let id = parse_id("user", id)?;
    s.read_tenant(tenant, Consistency::Linearizable, |school| {
        school.user(id).cloned()
    })
    .await?
    .ok_or_else(|| AppError::not_found("user", id))
}

pub(super) async fn get_user(
    State(s): St,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, AppError> {
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
) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let req: UserPatch = parse_json(&body)?;
    let u = user_of(&s, tenant, &id).await?;
    let role = match &req.role {
        Some(r) => parse_role("role", r)?,
        None => u.role,
    };
    let op = Op::from(UpdateUser {
        tenant,
        user: u.id,
        name: req.name.unwrap_or(u.name),
        email: req.email.unwrap_or(u.email),
        department: req.department_id.unwrap_or(u.department),
        role,
        active: req.active.unwrap_or(u.active),
    });
    match s.write(caller(&headers, &auth)?, op).await? {
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
) -> Result<Json<Value>, AppError> {
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
    let op = Op::from(SetPassword {
        tenant,
        user: u.id,
        password_phc: hash_password(req.new_password).await?,
        keep_session: None,
    });
    match s.write(caller(&headers, &auth)?, op).await? {
        Outcome::User(u) => Ok(Json(user_json(&u))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn force_sign_out(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let user = parse_id("user", &id)?;
    s.write(
        caller(&headers, &auth)?,
        Op::from(EndUserSessions { tenant, user }),
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
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewDepartment = parse_json(&body)?;
    let op = Op::from(CreateDepartment {
        tenant,
        name: req.name,
    });
    match s.write(caller(&headers, &auth)?, op).await? {
        Outcome::Department(d) => Ok(created(json!({ "id": d.id, "name": d.name }))),
        other => Err(unexpected(other)),
    }
}

pub(super) async fn list_departments(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Value>, AppError> {
    let tenant = auth.tenant()?;
    let list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .departments()
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
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let department = parse_id("department", &id)?;
    s.write(
        caller(&headers, &auth)?,
        Op::from(DeleteDepartment { tenant, department }),
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
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let req: NewToken = parse_json(&body)?;
    let role = parse_role("role", &req.role)?;
    let token = format!("rr_{}", hex::encode(rand::random::<[u8; 32]>()));
    let op = Op::from(CreateToken {
        tenant,
        name: req.name,
        role,
        sha256: sha256_hex(&token),
    });
    match s.write(caller(&headers, &auth)?, op).await? {
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
) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let mut list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .tokens()
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
) -> Result<Json<Value>, AppError> {
    let tenant = auth.require_admin()?;
    let token = parse_id("token", &id)?;
    match s
        .write(
            caller(&headers, &auth)?,
            Op::from(RevokeToken { tenant, token }),
        )
        .await?
    {
        Outcome::Token(t) => Ok(Json(token_json(&t))),
        other => Err(unexpected(other)),
    }
}
