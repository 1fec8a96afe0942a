//! No body can crash tafel: bodies nested a million levels deep, unsigned and signed,
//! XML and binary, against the `tafel` binary itself (the release build in CI:
//! `TAFEL_TEST_BIN=target/release/tafel`), which must answer 4xx and keep serving; and
//! an answer too deep to store.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestApp;

use tafel::protocol::hostile::{nested_binary, nested_xml};

/// A `tafel serve` process, killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// The first start's district-admin token.
    pub admin_token: String,
    /// Its working directory (certificates, SQLite database, `stderr.log`).
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `tafel serve` on a free port and waits until it is ready.
    pub async fn start(env: &[(&str, String)]) -> Server {
        // The port is free when picked but may be taken before the server binds it (other
        // tests start servers too): then it is picked again.
        for _ in 0..5 {
            if let Some(server) = Self::try_start(env).await {
                return server;
            }
        }
        panic!("tafel serve did not start");
    }

    async fn try_start(env: &[(&str, String)]) -> Option<Server> {
        let bin = std::env::var("TAFEL_TEST_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .map(|b| {
                std::fs::canonicalize(&b)
                    .unwrap_or_else(|e| panic!("TAFEL_TEST_BIN={b}: {e}"))
                    .display()
                    .to_string()
            })
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_tafel").to_owned());
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base = format!("http://127.0.0.1:{port}");
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = Command::new(&bin);
        cmd.current_dir(dir.path())
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
            cmd.env_remove(k);
        }
        cmd.env("TAFEL_LISTEN", format!("127.0.0.1:{port}"))
            .env("TAFEL_PUBLIC_URL", &base)
            .env("TAFEL_LOG_LEVEL", "warn");
        // Callers may ask for more (their `env` comes after).
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{bin}: {e}"));
        let stdout = child.stdout.take().unwrap();
        // The token is printed once the server has bound its port and migrated.
        // stdout is read to its end on its own thread, so the server never writes into a
        // pipe nobody reads.
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(t) = line.trim().strip_prefix("tafel_") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(format!("tafel_{t}"));
                    }
                }
            }
        });
        let token = rx.await.ok();
        let Some(admin_token) = token else {
            let _ = child.wait();
            let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            assert!(err.contains("cannot listen"), "tafel serve failed: {err}");
            return None;
        };
        let mut server = Server {
            child,
            base,
            admin_token,
            dir,
        };
        let client = reqwest::Client::new();
        let start = Instant::now();
        while !server.ready(&client).await {
            if start.elapsed() > Duration::from_secs(60) {
                let probe = client.get(format!("{}/readyz", server.base)).send().await;
                let probe = match probe {
                    Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(e) => e.to_string(),
                };
                let exited = server.child_status();
                let err = std::fs::read_to_string(server.dir.path().join("stderr.log"))
                    .unwrap_or_default();
                panic!("not ready after a minute: {probe}; process: {exited}; stderr: {err}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(server)
    }

    fn child_status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => format!("exited ({status})"),
            Ok(None) => "running".into(),
            Err(e) => e.to_string(),
        }
    }

    async fn ready(&self, client: &reqwest::Client) -> bool {
        matches!(
            client.get(format!("{}/readyz", self.base)).send().await,
            Ok(r) if r.status() == 200
        )
    }
}

pub async fn post(
    client: &reqwest::Client,
    server: &Server,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let res = client
        .post(format!("{}{path}", server.base))
        .bearer_auth(&server.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, json) = crate::helpers::json_reply(res).await;
    assert_eq!(status, 201, "{json}");
    json
}

#[actix_web::test]
async fn a_body_nested_a_million_levels_deep_is_refused_and_the_server_keeps_serving() {
    let limit = (16 * 1024 * 1024).to_string();
    let server = Server::start(&[
        ("TAFEL_MDM__MAX_CHECKIN_BODY", limit.clone()),
        ("TAFEL_MDM__MAX_CONNECT_BODY", limit),
    ])
    .await;
    let client = reqwest::Client::new();
    let tenant = post(&client, &server, "/api/v1/tenants", serde_json::json!({"name": "Tiefe", "slug": "tiefe", "push_topic": "com.apple.mgmt.External.tiefe"})).await;
    let school = post(
        &client,
        &server,
        &format!("/api/v1/tenants/{}/schools", tenant["id"].as_str().unwrap()),
        serde_json::json!({"name": "Schule"}),
    )
    .await;
    let token = post(
        &client,
        &server,
        &format!(
            "/api/v1/schools/{}/enrollment-tokens",
            school["id"].as_str().unwrap()
        ),
        serde_json::json!({}),
    )
    .await;
    let mut ipad = tafel_sim::enroll::enroll(
        &client,
        &format!(
            "{}/enroll/{}",
            server.base,
            token["token"].as_str().unwrap()
        ),
        tafel::protocol::Udid::parse("00008103-0000000000FF0001").unwrap(),
        "DEEP00001".into(),
        None,
    )
    .await
    .unwrap();
    crate::helpers::answer_first_inventory(&mut ipad).await;

    let deep = nested_xml(1_000_000);
    // Without a signature the body is never parsed: 403.
    let res = client
        .put(format!("{}/mdm/checkin", server.base))
        .body(deep.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Signed by an enrolled iPad: parsed with bounds, 400 naming the limit.
    for (url, body) in [
        (&ipad.checkin_url, deep),
        (&ipad.connect_url, nested_binary(1_000_000)),
        (&ipad.connect_url, nested_binary(110_000)),
    ] {
        let reply = ipad.send_raw(url, None, body).await.unwrap();
        assert_eq!(reply.status, 400);
        let text = String::from_utf8_lossy(&reply.body).into_owned();
        assert!(text.contains("nested deeper than 32 levels"), "{text}");
    }
    assert!(server.ready(&client).await, "the server keeps serving");
    assert!(ipad.idle().await.unwrap().is_none());
}

#[actix_web::test]
async fn an_answer_too_deep_to_store_is_refused_and_the_queue_stays_readable() {
    use tafel::protocol::{ConnectReport, Status};
    let app = TestApp::spawn().await;
    let ipad = crate::device_trust::enrolled(&app, 4100).await;
    let udid = ipad.udid.to_string();
    let cmd = app.enqueue(&[&udid], "ProfileList", None).await;
    let sent = ipad.idle().await.unwrap().unwrap();
    assert_eq!(sent.command_uuid.as_str(), cmd);
    // The answer, with a 5,000-deep value where the list should be.
    let mut answer = ConnectReport::answer(
        ipad.udid.clone(),
        Status::Acknowledged,
        Some(sent.command_uuid.clone()),
        plist::Dictionary::new(),
    )
    .to_xml();
    let tail = b"</dict>";
    let at = answer.len()
        - answer
            .windows(tail.len())
            .rev()
            .position(|w| w == tail)
            .unwrap()
        - tail.len();
    let nested = format!(
        "<key>ProfileList</key>{}{}",
        "<array>".repeat(5000),
        "</array>".repeat(5000)
    );
    answer.splice(at..at, nested.into_bytes());
    let reply = ipad
        .send_raw(&ipad.connect_url, None, answer)
        .await
        .unwrap();
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(app.status_of(&udid, &cmd).await, "sent", "nothing stored");
    let (status, _) = app.get(&format!("/api/v1/devices/{udid}/commands")).await;
    assert_eq!(status, 200);
}
