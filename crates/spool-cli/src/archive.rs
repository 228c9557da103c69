//! Deterministic tar archives of local files: the same content always gives the same bytes, so
//! code snapshots are content-addressed by the server. And unpacking downloaded archives without
//! creating a symlink that leads out of the download folder or writing through one.

use std::fs::File;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use spool_control::datastore::link_stays_inside;

/// Archives `dir`'s files under `prefix` (entry names are `prefix/relative/path`), sorted, with
/// zeroed times and owners. `.git` folders are skipped; a symlink to a file is archived as that
/// file, wherever it is (a code folder holds the user's own files), other links are left out.
pub fn tar_dir(dir: &Path, prefix: &str) -> anyhow::Result<(Vec<u8>, u64)> {
    let archived = archive_dir(dir, prefix, Links::FollowFiles)?;
    Ok((archived.archive, archived.files))
}

/// Like [`tar_dir`], but a symlink is archived (as the file it points to) only when that file
/// is inside `dir`; every other link is left out and named in [`Archived::left_out`].
pub fn tar_dir_inside(dir: &Path, prefix: &str) -> anyhow::Result<Archived> {
    archive_dir(dir, prefix, Links::InsideOnly)
}

/// An archive of a folder, and the symlinks it leaves out.
#[derive(Debug)]
pub struct Archived {
    pub archive: Vec<u8>,
    pub files: u64,
    /// `path: why`, one per symlink left out, paths relative to the folder.
    pub left_out: Vec<String>,
}

/// What archiving a folder does with the symlinks in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Links {
    /// A link to a file anywhere is archived as the file.
    FollowFiles,
    /// A link to a file inside the folder is archived as the file; other links are left out.
    InsideOnly,
}

fn archive_dir(dir: &Path, prefix: &str, links: Links) -> anyhow::Result<Archived> {
    let root = std::fs::canonicalize(dir).with_context(|| format!("read `{}`", dir.display()))?;
    let mut walked = Walked::default();
    walk(&root, dir, dir, links, &mut walked)?;
    walked.files.sort();
    walked.left_out.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for rel in &walked.files {
        let name = if prefix.is_empty() {
            rel.clone()
        } else {
            format!("{}/{rel}", prefix.trim_end_matches('/'))
        };
        append_file(&mut builder, &dir.join(rel), &name)?;
    }
    Ok(Archived {
        archive: builder.into_inner()?,
        files: walked.files.len() as u64,
        left_out: walked.left_out,
    })
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

#[derive(Debug, Default)]
struct Walked {
    files: Vec<String>,
    left_out: Vec<String>,
}

fn walk(
    canonical_root: &Path,
    root: &Path,
    dir: &Path,
    links: Links,
    out: &mut Walked,
) -> anyhow::Result<()> {
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("read folder `{}`", dir.display()))?
    {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        let rel = || -> anyhow::Result<String> {
            Ok(path.strip_prefix(root)?.to_string_lossy().into_owned())
        };
        if file_type.is_dir() {
            if entry.file_name() == ".git" {
                continue;
            }
            walk(canonical_root, root, &path, links, out)?;
        } else if file_type.is_file() {
            out.files.push(rel()?);
        } else if file_type.is_symlink() {
            let target = std::fs::canonicalize(&path).ok();
            let why = match (&target, links) {
                (None, _) => Some("it points to nothing"),
                (Some(t), _) if !t.is_file() => Some("it does not point to a file"),
                (Some(t), Links::InsideOnly) if !t.starts_with(canonical_root) => {
                    Some("it leads out of the folder")
                }
                (Some(_), _) => None,
            };
            match why {
                None => out.files.push(rel()?),
                // Links to folders were always left out of code folders; they say nothing.
                Some(why) if links == Links::InsideOnly => {
                    out.left_out.push(format!("{}: {why}", rel()?));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// What an unpack wrote, and the links it did not create.
#[derive(Debug, Default)]
pub struct Unpacked {
    pub files: u64,
    /// `entry -> target`, one per symlink or hard link left out.
    pub left_out: Vec<String>,
}

/// Unpacks a downloaded archive into `dest`: folders, files, and symlinks whose target stays
/// inside `dest` however links chain ([`link_stays_inside`]); absolute or escaping symlinks and
/// hard links are left out (and listed). Nothing is written through a symlink already in
/// `dest`: an entry whose parent is one is an error, a file replaces a link in its place.
pub fn untar(archive: &[u8], dest: &Path) -> anyhow::Result<Unpacked> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dest)?;
    let mut reader = tar::Archive::new(archive);
    let mut unpacked = Unpacked::default();
    for entry in reader.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().into_owned();
        let relative = inside_relative(&name)?;
        if relative.as_os_str().is_empty() {
            continue;
        }
        let parent = relative.parent().unwrap_or(Path::new(""));
        make_folders(dest, parent, &name)?;
        let target = dest.join(&relative);
        let existing = std::fs::symlink_metadata(&target).ok();
        let entry_type = entry.header().entry_type();
        match entry_type {
            tar::EntryType::Directory => match existing {
                Some(meta) if meta.is_dir() => {}
                Some(_) => anyhow::bail!(
                    "archive entry `{name}`: `{}` exists and is not a folder",
                    target.display()
                ),
                None => std::fs::create_dir(&target)
                    .with_context(|| format!("create `{}`", target.display()))?,
            },
            tar::EntryType::Regular => {
                if existing.as_ref().is_some_and(|m| m.is_dir()) {
                    anyhow::bail!("archive entry `{name}`: `{}` is a folder", target.display());
                }
                if existing.is_some() {
                    // A file or a link: replaced, never written through.
                    std::fs::remove_file(&target)
                        .with_context(|| format!("replace `{}`", target.display()))?;
                }
                // `create_new` never follows a symlink, even one planted since the check.
                let mut file = File::create_new(&target)
                    .with_context(|| format!("create `{}`", target.display()))?;
                std::io::copy(&mut entry, &mut file)
                    .with_context(|| format!("write `{}`", target.display()))?;
                let mode = entry.header().mode().unwrap_or(0o644) & 0o755;
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
                unpacked.files += 1;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = PathBuf::from(
                    String::from_utf8_lossy(&entry.link_name_bytes().unwrap_or_default())
                        .into_owned(),
                );
                let depth = relative.components().count() - 1;
                let kept = entry_type == tar::EntryType::Symlink && link_stays_inside(depth, &link);
                if !kept {
                    unpacked
                        .left_out
                        .push(format!("{name} -> {}", link.display()));
                    continue;
                }
                match existing {
                    Some(meta) if meta.is_dir() => {
                        anyhow::bail!("archive entry `{name}`: `{}` is a folder", target.display())
                    }
                    Some(_) => std::fs::remove_file(&target)
                        .with_context(|| format!("replace `{}`", target.display()))?,
                    None => {}
                }
                std::os::unix::fs::symlink(&link, &target)
                    .with_context(|| format!("create link `{}`", target.display()))?;
            }
            // Devices, FIFOs and the like have no place in a download.
            _ => {}
        }
    }
    Ok(unpacked)
}

/// An entry's path, which must be relative and stay inside the download folder.
fn inside_relative(name: &str) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                anyhow::bail!("archive entry `{name}` leads out of the download folder")
            }
        }
    }
    Ok(out)
}

/// Makes the folders of `relative` below `dest`, checking that those already there are real
/// folders: nothing is written through a symlink.
fn make_folders(dest: &Path, relative: &Path, name: &str) -> anyhow::Result<()> {
    let mut path = dest.to_path_buf();
    for component in relative.components() {
        path.push(component);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(meta) if meta.file_type().is_symlink() => anyhow::bail!(
                "archive entry `{name}`: `{}` is a symbolic link, and a download never writes through one\nhint: remove the link, or download into another folder",
                path.display()
            ),
            Ok(_) => anyhow::bail!(
                "archive entry `{name}`: `{}` is a file, not a folder",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&path)
                .with_context(|| format!("create `{}`", path.display()))?,
            Err(e) => return Err(e).with_context(|| format!("read `{}`", path.display())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `(name, content)` entries: `->target` makes a symlink, `=>target` a hard
    /// link, a name ending in `/` a folder, anything else a file.
    fn archive_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(0);
            let link = |header: &mut tar::Header, target: &str| {
                // Raw, as a hostile server would write it (`set_link_name` rewrites `/`).
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            };
            if let Some(target) = content.strip_prefix("->") {
                header.set_entry_type(tar::EntryType::Symlink);
                link(&mut header, target);
                builder.append_data(&mut header, name, &[][..]).unwrap();
            } else if let Some(target) = content.strip_prefix("=>") {
                header.set_entry_type(tar::EntryType::Link);
                link(&mut header, target);
                builder.append_data(&mut header, name, &[][..]).unwrap();
            } else if name.ends_with('/') {
                header.set_entry_type(tar::EntryType::Directory);
                builder.append_data(&mut header, name, &[][..]).unwrap();
            } else {
                header.set_size(content.len() as u64);
                builder
                    .append_data(&mut header, name, content.as_bytes())
                    .unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    /// Issue 11, finding 3: a download holding an absolute or escaping symlink does not recreate
    /// it (`spool job download` unpacks with `untar`).
    #[test]
    fn regression_11_untar_never_creates_a_link_leading_out() {
        let dest = tempfile::tempdir().unwrap();
        let archive = archive_of(&[
            ("out/", ""),
            ("out/part-0.csv", "a,b\n"),
            ("out/passwd", "->/etc/passwd"),
            ("out/root", "->/"),
            ("out/up", "->../../x"),
            ("out/chain", "->sub/.."),
            ("out/hard", "=>/etc/passwd"),
            ("out/latest.csv", "->part-0.csv"),
            ("out/sibling", "->../logs"),
        ]);
        let unpacked = untar(&archive, dest.path()).unwrap();
        assert_eq!(unpacked.files, 1);
        assert_eq!(
            unpacked.left_out,
            [
                "out/passwd -> /etc/passwd",
                "out/root -> /",
                "out/up -> ../../x",
                "out/chain -> sub/..",
                "out/hard -> /etc/passwd",
            ]
        );
        assert_eq!(
            spool_test::tree_listing(dest.path()),
            [
                "out/",
                "out/latest.csv -> part-0.csv",
                "out/part-0.csv",
                "out/sibling -> ../logs",
            ]
        );
    }

    #[test]
    fn untar_never_writes_through_a_link_in_the_destination() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("victim"), "mine").unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dest.path().join("out")).unwrap();
        let err = untar(&archive_of(&[("out/victim", "owned")]), dest.path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("is a symbolic link, and a download never writes through one"),
            "{err}"
        );
        // A link in a file's place is replaced, not followed.
        std::fs::remove_file(dest.path().join("out")).unwrap();
        std::fs::create_dir(dest.path().join("out")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("victim"),
            dest.path().join("out/victim"),
        )
        .unwrap();
        untar(&archive_of(&[("out/victim", "new")]), dest.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(outside.path().join("victim")).unwrap(),
            "mine"
        );
        assert_eq!(
            std::fs::read_to_string(dest.path().join("out/victim")).unwrap(),
            "new"
        );
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`, so write the name into the header directly.
        header.as_old_mut().name[..5].copy_from_slice(b"../x\0");
        header.set_cksum();
        let mut builder = tar::Builder::new(Vec::new());
        builder.append(&header, &b"x"[..]).unwrap();
        let err = untar(&builder.into_inner().unwrap(), dest.path()).unwrap_err();
        assert!(
            err.to_string().contains("leads out of the download folder"),
            "{err}"
        );
    }

    #[test]
    fn a_datastore_upload_keeps_only_links_to_files_inside_the_folder() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/a.csv"), "a").unwrap();
        std::os::unix::fs::symlink("sub/a.csv", src.path().join("latest.csv")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), src.path().join("secret"))
            .unwrap();
        std::os::unix::fs::symlink("sub", src.path().join("folder")).unwrap();
        std::os::unix::fs::symlink("missing", src.path().join("dangling")).unwrap();
        let archived = tar_dir_inside(src.path(), "data").unwrap();
        assert_eq!(archived.files, 2);
        assert_eq!(
            archived.left_out,
            [
                "dangling: it points to nothing",
                "folder: it does not point to a file",
                "secret: it leads out of the folder",
            ]
        );
        let mut names = Vec::new();
        for entry in tar::Archive::new(archived.archive.as_slice())
            .entries()
            .unwrap()
        {
            names.push(entry.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, ["data/latest.csv", "data/sub/a.csv"]);
        // Code folders keep following links to files, wherever they are.
        assert_eq!(tar_dir(src.path(), "").unwrap().1, 3);
    }
}
