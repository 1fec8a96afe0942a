//! APNs push against a local HTTP/2 TLS server that speaks the provider API.

use std::time::{Duration, Instant};

use base64::Engine;
use tafel_sim::apns::{ApnsSim, Response, SimPki};
use tafel_sim::device::SimDevice;

use crate::enrollment::school;
use crate::helpers::TestApp;

const TOPIC: &str = "com.apple.mgmt.External.5c3b2f0e-test";

/// A server whose push goes to a local APNs simulator, an authority with a push
/// certificate, and `n` enrolled devices in its school.
struct PushWorld {
    app: TestApp,
    sim: ApnsSim,
    pki: SimPki,
    tenant_id: String,
    devices: Vec<SimDevice>,
}

async fn world(n: usize, tweak: impl FnOnce(&mut tafel::config::Settings)) -> PushWorld {
    let pki = SimPki::generate(TOPIC).unwrap();
    let sim = pki.start_sim().unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), pki.ca_pem().unwrap()).unwrap();
    let ca_path = ca_file.into_temp_path().keep().unwrap();
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.push.base_url = url;
        s.push.extra_root_ca = Some(ca_path);
        s.push.coalesce_ms = 300;
        s.push.retry_delays_ms = vec![300, 600];
        s.push.retry_after_min_secs = 1;
        tweak(s);
    })
    .await;
    let (tenant_id, school_id) = school(&app, "push").await;
    upload_pem(&app, &tenant_id, &pki.push.cert, &pki.push.key, false).await;
    let mut devices = Vec::new();
    for i in 0..n {
        let mut d = app.device(500 + i);
        d.topic = TOPIC.into();
        d.authenticate().await.unwrap();
        app.place_device(d.udid.as_str(), &tenant_id, &school_id);
        d.token_update(false).await.unwrap();
        crate::helpers::answer_first_inventory(&mut d).await;
        devices.push(d);
    }
    // Each first TokenUpdate queued an inventory and pushed the iPad; the tests count
    // the pushes after that.
    assert_eq!(wait_for(&sim, n).await.len(), n);
    for d in &devices {
        wait_for_result(&app, d, "delivered").await;
    }
    sim.received_log().lock().unwrap().clear();
    PushWorld {
        app,
        sim,
        pki,
        tenant_id,
        devices,
    }
}

async fn upload_pem(
    app: &TestApp,
    tenant_id: &str,
    cert: &openssl::x509::X509,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    force: bool,
) -> (u16, serde_json::Value) {
    let body = serde_json::json!({
        "certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap(),
        "private_key_pem": String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap(),
        "force": force,
    });
    let res = app
        .client
        .put(app.url(&format!("/api/v1/tenants/{tenant_id}/push-certificate")))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::helpers::json_reply(res).await
}

/// Waits until the simulator has seen `n` pushes (or 10 s pass).
async fn wait_for(sim: &ApnsSim, n: usize) -> Vec<tafel_sim::apns::ReceivedPush> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let got = sim.received();
        if got.len() >= n || Instant::now() > until {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server has recorded `result` for the device's last push.
async fn wait_for_result(app: &TestApp, d: &SimDevice, result: &str) {
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let (_, dev) = app.get(&format!("/api/v1/devices/{}", d.udid)).await;
        if dev["last_push_result"]
            .as_str()
            .is_some_and(|r| r.starts_with(result))
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {result} push recorded for {}", d.udid);
}

fn token_hex(d: &SimDevice) -> String {
    d.push_token().to_hex()
}

#[actix_web::test]
async fn a_queued_command_wakes_the_device_with_a_real_apns_request() {
    let w = world(1, |_| {}).await;
    let d = &w.devices[0];
    w.app
        .enqueue(&[d.udid.as_str()], "DeviceInformation", None)
        .await;
    let got = wait_for(&w.sim, 1).await;
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(p.version, actix_web::http::Version::HTTP_2);
    assert_eq!(p.method, "POST");
    assert_eq!(p.path, format!("/3/device/{}", token_hex(d)));
    assert_eq!(p.header("apns-topic"), Some(TOPIC));
    assert_eq!(p.client_topic.as_deref(), Some(TOPIC));
    assert_eq!(p.header("apns-push-type"), Some("mdm"));
    assert_eq!(p.header("apns-priority"), Some("10"));
    let expiration: i64 = p.header("apns-expiration").unwrap().parse().unwrap();
    let in_a_day = chrono::Utc::now().timestamp() + 24 * 3600;
    assert!((expiration - in_a_day).abs() < 120, "{expiration}");
    let body: serde_json::Value = serde_json::from_slice(&p.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"mdm": format!("magic-{}", d.udid)})
    );
    wait_for_result(&w.app, d, "delivered").await;
    let (_, dev) = w.app.get(&format!("/api/v1/devices/{}", d.udid)).await;
    assert!(dev["last_push_at"].is_string());
    drop(w.pki);
}

#[actix_web::test]
async fn fifty_commands_for_one_device_cause_one_push_and_a_bulk_enqueue_pushes_all() {
    let w = world(4, |s| s.push.coalesce_ms = 1500).await;
    let first = w.devices[0].udid.to_string();
    let target = [first.as_str()];
    let calls = (0..50).map(|_| w.app.enqueue(&target, "ProfileList", None));
    futures_util::future::join_all(calls).await;
    let udids: Vec<&str> = w.devices.iter().map(|d| d.udid.as_str()).collect();
    w.app.enqueue(&udids, "SecurityInfo", None).await;
    let got = wait_for(&w.sim, 4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_later = w.sim.received();
    assert_eq!(got.len(), 4, "one push per device");
    assert_eq!(got_later.len(), 4, "no second push for the burst");
    let mut tokens: Vec<String> = got.iter().map(|p| p.token.clone()).collect();
    tokens.sort();
    let mut expected: Vec<String> = w.devices.iter().map(token_hex).collect();
    expected.sort();
    assert_eq!(tokens, expected);
}

#[actix_web::test]
async fn an_unregistered_token_is_not_pushed_again_until_the_next_token_update() {
    let w = world(1, |_| {}).await;
    let d = &w.devices[0];
    let udid = d.udid.to_string();
    w.sim.set_response(&token_hex(d), Response::Unregistered);
    w.app.enqueue(&[&udid], "ProfileList", None).await;
    wait_for(&w.sim, 1).await;
    wait_for_result(&w.app, d, "invalid_token").await;
    let (_, dev) = w.app.get(&format!("/api/v1/devices/{udid}")).await;
    assert!(dev["push_invalid_at"].is_string(), "{dev}");
    assert!(dev["last_push_result"]
        .as_str()
        .unwrap()
        .starts_with("invalid_token"));

    w.app.enqueue(&[&udid], "SecurityInfo", None).await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(w.sim.received().len(), 1, "a dead token is not pushed");

    w.sim.set_response(&token_hex(d), Response::Success);
    d.token_update(false).await.unwrap();
    w.app.enqueue(&[&udid], "DeviceInformation", None).await;
    let got = wait_for(&w.sim, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].status, 200);
}

#[actix_web::test]
async fn server_errors_are_retried_with_growing_delays() {
    let w = world(1, |_| {}).await;
    let d = &w.devices[0];
    w.sim.fail_times(&token_hex(d), 2, 500);
    w.app.enqueue(&[d.udid.as_str()], "ProfileList", None).await;
    let got = wait_for(&w.sim, 3).await;
    assert_eq!(
        got.iter().map(|p| p.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= chrono::Duration::milliseconds(300), "{gap1}");
    assert!(gap2 >= chrono::Duration::milliseconds(600), "{gap2}");
    wait_for_result(&w.app, d, "delivered").await;
    let (_, dev) = w.app.get(&format!("/api/v1/devices/{}", d.udid)).await;
    assert!(dev["next_push_at"].is_null());
}

#[actix_web::test]
async fn too_many_requests_waits_for_retry_after() {
    let w = world(1, |_| {}).await;
    let d = &w.devices[0];
    w.sim.set_response(
        &token_hex(d),
        Response::TooManyRequests {
            retry_after: Some(1),
        },
    );
    w.app.enqueue(&[d.udid.as_str()], "ProfileList", None).await;
    wait_for(&w.sim, 1).await;
    w.sim.set_response(&token_hex(d), Response::Success);
    let got = wait_for(&w.sim, 2).await;
    assert_eq!(got.len(), 2);
    assert!(got[1].at - got[0].at >= chrono::Duration::milliseconds(950));
}

#[actix_web::test]
async fn the_sweep_wakes_silent_devices_with_waiting_commands() {
    let w = world(2, |s| {
        s.push.sweep_interval_secs = 1;
        s.push.sweep_after_secs = 3600;
    })
    .await;
    let (quiet, busy) = (&w.devices[0], &w.devices[1]);
    w.app
        .enqueue(&[quiet.udid.as_str()], "ProfileList", None)
        .await;
    wait_for(&w.sim, 1).await;
    wait_for_result(&w.app, quiet, "delivered").await;
    // Two hours of silence since the last contact and the last push.
    let two_hours_ago = (chrono::Utc::now() - chrono::Duration::hours(2)).naive_utc();
    w.app.set_device_times(quiet.udid.as_str(), two_hours_ago);
    // A device without waiting commands is left alone even when silent.
    w.app.set_device_times(busy.udid.as_str(), two_hours_ago);
    let got = wait_for(&w.sim, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].token, token_hex(quiet));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(w.sim.received().len(), 2, "swept once, not every tick");
}

#[actix_web::test]
async fn admins_push_devices_now() {
    let w = world(1, |_| {}).await;
    let d = &w.devices[0];
    let (status, body) = w
        .app
        .post(
            "/api/v1/devices/push",
            serde_json::json!({"udids": [d.udid.as_str()]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["result"], "delivered");
    assert_eq!(w.sim.received().len(), 1);
}

#[actix_web::test]
async fn push_certificates_are_guarded_against_a_topic_change() {
    let w = world(1, |_| {}).await;
    let (status, info) = w
        .app
        .get(&format!("/api/v1/tenants/{}/push-certificate", w.tenant_id))
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["topic"], TOPIC);
    assert!(info["expires_in_days"].as_i64().unwrap() > 300);
    assert!(info.get("private_key_pem").is_none());

    let (other, other_key) = w
        .pki
        .issue_client_cert(Some("com.apple.mgmt.External.other"))
        .unwrap();
    let (status, body) = upload_pem(&w.app, &w.tenant_id, &other, &other_key, false).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("enroll again"));
    let (_, tenant) = w.app.get(&format!("/api/v1/tenants/{}", w.tenant_id)).await;
    assert_eq!(tenant["push_topic"], TOPIC);

    // Renewal (same topic) is fine; a forced topic change is possible.
    let (renewed, renewed_key) = w.pki.issue_client_cert(Some(TOPIC)).unwrap();
    assert_eq!(
        upload_pem(&w.app, &w.tenant_id, &renewed, &renewed_key, false)
            .await
            .0,
        200
    );
    let (status, _) = upload_pem(&w.app, &w.tenant_id, &other, &other_key, true).await;
    assert_eq!(status, 200);

    // Not a push certificate: no UID.
    let (plain, plain_key) = w.pki.issue_client_cert(None).unwrap();
    let (status, body) = upload_pem(&w.app, &w.tenant_id, &plain, &plain_key, false).await;
    assert_eq!(status, 400, "{body}");

    // PKCS#12 works too.
    let p12 = openssl::pkcs12::Pkcs12::builder()
        .name("push")
        .pkey(&renewed_key)
        .cert(&renewed)
        .build2("secret")
        .unwrap()
        .to_der()
        .unwrap();
    let res = w
        .app
        .client
        .put(w.app.url(&format!("/api/v1/tenants/{}/push-certificate", w.tenant_id)))
        .bearer_auth(&w.app.admin_token)
        .json(&serde_json::json!({"pkcs12_base64": base64::engine::general_purpose::STANDARD.encode(p12), "password": "secret", "force": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The key is stored sealed, never as PEM.
    assert_eq!(w.app.count("push_certificates"), 1);
    let audit = w.app.count("audit_log");
    assert!(audit >= 5);
}

/// A self-signed push certificate with an invented topic, and its key.
fn self_signed(
    topic: &str,
) -> (
    openssl::x509::X509,
    openssl::pkey::PKey<openssl::pkey::Private>,
) {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, nid::Nid, x509::X509Name};
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::USERID, topic).unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "APSP:made-up")
        .unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

#[actix_web::test]
async fn a_self_signed_push_certificate_is_refused_unless_the_operator_allows_untrusted_ones() {
    let app = TestApp::spawn_with(|s| s.push.allow_untrusted_certificates = false).await;
    let (tenant_id, _) = school(&app, "strict").await;
    let (cert, key) = self_signed("com.apple.mgmt.External.invented");
    let (status, body) = upload_pem(&app, &tenant_id, &cert, &key, false).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "certificate_pem");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("issued by \"APSP:made-up\""), "{message}");
    assert!(
        message.contains("Apple Application Integration 2 Certification Authority"),
        "{message}"
    );
    assert!(
        message.contains("push.allow_untrusted_certificates"),
        "{message}"
    );
    assert_eq!(app.count("push_certificates"), 0);

    // With the setting on (tests, simulators) the same upload is stored.
    let lax = TestApp::spawn().await;
    let (tenant_id, _) = school(&lax, "lax").await;
    let (status, body) = upload_pem(&lax, &tenant_id, &cert, &key, false).await;
    assert_eq!(status, 200, "{body}");
}

#[actix_web::test]
async fn a_push_certificate_under_a_configured_anchor_is_accepted_and_one_from_another_ca_is_not() {
    let pki = SimPki::generate(TOPIC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("stand-in-apple.pem");
    std::fs::write(&anchor, pki.ca_pem().unwrap()).unwrap();
    let app = TestApp::spawn_with(move |s| {
        s.push.allow_untrusted_certificates = false;
        s.push.certificate_anchors = vec![anchor];
    })
    .await;
    let (tenant_id, _) = school(&app, "anchored").await;
    let (status, body) = upload_pem(&app, &tenant_id, &pki.push.cert, &pki.push.key, true).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["topic"], TOPIC);

    let stranger = SimPki::generate(TOPIC).unwrap();
    let (status, body) = upload_pem(
        &app,
        &tenant_id,
        &stranger.push.cert,
        &stranger.push.key,
        false,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("APNs simulator CA"),
        "{body}"
    );
}

/// The CSR as `openssl req` sees it, when the CLI is installed.
fn openssl_cli_verify(csr_pem: &str) -> Option<String> {
    use std::io::Write;
    let mut child = std::process::Command::new("openssl")
        .args([
            "req", "-in", "-", "-noout", "-verify", "-subject", "-nameopt", "utf8",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(csr_pem.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

#[actix_web::test]
async fn the_authority_requests_its_push_certificate_and_uploads_apples_certificate_without_a_key()
{
    // A local APNs server and a CA standing in for Apple's push CA, which tafel trusts
    // instead of Apple's; untrusted certificates are not allowed.
    let pki = SimPki::generate(TOPIC).unwrap();
    let sim = pki.start_sim().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("stand-in-apple.pem");
    std::fs::write(&ca, pki.ca_pem().unwrap()).unwrap();
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.push.base_url = url;
        s.push.extra_root_ca = Some(ca.clone());
        s.push.certificate_anchors = vec![ca];
        s.push.allow_untrusted_certificates = false;
        s.push.coalesce_ms = 300;
    })
    .await;
    let (tenant_id, school_id) = school(&app, "onboarding").await;
    let request_path = format!("/api/v1/tenants/{tenant_id}/push-certificate/request");
    let (status, _) = app.get(&request_path).await;
    assert_eq!(status, 404);

    // 1. tafel makes the key and the request.
    let (status, req) = app.post(&request_path, serde_json::json!({})).await;
    assert_eq!(status, 201, "{req}");
    assert!(!req.to_string().contains("PRIVATE KEY"));
    assert_eq!(
        req["subject"],
        "CN=tafel Authority onboarding, O=Authority onboarding, C=DE"
    );
    let csr_pem = req["csr_pem"].as_str().unwrap().to_owned();
    let csr = openssl::x509::X509Req::from_pem(csr_pem.as_bytes()).unwrap();
    let public = csr.public_key().unwrap();
    assert!(csr.verify(&public).unwrap());
    assert_eq!(public.bits(), 2048);
    assert!(public.rsa().is_ok());
    let field = |nid| {
        csr.subject_name()
            .entries_by_nid(nid)
            .next()
            .unwrap()
            .data()
            .to_string()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        field(openssl::nid::Nid::COMMONNAME),
        "tafel Authority onboarding"
    );
    assert_eq!(
        field(openssl::nid::Nid::ORGANIZATIONNAME),
        "Authority onboarding"
    );
    assert_eq!(field(openssl::nid::Nid::COUNTRYNAME), "DE");
    match openssl_cli_verify(&csr_pem) {
        Some(out) => {
            assert!(
                out.contains("verify OK")
                    || out.contains("Certificate request self-signature verify OK"),
                "{out}"
            );
            assert!(
                out.contains("CN=tafel Authority onboarding")
                    || out.contains("CN = tafel Authority onboarding"),
                "{out}"
            );
        }
        None => eprintln!("no openssl CLI: the request was checked with the openssl crate only"),
    }
    // The key is sealed in the database; the request can be fetched again.
    let (status, again) = app.get(&request_path).await;
    assert_eq!(status, 200);
    assert_eq!(again["csr_pem"], csr_pem.as_str());
    assert_eq!(app.count("push_certificate_requests"), 1);

    // 2. A certificate for another key, without a key, is refused with the reason.
    let (stranger, _) = pki.issue_client_cert(Some(TOPIC)).unwrap();
    let upload_cert = |cert: &openssl::x509::X509| serde_json::json!({"certificate_pem": String::from_utf8(cert.to_pem().unwrap()).unwrap()});
    let cert_path = format!("/api/v1/tenants/{tenant_id}/push-certificate");
    let (status, body) = app.put(&cert_path, upload_cert(&stranger)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("pending certificate request"),
        "{body}"
    );
    assert_eq!(app.count("push_certificates"), 0);

    // 3. "Apple" issues the certificate for the request; it is uploaded without a key.
    let issued = pki.issue_for_request(&csr, TOPIC).unwrap();
    let (status, info) = app.put(&cert_path, upload_cert(&issued)).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["topic"], TOPIC);
    let (_, tenant) = app.get(&format!("/api/v1/tenants/{tenant_id}")).await;
    assert_eq!(tenant["push_topic"], TOPIC);
    // The request is used up.
    assert_eq!(app.get(&request_path).await.0, 404);
    assert_eq!(app.count("push_certificate_requests"), 0);
    let (_, audit) = app.get("/api/v1/audit?object_type=push_certificate").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"request") && actions.contains(&"upload"),
        "{audit}"
    );

    // 4. Pushes go out with the stored certificate and the request's key.
    let mut d = app.device(600);
    d.topic = TOPIC.into();
    d.authenticate().await.unwrap();
    app.place_device(d.udid.as_str(), &tenant_id, &school_id);
    d.token_update(false).await.unwrap();
    let got = wait_for(&sim, 1).await;
    assert_eq!(got.len(), 1, "no push reached the APNs server");
    assert_eq!(got[0].topic.as_deref(), Some(TOPIC));
    // The TLS client certificate was the uploaded one, with the request's key.
    assert_eq!(got[0].client_topic.as_deref(), Some(TOPIC));
    wait_for_result(&app, &d, "delivered").await;

    // 5. Without a pending request, a key-less upload says what to do.
    let (status, body) = app.put(&cert_path, upload_cert(&issued)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "private_key_pem");
}

#[actix_web::test]
async fn only_the_authoritys_admins_make_its_push_certificate_request() {
    use crate::organisation::user;
    let app = TestApp::spawn().await;
    let (tenant_id, school_id) = school(&app, "guarded").await;
    let (other_tenant, _) = school(&app, "elsewhere").await;
    let (_, own_admin) = user(&app, serde_json::json!({"name": "AA", "email": "aa@guarded.de", "role": "authority_admin", "tenant_id": tenant_id})).await;
    let (_, school_admin) = user(&app, serde_json::json!({"name": "SA", "email": "sa@guarded.de", "role": "school_admin", "school_id": school_id})).await;
    let (_, foreign_admin) = user(&app, serde_json::json!({"name": "AA", "email": "aa@elsewhere.de", "role": "authority_admin", "tenant_id": other_tenant})).await;
    let path = format!("/api/v1/tenants/{tenant_id}/push-certificate/request");
    let post = |token: Option<String>| {
        let mut req = app.client.post(app.url(&path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(post(None).await, 401);
    assert_eq!(post(Some(school_admin.clone())).await, 403);
    assert_eq!(post(Some(foreign_admin.clone())).await, 404);
    assert_eq!(app.count("push_certificate_requests"), 0);
    assert_eq!(post(Some(own_admin)).await, 201);
    // Nobody outside sees the request either.
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&foreign_admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // A second request replaces the first (a new key).
    let (_, first) = app.get(&path).await;
    let (status, second) = app.post(&path, serde_json::json!({})).await;
    assert_eq!(status, 201);
    assert_ne!(first["csr_pem"], second["csr_pem"]);
    assert_eq!(app.count("push_certificate_requests"), 1);
}

#[actix_web::test]
async fn an_expired_push_certificate_is_refused_with_its_date() {
    use openssl::{asn1::Asn1Time, hash::MessageDigest, nid::Nid, x509::X509Name};
    let pki = SimPki::generate(TOPIC).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("stand-in-apple.pem");
    std::fs::write(&anchor, pki.ca_pem().unwrap()).unwrap();
    let app = TestApp::spawn_with(move |s| {
        s.push.allow_untrusted_certificates = false;
        s.push.certificate_anchors = vec![anchor];
    })
    .await;
    let (tenant_id, _) = school(&app, "expired").await;
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_nid(Nid::USERID, TOPIC).unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "APSP:old")
        .unwrap();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name.build()).unwrap();
    b.set_issuer_name(pki.ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = chrono::Utc::now().timestamp();
    b.set_not_before(&Asn1Time::from_unix(now - 400 * 86_400).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now - 35 * 86_400).unwrap())
        .unwrap();
    b.sign(&pki.ca_key, MessageDigest::sha256()).unwrap();
    let (status, body) = upload_pem(&app, &tenant_id, &b.build(), &key, false).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("expired on"),
        "{body}"
    );
}

/// The device's row as the API shows it.
async fn device_json(app: &TestApp, d: &SimDevice) -> serde_json::Value {
    app.get(&format!("/api/v1/devices/{}", d.udid)).await.1
}

/// Pushes the simulator received for a device's token, in order.
fn pushes_to(sim: &ApnsSim, token: &str) -> Vec<tafel_sim::apns::ReceivedPush> {
    sim.received()
        .into_iter()
        .filter(|p| p.token == token)
        .collect()
}

#[actix_web::test]
async fn a_push_that_gets_no_answer_delays_no_other_result() {
    let w = world(3, |s| s.push.timeout_secs = 5).await;
    let (hanging, a, b) = (&w.devices[0], &w.devices[1], &w.devices[2]);
    w.sim
        .set_delay(&token_hex(hanging), Duration::from_secs(30));
    let last_push = |j: serde_json::Value| j["last_push_at"].clone();
    let before = last_push(device_json(&w.app, hanging).await);
    let (before_a, before_b) = (
        last_push(device_json(&w.app, a).await),
        last_push(device_json(&w.app, b).await),
    );
    let udids: Vec<&str> = w.devices.iter().map(|d| d.udid.as_str()).collect();
    // One command to all three: one batch of pushes.
    w.app.enqueue(&udids, "ProfileList", None).await;
    wait_for(&w.sim, 3).await;
    let until = Instant::now() + Duration::from_secs(10);
    while (last_push(device_json(&w.app, a).await) == before_a
        || last_push(device_json(&w.app, b).await) == before_b)
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(last_push(device_json(&w.app, a).await), before_a);
    assert_ne!(last_push(device_json(&w.app, b).await), before_b);
    // The answers to the other two are stored while the third still waits for APNs.
    let j = device_json(&w.app, hanging).await;
    assert_eq!(j["last_push_at"], before, "{j}");
    // Its row is leased while the push is in flight: no retry pass picks it up.
    assert!(j["next_push_at"].is_string(), "{j}");
    // When the client gives up, the push is a retry like a 5xx.
    wait_for_result(&w.app, hanging, "retry").await;
    assert_eq!(pushes_to(&w.sim, &token_hex(hanging)).len(), 1);
}

#[actix_web::test]
async fn a_device_is_never_pushed_again_while_its_push_is_in_flight() {
    // APNs answers this device 503 only after 2.5 s; the retry delay is 0.5 s, the
    // retry pass runs every 2 s. Each push must wait for the last one's answer.
    let w = world(1, |s| {
        s.push.timeout_secs = 10;
        s.push.retry_delays_ms = vec![500];
    })
    .await;
    let d = &w.devices[0];
    let token = token_hex(d);
    w.sim.set_delay(&token, Duration::from_millis(2500));
    w.sim.set_response(&token, Response::from_status(503));
    w.app.enqueue(&[d.udid.as_str()], "ProfileList", None).await;
    // Three pushes, each after the last one's answer and the retry delay.
    let until = Instant::now() + Duration::from_secs(20);
    while pushes_to(&w.sim, &token).len() < 3 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = pushes_to(&w.sim, &token);
    assert!(got.len() >= 3, "{} pushes", got.len());
    for pair in got.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= chrono::Duration::milliseconds(2900),
            "pushed again {gap} after the last push, before its answer and retry delay"
        );
    }
}

#[actix_web::test]
async fn an_answer_for_an_old_token_leaves_the_new_token_alone() {
    let w = world(1, |s| s.push.timeout_secs = 10).await;
    let d = &w.devices[0];
    let old = token_hex(d);
    // APNs will say the old token is gone, but only after the iPad got a new one.
    w.sim.set_delay(&old, Duration::from_millis(1500));
    w.sim.set_response(&old, Response::Unregistered);
    w.app.enqueue(&[d.udid.as_str()], "ProfileList", None).await;
    wait_for(&w.sim, 1).await;
    let new = tafel::protocol::PushToken::new(vec![0xab; 32]);
    d.token_update_with(new.clone(), false).await.unwrap();
    // The 410 arrives (1.5 s after the push) and must not touch the new token.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let j = device_json(&w.app, d).await;
    assert!(j["push_invalid_at"].is_null(), "{j}");
    w.app
        .enqueue(&[d.udid.as_str()], "DeviceInformation", None)
        .await;
    let until = Instant::now() + Duration::from_secs(10);
    while pushes_to(&w.sim, &new.to_hex()).is_empty() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = pushes_to(&w.sim, &new.to_hex());
    assert_eq!(got.len(), 1, "the new token is pushed");
    assert_eq!(got[0].status, 200);
}

#[actix_web::test]
async fn something_new_for_a_device_in_backoff_waits_for_its_retry() {
    let w = world(1, |s| s.push.retry_delays_ms = vec![3000]).await;
    let d = &w.devices[0];
    let token = token_hex(d);
    w.sim.fail_times(&token, 1, 503);
    w.app.enqueue(&[d.udid.as_str()], "ProfileList", None).await;
    wait_for(&w.sim, 1).await;
    wait_for_result(&w.app, d, "retry").await;
    // Queued during the backoff: no push before the retry is due.
    w.app
        .enqueue(&[d.udid.as_str()], "SecurityInfo", None)
        .await;
    let until = Instant::now() + Duration::from_secs(10);
    while pushes_to(&w.sim, &token).len() < 2 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = pushes_to(&w.sim, &token);
    assert_eq!(got.len(), 2, "one retry wakes it for both commands");
    assert!(got[1].at - got[0].at >= chrono::Duration::milliseconds(2900));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(pushes_to(&w.sim, &token).len(), 2);
}

#[actix_web::test]
async fn the_hourly_refresh_wakes_only_ipads_it_asked_something_new() {
    let w = world(2, |_| {}).await;
    let (fresh, waiting) = (&w.devices[0], &w.devices[1]);
    let db = w.app.state.db.clone();
    // Both inventories are a day old; one iPad still holds open inventory commands.
    let day_ago = (chrono::Utc::now() - chrono::Duration::days(1)).naive_utc();
    {
        use diesel::prelude::*;
        use tafel::db::schema::device_inventory;
        use tafel::db::schema::devices;
        let mut conn = db.get().unwrap();
        diesel::update(device_inventory::table)
            .set(device_inventory::updated_at.eq(day_ago))
            .execute(&mut *conn)
            .unwrap();
        let waiting_id: String = devices::table
            .filter(devices::udid.eq(waiting.udid.as_str()))
            .select(devices::id)
            .first(&mut *conn)
            .unwrap();
        tafel::inventory::ask_where_missing(&mut conn, &[waiting_id], -1).unwrap();
    }
    let asked = db
        .run(|conn| tafel::inventory::refresh_stale(conn, chrono::Duration::hours(12), 5000))
        .await
        .unwrap();
    let (_, fresh_dev) = w.app.get(&format!("/api/v1/devices/{}", fresh.udid)).await;
    assert_eq!(asked, vec![fresh_dev["id"].as_str().unwrap().to_owned()]);
}

#[actix_web::test]
async fn push_now_reports_every_device_and_no_answer_carries_the_whole_token() {
    let mut w = world(2, |s| s.push.timeout_secs = 5).await;
    let (dead, offline) = (&w.devices[0], &w.devices[1]);
    w.sim.set_response(&token_hex(dead), Response::Unregistered);
    w.app
        .enqueue(&[dead.udid.as_str()], "ProfileList", None)
        .await;
    wait_for_result(&w.app, dead, "invalid_token").await;
    // APNs is gone: a transport error.
    let sim = std::mem::replace(
        &mut w.sim,
        SimPki::generate(TOPIC).unwrap().start_sim().unwrap(),
    );
    drop(sim);
    let (status, body) = w
        .app
        .post(
            "/api/v1/devices/push",
            serde_json::json!({"udids": [dead.udid.as_str(), offline.udid.as_str()]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{body}");
    let of = |udid: &str| {
        items
            .iter()
            .find(|i| i["udid"] == udid)
            .unwrap_or_else(|| panic!("{udid} missing in {body}"))
            .clone()
    };
    let d = of(dead.udid.as_str());
    assert_eq!(d["result"], "invalid_token", "{d}");
    assert!(d["reason"].as_str().unwrap().contains("TokenUpdate"), "{d}");
    let o = of(offline.udid.as_str());
    assert_eq!(o["result"], "retry", "{o}");
    let token = token_hex(offline);
    assert!(!o.to_string().contains(&token), "{o}");
    let j = device_json(&w.app, offline).await;
    let stored = j["last_push_result"].as_str().unwrap();
    assert!(stored.starts_with("retry"), "{stored}");
    assert!(!stored.contains(&token), "{stored}");
}

#[actix_web::test]
async fn retry_after_is_held_between_a_floor_and_a_ceiling() {
    let w = world(2, |s| {
        s.push.retry_after_min_secs = 3;
        s.push.retry_after_max_secs = 4;
    })
    .await;
    let (now_please, much_later) = (&w.devices[0], &w.devices[1]);
    w.sim.set_response(
        &token_hex(now_please),
        Response::TooManyRequests {
            retry_after: Some(0),
        },
    );
    w.sim.set_response(
        &token_hex(much_later),
        Response::TooManyRequests {
            retry_after: Some(3600),
        },
    );
    w.app
        .enqueue(
            &[now_please.udid.as_str(), much_later.udid.as_str()],
            "ProfileList",
            None,
        )
        .await;
    wait_for_result(&w.app, much_later, "retry").await;
    let j = device_json(&w.app, much_later).await;
    let next: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(j["next_push_at"].clone()).unwrap();
    assert!(
        next <= chrono::Utc::now() + chrono::Duration::seconds(5),
        "Retry-After 3600 is capped at 4 s: {j}"
    );
    // Retry-After: 0 waits the floor, not the next 2-second tick.
    let token = token_hex(now_please);
    let until = Instant::now() + Duration::from_secs(10);
    while pushes_to(&w.sim, &token).len() < 2 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = pushes_to(&w.sim, &token);
    assert!(got.len() >= 2);
    assert!(
        got[1].at - got[0].at >= chrono::Duration::milliseconds(2900),
        "{}",
        got[1].at - got[0].at
    );
}
