//! SCEP (RFC 8894) pkiMessages: reading requests and building CertReps for tafel's CA, plus the client half the device simulator speaks.
//!
//! Pure message handling: no HTTP, no database. The HTTP door takes the DER
//! (a POST body, or a GET `message=` parameter through [`decode_get_message`]),
//! calls [`parse_request`], applies policy (challenge, renewal of a
//! certificate [`CertificateAuthority::verify_issued`] accepts), issues with
//! [`CertificateAuthority::issue_client_cert`] and answers with
//! [`cert_rep_success`] or [`cert_rep_failure`] as [`PKI_MESSAGE_CONTENT_TYPE`].
//!
//! Error policy: [`parse_request`] refuses with [`ScepError::Rejected`]. When
//! its `context` is `Some`, the sender is identifiable (transactionID and
//! senderNonce were readable) and the answer is a CertRep with pkiStatus
//! FAILURE and the `fail_info` (HTTP 200); when it is `None` the bytes were no
//! SCEP message at all and the answer is a plain HTTP 400. [`ScepError::Pki`]
//! is our own failure (HTTP 500). The client half returns [`PkiError`].
//!
//! We are CA and RA in one: GetCACert returns the CA certificate alone, so
//! requesters encrypt to the CA key and CertReps are signed by it.

use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use openssl::asn1::{Asn1Object, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::{CMSOptions, CmsContentInfo, CmsContentInfoRef};
use openssl::error::ErrorStack;
use openssl::hash::{hash, MessageDigest};
use openssl::nid::Nid;
use openssl::pkcs7::Pkcs7;
use openssl::pkey::{PKeyRef, Private};
use openssl::provider::Provider;
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::{X509Builder, X509NameRef, X509Ref, X509Req, X509ReqBuilder, X509ReqRef, X509};

use super::ca::CertificateAuthority;
use super::cms::{describe, has_cms_reason, CMS_R_CIPHER_INITIALISATION_ERROR, CMS_R_NO_CONTENT};
use super::error::{PkiError, Result};
use super::ffi::{self, AttributeInput, AttributeValue};

/// The GetCACaps answer (RFC 8894 §3.5.2 keywords, one per line).
///
/// AES means AES-128-CBC; SCEPStandard implies AES, POSTPKIOperation and
/// SHA-256. iOS picks its digest and cipher from this list; micromdm's
/// scepclient 2.1 only uses it to choose POST over GET.
pub const CA_CAPS: &str = "AES\nPOSTPKIOperation\nRenewal\nSHA-256\nSHA-512\nSCEPStandard\n";
/// Content type of a PKIOperation response (and of a POSTed request).
pub const PKI_MESSAGE_CONTENT_TYPE: &str = "application/x-pki-message";
/// Content type of a GetCACert response carrying one DER certificate.
pub const CA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-cert";
/// Content type of a GetCACert response carrying a degenerate PKCS #7 chain.
pub const CA_RA_CERT_CONTENT_TYPE: &str = "application/x-x509-ca-ra-cert";

/// SCEP attribute OIDs (RFC 8894 §3.2.1, arc `id-attributes` of VeriSign).
mod oid {
    pub const MESSAGE_TYPE: &str = "2.16.840.1.113733.1.9.2";
    pub const PKI_STATUS: &str = "2.16.840.1.113733.1.9.3";
    pub const FAIL_INFO: &str = "2.16.840.1.113733.1.9.4";
    pub const SENDER_NONCE: &str = "2.16.840.1.113733.1.9.5";
    pub const RECIPIENT_NONCE: &str = "2.16.840.1.113733.1.9.6";
    pub const TRANSACTION_ID: &str = "2.16.840.1.113733.1.9.7";
}

/// messageType of a CertRep.
const CERT_REP: &str = "3";
/// RFC 8894 §3.2.1.5: nonces are 16 random bytes.
const NONCE_LEN: usize = 16;
/// Longest senderNonce we accept from others.
const MAX_NONCE_LEN: usize = 64;
/// Longest transactionID we accept (hex SHA-256 is 64, base64 SHA-1 is 28).
const MAX_TRANSACTION_ID_LEN: usize = 256;
/// Validity of the throw-away self-signed certificate of a PKCSReq.
const SELF_SIGNED_DAYS: i64 = 7;
const CLOCK_SKEW_SECS: i64 = 3600;

const CMS_R_UNKNOWN_CIPHER: i32 = 148;

/// What a SCEP request asks for (RFC 8894 §3.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Renew an existing certificate, signed with it (17).
    RenewalReq,
    /// Enrol: a CSR signed with a self-signed certificate for its key (19).
    PkcsReq,
    /// Poll for a pending request, a.k.a. GetCertInitial (20).
    CertPoll,
    /// Fetch a certificate by issuer and serial (21).
    GetCert,
    /// Fetch a CRL (22).
    GetCrl,
}

impl MessageType {
    /// The decimal code sent as a PrintableString.
    pub fn code(self) -> &'static str {
        match self {
            Self::RenewalReq => "17",
            Self::PkcsReq => "19",
            Self::CertPoll => "20",
            Self::GetCert => "21",
            Self::GetCrl => "22",
        }
    }

    /// Parses a request code; `None` for CertRep, the obsolete UpdateReq and
    /// anything unknown.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "17" => Some(Self::RenewalReq),
            "19" => Some(Self::PkcsReq),
            "20" => Some(Self::CertPoll),
            "21" => Some(Self::GetCert),
            "22" => Some(Self::GetCrl),
            _ => None,
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::RenewalReq => "RenewalReq",
            Self::PkcsReq => "PKCSReq",
            Self::CertPoll => "CertPoll",
            Self::GetCert => "GetCert",
            Self::GetCrl => "GetCRL",
        };
        write!(f, "{name} ({})", self.code())
    }
}

/// Why a request failed, as a CertRep's failInfo (RFC 8894 §3.2.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailInfo {
    /// Unrecognized or unsupported algorithm (0).
    BadAlg,
    /// Integrity check (signature, decryption) failed (1).
    BadMessageCheck,
    /// Transaction not permitted or supported (2).
    BadRequest,
    /// signingTime too far from our clock (3).
    BadTime,
    /// No certificate matches the given criteria (4).
    BadCertId,
}

impl FailInfo {
    /// The decimal code sent as a PrintableString.
    pub fn code(self) -> &'static str {
        match self {
            Self::BadAlg => "0",
            Self::BadMessageCheck => "1",
            Self::BadRequest => "2",
            Self::BadTime => "3",
            Self::BadCertId => "4",
        }
    }

    /// Parses a failInfo code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code.trim() {
            "0" => Some(Self::BadAlg),
            "1" => Some(Self::BadMessageCheck),
            "2" => Some(Self::BadRequest),
            "3" => Some(Self::BadTime),
            "4" => Some(Self::BadCertId),
            _ => None,
        }
    }
}

impl fmt::Display for FailInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadAlg => "badAlg",
            Self::BadMessageCheck => "badMessageCheck",
            Self::BadRequest => "badRequest",
            Self::BadTime => "badTime",
            Self::BadCertId => "badCertId",
        })
    }
}

/// What a CertRep FAILURE needs from the request it answers.
#[derive(Debug, Clone)]
pub struct FailureContext {
    /// The request's transactionID, echoed back.
    pub transaction_id: String,
    /// The request's senderNonce, returned as recipientNonce.
    pub sender_nonce: Vec<u8>,
    /// The signer certificate, when the message carried one; for the log
    /// only, since a failure has no encrypted content.
    pub signer_cert: Option<X509>,
}

/// A request that parsed, verified and (for PKCSReq/RenewalReq) decrypted.
///
/// Nothing here is trusted yet beyond "the holder of `signer_cert`'s key sent
/// it": the caller checks the challenge for PKCSReq and, for RenewalReq, that
/// [`CertificateAuthority::verify_issued`] accepts `signer_cert`.
pub struct ScepRequest {
    /// What is asked for.
    pub message_type: MessageType,
    /// The requester's transaction identifier.
    pub transaction_id: String,
    /// The requester's nonce, to be returned as recipientNonce.
    pub sender_nonce: Vec<u8>,
    /// The certificate that signed the request: self-signed over the CSR key
    /// for PKCSReq, the current identity for RenewalReq. The CertRep is
    /// encrypted to it.
    pub signer_cert: X509,
    /// The CSR (self-signature verified), for PKCSReq and RenewalReq.
    pub csr: Option<X509Req>,
    /// The CSR's PKCS #9 challengePassword, whatever DirectoryString type
    /// carried it.
    pub challenge_password: Option<String>,
    /// The digest the requester signed with (SHA-1, SHA-256/384/512).
    pub digest: MessageDigest,
}

impl ScepRequest {
    /// What [`cert_rep_failure`] needs to refuse this request.
    pub fn failure_context(&self) -> FailureContext {
        FailureContext {
            transaction_id: self.transaction_id.clone(),
            sender_nonce: self.sender_nonce.clone(),
            signer_cert: Some(self.signer_cert.clone()),
        }
    }
}

impl fmt::Debug for ScepRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScepRequest")
            .field("message_type", &self.message_type)
            .field("transaction_id", &self.transaction_id)
            .field("sender_nonce", &hex::encode(&self.sender_nonce))
            .field("signer", &self.signer_cert.subject_name())
            .field("csr", &self.csr.as_ref().map(|csr| csr.subject_name()))
            .field(
                "challenge_password",
                &self.challenge_password.as_ref().map(|_| "<redacted>"),
            )
            .field("digest", &self.digest.type_())
            .finish()
    }
}

/// A refused SCEP request, or our own failure.
#[derive(Debug, thiserror::Error)]
pub enum ScepError {
    /// The request is refused with `fail_info`.
    #[error("SCEP request refused ({fail_info}): {reason}")]
    Rejected {
        /// `Some`: answer with [`cert_rep_failure`]. `None`: the message could
        /// not be attributed to a transaction; answer HTTP 400.
        context: Option<FailureContext>,
        /// The failInfo to answer with.
        fail_info: FailInfo,
        /// What went wrong, for the log; never sent to the device.
        reason: String,
    },
    /// Our own side failed (OpenSSL, the CA key): HTTP 500.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl ScepError {
    /// The failInfo to answer with, if this is a refusal.
    pub fn fail_info(&self) -> Option<FailInfo> {
        match self {
            Self::Rejected { fail_info, .. } => Some(*fail_info),
            Self::Pki(_) => None,
        }
    }

    /// The context for a CertRep FAILURE, if the sender is identifiable.
    pub fn failure_context(&self) -> Option<&FailureContext> {
        match self {
            Self::Rejected { context, .. } => context.as_ref(),
            Self::Pki(_) => None,
        }
    }
}

impl From<ErrorStack> for ScepError {
    fn from(e: ErrorStack) -> Self {
        Self::Pki(e.into())
    }
}

/// Result of a CertRep, as the client sees it.
#[derive(Debug)]
pub enum CertRepOutcome {
    /// pkiStatus SUCCESS: the certificate the CA issued for us.
    Issued(X509),
    /// pkiStatus FAILURE with its failInfo.
    Failed(FailInfo),
    /// pkiStatus PENDING: poll later.
    Pending,
}

/// The GetCACaps body.
pub fn get_ca_caps() -> &'static str {
    CA_CAPS
}

/// The GetCACert answer: content type and body. With an RA (RFC 8894 §4.2.1.2): a
/// certs-only PKCS #7 with the RA certificate first (the one a client encrypts to:
/// keyEncipherment, no CA), then the issuing CA and its issuers; without one, the
/// CA certificate as DER.
pub fn get_ca_cert(ca: &CertificateAuthority) -> Result<(&'static str, Vec<u8>)> {
    if !ca.has_ra() {
        return Ok((CA_CERT_CONTENT_TYPE, ca.cert().to_der()?));
    }
    let mut certs = Stack::new()?;
    certs.push(ca.ra_cert().to_owned())?;
    certs.push(ca.cert().to_owned())?;
    for c in ca.chain() {
        certs.push(c.clone())?;
    }
    Ok((
        CA_RA_CERT_CONTENT_TYPE,
        ffi::certs_only_pkcs7(&certs)?.to_der()?,
    ))
}

/// Decodes a GET PKIOperation's `message` parameter (already
/// percent-decoded): standard or URL-safe base64 — micromdm's scepclient sends
/// the URL-safe alphabet — with or without padding, tolerating line breaks and
/// a `+` that form decoding turned into a space.
pub fn decode_get_message(param: &str) -> Result<Vec<u8>> {
    let normalized: String = param
        .chars()
        .filter_map(|c| match c {
            '-' | ' ' => Some('+'),
            '_' => Some('/'),
            '=' | '\r' | '\n' | '\t' => None,
            c => Some(c),
        })
        .collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(normalized)
        .map_err(|e| PkiError::Malformed(format!("message is not base64: {e}")))
}

/// Parses, verifies and decrypts a PKIOperation request addressed to `ca`.
///
/// The signature is checked against the certificate embedded in the message
/// only (a PKCSReq's is self-signed); see [`ScepRequest`] for what the caller
/// still has to check. For CertPoll, GetCert and GetCRL the envelope is not
/// opened (`csr` is `None`): tafel issues synchronously and keeps no CRL, so
/// the caller refuses those with [`FailInfo::BadRequest`].
pub fn parse_request(der: &[u8], ca: &CertificateAuthority) -> Result<ScepRequest, ScepError> {
    let unreadable = |reason: String| ScepError::Rejected {
        context: None,
        fail_info: FailInfo::BadRequest,
        reason,
    };
    if der.is_empty() {
        return Err(unreadable("empty message".into()));
    }
    let mut cms = CmsContentInfo::from_der(der)
        .map_err(|e| unreadable(format!("not a CMS message: {}", describe(&e))))?;
    match ffi::signer_info_count(&cms) {
        Some(1) => {}
        None => return Err(unreadable("not CMS SignedData".into())),
        Some(n) => return Err(unreadable(format!("expected one signer, found {n}"))),
    }
    let context = read_context(&cms).map_err(unreadable)?;
    let refuse = |fail_info: FailInfo, reason: String| ScepError::Rejected {
        context: Some(context.clone()),
        fail_info,
        reason,
    };

    let signer_cert = context.signer_cert.clone().ok_or_else(|| {
        refuse(
            FailInfo::BadRequest,
            "the signer's certificate is not included".into(),
        )
    })?;
    let digest = ffi::signer_digest(&cms)
        .and_then(accepted_digest)
        .ok_or_else(|| refuse(FailInfo::BadAlg, "unsupported digest algorithm".into()))?;
    let mut certs = Stack::new()?;
    certs.push(signer_cert.clone())?;
    let mut envelope = Vec::new();
    cms.verify(
        Some(&certs),
        None,
        None,
        Some(&mut envelope),
        CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
    )
    .map_err(|e| {
        if has_cms_reason(&e, &[CMS_R_NO_CONTENT]) {
            refuse(FailInfo::BadRequest, "no pkcsPKIEnvelope".into())
        } else {
            refuse(
                FailInfo::BadMessageCheck,
                format!("signature does not verify: {}", describe(&e)),
            )
        }
    })?;

    let code = text_attribute(&cms, oid::MESSAGE_TYPE)
        .map_err(|reason| refuse(FailInfo::BadRequest, reason))?
        .ok_or_else(|| refuse(FailInfo::BadRequest, "no messageType".into()))?;
    let message_type = MessageType::from_code(&code).ok_or_else(|| {
        refuse(
            FailInfo::BadRequest,
            format!("unsupported messageType {code:?}"),
        )
    })?;

    let (csr, challenge_password) = match message_type {
        MessageType::PkcsReq | MessageType::RenewalReq => {
            let plain = open_envelope(&envelope, ca)
                .map_err(|(fail_info, reason)| refuse(fail_info, reason))?;
            let csr = X509Req::from_der(&plain).map_err(|e| {
                refuse(
                    FailInfo::BadRequest,
                    format!("envelope holds no PKCS #10 request: {}", describe(&e)),
                )
            })?;
            let csr_key = csr.public_key().map_err(|e| {
                refuse(
                    FailInfo::BadRequest,
                    format!("unusable CSR key: {}", describe(&e)),
                )
            })?;
            if !csr.verify(&csr_key).unwrap_or(false) {
                let _ = ErrorStack::get();
                return Err(refuse(
                    FailInfo::BadMessageCheck,
                    "the CSR's self-signature does not verify".into(),
                ));
            }
            // RFC 8894 §2.3 / §3.3.1: a PKCSReq is signed with a self-signed
            // certificate for the very key the CSR certifies; a renewal is
            // signed with the old identity and may bring a new key.
            if message_type == MessageType::PkcsReq
                && !signer_cert.public_key()?.public_eq(&csr_key)
            {
                return Err(refuse(
                    FailInfo::BadRequest,
                    "the signer certificate's key is not the CSR's key".into(),
                ));
            }
            let challenge = match ffi::challenge_password(&csr) {
                Ok(None) => None,
                Ok(Some(AttributeValue::Text { text, .. })) => Some(text),
                Ok(Some(AttributeValue::Octets(_))) => {
                    return Err(refuse(
                        FailInfo::BadRequest,
                        "challengePassword is not a string".into(),
                    ))
                }
                Err(e) => return Err(refuse(FailInfo::BadRequest, e.to_string())),
            };
            (Some(csr), challenge)
        }
        MessageType::CertPoll | MessageType::GetCert | MessageType::GetCrl => (None, None),
    };

    Ok(ScepRequest {
        message_type,
        transaction_id: context.transaction_id,
        sender_nonce: context.sender_nonce,
        signer_cert,
        csr,
        challenge_password,
        digest,
    })
}

/// A CertRep with pkiStatus SUCCESS delivering `issued` (RFC 8894 §3.3.2).
///
/// Signed by the RA (or the CA) with SHA-256; the content is an EnvelopedData
/// (AES-128-CBC, the cipher the `AES` capability promises) for the request's
/// signer certificate, holding a certs-only PKCS #7 with `issued` first and
/// the CA certificate second.
pub fn cert_rep_success(
    req: &ScepRequest,
    issued: &X509Ref,
    ca: &CertificateAuthority,
) -> Result<Vec<u8>> {
    let mut chain = Stack::new()?;
    chain.push(issued.to_owned())?;
    chain.push(ca.cert().to_owned())?;
    for c in ca.chain() {
        chain.push(c.clone())?;
    }
    let degenerate = ffi::certs_only_pkcs7(&chain)?.to_der()?;
    let mut recipients = Stack::new()?;
    recipients.push(req.signer_cert.clone())?;
    let envelope = CmsContentInfo::encrypt(
        &recipients,
        &degenerate,
        Cipher::aes_128_cbc(),
        CMSOptions::BINARY,
    )?
    .to_der()?;
    cert_rep(&req.failure_context(), "0", None, &envelope, ca)
}

/// A CertRep with pkiStatus FAILURE and `fail_info`, without content.
pub fn cert_rep_failure(
    context: &FailureContext,
    fail_info: FailInfo,
    ca: &CertificateAuthority,
) -> Result<Vec<u8>> {
    cert_rep(context, "2", Some(fail_info), &[], ca)
}

/// Builds a PKCSReq (signed with a self-signed certificate for the CSR key,
/// see [`self_signed_for_csr`]) or a RenewalReq (signed with the current
/// identity) for `recipient`, the certificate GetCACert returned.
///
/// SHA-256 signature, AES-128-CBC envelope. Returns the DER pkiMessage (POST
/// it, or base64 it into a GET), our transactionID (hex SHA-256 of the CSR's
/// SubjectPublicKeyInfo, RFC 8894 §3.2.1.1) and our fresh 16-byte senderNonce,
/// which the CertRep must echo (see [`parse_cert_rep`]).
pub fn build_pkcs_req(
    csr: &X509ReqRef,
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    recipient: &X509Ref,
    message_type: MessageType,
) -> Result<(Vec<u8>, String, Vec<u8>)> {
    build_request(
        csr,
        signer_cert,
        signer_key,
        recipient,
        message_type,
        Cipher::aes_128_cbc(),
        MessageDigest::sha256(),
    )
}

/// [`build_pkcs_req`] with a chosen cipher and digest (tests imitate older
/// clients with it).
fn build_request(
    csr: &X509ReqRef,
    signer_cert: &X509Ref,
    signer_key: &PKeyRef<Private>,
    recipient: &X509Ref,
    message_type: MessageType,
    cipher: Cipher,
    digest: MessageDigest,
) -> Result<(Vec<u8>, String, Vec<u8>)> {
    if !matches!(message_type, MessageType::PkcsReq | MessageType::RenewalReq) {
        return Err(PkiError::Malformed(format!(
            "{message_type} does not carry a CSR"
        )));
    }
    if !signer_cert.public_key()?.public_eq(signer_key) {
        return Err(PkiError::Malformed(
            "the signer key does not belong to the signer certificate".into(),
        ));
    }
    // A hash of the public key being certified, so a retry of the same
    // enrolment keeps its transactionID.
    let spki = csr.public_key()?.public_key_to_der()?;
    let transaction_id = hex::encode(hash(MessageDigest::sha256(), &spki)?);
    let sender_nonce = fresh_nonce()?;

    let mut recipients = Stack::new()?;
    recipients.push(recipient.to_owned())?;
    let envelope =
        CmsContentInfo::encrypt(&recipients, &csr.to_der()?, cipher, CMSOptions::BINARY)?
            .to_der()?;

    let (message_type_oid, transaction_id_oid, sender_nonce_oid) = (
        object(oid::MESSAGE_TYPE)?,
        object(oid::TRANSACTION_ID)?,
        object(oid::SENDER_NONCE)?,
    );
    let attributes = [
        (
            &*message_type_oid,
            AttributeInput::Printable(message_type.code()),
        ),
        (
            &*transaction_id_oid,
            AttributeInput::Printable(&transaction_id),
        ),
        (&*sender_nonce_oid, AttributeInput::Octets(&sender_nonce)),
    ];
    let message = sign_pki_message(&envelope, signer_cert, signer_key, digest, &attributes)?;
    Ok((message, transaction_id, sender_nonce))
}

/// Reads a CertRep answering our request: checks that `ca_cert` signed it and
/// that its recipientNonce is `expected_nonce`, then, on SUCCESS, decrypts it
/// with `cert`/`key` (what signed the request) and returns the issued
/// certificate — the one certificate in it, other than `ca_cert`, that
/// `ca_cert` signed.
pub fn parse_cert_rep(
    der: &[u8],
    ca_cert: &X509Ref,
    key: &PKeyRef<Private>,
    cert: &X509Ref,
    expected_nonce: &[u8],
) -> Result<CertRepOutcome> {
    let malformed = |what: String| PkiError::Malformed(what);
    let mut cms = CmsContentInfo::from_der(der)
        .map_err(|e| malformed(format!("CertRep is not CMS: {}", describe(&e))))?;
    if ffi::signer_info_count(&cms) != Some(1) {
        return Err(malformed(
            "CertRep is not SignedData with one signer".into(),
        ));
    }
    let mut trusted = Stack::new()?;
    trusted.push(ca_cert.to_owned())?;
    let mut content = Vec::new();
    cms.verify(
        Some(&trusted),
        None,
        None,
        Some(&mut content),
        CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
    )
    .map_err(|e| PkiError::BadSignature(describe(&e)))?;
    let ca_der = ca_cert.to_der()?;
    let signers = ffi::signers(&cms);
    let signed_by_ca = match signers.as_slice() {
        [signer] => signer.to_der()? == ca_der,
        _ => false,
    };
    if !signed_by_ca {
        return Err(PkiError::UntrustedCertificate(
            "the CertRep is not signed by the CA certificate".into(),
        ));
    }

    let text = |dotted: &str, name: &str| -> Result<String> {
        text_attribute(&cms, dotted)
            .map_err(malformed)?
            .ok_or_else(|| malformed(format!("CertRep has no {name}")))
    };
    if text(oid::MESSAGE_TYPE, "messageType")? != CERT_REP {
        return Err(malformed("not a CertRep".into()));
    }
    let recipient_nonce = octets_attribute(&cms, oid::RECIPIENT_NONCE)
        .map_err(malformed)?
        .ok_or_else(|| malformed("CertRep has no recipientNonce".into()))?;
    if recipient_nonce != expected_nonce {
        return Err(malformed(
            "recipientNonce does not match our senderNonce (stale or replayed CertRep)".into(),
        ));
    }
    match text(oid::PKI_STATUS, "pkiStatus")?.trim() {
        "0" => issued_certificate(&content, &ca_der, key, cert).map(CertRepOutcome::Issued),
        "2" => {
            let code = text(oid::FAIL_INFO, "failInfo")?;
            FailInfo::from_code(&code)
                .map(CertRepOutcome::Failed)
                .ok_or_else(|| malformed(format!("unknown failInfo {code:?}")))
        }
        "3" => Ok(CertRepOutcome::Pending),
        other => Err(malformed(format!("unknown pkiStatus {other:?}"))),
    }
}

/// The certificates of a GetCACert response: one DER certificate
/// ([`CA_CERT_CONTENT_TYPE`]) or a certs-only PKCS #7 ([`CA_RA_CERT_CONTENT_TYPE`]).
pub fn parse_ca_cert_response(content_type: &str, body: &[u8]) -> Result<Vec<X509>> {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        CA_CERT_CONTENT_TYPE => Ok(vec![X509::from_der(body).map_err(|e| {
            PkiError::Malformed(format!("GetCACert body is not a certificate: {e}"))
        })?]),
        CA_RA_CERT_CONTENT_TYPE => {
            let p7 = Pkcs7::from_der(body)
                .map_err(|e| PkiError::Malformed(format!("GetCACert body is not PKCS #7: {e}")))?;
            let certs = p7
                .signed()
                .and_then(|signed| signed.certificates())
                .ok_or_else(|| PkiError::Malformed("GetCACert chain has no certificates".into()))?;
            Ok(certs.iter().map(ToOwned::to_owned).collect())
        }
        other => Err(PkiError::Malformed(format!(
            "unexpected GetCACert content type {other:?}"
        ))),
    }
}

/// The certificate a SCEP client encrypts to among the GetCACert certificates: the
/// RA (a certificate that is no CA and may encipher keys) when there is one, else the
/// first (the CA itself).
pub fn recipient(certs: &[X509]) -> Option<&X509> {
    let is_ra = |c: &&X509| {
        let text = c
            .to_text()
            .map(|t| String::from_utf8_lossy(&t).into_owned());
        text.is_ok_and(|t| t.contains("CA:FALSE") && t.contains("Key Encipherment"))
    };
    certs.iter().find(is_ra).or_else(|| certs.first())
}

/// A CSR for `key` and `subject` with the enrolment profile's challenge, as
/// iOS builds it for a PKCSReq.
pub fn csr_with_challenge(
    key: &PKeyRef<Private>,
    subject: &X509NameRef,
    challenge: &str,
) -> Result<X509Req> {
    build_csr(key, subject, Some(challenge))
}

/// A CSR for `key` and `subject` (SHA-256), with a PKCS #9 challengePassword
/// when given (a RenewalReq usually has none).
pub fn build_csr(
    key: &PKeyRef<Private>,
    subject: &X509NameRef,
    challenge_password: Option<&str>,
) -> Result<X509Req> {
    let mut builder = X509ReqBuilder::new()?;
    builder.set_version(0)?;
    builder.set_subject_name(subject)?;
    builder.set_pubkey(key)?;
    let mut csr = builder.build();
    if let Some(password) = challenge_password {
        ffi::add_challenge_password(&mut csr, password)?;
    }
    ffi::sign_request(&mut csr, key, MessageDigest::sha256())?;
    Ok(csr)
}

/// The throw-away self-signed certificate that signs a PKCSReq (RFC 8894
/// §2.3): `subject` (the CSR's), `key`'s public key, valid for a week.
pub fn self_signed_for_csr(key: &PKeyRef<Private>, subject: &X509NameRef) -> Result<X509> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(64, MsbOption::ONE, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(subject)?;
    builder.set_issuer_name(subject)?;
    builder.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(now - CLOCK_SKEW_SECS)?;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::from_unix(now + SELF_SIGNED_DAYS * 86_400)?;
    builder.set_not_after(&not_after)?;
    builder.sign(key, MessageDigest::sha256())?;
    Ok(builder.build())
}

/// transactionID, senderNonce and (unverified) signer certificate: enough to
/// address a failure. The error is the reason the message is unreadable.
fn read_context(cms: &CmsContentInfoRef) -> Result<FailureContext, String> {
    let transaction_id =
        text_attribute(cms, oid::TRANSACTION_ID)?.ok_or("no transactionID attribute")?;
    if transaction_id.is_empty() || transaction_id.len() > MAX_TRANSACTION_ID_LEN {
        return Err(format!(
            "transactionID must have 1 to {MAX_TRANSACTION_ID_LEN} characters"
        ));
    }
    let sender_nonce =
        octets_attribute(cms, oid::SENDER_NONCE)?.ok_or("no senderNonce attribute")?;
    if sender_nonce.is_empty() || sender_nonce.len() > MAX_NONCE_LEN {
        return Err(format!(
            "senderNonce must have 1 to {MAX_NONCE_LEN} bytes, not {}",
            sender_nonce.len()
        ));
    }
    Ok(FailureContext {
        transaction_id,
        sender_nonce,
        signer_cert: ffi::embedded_signer_certificate(cms),
    })
}

/// A signed attribute that must be a character string.
fn text_attribute(cms: &CmsContentInfoRef, dotted: &str) -> Result<Option<String>, String> {
    let oid = object(dotted).map_err(|e| e.to_string())?;
    match ffi::signed_attribute(cms, &oid).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(AttributeValue::Text { text, .. }) => Ok(Some(text)),
        Some(AttributeValue::Octets(_)) => Err(format!("attribute {dotted} is not a string")),
    }
}

/// A signed attribute that must be an OCTET STRING.
fn octets_attribute(cms: &CmsContentInfoRef, dotted: &str) -> Result<Option<Vec<u8>>, String> {
    let oid = object(dotted).map_err(|e| e.to_string())?;
    match ffi::signed_attribute(cms, &oid).map_err(|e| e.to_string())? {
        None => Ok(None),
        Some(AttributeValue::Octets(bytes)) => Ok(Some(bytes)),
        Some(AttributeValue::Text { .. }) => {
            Err(format!("attribute {dotted} is not an OCTET STRING"))
        }
    }
}

/// The digests we accept in requests. MD5 is refused as broken; SHA-1 stays
/// because micromdm's scepclient 2.1 signs with it whatever the capabilities
/// say.
fn accepted_digest(nid: Nid) -> Option<MessageDigest> {
    match nid {
        Nid::SHA1 | Nid::SHA256 | Nid::SHA384 | Nid::SHA512 => MessageDigest::from_nid(nid),
        _ => None,
    }
}

/// Decrypts a pkcsPKIEnvelope addressed to the CA.
fn open_envelope(
    envelope: &[u8],
    ca: &CertificateAuthority,
) -> Result<Vec<u8>, (FailInfo, String)> {
    let parse = || {
        CmsContentInfo::from_der(envelope).map_err(|e| {
            (
                FailInfo::BadRequest,
                format!("pkcsPKIEnvelope is not CMS: {}", describe(&e)),
            )
        })
    };
    // Requests are encrypted to the RA (or to the CA that answers SCEP itself).
    let recipient = ca.ra_cert().to_owned();
    let classify = |e: ErrorStack| {
        if cipher_unavailable(&e) {
            (
                FailInfo::BadAlg,
                format!("unsupported content encryption: {}", describe(&e)),
            )
        } else {
            (
                FailInfo::BadMessageCheck,
                format!("cannot decrypt pkcsPKIEnvelope: {}", describe(&e)),
            )
        }
    };
    match parse()?.decrypt(ca.ra_key(), &recipient) {
        Ok(plain) => Ok(plain),
        Err(e) if cipher_unavailable(&e) && legacy_provider_loaded() => {
            parse()?.decrypt(ca.ra_key(), &recipient).map_err(classify)
        }
        Err(e) => Err(classify(e)),
    }
}

/// Whether a decryption failed because OpenSSL has no such cipher.
fn cipher_unavailable(e: &ErrorStack) -> bool {
    has_cms_reason(
        e,
        &[CMS_R_CIPHER_INITIALISATION_ERROR, CMS_R_UNKNOWN_CIPHER],
    )
}

/// Loads OpenSSL 3's "legacy" provider once, keeping the default provider.
///
/// Single DES lives only there, and micromdm's scepclient 2.1
/// (go.mozilla.org/pkcs7's default) encrypts its requests with DES-CBC even
/// when we advertise AES. Loaded on the first such request, not at start, so
/// deployments whose devices all use AES never enable it. Returns whether it
/// is available.
fn legacy_provider_loaded() -> bool {
    static LEGACY: OnceLock<Option<Provider>> = OnceLock::new();
    LEGACY
        .get_or_init(|| match Provider::try_load(None, "legacy", true) {
            Ok(provider) => {
                tracing::info!("loaded the OpenSSL legacy provider for a DES-encrypted SCEP request");
                Some(provider)
            }
            Err(e) => {
                tracing::warn!(error = %describe(&e), "OpenSSL legacy provider unavailable; DES SCEP requests will fail");
                None
            }
        })
        .is_some()
}

/// Finds the issued certificate in a SUCCESS CertRep's content.
fn issued_certificate(
    content: &[u8],
    ca_der: &[u8],
    key: &PKeyRef<Private>,
    cert: &X509Ref,
) -> Result<X509> {
    let envelope = CmsContentInfo::from_der(content).map_err(|e| {
        PkiError::Malformed(format!("CertRep content is not CMS: {}", describe(&e)))
    })?;
    let degenerate = envelope.decrypt(key, &cert.to_owned()).map_err(|e| {
        PkiError::Malformed(format!("cannot decrypt the CertRep: {}", describe(&e)))
    })?;
    let p7 = Pkcs7::from_der(&degenerate)
        .map_err(|e| PkiError::Malformed(format!("CertRep holds no PKCS #7: {}", describe(&e))))?;
    let certs = p7
        .signed()
        .and_then(|signed| signed.certificates())
        .ok_or_else(|| PkiError::Malformed("CertRep holds no certificates".into()))?;
    // Ours is the one that is neither the certificate the CertRep is signed with (the
    // CA, or the RA) nor a CA certificate (the chain the server adds).
    for candidate in certs {
        if candidate.to_der()? == ca_der {
            continue;
        }
        let is_ca = candidate
            .to_text()
            .map(|t| String::from_utf8_lossy(&t).contains("CA:TRUE"))
            .unwrap_or(true);
        if !is_ca {
            return Ok(candidate.to_owned());
        }
    }
    Err(PkiError::UntrustedCertificate(
        "the CertRep holds no certificate issued by the CA".into(),
    ))
}

/// Signs and encodes a CertRep.
fn cert_rep(
    context: &FailureContext,
    pki_status: &str,
    fail_info: Option<FailInfo>,
    content: &[u8],
    ca: &CertificateAuthority,
) -> Result<Vec<u8>> {
    let sender_nonce = fresh_nonce()?;
    let oids = [
        object(oid::MESSAGE_TYPE)?,
        object(oid::PKI_STATUS)?,
        object(oid::TRANSACTION_ID)?,
        object(oid::RECIPIENT_NONCE)?,
        object(oid::SENDER_NONCE)?,
        object(oid::FAIL_INFO)?,
    ];
    let [message_type, status, transaction_id, recipient_nonce, nonce, failure] = &oids;
    // Echo the transactionID in the type RFC 8894 asks for when it fits.
    let transaction_value = if is_printable_string(&context.transaction_id) {
        AttributeInput::Printable(&context.transaction_id)
    } else {
        AttributeInput::Utf8(&context.transaction_id)
    };
    let mut attributes = vec![
        (&**message_type, AttributeInput::Printable(CERT_REP)),
        (&**status, AttributeInput::Printable(pki_status)),
        (&**transaction_id, transaction_value),
        (
            &**recipient_nonce,
            AttributeInput::Octets(&context.sender_nonce),
        ),
        (&**nonce, AttributeInput::Octets(&sender_nonce)),
    ];
    if let Some(fail_info) = fail_info {
        attributes.push((&**failure, AttributeInput::Printable(fail_info.code())));
    }
    sign_pki_message(
        content,
        ca.ra_cert(),
        ca.ra_key(),
        MessageDigest::sha256(),
        &attributes,
    )
}

/// CMS SignedData over `content` (id-data, included even when empty) with the
/// SCEP attributes signed, the signer certificate embedded.
fn sign_pki_message(
    content: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    digest: MessageDigest,
    attributes: &[(&openssl::asn1::Asn1ObjectRef, AttributeInput<'_>)],
) -> Result<Vec<u8>> {
    let flags = CMSOptions::BINARY | CMSOptions::NOSMIMECAP;
    let mut cms =
        CmsContentInfo::sign::<Private>(None, None, None, None, flags | CMSOptions::PARTIAL)?;
    ffi::add_signer_with_attributes_and_finalize(
        &mut cms, cert, key, digest, attributes, content, flags,
    )?;
    Ok(cms.to_der()?)
}

fn object(dotted: &str) -> Result<Asn1Object> {
    Ok(Asn1Object::from_str(dotted)?)
}

fn fresh_nonce() -> Result<Vec<u8>> {
    let mut nonce = vec![0; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    Ok(nonce)
}

/// X.680 PrintableString characters.
fn is_printable_string(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

#[cfg(test)]
mod interop_tests;

#[cfg(test)]
mod tests {
    use std::process::Command;

    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use openssl::x509::X509Name;

    use super::*;

    const OPENSSL_CLI: &str = "/usr/bin/openssl";

    fn ca() -> CertificateAuthority {
        CertificateAuthority::generate("tafel SCEP test CA", 30).unwrap()
    }

    fn rsa_key() -> PKey<Private> {
        PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
    }

    fn subject(cn: &str) -> X509Name {
        let mut name = X509Name::builder().unwrap();
        name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
        name.build()
    }

    /// A device about to enrol: its key, its CSR and the self-signed
    /// certificate that signs the PKCSReq.
    struct Device {
        key: PKey<Private>,
        csr: X509Req,
        self_signed: X509,
    }

    impl Device {
        fn new(cn: &str, challenge: Option<&str>) -> Self {
            let key = rsa_key();
            let csr = build_csr(&key, &subject(cn), challenge).unwrap();
            let self_signed = self_signed_for_csr(&key, csr.subject_name()).unwrap();
            Self {
                key,
                csr,
                self_signed,
            }
        }

        fn pkcs_req(&self, ca: &CertificateAuthority) -> Sent {
            build_pkcs_req(
                &self.csr,
                &self.self_signed,
                &self.key,
                ca.cert(),
                MessageType::PkcsReq,
            )
            .unwrap()
            .into()
        }
    }

    /// A request as the client sent it.
    struct Sent {
        message: Vec<u8>,
        transaction_id: String,
        sender_nonce: Vec<u8>,
    }

    impl From<(Vec<u8>, String, Vec<u8>)> for Sent {
        fn from((message, transaction_id, sender_nonce): (Vec<u8>, String, Vec<u8>)) -> Self {
            Self {
                message,
                transaction_id,
                sender_nonce,
            }
        }
    }

    /// What a minimal server does with a request that parsed.
    fn serve(req: &ScepRequest, ca: &CertificateAuthority) -> Vec<u8> {
        let csr = req.csr.as_ref().unwrap();
        let issued = ca
            .issue_client_cert(&csr.public_key().unwrap(), csr.subject_name(), 30)
            .unwrap();
        cert_rep_success(req, &issued, ca).unwrap()
    }

    fn rejection(err: ScepError) -> (Option<FailureContext>, FailInfo, String) {
        match err {
            ScepError::Rejected {
                context,
                fail_info,
                reason,
            } => (context, fail_info, reason),
            ScepError::Pki(e) => panic!("expected a refusal, got {e}"),
        }
    }

    #[test]
    fn a_device_enrols_and_gets_a_certificate_that_chains_to_the_ca() {
        let ca = ca();
        let device = Device::new("00008030-001A2B3C4D5E6F70", Some("s3cret"));
        let sent = device.pkcs_req(&ca);
        assert_eq!(sent.sender_nonce.len(), 16);
        assert_eq!(sent.transaction_id.len(), 64, "hex SHA-256");

        let req = parse_request(&sent.message, &ca).unwrap();
        assert_eq!(req.message_type, MessageType::PkcsReq);
        assert_eq!(req.transaction_id, sent.transaction_id);
        assert_eq!(req.sender_nonce, sent.sender_nonce);
        assert_eq!(req.challenge_password.as_deref(), Some("s3cret"));
        assert_eq!(req.digest.type_(), Nid::SHA256);
        assert_eq!(
            req.signer_cert.to_der().unwrap(),
            device.self_signed.to_der().unwrap()
        );
        let csr = req.csr.as_ref().unwrap();
        assert_eq!(csr.to_der().unwrap(), device.csr.to_der().unwrap());
        assert!(!format!("{req:?}").contains("s3cret"), "challenge redacted");

        let rep = serve(&req, &ca);
        let outcome = parse_cert_rep(
            &rep,
            ca.cert(),
            &device.key,
            &device.self_signed,
            &sent.sender_nonce,
        )
        .unwrap();
        let CertRepOutcome::Issued(cert) = outcome else {
            panic!("expected a certificate, got {outcome:?}");
        };
        ca.verify_issued(&cert, None).unwrap();
        assert!(cert.public_key().unwrap().public_eq(&device.key));
        let cn = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next();
        assert_eq!(cn.unwrap().data().as_slice(), b"00008030-001A2B3C4D5E6F70");
    }

    #[test]
    fn a_refused_enrolment_reaches_the_device_as_bad_request() {
        let ca = ca();
        let device = Device::new("device", Some("wrong"));
        let sent = device.pkcs_req(&ca);
        let req = parse_request(&sent.message, &ca).unwrap();
        assert_ne!(req.challenge_password.as_deref(), Some("secret"));

        let rep = cert_rep_failure(&req.failure_context(), FailInfo::BadRequest, &ca).unwrap();
        let outcome = parse_cert_rep(
            &rep,
            ca.cert(),
            &device.key,
            &device.self_signed,
            &sent.sender_nonce,
        )
        .unwrap();
        assert!(
            matches!(outcome, CertRepOutcome::Failed(FailInfo::BadRequest)),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_cert_rep_for_another_request_or_from_another_ca_is_refused() {
        let ca = ca();
        let device = Device::new("device", None);
        let sent = device.pkcs_req(&ca);
        let rep = serve(&parse_request(&sent.message, &ca).unwrap(), &ca);

        let err = parse_cert_rep(&rep, ca.cert(), &device.key, &device.self_signed, &[0; 16])
            .unwrap_err();
        assert!(
            matches!(&err, PkiError::Malformed(m) if m.contains("recipientNonce")),
            "{err}"
        );
        let other = self::ca();
        let err = parse_cert_rep(
            &rep,
            other.cert(),
            &device.key,
            &device.self_signed,
            &sent.sender_nonce,
        )
        .unwrap_err();
        assert!(matches!(err, PkiError::UntrustedCertificate(_)), "{err}");
    }

    #[test]
    fn a_tampered_request_is_a_bad_message_check_that_can_still_be_answered() {
        let ca = ca();
        let device = Device::new("device", None);
        let sent = device.pkcs_req(&ca);

        // Flip a bit inside the signed content (the encrypted CSR) …
        let mut cms = CmsContentInfo::from_der(&sent.message).unwrap();
        let mut envelope = Vec::new();
        cms.verify(
            None,
            None,
            None,
            Some(&mut envelope),
            CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY,
        )
        .unwrap();
        let at = sent
            .message
            .windows(envelope.len())
            .position(|w| w == envelope.as_slice())
            .unwrap();
        let mut in_content = sent.message.clone();
        in_content[at + envelope.len() - 20] ^= 1;
        // … or inside the signature, the last element of the message.
        let mut in_signature = sent.message.clone();
        *in_signature.last_mut().unwrap() ^= 1;

        for tampered in [in_content, in_signature] {
            let (context, fail_info, reason) =
                rejection(parse_request(&tampered, &ca).unwrap_err());
            assert_eq!(fail_info, FailInfo::BadMessageCheck, "{reason}");
            let context = context.expect("transactionID and nonce were readable");
            assert_eq!(context.transaction_id, sent.transaction_id);
            assert_eq!(context.sender_nonce, sent.sender_nonce);

            let rep = cert_rep_failure(&context, fail_info, &ca).unwrap();
            let outcome = parse_cert_rep(
                &rep,
                ca.cert(),
                &device.key,
                &device.self_signed,
                &sent.sender_nonce,
            )
            .unwrap();
            assert!(matches!(
                outcome,
                CertRepOutcome::Failed(FailInfo::BadMessageCheck)
            ));
        }
    }

    #[test]
    fn a_csr_for_another_key_than_the_signer_is_refused() {
        let ca = ca();
        let device = Device::new("device", None);
        let impostor = Device::new("device", None);
        let sent: Sent = build_pkcs_req(
            &device.csr,
            &impostor.self_signed,
            &impostor.key,
            ca.cert(),
            MessageType::PkcsReq,
        )
        .unwrap()
        .into();
        let (context, fail_info, reason) =
            rejection(parse_request(&sent.message, &ca).unwrap_err());
        assert_eq!(fail_info, FailInfo::BadRequest);
        assert!(reason.contains("CSR's key"), "{reason}");
        assert!(context.is_some());
    }

    #[test]
    fn a_request_encrypted_to_someone_else_is_a_bad_message_check() {
        let ca = ca();
        let stranger = self::ca();
        let device = Device::new("device", None);
        let sent = device.pkcs_req(&stranger);
        let (context, fail_info, _) = rejection(parse_request(&sent.message, &ca).unwrap_err());
        assert_eq!(fail_info, FailInfo::BadMessageCheck);
        assert!(context.is_some());
    }

    #[test]
    fn garbage_is_a_bad_request_without_context() {
        let ca = ca();
        let device = Device::new("device", None);
        let envelope = super::super::cms::encrypt_envelope(b"hello", ca.cert()).unwrap();
        let plain_signature =
            super::super::cms::sign_attached(b"hello", &device.self_signed, &device.key, &[])
                .unwrap();
        for garbage in [
            &b""[..],
            b"hello",
            &[0x30, 0x80, 0x06],
            &envelope,
            &plain_signature,
        ] {
            let (context, fail_info, reason) = rejection(parse_request(garbage, &ca).unwrap_err());
            assert!(context.is_none(), "{reason}");
            assert_eq!(fail_info, FailInfo::BadRequest);
        }
    }

    #[test]
    fn a_renewal_is_signed_with_the_current_identity_and_may_bring_a_new_key() {
        let ca = ca();
        let device = Device::new("device", Some("s3cret"));
        let first = device.pkcs_req(&ca);
        let rep = serve(&parse_request(&first.message, &ca).unwrap(), &ca);
        let CertRepOutcome::Issued(identity) = parse_cert_rep(
            &rep,
            ca.cert(),
            &device.key,
            &device.self_signed,
            &first.sender_nonce,
        )
        .unwrap() else {
            panic!("enrolment failed");
        };

        let new_key = rsa_key();
        let csr = build_csr(&new_key, identity.subject_name(), None).unwrap();
        let sent: Sent = build_pkcs_req(
            &csr,
            &identity,
            &device.key,
            ca.cert(),
            MessageType::RenewalReq,
        )
        .unwrap()
        .into();
        let req = parse_request(&sent.message, &ca).unwrap();
        assert_eq!(req.message_type, MessageType::RenewalReq);
        assert_eq!(req.challenge_password, None);
        assert_eq!(
            req.signer_cert.to_der().unwrap(),
            identity.to_der().unwrap()
        );
        // The caller's renewal policy: the signer must be one of ours.
        ca.verify_issued(&req.signer_cert, None).unwrap();

        let rep = serve(&req, &ca);
        let CertRepOutcome::Issued(renewed) =
            parse_cert_rep(&rep, ca.cert(), &device.key, &identity, &sent.sender_nonce).unwrap()
        else {
            panic!("renewal failed");
        };
        assert!(renewed.public_key().unwrap().public_eq(&new_key));
        ca.verify_issued(&renewed, None).unwrap();
    }

    #[test]
    fn a_scepclient_2_1_style_request_with_des_and_sha1_is_understood() {
        // micromdm's scepclient 2.1 ignores the caps: DES-CBC and SHA-1.
        assert!(legacy_provider_loaded(), "OpenSSL legacy provider missing");
        let ca = ca();
        let device = Device::new("device", Some("s3cret"));
        let sent: Sent = build_request(
            &device.csr,
            &device.self_signed,
            &device.key,
            ca.cert(),
            MessageType::PkcsReq,
            Cipher::des_cbc(),
            MessageDigest::sha1(),
        )
        .unwrap()
        .into();
        let req = parse_request(&sent.message, &ca).unwrap();
        assert_eq!(req.digest.type_(), Nid::SHA1);
        assert_eq!(req.challenge_password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn an_md5_signed_request_is_a_bad_alg() {
        let ca = ca();
        let device = Device::new("device", None);
        let sent: Sent = build_request(
            &device.csr,
            &device.self_signed,
            &device.key,
            ca.cert(),
            MessageType::PkcsReq,
            Cipher::aes_128_cbc(),
            MessageDigest::md5(),
        )
        .unwrap()
        .into();
        let (context, fail_info, _) = rejection(parse_request(&sent.message, &ca).unwrap_err());
        assert_eq!(fail_info, FailInfo::BadAlg);
        assert!(context.is_some());
    }

    #[test]
    fn a_challenge_outside_printable_string_survives() {
        let ca = ca();
        let device = Device::new("device", Some("Grüße—école"));
        let req = parse_request(&device.pkcs_req(&ca).message, &ca).unwrap();
        assert_eq!(req.challenge_password.as_deref(), Some("Grüße—école"));
    }

    #[test]
    fn only_requests_carrying_a_csr_can_be_built() {
        let ca = ca();
        let device = Device::new("device", None);
        let err = build_pkcs_req(
            &device.csr,
            &device.self_signed,
            &device.key,
            ca.cert(),
            MessageType::GetCrl,
        )
        .unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)));
        let err = build_pkcs_req(
            &device.csr,
            &device.self_signed,
            &rsa_key(),
            ca.cert(),
            MessageType::PkcsReq,
        )
        .unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)));
    }

    #[test]
    fn the_ca_answers_caps_and_its_certificate() {
        let ca = ca();
        let caps: Vec<&str> = get_ca_caps().lines().collect();
        for keyword in [
            "AES",
            "POSTPKIOperation",
            "Renewal",
            "SHA-256",
            "SCEPStandard",
        ] {
            assert!(caps.contains(&keyword), "{keyword}");
        }
        let (content_type, body) = get_ca_cert(&ca).unwrap();
        let certs = parse_ca_cert_response(content_type, &body).unwrap();
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].to_der().unwrap(), ca.cert().to_der().unwrap());

        let mut chain = Stack::new().unwrap();
        chain.push(ca.cert().to_owned()).unwrap();
        let p7 = ffi::certs_only_pkcs7(&chain).unwrap().to_der().unwrap();
        let certs =
            parse_ca_cert_response("application/x-x509-ca-ra-cert; charset=binary", &p7).unwrap();
        assert_eq!(certs.len(), 1);
        assert!(parse_ca_cert_response("text/html", &body).is_err());
    }

    #[test]
    fn get_messages_decode_from_either_base64_alphabet() {
        let bytes: Vec<u8> = (0..=255).collect();
        let engines = [
            &base64::engine::general_purpose::STANDARD,
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        for engine in engines {
            let encoded = engine.encode(&bytes);
            assert_eq!(decode_get_message(&encoded).unwrap(), bytes);
        }
        let standard = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(
            decode_get_message(&standard.replace('+', " ")).unwrap(),
            bytes
        );
        assert!(decode_get_message("not base64!").is_err());
    }

    #[test]
    fn message_types_and_fail_infos_round_trip_their_codes() {
        for t in [
            MessageType::RenewalReq,
            MessageType::PkcsReq,
            MessageType::CertPoll,
            MessageType::GetCert,
            MessageType::GetCrl,
        ] {
            assert_eq!(MessageType::from_code(t.code()), Some(t));
        }
        assert_eq!(MessageType::from_code("3"), None);
        assert_eq!(MessageType::PkcsReq.to_string(), "PKCSReq (19)");
        for f in [
            FailInfo::BadAlg,
            FailInfo::BadMessageCheck,
            FailInfo::BadRequest,
            FailInfo::BadTime,
            FailInfo::BadCertId,
        ] {
            assert_eq!(FailInfo::from_code(f.code()), Some(f));
        }
        assert_eq!(FailInfo::BadRequest.to_string(), "badRequest");
    }

    #[test]
    fn the_openssl_cli_verifies_a_cert_rep_against_the_ca() {
        if !std::path::Path::new(OPENSSL_CLI).exists() {
            eprintln!("skipped: {OPENSSL_CLI} not installed");
            return;
        }
        let ca = ca();
        let device = Device::new("device", None);
        let rep = serve(
            &parse_request(&device.pkcs_req(&ca).message, &ca).unwrap(),
            &ca,
        );
        let dir = tempfile::tempdir().unwrap();
        let (rep_path, ca_path) = (dir.path().join("rep.der"), dir.path().join("ca.pem"));
        std::fs::write(&rep_path, &rep).unwrap();
        std::fs::write(&ca_path, ca.cert_pem().unwrap()).unwrap();
        // A full chain check with OpenSSL's S/MIME purpose: it demands
        // digitalSignature in the signer's keyUsage, which our CA carries.
        let verified = Command::new(OPENSSL_CLI)
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
            .arg(&rep_path)
            .arg("-CAfile")
            .arg(&ca_path)
            .args(["-out", "/dev/null"])
            .output()
            .unwrap();
        assert!(verified.status.success(), "{verified:?}");
    }
}
