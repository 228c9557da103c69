//! Users and bearer tokens. Only a SHA-256 of a token is stored: tokens are 192 random bits,
//! so a fast hash is enough (no password stretching needed).

use std::io::Write;
use std::path::Path;

use rand::RngCore;
use sha2::{Digest, Sha256};
use spool_store::{Store, UserRow};

use crate::datastore::hex;

/// Creates a new random token.
pub fn new_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("spool_{}", hex(&bytes))
}

/// Hashes a token for storage and lookup.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Checks a user name: lowercase letters, digits, `_`, `-`, `.`; 1 to 64 characters; not
/// `anonymous`, which the audit log records unauthenticated calls as.
pub fn check_user_name(name: &str) -> Result<(), String> {
    if name == crate::audit::ANONYMOUS {
        return Err(format!(
            "user name `{name}` is reserved: the audit log records calls without valid credentials as `{name}`; choose another name"
        ));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "user name `{name}` may contain only lowercase letters, digits, `_`, `-` and `.` (1 to 64)"
        ))
    }
}

/// Makes sure the `admin` user exists and `<data_dir>/admin.token` holds a valid token for it.
/// Creates both on first start; re-issues the token if the file is gone (only its hash is kept).
pub async fn bootstrap_admin(store: &Store, data_dir: &Path) -> anyhow::Result<UserRow> {
    let token_path = data_dir.join(spool_core::paths::ADMIN_TOKEN_FILE);
    if let Some(admin) = store.user_by_name("admin").await? {
        if let Ok(token) = std::fs::read_to_string(&token_path)
            && store
                .user_by_token_hash(&hash_token(token.trim()))
                .await?
                .is_some()
        {
            return Ok(admin);
        }
        let token = new_token();
        store.set_token_hash(admin.id, &hash_token(&token)).await?;
        write_secret(&token_path, &token)?;
        tracing::info!(path = %token_path.display(), "issued a new admin token");
        return Ok(admin);
    }
    let token = new_token();
    let admin = store
        .create_user(
            "admin",
            &hash_token(&token),
            spool_core::WorkspaceRole::Owner,
        )
        .await?;
    write_secret(&token_path, &token)?;
    tracing::info!(path = %token_path.display(), "created user `admin`; its token is in the file");
    Ok(admin)
}

/// Writes a file readable only by its owner (mode 0600), atomically.
pub(crate) fn write_secret(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(content.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert!(a.starts_with("spool_") && a.len() == 6 + 48);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_ne!(hash_token(&a), a);
    }

    #[test]
    fn user_names() {
        assert!(check_user_name("alice").is_ok());
        assert!(check_user_name("data-team.1").is_ok());
        assert!(check_user_name("Alice").is_err());
        assert!(check_user_name("").is_err());
        assert!(check_user_name("a b").is_err());
        assert!(check_user_name("anonymous").is_err());
    }
}
