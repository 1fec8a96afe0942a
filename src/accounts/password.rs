//! Passwords: the rules a new one follows, the one-time passwords admins issue, changing
//! one's own, and what a login with a one-time password may do. No HTTP here.
//!
//! A reset stores only the Argon2 hash of a random one-time password, marks the user
//! `password_must_change` until `password_expires_at` (72 hours) and ends every token
//! and console session of theirs. Logging in with it works once: the login clears the
//! stored hash and issues a token with which the user can do nothing but choose their own
//! password (the API answers everything else `password_change_required`, the console
//! sends every page to the change form). Choosing it clears the mark; the other tokens
//! and sessions of the user end, the one they changed it with stays.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{AccountError, User};
use crate::db::schema::{api_tokens, users};
use crate::db::DbConn;

/// Fewest characters of a password a person chooses.
pub const MIN_CHARS: usize = 12;
/// Most characters of a password (Argon2 hashes every byte: this bounds the work an
/// unauthenticated login can cause).
pub const MAX_CHARS: usize = 128;
/// Hours a one-time password logs in.
pub const ONE_TIME_HOURS: i64 = 72;

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rule {
    /// Fewer than [`MIN_CHARS`].
    #[error("at least 12 characters")]
    TooShort,
    /// More than [`MAX_CHARS`].
    #[error("at most 128 characters")]
    TooLong,
    /// The user's e-mail (the first thing a guesser tries).
    #[error("must not be the e-mail address")]
    IsEmail,
}

/// Checks a password someone chose for an account with `email`.
pub fn check_new(password: &str, email: Option<&str>) -> Result<(), Rule> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(Rule::TooShort);
    }
    if n > MAX_CHARS {
        return Err(Rule::TooLong);
    }
    if email.is_some_and(|e| e.trim().eq_ignore_ascii_case(password.trim())) {
        return Err(Rule::IsEmail);
    }
    Ok(())
}

/// A new one-time password: four groups of four characters without look-alikes
/// (`k7pq-…`, 31 letters and digits, about 79 bits), easy to read out on the phone.
pub fn one_time() -> Result<String, openssl::error::ErrorStack> {
    const ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut chars = Vec::with_capacity(16);
    while chars.len() < 16 {
        let mut bytes = [0u8; 32];
        openssl::rand::rand_bytes(&mut bytes)?;
        // 248 = 8 × 31: bytes above it are dropped so every character is equally likely.
        chars.extend(
            bytes
                .iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[usize::from(b % 31)] as char),
        );
    }
    Ok(chars[..16]
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// What is stored of an enabled user's password.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct Stored {
    /// The user.
    #[diesel(column_name = id)]
    pub user_id: String,
    /// Their e-mail.
    pub email: Option<String>,
    /// The Argon2 hash, if they have a password.
    #[diesel(column_name = password_hash)]
    pub hash: Option<String>,
    /// The hash is a one-time password's.
    #[diesel(column_name = password_must_change)]
    pub must_change: bool,
    /// When the one-time password stops logging in.
    #[diesel(column_name = password_expires_at)]
    pub expires_at: Option<NaiveDateTime>,
}

/// The password of the enabled account with this e-mail.
pub fn stored_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<Stored>> {
    users::table
        .filter(users::email.eq(email.trim().to_lowercase()))
        .filter(users::disabled_at.is_null())
        .select(Stored::as_select())
        .first(conn)
        .optional()
}

/// The password of the enabled account with this id.
pub fn stored(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<Stored>> {
    users::table
        .find(user_id)
        .filter(users::disabled_at.is_null())
        .select(Stored::as_select())
        .first(conn)
        .optional()
}

/// What a login whose password matched may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// Everything the role allows.
    Full,
    /// It was a one-time password: choose one's own, nothing else.
    OneTime,
    /// It was a one-time password that has expired: no login.
    Expired,
}

/// Decides what a matching password at `at` allows.
pub fn login_kind(s: &Stored, at: NaiveDateTime) -> LoginKind {
    match (s.must_change, s.expires_at) {
        (false, _) => LoginKind::Full,
        (true, Some(until)) if at < until => LoginKind::OneTime,
        (true, _) => LoginKind::Expired,
    }
}

/// After the password `s` matched: a login token valid until `until`. A one-time
/// password is used up here (its hash is cleared), so a second login with it fails;
/// `None` when another login used it first.
pub fn login(
    conn: &mut DbConn,
    s: &Stored,
    kind: LoginKind,
    until: NaiveDateTime,
) -> Result<Option<(User, String)>, AccountError> {
    conn.write_tx(|conn| {
        if kind == LoginKind::OneTime {
            let used = diesel::update(
                users::table
                    .find(&s.user_id)
                    .filter(users::password_must_change.eq(true))
                    .filter(users::password_hash.eq(s.hash.clone().unwrap_or_default())),
            )
            .set(users::password_hash.eq(None::<String>))
            .execute(conn)?;
            if used == 0 {
                return Ok(None);
            }
        }
        let Some(u) = super::user(conn, &s.user_id)? else {
            return Ok(None);
        };
        let (_, secret) = super::issue_token_in_tx(conn, &u, "login", Some(until), &u.id)?;
        Ok(Some((u, secret)))
    })
}

/// Revokes the user's valid tokens (login tokens are the console's sessions too), all
/// but `except`; returns how many ended.
fn end_tokens(conn: &mut DbConn, user_id: &str, except: Option<&str>) -> QueryResult<usize> {
    let at = crate::db::now();
    let mut q = diesel::update(api_tokens::table)
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .into_boxed();
    if let Some(keep) = except {
        q = q.filter(api_tokens::id.ne(keep.to_owned()));
    }
    q.set(api_tokens::revoked_at.eq(at)).execute(conn)
}

/// Gives `user` the one-time password whose hash is `hash`, valid until `expires_at`,
/// and ends all their tokens and sessions; audited (never the password). Returns how
/// many tokens ended.
pub fn reset(
    conn: &mut DbConn,
    user: &User,
    hash: &str,
    expires_at: NaiveDateTime,
    actor: &str,
) -> Result<usize, AccountError> {
    conn.write_tx(|conn| reset_in_tx(conn, user, hash, expires_at, actor))
}

/// [`reset`] inside the caller's write transaction.
fn reset_in_tx(
    conn: &mut DbConn,
    user: &User,
    hash: &str,
    expires_at: NaiveDateTime,
    actor: &str,
) -> Result<usize, AccountError> {
    diesel::update(users::table.find(&user.id))
        .set((
            users::password_hash.eq(hash),
            users::password_must_change.eq(true),
            users::password_expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    let ended = end_tokens(conn, &user.id, None)?;
    crate::audit::record(
        conn,
        &crate::audit::Entry::new(actor, "reset_password", "user")
            .object(&user.id)
            .scope(user.tenant_id.as_deref(), user.school_id.as_deref())
            .summary(serde_json::json!({
                "one_time_password_expires_at": crate::time::format(&expires_at),
                "ended_tokens": ended,
            })),
    )?;
    Ok(ended)
}

/// A one-time password the command line issued.
pub struct Issued {
    /// The user's e-mail.
    pub email: String,
    /// The one-time password (printed once, never stored).
    pub password: String,
    /// Until when it logs in.
    pub expires_at: NaiveDateTime,
    /// Tokens and sessions that ended.
    pub ended: usize,
}

/// `tafel reset-password`: a one-time password for the enabled user with this e-mail,
/// audited as done by `cli`. `None` when there is no such user.
pub fn reset_by_email(conn: &mut DbConn, email: &str) -> Result<Option<Issued>, AccountError> {
    let email = email.trim().to_lowercase();
    let user: Option<User> = users::table
        .filter(users::email.eq(&email))
        .filter(users::disabled_at.is_null())
        .select(User::as_select())
        .first(conn)
        .optional()?;
    let Some(user) = user else {
        return Ok(None);
    };
    let password = one_time()?;
    let hash = super::hash_password(&password)?;
    let expires_at = crate::db::now() + chrono::Duration::hours(ONE_TIME_HOURS);
    let ended = reset(conn, &user, &hash, expires_at, "cli")?;
    Ok(Some(Issued {
        email,
        password,
        expires_at,
        ended,
    }))
}

/// Most teachers one first-login call issues passwords for (each costs an Argon2 hash).
pub const FIRST_LOGINS_AT_ONCE: i64 = 500;

/// The enabled teachers of a school who have never had a password (the class import
/// creates them so) and have no one-time password waiting: who needs a first login.
pub fn teachers_without_password(conn: &mut DbConn, school_id: &str) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::school_id.eq(school_id))
        .filter(users::role.eq(super::Role::Teacher.as_str()))
        .filter(users::disabled_at.is_null())
        .filter(users::email.is_not_null())
        .filter(users::password_hash.is_null())
        .filter(users::password_must_change.eq(false))
        .select(User::as_select())
        .order(users::name.asc())
        .limit(FIRST_LOGINS_AT_ONCE)
        .load(conn)
}

/// Gives each `(user, hash)` its one-time password in one transaction, skipping a user
/// who got a password meanwhile; audited per user. Returns the ids that got theirs.
pub fn first_logins(
    conn: &mut DbConn,
    issued: &[(User, String)],
    expires_at: NaiveDateTime,
    actor: &str,
) -> Result<Vec<String>, AccountError> {
    conn.write_tx(|conn| {
        let mut done = Vec::with_capacity(issued.len());
        for (user, hash) in issued {
            let still: i64 = users::table
                .find(&user.id)
                .filter(users::password_hash.is_null())
                .filter(users::password_must_change.eq(false))
                .count()
                .get_result(conn)?;
            if still == 1 {
                reset_in_tx(conn, user, hash, expires_at, actor)?;
                done.push(user.id.clone());
            }
        }
        Ok(done)
    })
}

/// Sets the user's own new password (hash `new_hash`) if what is stored is still
/// `before` (the hash the caller's current password was checked against); clears a
/// one-time mark and ends every other token of theirs but `keep`; audited. `None` when
/// the password changed meanwhile.
pub fn change(
    conn: &mut DbConn,
    user: &User,
    before: Option<&str>,
    new_hash: &str,
    keep: &str,
) -> Result<Option<usize>, AccountError> {
    conn.write_tx(|conn| {
        let was_one_time: bool = users::table
            .find(&user.id)
            .select(users::password_must_change)
            .first(conn)?;
        let q = diesel::update(users::table.find(&user.id)).into_boxed();
        let q = match before {
            Some(h) => q.filter(users::password_hash.eq(h.to_owned())),
            None => q.filter(users::password_hash.is_null()),
        };
        let changed = q
            .set((
                users::password_hash.eq(new_hash),
                users::password_must_change.eq(false),
                users::password_expires_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        if changed == 0 {
            return Ok(None);
        }
        let ended = end_tokens(conn, &user.id, Some(keep))?;
        crate::audit::record(
            conn,
            &crate::audit::Entry::new(&user.id, "change_password", "user")
                .object(&user.id)
                .scope(user.tenant_id.as_deref(), user.school_id.as_deref())
                .summary(serde_json::json!({
                    "after_one_time_password": was_one_time,
                    "ended_tokens": ended,
                })),
        )?;
        Ok(Some(ended))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_are_long_enough_bounded_and_not_the_email() {
        assert_eq!(check_new("kurz", None), Err(Rule::TooShort));
        assert_eq!(check_new(&"x".repeat(129), None), Err(Rule::TooLong));
        assert_eq!(
            check_new("Anna.Lehrerin@schule.de", Some("anna.lehrerin@schule.de")),
            Err(Rule::IsEmail)
        );
        assert_eq!(check_new("Pferd Batterie Klammer", Some("a@b.de")), Ok(()));
        // Characters, not bytes: twelve umlauts are twelve characters.
        assert_eq!(check_new(&"ä".repeat(12), None), Ok(()));
    }

    #[test]
    fn one_time_passwords_are_random_readable_and_pass_the_rules() {
        let a = one_time().unwrap();
        let b = one_time().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.matches('-').count(), 3);
        assert!(!a.contains(['0', 'o', '1', 'l', 'i']));
        assert_eq!(check_new(&a, None), Ok(()));
    }

    #[test]
    fn a_one_time_password_logs_in_only_before_it_expires() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let s = |must_change, expires_at| Stored {
            user_id: "u".into(),
            email: None,
            hash: Some("h".into()),
            must_change,
            expires_at,
        };
        assert_eq!(login_kind(&s(false, None), at), LoginKind::Full);
        let later = at + chrono::Duration::hours(1);
        assert_eq!(login_kind(&s(true, Some(later)), at), LoginKind::OneTime);
        assert_eq!(login_kind(&s(true, Some(at)), at), LoginKind::Expired);
        assert_eq!(login_kind(&s(true, None), at), LoginKind::Expired);
    }
}
