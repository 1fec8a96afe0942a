//! Who is this device? The identity certificate from mTLS, a trusted proxy header, or
//! the `Mdm-Signature` header (base64 CMS detached signature over the exact body),
//! checked against our CA.

use actix_web::HttpRequest;
use base64::Engine;

use crate::enrollment::Identity;
use crate::error::ApiError;
use crate::pki::{self, PkiError};
use crate::startup::PeerCertificate;
use crate::state::AppState;

/// The header real devices sign bodies into when `SignMessage` is true.
pub const SIGNATURE_HEADER: &str = "Mdm-Signature";

/// Finds and verifies the device certificate for a request with `body`.
/// Any failure is a 403 with the reason; never 401 (iOS may unenroll on 401).
pub fn verify(req: &HttpRequest, body: &[u8], state: &AppState) -> Result<Identity, ApiError> {
    let cert = if let Some(sig) = req.headers().get(SIGNATURE_HEADER) {
        let der = signature_der(sig)?;
        // A certificate checked before: one signature check, nothing decoded.
        let now = chrono::Utc::now().timestamp();
        if let Some(known) = state.known.verify(&der, body, now) {
            return Ok(Identity {
                sha256: hex::encode(known.sha256),
                not_after: chrono::DateTime::from_timestamp(known.not_after, 0)
                    .map(|d| d.naive_utc())
                    .ok_or_else(|| {
                        ApiError::forbidden("identity certificate has an unreadable validity")
                    })?,
            });
        }
        let cert = pki::cms::verify_detached(&der, body).map_err(|e| match e {
            PkiError::BadSignature(_) => {
                ApiError::forbidden("Mdm-Signature does not match the body")
            }
            other => ApiError::forbidden(format!(
                "Mdm-Signature is not a valid CMS signature: {other}"
            )),
        })?;
        let identity = checked_identity(&cert, state)?;
        remember(&cert, state);
        return Ok(identity);
    } else if let Some(peer) = req.conn_data::<PeerCertificate>() {
        peer.0.clone()
    } else if let Some(cert) = proxy_certificate(req, state)? {
        cert
    } else {
        return Err(ApiError::forbidden(
            "no device identity: sign the body (Mdm-Signature) or present the identity certificate over TLS",
        ));
    };
    checked_identity(&cert, state)
}

/// The DER of an `Mdm-Signature` header (base64, possibly wrapped over several lines).
fn signature_der(sig: &actix_web::http::header::HeaderValue) -> Result<Vec<u8>, ApiError> {
    let text = sig
        .to_str()
        .map_err(|_| ApiError::forbidden("Mdm-Signature is not ASCII"))?;
    let engine = &base64::engine::general_purpose::STANDARD;
    let der = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        let joined: String = text.split_whitespace().collect();
        engine.decode(joined.as_bytes())
    } else {
        engine.decode(text.as_bytes())
    };
    der.map_err(|_| ApiError::forbidden("Mdm-Signature is not valid base64"))
}

/// The identity `cert` stands for, once its chain leads to our CA.
fn checked_identity(cert: &openssl::x509::X509Ref, state: &AppState) -> Result<Identity, ApiError> {
    state
        .ca
        .verify_device_identity(cert, None)
        .map_err(|e| match e {
            PkiError::Expired => ApiError::forbidden("identity certificate has expired"),
            PkiError::NotYetValid => ApiError::forbidden("identity certificate is not yet valid"),
            _ => ApiError::forbidden("identity certificate was not issued by this server's CA"),
        })?;
    let not_after = asn1_to_naive(cert.not_after())
        .ok_or_else(|| ApiError::forbidden("identity certificate has an unreadable validity"))?;
    Ok(Identity {
        sha256: pki::sha256_fingerprint(cert).map_err(ApiError::internal)?,
        not_after,
    })
}

/// Keeps a certificate whose chain was just checked for the device's next message.
fn remember(cert: &openssl::x509::X509Ref, state: &AppState) {
    let known = state
        .ca
        .validity_window()
        .and_then(|window| pki::known::Known::new(cert, window));
    match known {
        Ok(Some(known)) => state.known.insert(known),
        // Not RSA: checked in full each time.
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "device certificate not kept"),
    }
}

/// The URL-encoded PEM certificate a trusted TLS-terminating proxy put in the
/// configured header (off unless configured; only from `mdm.trusted_proxies`).
fn proxy_certificate(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<openssl::x509::X509>, ApiError> {
    let Some(name) = state.settings.mdm.trusted_proxy_cert_header.as_deref() else {
        return Ok(None);
    };
    let Some(value) = req.headers().get(name) else {
        return Ok(None);
    };
    // The header is the proxy's word; from anyone else it is a forgery attempt.
    let peer = req.peer_addr().map(|a| a.ip());
    if !peer.is_some_and(|ip| {
        state
            .settings
            .mdm
            .trusted_proxies
            .iter()
            .any(|n| n.contains(ip))
    }) {
        tracing::warn!(
            peer = ?peer,
            header = name,
            "client certificate header from an address that is not a trusted proxy: ignored"
        );
        return Ok(None);
    }
    let text = value
        .to_str()
        .map_err(|_| ApiError::forbidden(format!("{name} is not ASCII")))?;
    let pem = percent_decode(text);
    openssl::x509::X509::from_pem(pem.as_bytes())
        .map(Some)
        .map_err(|_| ApiError::forbidden(format!("{name} does not hold a PEM certificate")))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An ASN.1 time as a UTC timestamp.
pub fn asn1_to_naive(t: &openssl::asn1::Asn1TimeRef) -> Option<chrono::NaiveDateTime> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(t).ok()?;
    let secs = i64::from(diff.days) * 86_400 + i64::from(diff.secs);
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc())
}
