//! How results are printed: raw values, aligned tables for people, JSON for scripts.
//!
//! In JSON a value appears twice: `value` as UTF-8 text (null when it is not UTF-8)
//! and `value_base64`, exact for any bytes. A failed write to stdout (a closed pipe) is
//! an error of the command, never a panic.

use super::exit::Failure;
use base64::Engine;
use concierge_client::{Entry, Event, EventKind};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};

/// Writes bytes to stdout and flushes them.
pub fn write(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::error(format!("writing to stdout: {e}")))
}

/// Writes one line.
pub fn line(text: &str) -> Result<(), Failure> {
    write(format!("{text}\n").as_bytes())
}

/// Writes a JSON document on one line.
pub fn json_line(value: &Value) -> Result<(), Failure> {
    line(&value.to_string())
}

/// Writes a value exactly; on a terminal, ends it with a newline if it has none.
pub fn raw_value(value: &[u8]) -> Result<(), Failure> {
    write(value)?;
    if std::io::stdout().is_terminal() && !value.ends_with(b"\n") {
        write(b"\n")?;
    }
    Ok(())
}

/// The JSON fields of a value.
pub fn value_fields(value: Option<&[u8]>) -> (Value, Value) {
    match value {
        None => (Value::Null, Value::Null),
        Some(v) => (
            std::str::from_utf8(v).map_or(Value::Null, |s| Value::String(s.to_string())),
            Value::String(base64::engine::general_purpose::STANDARD.encode(v)),
        ),
    }
}

/// An entry (listing, transaction get) as JSON.
pub fn entry_json(e: &Entry) -> Value {
    let fields = RecordFields {
        key: &e.key,
        value: e.value.as_deref(),
        version: e.version,
        create_revision: e.create_revision,
        mod_revision: e.mod_revision,
        session: e.session.as_deref(),
    };
    fields.json()
}

/// A watch event as JSON: an entry's fields and its `type` (`put`, `delete`).
pub fn event_json(e: &Event) -> Value {
    let fields = RecordFields {
        key: &e.key,
        value: e.value.as_deref(),
        version: e.version,
        create_revision: e.create_revision,
        mod_revision: e.mod_revision,
        session: e.session.as_deref(),
    };
    let mut json = fields.json();
    json["type"] = Value::from(event_kind(e.kind));
    json
}

/// The name of an event's kind, as the API spells it.
pub fn event_kind(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Put => "put",
        EventKind::Delete => "delete",
    }
}

/// The fields a key's record shows, wherever it comes from (an entry, an event).
struct RecordFields<'a> {
    key: &'a str,
    value: Option<&'a [u8]>,
    version: u64,
    create_revision: u64,
    mod_revision: u64,
    session: Option<&'a str>,
}

impl RecordFields<'_> {
    fn json(&self) -> Value {
        let (text, b64) = value_fields(self.value);
        json!({
            "key": self.key,
            "value": text,
            "value_base64": b64,
            "version": self.version,
            "create_revision": self.create_revision,
            "mod_revision": self.mod_revision,
            "session": self.session,
        })
    }
}

/// A value shortened for a table cell: text up to `max` characters, else its size.
pub fn cell(value: Option<&[u8]>, max: usize) -> String {
    let Some(v) = value else {
        return String::new();
    };
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(char::is_control) => {
            if s.chars().count() > max {
                let cut: String = s.chars().take(max.saturating_sub(3)).collect();
                format!("{cut}...")
            } else {
                s.to_string()
            }
        }
        _ => format!("<{} bytes>", v.len()),
    }
}

/// Renders a table: a header row and aligned columns, two spaces apart, no trailing
/// spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut text = String::new();
        for (i, (c, w)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(c);
            if i + 1 < row.len() {
                text.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_cells_shorten_values() {
        let t = table(
            &["KEY", "VERSION"],
            &[
                vec!["a/long-key".into(), "1".into()],
                vec!["b".into(), "12".into()],
            ],
        );
        assert_eq!(t, "KEY         VERSION\na/long-key  1\nb           12\n");
        assert_eq!(cell(Some(b"hello world"), 8), "hello...");
        assert_eq!(cell(Some(&[0xff, 0]), 8), "<2 bytes>");
        assert_eq!(cell(Some(b"a\nb"), 8), "<3 bytes>");
        assert_eq!(value_fields(Some(&[0xff])), (Value::Null, json!("/w==")));
    }

    #[test]
    fn an_event_prints_as_its_entry_with_its_type() {
        let event = Event {
            kind: EventKind::Put,
            key: "app/a".into(),
            value: Some(bytes::Bytes::from_static(b"one")),
            version: 2,
            create_revision: 1,
            mod_revision: 4,
            session: Some("7".into()),
        };
        assert_eq!(
            event_json(&event).to_string(),
            r#"{"create_revision":1,"key":"app/a","mod_revision":4,"session":"7","type":"put","value":"one","value_base64":"b25l","version":2}"#
        );
        let entry = Entry {
            key: event.key.clone(),
            value: None,
            version: 2,
            create_revision: 1,
            mod_revision: 4,
            session: None,
        };
        assert_eq!(
            entry_json(&entry).to_string(),
            r#"{"create_revision":1,"key":"app/a","mod_revision":4,"session":null,"value":null,"value_base64":null,"version":2}"#
        );
        let deleted = Event {
            kind: EventKind::Delete,
            value: None,
            ..event
        };
        assert_eq!(event_json(&deleted)["type"], "delete");
    }
}
