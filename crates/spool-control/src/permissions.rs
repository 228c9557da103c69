//! File modes of what the server keeps on disk: the data dir is private to the server's OS
//! user (0700; `state.db*` and `admin.token` 0600; `snapshots/` 0700 even where Spool's accounts
//! may pass through the data dir), and the machine-wide cache is writable by no one else
//! (runtimes and environments there are executed by every job).
//!
//! Directories and files left looser by an earlier version or by hand are tightened at start,
//! and the server says so once in its log.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The files of the data dir that hold secrets or the whole state.
const PRIVATE_FILES: &[&str] = &[
    "state.db",
    "state.db-wal",
    "state.db-shm",
    "state.db-journal",
    spool_core::paths::ADMIN_TOKEN_FILE,
];

/// The folders of the data dir no account but the server's needs: code snapshots (a job runs
/// on a copy of its own, `jobs/<name>/work`, owned by its account).
const PRIVATE_DIRS: &[&str] = &["snapshots"];

/// Creates `dir` 0700 (and its missing parents), for a private folder of the data dir.
pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates the data dir (0700), its private folders (0700) and an empty `state.db` (0600) if
/// missing, and tightens them and the other private files where they are looser. Returns what
/// it tightened.
///
/// SQLite creates `state.db-wal` and `state.db-shm` with the mode of `state.db`, so creating
/// that file first is enough for them.
pub(crate) fn prepare_data_dir(data_dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data_dir)?;
    let mut tightened = Vec::new();
    // With OS enforcement the folder carries an ACL letting Spool's accounts pass through it
    // (`accounts::make_traversable`), and its group bits show that ACL's mask (`--x`).
    let most = if has_access_acl(data_dir) {
        0o710
    } else {
        0o700
    };
    restrict(data_dir, most, &mut tightened)?;
    for name in PRIVATE_DIRS {
        create_private_dir(&data_dir.join(name))?;
        restrict(&data_dir.join(name), 0o700, &mut tightened)?;
    }
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(data_dir.join("state.db"))?;
    for name in PRIVATE_FILES {
        restrict(&data_dir.join(name), 0o600, &mut tightened)?;
    }
    Ok(tightened)
}

/// Takes write access for group and others off the cache dir and the dirs directly in it
/// (`runtimes`, `envs`, `tools`, `uv-cache`, `locks`, ...), if it exists. Returns what it
/// tightened.
pub(crate) fn secure_cache_dir(cache_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut tightened = Vec::new();
    let Ok(entries) = fs::read_dir(cache_dir) else {
        return Ok(tightened);
    };
    deny_writes_by_others(cache_dir, &mut tightened)?;
    for entry in entries.flatten() {
        if entry.file_type()?.is_dir() {
            deny_writes_by_others(&entry.path(), &mut tightened)?;
        }
    }
    Ok(tightened)
}

/// Whether `path` has an access ACL beyond its mode bits.
pub(crate) fn has_access_acl(path: &Path) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        rustix::fs::getxattr(path, "system.posix_acl_access", &mut buf[..]),
        Ok(_) | Err(rustix::io::Errno::RANGE)
    )
}

/// Sets `path`'s mode to at most `mode` (clears the other bits), if it exists.
fn restrict(path: &Path, mode: u32, tightened: &mut Vec<PathBuf>) -> io::Result<()> {
    set_mode_bits(path, |current| current & mode, tightened)
}

fn deny_writes_by_others(path: &Path, tightened: &mut Vec<PathBuf>) -> io::Result<()> {
    set_mode_bits(path, |current| current & !0o022, tightened)
}

fn set_mode_bits(
    path: &Path,
    change: impl Fn(u32) -> u32,
    tightened: &mut Vec<PathBuf>,
) -> io::Result<()> {
    // Not following a symlink: a link planted in place of a private file is left alone (its
    // mode means nothing) rather than making the target private or public.
    let metadata = match fs::symlink_metadata(path) {
        Ok(metadata) if !metadata.file_type().is_symlink() => metadata,
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let current = metadata.permissions().mode() & 0o7777;
    let wanted = change(current);
    if wanted != current {
        fs::set_permissions(path, fs::Permissions::from_mode(wanted))?;
        tightened.push(path.to_path_buf());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn set(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_data_dir_is_private() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("a/.spool");
        let tightened = prepare_data_dir(&data_dir).unwrap();
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&data_dir.join("state.db")), 0o600);
        assert_eq!(mode(&data_dir.join("snapshots")), 0o700);
        // Nothing was looser than wanted: nothing to report.
        assert_eq!(tightened, Vec::<PathBuf>::new());
    }

    #[test]
    fn a_loose_data_dir_is_tightened_and_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let data_dir = tmp.path().join("spool");
        fs::create_dir(&data_dir).unwrap();
        set(&data_dir, 0o755);
        for name in ["state.db", "state.db-wal", "admin.token"] {
            fs::write(data_dir.join(name), "x").unwrap();
            set(&data_dir.join(name), 0o644);
        }
        fs::write(data_dir.join("config.toml"), "").unwrap();
        set(&data_dir.join("config.toml"), 0o644);
        fs::create_dir(data_dir.join("snapshots")).unwrap();
        set(&data_dir.join("snapshots"), 0o755);
        let tightened = prepare_data_dir(&data_dir).unwrap();
        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&data_dir.join("snapshots")), 0o700);
        for name in ["state.db", "state.db-wal", "admin.token"] {
            assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
        }
        // Not a secret, and behind the private dir anyway.
        assert_eq!(mode(&data_dir.join("config.toml")), 0o644);
        let names: Vec<String> = tightened
            .iter()
            .map(|p| p.strip_prefix(tmp.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "spool",
                "spool/snapshots",
                "spool/state.db",
                "spool/state.db-wal",
                "spool/admin.token"
            ]
        );
        assert!(prepare_data_dir(&data_dir).unwrap().is_empty());
    }

    #[test]
    fn the_cache_is_writable_by_no_one_else() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = tmp.path().join("spool");
        fs::create_dir_all(cache.join("runtimes/3.4")).unwrap();
        fs::create_dir_all(cache.join("envs")).unwrap();
        set(&cache, 0o777);
        set(&cache.join("runtimes"), 0o775);
        set(&cache.join("envs"), 0o755);
        let tightened = secure_cache_dir(&cache).unwrap();
        assert_eq!(mode(&cache), 0o755);
        assert_eq!(mode(&cache.join("runtimes")), 0o755);
        assert_eq!(tightened.len(), 2, "{tightened:?}");
        assert!(
            secure_cache_dir(&tmp.path().join("missing"))
                .unwrap()
                .is_empty()
        );
    }
}
