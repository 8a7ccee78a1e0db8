//! The access-control commands the log carries (inside `Command::Auth`), and the checks
//! of the names and sizes they hold, shared by the HTTP edge and apply.
//!
//! A command carries only a token's id and the hash of its secret, never the secret.

use crate::kv::auth::model::Role;
use serde::{Deserialize, Serialize};

/// Longest role or user name.
pub const NAME_BYTES_MAX: usize = 64;
/// Most roles, users, tokens the state holds, and permissions per role (they bound
/// the one auth record and the per-request work).
pub const ROLES_MAX: usize = 1_000;
pub const USERS_MAX: usize = 1_000;
pub const TOKENS_MAX: usize = 10_000;
pub const PERMS_PER_ROLE_MAX: usize = 100;
/// Longest prefix of one permission.
pub const PREFIX_BYTES_MAX: usize = 4096;

/// One change of the access-control state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    /// Turns access control on: role and user `admin` (with the admin right) and a
    /// first token for it. Refused when it is on.
    Enable { token_id: String, hash: [u8; 32] },
    /// Turns access control off (roles, users and tokens are kept).
    Disable,
    /// Creates or replaces a role.
    PutRole { name: String, role: Role },
    /// Deletes a role, taking it from every user holding it.
    DeleteRole { name: String },
    /// Creates or replaces a user with these (existing) roles.
    PutUser { name: String, roles: Vec<String> },
    /// Deletes a user and revokes its tokens.
    DeleteUser { name: String },
    /// Adds a token for an existing user.
    CreateToken {
        id: String,
        user: String,
        hash: [u8; 32],
    },
    /// Revokes a token.
    RevokeToken { id: String },
}

/// Checks a role or user name: 1 to 64 of `[A-Za-z0-9_.-]`.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name must be 1 to {NAME_BYTES_MAX} of A-Z a-z 0-9 _ . -, got {:?}",
            name.chars().take(80).collect::<String>()
        ))
    }
}

/// Checks a role's size.
pub fn check_role(role: &Role) -> Result<(), String> {
    if role.perms.len() > PERMS_PER_ROLE_MAX {
        return Err(format!(
            "a role holds at most {PERMS_PER_ROLE_MAX} permissions, got {}",
            role.perms.len()
        ));
    }
    if let Some(p) = role
        .perms
        .iter()
        .find(|p| p.prefix.len() > PREFIX_BYTES_MAX)
    {
        return Err(format!(
            "a permission prefix is at most {PREFIX_BYTES_MAX} bytes, got {}",
            p.prefix.len()
        ));
    }
    Ok(())
}
