//! App icons: looked up once in the App Store when an app enters the catalog, kept by
//! tafel and shown from tafel on the teacher's app choice; without one, the letter.

use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use crate::console::{login, PASSWORD};
use crate::helpers::TestApp;

/// A 1×1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x60, 0x60, 0x60, 0xF8,
    0x0F, 0x00, 0x01, 0x04, 0x01, 0x00, 0x5F, 0xE5, 0xC3, 0x4B, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];
const KEYNOTE: &str = "361285480";

/// The App Store's lookup as Apple answers it (for Keynote only) and the artwork;
/// returns its URL and the queries it received.
async fn app_store() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (log, art_base) = (seen.clone(), base.clone());
    let server = HttpServer::new(move || {
        let (log, art_base) = (log.clone(), art_base.clone());
        App::new()
            .route(
                "/lookup",
                web::get().to(move |req: HttpRequest| {
                    let (log, art_base) = (log.clone(), art_base.clone());
                    async move {
                        let q = req.query_string().to_owned();
                        log.lock().unwrap().push(q.clone());
                        let results = if q.contains(&format!("id={KEYNOTE}")) {
                            json!([{"trackName": "Keynote", "bundleId": "com.apple.Keynote",
                                "artworkUrl60": format!("{art_base}/art/60.png"),
                                "artworkUrl512": format!("{art_base}/art/512.png")}])
                        } else {
                            json!([])
                        };
                        HttpResponse::Ok()
                            .content_type("text/javascript; charset=utf-8")
                            .body(json!({"resultCount": results.as_array().unwrap().len(), "results": results}).to_string())
                    }
                }),
            )
            .route(
                "/art/512.png",
                web::get().to(|| async { HttpResponse::Ok().content_type("image/png").body(PNG) }),
            )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    (base, seen)
}

#[actix_web::test]
async fn an_apps_icon_comes_from_the_app_store_once_and_is_shown_from_tafel() {
    let (store, seen) = app_store().await;
    let app = TestApp::spawn_with(move |s| {
        s.app_store.icons = true;
        s.app_store.base_url = store;
    })
    .await;
    let (tenant, school) = crate::enrollment::school(&app, "icons").await;
    crate::console::user(&app, "t@icons.de", "teacher", Some(&school)).await;
    for (name, bundle, adam) in [
        ("Keynote", "com.apple.Keynote", KEYNOTE),
        ("Hauseigene App", "de.kreis.app", "1000000001"),
    ] {
        let (status, a) = app
            .post(
                "/api/v1/apps",
                json!({"tenant_id": tenant, "name": name, "bundle_id": bundle, "adam_id": adam}),
            )
            .await;
        assert_eq!(status, 201, "{a}");
    }
    // The lookup runs in the background: wait for Keynote's icon.
    let mut waited = 0;
    while app.count("app_icons") == 0 {
        assert!(
            waited < 100,
            "no icon stored; lookups: {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    // Give the unknown app's lookup time to finish: it stores nothing.
    let mut waited = 0;
    while seen.lock().unwrap().len() < 2 {
        assert!(waited < 100, "the second app was not looked up");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(app.count("app_icons"), 1);
    let queries = seen.lock().unwrap().clone();
    assert!(
        queries
            .iter()
            .any(|q| q.contains(&format!("id={KEYNOTE}")) && q.contains("country=de")),
        "{queries:?}"
    );

    // The teacher's app choice shows Keynote's icon from tafel, the other app's letter.
    let s = login(&app.base, "t@icons.de", PASSWORD).await.unwrap();
    let (status, html) = s.get("/unterricht/neu").await;
    assert_eq!(status, 200, "{html}");
    let icon = format!("/static/icons/{KEYNOTE}");
    assert!(html.contains(&format!(r#"src="{icon}""#)), "{html}");
    assert!(
        html.contains(r#"<span class="badge" aria-hidden="true">H</span> Hauseigene App"#),
        "{html}"
    );
    let res = crate::console::client()
        .get(format!("{}{icon}", app.base))
        .header(
            reqwest::header::COOKIE,
            format!("tafel_session={}", s.cookie),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()[reqwest::header::CONTENT_TYPE], "image/png");
    assert_eq!(&res.bytes().await.unwrap()[..], PNG);
    // Not without a session; none for an app without an icon.
    let res = crate::console::client()
        .get(format!("{}{icon}", app.base))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 200);
    let (status, _) = s.get("/static/icons/1000000001").await;
    assert_eq!(status, 404);
    // A second app with the same App Store id asks the store no more.
    let (other, _) = crate::enrollment::school(&app, "icons-2").await;
    let before = seen.lock().unwrap().len();
    let (status, a) = app
        .post(
            "/api/v1/apps",
            json!({"tenant_id": other, "name": "Keynote", "bundle_id": "com.apple.Keynote", "adam_id": KEYNOTE}),
        )
        .await;
    assert_eq!(status, 201, "{a}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(seen.lock().unwrap().len(), before);
}
