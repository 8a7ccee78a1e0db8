//! `TableInfo`: what a table holds (entry count, key and seqno range, file size).
//!
//! Filled by the builder when it finishes a table and by `open` from the meta block;
//! a plain value that depends on nothing else in the crate, so both can name it
//! without importing the reader.

/// What a table holds, from its meta block (or from the builder that wrote it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// Number of entries (versions), tombstones included.
    pub entries: u64,
    /// Length of the whole file.
    pub file_bytes: u64,
    /// The first entry's user key (empty for an empty table).
    pub smallest_key: Vec<u8>,
    /// The last entry's user key (empty for an empty table).
    pub largest_key: Vec<u8>,
    /// The smallest seqno of any entry (0 for an empty table).
    pub smallest_seqno: u64,
    /// The largest seqno of any entry (0 for an empty table).
    pub largest_seqno: u64,
}
