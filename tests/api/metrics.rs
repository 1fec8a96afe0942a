//! `/metrics`: Prometheus's text format, behind its own bearer token.

use crate::enrollment::school;
use crate::helpers::TestApp;

/// The value of the first sample line that starts with `series` (name and labels).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{page}"))
}

async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url("/metrics"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    if status == 200 {
        let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    }
    (status, res.text().await.unwrap())
}

#[actix_web::test]
async fn metrics_are_off_without_a_token_and_refuse_a_wrong_one() {
    let app = TestApp::spawn().await;
    let (status, body) = scrape(&app, Some("anything")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("metrics.token"), "{body}");

    let app = TestApp::spawn_with(|s| s.metrics.token = Some("scrape-secret-1".into())).await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("scrape-secret-2")).await.0, 401);
    // An admin's API token is not the metrics token.
    let admin = app.admin_token.clone();
    assert_eq!(scrape(&app, Some(&admin)).await.0, 401);
}

#[actix_web::test]
async fn enrollments_check_ins_the_queue_and_requests_are_counted() {
    let app = TestApp::spawn_with(|s| s.metrics.token = Some("scrape-secret".into())).await;
    let (status, before) = scrape(&app, Some("scrape-secret")).await;
    assert_eq!(status, 200, "{before}");
    let token_updates =
        r#"tafel_device_messages_total{endpoint="checkin",type="TokenUpdate",outcome="ok"}"#;
    let idles = r#"tafel_device_messages_total{endpoint="connect",type="Idle",outcome="ok"}"#;
    let t0 = sample(&before, token_updates);
    let i0 = sample(&before, idles);
    let api0 = sample(
        &before,
        r#"tafel_http_requests_total{group="api",status="2xx"}"#,
    );

    let (tenant, school_id) = school(&app, "metrics").await;
    let d = app.device(700);
    d.authenticate().await.unwrap();
    app.place_device(d.udid.as_str(), &tenant, &school_id);
    d.token_update(false).await.unwrap();
    let udid = d.udid.to_string();
    app.enqueue(&[&udid], "CertificateList", None).await;
    d.report(&tafel::protocol::ConnectReport::idle(d.udid.clone()))
        .await
        .unwrap();

    let (_, after) = scrape(&app, Some("scrape-secret")).await;
    // Counters are per process and tests run side by side: at least ours.
    assert!(sample(&after, token_updates) >= t0 + 1.0, "{after}");
    assert!(sample(&after, idles) >= i0 + 1.0, "{after}");
    assert!(
        sample(
            &after,
            r#"tafel_http_requests_total{group="api",status="2xx"}"#
        ) >= api0 + 3.0
    );
    // The database's figures are this server's own.
    assert_eq!(sample(&after, r#"tafel_devices{enrollment="active"}"#), 1.0);
    assert!(
        after.contains("# TYPE tafel_command_queue gauge"),
        "{after}"
    );
    assert!(
        after.contains("tafel_db_pool_wait_seconds_count"),
        "{after}"
    );
    assert!(
        after.contains("tafel_reconcile_duration_seconds_bucket{le=\"+Inf\"}"),
        "{after}"
    );
    assert!(
        after.contains("tafel_command_latency_seconds{quantile=\"0.5\"}"),
        "{after}"
    );
}
