//! Users and API tokens: creation, hashing, lookup. No HTTP here.
//!
//! API tokens are `tafel_` followed by 40 random base32 characters. Only their SHA-256
//! is stored; the first 12 characters are kept as a prefix so admins can tell tokens
//! apart in listings.

use diesel::prelude::*;
use openssl::sha::sha256;

use crate::db::schema::{api_tokens, users};
use crate::db::{new_id, now, DbConn, DbError};

/// Prefix of every API token.
pub const TOKEN_PREFIX: &str = "tafel_";

/// Whom a user may act for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// Token id, user id, last use, name, role, tenant, school.
type TokenRow = (
    String,
    String,
    Option<chrono::NaiveDateTime>,
    String,
    String,
    Option<String>,
    Option<String>,
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
        ))
        .first(conn)
        .optional()?;
    let Some((token_id, user_id, last_used, name, role, tenant_id, school_id)) = row else {
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
