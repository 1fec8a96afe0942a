//! Catalog items are edited and deleted, and the iPads follow: a typo in a name is
//! fixed, a second "Keynote" is refused, a deleted app or profile leaves every iPad
//! where nothing else wants it, and a profile edited by upload becomes a new version.

use base64::Engine;
use serde_json::{json, Value};
use tafel_sim::device::SimDevice;

use crate::assignments::{connect, reconcile_at};
use crate::enrollment::school;
use crate::helpers::TestApp;
use crate::lessons::user;

const KEYNOTE_ID: i64 = 361285480;

/// A profile restricting the camera, with its outer PayloadUUID.
fn restrictions(identifier: &str, uuid: &str, camera: bool) -> String {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>{identifier}</string>
<key>PayloadUUID</key><string>{uuid}</string>
<key>PayloadDisplayName</key><string>Unterricht</string>
<key>PayloadContent</key><array><dict>
<key>PayloadType</key><string>com.apple.applicationaccess</string>
<key>PayloadVersion</key><integer>1</integer>
<key>PayloadIdentifier</key><string>{identifier}.restrictions</string>
<key>PayloadUUID</key><string>5B1F6C1E-2A57-4D0B-9E7A-0C9E2B7A4F11</string>
<key>allowCamera</key><{camera}/>
</dict></array>
</dict></plist>"#
    );
    base64::engine::general_purpose::STANDARD.encode(xml)
}

/// Three enrolled iPads of one school, their first inventory answered.
async fn school_with_ipads(app: &TestApp, slug: &str) -> (String, String, Vec<SimDevice>) {
    let (tenant, school_id) = school(app, slug).await;
    let mut ipads = Vec::new();
    for n in 0..3 {
        let mut ipad = app.device(970 + n);
        ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
        ipad.authenticate().await.unwrap();
        ipad.token_update(false).await.unwrap();
        app.place_device(ipad.udid.as_str(), &tenant, &school_id);
        connect(&mut ipad).await;
        ipads.push(ipad);
    }
    (tenant, school_id, ipads)
}

fn keynote(tenant: &str) -> Value {
    json!({"tenant_id": tenant, "name": "Keynte", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false})
}

#[actix_web::test]
async fn an_app_is_renamed_refused_twice_and_deleted_from_every_ipad() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id, mut ipads) = school_with_ipads(&app, "edit").await;
    let (other_tenant, _) = school(&app, "edit-other").await;
    let (status, k) = app.post("/api/v1/apps", keynote(&tenant)).await;
    assert_eq!(status, 201, "{k}");
    let id = k["id"].as_str().unwrap().to_owned();

    // The same bundle id again, in the same authority or district-wide: 409, nothing stored.
    let apps_before = app.count("apps");
    let (status, twin) = app.post("/api/v1/apps", keynote(&tenant)).await;
    assert_eq!(status, 409, "{twin}");
    assert!(twin["message"].as_str().unwrap().contains(&id), "{twin}");
    let mut district = keynote(&tenant);
    district.as_object_mut().unwrap().remove("tenant_id");
    assert_eq!(app.post("/api/v1/apps", district).await.0, 409);
    assert_eq!(app.count("apps"), apps_before);
    // Another authority may have its own.
    assert_eq!(
        app.post("/api/v1/apps", keynote(&other_tenant)).await.0,
        201
    );

    // The typo is fixed; the audit log holds before and after.
    let url = format!("/api/v1/apps/{id}");
    let (status, fixed) = app.patch(&url, json!({"name": "Keynote"})).await;
    assert_eq!(status, 200, "{fixed}");
    assert_eq!(app.get(&url).await.1["name"], "Keynote");
    let (_, audit) = app
        .get(&format!("/api/v1/audit?action=update&object_id={id}"))
        .await;
    assert_eq!(
        audit["items"][0]["summary"]["before"]["name"], "Keynte",
        "{audit}"
    );
    assert_eq!(
        audit["items"][0]["summary"]["after"]["name"], "Keynote",
        "{audit}"
    );
    // What would change what is installed is another app; bad values name their field.
    for (body, field) in [
        (json!({"bundle_id": "com.apple.Pages"}), None),
        (json!({"name": "  "}), Some("name")),
    ] {
        let (status, reply) = app.patch(&url, body).await;
        assert_eq!(status, 400, "{reply}");
        if let Some(f) = field {
            assert_eq!(reply["field"], f, "{reply}");
        }
    }
    assert_eq!(
        app.get(&url).await.1["name"],
        "Keynote",
        "a refused change stores nothing"
    );

    // A school admin sees the authority's app but may not change it; another
    // authority's admin does not see it.
    let (_, school_admin) = user(&app, json!({"name": "SL", "email": "sl@edit.de", "role": "school_admin", "school_id": school_id})).await;
    let (_, foreign) = user(&app, json!({"name": "AA", "email": "aa@edit-other.de", "role": "authority_admin", "tenant_id": other_tenant})).await;
    let send = |token: String, method: reqwest::Method| {
        let app = &app;
        let url = url.clone();
        async move {
            app.send(method, &url, &token, Some(json!({"name": "X"})))
                .await
                .0
        }
    };
    assert_eq!(
        send(school_admin.clone(), reqwest::Method::PATCH).await,
        403
    );
    assert_eq!(send(foreign.clone(), reqwest::Method::PATCH).await, 404);
    assert_eq!(send(foreign, reqwest::Method::DELETE).await, 404);
    assert_eq!(send(school_admin, reqwest::Method::DELETE).await, 403);

    // Keynote goes to the school's iPads.
    let (status, _) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": id, "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(status, 201);
    let now = chrono::Utc::now();
    assert_eq!(reconcile_at(&app, now).await.installs, 3);
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["InstallApplication"]);
    }

    // Deleted: gone from the catalog and from every iPad; its assignment with it.
    let (status, done) = app.delete(&url).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["assignments_deleted"], 1);
    assert_eq!(app.get(&url).await.0, 404);
    let (_, list) = app.get(&format!("/api/v1/apps?tenant_id={tenant}")).await;
    assert!(!list.to_string().contains(&id), "{list}");
    let r = reconcile_at(&app, now + chrono::Duration::seconds(1)).await;
    assert_eq!((r.installs, r.removals), (0, 3));
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["RemoveApplication"]);
        assert!(!ipad.apps.contains("com.apple.Keynote"));
    }
    // Nothing can be assigned or edited any more; it may be added anew.
    let (status, reply) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": id, "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("item_id")),
        "{reply}"
    );
    assert_eq!(app.patch(&url, json!({"name": "Keynote"})).await.0, 404);
    assert_eq!(app.post("/api/v1/apps", keynote(&tenant)).await.0, 201);
    let (_, audit) = app
        .get(&format!("/api/v1/audit?action=delete&object_id={id}"))
        .await;
    assert_eq!(
        audit["items"][0]["summary"]["before"]["bundle_id"], "com.apple.Keynote",
        "{audit}"
    );
}

#[actix_web::test]
async fn an_uploaded_profile_gets_a_new_version_and_leaves_when_deleted() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id, mut ipads) = school_with_ipads(&app, "prof").await;
    let identifier = "de.schule-prof.unterricht";
    let uuid = "7C8E1C2A-3B4D-4E5F-8A9B-0C1D2E3F4A5B";
    let (status, p) = app
        .post(
            "/api/v1/profiles",
            json!({"tenant_id": tenant, "payload_base64": restrictions(identifier, uuid, false)}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    let id = p["id"].as_str().unwrap().to_owned();
    let url = format!("/api/v1/profiles/{id}");

    // A second profile with the identifier: 409.
    let before = app.count("profiles");
    let (status, twin) = app
        .post("/api/v1/profiles", json!({"tenant_id": tenant, "payload_base64": restrictions(identifier, "0D6A4B7E-1111-4222-8333-944455556666", true)}))
        .await;
    assert_eq!(status, 409, "{twin}");
    assert_eq!(app.count("profiles"), before);

    let (status, _) = app
        .post("/api/v1/assignments", json!({"item_kind": "profile", "item_id": id, "target_kind": "school", "target_id": school_id}))
        .await;
    assert_eq!(status, 201);
    let now = chrono::Utc::now();
    assert_eq!(reconcile_at(&app, now).await.installs, 3);
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["InstallProfile"]);
    }

    // Another identifier is another profile: refused, nothing changes.
    let (status, reply) = app
        .patch(
            &url,
            json!({"payload_base64": restrictions("de.other", uuid, true)}),
        )
        .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("payload")),
        "{reply}"
    );
    assert_eq!(app.get(&url).await.1["payload_uuid"], uuid);

    // The school allows the camera again but keeps the PayloadUUID in its file: tafel
    // gives the new content a new version, and every iPad gets it at its next connect.
    let (status, changed) = app
        .patch(&url, json!({"payload_base64": restrictions(identifier, uuid, true), "name": "Unterricht (Kamera)"}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Unterricht (Kamera)");
    let version = changed["payload_uuid"].as_str().unwrap().to_owned();
    assert_ne!(version, uuid);
    // The same file again: the same content, no new version.
    let (_, again) = app
        .patch(
            &url,
            json!({"payload_base64": restrictions(identifier, uuid, true)}),
        )
        .await;
    assert_eq!(again["payload_uuid"], version.as_str());
    let r = reconcile_at(&app, now + chrono::Duration::seconds(1)).await;
    assert_eq!((r.installs, r.removals), (3, 0));
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["InstallProfile"]);
        let held = &ipad.profile_payloads[identifier];
        assert_eq!(held["PayloadUUID"].as_string(), Some(version.as_str()));
    }

    // Deleted: removed from every iPad.
    let (status, done) = app.delete(&url).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["assignments_deleted"], 1);
    let r = reconcile_at(&app, now + chrono::Duration::seconds(2)).await;
    assert_eq!((r.installs, r.removals), (0, 3));
    for ipad in &mut ipads {
        assert_eq!(connect(ipad).await, ["RemoveProfile"]);
        assert!(!ipad.profiles.contains(identifier));
    }
    assert_eq!(app.get(&url).await.0, 404);
}

#[actix_web::test]
async fn a_school_admin_renders_the_templates_but_sends_no_content_of_their_own() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "tpl").await;
    let (_, school_admin) = user(
        &app,
        json!({"name": "SL", "email": "sl@tpl.de", "role": "school_admin", "school_id": school_id}),
    )
    .await;
    let (_, authority_admin) = user(
        &app,
        json!({"name": "AA", "email": "aa@tpl.de", "role": "authority_admin", "tenant_id": tenant}),
    )
    .await;
    let (status, wifi) = app
        .send(
            reqwest::Method::POST,
            "/api/v1/profiles/from-template",
            &school_admin,
            Some(json!({"template": "school-wifi", "school_id": school_id, "values": {"ssid": "Schulnetz", "password": "erstes-passwort"}})),
        )
        .await;
    assert_eq!(status, 201, "{wifi}");
    let url = format!("/api/v1/profiles/{}", wifi["id"].as_str().unwrap());
    let identifier = wifi["identifier"].as_str().unwrap();
    let version = wifi["payload_uuid"].clone();

    // Any content under the profile's identifier (a root certificate, a proxy): not for
    // a school admin, who may not upload profiles either. Nothing changes.
    let foreign = restrictions(identifier, "7C8E1C2A-3B4D-4E5F-8A9B-0C1D2E3F4A5B", true);
    let (status, reply) = app
        .send(
            reqwest::Method::PATCH,
            &url,
            &school_admin,
            Some(json!({"payload_base64": foreign})),
        )
        .await;
    assert_eq!(status, 403, "{reply}");
    assert_eq!(app.get(&url).await.1["payload_uuid"], version);
    // The template with new values: a new version.
    let (status, changed) = app
        .send(
            reqwest::Method::PATCH,
            &url,
            &school_admin,
            Some(json!({"values": {"ssid": "Schulnetz", "password": "zweites-passwort"}})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_ne!(changed["payload_uuid"], version);
    assert_eq!(changed["template"], "school-wifi");
    // The authority's admin may replace it with a file: then it is no template's rendering.
    let (status, replaced) = app
        .send(
            reqwest::Method::PATCH,
            &url,
            &authority_admin,
            Some(json!({"payload_base64": foreign})),
        )
        .await;
    assert_eq!(status, 200, "{replaced}");
    assert!(replaced["template"].is_null(), "{replaced}");
    let (status, reply) = app
        .patch(
            &url,
            json!({"values": {"ssid": "X", "password": "drittes-passwort"}}),
        )
        .await;
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("values")),
        "{reply}"
    );
}
