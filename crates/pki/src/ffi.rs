//! The few OpenSSL CMS, PKCS #7 and PKCS #10 calls the `openssl` crate does not wrap; the only `unsafe` code of `pki`.
//!
//! Each wrapper takes safe `openssl` types, so callers never see a raw pointer.

use std::ffi::{c_int, c_uint, c_void};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::asn1::{Asn1ObjectRef, Asn1StringRef};
use openssl::cms::{CMSOptions, CmsContentInfoRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkcs7::{Pkcs7, Pkcs7Flags};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::{Stack, StackRef};
use openssl::x509::{X509Ref, X509ReqRef, X509};
use openssl_sys as sys;

use super::error::{PkiError, Result};

/// Opaque `CMS_SignerInfo`; we only check the pointer for null.
enum CmsSignerInfo {}

// Declared in <openssl/cms.h> but missing from openssl-sys 0.9. Stack
// returns are `STACK_OF(...)`, which is an `OPENSSL_STACK` at the ABI level.
unsafe extern "C" {
    fn CMS_add1_signer(
        cms: *mut sys::CMS_ContentInfo,
        signer: *mut sys::X509,
        pk: *mut sys::EVP_PKEY,
        md: *const sys::EVP_MD,
        flags: c_uint,
    ) -> *mut CmsSignerInfo;
    fn CMS_final(
        cms: *mut sys::CMS_ContentInfo,
        data: *mut sys::BIO,
        dcont: *mut sys::BIO,
        flags: c_uint,
    ) -> c_int;
    fn CMS_get0_SignerInfos(cms: *mut sys::CMS_ContentInfo) -> *mut sys::OPENSSL_STACK;
    fn CMS_get0_signers(cms: *mut sys::CMS_ContentInfo) -> *mut sys::OPENSSL_STACK;
    fn CMS_get1_certs(cms: *mut sys::CMS_ContentInfo) -> *mut sys::stack_st_X509;
    fn CMS_SignerInfo_cert_cmp(si: *mut CmsSignerInfo, cert: *mut sys::X509) -> c_int;
    fn CMS_SignerInfo_get0_algs(
        si: *mut CmsSignerInfo,
        pk: *mut *mut sys::EVP_PKEY,
        signer: *mut *mut sys::X509,
        pdig: *mut *mut sys::X509_ALGOR,
        psig: *mut *mut sys::X509_ALGOR,
    );
    fn CMS_signed_get_attr_by_OBJ(
        si: *const CmsSignerInfo,
        obj: *const sys::ASN1_OBJECT,
        lastpos: c_int,
    ) -> c_int;
    fn CMS_signed_get_attr(si: *const CmsSignerInfo, loc: c_int) -> *mut sys::X509_ATTRIBUTE;
    fn CMS_signed_add1_attr_by_OBJ(
        si: *mut CmsSignerInfo,
        obj: *const sys::ASN1_OBJECT,
        attr_type: c_int,
        bytes: *const c_void,
        len: c_int,
    ) -> c_int;
    fn ASN1_TYPE_get(a: *const sys::ASN1_TYPE) -> c_int;
}

/// A read-only memory BIO over a borrowed slice, freed on drop.
struct SliceBio<'a> {
    bio: *mut sys::BIO,
    _data: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> SliceBio<'a> {
    fn new(data: &'a [u8]) -> Result<Self> {
        let len = c_int::try_from(data.len())
            .map_err(|_| PkiError::Malformed("content larger than 2 GiB".into()))?;
        // SAFETY: a read-only memory BIO only reads `len` bytes from `data`,
        // which the PhantomData lifetime keeps alive until the BIO is freed.
        let bio = unsafe { sys::BIO_new_mem_buf(data.as_ptr().cast::<c_void>(), len) };
        if bio.is_null() {
            return Err(ErrorStack::get().into());
        }
        Ok(Self {
            bio,
            _data: std::marker::PhantomData,
        })
    }
}

impl Drop for SliceBio<'_> {
    fn drop(&mut self) {
        // SAFETY: `bio` came from BIO_new_mem_buf, is non-null and freed only here.
        unsafe { sys::BIO_free_all(self.bio) };
    }
}

/// Adds a signer with an explicit digest to a `CMS_PARTIAL` SignedData and
/// finalizes it over `content` (`CMS_add1_signer` + `CMS_final`).
pub(super) fn add_signer_and_finalize(
    cms: &mut CmsContentInfoRef,
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    digest: MessageDigest,
    content: &[u8],
    flags: CMSOptions,
) -> Result<()> {
    add_signer_with_attributes_and_finalize(cms, cert, key, digest, &[], content, flags)
}

/// The value of a signed attribute we add; SCEP uses only these three types.
#[derive(Debug, Clone, Copy)]
pub(super) enum AttributeInput<'a> {
    /// A `PrintableString` (the caller checks the character set).
    Printable(&'a str),
    /// A `UTF8String`.
    Utf8(&'a str),
    /// An `OCTET STRING`.
    Octets(&'a [u8]),
}

/// Like [`add_signer_and_finalize`], with extra signed attributes (each a
/// single value) added between `CMS_add1_signer` and `CMS_final`, so the
/// signature covers them.
pub(super) fn add_signer_with_attributes_and_finalize(
    cms: &mut CmsContentInfoRef,
    cert: &X509Ref,
    key: &PKeyRef<Private>,
    digest: MessageDigest,
    attributes: &[(&Asn1ObjectRef, AttributeInput<'_>)],
    content: &[u8],
    flags: CMSOptions,
) -> Result<()> {
    // SAFETY: all pointers come from live wrappers borrowed for this call.
    // CMS_add1_signer takes its own references on `cert` and `key`; the
    // returned SignerInfo belongs to `cms` and is only checked for null.
    let signer_info = unsafe {
        CMS_add1_signer(
            cms.as_ptr(),
            cert.as_ptr(),
            key.as_ptr(),
            digest.as_ptr(),
            flags.bits(),
        )
    };
    if signer_info.is_null() {
        return Err(ErrorStack::get().into());
    }
    for (oid, value) in attributes {
        let (attr_type, bytes) = match value {
            AttributeInput::Printable(text) => (sys::V_ASN1_PRINTABLESTRING, text.as_bytes()),
            AttributeInput::Utf8(text) => (sys::V_ASN1_UTF8STRING, text.as_bytes()),
            AttributeInput::Octets(bytes) => (sys::V_ASN1_OCTET_STRING, *bytes),
        };
        let len = c_int::try_from(bytes.len())
            .map_err(|_| PkiError::Malformed("attribute value larger than 2 GiB".into()))?;
        // SAFETY: `signer_info` belongs to `cms`, which is mutably borrowed for
        // this whole function; OpenSSL copies `len` bytes from `bytes` and
        // duplicates `oid` into a new attribute owned by the SignerInfo.
        let ok = unsafe {
            CMS_signed_add1_attr_by_OBJ(
                signer_info,
                oid.as_ptr(),
                attr_type,
                bytes.as_ptr().cast::<c_void>(),
                len,
            )
        };
        if ok != 1 {
            return Err(ErrorStack::get().into());
        }
    }
    let data = SliceBio::new(content)?;
    // SAFETY: `cms` and `data.bio` are valid for the call; a null `dcont`
    // is documented as "no separate output".
    let ok = unsafe { CMS_final(cms.as_ptr(), data.bio, ptr::null_mut(), flags.bits()) };
    if ok != 1 {
        return Err(ErrorStack::get().into());
    }
    Ok(())
}

/// Number of SignerInfos, or `None` if `cms` is not SignedData.
pub(super) fn signer_info_count(cms: &CmsContentInfoRef) -> Option<usize> {
    // SAFETY: the returned stack is owned by `cms` (borrowed for this whole
    // function) and only read; it is null when `cms` is not SignedData.
    let infos = unsafe { CMS_get0_SignerInfos(cms.as_ptr()) };
    if infos.is_null() {
        // Drain the "not SignedData" error so it does not leak into a later call.
        let _ = ErrorStack::get();
        return None;
    }
    // SAFETY: `infos` is a valid, non-null stack (see above).
    let count = unsafe { sys::OPENSSL_sk_num(infos) };
    usize::try_from(count).ok()
}

/// The signer certificates that `CMS_verify` attached to the SignerInfos.
///
/// Only meaningful after a successful `CMS_verify`.
pub fn signers(cms: &CmsContentInfoRef) -> Vec<X509> {
    // SAFETY: CMS_get0_signers returns a new stack (null if empty) whose
    // entries are *not* up-referenced: they stay owned by `cms`. We clone each
    // entry (X509_up_ref via `to_owned`) while `cms` is borrowed, then free
    // only the stack itself, never the entries.
    unsafe {
        let stack = CMS_get0_signers(cms.as_ptr());
        if stack.is_null() {
            let _ = ErrorStack::get();
            return Vec::new();
        }
        let count = sys::OPENSSL_sk_num(stack);
        let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        for i in 0..count {
            let cert = sys::OPENSSL_sk_value(stack, i).cast::<sys::X509>();
            if !cert.is_null() {
                out.push(X509Ref::from_ptr(cert).to_owned());
            }
        }
        sys::OPENSSL_sk_free(stack);
        out
    }
}

/// The single value of an attribute, as read from a signature or a CSR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AttributeValue {
    /// An `OCTET STRING`'s content octets.
    Octets(Vec<u8>),
    /// A character string (`PrintableString`, `UTF8String`, `IA5String`,
    /// `T61String`, `BMPString` or `UniversalString`) converted to UTF-8.
    Text {
        /// The universal tag it was encoded with (`V_ASN1_*`).
        tag: c_int,
        /// Its characters.
        text: String,
    },
}

/// Universal tags of the character strings [`AttributeValue::Text`] accepts.
const TEXT_TAGS: [c_int; 6] = [
    sys::V_ASN1_UTF8STRING,
    sys::V_ASN1_PRINTABLESTRING,
    sys::V_ASN1_T61STRING,
    sys::V_ASN1_IA5STRING,
    sys::V_ASN1_UNIVERSALSTRING,
    sys::V_ASN1_BMPSTRING,
];

/// Reads the one value of `attr`.
///
/// # Safety
/// `attr` must point to a valid `X509_ATTRIBUTE` that outlives this call.
unsafe fn only_value(attr: *mut sys::X509_ATTRIBUTE) -> Result<AttributeValue> {
    let malformed = |what: &str| PkiError::Malformed(what.to_owned());
    // SAFETY (whole block): `attr` is valid per this function's contract; the
    // ASN1_TYPE and ASN1_STRING read here are owned by it and only borrowed
    // until the bytes are copied out below.
    unsafe {
        if sys::X509_ATTRIBUTE_count(attr) != 1 {
            return Err(malformed("an attribute must have exactly one value"));
        }
        let value = sys::X509_ATTRIBUTE_get0_type(attr, 0);
        if value.is_null() {
            return Err(malformed("attribute value missing"));
        }
        let tag = ASN1_TYPE_get(value);
        if tag != sys::V_ASN1_OCTET_STRING && !TEXT_TAGS.contains(&tag) {
            return Err(PkiError::Malformed(format!(
                "attribute value has ASN.1 type {tag}, expected a string"
            )));
        }
        // For every string type the value is an ASN1_STRING; asking for the
        // tag we just read cannot fail with a type mismatch.
        let string = sys::X509_ATTRIBUTE_get0_data(attr, 0, tag, ptr::null_mut());
        if string.is_null() {
            return Err(ErrorStack::get().into());
        }
        let string = Asn1StringRef::from_ptr(string.cast::<sys::ASN1_STRING>());
        if tag == sys::V_ASN1_OCTET_STRING {
            Ok(AttributeValue::Octets(string.as_slice().to_vec()))
        } else {
            let text = string.to_string()?;
            Ok(AttributeValue::Text { tag, text })
        }
    }
}

/// The first SignerInfo of `cms`, borrowed from it; `None` when `cms` is not
/// SignedData or has no signer.
fn first_signer_info(cms: &CmsContentInfoRef) -> Option<*mut CmsSignerInfo> {
    // SAFETY: the stack and its entries are owned by `cms`; the caller only
    // uses the returned pointer while it still borrows `cms`.
    unsafe {
        let infos = CMS_get0_SignerInfos(cms.as_ptr());
        if infos.is_null() {
            let _ = ErrorStack::get();
            return None;
        }
        if sys::OPENSSL_sk_num(infos) < 1 {
            return None;
        }
        let info = sys::OPENSSL_sk_value(infos, 0).cast::<CmsSignerInfo>();
        (!info.is_null()).then_some(info)
    }
}

/// The value of the signed attribute `oid` of the first SignerInfo; `None`
/// when absent. Repeated attributes and multiple values are `Malformed`.
pub(super) fn signed_attribute(
    cms: &CmsContentInfoRef,
    oid: &Asn1ObjectRef,
) -> Result<Option<AttributeValue>> {
    let info = first_signer_info(cms)
        .ok_or_else(|| PkiError::Malformed("not CMS SignedData with a signer".into()))?;
    // SAFETY: `info` belongs to `cms`, borrowed for this whole function; the
    // attribute pointer is owned by `info` and read by `only_value` only.
    unsafe {
        let loc = CMS_signed_get_attr_by_OBJ(info, oid.as_ptr(), -1);
        if loc < 0 {
            return Ok(None);
        }
        if CMS_signed_get_attr_by_OBJ(info, oid.as_ptr(), loc) >= 0 {
            return Err(PkiError::Malformed(format!(
                "signed attribute {oid} appears more than once"
            )));
        }
        let attr = CMS_signed_get_attr(info, loc);
        if attr.is_null() {
            return Err(ErrorStack::get().into());
        }
        only_value(attr).map(Some)
    }
}

/// The digest algorithm of the first SignerInfo, as a NID (`Nid::UNDEF` for
/// one OpenSSL does not know).
pub(super) fn signer_digest(cms: &CmsContentInfoRef) -> Option<Nid> {
    let info = first_signer_info(cms)?;
    // SAFETY: `info` belongs to `cms`, borrowed for this function; null
    // out-pointers are documented as "not wanted", and the returned
    // X509_ALGOR and ASN1_OBJECT stay owned by `info`.
    unsafe {
        let mut digest: *mut sys::X509_ALGOR = ptr::null_mut();
        CMS_SignerInfo_get0_algs(
            info,
            ptr::null_mut(),
            ptr::null_mut(),
            &mut digest,
            ptr::null_mut(),
        );
        if digest.is_null() {
            return None;
        }
        let mut oid: *const sys::ASN1_OBJECT = ptr::null();
        sys::X509_ALGOR_get0(&mut oid, ptr::null_mut(), ptr::null_mut(), digest);
        if oid.is_null() {
            return None;
        }
        Some(Nid::from_raw(sys::OBJ_obj2nid(oid)))
    }
}

/// The certificate among those embedded in `cms` that the first SignerInfo
/// names (by issuer and serial or subject key identifier), found *without*
/// verifying anything, so a failure reply can still address the sender.
pub(super) fn embedded_signer_certificate(cms: &CmsContentInfoRef) -> Option<X509> {
    let info = first_signer_info(cms)?;
    // SAFETY: CMS_get1_certs returns a new stack holding a reference on each
    // certificate (null when there are none); `Stack::from_ptr` takes
    // ownership and frees stack and references on drop.
    let certs: Stack<X509> = unsafe {
        let stack = CMS_get1_certs(cms.as_ptr());
        if stack.is_null() {
            let _ = ErrorStack::get();
            return None;
        }
        Stack::from_ptr(stack)
    };
    certs
        .iter()
        // SAFETY: `info` belongs to `cms` (still borrowed) and `cert` to
        // `certs`; CMS_SignerInfo_cert_cmp only reads both.
        .find(|cert| unsafe { CMS_SignerInfo_cert_cmp(info, cert.as_ptr()) } == 0)
        .map(ToOwned::to_owned)
}

/// A degenerate "certs-only" PKCS #7 SignedData (no signers, no content)
/// holding `certs` in the given order.
///
/// PKCS #7 rather than CMS on purpose: OpenSSL encodes the CMS
/// `certificates` as a sorted DER SET OF, while PKCS #7 keeps the order, and
/// clients such as micromdm's scepclient take the *first* certificate as
/// theirs.
pub(super) fn certs_only_pkcs7(certs: &StackRef<X509>) -> Result<Pkcs7> {
    let flags = (Pkcs7Flags::PARTIAL | Pkcs7Flags::DETACHED).bits();
    // SAFETY: with null signer and key PKCS7_sign only adds the certificates
    // (taking its own reference on each); PKCS7_PARTIAL returns before
    // reading the (null) data BIO, PKCS7_DETACHED drops the empty content.
    // The returned PKCS7 is new and owned by the `Pkcs7` wrapper.
    let p7 = unsafe {
        sys::PKCS7_sign(
            ptr::null_mut(),
            ptr::null_mut(),
            certs.as_ptr(),
            ptr::null_mut(),
            flags,
        )
    };
    if p7.is_null() {
        return Err(ErrorStack::get().into());
    }
    // SAFETY: `p7` is a fresh, non-null PKCS7 nobody else owns.
    Ok(unsafe { Pkcs7::from_ptr(p7) })
}

/// Adds a PKCS #9 challengePassword attribute to an unsigned CSR; OpenSSL
/// picks the narrowest DirectoryString type (PrintableString when it can).
pub(super) fn add_challenge_password(req: &mut X509ReqRef, password: &str) -> Result<()> {
    let len = c_int::try_from(password.len())
        .map_err(|_| PkiError::Malformed("challenge password too long".into()))?;
    // SAFETY: `req` is mutably borrowed for the call; OpenSSL copies `len`
    // bytes of `password` into a new attribute owned by `req`.
    let ok = unsafe {
        sys::X509_REQ_add1_attr_by_NID(
            req.as_ptr(),
            sys::NID_pkcs9_challengePassword,
            sys::MBSTRING_UTF8,
            password.as_ptr(),
            len,
        )
    };
    if ok != 1 {
        return Err(ErrorStack::get().into());
    }
    Ok(())
}

/// Signs a CSR in place (after its attributes are final).
pub(super) fn sign_request(
    req: &mut X509ReqRef,
    key: &PKeyRef<Private>,
    digest: MessageDigest,
) -> Result<()> {
    // SAFETY: all three pointers come from live wrappers borrowed for the call.
    let signed = unsafe { sys::X509_REQ_sign(req.as_ptr(), key.as_ptr(), digest.as_ptr()) };
    if signed <= 0 {
        return Err(ErrorStack::get().into());
    }
    Ok(())
}

/// The CSR's PKCS #9 challengePassword; `None` when absent, `Malformed` when
/// repeated or not a single string.
pub(super) fn challenge_password(req: &X509ReqRef) -> Result<Option<AttributeValue>> {
    let nid = sys::NID_pkcs9_challengePassword;
    // SAFETY: `req` is borrowed for this whole function; the attribute
    // belongs to it and is only read by `only_value`.
    unsafe {
        let loc = sys::X509_REQ_get_attr_by_NID(req.as_ptr(), nid, -1);
        if loc < 0 {
            return Ok(None);
        }
        if sys::X509_REQ_get_attr_by_NID(req.as_ptr(), nid, loc) >= 0 {
            return Err(PkiError::Malformed(
                "the CSR has more than one challengePassword".into(),
            ));
        }
        let attr = sys::X509_REQ_get_attr(req.as_ptr(), loc);
        if attr.is_null() {
            return Err(ErrorStack::get().into());
        }
        only_value(attr).map(Some)
    }
}
