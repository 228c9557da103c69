//! Datastores, code snapshots and the other folders users write into, on disk: resolving
//! `azureml://datastores/<ds>/paths/<p>` inside a datastore's root, unpacking uploaded tar
//! archives all or nothing, copying and archiving such folders.
//!
//! Job code runs as the server's user and can plant symlinks anywhere it writes, so the server
//! never opens a path in such a folder by name: a [`UserTree`] opens the folder once and resolves
//! everything below it through that handle (cap-std: `openat2` with `RESOLVE_BENEATH` where the
//! kernel has it, its own component-by-component walk elsewhere), so a symlink leading out of
//! the folder is an error instead of being followed, and walks never follow links at all.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
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

/// Normalizes a user's path inside a root: `.` and `..` are applied, a leading `/` means the
/// root (as in Azure), and a `..` that would leave the root is refused. The result is relative
/// (empty for the root itself).
pub fn relative_path(relative: &str) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("path `{relative}` leaves its datastore root"));
                }
            }
            // A leading `/` in a datastore path means the datastore's root, as in Azure.
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// Joins a relative path to a root, refusing anything that would leave the root (`..`, absolute
/// paths). This is lexical: it names the path handed to Spark; the server itself opens paths in
/// a user's folder only through a [`UserTree`], which also refuses symlinks leading out.
pub fn resolve_inside(root: &Path, relative: &str) -> Result<PathBuf, String> {
    let relative = relative_path(relative)?;
    if relative.as_os_str().is_empty() {
        return Ok(root.to_path_buf());
    }
    Ok(root.join(relative))
}

/// Whether an error is the refusal of a symlink: one leading out of its [`UserTree`] (cap-std
/// reports `EXDEV` from `openat2`, or its own walk's finding, as one `PermissionDenied`), or one
/// as the last component of a file opened to be read or written (`ELOOP` from `O_NOFOLLOW`).
pub fn refused_link(error: &io::Error) -> bool {
    let escaped = error.kind() == io::ErrorKind::PermissionDenied
        && error.to_string().contains("led outside of the filesystem");
    escaped || error.raw_os_error() == Some(nix::libc::ELOOP)
}

/// Whether a symlink's target, read from a link `depth` folders below a root, stays inside the
/// root however links chain: it is relative, starts with at most `depth` `..` and has none after
/// a name. (A `..` after a name could apply to another link's target and climb out.)
pub fn link_stays_inside(depth: usize, target: &Path) -> bool {
    let mut ups = 0;
    let mut named = false;
    for component in target.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir if !named && ups < depth => ups += 1,
            Component::ParentDir => return false,
            Component::Normal(_) => named = true,
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    named || ups > 0
}

/// Flags for reading a file of a user's folder: a symlink as the last component is not followed
/// (`ELOOP`), and a FIFO planted in place of a file does not block the open.
const READ_FLAGS: i32 = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK;
/// Flags for writing one: never through a symlink.
const WRITE_FLAGS: i32 = nix::libc::O_NOFOLLOW;

/// `.` for the root itself, which cap-std needs spelled out.
fn here(relative: &Path) -> &Path {
    if relative.as_os_str().is_empty() {
        Path::new(".")
    } else {
        relative
    }
}

/// What a path in a [`UserTree`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Folder,
    /// A socket, FIFO or device: never read.
    Other,
}

/// A folder users can write into (a datastore, a job's logs, a working copy), opened once by
/// the path Spool made it at. Paths below it are resolved through the open handle: symlinks that
/// stay inside are followed, one leading out is an error ([`refused_link`]); walks (listing,
/// archiving, copying) follow no link at all.
#[derive(Debug)]
pub struct UserTree {
    dir: Dir,
}

impl UserTree {
    /// Opens the folder at `root`, which Spool made (its own path is trusted).
    pub fn open(root: &Path) -> io::Result<UserTree> {
        Ok(UserTree {
            dir: Dir::open_ambient_dir(root, cap_std::ambient_authority())?,
        })
    }

    /// Opens the folder `relative` as a tree of its own.
    pub fn subtree(&self, relative: &Path) -> io::Result<UserTree> {
        Ok(UserTree {
            dir: self.dir.open_dir(here(relative))?,
        })
    }

    /// What is at `relative`; `None` when nothing is.
    pub fn kind(&self, relative: &Path) -> io::Result<Option<EntryKind>> {
        match self.dir.metadata(here(relative)) {
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Folder)),
            Ok(meta) if meta.is_file() => Ok(Some(EntryKind::File)),
            Ok(_) => Ok(Some(EntryKind::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a folder and its missing parents.
    pub fn create_dir_all(&self, relative: &Path) -> io::Result<()> {
        if relative.as_os_str().is_empty() {
            return Ok(());
        }
        self.dir.create_dir_all(relative)
    }

    /// Removes a folder if it is empty (never follows a link: `rmdir` removes none).
    pub fn remove_empty_dir(&self, relative: &Path) -> io::Result<()> {
        self.dir.remove_dir(here(relative))
    }

    /// Opens a regular file for reading; a symlink as its last component is refused.
    pub fn open_file(&self, relative: &Path) -> io::Result<std::fs::File> {
        open_regular(&self.dir, here(relative))
    }

    /// Reads a regular file as text (lossy).
    pub fn read_to_string(&self, relative: &Path) -> io::Result<String> {
        let mut bytes = Vec::new();
        self.open_file(relative)?.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Creates (or truncates) a file for writing, never through a symlink.
    pub fn create_file(&self, relative: &Path) -> io::Result<std::fs::File> {
        create_file(&self.dir, relative)
    }

    /// The names of the real folders (not links) right below the root, sorted.
    pub fn folders(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for entry in self.dir.entries()? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                out.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        out.sort();
        Ok(out)
    }

    /// What is right below the root: each entry's name, kind and size (a folder's is 0),
    /// folders first, then by name; links are listed as `Other` and never followed.
    pub fn entries(&self) -> io::Result<Vec<(String, EntryKind, u64)>> {
        let mut out = Vec::new();
        for entry in self.dir.entries()? {
            let entry = entry?;
            let kind = match entry.file_type()? {
                t if t.is_dir() => EntryKind::Folder,
                t if t.is_file() => EntryKind::File,
                _ => EntryKind::Other,
            };
            let size = match kind {
                EntryKind::File => entry.metadata().map(|m| m.len()).unwrap_or(0),
                _ => 0,
            };
            out.push((entry.file_name().to_string_lossy().into_owned(), kind, size));
        }
        out.sort_by(|a, b| (a.1 != EntryKind::Folder, &a.0).cmp(&(b.1 != EntryKind::Folder, &b.0)));
        Ok(out)
    }

    /// Reads a regular file.
    pub fn read(&self, relative: &Path) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open_file(relative)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Every regular file below the root with its size, `/`-separated and sorted; links are not
    /// followed.
    pub fn files(&self) -> Vec<(String, u64)> {
        fn walk(dir: &Dir, prefix: &Path, out: &mut Vec<(String, u64)>) {
            let Ok(entries) = dir.entries() else {
                return;
            };
            for entry in entries.flatten() {
                let path = prefix.join(entry.file_name());
                match entry.file_type() {
                    Ok(t) if t.is_dir() => {
                        if let Ok(sub) = entry.open_dir() {
                            walk(&sub, &path, out);
                        }
                    }
                    Ok(t) if t.is_file() => {
                        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                        out.push((path.to_string_lossy().into_owned(), size));
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.dir, Path::new(""), &mut out);
        out.sort();
        out
    }

    /// Opens what a download of `relative` archives; `None` when nothing is there. Opening first
    /// means a missing or escaping path is reported before the first byte is sent.
    pub fn download(&self, relative: &Path) -> io::Result<Option<Download>> {
        match self.kind(relative)? {
            None => Ok(None),
            Some(EntryKind::Folder) => {
                Ok(Some(Download::Folder(self.dir.open_dir(here(relative))?)))
            }
            Some(EntryKind::File) => {
                let file = self.open_file(relative)?;
                let name = relative
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok(Some(Download::File { file, name }))
            }
            Some(EntryKind::Other) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither a file nor a folder",
            )),
        }
    }
}

/// Reads the log `name` in `dir`, a folder user code can write into, as text; empty when it is
/// missing, is not a regular file, or leads out of `dir`.
pub fn read_log(dir: &Path, name: &str) -> String {
    UserTree::open(dir)
        .and_then(|tree| tree.read_to_string(Path::new(name)))
        .unwrap_or_default()
}

/// Opens a regular file of `dir` for reading, not following a symlink as its last component.
fn open_regular(dir: &Dir, relative: &Path) -> io::Result<std::fs::File> {
    let file = dir
        .open_with(
            relative,
            OpenOptions::new().read(true).custom_flags(READ_FLAGS),
        )?
        .into_std();
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// Creates (or truncates) a file of `dir` for writing, never through a symlink.
fn create_file(dir: &Dir, relative: &Path) -> io::Result<std::fs::File> {
    Ok(dir
        .open_with(
            relative,
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(WRITE_FLAGS),
        )?
        .into_std())
}

/// A folder or file of a [`UserTree`], opened, to be written as a tar archive.
#[derive(Debug)]
pub enum Download {
    Folder(Dir),
    File { file: std::fs::File, name: String },
}

impl Download {
    /// Writes the archive to `out` as it walks, so nothing is held in memory: a folder's entries
    /// under `prefix/`, a file as `prefix/<its name>`. Symlinks are archived as links when
    /// [`link_stays_inside`] the folder, left out otherwise, like sockets and FIFOs.
    pub fn write_tar<W: Write>(self, prefix: &str, out: W) -> io::Result<W> {
        let mut builder = tar::Builder::new(out);
        match self {
            Download::Folder(dir) => {
                append_dir(&mut builder, Path::new(prefix), &dir)?;
                append_tree(&mut builder, &dir, Path::new(prefix), 0)?;
            }
            Download::File { file, name } => {
                append_file(&mut builder, &Path::new(prefix).join(name), file)?;
            }
        }
        builder.into_inner()
    }
}

fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Dir,
    prefix: &Path,
    depth: usize,
) -> io::Result<()> {
    let mut entries: Vec<(OsString, cap_std::fs::FileType)> = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        entries.push((entry.file_name(), entry.file_type()?));
    }
    // Sorted, so the same folder always gives the same archive.
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, file_type) in entries {
        let path = prefix.join(&name);
        if file_type.is_dir() {
            let sub = match dir.open_dir(&name) {
                Ok(sub) => sub,
                // Removed (or replaced by a link) while the archive was written.
                Err(e) => {
                    tracing::debug!(entry = %path.display(), error = %e, "left out of a download");
                    continue;
                }
            };
            append_dir(builder, &path, &sub)?;
            append_tree(builder, &sub, &path, depth + 1)?;
        } else if file_type.is_file() {
            match open_regular(dir, Path::new(&name)) {
                Ok(file) => append_file(builder, &path, file)?,
                Err(e) => {
                    tracing::debug!(entry = %path.display(), error = %e, "left out of a download");
                }
            }
        } else if file_type.is_symlink() {
            let target = dir.read_link_contents(&name)?;
            if link_stays_inside(depth, &target) {
                let mut header = tar::Header::new_gnu();
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, &path, &target)?;
            } else {
                tracing::warn!(
                    entry = %path.display(),
                    target = %target.display(),
                    "left a symbolic link leading out of its folder out of a download"
                );
            }
        }
    }
    Ok(())
}

fn append_dir<W: Write>(builder: &mut tar::Builder<W>, path: &Path, dir: &Dir) -> io::Result<()> {
    let meta = dir.dir_metadata()?;
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    header.set_uid(u64::from(meta.uid()));
    header.set_gid(u64::from(meta.gid()));
    header.set_size(0);
    builder.append_data(&mut header, path, io::empty())
}

fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &Path,
    file: std::fs::File,
) -> io::Result<()> {
    let meta = file.metadata()?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let size = meta.len();
    builder.append_data(
        &mut header,
        path,
        ExactLen {
            inner: file,
            left: size,
        },
    )
}

/// Reads exactly `left` bytes: a file that shrinks while it is archived (a log being rotated) is
/// padded with zeros and one that grows is cut, so the archive stays well-formed.
struct ExactLen<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for ExactLen<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(0);
        }
        let n = match self.inner.read(&mut buf[..max])? {
            0 => {
                buf[..max].fill(0);
                max
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts of what an unpack wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u64,
    pub bytes: u64,
}

/// Where an uploaded archive is: in memory, or in a file it was streamed into (uploads are), so
/// that an upload is read from disk as often as needed instead of held in memory.
pub trait ArchiveSource {
    fn reader(&self) -> io::Result<Box<dyn Read + '_>>;
}

impl ArchiveSource for [u8] {
    fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self))
    }
}

impl ArchiveSource for Vec<u8> {
    fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.as_slice()))
    }
}

impl ArchiveSource for Path {
    fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(io::BufReader::new(std::fs::File::open(self)?)))
    }
}

fn archive_reader<A: ArchiveSource + ?Sized>(archive: &A) -> Result<Box<dyn Read + '_>, String> {
    archive
        .reader()
        .map_err(|e| format!("read the uploaded archive: {e}"))
}

/// Unpacks an uploaded tar archive into `dest` (a datastore's root), all or nothing: entries are
/// written to a fresh temp dir inside `dest` and checked there, and only when every entry passed
/// are they moved into place (a folder new to `dest` in one rename). Entries must be regular
/// files or folders, may not leave `dest` (`..`) and may not go through a symlink in `dest`; a
/// refused upload leaves nothing, not even its temp dir. (Only a change to `dest` by someone
/// else while the upload moves in can leave part of it.)
pub fn unpack_tar<A: ArchiveSource + ?Sized>(archive: &A, dest: &Path) -> Result<Unpacked, String> {
    unpack_tar_allowing(archive, dest, &mut |_| Ok(()))
}

/// As [`unpack_tar`], asking `allow` about each entry's name before it is written: a refusal
/// refuses the whole upload, which then leaves nothing. One pass over the archive.
pub fn unpack_tar_allowing<A: ArchiveSource + ?Sized>(
    archive: &A,
    dest: &Path,
    allow: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<Unpacked, String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("create `{}`: {e}", dest.display()))?;
    let root = UserTree::open(dest).map_err(|e| format!("open `{}`: {e}", dest.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".spool-upload-")
        .tempdir_in(dest)
        .map_err(|e| format!("create a temp dir in `{}`: {e}", dest.display()))?;
    let staged = UserTree::open(temp.path()).map_err(|e| format!("open the temp dir: {e}"))?;
    let unpacked = unpack_entries(archive, &staged.dir, Some(&root.dir), allow)?;
    move_into(&staged.dir, &root.dir, Path::new(""))
        .map_err(|e| format!("move the upload into place: {e}"))?;
    Ok(unpacked)
}

/// Writes an archive's entries into `into`, a fresh folder; with `dest`, also checks that each
/// entry can later move into `dest` without going through a symlink there.
fn unpack_entries<A: ArchiveSource + ?Sized>(
    archive: &A,
    into: &Dir,
    dest: Option<&Dir>,
    allow: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<Unpacked, String> {
    let mut reader = tar::Archive::new(archive_reader(archive)?);
    let mut counts = Unpacked::default();
    let mut staged = Folders::new(into);
    let mut checked = dest.map(Destination::new);
    let entries = reader.entries().map_err(|e| format!("read upload: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("read upload: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("read upload: {e}"))?
            .to_string_lossy()
            .into_owned();
        allow(&name)?;
        let relative = relative_path(&name)?;
        let entry_type = entry.header().entry_type();
        match entry_type {
            tar::EntryType::Directory => {
                if let Some(dest) = &mut checked {
                    dest.check(&relative, true, &name)?;
                }
                staged.folder(&relative, &name)?;
            }
            tar::EntryType::Regular => {
                let (Some(parent), Some(file_name)) = (relative.parent(), relative.file_name())
                else {
                    return Err(format!("`{name}`: a file entry needs a name"));
                };
                if let Some(dest) = &mut checked {
                    dest.check(&relative, false, &name)?;
                }
                let folder = staged.folder(parent, &name)?;
                let mut file = create_file(folder, Path::new(file_name))
                    .map_err(|e| format!("write `{name}`: {e}"))?;
                let bytes =
                    io::copy(&mut entry, &mut file).map_err(|e| format!("write `{name}`: {e}"))?;
                counts.files += 1;
                counts.bytes += bytes;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let what = if entry_type == tar::EntryType::Symlink {
                    "symbolic links"
                } else {
                    "hard links"
                };
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                return Err(format!(
                    "`{name}`: {what} are not accepted in uploads (it points to `{target}`)\nhint: upload the file or folder it points to instead"
                ));
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

/// The folders an unpack created, open, so each entry costs one open below its folder rather
/// than a walk from the root (`openat2` is not cheap on every kernel).
struct Folders<'a> {
    root: &'a Dir,
    open: HashMap<PathBuf, Dir>,
}

impl<'a> Folders<'a> {
    fn new(root: &'a Dir) -> Folders<'a> {
        Folders {
            root,
            open: HashMap::new(),
        }
    }

    /// Creates `relative` and its missing parents, each checked to be a real folder after it
    /// was made (not a symlink, even one planted while the upload runs), and returns it open.
    fn folder(&mut self, relative: &Path, name: &str) -> Result<&Dir, String> {
        let mut prefix = PathBuf::new();
        for component in relative.components() {
            let parent_key = prefix.clone();
            prefix.push(component);
            if self.open.contains_key(&prefix) {
                continue;
            }
            let parent = if parent_key.as_os_str().is_empty() {
                self.root
            } else {
                self.open
                    .get(&parent_key)
                    .expect("a folder's parent is opened before it")
            };
            let part = Path::new(component.as_os_str());
            match parent.create_dir(part) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("create `{name}`: {e}")),
            }
            let is_folder = parent
                .symlink_metadata(part)
                .map(|m| m.is_dir())
                .map_err(|e| format!("create `{name}`: {e}"))?;
            if !is_folder {
                return Err(format!(
                    "`{name}`: `{}` is not a folder; uploads never write through links",
                    prefix.display()
                ));
            }
            let folder = parent
                .open_dir(part)
                .map_err(|e| format!("create `{name}`: {e}"))?;
            self.open.insert(prefix.clone(), folder);
        }
        Ok(if prefix.as_os_str().is_empty() {
            self.root
        } else {
            self.open
                .get(&prefix)
                .expect("every folder of the path was opened above")
        })
    }
}

/// Checks that entries can move into `dest`, remembering the folders already checked.
struct Destination<'a> {
    dest: &'a Dir,
    /// Prefixes known to be real folders in `dest`.
    folders: HashSet<PathBuf>,
    /// Prefixes known to be absent from `dest` (so is everything below them).
    missing: HashSet<PathBuf>,
}

impl<'a> Destination<'a> {
    fn new(dest: &'a Dir) -> Destination<'a> {
        Destination {
            dest,
            folders: HashSet::new(),
            missing: HashSet::new(),
        }
    }

    /// Checks one entry: every existing parent is a real folder (not a symlink, not a file),
    /// and what is already at its place is of its kind (a file or symlink may be replaced by a
    /// file, a folder only merged with a folder).
    fn check(&mut self, relative: &Path, is_dir: bool, name: &str) -> Result<(), String> {
        let components: Vec<Component> = relative.components().collect();
        let mut prefix = PathBuf::new();
        for (i, component) in components.iter().enumerate() {
            prefix.push(component);
            if self.missing.contains(&prefix) {
                return Ok(());
            }
            if self.folders.contains(&prefix) {
                continue;
            }
            let last = i + 1 == components.len();
            let file_type = match self.dest.symlink_metadata(&prefix) {
                Ok(meta) => meta.file_type(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.missing.insert(prefix);
                    return Ok(());
                }
                Err(e) => {
                    return Err(format!(
                        "`{name}`: check `{}` in the datastore: {e}",
                        prefix.display()
                    ));
                }
            };
            let replaced = last && !is_dir;
            if file_type.is_symlink() && !replaced {
                return Err(format!(
                    "`{name}`: `{}` is a symbolic link in the datastore; uploads never write through links\nhint: remove the link, or upload to another path",
                    prefix.display()
                ));
            }
            if file_type.is_dir() && replaced {
                return Err(format!(
                    "`{name}`: `{}` is a folder in the datastore, so a file cannot replace it",
                    prefix.display()
                ));
            }
            if !file_type.is_dir() && !replaced {
                return Err(format!(
                    "`{name}`: `{}` is a file in the datastore, not a folder",
                    prefix.display()
                ));
            }
            if file_type.is_dir() {
                self.folders.insert(prefix.clone());
            }
        }
        Ok(())
    }
}

/// Moves the folder `relative` of `from` into the same place in `to`, where it exists: what `to`
/// lacks moves in one rename, folders in both are merged, files replace files and links.
fn move_into(from: &Dir, to: &Dir, relative: &Path) -> io::Result<()> {
    let source = from.open_dir(here(relative))?;
    for entry in source.entries()? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        let is_dir = entry.file_type()?.is_dir();
        match to.symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => from.rename(&path, to, &path)?,
            // `symlink_metadata` describes a link itself, so `is_dir` is a real folder.
            Ok(meta) if is_dir && meta.is_dir() => move_into(from, to, &path)?,
            Ok(meta) if !is_dir && !meta.is_dir() => from.rename(&path, to, &path)?,
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "`{}` changed in the datastore during the upload",
                    path.display()
                )));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Stores a code snapshot (a tar archive) under `snapshots/<sha256>`, once per content: unpacked
/// into a temp dir of its own and renamed into place, so concurrent uploads of the same content
/// all succeed (the first rename wins, the others find it there) and a refused or failed upload
/// leaves nothing. Returns the id and the number of files.
pub fn store_snapshot<A: ArchiveSource + ?Sized>(
    snapshots_dir: &Path,
    archive: &A,
) -> Result<(String, u64), String> {
    let mut hasher = Sha256::new();
    let mut source = archive_reader(archive)?;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = source
            .read(&mut buffer)
            .map_err(|e| format!("read the uploaded archive: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    drop(source);
    let id = hex(&hasher.finalize());
    let final_dir = snapshots_dir.join(&id);
    if final_dir.is_dir() {
        let files = count_files(&final_dir);
        return Ok((id, files));
    }
    let temp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{id}-"))
        .tempdir_in(snapshots_dir)
        .map_err(|e| format!("store snapshot: create a temp dir: {e}"))?;
    let staged = UserTree::open(temp.path()).map_err(|e| format!("store snapshot: {e}"))?;
    let unpacked = unpack_entries(archive, &staged.dir, None, &mut |_| Ok(()))?;
    drop(staged);
    match std::fs::rename(temp.path(), &final_dir) {
        Ok(()) => {
            // The temp dir is the snapshot now; nothing is left to remove.
            let _ = temp.keep();
        }
        // Another upload of the same content won the race; theirs is identical, and dropping
        // `temp` removes ours.
        Err(_) if final_dir.is_dir() => {}
        Err(e) => return Err(format!("store snapshot `{id}`: {e}")),
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

/// Copies a folder tree (used to give each job its own working copy of a snapshot). No link is
/// followed: links that [stay inside](link_stays_inside) are copied as links, others left out.
pub fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    let source = UserTree::open(from)?;
    let target = UserTree::open(to)?;
    copy_dir(&source.dir, &target.dir, 0)
}

fn copy_dir(from: &Dir, to: &Dir, depth: usize) -> io::Result<()> {
    for entry in from.entries()? {
        let entry = entry?;
        let name = PathBuf::from(entry.file_name());
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            match to.create_dir(&name) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            copy_dir(&from.open_dir(&name)?, &to.open_dir(&name)?, depth + 1)?;
        } else if file_type.is_file() {
            let mut source = open_regular(from, &name)?;
            let mut target = create_file(to, &name)?;
            io::copy(&mut source, &mut target)?;
            target.set_permissions(source.metadata()?.permissions())?;
        } else if file_type.is_symlink() {
            let link = from.read_link_contents(&name)?;
            if link_stays_inside(depth, &link) {
                to.symlink(&link, &name)?;
            } else {
                tracing::warn!(
                    entry = %name.display(),
                    target = %link.display(),
                    "left a symbolic link leading out of its folder out of a copy"
                );
            }
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
    /// A tar archive of `entries`: (name, content) files, and (name, target) links when the
    /// content starts with `->`; names are written into the header as is, so `..` goes through.
    fn archive_of(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(target) = content.strip_prefix("->") {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_link_name(target).unwrap();
                header.set_cksum();
                builder.append(&header, &[][..]).unwrap();
            } else if let Some(target) = content.strip_prefix("=>") {
                header.set_entry_type(tar::EntryType::Link);
                header.set_size(0);
                header.set_link_name(target).unwrap();
                header.set_cksum();
                builder.append(&header, &[][..]).unwrap();
            } else {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(content.len() as u64);
                header.set_cksum();
                builder.append(&header, content.as_bytes()).unwrap();
            }
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn unpack_never_writes_through_a_planted_link_to_the_root_of_the_host() {
        // User code planted `evil -> /`; an entry under it must not land outside the datastore.
        let outside = tempfile::tempdir().unwrap();
        let dest = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dest.path().join("evil")).unwrap();
        let name = format!("evil{}/pwned.txt", outside.path().display());
        let err = unpack_tar(&archive_of(&[(&name, "owned")]), dest.path()).unwrap_err();
        assert!(!outside.path().join("pwned.txt").exists());
        assert!(err.contains(&format!("`{name}`")), "{err}");
        assert!(err.contains("`evil` is a symbolic link"), "{err}");
        assert_eq!(spool_test::tree_listing(dest.path()), ["evil -> /"]);
    }

    #[test]
    fn unpack_refuses_links_naming_the_entry_and_writes_nothing() {
        let dest = tempfile::tempdir().unwrap();
        for (entries, expected) in [
            (
                &[("a.txt", "a"), ("link", "->/etc/passwd")][..],
                "`link`: symbolic links are not accepted in uploads (it points to `/etc/passwd`)",
            ),
            (
                &[("a.txt", "a"), ("hard", "=>a.txt")][..],
                "`hard`: hard links are not accepted in uploads (it points to `a.txt`)",
            ),
        ] {
            let err = unpack_tar(&archive_of(entries), dest.path()).unwrap_err();
            assert!(err.starts_with(expected), "{err}");
            assert!(
                spool_test::tree_listing(dest.path()).is_empty(),
                "{:?}",
                spool_test::tree_listing(dest.path())
            );
        }
    }

    #[test]
    fn a_rejected_upload_leaves_nothing_behind() {
        let dest = tempfile::tempdir().unwrap();
        std::fs::write(dest.path().join("kept.txt"), "old").unwrap();
        let archive = archive_of(&[("a.txt", "a"), ("dir/b.txt", "b"), ("../x.txt", "x")]);
        let err = unpack_tar(&archive, dest.path()).unwrap_err();
        assert!(err.contains("leaves its datastore root"), "{err}");
        assert_eq!(spool_test::tree_listing(dest.path()), ["kept.txt"]);
        assert!(!dest.path().parent().unwrap().join("x.txt").exists());
    }

    #[test]
    fn an_upload_merges_into_existing_folders_and_replaces_files() {
        let dest = tempfile::tempdir().unwrap();
        std::fs::create_dir(dest.path().join("data")).unwrap();
        std::fs::write(dest.path().join("data/old.csv"), "old").unwrap();
        std::fs::write(dest.path().join("data/same.csv"), "before").unwrap();
        let archive = archive_of(&[("data/same.csv", "after"), ("data/new/x.csv", "x")]);
        let unpacked = unpack_tar(&archive, dest.path()).unwrap();
        assert_eq!(unpacked, Unpacked { files: 2, bytes: 6 });
        assert_eq!(
            spool_test::tree_listing(dest.path()),
            [
                "data/",
                "data/new/",
                "data/new/x.csv",
                "data/old.csv",
                "data/same.csv"
            ]
        );
        assert_eq!(
            std::fs::read_to_string(dest.path().join("data/same.csv")).unwrap(),
            "after"
        );
    }

    #[test]
    fn identical_snapshots_stored_at_once_all_succeed() {
        let names: Vec<String> = (0..100).map(|i| format!("pkg/m{i}.py")).collect();
        let entries: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x = 1\n")).collect();
        let archive = archive_of(&entries);
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let results: Vec<Result<(String, u64), String>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| scope.spawn(|| store_snapshot(dir.path(), &archive)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for result in &results {
                assert_eq!(result.as_ref().map(|(_, files)| *files), Ok(100));
            }
            // Only the snapshot itself is left: no temp dir of any upload.
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn a_failed_snapshot_leaves_no_temp_dir() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive_of(&[("main.py", "print"), ("link", "->/")]);
        let err = store_snapshot(dir.path(), &archive).unwrap_err();
        assert!(err.contains("`link`"), "{err}");
        assert!(
            spool_test::tree_listing(dir.path()).is_empty(),
            "{:?}",
            spool_test::tree_listing(dir.path())
        );
    }

    #[test]
    fn copy_tree_never_follows_links_out_of_the_tree() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        std::fs::write(from.path().join("a.txt"), "a").unwrap();
        std::fs::create_dir(from.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/", from.path().join("root")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("passwd")).unwrap();
        std::os::unix::fs::symlink("../../x", from.path().join("sub/up")).unwrap();
        std::os::unix::fs::symlink("../a.txt", from.path().join("sub/a")).unwrap();
        copy_tree(from.path(), &to.path().join("work")).unwrap();
        assert_eq!(
            spool_test::tree_listing(&to.path().join("work")),
            ["a.txt", "sub/", "sub/a -> ../a.txt"]
        );
    }
}
