//! Stories for the profile catalog: a school admin uploads profiles, the district renders
//! its templates per school, and nothing secret ever shows up where it should not.

use std::collections::BTreeMap;

use plist::Value;
use serde_json::json;

use super::schema::{self, KeyType};
use super::*;

const WIFI_UUID: &str = "6B1F3C2A-9D4E-4F5A-8B7C-1D2E3F4A5B6C";
const PAYLOAD_UUID: &str = "0C9D8E7F-6A5B-4C3D-2E1F-0A9B8C7D6E5F";

/// A Wi-Fi profile as Apple Configurator would export it, with `{extra}` spliced into
/// the Wi-Fi payload and `{more}` appended to PayloadContent.
fn wifi_profile(extra: &str, more: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>PayloadContent</key>
	<array>
		<dict>
			<key>AutoJoin</key>
			<true/>
			<key>EncryptionType</key>
			<string>WPA2</string>
			<key>HIDDEN_NETWORK</key>
			<false/>
			<key>Password</key>
			<string>Kreide&amp;Tafel2024</string>
			<key>PayloadDisplayName</key>
			<string>WLAN</string>
			<key>PayloadIdentifier</key>
			<string>de.schule-am-see.wifi.payload</string>
			<key>PayloadType</key>
			<string>com.apple.wifi.managed</string>
			<key>PayloadUUID</key>
			<string>{PAYLOAD_UUID}</string>
			<key>PayloadVersion</key>
			<integer>1</integer>
			<key>SSID_STR</key>
			<string>Schule-am-See</string>
			{extra}
		</dict>
		{more}
	</array>
	<key>PayloadDisplayName</key>
	<string>WLAN Schule am See</string>
	<key>PayloadIdentifier</key>
	<string>de.schule-am-see.wifi</string>
	<key>PayloadRemovalDisallowed</key>
	<false/>
	<key>PayloadType</key>
	<string>Configuration</string>
	<key>PayloadUUID</key>
	<string>{WIFI_UUID}</string>
	<key>PayloadVersion</key>
	<integer>1</integer>
</dict>
</plist>
"#
    )
}

fn payload(ty: &str, id: &str, uuid: &str) -> String {
    format!(
        "<dict><key>PayloadType</key><string>{ty}</string>\
         <key>PayloadIdentifier</key><string>{id}</string>\
         <key>PayloadUUID</key><string>{uuid}</string>\
         <key>PayloadVersion</key><integer>1</integer></dict>"
    )
}

fn issues(result: Result<ProfileInfo, ProfileError>) -> Vec<String> {
    match result {
        Err(ProfileError::Invalid(issues)) => issues.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn values(pairs: &[(&str, serde_json::Value)]) -> BTreeMap<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn wifi_values(school: &str) -> BTreeMap<String, serde_json::Value> {
    values(&[
        ("school_slug", json!(school)),
        ("school_name", json!("Grundschule am Park")),
        ("ssid", json!("Schule-WLAN")),
        ("password", json!("Sup3rGeheim!")),
    ])
}

fn sample_values(template: &Template, school: &str) -> BTreeMap<String, serde_json::Value> {
    template
        .variables
        .iter()
        .filter(|v| v.required)
        .map(|v| {
            let value = match (v.name.as_str(), v.kind) {
                ("school_slug", _) => json!(school),
                (_, VariableKind::Secret) => json!("Sup3rGeheim!"),
                (_, VariableKind::Bool) => json!(true),
                (_, VariableKind::Integer) => json!(1),
                (_, VariableKind::Slug) => json!("abc"),
                (_, VariableKind::String) => json!("Gymnasium Nord"),
            };
            (v.name.clone(), value)
        })
        .collect()
}

fn parse(bytes: &[u8]) -> plist::Dictionary {
    Value::from_reader_xml(bytes)
        .unwrap()
        .into_dictionary()
        .unwrap()
}

fn payload_dict(profile: &plist::Dictionary, i: usize) -> &plist::Dictionary {
    profile["PayloadContent"].as_array().unwrap()[i]
        .as_dictionary()
        .unwrap()
}

// --- uploads ---------------------------------------------------------------------------

#[test]
fn admin_uploads_a_wifi_profile_and_sees_what_it_is() {
    let info = validate_profile(wifi_profile("", "").as_bytes()).unwrap();
    assert_eq!(info.identifier, "de.schule-am-see.wifi");
    assert_eq!(info.uuid.to_string().to_uppercase(), WIFI_UUID);
    assert_eq!(info.display_name.as_deref(), Some("WLAN Schule am See"));
    assert_eq!(info.payload_types, ["com.apple.wifi.managed"]);
    assert_eq!(info.removal_disallowed, Some(false));
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    assert_eq!(
        profile_identifier(wifi_profile("", "").as_bytes()).unwrap(),
        "de.schule-am-see.wifi"
    );
}

#[test]
fn binary_plists_are_accepted() {
    let value = Value::from_reader_xml(wifi_profile("", "").as_bytes()).unwrap();
    let mut binary = Vec::new();
    value.to_writer_binary(&mut binary).unwrap();
    assert!(binary.starts_with(b"bplist00"));
    let info = validate_profile(&binary).unwrap();
    assert_eq!(info.identifier, "de.schule-am-see.wifi");
}

#[test]
fn an_unknown_payload_type_is_named_with_its_path() {
    let more = payload(
        "com.example.x",
        "de.schule-am-see.x",
        "11111111-2222-4333-8444-555555555555",
    );
    let found = issues(validate_profile(wifi_profile("", &more).as_bytes()));
    assert_eq!(
        found,
        [r#"PayloadContent[1].PayloadType: unknown payload type "com.example.x""#]
    );
}

#[test]
fn duplicate_payload_uuids_are_rejected() {
    let more = payload(
        "com.apple.webClip.managed",
        "de.schule-am-see.clip",
        PAYLOAD_UUID,
    )
    .replace(
        "</dict>",
        "<key>URL</key><string>https://schule.example</string>\
             <key>Label</key><string>Schule</string></dict>",
    );
    let found = issues(validate_profile(wifi_profile("", &more).as_bytes()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("PayloadContent[1].PayloadUUID: PayloadUUID"));
    assert!(found[0].contains("first at PayloadContent[0].PayloadUUID"));
}

#[test]
fn duplicate_payload_identifiers_are_rejected() {
    let more = payload(
        "com.apple.wifi.managed",
        "de.schule-am-see.wifi.payload",
        "11111111-2222-4333-8444-555555555555",
    );
    let found = issues(validate_profile(wifi_profile("", &more).as_bytes()));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("is used twice"));
}

#[test]
fn a_boolean_written_as_a_string_is_a_type_error() {
    let profile = wifi_profile("", "").replace(
        "<key>AutoJoin</key>\n\t\t\t<true/>",
        "<key>AutoJoin</key>\n\t\t\t<string>true</string>",
    );
    let found = issues(validate_profile(profile.as_bytes()));
    assert_eq!(
        found,
        ["PayloadContent[0].AutoJoin: must be boolean, found string"]
    );
}

#[test]
fn missing_identifiers_are_reported_at_both_levels() {
    let profile = wifi_profile("", "")
        .replace(
            "<key>PayloadIdentifier</key>\n\t<string>de.schule-am-see.wifi</string>",
            "",
        )
        .replace(
            "<key>PayloadIdentifier</key>\n\t\t\t<string>de.schule-am-see.wifi.payload</string>",
            "",
        );
    let found = issues(validate_profile(profile.as_bytes()));
    assert_eq!(
        found,
        [
            "PayloadIdentifier: required key is missing",
            "PayloadContent[0].PayloadIdentifier: required key is missing",
        ]
    );
}

#[test]
fn outer_rules_of_toplevel_yaml_hold() {
    let profile = wifi_profile("", "")
        .replace(
            "<string>Configuration</string>",
            "<string>Konfiguration</string>",
        )
        .replace(
            &format!("<string>{WIFI_UUID}</string>"),
            "<string>kein-uuid</string>",
        )
        .replace(
            "<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>",
            "<key>PayloadVersion</key>\n\t<integer>2</integer>\n</dict>",
        );
    let found = issues(validate_profile(profile.as_bytes()));
    assert_eq!(
        found,
        [
            r#"PayloadType: must be "Configuration", found "Konfiguration""#,
            "PayloadVersion: must be 1, found 2",
            r#"PayloadUUID: "kein-uuid" is not a UUID (8-4-4-4-12 hex digits)"#,
        ]
    );
}

#[test]
fn identifiers_must_look_like_reverse_dns() {
    let bad = wifi_profile("", "").replace(
        "<string>de.schule-am-see.wifi</string>",
        "<string>Schule am See</string>",
    );
    let found = issues(validate_profile(bad.as_bytes()));
    assert!(found[0].starts_with("PayloadIdentifier: \"Schule am See\" is not a reverse-DNS"));

    // Jamf-style bare UUIDs are accepted with a warning.
    let jamf = wifi_profile("", "").replace(
        "<string>de.schule-am-see.wifi</string>",
        "<string>2F1E0D9C-8B7A-4654-9382-A1B0C9D8E7F6</string>",
    );
    let info = validate_profile(jamf.as_bytes()).unwrap();
    assert_eq!(info.warnings.len(), 1);
    assert!(is_reverse_dns("de.tafel.wifi.gs-am-park"));
    assert!(!is_reverse_dns("de..tafel"));
}

#[test]
fn unknown_keys_and_values_are_warnings_not_errors() {
    let extra = "<key>BrandNewKey2030</key><true/>";
    let profile = wifi_profile(extra, "").replace("<string>WPA2</string>", "<string>WPA4</string>");
    let info = validate_profile(profile.as_bytes()).unwrap();
    assert_eq!(info.warnings.len(), 2, "{:?}", info.warnings);
    assert!(info.warnings[0].starts_with("PayloadContent[0].EncryptionType: \"WPA4\""));
    assert_eq!(
        info.warnings[1],
        "PayloadContent[0].BrandNewKey2030: key not in Apple's schema for com.apple.wifi.managed"
    );
}

#[test]
fn nested_dictionaries_are_checked_too() {
    let extra = "<key>EAPClientConfiguration</key><dict>\
                 <key>UserName</key><integer>7</integer></dict>";
    let found = issues(validate_profile(wifi_profile(extra, "").as_bytes()));
    assert_eq!(
        found,
        [
            "PayloadContent[0].EAPClientConfiguration.AcceptEAPTypes: required key is missing",
            "PayloadContent[0].EAPClientConfiguration.UserName: must be string, found integer",
        ]
    );
    let ok = "<key>EAPClientConfiguration</key><dict>\
              <key>AcceptEAPTypes</key><array><integer>25</integer></array></dict>";
    assert!(validate_profile(wifi_profile(ok, "").as_bytes()).is_ok());
}

#[test]
fn required_keys_of_a_payload_type_are_enforced() {
    // webClip.managed requires URL and Label.
    let more = payload(
        "com.apple.webClip.managed",
        "de.schule-am-see.clip",
        "11111111-2222-4333-8444-555555555555",
    );
    let found = issues(validate_profile(wifi_profile("", &more).as_bytes()));
    assert_eq!(
        found,
        [
            "PayloadContent[1].URL: required key is missing",
            "PayloadContent[1].Label: required key is missing",
        ]
    );
}

#[test]
fn broken_uploads_fail_cleanly() {
    assert!(matches!(
        validate_profile(b"<plist><dict><key>x</key>"),
        Err(ProfileError::Malformed(_))
    ));
    assert!(matches!(validate_profile(b""), Err(ProfileError::Empty)));
    assert!(matches!(
        validate_profile(b"{ PayloadType = Configuration; }"),
        Err(ProfileError::Malformed(_))
    ));
    assert!(matches!(
        validate_profile(&[0x30, 0x82, 0x01, 0x00, 0x06]),
        Err(ProfileError::Signed)
    ));
    let big = vec![b' '; MAX_PROFILE_BYTES + 1];
    assert!(matches!(
        validate_profile(&big),
        Err(ProfileError::TooLarge { .. })
    ));
    let root_array = br#"<?xml version="1.0"?><plist version="1.0"><array/></plist>"#;
    assert_eq!(
        issues(validate_profile(root_array)),
        ["(root): must be dictionary, found array"]
    );
    let encrypted = wifi_profile("", "").replace(
        "<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>",
        "<key>PayloadVersion</key>\n\t<integer>1</integer><key>IsEncrypted</key><true/></dict>",
    );
    assert!(matches!(
        validate_profile(encrypted.as_bytes()),
        Err(ProfileError::Encrypted)
    ));
}

#[test]
fn deep_nesting_is_refused_before_it_can_exhaust_the_stack() {
    let depth = 60_000;
    let xml = format!(
        "<plist version=\"1.0\">{}{}</plist>",
        "<array>".repeat(depth),
        "</array>".repeat(depth)
    );
    let result = validate_profile(xml.as_bytes());
    assert!(
        matches!(result, Err(ProfileError::TooDeep(MAX_DEPTH))),
        "{result:?}"
    );
}

/// A binary plist of 40 arrays, each holding the next one twice: 2^40 values when expanded.
fn binary_bomb() -> Vec<u8> {
    let levels: u8 = 40;
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for i in 0..levels {
        offsets.push(out.len() as u16);
        out.extend_from_slice(&[0xA2, i + 1, i + 1]);
    }
    offsets.push(out.len() as u16);
    out.extend_from_slice(&[0x10, 0x00]);
    let table = out.len() as u64;
    for o in &offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    out.extend_from_slice(&[0; 6]);
    out.push(2); // offset size
    out.push(1); // object ref size
    out.extend_from_slice(&(offsets.len() as u64).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes()); // root object
    out.extend_from_slice(&table.to_be_bytes());
    out
}

#[test]
fn binary_plists_that_expand_exponentially_are_refused() {
    assert!(matches!(
        validate_profile(&binary_bomb()),
        Err(ProfileError::TooManyValues(MAX_VALUES))
    ));
}

#[test]
fn schools_can_lock_a_profile_against_removal() {
    let locked = with_removal_disallowed(wifi_profile("", "").as_bytes(), true).unwrap();
    let info = validate_profile(&locked).unwrap();
    assert_eq!(info.removal_disallowed, Some(true));
    assert_eq!(info.identifier, "de.schule-am-see.wifi");

    // A binary upload comes back as XML.
    let mut binary = Vec::new();
    Value::from_reader_xml(&locked[..])
        .unwrap()
        .to_writer_binary(&mut binary)
        .unwrap();
    let unlocked = with_removal_disallowed(&binary, false).unwrap();
    assert!(unlocked.starts_with(b"<?xml"));
    assert_eq!(
        validate_profile(&unlocked).unwrap().removal_disallowed,
        Some(false)
    );

    assert!(with_removal_disallowed(b"nonsense", true).is_err());
}

#[test]
fn a_new_version_gets_a_new_outer_uuid_and_keeps_everything_else() {
    let before = validate_profile(wifi_profile("", "").as_bytes()).unwrap();
    let uuid = uuid::Uuid::new_v4();
    let after = with_payload_uuid(wifi_profile("", "").as_bytes(), &uuid).unwrap();
    let info = validate_profile(&after).unwrap();
    assert_eq!(info.uuid, uuid);
    assert_ne!(info.uuid, before.uuid);
    assert_eq!(info.identifier, before.identifier);
    assert_eq!(info.payload_types, before.payload_types);
    // The uppercase form is what iPads report in ProfileList.
    let text = String::from_utf8(after.clone()).unwrap();
    assert!(text.contains(&uuid.hyphenated().to_string().to_uppercase()));
    assert!(with_payload_uuid(b"nonsense", &uuid).is_err());

    // Only the version differs: the same content.
    let original = wifi_profile("", "");
    assert!(same_content(original.as_bytes(), &after).unwrap());
    let mut binary = Vec::new();
    Value::from_reader_xml(original.as_bytes())
        .unwrap()
        .to_writer_binary(&mut binary)
        .unwrap();
    assert!(
        same_content(&binary, &after).unwrap(),
        "binary and XML alike"
    );
    let locked = with_removal_disallowed(original.as_bytes(), true).unwrap();
    assert!(!same_content(&locked, &after).unwrap());
}

// --- templates -------------------------------------------------------------------------

#[test]
fn every_builtin_template_renders_to_a_clean_profile() {
    let templates = builtin_templates().unwrap();
    let names: Vec<&str> = templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["school-wifi", "pupil-restrictions", "exam-mode"]);
    for template in &templates {
        let bytes = template
            .render(&sample_values(template, "gs-am-park"))
            .unwrap();
        let info = validate_profile(&bytes).unwrap();
        assert!(
            info.warnings.is_empty(),
            "{}: {:?}",
            template.name,
            info.warnings
        );
        assert_eq!(info.payload_types, template.payload_types());
        assert_eq!(
            info.identifier,
            template
                .identifier_pattern()
                .replace("{{school_slug}}", "gs-am-park")
        );
        assert!(!String::from_utf8(bytes).unwrap().contains("{{"));
    }
}

/// Every setting a template makes exists in Apple's schema, works on iOS, works on a
/// Shared iPad, and has a documented reason; every documented key is a real key.
#[test]
fn every_template_setting_is_real_ios_shared_ipad_safe_and_explained() {
    for template in builtin_templates().unwrap() {
        let rendered = parse(
            &template
                .render(&sample_values(&template, "gs-am-park"))
                .unwrap(),
        );
        let payload = payload_dict(&rendered, 0);
        let spec = schema::payload_spec(payload["PayloadType"].as_string().unwrap()).unwrap();
        assert!(spec.ios.available && !spec.ios.shared_ipad_forbidden);
        for key in payload.keys().filter(|k| !k.starts_with("Payload")) {
            let k = schema::find_key(spec.keys, key).unwrap();
            assert!(k.ios.available, "{}: {key} not on iOS", template.name);
            assert!(
                !k.ios.shared_ipad_forbidden,
                "{}: {key} is forbidden on Shared iPad",
                template.name
            );
            assert!(
                template.notes.contains_key(key),
                "{}: {key} lacks a note",
                template.name
            );
        }
        for key in template.notes.keys() {
            assert!(
                spec.keys.iter().any(|k| k.key == key),
                "{}: note for {key}, which the schema lacks",
                template.name
            );
        }
    }
}

#[test]
fn booleans_and_text_are_substituted_as_plist_values() {
    let wifi = builtin_template("school-wifi").unwrap();
    let mut v = wifi_values("gs-am-park");
    v.insert("hidden".into(), json!(true));
    v.insert("ssid".into(), json!("<Schule & \"Park\"> {{password}}"));
    let bytes = wifi.render(&v).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.contains("&lt;Schule &amp; &quot;Park&quot;&gt; {{password}}"),
        "{text}"
    );
    let profile = parse(&bytes);
    let p = payload_dict(&profile, 0);
    assert_eq!(p["HIDDEN_NETWORK"], Value::Boolean(true));
    assert_eq!(p["AutoJoin"], Value::Boolean(true));
    assert_eq!(
        p["SSID_STR"].as_string(),
        Some("<Schule & \"Park\"> {{password}}")
    );
    assert_eq!(p["Password"].as_string(), Some("Sup3rGeheim!"));

    // The default applies when the variable is left out.
    let p = parse(&wifi.render(&wifi_values("gs-am-park")).unwrap());
    assert_eq!(payload_dict(&p, 0)["HIDDEN_NETWORK"], Value::Boolean(false));

    let exam = builtin_template("exam-mode").unwrap();
    let mut v = sample_values(&exam, "gs-am-park");
    let p = parse(&exam.render(&v).unwrap());
    assert_eq!(payload_dict(&p, 0)["allowSafari"], Value::Boolean(false));
    v.insert("allow_safari".into(), json!(true));
    let p = parse(&exam.render(&v).unwrap());
    assert_eq!(payload_dict(&p, 0)["allowSafari"], Value::Boolean(true));
}

#[test]
fn missing_and_unknown_variables_are_errors() {
    let wifi = builtin_template("school-wifi").unwrap();
    let mut v = wifi_values("gs-am-park");
    v.remove("ssid");
    assert!(matches!(
        wifi.render(&v),
        Err(ProfileError::MissingVariables(m)) if m == ["ssid"]
    ));
    let mut v = wifi_values("gs-am-park");
    v.insert("vlan".into(), json!(12));
    assert!(matches!(
        wifi.render(&v),
        Err(ProfileError::UnknownVariables(u)) if u == ["vlan"]
    ));
}

#[test]
fn values_must_fit_their_kind() {
    let wifi = builtin_template("school-wifi").unwrap();
    let check = |name: &str, value: serde_json::Value| {
        let mut v = wifi_values("gs-am-park");
        v.insert(name.into(), value);
        wifi.render(&v).unwrap_err()
    };
    assert!(matches!(
        check("hidden", json!("yes")),
        ProfileError::VariableType { .. }
    ));
    assert!(matches!(
        check("school_slug", json!("GS Am Park")),
        ProfileError::VariableType { .. }
    ));
    assert!(matches!(
        check("password", json!("kurz")),
        ProfileError::VariableValue { .. }
    ));
    assert!(matches!(
        check("password", json!(12345678)),
        ProfileError::VariableType { .. }
    ));
    assert!(matches!(
        check("ssid", json!("")),
        ProfileError::VariableValue { .. }
    ));
}

#[test]
fn uuids_are_stable_per_school_and_differ_between_schools() {
    let wifi = builtin_template("school-wifi").unwrap();
    let first = wifi.render(&wifi_values("gs-am-park")).unwrap();
    let again = wifi.render(&wifi_values("gs-am-park")).unwrap();
    assert_eq!(first, again, "re-rendering must be byte-identical");

    let other = wifi.render(&wifi_values("gym-nord")).unwrap();
    let a = parse(&first);
    let b = parse(&other);
    assert_ne!(a["PayloadUUID"], b["PayloadUUID"]);
    assert_ne!(
        payload_dict(&a, 0)["PayloadUUID"],
        payload_dict(&b, 0)["PayloadUUID"]
    );
    assert_ne!(a["PayloadUUID"], payload_dict(&a, 0)["PayloadUUID"]);

    // Without a key (`render`), secrets do not feed the UUIDs: a new password keeps them.
    let mut v = wifi_values("gs-am-park");
    v.insert("password".into(), json!("NeuesPasswort1"));
    let c = parse(&wifi.render(&v).unwrap());
    assert_eq!(a["PayloadUUID"], c["PayloadUUID"]);
    assert_ne!(
        payload_dict(&a, 0)["Password"],
        payload_dict(&c, 0)["Password"]
    );

    // With the installation's key (`render_keyed`, as the API renders), a new password
    // gives new UUIDs (devices holding the old version get the new one), the same values
    // the same bytes, and another installation's key other UUIDs: the UUIDs, which iPads
    // show, cannot be tested against guessed passwords without the key.
    let uuid = |key: [u8; 32], values: &std::collections::BTreeMap<String, serde_json::Value>| {
        // An HMAC-SHA256 under the installation's key, as tafel's secret box keys it.
        let keyed = |s: &[u8]| -> Result<String, String> {
            let pkey = openssl::pkey::PKey::hmac(&key).map_err(|e| e.to_string())?;
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey)
                    .map_err(|e| e.to_string())?;
            signer.update(s).map_err(|e| e.to_string())?;
            Ok(hex_string(
                &signer.sign_to_vec().map_err(|e| e.to_string())?,
            ))
        };
        let bytes = wifi.render_keyed(values, &keyed).unwrap();
        assert_eq!(bytes, wifi.render_keyed(values, &keyed).unwrap());
        parse(&bytes)["PayloadUUID"].clone()
    };
    let old = wifi_values("gs-am-park");
    assert_ne!(uuid([1; 32], &old), uuid([1; 32], &v));
    assert_ne!(uuid([1; 32], &old), uuid([2; 32], &old));
    assert_ne!(uuid([1; 32], &old), a["PayloadUUID"]);
    // Giving an optional variable its default explicitly changes nothing.
    let mut v = wifi_values("gs-am-park");
    v.insert("hidden".into(), json!(false));
    assert_eq!(wifi.render(&v).unwrap(), first);
}

#[test]
fn secrets_never_show_in_debug_output_or_errors() {
    let secret = "Sup3rGeheim!";
    let wifi = builtin_template("school-wifi").unwrap();
    assert!(!format!("{wifi:?}").contains(secret));

    let mut failing = Vec::new();
    let mut v = wifi_values("gs-am-park");
    v.remove("ssid");
    failing.push(v);
    let mut v = wifi_values("gs-am-park");
    v.insert("extra".into(), json!(secret));
    failing.push(v);
    let mut v = wifi_values("gs-am-park");
    v.insert("hidden".into(), json!(secret));
    failing.push(v);
    let mut v = wifi_values("gs-am-park");
    v.insert("school_slug".into(), json!(secret));
    failing.push(v);
    let mut v = wifi_values("gs-am-park");
    v.insert(
        "password".into(),
        json!(format!("{secret}{}", "x".repeat(60))),
    );
    failing.push(v);
    for v in failing {
        let err = wifi.render(&v).unwrap_err();
        assert!(!format!("{err:?}").contains(secret), "{err:?}");
        assert!(!err.to_string().contains(secret), "{err}");
    }
}

const META: &str = r#"{"description": "t", "variables": [
    {"name": "school_slug", "kind": "slug", "required": true, "description": "s"},
    {"name": "pw", "kind": "secret", "required": true, "description": "p"}]}"#;

fn template_xml(identifier: &str, extra: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>
        <key>PayloadType</key><string>Configuration</string>
        <key>PayloadVersion</key><integer>1</integer>
        <key>PayloadIdentifier</key><string>{identifier}</string>
        <key>PayloadContent</key><array><dict>
          <key>PayloadType</key><string>com.apple.wifi.managed</string>
          <key>PayloadVersion</key><integer>1</integer>
          <key>PayloadIdentifier</key><string>{identifier}.w</string>
          <key>Password</key><string>{{{{pw}}}}</string>
          {extra}
        </dict></array></dict></plist>"#
    )
}

fn load_error(xml: &str, meta: &str) -> String {
    match Template::load("t", xml, meta) {
        Err(ProfileError::Template { message, .. }) => message,
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn broken_templates_are_caught_when_loading() {
    let good = template_xml("de.t.{{school_slug}}", "");
    assert!(Template::load("t", &good, META).is_ok());

    let undeclared = template_xml("de.t.{{school}}", "");
    assert!(load_error(&undeclared, META).contains("undeclared variable \"school\""));

    let unused = template_xml("de.t.x", "");
    assert!(load_error(&unused, META).contains("\"school_slug\" is declared but never used"));

    let secret_in_id = template_xml("de.t.{{school_slug}}.{{pw}}", "");
    assert!(load_error(&secret_in_id, META).contains("secret \"pw\" may only be a whole value"));

    let with_uuid = template_xml(
        "de.t.{{school_slug}}",
        "<key>PayloadUUID</key><string>x</string>",
    );
    assert!(load_error(&with_uuid, META).contains("must not set PayloadUUID"));

    let in_key = template_xml("de.t.{{school_slug}}", "<key>{{pw}}</key><true/>");
    assert!(load_error(&in_key, META).contains("placeholder in key"));

    let unclosed = template_xml("de.t.{{school_slug", "");
    assert!(load_error(&unclosed, META).contains("unclosed"));

    let optional_without_default = META.replace(
        r#""kind": "slug", "required": true"#,
        r#""kind": "slug", "required": false"#,
    );
    assert!(load_error(&good, &optional_without_default).contains("needs a default"));

    let typo = META.replace("\"description\": \"t\"", "\"descripton\": \"t\"");
    assert!(load_error(&good, &typo).starts_with("metadata:"));
}

// --- the generated schema tables -------------------------------------------------------

#[test]
fn the_generated_tables_are_sorted_and_consistent() {
    let types = schema::known_payload_types();
    assert!(types.windows(2).all(|w| w[0] < w[1]));
    assert!(types.len() > 100);
    for ty in types {
        assert_eq!(schema::payload_spec(ty).map(|p| p.payload_type), Some(*ty));
    }
    assert!(schema::payload_spec("TopLevel").is_none());
    let wifi = schema::payload_spec("com.apple.wifi.managed").unwrap();
    let auto_join = schema::find_key(wifi.keys, "AutoJoin").unwrap();
    assert_eq!(auto_join.ty, KeyType::Boolean);
    let top = schema::top_level_keys();
    assert!(top.iter().any(|k| k.key == "PayloadContent" && k.required));
    let common = schema::common_payload_keys();
    assert_eq!(
        common.iter().filter(|k| k.required).count(),
        4,
        "PayloadType, PayloadIdentifier, PayloadUUID, PayloadVersion"
    );
}

#[test]
fn dates_reals_and_data_pass_the_scan_and_the_type_checks() {
    let cert = payload(
        "com.apple.security.root",
        "de.schule-am-see.root",
        "11111111-2222-4333-8444-555555555555",
    )
    .replace(
        "</dict>",
        "<key>PayloadContent</key><data>MIIBAA==</data></dict>",
    );
    let profile = wifi_profile("", &cert).replace(
        "<key>PayloadVersion</key>\n\t<integer>1</integer>\n</dict>",
        "<key>PayloadVersion</key>\n\t<integer>1</integer>\
         <key>RemovalDate</key><date>2030-07-31T12:00:00Z</date>\
         <key>DurationUntilRemoval</key><integer>3600</integer></dict>",
    );
    let info = validate_profile(profile.as_bytes()).unwrap();
    assert_eq!(
        info.payload_types,
        ["com.apple.wifi.managed", "com.apple.security.root"]
    );
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);

    let wrong = profile.replace("<data>MIIBAA==</data>", "<string>MIIBAA==</string>");
    assert_eq!(
        issues(validate_profile(wrong.as_bytes())),
        ["PayloadContent[1].PayloadContent: must be data, found string"]
    );
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
