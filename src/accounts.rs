//! Users and API tokens: creation, hashing, lookup. No HTTP here.
//!
//! API tokens are `tafel_` followed by 40 random base32 characters. Only their SHA-256
//! is stored; the first 12 characters are kept as a prefix so admins can tell tokens
//! apart in listings.

use diesel::prelude::*;
use openssl::sha::sha256;

use crate::db::schema::{api_tokens, users};
use crate::db::{new_id, now, DbConn, DbError};

pub mod password;

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "tafel_";

/// Whom a user may act for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in the district.
    DistrictAdmin,
    /// One school authority (tenant).
    AuthorityAdmin,
    /// One school.
    SchoolAdmin,
    /// Their own classes.
    Teacher,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DistrictAdmin => "district_admin",
            Role::AuthorityAdmin => "authority_admin",
            Role::SchoolAdmin => "school_admin",
            Role::Teacher => "teacher",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "district_admin" => Role::DistrictAdmin,
            "authority_admin" => Role::AuthorityAdmin,
            "school_admin" => Role::SchoolAdmin,
            "teacher" => Role::Teacher,
            _ => return None,
        })
    }
}

/// The authenticated caller of the admin API.
#[derive(Debug, Clone)]
pub struct Principal {
    /// User id.
    pub user_id: String,
    /// Display name (goes into the audit log).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The authority a scoped user belongs to.
    pub tenant_id: Option<String>,
    /// The school a school admin or teacher belongs to.
    pub school_id: Option<String>,
    /// The token this call came with (kept when they change their own password).
    pub token_id: String,
    /// They logged in with a one-time password and may only choose their own.
    pub must_change_password: bool,
}

/// A freshly generated token: the secret (shown once) and what is stored.
pub struct NewToken {
    /// The full token; never stored.
    pub secret: String,
    /// The first characters, for listings.
    pub prefix: String,
    /// Lowercase hex SHA-256 of the secret.
    pub sha256: String,
}

/// Generates a random token.
pub fn generate_token() -> Result<NewToken, openssl::error::ErrorStack> {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut bytes = [0u8; 40];
    openssl::rand::rand_bytes(&mut bytes)?;
    let body: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect();
    let secret = format!("{TOKEN_PREFIX}{body}");
    Ok(NewToken {
        prefix: secret.chars().take(12).collect(),
        sha256: hash_token(&secret),
        secret,
    })
}

/// The stored form of a token.
pub fn hash_token(secret: &str) -> String {
    hex::encode(sha256(secret.as_bytes()))
}

/// Errors of account operations.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Randomness failed.
    #[error("random generator failed: {0}")]
    Random(#[from] openssl::error::ErrorStack),
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The e-mail is taken.
    #[error("a user with e-mail {0} exists already")]
    Duplicate(String),
}

impl From<diesel::result::Error> for AccountError {
    fn from(e: diesel::result::Error) -> Self {
        AccountError::Db(e.into())
    }
}

/// Creates a token for a user and returns its secret.
pub fn create_token(conn: &mut DbConn, user_id: &str, name: &str) -> Result<String, AccountError> {
    let token = generate_token()?;
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::id.eq(new_id()),
            api_tokens::user_id.eq(user_id),
            api_tokens::name.eq(name),
            api_tokens::prefix.eq(&token.prefix),
            api_tokens::token_sha256.eq(&token.sha256),
            api_tokens::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(token.secret)
}

/// On the very first start: creates the district admin and returns its token's secret.
/// Returns `None` when users exist already.
pub fn bootstrap_admin(conn: &mut DbConn) -> Result<Option<String>, AccountError> {
    conn.write_tx(|conn| {
        // Nodes starting at once on PostgreSQL: one at a time past this point (a
        // transaction lock, released at commit), so only the first makes the admin.
        // SQLite's `BEGIN IMMEDIATE` serialises writers already.
        if matches!(conn, DbConn::Pg(_)) {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext('tafel.bootstrap_admin'))")
                .execute(conn)?;
        }
        let existing: i64 = users::table.count().get_result(conn)?;
        if existing > 0 {
            return Ok(None);
        }
        let user_id = new_id();
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&user_id),
                users::name.eq("District admin"),
                users::role.eq(Role::DistrictAdmin.as_str()),
                users::created_at.eq(now()),
            ))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new("system", "create", "user")
                .object(&user_id)
                .summary(serde_json::json!({"role": "district_admin", "reason": "first start"})),
        )?;
        create_token(conn, &user_id, "first start").map(Some)
    })
}

/// Token id, user id, last use, name, role, tenant, school, must change the password.
type TokenRow = (
    String,
    String,
    Option<chrono::NaiveDateTime>,
    String,
    String,
    Option<String>,
    Option<String>,
    bool,
);

/// Resolves a token secret to its user, if the token is valid, and records its use.
pub fn authenticate(conn: &mut DbConn, secret: &str) -> Result<Option<Principal>, AccountError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let hash = hash_token(secret);
    let at = now();
    let row: Option<TokenRow> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::token_sha256.eq(&hash))
        .filter(api_tokens::revoked_at.is_null())
        .filter(
            api_tokens::expires_at
                .is_null()
                .or(api_tokens::expires_at.gt(at)),
        )
        .filter(users::disabled_at.is_null())
        .select((
            api_tokens::id,
            users::id,
            api_tokens::last_used_at,
            users::name,
            users::role,
            users::tenant_id,
            users::school_id,
            users::password_must_change,
        ))
        .first(conn)
        .optional()?;
    let Some((token_id, user_id, last_used, name, role, tenant_id, school_id, must_change)) = row
    else {
        return Ok(None);
    };
    let Some(role) = Role::parse(&role) else {
        return Ok(None);
    };
    // Record use at most once a minute: a busy script must not turn every read into a write.
    if last_used.is_none_or(|t| at - t > chrono::Duration::seconds(60)) {
        diesel::update(api_tokens::table.find(&token_id))
            .set(api_tokens::last_used_at.eq(at))
            .execute(conn)?;
    }
    Ok(Some(Principal {
        user_id,
        name,
        role,
        tenant_id,
        school_id,
        token_id,
        must_change_password: must_change,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 40);
        assert_eq!(a.sha256, hash_token(&a.secret));
        assert_eq!(a.sha256.len(), 64);
        assert!(!a.sha256.contains(&a.secret));
    }
}

/// A user as admins see it (never the password hash).
#[derive(Debug, Clone, serde::Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = users)]
pub struct User {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail (login name).
    pub email: Option<String>,
    /// Role name.
    pub role: String,
    /// Authority of scoped users.
    pub tenant_id: Option<String>,
    /// School of school admins and teachers.
    pub school_id: Option<String>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Disabled (cannot log in, tokens stop working).
    #[serde(with = "crate::time::utc_opt")]
    pub disabled_at: Option<chrono::NaiveDateTime>,
    /// An admin issued a one-time password the user has not yet replaced by their own.
    pub password_must_change: bool,
}

/// A user with the names of their authority and school.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// The authority's name.
    pub tenant_name: Option<String>,
    /// The school's name.
    pub school_name: Option<String>,
}

/// Users with the names of their authorities and schools (two queries for a whole page).
pub fn with_names(conn: &mut DbConn, list: Vec<User>) -> QueryResult<Vec<UserView>> {
    use crate::names::{self, ids};
    let tenants = names::tenants_named(conn, &ids(&list, |u| u.tenant_id.as_deref()))?;
    let schools = names::schools_named(conn, &ids(&list, |u| u.school_id.as_deref()))?;
    Ok(list
        .into_iter()
        .map(|user| UserView {
            tenant_name: names::name(&tenants, user.tenant_id.as_deref()),
            school_name: names::name(&schools, user.school_id.as_deref()),
            user,
        })
        .collect())
}

/// Input for a new user.
#[derive(Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Display name.
    pub name: String,
    /// E-mail, unique.
    pub email: String,
    /// Role.
    pub role: Role,
    /// Authority (authority admins; implied by the school for the others).
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// School (school admins and teachers).
    #[serde(default)]
    pub school_id: Option<String>,
    /// Password for login (at least 12 characters); without one the user works with API tokens only.
    #[serde(default)]
    pub password: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        write!(f, "NewUser({} <{}> {:?})", self.name, self.email, self.role)
    }
}

/// Hashes a password with Argon2id.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut raw = [0u8; 16];
    openssl::rand::rand_bytes(&mut raw)?;
    let salt = SaltString::encode_b64(&raw).map_err(|e| AccountError::Invalid {
        field: "password",
        message: e.to_string(),
    })?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid {
            field: "password",
            message: e.to_string(),
        })
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates a user. The caller has checked that the actor may create this role here.
pub fn create_user(
    conn: &mut DbConn,
    input: &NewUser,
    tenant_id: Option<&str>,
    actor: &str,
) -> Result<User, AccountError> {
    let name = check_user_name(&input.name)?;
    let name = name.as_str();
    let email = check_email(&input.email)?;
    let hash = match &input.password {
        Some(p) => {
            password::check_new(p, Some(&email)).map_err(|rule| AccountError::Invalid {
                field: "password",
                message: rule.to_string(),
            })?;
            Some(hash_password(p)?)
        }
        None => None,
    };
    conn.write_tx(|conn| {
        let taken: i64 = users::table.filter(users::email.eq(&email)).count().get_result(conn)?;
        if taken > 0 {
            return Err(AccountError::Duplicate(email.clone()));
        }
        let user = User {
            id: new_id(),
            name: name.to_owned(),
            email: Some(email.clone()),
            role: input.role.as_str().to_owned(),
            tenant_id: tenant_id.map(str::to_owned),
            school_id: input.school_id.clone(),
            created_at: now(),
            disabled_at: None,
            password_must_change: false,
        };
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&user.id),
                users::name.eq(&user.name),
                users::email.eq(&user.email),
                users::role.eq(&user.role),
                users::tenant_id.eq(&user.tenant_id),
                users::school_id.eq(&user.school_id),
                users::password_hash.eq(&hash),
                users::created_at.eq(user.created_at),
            ))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "create", "user")
                .object(&user.id)
                .scope(user.tenant_id.as_deref(), user.school_id.as_deref())
                .summary(serde_json::json!({"after": {"name": user.name, "email": user.email, "role": user.role, "school_id": user.school_id}})),
        )?;
        Ok(user)
    })
}

/// Changes to a user; absent fields stay as they are.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// Display name.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// E-mail (login name), unique.
    #[serde(default, deserialize_with = "crate::patch::present")]
    #[schema(nullable = false)]
    pub email: Option<String>,
}

fn check_user_name(name: &str) -> Result<String, AccountError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AccountError::Invalid {
            field: "name",
            message: "1 to 200 characters".into(),
        });
    }
    Ok(name.to_owned())
}

fn check_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') || email.len() > 254 {
        return Err(AccountError::Invalid {
            field: "email",
            message: "an e-mail address".into(),
        });
    }
    Ok(email)
}

/// Changes a user's name or e-mail (refused when another user has that e-mail).
pub fn update_user(
    conn: &mut DbConn,
    id: &str,
    patch: &UserPatch,
    actor: &str,
) -> Result<User, AccountError> {
    let name = patch.name.as_deref().map(check_user_name).transpose()?;
    let email = patch.email.as_deref().map(check_email).transpose()?;
    conn.write_tx(|conn| {
        let before = user(conn, id)?.ok_or(diesel::result::Error::NotFound)?;
        let mut changes = crate::audit::Changes::new();
        changes.field("name", &before.name, name.as_ref());
        changes.field("email", &before.email, email.clone().map(Some).as_ref());
        if changes.is_empty() {
            return Ok(before);
        }
        if let Some(email) = email.as_deref().filter(|_| changes.has("email")) {
            let taken: i64 = users::table
                .filter(users::email.eq(email))
                .filter(users::id.ne(id))
                .count()
                .get_result(conn)?;
            if taken > 0 {
                return Err(AccountError::Duplicate(email.to_owned()));
            }
        }
        #[derive(AsChangeset)]
        #[diesel(table_name = users)]
        struct UserChanges<'a> {
            name: Option<&'a str>,
            email: Option<&'a str>,
        }
        diesel::update(users::table.find(id))
            .set(UserChanges {
                name: changes.has("name").then_some(name.as_deref()).flatten(),
                email: changes.has("email").then_some(email.as_deref()).flatten(),
            })
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "update", "user")
                .object(id)
                .scope(before.tenant_id.as_deref(), before.school_id.as_deref())
                .summary(changes.summary()),
        )?;
        Ok(user(conn, id)?.ok_or(diesel::result::Error::NotFound)?)
    })
}

/// One user.
pub fn user(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Users, optionally limited to an authority or a school.
pub fn list_users(
    conn: &mut DbConn,
    tenant_id: Option<&str>,
    school_id: Option<&str>,
    f: &UserFilter,
    limit: i64,
) -> QueryResult<crate::paging::Page<User>> {
    let mut q = users::table
        .select(User::as_select())
        .order(users::id.asc())
        .limit(limit + 1)
        .into_boxed();
    if let Some(t) = tenant_id {
        q = q.filter(users::tenant_id.eq(t.to_owned()));
    }
    if let Some(s) = school_id.or(f.school_id.as_deref()) {
        q = q.filter(users::school_id.eq(s.to_owned()));
    }
    if let Some(r) = &f.role {
        q = q.filter(users::role.eq(r.clone()));
    }
    if let Some(text) = f.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let pattern = format!("%{}%", crate::paging::like_escape(&text.to_lowercase()));
        q = q.filter(
            crate::db::lower(users::name.nullable())
                .like(pattern.clone())
                .escape('\\')
                .or(users::email.like(pattern).escape('\\')),
        );
    }
    if let Some(after) = &f.cursor {
        q = q.filter(users::id.gt(after.clone()));
    }
    Ok(crate::paging::Page::from_rows(q.load(conn)?, limit, |u| {
        u.id.clone()
    }))
}

/// Filters of the user list.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only this school's users.
    pub school_id: Option<String>,
    /// Only this role (`district_admin`, `authority_admin`, `school_admin`, `teacher`).
    pub role: Option<String>,
    /// Free text in the name or e-mail.
    pub q: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Disables a user: no login, tokens stop working.
pub fn disable_user(conn: &mut DbConn, user: &User, actor: &str) -> QueryResult<()> {
    conn.write_tx(|conn| {
        diesel::update(users::table.find(&user.id))
            .set(users::disabled_at.eq(now()))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "disable", "user")
                .object(&user.id)
                .scope(user.tenant_id.as_deref(), user.school_id.as_deref())
                .summary(
                    serde_json::json!({"before": {"disabled": false}, "after": {"disabled": true}}),
                ),
        )
    })
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = api_tokens)]
pub struct TokenInfo {
    /// Id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// Label.
    pub name: String,
    /// First characters of the secret.
    pub prefix: String,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
    /// Last used (to the minute).
    #[serde(with = "crate::time::utc_opt")]
    pub last_used_at: Option<chrono::NaiveDateTime>,
    /// Expiry.
    #[serde(with = "crate::time::utc_opt")]
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// Revoked.
    #[serde(with = "crate::time::utc_opt")]
    pub revoked_at: Option<chrono::NaiveDateTime>,
}

/// Creates a labelled token with an optional expiry; audited.
pub fn issue_token(
    conn: &mut DbConn,
    user: &User,
    name: &str,
    expires_at: Option<chrono::NaiveDateTime>,
    actor: &str,
) -> Result<(TokenInfo, String), AccountError> {
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(AccountError::Invalid {
            field: "name",
            message: "1 to 100 characters".into(),
        });
    }
    conn.write_tx(|conn| issue_token_in_tx(conn, user, name, expires_at, actor))
}

/// [`issue_token`] inside the caller's write transaction.
pub(crate) fn issue_token_in_tx(
    conn: &mut DbConn,
    user: &User,
    name: &str,
    expires_at: Option<chrono::NaiveDateTime>,
    actor: &str,
) -> Result<(TokenInfo, String), AccountError> {
    let secret = create_token(conn, &user.id, name.trim())?;
    let info: TokenInfo = api_tokens::table
        .filter(api_tokens::token_sha256.eq(hash_token(&secret)))
        .select(TokenInfo::as_select())
        .first(conn)?;
    if expires_at.is_some() {
        diesel::update(api_tokens::table.find(&info.id))
            .set(api_tokens::expires_at.eq(expires_at))
            .execute(conn)?;
    }
    crate::audit::record(
        conn,
        &crate::audit::Entry::new(actor, "create", "api_token")
            .object(&info.id)
            .scope(user.tenant_id.as_deref(), user.school_id.as_deref())
            .summary(serde_json::json!({"after": {"user": user.id, "name": info.name, "prefix": info.prefix, "expires_at": expires_at}})),
    )?;
    Ok((TokenInfo { expires_at, ..info }, secret))
}

/// A user's tokens, newest first.
pub fn tokens_of(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<TokenInfo>> {
    api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .select(TokenInfo::as_select())
        .order(api_tokens::created_at.desc())
        .load(conn)
}

/// One token.
pub fn token(conn: &mut DbConn, id: &str) -> QueryResult<Option<TokenInfo>> {
    api_tokens::table
        .find(id)
        .select(TokenInfo::as_select())
        .first(conn)
        .optional()
}

/// Revokes a token; audited.
pub fn revoke_token(
    conn: &mut DbConn,
    token: &TokenInfo,
    owner: &User,
    actor: &str,
) -> QueryResult<()> {
    conn.write_tx(|conn| {
        diesel::update(api_tokens::table.find(&token.id))
            .set(api_tokens::revoked_at.eq(now()))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(actor, "revoke", "api_token")
                .object(&token.id)
                .scope(owner.tenant_id.as_deref(), owner.school_id.as_deref())
                .summary(serde_json::json!({"user": owner.id, "prefix": token.prefix})),
        )
    })
}

/// Ends the session or login token with this secret (the console's log-out); audited.
/// An unknown or already revoked secret changes nothing.
pub fn end_session(conn: &mut DbConn, secret: &str) -> QueryResult<()> {
    let hash = hash_token(secret);
    conn.write_tx(|conn| {
        let row: Option<(String, String, Option<String>, Option<String>)> = api_tokens::table
            .inner_join(users::table)
            .filter(api_tokens::token_sha256.eq(&hash))
            .filter(api_tokens::revoked_at.is_null())
            .select((
                api_tokens::id,
                users::id,
                users::tenant_id,
                users::school_id,
            ))
            .first(conn)
            .optional()?;
        let Some((token_id, user_id, tenant_id, school_id)) = row else {
            return Ok(());
        };
        diesel::update(api_tokens::table.find(&token_id))
            .set(api_tokens::revoked_at.eq(now()))
            .execute(conn)?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(&user_id, "logout", "api_token")
                .object(&token_id)
                .scope(tenant_id.as_deref(), school_id.as_deref()),
        )
    })
}

/// A stored hash that matches no password, checked for unknown accounts so that the
/// time an answer takes does not tell which e-mails exist.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$Hd8GcTgCj2HQ4bOtcX+UKCbc3N8YwSS2a1C3VvHkMp8";

/// The rows a caller may list: everything, an authority's, a school's, or (teachers)
/// their own. Which one a caller gets is decided in `api::authz::list_scope`; the domain
/// only filters by it.
#[derive(Debug, Clone, Copy)]
pub enum ListScope<'a> {
    /// District admins.
    Everything,
    /// One authority.
    Authority(&'a str),
    /// One school.
    School(&'a str),
    /// A teacher: their own.
    Teacher {
        /// Their school.
        school: &'a str,
        /// Their user id.
        user: &'a str,
    },
}
