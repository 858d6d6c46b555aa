//! Reading the suite's files (plans, a sweep's manifest and notes, a run's `summary.json`)
//! without trusting what is at the path: only a regular file is read (never a FIFO, which
//! would block, nor a device such as `/dev/zero`, which never ends), only up to a size limit,
//! and, where the sweep owns the path, never through a symbolic link.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// The largest plan read: 1 MiB (the shipped plans are under 4 KiB).
pub const PLAN_LIMIT: u64 = 1 << 20;

/// The largest sweep manifest, `summary.json` or status note read: 16 MiB (a manifest of
/// [`crate::plan::MAX_RUNS`] runs is about 8 MiB).
pub const STATE_LIMIT: u64 = 16 << 20;

/// Whether a path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it: a path the user named (a plan file).
    Follow,
    /// Refuse it: a path the sweep owns, where a link was planted, not written.
    Refuse,
}

/// What kind of file `t` is, for an error.
fn kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (and, with [`Links::Refuse`], not a link).
fn open_regular(path: &Path, links: Links) -> io::Result<File> {
    let refused = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if links == Links::Refuse && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(refused("a symbolic link, which the sweep does not follow"));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking, so that opening a FIFO returns at once (and is then refused);
        // no-follow, so that a link planted after the check above is not followed either.
        let mut flags = OFlag::O_NONBLOCK;
        if links == Links::Refuse {
            flags |= OFlag::O_NOFOLLOW;
        }
        options.custom_flags(flags.bits());
    }
    let file = options.open(path)?;
    let t = file.metadata()?.file_type();
    if !t.is_file() {
        return Err(refused(&format!("{}, not a regular file", kind(t))));
    }
    Ok(file)
}

/// Reads the regular file at `path` whole, if it holds at most `limit` bytes.
///
/// # Errors
/// The file cannot be opened or read, is not a regular file (or is a link, with
/// [`Links::Refuse`]), or is larger than `limit` (`InvalidData`).
pub fn read_regular(path: &Path, limit: u64, links: Links) -> io::Result<Vec<u8>> {
    let file = open_regular(path, links)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {} limit", size(limit)),
        ));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
///
/// # Errors
/// As [`read_regular`]; also text that is not UTF-8 (`InvalidData`).
pub fn read_text(path: &Path, limit: u64, links: Links) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit, links)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The last `at_most` bytes of the regular file at `path` (never a link), as text (invalid
/// UTF-8 replaced).
///
/// # Errors
/// As [`read_regular`] with [`Links::Refuse`], but a large file is no error.
pub fn read_tail(path: &Path, at_most: u64) -> io::Result<String> {
    let mut file = open_regular(path, Links::Refuse)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(at_most)))?;
    let mut bytes = Vec::new();
    file.take(at_most).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `limit` bytes as a person writes it (`1 MiB`).
fn size(limit: u64) -> String {
    if limit >= 1 << 20 && limit.is_multiple_of(1 << 20) {
        format!("{} MiB", limit >> 20)
    } else {
        format!("{limit} bytes")
    }
}

/// Replaces `path` atomically and durably: `write` fills the temporary file `tmp` (beside
/// `path`, on the same file system), which is flushed to disk, renamed over `path`, and the
/// directory flushed, so that a reader sees the old file or the new one, never half of one,
/// and after a crash the new one is there once this returns. The one way the run directory and
/// the sweep's state replace a file.
///
/// # Errors
/// Whatever `write`, the flush or the rename fails with (a failed write leaves `path` as it
/// was).
pub fn write_atomic(
    path: &Path,
    tmp: &Path,
    write: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<()> {
    write(tmp)?;
    File::open(tmp)?.sync_all()?;
    std::fs::rename(tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let f = tmp.path().join("f");
        std::fs::write(&f, b"0123456789").expect("write");
        assert_eq!(
            read_regular(&f, 10, Links::Refuse).expect("read"),
            b"0123456789"
        );
        let e = read_regular(&f, 9, Links::Refuse).expect_err("too large");
        assert_eq!(e.to_string(), "larger than the 9 bytes limit");
        assert_eq!(read_tail(&f, 4).expect("tail"), "6789");
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, Links::Follow).expect_err("device");
        assert_eq!(e.to_string(), "a character device, not a regular file");
        let e = read_regular(tmp.path(), 1 << 20, Links::Follow).expect_err("dir");
        assert_eq!(e.to_string(), "a directory, not a regular file");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        assert_eq!(
            read_regular(&link, 10, Links::Follow).expect("read"),
            b"0123456789"
        );
        let e = read_regular(&link, 10, Links::Refuse).expect_err("link");
        assert_eq!(
            e.to_string(),
            "a symbolic link, which the sweep does not follow"
        );
        // A FIFO with no writer: refused at once, not waited on.
        let fifo = tmp.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        let e = read_regular(&fifo, 10, Links::Follow).expect_err("fifo");
        assert_eq!(e.to_string(), "a FIFO, not a regular file");
    }

    /// A write that fails leaves the file as it was; one that succeeds replaces it whole and
    /// leaves no temporary behind.
    #[test]
    fn a_file_is_replaced_whole_or_not_at_all() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (f, t) = (tmp.path().join("f"), tmp.path().join(".f.tmp"));
        std::fs::write(&f, b"old").expect("write");
        let e = write_atomic(&f, &t, |t| {
            std::fs::write(t, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .expect_err("the write fails");
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(std::fs::read(&f).expect("read"), b"old");
        write_atomic(&f, &t, |t| std::fs::write(t, b"new")).expect("replaced");
        assert_eq!(std::fs::read(&f).expect("read"), b"new");
        assert!(!t.exists(), "the temporary was renamed");
    }
}
