//! Managing access control (`/v1/auth/...`, the server's docs/API.md "Access
//! control"): turning it on and off, roles, users and tokens. Every call but
//! [`Client::auth_enable`] on a cluster with access control off needs an admin token
//! ([`crate::ClientConfig::with_token`]). A token's secret is in the answer that made it,
//! and nowhere else.

use std::collections::BTreeMap;

use bytes::Bytes;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::encode::component;
use crate::error::Error;
use crate::transport::Call;

/// A token just made: `token` (`<id>.<secret>`) is shown this once.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct NewToken {
    /// The token's id (revoke it by this).
    #[serde(alias = "token_id")]
    pub id: String,
    pub user: String,
    pub token: String,
}

impl std::fmt::Debug for NewToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewToken")
            .field("id", &self.id)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// One prefix permission of a role: `access` is `read` or `readwrite`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub prefix: String,
    pub access: String,
}

/// A role: prefix permissions and rights (`sessions`, `cluster`, `admin`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleSpec {
    #[serde(default)]
    pub perms: Vec<Permission>,
    #[serde(default)]
    pub rights: Vec<String>,
}

/// A user's roles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct UserInfo {
    pub roles: Vec<String>,
}

/// A token's id and user (never its secret).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TokenInfo {
    pub id: String,
    pub user: String,
}

/// `GET /v1/auth`: the whole access-control state.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct AuthStatus {
    pub enabled: bool,
    pub roles: BTreeMap<String, RoleSpec>,
    pub users: BTreeMap<String, UserInfo>,
    pub tokens: Vec<TokenInfo>,
}

fn json_body(v: serde_json::Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

impl Client {
    async fn auth_call(
        &self,
        method: Method,
        path: String,
        body: Option<Bytes>,
    ) -> Result<crate::transport::Answer, Error> {
        self.transport
            .execute(&Call::write(method, path, body))
            .await
    }

    /// Turns access control on (`POST /v1/auth/enable`): the admin's first token.
    pub async fn auth_enable(&self) -> Result<NewToken, Error> {
        self.auth_call(Method::POST, "/v1/auth/enable".into(), None)
            .await?
            .json()
    }

    /// Turns access control off (admin).
    pub async fn auth_disable(&self) -> Result<(), Error> {
        self.auth_call(Method::POST, "/v1/auth/disable".into(), None)
            .await
            .map(drop)
    }

    /// The access-control state (admin).
    pub async fn auth_status(&self) -> Result<AuthStatus, Error> {
        self.transport
            .execute(&Call::read("/v1/auth".into()))
            .await?
            .json()
    }

    /// Creates or replaces a role (admin).
    pub async fn put_role(&self, name: &str, role: &RoleSpec) -> Result<(), Error> {
        let body = serde_json::to_value(role)
            .map_err(|e| Error::InvalidArgument(format!("the role: {e}")))?;
        let path = format!("/v1/auth/roles/{}", component(name));
        self.auth_call(Method::PUT, path, json_body(body))
            .await
            .map(drop)
    }

    /// Deletes a role, taking it from its users (admin).
    pub async fn delete_role(&self, name: &str) -> Result<(), Error> {
        let path = format!("/v1/auth/roles/{}", component(name));
        self.auth_call(Method::DELETE, path, None).await.map(drop)
    }

    /// Creates or replaces a user with these roles (admin).
    pub async fn put_user(&self, name: &str, roles: &[String]) -> Result<(), Error> {
        let path = format!("/v1/auth/users/{}", component(name));
        let body = serde_json::json!({ "roles": roles });
        self.auth_call(Method::PUT, path, json_body(body))
            .await
            .map(drop)
    }

    /// Deletes a user and revokes its tokens (admin).
    pub async fn delete_user(&self, name: &str) -> Result<(), Error> {
        let path = format!("/v1/auth/users/{}", component(name));
        self.auth_call(Method::DELETE, path, None).await.map(drop)
    }

    /// Makes a token for `user` (admin); its secret is in the answer only.
    pub async fn create_token(&self, user: &str) -> Result<NewToken, Error> {
        let body = serde_json::json!({ "user": user });
        self.auth_call(Method::POST, "/v1/auth/tokens".into(), json_body(body))
            .await?
            .json()
    }

    /// Revokes a token by its id (admin).
    pub async fn revoke_token(&self, id: &str) -> Result<(), Error> {
        let path = format!("/v1/auth/tokens/{}", component(id));
        self.auth_call(Method::DELETE, path, None).await.map(drop)
    }
}
