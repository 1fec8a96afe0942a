//! The service desk's ready-made reports: failed installs, iPads not seen, what ends
//! soon — scoped, paged, and as spreadsheets German Excel opens.

use diesel::prelude::*;
use serde_json::json;

use crate::assignments::{connect, reconcile_at};
use crate::device_trust::enrolled;
use crate::exports::read_as_excel;
use crate::helpers::TestApp;
use crate::lessons::user;

/// A report as JSON for `token`.
async fn report(app: &TestApp, token: &str, path: &str) -> (u16, serde_json::Value) {
    app.send(reqwest::Method::GET, path, token, None).await
}

/// A report as a spreadsheet: (status, content type, disposition, rows as Excel reads them).
async fn report_csv(app: &TestApp, path: &str) -> (u16, String, String, Vec<Vec<String>>) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(&app.admin_token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let header = |h: &str| {
        res.headers()
            .get(h)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    let bytes = res.bytes().await.unwrap();
    (status, kind, disposition, read_as_excel(&bytes))
}

/// Connects `ipad` and answers every InstallProfile with the error an iPad gives for a
/// profile it cannot read; everything else it executes.
async fn connect_failing_profiles(ipad: &mut tafel_sim::device::SimDevice) {
    use tafel_sim::device::{error_chain, Answer};
    let mut next = ipad.idle().await.unwrap();
    while let Some(cmd) = next {
        let answer = if cmd.request_type == "InstallProfile" {
            Answer::Error(error_chain(
                4001,
                "MCProfileErrorDomain",
                "Das Profil konnte nicht gelesen werden.",
            ))
        } else {
            ipad.execute(&cmd)
        };
        next = ipad.answer(&cmd, answer).await.unwrap();
    }
}

#[actix_web::test]
async fn a_failed_install_is_listed_for_its_school_until_an_install_fixes_it() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school) = crate::device_trust::school_with_wifi_and_keynote(&app, "rep").await;
    let (_, elsewhere) = crate::enrollment::school(&app, "rep-other").await;
    let (_, other_admin) = user(&app, json!({"name": "SA", "email": "sa@rep-other.de", "role": "school_admin", "school_id": elsewhere})).await;
    let (_, school_admin) = user(
        &app,
        json!({"name": "SA", "email": "sa@rep.de", "role": "school_admin", "school_id": school}),
    )
    .await;
    let (_, teacher) = user(
        &app,
        json!({"name": "T", "email": "t@rep.de", "role": "teacher", "school_id": school}),
    )
    .await;
    let mut failing = enrolled(&app, 5200).await;
    let mut fine = enrolled(&app, 5201).await;
    for ipad in [&failing, &fine] {
        app.place_device(ipad.udid.as_str(), &tenant, &school);
    }
    reconcile_at(&app, chrono::Utc::now()).await;
    connect_failing_profiles(&mut failing).await;
    connect(&mut fine).await;

    let path = "/api/v1/reports/failed-installs";
    let (status, page) = report(&app, &school_admin, path).await;
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "only the iPad that failed: {page}");
    let row = &items[0];
    assert_eq!(row["device"]["udid"], failing.udid.as_str());
    assert_eq!(row["device"]["school"], "Gymnasium Nord");
    assert_eq!(row["request_type"], "InstallProfile");
    assert!(
        row["item"].as_str().unwrap().starts_with("profile:"),
        "{row}"
    );
    assert_eq!(row["error"], "Das Profil konnte nicht gelesen werden.");
    assert!(page["next_cursor"].is_null());

    // Another school's admin, or a district admin asking for that school, sees none;
    // teachers do not read reports.
    let (status, page) = report(&app, &other_admin, path).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 0));
    let (_, page) = app.get(&format!("{path}?school_id={elsewhere}")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    let (status, e) = report(&app, &teacher, path).await;
    assert_eq!(status, 403, "{e}");
    // Bad input is named.
    for bad in [
        "?days=0",
        "?days=9999",
        "?limit=0",
        "?format=xml",
        "?colour=red",
        "?cursor=nonsense",
    ] {
        let (status, e) = app.get(&format!("{path}{bad}")).await;
        assert_eq!(status, 400, "{bad}: {e}");
    }

    // The same as a spreadsheet, as German Excel reads it.
    let (status, kind, disposition, rows) = report_csv(&app, path).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/csv; charset=utf-8");
    assert!(
        disposition.contains("fehlgeschlagene-installationen-"),
        "{disposition}"
    );
    assert_eq!(rows[0][0], "Seriennummer");
    assert_eq!(rows[0][6], "Meldung des iPads");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][2], "Gymnasium Nord");
    assert_eq!(rows[1][6], "Das Profil konnte nicht gelesen werden.");

    // The profile is sent again and installed: the failure is history.
    {
        use tafel::db::schema::command_queue;
        // The failure lies an hour back, so the reconciler's next attempt is due.
        let mut conn = app.state.db.get().unwrap();
        let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).naive_utc();
        diesel::update(command_queue::table.filter(command_queue::status.eq("error")))
            .set(command_queue::answered_at.eq(hour_ago))
            .execute(&mut *conn)
            .unwrap();
    }
    let mut round = 0;
    loop {
        reconcile_at(&app, chrono::Utc::now() + chrono::Duration::hours(round)).await;
        let done = connect(&mut failing).await;
        let (_, page) = report(&app, &school_admin, path).await;
        if page["items"].as_array().unwrap().is_empty() {
            break;
        }
        round += 1;
        assert!(
            round < 6,
            "the profile was not sent again ({done:?}): {page}"
        );
    }
}

#[actix_web::test]
async fn ipads_not_seen_since_the_holidays_are_one_report_away() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (tenant, school) = crate::enrollment::school(&app, "unseen").await;
    let (_, school_admin) = user(
        &app,
        json!({"name": "SA", "email": "sa@unseen.de", "role": "school_admin", "school_id": school}),
    )
    .await;
    let quiet = enrolled(&app, 5300).await;
    let busy = enrolled(&app, 5301).await;
    for ipad in [&quiet, &busy] {
        app.place_device(ipad.udid.as_str(), &tenant, &school);
    }
    let summer = (chrono::Utc::now() - chrono::Duration::days(45)).naive_utc();
    app.set_device_times(quiet.udid.as_str(), summer);

    let (status, page) = report(&app, &school_admin, "/api/v1/reports/unseen").await;
    assert_eq!(status, 200, "{page}");
    let udids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap())
        .collect();
    assert_eq!(udids, [quiet.udid.as_str()], "{page}");
    // 60 days back: nobody.
    let (_, page) = report(&app, &school_admin, "/api/v1/reports/unseen?days=60").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    let (status, kind, disposition, rows) = report_csv(&app, "/api/v1/reports/unseen").await;
    assert_eq!((status, kind.as_str()), (200, "text/csv; charset=utf-8"));
    assert!(disposition.contains("nicht-gesehen-"), "{disposition}");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "Seriennummer");
}

#[actix_web::test]
async fn certificates_and_tokens_that_end_soon_are_listed_for_their_authority() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (north, _) = crate::enrollment::school(&app, "end-north").await;
    let (south, _) = crate::enrollment::school(&app, "end-south").await;
    let (_, north_admin) = user(&app, json!({"name": "AA", "email": "aa@end-north.de", "role": "authority_admin", "tenant_id": north})).await;
    let (_, south_admin) = user(&app, json!({"name": "AA", "email": "aa@end-south.de", "role": "authority_admin", "tenant_id": south})).await;
    let now = chrono::Utc::now().naive_utc();
    {
        use tafel::db::schema::{ade_tokens, push_certificates, vpp_tokens};
        let mut conn = app.state.db.get().unwrap();
        diesel::insert_into(push_certificates::table)
            .values((
                push_certificates::tenant_id.eq(&north),
                push_certificates::topic.eq("com.apple.mgmt.External.end-north"),
                push_certificates::not_after.eq(now + chrono::Duration::days(10)),
                push_certificates::cert_pem.eq("-"),
                push_certificates::key_sealed.eq(vec![0u8]),
                push_certificates::uploaded_at.eq(now),
            ))
            .execute(&mut *conn)
            .unwrap();
        diesel::insert_into(vpp_tokens::table)
            .values((
                vpp_tokens::id.eq("vpp-north"),
                vpp_tokens::tenant_id.eq(&north),
                vpp_tokens::location_name.eq("Medienzentrum Nord"),
                vpp_tokens::org_name.eq("Kreis"),
                vpp_tokens::token_sealed.eq(vec![0u8]),
                vpp_tokens::expires_at.eq(now + chrono::Duration::days(40)),
                vpp_tokens::status.eq("failed"),
                vpp_tokens::created_at.eq(now),
            ))
            .execute(&mut *conn)
            .unwrap();
        diesel::insert_into(ade_tokens::table)
            .values((
                ade_tokens::id.eq("ade-north"),
                ade_tokens::tenant_id.eq(&north),
                ade_tokens::cert_pem.eq("-"),
                ade_tokens::key_sealed.eq(vec![0u8]),
                ade_tokens::expires_at.eq(now - chrono::Duration::days(2)),
                ade_tokens::server_name.eq("tafel Nord"),
                ade_tokens::status.eq("failed"),
                ade_tokens::created_at.eq(now),
            ))
            .execute(&mut *conn)
            .unwrap();
    }
    let path = "/api/v1/reports/ending";
    let (status, page) = report(&app, &north_admin, path).await;
    assert_eq!(status, 200, "{page}");
    let kinds: Vec<(&str, i64)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    // Soonest first; the ended ADE token first of all.
    assert_eq!(
        kinds,
        [
            ("ade_token", -2),
            ("push_certificate", 9),
            ("content_token", 39)
        ],
        "{page}"
    );
    // Paged: one at a time, the cursor walks the same order.
    let (_, first) = report(&app, &north_admin, &format!("{path}?limit=1")).await;
    assert_eq!(first["items"][0]["kind"], "ade_token");
    let cursor = first["next_cursor"].as_str().unwrap().replace(' ', "%20");
    let cursor = cursor.replace('+', "%2B").replace(':', "%3A");
    let (_, second) = report(
        &app,
        &north_admin,
        &format!("{path}?limit=1&cursor={cursor}"),
    )
    .await;
    assert_eq!(second["items"][0]["kind"], "push_certificate", "{second}");
    // 20 days ahead: the push certificate, not the content token.
    let (_, near) = report(&app, &north_admin, &format!("{path}?days=20")).await;
    assert_eq!(near["items"].as_array().unwrap().len(), 2, "{near}");
    // The other authority's admin sees none of it; a school filter makes no sense here.
    let (_, page) = report(&app, &south_admin, path).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
    let (status, _) = report(&app, &north_admin, &format!("{path}?school_id=x")).await;
    assert_eq!(status, 400);
    // District admins also see tafel's own certificates when they look far enough.
    let (_, page) = app.get(&format!("{path}?days=3650")).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "tafel_certificate"),
        "{page}"
    );
    let (_, _, _, rows) = report_csv(&app, &format!("{path}?days=60")).await;
    assert_eq!(
        rows[0],
        ["Art", "Name", "Schulträger", "Endet", "Tage übrig"]
    );
    assert_eq!(rows[1][0], "Apple-School-Manager-Token");
    assert_eq!(rows[1][4], "abgelaufen");
    // The list of reports names them all.
    let (status, list) = app.get("/api/v1/reports").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 4, "{list}");
}
