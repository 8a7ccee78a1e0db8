//! Opening an engine reads no table: each table's index and filter are loaded by the
//! first read that needs them, and only that table's. A table whose tail is damaged
//! opens, fails the first read that needs it with an error naming the file, and does
//! not latch the engine: other tables still answer, writes still succeed.
//!
//! Reads are counted through a file system wrapper (`CountingFs`) that tallies the
//! bytes read from each `.sst` file, whether by `pread` or through a map.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use storage::{Db, Options, WriteOptions};
use vfs::{FileLock, FileRead, FileWrite, Fs, Mapped, SimFs};

const NOSYNC: WriteOptions = WriteOptions { sync: false };
const TABLES: usize = 12;
const KEYS_PER_TABLE: usize = 300;

/// Bytes read from each table file (by name), and the tables mapped.
#[derive(Debug, Default)]
struct Reads {
    bytes: BTreeMap<String, u64>,
    mapped: Vec<String>,
}

#[derive(Debug)]
struct CountingFs {
    inner: SimFs,
    reads: Arc<Mutex<Reads>>,
}

#[derive(Debug)]
struct CountingFile {
    inner: Arc<dyn FileRead>,
    name: String,
    reads: Arc<Mutex<Reads>>,
}

fn table_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    name.ends_with(".sst").then(|| name.to_string())
}

impl FileRead for CountingFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        let mut reads = self.reads.lock().unwrap();
        *reads.bytes.entry(self.name.clone()).or_default() += n as u64;
        Ok(n)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn advise_random(&self) -> io::Result<()> {
        self.inner.advise_random()
    }
}

impl Fs for CountingFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.inner.create(path)
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        self.inner.open_append(path)
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn FileRead>> {
        let file = self.inner.open_read(path)?;
        match table_name(path) {
            Some(name) => Ok(Arc::new(CountingFile {
                inner: file,
                name,
                reads: Arc::clone(&self.reads),
            })),
            None => Ok(file),
        }
    }
    fn map(&self, path: &Path) -> io::Result<Mapped> {
        if let Some(name) = table_name(path) {
            self.reads.lock().unwrap().mapped.push(name);
        }
        self.inner.map(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        self.inner.lock(path)
    }
}

fn dir() -> &'static Path {
    Path::new("/db")
}

/// Options under which nothing compacts: every flush stays a level-0 table.
fn options() -> Options {
    Options {
        write_buffer_bytes: 1 << 20,
        l0_compaction_trigger: 100,
        l0_slowdown_writes: 100,
        l0_stop_writes: 100,
        block_bytes: 512,
        ..Options::default()
    }
}

fn key(table: usize, i: usize) -> Vec<u8> {
    format!("t{table:02}-{i:05}").into_bytes()
}

/// A database of `TABLES` level-0 tables with disjoint key ranges (`t00-…`, `t01-…`).
fn build() -> SimFs {
    let fs = SimFs::new();
    let db = Db::open(Arc::new(fs.clone()), dir(), options()).unwrap();
    for t in 0..TABLES {
        for i in 0..KEYS_PER_TABLE {
            db.put(&key(t, i), format!("v{t}-{i}").as_bytes(), NOSYNC)
                .unwrap();
        }
        db.flush().unwrap();
    }
    assert_eq!(db.level_table_counts()[0], TABLES);
    drop(db);
    fs
}

fn counting(fs: &SimFs) -> (Arc<dyn Fs>, Arc<Mutex<Reads>>) {
    let reads = Arc::new(Mutex::new(Reads::default()));
    let fs = CountingFs {
        inner: fs.clone(),
        reads: Arc::clone(&reads),
    };
    (Arc::new(fs), reads)
}

fn tables_read(reads: &Mutex<Reads>) -> Vec<String> {
    let reads = reads.lock().unwrap();
    let mut names: Vec<String> = reads
        .bytes
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(name, _)| name.clone())
        .collect();
    names.extend(reads.mapped.iter().cloned());
    names
}

fn table_files(fs: &SimFs) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = fs
        .list_dir(dir())
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .map(|n| dir().join(n))
        .collect();
    names.sort();
    names
}

#[test]
fn opening_reads_no_table_and_a_lookup_loads_only_its_table() {
    let fs = build();
    let (counted, reads) = counting(&fs);
    let db = Db::open(counted, dir(), options()).unwrap();
    assert_eq!(db.level_table_counts()[0], TABLES);
    assert_eq!(
        tables_read(&reads),
        Vec::<String>::new(),
        "open read tables"
    );
    let stats = db.engine_stats();
    assert_eq!((stats.index_bytes, stats.filter_bytes), (0, 0));

    // One lookup loads the one table whose key range holds the key.
    assert_eq!(db.get(&key(5, 7)).unwrap(), Some(b"v5-7".to_vec()));
    assert_eq!(tables_read(&reads).len(), 1, "{:?}", tables_read(&reads));
    let stats = db.engine_stats();
    assert!(stats.index_bytes > 0 && stats.filter_bytes > 0, "{stats:?}");

    // Every key answers; afterwards every table is loaded, each read once for its tail
    // plus its data blocks.
    for t in 0..TABLES {
        for i in (0..KEYS_PER_TABLE).step_by(37) {
            let want = format!("v{t}-{i}").into_bytes();
            assert_eq!(db.get(&key(t, i)).unwrap(), Some(want));
        }
    }
    assert_eq!(tables_read(&reads).len(), TABLES);
}

#[test]
fn a_damaged_tail_fails_its_first_use_naming_the_file_and_latches_nothing() {
    let fs = build();
    // Table files are numbered in flush order: the fourth holds the `t03-` keys.
    let files = table_files(&fs);
    assert_eq!(files.len(), TABLES);
    let damaged = &files[3];
    let len = fs.read_all(damaged).unwrap().len();
    // A bit of the index block (just before the footer): only the tail is hurt.
    fs.flip_bit(damaged, len - 60, 2).unwrap();
    let name = damaged.file_name().unwrap().to_str().unwrap().to_string();

    let db = Db::open(Arc::new(fs.clone()), dir(), options())
        .expect("opening reads no table, so a damaged tail does not fail it");
    for attempt in 0..2 {
        match db.get(&key(3, 10)) {
            Err(e) => {
                assert!(e.is_corruption(), "attempt {attempt}: {e}");
                assert!(e.to_string().contains(&name), "attempt {attempt}: {e}");
            }
            Ok(v) => panic!("read through a damaged index: {v:?}"),
        }
    }
    let from = key(3, 0);
    match db.iter(Bound::Included(&from[..]), Bound::Unbounded) {
        Err(e) => assert!(e.is_corruption() && e.to_string().contains(&name), "{e}"),
        Ok(mut it) => match Iterator::next(&mut it) {
            Some(Err(e)) => assert!(e.is_corruption() && e.to_string().contains(&name), "{e}"),
            other => panic!("iterated through a damaged index: {other:?}"),
        },
    }

    // Nothing latched: other tables answer and writes succeed.
    assert_eq!(db.get(&key(2, 10)).unwrap(), Some(b"v2-10".to_vec()));
    assert_eq!(db.get(&key(4, 10)).unwrap(), Some(b"v4-10".to_vec()));
    db.put(b"after", b"damage", WriteOptions { sync: true })
        .unwrap();
    assert_eq!(db.get(b"after").unwrap(), Some(b"damage".to_vec()));
}

#[test]
fn racing_first_reads_of_one_table_all_answer() {
    let fs = build();
    let db = Arc::new(Db::open(Arc::new(fs), dir(), options()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in (n..KEYS_PER_TABLE).step_by(8) {
                    let want = format!("v6-{i}").into_bytes();
                    assert_eq!(db.get(&key(6, i)).unwrap(), Some(want));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
