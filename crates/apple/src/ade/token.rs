//! Server tokens: the key pair whose certificate the admin uploads to Apple
//! School Manager, and the encrypted `.p7m` token Apple School Manager returns.
//!
//! The downloaded file is S/MIME: a few MIME headers, a blank line, then the
//! base64 DER of a CMS EnvelopedData encrypted to the uploaded certificate.
//! Its plaintext is again MIME text (`Content-Type: text/plain`, a blank line) whose
//! body is the JSON of the OAuth credentials, in one of two layouts:
//!
//! - Apple's documented one ("Examining server tokens" in Apple's Device Assignment
//!   documentation): the JSON itself wrapped into short lines (76 to 78 columns), the
//!   breaks falling anywhere, even inside a value, and no other framing;
//! - wrapped in `-----BEGIN MESSAGE-----` / `-----END MESSAGE-----` on one line
//!   (what Apple School Manager has been seen to send, and what nanodep's
//!   `tokenpki.UnwrapTokenJSON` reads).
//!
//! Raw DER and PEM are accepted too, for tokens that a tool already unwrapped.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::cms::CmsContentInfo;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage};
use openssl::x509::{X509Builder, X509NameBuilder, X509Ref, X509};
use serde::{Deserialize, Serialize};

use super::error::{AdeError, Result};

pub const BEGIN_MESSAGE: &str = "-----BEGIN MESSAGE-----";
pub const END_MESSAGE: &str = "-----END MESSAGE-----";

/// How long the self-signed token certificate is valid. Apple School Manager
/// only uses it to encrypt the token once; a year matches the token's own life.
const CERT_DAYS: u32 = 365;

/// The OAuth 1.0a credentials inside a server token.
///
/// `Debug` shows only the consumer key and the expiry: the rest are secrets.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthTokens {
    /// `consumer_key` (`CK_…`).
    pub consumer_key: String,
    /// `consumer_secret` (`CS_…`).
    pub consumer_secret: String,
    /// `access_token` (`AT_…`).
    pub access_token: String,
    /// `access_secret` (`AS_…`).
    pub access_secret: String,
    /// `access_token_expiry`: after this the token must be renewed in Apple School Manager.
    #[serde(with = "expiry")]
    pub access_token_expiry: DateTime<Utc>,
}

impl OAuthTokens {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.access_token_expiry <= now
    }
}

impl fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("access_secret", &"<redacted>")
            .field("access_token_expiry", &self.access_token_expiry)
            .finish()
    }
}

/// Apple writes `2025-06-25T17:41:09Z`; also accept the same without a zone.
mod expiry {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("access_token_expiry {text:?} is not a date"))
        })
    }

    pub fn parse(text: &str) -> Option<DateTime<Utc>> {
        let text = text.trim();
        if let Ok(at) = DateTime::parse_from_rfc3339(text) {
            return Some(at.with_timezone(&Utc));
        }
        ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|naive| naive.and_utc())
    }
}

/// A fresh RSA-2048 key and a self-signed certificate named `common_name`.
/// The certificate (as PEM, `X509::to_pem`) is what the admin uploads to
/// Apple School Manager under "MDM server → Upload public key"; keep the key
/// to open the token that comes back.
pub fn new_token_keypair(common_name: &str) -> Result<(X509, PKey<Private>)> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509Builder::new()?;
    builder.set_version(2)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&key)?;
    // Ten minutes back for clocks that are a little behind.
    let not_before = Asn1Time::from_unix(Utc::now().timestamp() - 600)?;
    builder.set_not_before(&not_before)?;
    let not_after = Asn1Time::days_from_now(CERT_DAYS)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(BasicConstraints::new().critical().build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build(), key))
}

/// Opens a server token downloaded from Apple School Manager (`…_Token_….p7m`)
/// with the key pair from [`new_token_keypair`].
pub fn decrypt_server_token(
    p7m: &[u8],
    cert: &X509Ref,
    key: &PKeyRef<Private>,
) -> Result<OAuthTokens> {
    let cms = read_cms(p7m)?;
    let plain = cms.decrypt(key, &cert.to_owned()).map_err(|e| {
        AdeError::TokenFile(format!(
            "cannot decrypt: the token was not made for this certificate (upload the current \
             public key to Apple School Manager and download the token again): {e}"
        ))
    })?;
    parse_message(&plain)
}

/// The CMS structure from S/MIME, PEM, bare base64 or DER.
fn read_cms(p7m: &[u8]) -> Result<CmsContentInfo> {
    let start = p7m
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(p7m.len());
    let trimmed = &p7m[start..];
    if trimmed.first() == Some(&0x30) {
        return CmsContentInfo::from_der(trimmed).map_err(bad_file);
    }
    if trimmed.starts_with(b"-----BEGIN") {
        return CmsContentInfo::from_pem(trimmed).map_err(bad_file);
    }
    let text = std::str::from_utf8(trimmed)
        .map_err(|_| AdeError::TokenFile("neither DER nor S/MIME text".into()))?;
    let body = match split_headers(text) {
        Some((_, body)) => body,
        None => text,
    };
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|e| AdeError::TokenFile(format!("the S/MIME body is not base64: {e}")))?;
    CmsContentInfo::from_der(&der).map_err(bad_file)
}

fn bad_file(e: openssl::error::ErrorStack) -> AdeError {
    AdeError::TokenFile(format!("not a CMS enveloped message: {e}"))
}

/// Splits MIME headers from the body at the first blank line, when the text
/// starts with headers (`Name: value`).
fn split_headers(text: &str) -> Option<(&str, &str)> {
    let first = text.lines().next()?;
    let name = first.split_once(':')?.0;
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    ["\r\n\r\n", "\n\n"]
        .iter()
        .filter_map(|sep| text.find(sep).map(|at| (at, sep.len())))
        .min_by_key(|(at, _)| *at)
        .map(|(at, len)| (&text[..at], &text[at + len..]))
}

/// The credentials from the decrypted MIME text.
fn parse_message(plain: &[u8]) -> Result<OAuthTokens> {
    let text = String::from_utf8_lossy(plain);
    let json = match (text.find(BEGIN_MESSAGE), text.find(END_MESSAGE)) {
        (Some(begin), Some(end)) if end > begin => &text[begin + BEGIN_MESSAGE.len()..end],
        _ => match split_headers(&text) {
            Some((_, body)) => body,
            None => &text,
        },
    };
    // Apple's documented layout wraps the JSON into short lines, also inside a value.
    // JSON never has a raw line break inside a string and needs none between its
    // tokens, so dropping every line break gives back the JSON as it was written.
    let json: String = json.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    serde_json::from_str(json.trim()).map_err(|e| {
        AdeError::TokenFile(format!(
            "the decrypted token is not the credentials Apple School Manager writes \
             (consumer_key, consumer_secret, access_token, access_secret, \
             access_token_expiry): {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_tokens() -> OAuthTokens {
        OAuthTokens {
            consumer_key: "CK_48dd68d198350f51258e885ce9a5c37ab7f98543c4a697323d75682a6c10a32501cb247e3db08105db868f73f2c972bdb6ae77112aea803b9219eb52689d42e6".into(),
            consumer_secret: "CS_34c7b2b531a600d99a0e4edcf4a78ded79b86ef318118c2f5bcfee1b011108c32d5302df801adbe29d446eb78f02b13144e323eb9aad51c79f01e50cb45c3a68".into(),
            access_token: "AT_927319d0ed0c7b8f3a3f0e5a3f9b1f1d6c9f1a9e0a4b7d1c5e3f2a1b0c9d8e7fO0a5a2a1b8c7d6e5f4O1597267542".into(),
            access_secret: "AS_c31afd7a09691d83548489336e8ff1cb11b82b6bca13f793344496a556b1f4972eaff4dde6deb5ac9cf076fdfa97ec97699c34d515947b9cf9ed31c99dded6ba".into(),
            access_token_expiry: DateTime::parse_from_rfc3339("2027-08-12T21:25:42Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn debug_hides_the_secrets() {
        let tokens = sample_tokens();
        let shown = format!("{tokens:?}");
        assert!(shown.contains("CK_48dd"));
        assert!(!shown.contains(&tokens.consumer_secret));
        assert!(!shown.contains(&tokens.access_token));
        assert!(!shown.contains(&tokens.access_secret));
    }

    #[test]
    fn apple_json_layout_parses() {
        let plain = b"Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n-----BEGIN MESSAGE-----\r\n{\"consumer_key\":\"CK_1\",\"consumer_secret\":\"CS_1\",\"access_token\":\"AT_1\",\"access_secret\":\"AS_1\",\"access_token_expiry\":\"2026-02-01T10:11:12Z\"}\r\n-----END MESSAGE-----\r\n";
        let tokens = parse_message(plain).unwrap();
        assert_eq!(tokens.access_secret, "AS_1");
        assert_eq!(
            tokens.access_token_expiry.to_rfc3339(),
            "2026-02-01T10:11:12+00:00"
        );
        assert!(expiry::parse("2026-02-01T10:11:12").is_some());
    }

    /// The plaintext exactly as Apple's "Examining server tokens" shows it: MIME
    /// headers, a blank line, the JSON wrapped (inside values too), no BEGIN/END
    /// MESSAGE lines.
    #[test]
    fn apples_documented_layout_parses() {
        let plain = "Content-Type: text/plain;charset=UTF-8\n\
            Content-Transfer-Encoding: 7bit\n\
            \n\
            {\"consumer_key\":\"CK_9dcd8190dde27dfddd9272c657e011f7bec9761676b1b11e46a2f61d3c\n\
            b1e482ef22093c7d54b23252f3bdb4d19b4d49\",\"consumer_secret\":\"CS_27c083df1ab7271e\n\
            129cb23325dabaf0de95d087\",\"access_token\":\"AT_O365587095O8247e0b5288abcdee25642\n\
            311746d67b5858ea5cO1389734861908\",\"access_secret\":\"AS_8c3313de9a3462014c6c96f3\n\
            9dd7c3d4342b8cea\",\"access_token_expiry\":\"2015-01-14T21:27:41Z\"}\n\
            \n";
        // The example's JSON lines are 78 characters; the break falls anywhere.
        assert!(plain.lines().all(|l| l.len() <= 78));
        let tokens = parse_message(plain.as_bytes()).unwrap();
        assert_eq!(
            tokens.consumer_key,
            "CK_9dcd8190dde27dfddd9272c657e011f7bec9761676b1b11e46a2f61d3cb1e482ef22093c7d54b23252f3bdb4d19b4d49"
        );
        assert_eq!(
            tokens.access_secret,
            "AS_8c3313de9a3462014c6c96f39dd7c3d4342b8cea"
        );
        assert_eq!(
            tokens.access_token_expiry.to_rfc3339(),
            "2015-01-14T21:27:41+00:00"
        );
        // The same with CRLF line ends.
        let crlf = plain.replace('\n', "\r\n");
        assert_eq!(parse_message(crlf.as_bytes()).unwrap(), tokens);
    }
}
