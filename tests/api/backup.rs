//! `tafel backup` while a server serves, and `tafel restore` into a fresh directory on
//! which a new server finds every device, command and certificate. SQLite only: a
//! PostgreSQL installation backs up with pg_dump (README: backup and restore).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use tafel::startup::Application;
use tafel_sim::device::SimDevice;

use crate::helpers::{test_settings, TestApp};

fn tafel(dir: &Path, args: &[&str], db: &Path, certs: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tafel"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
        cmd.env_remove(k);
    }
    cmd.env("TAFEL_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("TAFEL_CERTS_DIR", certs)
        .env("TAFEL_LOG_LEVEL", "error");
    cmd.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The one error line, not a panic.
fn error_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure: {}", text(o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tafel: error"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    lines[0].to_owned()
}

#[derive(Debug, PartialEq, Eq)]
struct Rows {
    devices: BTreeSet<String>,
    commands: BTreeSet<String>,
    certificates: BTreeSet<String>,
}

fn rows(db: &Path) -> Rows {
    use tafel::db::schema::{commands, device_certificates, devices};
    let mut c = diesel::SqliteConnection::establish(&db.to_string_lossy()).unwrap();
    Rows {
        devices: devices::table
            .select(devices::udid)
            .load::<Option<String>>(&mut c)
            .unwrap()
            .into_iter()
            .flatten()
            .collect(),
        commands: commands::table
            .select(commands::command_uuid)
            .load::<String>(&mut c)
            .unwrap()
            .into_iter()
            .collect(),
        certificates: device_certificates::table
            .select(device_certificates::sha256)
            .load::<String>(&mut c)
            .unwrap()
            .into_iter()
            .collect(),
    }
}

/// An iPad enrolls and gets a command queued.
async fn enrolled_with_a_command(app: &TestApp, n: usize) -> (SimDevice, String) {
    let d = app.device(n);
    d.authenticate().await.unwrap();
    d.token_update(false).await.unwrap();
    let cmd = app
        .enqueue(&[d.udid.as_str()], "ManagedApplicationList", None)
        .await;
    (d, cmd)
}

#[actix_web::test]
async fn a_backup_taken_under_load_restores_every_device_command_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let live_db = dir.path().join("live/tafel.db");
    let live_certs = dir.path().join("live/certs");
    let app = TestApp::spawn_with(|s| {
        s.database_url = format!("sqlite://{}", live_db.display());
        s.certs_dir = live_certs.clone();
    })
    .await;
    let mut before = Vec::new();
    for n in 0..6 {
        before.push(enrolled_with_a_command(&app, n).await);
    }
    let rows_before = rows(&live_db);
    assert_eq!(rows_before.devices.len(), 6);

    // Devices enroll and commands are queued while the backup runs.
    let backup_dir = dir.path().join("backup");
    let done = Arc::new(AtomicBool::new(false));
    let backup = {
        let (cwd, db, certs, done) = (
            dir.path().to_owned(),
            live_db.clone(),
            live_certs.clone(),
            done.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let o = tafel(&cwd, &["backup", "backup"], &db, &certs);
            done.store(true, Ordering::SeqCst);
            o
        })
    };
    let mut during = 0;
    loop {
        enrolled_with_a_command(&app, 100 + during).await;
        during += 1;
        if done.load(Ordering::SeqCst) {
            break;
        }
    }
    let o = backup.await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let in_backup = rows(&backup_dir.join("tafel.db"));
    let summary = format!(
        "{} devices, {} commands, {} device certificates",
        in_backup.devices.len(),
        in_backup.commands.len(),
        in_backup.certificates.len()
    );
    assert!(out.contains(&summary), "{out}");
    assert!(out.contains("secrets.key"), "{out}");
    // A consistent moment: everything written before, nothing that is not in the live
    // database.
    let rows_live = rows(&live_db);
    assert!(in_backup.devices.is_superset(&rows_before.devices));
    assert!(in_backup.commands.is_superset(&rows_before.commands));
    assert!(in_backup
        .certificates
        .is_superset(&rows_before.certificates));
    assert!(in_backup.devices.is_subset(&rows_live.devices));
    assert!(in_backup.commands.is_subset(&rows_live.commands));
    // Keys stay private.
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["tafel.db", "certs/secrets.key", "certs/ca.key"] {
            let mode = std::fs::metadata(backup_dir.join(f))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{f}");
        }
        assert!(!out.contains(&std::fs::read_to_string(live_certs.join("secrets.key")).unwrap()));
    }
    // An existing backup is not overwritten without --force.
    let o = tafel(dir.path(), &["backup", "backup"], &live_db, &live_certs);
    assert!(error_line(&o).contains("--force"));
    assert_eq!(rows(&backup_dir.join("tafel.db")), in_backup);

    // Restore into a fresh directory.
    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let (new_db, new_certs) = (fresh.join("data/tafel.db"), fresh.join("certs"));
    let o = tafel(&fresh, &["restore", "../backup"], &new_db, &new_certs);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains(&summary), "{}", text(&o));
    assert_eq!(rows(&new_db), in_backup);
    // Not twice.
    let o = tafel(&fresh, &["restore", "../backup"], &new_db, &new_certs);
    assert!(error_line(&o).contains("--force"));

    // A server on the restored directory: the district admin's token, every device and
    // command, and the iPads' identities.
    let (mut settings, _pg) = test_settings(&fresh);
    settings.database_url = format!("sqlite://{}", new_db.display());
    settings.certs_dir = new_certs.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    settings.public_url = format!("http://127.0.0.1:{port}");
    let restored = Application::build_on(settings, listener)
        .await
        .expect("a server starts on the restored directory");
    assert!(
        restored.first_admin_token.is_none(),
        "the restored admin is there"
    );
    let (port, _state) = restored.spawn();
    let base = format!("http://127.0.0.1:{port}");
    let get = |path: String| {
        let (client, token) = (app.client.clone(), app.admin_token.clone());
        async move {
            let res = client.get(path).bearer_auth(token).send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.json::<serde_json::Value>().await.unwrap()
        }
    };
    let listed = get(format!("{base}/api/v1/devices?limit=500")).await;
    let listed: BTreeSet<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["udid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, in_backup.devices);
    for (d, cmd) in &before {
        let path = format!("/api/v1/devices/{}/commands?limit=500", d.udid.as_str());
        let old = get(app.url(&path)).await;
        let new = get(format!("{base}{path}")).await;
        assert_eq!(old["items"], new["items"]);
        assert!(new["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["command_uuid"] == cmd.as_str()));
    }
    // An iPad enrolled before the backup connects to the restored server with its
    // identity and gets its queued command.
    let (d, cmd) = &before[0];
    let ipad = SimDevice::new(
        app.client.clone(),
        &base,
        d.udid.clone(),
        d.serial.clone(),
        d.key.clone(),
        d.cert.clone(),
    );
    let got = ipad.idle().await.unwrap().expect("its queued command");
    let _ = cmd;
    assert!([
        "ManagedApplicationList",
        "DeviceInformation",
        "InstalledApplicationList",
        "ProfileList",
        "SecurityInfo"
    ]
    .contains(&got.request_type.as_str()));
}

#[actix_web::test]
async fn restore_refuses_a_foreign_key_and_what_is_not_a_tafel_backup() {
    let dir = tempfile::tempdir().unwrap();
    let live_db = dir.path().join("live/tafel.db");
    let live_certs = dir.path().join("live/certs");
    let app = TestApp::spawn_with(|s| {
        s.database_url = format!("sqlite://{}", live_db.display());
        s.certs_dir = live_certs.clone();
    })
    .await;
    // An enrollment link: a secret sealed with secrets.key.
    enrolled_with_a_command(&app, 1).await;
    let o = tafel(dir.path(), &["backup", "b"], &live_db, &live_certs);
    assert!(o.status.success(), "{}", text(&o));

    let fresh = |name: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).unwrap();
        let (db, certs) = (d.join("tafel.db"), d.join("certs"));
        (d, db, certs)
    };
    // Another installation's secrets.key.
    let other = dir.path().join("other");
    copy_dir(&dir.path().join("b"), &other);
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let key = other.join("certs/secrets.key");
        std::fs::remove_file(&key).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key)
            .unwrap()
            .write_all(&[b'a'; 64])
            .unwrap();
    }
    let (d, db, certs) = fresh("f1");
    let line = error_line(&tafel(&d, &["restore", "../other"], &db, &certs));
    assert!(line.contains("does not open"), "{line}");
    assert!(line.contains("another installation"), "{line}");
    assert!(!db.exists() && !certs.exists(), "nothing restored");

    // A file that is no database, and a database that is not tafel's.
    let junk = dir.path().join("junk");
    copy_dir(&dir.path().join("b"), &junk);
    std::fs::write(junk.join("tafel.db"), b"not a database at all, just text .........................................................................................").unwrap();
    let (d, db, certs) = fresh("f2");
    let line = error_line(&tafel(&d, &["restore", "../junk"], &db, &certs));
    assert!(line.contains("not a tafel database"), "{line}");
    std::fs::remove_file(junk.join("tafel.db")).unwrap();
    diesel::SqliteConnection::establish(&junk.join("tafel.db").to_string_lossy())
        .unwrap()
        .batch_execute("CREATE TABLE t (x INTEGER)")
        .unwrap();
    let line = error_line(&tafel(&d, &["restore", "../junk"], &db, &certs));
    assert!(line.contains("not a tafel database"), "{line}");
    assert!(!db.exists() && !certs.exists(), "nothing restored");

    // A backup without certs/ says what is missing.
    std::fs::remove_dir_all(other.join("certs")).unwrap();
    let line = error_line(&tafel(&d, &["restore", "../other"], &db, &certs));
    assert!(line.contains("secrets.key"), "{line}");

    // Over an existing database only with --force.
    let (d, db, certs) = fresh("f3");
    std::fs::write(&db, b"x").unwrap();
    let line = error_line(&tafel(&d, &["restore", "../b"], &db, &certs));
    assert!(
        line.contains("exists") && line.contains("--force"),
        "{line}"
    );
    let o = tafel(&d, &["restore", "--force", "../b"], &db, &certs);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(rows(&db).devices.len(), 1);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// PostgreSQL (with `TAFEL_TEST_POSTGRES_URL`): `tafel backup` runs pg_dump, `tafel
/// restore` pg_restore into an empty database, and a server there finds every device.
#[actix_web::test]
async fn on_postgresql_a_backup_is_a_pg_dump_that_restores_into_an_empty_database() {
    let Some(base) = crate::helpers::postgres_url() else {
        return;
    };
    let server = base.rsplit_once('/').unwrap().0.to_owned();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (src_name, dst_name) = (format!("bk_src_{id}"), format!("bk_dst_{id}"));
    let mut admin = diesel::PgConnection::establish(&base).unwrap();
    for name in [&src_name, &dst_name] {
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
    }
    let (src, dst) = (
        format!("{server}/{src_name}"),
        format!("{server}/{dst_name}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("live/certs");
    let app = TestApp::spawn_with(|s| {
        s.database_url = src.clone();
        s.certs_dir = certs.clone();
    })
    .await;
    let mut udids = BTreeSet::new();
    for n in 0..3 {
        udids.insert(
            enrolled_with_a_command(&app, n)
                .await
                .0
                .udid
                .as_str()
                .to_owned(),
        );
    }
    let run = |cwd: &Path, args: &[&str], url: &str, certs: &Path| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tafel"));
        cmd.current_dir(cwd).args(args);
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
            cmd.env_remove(k);
        }
        cmd.env("TAFEL_DATABASE_URL", url)
            .env("TAFEL_CERTS_DIR", certs)
            .env("TAFEL_LOG_LEVEL", "error")
            .output()
            .unwrap()
    };
    let o = run(dir.path(), &["backup", "b"], &src, &certs);
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.path().join("b/tafel.pgdump").is_file());
    assert!(text(&o).contains("3 devices"), "{}", text(&o));

    let new_certs = dir.path().join("fresh/certs");
    let o = run(dir.path(), &["restore", "b"], &dst, &new_certs);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("3 devices"), "{}", text(&o));
    // The database now holds tafel's tables: not again without --force.
    let line = error_line(&run(
        dir.path(),
        &["restore", "b"],
        &dst,
        &dir.path().join("elsewhere"),
    ));
    assert!(line.contains("--force"), "{line}");

    let mut c = diesel::PgConnection::establish(&dst).unwrap();
    use tafel::db::schema::devices;
    let restored: BTreeSet<String> = devices::table
        .select(devices::udid)
        .load::<Option<String>>(&mut c)
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(restored, udids);
    drop(c);
    drop(app);
    for name in [&src_name, &dst_name] {
        let _ = admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"));
    }
}
