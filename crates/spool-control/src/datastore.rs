//! Datastores and code snapshots on disk: resolving `azureml://datastores/<ds>/paths/<p>` inside
//! a datastore's root, and unpacking uploaded tar archives without letting any entry escape.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// The datastore every workspace has, and where local inputs go.
pub const DEFAULT_DATASTORE: &str = "workspaceblobstore";

/// A parsed `azureml://datastores/<name>/paths/<path>` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatastoreUri {
    pub datastore: String,
    /// Relative path inside the datastore, `/`-separated, no leading `/`.
    pub path: String,
}

impl DatastoreUri {
    pub fn new(datastore: &str, path: &str) -> DatastoreUri {
        DatastoreUri {
            datastore: datastore.to_string(),
            path: path.trim_start_matches('/').to_string(),
        }
    }

    /// Parses a datastore URI; `None` when `text` is not one.
    pub fn parse(text: &str) -> Option<Result<DatastoreUri, String>> {
        let rest = text.strip_prefix("azureml://datastores/")?;
        let Some((name, path)) = rest.split_once("/paths/") else {
            return Some(Err(format!(
                "`{text}` is not a datastore URI: write `azureml://datastores/<name>/paths/<path>`"
            )));
        };
        if name.is_empty() || name.contains('/') {
            return Some(Err(format!("`{text}` names no datastore")));
        }
        Some(Ok(DatastoreUri::new(name, path)))
    }

    pub fn to_uri(&self) -> String {
        format!(
            "azureml://datastores/{}/paths/{}",
            self.datastore, self.path
        )
    }
}

/// Joins a relative path to a root, refusing anything that would leave the root (`..`, absolute
/// paths). Symlinks are not followed here; datastore contents are written only by Spool.
pub fn resolve_inside(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(format!("path `{relative}` leaves its datastore root"));
                }
                out.pop();
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => {
                // A leading `/` in a datastore path means the datastore's root, as in Azure.
            }
        }
    }
    Ok(out)
}

/// Counts of what an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// The names of a tar archive's entries, as paths relative to where it is unpacked.
pub fn entry_names(archive: &[u8]) -> Result<Vec<String>, String> {
    let mut reader = tar::Archive::new(archive);
    let entries = reader
        .entries()
        .map_err(|e| format!("not a tar archive: {e}"))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("not a tar archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("an entry's name is not a path: {e}"))?;
        names.push(path.to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Unpacks a tar archive into `dest`, refusing entries that would land outside it and anything
/// but regular files and directories.
pub fn unpack_tar(archive: &[u8], dest: &Path) -> Result<Unpacked, String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("create `{}`: {e}", dest.display()))?;
    let mut reader = tar::Archive::new(archive);
    let mut counts = Unpacked::default();
    let entries = reader.entries().map_err(|e| format!("read upload: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("read upload: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("read upload: {e}"))?
            .to_string_lossy()
            .into_owned();
        let target = resolve_inside(dest, &name)?;
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| format!("create `{name}`: {e}"))?;
            }
            tar::EntryType::Regular => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| format!("create `{name}`: {e}"))?;
                }
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| format!("read `{name}`: {e}"))?;
                std::fs::write(&target, &data).map_err(|e| format!("write `{name}`: {e}"))?;
                counts.files += 1;
                counts.bytes += data.len() as u64;
            }
            other => {
                return Err(format!(
                    "`{name}`: entries of type {other:?} are not accepted"
                ));
            }
        }
    }
    Ok(counts)
}

/// Stores a code snapshot (a tar archive) under `snapshots/<sha256>`, once per content.
/// Returns the id and the number of files.
pub fn store_snapshot(snapshots_dir: &Path, archive: &[u8]) -> Result<(String, u64), String> {
    let id = hex(&Sha256::digest(archive));
    let final_dir = snapshots_dir.join(&id);
    if final_dir.exists() {
        let files = count_files(&final_dir);
        return Ok((id, files));
    }
    let tmp = snapshots_dir.join(format!(".tmp-{id}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let unpacked = unpack_tar(archive, &tmp)?;
    match std::fs::rename(&tmp, &final_dir) {
        Ok(()) => {}
        // Another upload of the same content won the race; theirs is identical.
        Err(_) if final_dir.exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Err(e) => return Err(format!("store snapshot: {e}")),
    }
    Ok((id, unpacked.files))
}

fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies a directory tree (used to give each job its own working copy of a snapshot).
pub fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_datastore_uris() {
        let uri =
            DatastoreUri::parse("azureml://datastores/workspaceblobstore/paths/data/titanic.csv")
                .unwrap()
                .unwrap();
        assert_eq!(
            uri,
            DatastoreUri::new("workspaceblobstore", "data/titanic.csv")
        );
        assert!(DatastoreUri::parse("./data/titanic.csv").is_none());
        assert!(
            DatastoreUri::parse("azureml://datastores/x/data")
                .unwrap()
                .is_err()
        );
    }

    #[test]
    fn paths_stay_inside_the_root() {
        let root = Path::new("/data/ds");
        assert_eq!(
            resolve_inside(root, "a/b.csv").unwrap(),
            Path::new("/data/ds/a/b.csv")
        );
        assert_eq!(
            resolve_inside(root, "/a/./b/../c").unwrap(),
            Path::new("/data/ds/a/c")
        );
        assert!(resolve_inside(root, "../etc/passwd").is_err());
        assert!(resolve_inside(root, "a/../../x").is_err());
    }

    #[test]
    fn unpack_refuses_escaping_entries() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`, so write the name into the header directly.
        header.as_old_mut().name[..9].copy_from_slice(b"../x.txt\0");
        header.set_cksum();
        builder.append(&header, &b"hi"[..]).unwrap();
        let archive = builder.into_inner().unwrap();
        let err = unpack_tar(&archive, &dir.path().join("dest")).unwrap_err();
        assert!(err.contains("leaves its datastore root"), "{err}");
        assert!(!dir.path().join("x.txt").exists());
    }

    #[test]
    fn snapshots_are_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(5);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "main.py", &b"print"[..])
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let (a, files) = store_snapshot(dir.path(), &archive).unwrap();
        let (b, _) = store_snapshot(dir.path(), &archive).unwrap();
        assert_eq!(a, b);
        assert_eq!(files, 1);
        assert_eq!(
            std::fs::read_to_string(dir.path().join(&a).join("main.py")).unwrap(),
            "print"
        );
    }
}
