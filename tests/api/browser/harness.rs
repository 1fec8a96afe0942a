//! The browser harness itself: it opens tafel's pages, reads and fills them, runs
//! scripts, takes screenshots and runs axe-core, on a desktop and a phone.

use std::time::Duration;

use serde_json::json;

use super::{browser_or_skip, phone_or_skip};
use crate::helpers::TestApp;

/// Is `bytes` a PNG?
fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// `html` as a `data:` URL (every byte but letters and digits percent-encoded).
fn data_url(html: &str) -> String {
    let mut url = String::from("data:text/html;charset=utf-8,");
    for b in html.bytes() {
        if b.is_ascii_alphanumeric() {
            url.push(char::from(b));
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

#[actix_web::test]
async fn a_desktop_browser_opens_the_api_documentation_served_by_tafel() {
    let Some(browser) = browser_or_skip().await else {
        return;
    };
    let app = TestApp::spawn().await;

    browser.goto(&app.url(tafel::api::openapi::PAGE_PATH)).await;
    assert!(browser.title().await.contains("Swagger"));
    assert_eq!(browser.current_url().await, app.url("/api/v1/docs/"));
    // Swagger UI renders the document's title once its script has fetched it.
    let heading = browser
        .wait_for(".swagger-ui .info .title", Duration::from_secs(15))
        .await;
    assert!(
        heading.text().await.starts_with("tafel"),
        "{}",
        heading.text().await
    );
    assert!(browser.page_source().await.contains("swagger-ui"));
    assert_eq!(
        browser
            .execute(
                "return [innerWidth, arguments[0] + arguments[1]];",
                &[json!(2), json!(3)]
            )
            .await,
        json!([1280, 5])
    );

    let dir = tempfile::tempdir().unwrap();
    browser.screenshot(dir.path().join("docs.png")).await;
    assert!(is_png(&std::fs::read(dir.path().join("docs.png")).unwrap()));

    // Swagger UI's accessibility is not tafel's to judge: only that axe runs here.
    let violations = browser.axe().await;
    assert!(violations.iter().all(|v| !v.id.is_empty()));
    browser.close().await;
}

#[actix_web::test]
async fn a_phone_fills_a_form_and_axe_finds_the_missing_label_until_it_is_added() {
    let Some(phone) = phone_or_skip().await else {
        return;
    };
    let page = "<!doctype html><html lang=de><head><meta charset=utf-8>\
        <meta name=viewport content='width=device-width'><title>Suche</title></head>\
        <body><main><h1>Apps suchen</h1><input id=q type=search>\
        <button id=go onclick=\"setTimeout(() => document.getElementById('out').textContent = \
        'Gesucht: ' + document.getElementById('q').value, 300)\">Suchen</button>\
        <p id=out></p></main></body></html>";
    phone.goto(&data_url(page)).await;
    assert_eq!(phone.title().await, "Suche");
    assert_eq!(
        phone
            .execute(
                "return [innerWidth, navigator.languages[0], 'ontouchstart' in window];",
                &[]
            )
            .await,
        json!([390, "de-DE", true])
    );

    let input = phone.find("#q").await;
    assert_eq!(input.attr("type").await.as_deref(), Some("search"));
    assert_eq!(input.attr("placeholder").await, None);
    input.send_keys("Keynote").await;
    input.clear().await;
    input.send_keys("Pages").await;
    phone.find("main").await.find("button").await.click().await;
    phone
        .wait_for_text("#out", "Gesucht: Pages", Duration::from_secs(5))
        .await;
    assert_eq!(phone.find_all("main > *").await.len(), 4);
    assert!(phone.try_find("form").await.is_none());
    assert_eq!(
        phone
            .execute("return arguments[0].tagName;", &[input.as_arg()])
            .await,
        json!("INPUT")
    );
    assert_eq!(
        phone
            .execute_async(
                "arguments[arguments.length - 1](arguments[0] * 2);",
                &[json!(21)]
            )
            .await,
        json!(42)
    );

    // An input without a label is a critical violation; with one, the page passes.
    let violations = phone.axe().await;
    let label = violations.iter().find(|v| v.id == "label");
    let label = label.unwrap_or_else(|| panic!("axe misses the unlabelled input: {violations:?}"));
    assert!(label.is_serious());
    assert_eq!(label.nodes[0].target, ["#q"]);
    phone
        .execute(
            "arguments[0].setAttribute('aria-label', 'App-Name');",
            &[input.as_arg()],
        )
        .await;
    phone.assert_accessible("Suche").await;

    let dir = tempfile::tempdir().unwrap();
    phone
        .screenshot_full_page(dir.path().join("phone.png"))
        .await;
    assert!(is_png(
        &std::fs::read(dir.path().join("phone.png")).unwrap()
    ));
}
