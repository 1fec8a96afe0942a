//! Secrets kept secret: the database file is private, enrollment links, Wi-Fi
//! passwords, unlock and bootstrap tokens are sealed at rest (bound to their row), and
//! no secret reaches the log — checked on the `tafel` binary's own files after a full
//! run at debug level.

use serde_json::json;

use crate::helpers::TestApp;
use crate::hostile_bodies::{post, Server};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[actix_web::test]
async fn no_secret_is_stored_in_the_clear_or_written_to_the_log() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[("TAFEL_LOG_LEVEL", "debug".to_owned())]).await;
    let client = reqwest::Client::new();
    let tenant = post(
        &client,
        &server,
        "/api/v1/tenants",
        json!({"name": "Geheim", "slug": "geheim", "push_topic": "com.apple.mgmt.External.geheim"}),
    )
    .await;
    let school = post(
        &client,
        &server,
        &format!("/api/v1/tenants/{}/schools", tenant["id"].as_str().unwrap()),
        json!({"name": "Schule"}),
    )
    .await;
    let school = school["id"].as_str().unwrap().to_owned();
    let token = post(
        &client,
        &server,
        &format!("/api/v1/schools/{school}/enrollment-tokens"),
        json!({}),
    )
    .await;
    let link = token["token"].as_str().unwrap().to_owned();
    let wifi_password = "Sehr-geheimes-WLAN-2026";
    post(&client, &server, "/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school, "values": {"ssid": "Schulnetz", "password": wifi_password}})).await;
    let teacher_password = "Lehrer-Passwort-mit-Laenge";
    post(&client, &server, "/api/v1/users", json!({"name": "L", "email": "l@geheim.de", "role": "teacher", "school_id": school, "password": teacher_password})).await;
    let res = client
        .post(format!("{}/api/v1/login", server.base))
        .json(&json!({"email": "l@geheim.de", "password": teacher_password}))
        .send()
        .await
        .unwrap();
    let (status, login) = crate::helpers::json_reply(res).await;
    assert_eq!(status, 200, "{login}");
    let login_token = login["token"].as_str().unwrap().to_owned();
    // An iPad enrolls (its unlock token: 32 × 0xAB) and escrows a bootstrap token.
    let ipad = tafel_sim::enroll::enroll(
        &client,
        &format!("{}/enroll/{link}", server.base),
        tafel::protocol::Udid::parse("00008103-0000000000CAFE01").unwrap(),
        "GEHEIM0001".into(),
        None,
    )
    .await
    .unwrap();
    let bootstrap = b"BOOTSTRAP-TOKEN-ESCROWED-BY-THE-IPAD";
    let msg =
        tafel::protocol::CheckinMessage::SetBootstrapToken(tafel::protocol::SetBootstrapToken {
            enrollment: tafel::protocol::EnrollmentIds::device(ipad.udid.clone()),
            bootstrap_token: Some(bootstrap.to_vec()),
            awaiting_configuration: false,
        });
    let reply = ipad
        .send_raw(&ipad.checkin_url, None, msg.to_xml())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    // The running server still reads what it sealed.
    let res = client
        .get(format!(
            "{}/api/v1/schools/{school}/enrollment-tokens",
            server.base
        ))
        .bearer_auth(&server.admin_token)
        .send()
        .await
        .unwrap();
    let (_, tokens) = crate::helpers::json_reply(res).await;
    assert_eq!(tokens["items"][0]["token"], link.as_str());
    let data = server.dir.path().join("data");
    let db_files: Vec<std::path::PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(
        db_files.iter().any(|p| p.ends_with("tafel.db")),
        "{db_files:?}"
    );
    let mut stored = Vec::new();
    for f in &db_files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
        stored.extend(std::fs::read(f).unwrap());
    }
    for (what, secret) in [
        ("enrollment link", link.as_bytes()),
        ("Wi-Fi password", wifi_password.as_bytes()),
        ("bootstrap token", &bootstrap[..]),
        ("unlock token", &[0xAB; 32][..]),
    ] {
        assert!(
            !contains(&stored, secret),
            "the {what} is stored in the clear"
        );
    }
    let log = std::fs::read(server.dir.path().join("stderr.log")).unwrap();
    assert!(log.len() > 1000, "the run logged at debug level");
    for (what, secret) in [
        ("enrollment link", link.as_str()),
        ("Wi-Fi password", wifi_password),
        ("teacher's password", teacher_password),
        ("admin token", server.admin_token.as_str()),
        ("login token", login_token.as_str()),
    ] {
        assert!(
            !contains(&log, secret.as_bytes()),
            "the {what} is in the log"
        );
    }
}

#[actix_web::test]
async fn values_stored_before_sealing_are_sealed_at_the_next_start() {
    use diesel::prelude::*;
    use tafel::db::schema::{devices, enrollment_tokens, profiles, secret_migrations};
    let app = TestApp::spawn().await;
    let (_, secret) = crate::enrollment::enrollment_token(&app, "alt").await;
    let ipad = crate::device_trust::enrolled(&app, 6000).await;
    let (_, school) = crate::enrollment::school(&app, "alt2").await;
    let (status, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school, "values": {"ssid": "Alt", "password": "altes-passwort-im-klartext"}}))
        .await;
    assert_eq!(status, 201);
    // What an older tafel stored: the link, the unlock token, the profile in the clear.
    let mut conn = app.state.db.get().unwrap();
    let plain_profile = tafel::catalog::profiles::builtin_template("school-wifi")
        .unwrap()
        .render(&serde_json::from_value(json!({"ssid": "Alt", "password": "altes-passwort-im-klartext", "school_name": "S", "school_slug": "s"})).unwrap())
        .unwrap();
    diesel::update(profiles::table.find(wifi["id"].as_str().unwrap()))
        .set(profiles::payload.eq(&plain_profile))
        .execute(&mut *conn)
        .unwrap();
    diesel::update(
        enrollment_tokens::table
            .filter(enrollment_tokens::token.eq(tafel::enrollment::tokens::link_hash(&secret))),
    )
    .set((
        enrollment_tokens::token.eq(&secret),
        enrollment_tokens::token_sealed.eq(None::<Vec<u8>>),
    ))
    .execute(&mut *conn)
    .unwrap();
    diesel::update(devices::table.filter(devices::udid.eq(ipad.udid.as_str())))
        .set(devices::unlock_token.eq(Some(vec![0xCD; 32])))
        .execute(&mut *conn)
        .unwrap();
    diesel::delete(secret_migrations::table)
        .execute(&mut *conn)
        .unwrap();
    // The start converts them, once.
    tafel::secrets::migrate_at_rest(&mut conn, &app.state.secrets).unwrap();
    let unlock: Option<Vec<u8>> = devices::table
        .filter(devices::udid.eq(ipad.udid.as_str()))
        .select(devices::unlock_token)
        .first(&mut *conn)
        .unwrap();
    assert_ne!(unlock.unwrap(), vec![0xCD; 32]);
    let stored: Vec<u8> = profiles::table
        .find(wifi["id"].as_str().unwrap())
        .select(profiles::payload)
        .first(&mut *conn)
        .unwrap();
    assert!(!contains(&stored, b"altes-passwort"));
    drop(conn);
    // And everything still works with them: the link enrolls, the profile is delivered.
    let res = app
        .client
        .get(app.url(&format!("/enroll/{secret}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let profile = tafel::catalog::profile(
        &mut app.state.db.get().unwrap(),
        wifi["id"].as_str().unwrap(),
    )
    .unwrap()
    .unwrap();
    let delivered = app.state.deliver_profile(&profile).unwrap();
    let inner = tafel::pki::cms::signed_content(&delivered).unwrap();
    assert!(contains(&inner, b"altes-passwort-im-klartext"));
}
