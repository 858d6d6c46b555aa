//! Datasets in their standard on-disk formats: MNIST and Fashion-MNIST as IDX files (gzipped or
//! not), CIFAR-10 and CIFAR-100 as the "binary version" record files.
//!
//! Every file is checked as it is read (magic number, declared sizes against the bytes present,
//! label range, image and label counts), and each problem is a [`DataError`] that names the file
//! and what is wrong with it. Images stay `u8` on the device; [`Dataset::batch`] turns a batch
//! into normalised `f32` (and augments CIFAR training batches) right before use.
//!
//! The submodules: `read` (the file formats), `write` (writers of the same formats),
//! `error` (what can go wrong).

use std::fmt;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

mod error;
mod read;
pub mod write;

pub use error::DataError;
use read::{find, idx_names, read_cifar_split, read_idx_split};

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

/// Finds the files [`Dataset::load`] reads for `kind` in `dir`, in the same layouts, without
/// reading them: what a sweep checks before it starts a run.
///
/// # Errors
/// [`DataError::Missing`] for the first file none of whose accepted names exists.
pub fn locate(kind: DatasetKind, dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let wanted: Vec<(Vec<String>, &'static str)> = match kind {
        DatasetKind::Mnist | DatasetKind::FashionMnist => vec![
            (idx_names("train", "images"), "training images"),
            (idx_names("train", "labels"), "training labels"),
            (idx_names("t10k", "images"), "test images"),
            (idx_names("t10k", "labels"), "test labels"),
        ],
        DatasetKind::Cifar10 => (1..=5)
            .map(|i| (vec![format!("data_batch_{i}.bin")], "training batches"))
            .chain([(vec!["test_batch.bin".to_string()], "test batch")])
            .collect(),
        DatasetKind::Cifar100 => vec![
            (vec!["train.bin".to_string()], "training set"),
            (vec!["test.bin".to_string()], "test set"),
        ],
    };
    wanted
        .iter()
        .map(|(names, what)| find(kind, dir, names, what))
        .collect()
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
