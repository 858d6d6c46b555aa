//! Reading the files: finding them in a directory, IDX (gzipped or not) and the CIFAR
//! binary records, each checked as it is read.

use super::{DataError, DataFile, DatasetKind, Split, HEAD_BYTES};
use flate2::read::MultiGzDecoder;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The first of `names`, in `dir` or one of the archive subdirectories, that exists.
pub(super) fn find(
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

pub(super) fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the rank.
pub(super) const IDX_IMAGES: u32 = 0x0000_0803;
pub(super) const IDX_LABELS: u32 = 0x0000_0801;

/// Reads an IDX file of unsigned bytes with the given magic (gzipped or not: gzip is
/// recognised by its magic bytes, and a multi-member stream is read whole, as `gzip -d` does)
/// and returns its identity, dimensions and data.
///
/// The stream is read only up to the size the header declares, plus one byte to tell an
/// oversized file: a file that inflates to more than its header says is rejected at that byte.
pub(super) fn read_idx(
    path: &Path,
    magic: u32,
) -> Result<(DataFile, Vec<usize>, Vec<u8>), DataError> {
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

pub(super) fn idx_names(prefix: &str, what: &str) -> Vec<String> {
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

pub(super) fn read_idx_split(
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

pub(super) fn check_labels(
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
pub(super) fn read_cifar_split(
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
