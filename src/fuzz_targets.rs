//! Entry points for the fuzzers in `fuzz/` (cargo-fuzz, nightly): one per parser that
//! faces devices or uploads. Each takes arbitrary bytes and must return without
//! panicking, overflowing its stack or running away, whatever the bytes hold.
//!
//! `cargo test` replays the committed corpora (`fuzz/corpus/<target>/`) and every input
//! that once crashed a target (`fuzz/regressions/<target>/`) through the same functions.

use std::sync::OnceLock;

use crate::catalog::profiles;
use crate::pki::{self, scep, CertificateAuthority};
use crate::protocol::{
    CheckinMessage, ConnectReport, DeviceInformationResult, InstallApplicationResult,
    InstalledApplicationListResult, ManagedApplicationListResult, ProfileListResult,
    SecurityInfoResult,
};

/// A fuzz target: arbitrary bytes in, nothing out.
pub type Target = fn(&[u8]);

/// The fuzz targets by name (as in `fuzz/fuzz_targets/<name>.rs`).
pub const TARGETS: [(&str, Target); 5] = [
    ("checkin", checkin),
    ("command_report", command_report),
    ("cms_signature", cms_signature),
    ("scep_pki_operation", scep_pki_operation),
    ("profile_upload", profile_upload),
];

/// A check-in body (`/mdm/checkin`), after its signature checked out.
pub fn checkin(data: &[u8]) {
    let _ = CheckinMessage::parse(data);
}

/// A command report (`/mdm/connect`) and every result parser inventory runs on it.
pub fn command_report(data: &[u8]) {
    let Ok(report) = ConnectReport::parse(data) else {
        return;
    };
    let raw = &report.raw;
    let _ = DeviceInformationResult::from_report(raw);
    let _ = InstalledApplicationListResult::from_report(raw);
    let _ = ManagedApplicationListResult::from_report(raw);
    let _ = ProfileListResult::from_report(raw);
    let _ = SecurityInfoResult::from_report(raw);
    let _ = InstallApplicationResult::from_report(raw);
    let _ = report.to_xml();
}

/// An `Mdm-Signature` (CMS, detached) over a body: the first two bytes give the
/// signature's length, the signature follows, the rest is the body.
pub fn cms_signature(data: &[u8]) {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let len = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (signature, body) = rest.split_at(len);
    let _ = pki::cms::verify_detached(signature, body);
}

/// A SCEP PKIOperation message (POST body, or the decoded GET `message`).
pub fn scep_pki_operation(data: &[u8]) {
    static CA: OnceLock<Option<CertificateAuthority>> = OnceLock::new();
    let Some(ca) = CA
        .get_or_init(|| CertificateAuthority::generate("tafel fuzz CA", 30).ok())
        .as_ref()
    else {
        return;
    };
    let _ = scep::parse_request(data, ca);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scep::decode_get_message(text);
    }
}

/// A configuration profile as an admin uploads it.
pub fn profile_upload(data: &[u8]) {
    let _ = profiles::validate_profile(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz")
            .join(kind)
            .join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<u8>)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_committed_fuzz_input_runs_through_its_target() {
        for (target, run) in TARGETS {
            let corpus = inputs("corpus", target);
            assert!(
                corpus.len() >= 5,
                "fuzz/corpus/{target} holds {} inputs: the corpus belongs in the repository",
                corpus.len()
            );
            for (name, bytes) in corpus.iter().chain(&inputs("regressions", target)) {
                // A panic here names the input: fuzz/corpus|regressions/<target>/<name>.
                let outcome = std::panic::catch_unwind(|| run(bytes));
                assert!(outcome.is_ok(), "{target}: input {name} panicked");
            }
        }
    }
}
