//! Running tafel for real: stalled clients do not exhaust it, `/readyz` tells the truth
//! about writes and disks, and SIGTERM lets requests in flight finish (issue #20).

use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

/// Makes every connection of the server's pool refuse writes, as a read-only database
/// file does: SQLite's `query_only` fails writes with `SQLITE_READONLY` ("attempt to
/// write a readonly database"), the code a file opened read-only gives (the tests run
/// as root, for whom `chmod` takes nothing away); PostgreSQL's read-only transactions
/// fail with `read_only_sql_transaction`, as a standby does.
async fn make_database_read_only(app: &TestApp) {
    let db = app.state.db.clone();
    let size = app.state.settings.database_pool_size as usize;
    tokio::task::spawn_blocking(move || {
        // All of the pool's connections at once, so each gets the setting.
        let mut held: Vec<_> = (0..size).map(|_| db.get().unwrap()).collect();
        for conn in &mut held {
            let sql = match &mut **conn {
                tafel::db::DbConn::Sqlite(_) => "PRAGMA query_only = ON",
                tafel::db::DbConn::Pg(_) => "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            };
            conn.batch_execute(sql).unwrap();
        }
    })
    .await
    .unwrap();
}

#[actix_web::test]
async fn a_read_only_database_makes_readyz_and_writes_answer_503_naming_it() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let d = app.device(1);
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    let (status, json) = app.get("/readyz").await;
    assert_eq!(status, 200, "{json}");

    make_database_read_only(&app).await;

    // The load balancer hears it, with the cause.
    let (status, json) = app.get("/readyz").await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(json["error"], "unavailable", "{json}");
    assert!(
        json["message"].as_str().unwrap().contains("read-only"),
        "{json}"
    );

    // An admin's write: the cause, not "internal error".
    let (status, json) = app
        .post(
            "/api/v1/tenants",
            serde_json::json!({"name": "Stadt Bad Segeberg", "slug": "bad-segeberg"}),
        )
        .await;
    assert_eq!(status, 503, "{json}");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("the database is read-only"),
        "{json}"
    );

    // The iPad that connects for its first inventory (a write: the command goes out)
    // hears 503 with Retry-After, and tries again later.
    let body = tafel::protocol::ConnectReport::idle(d.udid.clone()).to_xml();
    let res = app
        .client
        .put(app.url("/mdm/connect"))
        .header("Mdm-Signature", d.sign(&body).unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0);
    let json: serde_json::Value = res.json().await.unwrap();
    assert!(
        json["message"].as_str().unwrap().contains("read-only"),
        "{json}"
    );
}

#[actix_web::test]
async fn a_disk_with_less_room_than_the_threshold_makes_readyz_503_naming_the_disk() {
    let app = TestApp::spawn_with(|s| {
        s.reconcile.automatic = false;
        // More than any disk has: 1 EiB.
        s.health.min_free_disk_mb = 1 << 40;
    })
    .await;
    let (status, json) = app.get("/readyz").await;
    assert_eq!(status, 503, "{json}");
    let message = json["message"].as_str().unwrap();
    assert!(message.contains("the disk is full"), "{json}");
    assert!(message.contains("health.min_free_disk_mb"), "{json}");
    let (status, json) = app.get("/healthz").await;
    assert_eq!(status, 200, "{json}");
}

#[actix_web::test]
async fn a_healthy_node_is_ready_and_the_probe_keeps_nothing() {
    let app = TestApp::spawn_with(|s| s.reconcile.automatic = false).await;
    let (status, json) = app.get("/readyz").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["status"], "ready", "{json}");
    assert_eq!(app.count("health_probe"), 1);
}

/// Is the server still holding this connection open (nothing to read, no end)? A byte
/// that was there is kept in `got`.
fn still_open(s: &tokio::net::TcpStream, got: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 1];
    match s.try_read(&mut buf) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        Ok(n) => {
            got.extend_from_slice(&buf[..n]);
            false
        }
    }
}

#[actix_web::test]
async fn two_thousand_stalled_bodies_are_closed_while_readyz_and_devices_are_answered() {
    const STALLED: usize = 2000;
    const BODY_TIMEOUT: u64 = 10;
    // Client and server share this process: each stalled connection is two open files.
    let files = tafel::edge::raise_open_file_limit().unwrap();
    let needed = STALLED as u64 * 2 + 1024;
    assert!(
        files.now >= needed,
        "this test holds {STALLED} connections from both ends in one process and needs {needed} open files, but the hard limit is {}: raise it (ulimit -Hn, LimitNOFILE)",
        files.hard
    );
    let app = TestApp::spawn_with(|s| {
        s.reconcile.automatic = false;
        s.http.body_timeout_secs = BODY_TIMEOUT;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Announces 1,000 bytes, sends 200, stops.
    let head = format!(
        "PUT /mdm/connect HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-apple-aspen-mdm\r\nContent-Length: 1000\r\n\r\n"
    );
    let stall = || async {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b'x'; 200]).await.unwrap();
        s
    };
    let mut stalled = Vec::with_capacity(STALLED);
    let opening = Instant::now();
    // A few hundred at a time (the listen backlog is not the subject here).
    while stalled.len() < STALLED {
        let batch = (STALLED - stalled.len()).min(250);
        stalled.extend(futures_util::future::join_all((0..batch).map(|_| stall())).await);
    }
    let opened_in = opening.elapsed();

    // Meanwhile the probe and a device endpoint answer.
    let asked = Instant::now();
    let (status, json) = app.get("/readyz").await;
    let readyz_took = asked.elapsed();
    assert_eq!(status, 200, "{json}");
    let asked = Instant::now();
    let res = app
        .client
        .get(app.url("/scep?operation=GetCACaps"))
        .send()
        .await
        .unwrap();
    let scep_took = asked.elapsed();
    assert_eq!(res.status().as_u16(), 200);
    let mut answers = vec![Vec::new(); STALLED];
    let mut held = 0;
    for (s, got) in stalled.iter().zip(answers.iter_mut()) {
        held += usize::from(still_open(s, got));
    }
    eprintln!(
        "stalled connections: {STALLED} opened in {} ms, {held} still held when /readyz had answered in {} ms and SCEP GetCACaps in {} ms (body timeout {BODY_TIMEOUT} s, open-file limit {})",
        opened_in.as_millis(),
        readyz_took.as_millis(),
        scep_took.as_millis(),
        files.now
    );

    // Each stalled request ends with 408 and the server closes its connection.
    let waiting = Instant::now();
    for (i, (s, mut answer)) in stalled.iter_mut().zip(answers).enumerate() {
        let read = tokio::time::timeout(
            Duration::from_secs(BODY_TIMEOUT * 4),
            s.read_to_end(&mut answer),
        )
        .await;
        assert!(
            read.is_ok(),
            "stalled connection {i} still open {} s after the body timeout ({BODY_TIMEOUT} s)",
            BODY_TIMEOUT * 4
        );
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{i}: {answer}");
        assert!(answer.contains("stopped arriving"), "{i}: {answer}");
    }
    eprintln!(
        "stalled connections: all {STALLED} closed by the server with 408 within {} ms after that",
        waiting.elapsed().as_millis(),
    );
}

/// Lines of the server's log, as they come.
fn log_lines(stderr: std::process::ChildStderr) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a log line containing `needle`; the log so far when it does not come.
fn wait_for(log: &std::sync::mpsc::Receiver<String>, needle: &str) {
    let mut seen = Vec::new();
    loop {
        match log.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains(needle) => return,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no {needle:?} in the log:\n{}", seen.join("\n")),
        }
    }
}

#[test]
fn a_request_in_flight_at_sigterm_completes_before_tafel_exits() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tafel"));
    cmd.current_dir(dir.path()).arg("serve");
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
        cmd.env_remove(k);
    }
    let mut child = cmd
        .env("TAFEL_LISTEN", format!("127.0.0.1:{port}"))
        .env("TAFEL_WORKERS", "1")
        .env("TAFEL_LOG", "info")
        .env("TAFEL_LOG_FORMAT", "json")
        .env("TAFEL_RECONCILE__AUTOMATIC", "false")
        .env("TAFEL_APP_STORE__ICONS", "false")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = log_lines(child.stderr.take().unwrap());
    wait_for(&log, "tafel listening");

    // A device request whose body is still on its way: the server has read its headers
    // (it said "100 Continue") and waits for the rest.
    let body = b"<?xml version=\"1.0\"?><plist version=\"1.0\"><dict></dict></plist>";
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "PUT /mdm/connect HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body[..10]).unwrap();
    let mut continued = [0u8; 25];
    conn.read_exact(&mut continued).unwrap();
    assert!(
        String::from_utf8_lossy(&continued).starts_with("HTTP/1.1 100 Continue"),
        "{}",
        String::from_utf8_lossy(&continued)
    );

    // SIGTERM, as systemd stops the service.
    // SAFETY: kill() sends a signal to the child this test started.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    wait_for(&log, "shutting down");

    // The rest of the body arrives a moment later, as from an iPad on slow Wi-Fi (well
    // within the grace of SHUTDOWN_SECS); the request is answered (an empty plist
    // without a signature is refused, with a reason) instead of cut off.
    std::thread::sleep(Duration::from_secs(2));
    conn.write_all(&body[10..]).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(answer.contains("\"message\""), "{answer}");

    // Then tafel ends, cleanly.
    wait_for(&log, "stopped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tafel ends after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// Pool connections are not tested on every checkout (on PostgreSQL that is a round trip
/// per request); one whose last use failed is tested as it goes back. A connection the
/// database server cut fails the request that had it, and the next request gets a new
/// one; on SQLite (a file handle) a failed request keeps its connection.
#[actix_web::test]
async fn a_connection_the_database_cut_fails_one_request_and_is_replaced() {
    use tafel::db::{Backend, DatabaseUrl, Db, DbError};

    let app = TestApp::spawn().await;
    let url = DatabaseUrl::parse(&app.state.settings.database_url).unwrap();
    // A pool of one: whatever runs next gets the connection the last request returned.
    let db = Db::connect(&url, 1).unwrap();
    // A mark only this connection sees (temporary tables are per connection).
    let mark = |sql: &'static str| {
        db.run(move |c| -> Result<(), DbError> {
            c.batch_execute(sql)?;
            Ok(())
        })
    };
    mark("CREATE TEMPORARY TABLE this_connection (x INTEGER)")
        .await
        .unwrap();
    mark("SELECT * FROM this_connection").await.unwrap();
    let cut = match url.backend() {
        // The server ends this very connection.
        Backend::Postgres => mark("SELECT pg_terminate_backend(pg_backend_pid())").await,
        Backend::Sqlite => mark("SELECT * FROM no_such_table").await,
    };
    assert!(cut.is_err(), "the request that had the connection fails");
    let next = mark("SELECT * FROM this_connection").await;
    match url.backend() {
        Backend::Postgres => {
            // A new connection: served, and without the old one's temporary table.
            assert!(
                next.is_err(),
                "the temporary table went with the old connection"
            );
            mark("SELECT 1").await.expect("the next request is served");
        }
        Backend::Sqlite => next.expect("the same connection, kept"),
    }
    assert_eq!(db.pool_state().0, 1);
}
