//! Every view tells the truth about an iPad: what it is from its first connect on, and
//! an app as installed only once the iPad says so.

use serde_json::json;

use crate::assignments::{connect, reconcile_at};
use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE_ID: i64 = 361285480;

#[actix_web::test]
async fn a_new_ipad_reports_what_it_is_at_its_first_connect() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let mut ipad = app.device(960);
    ipad.apps.insert("de.westermann.schulbuch".into());
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    // Asked at the first TokenUpdate, not at the hourly refresh.
    crate::helpers::answer_first_inventory(&mut ipad).await;
    let (status, dev) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(status, 200, "{dev}");
    assert_eq!(dev["serial_number"], ipad.serial.as_str(), "{dev}");
    for field in ["model", "model_name", "product_name", "os_version", "name"] {
        assert!(dev[field].is_string(), "{field}: {dev}");
    }
    let inventory = &dev["inventory"];
    for field in ["battery_level", "capacity_gb", "available_gb"] {
        assert!(inventory[field].is_number(), "{field}: {dev}");
    }
    assert!(inventory["supervised"].is_boolean(), "{dev}");
    assert!(inventory["passcode_present"].is_boolean(), "{dev}");
    let apps = dev["apps"].as_array().unwrap();
    assert!(
        apps.iter()
            .any(|a| a["bundle_id"] == "de.westermann.schulbuch" && a["by_tafel"] == false),
        "{dev}"
    );
    assert!(dev["profiles"].is_array(), "{dev}");

    // A later TokenUpdate (a new push token) asks nothing again.
    ipad.token_update(false).await.unwrap();
    assert!(connect(&mut ipad).await.is_empty());
}

#[actix_web::test]
async fn an_app_is_installed_when_the_ipad_says_so_not_when_it_accepts_the_install() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "laden").await;
    let mut ipad = app.device(961);
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    connect(&mut ipad).await;
    let (_, k) = app.post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false})).await;
    let (status, a) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": k["id"], "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(status, 201, "{a}");
    let state_url = format!("/api/v1/devices/{}/state", ipad.udid);
    let rollout_url = format!("/api/v1/assignments/{}", a["id"].as_str().unwrap());
    let keynote_state = |view: &serde_json::Value| view["items"][0]["state"].clone();

    // The iPad accepts the install and starts downloading: installing, not installed.
    ipad.downloading.insert("com.apple.Keynote".into());
    let now = chrono::Utc::now();
    assert_eq!(reconcile_at(&app, now).await.installs, 1);
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    let (_, view) = app.get(&state_url).await;
    assert_eq!(keynote_state(&view), "installing", "{view}");
    assert_eq!(view["items"][0]["reason"], "the iPad is downloading it");
    let (_, rollout) = app.get(&rollout_url).await;
    assert_eq!(rollout["rollout"]["states"]["installing"], 1, "{rollout}");

    // The reconciler asks how it goes (not installing it again), within bounds.
    let r = reconcile_at(&app, now).await;
    assert_eq!(r.installs, 0);
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);
    assert_eq!(keynote_state(&app.get(&state_url).await.1), "installing");
    reconcile_at(&app, now + chrono::Duration::seconds(5)).await;
    assert!(connect(&mut ipad).await.is_empty(), "asked a moment ago");

    // The download finishes; the next question finds it installed.
    ipad.downloading.clear();
    reconcile_at(&app, now + chrono::Duration::seconds(31)).await;
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);
    let (_, view) = app.get(&state_url).await;
    assert_eq!(keynote_state(&view), "installed", "{view}");
    assert!(view["items"][0]["reason"].is_null());
    reconcile_at(&app, now + chrono::Duration::seconds(62)).await;
    assert!(
        connect(&mut ipad).await.is_empty(),
        "installed: no more questions"
    );

    // An iPad that reports the install failed: failed, with its word for it.
    app.enqueue(&[ipad.udid.as_str()], "ManagedApplicationList", None)
        .await;
    ipad.failing.insert("com.apple.Keynote".into());
    connect(&mut ipad).await;
    let (_, view) = app.get(&state_url).await;
    assert_eq!(keynote_state(&view), "failed", "{view}");
    assert_eq!(
        view["items"][0]["reason"],
        "the iPad reports the app as failed"
    );
}
