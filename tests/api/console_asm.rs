//! Apple School Manager in the console: a server token made and its certificate
//! downloaded, placement rules added and deleted — under the API's rules.

use serde_json::json;

use crate::console::{login, PASSWORD};
use crate::helpers::TestApp;

#[actix_web::test]
async fn an_authority_admin_sets_up_apple_school_manager_in_the_console() {
    let app = TestApp::spawn().await;
    let (tenant, school) = crate::enrollment::school(&app, "asm-web").await;
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@asm-web.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    crate::console::user(&app, "sl@asm-web.de", "school_admin", Some(&school)).await;
    let s = login(&app.base, "amt@asm-web.de", PASSWORD).await.unwrap();

    // A new server token: the key pair is tafel's, the certificate is offered for Apple.
    let (status, h, html) = s
        .post(&format!("/admin/apple/{tenant}/asm"), &[("csrf", &s.csrf)])
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(
        h[reqwest::header::LOCATION],
        format!("/admin/apple?schultraeger={tenant}#asm-h")
    );
    let (_, tokens) = app
        .get(&format!("/api/v1/tenants/{tenant}/ade-tokens"))
        .await;
    let token = tokens["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, html) = s.get("/admin/apple").await;
    let link = format!("/admin/apple/asm/{token}/tafel.pem");
    assert!(html.contains(&link), "{html}");
    let res = crate::console::client()
        .get(format!("{}{link}", app.base))
        .header(
            reqwest::header::COOKIE,
            format!("tafel_session={}", s.cookie),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()[reqwest::header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .contains("tafel-asm.pem"));
    let pem = res.text().await.unwrap();
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).expect("a PEM certificate");
    assert_eq!(pem, tokens["items"][0]["cert_pem"].as_str().unwrap());
    assert!(cert.public_key().is_ok());
    // Without the session's token nothing is made.
    let (status, _, _) = s
        .post(&format!("/admin/apple/{tenant}/asm"), &[("csrf", "x")])
        .await;
    assert_eq!(status, 403);
    assert_eq!(app.count("ade_tokens"), 1);

    // A rule with both an order number and serials, or neither, is refused.
    let rules = format!("/admin/apple/{tenant}/regeln");
    for form in [
        vec![("order_number", "MX123"), ("serials", "F9FXK1ABCD")],
        vec![("order_number", " "), ("serials", "")],
    ] {
        let mut f = vec![("csrf", s.csrf.as_str()), ("school_id", school.as_str())];
        f.extend(form);
        let (status, _, html) = s.post(&rules, &f).await;
        assert_eq!(status, 400, "{html}");
    }
    assert_eq!(app.count("ade_rules"), 0);
    // Serial numbers, one per line or with commas: stored as one rule.
    let (status, _, html) = s
        .post(
            &rules,
            &[
                ("csrf", &s.csrf),
                ("school_id", &school),
                ("description", "Wagen 1"),
                ("serials", "F9FXK1ABCD,\nF9FXK1ABCE\r\nF9FXK1ABCF"),
            ],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    let (_, listed) = app
        .get(&format!("/api/v1/tenants/{tenant}/ade-rules"))
        .await;
    let rule = &listed["items"][0];
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(rule["school_id"], school.as_str());
    let (_, html) = s.get(&format!("/admin/apple?schultraeger={tenant}")).await;
    assert!(html.contains("Wagen 1 – 3 Seriennummern"), "{html}");

    // A school admin may not manage the authority's rules.
    let sl = login(&app.base, "sl@asm-web.de", PASSWORD).await.unwrap();
    let id = rule["id"].as_str().unwrap();
    let (status, _, _) = sl
        .post(
            &format!("/admin/apple/regeln/{id}/loeschen"),
            &[("csrf", &sl.csrf)],
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = sl
        .post(&format!("/admin/apple/{tenant}/asm"), &[("csrf", &sl.csrf)])
        .await;
    assert_eq!(status, 403);
    // The authority admin deletes it.
    let (status, _, html) = s
        .post(
            &format!("/admin/apple/regeln/{id}/loeschen"),
            &[("csrf", &s.csrf)],
        )
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(app.count("ade_rules"), 0);
    let (_, audit) = app.get("/api/v1/audit?action=delete&limit=100").await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["object_id"] == id),
        "{audit}"
    );
}

#[actix_web::test]
async fn a_school_sets_what_setup_assistant_shows_and_the_authority_keeps_its_fields() {
    let app = TestApp::spawn().await;
    let (tenant, school) = crate::enrollment::school(&app, "setup-web").await;
    crate::console::user(&app, "sl@setup-web.de", "school_admin", Some(&school)).await;
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@setup-web.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let sl = login(&app.base, "sl@setup-web.de", PASSWORD).await.unwrap();
    let path = format!("/admin/schulen/{school}/einrichtung");
    let (_, html) = sl.get(&format!("/admin/schulen/{school}")).await;
    assert!(html.contains(&path), "the school page links to it");
    let (status, html) = sl.get(&path).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("es gelten die Vorgaben"), "{html}");
    assert!(
        html.contains(r#"id="is_mdm_removable" name="is_mdm_removable" value="1" disabled"#),
        "a school admin cannot change the authority's fields: {html}"
    );
    let stored = || async {
        let (status, a) = app.get(&format!("/api/v1/schools/{school}/ade")).await;
        assert_eq!(status, 200, "{a}");
        a
    };
    let before = stored().await;

    // The school's own fields.
    let form = |extra: Vec<(&'static str, &'static str)>| {
        let mut f = vec![
            ("csrf", sl.csrf.clone()),
            ("department", "Medienteam Gymnasium Nord".to_owned()),
            ("support_phone_number", "04551 123".to_owned()),
            ("release_timeout_minutes", "45".to_owned()),
            ("skip", "Siri".to_owned()),
            ("skip", "Passcode".to_owned()),
        ];
        f.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
        f
    };
    let post = |s: &crate::console::Session, f: Vec<(&'static str, String)>| {
        let path = path.clone();
        let s = crate::console::Session {
            base: s.base.clone(),
            cookie: s.cookie.clone(),
            csrf: s.csrf.clone(),
        };
        async move {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.post(&path, &f).await
        }
    };
    let (status, h, html) = post(&sl, form(vec![])).await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(
        h[reqwest::header::LOCATION],
        format!("{path}?gespeichert=1")
    );
    let a = stored().await;
    assert_eq!(a["profile"]["department"], "Medienteam Gymnasium Nord");
    assert_eq!(a["release_timeout_minutes"], 45);
    let skipped: Vec<&str> = a["profile"]["skip_setup_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{a}");
    assert!(skipped.contains(&"Siri") && skipped.contains(&"Passcode"));
    assert_eq!(
        a["profile"]["is_mdm_removable"],
        before["profile"]["is_mdm_removable"]
    );
    assert!(a["revision"].as_i64() > before["revision"].as_i64(), "{a}");
    let (_, html) = sl.get(&format!("{path}?gespeichert=1")).await;
    assert!(html.contains(r#"role="status""#), "{html}");

    // A forged authority field from a school admin is refused; nothing changes.
    let (status, _, html) = post(
        &sl,
        form(vec![("authority", "1"), ("is_mdm_removable", "1")]),
    )
    .await;
    assert_eq!(status, 403, "{html}");
    assert_eq!(stored().await["profile"]["is_mdm_removable"], false);
    // A pane Apple does not know, or a timeout out of range: refused with the field.
    let (status, _, html) = post(&sl, form(vec![("skip", "Teleport")])).await;
    assert_eq!(status, 400, "{html}");
    let mut bad = form(vec![]);
    bad.retain(|(k, _)| *k != "release_timeout_minutes");
    bad.push(("release_timeout_minutes", "0".to_owned()));
    let (status, _, html) = post(&sl, bad).await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(stored().await["release_timeout_minutes"], 45);

    // The authority's admin sets a shared iPad for the school.
    let amt = login(&app.base, "amt@setup-web.de", PASSWORD)
        .await
        .unwrap();
    let mut f = form(vec![
        ("authority", "1"),
        ("await_device_configured", "1"),
        ("is_multi_user", "1"),
    ]);
    f[0].1 = amt.csrf.clone();
    let (status, _, html) = post(&amt, f).await;
    assert_eq!(status, 303, "{html}");
    let a = stored().await;
    assert_eq!(a["profile"]["is_multi_user"], true);
    assert_eq!(a["profile"]["await_device_configured"], true);
    assert_eq!(a["profile"]["is_mdm_removable"], false);
}

#[actix_web::test]
async fn an_authority_enters_holidays_for_all_its_schools() {
    let app = TestApp::spawn().await;
    let (tenant, school) = crate::enrollment::school(&app, "ferien-amt").await;
    crate::console::user(&app, "sl@ferien-amt.de", "school_admin", Some(&school)).await;
    let (status, u) = app
        .post(
            "/api/v1/users",
            json!({"name": "Amt", "email": "amt@ferien-amt.de", "role": "authority_admin", "tenant_id": tenant, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 201, "{u}");
    let amt = login(&app.base, "amt@ferien-amt.de", PASSWORD)
        .await
        .unwrap();
    let sl = login(&app.base, "sl@ferien-amt.de", PASSWORD)
        .await
        .unwrap();
    let next_year = chrono::Utc::now()
        .date_naive()
        .format("%Y")
        .to_string()
        .parse::<i32>()
        .unwrap()
        + 1;
    let csv = format!("Sommerferien,{next_year}-07-06,{next_year}-08-15");
    let path = format!("/admin/schultraeger/{tenant}/ferien");

    // A school admin may enter their school's days, not the authority's.
    let (status, _, _) = sl
        .post(&path, &[("csrf", &sl.csrf), ("calendar", &csv)])
        .await;
    assert_eq!(status, 403);
    // An unreadable line stores nothing.
    let (status, _, html) = amt
        .post(
            &path,
            &[("csrf", &amt.csrf), ("calendar", "Sommerferien,6.7.,15.8.")],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert_eq!(app.count("closures"), 0);

    let (status, h, html) = amt
        .post(&path, &[("csrf", &amt.csrf), ("calendar", &csv)])
        .await;
    assert_eq!(status, 303, "{html}");
    assert_eq!(
        h[reqwest::header::LOCATION],
        format!("/admin/schultraeger/{tenant}#ferien")
    );
    // The authority's page and every school's page show the days.
    let (_, html) = amt.get(&format!("/admin/schultraeger/{tenant}")).await;
    let list = &html[html.find("id=\"closure-list\"").expect("the list")..];
    assert!(
        list.contains(&format!("06.07.{next_year} – "))
            && list.contains(&format!("15.08.{next_year}")),
        "{list}"
    );
    let (_, html) = sl.get(&format!("/admin/schulen/{school}")).await;
    assert!(html.contains("Sommerferien"), "{html}");
    // Stored for the authority, not for one school.
    use diesel::prelude::*;
    use tafel::db::schema::closures;
    let mut conn = app.state.db.get().unwrap();
    let schools: Vec<Option<String>> = closures::table
        .filter(closures::tenant_id.eq(&tenant))
        .select(closures::school_id)
        .load(&mut *conn)
        .unwrap();
    assert_eq!(schools, [None]);
}
