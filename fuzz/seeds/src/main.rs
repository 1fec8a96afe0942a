//! Writes real inputs into `fuzz/corpus/<target>/`: check-in messages and command
//! reports as iPads send them (XML and binary), Mdm-Signatures over bodies, SCEP
//! PKCSReq and RenewalReq messages, and the built-in profiles. The fuzzers start from
//! these and keep what reaches new code.

use std::path::{Path, PathBuf};

use plist::{Dictionary, Value};
use tafel::pki::{cms, scep, CertificateAuthority};
use tafel::protocol::{
    Authenticate, CheckOut, CheckinMessage, Command, ConnectReport, EnrollmentIds, PushMagic,
    PushToken, Status, TokenUpdate, Udid, INVENTORY_QUERIES,
};
use tafel_sim::device::{error_chain, Answer, SimDevice};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn binary(xml: &[u8]) -> Vec<u8> {
    let v = Value::from_reader_xml(xml).unwrap();
    let mut out = Vec::new();
    v.to_writer_binary(&mut out).unwrap();
    out
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let udid = Udid::parse("00008103-000A1B2C3D4E5F60").unwrap();
    let ids = EnrollmentIds::device(udid.clone());

    // Check-in messages.
    let dir = root.join("checkin");
    let messages = [
        CheckinMessage::Authenticate(Authenticate {
            enrollment: ids.clone(),
            topic: Some("com.apple.mgmt.External.tafel".into()),
            os_version: Some("18.1".into()),
            build_version: Some("22B83".into()),
            product_name: Some("iPad13,18".into()),
            serial_number: Some("DMPXYZ12345".into()),
            ..Authenticate::default()
        }),
        CheckinMessage::TokenUpdate(TokenUpdate {
            enrollment: ids.clone(),
            topic: Some("com.apple.mgmt.External.tafel".into()),
            token: PushToken::new(vec![7; 32]),
            push_magic: PushMagic::new("5E0D1E2F-0000-4A4B-8C8D-000000000001"),
            unlock_token: Some(vec![0xAB; 64]),
            awaiting_configuration: true,
            not_on_console: false,
        }),
        CheckinMessage::CheckOut(CheckOut {
            enrollment: ids.clone(),
            topic: Some("com.apple.mgmt.External.tafel".into()),
        }),
    ];
    for (i, m) in messages.iter().enumerate() {
        let xml = m.to_xml();
        write(&dir, &format!("{i}-{}.xml", m.message_type()), &xml);
        write(&dir, &format!("{i}-{}.bplist", m.message_type()), &binary(&xml));
    }
    for (name, text) in [
        ("declarative.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>MessageType</key><string>DeclarativeManagement</string><key>UDID</key><string>00008103-000A1B2C3D4E5F60</string><key>Endpoint</key><string>declaration-items</string><key>Data</key><data>e30=</data></dict></plist>"),
        ("bootstrap.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>MessageType</key><string>SetBootstrapToken</string><key>UDID</key><string>00008103-000A1B2C3D4E5F60</string><key>BootstrapToken</key><data>AAECAwQ=</data></dict></plist>"),
        ("user.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict><key>MessageType</key><string>UserAuthenticate</string><key>UDID</key><string>00008103-000A1B2C3D4E5F60</string><key>UserID</key><string>A1B2</string></dict></plist>"),
    ] {
        write(&dir, name, text.as_bytes());
    }

    // Command reports: the answers a simulated iPad gives to the inventory commands.
    let dir = root.join("command_report");
    let key = tafel_sim::enroll::new_key().unwrap();
    let ca = CertificateAuthority::generate("seed CA", 30).unwrap();
    let public = openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
    let mut name = openssl::x509::X509Name::builder().unwrap();
    name.append_entry_by_text("CN", "seed device").unwrap();
    let name = name.build();
    let cert = ca.issue_client_cert(&public, &name, 30).unwrap();
    let mut ipad = SimDevice::new(
        reqwest_client(),
        "http://127.0.0.1",
        udid.clone(),
        "DMPXYZ12345".into(),
        key.clone(),
        cert.clone(),
    );
    ipad.apps.insert("com.apple.Keynote".into());
    ipad.profiles.insert("de.schule.wifi".into());
    write(&dir, "idle.xml", &ConnectReport::idle(udid.clone()).to_xml());
    for cmd in [
        Command::device_information(INVENTORY_QUERIES),
        Command::installed_application_list(),
        Command::managed_application_list(),
        Command::profile_list(),
        Command::security_info(),
    ] {
        let Answer::Acknowledged(extra) = ipad.execute(&cmd) else {
            continue;
        };
        let xml = ConnectReport::answer(udid.clone(), Status::Acknowledged, Some(cmd.command_uuid.clone()), extra).to_xml();
        write(&dir, &format!("{}.xml", cmd.request_type), &xml);
        write(&dir, &format!("{}.bplist", cmd.request_type), &binary(&xml));
    }
    let cmd = Command::profile_list();
    write(&dir, "notnow.xml", &ConnectReport::answer(udid.clone(), Status::NotNow, Some(cmd.command_uuid.clone()), Dictionary::new()).to_xml());
    write(&dir, "error.xml", &ConnectReport::answer(udid.clone(), Status::Error, Some(cmd.command_uuid), error_chain(12021, "MCInstallationErrorDomain", "The profile could not be installed.")).to_xml());

    // Mdm-Signatures: [length of the signature, 2 bytes][signature][body].
    let dir = root.join("cms_signature");
    for (i, body) in [
        messages[0].to_xml(),
        ConnectReport::idle(udid.clone()).to_xml(),
        b"{}".to_vec(),
    ]
    .iter()
    .enumerate()
    {
        for (kind, sig) in [
            ("der", cms::sign_detached(body, &cert, &key).unwrap()),
            ("ber", cms::sign_detached_ber_indefinite(body, &cert, &key).unwrap()),
        ] {
            let mut input = (sig.len() as u16).to_be_bytes().to_vec();
            input.extend_from_slice(&sig);
            input.extend_from_slice(body);
            write(&dir, &format!("{i}-{kind}.bin"), &input);
        }
    }

    // SCEP: a PKCSReq with a challenge, a RenewalReq signed with an identity.
    let dir = root.join("scep_pki_operation");
    let csr = scep::csr_with_challenge(&key, &name, "a-one-time-challenge").unwrap();
    let self_signed = scep::self_signed_for_csr(&key, &name).unwrap();
    let (req, _, _) = scep::build_pkcs_req(&csr, &self_signed, &key, ca.cert(), scep::MessageType::PkcsReq).unwrap();
    write(&dir, "pkcsreq.der", &req);
    let renewal_csr = scep::build_csr(&key, &name, None).unwrap();
    let (renewal, _, _) = scep::build_pkcs_req(&renewal_csr, &cert, &key, ca.cert(), scep::MessageType::RenewalReq).unwrap();
    write(&dir, "renewalreq.der", &renewal);
    write(&dir, "get-message.txt", tafel_base64(&req).as_bytes());
    write(&dir, "empty-sequence.der", &[0x30, 0x00]);
    write(&dir, "garbage.bin", b"not a pki message");

    // Profiles: the built-in ones, XML and binary.
    let dir = root.join("profile_upload");
    let profiles = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    for entry in std::fs::read_dir(profiles).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "mobileconfig") {
            let bytes = std::fs::read(&path).unwrap();
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            write(&dir, &format!("{stem}.mobileconfig"), &bytes);
            if let Ok(v) = Value::from_reader_xml(&bytes[..]) {
                let mut out = Vec::new();
                v.to_writer_binary(&mut out).unwrap();
                write(&dir, &format!("{stem}.bplist"), &out);
            }
        }
    }
    println!("corpora written under {}", root.display());
}

fn reqwest_client() -> reqwest::Client {
    reqwest::Client::new()
}

fn tafel_base64(bytes: &[u8]) -> String {
    use openssl::base64::encode_block;
    encode_block(bytes)
}
