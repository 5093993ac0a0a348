//! People use cases shared by the API and the pages: password policy and hashing, signing in
//! (rate-limited, with the replicated failure budget), and a user's own password change.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use jiff::Timestamp;
use roomraft_cluster::Consistency;

use super::{
    csrf_token, refused, retry_after, sha256_hex, sign_in_failed, AppError, AppState, Auth, Caller,
};
use crate::domain::people::{
    CreateSession, CreateUser, EndSession, RecordSignInFailure, SetPassword,
};
use crate::domain::{Actor, DepartmentId, Role, Session, TenantId, User};

/// Longest password accepted (NIST SP 800-63B asks verifiers to allow at least 64).
const MAX_PASSWORD: usize = 256;

/// Checks a new password as NIST SP 800-63B-4 asks for single-factor passwords: at least
/// `min_length` characters (15 by default), any characters (spaces and Unicode included), no
/// composition rules, and not one that is commonly used or easily guessed. That last check is
/// zxcvbn's: common-password, word and name lists, keyboard patterns, repeats and sequences,
/// and the account's own details (`context`: username, name, email, school).
pub fn check_password(
    field: &str,
    p: &str,
    min_length: usize,
    context: &[&str],
) -> Result<(), AppError> {
    let n = p.chars().count();
    if n < min_length {
        return Err(AppError::invalid(
            field,
            format!(
                "must be at least {min_length} characters; a few unrelated words make a good one"
            ),
        ));
    }
    if n > MAX_PASSWORD {
        return Err(AppError::invalid(
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
        return Err(AppError::invalid(
            field,
            format!("is too easy to guess{why}; use a few unrelated words, not a common phrase, pattern or repeat"),
        ));
    }
    Ok(())
}

/// Checks a new password for the account `(username, name, email)` of `tenant` with this node's
/// policy, its own details and its school's names counting as easy guesses.
pub fn check_new_password(
    s: &AppState,
    field: &str,
    p: &str,
    tenant: TenantId,
    account: (&str, &str, &str),
) -> Result<(), AppError> {
    let (slug, school) = s
        .cluster
        .read_local(|st| (st.for_tenant(tenant).tenant()).map(|t| (t.slug.clone(), t.name.clone())))
        .unwrap_or_default();
    let (username, name, email) = account;
    let local = email.split('@').next().unwrap_or_default();
    let context = [username, name, email, local, &slug, &school, "roomraft"];
    check_password(field, p, s.password_min_length, &context)
}

/// Hashes with argon2id (the crate's OWASP-recommended defaults) off the async threads.
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| AppError::BadRequest {
        message: format!("password hashing failed: {e}"),
    })?
    .map_err(|e| AppError::BadRequest {
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

/// A session just begun, and its secret (the cookie's value).
pub struct Started {
    pub user: User,
    pub session: Session,
    pub token: String,
}

/// Checks a sign-in (rate-limited per address and per account) and begins a session.
pub async fn start_session(
    s: &Arc<AppState>,
    client: IpAddr,
    tenant: &str,
    login: &str,
    password: String,
) -> Result<Started, AppError> {
    if password.len() > MAX_PASSWORD * 4 || login.len() > 254 || tenant.len() > 100 {
        return Err(AppError::BadCredentials);
    }
    s.limits.check_sign_in(client).map_err(|r| refused(s, r))?;
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
                sign_in_failed(s, &user_account(&tenant, &user), client);
                return Err(wrong_password(s, &user).await);
            }
            user
        }
        None => {
            // No such account: the same work as a real check, and a lock on this node for the
            // login as typed, so guessing costs the same whether or not the account exists.
            let account = format!("{tenant}/{}", login.to_lowercase());
            s.limits.check_login(&account).map_err(|r| refused(s, r))?;
            verify_password(password, None).await;
            s.limits.login_failed(&account);
            sign_in_failed(s, &account, client);
            return Err(AppError::BadCredentials);
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
    let command = CreateSession {
        tenant: user.tenant,
        user: user.id,
        sha256: sha256_hex(&token),
        csrf_sha256: sha256_hex(&csrf),
        idle_secs: policy.idle.as_secs().min(u32::MAX as u64) as u32,
        absolute_secs: policy.absolute.as_secs().min(u32::MAX as u64) as u32,
    };
    let session = s.submit(Caller::unauthenticated(actor), command).await?;
    Ok(Started {
        user,
        session,
        token,
    })
}

/// How an account is named in logs: its school and username, whatever login was typed.
fn user_account(tenant: &str, u: &User) -> String {
    format!("{tenant}/{}", u.username)
}

/// A refusal because the account is locked, counted like every rate limit.
fn locked(s: &AppState, until: Timestamp) -> AppError {
    refused(
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
async fn wrong_password(s: &AppState, u: &User) -> AppError {
    let actor = Actor {
        tenant: Some(u.tenant),
        role: Role::Viewer,
        name: "sign-in".into(),
        user: None,
    };
    let command = RecordSignInFailure {
        tenant: u.tenant,
        user: u.id,
        policy: s.sign_in_policy,
    };
    match s.submit(Caller::unauthenticated(actor), command).await {
        Ok(guard) => match guard.locked_at(Timestamp::now()) {
            Some(until) => locked(s, until),
            None => AppError::BadCredentials,
        },
        Err(e) => e,
    }
}

/// A signed-in user's own password change; the session making it survives, others end.
pub async fn change_own_password(
    s: &AppState,
    auth: Auth,
    client: IpAddr,
    current: String,
    new: String,
) -> Result<User, AppError> {
    let (Some(user), Some(session)) = (auth.actor.user, auth.session.clone()) else {
        return Err(AppError::BadRequest {
            message: "sign in to change your password".into(),
        });
    };
    let now = Timestamp::now();
    let tenant = auth.tenant()?;
    let (u, lock) = s
        .cluster
        .read(Consistency::Linearizable, |st| {
            (st.for_tenant(tenant).user(user)).map(|u| (u.clone(), st.sign_in_lock(u.id, now)))
        })
        .await?
        .ok_or(AppError::Unauthorized)?;
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
    s.limits.check_sign_in(client).map_err(|r| refused(s, r))?;
    if !verify_password(current, Some(u.password_phc.clone())).await {
        let tenant = s
            .cluster
            .read_local(|st| st.for_tenant(u.tenant).tenant().map(|t| t.slug.clone()))
            .unwrap_or_default();
        sign_in_failed(s, &user_account(&tenant, &u), client);
        return match wrong_password(s, &u).await {
            AppError::BadCredentials => Err(AppError::invalid(
                "current_password",
                "is not your current password",
            )),
            other => Err(other),
        };
    }
    let command = SetPassword {
        tenant: auth.tenant()?,
        user,
        password_phc: hash_password(new).await?,
        keep_session: Some(session),
    };
    s.submit(Caller::of(&auth), command).await
}

/// A new user of a school, as an admin gives it.
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub department: Option<DepartmentId>,
    pub role: Role,
    pub password: String,
}

/// Adds a user, their password checked against the policy and stored as an argon2id hash.
pub async fn create_user(
    s: &AppState,
    caller: Caller,
    tenant: TenantId,
    u: NewUser,
) -> Result<User, AppError> {
    check_new_password(
        s,
        "password",
        &u.password,
        tenant,
        (&u.username, &u.name, &u.email),
    )?;
    let command = CreateUser {
        tenant,
        username: u.username,
        name: u.name,
        email: u.email,
        department: u.department,
        role: u.role,
        password_phc: hash_password(u.password).await?,
    };
    s.submit(caller, command).await
}

/// Ends the session `auth` signed in with; a token has none to end.
pub async fn sign_out(s: &AppState, auth: &Auth) -> Result<(), AppError> {
    let sha256 = auth.session.clone().ok_or_else(|| AppError::BadRequest {
        message: "only a session signs out; revoke a token instead".into(),
    })?;
    s.submit(Caller::of(auth), EndSession { sha256 }).await
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
