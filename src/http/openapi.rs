//! `GET /v1/openapi.json`: an OpenAPI 3 description of the API (API.md).

use actix_web::HttpResponse;
use serde_json::{json, Value};

fn param(name: &str, place: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": place, "required": place == "path", "schema": schema, "description": description})
}

fn error(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn limit() -> Value {
    param(
        "limit",
        "query",
        json!({"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000}),
        "most entries of the page",
    )
}

fn reused() -> Value {
    error("idempotency_key_reused: the Idempotency-Key was first used for another request (method, key, query or body); nothing was applied")
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn common_errors() -> Value {
    json!({
        "400": error("bad_request"),
        "408": {"description": "the request head (empty body) or body (request_timeout) did not arrive in time; nothing was applied, the connection is closed"},
        "503": error("no_quorum / not_ready: not applied, retry (Retry-After)"),
        "504": error("timeout: the outcome is unknown"),
    })
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

/// A key: no control character (Unicode Cc: U+0000..U+001F, U+007F..U+009F).
const NO_CONTROL: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]+$";
/// A prefix: as a key, but may be empty.
const NO_CONTROL_OR_EMPTY: &str = "^[^\\x00-\\x1F\\x7F-\\x9F]*$";

/// The document.
pub fn document() -> Value {
    let n = || json!({"type": "integer", "format": "int64", "minimum": 0});
    let member_id = || json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": u32::MAX}});
    let revision = || json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": crate::http::watch::REVISION_MAX});
    // Keys: 1..=1024 bytes of UTF-8 with no control character (Unicode Cc). A schema
    // counts characters, not bytes: a key of 1024 characters may still be too long.
    let key_string =
        || json!({"type": "string", "minLength": 1, "maxLength": 1024, "pattern": NO_CONTROL});
    let prefix_string =
        || json!({"type": "string", "maxLength": 1024, "pattern": NO_CONTROL_OR_EMPTY});
    let key = param(
        "key",
        "path",
        key_string(),
        "the key, percent-encoded; the rest of the path (1..=1024 bytes of UTF-8, no control characters)",
    );
    let consistency = param(
        "consistency",
        "query",
        json!({"type": "string", "enum": ["linearizable", "serializable"]}),
        "default linearizable",
    );
    let version = param(
        "version",
        "query",
        n(),
        "only if the current version is this (0 = absent)",
    );
    let idem = param(
        "Idempotency-Key",
        "header",
        json!({"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[\\x21-\\x7E]+$"}),
        "visible ASCII; a retry of the same request within 10 minutes returns the first answer; the key reused for another request is 422",
    );
    let session_id = param("id", "path", json!({"type": "string"}), "session id");
    json!({
        "openapi": "3.0.3",
        "info": {"title": "Concierge", "version": "1", "description": "A durable, replicated coordination service. Every response carries X-Concierge-Revision and X-Concierge-Leader. A method a path does not serve is 405 method_not_allowed with an Allow header; every GET but /v1/watch also answers HEAD (no body)."},
        "servers": [{"url": "/", "description": "this node, over http:// by default or https:// when it serves TLS (TLS_CERT_FILE, TLS_KEY_FILE; with TLS_CLIENT_CA_FILE a client certificate is required)"}],
        "paths": {
            "/v1/keys/{key}": {
                "put": {
                    "summary": "Write a key",
                    "parameters": [key, version, param("session", "query", json!({"type": "string"}), "make the key ephemeral, owned by this session"), param("sequential", "query", json!({"type": "boolean"}), "append a 20-digit increasing number to the key"), param("If-Match", "header", json!({"type": "string", "pattern": "^\"[0-9]{1,20}\"$"}), "\"N\": as ?version=N"), param("If-None-Match", "header", json!({"type": "string", "enum": ["*"]}), "*: only if absent"), idem],
                    "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": with(common_errors(), json!({
                        "200": ok_json("updated", json!({"$ref": "#/components/schemas/PutResult"})),
                        "201": ok_json("created", json!({"$ref": "#/components/schemas/PutResult"})),
                        "404": error("session_not_found"),
                        "412": error("version_mismatch (adds current_version)"),
                        "413": error("too_large"),
                        "422": reused(),
                        "507": error("quota_exceeded: the live keys and values reached QUOTA_BYTES; reads and deletes still work"),
                    })),
                },
                "get": {
                    "summary": "Read a key",
                    "parameters": [key, consistency],
                    "responses": with(common_errors(), json!({
                        "200": {"description": "the raw value; ETag, X-Concierge-Version, -Create-Revision, -Mod-Revision, -Session", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                        "404": error("key_not_found"),
                    })),
                },
                "delete": {
                    "summary": "Delete a key, or every key with it as prefix",
                    "parameters": [key, version, param("prefix", "query", json!({"type": "boolean"}), "delete every key starting with {key}"), idem],
                    "responses": with(common_errors(), json!({
                        "200": ok_json("deleted", json!({"type": "object", "properties": {"deleted": n(), "revision": n()}})),
                        "404": error("key_not_found"),
                        "412": error("version_mismatch"),
                        "422": reused(),
                    })),
                },
            },
            "/v1/keys": {"get": {
                "summary": "List keys by prefix, in key order",
                "description": "A page stops at limit entries or at the page byte budget (PAGE_BYTES_MAX, 4 MiB by default), whichever comes first; more is true when either cut it: continue with start_after = the last key.",
                "parameters": [param("prefix", "query", prefix_string(), "empty: every key"), limit(), param("start_after", "query", key_string(), "a key: the page starts after it"), param("keys_only", "query", json!({"type": "boolean"}), ""), consistency],
                "responses": with(common_errors(), json!({"200": ok_json("a page", json!({"type": "object", "properties": {"revision": n(), "more": {"type": "boolean"}, "entries": {"type": "array", "items": {"$ref": "#/components/schemas/Entry"}}}}))})),
            }},
            "/v1/txn": {"post": {
                "summary": "All-or-nothing transaction at one revision (at most 128 ops; its gets may return at most 4 MiB of values, else 400 and nothing applied)",
                "parameters": [idem],
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"if": {"type": "array", "maxItems": 128, "items": {"$ref": "#/components/schemas/Compare"}}, "then": {"type": "array", "maxItems": 128, "items": {"$ref": "#/components/schemas/TxnOp"}}, "else": {"type": "array", "maxItems": 128, "items": {"$ref": "#/components/schemas/TxnOp"}}}}}}},
                "responses": with(common_errors(), json!({"200": ok_json("the branch taken", json!({"type": "object", "properties": {"succeeded": {"type": "boolean"}, "revision": n(), "results": {"type": "array"}}})), "404": error("session_not_found"), "422": reused(), "507": error("quota_exceeded: a transaction with a put while the live keys and values reached QUOTA_BYTES")})),
            }},
            "/v1/watch": {"get": {
                "summary": "Server-Sent Events stream of changes",
                "parameters": [param("key", "query", key_string(), "UTF-8, no control characters; give exactly one of key and prefix"), param("prefix", "query", prefix_string(), "as a key, but may be empty (every key); give exactly one of key and prefix"), param("from_revision", "query", revision(), "default: the next revision"), param("Last-Event-ID", "header", revision(), "resume after this revision")],
                "responses": {"200": {"description": "id: <mod_revision>, data: an event", "content": {"text/event-stream": {}}}, "400": error("bad_request"), "410": error("compacted (adds compact_revision)"), "503": error("not_ready: this node serves its limit of watches (WATCHERS_MAX); retry (Retry-After)")},
            }},
            "/v1/sessions": {
                "post": {"summary": "Open a session", "parameters": [idem], "requestBody": {"content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"ttl_ms": {"type": "integer", "nullable": true, "minimum": 1000, "maximum": 300000, "default": 10000}}}}}}, "responses": with(common_errors(), json!({"201": ok_json("opened", json!({"$ref": "#/components/schemas/Session"})), "422": reused(), "507": error("quota_exceeded: SESSIONS_MAX sessions are live")}))},
                "get": {"summary": "List sessions, a page at a time, in id order", "parameters": [limit(), param("start_after", "query", json!({"type": "string", "pattern": "^[0-9a-fA-F]{1,16}$"}), "a session id: the page starts after it")], "responses": with(common_errors(), json!({"200": ok_json("sessions", json!({"type": "object", "properties": {"sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}, "more": {"type": "boolean"}}}))}))},
            },
            "/v1/sessions/{id}": {
                "get": {"summary": "A session and a page of its ephemeral keys", "parameters": [session_id.clone(), limit(), param("start_after", "query", key_string(), "a key: the page starts after it")], "responses": with(common_errors(), json!({"200": ok_json("the session", json!({"type": "object", "properties": {"id": {"type": "string"}, "ttl_ms": n(), "keys": {"type": "array", "items": {"type": "string"}}, "more": {"type": "boolean"}}})), "404": error("session_not_found")}))},
                "delete": {"summary": "Close a session, deleting its ephemeral keys in one revision", "parameters": [session_id, idem], "responses": with(common_errors(), json!({"200": ok_json("closed", json!({"type": "object", "properties": {"deleted_keys": n()}})), "404": error("session_not_found"), "422": reused()}))},
            },
            "/v1/sessions/{id}/keepalive": {"post": {"summary": "Restart the session's TTL", "parameters": [session_id], "responses": with(common_errors(), json!({"200": ok_json("alive", json!({"$ref": "#/components/schemas/Session"})), "404": error("session_not_found")}))}},
            "/v1/cluster": {"get": {"summary": "Membership and consensus state", "responses": {"200": ok_json("the cluster as this node sees it", json!({"type": "object", "properties": {"node_id": n(), "leader_id": {"type": "integer", "nullable": true}, "ballot": {"type": "object"}, "commit_index": n(), "applied_index": n(), "revision": n(), "members": {"type": "array", "items": {"type": "object", "properties": {"id": n(), "peer_addr": {"type": "string"}, "client_addr": {"type": "string"}, "healthy": {"type": "boolean"}, "role": {"type": "string", "enum": ["voter", "learner"]}, "commit_index": n()}}}, "voters": {"type": "array", "items": n()}, "learners": {"type": "array", "items": n()}, "membership_slot": n(), "cluster_id": {"type": "string"}, "first_members": {"type": "array", "items": {"type": "object", "properties": {"id": n(), "peer_addr": {"type": "string"}}}}, "cluster_token": {"type": "string"}, "db_size_bytes": n(), "live_bytes": n(), "history_bytes": n(), "compact_revision": n()}}))}}},
            "/v1/cluster/members": {"post": {
                "summary": "Add a node as a non-voting learner, under the next id (through the log; a follower relays it to the leader)",
                "description": "Then start the node with an empty data directory and JOIN=<any member's client URL>. One change of the members at a time: while the last one has not taken effect, 409 conflict. Needs the cluster right with access control on.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["peer_addr"], "additionalProperties": false, "properties": {"peer_addr": {"type": "string", "description": "host:port of the new node's peer listener (its HOST:ACTOR_PORT)", "maxLength": 260}, "client_addr": {"type": "string", "description": "host:port of its client port", "maxLength": 260}}}}}},
                "responses": with(common_errors(), json!({"201": ok_json("added as a learner", json!({"$ref": "#/components/schemas/MemberChange"})), "409": error("conflict")})),
            }},
            "/v1/cluster/members/{id}/promote": {"post": {
                "summary": "Make a learner a voter, once it has caught up (409 conflict while it lags)",
                "parameters": [member_id()],
                "responses": with(common_errors(), json!({"200": ok_json("promoted", json!({"$ref": "#/components/schemas/MemberChange"})), "404": error("member_not_found"), "409": error("conflict")})),
            }},
            "/v1/cluster/members/{id}": {"delete": {
                "summary": "Remove a voter or a learner (a leader that removes itself hands over)",
                "parameters": [member_id()],
                "responses": with(common_errors(), json!({"200": ok_json("removed", json!({"$ref": "#/components/schemas/MemberChange"})), "404": error("member_not_found"), "409": error("conflict")})),
            }},
            "/v1/snapshot": {"get": {
                "summary": "Stream a consistent, checksummed backup of the state (docs/format-backup.md)",
                "description": "The node asked serves it, from the state it has applied; with consistency=linearizable (the default) after a read barrier, so it holds every write acknowledged before the request began. Writes go on while it streams. X-Concierge-Revision is the revision the backup holds. At most 2 backups stream from one node at once (503 beyond).",
                "parameters": [consistency.clone()],
                "responses": {"200": {"description": "the backup file, chunked", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}, "400": error("bad_request"), "503": error("no_quorum / not_ready (also: this node streams its limit of backups); retry (Retry-After)"), "504": error("timeout: the read barrier did not complete")},
            }},
            "/v1/compact": {"post": {
                "summary": "Drop the watch history below a revision (through the log, like etcd's compact)",
                "description": "Afterwards a watch from below revision answers 410 compacted. A revision above the current one, or at or below the oldest revision history holds, is 400 and changes nothing. Takes no revision.",
                "parameters": [idem.clone()],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["revision"], "additionalProperties": false, "properties": {"revision": {"type": "integer", "format": "int64", "minimum": 1}}}}}},
                "responses": with(common_errors(), json!({"200": ok_json("compacted", json!({"type": "object", "properties": {"compact_revision": n(), "revision": n()}})), "422": reused()})),
            }},
            "/v1/auth": {"get": {"summary": "Access control: whether it is on, roles, users, token ids (admin; never a secret)", "responses": {"200": ok_json("the access-control state", json!({"type": "object", "properties": {"enabled": {"type": "boolean"}, "roles": {"type": "object", "additionalProperties": {"$ref": "#/components/schemas/Role"}}, "users": {"type": "object", "additionalProperties": {"type": "object", "properties": {"roles": {"type": "array", "items": {"type": "string"}}}}}, "tokens": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "user": {"type": "string"}}}}}})), "401": error("unauthorized"), "403": error("forbidden")}}},
            "/v1/auth/enable": {"post": {"summary": "Turn access control on: creates user and role admin and answers the admin's token, once", "description": "With access control off, no token is needed; once on, only an admin token may call it (and enabling twice is 400). Every request but /health and /ready then needs Authorization: Bearer <token> (401 unauthorized without a valid one, 403 forbidden without the right).", "responses": {"201": ok_json("the admin token (shown once)", json!({"$ref": "#/components/schemas/NewToken"})), "400": error("bad_request: already enabled"), "401": error("unauthorized"), "403": error("forbidden")}}},
            "/v1/auth/disable": {"post": {"summary": "Turn access control off (admin); roles, users and tokens are kept", "responses": {"200": {"description": "off"}, "400": error("bad_request: already disabled"), "401": error("unauthorized"), "403": error("forbidden")}}},
            "/v1/auth/roles/{name}": {
                "put": {"summary": "Create or replace a role (admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Role"}}}}, "responses": {"200": {"description": "set"}, "400": error("bad_request"), "401": error("unauthorized"), "403": error("forbidden")}},
                "delete": {"summary": "Delete a role, taking it from its users (admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "deleted"}, "404": error("not_found"), "401": error("unauthorized"), "403": error("forbidden")}},
            },
            "/v1/auth/users/{name}": {
                "put": {"summary": "Create or replace a user with existing roles (admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}}], "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "additionalProperties": false, "properties": {"roles": {"type": "array", "items": {"type": "string"}}}}}}}, "responses": {"200": {"description": "set"}, "400": error("bad_request"), "401": error("unauthorized"), "403": error("forbidden")}},
                "delete": {"summary": "Delete a user and revoke its tokens (admin)", "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "deleted"}, "404": error("not_found"), "401": error("unauthorized"), "403": error("forbidden")}},
            },
            "/v1/auth/tokens": {"post": {"summary": "Make a token for a user (admin); the token is shown this once", "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["user"], "additionalProperties": false, "properties": {"user": {"type": "string"}}}}}}, "responses": {"201": ok_json("the token", json!({"$ref": "#/components/schemas/NewToken"})), "400": error("bad_request"), "401": error("unauthorized"), "403": error("forbidden")}}},
            "/v1/auth/tokens/{id}": {"delete": {"summary": "Revoke a token (admin)", "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}], "responses": {"200": {"description": "revoked"}, "404": error("not_found"), "401": error("unauthorized"), "403": error("forbidden")}}},
            "/health": {"get": {"summary": "200 while the process runs", "responses": {"200": {"description": "alive"}}}},
            "/ready": {"get": {"summary": "200 when a leader is known and this node is caught up", "responses": {"200": {"description": "ready"}, "503": error("not_ready")}}},
            "/metrics": {"get": {"summary": "Prometheus text format", "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"}}}},
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "With access control on (POST /v1/auth/enable), every request but /health and /ready: Authorization: Bearer <token>"}}, "schemas": {
            "Error": {"type": "object", "required": ["error", "message"], "properties": {"error": {"type": "string", "enum": ["bad_request", "key_not_found", "session_not_found", "version_mismatch", "too_large", "no_quorum", "not_ready", "timeout", "compacted", "idempotency_key_reused", "method_not_allowed", "request_timeout", "quota_exceeded", "not_found", "member_not_found", "conflict", "unauthorized", "forbidden", "internal"]}, "message": {"type": "string"}, "current_version": n(), "compact_revision": n()}},
            "Role": {"type": "object", "additionalProperties": false, "properties": {"perms": {"type": "array", "items": {"type": "object", "required": ["prefix", "access"], "properties": {"prefix": {"type": "string"}, "access": {"type": "string", "enum": ["read", "readwrite"]}}}}, "rights": {"type": "array", "items": {"type": "string", "enum": ["sessions", "cluster", "admin"]}}}},
            "NewToken": {"type": "object", "properties": {"id": {"type": "string"}, "token_id": {"type": "string"}, "user": {"type": "string"}, "token": {"type": "string", "description": "<id>.<secret>: send as Authorization: Bearer <token>"}}},
            "PutResult": {"type": "object", "properties": {"key": {"type": "string"}, "version": n(), "create_revision": n(), "mod_revision": n(), "session": {"type": "string", "nullable": true}}},
            "Entry": {"type": "object", "properties": {"key": {"type": "string"}, "value": {"type": "string", "format": "byte"}, "version": n(), "create_revision": n(), "mod_revision": n(), "session": {"type": "string", "nullable": true}}},
            "Session": {"type": "object", "properties": {"id": {"type": "string"}, "ttl_ms": n()}},
            "MemberChange": {"type": "object", "properties": {"id": n(), "slot": {"type": "integer", "format": "int64", "description": "the log slot that chose the change; it governs the slots from slot + 64 on"}, "role": {"type": "string", "enum": ["voter", "learner"]}, "removed": {"type": "boolean"}, "peer_addr": {"type": "string"}, "client_addr": {"type": "string"}}},
            "Compare": {"type": "object", "required": ["key"], "additionalProperties": false, "description": "exactly one of version, exists, value", "properties": {"key": key_string(), "version": n(), "exists": {"type": "boolean"}, "value": {"type": "string", "format": "byte"}}},
            "TxnOp": {"type": "object", "required": ["op", "key"], "additionalProperties": false, "description": "put takes value (and session); delete and get take only key", "properties": {"op": {"type": "string", "enum": ["put", "delete", "get"]}, "key": key_string(), "value": {"type": "string", "format": "byte"}, "session": {"type": "string", "nullable": true}}},
        }},
    })
}

/// Adds the headers every answer carries (API.md, General) to each response of `doc`,
/// and a key's headers to its GET/HEAD answer.
fn with_response_headers(mut doc: Value) -> Value {
    let int = json!({"type": "integer", "format": "int64", "minimum": 0});
    let common = json!({
        "X-Concierge-Revision": {"description": "the cluster revision the answer reflects", "schema": int},
        "X-Concierge-Leader": {"description": "the leader's node id, or empty when none is known", "schema": {"type": "string"}},
    });
    let key_headers = json!({
        "ETag": {"description": "\"<version>\"", "schema": {"type": "string"}},
        "X-Concierge-Version": {"schema": int},
        "X-Concierge-Create-Revision": {"schema": int},
        "X-Concierge-Mod-Revision": {"schema": int},
        "X-Concierge-Session": {"description": "only for ephemeral keys", "schema": {"type": "string"}},
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return doc;
    };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            let Some(responses) = op["responses"].as_object_mut() else {
                continue;
            };
            for (status, response) in responses.iter_mut() {
                let mut headers = common.clone();
                if path == "/v1/keys/{key}" && method == "get" && status == "200" {
                    headers = with(headers, key_headers.clone());
                }
                if status == "503" {
                    headers = with(
                        headers,
                        json!({"Retry-After": {"description": "seconds", "schema": int}}),
                    );
                }
                if status == "405" {
                    headers = with(headers, json!({"Allow": {"schema": {"type": "string"}}}));
                }
                response["headers"] = headers;
            }
        }
    }
    doc
}

/// `GET /v1/openapi.json`.
/// Any authenticated caller may read it (`_caller`).
pub async fn openapi(_caller: crate::http::auth::Caller) -> HttpResponse {
    HttpResponse::Ok().json(with_response_headers(document()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_route() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/v1/keys/{key}",
            "/v1/keys",
            "/v1/txn",
            "/v1/watch",
            "/v1/sessions",
            "/v1/sessions/{id}",
            "/v1/sessions/{id}/keepalive",
            "/v1/cluster",
            "/health",
            "/ready",
            "/metrics",
            "/v1/openapi.json",
            "/v1/snapshot",
            "/v1/compact",
            "/v1/cluster/members",
            "/v1/cluster/members/{id}/promote",
            "/v1/cluster/members/{id}",
            "/v1/auth",
            "/v1/auth/enable",
            "/v1/auth/disable",
            "/v1/auth/roles/{name}",
            "/v1/auth/users/{name}",
            "/v1/auth/tokens",
            "/v1/auth/tokens/{id}",
        ] {
            assert!(paths.contains_key(p), "{p}");
        }
        assert_eq!(doc["openapi"], "3.0.3");
    }

    #[test]
    fn every_response_documents_the_revision_and_leader_headers() {
        let doc = with_response_headers(document());
        let mut seen = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    let h = &response["headers"];
                    assert!(
                        h["X-Concierge-Revision"].is_object(),
                        "{method} {path} {status}"
                    );
                    assert!(
                        h["X-Concierge-Leader"].is_object(),
                        "{method} {path} {status}"
                    );
                    seen += 1;
                }
            }
        }
        assert!(seen > 40, "{seen}");
        let get = &doc["paths"]["/v1/keys/{key}"]["get"]["responses"]["200"]["headers"];
        assert!(get["ETag"].is_object() && get["X-Concierge-Mod-Revision"].is_object());
    }

    #[test]
    fn every_operation_taking_an_idempotency_key_documents_the_422() {
        let doc = document();
        let mut seen = 0;
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let params = op["parameters"].as_array().cloned().unwrap_or_default();
                if params.iter().any(|p| p["name"] == "Idempotency-Key") {
                    seen += 1;
                    assert!(op["responses"]["422"].is_object(), "{method} {path}");
                }
            }
        }
        assert_eq!(seen, 6);
    }
}
