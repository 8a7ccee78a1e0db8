//! Immutable sorted tables: prefix-compressed blocks, index, bloom filter, checksummed, read through mmap.
