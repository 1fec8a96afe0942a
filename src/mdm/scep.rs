//! `/scep`: our SCEP server (RFC 8894) as iOS and standard clients use it.
//!
//! GetCACaps and GetCACert by GET; PKIOperation by POST (DER body) or GET
//! (`message=` base64). PKCSReq needs a one-time challenge from an enrollment
//! profile; RenewalReq must be signed with an identity certificate we issued.
//! Refusals are SCEP failure replies (pkiStatus FAILURE with failInfo) whenever the
//! request could be read far enough to answer, plain 400 otherwise; in both cases
//! nothing is issued and the reason is logged.

use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use openssl::x509::{X509Name, X509};

use crate::enrollment::tokens::{self, IssuedCertificate, TokenError};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::mdm::identity::asn1_to_naive;
use crate::pki::scep::{self, FailInfo, FailureContext, MessageType, ScepError, ScepRequest};
use crate::pki::{self, CertificateAuthority};
use crate::state::AppState;

/// Largest PKIOperation message accepted by POST.
const MAX_MESSAGE: usize = 64 * 1024;
/// Largest PKIOperation message accepted by GET (base64 in the URL; real ones are a
/// few KiB).
const MAX_GET_MESSAGE: usize = 16 * 1024;

/// Registers `/scep`.
pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/scep")
            .route(web::get().to(scep_get))
            .route(web::post().to(scep_post)),
    );
}

#[derive(serde::Deserialize)]
struct Query {
    operation: Option<String>,
    message: Option<String>,
}

async fn scep_get(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    // A GET message is base64 in the URL: held to the POST limit before it is read
    // (HTTP/2 sets no limit of its own on a request's path).
    if req.query_string().len() > MAX_GET_MESSAGE * 4 / 3 + 1024 {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("SCEP message by GET larger than {MAX_GET_MESSAGE} bytes: POST it"),
        ));
    }
    let q: Query = crate::error::parse_query(req.query_string())?;
    match q.operation.as_deref() {
        Some("GetCACaps") => Ok(HttpResponse::Ok()
            .content_type("text/plain")
            .body(scep::get_ca_caps())),
        Some("GetCACert") => {
            let (content_type, body) = scep::get_ca_cert(&state.ca).map_err(ApiError::internal)?;
            Ok(HttpResponse::Ok().content_type(content_type).body(body))
        }
        Some("PKIOperation") => {
            let message = q.message.ok_or_else(|| {
                ApiError::bad_request("PKIOperation by GET needs a message parameter")
            })?;
            let der = scep::decode_get_message(&message)
                .map_err(|e| ApiError::bad_request(format!("message is not base64: {e}")))?;
            pki_operation(state, der).await
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "unknown SCEP operation {other:?}"
        ))),
        None => Err(ApiError::bad_request("missing operation parameter")),
    }
}

async fn scep_post(
    state: web::Data<AppState>,
    q: crate::error::Query<Query>,
    mut payload: web::Payload,
    _req: HttpRequest,
) -> ApiResult<HttpResponse> {
    if q.operation.as_deref() != Some("PKIOperation") {
        return Err(ApiError::bad_request(
            "POST is only for operation=PKIOperation",
        ));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > MAX_MESSAGE {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("SCEP message larger than {MAX_MESSAGE} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    pki_operation(state, body.to_vec()).await
}

fn pki_message(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(scep::PKI_MESSAGE_CONTENT_TYPE)
        .body(body)
}

/// A refusal: a signed SCEP failure reply when we can address one, else 400.
fn refuse(
    ca: &CertificateAuthority,
    ctx: Option<&FailureContext>,
    fail: FailInfo,
    reason: &str,
) -> ApiResult<HttpResponse> {
    tracing::warn!(fail_info = %fail, reason, "SCEP request refused");
    match ctx {
        Some(ctx) => Ok(pki_message(
            scep::cert_rep_failure(ctx, fail, ca).map_err(ApiError::internal)?,
        )),
        None => Err(ApiError::bad_request(format!(
            "not a SCEP message: {reason}"
        ))),
    }
}

async fn pki_operation(state: web::Data<AppState>, der: Vec<u8>) -> ApiResult<HttpResponse> {
    let st = state.into_inner();
    // Parsing decrypts with the CA key and verifies signatures: CPU work, off the worker.
    let s = st.clone();
    let parsed = tokio::task::spawn_blocking(move || scep::parse_request(&der, &s.ca))
        .await
        .map_err(ApiError::internal)?;
    let req = match parsed {
        Ok(r) => r,
        Err(ScepError::Rejected {
            context,
            fail_info,
            reason,
        }) => {
            return refuse(&st.ca, context.as_ref(), fail_info, &reason);
        }
        Err(ScepError::Pki(e)) => return Err(ApiError::internal(e)),
    };
    let ctx = req.failure_context();
    let validity = st.settings.mdm.identity_validity_days;
    let s = st.clone();
    let outcome =
        s.db.clone()
            .run(
                move |conn| -> ApiResult<Result<Vec<u8>, (FailInfo, String)>> {
                    match req.message_type {
                        MessageType::PkcsReq => {
                            conn.write_tx(|conn| enroll(conn, &s.ca, &req, validity))
                        }
                        MessageType::RenewalReq => {
                            conn.write_tx(|conn| renew(conn, &s.ca, &req, validity))
                        }
                        other => Ok(Err((
                            FailInfo::BadRequest,
                            format!(
                            "{other:?} is not supported: tafel issues at once, nothing is pending"
                        ),
                        ))),
                    }
                },
            )
            .await?;
    match outcome {
        Ok(reply) => Ok(pki_message(reply)),
        Err((fail, reason)) => refuse(&st.ca, Some(&ctx), fail, &reason),
    }
}

type Issue = Result<Result<Vec<u8>, (FailInfo, String)>, ApiError>;

/// Issues a certificate for the request's CSR and records it; returns the CertRep.
fn issue(
    conn: &mut crate::db::DbConn,
    ca: &CertificateAuthority,
    req: &ScepRequest,
    days: u32,
    subject: &openssl::x509::X509NameRef,
    renewed_from: Option<&str>,
    origin: Origin<'_>,
) -> Issue {
    let Some(csr) = req.csr.as_ref() else {
        return Ok(Err((
            FailInfo::BadRequest,
            "no certificate request in the message".into(),
        )));
    };
    let public = csr.public_key().map_err(ApiError::internal)?;
    if let Err(why) = pki::key_policy(&public) {
        return Ok(Err((FailInfo::BadAlg, why)));
    }
    let cert = ca
        .issue_client_cert(&public, subject, days)
        .map_err(ApiError::internal)?;
    record(conn, &cert, renewed_from, origin)?;
    let reply = scep::cert_rep_success(req, &cert, ca).map_err(ApiError::internal)?;
    Ok(Ok(reply))
}

/// What an issued certificate is for.
#[derive(Clone, Copy)]
enum Origin<'a> {
    /// A challenge of this token; for ADE, handed out to this UDID's machine info.
    Enrollment {
        token_id: &'a str,
        ade_udid: Option<&'a str>,
    },
    /// A renewal of the bound identity of this UDID.
    Renewal { udid: &'a str },
}

fn record(
    conn: &mut crate::db::DbConn,
    cert: &X509,
    renewed_from: Option<&str>,
    origin: Origin<'_>,
) -> ApiResult<()> {
    let sha = pki::sha256_fingerprint(cert).map_err(ApiError::internal)?;
    let serial = cert
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .map_err(ApiError::internal)?;
    let subject = one_line(cert.subject_name());
    let not_before =
        asn1_to_naive(cert.not_before()).ok_or_else(|| ApiError::internal("bad notBefore"))?;
    let not_after =
        asn1_to_naive(cert.not_after()).ok_or_else(|| ApiError::internal("bad notAfter"))?;
    tokens::record_certificate(
        conn,
        &IssuedCertificate {
            sha256: &sha,
            serial: &serial,
            subject: &subject,
            not_before,
            not_after,
            renewed_from,
            enrollment_token_id: match origin {
                Origin::Enrollment { token_id, .. } => Some(token_id),
                Origin::Renewal { .. } => None,
            },
            ade_udid: match origin {
                Origin::Enrollment { ade_udid, .. } => ade_udid,
                Origin::Renewal { .. } => None,
            },
            udid: match origin {
                Origin::Enrollment { ade_udid, .. } => ade_udid,
                Origin::Renewal { udid } => Some(udid),
            },
        },
    )?;
    Ok(())
}

fn one_line(name: &openssl::x509::X509NameRef) -> String {
    name.entries()
        .filter_map(|e| {
            let key = e.object().nid().short_name().ok()?;
            let value = e.data().to_string().ok()?;
            Some(format!("{key}={value}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The subject we issue: the CN the device asked for, the school authority and school.
fn subject(req: &ScepRequest, org: &str, unit: &str) -> ApiResult<X509Name> {
    let cn = req
        .csr
        .as_ref()
        .and_then(|c| {
            c.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
        })
        .and_then(|e| e.data().to_string().ok())
        .unwrap_or_else(|| "tafel device".into());
    let mut b = X509Name::builder().map_err(ApiError::internal)?;
    b.append_entry_by_text("O", org)
        .map_err(ApiError::internal)?;
    b.append_entry_by_text("OU", unit)
        .map_err(ApiError::internal)?;
    b.append_entry_by_text("CN", &cn.chars().take(64).collect::<String>())
        .map_err(ApiError::internal)?;
    Ok(b.build())
}

/// PKCSReq: consume the challenge, issue, record.
fn enroll(
    conn: &mut crate::db::DbConn,
    ca: &CertificateAuthority,
    req: &ScepRequest,
    days: u32,
) -> Issue {
    let Some(challenge) = req.challenge_password.as_deref() else {
        return Ok(Err((
            FailInfo::BadRequest,
            "no challenge password in the request".into(),
        )));
    };
    let (token, purpose) = match tokens::consume_challenge(conn, challenge) {
        Ok(t) => t,
        Err(TokenError::Db(e)) => return Err(e.into()),
        Err(e) => return Ok(Err((FailInfo::BadRequest, e.to_string()))),
    };
    let org = crate::org::tenant(conn, &token.tenant_id)?
        .map(|t| t.slug)
        .unwrap_or_else(|| token.tenant_id.clone());
    let name = subject(req, &org, &token.school_id)?;
    let (renewed_from, origin) = match &purpose {
        tokens::ChallengeFor::Renewal { udid, renews } => {
            // Only while the device is still bound to the identity being renewed.
            if !bound_and_active(conn, udid, renews)? {
                return Ok(Err((
                    FailInfo::BadRequest,
                    "the identity this challenge renews is no longer the device's".into(),
                )));
            }
            (Some(renews.as_str()), Origin::Renewal { udid })
        }
        tokens::ChallengeFor::Ade { udid } => (
            None,
            Origin::Enrollment {
                token_id: &token.id,
                ade_udid: Some(udid),
            },
        ),
        tokens::ChallengeFor::Link => (
            None,
            Origin::Enrollment {
                token_id: &token.id,
                ade_udid: None,
            },
        ),
    };
    let result = issue(conn, ca, req, days, &name, renewed_from, origin)?;
    if result.is_ok() {
        tracing::info!(token = %token.id, school = %token.school_id, renewal = renewed_from.is_some(), "identity certificate issued");
    }
    Ok(result)
}

/// Is `udid` an active device bound to the certificate `sha256`?
fn bound_and_active(conn: &mut crate::db::DbConn, udid: &str, sha256: &str) -> ApiResult<bool> {
    use crate::db::schema::devices;
    use diesel::prelude::*;
    let n: i64 = devices::table
        .filter(devices::udid.eq(udid))
        .filter(devices::identity_cert_sha256.eq(sha256))
        .filter(devices::enrollment_status.eq(crate::enrollment::EnrollmentStatus::Active))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Renewals issued from one certificate at most (a lost reply may be asked again).
const MAX_RENEWALS: i64 = 5;

/// RenewalReq: the signer must be the bound identity of an active device.
fn renew(
    conn: &mut crate::db::DbConn,
    ca: &CertificateAuthority,
    req: &ScepRequest,
    days: u32,
) -> Issue {
    use crate::db::schema::{device_certificates, devices};
    use diesel::prelude::*;
    if let Err(e) = ca.verify_device_identity(&req.signer_cert, None) {
        return Ok(Err((
            FailInfo::BadMessageCheck,
            format!("renewal not signed with a valid identity of ours: {e}"),
        )));
    }
    let old = pki::sha256_fingerprint(&req.signer_cert).map_err(ApiError::internal)?;
    if !tokens::certificate_exists(conn, &old)? {
        return Ok(Err((
            FailInfo::BadCertId,
            "the signing certificate was not issued by this server's SCEP".into(),
        )));
    }
    let bound: Option<String> = devices::table
        .filter(devices::identity_cert_sha256.eq(&old))
        .filter(devices::enrollment_status.eq(crate::enrollment::EnrollmentStatus::Active))
        .select(devices::udid)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten();
    let Some(udid) = bound else {
        return Ok(Err((
            FailInfo::BadCertId,
            "only the identity an active device is enrolled with can be renewed".into(),
        )));
    };
    let renewals: i64 = device_certificates::table
        .filter(device_certificates::renewed_from.eq(&old))
        .count()
        .get_result(conn)?;
    if renewals >= MAX_RENEWALS {
        return Ok(Err((
            FailInfo::BadRequest,
            format!("this identity was renewed {renewals} times already"),
        )));
    }
    let name = req
        .signer_cert
        .subject_name()
        .to_owned()
        .map_err(ApiError::internal)?;
    let result = issue(
        conn,
        ca,
        req,
        days,
        &name,
        Some(&old),
        Origin::Renewal { udid: &udid },
    )?;
    if result.is_ok() {
        tracing::info!(renewed_from = %old, udid = %udid, "identity certificate renewed");
    }
    Ok(result)
}
