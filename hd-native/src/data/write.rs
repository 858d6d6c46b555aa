//! Writers for the same formats: used by the tests to make small files, and handy for users
//! who want to cut a dataset down.

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
    for v in [super::read::IDX_IMAGES, n as u32, rows, cols] {
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
    for v in [super::read::IDX_LABELS, labels.len() as u32] {
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
