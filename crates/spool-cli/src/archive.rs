//! Deterministic tar archives of local files: the same content always gives the same bytes, so
//! code snapshots are content-addressed by the server.

use std::path::Path;

use anyhow::Context;

/// Archives `dir`'s files under `prefix` (entry names are `prefix/relative/path`), sorted, with
/// zeroed times and owners. `.git` folders are skipped.
pub fn tar_dir(dir: &Path, prefix: &str) -> anyhow::Result<(Vec<u8>, u64)> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for rel in &files {
        let name = if prefix.is_empty() {
            rel.clone()
        } else {
            format!("{}/{rel}", prefix.trim_end_matches('/'))
        };
        append_file(&mut builder, &dir.join(rel), &name)?;
    }
    Ok((builder.into_inner()?, files.len() as u64))
}

/// Archives one file as entry `name`.
pub fn tar_file(path: &Path, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    append_file(&mut builder, path, name)?;
    Ok(builder.into_inner()?)
}

fn append_file(builder: &mut tar::Builder<Vec<u8>>, path: &Path, name: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let data = std::fs::read(path).with_context(|| format!("read `{}`", path.display()))?;
    let executable = std::fs::metadata(path)?.permissions().mode() & 0o111 != 0;
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(if executable { 0o755 } else { 0o644 });
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data.as_slice())?;
    Ok(())
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("read folder `{}`", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            if entry.file_name() == ".git" {
                continue;
            }
            walk(root, &path, out)?;
        } else if file_type.is_file() || (file_type.is_symlink() && path.is_file()) {
            let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
            out.push(rel);
        }
    }
    Ok(())
}

/// Unpacks a downloaded archive into `dest`.
pub fn untar(archive: &[u8], dest: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(dest)?;
    let mut reader = tar::Archive::new(archive);
    let mut files = 0;
    for entry in reader.entries()? {
        let mut entry = entry?;
        // `unpack_in` refuses entries that would land outside `dest`.
        if entry.unpack_in(dest)? && entry.header().entry_type().is_file() {
            files += 1;
        }
    }
    Ok(files)
}
