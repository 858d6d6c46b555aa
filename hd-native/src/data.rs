//! Datasets in their standard on-disk formats: MNIST and Fashion-MNIST as IDX files (gzipped or
//! not), CIFAR-10 and CIFAR-100 as the "binary version" record files.
//!
//! Every file is checked as it is read (magic number, declared sizes against the bytes present,
//! label range, image and label counts), and each problem is a [`DataError`] that names the file
//! and what is wrong with it. Images stay `u8` on the device; [`Dataset::batch`] turns a batch
//! into normalised `f32` (and augments CIFAR training batches) right before use.

use flate2::read::MultiGzDecoder;
use std::fmt;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// What can go wrong reading a dataset; each variant names the file concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// None of the accepted names for a required file exists.
    #[error("{dataset}: cannot find {wanted} in {dir} (looked for {tried})")]
    Missing {
        /// The dataset being read.
        dataset: DatasetKind,
        /// What the file holds, e.g. "training images".
        wanted: &'static str,
        /// The data directory searched.
        dir: PathBuf,
        /// The file names tried, comma-separated.
        tried: String,
    },
    /// The file exists but reading it failed (including a corrupt gzip stream).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the magic number of its format.
    #[error("{}: bad magic number 0x{found:08x}, expected 0x{expected:08x} ({what})", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number its format requires.
        expected: u32,
        /// The format expected.
        what: &'static str,
    },
    /// The file holds fewer (or more) bytes than its header or format declares.
    #[error("{}: truncated or oversized: expected {expected} bytes, found {found}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header or record layout requires.
        expected: usize,
        /// Bytes present (after decompression).
        found: usize,
    },
    /// The file holds more bytes than its header declares. Reading stops at the first byte
    /// past the declared size, so a small compressed file that inflates to gigabytes (a
    /// "gzip bomb") costs no more memory than the size its header claims.
    #[error("{}: holds more than the {expected} bytes its header declares", path.display())]
    Oversized {
        /// The file.
        path: PathBuf,
        /// Bytes the header declares (header included, after decompression).
        expected: usize,
    },
    /// Images have a shape other than the dataset's.
    #[error("{}: images are {found:?}, expected {expected:?}", path.display())]
    BadShape {
        /// The file.
        path: PathBuf,
        /// Image dimensions read (rows, columns).
        found: (usize, usize),
        /// Image dimensions the dataset has.
        expected: (usize, usize),
    },
    /// A label is not a valid class index.
    #[error("{}: label {label} of item {index} is out of range (the dataset has {classes} classes)", path.display())]
    LabelOutOfRange {
        /// The file.
        path: PathBuf,
        /// The item's position in the file.
        index: usize,
        /// The label read.
        label: u8,
        /// The number of classes.
        classes: usize,
    },
    /// An image file and its label file disagree on the number of items.
    #[error("{} holds {images} images but {} holds {labels} labels", images_path.display(), labels_path.display())]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Labels it holds.
        labels: usize,
    },
    /// A split holds no items at all.
    #[error("{}: holds no items", path.display())]
    Empty {
        /// The file (the first of the split's files).
        path: PathBuf,
    },
    /// libtorch failed (out of memory, a device error).
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// The datasets the runner knows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// MNIST digits, 28×28 grey, 10 classes.
    Mnist,
    /// Fashion-MNIST (Zalando), 28×28 grey, 10 classes.
    FashionMnist,
    /// CIFAR-10, 32×32 colour, 10 classes.
    Cifar10,
    /// CIFAR-100 (fine labels), 32×32 colour, 100 classes.
    Cifar100,
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
        })
    }
}

/// The shape of one input image and the number of classes: what a model needs to be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSpec {
    /// Channels (1 grey, 3 colour).
    pub channels: i64,
    /// Height and width in pixels (square images).
    pub size: i64,
    /// Number of classes.
    pub classes: i64,
}

impl DatasetKind {
    /// Image shape and class count.
    pub fn spec(self) -> InputSpec {
        match self {
            DatasetKind::Mnist | DatasetKind::FashionMnist => InputSpec {
                channels: 1,
                size: 28,
                classes: 10,
            },
            DatasetKind::Cifar10 => InputSpec {
                channels: 3,
                size: 32,
                classes: 10,
            },
            DatasetKind::Cifar100 => InputSpec {
                channels: 3,
                size: 32,
                classes: 100,
            },
        }
    }

    /// Per-channel mean and standard deviation of the training set (the usual published
    /// figures), used for the standard normalisation `(x/255 − mean)/std`.
    pub fn normalisation(self) -> (&'static [f32], &'static [f32]) {
        match self {
            DatasetKind::Mnist => (&[0.1307], &[0.3081]),
            DatasetKind::FashionMnist => (&[0.2860], &[0.3530]),
            DatasetKind::Cifar10 => (&[0.4914, 0.4822, 0.4465], &[0.2470, 0.2435, 0.2616]),
            DatasetKind::Cifar100 => (&[0.5071, 0.4865, 0.4409], &[0.2673, 0.2564, 0.2762]),
        }
    }

    /// Whether training batches get a random 4-pixel-padded crop and a horizontal flip.
    pub fn augments(self) -> bool {
        matches!(self, DatasetKind::Cifar10 | DatasetKind::Cifar100)
    }
}

/// One split (training or test): `u8` images `[n, c, h, w]` and `i64` labels `[n]`.
#[derive(Debug)]
pub struct Split {
    /// Raw pixel values, `[n, channels, size, size]`, `u8`.
    pub images: Tensor,
    /// Class indices, `[n]`, `i64`.
    pub labels: Tensor,
}

impl Split {
    /// Number of items.
    pub fn len(&self) -> i64 {
        self.labels.size().first().copied().unwrap_or(0)
    }

    /// Whether the split holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The identity of one data file: its name, size on disk and a hash of its first bytes (the
/// format's header and the first items). Two copies of the same file agree; a different
/// dataset, or the same one cut down or edited at its start, does not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFile {
    /// The file name (without the directory: a copy of the data elsewhere is the same data).
    pub name: String,
    /// Size on disk in bytes.
    pub bytes: u64,
    /// FNV-1a (64-bit) of the first [`HEAD_BYTES`] bytes on disk.
    pub head_hash: u64,
}

/// How many leading bytes of a data file [`DataFile::head_hash`] covers.
pub const HEAD_BYTES: usize = 4096;

impl DataFile {
    fn of(path: &Path, raw_head: &[u8], bytes: u64) -> DataFile {
        // FNV-1a: offset basis 0xcbf29ce484222325, prime 0x100000001b3.
        let head_hash = raw_head
            .iter()
            .take(HEAD_BYTES)
            .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
            });
        DataFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
            head_hash,
        }
    }
}

impl fmt::Display for DataFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} bytes, head {:016x})",
            self.name, self.bytes, self.head_hash
        )
    }
}

/// A dataset loaded onto a device.
#[derive(Debug)]
pub struct Dataset {
    /// Which dataset this is.
    pub kind: DatasetKind,
    /// The training split.
    pub train: Split,
    /// The test split (the paper's "validation" figures are on it).
    pub test: Split,
    /// The files read, in reading order: what a run records to recognise its data on resume.
    pub files: Vec<DataFile>,
    mean: Tensor,
    std: Tensor,
}

impl Dataset {
    /// Reads `kind` from `dir` and moves it to `device`.
    ///
    /// Accepted layouts: the files directly in `dir`, or in the subdirectory the official
    /// archives unpack to (`cifar-10-batches-bin`, `cifar-100-binary`, `raw`). MNIST-style
    /// files may be gzipped (`.gz`) or not; gzip is recognised by its magic bytes.
    ///
    /// # Errors
    /// A [`DataError`] naming the file for a missing or malformed file.
    pub fn load(kind: DatasetKind, dir: &Path, device: Device) -> Result<Dataset, DataError> {
        let mut files = Vec::new();
        let (train, test) = match kind {
            DatasetKind::Mnist | DatasetKind::FashionMnist => (
                read_idx_split(kind, dir, "train", "training", &mut files)?,
                read_idx_split(kind, dir, "t10k", "test", &mut files)?,
            ),
            DatasetKind::Cifar10 => {
                let train: Vec<String> = (1..=5).map(|i| format!("data_batch_{i}.bin")).collect();
                (
                    read_cifar_split(kind, dir, &train, "training batches", &mut files)?,
                    read_cifar_split(
                        kind,
                        dir,
                        &["test_batch.bin".into()],
                        "test batch",
                        &mut files,
                    )?,
                )
            }
            DatasetKind::Cifar100 => (
                read_cifar_split(kind, dir, &["train.bin".into()], "training set", &mut files)?,
                read_cifar_split(kind, dir, &["test.bin".into()], "test set", &mut files)?,
            ),
        };
        let (mean, std) = kind.normalisation();
        let shape = [1, mean.len() as i64, 1, 1];
        Ok(Dataset {
            kind,
            train: train.into_device(device)?,
            test: test.into_device(device)?,
            files,
            mean: Tensor::f_from_slice(mean)?.f_view(shape)?.f_to(device)?,
            std: Tensor::f_from_slice(std)?.f_view(shape)?.f_to(device)?,
        })
    }

    /// Random images and labels with `kind`'s shape and class count, `train` + `test` of
    /// them, on `device`: for benchmarks and smoke tests where no data files are at hand.
    ///
    /// # Errors
    /// A libtorch error.
    pub fn synthetic(
        kind: DatasetKind,
        train: i64,
        test: i64,
        device: Device,
    ) -> Result<Dataset, tch::TchError> {
        let spec = kind.spec();
        let split = |n: i64| -> Result<Split, tch::TchError> {
            Ok(Split {
                images: Tensor::f_randint(
                    256,
                    [n, spec.channels, spec.size, spec.size],
                    (Kind::Uint8, device),
                )?,
                labels: Tensor::f_randint(spec.classes, [n], (Kind::Int64, device))?,
            })
        };
        let (mean, std) = kind.normalisation();
        let shape = [1, mean.len() as i64, 1, 1];
        Ok(Dataset {
            kind,
            train: split(train)?,
            test: split(test)?,
            files: Vec::new(),
            mean: Tensor::f_from_slice(mean)?.f_view(shape)?.f_to(device)?,
            std: Tensor::f_from_slice(std)?.f_view(shape)?.f_to(device)?,
        })
    }

    /// The images at `index` (an `i64` tensor on the dataset's device) as normalised `f32`
    /// `[b, c, h, w]`, with their labels. With `augment`, each image is randomly cropped from
    /// a 4-pixel zero-padded copy and flipped horizontally with probability ½, drawing from
    /// libtorch's generator on the device (so no host round trip, and reproducible after
    /// `tch::manual_seed`).
    ///
    /// # Errors
    /// A libtorch error (an index out of range, out of memory).
    pub fn batch(
        &self,
        split: &Split,
        index: &Tensor,
        augment: bool,
    ) -> Result<(Tensor, Tensor), tch::TchError> {
        let images = split.images.f_index_select(0, index)?;
        let labels = split.labels.f_index_select(0, index)?;
        let x = images.f_to_kind(Kind::Float)?.f_div_scalar(255.0)?;
        let x = x.f_sub(&self.mean)?.f_div(&self.std)?;
        let x = if augment && self.kind.augments() {
            random_crop_flip(&x, 4)?
        } else {
            x
        };
        Ok((x, labels))
    }
}

/// Random crop from a `pad`-padded copy plus a random horizontal flip, per image, on the device.
/// The padding is zero in the normalised space (the channel mean), a common choice in CIFAR
/// training code; two gathers do every image's crop at once.
fn random_crop_flip(x: &Tensor, pad: i64) -> Result<Tensor, tch::TchError> {
    let (n, c, h, w) = x.size4()?;
    let device = x.device();
    let padded = x.f_constant_pad_nd([pad, pad, pad, pad])?;
    let opts = (Kind::Int64, device);
    // Row and column offsets in [0, 2·pad], one per image.
    let dy = Tensor::f_randint(2 * pad + 1, [n, 1, 1, 1], opts)?;
    let dx = Tensor::f_randint(2 * pad + 1, [n, 1, 1, 1], opts)?;
    let rows = Tensor::f_arange(h, opts)?
        .f_view([1, 1, h, 1])?
        .f_add(&dy)?;
    let rows = rows.f_expand([n, c, h, w + 2 * pad], false)?;
    let cropped_rows = padded.f_gather(2, &rows, false)?;
    let cols = Tensor::f_arange(w, opts)?
        .f_view([1, 1, 1, w])?
        .f_add(&dx)?;
    let cols = cols.f_expand([n, c, h, w], false)?;
    let cropped = cropped_rows.f_gather(3, &cols, false)?;
    let flip = Tensor::f_randint(2, [n, 1, 1, 1], opts)?.f_eq(1)?;
    cropped.f_flip([3])?.f_where_self(&flip, &cropped)
}

impl Split {
    fn into_device(self, device: Device) -> Result<Split, tch::TchError> {
        Ok(Split {
            images: self.images.f_to(device)?,
            labels: self.labels.f_to(device)?,
        })
    }
}

/// The first of `names`, in `dir` or one of the archive subdirectories, that exists.
fn find(
    kind: DatasetKind,
    dir: &Path,
    names: &[String],
    wanted: &'static str,
) -> Result<PathBuf, DataError> {
    let subdirs = ["", "raw", "cifar-10-batches-bin", "cifar-100-binary"];
    for sub in subdirs {
        for name in names {
            let p = dir.join(sub).join(name);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(DataError::Missing {
        dataset: kind,
        wanted,
        dir: dir.to_path_buf(),
        tried: names.join(", "),
    })
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the rank.
const IDX_IMAGES: u32 = 0x0000_0803;
const IDX_LABELS: u32 = 0x0000_0801;

/// Reads an IDX file of unsigned bytes with the given magic (gzipped or not: gzip is
/// recognised by its magic bytes, and a multi-member stream is read whole, as `gzip -d` does)
/// and returns its identity, dimensions and data.
///
/// The stream is read only up to the size the header declares, plus one byte to tell an
/// oversized file: a file that inflates to more than its header says is rejected at that byte.
fn read_idx(path: &Path, magic: u32) -> Result<(DataFile, Vec<usize>, Vec<u8>), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let bytes_on_disk = file.metadata().map_err(io)?.len();
    let mut raw = BufReader::new(file);
    let mut head = Vec::with_capacity(HEAD_BYTES);
    (&mut raw)
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let identity = DataFile::of(path, &head, bytes_on_disk);
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let rest = std::io::Cursor::new(head).chain(raw);
    let mut reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(rest))
    } else {
        Box::new(rest)
    };
    let rank = (magic & 0xff) as usize;
    let header_len = 4 + 4 * rank;
    let mut header = Vec::with_capacity(header_len);
    (&mut reader)
        .take(header_len as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    let truncated = |expected, found| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found,
    };
    let found = be_u32(&header, 0).ok_or_else(|| truncated(header_len, header.len()))?;
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what: if magic == IDX_IMAGES {
                "IDX unsigned-byte images"
            } else {
                "IDX unsigned-byte labels"
            },
        });
    }
    let mut dims = Vec::with_capacity(rank);
    for i in 0..rank {
        dims.push(
            be_u32(&header, 4 + 4 * i).ok_or_else(|| truncated(header_len, header.len()))? as usize,
        );
    }
    let body = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| truncated(usize::MAX, header_len))?;
    let expected = body.saturating_add(header_len);
    let mut data = Vec::new();
    (&mut reader)
        .take(body as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() != body {
        return Err(truncated(expected, header_len + data.len()));
    }
    let mut one = [0u8; 1];
    if reader.read(&mut one).map_err(io)? != 0 {
        return Err(DataError::Oversized {
            path: path.to_path_buf(),
            expected,
        });
    }
    Ok((identity, dims, data))
}

fn idx_names(prefix: &str, what: &str) -> Vec<String> {
    let dotted = format!(
        "{prefix}-{what}.idx{}-ubyte",
        if what == "images" { 3 } else { 1 }
    );
    let dashed = format!(
        "{prefix}-{what}-idx{}-ubyte",
        if what == "images" { 3 } else { 1 }
    );
    vec![
        format!("{dashed}.gz"),
        dashed,
        format!("{dotted}.gz"),
        dotted,
    ]
}

fn read_idx_split(
    kind: DatasetKind,
    dir: &Path,
    prefix: &str,
    split: &'static str,
    files: &mut Vec<DataFile>,
) -> Result<Split, DataError> {
    let spec = kind.spec();
    let (wanted_images, wanted_labels) = if split == "training" {
        ("training images", "training labels")
    } else {
        ("test images", "test labels")
    };
    let images_path = find(kind, dir, &idx_names(prefix, "images"), wanted_images)?;
    let labels_path = find(kind, dir, &idx_names(prefix, "labels"), wanted_labels)?;
    let (identity, dims, pixels) = read_idx(&images_path, IDX_IMAGES)?;
    files.push(identity);
    let (n, rows, cols) = match dims.as_slice() {
        [n, r, c] => (*n, *r, *c),
        _ => (0, 0, 0),
    };
    let side = spec.size as usize;
    if (rows, cols) != (side, side) {
        return Err(DataError::BadShape {
            path: images_path,
            found: (rows, cols),
            expected: (side, side),
        });
    }
    let (identity, ldims, labels) = read_idx(&labels_path, IDX_LABELS)?;
    files.push(identity);
    let nl = ldims.first().copied().unwrap_or(0);
    if nl != n {
        return Err(DataError::CountMismatch {
            images_path,
            images: n,
            labels_path,
            labels: nl,
        });
    }
    if n == 0 {
        return Err(DataError::Empty { path: images_path });
    }
    check_labels(&labels_path, labels.iter().copied(), spec.classes as usize)?;
    let images = Tensor::f_from_slice(&pixels)?.f_view([n as i64, 1, rows as i64, cols as i64])?;
    let labels = Tensor::f_from_slice(&labels)?.f_to_kind(Kind::Int64)?;
    Ok(Split { images, labels })
}

fn check_labels(
    path: &Path,
    labels: impl Iterator<Item = u8>,
    classes: usize,
) -> Result<(), DataError> {
    for (index, label) in labels.enumerate() {
        if usize::from(label) >= classes {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                index,
                label,
                classes,
            });
        }
    }
    Ok(())
}

/// CIFAR binary records: label byte(s) then 3·32·32 pixels, channel-major (R plane, G, B).
fn read_cifar_split(
    kind: DatasetKind,
    dir: &Path,
    names: &[String],
    wanted: &'static str,
    files: &mut Vec<DataFile>,
) -> Result<Split, DataError> {
    // CIFAR-100 records carry the coarse label first, then the fine label we train on.
    let label_bytes = if kind == DatasetKind::Cifar100 { 2 } else { 1 };
    let pixels_per_image = 3 * 32 * 32;
    let record = label_bytes + pixels_per_image;
    let classes = kind.spec().classes as usize;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    let mut first = None;
    for name in names {
        let path = find(kind, dir, std::slice::from_ref(name), wanted)?;
        let bytes = std::fs::read(&path).map_err(|source| DataError::Io {
            path: path.clone(),
            source,
        })?;
        files.push(DataFile::of(&path, &bytes, bytes.len() as u64));
        if bytes.is_empty() || bytes.len() % record != 0 {
            let whole = bytes.len() / record;
            return Err(DataError::Truncated {
                path,
                expected: (whole + 1) * record,
                found: bytes.len(),
            });
        }
        let file_labels: Vec<u8> = bytes
            .chunks_exact(record)
            .filter_map(|r| r.get(label_bytes - 1).copied())
            .collect();
        check_labels(&path, file_labels.iter().copied(), classes)?;
        labels.extend(file_labels);
        for r in bytes.chunks_exact(record) {
            pixels.extend_from_slice(r.get(label_bytes..).unwrap_or_default());
        }
        first.get_or_insert(path);
    }
    let n = labels.len() as i64;
    let images = Tensor::f_from_slice(&pixels)?.f_view([n, 3, 32, 32])?;
    let labels = Tensor::f_from_slice(&labels)?.f_to_kind(Kind::Int64)?;
    Ok(Split { images, labels })
}

/// Writers for the same formats: used by the tests to make small files, and handy for users
/// who want to cut a dataset down.
pub mod write {
    use std::io::Write;
    use std::path::Path;

    /// Writes an IDX unsigned-byte image file (`n` images of `rows × cols`), gzipped if the
    /// name ends in `.gz`.
    ///
    /// # Errors
    /// An I/O error.
    pub fn idx_images(path: &Path, rows: u32, cols: u32, pixels: &[u8]) -> std::io::Result<()> {
        let n = pixels.len() / (rows as usize * cols as usize).max(1);
        let mut bytes = Vec::with_capacity(16 + pixels.len());
        for v in [super::IDX_IMAGES, n as u32, rows, cols] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(pixels);
        write_maybe_gz(path, &bytes)
    }

    /// Writes an IDX unsigned-byte label file, gzipped if the name ends in `.gz`.
    ///
    /// # Errors
    /// An I/O error.
    pub fn idx_labels(path: &Path, labels: &[u8]) -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(8 + labels.len());
        for v in [super::IDX_LABELS, labels.len() as u32] {
            bytes.extend_from_slice(&v.to_be_bytes());
        }
        bytes.extend_from_slice(labels);
        write_maybe_gz(path, &bytes)
    }

    /// Writes a CIFAR binary file: for each image its label byte(s) then its 3072 pixels.
    /// `labels[i]` holds one byte (CIFAR-10) or two (CIFAR-100: coarse, fine).
    ///
    /// # Errors
    /// An I/O error.
    pub fn cifar(path: &Path, labels: &[&[u8]], pixels: &[u8]) -> std::io::Result<()> {
        let mut bytes = Vec::new();
        for (label, image) in labels.iter().zip(pixels.chunks_exact(3 * 32 * 32)) {
            bytes.extend_from_slice(label);
            bytes.extend_from_slice(image);
        }
        std::fs::write(path, bytes)
    }

    fn write_maybe_gz(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        if path.extension().is_some_and(|e| e == "gz") {
            let file = std::fs::File::create(path)?;
            let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            enc.write_all(bytes)?;
            enc.finish()?.sync_all()
        } else {
            std::fs::write(path, bytes)
        }
    }
}
