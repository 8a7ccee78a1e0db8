//! Cluster and operations calls: the cluster's status (any node), and one node's
//! health, readiness and metrics (that node only: failing over would report another
//! node's state), and the OpenAPI document.

use crate::client::Client;
use crate::error::Error;
use crate::transport::Call;
use serde::Deserialize;

/// A ballot: `round` and the proposing node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Ballot {
    pub round: u64,
    pub node: u64,
}

/// One member of the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
    pub healthy: bool,
    /// `voter` or `learner` (empty from a server that predates membership changes).
    #[serde(default)]
    pub role: String,
    /// The commit index the member last reported: its progress.
    #[serde(default)]
    pub commit_index: u64,
}

/// `GET /v1/cluster`: the answering node's view.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ClusterStatus {
    pub node_id: u64,
    pub leader_id: Option<u64>,
    pub ballot: Ballot,
    pub commit_index: u64,
    pub applied_index: u64,
    pub revision: u64,
    pub members: Vec<Member>,
    /// Bytes of the storage engine's files on the answering node.
    #[serde(default)]
    pub db_size_bytes: u64,
    /// Bytes of the live keys and values (what the quota counts).
    #[serde(default)]
    pub live_bytes: u64,
    /// Bytes of the watch history kept.
    #[serde(default)]
    pub history_bytes: u64,
    /// History holds the revisions above this one.
    #[serde(default)]
    pub compact_revision: u64,
    /// The log slot that chose the newest membership (0: the first one).
    #[serde(default)]
    pub membership_slot: u64,
    /// Ids of the voters and of the learners (empty from a server that predates
    /// membership changes).
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
    /// The cluster's id, hex.
    #[serde(default)]
    pub cluster_id: String,
    /// The first membership, in id order from 1: what a joining node needs.
    #[serde(default)]
    pub first_members: Vec<FirstMember>,
    /// Hex; nonzero for a cluster restored from a backup.
    #[serde(default)]
    pub cluster_token: String,
}

/// A member of the cluster's first membership.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FirstMember {
    pub id: u64,
    pub peer_addr: String,
}

impl Client {
    /// The cluster's status as the first node that answers sees it.
    pub async fn cluster(&self) -> Result<ClusterStatus, Error> {
        self.transport
            .execute(&Call::read("/v1/cluster".into()))
            .await?
            .json()
    }

    /// The status as the node at `endpoint` (an index of [`Client::endpoints`]) sees it.
    pub async fn cluster_of(&self, endpoint: usize) -> Result<ClusterStatus, Error> {
        self.transport
            .execute_on(endpoint, &Call::read("/v1/cluster".into()))
            .await?
            .json()
    }

    /// Whether the node at `endpoint` runs (`GET /health`, one attempt).
    pub async fn health(&self, endpoint: usize) -> Result<(), Error> {
        self.transport
            .execute_on(endpoint, &Call::read("/health".into()))
            .await
            .map(|_| ())
    }

    /// Whether the node at `endpoint` is ready: knows a leader and has applied what was
    /// committed (`GET /ready`, one attempt). Not ready is `Error::Unavailable`.
    pub async fn ready(&self, endpoint: usize) -> Result<(), Error> {
        self.transport
            .execute_on(endpoint, &Call::read("/ready".into()))
            .await
            .map(|_| ())
    }

    /// The node's metrics, Prometheus text.
    pub async fn metrics(&self, endpoint: usize) -> Result<String, Error> {
        let answer = self
            .transport
            .execute_on(endpoint, &Call::read("/metrics".into()))
            .await?;
        String::from_utf8(answer.body.to_vec())
            .map_err(|_| answer.protocol("metrics are not UTF-8".into()))
    }

    /// The OpenAPI document (any node).
    pub async fn openapi(&self) -> Result<serde_json::Value, Error> {
        self.transport
            .execute(&Call::read("/v1/openapi.json".into()))
            .await?
            .json()
    }
}
