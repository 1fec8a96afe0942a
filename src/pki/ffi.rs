//! The few OpenSSL CMS calls the `openssl` crate does not wrap; the only `unsafe` code of `pki`.
//!
//! Each wrapper takes safe `openssl` types, so callers never see a raw pointer.

use std::ffi::{c_int, c_uint, c_void};
use std::ptr;

use foreign_types::ForeignTypeRef;
use openssl::cms::{CMSOptions, CmsContentInfoRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use openssl::x509::{X509Ref, X509};
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
pub(super) fn signers(cms: &CmsContentInfoRef) -> Vec<X509> {
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
