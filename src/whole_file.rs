//! Files written whole or not at all: every file daa writes goes to a temporary name beside
//! its destination (`<name>.<pid>.tmp`), is synced, and is renamed into place, so a reader
//! sees the old file or the new one and an interruption at any point leaves no half-written
//! file under the real name. A failed write removes its temporary file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// An I/O error with the file it happened to.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl FileError {
    pub fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + use<> {
        let path = path.to_path_buf();
        move |source| FileError { path, source }
    }
}

/// The temporary name beside `path` that this process writes before renaming.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Removes the temporary files of processes that no longer run from `dir` (a killed
/// writer leaves its `<name>.<pid>.tmp` behind); those of live processes are kept.
pub fn clean_stale(dir: &Path) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !alive(pid) {
            tracing::debug!(file = %entry.path().display(), "removing a dead process's temporary file");
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists (on Unix; elsewhere every process counts as alive).
fn alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        // SAFETY: signal 0 only checks that the process exists; nothing is sent.
        let status = unsafe { libc::kill(pid as libc::pid_t, 0) };
        status == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Makes `path` by having `fill` write the temporary file it is given (and sync it), then
/// renaming that into place; on any failure the temporary file is removed and `path` is
/// left as it was.
pub fn replace<T, E: From<FileError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let tmp = temp_path(path);
    let placed = fill(&tmp).and_then(|value| {
        std::fs::rename(&tmp, path).map_err(FileError::at(path))?;
        Ok(value)
    });
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed
}

/// [`replace`] for a stream: `fill` writes through a buffered writer; the file is flushed
/// and synced before the rename. I/O errors name `path`.
pub fn write_with<T, E: From<FileError>>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> Result<T, E>,
) -> Result<T, E> {
    replace(path, |tmp| {
        let file = File::create(tmp).map_err(FileError::at(path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let value = fill(&mut out)?;
        out.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .map_err(FileError::at(path))?;
        Ok(value)
    })
}

/// Writes `bytes` as the whole of `path`.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    write_with(path, |out| {
        out.write_all(bytes).map_err(FileError::at(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("result.json");
        write(&path, b"old").unwrap();
        let failed: Result<(), FileError> = write_with(&path, |out| {
            out.write_all(b"half").map_err(FileError::at(&path))?;
            Err(FileError::at(&path)(std::io::Error::other("disk full")))
        });
        assert!(
            failed
                .unwrap_err()
                .to_string()
                .contains("result.json: disk full")
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file was removed");
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn stale_temporary_files_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max on Linux is at most 2^22: this process cannot exist.
        let dead = dir.path().join("train.table.4194305.tmp");
        let ours = temp_path(&dir.path().join("best.safetensors"));
        let other = dir.path().join("notes.tmp");
        for f in [&dead, &ours, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        clean_stale(dir.path());
        assert!(!dead.exists() && ours.exists() && other.exists());
    }
}
