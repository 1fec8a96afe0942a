//! The device list as a spreadsheet for the school board: the same filters and scope as
//! the JSON list, read back the way German Excel reads it.

use serde_json::json;

use crate::enrollment::school;
use crate::helpers::TestApp;
use crate::lessons::user;

/// The file as Excel sees it: BOM, then rows of `;`-separated cells (quotes undone).
pub(crate) fn read_as_excel(bytes: &[u8]) -> Vec<Vec<String>> {
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 with BOM");
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .from_reader(&bytes[3..]);
    reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

async fn export(
    app: &TestApp,
    token: &str,
    query: &str,
    accept: Option<&str>,
) -> (u16, String, Vec<u8>) {
    let mut req = app
        .client
        .get(app.url(&format!("/api/v1/devices{query}")))
        .bearer_auth(token);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.bytes().await.unwrap().to_vec())
}

#[actix_web::test]
async fn the_device_list_opens_in_german_excel_with_the_filters_and_scope_of_the_list() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school_id) = school(&app, "export").await;
    let (status, south) = app
        .post(
            &format!("/api/v1/tenants/{tenant}/schools"),
            json!({"name": "Gymnasium Süd"}),
        )
        .await;
    assert_eq!(status, 201, "{south}");
    let south = south["id"].as_str().unwrap().to_owned();
    let (status, class) = app
        .post(
            &format!("/api/v1/schools/{south}/classes"),
            json!({"name": "7b", "school_year": "2026/27"}),
        )
        .await;
    assert_eq!(status, 201, "{class}");
    let mut serials = Vec::new();
    for (n, place) in [(0, &south), (1, &south), (2, &school_id)] {
        let mut ipad = app.device(1900 + n);
        ipad.authenticate().await.unwrap();
        ipad.token_update(false).await.unwrap();
        crate::helpers::answer_first_inventory(&mut ipad).await;
        app.place_device(ipad.udid.as_str(), &tenant, place);
        serials.push(ipad.serial.clone());
    }
    app.post(
        &format!("/api/v1/classes/{}/devices", class["id"].as_str().unwrap()),
        json!({"devices": [serials[0]]}),
    )
    .await;
    // A name someone typed to make Excel run a formula stays text.
    let (status, renamed) = app
        .patch(
            &format!("/api/v1/devices/{}", serials[1]),
            json!({"name": "=HYPERLINK(\"http://evil\")"}),
        )
        .await;
    assert_eq!(status, 200, "{renamed}");

    let (status, kind, file) = export(
        &app,
        &app.admin_token,
        &format!("?format=csv&school_id={south}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/csv; charset=utf-8");
    let rows = read_as_excel(&file);
    assert_eq!(rows[0][0], "Seriennummer");
    assert!(
        rows[0].contains(&"Geräte-Wagen".to_string()),
        "{:?}",
        rows[0]
    );
    assert_eq!(
        rows.len(),
        3,
        "header and the two iPads of Gymnasium Süd: {rows:?}"
    );
    let col = |name: &str| rows[0].iter().position(|h| h == name).unwrap();
    let by_serial = |s: &str| {
        rows.iter()
            .find(|r| r[0] == s)
            .unwrap_or_else(|| panic!("{s}: {rows:?}"))
    };
    assert_eq!(by_serial(&serials[0])[col("Schule")], "Gymnasium Süd");
    assert_eq!(by_serial(&serials[0])[col("Klassen")], "7b");
    assert_eq!(by_serial(&serials[0])[col("iOS")], "18.1");
    assert_eq!(
        by_serial(&serials[1])[col("Name")],
        "'=HYPERLINK(\"http://evil\")"
    );
    let seen = &by_serial(&serials[0])[col("Zuletzt gesehen")];
    assert!(
        chrono::NaiveDateTime::parse_from_str(seen, "%d.%m.%Y %H:%M").is_ok(),
        "{seen}"
    );

    // The whole list by Accept header, the same rows as the JSON list.
    let (_, json_list) = app.get("/api/v1/devices?limit=500").await;
    let (status, _, file) = export(&app, &app.admin_token, "", Some("text/csv")).await;
    assert_eq!(status, 200);
    assert_eq!(
        read_as_excel(&file).len() - 1,
        json_list["items"].as_array().unwrap().len()
    );

    // A school admin exports their school only; a bad format is named.
    let (_, admin) = user(&app, json!({"name": "SL", "email": "sl@export.de", "role": "school_admin", "school_id": school_id})).await;
    let (status, _, file) = export(&app, &admin, "?format=csv", None).await;
    assert_eq!(status, 200);
    let rows = read_as_excel(&file);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], serials[2]);
    let (status, _, body) = export(&app, &admin, "?format=xlsx", None).await;
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, reply["field"].as_str()),
        (400, Some("format")),
        "{reply}"
    );
}
