//! The server starts on a fresh machine, answers its probes, and guards its API.

use crate::helpers::TestApp;

#[actix_web::test]
async fn a_fresh_server_is_healthy_and_ready() {
    let app = TestApp::spawn().await;
    let res = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let expected = if crate::helpers::postgres_url().is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], expected);
}

#[actix_web::test]
async fn the_first_start_token_is_stored_only_as_a_hash() {
    let app = TestApp::spawn().await;
    assert!(app.admin_token.starts_with("tafel_"));
    assert_eq!(app.count("api_tokens"), 1);
    use diesel::prelude::*;
    use tafel::db::schema::api_tokens;
    let mut conn = app.state.db.get().unwrap();
    let stored: String = api_tokens::table
        .select(api_tokens::token_sha256)
        .first(&mut *conn)
        .unwrap();
    assert_ne!(stored, app.admin_token);
    assert_eq!(stored, tafel::accounts::hash_token(&app.admin_token));
    // The first start was audited.
    assert_eq!(app.count("audit_log"), 1);
}

#[actix_web::test]
async fn the_api_wants_a_valid_token() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v1/devices/X/commands"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unauthenticated");
    let res = app
        .client
        .get(app.url("/api/v1/devices/X/commands"))
        .bearer_auth("tafel_notarealtoken")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, body) = app.get("/api/v1/devices/UNKNOWN/commands").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
}

#[actix_web::test]
async fn unknown_paths_and_bad_json_get_clear_errors() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/api/v1/nothing-here").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    let res = app
        .client
        .post(app.url("/api/v1/commands"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "bad_request");
    assert!(body["message"].as_str().unwrap().contains("JSON"), "{body}");
}

#[actix_web::test]
async fn a_restart_keeps_data_and_prints_no_new_token() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, pg) = crate::helpers::test_settings(dir.path());
    let first = tafel::startup::Application::build(settings.clone())
        .await
        .unwrap();
    assert!(first.first_admin_token.is_some());
    drop(first);
    let second = tafel::startup::Application::build(settings).await.unwrap();
    assert!(second.first_admin_token.is_none());
    drop(second);
    if let Some((base, name)) = pg {
        crate::helpers::drop_pg_schema(&base, &name).unwrap();
    }
}

#[actix_web::test]
async fn an_unknown_state_word_in_a_filter_names_the_field_and_the_words_it_takes() {
    let app = TestApp::spawn().await;
    let ipad = app.device(77);
    ipad.authenticate().await.unwrap();
    let udid = ipad.udid.to_string();
    for (path, word) in [
        ("/api/v1/devices?status=".to_owned(), "retired"),
        (
            format!("/api/v1/devices/{udid}/commands?status="),
            "not_now",
        ),
    ] {
        for bad in ["Active", "active%27%20OR%201=1", "%00", &"x".repeat(5000)] {
            let (status, body) = app.get(&format!("{path}{bad}")).await;
            assert_eq!(status, 400, "{path}{bad}: {body}");
            assert_eq!(body["field"], "status", "{body}");
            assert!(
                body["message"].as_str().unwrap().contains(word),
                "the answer lists the words: {body}"
            );
        }
        let (status, body) = app.get(&format!("{path}{word}")).await;
        assert_eq!(status, 200, "{body}");
    }
}

#[actix_web::test]
async fn times_carry_their_zone_and_what_tafel_prints_its_filters_take_back() {
    let app = TestApp::spawn().await;
    let ipad = app.device(78);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    let (status, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(status, 200, "{dev}");
    for field in ["last_seen_at", "enrolled_at", "identity_cert_not_after"] {
        let t = dev[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {dev}"));
        assert!(
            chrono::DateTime::parse_from_rfc3339(t).is_ok() && t.ends_with('Z'),
            "{field} is RFC 3339 with its offset: {t}"
        );
    }
    // Pasted back into the filters, as printed (the `+` of an offset would need escaping;
    // tafel prints `Z`).
    let seen = dev["last_seen_at"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/api/v1/devices?last_seen_before={seen}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"].as_array().unwrap().len(),
        0,
        "strictly before"
    );
    let (status, body) = app
        .get(&format!(
            "/api/v1/devices?last_seen_after={seen}&last_seen_before=2099-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .get(&format!("/api/v1/devices?last_seen_before={}", &seen[..10]))
        .await;
    assert_eq!(status, 400, "a date alone is not a time: {body}");
    assert_eq!(
        body["field"], "last_seen_before",
        "the error names its field: {body}"
    );
    let (status, body) = app.get("/api/v1/devices?enrolled=perhaps").await;
    assert_eq!(
        (status, &body["field"]),
        (400, &serde_json::json!("enrolled")),
        "{body}"
    );
}
