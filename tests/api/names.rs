//! Lists show names beside ids: an admin reading assignments, devices, classes, users,
//! schools, enrollment tokens or the audit log sees "7b" and "Keynote", not UUIDs.

use serde_json::{json, Value};

use crate::enrollment::school;
use crate::helpers::TestApp;

fn first<'a>(list: &'a Value, key: &str, value: &Value) -> &'a Value {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| &i[key] == value)
        .unwrap_or_else(|| panic!("no item with {key} = {value} in {list}"))
}

#[actix_web::test]
async fn an_admin_reads_names_beside_the_ids_in_every_list() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "names").await;
    let (_, me) = app.get("/api/v1/me").await;
    let (status, teacher) = app
        .post("/api/v1/users", json!({"name": "Frau Meyer", "email": "meyer@names.de", "role": "teacher", "school_id": school_id}))
        .await;
    assert_eq!(status, 201, "{teacher}");
    let (status, class) = app
        .post(
            &format!("/api/v1/schools/{school_id}/classes"),
            json!({"name": "7b", "school_year": "2026/27", "teacher_ids": [teacher["id"]]}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let (status, cart) = app
        .post(
            &format!("/api/v1/schools/{school_id}/groups"),
            json!({"name": "iPad-Koffer 2"}),
        )
        .await;
    assert_eq!(status, 201, "{cart}");
    let ipad = app.device(902);
    ipad.authenticate().await.unwrap();
    ipad.token_update(false).await.unwrap();
    app.place_device(ipad.udid.as_str(), &tenant, &school_id);
    for (path, id) in [("classes", &class["id"]), ("groups", &cart["id"])] {
        let (status, reply) = app
            .post(
                &format!("/api/v1/{path}/{}/devices", id.as_str().unwrap()),
                json!({"devices": [ipad.udid.as_str()]}),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let (_, keynote) = app
        .post("/api/v1/apps", json!({"tenant_id": tenant, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": "361285480", "licensed": false}))
        .await;
    let (status, created) = app
        .post("/api/v1/assignments", json!({"item_kind": "app", "item_id": keynote["id"], "target_kind": "class", "target_id": class["id"]}))
        .await;
    assert_eq!(status, 201, "{created}");
    let assignment_names = |a: &Value| {
        (
            a["item_name"].clone(),
            a["target_name"].clone(),
            a["school_name"].clone(),
            a["tenant_name"].clone(),
            a["created_by_name"].clone(),
        )
    };
    let expected = (
        json!("Keynote"),
        json!("7b"),
        json!("Gymnasium Nord"),
        json!("Authority names"),
        me["name"].clone(),
    );
    assert_eq!(assignment_names(&created), expected, "{created}");
    assert_eq!(created["item_id"], keynote["id"], "the ids stay");
    let (_, list) = app.get("/api/v1/assignments").await;
    assert_eq!(
        assignment_names(first(&list, "id", &created["id"])),
        expected
    );
    let (_, detail) = app
        .get(&format!(
            "/api/v1/assignments/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(assignment_names(&detail["assignment"]), expected);

    // Devices: authority, school, class and cart.
    let (_, devices) = app.get("/api/v1/devices").await;
    let d = first(&devices, "udid", &json!(ipad.udid.as_str()));
    assert_eq!(d["school_id"], json!(school_id));
    assert_eq!(
        (
            &d["tenant_name"],
            &d["school_name"],
            &d["class_names"],
            &d["group_names"]
        ),
        (
            &json!("Authority names"),
            &json!("Gymnasium Nord"),
            &json!(["7b"]),
            &json!(["iPad-Koffer 2"])
        ),
        "{d}"
    );
    let (_, one) = app
        .get(&format!("/api/v1/devices/{}", ipad.udid.as_str()))
        .await;
    assert_eq!(one["class_names"], json!(["7b"]), "{one}");

    // A class's teachers, users' schools, schools' authorities.
    let (_, c) = app
        .get(&format!(
            "/api/v1/classes/{}",
            class["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(c["teacher_ids"], json!([teacher["id"]]));
    assert_eq!(
        c["teachers"],
        json!([{"id": teacher["id"], "name": "Frau Meyer"}])
    );
    let (_, users) = app.get("/api/v1/users").await;
    let u = first(&users, "id", &teacher["id"]);
    assert_eq!(
        (&u["school_name"], &u["tenant_name"]),
        (&json!("Gymnasium Nord"), &json!("Authority names"))
    );
    let (_, schools) = app.get("/api/v1/schools").await;
    assert_eq!(
        first(&schools, "id", &json!(school_id))["tenant_name"],
        "Authority names"
    );

    // An enrollment token that puts devices into 7b.
    let (status, token) = app
        .post(
            &format!("/api/v1/schools/{school_id}/enrollment-tokens"),
            json!({"class_id": class["id"]}),
        )
        .await;
    assert_eq!(status, 201, "{token}");
    assert_eq!(token["class_name"], "7b");
    let (_, tokens) = app
        .get(&format!("/api/v1/schools/{school_id}/enrollment-tokens"))
        .await;
    assert_eq!(first(&tokens, "id", &token["id"])["class_name"], "7b");

    // The catalog: whose items they are.
    let (_, apps) = app.get("/api/v1/apps").await;
    assert_eq!(
        first(&apps, "id", &keynote["id"])["tenant_name"],
        "Authority names"
    );

    let (status, wifi) = app
        .post("/api/v1/profiles/from-template", json!({"template": "school-wifi", "school_id": school_id, "values": {"ssid": "Schulnetz", "password": "geheim-und-lang", "school_slug": "names"}}))
        .await;
    assert_eq!(status, 201, "{wifi}");
    let (_, profiles) = app.get("/api/v1/profiles").await;
    let p = first(&profiles, "id", &wifi["id"]);
    assert_eq!(
        (&p["school_name"], &p["tenant_name"]),
        (&json!("Gymnasium Nord"), &json!("Authority names")),
        "{p}"
    );

    // The audit log: who did it, where.
    let (_, audit) = app
        .get("/api/v1/audit?object_type=assignment&action=create")
        .await;
    let entry = first(&audit, "object_id", &created["id"]);
    assert_eq!(
        (
            &entry["actor_name"],
            &entry["school_name"],
            &entry["tenant_name"]
        ),
        (
            &me["name"],
            &json!("Gymnasium Nord"),
            &json!("Authority names")
        ),
        "{entry}"
    );
}
