//! A file with a layer in front of it: the layer changes what some of the file's
//! calls do, and [`Layered`] forwards every other call to the file beneath.
//!
//! Pacing write-back (`WriteBack`), holding writes to a byte rate (storage's
//! `RateLimited`) and stalling syncs (`SlowSyncFs`) each change one or two calls of
//! [`FileWrite`]. Written as layers, each states only what it changes; the forwarding
//! of the rest is written once, here, so a call added to `FileWrite` later cannot be
//! silently dropped by a wrapper that forgot it (its default would answer instead of
//! the real file).
//!
//! Invariant: a layer sees every `write_all`, `sync_data` and `set_len` of the file,
//! in order, and nothing reaches the file beneath except through it or [`Layered`].

use crate::FileWrite;
use std::fmt::Debug;
use std::io;

/// What a layer changes; each call gets the file beneath, and by default just passes
/// the call on.
pub trait Layer: Send + Sync + Debug {
    /// Appends `buf` through the layer.
    fn write_all(&mut self, file: &mut dyn FileWrite, buf: &[u8]) -> io::Result<()> {
        file.write_all(buf)
    }
    /// Syncs through the layer.
    fn sync_data(&mut self, file: &mut dyn FileWrite) -> io::Result<()> {
        file.sync_data()
    }
    /// Cuts the file to `len` through the layer.
    fn set_len(&mut self, file: &mut dyn FileWrite, len: u64) -> io::Result<()> {
        file.set_len(len)
    }
}

/// `file` seen through `layer`.
#[derive(Debug)]
pub struct Layered<L> {
    file: Box<dyn FileWrite>,
    layer: L,
}

impl<L: Layer> Layered<L> {
    /// Puts `layer` in front of `file`.
    pub fn new(file: Box<dyn FileWrite>, layer: L) -> Layered<L> {
        Layered { file, layer }
    }

    /// The layer, to read or reset what it counts.
    pub fn layer_mut(&mut self) -> &mut L {
        &mut self.layer
    }
}

impl<L: Layer> FileWrite for Layered<L> {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.layer.write_all(self.file.as_mut(), buf)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.layer.sync_data(self.file.as_mut())
    }
    fn len(&self) -> u64 {
        self.file.len()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.layer.set_len(self.file.as_mut(), len)
    }
    fn rewrite(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        self.file.rewrite(offset, buf)
    }
    fn preallocate(&mut self, bytes: u64) -> io::Result<()> {
        self.file.preallocate(bytes)
    }
    fn write_back(&mut self, offset: u64, len: u64) -> io::Result<()> {
        self.file.write_back(offset, len)
    }
}
