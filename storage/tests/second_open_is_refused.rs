//! One engine per directory: while a `Db` is open, a second `Db::open` of the same
//! directory fails with `Error::AlreadyOpen` (before it touches any file). Without the
//! lock the second engine's recovery would rewrite the manifest and delete the first
//! engine's WAL segments and tables under it: acknowledged writes lost. Dropping the
//! first `Db` (or a simulated crash) releases the directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use storage::{Db, Error, Options, WriteOptions};
use vfs::{CrashMode, Fs, RealFs, SimFs};

const SYNC: WriteOptions = WriteOptions { sync: true };

#[test]
fn a_second_open_of_a_live_directory_is_refused() {
    let fs = SimFs::new();
    let a = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
    a.put(b"a", b"1", SYNC).unwrap();
    match Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()) {
        Err(Error::AlreadyOpen { dir, .. }) => assert_eq!(dir, "/db"),
        Err(e) => panic!("second open failed with the wrong error: {e}"),
        Ok(_) => panic!("a second engine opened a directory that is in use"),
    }
    // The refused open changed nothing: the first engine still works and holds its data.
    a.put(b"b", b"2", SYNC).unwrap();
    assert_eq!(a.get(b"a").unwrap(), Some(b"1".to_vec()));
    // Another directory on the same file system is fine.
    let other = Db::open(
        Arc::new(fs.clone()),
        Path::new("/other"),
        Options::default(),
    )
    .unwrap();
    drop(other);

    // A clone keeps the engine (and its lock) alive; the last drop releases it.
    let clone = a.clone();
    drop(a);
    assert!(matches!(
        Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()),
        Err(Error::AlreadyOpen { .. })
    ));
    drop(clone);
    let b = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
    assert_eq!(b.get(b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(b.get(b"b").unwrap(), Some(b"2".to_vec()));

    // A crash releases the lock (the process is gone); the old handle's drop afterwards
    // must not release the new engine's lock.
    fs.crash(CrashMode::DropUnsynced);
    let c = Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()).unwrap();
    drop(b);
    assert!(matches!(
        Db::open(Arc::new(fs.clone()), Path::new("/db"), Options::default()),
        Err(Error::AlreadyOpen { .. })
    ));
    assert_eq!(c.get(b"b").unwrap(), Some(b"2".to_vec()));
}

#[test]
fn a_second_open_is_refused_on_the_real_disk() {
    let dir = std::env::temp_dir().join(format!("storage-second-open-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let fs: Arc<dyn Fs> = RealFs::shared();
    let a = Db::open(Arc::clone(&fs), &dir, Options::default()).unwrap();
    a.put(b"a", b"1", SYNC).unwrap();
    let err = Db::open(Arc::clone(&fs), &dir, Options::default()).unwrap_err();
    assert!(matches!(err, Error::AlreadyOpen { .. }), "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
    drop(a);
    let b = Db::open(Arc::clone(&fs), &dir, Options::default()).unwrap();
    assert_eq!(b.get(b"a").unwrap(), Some(b"1".to_vec()));
    drop(b);
    std::fs::remove_dir_all(&dir).unwrap();
}
