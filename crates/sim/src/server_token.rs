//! What Apple School Manager hands an admin for an MDM server: the server token (OAuth
//! credentials) encrypted to the certificate tafel made, as an S/MIME `.p7m` file.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::stack::Stack;
use openssl::symm::Cipher;
use openssl::x509::X509Ref;
use tafel::ade::token::{OAuthTokens, BEGIN_MESSAGE, END_MESSAGE};
use tafel::ade::AdeError;

/// How the server token's text is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenLayout {
    /// The credentials on one line between `-----BEGIN MESSAGE-----` and
    /// `-----END MESSAGE-----`, base64 at 64 columns: what Apple School Manager has
    /// been seen to hand out.
    #[default]
    Message,
    /// Exactly Apple's documented example ("Examining server tokens"): the JSON itself
    /// wrapped at 78 columns (breaks inside values too), no BEGIN/END lines; base64 at
    /// 76 columns and the `Content-Type` header folded the way the example folds it.
    Documented,
}

/// The widths of Apple's documented example: its base64 lines and its JSON lines.
const DOCUMENTED_BASE64_WIDTH: usize = 76;
const DOCUMENTED_JSON_WIDTH: usize = 78;

/// Encrypts `tokens` to `cert` in the `.p7m` layout Apple School Manager produces
/// ([`TokenLayout::Message`]).
pub fn encrypt_server_token(tokens: &OAuthTokens, cert: &X509Ref) -> Result<Vec<u8>, AdeError> {
    encrypt_server_token_as(tokens, cert, TokenLayout::Message)
}

/// Encrypts `tokens` to `cert` as a `.p7m` in `layout`.
pub fn encrypt_server_token_as(
    tokens: &OAuthTokens,
    cert: &X509Ref,
    layout: TokenLayout,
) -> Result<Vec<u8>, AdeError> {
    let json = serde_json::to_string(tokens).map_err(|e| AdeError::TokenFile(e.to_string()))?;
    let inner = match layout {
        TokenLayout::Message => format!(
            "Content-Type: text/plain;charset=UTF-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
             {BEGIN_MESSAGE}\r\n{json}\r\n{END_MESSAGE}\r\n"
        ),
        TokenLayout::Documented => format!(
            "Content-Type: text/plain;charset=UTF-8\nContent-Transfer-Encoding: 7bit\n\n{}\n",
            wrap(&json, DOCUMENTED_JSON_WIDTH, "\n")
        ),
    };
    let mut certs = Stack::new()?;
    certs.push(cert.to_owned())?;
    // BINARY: the content is already MIME text; no canonicalisation on the way in.
    let cms = CmsContentInfo::encrypt(
        &certs,
        inner.as_bytes(),
        Cipher::aes_256_cbc(),
        CMSOptions::BINARY,
    )?;
    let b64 = STANDARD.encode(cms.to_der()?);
    let out = match layout {
        TokenLayout::Message => format!(
            "Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-data\r\n\
             Content-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\r\n\
             Content-Description: S/MIME Encrypted Message\r\n\r\n{}",
            wrap(&b64, 64, "\r\n")
        ),
        TokenLayout::Documented => format!(
            "Content-Type: application/pkcs7-mime; name=\"smime.p7m\"; smime-type=enveloped-\n\
             data\n\
             Content-Transfer-Encoding: base64\n\
             Content-Disposition: attachment; filename=\"smime.p7m\"\n\
             Content-Description: S/MIME Encrypted Message\n\n{}",
            wrap(&b64, DOCUMENTED_BASE64_WIDTH, "\n")
        ),
    };
    Ok(out.into_bytes())
}

/// `text` (ASCII) cut into lines of `width`, each ended by `eol`.
fn wrap(text: &str, width: usize, eol: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width * eol.len() + eol.len());
    for line in text.as_bytes().chunks(width) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str(eol);
    }
    out
}

#[cfg(test)]
mod tests {
    //! tafel opens what Apple sends, in every layout it arrives in.

    use chrono::{DateTime, Utc};
    use tafel::ade::token::{decrypt_server_token, new_token_keypair};

    use super::*;

    fn sample_tokens() -> OAuthTokens {
        OAuthTokens {
            consumer_key: "CK_1".into(),
            consumer_secret: "CS_1".into(),
            access_token: "AT_1".into(),
            access_secret: "AS_1".into(),
            access_token_expiry: DateTime::parse_from_rfc3339("2027-08-12T21:25:42Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    #[test]
    fn admin_uploads_certificate_and_opens_the_p7m_that_comes_back() {
        let (cert, key) = new_token_keypair("tafel Springfield District").unwrap();
        let pem = String::from_utf8(cert.to_pem().unwrap()).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

        let tokens = sample_tokens();
        let p7m = encrypt_server_token(&tokens, &cert).unwrap();
        let text = String::from_utf8(p7m.clone()).unwrap();
        assert!(text.starts_with("Content-Type: application/pkcs7-mime"));
        assert!(text.contains("\r\n\r\nMI"), "base64 DER after the headers");

        assert_eq!(decrypt_server_token(&p7m, &cert, &key).unwrap(), tokens);

        // The same token as raw DER and with Unix line ends.
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        let der = STANDARD
            .decode(body.split_whitespace().collect::<String>())
            .unwrap();
        assert_eq!(decrypt_server_token(&der, &cert, &key).unwrap(), tokens);
        let unix = text.replace("\r\n", "\n");
        assert_eq!(
            decrypt_server_token(unix.as_bytes(), &cert, &key).unwrap(),
            tokens
        );
        // openssl's own S/MIME reader agrees with the layout.
        let cms = CmsContentInfo::smime_read_cms(&p7m).unwrap();
        assert!(cms.decrypt(&key, &cert).is_ok());
    }

    #[test]
    fn the_layout_apples_documentation_shows_opens_too() {
        let (cert, key) = new_token_keypair("tafel Kreis").unwrap();
        let tokens = OAuthTokens {
            consumer_key: format!("CK_{}", "9dcd8190dde27dfd".repeat(8)),
            ..sample_tokens()
        };
        let p7m = encrypt_server_token_as(&tokens, &cert, TokenLayout::Documented).unwrap();
        let text = String::from_utf8(p7m.clone()).unwrap();
        assert!(text.contains("smime-type=enveloped-\ndata\n"));
        let (_, base64) = text.split_once("\n\n").unwrap();
        assert!(base64.lines().all(|l| l.len() <= DOCUMENTED_BASE64_WIDTH));
        // The plaintext: the JSON wrapped at 78 columns, inside the consumer key too.
        let cms = CmsContentInfo::smime_read_cms(&p7m).unwrap();
        let plain = String::from_utf8(cms.decrypt(&key, &cert).unwrap()).unwrap();
        assert!(!plain.contains("BEGIN MESSAGE"), "{plain}");
        let (_, body) = plain.split_once("\n\n").unwrap();
        assert_eq!(body.lines().next().unwrap().len(), DOCUMENTED_JSON_WIDTH);
        assert!(body.lines().count() > 2, "{plain}");
        assert_eq!(decrypt_server_token(&p7m, &cert, &key).unwrap(), tokens);
    }

    #[test]
    fn token_for_another_certificate_is_refused_clearly() {
        let (cert, _) = new_token_keypair("old").unwrap();
        let (other_cert, other_key) = new_token_keypair("new").unwrap();
        let p7m = encrypt_server_token(&sample_tokens(), &cert).unwrap();
        let err = decrypt_server_token(&p7m, &other_cert, &other_key).unwrap_err();
        assert!(
            err.to_string().contains("not made for this certificate"),
            "{err}"
        );
        let err = decrypt_server_token(b"hello", &cert, &other_key).unwrap_err();
        assert!(matches!(err, AdeError::TokenFile(_)), "{err}");
    }
}
