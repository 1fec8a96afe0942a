//! Enrollment tokens and the signed enrollment profile.

use crate::helpers::TestApp;

/// Creates an authority (with a push topic) and a school; returns their ids.
pub async fn school(app: &TestApp, slug: &str) -> (String, String) {
    let (status, tenant) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": format!("Authority {slug}"), "slug": slug, "push_topic": format!("com.apple.mgmt.External.{slug}")}),
        )
        .await;
    assert_eq!(status, 201, "{tenant}");
    let tenant_id = tenant["id"].as_str().unwrap().to_owned();
    let (status, school) = app
        .post(
            &format!("/api/v1/tenants/{tenant_id}/schools"),
            serde_json::json!({"name": "Gymnasium Nord"}),
        )
        .await;
    assert_eq!(status, 201, "{school}");
    (tenant_id, school["id"].as_str().unwrap().to_owned())
}

/// Creates an enrollment token for a school; returns the JSON.
pub async fn token(app: &TestApp, school_id: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, token) = app
        .post(
            &format!("/api/v1/schools/{school_id}/enrollment-tokens"),
            body,
        )
        .await;
    assert_eq!(status, 201, "{token}");
    token
}

#[actix_web::test]
async fn a_school_gets_a_token_whose_profile_is_signed_and_complete() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "norderstedt").await;
    let token = token(
        &app,
        &school_id,
        serde_json::json!({"description": "iPad-Koffer 1", "max_uses": 30}),
    )
    .await;
    let url = token["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("/enroll/{}", token["token"].as_str().unwrap())));

    let res = app
        .client
        .get(app.url(&format!("/enroll/{}", token["token"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/x-apple-aspen-config"
    );
    let signed = res.bytes().await.unwrap();

    // The signature verifies with the openssl CLI against our root.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.der"), &signed).unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        app.state.ca.anchor().to_pem().unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "cms", "-verify", "-inform", "DER", "-in", "p.der", "-CAfile", "ca.pem", "-out",
            "p.xml",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let profile = plist::Value::from_file(dir.path().join("p.xml")).unwrap();
    let content = profile.as_dictionary().unwrap()["PayloadContent"]
        .as_array()
        .unwrap();
    let kinds: Vec<&str> = content
        .iter()
        .map(|p| {
            p.as_dictionary().unwrap()["PayloadType"]
                .as_string()
                .unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "com.apple.security.root",
            "com.apple.security.scep",
            "com.apple.mdm"
        ]
    );
    let scep = content[1].as_dictionary().unwrap()["PayloadContent"]
        .as_dictionary()
        .unwrap();
    assert_eq!(scep["URL"].as_string().unwrap(), app.url("/scep"));
    assert_eq!(scep["Keysize"].as_signed_integer(), Some(2048));
    assert!(scep["Challenge"].as_string().unwrap().len() >= 32);
    let mdm = content[2].as_dictionary().unwrap();
    assert_eq!(
        mdm["Topic"].as_string(),
        Some("com.apple.mgmt.External.norderstedt")
    );
    assert!(mdm["ServerURL"]
        .as_string()
        .unwrap()
        .ends_with("/mdm/connect"));
    assert!(mdm["CheckInURL"]
        .as_string()
        .unwrap()
        .ends_with("/mdm/checkin"));
    assert_eq!(mdm["SignMessage"].as_boolean(), Some(true));
    assert_eq!(mdm["CheckOutWhenRemoved"].as_boolean(), Some(true));
    assert_eq!(
        mdm["IdentityCertificateUUID"],
        content[1].as_dictionary().unwrap()["PayloadUUID"]
    );

    // Every download carries a fresh challenge.
    let again = app
        .client
        .get(app.url(&format!("/enroll/{}", token["token"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(app.count("scep_challenges"), 2);
}

#[actix_web::test]
async fn unknown_revoked_and_expired_tokens_are_404_with_a_reason() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "segeberg").await;
    let res = app
        .client
        .get(app.url("/enroll/doesnotexist"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("unknown"));

    let t = token(&app, &school_id, serde_json::json!({})).await;
    let (status, _) = app
        .post(
            &format!(
                "/api/v1/enrollment-tokens/{}/revoke",
                t["id"].as_str().unwrap()
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let res = app
        .client
        .get(app.url(&format!("/enroll/{}", t["token"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("revoked"));

    let (status, body) = app
        .post(
            &format!("/api/v1/schools/{school_id}/enrollment-tokens"),
            serde_json::json!({"max_uses": 0}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "max_uses");
    let (status, body) = app
        .post(
            &format!("/api/v1/schools/{school_id}/enrollment-tokens"),
            serde_json::json!({"class_id": "not-a-class"}),
        )
        .await;
    assert_eq!((status, body["field"].as_str()), (400, Some("class_id")));
}

#[actix_web::test]
async fn an_authority_without_a_push_topic_cannot_hand_out_tokens() {
    let app = TestApp::spawn().await;
    let (_, tenant) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": "Amt Trave-Land", "slug": "trave"}),
        )
        .await;
    let (_, school) = app
        .post(
            &format!("/api/v1/tenants/{}/schools", tenant["id"].as_str().unwrap()),
            serde_json::json!({"name": "GS"}),
        )
        .await;
    let (status, body) = app
        .post(
            &format!(
                "/api/v1/schools/{}/enrollment-tokens",
                school["id"].as_str().unwrap()
            ),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["message"].as_str().unwrap().contains("push"));
    assert_eq!(app.count("enrollment_tokens"), 0);
}

#[actix_web::test]
async fn bad_organisation_input_is_refused_and_audited_changes_are_recorded() {
    let app = TestApp::spawn().await;
    let audit_before = app.count("audit_log");
    let (status, body) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": "X", "slug": "Bad Slug"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "slug");
    let (status, _) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": "X", "slug": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(app.count("tenants"), 0);
    school(&app, "x").await;
    let (status, body) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": "Y", "slug": "x"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(app.count("audit_log"), audit_before + 2);
}

/// An enrollment token for a fresh authority and school; returns (school id, token).
pub async fn enrollment_token(app: &TestApp, slug: &str) -> (String, String) {
    let (_, school_id) = school(app, slug).await;
    let t = token(app, &school_id, serde_json::json!({"description": "test"})).await;
    (school_id, t["token"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn ipads_enroll_over_http_from_profile_to_first_command() {
    use tafel_sim::enroll;
    let app = TestApp::spawn().await;
    let (school_id, secret) = enrollment_token(&app, "e2e").await;
    let url = app.url(&format!("/enroll/{secret}"));
    let mut devices = Vec::new();
    for n in 0..3u64 {
        let udid = tafel::protocol::Udid::parse(&format!("00008103-E2E0{n:012X}")).unwrap();
        let mut d = enroll::enroll(&app.client, &url, udid, format!("E2E{n}"), None)
            .await
            .unwrap();
        crate::helpers::answer_first_inventory(&mut d).await;
        // The certificate came from our CA through SCEP.
        app.state.ca.verify_issued(&d.cert, None).unwrap();
        devices.push(d);
    }
    for d in &devices {
        let (_, dev) = app.get(&format!("/api/v1/devices/{}", d.udid)).await;
        assert_eq!(dev["enrollment_status"], "active");
        assert_eq!(
            dev["school_id"],
            school_id.as_str(),
            "lands in the token's school"
        );
    }
    let udids: Vec<&str> = devices.iter().map(|d| d.udid.as_str()).collect();
    let cmd = app.enqueue(&udids, "DeviceInformation", None).await;
    for d in &mut devices {
        let got = d.idle().await.unwrap().expect("first command");
        assert_eq!(got.command_uuid.as_str(), cmd);
        let answer = d.execute(&got);
        assert!(d.answer(&got, answer).await.unwrap().is_none());
        assert_eq!(app.status_of(d.udid.as_str(), &cmd).await, "acknowledged");
    }
    // Three devices: three certificates, three challenges used.
    assert_eq!(app.count("device_certificates"), 3);
    let (_, tokens) = app
        .get(&format!("/api/v1/schools/{school_id}/enrollment-tokens"))
        .await;
    assert_eq!(tokens["items"][0]["uses"], 3);
}

#[actix_web::test]
async fn a_reused_or_wrong_challenge_gets_a_scep_failure_and_nothing_is_issued() {
    use tafel::pki::scep::{self, CertRepOutcome, FailInfo, MessageType};
    use tafel_sim::enroll;
    let app = TestApp::spawn().await;
    let (_, secret) = enrollment_token(&app, "chal").await;
    let info = app.profile_info(&secret).await;
    let key = enroll::new_key().unwrap();
    // First use: issued.
    enroll::scep_enroll(&app.client, &info, &key).await.unwrap();
    assert_eq!(app.count("device_certificates"), 1);
    // The same challenge again: a SCEP failure (badRequest), nothing issued.
    let err = enroll::scep_enroll(&app.client, &info, &key)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BadRequest") || err.contains("badRequest"),
        "{err}"
    );
    let mut wrong = info.clone();
    wrong.challenge = "not-the-challenge".into();
    let err = enroll::scep_enroll(&app.client, &wrong, &key)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.to_lowercase().contains("badrequest"), "{err}");
    assert_eq!(app.count("device_certificates"), 1);

    // A CSR whose key is not the signer's: failure, nothing issued.
    let other = enroll::new_key().unwrap();
    let fresh = enroll::read_profile(
        &app.client
            .get(app.url(&format!("/enroll/{secret}")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let mut name = openssl::x509::X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "mismatch").unwrap();
    let name = name.build();
    let csr = scep::csr_with_challenge(&other, &name, &fresh.challenge).unwrap();
    let signer = scep::self_signed_for_csr(&key, &name).unwrap();
    let (msg, _, nonce) = scep::build_pkcs_req(
        &csr,
        &signer,
        &key,
        app.state.ca.ra_cert(),
        MessageType::PkcsReq,
    )
    .unwrap();
    let res = app
        .client
        .post(app.url("/scep?operation=PKIOperation"))
        .body(msg)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rep = scep::parse_cert_rep(
        &res.bytes().await.unwrap(),
        app.state.ca.ra_cert(),
        &key,
        &signer,
        &nonce,
    )
    .unwrap();
    assert!(
        matches!(
            rep,
            CertRepOutcome::Failed(FailInfo::BadRequest | FailInfo::BadMessageCheck)
        ),
        "{rep:?}"
    );
    assert_eq!(app.count("device_certificates"), 1);

    // Garbage: 400 with a reason.
    let res = app
        .client
        .post(app.url("/scep?operation=PKIOperation"))
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .get(app.url("/scep?operation=GetCACaps"))
        .send()
        .await
        .unwrap();
    let caps = res.text().await.unwrap();
    for cap in ["POSTPKIOperation", "SHA-256", "AES", "Renewal"] {
        assert!(caps.contains(cap), "{caps}");
    }
}

#[actix_web::test]
async fn the_standard_scepclient_gets_a_certificate() {
    let Some(bin) = ["/usr/bin/scepclient", "/usr/local/bin/scepclient"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "scepclient (Debian package scep) is required in CI"
        );
        eprintln!("skipped: scepclient not installed (apt-get install scep)");
        return;
    };
    let app = TestApp::spawn().await;
    let (_, secret) = enrollment_token(&app, "scepclient").await;
    let info = app.profile_info(&secret).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let url = info.scep_url.clone();
    let challenge = info.challenge.clone();
    let key_arg = key.to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(bin)
            .args([
                "-server-url",
                &url,
                "-private-key",
                &key_arg,
                "-challenge",
                &challenge,
                "-cn",
                "scepclient-test",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pem = std::fs::read(dir.path().join("client.pem")).unwrap();
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    app.state.ca.verify_issued(&cert, None).unwrap();
    assert_eq!(app.count("device_certificates"), 1);
}

#[actix_web::test]
async fn a_token_for_a_class_and_cart_puts_the_ipad_there() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "landing").await;
    let (_, class) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            serde_json::json!({"name": "5c", "school_year": "2026/27"}),
        )
        .await;
    let (_, cart) = app
        .post(
            &format!("/api/v1/schools/{school_id}/groups"),
            serde_json::json!({"name": "Koffer 3"}),
        )
        .await;
    let t = token(
        &app,
        &school_id,
        serde_json::json!({"class_id": class["id"], "group_id": cart["id"]}),
    )
    .await;
    let url = app.url(&format!("/enroll/{}", t["token"].as_str().unwrap()));
    let udid = tafel::protocol::Udid::parse("00008103-LAND00000000000001").unwrap();
    let d = tafel_sim::enroll::enroll(&app.client, &url, udid, "LAND1".into(), None)
        .await
        .unwrap();
    for filter in [
        format!("class_id={}", class["id"].as_str().unwrap()),
        format!("group_id={}", cart["id"].as_str().unwrap()),
    ] {
        let (_, members) = app.get(&format!("/api/v1/devices?{filter}")).await;
        assert_eq!(
            members["items"][0]["udid"],
            d.udid.as_str(),
            "{filter}: {members}"
        );
    }
}
