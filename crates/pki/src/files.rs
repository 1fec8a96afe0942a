//! Private-key files: created with mode 0600, never overwritten by accident, refused when others can read them.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::error::{PkiError, Result};

/// Writes a private key to a new file with mode 0600.
///
/// Without `force` an existing file is an error ([`PkiError::KeyExists`]).
/// With `force` the key is written to a 0600 temporary file beside `path` and
/// renamed over it, so the old file's (possibly looser) mode is not inherited
/// and a crash never leaves half a key behind.
pub fn write_key_file(path: &Path, pem: &[u8], force: bool) -> Result<()> {
    if !force {
        return create_and_write(path, pem);
    }
    let temp = temp_sibling(path)?;
    create_and_write(&temp, pem)?;
    fs::rename(&temp, path).map_err(|source| {
        let _ = fs::remove_file(&temp);
        io_error(path, source)
    })
}

/// Fails with [`PkiError::InsecurePermissions`] if group or others have any
/// access to the key file at `path`.
pub fn check_key_permissions(path: &Path) -> Result<()> {
    let mode = fs::metadata(path)
        .map_err(|source| io_error(path, source))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(PkiError::InsecurePermissions(path.to_path_buf()));
    }
    Ok(())
}

/// Reads a private key file after [`check_key_permissions`].
pub fn read_key_file(path: &Path) -> Result<Vec<u8>> {
    check_key_permissions(path)?;
    fs::read(path).map_err(|source| io_error(path, source))
}

fn create_and_write(path: &Path, pem: &[u8]) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => PkiError::KeyExists(path.to_path_buf()),
            _ => io_error(path, source),
        })?;
    file.write_all(pem)
        .and_then(|()| file.sync_all())
        .map_err(|source| {
            let _ = fs::remove_file(path);
            io_error(path, source)
        })
}

/// `.name.<random>.tmp` in the same directory, so the rename is atomic.
fn temp_sibling(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| PkiError::Malformed(format!("{} is not a file path", path.display())))?;
    let mut nonce = [0u8; 8];
    openssl::rand::rand_bytes(&mut nonce)?;
    Ok(path.with_file_name(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        hex::encode(nonce)
    )))
}

fn io_error(path: &Path, source: io::Error) -> PkiError {
    PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_key_file_is_private_and_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");

        write_key_file(&path, b"first", false).unwrap();
        assert_eq!(mode(&path), 0o600);
        check_key_permissions(&path).unwrap();

        let err = write_key_file(&path, b"second", false).unwrap_err();
        assert!(
            matches!(&err, PkiError::KeyExists(p) if p == &path),
            "{err}"
        );
        assert_eq!(fs::read(&path).unwrap(), b"first");
    }

    #[test]
    fn forcing_replaces_a_loose_key_with_a_private_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

        write_key_file(&path, b"new", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        // Only the key is left: no temporary file behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.key");
        fs::write(&path, b"key").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

        let err = check_key_permissions(&path).unwrap_err();
        assert!(matches!(err, PkiError::InsecurePermissions(_)), "{err}");
        assert!(matches!(
            read_key_file(&path),
            Err(PkiError::InsecurePermissions(_))
        ));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_key_file(&path).unwrap(), b"key");
        assert!(matches!(
            check_key_permissions(&dir.path().join("missing.key")),
            Err(PkiError::Io { .. })
        ));
    }
}
