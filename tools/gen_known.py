#!/usr/bin/env python3
"""Generate crates/profiles/src/known.rs from Apple's profile schema.

Usage (from the repository root):

    python3 tools/gen_known.py [SCHEMA_DIR] [OUT_FILE]

SCHEMA_DIR defaults to /work/shared/reference/apple-device-management/mdm/profiles
(Apple's apple/device-management repository, folder mdm/profiles), OUT_FILE to
crates/profiles/src/known.rs next to this script's parent folder. Needs PyYAML.
The output is deterministic: running it twice on the same schema gives the same file.

What it emits, for every payload type (TopLevel and CommonPayloadKeys are emitted
as the two tables for the profile's outer dictionary and for keys every payload has):
key name, plist type, required flag, the `rangelist` (strings or integers), where
the key works on iOS (available / supervised only / forbidden on Shared iPad,
inherited from the payload as docs/schema.md describes) and the nested subkeys.
"""

import glob
import os
import sys

import yaml

DEFAULT_SCHEMA = "/work/shared/reference/apple-device-management/mdm/profiles"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "crates", "profiles", "src", "known.rs")

# Dictionaries whose schema lists one *labelled* child although the real keys are
# free-form (printer names, realms, language codes, preference keys). We turn the
# label into ANY so that validation neither warns about every real key nor demands
# the label as a required key. Path = file stem + dotted key path.
MAP_LIKE = {
    "TopLevel:ConsentText",  # {"en": "...", "default": "..."}; the inner ANY is the string
    "com.apple.mcxprinting:UserPrinterList",
    "com.apple.extensiblesso(kerberos):ExtensionData.domainRealmMapping",
    "com.apple.ManagedClient.preferences:PayloadContent.ANY.Forced.Settings",
    "com.apple.ManagedClient.preferences:PayloadContent.ANY.Set-Once.Settings",
}

TYPES = {
    "<string>": "String",
    "<integer>": "Integer",
    "<boolean>": "Boolean",
    "<real>": "Real",
    "<date>": "Date",
    "<data>": "Data",
    "<array>": "Array",
    "<dictionary>": "Dictionary",
    "<any>": "Any",
}

IOS_CONSTS = {
    (False, False, True): "NO_IOS",
    (False, False, False): "NO_IOS",
    (False, True, True): "NO_IOS",
    (False, True, False): "NO_IOS",
    (True, False, True): "IOS",
    (True, True, True): "IOS_SUP",
    (True, False, False): "IOS_NOT_SHARED",
    (True, True, False): "IOS_SUP_NOT_SHARED",
}


def rust_str(s):
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ord(ch) < 0x20:
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def merge_ios(base, own):
    """Key-level supportedOS.iOS overrides the inherited one field by field."""
    merged = dict(base or {})
    for field, value in (own or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(field), dict):
            inner = dict(merged[field])
            inner.update(value)
            merged[field] = inner
        else:
            merged[field] = value
    return merged


def ios_flags(ios):
    available = bool(ios) and ios.get("introduced") != "n/a" and "removed" not in ios
    supervised = bool(ios.get("supervised", False)) if ios else False
    shared_ok = (ios.get("sharedipad") or {}).get("mode") != "forbidden" if ios else True
    return IOS_CONSTS[(available, supervised, shared_ok)]


class Emitter:
    def __init__(self):
        self.statics = []  # (name, body lines)
        self.by_body = {}  # body text -> name

    def key_list(self, keys, ios_base, path, stem, visiting):
        """Emit a static for a list of keys; returns its name (or None for empty)."""
        if not keys:
            return None
        entries = []
        for key in keys:
            entries.append(self.key_entry(key, ios_base, path, stem, visiting | {id(keys)}))
        body = "\n".join("    " + e + "," for e in entries)
        if body in self.by_body:
            return self.by_body[body]
        name = "K%d" % len(self.statics)
        self.statics.append((name, len(entries), body))
        self.by_body[body] = name
        return name

    def key_entry(self, key, ios_base, path, stem, visiting):
        name = key["key"]
        ty = TYPES[key["type"]]
        required = key.get("presence") == "required"
        ios = merge_ios(ios_base, (key.get("supportedOS") or {}).get("iOS"))
        full = (path + "." + name) if path else name
        subkeys = key.get("subkeys")
        if subkeys is not None and id(subkeys) in visiting:
            # A recursive definition (home screen folders): stop checking below here.
            subkeys = None
        if "%s:%s" % (stem, full) in MAP_LIKE and subkeys and len(subkeys) == 1:
            label = subkeys[0]
            if stem == "TopLevel" and label.get("subkeys"):
                label = label["subkeys"][0]
            label = dict(label)
            label["key"] = "ANY"
            label["presence"] = "optional"
            subkeys = [label]
        sub = self.key_list(subkeys, ios, full, stem, visiting) if subkeys else None
        return "k(%s, T::%s, %s, %s, %s, %s)" % (
            rust_str(name),
            ty,
            "true" if required else "false",
            allowed(key),
            ios_flags(ios),
            ("&" + sub) if sub else "&[]",
        )


def allowed(key):
    values = key.get("rangelist")
    if not values:
        return "ANYTHING"
    if all(isinstance(v, str) for v in values):
        return "Allowed::Strings(&[%s])" % ", ".join(rust_str(v) for v in values)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "Allowed::Integers(&[%s])" % ", ".join(str(v) for v in values)
    return "ANYTHING"  # reals (safariAcceptCookies): not checked


def merged_keys(docs):
    """One key list for a payload type described by several files (com.apple.MCX)."""
    if len(docs) == 1:
        return docs[0].get("payloadkeys") or []
    seen = {}
    order = []
    for doc in docs:
        for key in doc.get("payloadkeys") or []:
            name = key["key"]
            if name not in seen:
                seen[name] = []
                order.append(name)
            seen[name].append(key)
    out = []
    for name in order:
        variants = seen[name]
        first = dict(variants[0])
        same = all(yaml.safe_dump(v) == yaml.safe_dump(variants[0]) for v in variants)
        if not same:
            types = {v["type"] for v in variants}
            first["type"] = variants[0]["type"] if len(types) == 1 else "<any>"
            first.pop("subkeys", None)
            first.pop("rangelist", None)
        in_all = len(variants) == len(docs)
        if not (in_all and all(v.get("presence") == "required" for v in variants)):
            first["presence"] = "optional"
        out.append(first)
    return out


def main():
    schema = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SCHEMA
    out_path = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    by_type = {}
    stems = {}
    for path in sorted(glob.glob(os.path.join(schema, "*.yaml"))):
        with open(path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh)
        ptype = doc["payload"]["payloadtype"]
        by_type.setdefault(ptype, []).append(doc)
        stems.setdefault(ptype, []).append(os.path.splitext(os.path.basename(path))[0])
    if "TopLevel" not in by_type or "CommonPayloadKeys" not in by_type:
        sys.exit("schema folder lacks TopLevel.yaml / CommonPayloadKeys.yaml: %s" % schema)

    em = Emitter()
    tables = {}
    payload_ios = {}
    for ptype in sorted(by_type):
        docs = by_type[ptype]
        ios = (docs[0]["payload"].get("supportedOS") or {}).get("iOS")
        payload_ios[ptype] = ios_flags(merge_ios({}, ios)) if ios else "NO_IOS"
        # MAP_LIKE paths are per file; with merged files the first stem applies.
        stem = stems[ptype][0]
        tables[ptype] = em.key_list(merged_keys(docs), ios, "", stem, frozenset())

    payload_types = [t for t in sorted(by_type) if t not in ("TopLevel", "CommonPayloadKeys")]
    lines = [
        "//! Apple's profile payload schema as data: generated by `tools/gen_known.py`, do not edit.",
        "//!",
        "//! Source: Apple's device-management schema, `mdm/profiles/*.yaml` (%d files, %d payload"
        % (sum(len(v) for v in stems.values()), len(payload_types)),
        "//! types). Regenerate with `python3 tools/gen_known.py <path to mdm/profiles>`.",
        "",
        "use super::schema::{Allowed, KeySpec, KeyType as T, PayloadSpec, key as k};",
        "use super::schema::{ANYTHING, IOS, IOS_NOT_SHARED, IOS_SUP, IOS_SUP_NOT_SHARED, NO_IOS};",
        "",
        "/// Every `PayloadType` Apple's schema defines, sorted bytewise.",
        "pub static KNOWN_PAYLOAD_TYPES: &[&str] = &[",
    ]
    lines += ["    %s," % rust_str(t) for t in payload_types]
    lines += ["];", ""]

    def table_ref(ptype):
        name = tables[ptype]
        return ("&" + name) if name else "&[]"

    lines += [
        "/// Keys of the profile's outer dictionary (`TopLevel.yaml`).",
        "pub static TOP_LEVEL_KEYS: &[KeySpec] = %s;" % table_ref("TopLevel"),
        "",
        "/// Keys every payload dictionary has (`CommonPayloadKeys.yaml`).",
        "pub static COMMON_PAYLOAD_KEYS: &[KeySpec] = %s;" % table_ref("CommonPayloadKeys"),
        "",
        "/// One entry per payload type, sorted by type for binary search.",
        "pub static PAYLOADS: &[PayloadSpec] = &[",
    ]
    for ptype in payload_types:
        lines.append(
            "    PayloadSpec { payload_type: %s, ios: %s, keys: %s },"
            % (rust_str(ptype), payload_ios[ptype], table_ref(ptype))
        )
    lines += ["];", ""]
    for name, count, body in em.statics:
        lines.append("static %s: [KeySpec; %d] = [" % (name, count))
        lines.append(body)
        lines.append("];")
    text = "\n".join(lines) + "\n"
    with open(out_path, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("wrote %s: %d payload types, %d key tables" % (out_path, len(payload_types), len(em.statics)))


if __name__ == "__main__":
    main()
