//! A Server-Sent Events parser for watch streams: bytes in, frames out.
//!
//! A frame is a run of lines ended by a blank line (`\n\n`, or `\r\n` line ends):
//! `id: N`, `event: NAME`, `data: TEXT` (several data lines join with `\n`), and
//! `: comment` lines. A frame of comments alone is a [`Frame::Comment`].
//!
//! Invariant: the buffer never holds more than `frame_bytes_max` bytes of an
//! unfinished frame; past that, and on an `id` that is not a number, the input is
//! refused as an error (never a panic, never unbounded memory).

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    Event {
        id: Option<u64>,
        event: Option<String>,
        data: String,
    },
    Comment(String),
}

/// The parser's state: bytes not yet forming a whole frame.
#[derive(Debug)]
pub(crate) struct Parser {
    buf: Vec<u8>,
    /// How far `buf` was searched for a frame's end without finding one.
    scanned: usize,
    frame_bytes_max: usize,
}

impl Parser {
    pub fn new(frame_bytes_max: usize) -> Parser {
        Parser {
            buf: Vec::new(),
            scanned: 0,
            frame_bytes_max,
        }
    }

    /// Adds bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Drops what was buffered (a new connection starts clean).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.scanned = 0;
    }

    /// The next whole frame, None when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, String> {
        // A separator is at most 3 bytes: look again from just before the last search.
        let from = self.scanned.saturating_sub(3);
        let Some((end, skip)) = frame_end(&self.buf[from..]).map(|(e, s)| (e + from, s)) else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.frame_bytes_max {
                return Err(format!(
                    "an event frame exceeds {} bytes",
                    self.frame_bytes_max
                ));
            }
            return Ok(None);
        };
        let raw: Vec<u8> = self.buf.drain(..end + skip).take(end).collect();
        self.scanned = 0;
        let text = String::from_utf8(raw).map_err(|_| "an event frame is not UTF-8".to_string())?;
        parse_frame(&text).map(Some)
    }
}

/// Where the first frame ends: (its length, the separator's length).
fn frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some((i, 2));
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some((i, 3));
            }
        }
        i += 1;
    }
    None
}

fn parse_frame(text: &str) -> Result<Frame, String> {
    let mut id = None;
    let mut event = None;
    let mut data: Option<String> = None;
    let mut comments = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(comment) = line.strip_prefix(':') {
            comments.push(comment.trim_start().to_string());
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "id" => {
                id = Some(
                    value
                        .trim()
                        .parse::<u64>()
                        .map_err(|_| format!("event id {value:?} is not a revision"))?,
                )
            }
            "event" => event = Some(value.to_string()),
            "data" => match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            // Unknown fields (`retry`, empty lines) are ignored, as SSE says.
            _ => {}
        }
    }
    match data {
        Some(data) => Ok(Frame::Event { id, event, data }),
        None if id.is_none() && event.is_none() => Ok(Frame::Comment(comments.join("\n"))),
        None => Err("an event frame without data".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_blank_lines_across_chunks() {
        let mut p = Parser::new(1 << 10);
        p.push(b"data: {\"a\":1}\n\nid: 7\nda");
        assert_eq!(
            p.next_frame(),
            Ok(Some(Frame::Event {
                id: None,
                event: None,
                data: "{\"a\":1}".into()
            }))
        );
        assert_eq!(p.next_frame(), Ok(None));
        p.push(b"ta: x\n\n: progress 9\n\nevent: error\r\ndata: y\r\n\r\n");
        assert_eq!(
            p.next_frame(),
            Ok(Some(Frame::Event {
                id: Some(7),
                event: None,
                data: "x".into()
            }))
        );
        assert_eq!(
            p.next_frame(),
            Ok(Some(Frame::Comment("progress 9".into())))
        );
        assert_eq!(
            p.next_frame(),
            Ok(Some(Frame::Event {
                id: None,
                event: Some("error".into()),
                data: "y".into()
            }))
        );
        assert_eq!(p.next_frame(), Ok(None));
    }

    #[test]
    fn bad_ids_and_oversized_frames_are_errors() {
        let mut p = Parser::new(16);
        p.push(b"id: x\ndata: 1\n\n");
        assert!(p.next_frame().is_err());
        let mut p = Parser::new(16);
        p.push(&[b'a'; 17]);
        assert!(p.next_frame().is_err());
    }
}
