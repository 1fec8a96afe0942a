//! `Idempotency-Key`: an admin's retry gets the first answer instead of a second command.

use serde_json::{json, Value};

use crate::enrollment::school;
use crate::helpers::TestApp;

/// POSTs `body` to `path` with `token` and an optional key; status, replay header, JSON.
async fn post_with_key(
    app: &TestApp,
    token: &str,
    path: &str,
    key: Option<&str>,
    body: Value,
) -> (u16, bool, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.unwrap();
    let replayed = res.headers().get("idempotent-replayed").is_some();
    let (status, json) = crate::helpers::json_reply(res).await;
    (status, replayed, json)
}

/// One enrolled iPad in a school; its UDID.
async fn one_ipad(app: &TestApp) -> String {
    let (tenant, school_id) = school(app, "idem").await;
    let d = app.device(900);
    d.authenticate().await.unwrap();
    app.place_device(d.udid.as_str(), &tenant, &school_id);
    d.token_update(false).await.unwrap();
    d.udid.to_string()
}

fn commands_named(queue: &[Value], request_type: &str) -> usize {
    queue
        .iter()
        .filter(|c| c["request_type"] == request_type)
        .count()
}

#[actix_web::test]
async fn a_repeated_command_with_the_same_key_is_queued_once_and_answered_alike() {
    let app = TestApp::spawn().await;
    let udid = one_ipad(&app).await;
    let body = json!({"udids": [udid], "request_type": "CertificateList"});
    let token = app.admin_token.clone();
    let (s1, r1, first) = post_with_key(
        &app,
        &token,
        "/api/v1/commands",
        Some("retry-1"),
        body.clone(),
    )
    .await;
    assert_eq!(s1, 202, "{first}");
    assert!(!r1);
    let (s2, r2, second) = post_with_key(
        &app,
        &token,
        "/api/v1/commands",
        Some("retry-1"),
        body.clone(),
    )
    .await;
    assert_eq!(s2, 202, "{second}");
    assert!(r2, "a repeat says it is one");
    assert_eq!(first, second);
    assert_eq!(
        commands_named(&app.queue_of(&udid).await, "CertificateList"),
        1
    );

    // Without a key, or with another one, it is a new command.
    let (s3, _, third) = post_with_key(
        &app,
        &token,
        "/api/v1/commands",
        Some("retry-2"),
        body.clone(),
    )
    .await;
    assert_eq!(s3, 202);
    assert_ne!(third["command_uuid"], first["command_uuid"]);
    assert_eq!(
        commands_named(&app.queue_of(&udid).await, "CertificateList"),
        2
    );
}

#[actix_web::test]
async fn a_key_used_for_another_request_is_refused_and_nothing_is_queued() {
    let app = TestApp::spawn().await;
    let udid = one_ipad(&app).await;
    let token = app.admin_token.clone();
    let (s, _, _) = post_with_key(
        &app,
        &token,
        "/api/v1/commands",
        Some("k"),
        json!({"udids": [udid], "request_type": "CertificateList"}),
    )
    .await;
    assert_eq!(s, 202);
    let (s, _, body) = post_with_key(
        &app,
        &token,
        "/api/v1/commands",
        Some("k"),
        json!({"udids": [udid], "request_type": "AvailableOSUpdates"}),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["error"], "idempotency_key_reused");
    assert_eq!(
        commands_named(&app.queue_of(&udid).await, "AvailableOSUpdates"),
        0
    );

    // A key that is no key.
    for bad in ["", "mit leerzeichen", &"x".repeat(256)] {
        let (s, _, body) = post_with_key(
            &app,
            &token,
            "/api/v1/commands",
            Some(bad),
            json!({"udids": [udid], "request_type": "AvailableOSUpdates"}),
        )
        .await;
        assert_eq!(s, 400, "{bad:?}: {body}");
        assert_eq!(body["field"], "Idempotency-Key");
    }
    assert_eq!(
        commands_named(&app.queue_of(&udid).await, "AvailableOSUpdates"),
        0
    );
}

#[actix_web::test]
async fn keys_belong_to_their_caller() {
    let app = TestApp::spawn().await;
    let udid = one_ipad(&app).await;
    let (_, other) = crate::lessons::user(
        &app,
        json!({"name": "Zweite", "email": "zweite@kreis.de", "role": "district_admin"}),
    )
    .await;
    let body = json!({"udids": [udid], "request_type": "CertificateList"});
    let token = app.admin_token.clone();
    let (_, _, mine) =
        post_with_key(&app, &token, "/api/v1/commands", Some("same"), body.clone()).await;
    let (s, replayed, theirs) =
        post_with_key(&app, &other, "/api/v1/commands", Some("same"), body).await;
    assert_eq!(s, 202, "{theirs}");
    assert!(!replayed, "another caller's key answers nothing of mine");
    assert_ne!(mine["command_uuid"], theirs["command_uuid"]);
}

#[actix_web::test]
async fn a_first_request_cut_off_by_a_stop_is_not_done_again() {
    use diesel::prelude::*;
    use tafel::db::schema::idempotency_keys;
    let app = TestApp::spawn().await;
    let udid = one_ipad(&app).await;
    let body = json!({"udids": [udid], "request_type": "CertificateList"});
    let token = app.admin_token.clone();
    let (s, _, _) =
        post_with_key(&app, &token, "/api/v1/commands", Some("cut"), body.clone()).await;
    assert_eq!(s, 202);
    // As if the server had stopped after the claim and before the answer, minutes ago.
    {
        let mut conn = app.state.db.get().unwrap();
        let ago = (chrono::Utc::now() - chrono::Duration::minutes(5)).naive_utc();
        let n = diesel::update(idempotency_keys::table)
            .set((
                idempotency_keys::status.eq(None::<i32>),
                idempotency_keys::body.eq(None::<Vec<u8>>),
                idempotency_keys::created_at.eq(ago),
            ))
            .execute(&mut *conn)
            .unwrap();
        assert_eq!(n, 1);
    }
    let (s, _, answer) = post_with_key(&app, &token, "/api/v1/commands", Some("cut"), body).await;
    assert_eq!(s, 409, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("cut off"),
        "{answer}"
    );
    assert_eq!(
        commands_named(&app.queue_of(&udid).await, "CertificateList"),
        1
    );
}

#[actix_web::test]
async fn device_actions_honour_the_key_too() {
    let app = TestApp::spawn().await;
    let udid = one_ipad(&app).await;
    let token = app.admin_token.clone();
    let path = format!("/api/v1/devices/{udid}/actions");
    let body = json!({"action": {"type": "refresh_inventory"}});
    let (s1, _, a) = post_with_key(&app, &token, &path, Some("act"), body.clone()).await;
    assert_eq!(s1, 202, "{a}");
    let queued = app.queue_of(&udid).await.len();
    let (s2, replayed, b) = post_with_key(&app, &token, &path, Some("act"), body).await;
    assert_eq!((s1, a), (s2, b));
    assert!(replayed);
    assert_eq!(app.queue_of(&udid).await.len(), queued);
}
