//! Run-time enforcement by the operating system: one OS account per principal that runs work,
//! datastore trees whose ACLs give each account exactly its principal's data roles, and the few
//! folders every account must pass through.
//!
//! The server runs as root to do this. Without root (or without `useradd` and `setpriv`) work
//! runs as the server's own account, the submit-time checks stay, and work is marked as not
//! enforced.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustix::fs::{Mode, OFlags, XattrFlags};
use spool_store::Store;
use spool_supervisor::RunAs;

use crate::acl::{self, AccountGrant, Perm};
use crate::config::EnforceSetting;

/// The group every Spool account is in: the folders all of them pass through (the data dir,
/// the cache and their parents) give it `--x`. Shared by every Spool server of the host, so
/// such a folder gets one entry however many servers run.
pub const SPOOL_GROUP: &str = "spool";

const ACCESS_ACL: &str = "system.posix_acl_access";
const DEFAULT_ACL: &str = "system.posix_acl_default";

/// Whether work runs under per-principal accounts, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    On,
    /// The reason, for the start-up warning and job views.
    Off(String),
}

/// A principal's account.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Account {
    /// The account a row records, once `useradd` made it.
    fn of(row: &spool_store::OsAccountRow) -> Option<Account> {
        Some(Account {
            name: row.name.clone(),
            uid: row.uid? as u32,
            gid: row.gid? as u32,
        })
    }
}

/// The OS accounts of one server.
#[derive(Clone)]
pub(crate) struct Accounts {
    inner: Arc<AccountsInner>,
}

struct AccountsInner {
    store: Store,
    enforcement: Enforcement,
    /// `spool-<instance>-`: names this data dir's accounts apart from other servers'.
    prefix: String,
    group_gid: u32,
    /// One account is created at a time (useradd locks `/etc/passwd` anyway).
    lock: tokio::sync::Mutex<()>,
}

fn missing_tool() -> Option<&'static str> {
    [
        "/usr/sbin/useradd",
        "/usr/sbin/userdel",
        "/usr/sbin/groupadd",
    ]
    .into_iter()
    .chain(std::iter::once(SETPRIV))
    .find(|tool| !Path::new(tool).exists())
}

/// The program that starts a process under another account (util-linux).
pub const SETPRIV: &str = "/usr/bin/setpriv";

/// Why enforcement cannot be on here, if it cannot.
pub fn why_not_enforceable() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some(format!(
            "the server does not run as root (uid {}), so it cannot run work under per-identity OS accounts",
            rustix::process::geteuid().as_raw()
        ));
    }
    missing_tool()
        .map(|tool| format!("`{tool}` is missing (Debian packages `passwd` and `util-linux`)"))
}

impl Accounts {
    /// Decides enforcement and, when on, makes sure the shared group exists, finishes or forgets
    /// accounts a crash left half made, and lets accounts pass through `data_dir` and `cache_dir`.
    pub(crate) async fn start(
        store: Store,
        setting: EnforceSetting,
        data_dir: &Path,
        cache_dir: &Path,
    ) -> anyhow::Result<Accounts> {
        let enforcement = match (setting, why_not_enforceable()) {
            (EnforceSetting::Off, _) => {
                Enforcement::Off("turned off by `[access] enforce = \"off\"`".into())
            }
            (EnforceSetting::Auto, Some(reason)) => Enforcement::Off(reason),
            (EnforceSetting::On, Some(reason)) => anyhow::bail!(
                "`[access] enforce = \"on\"`, but {reason}\nhint: run the server as root, or set `enforce = \"auto\"` to run without OS enforcement"
            ),
            (_, None) => Enforcement::On,
        };
        let prefix = format!("spool-{}-", instance_id(data_dir)?);
        let mut group_gid = 0;
        if enforcement == Enforcement::On {
            group_gid = ensure_group(SPOOL_GROUP).await?;
            for dir in [data_dir, cache_dir] {
                std::fs::create_dir_all(dir)?;
                make_traversable(dir, group_gid)?;
            }
        } else if let Enforcement::Off(reason) = &enforcement {
            tracing::warn!(
                "data access is checked at submit but not enforced while work runs: {reason}"
            );
        }
        let accounts = Accounts {
            inner: Arc::new(AccountsInner {
                store,
                enforcement,
                prefix,
                group_gid,
                lock: tokio::sync::Mutex::new(()),
            }),
        };
        if accounts.enforced() {
            accounts.reap_half_made().await?;
        }
        Ok(accounts)
    }

    pub(crate) fn enforcement(&self) -> &Enforcement {
        &self.inner.enforcement
    }

    pub(crate) fn enforced(&self) -> bool {
        self.inner.enforcement == Enforcement::On
    }

    /// The group all of Spool's accounts are in.
    pub(crate) fn group_gid(&self) -> u32 {
        self.inner.group_gid
    }

    /// The account `principal` (`user:<name>`, `identity:<name>`) runs as, created on first use;
    /// `None` when enforcement is off.
    pub(crate) async fn ensure(&self, principal: &str) -> anyhow::Result<Option<Account>> {
        if !self.enforced() {
            return Ok(None);
        }
        let store = &self.inner.store;
        if let Some(account) = store
            .os_account(principal)
            .await?
            .as_ref()
            .and_then(Account::of)
        {
            return Ok(Some(account));
        }
        let _guard = self.inner.lock.lock().await;
        let prefix = self.inner.prefix.clone();
        let row = store
            .record_os_account(principal, |id| format!("{prefix}{id}"))
            .await?;
        if let Some(account) = Account::of(&row) {
            return Ok(Some(account));
        }
        let (uid, gid) = create_user(&row.name, SPOOL_GROUP).await?;
        store.set_os_account_ids(row.id, uid, gid).await?;
        tracing::info!(account = %row.name, uid, principal, "created an OS account");
        Ok(Some(Account {
            name: row.name,
            uid,
            gid,
        }))
    }

    /// How a process of `account` is started.
    pub(crate) fn run_as(&self, account: &Account, home: &Path) -> RunAs {
        RunAs {
            name: account.name.clone(),
            uid: account.uid,
            gid: account.gid,
            groups: vec![self.inner.group_gid],
            home: home.to_path_buf(),
        }
    }

    /// Removes the account of a principal that is gone (a deleted user or identity). An
    /// account some process still runs under stays, with a warning, until the next removal.
    pub(crate) async fn remove(&self, principal: &str) {
        let store = &self.inner.store;
        let Ok(Some(row)) = store.os_account(principal).await else {
            return;
        };
        match remove_user(&row.name).await {
            Ok(()) => {
                if let Err(e) = store.delete_os_account(row.id).await {
                    tracing::warn!(account = %row.name, error = %e, "forget a removed OS account");
                }
                tracing::info!(account = %row.name, principal, "removed an OS account");
            }
            Err(e) => {
                tracing::warn!(account = %row.name, principal, error = %format!("{e:#}"), "remove an OS account")
            }
        }
    }

    /// Rows a crash left between the record and `useradd`: finished if the account exists,
    /// else forgotten (the next use creates it).
    async fn reap_half_made(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        for row in store.os_accounts().await? {
            if row.uid.is_some() {
                continue;
            }
            match nix::unistd::User::from_name(&row.name)? {
                Some(user) => {
                    store
                        .set_os_account_ids(row.id, user.uid.as_raw(), user.gid.as_raw())
                        .await?
                }
                None => store.delete_os_account(row.id).await?,
            }
        }
        Ok(())
    }
}

/// A random id of the data dir, kept in `<data dir>/instance-id`, that this server's account
/// names carry.
pub(crate) fn instance_id(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("instance-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if id.len() == 8 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_string());
        }
    }
    let mut bytes = [0u8; 4];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
    let id = crate::datastore::hex(&bytes);
    std::fs::write(&path, format!("{id}\n"))?;
    Ok(id)
}

/// Runs an account tool, retrying while another process holds the password files' lock.
async fn account_tool(program: &str, args: &[&str]) -> anyhow::Result<std::process::Output> {
    let mut delay = Duration::from_millis(20);
    for attempt in 0.. {
        let program_owned = program.to_string();
        let args_owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(&program_owned)
                .args(&args_owned)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .output()
        })
        .await??;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let locked = stderr.contains("lock") || stderr.contains("try again");
        if output.status.success() || !locked || attempt >= 50 {
            return Ok(output);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(500));
    }
    unreachable!("the loop returns")
}

async fn ensure_group(name: &str) -> anyhow::Result<u32> {
    if let Some(group) = nix::unistd::Group::from_name(name)? {
        return Ok(group.gid.as_raw());
    }
    let output = account_tool("/usr/sbin/groupadd", &["--system", "-f", name]).await?;
    if !output.status.success() {
        anyhow::bail!(
            "create the group `{name}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    nix::unistd::Group::from_name(name)?
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| anyhow::anyhow!("group `{name}` is missing right after groupadd"))
}

/// Creates a system account with its own group, also in `group`; no home, no login shell.
async fn create_user(name: &str, group: &str) -> anyhow::Result<(u32, u32)> {
    if nix::unistd::User::from_name(name)?.is_none() {
        let output = account_tool(
            "/usr/sbin/useradd",
            &[
                "--system",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                "--user-group",
                "--groups",
                group,
                name,
            ],
        )
        .await?;
        // 9: the name is taken, by this very account created before a crash.
        if !output.status.success() && output.status.code() != Some(9) {
            anyhow::bail!(
                "create the OS account `{name}`: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    let user = nix::unistd::User::from_name(name)?
        .ok_or_else(|| anyhow::anyhow!("account `{name}` is missing right after useradd"))?;
    Ok((user.uid.as_raw(), user.gid.as_raw()))
}

/// Removes an OS account and its group (after its processes are gone).
async fn remove_user(name: &str) -> anyhow::Result<()> {
    if nix::unistd::User::from_name(name)?.is_none() {
        return Ok(());
    }
    let output = account_tool("/usr/sbin/userdel", &[name]).await?;
    if !output.status.success() {
        anyhow::bail!(
            "remove the OS account `{name}`: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Lets members of `gid` pass through `dir` and every folder above it that others cannot pass
/// (a `--x` entry for the group; nothing becomes listable or readable).
pub(crate) fn make_traversable(dir: &Path, gid: u32) -> anyhow::Result<()> {
    let dir = dir.canonicalize()?;
    let mut path = PathBuf::from("/");
    for component in dir.components().skip(1) {
        path.push(component);
        let fd = open_dir(&path)?;
        let mode = rustix::fs::fstat(&fd)?.st_mode;
        if mode & 0o001 != 0 {
            continue;
        }
        let current = read_acl(&fd, ACCESS_ACL)?.unwrap_or_else(|| acl::from_mode(mode));
        let wanted = acl::with_traversal(current.clone(), gid);
        if wanted != current {
            rustix::fs::fsetxattr(&fd, ACCESS_ACL, &acl::encode(&wanted), XattrFlags::empty())?;
            tracing::info!(dir = %path.display(), group = SPOOL_GROUP, "let Spool's accounts pass through a folder (--x)");
        }
    }
    Ok(())
}

fn read_acl(fd: &OwnedFd, name: &str) -> std::io::Result<Option<Vec<acl::Entry>>> {
    let mut buf = vec![0u8; 4096];
    match rustix::fs::fgetxattr(fd, name, &mut buf[..]) {
        Ok(len) => Ok(acl::decode(&buf[..len])),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Opens a folder by path without following a link in its place.
fn open_dir(path: &Path) -> std::io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Visits the folder `dir` (at `path`, relative to where the walk began), then every folder and
/// regular file below it, each opened relative to its parent's descriptor with `O_NOFOLLOW`: a
/// link planted in the tree can neither redirect the walk nor be visited (links carry no ACL
/// and what they point to is not ours to change), and entries gone meanwhile (a job deleting its
/// output) are skipped.
fn walk(
    dir: &OwnedFd,
    path: &str,
    visit: &mut dyn FnMut(&OwnedFd, &str, &rustix::fs::Stat) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    visit(dir, path, &rustix::fs::fstat(dir)?)?;
    let mut entries = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "." || name == ".." {
            continue;
        }
        let child = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        let fd = match rustix::fs::openat(
            dir,
            name.as_str(),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let stat = rustix::fs::fstat(&fd)?;
        match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
            rustix::fs::FileType::Directory => walk(&fd, &child, visit)?,
            rustix::fs::FileType::RegularFile => visit(&fd, &child, &stat)?,
            _ => {}
        }
    }
    Ok(())
}

/// Sets the ACLs of a whole datastore tree from its accounts' grants, through [`walk`].
/// Prefixes that do not exist yet are created as folders, so a grant at a prefix is usable at
/// once.
pub(crate) fn apply_datastore_acls(root: &Path, grants: &[AccountGrant]) -> anyhow::Result<()> {
    let root_fd = open_dir(root)?;
    for grant in grants {
        create_prefix(&root_fd, &grant.prefix)?;
    }
    walk(&root_fd, "", &mut |fd, path, stat| {
        apply_one(fd, path, stat, grants)
    })
}

fn create_prefix(root: &OwnedFd, prefix: &str) -> anyhow::Result<()> {
    let mut dir = rustix::fs::openat(
        root,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for name in prefix.split('/').filter(|n| !n.is_empty()) {
        match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = match rustix::fs::openat(
            &dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // A file (or a link) where the prefix's folder would be: nothing to create.
            Err(rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(())
}

fn apply_one(
    fd: &OwnedFd,
    path: &str,
    stat: &rustix::fs::Stat,
    grants: &[AccountGrant],
) -> anyhow::Result<()> {
    let is_dir =
        rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory;
    let owner = Perm(((stat.st_mode >> 6) & 7) as u16);
    let wanted = acl::path_acl(path, is_dir, owner, grants);
    let access = acl::encode(&wanted.access);
    if read_acl(fd, ACCESS_ACL)?.map(|e| acl::encode(&e)) != Some(access.clone()) {
        rustix::fs::fsetxattr(fd, ACCESS_ACL, &access, XattrFlags::empty())?;
    }
    if let Some(default) = &wanted.default {
        let default = acl::encode(default);
        if read_acl(fd, DEFAULT_ACL)?.map(|e| acl::encode(&e)) != Some(default.clone()) {
            rustix::fs::fsetxattr(fd, DEFAULT_ACL, &default, XattrFlags::empty())?;
        }
    }
    Ok(())
}

/// Gives a folder (and every folder and file in it) to an account: a job's working copy, a
/// cluster's worker folder. Walked by [`walk`], so no link is followed.
pub(crate) fn give_tree(dir: &Path, account: &Account) -> anyhow::Result<()> {
    let uid = rustix::fs::Uid::from_raw(account.uid);
    let gid = rustix::fs::Gid::from_raw(account.gid);
    walk(&open_dir(dir)?, "", &mut |fd, _, _| {
        Ok(rustix::fs::fchown(fd, Some(uid), Some(gid))?)
    })
}
