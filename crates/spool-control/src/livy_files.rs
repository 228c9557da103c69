//! Files that Livy requests name (a batch's `file`; `jars`, `pyFiles`, `files` and `archives` of
//! batches and sessions): datastore URIs, paths in the default datastore, or local paths under
//! `[livy] local_dir_allowlist` (as Livy's `livy.file.local-dir-whitelist`). They are gathered
//! into one content-addressed snapshot, flat, each under its file name, which the driver's
//! working copy is made from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::access::Access;
use crate::datastore::{DEFAULT_DATASTORE, DatastoreUri, hex};
use crate::roles::DataAccess;
use crate::{Caller, Control, Result, invalid};

/// The four file lists of a Livy request, each a list of references (datastore URIs, paths in
/// the default datastore, or allowed local paths).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FileLists {
    pub jars: Vec<String>,
    pub py_files: Vec<String>,
    pub files: Vec<String>,
    pub archives: Vec<String>,
}

impl FileLists {
    pub(crate) fn is_empty(&self) -> bool {
        self.jars.is_empty()
            && self.py_files.is_empty()
            && self.files.is_empty()
            && self.archives.is_empty()
    }
}

/// One file a request named: as given, and its name in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFile {
    pub given: String,
    pub name: String,
}

/// A session's extra files (stored with the session; the snapshot holds their bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFiles {
    /// The snapshot id (`snapshots/<id>` in the data dir).
    pub snapshot: String,
    #[serde(default)]
    pub jars: Vec<NamedFile>,
    #[serde(default)]
    pub py_files: Vec<NamedFile>,
    #[serde(default)]
    pub files: Vec<NamedFile>,
    #[serde(default)]
    pub archives: Vec<NamedFile>,
}

impl NamedFile {
    /// How Spark is given it: its name in the working copy, with the reference's `#alias` (the
    /// folder an archive is unpacked into) kept.
    pub fn spark_name(&self) -> String {
        match self.given.split_once('#') {
            Some((_, alias)) => format!("{}#{alias}", self.name),
            None => self.name.clone(),
        }
    }
}

impl SessionFiles {
    /// The names of one list as Spark is given them (see [`NamedFile::spark_name`]).
    pub fn names(list: &[NamedFile]) -> Vec<String> {
        list.iter().map(NamedFile::spark_name).collect()
    }

    /// The references of one list, as the request gave them (Livy's view echoes them).
    pub fn given(list: &[NamedFile]) -> Vec<String> {
        list.iter().map(|f| f.given.clone()).collect()
    }
}

/// Where a reference points.
#[derive(Debug, PartialEq, Eq)]
enum Source {
    Datastore(DatastoreUri),
    Local(PathBuf),
}

/// Reads `reference` (from the field `field`) as Livy does: `file:` URLs and absolute paths are
/// local, `azureml://` URIs name a datastore, anything else is a path in the default datastore.
fn classify(field: &str, reference: &str) -> Result<Source> {
    if let Some(rest) = reference.strip_prefix("file://") {
        return Ok(Source::Local(PathBuf::from(rest)));
    }
    if let Some(rest) = reference.strip_prefix("file:") {
        return Ok(Source::Local(PathBuf::from(rest)));
    }
    if reference.starts_with('/') {
        return Ok(Source::Local(PathBuf::from(reference)));
    }
    match DatastoreUri::parse(reference) {
        Some(Ok(uri)) => Ok(Source::Datastore(uri)),
        Some(Err(m)) => Err(invalid(field, m)),
        None if reference.contains("://") => Err(invalid(
            field,
            format!(
                "`{reference}`: only `azureml://datastores/<name>/paths/<path>` URIs, paths in the default datastore and local paths under `[livy] local_dir_allowlist` are supported"
            ),
        )),
        None => Ok(Source::Datastore(DatastoreUri::new(
            DEFAULT_DATASTORE,
            reference,
        ))),
    }
}

/// The local file `path` if it lies under one of `allowed` once links are followed (so a link
/// cannot lead out), else Livy's refusal.
pub(crate) fn allowed_local(field: &str, path: &Path, allowed: &[PathBuf]) -> Result<PathBuf> {
    let refused = || {
        let hint = if allowed.is_empty() {
            "no local folders are allowed on this server; upload the file to a datastore with `spool datastore upload`, or have an admin list its folder in `[livy] local_dir_allowlist` in config.toml".to_string()
        } else {
            format!(
                "local files must be under {}; or upload the file to a datastore with `spool datastore upload`",
                allowed
                    .iter()
                    .map(|d| format!("`{}`", d.display()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        invalid(
            field,
            format!(
                "Local path {} cannot be added to user sessions.\nhint: {hint}",
                path.display()
            ),
        )
    };
    if !path.is_absolute() {
        return Err(refused());
    }
    let Ok(real) = path.canonicalize() else {
        // Whether a file exists is said only for allowed places.
        let under = allowed
            .iter()
            .any(|dir| dir.canonicalize().is_ok_and(|d| lexically_under(path, &d)));
        return Err(if under {
            invalid(field, format!("no file at `{}`", path.display()))
        } else {
            refused()
        });
    };
    let allowed_here = allowed
        .iter()
        .filter_map(|dir| dir.canonicalize().ok())
        .any(|dir| real.starts_with(&dir));
    if !allowed_here {
        return Err(refused());
    }
    if !real.is_file() {
        return Err(invalid(
            field,
            format!("`{}` is not a file", path.display()),
        ));
    }
    Ok(real)
}

/// Whether `path` is under `dir` without `..` steps (for paths that do not exist).
fn lexically_under(path: &Path, dir: &Path) -> bool {
    path.starts_with(dir)
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// A reference without its `#alias`.
pub(crate) fn without_alias(reference: &str) -> &str {
    reference
        .split_once('#')
        .map_or(reference, |(path, _)| path)
}

/// The file name a reference gets in the flat snapshot.
fn file_name(reference: &str) -> String {
    let reference = without_alias(reference);
    Path::new(reference)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| reference.to_string())
}

/// Names every reference of every list (field, references) in the flat snapshot; two different
/// references with one file name would overwrite each other, so they are refused.
fn name_all(lists: &[(&str, &[String])]) -> Result<Vec<Vec<NamedFile>>> {
    let mut taken: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut out = Vec::new();
    for (field, list) in lists {
        let mut named = Vec::new();
        for given in list.iter() {
            // Spark unpacks an archive into its `#folder`, but refuses a fragment anywhere else
            // (`URI has a fragment component` as the driver starts).
            if *field != "archives"
                && let Some((path, alias)) = given.split_once('#')
            {
                return Err(invalid(
                    *field,
                    format!(
                        "`{given}`: only archives take a `#name` (the folder Spark unpacks them into); give `{path}` the name `{alias}` before naming it here"
                    ),
                ));
            }
            let name = file_name(given);
            if let Some((other_field, other)) = taken.get(&name)
                && other != given
            {
                return Err(invalid(
                    *field,
                    format!(
                        "`{given}` and `{other}` (in `{other_field}`) have the same file name `{name}`; the driver gets its files in one folder, so rename one of them"
                    ),
                ));
            }
            taken.insert(name.clone(), (field.to_string(), given.clone()));
            named.push(NamedFile {
                given: given.clone(),
                name,
            });
        }
        out.push(named);
    }
    Ok(out)
}

impl Control {
    /// Reads one referenced file, checking the caller's data roles for datastore files and the
    /// allow-list for local ones.
    async fn livy_file(&self, data: &DataAccess, field: &str, reference: &str) -> Result<Vec<u8>> {
        let uri = match classify(field, reference)? {
            Source::Local(path) => {
                let real = allowed_local(field, &path, &self.config().livy_local_dirs)?;
                return std::fs::read(&real)
                    .map_err(|e| invalid(field, format!("cannot read `{}`: {e}", path.display())));
            }
            Source::Datastore(uri) => uri,
        };
        data.check_uri(field, &uri, Access::Read)?;
        let (tree, relative) = self
            .datastore_path(&uri)
            .await
            .map_err(|e| crate::retarget(e, field))?;
        let kind = tree
            .kind(&relative)
            .map_err(|e| crate::datastore_error(field, &uri, e))?;
        if kind != Some(crate::EntryKind::File) {
            return Err(invalid(
                field,
                format!(
                    "no file at `{}`; upload it with `spool datastore upload`",
                    uri.to_uri()
                ),
            ));
        }
        tree.read(&relative)
            .map_err(|e| crate::datastore_error(field, &uri, e))
    }

    /// Reads a Livy request's files (a batch's `main` file, if any, and `lists`) into one
    /// snapshot; returns them as named there, and the main file. Nothing is stored unless every
    /// file could be read.
    /// `py_files_field` is how the caller's API spells that list (`pyFiles`, `py_files`).
    pub(crate) async fn gather_livy_files(
        &self,
        owner: &Caller,
        main: Option<&str>,
        lists: &FileLists,
        py_files_field: &str,
    ) -> Result<(SessionFiles, Option<NamedFile>)> {
        let main: Vec<String> = main.map(str::to_string).into_iter().collect();
        let lists: [(&str, &[String]); 5] = [
            ("file", &main),
            ("jars", &lists.jars),
            (py_files_field, &lists.py_files),
            ("files", &lists.files),
            ("archives", &lists.archives),
        ];
        let named = name_all(&lists)?;
        let data = self.data_access(owner).await?;
        let mut resolved: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for ((field, _), files) in lists.iter().zip(&named) {
            for file in files {
                if resolved.contains_key(&file.name) {
                    continue;
                }
                let bytes = self
                    .livy_file(&data, field, without_alias(&file.given))
                    .await?;
                resolved.insert(file.name.clone(), bytes);
            }
        }
        let mut hasher = Sha256::new();
        for (name, bytes) in &resolved {
            hasher.update(name.as_bytes());
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        }
        let id = hex(&hasher.finalize());
        let snapshots = self.data_dir().join("snapshots");
        let dir = snapshots.join(&id);
        if !dir.exists() {
            // A temp dir of its own, renamed into place: a concurrent identical request finds
            // the snapshot there, and a failure leaves nothing.
            crate::permissions::create_private_dir(&snapshots).map_err(anyhow::Error::from)?;
            let tmp = tempfile::Builder::new()
                .prefix(&format!(".tmp-livy-{id}-"))
                .tempdir_in(&snapshots)
                .map_err(anyhow::Error::from)?;
            for (name, bytes) in &resolved {
                std::fs::write(tmp.path().join(name), bytes).map_err(anyhow::Error::from)?;
            }
            match std::fs::rename(tmp.path(), &dir) {
                Ok(()) => {
                    let _ = tmp.keep();
                }
                Err(_) if dir.is_dir() => {}
                Err(e) => {
                    return Err(anyhow::Error::from(e)
                        .context("store the request's files as a snapshot")
                        .into());
                }
            }
        }
        let [main, jars, py_files, files, archives] =
            <[Vec<NamedFile>; 5]>::try_from(named).expect("one list per field");
        let files = SessionFiles {
            snapshot: id,
            jars,
            py_files,
            files,
            archives,
        };
        Ok((files, main.into_iter().next()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_read_as_livy_reads_them() {
        let cases = [
            ("file:///opt/libs/a.py", "local /opt/libs/a.py"),
            ("file:/opt/libs/a.py", "local /opt/libs/a.py"),
            ("/opt/libs/a.py", "local /opt/libs/a.py"),
            ("libs/a.py", "datastore workspaceblobstore libs/a.py"),
            (
                "azureml://datastores/mine/paths/libs/a.py",
                "datastore mine libs/a.py",
            ),
            ("s3://bucket/a.py", "error"),
        ];
        for (reference, expected) in cases {
            let got = match classify("pyFiles", reference) {
                Ok(Source::Local(p)) => format!("local {}", p.display()),
                Ok(Source::Datastore(uri)) => {
                    format!("datastore {} {}", uri.datastore, uri.path)
                }
                Err(_) => "error".to_string(),
            };
            assert_eq!(got, expected, "{reference}");
        }
    }

    #[test]
    fn one_file_name_for_two_references_is_refused() {
        let a = vec!["libs/util.py".to_string(), "util.py".to_string()];
        let err = name_all(&[("pyFiles", &a)]).unwrap_err().to_string();
        assert!(err.contains("same file name `util.py`"), "{err}");
        let same = vec!["libs/util.py".to_string()];
        let named = name_all(&[("pyFiles", &same), ("files", &same)]).unwrap();
        assert_eq!(named[1][0].name, "util.py");
        let archive = vec!["libs/deps.zip#deps".to_string()];
        let named = name_all(&[("archives", &archive)]).unwrap();
        assert_eq!(named[0][0].name, "deps.zip");
        assert_eq!(named[0][0].spark_name(), "deps.zip#deps");
    }

    #[test]
    fn local_files_must_be_under_an_allowed_folder_even_through_links() {
        let root = tempfile::tempdir().unwrap();
        let allowed = root.path().join("allowed");
        let outside = root.path().join("outside");
        std::fs::create_dir_all(&allowed).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(allowed.join("ok.py"), "x = 1").unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), allowed.join("link")).unwrap();
        let dirs = vec![allowed.clone()];
        assert!(allowed_local("jars", &allowed.join("ok.py"), &dirs).is_ok());
        for (path, expected) in [
            (outside.join("secret"), "cannot be added to user sessions"),
            (allowed.join("link"), "cannot be added to user sessions"),
            (allowed.join("../outside/secret"), "cannot be added"),
            (allowed.join("missing.py"), "no file at"),
            (outside.join("missing.py"), "cannot be added"),
        ] {
            let err = allowed_local("jars", &path, &dirs).unwrap_err().to_string();
            assert!(err.contains(expected), "{}: {err}", path.display());
        }
        let err = allowed_local("jars", &allowed.join("ok.py"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no local folders are allowed"), "{err}");
    }
}
