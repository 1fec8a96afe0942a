//! The enrollment profile (`.mobileconfig`): our root CA, a SCEP payload with a
//! one-time challenge, and the MDM payload (`mdm/profiles/com.apple.mdm.yaml`,
//! `com.apple.security.scep.yaml`, `com.apple.security.root.yaml`).

use plist::{Dictionary, Value};

/// Every access right of `mdm/profiles/com.apple.mdm.yaml` (bits 1 … 4096): schools
/// manage their own iPads fully.
pub const ALL_ACCESS_RIGHTS: i64 = 8191;

/// What goes into an enrollment profile.
pub struct EnrollmentProfile<'a> {
    /// Organisation shown on the device (the school authority).
    pub organization: &'a str,
    /// Name shown on the device (the school).
    pub display_name: &'a str,
    /// Stable identifier prefix, e.g. `de.tafel.norderstedt`.
    pub identifier: &'a str,
    /// Our root CA, DER.
    pub ca_der: &'a [u8],
    /// SCEP URL.
    pub scep_url: &'a str,
    /// One-time challenge.
    pub challenge: &'a str,
    /// Subject CN for the identity certificate.
    pub subject_cn: &'a str,
    /// APNs topic of the authority.
    pub topic: &'a str,
    /// Command endpoint.
    pub server_url: &'a str,
    /// Check-in endpoint.
    pub check_in_url: &'a str,
    /// The user may not remove the profile (ADE: supervised, not removable).
    pub removal_disallowed: bool,
}

fn string(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn payload(kind: &str, identifier: String, uuid: &str, name: &str) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("PayloadType".into(), string(kind));
    d.insert("PayloadVersion".into(), Value::Integer(1.into()));
    d.insert("PayloadIdentifier".into(), Value::String(identifier));
    d.insert("PayloadUUID".into(), string(uuid));
    d.insert("PayloadDisplayName".into(), string(name));
    d
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

impl EnrollmentProfile<'_> {
    /// The unsigned profile as an XML plist.
    pub fn to_xml(&self) -> Vec<u8> {
        let scep_uuid = uuid();

        let mut root = payload(
            "com.apple.security.root",
            format!("{}.ca", self.identifier),
            &uuid(),
            "tafel Root CA",
        );
        root.insert("PayloadContent".into(), Value::Data(self.ca_der.to_vec()));

        let mut scep_content = Dictionary::new();
        scep_content.insert("URL".into(), string(self.scep_url));
        scep_content.insert("Name".into(), string("tafel"));
        scep_content.insert("Challenge".into(), string(self.challenge));
        scep_content.insert("Keysize".into(), Value::Integer(2048.into()));
        scep_content.insert("Key Type".into(), string("RSA"));
        // 1 signing | 4 encryption (`com.apple.security.scep.yaml`).
        scep_content.insert("Key Usage".into(), Value::Integer(5.into()));
        scep_content.insert(
            "CAFingerprint".into(),
            Value::Data(openssl::sha::sha256(self.ca_der).to_vec()),
        );
        // Subject: an array of RDNs, each an array of [OID-or-name, value] pairs.
        let cn = Value::Array(vec![string("CN"), string(self.subject_cn)]);
        let o = Value::Array(vec![string("O"), string(self.organization)]);
        scep_content.insert(
            "Subject".into(),
            Value::Array(vec![Value::Array(vec![o]), Value::Array(vec![cn])]),
        );
        let mut scep = payload(
            "com.apple.security.scep",
            format!("{}.scep", self.identifier),
            &scep_uuid,
            "Device identity",
        );
        scep.insert("PayloadContent".into(), Value::Dictionary(scep_content));

        let mut mdm = payload(
            "com.apple.mdm",
            format!("{}.mdm", self.identifier),
            &uuid(),
            "Device management",
        );
        mdm.insert("IdentityCertificateUUID".into(), string(&scep_uuid));
        mdm.insert("Topic".into(), string(self.topic));
        mdm.insert("ServerURL".into(), string(self.server_url));
        mdm.insert("CheckInURL".into(), string(self.check_in_url));
        mdm.insert("SignMessage".into(), Value::Boolean(true));
        mdm.insert("CheckOutWhenRemoved".into(), Value::Boolean(true));
        mdm.insert(
            "AccessRights".into(),
            Value::Integer(ALL_ACCESS_RIGHTS.into()),
        );
        mdm.insert(
            "ServerCapabilities".into(),
            Value::Array(vec![string("com.apple.mdm.bootstraptoken")]),
        );

        let mut top = payload(
            "Configuration",
            self.identifier.to_owned(),
            &uuid(),
            self.display_name,
        );
        top.insert("PayloadOrganization".into(), string(self.organization));
        top.insert(
            "PayloadDescription".into(),
            string("Enrolls this iPad in the school's device management (tafel)."),
        );
        top.insert(
            "PayloadRemovalDisallowed".into(),
            Value::Boolean(self.removal_disallowed),
        );
        top.insert(
            "PayloadContent".into(),
            Value::Array(vec![
                Value::Dictionary(root),
                Value::Dictionary(scep),
                Value::Dictionary(mdm),
            ]),
        );
        let mut out = Vec::new();
        // Writing a plist into a Vec cannot fail for these value types.
        let _ = Value::Dictionary(top).to_writer_xml(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mdm_payload_points_at_the_scep_identity() {
        let xml = EnrollmentProfile {
            organization: "Stadt Norderstedt",
            display_name: "Gymnasium Nord",
            identifier: "de.tafel.norderstedt",
            ca_der: b"ca",
            scep_url: "https://mdm.example/scep",
            challenge: "secret",
            subject_cn: "tafel device",
            topic: "com.apple.mgmt.External.x",
            server_url: "https://mdm.example/mdm/connect",
            check_in_url: "https://mdm.example/mdm/checkin",
            removal_disallowed: false,
        }
        .to_xml();
        let v = Value::from_reader_xml(&xml[..]).unwrap();
        let content = v.as_dictionary().unwrap()["PayloadContent"]
            .as_array()
            .unwrap();
        let scep = content[1].as_dictionary().unwrap();
        let mdm = content[2].as_dictionary().unwrap();
        assert_eq!(
            scep["PayloadType"].as_string(),
            Some("com.apple.security.scep")
        );
        assert_eq!(mdm["IdentityCertificateUUID"], scep["PayloadUUID"]);
        assert_eq!(mdm["SignMessage"].as_boolean(), Some(true));
        assert_eq!(mdm["CheckOutWhenRemoved"].as_boolean(), Some(true));
        assert_eq!(mdm["AccessRights"].as_signed_integer(), Some(8191));
        assert_eq!(
            scep["PayloadContent"].as_dictionary().unwrap()["Challenge"].as_string(),
            Some("secret")
        );
        assert!(content[0].as_dictionary().unwrap()["PayloadContent"]
            .as_data()
            .is_some());
    }
}
