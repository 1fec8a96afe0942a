//! A school week for class 7b: Keynote arrives before each lesson and leaves after it,
//! the school Wi-Fi is always there, holidays produce nothing, an offline iPad catches
//! up or is cleaned up, the clock changes to summer time — with an injected clock.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Berlin;
use serde_json::json;
use tafel::assign::reconcile::{self, Report};
use tafel_sim::device::SimDevice;

use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE_ID: i64 = 361285480;

pub fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// One reconcile pass at `at`.
pub async fn reconcile_at(app: &TestApp, at: DateTime<Utc>) -> Report {
    let state = app.state.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = state.db.get().unwrap();
        let sign = |p: &tafel::catalog::Profile| state.deliver_profile(p);
        reconcile::run(&mut conn, at, None, &sign).unwrap()
    })
    .await
    .unwrap()
}

/// The device connects and does everything the server asks.
pub async fn connect(d: &mut SimDevice) -> Vec<String> {
    let mut done = Vec::new();
    let mut next = d.idle().await.unwrap();
    while let Some(cmd) = next {
        done.push(cmd.request_type.clone());
        let answer = d.execute(&cmd);
        next = d.answer(&cmd, answer).await.unwrap();
    }
    done
}

#[actix_web::test]
async fn a_school_week_for_class_7b() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "week").await;
    let (_, class) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    let class_id = class["id"].as_str().unwrap().to_owned();
    let mut ipad = app.device(900);
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    connect(&mut ipad).await; // its first inventory
    app.post(
        &format!("/api/v1/classes/{class_id}/devices"),
        json!({"devices": [ipad.udid.as_str()]}),
    )
    .await;

    // The authority's holidays (CSV as the Land publishes them).
    let res = app
        .client
        .post(app.url(&format!("/api/v1/tenants/{tenant}/calendar")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body("name,from,to\nOsterferien,2027-03-22,2027-04-02\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (status, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    assert_eq!(status, 201, "{keynote}");
    let (status, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school_id, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang", "school_slug": "week"}}))
        .await;
    assert_eq!(status, 201, "{wifi}");
    let wifi_identifier = wifi["identifier"].as_str().unwrap().to_owned();

    let lessons = json!({"kind": "windows", "timezone": "Europe/Berlin",
        "weekly": [{"weekday": "tue", "start": "08:00", "end": "09:30"}, {"weekday": "thu", "start": "10:00", "end": "11:30"}],
        "valid_from": "2027-03-01", "valid_until": "2027-04-30", "lead_minutes": 60, "after": "remove"});
    let (status, a) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": class_id, "schedule": lessons}))
        .await;
    assert_eq!(status, 201, "{a}");
    let keynote_assignment = a["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": wifi["id"], "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(status, 201);

    // Tuesday 2 March, 06:59: the Wi-Fi (always) comes, Keynote not yet.
    let r = reconcile_at(&app, berlin(2027, 3, 2, 6, 59)).await;
    assert_eq!((r.installs, r.removals), (1, 0));
    assert_eq!(
        r.next_boundary,
        Some(berlin(2027, 3, 2, 7, 0)),
        "the timer is set to the lead start"
    );
    assert_eq!(connect(&mut ipad).await, ["InstallProfile"]);
    assert!(ipad.profiles.contains(&wifi_identifier));

    // 07:00, an hour before the lesson: Keynote is queued; the iPad installs it.
    let r = reconcile_at(&app, berlin(2027, 3, 2, 7, 0)).await;
    assert_eq!((r.installs, r.removals), (1, 0));
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    assert!(ipad.apps.contains("com.apple.Keynote"), "{:?}", ipad.apps);
    let (_, view) = app
        .get(&format!("/api/v1/devices/{}/state", ipad.udid))
        .await;
    assert!(
        view["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["item"] == "app:com.apple.Keynote"),
        "{view}"
    );

    // Idempotent: during the lesson, passes change nothing.
    for minute in [30, 45] {
        let r = reconcile_at(&app, berlin(2027, 3, 2, 8, minute)).await;
        assert_eq!((r.installs, r.removals, r.commands), (0, 0, 0));
    }

    // 09:30, the lesson is over: Keynote is removed; the Wi-Fi stays.
    let r = reconcile_at(&app, berlin(2027, 3, 2, 9, 30)).await;
    assert_eq!((r.installs, r.removals), (0, 1));
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);
    assert!(!ipad.apps.contains("com.apple.Keynote"));
    assert!(ipad.profiles.contains(&wifi_identifier));
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 2, 9, 31)).await.commands,
        0
    );

    // Thursday: the iPad stays in its bag. The install is queued at 09:00 …
    let r = reconcile_at(&app, berlin(2027, 3, 4, 9, 0)).await;
    assert_eq!(r.installs, 1);
    // … and cleaned up after the lesson, before the iPad ever connects.
    let r = reconcile_at(&app, berlin(2027, 3, 4, 11, 30)).await;
    assert_eq!((r.cancelled, r.removals), (1, 0));
    assert!(
        connect(&mut ipad).await.is_empty(),
        "nothing to do for a lesson that is over"
    );
    assert!(!ipad.apps.contains("com.apple.Keynote"));

    // Tuesday 9 March: offline at 07:00, back at 08:15 during the lesson: it catches up.
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 7, 0)).await.installs,
        1
    );
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 8, 15)).await.commands,
        0
    );
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    assert!(ipad.apps.contains("com.apple.Keynote"));
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 9, 30)).await.removals,
        1
    );
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);

    // Easter holidays: Tuesday 23 March produces no commands.
    for (h, m) in [(7, 0), (8, 30), (9, 30)] {
        assert_eq!(
            reconcile_at(&app, berlin(2027, 3, 23, h, m)).await.commands,
            0
        );
    }

    // After the switch to summer time (28 March), 07:00 local is 05:00 UTC.
    let before = Utc.with_ymd_and_hms(2027, 4, 6, 4, 59, 0).unwrap();
    let at = Utc.with_ymd_and_hms(2027, 4, 6, 5, 0, 0).unwrap();
    assert_eq!(reconcile_at(&app, before).await.commands, 0);
    assert_eq!(reconcile_at(&app, at).await.installs, 1);
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);

    // The rollout view: accepted is installing, until the iPad reports it installed;
    // commands link back to the assignment.
    let rollout = || async {
        app.get(&format!("/api/v1/assignments/{keynote_assignment}"))
            .await
            .1
    };
    let status = rollout().await;
    assert_eq!(status["rollout"]["devices"], 1);
    assert_eq!(status["rollout"]["states"]["installing"], 1, "{status}");
    app.enqueue(&[ipad.udid.as_str()], "ManagedApplicationList", None)
        .await;
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);
    let status = rollout().await;
    assert_eq!(status["rollout"]["states"]["installed"], 1, "{status}");
    let queue = app.queue_of(ipad.udid.as_str()).await;
    assert!(
        queue
            .iter()
            .filter(|e| e["request_type"] == "InstallApplication")
            .count()
            >= 3
    );

    // Deleting the assignment removes what it brought.
    let res = app
        .client
        .delete(app.url(&format!("/api/v1/assignments/{keynote_assignment}")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(reconcile_at(&app, at).await.removals, 1);
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);
}

#[actix_web::test]
async fn inventory_answers_update_the_observed_state() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut ipad = app.device(901);
    ipad.authenticate().await.unwrap();
    ipad.apps.insert("de.westermann.schulbuch".into());
    ipad.token_update(false).await.unwrap();
    // Asked at the first TokenUpdate.
    assert_eq!(connect(&mut ipad).await.len(), 4);
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(dev["name"], "iPad DMPTEST00901");
    assert_eq!(app.count("device_apps"), 1);
    assert_eq!(app.count("device_inventory"), 1);
    // Apps installed by hand are observed but never removed by tafel.
    let (tenant, school_id) = school(&app, "inv").await;
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    let r = reconcile_at(&app, Utc::now()).await;
    assert_eq!(r.removals, 0);
}

#[actix_web::test]
async fn bad_assignments_and_catalog_items_are_refused() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "bad").await;
    let (_, app_item) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726"})).await;
    let before = app.count("assignments");
    for (body, field) in [
        (
            json!({"item_kind": "app", "item_id": app_item["id"], "target_kind": "school", "target_id": school_id, "schedule": {"kind": "windows", "weekly": [{"weekday": "tue", "start": "09:00", "end": "08:00"}]}}),
            "schedule",
        ),
        (
            json!({"item_kind": "app", "item_id": "nope", "target_kind": "school", "target_id": school_id}),
            "item_id",
        ),
        (
            json!({"item_kind": "app", "item_id": app_item["id"], "target_kind": "class", "target_id": "nope"}),
            "target_id",
        ),
    ] {
        let (status, reply) = app.post("/api/v1/assignments", body).await;
        assert_eq!(status, 400, "{reply}");
        assert_eq!(reply["field"], field, "{reply}");
    }
    assert_eq!(app.count("assignments"), before);
    let (status, reply) = app
        .post(
            "/api/v1/apps",
            json!({"tenant_id": tenant, "name": "X", "bundle_id": "not a bundle", "adam_id": "1"}),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("bundle_id")));
    let bogus = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"<plist><dict><key>PayloadType</key><string>Configuration</string></dict></plist>",
    );
    let (status, reply) = app
        .post(
            "/api/v1/profiles",
            json!({"tenant_id": tenant, "payload_base64": bogus}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    let (status, templates) = app.get("/api/v1/profile-templates").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = templates["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in ["school-wifi", "pupil-restrictions", "exam-mode"] {
        assert!(names.contains(&t), "{names:?}");
    }
}

#[actix_web::test]
async fn a_device_awaiting_configuration_is_released_after_its_initial_installs() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "await").await;
    let (_, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school_id, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang"}}))
        .await;
    app.post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": wifi["id"], "target_kind": "school", "target_id": school_id})).await;
    let mut ipad = app.device(950);
    ipad.authenticate().await.unwrap();
    ipad.token_update(true).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    assert_eq!(connect(&mut ipad).await.len(), 4, "its first inventory");
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(dev["awaiting_configuration"], true);

    // First the school's configuration, not yet the release.
    let now = Utc::now();
    let r = reconcile_at(&app, now).await;
    assert_eq!((r.installs, r.released), (1, 0));
    assert_eq!(connect(&mut ipad).await, ["InstallProfile"]);
    // Installed: now DeviceConfigured, once.
    let r = reconcile_at(&app, now).await;
    assert_eq!((r.installs, r.released), (0, 1));
    assert_eq!(
        reconcile_at(&app, now).await.released,
        0,
        "one DeviceConfigured in flight at most"
    );
    assert_eq!(connect(&mut ipad).await, ["DeviceConfigured"]);
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(dev["awaiting_configuration"], false);
    assert_eq!(reconcile_at(&app, now).await.released, 0);
}

/// Class 7b has Keynote on Tuesdays in the 2nd and 3rd period: the admin writes
/// "Di 2-3" as teachers do, the school's periods decide the times, and when the school
/// moves its periods the assignment moves with them.
#[actix_web::test]
async fn keynote_in_the_2nd_and_3rd_period_on_tuesdays_follows_the_schools_periods() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "periods").await;
    let (_, class) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    let class_id = class["id"].as_str().unwrap().to_owned();
    let mut ipad = app.device(901);
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    connect(&mut ipad).await; // its first inventory
    app.post(
        &format!("/api/v1/classes/{class_id}/devices"),
        json!({"devices": [ipad.udid.as_str()]}),
    )
    .await;
    let settings = format!("/api/v1/schools/{school_id}/lesson-settings");
    let (status, reply) = app
        .put(
            &settings,
            json!({"periods": {
            "1": {"start": "08:00", "end": "08:45"},
            "2": {"start": "08:50", "end": "09:35"},
            "3": {"start": "09:45", "end": "10:30"}}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    assert_eq!(status, 201, "{keynote}");

    let schedule =
        json!({"kind": "windows", "weekly": ["Di 2-3"], "lead_minutes": 0, "after": "remove"});
    let (status, a) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": class_id, "schedule": schedule}))
        .await;
    assert_eq!(status, 201, "{a}");
    // Read back as given: the periods stay periods.
    let as_given = json!({"kind": "windows", "timezone": "Europe/Berlin",
        "weekly": [{"weekday": "tue", "periods": "2-3"}],
        "lead_minutes": 0, "after": "remove", "exclude_holidays": true});
    assert_eq!(a["schedule"], as_given, "{a}");
    let id = a["id"].as_str().unwrap();
    let (_, detail) = app.get(&format!("/api/v1/assignments/{id}")).await;
    assert_eq!(detail["assignment"]["schedule"], as_given, "{detail}");
    let (_, list) = app
        .get(&format!("/api/v1/assignments?school_id={school_id}"))
        .await;
    assert_eq!(list["items"][0]["schedule"], as_given, "{list}");

    // Tuesday 2 March: nothing before the 2nd period, Keynote at its start …
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 2, 8, 49)).await.commands,
        0
    );
    let r = reconcile_at(&app, berlin(2027, 3, 2, 8, 50)).await;
    assert_eq!((r.installs, r.removals), (1, 0));
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    // … kept through the break between the periods, removed when the 3rd ends.
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 2, 9, 40)).await.commands,
        0
    );
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 2, 10, 29))
            .await
            .commands,
        0
    );
    let r = reconcile_at(&app, berlin(2027, 3, 2, 10, 30)).await;
    assert_eq!((r.installs, r.removals), (0, 1));
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);
    // Wednesday at the same time: not a Tuesday.
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 3, 8, 50)).await.commands,
        0
    );

    // Periods in use cannot be dropped.
    let (status, reply) = app
        .put(
            &settings,
            json!({"periods": {
            "1": {"start": "08:00", "end": "08:45"},
            "2": {"start": "08:50", "end": "09:35"}}}),
        )
        .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("periods")),
        "{reply}"
    );
    assert!(
        reply["message"].as_str().unwrap().contains(&format!(
            "assignment {id} names a period these lack (weekly[0].periods: unknown period \"3\""
        )),
        "{reply}"
    );
    // The school moves its periods ten minutes later; the assignment follows.
    let (status, reply) = app
        .put(
            &settings,
            json!({"periods": {
            "1": {"start": "08:10", "end": "08:55"},
            "2": {"start": "09:00", "end": "09:45"},
            "3": {"start": "09:55", "end": "10:40"}}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 8, 50)).await.commands,
        0
    );
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 9, 0)).await.installs,
        1
    );
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 10, 30))
            .await
            .commands,
        0
    );
    assert_eq!(
        reconcile_at(&app, berlin(2027, 3, 9, 10, 40))
            .await
            .removals,
        1
    );

    // The school moves Keynote to Thursday's 1st period: the schedule is edited in
    // place (periods stay periods), a period it does not have is refused, and the
    // audit log holds before and after.
    let path = format!("/api/v1/assignments/{id}");
    let (status, reply) = app
        .patch(
            &path,
            json!({"schedule": {"kind": "windows", "weekly": ["Mo 7"]}}),
        )
        .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("schedule")),
        "{reply}"
    );
    let (status, moved) = app
        .patch(
            &path,
            json!({"schedule": {"kind": "windows", "weekly": ["Do 1"]}}),
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["schedule"]["weekly"][0]["periods"], "1", "{moved}");
    assert_eq!(moved["schedule"]["weekly"][0]["weekday"], "thu", "{moved}");
    let (_, audit) = app
        .get(&format!("/api/v1/audit?action=update&object_id={id}"))
        .await;
    assert_eq!(
        audit["items"][0]["summary"]["after"]["schedule"]["weekly"][0]["weekday"], "thu",
        "{audit}"
    );
    assert_eq!(
        audit["items"][0]["summary"]["before"]["schedule"]["weekly"][0]["weekday"], "tue",
        "{audit}"
    );
    // Unknown fields (another item or target is another assignment): 400.
    let (status, _) = app
        .patch(
            &path,
            json!({"item_id": "x", "schedule": {"kind": "always"}}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, reply) = app.delete(&path).await;
    assert!(matches!(status, 200 | 204), "{status} {reply}");
    let (_, list) = app
        .get(&format!("/api/v1/assignments?school_id={school_id}"))
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
}

/// A period the school does not have, or periods where no school is known, are refused
/// with the field and what exists.
#[actix_web::test]
async fn unknown_periods_and_periods_without_a_school_are_refused() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "badperiods").await;
    let (status, reply) = app
        .put(
            &format!("/api/v1/schools/{school_id}/lesson-settings"),
            json!({"periods": {"1": {"start": "08:00", "end": "08:45"}, "2": {"start": "08:50", "end": "09:35"}}}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (_, pages) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726"})).await;
    let before = app.count("assignments");
    let assign = |target_kind: &str, target_id: &str, schedule: serde_json::Value| json!({"item_kind": "app", "item_id": pages["id"], "target_kind": target_kind, "target_id": target_id, "schedule": schedule});
    let (status, reply) = app
        .post(
            "/api/v1/assignments",
            assign(
                "school",
                &school_id,
                json!({"kind": "windows", "weekly": ["Di 2-7"]}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["field"], "schedule", "{reply}");
    assert_eq!(
        reply["message"],
        "weekly[0].periods: unknown period \"7\" (the school's periods: 1, 2)"
    );
    let (status, reply) = app
        .post(
            "/api/v1/assignments",
            assign(
                "tenant",
                &tenant,
                json!({"kind": "windows", "weekly": [{"weekday": "mo", "periods": "1"}]}),
            ),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["field"], "schedule", "{reply}");
    assert!(
        reply["message"].as_str().unwrap().starts_with(
            "weekly[0].periods: the school's periods need an assignment within one school"
        ),
        "{reply}"
    );
    let (status, reply) = app
        .post(
            "/api/v1/assignments",
            assign(
                "school",
                &school_id,
                json!({"kind": "windows", "weekly": ["Dienstag zwei"]}),
            ),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("schedule")));
    assert_eq!(app.count("assignments"), before);
}
