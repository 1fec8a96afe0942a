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
    let info = app.profile_info(secret).await;
    tafel_sim::enroll::scep_enroll(&app.client, &info, key)
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
    // (Keys made before the requests: a slow key generation between two requests is
    // no test of the server.)
    let weak = [
        ("RSA-512", rsa(512)),
        ("RSA-1024", rsa(1024)),
        ("RSA-4608", rsa(4608)),
        ("P-521", ec(Nid::SECP521R1)),
        ("secp256k1", ec(Nid::SECP256K1)),
    ];
    let good = [
        ("RSA-2048", rsa(2048)),
        ("RSA-4096", rsa(4096)),
        ("P-256", ec(Nid::X9_62_PRIME256V1)),
        ("P-384", ec(Nid::SECP384R1)),
    ];
    for (name, key) in weak {
        let before = app.count("device_certificates");
        let err = scep_with(&app, &secret, &key).await.expect_err(name);
        assert!(
            err.contains("BadAlg") || err.contains("badAlg"),
            "{name}: {err}"
        );
        assert_eq!(before, app.count("device_certificates"), "{name}");
    }
    for (name, key) in good {
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

fn assert_guarded(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(h["x-frame-options"], "DENY", "{what}");
    assert_eq!(h["referrer-policy"], "no-referrer", "{what}");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
}

#[actix_web::test]
async fn every_answer_carries_the_security_headers_and_secrets_are_not_cached() {
    let app = TestApp::spawn().await;
    let (_, secret) = enrollment_token(&app, "hdr").await;
    for (what, res) in [
        (
            "api",
            app.client
                .get(app.url("/api/v1/me"))
                .bearer_auth(&app.admin_token)
                .send()
                .await
                .unwrap(),
        ),
        (
            "api error",
            app.client
                .get(app.url("/api/v1/nothing-here"))
                .send()
                .await
                .unwrap(),
        ),
        (
            "profile",
            app.client
                .get(app.url(&format!("/enroll/{secret}")))
                .send()
                .await
                .unwrap(),
        ),
        (
            "device",
            app.client
                .put(app.url("/mdm/checkin"))
                .body("x")
                .send()
                .await
                .unwrap(),
        ),
        (
            "probe",
            app.client.get(app.url("/healthz")).send().await.unwrap(),
        ),
    ] {
        assert_guarded(&res, what);
        assert_eq!(res.headers()["cache-control"], "no-store", "{what}");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .starts_with("default-src 'none'"),
            "{what}"
        );
        assert!(
            !res.headers().contains_key("strict-transport-security"),
            "{what}: no TLS"
        );
    }
    let docs = app
        .client
        .get(app.url("/api/v1/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 200);
    assert_guarded(&docs, "docs");
}

#[actix_web::test]
async fn under_tls_browsers_are_told_to_stay_on_https() {
    let app = TestApp::spawn_with(|s| s.tls.enabled = true).await;
    // Clients trust the root; the server sends the issuing CA with its certificate.
    let ca = std::fs::read(app.state.settings.certs_dir.join("root.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let res = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_guarded(&res, "healthz over TLS");
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[actix_web::test]
async fn the_device_listener_can_face_the_internet_alone() {
    let app = TestApp::spawn_with(|s| s.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = format!("http://127.0.0.1:{}", app.state.admin_port.unwrap());
    let me = |base: String| {
        let client = app.client.clone();
        let token = app.admin_token.clone();
        async move {
            client
                .get(format!("{base}/api/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(app.base.clone()).await, 404, "no admin API for devices");
    assert_eq!(me(admin.clone()).await, 200);
    let docs = app
        .client
        .get(app.url("/api/v1/docs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), 404);
    // Devices and probes are served where devices connect.
    let ipad = app.device(4200);
    ipad.authenticate().await.unwrap();
    for base in [&app.base, &admin] {
        let res = app
            .client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}

/// A certificate directory whose server certificate ends at `days` from now.
fn certs_with_server_ending_in(days: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    tafel::pki::store::init(dir.path(), &hosts, false).unwrap();
    let issuing = tafel::pki::store::load(dir.path()).unwrap().ca;
    let now = chrono::Utc::now().timestamp();
    let (cert, key) = issuing
        .issue_server_cert_between(&hosts, now - 400 * 86_400, now + days * 86_400)
        .unwrap();
    tafel::pki::write_key_file(
        &dir.path().join("server.key"),
        &key.private_key_to_pem_pkcs8().unwrap(),
        true,
    )
    .unwrap();
    std::fs::write(dir.path().join("server.pem"), cert.to_pem().unwrap()).unwrap();
    dir
}

#[actix_web::test]
async fn readiness_warns_before_a_certificate_expires_and_fails_after() {
    let soon = certs_with_server_ending_in(20);
    let path = soon.path().to_owned();
    let app = TestApp::spawn_with(move |s| s.certs_dir = path).await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "degraded");
    let reason = ready["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("server") && reason.contains("renew server"),
        "{reason}"
    );

    let gone = certs_with_server_ending_in(-1);
    let path = gone.path().to_owned();
    let app = TestApp::spawn_with(move |s| s.certs_dir = path).await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!(status, 503, "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("expired: server"),
        "{ready}"
    );
}

#[actix_web::test]
async fn tafels_own_certificates_are_no_device_identities() {
    let app = TestApp::spawn().await;
    let dir = &app.state.settings.certs_dir;
    for name in ["server", "signing", "scep-ra"] {
        let cert =
            openssl::x509::X509::from_pem(&std::fs::read(dir.join(format!("{name}.pem"))).unwrap())
                .unwrap();
        let key =
            PKey::private_key_from_pem(&std::fs::read(dir.join(format!("{name}.key"))).unwrap())
                .unwrap();
        let mut ipad = app.device(4300);
        ipad.set_identity(cert, key);
        let before = app.count("devices");
        let err = ipad.authenticate().await.unwrap_err().to_string();
        assert!(err.contains("403"), "{name}: {err}");
        assert_eq!(before, app.count("devices"), "{name}");
    }
}

/// Makes the identity `udid` is bound to look as if it ended at `at`.
fn identity_ends(app: &TestApp, udid: &str, at: chrono::DateTime<chrono::Utc>) {
    use diesel::prelude::*;
    use tafel::db::schema::devices;
    let mut conn = app.state.db.get().unwrap();
    diesel::update(devices::table.filter(devices::udid.eq(udid)))
        .set(devices::identity_cert_not_after.eq(at.naive_utc()))
        .execute(&mut *conn)
        .unwrap();
}

#[actix_web::test]
async fn identities_are_renewed_ahead_of_their_end_and_the_report_names_who_has_not() {
    use tafel::mdm::renewal;
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (_, secret) = enrollment_token(&app, "renew").await;
    let url = app.url(&format!("/enroll/{secret}"));
    let mut ipad = tafel_sim::enroll::enroll(
        &app.client,
        &url,
        tafel::protocol::Udid::parse("00008103-0000000000AB0001").unwrap(),
        "RENEW001".into(),
        None,
    )
    .await
    .unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;
    let other = tafel_sim::enroll::enroll(
        &app.client,
        &url,
        tafel::protocol::Udid::parse("00008103-0000000000AB0002").unwrap(),
        "RENEW002".into(),
        None,
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    assert_eq!(
        renewal::pass(&app.state, now).await.unwrap(),
        0,
        "a year to go"
    );
    for d in [&ipad, &other] {
        identity_ends(&app, d.udid.as_str(), now + chrono::Duration::days(10));
    }
    assert_eq!(renewal::pass(&app.state, now).await.unwrap(), 2);
    assert_eq!(
        renewal::pass(&app.state, now).await.unwrap(),
        0,
        "one renewal at a time"
    );

    // The iPad gets its enrollment profile again, renews its identity over SCEP with
    // the challenge in it, and authenticates with the new one.
    let (old, old_key) = (ipad.cert.clone(), ipad.key.clone());
    let cmd = ipad.idle().await.unwrap().expect("the renewal");
    assert_eq!(cmd.request_type, "InstallProfile");
    let payload = cmd
        .fields
        .get("Payload")
        .and_then(plist::Value::as_data)
        .unwrap()
        .to_vec();
    let info = tafel_sim::enroll::read_profile(&payload).unwrap();
    let key = tafel_sim::enroll::new_key().unwrap();
    let renewed = tafel_sim::enroll::scep_enroll(&app.client, &info, &key)
        .await
        .unwrap();
    ipad.set_identity(renewed.clone(), key);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    assert!(ipad
        .answer(
            &cmd,
            tafel_sim::device::Answer::Acknowledged(plist::Dictionary::new())
        )
        .await
        .unwrap()
        .is_none());
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(dev["enrollment_status"], "active");
    let ends =
        chrono::DateTime::parse_from_rfc3339(dev["identity_cert_not_after"].as_str().unwrap())
            .unwrap();
    assert!(ends > now + chrono::Duration::days(300), "{dev}");
    // The old identity no longer speaks for it.
    let mut stale = app.device(0);
    stale.udid = ipad.udid.clone();
    stale.set_identity(old, old_key);
    let err = stale.idle().await.unwrap_err().to_string();
    assert!(
        err.contains("403") && err.contains("different identity"),
        "{err}"
    );

    // Who has not renewed: the other iPad, in the report and in the device list.
    let (status, report) = app.get("/api/v1/certificates").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["device_identities"]["expiring"], 1, "{report}");
    assert_eq!(report["certificates"].as_array().unwrap().len(), 5);
    let list = report["device_identities"]["list"].as_str().unwrap();
    let (status, page) = app.get(list).await;
    assert_eq!(status, 200, "{page}");
    let udids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    assert_eq!(udids, [other.udid.as_str()]);
}
