//! Where an input's store files go: one private directory per process (in
//! /dev/shm when there is one, so that durable commits cost no disk),
//! made by the first input, and a name in it that no other input of the
//! process uses, whose files are removed when the input ends.
//!
//! Each input thus starts, as with a directory of its own, with no file at
//! its store's path or its index's path, while the directory's creation
//! and removal (several system calls, about 4% of `c_abi`'s time) happen
//! once per process. The directory is removed when the process exits (a
//! crash leaves it, with the crashing input's files, as it left a `TempDir`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static DIRECTORY: OnceLock<PathBuf> = OnceLock::new();
static NEXT: AtomicU64 = AtomicU64::new(0);

extern "C" {
    fn atexit(callback: extern "C" fn()) -> i32;
}

extern "C" fn remove_directory() {
    if let Some(directory) = DIRECTORY.get() {
        let _ = std::fs::remove_dir_all(directory);
    }
}

fn directory() -> &'static Path {
    DIRECTORY.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let made = if shm.is_dir() {
            tempfile::tempdir_in(shm).or_else(|_| tempfile::tempdir())
        } else {
            tempfile::tempdir()
        };
        let directory = made.expect("a temporary directory").keep();
        // SAFETY: registers a plain function, run once at exit.
        unsafe { atexit(remove_directory) };
        directory
    })
}

/// A store path of one input; its store file and index file are removed
/// on drop.
pub struct StorePath(PathBuf);

impl StorePath {
    /// A path `<directory>/<stem>-<n>.redb` no other input of this process
    /// had.
    pub fn new(stem: &str) -> StorePath {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        StorePath(directory().join(format!("{stem}-{n}.redb")))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for StorePath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        let mut index = self.0.clone().into_os_string();
        index.push(".index");
        let _ = std::fs::remove_file(index);
    }
}
