//! Calls on keys: get, put (conditional, ephemeral, sequential), delete (conditional,
//! by prefix) and listings (one page, or every page).

use crate::client::Client;
use crate::encode::{key_path, query};
use crate::error::Error;
use crate::transport::Call;
use crate::types::{
    protocol, Consistency, DeleteResult, Entry, KeyValue, ListOptions, ListPage, PutResult,
    RawListPage,
};
use bytes::Bytes;
use reqwest::Method;

/// Header names of a GET's metadata.
const REVISION: &str = "x-concierge-revision";

/// Options of a put.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Write only if the key's version is this (0: only if absent); else 412.
    pub version: Option<u64>,
    /// Make the key ephemeral, owned by this session.
    pub session: Option<String>,
    /// Append a 20-digit number, increasing per prefix, to the key.
    pub sequential: bool,
}

/// Options of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    /// Delete only if the key's version is this; else 412.
    pub version: Option<u64>,
    /// Delete every key starting with the key given.
    pub prefix: bool,
}

impl Client {
    /// The key's value and metadata (linearizable); None when absent.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, Error> {
        self.get_with(key, Consistency::Linearizable).await
    }

    /// [`Client::get`] at the consistency given.
    pub async fn get_with(
        &self,
        key: &str,
        consistency: Consistency,
    ) -> Result<Option<KeyValue>, Error> {
        let mut path = key_path(key)?;
        if consistency != Consistency::Linearizable {
            path.push_str(&query(&[("consistency", consistency.as_str().into())]));
        }
        let answer = match self.transport.execute(&Call::read(path)).await {
            Ok(a) => a,
            Err(Error::KeyNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let session = match answer.headers.get("x-concierge-session") {
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| answer.protocol("X-Concierge-Session is not ASCII".into()))?
                    .to_string(),
            ),
            None => None,
        };
        Ok(Some(KeyValue {
            key: key.to_string(),
            version: answer.required_u64("x-concierge-version")?,
            create_revision: answer.required_u64("x-concierge-create-revision")?,
            mod_revision: answer.required_u64("x-concierge-mod-revision")?,
            revision: answer.required_u64(REVISION)?,
            session,
            value: answer.body,
        }))
    }

    /// Writes the key.
    pub async fn put(&self, key: &str, value: impl Into<Bytes>) -> Result<PutResult, Error> {
        self.put_with(key, value, &PutOptions::default()).await
    }

    /// Writes the key with conditions or ownership.
    pub async fn put_with(
        &self,
        key: &str,
        value: impl Into<Bytes>,
        options: &PutOptions,
    ) -> Result<PutResult, Error> {
        let mut pairs = Vec::new();
        if let Some(v) = options.version {
            pairs.push(("version", v.to_string()));
        }
        if let Some(s) = &options.session {
            pairs.push(("session", s.clone()));
        }
        if options.sequential {
            pairs.push(("sequential", "true".to_string()));
        }
        let path = format!("{}{}", key_path(key)?, query(&pairs));
        let call = Call::write(Method::PUT, path, Some(value.into()));
        let answer = self.transport.execute(&call).await?;
        let mut result: PutResult = answer.json()?;
        result.created = answer.status == 201;
        Ok(result)
    }

    /// Deletes the key; `Error::KeyNotFound` when absent.
    pub async fn delete(&self, key: &str) -> Result<DeleteResult, Error> {
        self.delete_with(key, &DeleteOptions::default()).await
    }

    /// Deletes every key starting with `prefix` (none is not an error).
    pub async fn delete_prefix(&self, prefix: &str) -> Result<DeleteResult, Error> {
        let options = DeleteOptions {
            prefix: true,
            ..DeleteOptions::default()
        };
        self.delete_with(prefix, &options).await
    }

    /// Deletes with a condition or by prefix.
    pub async fn delete_with(
        &self,
        key: &str,
        options: &DeleteOptions,
    ) -> Result<DeleteResult, Error> {
        let mut pairs = Vec::new();
        if let Some(v) = options.version {
            pairs.push(("version", v.to_string()));
        }
        if options.prefix {
            pairs.push(("prefix", "true".to_string()));
        }
        let path = format!("{}{}", key_path(key)?, query(&pairs));
        let answer = self
            .transport
            .execute(&Call::write(Method::DELETE, path, None))
            .await?;
        answer.json()
    }

    /// One page of the keys starting with `prefix`, in key order.
    pub async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListPage, Error> {
        let mut pairs = vec![("prefix", prefix.to_string())];
        if let Some(limit) = options.limit {
            pairs.push(("limit", limit.to_string()));
        }
        if let Some(after) = &options.start_after {
            pairs.push(("start_after", after.clone()));
        }
        if options.keys_only {
            pairs.push(("keys_only", "true".to_string()));
        }
        if options.consistency != Consistency::Linearizable {
            pairs.push(("consistency", options.consistency.as_str().to_string()));
        }
        let answer = self
            .transport
            .execute(&Call::read(format!("/v1/keys{}", query(&pairs))))
            .await?;
        let raw: RawListPage = answer.json()?;
        let entries = raw
            .entries
            .into_iter()
            .map(|e| e.decode().map_err(|m| protocol(&answer.endpoint, m)))
            .collect::<Result<Vec<Entry>, Error>>()?;
        if let (Some(first), Some(after)) = (entries.first(), &options.start_after) {
            if first.key.as_str() <= after.as_str() {
                return Err(protocol(
                    &answer.endpoint,
                    format!("listing after {after:?} began at {:?}", first.key),
                ));
            }
        }
        Ok(ListPage {
            revision: raw.revision,
            more: raw.more,
            entries,
        })
    }

    /// Every key starting with `prefix`, page by page (each page is consistent on its
    /// own; pages may reflect different revisions). At most `max_entries`: more is
    /// `Error::InvalidArgument` rather than unbounded memory.
    pub async fn list_all(
        &self,
        prefix: &str,
        options: &ListOptions,
        max_entries: usize,
    ) -> Result<Vec<Entry>, Error> {
        let mut options = options.clone();
        let mut out = Vec::new();
        loop {
            let page = self.list(prefix, &options).await?;
            out.extend(page.entries);
            if out.len() > max_entries {
                return Err(Error::InvalidArgument(format!(
                    "more than {max_entries} keys under {prefix:?}"
                )));
            }
            match (page.more, out.last()) {
                (true, Some(last)) => options.start_after = Some(last.key.clone()),
                _ => return Ok(out),
            }
        }
    }
}
