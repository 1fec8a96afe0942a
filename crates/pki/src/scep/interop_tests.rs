//! Interoperability with micromdm's `scepclient` (Debian package `scep`): a real SCEP client against our message layer over HTTP.
//!
//! A minimal HTTP/1.1 server on 127.0.0.1 answers GetCACaps, GetCACert and
//! PKIOperation (POST, and GET with `message=`) with the functions of
//! `scep.rs`. Without `/usr/bin/scepclient` the tests skip with a note, but
//! fail when `CI=true`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;

use openssl::nid::Nid;

use super::*;

const SCEPCLIENT: &str = "/usr/bin/scepclient";
const CHALLENGE: &str = "secret";
/// Capabilities without POSTPKIOperation/SCEPStandard: the client must GET.
const GET_ONLY_CAPS: &str = "AES\nRenewal\nSHA-256\n";

/// One PKIOperation as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    message_type: Option<MessageType>,
    digest: Option<Nid>,
    answer: String,
}

/// Our CA behind a throw-away SCEP endpoint: `/scep` advertises [`CA_CAPS`],
/// `/scep-get` [`GET_ONLY_CAPS`].
struct TestServer {
    url: String,
    ca: Arc<CertificateAuthority>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let ca = Arc::new(CertificateAuthority::generate("tafel SCEP interop CA", 30).unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (server_ca, server_seen) = (Arc::clone(&ca), Arc::clone(&seen));
        // The thread ends with the test process; it only ever blocks in accept.
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                handle(stream, &server_ca, &server_seen);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}"),
            ca,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, ca: &CertificateAuthority, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).unwrap();

    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap(), parts.next().unwrap());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let params: HashMap<String, String> = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect();
    let operation = params.get("operation").map(String::as_str);

    let (status, content_type, body) = match (method, operation) {
        ("GET", Some("GetCACaps")) => {
            let caps = if path == "/scep-get" {
                GET_ONLY_CAPS
            } else {
                get_ca_caps()
            };
            ("200 OK", "text/plain", caps.as_bytes().to_vec())
        }
        ("GET", Some("GetCACert")) => {
            let (content_type, der) = get_ca_cert(ca).unwrap();
            ("200 OK", content_type, der)
        }
        ("POST", Some("PKIOperation")) => pki_operation("POST", &body, ca, seen),
        ("GET", Some("PKIOperation")) => {
            let der = decode_get_message(params.get("message").map_or("", String::as_str));
            match der {
                Ok(der) => pki_operation("GET", &der, ca, seen),
                Err(e) => ("400 Bad Request", "text/plain", e.to_string().into_bytes()),
            }
        }
        _ => ("404 Not Found", "text/plain", b"unknown operation".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body).unwrap();
}

/// The policy a real server applies: PKCSReq needs the challenge, RenewalReq
/// a signer certificate we issued.
fn pki_operation(
    method: &str,
    der: &[u8],
    ca: &CertificateAuthority,
    seen: &Mutex<Vec<Seen>>,
) -> (&'static str, &'static str, Vec<u8>) {
    let mut record = Seen {
        method: method.to_owned(),
        message_type: None,
        digest: None,
        answer: String::new(),
    };
    let reply = match parse_request(der, ca) {
        Ok(req) => {
            record.message_type = Some(req.message_type);
            record.digest = Some(req.digest.type_());
            let verdict = match req.message_type {
                MessageType::PkcsReq if req.challenge_password.as_deref() == Some(CHALLENGE) => {
                    Ok(())
                }
                MessageType::RenewalReq => ca
                    .verify_issued(&req.signer_cert, None)
                    .map_err(|_| FailInfo::BadRequest),
                _ => Err(FailInfo::BadRequest),
            };
            match verdict {
                Ok(()) => {
                    let csr = req.csr.as_ref().unwrap();
                    let issued = ca
                        .issue_client_cert(&csr.public_key().unwrap(), csr.subject_name(), 30)
                        .unwrap();
                    record.answer = "SUCCESS".into();
                    Ok(cert_rep_success(&req, &issued, ca).unwrap())
                }
                Err(fail_info) => {
                    record.answer = fail_info.to_string();
                    Ok(cert_rep_failure(&req.failure_context(), fail_info, ca).unwrap())
                }
            }
        }
        Err(ScepError::Rejected {
            context: Some(context),
            fail_info,
            reason,
        }) => {
            record.answer = format!("{fail_info}: {reason}");
            Ok(cert_rep_failure(&context, fail_info, ca).unwrap())
        }
        Err(e) => {
            record.answer = e.to_string();
            Err(e.to_string())
        }
    };
    seen.lock().unwrap().push(record);
    match reply {
        Ok(body) => ("200 OK", PKI_MESSAGE_CONTENT_TYPE, body),
        Err(e) => ("400 Bad Request", "text/plain", e.into_bytes()),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The scepclient binary, or `None` (with a note) when it is not installed.
fn scepclient() -> Option<&'static str> {
    if Path::new(SCEPCLIENT).exists() {
        return Some(SCEPCLIENT);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {SCEPCLIENT} is missing: apt-get install scep"
    );
    eprintln!("skipped: {SCEPCLIENT} not installed (Debian package `scep`)");
    None
}

fn run(client: &str, args: &[&str]) -> Output {
    Command::new(client).args(args).output().unwrap()
}

fn describe(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn common_name(cert: &X509Ref) -> String {
    let entry = cert.subject_name().entries_by_nid(Nid::COMMONNAME).next();
    String::from_utf8(entry.unwrap().data().as_slice().to_vec()).unwrap()
}

#[test]
fn scepclient_enrols_over_post_then_renews_over_get() {
    let Some(client) = scepclient() else { return };
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    let key = key.to_str().unwrap();
    let cert_path = dir.path().join("client.pem");

    let enrol = run(
        client,
        &[
            "-server-url",
            &format!("{}/scep", server.url),
            "-private-key",
            key,
            "-challenge",
            CHALLENGE,
            "-cn",
            "test",
        ],
    );
    assert!(enrol.status.success(), "{}", describe(&enrol));
    let issued = X509::from_pem(&std::fs::read(&cert_path).unwrap()).unwrap();
    server.ca.verify_issued(&issued, None).unwrap();
    assert_eq!(common_name(&issued), "test");

    let renew = run(
        client,
        &[
            "-server-url",
            &format!("{}/scep-get", server.url),
            "-private-key",
            key,
            "-certificate",
            cert_path.to_str().unwrap(),
            "-cn",
            "test",
        ],
    );
    assert!(renew.status.success(), "{}", describe(&renew));
    let renewed = X509::from_pem(&std::fs::read(&cert_path).unwrap()).unwrap();
    server.ca.verify_issued(&renewed, None).unwrap();
    assert_ne!(
        renewed.serial_number().to_bn().unwrap(),
        issued.serial_number().to_bn().unwrap()
    );

    let seen = server.seen();
    eprintln!("scepclient requests: {seen:?}");
    let summary: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.message_type, s.answer.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST", Some(MessageType::PkcsReq), "SUCCESS"),
            ("GET", Some(MessageType::RenewalReq), "SUCCESS"),
        ],
        "{seen:?}"
    );
}

#[test]
fn scepclient_reads_our_failure_for_a_wrong_challenge() {
    let Some(client) = scepclient() else { return };
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");

    let refused = run(
        client,
        &[
            "-server-url",
            &format!("{}/scep", server.url),
            "-private-key",
            key.to_str().unwrap(),
            "-challenge",
            "guessed",
            "-cn",
            "test",
        ],
    );
    assert!(!refused.status.success(), "{}", describe(&refused));
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(stdout.contains("badRequest"), "{}", describe(&refused));
    assert!(!dir.path().join("client.pem").exists());
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].answer, "badRequest");
}
