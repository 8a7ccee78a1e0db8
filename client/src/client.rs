//! [`Client`]: a cheap handle (clone it freely) on the cluster's endpoints. Its calls
//! live in one file per resource (`keys`, `txn`, `sessions`, `cluster`, `watch`); this
//! file only builds it.

use crate::config::ClientConfig;
use crate::error::Error;
use crate::transport::Transport;
use std::sync::Arc;

/// A client of a Concierge cluster.
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) transport: Arc<Transport>,
}

impl Client {
    /// A client with these settings (checked).
    pub fn new(config: ClientConfig) -> Result<Client, Error> {
        Ok(Client {
            transport: Arc::new(Transport::new(config)?),
        })
    }

    /// A client of these endpoints with the default settings.
    pub fn connect<S: Into<String>>(
        endpoints: impl IntoIterator<Item = S>,
    ) -> Result<Client, Error> {
        Client::new(ClientConfig::new(endpoints))
    }

    /// The endpoints' base URLs, in the order calls fail over.
    pub fn endpoints(&self) -> &[String] {
        &self.transport.endpoints
    }

    /// The settings.
    pub fn config(&self) -> &ClientConfig {
        &self.transport.config
    }
}
