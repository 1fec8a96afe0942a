//! The service desk's daily work: a pupil forgot the passcode, an iPad must be wiped.

use serde_json::json;

use crate::assignments::connect;
use crate::device_trust::enrolled;
use crate::helpers::TestApp;

#[actix_web::test]
async fn a_forgotten_passcode_is_cleared_with_the_unlock_token_the_ipad_sent() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut ipad = enrolled(&app, 2100).await;
    let other = enrolled(&app, 2101).await;
    // The second iPad's enrollment sent no unlock token (its enrollment does not allow it).
    {
        use diesel::prelude::*;
        use tafel::db::schema::devices;
        let mut conn = app.state.db.get().unwrap();
        diesel::update(devices::table.filter(devices::udid.eq(other.udid.as_str())))
            .set(devices::unlock_token.eq(None::<Vec<u8>>))
            .execute(&mut *conn)
            .unwrap();
    }
    let clear = |udids: Vec<&str>| json!({"udids": udids, "request_type": "ClearPasscode"});

    // All or nothing: the iPad without a token is named, nothing is queued.
    let before = (app.count("commands"), app.count("command_queue"));
    let (status, reply) = app
        .post(
            "/api/v1/commands",
            clear(vec![ipad.udid.as_str(), other.udid.as_str()]),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains(other.udid.as_str()) && !message.contains(ipad.udid.as_str()),
        "{message}"
    );
    assert_eq!((app.count("commands"), app.count("command_queue")), before);

    // With its token: the iPad takes it (it refuses any other token).
    let (status, reply) = app
        .post("/api/v1/commands", clear(vec![ipad.udid.as_str()]))
        .await;
    assert_eq!(status, 202, "{reply}");
    let uuid = reply["command_uuid"].as_str().unwrap().to_owned();
    assert_eq!(reply["command_uuids"], json!([uuid]));
    assert_eq!(connect(&mut ipad).await, ["ClearPasscode"]);
    assert!(ipad.passcode_cleared);
    assert_eq!(
        app.status_of(ipad.udid.as_str(), &uuid).await,
        "acknowledged"
    );

    // The unlock token never lies in the database in the clear: the command body is
    // sealed to the iPad.
    let body: Vec<u8> = {
        use diesel::prelude::*;
        use tafel::db::schema::commands;
        let mut conn = app.state.db.get().unwrap();
        commands::table
            .find(&uuid)
            .select(commands::body)
            .first(&mut *conn)
            .unwrap()
    };
    let token_b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        tafel_sim::device::UNLOCK_TOKEN,
    );
    assert!(!body.starts_with(b"<"), "sealed");
    assert!(!body
        .windows(token_b64.len())
        .any(|w| w == token_b64.as_bytes()));
    assert!(!body
        .windows(tafel_sim::device::UNLOCK_TOKEN.len())
        .any(|w| w == tafel_sim::device::UNLOCK_TOKEN));

    // A hand-made ClearPasscode with another token is what the iPad refuses.
    let wrong = app
        .enqueue(
            &[ipad.udid.as_str()],
            "ClearPasscode",
            Some(json!({"UnlockToken": {"$data": "AAAA"}})),
        )
        .await;
    ipad.passcode_cleared = false;
    connect(&mut ipad).await;
    assert!(!ipad.passcode_cleared);
    assert_eq!(app.status_of(ipad.udid.as_str(), &wrong).await, "error");
}
