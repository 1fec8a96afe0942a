//! Bodies no honest device sends, for tests that try the parsers' bounds.

/// `depth` nested arrays as an XML plist.
pub fn nested_xml(depth: usize) -> Vec<u8> {
    let mut s = String::from(r#"<?xml version="1.0" encoding="UTF-8"?><plist version="1.0">"#);
    s.push_str(&"<array>".repeat(depth));
    s.push_str(&"</array>".repeat(depth));
    s.push_str("</plist>");
    s.into_bytes()
}

/// `depth` nested arrays as a binary plist: object n is an array holding object n+1
/// (4-byte offsets and references).
pub fn nested_binary(depth: usize) -> Vec<u8> {
    let mut out = b"bplist00".to_vec();
    let mut offsets = Vec::with_capacity(depth);
    for n in 0..depth {
        offsets.push(u32::try_from(out.len()).unwrap_or(u32::MAX));
        if n + 1 < depth {
            out.push(0xA1);
            out.extend_from_slice(&u32::try_from(n + 1).unwrap_or(u32::MAX).to_be_bytes());
        } else {
            out.push(0xA0);
        }
    }
    let table = out.len() as u64;
    for o in &offsets {
        out.extend_from_slice(&o.to_be_bytes());
    }
    // Trailer: 6 unused bytes, offset size, reference size, object count, root, table.
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&[4, 4]);
    out.extend_from_slice(&(depth as u64).to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(&table.to_be_bytes());
    out
}
