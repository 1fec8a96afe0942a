//! Enrollment tokens and the one-time SCEP challenges handed out with them.
//!
//! A token is a URL (`/enroll/{token}`) an admin gives a school. Each download of the
//! profile carries a fresh challenge; the challenge is consumed when our SCEP server
//! issues the device its identity certificate, which is when a token "use" counts.

use diesel::prelude::*;
use openssl::sha::sha256;
use serde::Serialize;

use crate::audit;
use crate::db::schema::{device_certificates, enrollment_tokens, scep_challenges};
use crate::db::{new_id, now, DbConn};

crate::text_enum! {
    /// Kinds of enrollment tokens, as stored.
    pub enum TokenKind("token kind") {
        /// A link (`/enroll/{token}`) an admin hands out.
        Link = "link",
        /// A school's internal token for Automated Device Enrollment.
        Ade = "ade",
    }
}

/// How long a challenge from a downloaded profile stays valid.
pub const CHALLENGE_LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// How long a challenge handed out for a machine info stays valid: Setup Assistant
/// enrolls right after it got its profile.
pub const ADE_CHALLENGE_LIFETIME: chrono::Duration = chrono::Duration::minutes(15);

/// A token as stored and shown to admins.
#[derive(Debug, Clone, Serialize, Queryable, Selectable, utoipa::ToSchema)]
#[diesel(table_name = enrollment_tokens)]
pub struct EnrollmentToken {
    /// Id.
    pub id: String,
    /// SHA-256 (hex) of the secret part of the URL: how a download finds its token.
    #[serde(skip)]
    #[diesel(column_name = token)]
    pub token_hash: String,
    /// The secret, sealed to this row (shown to admins, never stored in the clear).
    #[serde(skip)]
    pub token_sealed: Option<Vec<u8>>,
    /// Authority.
    pub tenant_id: String,
    /// School devices land in.
    pub school_id: String,
    /// Class devices land in (optional).
    pub class_id: Option<String>,
    /// Device group (tablet cart) devices land in (optional).
    pub group_id: Option<String>,
    /// What it is for.
    pub description: String,
    /// Most devices that may enroll with it.
    pub max_uses: Option<i32>,
    /// Devices enrolled with it so far.
    pub uses: i32,
    /// End of validity.
    #[serde(with = "crate::time::utc_opt")]
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// Revoked at.
    #[serde(with = "crate::time::utc_opt")]
    pub revoked_at: Option<chrono::NaiveDateTime>,
    /// Creator (user id).
    pub created_by: Option<String>,
    /// Created.
    #[serde(with = "crate::time::utc")]
    pub created_at: chrono::NaiveDateTime,
}

/// Input for a new token.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewEnrollmentToken)]
pub struct NewToken {
    /// What it is for, e.g. "iPad cart 2, Gymnasium Nord".
    #[serde(default)]
    pub description: Option<String>,
    /// Most devices that may enroll with it.
    #[serde(default)]
    pub max_uses: Option<i32>,
    /// Days until it expires (default: never).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// Class devices land in.
    #[serde(default)]
    pub class_id: Option<String>,
    /// Device group devices land in.
    #[serde(default)]
    pub group_id: Option<String>,
}

/// Why a token cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// Unknown token.
    #[error("unknown enrollment token")]
    Unknown,
    /// Revoked.
    #[error("this enrollment token was revoked")]
    Revoked,
    /// Past its expiry.
    #[error("this enrollment token has expired")]
    Expired,
    /// All uses taken.
    #[error("this enrollment token has been used up ({0} devices)")]
    UsedUp(i32),
    /// The challenge is unknown, used or expired.
    #[error("the SCEP challenge is unknown, used or expired")]
    BadChallenge,
    /// A machine info that already got its device an identity, sent again.
    #[error("this machine info was used already; an iPad that was reset gets a new profile from Apple first (tafel sees it at the next Apple School Manager sync)")]
    MachineInfoUsed,
    /// Bad input.
    #[error("{field}: {message}")]
    Invalid {
        /// Field.
        field: &'static str,
        /// Why.
        message: String,
    },
}

fn random_string(len: usize) -> Result<String, TokenError> {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut bytes = vec![0u8; len];
    openssl::rand::rand_bytes(&mut bytes).map_err(|e| TokenError::Invalid {
        field: "random",
        message: e.to_string(),
    })?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 31)] as char)
        .collect())
}

/// SHA-256 (hex) of a link's secret: what is stored to find it.
pub fn link_hash(secret: &str) -> String {
    hex::encode(sha256(secret.as_bytes()))
}

/// The secret of a link token, for its admins.
pub fn secret_of(token: &EnrollmentToken, secrets: &crate::secrets::SecretBox) -> Option<String> {
    let sealed = token.token_sealed.as_deref()?;
    let binding = crate::secrets::binding(crate::secrets::places::ENROLLMENT_LINK, &token.id);
    secrets
        .open_for(&binding, sealed)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
}

/// Creates a token for a school; returns it and its secret (stored only sealed).
pub fn create(
    conn: &mut DbConn,
    secrets: &crate::secrets::SecretBox,
    tenant_id: &str,
    school_id: &str,
    input: &NewToken,
    actor: &str,
) -> Result<(EnrollmentToken, String), TokenError> {
    if input.max_uses.is_some_and(|n| n < 1) {
        return Err(TokenError::Invalid {
            field: "max_uses",
            message: "at least 1".into(),
        });
    }
    if input
        .expires_in_days
        .is_some_and(|d| !(1..=3650).contains(&d))
    {
        return Err(TokenError::Invalid {
            field: "expires_in_days",
            message: "between 1 and 3650".into(),
        });
    }
    let description = input.description.clone().unwrap_or_default();
    if description.chars().count() > 500 {
        return Err(TokenError::Invalid {
            field: "description",
            message: "at most 500 characters".into(),
        });
    }
    let at = now();
    let id = new_id();
    let secret = random_string(24)?;
    let sealed = secrets
        .seal_for(
            &crate::secrets::binding(crate::secrets::places::ENROLLMENT_LINK, &id),
            secret.as_bytes(),
        )
        .map_err(|e| TokenError::Invalid {
            field: "token",
            message: e.to_string(),
        })?;
    let token = EnrollmentToken {
        id,
        token_hash: link_hash(&secret),
        token_sealed: Some(sealed),
        tenant_id: tenant_id.to_owned(),
        school_id: school_id.to_owned(),
        class_id: input.class_id.clone(),
        group_id: input.group_id.clone(),
        description,
        max_uses: input.max_uses,
        uses: 0,
        expires_at: input
            .expires_in_days
            .map(|d| at + chrono::Duration::days(d)),
        revoked_at: None,
        created_by: Some(actor.to_owned()),
        created_at: at,
    };
    conn.write_tx(|conn| {
        diesel::insert_into(enrollment_tokens::table)
            .values((
                enrollment_tokens::id.eq(&token.id),
                enrollment_tokens::token.eq(&token.token_hash),
                enrollment_tokens::token_sealed.eq(&token.token_sealed),
                enrollment_tokens::tenant_id.eq(&token.tenant_id),
                enrollment_tokens::school_id.eq(&token.school_id),
                enrollment_tokens::class_id.eq(&token.class_id),
                enrollment_tokens::group_id.eq(&token.group_id),
                enrollment_tokens::description.eq(&token.description),
                enrollment_tokens::max_uses.eq(token.max_uses),
                enrollment_tokens::uses.eq(0),
                enrollment_tokens::expires_at.eq(token.expires_at),
                enrollment_tokens::created_by.eq(&token.created_by),
                enrollment_tokens::created_at.eq(at),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "create", "enrollment_token")
                .object(&token.id)
                .scope(Some(tenant_id), Some(school_id))
                .summary(serde_json::json!({"after": {"description": token.description, "max_uses": token.max_uses, "expires_at": token.expires_at}})),
        )?;
        Ok((token.clone(), secret.clone()))
    })
}

/// A school's tokens, newest first.
pub fn list(conn: &mut DbConn, school_id: &str) -> QueryResult<Vec<EnrollmentToken>> {
    enrollment_tokens::table
        .filter(enrollment_tokens::school_id.eq(school_id))
        .filter(enrollment_tokens::kind.eq(TokenKind::Link))
        .order(enrollment_tokens::created_at.desc())
        .select(EnrollmentToken::as_select())
        .load(conn)
}

/// One token by id.
pub fn get(conn: &mut DbConn, id: &str) -> QueryResult<Option<EnrollmentToken>> {
    enrollment_tokens::table
        .find(id)
        .select(EnrollmentToken::as_select())
        .first(conn)
        .optional()
}

/// One link token by id (a school's internal ADE token is not an admin's to revoke).
pub fn get_link(conn: &mut DbConn, id: &str) -> QueryResult<Option<EnrollmentToken>> {
    enrollment_tokens::table
        .find(id)
        .filter(enrollment_tokens::kind.eq(TokenKind::Link))
        .select(EnrollmentToken::as_select())
        .first(conn)
        .optional()
}

/// Revokes a token; profiles downloaded before keep working only until their
/// challenge is used or expires.
pub fn revoke(conn: &mut DbConn, token: &EnrollmentToken, actor: &str) -> QueryResult<()> {
    conn.write_tx(|conn| {
        diesel::update(enrollment_tokens::table.find(&token.id))
            .set(enrollment_tokens::revoked_at.eq(now()))
            .execute(conn)?;
        diesel::update(
            scep_challenges::table
                .filter(scep_challenges::token_id.eq(&token.id))
                .filter(scep_challenges::used_at.is_null()),
        )
        .set(scep_challenges::expires_at.eq(now()))
        .execute(conn)?;
        audit::record(
            conn,
            &audit::Entry::new(actor, "revoke", "enrollment_token")
                .object(&token.id)
                .scope(Some(&token.tenant_id), Some(&token.school_id))
                .summary(
                    serde_json::json!({"before": {"revoked": false}, "after": {"revoked": true}}),
                ),
        )
    })
}

fn usable(token: &EnrollmentToken, at: chrono::NaiveDateTime) -> Result<(), TokenError> {
    if token.revoked_at.is_some() {
        return Err(TokenError::Revoked);
    }
    if token.expires_at.is_some_and(|e| e <= at) {
        return Err(TokenError::Expired);
    }
    if let Some(max) = token.max_uses {
        if token.uses >= max {
            return Err(TokenError::UsedUp(max));
        }
    }
    Ok(())
}

/// For a profile download: checks the token and creates a fresh one-time challenge.
/// Returns the token and the challenge (plain; only its hash is stored).
pub fn redeem(conn: &mut DbConn, secret: &str) -> Result<(EnrollmentToken, String), TokenError> {
    let at = now();
    let token = enrollment_tokens::table
        .filter(enrollment_tokens::token.eq(link_hash(secret)))
        .filter(enrollment_tokens::kind.eq(TokenKind::Link))
        .select(EnrollmentToken::as_select())
        .first(conn)
        .optional()?
        .ok_or(TokenError::Unknown)?;
    usable(&token, at)?;
    let (challenge, _) = new_challenge(conn, &token.id, at, None, CHALLENGE_LIFETIME)?;
    Ok((token, challenge))
}

/// The school's internal token for Automated Device Enrollment, made on first use.
/// The sync makes it when it first gives the school's profile to Apple, so devices
/// (which only come after that) never race to create it.
pub fn ade_token(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
) -> Result<EnrollmentToken, TokenError> {
    let existing = enrollment_tokens::table
        .filter(enrollment_tokens::school_id.eq(school_id))
        .filter(enrollment_tokens::kind.eq(TokenKind::Ade))
        .select(EnrollmentToken::as_select())
        .first(conn)
        .optional()?;
    if let Some(t) = existing {
        return Ok(t);
    }
    // One per school (unique index): when another request made it meanwhile, that
    // one is used.
    let insert = diesel::insert_into(enrollment_tokens::table)
        .values((
            enrollment_tokens::id.eq(new_id()),
            // Never shown: only its hash is kept.
            enrollment_tokens::token.eq(link_hash(&random_string(32)?)),
            enrollment_tokens::tenant_id.eq(tenant_id),
            enrollment_tokens::school_id.eq(school_id),
            enrollment_tokens::description.eq("Automated Device Enrollment (Apple School Manager)"),
            enrollment_tokens::uses.eq(0),
            enrollment_tokens::created_at.eq(now()),
            enrollment_tokens::kind.eq(TokenKind::Ade),
        ))
        .on_conflict_do_nothing();
    crate::with_backend!(conn, |c| insert.execute(c))?;
    enrollment_tokens::table
        .filter(enrollment_tokens::school_id.eq(school_id))
        .filter(enrollment_tokens::kind.eq(TokenKind::Ade))
        .select(EnrollmentToken::as_select())
        .first(conn)
        .optional()?
        .ok_or(TokenError::Unknown)
}

/// For an Automated Device Enrollment into a school: the school's ADE token and a
/// fresh one-time challenge for the device `udid`, bound to the machine info body it
/// was asked with (`body_sha256`). A body is good for one identity: sent again while
/// its challenge is unused it gets a new one (the old one ends); once a certificate was
/// issued, only a profile push that Apple's sync reports later (a reset) opens it again.
pub fn redeem_ade(
    conn: &mut DbConn,
    tenant_id: &str,
    school_id: &str,
    udid: &str,
    serial: &str,
    body_sha256: &str,
) -> Result<(EnrollmentToken, String), TokenError> {
    use crate::db::schema::{ade_devices, ade_machine_infos};
    let token = ade_token(conn, tenant_id, school_id)?;
    let at = now();
    let seen: Option<String> = ade_machine_infos::table
        .find(body_sha256)
        .select(ade_machine_infos::challenge_sha256)
        .first(conn)
        .optional()?;
    if let Some(previous) = &seen {
        let used_at: Option<chrono::NaiveDateTime> = scep_challenges::table
            .find(previous)
            .select(scep_challenges::used_at)
            .first::<Option<chrono::NaiveDateTime>>(conn)
            .optional()?
            .flatten();
        match used_at {
            Some(used) => {
                let pushed: Option<chrono::NaiveDateTime> = ade_devices::table
                    .find(serial)
                    .select(ade_devices::profile_pushed_at)
                    .first::<Option<chrono::NaiveDateTime>>(conn)
                    .optional()?
                    .flatten();
                if pushed.is_none_or(|p| p <= used) {
                    return Err(TokenError::MachineInfoUsed);
                }
            }
            None => {
                diesel::update(
                    scep_challenges::table
                        .find(previous)
                        .filter(scep_challenges::used_at.is_null()),
                )
                .set(scep_challenges::expires_at.eq(at))
                .execute(conn)?;
            }
        }
    }
    let (challenge, hash) = new_challenge(conn, &token.id, at, Some(udid), ADE_CHALLENGE_LIFETIME)?;
    match seen {
        Some(_) => {
            diesel::update(ade_machine_infos::table.find(body_sha256))
                .set((
                    ade_machine_infos::challenge_sha256.eq(&hash),
                    ade_machine_infos::last_seen_at.eq(at),
                ))
                .execute(conn)?;
        }
        None => {
            diesel::insert_into(ade_machine_infos::table)
                .values((
                    ade_machine_infos::body_sha256.eq(body_sha256),
                    ade_machine_infos::udid.eq(udid),
                    ade_machine_infos::serial_number.eq(serial),
                    ade_machine_infos::challenge_sha256.eq(&hash),
                    ade_machine_infos::first_seen_at.eq(at),
                    ade_machine_infos::last_seen_at.eq(at),
                ))
                .execute(conn)?;
        }
    }
    Ok((token, challenge))
}

fn new_challenge(
    conn: &mut DbConn,
    token_id: &str,
    at: chrono::NaiveDateTime,
    udid: Option<&str>,
    lifetime: chrono::Duration,
) -> Result<(String, String), TokenError> {
    let challenge = random_string(32)?;
    let hash = hex::encode(sha256(challenge.as_bytes()));
    diesel::insert_into(scep_challenges::table)
        .values((
            scep_challenges::challenge_sha256.eq(&hash),
            scep_challenges::token_id.eq(token_id),
            scep_challenges::udid.eq(udid),
            scep_challenges::created_at.eq(at),
            scep_challenges::expires_at.eq(at + lifetime),
        ))
        .execute(conn)?;
    Ok((challenge, hash))
}

/// What a consumed challenge was handed out for.
#[derive(Debug, Clone)]
pub enum ChallengeFor {
    /// A profile download through an enrollment link.
    Link,
    /// A machine info (Automated Device Enrollment) of this UDID.
    Ade {
        /// The UDID whose machine info asked for it.
        udid: String,
    },
    /// Renewing the identity an enrolled device is bound to.
    Renewal {
        /// The device's UDID.
        udid: String,
        /// The certificate being renewed.
        renews: String,
    },
}

/// For SCEP PKCSReq: checks and consumes a challenge, inside the caller's write
/// transaction (so a failed issuance leaves it unused). Returns the token and what the
/// challenge was for.
pub fn consume_challenge(
    conn: &mut DbConn,
    challenge: &str,
) -> Result<(EnrollmentToken, ChallengeFor), TokenError> {
    let at = now();
    let hash = hex::encode(sha256(challenge.as_bytes()));
    let claimed = diesel::update(
        scep_challenges::table
            .find(&hash)
            .filter(scep_challenges::used_at.is_null())
            .filter(scep_challenges::expires_at.gt(at)),
    )
    .set(scep_challenges::used_at.eq(at))
    .execute(conn)?;
    if claimed != 1 {
        return Err(TokenError::BadChallenge);
    }
    let (token_id, udid, renews): (String, Option<String>, Option<String>) = scep_challenges::table
        .find(&hash)
        .select((
            scep_challenges::token_id,
            scep_challenges::udid,
            scep_challenges::renews_sha256,
        ))
        .first(conn)?;
    let token = get(conn, &token_id)?.ok_or(TokenError::Unknown)?;
    let purpose = match (udid, renews) {
        // A renewal keeps an enrolled device enrolled, whatever became of its token.
        (Some(udid), Some(renews)) => return Ok((token, ChallengeFor::Renewal { udid, renews })),
        (Some(udid), None) => ChallengeFor::Ade { udid },
        _ => ChallengeFor::Link,
    };
    // A token revoked or used up after the download no longer issues certificates. A
    // use is counted when a device enrolls with the certificate (`count_device`).
    usable(&token, at)?;
    Ok((token, purpose))
}

/// How long a renewal challenge stays valid: the iPad may be in a cart for days.
pub const RENEWAL_CHALLENGE_LIFETIME: chrono::Duration = chrono::Duration::days(7);

/// A challenge for renewing the identity `renews` of the device `udid`, under the
/// token that identity was enrolled with.
pub fn renewal_challenge(
    conn: &mut DbConn,
    token_id: &str,
    udid: &str,
    renews: &str,
) -> Result<String, TokenError> {
    let at = now();
    let (challenge, hash) =
        new_challenge(conn, token_id, at, Some(udid), RENEWAL_CHALLENGE_LIFETIME)?;
    diesel::update(scep_challenges::table.find(&hash))
        .set(scep_challenges::renews_sha256.eq(renews))
        .execute(conn)?;
    Ok(challenge)
}

/// What we record about every identity certificate we issue.
pub struct IssuedCertificate<'a> {
    /// SHA-256 of the DER.
    pub sha256: &'a str,
    /// Serial, hex.
    pub serial: &'a str,
    /// Subject, one line.
    pub subject: &'a str,
    /// Validity start.
    pub not_before: chrono::NaiveDateTime,
    /// Validity end.
    pub not_after: chrono::NaiveDateTime,
    /// The certificate this one renews.
    pub renewed_from: Option<&'a str>,
    /// The token it was enrolled with.
    pub enrollment_token_id: Option<&'a str>,
    /// For an ADE enrollment: the UDID whose machine info got the challenge.
    pub ade_udid: Option<&'a str>,
    /// The UDID it is bound to from the start (ADE, renewals); others are bound at
    /// their first Authenticate.
    pub udid: Option<&'a str>,
}

/// Records an issued certificate.
pub fn record_certificate(conn: &mut DbConn, c: &IssuedCertificate<'_>) -> QueryResult<()> {
    diesel::insert_into(device_certificates::table)
        .values((
            device_certificates::sha256.eq(c.sha256),
            device_certificates::serial.eq(c.serial),
            device_certificates::subject.eq(c.subject),
            device_certificates::not_before.eq(c.not_before),
            device_certificates::not_after.eq(c.not_after),
            device_certificates::renewed_from.eq(c.renewed_from),
            device_certificates::enrollment_token_id.eq(c.enrollment_token_id),
            device_certificates::ade_udid.eq(c.ade_udid),
            device_certificates::udid.eq(c.udid),
            device_certificates::created_at.eq(now()),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The token a certificate was enrolled with (following renewals back).
pub fn token_of_certificate(
    conn: &mut DbConn,
    sha256: &str,
) -> QueryResult<Option<EnrollmentToken>> {
    let mut current = sha256.to_owned();
    for _ in 0..16 {
        let row: Option<(Option<String>, Option<String>)> = device_certificates::table
            .find(&current)
            .select((
                device_certificates::enrollment_token_id,
                device_certificates::renewed_from,
            ))
            .first(conn)
            .optional()?;
        match row {
            Some((Some(token_id), _)) => return get(conn, &token_id),
            Some((None, Some(parent))) => current = parent,
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Did our SCEP server issue this certificate?
pub fn certificate_exists(conn: &mut DbConn, sha256: &str) -> QueryResult<bool> {
    let n: i64 = device_certificates::table
        .find(sha256)
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Does `udid` already count as a device of this token (another of its certificates is
/// bound to it)?
pub fn counts_device(
    conn: &mut DbConn,
    token_id: &str,
    udid: &str,
    except_sha256: &str,
) -> QueryResult<bool> {
    let n: i64 = device_certificates::table
        .filter(device_certificates::enrollment_token_id.eq(token_id))
        .filter(device_certificates::udid.eq(udid))
        .filter(device_certificates::sha256.ne(except_sha256))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Counts one more device for the token, unless its limit is reached (a conditional
/// update, so two devices enrolling at once cannot both take the last use).
pub fn count_device(conn: &mut DbConn, token_id: &str) -> QueryResult<bool> {
    let n = diesel::update(
        enrollment_tokens::table.find(token_id).filter(
            enrollment_tokens::max_uses
                .is_null()
                .or(enrollment_tokens::uses
                    .nullable()
                    .lt(enrollment_tokens::max_uses)),
        ),
    )
    .set(enrollment_tokens::uses.eq(enrollment_tokens::uses + 1))
    .execute(conn)?;
    Ok(n == 1)
}

/// Binds a certificate to `udid` for its whole life; false when it is bound to another.
pub fn bind_certificate(conn: &mut DbConn, sha256: &str, udid: &str) -> QueryResult<bool> {
    diesel::update(
        device_certificates::table
            .find(sha256)
            .filter(device_certificates::udid.is_null()),
    )
    .set(device_certificates::udid.eq(udid))
    .execute(conn)?;
    let bound: Option<Option<String>> = device_certificates::table
        .find(sha256)
        .select(device_certificates::udid)
        .first(conn)
        .optional()?;
    Ok(bound.flatten().as_deref() == Some(udid))
}

/// The UDID a certificate is bound to.
pub fn certificate_udid(conn: &mut DbConn, sha256: &str) -> QueryResult<Option<String>> {
    Ok(device_certificates::table
        .find(sha256)
        .select(device_certificates::udid)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Is this a school's internal ADE token?
pub fn is_ade(conn: &mut DbConn, token_id: &str) -> QueryResult<bool> {
    let k: Option<TokenKind> = enrollment_tokens::table
        .find(token_id)
        .select(enrollment_tokens::kind)
        .first(conn)
        .optional()?;
    Ok(k == Some(TokenKind::Ade))
}

/// Deletes challenges that ended before `before`, except those a machine info still
/// points to (they keep its body from being used twice). Returns how many.
pub fn prune_challenges(conn: &mut DbConn, before: chrono::NaiveDateTime) -> QueryResult<usize> {
    use crate::db::schema::ade_machine_infos;
    let kept = ade_machine_infos::table.select(ade_machine_infos::challenge_sha256);
    conn.write_tx(|conn| {
        diesel::delete(
            scep_challenges::table
                .filter(scep_challenges::expires_at.lt(before))
                .filter(scep_challenges::challenge_sha256.ne_all(kept)),
        )
        .execute(conn)
    })
}
