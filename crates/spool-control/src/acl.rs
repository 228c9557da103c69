//! POSIX ACLs of datastore trees: which OS account may read or write which path, from the data
//! roles its principal holds. Pure: the entries a path gets, and the kernel's binary form of an
//! ACL (the `system.posix_acl_access` and `system.posix_acl_default` extended attributes).
//!
//! A role at a prefix gives its account `r-x` (read) or `rwx` (write) on the prefix and
//! everything under it, inherited by new files through default entries, and `--x` on each
//! folder on the way from the datastore's root, so the account can reach the prefix without
//! listing or reading anything beside it. Nobody else gets anything: the owning group and
//! others have no bits, so an account with no role cannot even enter the root.

/// The permission bits of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Perm(pub u16);

impl Perm {
    pub const NONE: Perm = Perm(0);
    pub const X: Perm = Perm(1);
    pub const RX: Perm = Perm(5);
    pub const RWX: Perm = Perm(7);
}

/// What an account was granted at a prefix of a datastore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountGrant {
    pub uid: u32,
    /// Normalized relative path inside the datastore; empty for all of it.
    pub prefix: String,
    pub write: bool,
}

/// One entry of an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    UserObj(Perm),
    User(u32, Perm),
    GroupObj(Perm),
    Group(u32, Perm),
    Mask(Perm),
    Other(Perm),
}

/// The ACLs one path gets: its access ACL, and for folders the default ACL new entries inherit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathAcl {
    pub access: Vec<Entry>,
    pub default: Option<Vec<Entry>>,
}

/// Whether `prefix` covers `path` (both normalized, relative): equal, or `path` is below it.
fn covers(prefix: &str, path: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

/// Whether `path` is a folder on the way to `prefix` (strictly above it).
fn on_the_way(path: &str, prefix: &str) -> bool {
    path != prefix && covers(path, prefix)
}

/// The ACL of `path` (relative to the datastore root, normalized; empty for the root), owned by
/// an account whose own bits are `owner`, given every account's grants on this datastore.
pub fn path_acl(path: &str, is_dir: bool, owner: Perm, grants: &[AccountGrant]) -> PathAcl {
    let mut access: Vec<(u32, Perm)> = Vec::new();
    let mut inherited: Vec<(u32, Perm)> = Vec::new();
    let raise = |list: &mut Vec<(u32, Perm)>, uid: u32, perm: Perm| match list
        .iter_mut()
        .find(|(u, _)| *u == uid)
    {
        Some((_, p)) => *p = (*p).max(perm),
        None => list.push((uid, perm)),
    };
    for grant in grants {
        let full = if grant.write { Perm::RWX } else { Perm::RX };
        if covers(&grant.prefix, path) {
            let perm = if is_dir { full } else { Perm(full.0 & !1) };
            raise(&mut access, grant.uid, perm);
            if is_dir {
                raise(&mut inherited, grant.uid, full);
            }
        } else if is_dir && on_the_way(path, &grant.prefix) {
            raise(&mut access, grant.uid, Perm::X);
        }
    }
    access.sort();
    inherited.sort();
    let build = |owner: Perm, named: &[(u32, Perm)]| {
        let mut entries = vec![Entry::UserObj(owner)];
        entries.extend(named.iter().map(|(uid, perm)| Entry::User(*uid, *perm)));
        entries.push(Entry::GroupObj(Perm::NONE));
        if !named.is_empty() {
            let mask = named.iter().fold(0, |m, (_, p)| m | p.0);
            entries.push(Entry::Mask(Perm(mask)));
        }
        entries.push(Entry::Other(Perm::NONE));
        entries
    };
    PathAcl {
        access: build(owner, &access),
        default: is_dir.then(|| build(Perm::RWX, &inherited)),
    }
}

/// The ACL of a folder Spool's accounts must pass through (the data dir, the cache, their
/// parents): what it has, plus `--x` for `group`.
pub fn with_traversal(mut entries: Vec<Entry>, group: u32) -> Vec<Entry> {
    // A `chmod` sets the mask to the group bits (0700 makes it `---`), so the mask is
    // recomputed even when the entry is there.
    let had = entries
        .iter()
        .find_map(|e| match e {
            Entry::Group(g, p) if *g == group => Some(*p),
            _ => None,
        })
        .unwrap_or(Perm::NONE);
    entries.retain(|e| !matches!(e, Entry::Group(g, _) if *g == group));
    entries.push(Entry::Group(group, Perm(had.0 | Perm::X.0)));
    let group_obj = entries
        .iter()
        .find_map(|e| match e {
            Entry::GroupObj(p) => Some(p.0),
            _ => None,
        })
        .unwrap_or(0);
    let named = entries
        .iter()
        .filter_map(|e| match e {
            Entry::User(_, p) | Entry::Group(_, p) => Some(p.0),
            _ => None,
        })
        .fold(group_obj, |m, p| m | p);
    // A mask caps every named entry and the owning group: it must allow what the owning group
    // had, or this change would take that away.
    entries.retain(|e| !matches!(e, Entry::Mask(_)));
    entries.push(Entry::Mask(Perm(named)));
    sort(&mut entries);
    entries
}

/// The access ACL a plain mode stands for.
pub fn from_mode(mode: u32) -> Vec<Entry> {
    vec![
        Entry::UserObj(Perm(((mode >> 6) & 7) as u16)),
        Entry::GroupObj(Perm(((mode >> 3) & 7) as u16)),
        Entry::Other(Perm((mode & 7) as u16)),
    ]
}

fn tag(entry: &Entry) -> (u16, u32) {
    match entry {
        Entry::UserObj(_) => (0x01, 0),
        Entry::User(uid, _) => (0x02, *uid),
        Entry::GroupObj(_) => (0x04, 0),
        Entry::Group(gid, _) => (0x08, *gid),
        Entry::Mask(_) => (0x10, 0),
        Entry::Other(_) => (0x20, 0),
    }
}

/// The kernel wants entries by tag, then by id.
fn sort(entries: &mut [Entry]) {
    entries.sort_by_key(tag);
}

const VERSION: u32 = 2;
const UNDEFINED_ID: u32 = u32::MAX;

/// Encodes an ACL as the extended attribute's value.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sort(&mut sorted);
    let mut bytes = VERSION.to_le_bytes().to_vec();
    for entry in &sorted {
        let (tag, id) = tag(entry);
        let (id, perm) = match entry {
            Entry::User(_, p) | Entry::Group(_, p) => (id, p.0),
            Entry::UserObj(p) | Entry::GroupObj(p) | Entry::Mask(p) | Entry::Other(p) => {
                (UNDEFINED_ID, p.0)
            }
        };
        bytes.extend(tag.to_le_bytes());
        bytes.extend(perm.to_le_bytes());
        bytes.extend(id.to_le_bytes());
    }
    bytes
}

/// Decodes an extended attribute's value; `None` when it is not an ACL.
pub fn decode(bytes: &[u8]) -> Option<Vec<Entry>> {
    let (version, rest) = bytes.split_at_checked(4)?;
    if u32::from_le_bytes(version.try_into().ok()?) != VERSION || rest.len() % 8 != 0 {
        return None;
    }
    rest.chunks_exact(8)
        .map(|chunk| {
            let tag = u16::from_le_bytes([chunk[0], chunk[1]]);
            let perm = Perm(u16::from_le_bytes([chunk[2], chunk[3]]) & 7);
            let id = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            Some(match tag {
                0x01 => Entry::UserObj(perm),
                0x02 => Entry::User(id, perm),
                0x04 => Entry::GroupObj(perm),
                0x08 => Entry::Group(id, perm),
                0x10 => Entry::Mask(perm),
                0x20 => Entry::Other(perm),
                _ => return None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(acl: &PathAcl) -> String {
        let one = |entries: &[Entry]| {
            entries
                .iter()
                .map(|e| {
                    let bits = |p: &Perm| {
                        format!(
                            "{}{}{}",
                            if p.0 & 4 != 0 { 'r' } else { '-' },
                            if p.0 & 2 != 0 { 'w' } else { '-' },
                            if p.0 & 1 != 0 { 'x' } else { '-' }
                        )
                    };
                    match e {
                        Entry::UserObj(p) => format!("user::{}", bits(p)),
                        Entry::User(u, p) => format!("user:{u}:{}", bits(p)),
                        Entry::GroupObj(p) => format!("group::{}", bits(p)),
                        Entry::Group(g, p) => format!("group:{g}:{}", bits(p)),
                        Entry::Mask(p) => format!("mask::{}", bits(p)),
                        Entry::Other(p) => format!("other::{}", bits(p)),
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        match &acl.default {
            Some(default) => format!("{} | default: {}", one(&acl.access), one(default)),
            None => one(&acl.access),
        }
    }

    /// Each case: the grants (`uid:prefix:r|w`), then paths with what they get.
    #[test]
    fn entries_by_path_and_grant() {
        let grants = [
            AccountGrant {
                uid: 1001,
                prefix: String::new(),
                write: false,
            },
            AccountGrant {
                uid: 1002,
                prefix: "team/out".into(),
                write: true,
            },
            AccountGrant {
                uid: 1003,
                prefix: "team".into(),
                write: false,
            },
        ];
        let cases = [
            ("", true),
            ("team", true),
            ("team/out", true),
            ("team/out/part-0.csv", false),
            ("team/outside", true),
            ("other.csv", false),
        ];
        let text: Vec<String> = cases
            .iter()
            .map(|(path, dir)| {
                format!(
                    "{path:<22} {}",
                    render(&path_acl(path, *dir, Perm::RWX, &grants))
                )
            })
            .collect();
        expect_test::expect![[r#"
                                   user::rwx user:1001:r-x user:1002:--x user:1003:--x group::--- mask::r-x other::--- | default: user::rwx user:1001:r-x group::--- mask::r-x other::---
            team                   user::rwx user:1001:r-x user:1002:--x user:1003:r-x group::--- mask::r-x other::--- | default: user::rwx user:1001:r-x user:1003:r-x group::--- mask::r-x other::---
            team/out               user::rwx user:1001:r-x user:1002:rwx user:1003:r-x group::--- mask::rwx other::--- | default: user::rwx user:1001:r-x user:1002:rwx user:1003:r-x group::--- mask::rwx other::---
            team/out/part-0.csv    user::rwx user:1001:r-- user:1002:rw- user:1003:r-- group::--- mask::rw- other::---
            team/outside           user::rwx user:1001:r-x user:1003:r-x group::--- mask::r-x other::--- | default: user::rwx user:1001:r-x user:1003:r-x group::--- mask::r-x other::---
            other.csv              user::rwx user:1001:r-- group::--- mask::r-- other::---"#]]
        .assert_eq(&text.join("\n"));
    }

    #[test]
    fn no_grants_lock_everyone_out() {
        let acl = path_acl("", true, Perm::RWX, &[]);
        assert_eq!(
            render(&acl),
            "user::rwx group::--- other::--- | default: user::rwx group::--- other::---"
        );
    }

    #[test]
    fn traversal_keeps_what_the_owning_group_had() {
        let entries = with_traversal(from_mode(0o750), 900);
        assert_eq!(
            entries,
            vec![
                Entry::UserObj(Perm::RWX),
                Entry::GroupObj(Perm::RX),
                Entry::Group(900, Perm::X),
                Entry::Mask(Perm::RX),
                Entry::Other(Perm::NONE),
            ]
        );
        // Adding it twice changes nothing.
        assert_eq!(with_traversal(entries.clone(), 900), entries);
        // A chmod after it (the mask becomes the group bits) is repaired.
        let mut chmodded = entries.clone();
        for entry in &mut chmodded {
            if let Entry::Mask(p) = entry {
                *p = Perm::NONE;
            }
        }
        assert_eq!(with_traversal(chmodded, 900), entries);
    }

    #[test]
    fn encoding_round_trips_and_matches_the_kernel_layout() {
        let entries = vec![
            Entry::UserObj(Perm::RWX),
            Entry::User(12345, Perm::RX),
            Entry::GroupObj(Perm::RX),
            Entry::Mask(Perm::RWX),
            Entry::Other(Perm::NONE),
        ];
        let bytes = encode(&entries);
        // The kernel's layout (`posix_acl_xattr.h`): a version word, then tag, perm and id.
        assert_eq!(
            hex(&bytes),
            "0200000001000700ffffffff020005003930000004000500ffffffff10000700ffffffff20000000ffffffff"
        );
        assert_eq!(decode(&bytes), Some(entries));
        assert_eq!(decode(b"junk"), None);
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
