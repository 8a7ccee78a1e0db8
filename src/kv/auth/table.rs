//! The applied access-control state as requests read it: one `Arc<AuthState>`, swapped
//! whole by the state machine after each slot that changed the auth record, on open and
//! after a snapshot install. Readers never see a half-applied change. Each node's table
//! follows its own applied state, so a token made on the leader is known on a follower
//! once the follower applied that slot (the HTTP layer waits for that on an unknown
//! token: `http::auth`).

use crate::kv::auth::model::{AuthState, Grants};
use crate::kv::auth::token;
use std::sync::{Arc, RwLock};

/// Why a request was not authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token.
    Missing,
    /// Malformed, unknown, revoked, or a wrong secret.
    Unknown,
}

/// The shared, applied auth state.
#[derive(Debug, Default)]
pub struct AuthTable {
    state: RwLock<Arc<AuthState>>,
}

impl AuthTable {
    pub fn new() -> Arc<AuthTable> {
        Arc::new(AuthTable::default())
    }

    /// The state as last applied.
    pub fn get(&self) -> Arc<AuthState> {
        Arc::clone(&self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Replaces the state (the state machine, after applying or installing it).
    pub fn set(&self, state: AuthState) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(state);
    }

    pub fn enabled(&self) -> bool {
        self.get().enabled
    }

    /// What a request carrying `bearer` (the token after `Bearer `) may do.
    pub fn authenticate(&self, bearer: Option<&str>) -> Result<Grants, Refusal> {
        let state = self.get();
        if !state.enabled {
            return Ok(Grants::open());
        }
        let bearer = bearer.ok_or(Refusal::Missing)?;
        let (id, secret) = token::split(bearer).ok_or(Refusal::Unknown)?;
        let record = state.tokens.get(id).ok_or(Refusal::Unknown)?;
        if !token::verify(secret, &record.hash) {
            return Err(Refusal::Unknown);
        }
        Ok(state.grants_of(&record.user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::auth::model::TokenRecord;

    #[test]
    fn tokens_authenticate_only_when_known_and_right() {
        let table = AuthTable::new();
        assert_eq!(table.authenticate(None), Ok(Grants::open()));
        let t = token::generate().unwrap();
        let mut s = AuthState {
            enabled: true,
            ..AuthState::default()
        };
        s.tokens.insert(
            t.id.clone(),
            TokenRecord {
                user: "u".into(),
                hash: t.hash,
            },
        );
        table.set(s);
        assert_eq!(table.authenticate(None), Err(Refusal::Missing));
        assert_eq!(table.authenticate(Some("junk")), Err(Refusal::Unknown));
        let wrong = format!("{}.{}", t.id, "00".repeat(32));
        assert_eq!(table.authenticate(Some(&wrong)), Err(Refusal::Unknown));
        let g = table.authenticate(Some(&t.token)).unwrap();
        assert_eq!(g.user.as_deref(), Some("u"));
    }
}
