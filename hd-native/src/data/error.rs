//! [`DataError`]: what can go wrong reading a dataset, each variant naming the file.

use super::DatasetKind;
use std::path::PathBuf;

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
