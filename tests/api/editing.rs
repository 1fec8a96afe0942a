//! Typos are no longer permanent: authorities, schools, classes, carts and users are
//! renamed and deleted, devices retired — within the caller's scope, audited, and
//! refused (with nothing changed) where something still depends on the object.

use chrono::Utc;
use serde_json::{json, Value};

use crate::assignments::{connect, reconcile_at};
use crate::enrollment::school;
use crate::helpers::TestApp;
use crate::organisation::user;

const KEYNOTE_ID: i64 = 361285480;

/// The audit entries of one object and action, newest first.
async fn audit(app: &TestApp, object_id: &str, action: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!(
            "/api/v1/audit?object_id={object_id}&action={action}"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn class(app: &TestApp, school: &str, name: &str, year: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/schools/{school}/classes"),
        json!({"name": name, "school_year": year}),
    )
    .await
}

async fn cart(app: &TestApp, school: &str, name: &str) -> (u16, Value) {
    app.post(
        &format!("/api/v1/schools/{school}/groups"),
        json!({"name": name}),
    )
    .await
}

/// A device's id, by UDID.
async fn reply_id(app: &TestApp, udid: &str) -> String {
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    id(&d)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_renamed_class_shows_its_new_name_and_the_audit_log_has_before_and_after() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "rename").await;
    let (status, c) = class(&app, &school_id, "7b", "2026/27").await;
    assert_eq!(status, 201, "{c}");
    let class_id = id(&c);
    let path = format!("/api/v1/classes/{class_id}");

    let (status, now) = app.patch(&path, json!({"name": " 7c "})).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["class"]["name"], "7c");
    assert_eq!(now["class"]["school_year"], "2026/27", "absent = unchanged");
    let (_, got) = app.get(&path).await;
    assert_eq!(got["class"]["name"], "7c");
    let entries = audit(&app, &class_id, "update").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        entries[0]["summary"],
        json!({"before": {"name": "7b"}, "after": {"name": "7c"}}),
        "only the changed field"
    );

    // Bad bodies answer 400 naming the field and store nothing.
    for (body, field) in [
        (json!({"name": "   "}), Some("name")),
        (json!({"name": null}), Some("name")),
        (json!({"school_year": "2026/28"}), Some("school_year")),
        (json!({"name": 7}), Some("name")),
        (json!({"name": "7d", "teacher": "x"}), Some("teacher")),
    ] {
        let (status, reply) = app.patch(&path, body.clone()).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert_eq!(reply["field"].as_str(), field, "{body} → {reply}");
    }
    let (_, got) = app.get(&path).await;
    assert_eq!(got["class"]["name"], "7c");
    assert_eq!(audit(&app, &class_id, "update").await.len(), 1);

    // Moving it to the next school year.
    let (status, now) = app.patch(&path, json!({"school_year": "2027/28"})).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["class"]["school_year"], "2027/28");

    // Schools: name and time zone, validated as at create.
    let school_path = format!("/api/v1/schools/{school_id}");
    let (status, reply) = app.patch(&school_path, json!({"timezone": "Berlin"})).await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("timezone")));
    let (status, s) = app
        .patch(
            &school_path,
            json!({"name": "Gymnasium Süd", "timezone": "Europe/Vienna"}),
        )
        .await;
    assert_eq!(status, 200, "{s}");
    let (_, s) = app.get(&school_path).await;
    assert_eq!(
        (s["name"].as_str(), s["timezone"].as_str()),
        (Some("Gymnasium Süd"), Some("Europe/Vienna"))
    );
    assert_eq!(
        audit(&app, &school_id, "update").await[0]["summary"],
        json!({"before": {"name": "Gymnasium Nord", "timezone": "Europe/Berlin"}, "after": {"name": "Gymnasium Süd", "timezone": "Europe/Vienna"}})
    );

    // Carts: name and kind.
    let (_, g) = cart(&app, &school_id, "Koffer 1").await;
    let (status, g2) = app
        .patch(
            &format!("/api/v1/groups/{}", id(&g)),
            json!({"name": "Koffer A", "kind": "group"}),
        )
        .await;
    assert_eq!(status, 200, "{g2}");
    assert_eq!(
        (g2["group"]["name"].as_str(), g2["group"]["kind"].as_str()),
        (Some("Koffer A"), Some("group"))
    );
    let (status, reply) = app
        .patch(
            &format!("/api/v1/groups/{}", id(&g)),
            json!({"kind": "trolley"}),
        )
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("kind")));
}

#[actix_web::test]
async fn duplicate_names_are_refused_at_create_and_at_rename() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "dup").await;

    // Classes: unique per school and school year.
    let (_, a) = class(&app, &school_id, "7a", "2026/27").await;
    let (_, b) = class(&app, &school_id, "7b", "2026/27").await;
    let (status, reply) = class(&app, &school_id, "7a", "2026/27").await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("class 7a 2026/27 exists already"),
        "{reply}"
    );
    let (status, reply) = app
        .patch(
            &format!("/api/v1/classes/{}", id(&b)),
            json!({"name": "7a"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    let (status, next_year) = class(&app, &school_id, "7a", "2027/28").await;
    assert_eq!(
        status, 201,
        "another school year may have a 7a: {next_year}"
    );
    let (status, reply) = app
        .patch(
            &format!("/api/v1/classes/{}", id(&next_year)),
            json!({"school_year": "2026/27"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    // Renaming to its own name changes nothing and is no conflict.
    let (status, _) = app
        .patch(
            &format!("/api/v1/classes/{}", id(&a)),
            json!({"name": "7a"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(audit(&app, &id(&a), "update").await.len(), 0);

    // Carts: unique per school.
    let (_, k1) = cart(&app, &school_id, "Koffer 1").await;
    let (_, k2) = cart(&app, &school_id, "Koffer 2").await;
    assert_eq!(cart(&app, &school_id, "Koffer 1").await.0, 409);
    let (status, reply) = app
        .patch(
            &format!("/api/v1/groups/{}", id(&k2)),
            json!({"name": "Koffer 1"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    let (_, still) = app.get(&format!("/api/v1/groups/{}", id(&k2))).await;
    assert_eq!(still["group"]["name"], "Koffer 2");
    assert_eq!(
        app.get(&format!("/api/v1/groups/{}", id(&k1))).await.1["group"]["name"],
        "Koffer 1"
    );

    // Schools: unique per authority.
    let schools = app.count("schools");
    let (status, reply) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Gymnasium Nord"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    assert_eq!(app.count("schools"), schools);
    let (status, other) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Grundschule Ost"}),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, reply) = app
        .patch(
            &format!("/api/v1/schools/{}", id(&other)),
            json!({"name": "Gymnasium Nord"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    // The database itself refuses a duplicate, on either backend.
    {
        use diesel::prelude::*;
        use tafel::db::schema::schools;
        let mut conn = app.state.db.get().unwrap();
        let at = chrono::Utc::now().naive_utc();
        let raced = diesel::insert_into(schools::table)
            .values((
                schools::id.eq("raced"),
                schools::tenant_id.eq(&tenant),
                schools::name.eq("Gymnasium Nord"),
                schools::timezone.eq("Europe/Berlin"),
                schools::created_at.eq(at),
                schools::updated_at.eq(at),
            ))
            .execute(&mut *conn);
        assert!(raced.is_err(), "{raced:?}");
    }
    let (other_tenant, _) = school(&app, "dup-two").await;
    assert_eq!(
        app.get(&format!("/api/v1/schools?tenant_id={other_tenant}"))
            .await
            .1["items"][0]["name"],
        "Gymnasium Nord",
        "another authority may have a school of that name"
    );

    // Authorities: the slug is unique.
    let (status, reply) = app
        .patch(
            &format!("/api/v1/tenants/{other_tenant}"),
            json!({"slug": "dup"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");
}

#[actix_web::test]
async fn scoped_admins_edit_only_what_they_may_create() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "own").await;
    let (foreign_tenant, foreign_school) = school(&app, "foreign").await;
    let (_, own_class) = class(&app, &school_id, "5a", "2026/27").await;
    let (_, foreign_class) = class(&app, &foreign_school, "5a", "2026/27").await;
    let (_, foreign_cart) = cart(&app, &foreign_school, "Koffer").await;
    let (_, authority_admin) = user(
        &app,
        json!({"name": "AA", "email": "aa@own.de", "role": "authority_admin", "tenant_id": tenant}),
    )
    .await;
    let (_, school_admin) = user(
        &app,
        json!({"name": "SA", "email": "sa@own.de", "role": "school_admin", "school_id": school_id}),
    )
    .await;
    let (teacher_id, teacher) = user(
        &app,
        json!({"name": "T", "email": "t@own.de", "role": "teacher", "school_id": school_id}),
    )
    .await;
    let (foreign_teacher, _) = user(&app, json!({"name": "FT", "email": "t@foreign.de", "role": "teacher", "school_id": foreign_school})).await;
    let patch = |token: &str, path: String, body: Value| {
        let token = token.to_owned();
        let app = &app;
        async move {
            app.send(reqwest::Method::PATCH, &path, &token, Some(body))
                .await
                .0
        }
    };
    let delete = |token: &str, path: String| {
        let token = token.to_owned();
        let app = &app;
        async move {
            app.send(reqwest::Method::DELETE, &path, &token, None)
                .await
                .0
        }
    };
    let rename = json!({"name": "Neu"});

    // A school admin: their school's classes, never another school's (404), not the
    // school itself (schools are the authority's to make).
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/classes/{}", id(&own_class)),
            rename.clone()
        )
        .await,
        200
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/classes/{}", id(&foreign_class)),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        delete(
            &school_admin,
            format!("/api/v1/classes/{}", id(&foreign_class))
        )
        .await,
        404
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/groups/{}", id(&foreign_cart)),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/schools/{foreign_school}"),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/schools/{school_id}"),
            rename.clone()
        )
        .await,
        403
    );
    assert_eq!(
        delete(&school_admin, format!("/api/v1/schools/{school_id}")).await,
        403
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/users/{teacher_id}"),
            rename.clone()
        )
        .await,
        200
    );
    assert_eq!(
        patch(
            &school_admin,
            format!("/api/v1/users/{foreign_teacher}"),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        delete(&school_admin, format!("/api/v1/users/{foreign_teacher}")).await,
        404
    );

    // An authority admin: their authority and its schools, not another's, and only the
    // district deletes authorities.
    assert_eq!(
        patch(
            &authority_admin,
            format!("/api/v1/schools/{school_id}"),
            json!({"timezone": "Europe/Vienna"})
        )
        .await,
        200
    );
    assert_eq!(
        patch(
            &authority_admin,
            format!("/api/v1/schools/{foreign_school}"),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        patch(
            &authority_admin,
            format!("/api/v1/tenants/{tenant}"),
            rename.clone()
        )
        .await,
        200
    );
    assert_eq!(
        patch(
            &authority_admin,
            format!("/api/v1/tenants/{foreign_tenant}"),
            rename.clone()
        )
        .await,
        404
    );
    assert_eq!(
        delete(
            &authority_admin,
            format!("/api/v1/tenants/{foreign_tenant}")
        )
        .await,
        404
    );
    assert_eq!(
        delete(&authority_admin, format!("/api/v1/tenants/{tenant}")).await,
        403
    );

    // A teacher changes nothing here.
    assert_eq!(
        patch(
            &teacher,
            format!("/api/v1/classes/{}", id(&own_class)),
            rename.clone()
        )
        .await,
        404,
        "not their class"
    );
    assert_eq!(
        patch(
            &teacher,
            format!("/api/v1/schools/{school_id}"),
            rename.clone()
        )
        .await,
        403
    );
    assert_eq!(
        patch(
            &teacher,
            format!("/api/v1/users/{teacher_id}"),
            rename.clone()
        )
        .await,
        403
    );
    assert_eq!(
        delete(&teacher, format!("/api/v1/classes/{}", id(&own_class))).await,
        404
    );

    // Nothing the refused requests named was changed.
    let (_, fc) = app
        .get(&format!("/api/v1/classes/{}", id(&foreign_class)))
        .await;
    assert_eq!(fc["class"]["name"], "5a");
    let (_, ft) = app.get(&format!("/api/v1/tenants/{foreign_tenant}")).await;
    assert_eq!(ft["name"], "Authority foreign");
    let (_, s) = app.get(&format!("/api/v1/schools/{school_id}")).await;
    assert_eq!(s["name"], "Gymnasium Nord");
}

#[actix_web::test]
async fn a_school_or_authority_with_devices_cannot_be_deleted_an_empty_one_can() {
    let app = TestApp::spawn().await;
    let (tenant, school_id) = school(&app, "full").await;
    class(&app, &school_id, "7b", "2026/27").await;
    class(&app, &school_id, "7c", "2026/27").await;
    user(
        &app,
        json!({"name": "T", "email": "t@full.de", "role": "teacher", "school_id": school_id}),
    )
    .await;
    let ipad = app.device(1801);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    let (audit_before, schools_before) = (app.count("audit_log"), app.count("schools"));

    let (status, reply) = app.delete(&format!("/api/v1/schools/{school_id}")).await;
    assert_eq!(status, 409, "{reply}");
    let message = reply["message"].as_str().unwrap();
    for part in ["devices (1)", "users (1)", "classes (2)"] {
        assert!(message.contains(part), "{message}");
    }
    let (status, reply) = app.delete(&format!("/api/v1/tenants/{tenant}")).await;
    assert_eq!(status, 409, "{reply}");
    assert!(
        reply["message"].as_str().unwrap().contains("schools (1)"),
        "{reply}"
    );
    assert_eq!(
        (app.count("audit_log"), app.count("schools")),
        (audit_before, schools_before)
    );
    assert_eq!(
        app.get(&format!("/api/v1/schools/{school_id}")).await.0,
        200
    );

    // The slug names the iPads' enrollment profile: it stays while there are devices.
    let (status, reply) = app
        .patch(
            &format!("/api/v1/tenants/{tenant}"),
            json!({"slug": "voll"}),
        )
        .await;
    assert_eq!(status, 409, "{reply}");

    // An authority made by mistake, with a school and an enrollment link: the school
    // goes with its link, then the authority.
    let (status, t) = app.post("/api/v1/tenants", json!({"name": "Tippfehler", "slug": "tipfehler", "push_topic": "com.apple.mgmt.External.x"})).await;
    assert_eq!(status, 201, "{t}");
    let t = id(&t);
    let (status, reply) = app.patch(&format!("/api/v1/tenants/{t}"), json!({"slug": "tippfehler", "name": "Tippfehler GmbH", "reenroll_requires_release": true})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        (
            reply["slug"].as_str(),
            reply["reenroll_requires_release"].as_bool()
        ),
        (Some("tippfehler"), Some(true))
    );
    let (_, policy) = app
        .get(&format!("/api/v1/tenants/{t}/enrollment-policy"))
        .await;
    assert_eq!(policy["reenroll_requires_release"], true);
    let (_, s) = app
        .post(
            &format!("/api/v1/tenants/{t}/schools"),
            json!({"name": "Schule"}),
        )
        .await;
    let s = id(&s);
    let (status, token) = app
        .post(&format!("/api/v1/schools/{s}/enrollment-tokens"), json!({}))
        .await;
    assert_eq!(status, 201, "{token}");
    assert_eq!(app.delete(&format!("/api/v1/tenants/{t}")).await.0, 409);
    let (status, reply) = app.delete(&format!("/api/v1/schools/{s}")).await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(app.get(&format!("/api/v1/schools/{s}")).await.0, 404);
    assert_eq!(audit(&app, &s, "delete").await.len(), 1);
    let (status, reply) = app.delete(&format!("/api/v1/tenants/{t}")).await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(app.get(&format!("/api/v1/tenants/{t}")).await.0, 404);
    let entry = &audit(&app, &t, "delete").await[0];
    assert_eq!(entry["summary"]["before"]["name"], "Tippfehler GmbH");
}

#[actix_web::test]
async fn deleting_a_class_or_cart_removes_their_apps_from_the_ipads_that_stay_in_the_school() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "gone").await;
    let (_, c) = class(&app, &school_id, "7b", "2026/27").await;
    let (_, k) = cart(&app, &school_id, "Koffer 1").await;
    let (teacher, _) = user(
        &app,
        json!({"name": "T", "email": "t@gone.de", "role": "teacher", "school_id": school_id}),
    )
    .await;
    let (status, reply) = app
        .put(
            &format!("/api/v1/classes/{}/teachers", id(&c)),
            json!({"teacher_ids": [teacher]}),
        )
        .await;
    assert_eq!(status, 204, "{reply}");
    let mut ipad = app.device(1802);
    ipad.store.insert(KEYNOTE_ID, "com.apple.Keynote".into());
    ipad.store.insert(361309726, "com.apple.Pages".into());
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    for path in [
        format!("/api/v1/classes/{}/devices", id(&c)),
        format!("/api/v1/groups/{}/devices", id(&k)),
    ] {
        assert_eq!(
            app.post(&path, json!({"devices": [ipad.udid.as_str()]}))
                .await
                .0,
            200
        );
    }
    let (_, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE_ID.to_string(), "licensed": false}))
        .await;
    let (_, pages) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Pages", "bundle_id": "com.apple.Pages", "adam_id": "361309726", "licensed": false}))
        .await;
    let (status, a) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": id(&c)}))
        .await;
    assert_eq!(status, 201, "{a}");
    let (status, b) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": pages["id"], "target_kind": "group", "target_id": id(&k)}))
        .await;
    assert_eq!(status, 201, "{b}");
    assert_eq!(reconcile_at(&app, Utc::now()).await.installs, 2);
    let mut done = connect(&mut ipad).await;
    done.sort();
    assert_eq!(done, ["InstallApplication", "InstallApplication"]);
    assert!(ipad.apps.contains("com.apple.Keynote") && ipad.apps.contains("com.apple.Pages"));
    // The iPad reports them installed (not only accepted).
    app.enqueue(&[ipad.udid.as_str()], "ManagedApplicationList", None)
        .await;
    assert_eq!(connect(&mut ipad).await, ["ManagedApplicationList"]);

    // The class goes: Keynote leaves the iPad, Pages (the cart's) stays.
    let (status, reply) = app.delete(&format!("/api/v1/classes/{}", id(&c))).await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(app.get(&format!("/api/v1/classes/{}", id(&c))).await.0, 404);
    assert_eq!(app.count("class_teachers"), 0);
    let (_, assignment) = app.get(&format!("/api/v1/assignments/{}", id(&a))).await;
    assert!(
        !assignment["assignment"]["deleted_at"].is_null(),
        "{assignment}"
    );
    assert_eq!(
        audit(&app, &id(&c), "delete").await[0]["summary"]["assignments_deleted"],
        1
    );
    let r = reconcile_at(&app, Utc::now()).await;
    assert_eq!((r.installs, r.removals), (0, 1));
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);
    assert!(!ipad.apps.contains("com.apple.Keynote"));
    assert!(ipad.apps.contains("com.apple.Pages"));

    // The cart goes: Pages leaves too. The iPad stays in its school.
    assert_eq!(
        app.delete(&format!("/api/v1/groups/{}", id(&k))).await.0,
        204
    );
    assert_eq!(reconcile_at(&app, Utc::now()).await.removals, 1);
    assert_eq!(connect(&mut ipad).await, ["RemoveApplication"]);
    assert!(!ipad.apps.contains("com.apple.Pages"));
    let (_, d) = app.get(&format!("/api/v1/devices/{}", ipad.udid)).await;
    assert_eq!(d["school_id"].as_str(), Some(school_id.as_str()));
    assert_eq!(d["enrollment_status"], "active");
    assert_eq!(app.count("class_devices") + app.count("group_devices"), 0);
}

#[actix_web::test]
async fn a_retired_ipad_is_refused_leaves_the_list_and_keeps_its_history() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "retire").await;
    let (_, c) = class(&app, &school_id, "7b", "2026/27").await;
    let (_, teacher) = user(
        &app,
        json!({"name": "T", "email": "t@retire.de", "role": "teacher", "school_id": school_id}),
    )
    .await;
    let mut ipad = app.device(1803);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    let udid = ipad.udid.to_string();
    app.post(
        &format!("/api/v1/classes/{}/devices", id(&c)),
        json!({"devices": [udid]}),
    )
    .await;
    assert_eq!(connect(&mut ipad).await.len(), 0);
    let answered = app.enqueue(&[&udid], "DeviceInformation", None).await;
    assert_eq!(connect(&mut ipad).await, ["DeviceInformation"]);

    // Renamed: the iPad is told its new name; a typo is fixed the same way.
    let (status, reply) = app
        .patch(
            &format!("/api/v1/devices/{udid}"),
            json!({"name": "iPad 7b-14"}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["name"], "iPad 7b-14");
    assert_eq!(connect(&mut ipad).await, ["Settings"]);
    let (status, reply) = app
        .patch(&format!("/api/v1/devices/{udid}"), json!({"name": ""}))
        .await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("name")));
    let renamed = audit(&app, reply_id(&app, &udid).await.as_str(), "update").await;
    assert_eq!(
        (
            &renamed[0]["summary"]["before"]["name"],
            &renamed[0]["summary"]["after"]["name"]
        ),
        (&json!("iPad DMPTEST01803"), &json!("iPad 7b-14"))
    );

    let pending = app.enqueue(&[&udid], "ProfileList", None).await;

    // Teachers retire nothing.
    let (status, _) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/devices/{udid}"),
            &teacher,
            None,
        )
        .await;
    assert_eq!(status, 404);

    let (status, reply) = app.delete(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(status, 204, "{reply}");
    assert!(
        ipad.idle().await.unwrap_err().to_string().contains("403"),
        "its identity no longer speaks for it"
    );
    let refused = ipad.authenticate().await.unwrap_err().to_string();
    assert!(
        refused.contains("403") && refused.contains("retired"),
        "not even to enroll again: {refused}"
    );
    assert_eq!(app.status_of(&udid, &pending).await, "cancelled");
    assert_eq!(
        app.status_of(&udid, &answered).await,
        "acknowledged",
        "history stays"
    );
    let (_, list) = app.get("/api/v1/devices").await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["udid"] != udid.as_str()),
        "{list}"
    );
    let (_, retired) = app.get("/api/v1/devices?status=retired").await;
    assert_eq!(retired["items"][0]["udid"], udid.as_str());
    let (_, d) = app.get(&format!("/api/v1/devices/{udid}")).await;
    assert_eq!(d["enrollment_status"], "retired");
    let (_, cl) = app.get(&format!("/api/v1/classes/{}", id(&c))).await;
    assert_eq!(cl["devices"], 0);
    assert_eq!(app.count("class_devices"), 0);
    let device_id = d["id"].as_str().unwrap();
    assert_eq!(audit(&app, device_id, "release").await.len(), 1);
    // Again: nothing more happens.
    assert_eq!(app.delete(&format!("/api/v1/devices/{udid}")).await.0, 204);
    assert_eq!(audit(&app, device_id, "release").await.len(), 1);
}

#[actix_web::test]
async fn users_are_renamed_and_deleted_by_disabling_never_themselves() {
    let app = TestApp::spawn().await;
    let (_, school_id) = school(&app, "people").await;
    let (meyer, meyer_token) = user(&app, json!({"name": "Frau Meyr", "email": "meyr@people.de", "role": "teacher", "school_id": school_id})).await;
    user(&app, json!({"name": "Herr Schulz", "email": "schulz@people.de", "role": "teacher", "school_id": school_id})).await;
    let (sa, sa_token) = user(&app, json!({"name": "SA", "email": "sa@people.de", "role": "school_admin", "school_id": school_id})).await;
    let path = format!("/api/v1/users/{meyer}");

    let (status, u) = app
        .patch(
            &path,
            json!({"name": "Frau Meyer", "email": " Meyer@People.de"}),
        )
        .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(
        (u["name"].as_str(), u["email"].as_str()),
        (Some("Frau Meyer"), Some("meyer@people.de"))
    );
    assert_eq!(
        audit(&app, &meyer, "update").await[0]["summary"],
        json!({"before": {"name": "Frau Meyr", "email": "meyr@people.de"}, "after": {"name": "Frau Meyer", "email": "meyer@people.de"}})
    );
    let (status, reply) = app.patch(&path, json!({"email": "schulz@people.de"})).await;
    assert_eq!(status, 409, "{reply}");
    let (status, reply) = app.patch(&path, json!({"email": "kein-at"})).await;
    assert_eq!((status, reply["field"].as_str()), (400, Some("email")));
    assert_eq!(app.get(&path).await.1["email"], "meyer@people.de");

    // Deleting disables: the token stops working, the user is still on record.
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/v1/me", &meyer_token, None)
            .await
            .0,
        200
    );
    let (status, reply) = app
        .send(reqwest::Method::DELETE, &path, &sa_token, None)
        .await;
    assert_eq!(status, 204, "{reply}");
    assert_eq!(
        app.send(reqwest::Method::GET, "/api/v1/me", &meyer_token, None)
            .await
            .0,
        401
    );
    let (_, u) = app.get(&path).await;
    assert!(!u["disabled_at"].is_null(), "{u}");
    let (status, reply) = app
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/users/{sa}"),
            &sa_token,
            None,
        )
        .await;
    assert_eq!(status, 409, "{reply}");
    assert!(app.get(&format!("/api/v1/users/{sa}")).await.1["disabled_at"].is_null());
}
