//! Writes a table from entries given in table order.
//!
//! Data blocks are cut once they reach `block_bytes`. A block's index entry is
//! written when the next block's first key is known, so its separator can be the
//! shortest user key between the two (LevelDB's `FindShortestSeparator`); the last
//! block's separator is its exact last `(key, seqno)`, which therefore equals the
//! table's largest entry. `finish` appends the filter, meta and index blocks and the
//! footer (layout in `docs/format-sstable.md`), then fsyncs.
//!
//! After any I/O error the builder is poisoned: every later call fails and the
//! caller must discard the file.

use crate::block_builder::BlockBuilder;
use crate::bloom::BloomBuilder;
use crate::entry::{compare, Kind};
use crate::error::Error;
use crate::format::{
    block_crc, BlockKind, Handle, BLOCK_BYTES_MAX, BLOCK_TRAILER_LEN, BLOOM_BITS_PER_KEY_MAX,
    FOOTER_LEN, FORMAT_VERSION, INDEX_BYTES_MAX, KEY_BYTES_MAX, MAGIC, RESTART_INTERVAL_MAX,
    VALUE_BYTES_MAX,
};
use crate::info::TableInfo;
use std::cmp::Ordering;
use vfs::FileWrite;

/// Bytes buffered before one `write_all` to the file.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// How a table is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// A data block is cut once its entries reach this many bytes (default 4096).
    pub block_bytes: usize,
    /// Every this many entries a key is stored whole (default 16).
    pub restart_interval: usize,
    /// Bloom filter bits per distinct user key; 0 writes no filter (default 10).
    pub bloom_bits_per_key: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            block_bytes: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
        }
    }
}

impl BuildOptions {
    /// Checks every option is within the format's limits; `Err` says which is not.
    pub fn validate(&self) -> Result<(), String> {
        if self.block_bytes == 0 || self.block_bytes > BLOCK_BYTES_MAX {
            return Err(format!(
                "block_bytes {} not in 1..={BLOCK_BYTES_MAX}",
                self.block_bytes
            ));
        }
        if self.restart_interval == 0 || self.restart_interval > RESTART_INTERVAL_MAX {
            return Err(format!(
                "restart_interval {} not in 1..={RESTART_INTERVAL_MAX}",
                self.restart_interval
            ));
        }
        if self.bloom_bits_per_key > BLOOM_BITS_PER_KEY_MAX {
            return Err(format!(
                "bloom_bits_per_key {} exceeds {BLOOM_BITS_PER_KEY_MAX}",
                self.bloom_bits_per_key
            ));
        }
        Ok(())
    }
}

/// Writes one table. Add entries in table order, then `finish`.
#[derive(Debug)]
pub struct TableBuilder {
    file: Box<dyn FileWrite>,
    opts: BuildOptions,
    data: BlockBuilder,
    index: BlockBuilder,
    bloom: BloomBuilder,
    /// Bytes not yet handed to the file.
    out: Vec<u8>,
    /// File offset of the next block (written plus buffered bytes).
    offset: u64,
    /// The last data block, waiting for the next key to choose its separator.
    pending: Option<Handle>,
    last_key: Vec<u8>,
    last_seqno: u64,
    separator: Vec<u8>,
    entries: u64,
    data_blocks: u64,
    smallest_key: Vec<u8>,
    smallest_seqno: u64,
    largest_seqno: u64,
    poisoned: bool,
}

impl TableBuilder {
    /// A builder writing to `file` (empty, freshly created).
    ///
    /// # Panics
    /// If `opts` fails [`BuildOptions::validate`]: options are configuration, checked
    /// where they are read.
    pub fn new(file: Box<dyn FileWrite>, opts: BuildOptions) -> TableBuilder {
        if let Err(reason) = opts.validate() {
            panic!("invalid sstable BuildOptions: {reason}");
        }
        TableBuilder {
            file,
            opts,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            bloom: BloomBuilder::default(),
            out: Vec::with_capacity(WRITE_BUFFER_BYTES + opts.block_bytes),
            offset: 0,
            pending: None,
            last_key: Vec::new(),
            last_seqno: 0,
            separator: Vec::new(),
            entries: 0,
            data_blocks: 0,
            smallest_key: Vec::new(),
            smallest_seqno: u64::MAX,
            largest_seqno: 0,
            poisoned: false,
        }
    }

    /// Adds one entry. `(key, seqno)` must come strictly after the previous entry in
    /// table order (key ascending, seqno descending), else `Error::OutOfOrder`.
    pub fn add(&mut self, key: &[u8], seqno: u64, kind: Kind, value: &[u8]) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if key.len() > KEY_BYTES_MAX {
            return Err(too_large("key", key.len(), KEY_BYTES_MAX));
        }
        if value.len() > VALUE_BYTES_MAX {
            return Err(too_large("value", value.len(), VALUE_BYTES_MAX));
        }
        let new_key = self.entries == 0 || key != self.last_key.as_slice();
        if self.entries > 0
            && compare(key, seqno, &self.last_key, self.last_seqno) != Ordering::Greater
        {
            return Err(Error::OutOfOrder {
                prev_key: self.last_key.clone(),
                prev_seqno: self.last_seqno,
                key: key.to_vec(),
                seqno,
            });
        }
        if let Some(handle) = self.pending.take() {
            let sep_seqno =
                shortest_separator(&mut self.separator, &self.last_key, self.last_seqno, key);
            if let Err(e) = add_index_entry(&mut self.index, &self.separator, sep_seqno, handle) {
                self.poisoned = true;
                return Err(e);
            }
        }
        if self.entries == 0 {
            self.smallest_key = key.to_vec();
        }
        if new_key {
            self.bloom.add_key(key);
        }
        self.data.add(key, seqno, kind, value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.last_seqno = seqno;
        self.entries += 1;
        self.smallest_seqno = self.smallest_seqno.min(seqno);
        self.largest_seqno = self.largest_seqno.max(seqno);
        if self.data.size_estimate() >= self.opts.block_bytes {
            self.flush_data_block()?;
        }
        Ok(())
    }

    /// About how large the file would be if finished now, in bytes.
    pub fn estimated_bytes(&self) -> u64 {
        let pending = self.data.size_estimate()
            + self.index.size_estimate()
            + self.bloom.size_estimate(self.opts.bloom_bits_per_key)
            + FOOTER_LEN;
        self.offset + pending as u64
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Writes the last data block, filter, meta, index and footer, then fsyncs the
    /// file. The caller fsyncs the directory before trusting the file's name.
    pub fn finish(mut self) -> Result<TableInfo, Error> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        if !self.data.is_empty() {
            self.flush_data_block()?;
        }
        if let Some(handle) = self.pending.take() {
            add_index_entry(&mut self.index, &self.last_key, self.last_seqno, handle)?;
        }
        let filter = self.bloom.finish(self.opts.bloom_bits_per_key);
        let filter_handle = self.append_block(&filter, BlockKind::Filter)?;
        let meta = self.encode_meta();
        let meta_handle = self.append_block(&meta, BlockKind::Meta)?;
        let mut index = std::mem::replace(&mut self.index, BlockBuilder::new(1));
        let index_handle = self.append_block(index.finish(), BlockKind::Index)?;

        let footer_at = self.out.len();
        index_handle.encode_to(&mut self.out);
        filter_handle.encode_to(&mut self.out);
        meta_handle.encode_to(&mut self.out);
        self.out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        let crc = crc32fast::hash(self.out.get(footer_at..).unwrap_or_default());
        self.out.extend_from_slice(&crc.to_le_bytes());
        self.out.extend_from_slice(&MAGIC.to_le_bytes());
        self.offset += FOOTER_LEN as u64;
        debug_assert_eq!(self.out.len() - footer_at, FOOTER_LEN);

        self.flush_out()?;
        if let Err(e) = self.file.sync_data() {
            self.poisoned = true;
            return Err(Error::io("syncing the table file", e));
        }
        let entries = self.entries;
        Ok(TableInfo {
            entries,
            file_bytes: self.offset,
            smallest_key: self.smallest_key,
            largest_key: if entries > 0 {
                self.last_key
            } else {
                Vec::new()
            },
            smallest_seqno: if entries > 0 { self.smallest_seqno } else { 0 },
            largest_seqno: self.largest_seqno,
        })
    }

    fn encode_meta(&self) -> Vec<u8> {
        let (smallest_seqno, largest_key) = if self.entries > 0 {
            (self.smallest_seqno, self.last_key.as_slice())
        } else {
            (0, &[][..])
        };
        let mut meta = Vec::with_capacity(40 + self.smallest_key.len() + largest_key.len());
        meta.extend_from_slice(&self.entries.to_le_bytes());
        meta.extend_from_slice(&self.data_blocks.to_le_bytes());
        meta.extend_from_slice(&smallest_seqno.to_le_bytes());
        meta.extend_from_slice(&self.largest_seqno.to_le_bytes());
        for key in [self.smallest_key.as_slice(), largest_key] {
            // Keys are at most KEY_BYTES_MAX, so their lengths fit a u32.
            meta.extend_from_slice(&(key.len() as u32).to_le_bytes());
            meta.extend_from_slice(key);
        }
        meta
    }

    fn flush_data_block(&mut self) -> Result<(), Error> {
        let mut data = std::mem::replace(&mut self.data, BlockBuilder::new(1));
        let result = self.append_block(data.finish(), BlockKind::Data);
        data.reset();
        self.data = data;
        let handle = result?;
        self.pending = Some(handle);
        self.data_blocks += 1;
        Ok(())
    }

    /// Buffers `contents` and its trailer; writes the buffer out when it is full.
    fn append_block(&mut self, contents: &[u8], kind: BlockKind) -> Result<Handle, Error> {
        let len = u32::try_from(contents.len())
            .map_err(|_| too_large("block", contents.len(), u32::MAX as usize))?;
        let handle = Handle {
            offset: self.offset,
            len,
        };
        self.out.extend_from_slice(contents);
        self.out.push(kind as u8);
        self.out
            .extend_from_slice(&block_crc(contents, kind as u8).to_le_bytes());
        self.offset += (contents.len() + BLOCK_TRAILER_LEN) as u64;
        if self.out.len() >= WRITE_BUFFER_BYTES {
            self.flush_out()?;
        }
        Ok(handle)
    }

    fn flush_out(&mut self) -> Result<(), Error> {
        if let Err(e) = self.file.write_all(&self.out) {
            self.poisoned = true;
            return Err(Error::io("writing the table file", e));
        }
        self.out.clear();
        Ok(())
    }
}

fn too_large(what: &'static str, len: usize, max: usize) -> Error {
    Error::TooLarge {
        what,
        len: len as u64,
        max: max as u64,
    }
}

fn add_index_entry(
    index: &mut BlockBuilder,
    key: &[u8],
    seqno: u64,
    handle: Handle,
) -> Result<(), Error> {
    let grown = index.size_estimate() + key.len() + 32;
    if grown > INDEX_BYTES_MAX {
        return Err(too_large("index block", grown, INDEX_BYTES_MAX));
    }
    index.add(key, seqno, Kind::Put, &handle.to_bytes());
    Ok(())
}

/// Writes into `out` a user key `s` with `last <= s < next` (bytewise), as short as
/// LevelDB's rule finds, and returns the seqno that goes with it so that
/// `(last, last_seqno) <= (s, seqno) < (next, any)` in table order.
fn shortest_separator(out: &mut Vec<u8>, last: &[u8], last_seqno: u64, next: &[u8]) -> u64 {
    out.clear();
    let n = last.iter().zip(next).take_while(|(a, b)| a == b).count();
    if let (Some(&a), Some(&b)) = (last.get(n), next.get(n)) {
        if a < 0xff && a + 1 < b {
            out.extend_from_slice(last.get(..n).unwrap_or_default());
            out.push(a + 1);
            // The smallest entry of user key `s`, still after every version of `last`.
            return u64::MAX;
        }
    }
    out.extend_from_slice(last);
    last_seqno
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_is_short_and_between() {
        let mut out = Vec::new();
        assert_eq!(shortest_separator(&mut out, b"abc1", 7, b"abc9"), u64::MAX);
        assert_eq!(out, b"abc2");
        assert_eq!(shortest_separator(&mut out, b"abc", 7, b"abcd"), 7);
        assert_eq!(out, b"abc");
        assert_eq!(shortest_separator(&mut out, b"ab1", 7, b"ab2"), 7);
        assert_eq!(out, b"ab1");
        assert_eq!(shortest_separator(&mut out, b"k", 9, b"k"), 9);
        assert_eq!(out, b"k");
        assert_eq!(shortest_separator(&mut out, b"a\xff", 1, b"b"), 1);
        assert_eq!(out, b"a\xff");
    }

    #[test]
    fn options_are_validated() {
        assert!(BuildOptions::default().validate().is_ok());
        assert!(BuildOptions {
            block_bytes: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(BuildOptions {
            restart_interval: 0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(BuildOptions {
            bloom_bits_per_key: 65,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
