//! The `tafel` binary: help, init, migrate, and one clear line for every start failure.

use std::process::{Command, Output};

fn tafel(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tafel"));
    cmd.current_dir(dir).args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TAFEL_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The error is one line, names the problem, and is not a panic.
fn assert_one_clear_line(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected failure");
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("tafel: error"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(needle), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_explains_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let o = tafel(dir.path(), &["--help"], &[]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for sub in ["serve", "init", "migrate", "backup", "restore"] {
        assert!(out.contains(sub), "{out}");
    }
    let o = tafel(dir.path(), &["init", "--help"], &[]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--force"));
}

#[test]
fn init_writes_private_keys_0600_and_keeps_them() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let o = tafel(dir.path(), &["init"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = dir.path().join("certs/ca.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&key).unwrap();
    let o = tafel(dir.path(), &["init"], &[]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("kept"));
    assert_eq!(before, std::fs::read(&key).unwrap());
}

#[test]
fn migrate_applies_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db/t.db").display());
    let o = tafel(dir.path(), &["migrate"], &[("TAFEL_DATABASE_URL", &url)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("applied"));
    let o = tafel(dir.path(), &["migrate"], &[("TAFEL_DATABASE_URL", &url)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("up to date"));
}

#[test]
fn bad_configuration_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    assert_one_clear_line(
        &tafel(dir.path(), &["serve"], &[("TAFEL_LISTN", "x")]),
        "listn",
    );
    assert_one_clear_line(
        &tafel(
            dir.path(),
            &["serve"],
            &[("TAFEL_DATABASE_URL", "sqlit://x.db")],
        ),
        "database_url",
    );
    std::fs::write(dir.path().join("tafel.toml"), "workers = \"many\"\n").unwrap();
    assert_one_clear_line(&tafel(dir.path(), &["serve"], &[]), "workers");
    std::fs::remove_file(dir.path().join("tafel.toml")).unwrap();
    assert_one_clear_line(
        &tafel(dir.path(), &["serve", "--config", "missing.toml"], &[]),
        "missing.toml",
    );
    // A typo'd scheme never creates a database file.
    assert!(!dir.path().join("x.db").exists());
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = tafel(dir.path(), &["serve"], &[("TAFEL_LISTEN", &addr)]);
    assert_one_clear_line(&o, "cannot listen");
}

#[test]
fn an_unreachable_database_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1.
    let o = tafel(
        dir.path(),
        &["migrate"],
        &[("TAFEL_DATABASE_URL", "postgres://tafel@127.0.0.1:1/tafel")],
    );
    assert_one_clear_line(&o, "database");
}

#[test]
fn an_mdm_vendor_signs_an_authoritys_request_for_apples_portal() {
    use base64::Engine;
    use openssl::{asn1::Asn1Time, hash::MessageDigest, pkey::PKey, rsa::Rsa};
    let dir = tempfile::tempdir().unwrap();
    let request = tafel::push::CertificateRequest::generate("Kreis Segeberg").unwrap();
    std::fs::write(dir.path().join("segeberg.csr"), request.csr_pem().unwrap()).unwrap();
    // A vendor certificate (self-issued here; Apple's comes from WWDR), DER as Apple
    // hands it out, and its key.
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let name = tafel::push::request::subject("MDM Vendor").unwrap();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let vendor = b.build();
    std::fs::write(dir.path().join("mdm.cer"), vendor.to_der().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("vendor.key"),
        key.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("issuer.pem"), vendor.to_pem().unwrap()).unwrap();

    let args = [
        "push-vendor-sign",
        "--csr",
        "segeberg.csr",
        "--vendor-cert",
        "mdm.cer",
        "--vendor-key",
        "vendor.key",
        "--chain",
        "issuer.pem",
        "--out",
        "segeberg.plist.b64",
    ];
    let o = tafel(dir.path(), &args, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("identity.apple.com/pushcert"));
    let encoded = std::fs::read_to_string(dir.path().join("segeberg.plist.b64")).unwrap();
    let xml = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap();
    let dict: plist::Dictionary = plist::from_bytes(&xml).unwrap();
    for k in [
        "PushCertRequestCSR",
        "PushCertCertificateChain",
        "PushCertSignature",
    ] {
        assert!(dict.get(k).and_then(|v| v.as_string()).is_some(), "{k}");
    }
    // The chain ends in Apple Root CA.
    assert!(dict["PushCertCertificateChain"]
        .as_string()
        .unwrap()
        .ends_with(std::str::from_utf8(tafel::ade::machine_info::APPLE_ROOT_CA_PEM).unwrap()));

    // A vendor certificate of an issuer tafel does not know needs --chain.
    let o = tafel(dir.path(), &args[..7], &[]);
    assert_one_clear_line(&o, "pass its issuer");
}
