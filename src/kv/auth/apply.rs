//! Applying [`AuthCommand`]s to the one auth record of the slot's state.
//!
//! Deterministic: the outcome depends only on the stored record and the command (no
//! clock, no randomness; the token id and hash come in the command). A refused command
//! changes nothing. Auth commands change no key, so they take no revision. The `admin`
//! user and role are fixed while they exist (no command replaces or deletes them), so
//! the bootstrap admin cannot be locked out by a role edit.

use crate::kv::auth::command::{
    check_name, check_role, AuthCommand, ROLES_MAX, TOKENS_MAX, USERS_MAX,
};
use crate::kv::auth::model::{AuthState, Rights, Role, TokenRecord, User, ADMIN};
use crate::kv::ctx::Ctx;
use crate::kv::error::KvError;
use crate::kv::keyspace;
use crate::kv::outcome::Outcome;

/// The auth record as the slot leaves it so far (the default when none is stored).
pub(crate) fn read(ctx: &Ctx<'_>) -> Result<AuthState, KvError> {
    let sk = ctx.area.auth_key();
    match ctx.overlay.get(&sk)? {
        Some(bytes) => keyspace::decode(&sk, &bytes),
        None => Ok(AuthState::default()),
    }
}

fn rejected(reason: impl Into<String>) -> Outcome {
    Outcome::Rejected {
        reason: reason.into(),
    }
}

fn not_found(what: String) -> Outcome {
    Outcome::AuthNotFound { what }
}

/// The change `command` makes to `state`, or the outcome refusing it.
fn change(state: &mut AuthState, command: AuthCommand) -> Result<(), Outcome> {
    let fixed = |name: &str| {
        if name == ADMIN {
            Err(rejected(format!(
                "the {ADMIN:?} user and role cannot be changed"
            )))
        } else {
            Ok(())
        }
    };
    match command {
        AuthCommand::Enable { token_id, hash } => {
            if state.enabled {
                return Err(rejected("access control is already enabled"));
            }
            let admin = Role {
                perms: Vec::new(),
                rights: Rights {
                    admin: true,
                    ..Rights::default()
                },
            };
            state.roles.insert(ADMIN.into(), admin);
            state.users.insert(
                ADMIN.into(),
                User {
                    roles: vec![ADMIN.into()],
                },
            );
            state.tokens.insert(
                token_id,
                TokenRecord {
                    user: ADMIN.into(),
                    hash,
                },
            );
            state.enabled = true;
        }
        AuthCommand::Disable => {
            if !state.enabled {
                return Err(rejected("access control is already disabled"));
            }
            state.enabled = false;
        }
        AuthCommand::PutRole { name, role } => {
            check_name("role", &name).map_err(rejected)?;
            check_role(&role).map_err(rejected)?;
            fixed(&name)?;
            if !state.roles.contains_key(&name) && state.roles.len() >= ROLES_MAX {
                return Err(rejected(format!("at most {ROLES_MAX} roles")));
            }
            state.roles.insert(name, role);
        }
        AuthCommand::DeleteRole { name } => {
            fixed(&name)?;
            if state.roles.remove(&name).is_none() {
                return Err(not_found(format!("role {name:?}")));
            }
            for user in state.users.values_mut() {
                user.roles.retain(|r| *r != name);
            }
        }
        AuthCommand::PutUser { name, mut roles } => {
            check_name("user", &name).map_err(rejected)?;
            fixed(&name)?;
            if let Some(r) = roles.iter().find(|r| !state.roles.contains_key(*r)) {
                return Err(rejected(format!("role {r:?} does not exist")));
            }
            if !state.users.contains_key(&name) && state.users.len() >= USERS_MAX {
                return Err(rejected(format!("at most {USERS_MAX} users")));
            }
            roles.sort();
            roles.dedup();
            state.users.insert(name, User { roles });
        }
        AuthCommand::DeleteUser { name } => {
            fixed(&name)?;
            if state.users.remove(&name).is_none() {
                return Err(not_found(format!("user {name:?}")));
            }
            state.tokens.retain(|_, t| t.user != name);
        }
        AuthCommand::CreateToken { id, user, hash } => {
            if !state.users.contains_key(&user) {
                return Err(rejected(format!("user {user:?} does not exist")));
            }
            if state.tokens.contains_key(&id) {
                return Err(rejected(format!("token id {id} exists")));
            }
            if state.tokens.len() >= TOKENS_MAX {
                return Err(rejected(format!("at most {TOKENS_MAX} tokens")));
            }
            state.tokens.insert(id, TokenRecord { user, hash });
        }
        AuthCommand::RevokeToken { id } => {
            if state.tokens.remove(&id).is_none() {
                return Err(not_found(format!("token {id:?}")));
            }
        }
    }
    Ok(())
}

/// Applies one auth command.
pub(crate) fn apply(ctx: &mut Ctx<'_>, command: AuthCommand) -> Result<Outcome, KvError> {
    let mut state = read(ctx)?;
    if let Err(refused) = change(&mut state, command) {
        return Ok(refused);
    }
    ctx.overlay
        .put(ctx.area.auth_key(), keyspace::encode(&state));
    ctx.auth_touched = true;
    Ok(Outcome::AuthChanged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::auth::model::{Access, Perm};

    fn role(prefix: &str) -> Role {
        Role {
            perms: vec![Perm {
                prefix: prefix.into(),
                access: Access::Read,
            }],
            rights: Rights::default(),
        }
    }

    /// The same commands from the same state give the same state, byte for byte, and
    /// a refused command changes nothing.
    #[test]
    fn apply_is_deterministic_and_refusals_change_nothing() {
        let commands = vec![
            AuthCommand::Enable {
                token_id: "t0".into(),
                hash: [1; 32],
            },
            AuthCommand::PutRole {
                name: "zr".into(),
                role: role("z/"),
            },
            AuthCommand::PutRole {
                name: "ar".into(),
                role: role("a/"),
            },
            AuthCommand::PutUser {
                name: "u".into(),
                roles: vec!["zr".into(), "ar".into(), "ar".into()],
            },
            AuthCommand::CreateToken {
                id: "t1".into(),
                user: "u".into(),
                hash: [2; 32],
            },
        ];
        let run = || {
            let mut s = AuthState::default();
            for c in commands.clone() {
                change(&mut s, c).unwrap();
            }
            s
        };
        let (a, b) = (run(), run());
        assert_eq!(keyspace::encode(&a), keyspace::encode(&b));
        assert_eq!(a.users["u"].roles, vec!["ar".to_string(), "zr".to_string()]);

        let mut s = a.clone();
        let refused = [
            AuthCommand::Enable {
                token_id: "t9".into(),
                hash: [0; 32],
            },
            AuthCommand::PutUser {
                name: "v".into(),
                roles: vec!["missing".into()],
            },
            AuthCommand::PutRole {
                name: ADMIN.into(),
                role: role(""),
            },
            AuthCommand::DeleteUser { name: ADMIN.into() },
            AuthCommand::PutRole {
                name: "bad name".into(),
                role: role(""),
            },
            AuthCommand::CreateToken {
                id: "t1".into(),
                user: "u".into(),
                hash: [3; 32],
            },
            AuthCommand::CreateToken {
                id: "t2".into(),
                user: "nobody".into(),
                hash: [3; 32],
            },
            AuthCommand::RevokeToken { id: "nope".into() },
        ];
        for c in refused {
            assert!(change(&mut s, c.clone()).is_err(), "{c:?}");
            assert_eq!(s, a, "{c:?} changed the state");
        }
    }

    #[test]
    fn deleting_a_user_revokes_its_tokens_and_a_role_leaves_its_users() {
        let mut s = AuthState::default();
        for c in [
            AuthCommand::PutRole {
                name: "r".into(),
                role: role("a/"),
            },
            AuthCommand::PutUser {
                name: "u".into(),
                roles: vec!["r".into()],
            },
            AuthCommand::CreateToken {
                id: "t".into(),
                user: "u".into(),
                hash: [2; 32],
            },
            AuthCommand::DeleteRole { name: "r".into() },
        ] {
            change(&mut s, c).unwrap();
        }
        assert!(s.users["u"].roles.is_empty());
        change(&mut s, AuthCommand::DeleteUser { name: "u".into() }).unwrap();
        assert!(s.tokens.is_empty());
    }
}
