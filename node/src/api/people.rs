//! Tenants, sign-in sessions, users, departments and API tokens.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use roomraft_cluster::Consistency;
use serde::{Deserialize, Serialize};

use super::{
    caller, created, csrf_token, parse_id, parse_json, sha256_hex, ApiToken, AppError, AppState,
    Auth, Path, Query, ReadParams, Role, St, Tenant, TenantId, User,
};
use crate::app::people::{
    self, change_own_password, check_new_password, hash_password, start_session,
};
use crate::domain::people::{
    CreateDepartment, CreateToken, DeleteDepartment, EndUserSessions, RevokeToken, SetPassword,
    UpdateUser,
};
use crate::domain::school::{CreateTenant, SetTenantSuspended};
use crate::domain::{Department, DepartmentId, TokenId, UserId};
use crate::http::observe::ClientAddr;
use crate::http::session_cookie;
use jiff::Timestamp;

/// A user as the API shows it (never the password hash).
#[derive(Serialize)]
pub(super) struct UserBody {
    id: UserId,
    username: String,
    name: String,
    email: String,
    department_id: Option<DepartmentId>,
    role: Role,
    active: bool,
    created_at: Timestamp,
    password_changed_at: Timestamp,
}

impl From<&User> for UserBody {
    fn from(u: &User) -> UserBody {
        UserBody {
            id: u.id,
            username: u.username.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            department_id: u.department,
            role: u.role,
            active: u.active,
            created_at: u.created_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

/// A school as the operator API shows it.
#[derive(Serialize)]
pub(super) struct TenantBody {
    id: TenantId,
    slug: String,
    name: String,
    time_zone: String,
    suspended: bool,
    created_at: Timestamp,
}

impl From<&Tenant> for TenantBody {
    fn from(t: &Tenant) -> TenantBody {
        TenantBody {
            id: t.id,
            slug: t.slug.clone(),
            name: t.name.clone(),
            time_zone: t.time_zone.clone(),
            suspended: t.suspended,
            created_at: t.created_at,
        }
    }
}

/// A new school with its first admin token, shown once.
#[derive(Serialize)]
pub(super) struct NewTenantBody {
    #[serde(flatten)]
    tenant: TenantBody,
    admin_token: String,
}

/// An API token as the API shows it (never its secret or hash).
#[derive(Serialize)]
pub(super) struct TokenBody {
    id: TokenId,
    name: String,
    role: Role,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
}

impl From<&ApiToken> for TokenBody {
    fn from(t: &ApiToken) -> TokenBody {
        TokenBody {
            id: t.id,
            name: t.name.clone(),
            role: t.role,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// A new token with its secret, shown once.
#[derive(Serialize)]
pub(super) struct NewTokenBody {
    #[serde(flatten)]
    token: TokenBody,
    /// The bearer secret (`rr_…`); only its hash is kept.
    #[serde(rename = "token")]
    secret: String,
}

#[derive(Serialize)]
pub(super) struct DepartmentBody {
    id: DepartmentId,
    name: String,
}

impl From<&Department> for DepartmentBody {
    fn from(d: &Department) -> DepartmentBody {
        DepartmentBody {
            id: d.id,
            name: d.name.clone(),
        }
    }
}

/// A new session: the signed-in user, the CSRF token to send with changes, and its limits.
#[derive(Serialize)]
pub(super) struct SignedInBody {
    user: UserBody,
    csrf_token: String,
    expires_at: Timestamp,
    idle_timeout_seconds: u32,
}

/// Who a request is authenticated as.
#[derive(Serialize)]
pub(super) struct WhoAmIBody {
    tenant: TenantBody,
    user: Option<UserBody>,
    role: Role,
    principal: String,
    via: &'static str,
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
    let command = CreateTenant {
        slug: req.slug,
        name: req.name,
        time_zone: req.time_zone.unwrap_or_else(|| "Europe/London".into()),
        admin_token_sha256: sha256_hex(&admin_token),
    };
    let t = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(created(NewTenantBody {
        tenant: TenantBody::from(&t),
        admin_token,
    }))
}

pub(super) async fn list_tenants(
    State(s): St,
    auth: Auth,
) -> Result<Json<Vec<TenantBody>>, AppError> {
    auth.require_operator()?;
    let list = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            st.tenants().map(TenantBody::from).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(list))
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
) -> Result<Json<TenantBody>, AppError> {
    auth.require_operator()?;
    let tenant = parse_id("tenant", &id)?;
    let req: TenantPatch = parse_json(&body)?;
    let command = SetTenantSuspended {
        tenant,
        suspended: req.suspended,
    };
    let t = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(Json(TenantBody::from(&t)))
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
    let body = SignedInBody {
        user: UserBody::from(&started.user),
        csrf_token: csrf_token(&started.token),
        expires_at: started.session.expires_at,
        idle_timeout_seconds: started.session.idle_secs,
    };
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&started.token, s.sessions.absolute.as_secs()),
    );
    Ok(resp)
}

pub(super) async fn whoami(State(s): St, auth: Auth) -> Result<Json<WhoAmIBody>, AppError> {
    let tenant = auth.tenant()?;
    let t = s.tenant(tenant).await?;
    let user = match auth.actor.user {
        Some(id) => {
            s.read_tenant(tenant, Consistency::Linearizable, |school| {
                school.user(id).map(UserBody::from)
            })
            .await?
        }
        None => None,
    };
    Ok(Json(WhoAmIBody {
        tenant: TenantBody::from(&t),
        user,
        role: auth.actor.role,
        principal: auth.actor.name.clone(),
        via: if auth.session.is_some() {
            "session"
        } else {
            "token"
        },
    }))
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
) -> Result<Json<UserBody>, AppError> {
    let req: PasswordChange = parse_json(&body)?;
    let u = change_own_password(&s, auth, client, req.current_password, req.new_password).await?;
    Ok(Json(UserBody::from(&u)))
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
    Ok(created(UserBody::from(&u)))
}

pub(super) async fn list_users(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<UserBody>>, AppError> {
    let tenant = auth.tenant()?;
    let users = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school.users().map(UserBody::from).collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(users))
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
) -> Result<Json<UserBody>, AppError> {
    let u = user_of(&s, auth.tenant()?, &id).await?;
    Ok(Json(UserBody::from(&u)))
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
) -> Result<Json<UserBody>, AppError> {
    let tenant = auth.require_admin()?;
    let req: UserPatch = parse_json(&body)?;
    let u = user_of(&s, tenant, &id).await?;
    let role = match &req.role {
        Some(r) => parse_role("role", r)?,
        None => u.role,
    };
    let command = UpdateUser {
        tenant,
        user: u.id,
        name: req.name.unwrap_or(u.name),
        email: req.email.unwrap_or(u.email),
        department: req.department_id.unwrap_or(u.department),
        role,
        active: req.active.unwrap_or(u.active),
    };
    let u = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(Json(UserBody::from(&u)))
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
) -> Result<Json<UserBody>, AppError> {
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
    let command = SetPassword {
        tenant,
        user: u.id,
        password_phc: hash_password(req.new_password).await?,
        keep_session: None,
    };
    let u = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(Json(UserBody::from(&u)))
}

pub(super) async fn force_sign_out(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let user = parse_id("user", &id)?;
    s.submit(caller(&headers, &auth)?, EndUserSessions { tenant, user })
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
    let command = CreateDepartment {
        tenant,
        name: req.name,
    };
    let d = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(created(DepartmentBody::from(&d)))
}

pub(super) async fn list_departments(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<DepartmentBody>>, AppError> {
    let tenant = auth.tenant()?;
    let list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .departments()
                .map(DepartmentBody::from)
                .collect::<Vec<_>>()
        })
        .await?;
    Ok(Json(list))
}

pub(super) async fn delete_department(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let tenant = auth.require_admin()?;
    let department = parse_id("department", &id)?;
    s.submit(
        caller(&headers, &auth)?,
        DeleteDepartment { tenant, department },
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
    let command = CreateToken {
        tenant,
        name: req.name,
        role,
        sha256: sha256_hex(&token),
    };
    let t = s.submit(caller(&headers, &auth)?, command).await?;
    Ok(created(NewTokenBody {
        token: TokenBody::from(&t),
        secret: token,
    }))
}

pub(super) async fn list_tokens(
    State(s): St,
    auth: Auth,
    Query(q): Query<ReadParams>,
) -> Result<Json<Vec<TokenBody>>, AppError> {
    let tenant = auth.require_admin()?;
    let mut list = s
        .read_tenant(tenant, q.consistency()?, |school| {
            school
                .tokens()
                .map(|t| (t.id, TokenBody::from(t)))
                .collect::<Vec<_>>()
        })
        .await?;
    list.sort_by_key(|(id, _)| *id);
    Ok(Json(list.into_iter().map(|(_, v)| v).collect()))
}

pub(super) async fn revoke_token(
    State(s): St,
    auth: Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<TokenBody>, AppError> {
    let tenant = auth.require_admin()?;
    let token = parse_id("token", &id)?;
    let t = s
        .submit(caller(&headers, &auth)?, RevokeToken { tenant, token })
        .await?;
    Ok(Json(TokenBody::from(&t)))
}
