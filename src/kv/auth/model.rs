//! The access-control state (roles, users, tokens, the enabled flag) and the
//! permission checks a request's grants answer.
//!
//! A role grants `read` or `readwrite` on key prefixes plus the rights `sessions`
//! (create and use its own sessions), `cluster` (compact, snapshot) and `admin`
//! (everything, managing access control included). A user holds roles; a token names
//! a user and stores only the SHA-256 of its secret. [`Grants`] is what one request's
//! token may do: the union of its user's roles. Invariants: maps are `BTreeMap`s, so
//! the encoded state is the same bytes on every replica; a user's roles and a token's
//! user always exist (apply refuses a command that would break that, and deleting a
//! user revokes its tokens). Nothing here reads a clock or a random source.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Name of the user and role `POST /v1/auth/enable` creates.
pub const ADMIN: &str = "admin";

/// What a prefix permission allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One prefix permission: every key starting with `prefix` ("" = every key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perm {
    pub prefix: String,
    pub access: Access,
}

/// Rights beyond keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rights {
    pub sessions: bool,
    pub cluster: bool,
    pub admin: bool,
}

/// A named set of permissions and rights.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub perms: Vec<Perm>,
    pub rights: Rights,
}

/// A user: the roles it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub roles: Vec<String>,
}

/// A token: its user and the SHA-256 of its secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: String,
    pub hash: [u8; 32],
}

/// The whole access-control state (one record: `keyspace::AUTH_KIND`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    pub enabled: bool,
    pub roles: BTreeMap<String, Role>,
    pub users: BTreeMap<String, User>,
    /// Token id (16 hex digits) -> record.
    pub tokens: BTreeMap<String, TokenRecord>,
}

/// What one caller may do: the union of its user's roles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grants {
    /// The user name; None when access control is off (everyone may do everything).
    pub user: Option<String>,
    pub perms: Vec<Perm>,
    pub rights: Rights,
}

impl AuthState {
    /// The grants of `user` (empty when it does not exist).
    pub fn grants_of(&self, user: &str) -> Grants {
        let mut grants = Grants {
            user: Some(user.to_string()),
            perms: Vec::new(),
            rights: Rights::default(),
        };
        let roles = self.users.get(user).map(|u| u.roles.as_slice());
        for role in roles
            .unwrap_or_default()
            .iter()
            .filter_map(|r| self.roles.get(r))
        {
            grants.perms.extend(role.perms.iter().cloned());
            grants.rights.sessions |= role.rights.sessions;
            grants.rights.cluster |= role.rights.cluster;
            grants.rights.admin |= role.rights.admin;
        }
        grants
    }
}

impl Grants {
    /// The grants when access control is off: everything.
    pub fn open() -> Grants {
        Grants {
            user: None,
            perms: Vec::new(),
            rights: Rights {
                sessions: true,
                cluster: true,
                admin: true,
            },
        }
    }

    pub fn is_admin(&self) -> bool {
        self.rights.admin
    }

    fn any(&self, f: impl Fn(&Perm) -> bool) -> bool {
        self.is_admin() || self.perms.iter().any(f)
    }

    /// May read `key`.
    pub fn can_read(&self, key: &str) -> bool {
        self.any(|p| key.starts_with(&p.prefix))
    }

    /// May write (put or delete) `key`.
    pub fn can_write(&self, key: &str) -> bool {
        self.any(|p| p.access == Access::ReadWrite && key.starts_with(&p.prefix))
    }

    /// May read every key that starts with `prefix` (one permission covers it all).
    pub fn can_read_all(&self, prefix: &str) -> bool {
        self.any(|p| prefix.starts_with(&p.prefix))
    }

    /// May write every key that starts with `prefix` (a prefix delete).
    pub fn can_write_all(&self, prefix: &str) -> bool {
        self.any(|p| p.access == Access::ReadWrite && prefix.starts_with(&p.prefix))
    }

    /// May read some key that starts with `prefix` (a listing or watch shows those).
    pub fn can_read_some(&self, prefix: &str) -> bool {
        self.any(|p| prefix.starts_with(&p.prefix) || p.prefix.starts_with(prefix))
    }

    /// May create and use its own sessions.
    pub fn can_use_sessions(&self) -> bool {
        self.rights.sessions || self.is_admin()
    }

    /// May compact, snapshot and change membership.
    pub fn can_cluster(&self) -> bool {
        self.rights.cluster || self.is_admin()
    }

    /// May use a session owned by `owner` (None: created with access control off).
    pub fn owns(&self, owner: Option<&str>) -> bool {
        self.is_admin() || (self.can_use_sessions() && self.user.as_deref() == owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(perms: &[(&str, Access)]) -> Grants {
        Grants {
            user: Some("u".into()),
            perms: perms
                .iter()
                .map(|(p, a)| Perm {
                    prefix: p.to_string(),
                    access: *a,
                })
                .collect(),
            rights: Rights::default(),
        }
    }

    #[test]
    fn prefix_matching_edge_cases() {
        let g = grants(&[("a/", Access::Read), ("w/", Access::ReadWrite)]);
        assert!(g.can_read("a/"));
        assert!(g.can_read("a/x/y"));
        assert!(!g.can_read("a")); // the prefix is "a/", not "a"
        assert!(!g.can_read("ab/x"));
        assert!(!g.can_read("b/x"));
        assert!(!g.can_read(""));
        assert!(!g.can_write("a/x"));
        assert!(g.can_write("w/x") && g.can_read("w/x"));
        // Whole prefixes: covered only by a permission that is a prefix of it.
        assert!(g.can_read_all("a/x/"));
        assert!(!g.can_read_all("a"));
        assert!(!g.can_read_all(""));
        assert!(g.can_write_all("w/"));
        assert!(!g.can_write_all("a/"));
        // Some keys: "" and "a" hold a/ keys; "b/" none.
        assert!(g.can_read_some(""));
        assert!(g.can_read_some("a"));
        assert!(g.can_read_some("a/x"));
        assert!(!g.can_read_some("b/"));
        assert!(!g.can_read_some("ab"));
    }

    #[test]
    fn the_empty_prefix_covers_everything() {
        let g = grants(&[("", Access::Read)]);
        assert!(g.can_read("") && g.can_read("anything") && g.can_read_all(""));
        assert!(!g.can_write("anything"));
    }

    #[test]
    fn admin_and_open_may_do_everything() {
        let mut g = grants(&[]);
        assert!(!g.can_read("k") && !g.can_cluster() && !g.can_use_sessions());
        g.rights.admin = true;
        assert!(g.can_write("k") && g.can_write_all("") && g.can_cluster());
        assert!(g.owns(Some("other")) && g.owns(None));
        let open = Grants::open();
        assert!(open.can_write_all("") && open.owns(None));
    }

    #[test]
    fn a_session_belongs_to_its_creator() {
        let mut g = grants(&[]);
        g.rights.sessions = true;
        assert!(g.owns(Some("u")));
        assert!(!g.owns(Some("v")));
        assert!(!g.owns(None));
        g.rights.sessions = false;
        assert!(!g.owns(Some("u")));
    }

    #[test]
    fn grants_are_the_union_of_the_users_roles() {
        let mut s = AuthState::default();
        s.roles.insert(
            "r1".into(),
            Role {
                perms: vec![Perm {
                    prefix: "a/".into(),
                    access: Access::Read,
                }],
                rights: Rights::default(),
            },
        );
        s.roles.insert(
            "r2".into(),
            Role {
                perms: vec![],
                rights: Rights {
                    sessions: true,
                    ..Rights::default()
                },
            },
        );
        s.users.insert(
            "u".into(),
            User {
                roles: vec!["r1".into(), "r2".into(), "gone".into()],
            },
        );
        let g = s.grants_of("u");
        assert!(g.can_read("a/1") && g.can_use_sessions() && !g.can_cluster());
        assert!(!s.grants_of("nobody").can_read("a/1"));
    }
}
