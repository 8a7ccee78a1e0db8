//! Changing the members of the cluster (`/v1/cluster/members`): add a node as a learner,
//! promote a learner to voter, remove a member. Each is one change through the log,
//! answered once it is chosen; the server relays it to the leader.
//!
//! These are not retried on another node after an ambiguous failure (a timeout): a
//! change may have been chosen anyway. Read `Client::cluster` to see where it stands.

use crate::client::Client;
use crate::error::Error;
use crate::transport::Call;
use bytes::Bytes;
use reqwest::Method;
use serde::Deserialize;

/// A change of the members the cluster made.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct MemberChange {
    /// The node added, promoted or removed.
    pub id: u64,
    /// The log slot that chose the change (it governs from the delay after it).
    pub slot: u64,
    /// `learner` (added), `voter` (promoted); empty for a removal.
    #[serde(default)]
    pub role: String,
}

impl Client {
    /// Adds the node listening for peers on `peer_addr` (and for clients on
    /// `client_addr`, may be empty) as a learner; the answer names its new id. Start the
    /// node afterwards with `JOIN` naming any member.
    pub async fn add_member(
        &self,
        peer_addr: &str,
        client_addr: &str,
    ) -> Result<MemberChange, Error> {
        let body = serde_json::json!({ "peer_addr": peer_addr, "client_addr": client_addr });
        self.member_call(Method::POST, "/v1/cluster/members".into(), Some(body))
            .await
    }

    /// Makes learner `id` a voter (refused, 409, while it lags behind the leader).
    pub async fn promote_member(&self, id: u64) -> Result<MemberChange, Error> {
        self.member_call(
            Method::POST,
            format!("/v1/cluster/members/{id}/promote"),
            None,
        )
        .await
    }

    /// Removes member `id` (a voter or a learner).
    pub async fn remove_member(&self, id: u64) -> Result<MemberChange, Error> {
        self.member_call(Method::DELETE, format!("/v1/cluster/members/{id}"), None)
            .await
    }

    async fn member_call(
        &self,
        method: Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> Result<MemberChange, Error> {
        let body = body.map(|b| Bytes::from(b.to_string()));
        self.transport
            .execute(&Call::write(method, path, body))
            .await?
            .json()
    }
}
