//! The access-control record as part of the replicated state: applied through the log
//! without a revision, published to the auth table, and the same after a reopen
//! (restart) and a snapshot install (a lagging replica); a backup restore is in
//! `backup::tests`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kv::auth::model::{Access, Perm, Rights, Role};
use crate::kv::auth::{token, AuthCommand};
use crate::kv::command::Command;
use crate::kv::test_support::{fresh, one, open, put};
use crate::kv::{KvOptions, KvStateMachine, Outcome};

fn auth(c: AuthCommand) -> Command {
    Command::Auth(c)
}

/// A machine with access control on, a role, a user and a token; the token returned.
pub(crate) fn with_rules(sm: &mut KvStateMachine) -> String {
    let admin = token::generate().unwrap();
    let t = token::generate().unwrap();
    let role = Role {
        perms: vec![Perm {
            prefix: "a/".into(),
            access: Access::ReadWrite,
        }],
        rights: Rights::default(),
    };
    for c in [
        AuthCommand::Enable {
            token_id: admin.id,
            hash: admin.hash,
        },
        AuthCommand::PutRole {
            name: "r".into(),
            role,
        },
        AuthCommand::PutUser {
            name: "u".into(),
            roles: vec!["r".into()],
        },
        AuthCommand::CreateToken {
            id: t.id.clone(),
            user: "u".into(),
            hash: t.hash,
        },
    ] {
        let reply = one(sm, auth(c));
        assert_eq!(reply.outcome, Outcome::AuthChanged);
    }
    t.token
}

pub(crate) fn assert_rules(sm: &KvStateMachine, token: &str) {
    let table = sm.auth();
    assert!(table.enabled());
    let g = table.authenticate(Some(token)).unwrap();
    assert!(g.can_write("a/x") && !g.can_read("b/x"));
    assert!(table.authenticate(None).is_err());
}

#[test]
fn auth_commands_take_no_revision_and_reach_the_table() {
    let (_fs, mut sm) = fresh();
    one(&mut sm, put("k", "v"));
    let revision = sm.revision();
    let token = with_rules(&mut sm);
    assert_eq!(sm.revision(), revision);
    assert_rules(&sm, &token);
    // A refused command changes nothing.
    let reply = one(
        &mut sm,
        auth(AuthCommand::PutUser {
            name: "v".into(),
            roles: vec!["missing".into()],
        }),
    );
    assert!(matches!(reply.outcome, Outcome::Rejected { .. }));
    assert!(!sm.auth().get().users.contains_key("v"));
}

#[test]
fn the_rules_survive_a_reopen_and_a_snapshot_install() {
    let (fs, mut sm) = fresh();
    let token = with_rules(&mut sm);
    drop(sm);
    let src = open(&fs, KvOptions::default());
    assert_rules(&src, &token);

    let (_fs2, mut dst) = fresh();
    let mut snap = src.snapshot().unwrap();
    dst.begin_install(snap.slot()).unwrap();
    while let Some(chunk) = snap.next_chunk().unwrap() {
        dst.install_chunk(&chunk).unwrap();
    }
    dst.finish_install().unwrap();
    assert_rules(&dst, &token);
}
