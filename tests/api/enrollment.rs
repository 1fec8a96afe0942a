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

    // The signature verifies with the openssl CLI against our CA.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.der"), &signed).unwrap();
    std::fs::write(
        dir.path().join("ca.pem"),
        app.state.ca.cert().to_pem().unwrap(),
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
