//! Certificates that renew, keys that do one job, machine info that cannot be replayed:
//! the SCEP key policy, the HTTP edge's headers, the certificate hierarchy and its
//! lifecycle.

use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;

use crate::enrollment::enrollment_token;
use crate::helpers::TestApp;

async fn scep_with(
    app: &TestApp,
    secret: &str,
    key: &PKey<Private>,
) -> Result<openssl::x509::X509, String> {
    let profile = app
        .client
        .get(app.url(&format!("/enroll/{secret}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let info = tafel::sim::enroll::read_profile(&profile).unwrap();
    tafel::sim::enroll::scep_enroll(&app.client, &info, key)
        .await
        .map_err(|e| e.to_string())
}

fn ec(nid: Nid) -> PKey<Private> {
    PKey::from_ec_key(EcKey::generate(&EcGroup::from_curve_name(nid).unwrap()).unwrap()).unwrap()
}

fn rsa(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
}

#[actix_web::test]
async fn scep_certifies_only_keys_worth_trusting() {
    let app = TestApp::spawn().await;
    let (_, secret) = enrollment_token(&app, "keys").await;
    for (name, key) in [
        ("RSA-512", rsa(512)),
        ("RSA-1024", rsa(1024)),
        ("RSA-4608", rsa(4608)),
        ("P-521", ec(Nid::SECP521R1)),
        ("secp256k1", ec(Nid::SECP256K1)),
    ] {
        let before = app.count("device_certificates");
        let err = scep_with(&app, &secret, &key).await.expect_err(name);
        assert!(
            err.contains("BadAlg") || err.contains("badAlg"),
            "{name}: {err}"
        );
        assert_eq!(before, app.count("device_certificates"), "{name}");
    }
    for (name, key) in [
        ("RSA-2048", rsa(2048)),
        ("RSA-4096", rsa(4096)),
        ("P-256", ec(Nid::X9_62_PRIME256V1)),
        ("P-384", ec(Nid::SECP384R1)),
    ] {
        let cert = scep_with(&app, &secret, &key).await.expect(name);
        let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
        let encipherment = text.contains("Key Encipherment");
        assert_eq!(encipherment, name.starts_with("RSA"), "{name}: {text}");
    }
}

#[actix_web::test]
async fn a_scep_get_message_has_a_size_limit() {
    let app = TestApp::spawn().await;
    // (URLs longer than 64 KiB cannot even be sent with this client.)
    let huge = "A".repeat(40 * 1024);
    let res = app
        .client
        .get(app.url(&format!("/scep?operation=PKIOperation&message={huge}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}
