//! `concierge txn`: runs a transaction given as the JSON document of API.md
//! (`{"if": [...], "then": [...], "else": [...]}`), from an argument, `-` or `--file`.
//!
//! Values are base64 (`"value"`) as in the API, or UTF-8 text (`"text"`) for
//! convenience. Every field is checked: an unknown field or op is a usage error (exit
//! 2), never ignored. Exit 0 when the compares held, 4 when the `else` branch ran.

use super::conn::Conn;
use super::exit::{Failure, CONDITION, OK};
use super::{input, output};
use base64::Engine;
use bytes::Bytes;
use clap::Args;
use concierge_client::{Compare, Op, Txn, TxnResult};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

/// `concierge txn (DOC | - | --file PATH)`
#[derive(Args, Debug)]
pub struct TxnArgs {
    /// The transaction as JSON; `-` reads it from stdin.
    pub doc: Option<String>,
    /// Read the transaction from this file.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub conn: Conn,
}

pub async fn txn(args: TxnArgs) -> Result<u8, Failure> {
    let doc = input::read(args.doc.as_deref(), args.file.as_deref(), "transaction")?;
    let txn = parse(&doc).map_err(|m| Failure::usage(format!("the transaction: {m}")))?;
    let client = args.conn.client()?;
    let r = client.txn(&txn).await?;
    if args.conn.json {
        let results: Vec<Value> = r.results.iter().map(result_json).collect();
        output::json_line(&json!({
            "succeeded": r.succeeded,
            "revision": r.revision,
            "results": results,
        }))?;
    } else {
        let branch = if r.succeeded {
            "succeeded (then)"
        } else {
            "failed (else)"
        };
        output::line(&format!("{branch} revision {}", r.revision))?;
        for result in &r.results {
            output::line(&result_text(result))?;
        }
    }
    Ok(if r.succeeded { OK } else { CONDITION })
}

fn result_json(r: &TxnResult) -> Value {
    match r {
        TxnResult::Put(p) => json!({
            "op": "put", "key": p.key, "version": p.version,
            "create_revision": p.create_revision, "mod_revision": p.mod_revision,
            "session": p.session,
        }),
        TxnResult::Deleted(n) => json!({"op": "delete", "deleted": n}),
        TxnResult::Get(None) => json!({"op": "get", "entry": null}),
        TxnResult::Get(Some(e)) => json!({"op": "get", "entry": output::entry_json(e)}),
    }
}

fn result_text(r: &TxnResult) -> String {
    match r {
        TxnResult::Put(p) => format!("put {} version {}", p.key, p.version),
        TxnResult::Deleted(n) => format!("delete {n}"),
        TxnResult::Get(None) => "get (absent)".to_string(),
        TxnResult::Get(Some(e)) => format!(
            "get {} version {} {}",
            e.key,
            e.version,
            output::cell(e.value.as_deref(), 60)
        ),
    }
}

/// Parses the document into a [`Txn`].
pub fn parse(doc: &[u8]) -> Result<Txn, String> {
    let v: Value = serde_json::from_slice(doc).map_err(|e| format!("not JSON: {e}"))?;
    let top = v.as_object().ok_or("not a JSON object")?;
    only(top, &["if", "then", "else"], "the document")?;
    let list = |name: &str| -> Result<Vec<Value>, String> {
        match top.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(format!("{name:?} is not an array")),
        }
    };
    let mut txn = Txn::new();
    for (i, c) in list("if")?.iter().enumerate() {
        txn.compares
            .push(compare(c).map_err(|m| format!("if[{i}]: {m}"))?);
    }
    for (i, o) in list("then")?.iter().enumerate() {
        txn.then.push(op(o).map_err(|m| format!("then[{i}]: {m}"))?);
    }
    for (i, o) in list("else")?.iter().enumerate() {
        txn.otherwise
            .push(op(o).map_err(|m| format!("else[{i}]: {m}"))?);
    }
    Ok(txn)
}

fn only(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{what} has an unknown field {k:?}")),
        None => Ok(()),
    }
}

fn key_of(obj: &Map<String, Value>) -> Result<String, String> {
    match obj.get("key") {
        Some(Value::String(k)) => Ok(k.clone()),
        _ => Err("\"key\" must be a string".into()),
    }
}

/// The value of `value` (base64) or `text` (UTF-8); None when neither is present.
fn value_of(obj: &Map<String, Value>) -> Result<Option<Bytes>, String> {
    match (obj.get("value"), obj.get("text")) {
        (Some(_), Some(_)) => Err("give \"value\" (base64) or \"text\", not both".into()),
        (Some(Value::String(b)), None) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map(|v| Some(Bytes::from(v)))
            .map_err(|e| format!("\"value\" is not base64 ({e}); use \"text\" for plain text")),
        (None, Some(Value::String(t))) => Ok(Some(Bytes::from(t.clone()))),
        (None, None) => Ok(None),
        _ => Err("\"value\" and \"text\" must be strings".into()),
    }
}

fn compare(c: &Value) -> Result<Compare, String> {
    let obj = c.as_object().ok_or("not an object")?;
    only(
        obj,
        &["key", "version", "exists", "value", "text"],
        "a compare",
    )?;
    let key = key_of(obj)?;
    let value = value_of(obj)?;
    match (obj.get("version"), obj.get("exists"), value) {
        (Some(v), None, None) => {
            let version = v.as_u64().ok_or("\"version\" must be a whole number")?;
            Ok(Compare::version(key, version))
        }
        (None, Some(Value::Bool(true)), None) => Ok(Compare::exists(key)),
        (None, Some(Value::Bool(false)), None) => Ok(Compare::absent(key)),
        (None, Some(_), None) => Err("\"exists\" must be true or false".into()),
        (None, None, Some(value)) => Ok(Compare::value(key, value)),
        _ => {
            Err("a compare needs exactly one of \"version\", \"exists\", \"value\"/\"text\"".into())
        }
    }
}

fn op(o: &Value) -> Result<Op, String> {
    let obj = o.as_object().ok_or("not an object")?;
    let key = key_of(obj)?;
    match obj.get("op").and_then(Value::as_str) {
        Some("put") => {
            only(obj, &["op", "key", "value", "text", "session"], "a put")?;
            let value = value_of(obj)?.ok_or("a put needs \"value\" (base64) or \"text\"")?;
            match obj.get("session") {
                None | Some(Value::Null) => Ok(Op::put(key, value)),
                Some(Value::String(s)) => Ok(Op::put_owned(key, value, s)),
                Some(_) => Err("\"session\" must be a string or null".into()),
            }
        }
        Some("delete") => {
            only(obj, &["op", "key"], "a delete")?;
            Ok(Op::delete(key))
        }
        Some("get") => {
            only(obj, &["op", "key"], "a get")?;
            Ok(Op::get(key))
        }
        _ => Err("\"op\" must be \"put\", \"delete\" or \"get\"".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_document_parses_and_mistakes_are_refused() {
        let t = parse(
            br#"{"if": [{"key": "a", "version": 3}, {"key": "b", "exists": false},
                        {"key": "c", "value": "aGk="}],
                 "then": [{"op": "put", "key": "a", "value": "aGk=", "session": null},
                          {"op": "delete", "key": "b"}, {"op": "get", "key": "c"}],
                 "else": [{"op": "put", "key": "d", "text": "hi", "session": "s1"}]}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            t,
            Txn::new()
                .when(Compare::version("a", 3))
                .when(Compare::absent("b"))
                .when(Compare::value("c", "hi"))
                .then(Op::put("a", "hi"))
                .then(Op::delete("b"))
                .then(Op::get("c"))
                .otherwise(Op::put_owned("d", "hi", "s1"))
        );
        for bad in [
            &br#"[]"#[..],
            br#"{"iff": []}"#,
            br#"{"if": [{"key": "a"}]}"#,
            br#"{"if": [{"key": "a", "version": 1, "exists": true}]}"#,
            br#"{"then": [{"op": "put", "key": "a"}]}"#,
            br#"{"then": [{"op": "put", "key": "a", "value": "not base64!"}]}"#,
            br#"{"then": [{"op": "get", "key": "a", "value": "aGk="}]}"#,
            br#"{"then": [{"op": "range", "key": "a"}]}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
