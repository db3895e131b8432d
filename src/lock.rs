//! Exclusive locks on directories that processes share (a run directory, a source
//! pretraining directory, a data cache): one writer at a time, whoever else comes waits,
//! with a log line saying for what. The lock is the OS's advisory file lock on `<dir>/.lock`
//! (std's `File::lock`): it is released when the holder exits, however it exits, so a
//! killed process never leaves a directory locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::whole_file::FileError;

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Locks `dir` (created if missing), waiting while another process holds it; `what` says
/// in the log line what is being waited for.
pub fn lock_dir(dir: &Path, what: &str) -> Result<DirLock, FileError> {
    std::fs::create_dir_all(dir).map_err(FileError::at(dir))?;
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(FileError::at(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(dir = %dir.display(), "another process holds {what}: waiting for it");
            file.lock().map_err(FileError::at(&path))?;
        }
        Err(TryLockError::Error(e)) => return Err(FileError::at(&path)(e)),
    }
    crate::whole_file::clean_stale(dir);
    Ok(DirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path(), "the test directory").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let _second = lock_dir(&path, "the test directory").unwrap();
            tx.send(()).unwrap();
        });
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            rx.try_recv().is_err(),
            "the second lock waits while the first is held"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the second lock is taken once the first is released");
        waiter.join().unwrap();
    }
}
