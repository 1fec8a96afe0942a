//! What serving needs besides a database that answers, as `/readyz` checks it: free
//! space on the disks tafel writes to, and certificates that can be read.
//!
//! A node whose database is read-only or whose disk is full cannot store one check-in;
//! a load balancer must stop sending iPads to it, so these are reasons for 503.

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::db::DatabaseUrl;

/// Free bytes for an unprivileged writer on the filesystem that holds `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and outlives the call; statvfs writes only
    // into `stat`, which lives on this stack.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The places tafel writes to, and what each is: the SQLite database's directory (the
/// database lives on another machine with PostgreSQL) and `certs_dir`.
fn written_places(settings: &Settings) -> Vec<(&'static str, PathBuf)> {
    let mut places = Vec::new();
    if let Ok(DatabaseUrl::Sqlite(file)) = settings.database() {
        let dir = file
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        places.push(("database", dir));
    }
    places.push(("certificates", settings.certs_dir.clone()));
    places
}

/// Is there at least `health.min_free_disk_mb` free where tafel writes? The reason
/// names the disk when not.
pub fn check_disks(settings: &Settings) -> Result<(), String> {
    let least = settings.health.min_free_disk_mb.saturating_mul(1 << 20);
    for (what, dir) in written_places(settings) {
        let free = free_bytes(&dir)
            .map_err(|e| format!("cannot read the free space of {}: {e}", dir.display()))?;
        if free < least {
            return Err(format!(
                "the disk is full: {} MiB free for the {what} ({}), less than health.min_free_disk_mb = {}",
                free >> 20,
                dir.display(),
                settings.health.min_free_disk_mb
            ));
        }
    }
    Ok(())
}

/// Can tafel's certificates be read from `certs_dir` (what a restart loads)?
pub fn check_certificates(settings: &Settings) -> Result<(), String> {
    crate::pki::store::certificates(&settings.certs_dir)
        .map(drop)
        .map_err(|e| format!("the certificates cannot be read: {e}"))
}
