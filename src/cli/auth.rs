//! `concierge auth enable | disable | status`, `concierge role add | list | remove`,
//! `concierge user add | remove`, `concierge token create | revoke`: access control by
//! hand (the server's docs/API.md "Access control"). `auth enable` and `token create`
//! print only the token (`export CONCIERGE_TOKEN=$(concierge auth enable)`): it is
//! shown this once. Every command but `auth enable` on a cluster with access control
//! off needs an admin token (`--token` or `CONCIERGE_TOKEN`). Exit codes as for every
//! client command: 401, 403 and a refused change are 1.

use super::conn::Conn;
use super::exit::{Failure, OK};
use super::output;
use clap::{Args, Subcommand};
use concierge_client::{NewToken, Permission, RoleSpec};
use serde_json::json;

/// `concierge auth ...`
#[derive(Args, Debug)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Turn access control on; prints the admin's token (shown once).
    Enable {
        #[command(flatten)]
        conn: Conn,
    },
    /// Turn access control off (roles, users and tokens are kept).
    Disable {
        #[command(flatten)]
        conn: Conn,
    },
    /// Show whether it is on, the roles, users and token ids.
    Status {
        #[command(flatten)]
        conn: Conn,
    },
}

/// `concierge role ...`
#[derive(Args, Debug)]
pub struct RoleArgs {
    #[command(subcommand)]
    pub command: RoleCommand,
}

#[derive(Subcommand, Debug)]
pub enum RoleCommand {
    /// Create or replace a role.
    Add {
        name: String,
        /// Grant read on keys starting with PREFIX (repeatable; "" = every key).
        #[arg(long, value_name = "PREFIX")]
        read: Vec<String>,
        /// Grant read and write on keys starting with PREFIX (repeatable).
        #[arg(long, value_name = "PREFIX")]
        readwrite: Vec<String>,
        /// Grant a right: sessions, cluster or admin (repeatable).
        #[arg(long, value_name = "RIGHT")]
        right: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// List the roles.
    List {
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a role (its users lose it).
    Remove {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `concierge user ...`
#[derive(Args, Debug)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create or replace a user with these roles.
    Add {
        name: String,
        /// A role of the user (repeatable).
        #[arg(long, value_name = "ROLE")]
        role: Vec<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Delete a user and revoke its tokens.
    Remove {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `concierge token ...`
#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub command: TokenCommand,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Make a token for a user; prints it (shown once).
    Create {
        user: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Revoke a token by its id (the part before the dot).
    Revoke {
        id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

fn print_token(t: &NewToken, conn: &Conn) -> Result<(), Failure> {
    if conn.json {
        output::json_line(&json!({"id": t.id, "user": t.user, "token": t.token}))
    } else {
        output::line(&t.token)
    }
}

fn done(conn: &Conn, what: &str) -> Result<(), Failure> {
    if conn.json {
        output::json_line(&json!({ "done": what }))
    } else {
        output::line(what)
    }
}

pub async fn auth(args: AuthArgs) -> Result<u8, Failure> {
    match args.command {
        AuthCommand::Enable { conn } => {
            let t = conn.client()?.auth_enable().await?;
            print_token(&t, &conn)?;
        }
        AuthCommand::Disable { conn } => {
            conn.client()?.auth_disable().await?;
            done(&conn, "access control is off")?;
        }
        AuthCommand::Status { conn } => {
            let s = conn.client()?.auth_status().await?;
            if conn.json {
                let users: serde_json::Map<_, _> = s
                    .users
                    .iter()
                    .map(|(n, u)| (n.clone(), json!({"roles": u.roles})))
                    .collect();
                let tokens: Vec<_> = s
                    .tokens
                    .iter()
                    .map(|t| json!({"id": t.id, "user": t.user}))
                    .collect();
                output::json_line(&json!({
                    "enabled": s.enabled,
                    "roles": s.roles.keys().collect::<Vec<_>>(),
                    "users": users,
                    "tokens": tokens,
                }))?;
            } else {
                let mut text = format!("enabled: {}\n", s.enabled);
                for (name, u) in &s.users {
                    text.push_str(&format!("user {name}: {}\n", u.roles.join(", ")));
                }
                for t in &s.tokens {
                    text.push_str(&format!("token {} of {}\n", t.id, t.user));
                }
                output::write(text.as_bytes())?;
            }
        }
    }
    Ok(OK)
}

pub async fn role(args: RoleArgs) -> Result<u8, Failure> {
    match args.command {
        RoleCommand::Add {
            name,
            read,
            readwrite,
            right,
            conn,
        } => {
            let perm = |access: &'static str, prefix: String| Permission {
                prefix,
                access: access.into(),
            };
            let mut perms: Vec<Permission> = read.into_iter().map(|p| perm("read", p)).collect();
            perms.extend(readwrite.into_iter().map(|p| perm("readwrite", p)));
            let role = RoleSpec {
                perms,
                rights: right,
            };
            conn.client()?.put_role(&name, &role).await?;
            done(&conn, &format!("role {name} set"))?;
        }
        RoleCommand::List { conn } => {
            let s = conn.client()?.auth_status().await?;
            if conn.json {
                let roles: serde_json::Map<_, _> = s
                    .roles
                    .iter()
                    .map(|(n, r)| (n.clone(), json!({"perms": r.perms.iter().map(|p| json!({"prefix": p.prefix, "access": p.access})).collect::<Vec<_>>(), "rights": r.rights})))
                    .collect();
                output::json_line(&json!({ "roles": roles }))?;
            } else {
                let rows: Vec<Vec<String>> = s
                    .roles
                    .iter()
                    .map(|(n, r)| {
                        let perms: Vec<String> = r
                            .perms
                            .iter()
                            .map(|p| format!("{}:{:?}", p.access, p.prefix))
                            .collect();
                        vec![n.clone(), perms.join(" "), r.rights.join(" ")]
                    })
                    .collect();
                output::write(output::table(&["ROLE", "PERMISSIONS", "RIGHTS"], &rows).as_bytes())?;
            }
        }
        RoleCommand::Remove { name, conn } => {
            conn.client()?.delete_role(&name).await?;
            done(&conn, &format!("role {name} removed"))?;
        }
    }
    Ok(OK)
}

pub async fn user(args: UserArgs) -> Result<u8, Failure> {
    match args.command {
        UserCommand::Add { name, role, conn } => {
            conn.client()?.put_user(&name, &role).await?;
            done(&conn, &format!("user {name} set"))?;
        }
        UserCommand::Remove { name, conn } => {
            conn.client()?.delete_user(&name).await?;
            done(&conn, &format!("user {name} removed"))?;
        }
    }
    Ok(OK)
}

pub async fn token(args: TokenArgs) -> Result<u8, Failure> {
    match args.command {
        TokenCommand::Create { user, conn } => {
            let t = conn.client()?.create_token(&user).await?;
            print_token(&t, &conn)?;
        }
        TokenCommand::Revoke { id, conn } => {
            conn.client()?.revoke_token(&id).await?;
            done(&conn, &format!("token {id} revoked"))?;
        }
    }
    Ok(OK)
}
