//! File-system helpers shared by every reader and writer of flotilla's files.
//!
//! Writing: everything another run reads back (saved plans, the simulator's state file)
//! is written atomically, so a reader never sees a half-written file and a crash leaves
//! either the old content or the new one.
//!
//! Reading: every input file (specs, state files, saved plans, pricing tables, what-if
//! scenarios, the simulator's state) may come from an untrusted change, so it is read
//! through [`read_bounded`]: only regular files (a FIFO, a device or a directory is
//! refused before a byte is read, and opening never blocks), and never more than a
//! stated limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tells temporary files of one process apart (with the process id and the time).
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically: a temporary file with a unique name in the same
/// directory, written and fsynced, renamed over `path`, then the directory fsynced where
/// the platform supports it. The directory must exist. On error the temporary file is
/// removed and `path` is untouched.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let (tmp, file) = create_temp(&dir, path)?;
    let result = fill(file, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(&dir);
    Ok(())
}

/// The directory `path` is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates a new, not previously existing, temporary file beside `path`.
fn create_temp(dir: &Path, path: &Path) -> io::Result<(PathBuf, File)> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.tmp-{}-{n}-{nanos:09}", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes the rename durable. Best effort: the new content is already in place, and some
/// platforms and file systems cannot open or sync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Why a bounded read failed. `Display` says what is wrong; [`ReadError::hint`] what to
/// do about it.
#[derive(Debug)]
pub enum ReadError {
    /// The file could not be opened (missing, permissions).
    Open(io::Error),
    /// Not a regular file: `kind` names what it is ("a directory", "a FIFO (named pipe)").
    NotRegular { kind: &'static str },
    /// Larger than the limit (in bytes).
    TooLarge { limit: u64 },
    /// Reading failed after opening.
    Read(io::Error),
}

impl ReadError {
    /// Whether the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Open(e) if e.kind() == io::ErrorKind::NotFound)
    }

    /// What the user can do.
    pub fn hint(&self) -> &'static str {
        match self {
            ReadError::Open(e) if e.kind() == io::ErrorKind::NotFound => "check the path",
            ReadError::Open(_) | ReadError::Read(_) => "check the file's permissions",
            ReadError::NotRegular { .. } => {
                "flotilla reads only regular files; pass the file itself, not a pipe, device or directory"
            }
            ReadError::TooLarge { .. } => "the file is larger than any valid input of its kind",
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Open(e) | ReadError::Read(e) => write!(f, "cannot read the file: {e}"),
            ReadError::NotRegular { kind } => write!(f, "this is {kind}, not a regular file"),
            ReadError::TooLarge { limit } => {
                write!(f, "the file is larger than the limit of {limit} bytes")
            }
        }
    }
}

/// Reads at most `limit` bytes of the regular file at `path`: opens it without blocking
/// (a FIFO with no writer would otherwise hang), checks the opened handle is a regular
/// file, and reads at most `limit + 1` bytes, so that neither a lie in the metadata nor
/// a file growing while it is read can make the read unbounded.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path)?;
    let mut buf = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(ReadError::Read)?;
    if buf.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(buf)
}

/// Opens `path` for reading without blocking, and checks the opened handle (not the
/// path, which could be swapped in between) is a regular file.
pub fn open_regular(path: &Path) -> Result<File, ReadError> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(ReadError::Open)?;
    let meta = file.metadata().map_err(ReadError::Read)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            kind: file_kind(&meta),
        });
    }
    Ok(file)
}

/// What a non-regular file is, for messages.
fn file_kind(meta: &fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if meta.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The first control character in `bytes` that no input of flotilla may hold (every C0
/// control but tab, line feed and carriage return, and DEL), as (byte offset, byte).
/// A NUL in particular would let one tool read a different document than another.
pub fn first_control_char(bytes: &[u8]) -> Option<(usize, u8)> {
    bytes
        .iter()
        .position(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7f)
        .map(|i| (i, bytes[i]))
}

/// A control character as the message names it (`NUL`, `U+001B`).
pub fn control_char_name(b: u8) -> String {
    match b {
        0 => "NUL (U+0000)".to_string(),
        0x7f => "DEL (U+007F)".to_string(),
        b => format!("U+{b:04X}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_what_is_not_a_small_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        fs::write(&small, b"12345").unwrap();
        assert_eq!(read_bounded(&small, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&small, 4),
            Err(ReadError::TooLarge { limit: 4 })
        ));
        assert!(matches!(
            read_bounded(dir.path(), 10),
            Err(ReadError::NotRegular {
                kind: "a directory"
            })
        ));
        let missing = read_bounded(&dir.path().join("nope"), 10).unwrap_err();
        assert!(missing.is_not_found(), "{missing}");
        #[cfg(unix)]
        {
            assert!(matches!(
                read_bounded(Path::new("/dev/zero"), 10),
                Err(ReadError::NotRegular { kind: "a device" })
            ));
            let fifo = dir.path().join("fifo");
            let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            // No writer: a blocking open would hang here.
            let err = read_bounded(&fifo, 10).unwrap_err();
            assert!(err.to_string().contains("FIFO"), "{err}");
        }
    }

    #[test]
    fn control_characters_are_found_with_their_offset() {
        assert_eq!(first_control_char(b"a: 1\n\tb: 2\r\n"), None);
        assert_eq!(first_control_char(b"a: 1\nb\0"), Some((6, 0)));
        assert_eq!(first_control_char(b"\x1b[31m"), Some((0, 0x1b)));
        assert_eq!(first_control_char(b"x\x7f"), Some((1, 0x7f)));
        assert_eq!(control_char_name(0), "NUL (U+0000)");
        assert_eq!(control_char_name(0x1b), "U+001B");
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn writes_and_replaces_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        write_atomic(&path, b"first").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"first");
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second, longer");
        write_atomic(&path, b"").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_missing_directory_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no/such/dir/state.json");
        let err = write_atomic(&path, b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_keeps_the_target_and_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A non-empty directory cannot be replaced by a file.
        let path = dir.path().join("taken");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inside"), b"keep").unwrap();
        assert!(write_atomic(&path, b"x").is_err());
        assert_eq!(fs::read(path.join("inside")).unwrap(), b"keep");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn concurrent_writers_never_share_a_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        let contents: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 4096]).collect();
        std::thread::scope(|s| {
            for c in &contents {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..3 {
                        write_atomic(path, c).unwrap();
                    }
                });
            }
        });
        let last = fs::read(&path).unwrap();
        assert!(contents.contains(&last), "a write was torn");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        assert_eq!(parent_dir(Path::new("plan.json")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/plan.json")), PathBuf::from("a"));
    }
}
