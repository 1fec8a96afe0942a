//! Automated Device Enrollment against a local server speaking Apple's device enrollment
//! API: server token round trip, device sync (full, then incremental), deletions marked.

use base64::Engine;
use chrono::{Duration, Utc};
use serde_json::json;
use tafel::ade::token::OAuthTokens;
use tafel_sim::ade::AdeSim;
use tafel_sim::server_token::encrypt_server_token;

use crate::enrollment::school;
use crate::helpers::TestApp;

fn tokens() -> OAuthTokens {
    OAuthTokens {
        consumer_key: "CK_test".into(),
        consumer_secret: "CS_test".into(),
        access_token: "AT_test".into(),
        access_secret: "AS_test".into(),
        access_token_expiry: Utc::now() + Duration::days(20),
    }
}

/// Uploads a `.p7m` server token for the ADE token `id`.
pub(crate) async fn put_p7m(app: &TestApp, id: &str, p7m: &[u8]) -> (u16, serde_json::Value) {
    let res = app
        .client
        .put(app.url(&format!("/api/v1/ade-tokens/{id}/server-token")))
        .bearer_auth(&app.admin_token)
        .json(&json!({"p7m_base64": base64::engine::general_purpose::STANDARD.encode(p7m)}))
        .send()
        .await
        .unwrap();
    crate::helpers::json_reply(res).await
}

#[actix_web::test]
async fn devices_bought_in_apple_school_manager_appear_before_they_enroll() {
    let sim = AdeSim::start(tokens()).unwrap();
    let serials = sim.add_devices(2500);
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.reconcile.automatic = false;
        s.ade.base_url = url;
    })
    .await;
    let (tenant, _) = school(&app, "ade").await;

    // Step 1: tafel's certificate for Apple School Manager.
    let (status, token) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{token}");
    assert_eq!(token["status"], "awaiting_token");
    let cert =
        openssl::x509::X509::from_pem(token["cert_pem"].as_str().unwrap().as_bytes()).unwrap();
    // Step 2: the .p7m that Apple School Manager returns, encrypted to that certificate.
    let p7m = encrypt_server_token(&tokens(), &cert).unwrap();
    let (status, active) = put_p7m(&app, token["id"].as_str().unwrap(), &p7m).await;
    assert_eq!(status, 200, "{active}");
    assert_eq!(active["status"], "active");
    let (_, list) = app
        .get(&format!("/api/v1/tenants/{tenant}/ade-tokens"))
        .await;
    assert!(
        list["items"][0]["warning"]
            .as_str()
            .unwrap()
            .contains("expires"),
        "expires within 30 days: {list}"
    );
    assert!(list["items"][0].get("tokens_sealed").is_none());

    // Step 3: a full fetch (no cursor yet), then an incremental sync.
    let (status, sync) = app.post("/api/v1/ade/sync", json!({})).await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["items"][0]["devices"], 2500);
    assert_eq!(sync["items"][0]["full"], true);
    assert_eq!(sync["items"][0]["new_devices"], 2500);
    let (_, pending) = app
        .get(&format!(
            "/api/v1/devices?tenant_id={tenant}&status=pending&limit=500"
        ))
        .await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 500);
    assert!(pending["next_cursor"].is_string());

    sim.delete(&serials[0]);
    sim.modify(&serials[1]);
    let (_, sync) = app.post("/api/v1/ade/sync", json!({})).await;
    assert_eq!(sync["items"][0]["full"], false);
    assert_eq!(sync["items"][0]["devices"], 2);
    assert_eq!(sync["items"][0]["deleted"], 1);
    assert_eq!(sync["items"][0]["new_devices"], 0);
    // Deleted devices are marked, not dropped.
    assert_eq!(app.count("ade_devices"), 2500);
    {
        use diesel::prelude::*;
        use tafel::db::schema::ade_devices;
        let mut conn = app.state.db.get().unwrap();
        let deleted: Option<chrono::NaiveDateTime> = ade_devices::table
            .find(&serials[0])
            .select(ade_devices::deleted_at)
            .first(&mut *conn)
            .unwrap();
        assert!(deleted.is_some());
    }

    // Expired cursor: a full fetch again. A device missing from it is no longer
    // assigned to tafel: marked like one Apple reported deleted.
    sim.delete(&serials[7]);
    sim.expire_cursors();
    let (_, sync) = app.post("/api/v1/ade/sync", json!({})).await;
    assert_eq!(sync["items"][0]["full"], true);
    assert_eq!(sync["items"][0]["deleted"], 1, "{sync}");
    assert_eq!(sync["items"][0]["error"], serde_json::Value::Null);
    {
        use diesel::prelude::*;
        use tafel::db::schema::ade_devices;
        let mut conn = app.state.db.get().unwrap();
        let deleted: Option<chrono::NaiveDateTime> = ade_devices::table
            .find(&serials[7])
            .select(ade_devices::deleted_at)
            .first(&mut *conn)
            .unwrap();
        assert!(deleted.is_some());
    }
}

#[actix_web::test]
async fn a_server_token_for_another_key_is_refused_and_stores_nothing() {
    let sim = AdeSim::start(tokens()).unwrap();
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| s.ade.base_url = url).await;
    let (tenant, _) = school(&app, "adebad").await;
    let (_, token) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    let (other_cert, _) = tafel::ade::token::new_token_keypair("someone else").unwrap();
    let p7m = encrypt_server_token(&tokens(), &other_cert).unwrap();
    let (status, _) = put_p7m(&app, token["id"].as_str().unwrap(), &p7m).await;
    assert_eq!(status, 400);
    let (_, list) = app
        .get(&format!("/api/v1/tenants/{tenant}/ade-tokens"))
        .await;
    assert_eq!(list["items"][0]["status"], "awaiting_token");
}
