//! The service desk's typed device actions: a lost iPad (Lost Mode, where is it, play a
//! sound), a forgotten passcode, a class's iPads restarted before an exam, an iPad wiped
//! for the next pupil. Each iPad is checked before anything is stored; each command is
//! audited by name; admins act within their scope, teachers not at all.

use serde_json::{json, Value};
use tafel_sim::device::SimDevice;

use crate::assignments::connect;
use crate::helpers::TestApp;
use crate::organisation::{call, user};

/// An iPad enrolled in the test school that reported its inventory: supervised or not,
/// on `os`.
async fn ipad(app: &TestApp, n: usize, supervised: bool, os: &str) -> SimDevice {
    let mut d = app.device(n);
    d.supervised = supervised;
    d.os_version = os.into();
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    crate::helpers::answer_first_inventory(&mut d).await;
    d
}

/// `POST /api/v1/devices/actions` as the district admin.
async fn act(app: &TestApp, target: Value, action: Value) -> (u16, Value) {
    app.post(
        "/api/v1/devices/actions",
        json!({"target": target, "action": action}),
    )
    .await
}

/// `POST /api/v1/devices/{key}/actions` as the district admin.
async fn act_on(app: &TestApp, key: &str, action: Value) -> (u16, Value) {
    app.post(
        &format!("/api/v1/devices/{key}/actions"),
        json!({"action": action}),
    )
    .await
}

/// Rows that any accepted action writes (to prove a refusal stored nothing).
fn stored(app: &TestApp) -> (i64, i64, i64) {
    (
        app.count("commands"),
        app.count("command_queue"),
        app.count("audit_log"),
    )
}

/// The answer of a command in a device's queue.
async fn result_of(app: &TestApp, udid: &str, uuid: &str) -> Value {
    app.queue_of(udid)
        .await
        .into_iter()
        .find(|e| e["command_uuid"] == uuid)
        .map(|e| e["result"].clone())
        .unwrap_or(Value::Null)
}

fn uuid(reply: &Value) -> String {
    reply["command_uuids"][0].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_lost_ipad_goes_into_lost_mode_tells_where_it_is_and_plays_a_sound() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut lost = ipad(&app, 4100, true, "18.1").await;
    let serial = lost.serial.clone();

    // Locating needs Lost Mode: refused with the reason, nothing stored.
    let before = stored(&app);
    let (status, reply) = act_on(&app, &serial, json!({"type": "locate"})).await;
    assert_eq!(status, 409, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains(&serial) && message.contains("not in Lost Mode"),
        "{message}"
    );
    assert_eq!(stored(&app), before);

    // Lost Mode needs a message or a phone number.
    let (status, reply) = act_on(
        &app,
        &serial,
        json!({"type": "lost_mode_on", "footnote": "Gymnasium Nord"}),
    )
    .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("action.message")),
        "{reply}"
    );

    // By serial number, as printed on the iPad.
    let (status, reply) = act_on(
        &app,
        &serial.to_lowercase(),
        json!({"type": "lost_mode_on", "message": "Bitte im Sekretariat abgeben",
               "phone_number": "04551 12345", "footnote": "Gymnasium Nord"}),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["action"], "lost_mode_on");
    assert_eq!(reply["request_type"], "EnableLostMode");
    assert_eq!(reply["count"], 1);
    assert_eq!(reply["devices"][0]["udid"], lost.udid.as_str());
    assert_eq!(reply["devices"][0]["serial_number"], serial.as_str());
    assert_eq!(connect(&mut lost).await, ["EnableLostMode"]);
    assert!(lost.lost_mode);
    assert_eq!(
        lost.lock_screen,
        Some((
            Some("Bitte im Sekretariat abgeben".into()),
            Some("04551 12345".into())
        ))
    );

    // Now it answers where it is, and plays a sound.
    let (status, reply) = act_on(&app, &serial, json!({"type": "locate"})).await;
    assert_eq!(status, 202, "{reply}");
    let locate = uuid(&reply);
    let (status, reply) = act_on(&app, lost.udid.as_str(), json!({"type": "play_sound"})).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(
        connect(&mut lost).await,
        ["DeviceLocation", "PlayLostModeSound"]
    );
    assert!(lost.playing_sound);
    let place = result_of(&app, lost.udid.as_str(), &locate).await;
    assert_eq!(place["Latitude"], 53.9361, "{place}");
    assert_eq!(place["Longitude"], 10.3085, "{place}");

    // Found: Lost Mode off, and locating is refused again.
    let (status, reply) = act_on(&app, &serial, json!({"type": "lost_mode_off"})).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(connect(&mut lost).await, ["DisableLostMode"]);
    assert!(!lost.lost_mode && !lost.playing_sound);
    let (status, _) = act_on(&app, &serial, json!({"type": "locate"})).await;
    assert_eq!(status, 409);
}

#[actix_web::test]
async fn every_action_reaches_a_supervised_ipad_as_apple_defines_it() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut d = ipad(&app, 4200, true, "17.6.1").await;
    let key = d.serial.clone();
    let udid = d.udid.to_string();

    let (status, reply) = act_on(
        &app,
        &key,
        json!({"type": "lock", "message": "Bitte abgeben", "phone_number": "04551 12345"}),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let lock = uuid(&reply);
    assert_eq!(connect(&mut d).await, ["DeviceLock"]);
    assert_eq!(
        d.lock_screen,
        Some((Some("Bitte abgeben".into()), Some("04551 12345".into())))
    );
    assert_eq!(
        result_of(&app, &udid, &lock).await["MessageResult"],
        "Success"
    );

    for (action, request_type) in [
        (json!({"type": "restart"}), "RestartDevice"),
        (json!({"type": "shut_down"}), "ShutDownDevice"),
        (json!({"type": "clear_passcode"}), "ClearPasscode"),
    ] {
        let (status, reply) = act_on(&app, &key, action).await;
        assert_eq!(status, 202, "{reply}");
        assert_eq!(reply["request_type"], request_type);
        assert_eq!(connect(&mut d).await, [request_type]);
        assert_eq!(app.status_of(&udid, &uuid(&reply)).await, "acknowledged");
    }
    assert_eq!((d.restarts, d.shutdowns), (1, 1));
    assert!(d.passcode_cleared, "cleared with the unlock token it sent");

    // Rename: stored at once, sent as Settings/DeviceName, reported back by the inventory.
    let (status, reply) = act_on(&app, &key, json!({"type": "rename", "name": "iPad 7b-14"})).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(connect(&mut d).await, ["Settings"]);
    assert_eq!(d.name.as_deref(), Some("iPad 7b-14"));
    let (status, reply) = act_on(&app, &key, json!({"type": "refresh_inventory"})).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["command_uuids"].as_array().unwrap().len(), 4);
    let mut asked = connect(&mut d).await;
    asked.sort();
    assert_eq!(
        asked,
        [
            "DeviceInformation",
            "InstalledApplicationList",
            "ProfileList",
            "SecurityInfo"
        ]
    );
    let (_, device) = app.get(&format!("/api/v1/devices/{key}")).await;
    assert_eq!(device["name"], "iPad 7b-14", "{device}");
    let (_, audit) = app
        .get(&format!(
            "/api/v1/audit?object_type=device&object_id={}",
            device["id"].as_str().unwrap()
        ))
        .await;
    let renamed = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "update")
        .unwrap_or_else(|| panic!("the rename is audited: {audit}"));
    assert_eq!(renamed["summary"]["after"]["name"], "iPad 7b-14", "{audit}");

    // An OS update to a named version.
    let (status, reply) = act_on(
        &app,
        &key,
        json!({"type": "update_os", "product_version": "18.2", "install_action": "install_asap"}),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let update = uuid(&reply);
    assert_eq!(connect(&mut d).await, ["ScheduleOSUpdate"]);
    assert_eq!(
        d.scheduled_update,
        Some(("18.2".into(), "InstallASAP".into()))
    );
    let results = result_of(&app, &udid, &update).await;
    assert_eq!(
        results["UpdateResults"][0]["Status"], "Downloading",
        "{results}"
    );

    // Erase, confirmed with the serial, with Return to Service and its Wi-Fi profile.
    let wifi = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"<plist/>");
    let (status, reply) = act_on(
        &app,
        &key,
        json!({"type": "erase", "confirm": key.to_lowercase(), "disallow_proximity_setup": true,
               "return_to_service": {"wifi_profile": wifi}}),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(connect(&mut d).await, ["EraseDevice"]);
    let erased = d.erased.clone().unwrap();
    assert_eq!(
        erased.get("DisallowProximitySetup"),
        Some(&plist::Value::Boolean(true))
    );
    let rts = erased
        .get("ReturnToService")
        .unwrap()
        .as_dictionary()
        .unwrap();
    assert_eq!(rts.get("Enabled"), Some(&plist::Value::Boolean(true)));
    assert_eq!(
        rts.get("WiFiProfileData").and_then(plist::Value::as_data),
        Some(&b"<plist/>"[..])
    );
    // Wiped: it is no longer enrolled, and the next action says so.
    let (status, reply) = act_on(&app, &key, json!({"type": "restart"})).await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("not enrolled"),
        "{reply}"
    );
}

#[actix_web::test]
async fn ipads_that_cannot_do_an_action_are_named_with_the_reason_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let good = ipad(&app, 4300, true, "18.1").await;
    let unsupervised = ipad(&app, 4301, false, "18.1").await;
    let old = ipad(&app, 4302, true, "10.2").await;
    let no_token = ipad(&app, 4303, false, "18.1").await;
    {
        use diesel::prelude::*;
        use tafel::db::schema::devices;
        let mut conn = app.state.db.get().unwrap();
        diesel::update(devices::table.filter(devices::udid.eq(no_token.udid.as_str())))
            .set(devices::unlock_token.eq(None::<Vec<u8>>))
            .execute(&mut *conn)
            .unwrap();
    }
    let three = json!({"devices": [good.serial, unsupervised.udid.as_str(), old.serial]});
    let before = stored(&app);

    // All or nothing: the two unsuitable iPads are named with their reasons.
    let (status, reply) = act(&app, three.clone(), json!({"type": "restart"})).await;
    assert_eq!(status, 409, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{} (not supervised)", unsupervised.serial))
            && message.contains(&format!(
                "{} (runs iPadOS 10.2, needs 10.3 or later)",
                old.serial
            ))
            && !message.contains(&good.serial)
            && message.contains("2 of 3"),
        "{message}"
    );
    for action in [
        json!({"type": "lost_mode_on", "message": "Bitte abgeben"}),
        json!({"type": "shut_down"}),
        json!({"type": "rename", "name": "x"}),
    ] {
        let (status, reply) = act_on(&app, unsupervised.udid.as_str(), action).await;
        assert_eq!(status, 409, "{reply}");
        assert!(reply["message"]
            .as_str()
            .unwrap()
            .contains("not supervised"));
    }
    let (status, reply) = act_on(&app, &no_token.serial, json!({"type": "clear_passcode"})).await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("no unlock token"),
        "{reply}"
    );
    let (status, reply) = act_on(
        &app,
        &good.serial,
        json!({"type": "update_os", "product_version": "18.1"}),
    )
    .await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("already runs iPadOS 18.1"),
        "{reply}"
    );
    // Wrong shapes: unknown keys, unknown actions, unknown iPads.
    for (body, field) in [
        (
            json!({"target": {"devices": [good.serial]}, "action": {"type": "restart", "now": true}}),
            "action",
        ),
        (
            json!({"target": {"devices": [good.serial]}, "action": {"type": "self_destruct"}}),
            "action",
        ),
        (
            json!({"target": {"devices": []}, "action": {"type": "restart"}}),
            "target.devices",
        ),
        (
            json!({"target": {"devices": [good.serial]}, "action": {"type": "restart"}, "force": true}),
            "",
        ),
    ] {
        let (status, reply) = app.post("/api/v1/devices/actions", body.clone()).await;
        assert_eq!(status, 400, "{body} → {reply}");
        if !field.is_empty() {
            assert!(
                reply["field"].as_str().unwrap_or("").starts_with(field),
                "{body} → {reply}"
            );
        }
    }
    let (status, reply) = act(
        &app,
        json!({"devices": [good.serial, "NOSUCHSERIAL"]}),
        json!({"type": "restart"}),
    )
    .await;
    assert_eq!(status, 404, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("NOSUCHSERIAL"));
    assert_eq!(stored(&app), before, "a refused request stores nothing");

    // skip_unsuitable: the suitable iPad gets it, the others are listed with reasons.
    let (status, reply) = app
        .post(
            "/api/v1/devices/actions",
            json!({"target": three, "action": {"type": "restart"}, "skip_unsuitable": true}),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["count"], 1);
    assert_eq!(reply["devices"][0]["serial_number"], good.serial.as_str());
    let skipped: Vec<(String, String)> = reply["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["serial_number"].as_str().unwrap().to_owned(),
                s["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            (unsupervised.serial.clone(), "not_supervised".to_owned()),
            (old.serial.clone(), "os_too_old".to_owned()),
        ]
    );
    assert_eq!(reply["skipped"][1]["has"], "10.2");
    assert_eq!(
        app.queue_of(unsupervised.udid.as_str()).await.len(),
        4,
        "only its first inventory"
    );
    // None suitable: skipping leaves nothing to do, so it is refused.
    let (status, reply) = app
        .post(
            "/api/v1/devices/actions",
            json!({"target": {"devices": [old.serial]}, "action": {"type": "restart"}, "skip_unsuitable": true}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
}

#[actix_web::test]
async fn admins_act_within_their_scope_and_teachers_not_at_all() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school) = crate::enrollment::school(&app, "scope").await;
    let (status, other) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Realschule Süd"}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let other = other["id"].as_str().unwrap().to_owned();
    let mine = ipad(&app, 4400, true, "18.1").await;
    let theirs = ipad(&app, 4401, true, "18.1").await;
    app.place_device(mine.udid.as_str(), &tenant, &school);
    app.place_device(theirs.udid.as_str(), &tenant, &other);
    let (_, school_admin) = user(
        &app,
        json!({"name": "SA", "email": "sa@scope.de", "role": "school_admin", "school_id": school}),
    )
    .await;
    let (_, teacher) = user(
        &app,
        json!({"name": "T", "email": "t@scope.de", "role": "teacher", "school_id": school}),
    )
    .await;
    let (_, authority_admin) = user(&app, json!({"name": "AA", "email": "aa@scope.de", "role": "authority_admin", "tenant_id": tenant})).await;
    let restart = json!({"type": "restart"});
    let on = |key: &str| format!("/api/v1/devices/{key}/actions");
    let bulk = |target: Value| json!({"target": target, "action": {"type": "restart"}});
    let before = stored(&app);

    // Teachers: 403, even on their own school's iPad.
    let (status, reply) = call(
        &app,
        &teacher,
        "POST",
        &on(&mine.serial),
        Some(json!({"action": restart})),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    // The other school's iPad does not exist for this school admin, by serial or UDID.
    for key in [theirs.serial.as_str(), theirs.udid.as_str()] {
        let (status, reply) = call(
            &app,
            &school_admin,
            "POST",
            &on(key),
            Some(json!({"action": restart})),
        )
        .await;
        assert_eq!(status, 404, "{reply}");
    }
    let (status, reply) = call(
        &app,
        &school_admin,
        "POST",
        "/api/v1/devices/actions",
        Some(bulk(json!({"devices": [mine.serial, theirs.serial]}))),
    )
    .await;
    assert_eq!(status, 404, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains(&theirs.serial));
    let (status, reply) = call(
        &app,
        &school_admin,
        "POST",
        "/api/v1/devices/actions",
        Some(bulk(json!({"school_id": other}))),
    )
    .await;
    assert_eq!(status, 404, "{reply}");
    // A whole authority is not a school admin's to act on.
    let (status, reply) = call(
        &app,
        &school_admin,
        "POST",
        "/api/v1/devices/actions",
        Some(bulk(json!({"tenant_id": tenant}))),
    )
    .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(stored(&app), before);

    // Within scope: the school admin their iPad, the authority admin all of theirs.
    let (status, reply) = call(
        &app,
        &school_admin,
        "POST",
        &on(&mine.serial),
        Some(json!({"action": restart})),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    let (status, reply) = call(
        &app,
        &authority_admin,
        "POST",
        "/api/v1/devices/actions",
        Some(bulk(json!({"tenant_id": tenant}))),
    )
    .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["count"], 2);
}

#[actix_web::test]
async fn a_class_a_cart_and_a_school_are_acted_on_as_a_whole() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school) = crate::enrollment::school(&app, "whole").await;
    let mut ipads = Vec::new();
    for n in 0..3 {
        let d = ipad(&app, 4500 + n, true, "18.1").await;
        app.place_device(d.udid.as_str(), &tenant, &school);
        ipads.push(d);
    }
    let (status, class) = app
        .post(
            &format!("/api/v1/schools/{school}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let class = class["id"].as_str().unwrap().to_owned();
    let (status, cart) = app
        .post(
            &format!("/api/v1/schools/{school}/groups"),
            json!({"name": "Wagen 1"}),
        )
        .await;
    assert_eq!(status, 201, "{cart}");
    let cart = cart["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/classes/{class}/devices"),
            json!({"devices": [ipads[0].udid.as_str(), ipads[1].udid.as_str()]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .post(
            &format!("/api/v1/groups/{cart}/devices"),
            json!({"devices": [ipads[2].udid.as_str()]}),
        )
        .await;
    assert_eq!(status, 200);

    let serials = |reply: &Value| -> Vec<String> {
        let mut s: Vec<String> = reply["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["serial_number"].as_str().unwrap().to_owned())
            .collect();
        s.sort();
        s
    };
    let restart = json!({"type": "restart"});
    let (status, reply) = act(&app, json!({"class_id": class}), restart.clone()).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["count"], 2);
    assert_eq!(
        serials(&reply),
        [ipads[0].serial.clone(), ipads[1].serial.clone()]
    );
    let (status, reply) = act(&app, json!({"group_id": cart}), restart.clone()).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(serials(&reply), [ipads[2].serial.clone()]);
    let (status, reply) = act(&app, json!({"school_id": school}), json!({"type": "lock"})).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["count"], 3);
    // One command for the class, the cart and the school each; every iPad restarts once.
    for d in &mut ipads {
        let got = connect(d).await;
        assert_eq!(got, ["RestartDevice", "DeviceLock"], "{}", d.serial);
    }
    // A class without iPads has nothing to act on; a rename is for one iPad.
    let (_, empty) = app
        .post(
            &format!("/api/v1/schools/{school}/classes"),
            json!({"name": "5a", "school_year": "2026/27"}),
        )
        .await;
    let (status, reply) = act(&app, json!({"class_id": empty["id"]}), restart).await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("target")),
        "{reply}"
    );
    let (status, reply) = act(
        &app,
        json!({"class_id": class}),
        json!({"type": "rename", "name": "iPad"}),
    )
    .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("target")),
        "{reply}"
    );
    let (status, reply) = act(
        &app,
        json!({"class_id": "no-such-class"}),
        json!({"type": "lock"}),
    )
    .await;
    assert_eq!(status, 404, "{reply}");
}

#[actix_web::test]
async fn an_erase_is_confirmed_with_the_serial_or_the_count_and_audited_by_name() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let a = ipad(&app, 4600, true, "18.1").await;
    let b = ipad(&app, 4601, true, "18.1").await;
    let before = stored(&app);
    let erase = |confirm: &str| json!({"type": "erase", "confirm": confirm});

    // One iPad: its serial number; anything else is refused and stores nothing.
    for wrong in ["1", &b.serial, " "] {
        let (status, reply) = act_on(&app, &a.serial, erase(wrong)).await;
        assert_eq!(status, 400, "{reply}");
        assert!(
            reply["field"].as_str().unwrap().contains("confirm"),
            "{reply}"
        );
    }
    // Several: their number.
    let both = json!({"devices": [a.serial, b.udid.as_str()]});
    let (status, reply) = act(&app, both.clone(), erase(&a.serial)).await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("(2)"),
        "{reply}"
    );
    assert_eq!(stored(&app), before);
    let (status, reply) = act(&app, both, erase("2")).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["count"], 2);
    let command = uuid(&reply);

    // The audit entry names the iPads by UDID and serial number.
    let (status, audit) = app.get(&format!("/api/v1/audit?object_id={command}")).await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    let entry = &entries[0];
    assert_eq!(entry["action"], "enqueue");
    assert_eq!(entry["summary"]["action"], "erase");
    assert_eq!(entry["summary"]["request_type"], "EraseDevice");
    let mut udids: Vec<&str> = entry["summary"]["udids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    udids.sort();
    let mut want = vec![a.udid.as_str(), b.udid.as_str()];
    want.sort();
    assert_eq!(udids, want);
    let serials = entry["summary"]["serial_numbers"].as_array().unwrap();
    assert!(serials.contains(&json!(a.serial)) && serials.contains(&json!(b.serial)));
}

#[actix_web::test]
async fn the_raw_command_endpoint_takes_serial_numbers_too() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut d = ipad(&app, 4700, true, "18.1").await;
    let uuid = app
        .enqueue(&[d.serial.to_lowercase().as_str()], "ProfileList", None)
        .await;
    assert_eq!(connect(&mut d).await, ["ProfileList"]);
    assert_eq!(app.status_of(d.udid.as_str(), &uuid).await, "acknowledged");
}

#[actix_web::test]
async fn the_console_puts_a_lost_ipad_into_lost_mode_and_shows_where_it_is() {
    use crate::console::{login, user as console_user, PASSWORD};
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school) = crate::enrollment::school(&app, "konsole").await;
    console_user(&app, "sl@konsole.de", "school_admin", Some(&school)).await;
    let mut d = ipad(&app, 4800, true, "18.1").await;
    app.place_device(d.udid.as_str(), &tenant, &school);
    let s = login(&app.base, "sl@konsole.de", PASSWORD).await.unwrap();
    let page = format!("/admin/geraete/{}", d.serial);
    let path = format!("{page}/aktion");
    let (status, html) = s.get(&page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"action-lost-mode-on\"") && html.contains("id=\"action-locate\""));

    // Locating before Lost Mode: the reason, nothing queued.
    let before = stored(&app);
    let (status, _, html) = s
        .post(&path, &[("csrf", &s.csrf), ("action", "locate")])
        .await;
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("not in Lost Mode"), "{html}");
    assert_eq!(stored(&app), before);

    let (status, _, html) = s
        .post(
            &path,
            &[
                ("csrf", &s.csrf),
                ("action", "lost-mode-on"),
                ("message", "Bitte im Sekretariat abgeben"),
                ("phone_number", ""),
                ("footnote", ""),
                ("sure", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(connect(&mut d).await, ["EnableLostMode"]);
    assert!(d.lost_mode);
    let (status, _, html) = s
        .post(&path, &[("csrf", &s.csrf), ("action", "locate")])
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(connect(&mut d).await, ["DeviceLocation"]);
    let (_, html) = s.get(&format!("{page}?gesendet=locate")).await;
    assert!(
        html.contains("DeviceLocation · 53.93610, 10.30850"),
        "{html}"
    );
    assert!(html.contains("Ortung gesendet"), "{html}");
    let (status, _, _) = s
        .post(
            &path,
            &[
                ("csrf", &s.csrf),
                ("action", "lost-mode-off"),
                ("sure", "1"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    assert_eq!(connect(&mut d).await, ["DisableLostMode"]);
    assert!(!d.lost_mode);
}
