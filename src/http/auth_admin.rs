//! `/v1/auth/...`: turning access control on and off, and managing roles, users and
//! tokens (docs/API.md "Access control").
//!
//! `POST /v1/auth/enable` with access control off needs no token (everyone is admin
//! then): it creates user and role `admin` and answers the admin's token, once (201).
//! Every other route here, and `enable` once it is on, needs the admin right. Changes go
//! through the log as `Command::Auth` without an idempotency key: a token's secret is
//! drawn by this node and shown only to the request that made it, so a retry makes a
//! new token rather than replaying an answer that cannot show the first one's secret.
//! Names and sizes are checked here (400) and again when applied.

use crate::http::auth::Caller;
use crate::http::body::read_small_json;
use crate::http::consensus::{propose_command, read_barrier};
use crate::http::{ApiError, AppState};
use crate::kv::auth::command::{check_name, check_role};
use crate::kv::auth::{token, Access, AuthCommand, Perm, Rights, Role};
use crate::kv::{Command, Outcome};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

/// Proposes an auth command; the outcome's refusal as an API error.
async fn apply(state: &AppState, command: AuthCommand) -> Result<(), ApiError> {
    let reply = propose_command(state, Command::Auth(command)).await?;
    match reply.outcome {
        Outcome::AuthChanged => Ok(()),
        Outcome::AuthNotFound { what } => Err(ApiError::NotFound(format!("no {what}"))),
        Outcome::Rejected { reason } => Err(ApiError::BadRequest(reason)),
        other => Err(ApiError::Internal(format!("unexpected outcome {other:?}"))),
    }
}

fn new_token() -> Result<token::NewToken, ApiError> {
    token::generate().map_err(ApiError::Internal)
}

fn path_name(req: &HttpRequest, what: &str) -> Result<String, ApiError> {
    let name = req.match_info().get("name").unwrap_or_default().to_string();
    check_name(what, &name).map_err(ApiError::BadRequest)?;
    Ok(name)
}

/// `POST /v1/auth/enable`: 201 `{"user": "admin", "token_id", "token"}`.
pub async fn enable(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let t = new_token()?;
    apply(
        &state,
        AuthCommand::Enable {
            token_id: t.id.clone(),
            hash: t.hash,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({"user": "admin", "token_id": t.id, "token": t.token})))
}

/// `POST /v1/auth/disable`: 200 `{"enabled": false}`.
pub async fn disable(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    apply(&state, AuthCommand::Disable).await?;
    Ok(HttpResponse::Ok().json(json!({"enabled": false})))
}

fn access_name(a: Access) -> &'static str {
    match a {
        Access::Read => "read",
        Access::ReadWrite => "readwrite",
    }
}

fn rights_json(r: &Rights) -> Value {
    let names = [
        (r.sessions, "sessions"),
        (r.cluster, "cluster"),
        (r.admin, "admin"),
    ];
    json!(names
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>())
}

/// `GET /v1/auth`: the enabled flag, roles, users and token ids (never a secret).
pub async fn show(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    read_barrier(&state).await?;
    let s = state.auth.get();
    let roles: serde_json::Map<String, Value> = s
        .roles
        .iter()
        .map(|(name, role)| {
            let perms: Vec<Value> = role
                .perms
                .iter()
                .map(|p| json!({"prefix": p.prefix, "access": access_name(p.access)}))
                .collect();
            (
                name.clone(),
                json!({"perms": perms, "rights": rights_json(&role.rights)}),
            )
        })
        .collect();
    let users: serde_json::Map<String, Value> = s
        .users
        .iter()
        .map(|(name, u)| (name.clone(), json!({"roles": u.roles})))
        .collect();
    let tokens: Vec<Value> = s
        .tokens
        .iter()
        .map(|(id, t)| json!({"id": id, "user": t.user}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({"enabled": s.enabled, "roles": roles, "users": users, "tokens": tokens})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PermBody {
    prefix: String,
    access: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    #[serde(default)]
    perms: Vec<PermBody>,
    #[serde(default)]
    rights: Vec<String>,
}

fn parse_role(b: RoleBody) -> Result<Role, ApiError> {
    let mut role = Role::default();
    for p in b.perms {
        let access = match p.access.as_str() {
            "read" => Access::Read,
            "readwrite" => Access::ReadWrite,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "access must be \"read\" or \"readwrite\", got {other:?}"
                )))
            }
        };
        role.perms.push(Perm {
            prefix: p.prefix,
            access,
        });
    }
    for r in b.rights {
        match r.as_str() {
            "sessions" => role.rights.sessions = true,
            "cluster" => role.rights.cluster = true,
            "admin" => role.rights.admin = true,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "a right is \"sessions\", \"cluster\" or \"admin\", got {other:?}"
                )))
            }
        }
    }
    check_role(&role).map_err(ApiError::BadRequest)?;
    Ok(role)
}

/// `PUT /v1/auth/roles/{name}` `{"perms": [{"prefix", "access"}], "rights": [..]}`.
pub async fn put_role(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let name = path_name(&req, "role")?;
    const SHAPE: &str =
        "body is not {\"perms\": [{\"prefix\": P, \"access\": A}], \"rights\": [R]}";
    let role = parse_role(read_small_json(&req, &mut payload, &state, SHAPE).await?)?;
    apply(
        &state,
        AuthCommand::PutRole {
            name: name.clone(),
            role,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "role": name })))
}

/// `DELETE /v1/auth/roles/{name}`.
pub async fn delete_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let name = path_name(&req, "role")?;
    apply(&state, AuthCommand::DeleteRole { name: name.clone() }).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": name })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    roles: Vec<String>,
}

/// `PUT /v1/auth/users/{name}` `{"roles": [..]}`.
pub async fn put_user(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let name = path_name(&req, "user")?;
    let b: UserBody =
        read_small_json(&req, &mut payload, &state, "body is not {\"roles\": [R]}").await?;
    for r in &b.roles {
        check_name("role", r).map_err(ApiError::BadRequest)?;
    }
    let roles = b.roles;
    apply(
        &state,
        AuthCommand::PutUser {
            name: name.clone(),
            roles,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "user": name })))
}

/// `DELETE /v1/auth/users/{name}`: also revokes the user's tokens.
pub async fn delete_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let name = path_name(&req, "user")?;
    apply(&state, AuthCommand::DeleteUser { name: name.clone() }).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": name })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    user: String,
}

/// `POST /v1/auth/tokens` `{"user": U}`: 201 `{"id", "user", "token"}`, the token
/// shown this once.
pub async fn create_token(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let b: TokenBody =
        read_small_json(&req, &mut payload, &state, "body is not {\"user\": U}").await?;
    check_name("user", &b.user).map_err(ApiError::BadRequest)?;
    let t = new_token()?;
    apply(
        &state,
        AuthCommand::CreateToken {
            id: t.id.clone(),
            user: b.user.clone(),
            hash: t.hash,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({"id": t.id, "user": b.user, "token": t.token})))
}

/// `DELETE /v1/auth/tokens/{id}`.
pub async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.admin()?;
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    if id.is_empty() || id.len() > 64 {
        return Err(ApiError::BadRequest(
            "a token id is 1 to 64 characters".into(),
        ));
    }
    apply(&state, AuthCommand::RevokeToken { id: id.clone() }).await?;
    Ok(HttpResponse::Ok().json(json!({ "revoked": id })))
}
