//! Locks on files that may live on a cluster's file system: the sweep's lock
//! (`OUT/.sweep/lock`) and a run directory's (`RUN/.lock`).
//!
//! **flock first.** A lock is an `flock` on its file, released by the kernel when its holder
//! ends, however it ends. An exclusive holder writes `pid N on HOST` into the file, for the
//! message of whoever finds it held.
//!
//! **A lock file where flock is refused.** Some cluster file systems refuse `flock` (Lustre
//! mounted without its `flock` option, some NFS: ENOLCK, EOPNOTSUPP, ENOSYS). There, and
//! wherever `HD_LOCK=file` is set (for a file system whose `flock` is local to each node, such
//! as Lustre's `localflock`, under which two nodes would both get the lock), the lock is a
//! file created with `O_EXCL` beside it, holding `pid N on HOST`: `FILE.excl` for the
//! exclusive holder, `FILE.shared.HOST.PID.N` for each shared one. Each side creates its file
//! and then looks for the other's, and gives up (removing its own) when it finds one, so two
//! holders never both hold it. Such a file outlives a holder that is killed (SIGKILL, a node
//! lost): a holder on this host whose pid no longer runs is taken over; one on another host
//! cannot be checked from here, and the message names its file, to be removed by hand once
//! that process is known to be gone.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable that chooses the lock file over `flock` (`HD_LOCK=file`).
pub const LOCK_ENV: &str = "HD_LOCK";

/// Exclusive (one holder) or shared (any number, none exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One holder.
    Exclusive,
    /// Any number of holders at once.
    Shared,
}

/// How a lock is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `flock`, or the lock file where the file system refuses `flock`.
    Flock,
    /// The lock file (created with `O_EXCL`) only.
    File,
}

impl Strategy {
    /// [`Strategy::File`] when `HD_LOCK=file`, else [`Strategy::Flock`].
    pub fn from_env() -> Strategy {
        match std::env::var(LOCK_ENV) {
            Ok(v) if v == "file" => Strategy::File,
            _ => Strategy::Flock,
        }
    }
}

/// A lock held: released when dropped (the flock by closing its file, a lock file by
/// removing it).
#[derive(Debug)]
pub struct Lock {
    held: Held,
}

#[derive(Debug)]
enum Held {
    /// The flocked file: closing it releases the lock.
    Flock { _file: File },
    /// The lock file: removed on release.
    File(PathBuf),
}

impl Lock {
    /// Whether it is the lock file, not an flock.
    pub fn is_file(&self) -> bool {
        matches!(self.held, Held::File(_))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Held::File(p) = &self.held {
            // Gone already (removed by hand): nothing to release.
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Why a lock was not taken: someone holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Busy {
    /// Who, as the lock says (`pid 12 on node-3`), if it says.
    pub holder: Option<String>,
    /// The lock file, when the lock is one: what to remove if its holder is gone.
    pub file: Option<PathBuf>,
    /// Whether the holder is on another host (a lock file's holder there cannot be checked).
    pub elsewhere: bool,
}

impl fmt::Display for Busy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.holder.as_deref().unwrap_or("holder unknown"))?;
        if let Some(file) = &self.file {
            write!(
                f,
                "; lock file {}: if that process no longer runs, remove the file",
                file.display()
            )?;
        }
        Ok(())
    }
}

/// This host's name, as a lock records it.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".into())
}

fn me() -> String {
    format!("pid {} on {}", std::process::id(), host())
}

/// `pid N on HOST` read back.
fn parse_holder(text: &str) -> Option<(i32, String)> {
    let rest = text.trim().strip_prefix("pid ")?;
    let (pid, host) = rest.split_once(" on ")?;
    Some((pid.parse().ok()?, host.to_string()))
}

/// Whether the holder a lock file names is gone: on this host, with no process of its pid.
/// A holder elsewhere, or one that cannot be read, is taken as alive.
fn gone(text: &str) -> bool {
    match parse_holder(text) {
        Some((pid, h)) if h == host() && pid > 0 => matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ),
        _ => false,
    }
}

fn busy_file(text: &str, file: PathBuf) -> Busy {
    let holder = Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let elsewhere = parse_holder(text).is_none_or(|(_, h)| h != host());
    Busy {
        holder,
        file: Some(file),
        elsewhere,
    }
}

/// Reads a lock file, never through a link; `None` when it is not there.
fn read(path: &Path) -> io::Result<Option<String>> {
    match crate::files::read_text(path, 4096, crate::files::Links::Refuse) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates `path` if it is not there, holding this process's `pid N on HOST`.
fn create(path: &Path) -> io::Result<bool> {
    let mut options = OpenOptions::new();
    options
        .write(true)
        .create_new(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits());
    match options.open(path) {
        Ok(mut f) => {
            writeln!(f, "{}", me())?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Numbers this process's shared lock files, so that each of its shared locks has its own.
static SHARED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// `FILE.excl`, the exclusive holder's lock file.
fn exclusive_file(path: &Path) -> PathBuf {
    suffixed(path, ".excl")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// The shared holders' lock files, `FILE.shared.*`.
fn shared_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let mut prefix = name.to_os_string();
    prefix.push(".shared.");
    let prefix = prefix.as_encoded_bytes().to_vec();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })? {
        let entry = entry?;
        if entry.file_name().as_encoded_bytes().starts_with(&prefix) {
            found.push(dir.join(entry.file_name()));
        }
    }
    Ok(found)
}

/// The first live holder among `files` (a gone one on this host is removed).
fn live_holder(files: &[PathBuf]) -> io::Result<Option<Busy>> {
    for f in files {
        let Some(text) = read(f)? else { continue };
        if gone(&text) {
            remove_stale(f, &text)?;
        } else {
            return Ok(Some(busy_file(&text, f.clone())));
        }
    }
    Ok(None)
}

/// Removes a lock file whose holder is gone, if it still holds `text` (another process may
/// have taken it over meanwhile).
fn remove_stale(f: &Path, text: &str) -> io::Result<()> {
    if read(f)?.as_deref() == Some(text) {
        match std::fs::remove_file(f) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Takes the lock file of `path` in `mode`, or says who holds it.
fn try_file(path: &Path, mode: Mode) -> io::Result<Result<Lock, Busy>> {
    let excl = exclusive_file(path);
    // A few rounds: each removes a holder found gone, then tries again.
    for _ in 0..4 {
        let mine = match mode {
            Mode::Exclusive => excl.clone(),
            Mode::Shared => suffixed(
                path,
                &format!(
                    ".shared.{}.{}.{}",
                    host(),
                    std::process::id(),
                    SHARED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ),
            ),
        };
        if !create(&mine)? {
            // Only the exclusive file is ever found taken (a shared one is this lock's own).
            let Some(text) = read(&mine)? else { continue };
            if gone(&text) {
                remove_stale(&mine, &text)?;
                continue;
            }
            return Ok(Err(busy_file(&text, mine)));
        }
        let lock = Lock {
            held: Held::File(mine),
        };
        // Now the other side's files: one held means ours goes (dropped) and the lock is busy.
        let others = match mode {
            Mode::Exclusive => shared_files(path)?,
            Mode::Shared => vec![excl.clone()],
        };
        return Ok(match live_holder(&others)? {
            Some(busy) => Err(busy),
            None => Ok(lock),
        });
    }
    Ok(Err(Busy {
        holder: None,
        file: Some(excl),
        elsewhere: false,
    }))
}

/// Whether `e` says the file system refuses `flock` (rather than that the lock is held).
fn flock_refused(e: &io::Error) -> bool {
    use nix::errno::Errno;
    e.raw_os_error().is_some_and(|n| {
        [Errno::ENOLCK, Errno::EOPNOTSUPP, Errno::ENOSYS]
            .iter()
            .any(|&x| x as i32 == n)
    })
}

/// Opens `path` (creating it, never through a link) and flocks it; `None` where the file
/// system refuses flock.
fn try_flock(path: &Path, mode: Mode, wait: bool) -> io::Result<Option<Result<Lock, Busy>>> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)?;
    let taken = match (mode, wait) {
        (Mode::Exclusive, true) => file.lock().map_err(std::fs::TryLockError::Error),
        (Mode::Shared, true) => file.lock_shared().map_err(std::fs::TryLockError::Error),
        (Mode::Exclusive, false) => file.try_lock(),
        (Mode::Shared, false) => file.try_lock_shared(),
    };
    match taken {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Some(Err(Busy {
                holder: Some(text.trim().to_string()).filter(|t| !t.is_empty()),
                file: None,
                elsewhere: false,
            })));
        }
        Err(std::fs::TryLockError::Error(e)) if flock_refused(&e) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(e),
    }
    if mode == Mode::Exclusive {
        file.set_len(0)?;
        writeln!(file, "{}", me())?;
    }
    Ok(Some(Ok(Lock {
        held: Held::Flock { _file: file },
    })))
}

/// Takes the lock on `path` in `mode` without waiting, or says who holds it. The directory
/// of `path` must exist.
///
/// # Errors
/// The lock's file cannot be created or read (a symbolic link at its path among them).
pub fn try_lock(path: &Path, mode: Mode, strategy: Strategy) -> io::Result<Result<Lock, Busy>> {
    if strategy == Strategy::Flock {
        if let Some(taken) = try_flock(path, mode, false)? {
            return Ok(taken);
        }
    }
    try_file(path, mode)
}

/// Takes the lock on `path` in `mode`, waiting while it is held: with flock until it is
/// released; with the lock file while its holder runs on this host (checked every 200 ms).
/// A lock file held from another host is not waited on (its holder may be gone for good):
/// that is [`Busy`].
///
/// # Errors
/// As [`try_lock`].
pub fn lock_wait(path: &Path, mode: Mode, strategy: Strategy) -> io::Result<Result<Lock, Busy>> {
    if strategy == Strategy::Flock {
        if let Some(taken) = try_flock(path, mode, true)? {
            return Ok(taken);
        }
    }
    loop {
        match try_file(path, mode)? {
            Err(busy) if !busy.elsewhere => std::thread::sleep(Duration::from_millis(200)),
            taken => return Ok(taken),
        }
    }
}

/// Whether `path` is a lock, flock's file or a lock file (so something may hold it).
pub fn exists(path: &Path) -> bool {
    path.is_file() || exclusive_file(path).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock file, forced as where flock is refused: exclusive against exclusive and
    /// shared, shared beside shared, released on drop, a gone holder on this host taken over,
    /// one on another host named with its file.
    #[test]
    fn the_lock_file_excludes_as_flock_does_and_names_stale_holders() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lock");
        let file = Strategy::File;
        let a = try_lock(&path, Mode::Exclusive, file)
            .expect("io")
            .expect("free");
        assert!(a.is_file());
        assert!(
            !path.exists(),
            "the lock file strategy never tries flock's file"
        );
        let excl = tmp.path().join("lock.excl");
        assert_eq!(
            std::fs::read_to_string(&excl).expect("read"),
            format!("pid {} on {}\n", std::process::id(), host())
        );
        let busy = try_lock(&path, Mode::Exclusive, file)
            .expect("io")
            .expect_err("held");
        assert_eq!(busy.holder.as_deref(), Some(me().as_str()));
        assert!(!busy.elsewhere);
        assert!(try_lock(&path, Mode::Shared, file).expect("io").is_err());
        // The shared attempt left no file of its own behind.
        assert_eq!(shared_files(&path).expect("dir").len(), 0);
        drop(a);
        assert!(!excl.exists());
        let s = try_lock(&path, Mode::Shared, file)
            .expect("io")
            .expect("free");
        // A shared lock beside another: another process's marker.
        let other = tmp.path().join("lock.shared.elsewhere.1");
        std::fs::write(&other, "pid 1 on elsewhere\n").expect("write");
        let s2 = try_lock(&path, Mode::Shared, file).expect("io");
        assert!(s2.is_ok());
        drop(s2);
        drop(s);
        let busy = try_lock(&path, Mode::Exclusive, file)
            .expect("io")
            .expect_err("shared elsewhere");
        assert!(busy.elsewhere);
        assert_eq!(
            busy.to_string(),
            format!(
                "pid 1 on elsewhere; lock file {}: if that process no longer runs, remove the file",
                other.display()
            )
        );
        assert!(!excl.exists(), "the exclusive attempt gave its file back");
        std::fs::remove_file(&other).expect("rm");
        // A holder on this host whose pid runs no more: taken over.
        let dead = i32::MAX - 1;
        std::fs::write(&excl, format!("pid {dead} on {}\n", host())).expect("write");
        let c = try_lock(&path, Mode::Exclusive, file)
            .expect("io")
            .expect("a gone holder's lock taken over");
        drop(c);
        // A holder elsewhere: not waited on.
        std::fs::write(&excl, "pid 7 on node-9\n").expect("write");
        let busy = lock_wait(&path, Mode::Shared, file)
            .expect("io")
            .expect_err("held elsewhere");
        assert_eq!(busy.holder.as_deref(), Some("pid 7 on node-9"));
        assert_eq!(busy.file.as_deref(), Some(excl.as_path()));
        // A link planted as the lock file is refused, not followed.
        std::fs::remove_file(&excl).expect("rm");
        std::os::unix::fs::symlink(tmp.path().join("outside"), &excl).expect("link");
        assert!(try_lock(&path, Mode::Exclusive, file).is_err());
        assert!(!tmp.path().join("outside").exists());
    }

    /// flock where it works: the holder written for the message, a second exclusive refused.
    #[test]
    fn flock_is_taken_where_the_file_system_allows_it() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("lock");
        let a = try_lock(&path, Mode::Exclusive, Strategy::Flock)
            .expect("io")
            .expect("free");
        assert!(!a.is_file());
        let busy = try_lock(&path, Mode::Shared, Strategy::Flock)
            .expect("io")
            .expect_err("held");
        assert_eq!(busy.holder.as_deref(), Some(me().as_str()));
        assert_eq!(busy.file, None);
        drop(a);
        assert!(try_lock(&path, Mode::Shared, Strategy::Flock)
            .expect("io")
            .is_ok());
    }

    /// The errors that mean "no flock here", and not the one that means "held".
    #[test]
    fn flock_refusals_are_told_from_a_held_lock() {
        use nix::errno::Errno;
        for e in [Errno::ENOLCK, Errno::EOPNOTSUPP, Errno::ENOSYS] {
            assert!(
                flock_refused(&io::Error::from_raw_os_error(e as i32)),
                "{e}"
            );
        }
        assert!(!flock_refused(&io::Error::from_raw_os_error(
            Errno::EWOULDBLOCK as i32
        )));
    }
}
