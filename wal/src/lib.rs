//! A segmented, checksummed, group-committed append-only log.
