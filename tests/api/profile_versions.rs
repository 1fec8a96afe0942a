//! A school changes its Wi-Fi password: the profile is edited with the new one — and
//! every iPad gets the new version at its next connect, because tafel compares the
//! version each iPad holds (the PayloadUUID) with the one wanted, not only the
//! identifier.

use serde_json::json;
use tafel_sim::device::SimDevice;

use crate::assignments::{connect, reconcile_at};
use crate::enrollment::school;
use crate::helpers::TestApp;

/// The Wi-Fi password and the outer PayloadUUID of the profile an iPad holds.
fn wifi_on(ipad: &SimDevice, identifier: &str) -> (String, String) {
    let profile = ipad
        .profile_payloads
        .get(identifier)
        .unwrap_or_else(|| panic!("{identifier} not on {}", ipad.udid));
    let uuid = profile["PayloadUUID"].as_string().unwrap().to_owned();
    let password = profile["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap()["Password"]
        .as_string()
        .unwrap()
        .to_owned();
    (password, uuid)
}

#[actix_web::test]
async fn a_new_wifi_password_reaches_every_ipad_after_one_connect() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "wlan").await;
    let mut ipads = Vec::new();
    for n in 0..3 {
        let mut ipad = app.device(930 + n);
        ipad.authenticate().await.unwrap();
        ipad.token_update(false).await.unwrap();
        crate::helpers::answer_first_inventory(&mut ipad).await;
        app.place_device(ipad.udid.as_str(), &tenant, &school_id);
        ipads.push(ipad);
    }
    let render = |password: &str| {
        json!({"template": "school-wifi", "school_id": school_id,
               "values": {"ssid": "Schulnetz", "password": password, "school_slug": "wlan"}})
    };
    let (status, old) = app
        .post("/api/v1/profiles/from-template", render("altes-passwort"))
        .await;
    assert_eq!(status, 201, "{old}");
    let identifier = old["identifier"].as_str().unwrap().to_owned();
    let (status, old_assignment) = app
        .post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": old["id"], "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(status, 201, "{old_assignment}");
    let at = crate::assignments::berlin(2027, 3, 2, 7, 0);
    assert_eq!(reconcile_at(&app, at).await.installs, 3);
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["InstallProfile"]);
    }
    let (_, old_uuid) = wifi_on(&ipads[0], &identifier);
    for ipad in &ipads {
        assert_eq!(wifi_on(ipad, &identifier).0, "altes-passwort");
    }

    // The school edits the profile: the same values again make no new version; a new
    // password makes one, under the same identifier. A second profile with the same
    // identifier is refused (an iPad holds one per identifier).
    let profile_url = format!("/api/v1/profiles/{}", old["id"].as_str().unwrap());
    let values = |password: &str| json!({"values": {"ssid": "Schulnetz", "password": password, "school_slug": "wlan"}});
    let (status, same) = app.patch(&profile_url, values("altes-passwort")).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["payload_uuid"], old["payload_uuid"]);
    assert_eq!(old["payload_uuid"], old_uuid.as_str());
    let (status, twin) = app
        .post(
            "/api/v1/profiles/from-template",
            render("neues-passwort-2027"),
        )
        .await;
    assert_eq!(status, 409, "{twin}");
    assert!(
        twin["message"].as_str().unwrap().contains(&identifier),
        "{twin}"
    );
    let (status, new) = app.patch(&profile_url, values("neues-passwort-2027")).await;
    assert_eq!(status, 200, "{new}");
    assert_eq!(new["id"], old["id"]);
    assert_eq!(new["identifier"], identifier.as_str());
    assert_ne!(new["payload_uuid"], old["payload_uuid"]);
    let (_, audit) = app
        .get("/api/v1/audit?action=update&object_type=profile")
        .await;
    let entry = &audit["items"][0];
    assert_eq!(entry["object_id"], old["id"], "{audit}");
    assert_eq!(
        entry["summary"]["before"]["version"], old["payload_uuid"],
        "{audit}"
    );
    assert_eq!(
        entry["summary"]["after"]["version"], new["payload_uuid"],
        "{audit}"
    );
    assert!(
        !audit.to_string().contains("neues-passwort"),
        "no secret in the audit log"
    );

    // The device view tells the truth before anything is sent: the wanted version is
    // not on the iPad yet.
    let wifi_state = |view: &serde_json::Value| {
        view["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["item"] == format!("profile:{identifier}"))
            .map(|i| i["state"].clone())
            .unwrap_or_else(|| panic!("{view}"))
    };
    let state_url = format!("/api/v1/devices/{}/state", ipads[0].udid);
    let (_, view) = app.get(&state_url).await;
    assert_eq!(wifi_state(&view), "scheduled", "{view}");

    let r = reconcile_at(&app, at + chrono::Duration::minutes(1)).await;
    assert_eq!(
        (r.installs, r.removals),
        (3, 0),
        "the new version goes to every iPad and the identifier is not removed"
    );
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["InstallProfile"], "one connect");
        let (password, uuid) = wifi_on(ipad, &identifier);
        assert_eq!(password, "neues-passwort-2027");
        assert_eq!(uuid, new["payload_uuid"].as_str().unwrap());
    }
    let (_, view) = app.get(&state_url).await;
    assert_eq!(wifi_state(&view), "installed", "{view}");
    assert_eq!(
        reconcile_at(&app, at + chrono::Duration::minutes(2))
            .await
            .commands,
        0,
        "all hold the wanted version"
    );

    // What the iPads report in ProfileList agrees: nothing to do after an inventory.
    let udids: Vec<String> = ipads.iter().map(|i| i.udid.to_string()).collect();
    let udids: Vec<&str> = udids.iter().map(String::as_str).collect();
    app.enqueue(&udids, "ProfileList", None).await;
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["ProfileList"]);
    }
    assert_eq!(
        reconcile_at(&app, at + chrono::Duration::minutes(3))
            .await
            .commands,
        0
    );

    // An iPad that somehow holds the old version (restored from a backup) is found from
    // its ProfileList and brought up to date.
    let stale = &mut ipads[2];
    let mut old_profile = stale.profile_payloads[&identifier].clone();
    old_profile.insert("PayloadUUID".into(), old_uuid.clone().into());
    stale
        .profile_payloads
        .insert(identifier.clone(), old_profile);
    let stale_udid = stale.udid.to_string();
    app.enqueue(&[&stale_udid], "ProfileList", None).await;
    assert_eq!(connect(stale).await, ["ProfileList"]);
    let r = reconcile_at(&app, at + chrono::Duration::minutes(4)).await;
    assert_eq!(r.installs, 1, "only the stale iPad");
    assert_eq!(connect(stale).await, ["InstallProfile"]);
    assert_eq!(
        wifi_on(stale, &identifier).1,
        new["payload_uuid"].as_str().unwrap()
    );
}
