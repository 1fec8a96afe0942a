//! Automated Device Enrollment, second half: placement rules, ADE profiles per school at
//! Apple, and simulated iPads going the whole way from Setup Assistant to
//! `DeviceConfigured` (machine info → profile → SCEP → Authenticate → TokenUpdate
//! awaiting configuration → initial commands → DeviceConfigured).

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use serde_json::json;
use tafel::ade::token::OAuthTokens;
use tafel::protocol::Udid;
use tafel_sim::ade::AdeSim;
use tafel_sim::server_token::encrypt_server_token;
use tafel_sim::setup::{self, AppleIdentity, DeviceCa};

use crate::enrollment::school;
use crate::helpers::TestApp;

const KEYNOTE_ID: i64 = 361285480;

fn tokens() -> OAuthTokens {
    OAuthTokens {
        consumer_key: "CK_enroll".into(),
        consumer_secret: "CS_enroll".into(),
        access_token: "AT_enroll".into(),
        access_secret: "AS_enroll".into(),
        access_token_expiry: Utc::now() + Duration::days(200),
    }
}

/// A server trusting the simulated device CA, syncing from a local ASM.
struct Ade {
    app: TestApp,
    sim: AdeSim,
    ca: DeviceCa,
    serials: Vec<String>,
    tenant: String,
    school: String,
    _anchors: tempfile::TempDir,
}

async fn ade(slug: &str, devices: usize, adjust: impl FnOnce(&mut tafel::config::Settings)) -> Ade {
    let sim = AdeSim::start(tokens()).unwrap();
    let serials = sim.add_devices(devices);
    let ca = DeviceCa::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let anchors = dir.path().join("device-ca.pem");
    std::fs::write(&anchors, ca.cert_pem().unwrap()).unwrap();
    let url = sim.url.clone();
    let app = TestApp::spawn_with(move |s| {
        s.ade.base_url = url;
        s.ade.machine_info_anchors = vec![anchors];
        s.ade.sync_minutes = 0;
        adjust(s);
    })
    .await;
    let (tenant, school) = school(&app, slug).await;
    let (status, token) = app
        .post(&format!("/api/v1/tenants/{tenant}/ade-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{token}");
    let cert =
        openssl::x509::X509::from_pem(token["cert_pem"].as_str().unwrap().as_bytes()).unwrap();
    let p7m = encrypt_server_token(&tokens(), &cert).unwrap();
    let (status, active) = crate::ade::put_p7m(&app, token["id"].as_str().unwrap(), &p7m).await;
    assert_eq!(status, 200, "{active}");
    Ade {
        app,
        sim,
        ca,
        serials,
        tenant,
        school,
        _anchors: dir,
    }
}

impl Ade {
    fn enroll_url(&self) -> String {
        self.app.url("/mdm/ade/enroll")
    }

    fn identity(&self, udid: &Udid) -> AppleIdentity {
        let key = tafel_sim::enroll::new_key().unwrap();
        self.ca.identity(udid.as_str(), &key).unwrap()
    }

    async fn sync(&self) -> serde_json::Value {
        let (status, sync) = self.app.post("/api/v1/ade/sync", json!({})).await;
        assert_eq!(status, 200, "{sync}");
        sync["items"][0].clone()
    }

    async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.app.put(path, body).await
    }

    /// Posts order numbers (CSV).
    async fn order_numbers(&self, csv: String) -> (u16, serde_json::Value) {
        let res = self
            .app
            .client
            .post(self.app.url(&format!(
                "/api/v1/tenants/{}/ade-order-numbers",
                self.tenant
            )))
            .bearer_auth(&self.app.admin_token)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        crate::helpers::json_reply(res).await
    }

    /// Posts machine info signed by `identity` for `serial`; returns status and body.
    async fn machine_info_bytes(
        &self,
        udid: &Udid,
        serial: &str,
        identity: &AppleIdentity,
    ) -> (u16, Vec<u8>) {
        let body = tafel::ade::machine_info::sign(
            &setup::machine_info(udid, serial),
            &identity.cert,
            &identity.key,
            &[],
        )
        .unwrap();
        self.post_machine_info(body).await
    }

    /// Posts a signed machine-info body as Setup Assistant does.
    async fn post_machine_info(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        let res = self
            .app
            .client
            .post(self.enroll_url())
            .header("content-type", "application/pkcs7-signature")
            .body(body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
    }

    /// Like [`Ade::machine_info_bytes`], the body as text (for error answers).
    async fn machine_info(
        &self,
        udid: &Udid,
        serial: &str,
        identity: &AppleIdentity,
    ) -> (u16, String) {
        let (status, body) = self.machine_info_bytes(udid, serial, identity).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// An iPad through Setup Assistant up to `DeviceConfigured` (Keynote known to its App
/// Store); returns it and the commands it executed.
async fn through_setup(
    t: &Ade,
    id: &Udid,
    serial: &str,
    apple: &AppleIdentity,
) -> (tafel_sim::device::SimDevice, Vec<String>) {
    through_setup_in(t, id, serial, apple, "de-DE").await
}

/// As [`through_setup`], Setup Assistant in `language` (a machine info body is good for
/// one identity: a second setup within the same second must differ in its bytes, as a
/// real iPad's do by their signing time).
async fn through_setup_in(
    t: &Ade,
    id: &Udid,
    serial: &str,
    apple: &AppleIdentity,
    language: &str,
) -> (tafel_sim::device::SimDevice, Vec<String>) {
    let client = reqwest::Client::new();
    let info = tafel::ade::machine_info::MachineInfo {
        language: Some(language.into()),
        ..setup::machine_info(id, serial)
    };
    let body = tafel::ade::machine_info::sign(&info, &apple.cert, &apple.key, &[]).unwrap();
    let mut ipad = setup::ade_enroll_with(
        &client,
        &t.enroll_url(),
        id.clone(),
        serial.to_owned(),
        body,
        None,
    )
    .await
    .unwrap();
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    let seen = setup::await_configuration(
        &mut ipad,
        StdDuration::from_secs(20),
        StdDuration::from_millis(50),
    )
    .await
    .unwrap();
    assert_eq!(
        seen.last().map(String::as_str),
        Some("DeviceConfigured"),
        "{seen:?}"
    );
    (ipad, seen)
}

/// Keynote assigned to the school, the first serial placed there and synced, and that
/// iPad enrolled through Setup Assistant (awaiting configuration), Keynote still
/// downloading on it.
async fn keynote_and_one_downloading_ipad(t: &Ade, n: usize) -> tafel_sim::device::SimDevice {
    let app = &t.app;
    let (_, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": t.tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    app.post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "school", "target_id": t.school}))
        .await;
    app.post(
        &format!("/api/v1/tenants/{}/ade-rules", t.tenant),
        json!({"school_id": t.school, "serials": [t.serials[0]]}),
    )
    .await;
    t.sync().await;
    let id = udid(n);
    let apple = t.identity(&id);
    let mut ipad = setup::ade_enroll(
        &reqwest::Client::new(),
        &t.enroll_url(),
        id,
        t.serials[0].clone(),
        &apple,
        None,
    )
    .await
    .unwrap();
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    ipad.downloading.insert("com.apple.Keynote".into());
    ipad
}

/// One reconciler pass now (the service runs them too; this one reports).
async fn reconcile_now(app: &TestApp) -> tafel::assign::reconcile::Report {
    crate::assignments::reconcile_at(app, Utc::now()).await
}

fn udid(n: usize) -> Udid {
    Udid::parse(&format!("00008103-ADE{n:013}")).unwrap()
}

#[actix_web::test]
async fn a_reset_ipad_comes_back_supervised_enrolled_in_its_cart_and_configured() {
    let t = ade("adefull", 5, |_| {}).await;
    let app = &t.app;
    // The school's initial configuration: Wi-Fi and Keynote for every iPad.
    let (_, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": t.school, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang", "school_slug": "adefull"}}))
        .await;
    let (status, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": t.tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    assert_eq!(status, 201, "{keynote}");
    for (kind, item) in [("profile", &wifi), ("app", &keynote)] {
        let (status, a) = app
            .post("/api/v1/assignments", json!({"item_kind": kind, "item_id": item["id"], "target_kind": "school", "target_id": t.school}))
            .await;
        assert_eq!(status, 201, "{a}");
    }
    let (_, cart) = app
        .post(
            &format!("/api/v1/schools/{}/groups", t.school),
            json!({"name": "Wagen 1", "kind": "cart"}),
        )
        .await;

    // The first three serials go to the school's cart by rule; a sync places them and
    // gives them the school's ADE profile at Apple.
    let (status, rule) = app
        .post(&format!("/api/v1/tenants/{}/ade-rules", t.tenant), json!({"school_id": t.school, "group_id": cart["id"], "serials": &t.serials[..3], "description": "Wagen 1"}))
        .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["placed"], 0, "nothing synced yet");
    let sync = t.sync().await;
    assert_eq!(sync["placed"], 3, "{sync}");
    assert_eq!(sync["profiles_defined"], 1, "{sync}");
    assert_eq!(sync["profiles_assigned"], 3, "{sync}");
    let uuid = t
        .sim
        .profile_of(&t.serials[0])
        .unwrap()
        .profile_uuid
        .unwrap();
    assert_eq!(
        t.sim.profile_of(&t.serials[3]).unwrap().profile_uuid,
        None,
        "not placed, no profile"
    );
    let profile = t.sim.profile(&uuid).unwrap();
    assert_eq!(profile["url"], t.enroll_url());
    assert_eq!(profile["is_supervised"], true);
    assert_eq!(profile["is_mandatory"], true);
    assert_eq!(profile["is_mdm_removable"], false);
    assert_eq!(profile["await_device_configured"], true);
    assert_eq!(profile["department"], "Gymnasium Nord");
    assert_eq!(
        (profile["language"].as_str(), profile["region"].as_str()),
        (Some("de"), Some("DE"))
    );
    assert!(profile["skip_setup_items"]
        .as_array()
        .unwrap()
        .contains(&json!("AppleID")));
    // A second sync has nothing to define or assign.
    let again = t.sync().await;
    assert_eq!(
        (
            again["profiles_defined"].as_u64(),
            again["profiles_assigned"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // The iPad in Setup Assistant.
    let id = udid(1);
    let apple = t.identity(&id);
    let (ipad, seen) = through_setup(&t, &id, &t.serials[0], &apple).await;
    assert!(
        seen.contains(&"InstallProfile".to_owned())
            && seen.contains(&"InstallApplication".to_owned())
            && seen.contains(&"ManagedApplicationList".to_owned()),
        "{seen:?}"
    );
    assert!(ipad.apps.contains("com.apple.Keynote"));
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", t.serials[0])).await;
    assert_eq!(dev["school_id"], t.school.as_str());
    assert_eq!(dev["enrollment_status"], "active");
    assert_eq!(dev["setup"]["outcome"], "configured", "{dev}");
    assert_eq!(dev["setup"]["missing"], json!([]));
    let (_, in_cart) = app
        .get(&format!(
            "/api/v1/devices?group_id={}",
            cart["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        in_cart["items"].as_array().unwrap().len(),
        3,
        "the rule put all three into the cart: {in_cart}"
    );

    // Its identity renewed over SCEP is not an erase: nothing is forgotten.
    let mut ipad = ipad;
    let new_key = tafel_sim::enroll::new_key().unwrap();
    let renewed = tafel_sim::enroll::scep_renew(
        &reqwest::Client::new(),
        &app.url("/scep"),
        &ipad.cert,
        &ipad.key,
        &new_key,
    )
    .await
    .unwrap();
    ipad.set_identity(renewed, new_key);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    let (_, audit) = app.get("/api/v1/audit?action=reset").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(0), "{audit}");
    assert_eq!(
        reconcile_now(app).await.installs,
        0,
        "nothing to install again after a renewal"
    );

    // A replayed machine-info body changes nothing for the enrolled iPad: the same bytes
    // (its signing time included) are good for one identity only.
    // (Another language than at setup, so these bytes are new whatever the clock says.)
    let info = tafel::ade::machine_info::MachineInfo {
        language: Some("en-GB".into()),
        ..setup::machine_info(&id, &t.serials[0])
    };
    let body = tafel::ade::machine_info::sign(&info, &apple.cert, &apple.key, &[]).unwrap();
    for round in ["first", "replayed while its challenge is unused"] {
        let (status, _) = t.post_machine_info(body.clone()).await;
        assert_eq!(status, 200, "{round}");
    }
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", t.serials[0])).await;
    assert_eq!(dev["enrollment_status"], "active");
    assert_eq!(dev["setup"]["outcome"], "configured");
    assert!(ipad.idle().await.is_ok(), "its identity still works");

    // Next week the iPad is erased: Setup Assistant again, a new identity, and the
    // configuration comes again (tafel forgot what the erased iPad had).
    let (_, seen) = through_setup_in(&t, &id, &t.serials[0], &apple, "fr-FR").await;
    assert!(seen.contains(&"InstallProfile".to_owned()), "{seen:?}");
    // The old identity no longer speaks for the device.
    assert_eq!(
        ipad.idle()
            .await
            .err()
            .map(|e| e.to_string().contains("403")),
        Some(true)
    );

    // A changed profile is defined anew and assigned again to the school's serials.
    let (status, changed) = t
        .put(&format!("/api/v1/schools/{}/ade", t.school), json!({"profile": {"support_phone_number": "+49 4551 951-0", "support_email_address": "it@schulen-segeberg.de"}}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["revision"], 2);
    let sync = t.sync().await;
    assert_eq!(
        (
            sync["profiles_defined"].as_u64(),
            sync["profiles_assigned"].as_u64()
        ),
        (Some(1), Some(3)),
        "{sync}"
    );
    let new_uuid = t
        .sim
        .profile_of(&t.serials[1])
        .unwrap()
        .profile_uuid
        .unwrap();
    assert_ne!(new_uuid, uuid);
    assert_eq!(
        t.sim.profile(&new_uuid).unwrap()["support_phone_number"],
        "+49 4551 951-0"
    );
}

#[actix_web::test]
async fn devices_are_placed_by_order_number_and_unknown_or_untrusted_ones_are_refused() {
    let t = ade("adeorder", 4, |_| {}).await;
    let app = &t.app;
    t.sync().await;
    let (status, rule) = app
        .post(
            &format!("/api/v1/tenants/{}/ade-rules", t.tenant),
            json!({"school_id": t.school, "order_number": "MX2027-0042"}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    // Order numbers come from Apple School Manager's device export.
    let csv = format!(
        "serial;order_number\n{};MX2027-0042\n{};MX2027-0042\n",
        t.serials[0], t.serials[1]
    );
    let (status, imported) = t.order_numbers(csv).await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(imported["placed"], 2);
    let (_, unplaced) = app
        .get(&format!(
            "/api/v1/tenants/{}/ade-devices?unplaced=true",
            t.tenant
        ))
        .await;
    assert_eq!(unplaced["items"].as_array().unwrap().len(), 2, "{unplaced}");
    // A bad row stores nothing.
    let (status, _) = t
        .order_numbers(format!(
            "serial,order_number\n{},X\nNOSUCHSERIAL,X\n",
            t.serials[2]
        ))
        .await;
    assert_eq!(status, 422);
    let (_, d) = app
        .get(&format!(
            "/api/v1/tenants/{}/ade-devices?unplaced=true&limit=1",
            t.tenant
        ))
        .await;
    assert_eq!(
        d["items"][0]["order_number"],
        serde_json::Value::Null,
        "{d}"
    );
    // The page ends with a cursor, in the shape of every other list, and it leads on.
    let cursor = d["next_cursor"].as_str().expect("a next page");
    let first = d["items"][0]["serial_number"].as_str().expect("a serial");
    assert_eq!(cursor, first, "{d}");
    let (status, next) = app
        .get(&format!(
            "/api/v1/tenants/{}/ade-devices?unplaced=true&limit=1&cursor={cursor}",
            t.tenant
        ))
        .await;
    assert_eq!(status, 200, "{next}");
    let second = next["items"][0]["serial_number"]
        .as_str()
        .expect("a serial");
    assert!(second > first, "{first} then {second}");
    // Bad rules name the field.
    for (body, field) in [
        (json!({"school_id": t.school}), "serials"),
        (
            json!({"school_id": t.school, "serials": ["not a serial!"]}),
            "serials",
        ),
        (
            json!({"school_id": "nope", "order_number": "1"}),
            "school_id",
        ),
        (
            json!({"school_id": t.school, "order_number": "1", "class_id": "nope"}),
            "class_id",
        ),
    ] {
        let (status, e) = app
            .post(&format!("/api/v1/tenants/{}/ade-rules", t.tenant), body)
            .await;
        assert_eq!((status, e["field"].as_str()), (400, Some(field)), "{e}");
    }

    let devices_before = app.count("devices");
    // A serial Apple never assigned to tafel.
    let id = udid(7);
    let apple = t.identity(&id);
    let (status, text) = t.machine_info(&id, "C02NOTOURS01", &apple).await;
    assert_eq!(status, 403);
    assert!(text.contains("not assigned to this MDM server"), "{text}");
    // One of ours, but no rule or import gave it a school.
    let (status, text) = t.machine_info(&id, &t.serials[3], &apple).await;
    assert_eq!(status, 403);
    assert!(text.contains("has no school"), "{text}");
    // Machine info signed by someone other than Apple's device CA.
    let stranger = DeviceCa::generate().unwrap();
    let key = tafel_sim::enroll::new_key().unwrap();
    let forged = stranger.identity(id.as_str(), &key).unwrap();
    let (status, text) = t.machine_info(&id, &t.serials[0], &forged).await;
    assert_eq!(status, 403);
    assert!(text.contains("not trusted"), "{text}");
    // Not signed at all.
    let res = app
        .client
        .post(t.enroll_url())
        .header("content-type", "application/pkcs7-signature")
        .body(tafel::ade::machine_info::to_plist(&setup::machine_info(
            &id,
            &t.serials[0],
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.count("devices"),
        devices_before,
        "refusals store nothing"
    );
    assert_eq!(app.count("device_setup"), 0);
    assert_eq!(app.count("scep_challenges"), 0);

    // A placed serial gets its school's profile, signed, not removable, with a
    // one-time SCEP challenge.
    let (status, signed) = t.machine_info_bytes(&id, &t.serials[0], &apple).await;
    assert_eq!(status, 200);
    assert_eq!(app.count("device_setup"), 1);
    let xml = tafel::pki::cms::signed_content(&signed).unwrap();
    let profile = plist::Value::from_reader_xml(&xml[..]).unwrap();
    let profile = profile.as_dictionary().unwrap();
    assert_eq!(profile["PayloadRemovalDisallowed"].as_boolean(), Some(true));
    let payloads = profile["PayloadContent"].as_array().unwrap();
    let scep = payloads
        .iter()
        .filter_map(plist::Value::as_dictionary)
        .find(|p| p["PayloadType"].as_string() == Some("com.apple.security.scep"))
        .unwrap();
    assert!(scep["PayloadContent"].as_dictionary().unwrap()["Challenge"]
        .as_string()
        .is_some_and(|c| c.len() >= 32));
    assert_eq!(app.count("scep_challenges"), 1);
}

#[actix_web::test]
async fn a_new_devices_school_admits_serials_without_a_school() {
    let t = ade("adenew", 2, |s| {
        s.ade.new_devices_school = Some("school-new-devices".into())
    })
    .await;
    {
        use diesel::prelude::*;
        use tafel::db::schema::schools;
        let mut conn = t.app.state.db.get().unwrap();
        let at = Utc::now().naive_utc();
        diesel::insert_into(schools::table)
            .values((
                schools::id.eq("school-new-devices"),
                schools::tenant_id.eq(&t.tenant),
                schools::name.eq("Neue Geräte"),
                schools::timezone.eq("Europe/Berlin"),
                schools::created_at.eq(at),
                schools::updated_at.eq(at),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    let sync = t.sync().await;
    // Apple sends serials without a school to tafel too: with the new-devices
    // school's profile.
    assert_eq!(sync["profiles_assigned"], 2, "{sync}");
    assert!(t
        .sim
        .profile_of(&t.serials[1])
        .unwrap()
        .profile_uuid
        .is_some());
    let id = udid(9);
    let apple = t.identity(&id);
    let (_, seen) = through_setup(&t, &id, &t.serials[1], &apple).await;
    let inventory = [
        "DeviceInformation",
        "InstalledApplicationList",
        "ProfileList",
        "SecurityInfo",
    ];
    let apart: Vec<&String> = seen
        .iter()
        .filter(|c| !inventory.contains(&c.as_str()))
        .collect();
    assert_eq!(
        apart,
        ["DeviceConfigured"],
        "nothing assigned to the new-devices school, only its first inventory asked"
    );
    let (_, dev) = t
        .app
        .get(&format!("/api/v1/devices/{}", t.serials[1]))
        .await;
    assert_eq!(dev["school_id"], "school-new-devices");

    // A serial Apple never assigned to this server (an OTA-style body from any Apple
    // device) is not admitted through the new-devices school.
    let stranger = udid(10);
    let before = t.app.count("devices");
    let (status, body) = t
        .machine_info(&stranger, "F9STRANGER01", &t.identity(&stranger))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not assigned to this MDM server"), "{body}");
    assert_eq!(before, t.app.count("devices"));
}

#[actix_web::test]
async fn a_machine_info_is_good_for_one_identity_and_resets_only_what_came_through_ade() {
    let t = ade("adeonce", 2, |_| {}).await;
    let (status, rule) = t
        .app
        .post(
            &format!("/api/v1/tenants/{}/ade-rules", t.tenant),
            json!({"school_id": t.school, "serials": [t.serials[0], t.serials[1]]}),
        )
        .await;
    assert_eq!(status, 201, "{rule}");
    t.sync().await;
    let client = reqwest::Client::new();

    // An iPad through Setup Assistant with one signed machine info.
    let id = udid(20);
    let apple = t.identity(&id);
    // (Another language than at setup, so these bytes are new whatever the clock says.)
    let info = tafel::ade::machine_info::MachineInfo {
        language: Some("en-GB".into()),
        ..setup::machine_info(&id, &t.serials[0])
    };
    let body = tafel::ade::machine_info::sign(&info, &apple.cert, &apple.key, &[]).unwrap();
    let ipad = setup::ade_enroll_with(
        &client,
        &t.enroll_url(),
        id.clone(),
        t.serials[0].clone(),
        body.clone(),
        None,
    )
    .await
    .unwrap();
    // The same body again: refused, nothing handed out, the iPad untouched.
    let challenges = t.app.count("scep_challenges");
    let res = client
        .post(t.enroll_url())
        .header("content-type", "application/pkcs7-signature")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("used already"));
    assert_eq!(challenges, t.app.count("scep_challenges"));
    assert!(ipad.idle().await.is_ok());

    // Once Apple's sync reports the iPad fetched its profile again (it was reset), the
    // same body may enroll it once more. (Apple's times have whole seconds.)
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    assert!(t.sim.mark_pushed(&t.serials[0]));
    t.sync().await;
    let again = setup::ade_enroll_with(
        &client,
        &t.enroll_url(),
        id,
        t.serials[0].clone(),
        body,
        None,
    )
    .await
    .unwrap();
    assert!(again.idle().await.is_ok());

    // An iPad enrolled through a school's link is not reset by a machine info.
    let link = crate::enrollment::token(&t.app, &t.school, json!({})).await;
    let linked_udid = udid(21);
    let linked = tafel_sim::enroll::enroll(
        &client,
        &t.app
            .url(&format!("/enroll/{}", link["token"].as_str().unwrap())),
        linked_udid.clone(),
        t.serials[1].clone(),
        None,
    )
    .await
    .unwrap();
    let apple = t.identity(&linked_udid);
    let err = setup::ade_enroll(
        &client,
        &t.enroll_url(),
        linked_udid.clone(),
        t.serials[1].clone(),
        &apple,
        None,
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(
        err.contains("403") && err.contains("enrollment link"),
        "{err}"
    );
    assert!(
        linked.idle().await.is_ok(),
        "the enrolled iPad keeps working"
    );
    // Released by an admin and erased, it comes through Setup Assistant (Apple hands it
    // its profile again, which the sync reports).
    let (status, _) = t
        .app
        .post(&format!("/api/v1/devices/{linked_udid}/release"), json!({}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(StdDuration::from_millis(1100)).await;
    assert!(t.sim.mark_pushed(&t.serials[1]));
    t.sync().await;
    setup::ade_enroll(
        &client,
        &t.enroll_url(),
        linked_udid,
        t.serials[1].clone(),
        &apple,
        None,
    )
    .await
    .unwrap();
}

#[actix_web::test]
async fn a_school_releases_after_its_timeout_and_the_gap_is_reported() {
    let t = ade("adegap", 1, |s| s.reconcile.automatic = false).await;
    let app = &t.app;
    let (_, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": t.tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    let (_, pages) = app
        .post("/api/v1/apps", json!({"tenant_id": t.tenant, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726", "licensed": false}))
        .await;
    let mut required = String::new();
    for (i, item) in [&keynote, &pages].into_iter().enumerate() {
        let (_, a) = app
            .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": item["id"], "target_kind": "school", "target_id": t.school}))
            .await;
        if i == 0 {
            required = a["id"].as_str().unwrap().to_owned();
        }
    }
    // Only Keynote must be there before release; at most 10 minutes.
    let (status, s) = t
        .put(
            &format!("/api/v1/schools/{}/ade", t.school),
            json!({"release_timeout_minutes": 10, "release_requires": [required]}),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let (status, e) = t
        .put(
            &format!("/api/v1/schools/{}/ade", t.school),
            json!({"release_requires": ["no-such-assignment"]}),
        )
        .await;
    assert_eq!(
        (status, e["field"].as_str()),
        (400, Some("release_requires"))
    );
    app.post(
        &format!("/api/v1/tenants/{}/ade-rules", t.tenant),
        json!({"school_id": t.school, "serials": [t.serials[0]]}),
    )
    .await;
    t.sync().await;

    let id = udid(3);
    let apple = t.identity(&id);
    let client = reqwest::Client::new();
    let ipad = setup::ade_enroll(
        &client,
        &t.enroll_url(),
        id.clone(),
        t.serials[0].clone(),
        &apple,
        None,
    )
    .await
    .unwrap();
    let now = Utc::now();
    let r = crate::assignments::reconcile_at(app, now).await;
    assert_eq!((r.installs, r.released), (2, 0));
    // The iPad cannot install Keynote (no space), Pages is still pending: not released…
    let first = ipad.idle().await.unwrap().unwrap();
    let second = ipad
        .answer(&first, tafel_sim::device::Answer::NotNow)
        .await
        .unwrap();
    assert!(second.is_some());
    assert_eq!(
        crate::assignments::reconcile_at(app, now + Duration::minutes(5))
            .await
            .released,
        0
    );
    // …until the school's ten minutes are over: released, and the gap is on record.
    let r = crate::assignments::reconcile_at(app, now + Duration::minutes(11)).await;
    assert_eq!(r.released, 1);
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", id.as_str())).await;
    assert_eq!(dev["setup"]["outcome"], "timeout", "{dev}");
    assert_eq!(
        dev["setup"]["missing"],
        json!(["app:com.apple.Keynote"]),
        "only what the school requires counts"
    );
    let (_, audit) = app.get("/api/v1/audit?action=release_incomplete").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}

#[actix_web::test]
async fn school_admins_set_their_own_schools_setup_and_authorities_own_the_rules() {
    use crate::lessons::{as_user, user};
    let t = ade("adeauth", 1, |_| {}).await;
    let app = &t.app;
    let (_, other) = app
        .post(
            &format!("/api/v1/tenants/{}/schools", t.tenant),
            json!({"name": "Grundschule Süd"}),
        )
        .await;
    let other = other["id"].as_str().unwrap();
    let (_, admin) = user(app, json!({"name": "SL", "email": "sl@adeauth.de", "role": "school_admin", "school_id": t.school})).await;
    let (_, teacher) = user(
        app,
        json!({"name": "T", "email": "t@adeauth.de", "role": "teacher", "school_id": t.school}),
    )
    .await;
    let own = format!("/api/v1/schools/{}/ade", t.school);
    let body = json!({"profile": {"skip_setup_items": ["AppleID", "Siri"]}});
    let (status, s) = as_user(app, &admin, "PUT", &own, Some(body.clone())).await;
    assert_eq!(status, 200, "{s}");
    let (status, s) = as_user(app, &admin, "GET", &own, None).await;
    assert_eq!(
        (status, s["profile"]["skip_setup_items"].clone()),
        (200, json!(["AppleID", "Siri"]))
    );
    let (status, _) = as_user(
        app,
        &admin,
        "PUT",
        &format!("/api/v1/schools/{other}/ade"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 404, "another school is out of sight");
    let (status, _) = as_user(app, &teacher, "PUT", &own, Some(body)).await;
    assert_eq!(status, 403);
    // Removable management is the authority's decision, not the school's.
    let (status, e) = as_user(
        app,
        &admin,
        "PUT",
        &own,
        Some(json!({"profile": {"is_mdm_removable": true}})),
    )
    .await;
    assert_eq!(status, 403, "{e}");
    let (_, audit) = app.get("/api/v1/audit?object_type=ade_profile").await;
    assert_eq!(
        audit["items"].as_array().map(Vec::len),
        Some(1),
        "refused changes leave no trace: {audit}"
    );
    let (status, _) = t
        .put(&own, json!({"profile": {"is_mdm_removable": true}}))
        .await;
    assert_eq!(status, 200, "a district admin may");
    let rules = format!("/api/v1/tenants/{}/ade-rules", t.tenant);
    let (status, _) = as_user(
        app,
        &admin,
        "POST",
        &rules,
        Some(json!({"school_id": t.school, "order_number": "1"})),
    )
    .await;
    assert_eq!(status, 403, "rules are the authority's");
    let (status, _) = as_user(
        app,
        &admin,
        "GET",
        &format!("/api/v1/tenants/{}/ade-devices", t.tenant),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (_, audit) = app.get("/api/v1/audit?object_type=ade_profile").await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(2), "{audit}");
}

#[actix_web::test]
async fn an_app_counts_once_the_ipad_reports_it_installed() {
    use crate::assignments::{connect, reconcile_at};
    let t = ade("adeslow", 1, |s| s.reconcile.automatic = false).await;
    let app = &t.app;
    let mut ipad = keynote_and_one_downloading_ipad(&t, 4).await;
    crate::helpers::answer_first_inventory(&mut ipad).await;
    let now = Utc::now();
    assert_eq!(reconcile_at(app, now).await.installs, 1);
    assert_eq!(connect(&mut ipad).await, ["InstallApplication"]);
    // Accepted is not installed: the iPad is asked how it is going, and waits.
    let r = reconcile_at(app, now).await;
    assert_eq!((r.status_checks, r.released), (1, 0));
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);
    let r = reconcile_at(app, now).await;
    assert_eq!(
        (r.status_checks, r.released),
        (0, 0),
        "not asked again at once"
    );
    assert!(
        r.recheck
            .iter()
            .any(|(_, at)| *at <= Utc::now() + Duration::seconds(6)),
        "looked at again within seconds: {:?}",
        r.recheck
    );
    // Downloaded: the next answer releases it.
    ipad.downloading.clear();
    let later = Utc::now() + Duration::seconds(6);
    assert_eq!(reconcile_at(app, later).await.status_checks, 1);
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);
    assert_eq!(reconcile_at(app, later).await.released, 1);
    assert_eq!(connect(&mut ipad).await, ["DeviceConfigured"]);
}

#[actix_web::test]
async fn a_downloading_app_holds_the_ipad_until_it_is_installed() {
    // The running service (not hand-driven passes): an answer that still says
    // "Installing" wakes no one, so the reconciler must come back by itself.
    let t = ade("adedl", 1, |_| {}).await;
    let app = &t.app;
    let mut ipad = keynote_and_one_downloading_ipad(&t, 5).await;
    // A while of connecting: its first inventory, installed, asked, "Installing" — and
    // no release.
    let mut seen = Vec::new();
    let until = std::time::Instant::now() + StdDuration::from_millis(3000);
    while std::time::Instant::now() < until {
        let mut next = ipad.idle().await.unwrap();
        while let Some(c) = next {
            seen.push(c.request_type.clone());
            let a = ipad.execute(&c);
            next = ipad.answer(&c, a).await.unwrap();
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(
        seen.contains(&"ManagedApplicationList".to_owned()),
        "{seen:?}"
    );
    assert!(!seen.contains(&"DeviceConfigured".to_owned()), "{seen:?}");
    // Downloaded: the next question finds it installed, and the iPad is released.
    ipad.downloading.clear();
    let rest = setup::await_configuration(
        &mut ipad,
        StdDuration::from_secs(15),
        StdDuration::from_millis(50),
    )
    .await
    .unwrap();
    assert_eq!(
        rest.last().map(String::as_str),
        Some("DeviceConfigured"),
        "{rest:?}"
    );
    let (_, dev) = app.get(&format!("/api/v1/devices/{}", t.serials[0])).await;
    assert_eq!(dev["setup"]["outcome"], "configured", "{dev}");
}
