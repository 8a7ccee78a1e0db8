//! Who a request is and what it may do: the [`Caller`] extractor every handler but
//! `/health` and `/ready` takes, and the checks handlers run with it.
//!
//! With access control off every caller gets `Grants::open()` (everything). With it on,
//! a request without `Authorization: Bearer <token>` or with an unknown token is refused
//! 401 before its handler runs; a handler refuses what the token lacks with 403 before
//! proposing or reading anything, so a refused request changes nothing. A token just
//! made on the leader may not be applied on this node yet: an unknown token is looked
//! up once more after a read barrier (this node applies through the leader's commit
//! index), so a fresh token works on a lagging follower too.

use crate::http::consensus::read_barrier;
use crate::http::{ApiError, AppState};
use crate::kv::auth::table::Refusal;
use crate::kv::auth::Grants;
use crate::kv::SessionId;
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

/// What the authenticated caller of a request may do.
#[derive(Clone, Debug)]
pub struct Caller(pub Grants);

/// The token of `Authorization: Bearer <token>`; None without the header.
fn bearer(req: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().ok().and_then(|t| {
        let (scheme, token) = t.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    match text {
        Some(token) if !token.is_empty() => Ok(Some(token)),
        _ => Err(ApiError::Unauthorized(
            "the Authorization header is not \"Bearer <token>\"".into(),
        )),
    }
}

fn refused(refusal: Refusal) -> ApiError {
    ApiError::Unauthorized(match refusal {
        Refusal::Missing => "access control is on: send Authorization: Bearer <token>".into(),
        Refusal::Unknown => "the token is not valid (unknown, revoked or malformed)".into(),
    })
}

/// Authenticates `req` against this node's applied access-control state.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Grants, ApiError> {
    let token = bearer(req)?;
    match state.auth.authenticate(token) {
        Ok(grants) => Ok(grants),
        Err(Refusal::Unknown) => {
            // Maybe made on the leader and not applied here yet: catch up once.
            read_barrier(state).await?;
            state.auth.authenticate(token).map_err(refused)
        }
        Err(refusal) => Err(refused(refusal)),
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Caller, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::Internal("the app state is not registered".into()))?;
            authenticate(&req, &state).await.map(Caller)
        })
    }
}

fn forbidden(what: String) -> ApiError {
    ApiError::Forbidden(format!("the token does not grant {what}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), ApiError> {
    if ok {
        Ok(())
    } else {
        Err(forbidden(what()))
    }
}

impl Caller {
    pub fn grants(&self) -> &Grants {
        &self.0
    }

    pub fn read(&self, key: &str) -> Result<(), ApiError> {
        check(self.0.can_read(key), || format!("read on {key:?}"))
    }

    pub fn write(&self, key: &str) -> Result<(), ApiError> {
        check(self.0.can_write(key), || format!("readwrite on {key:?}"))
    }

    pub fn write_all(&self, prefix: &str) -> Result<(), ApiError> {
        check(self.0.can_write_all(prefix), || {
            format!("readwrite on every key under {prefix:?}")
        })
    }

    pub fn read_some(&self, prefix: &str) -> Result<(), ApiError> {
        check(self.0.can_read_some(prefix), || {
            format!("read on any key under {prefix:?}")
        })
    }

    pub fn sessions(&self) -> Result<(), ApiError> {
        check(self.0.can_use_sessions(), || "the sessions right".into())
    }

    pub fn cluster(&self) -> Result<(), ApiError> {
        check(self.0.can_cluster(), || "the cluster right".into())
    }

    pub fn admin(&self) -> Result<(), ApiError> {
        check(self.0.is_admin(), || "the admin right".into())
    }

    /// The owner a session created by this caller gets (None with access control off).
    pub fn owner(&self) -> Option<String> {
        self.0.user.clone()
    }

    /// Refuses a caller that may not use session `id` (another user's; admin may use
    /// any). A session not applied here yet is looked for again after a read barrier;
    /// one that does not exist is left to the command (404).
    pub async fn use_session(&self, state: &AppState, id: SessionId) -> Result<(), ApiError> {
        self.sessions()?;
        if self.0.is_admin() {
            return Ok(());
        }
        let record = match state.reader.session(id)? {
            Some(r) => Some(r),
            None => {
                read_barrier(state).await?;
                state.reader.session(id)?
            }
        };
        match record {
            Some(r) if !self.0.owns(r.owner.as_deref()) => Err(ApiError::Forbidden(format!(
                "session {id} belongs to another user"
            ))),
            _ => Ok(()),
        }
    }
}
