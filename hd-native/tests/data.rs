//! Dataset readers on small files written in the real formats, and every malformed file.

mod common;

use hd_native::data::{write, DataError, Dataset, DatasetKind};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
    Dataset::load(kind, dir, Device::Cpu)
}

#[test]
fn reads_mnist_gzipped_and_plain() {
    for gz in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        common::write_mnist(dir.path(), 50, 20, gz);
        for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
            let d = load(kind, dir.path()).expect("loads");
            assert_eq!(d.train.images.size(), [50, 1, 28, 28]);
            assert_eq!(d.test.images.size(), [20, 1, 28, 28]);
            assert_eq!(d.train.labels.size(), [50]);
            // The pixels and labels are the ones written.
            let (px, lb) = common::images(50, 1, 28, 10, 1);
            let got: Vec<u8> = Vec::try_from(d.train.images.flatten(0, -1)).expect("u8");
            assert_eq!(got, px);
            let got: Vec<i64> = Vec::try_from(&d.train.labels).expect("i64");
            assert_eq!(got, lb.iter().map(|&l| i64::from(l)).collect::<Vec<_>>());
        }
    }
}

#[test]
fn reads_the_official_archive_layouts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("cifar-10-batches-bin");
    std::fs::create_dir(&sub).expect("mkdir");
    common::write_cifar10(&sub, 4, 6);
    let d = load(DatasetKind::Cifar10, dir.path()).expect("loads");
    assert_eq!(d.train.images.size(), [20, 3, 32, 32]);
    assert_eq!(d.test.labels.size(), [6]);

    let dir = tempfile::tempdir().expect("tempdir");
    common::write_cifar100(dir.path(), 30, 10);
    let d = load(DatasetKind::Cifar100, dir.path()).expect("loads");
    assert_eq!(d.train.images.size(), [30, 3, 32, 32]);
    // The fine label (the second byte) is the one kept.
    let (_, lb) = common::images(30, 3, 32, 100, 4);
    let got: Vec<i64> = Vec::try_from(&d.train.labels).expect("i64");
    assert_eq!(got, lb.iter().map(|&l| i64::from(l)).collect::<Vec<_>>());
}

#[test]
fn batches_are_normalised_and_augmented_in_shape() {
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(dir.path(), 8, 8);
    let d = load(DatasetKind::Cifar10, dir.path()).expect("loads");
    let index = Tensor::arange(16, (Kind::Int64, Device::Cpu));
    let (x, y) = d.batch(&d.train, &index, false).expect("batch");
    assert_eq!(x.size(), [16, 3, 32, 32]);
    assert_eq!(y.size(), [16]);
    // Pixel 0 of image 0, channel 0, by hand: (p/255 − 0.4914)/0.2470.
    let p = f64::from(d.train.images.int64_value(&[0, 0, 0, 0]) as u8);
    let expected = (p / 255.0 - 0.4914) / 0.2470;
    assert!((x.double_value(&[0, 0, 0, 0]) - expected).abs() < 1e-5);
    tch::manual_seed(0);
    let (xa, _) = d.batch(&d.train, &index, true).expect("augmented");
    assert_eq!(xa.size(), [16, 3, 32, 32]);
    // With 16 images, some crop offset or flip is not the identity.
    assert!(
        xa.ne_tensor(&x).any().int64_value(&[]) == 1,
        "augmentation changed nothing"
    );
}

fn write_valid_mnist(dir: &Path) {
    common::write_mnist(dir, 30, 10, false);
}

fn error_of(kind: DatasetKind, dir: &Path) -> DataError {
    match load(kind, dir) {
        Ok(_) => panic!("{kind} in {} loaded but should not", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn missing_files_name_what_is_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let e = error_of(DatasetKind::Mnist, dir.path());
    assert!(
        matches!(
            e,
            DataError::Missing {
                wanted: "training images",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
    let e = error_of(DatasetKind::Cifar100, dir.path());
    assert!(e.to_string().contains("train.bin"), "{e}");
}

#[test]
fn each_malformed_file_is_a_clear_error_naming_it() {
    type Corrupt = fn(&Path);
    let cases: Vec<(&str, Corrupt, &str)> = vec![
        (
            "bad magic",
            |d| {
                let p = d.join("train-images-idx3-ubyte");
                let mut b = std::fs::read(&p).expect("read");
                b[3] = 0x02;
                std::fs::write(&p, b).expect("write");
            },
            "bad magic number 0x00000802",
        ),
        (
            "truncated images",
            |d| {
                let p = d.join("train-images-idx3-ubyte");
                let b = std::fs::read(&p).expect("read");
                std::fs::write(&p, &b[..b.len() - 100]).expect("write");
            },
            "truncated",
        ),
        (
            "truncated header",
            |d| std::fs::write(d.join("t10k-labels-idx1-ubyte"), [0u8, 0, 8]).expect("write"),
            "truncated",
        ),
        (
            "label out of range",
            |d| {
                let p = d.join("t10k-labels-idx1-ubyte");
                let mut b = std::fs::read(&p).expect("read");
                b[8 + 3] = 10;
                std::fs::write(&p, b).expect("write");
            },
            "label 10 of item 3 is out of range",
        ),
        (
            "count mismatch",
            |d| {
                let (_, lb) = common::images(29, 1, 28, 10, 9);
                write::idx_labels(&d.join("train-labels-idx1-ubyte"), &lb).expect("write");
            },
            "holds 30 images but",
        ),
        (
            "wrong image size",
            |d| {
                write::idx_images(
                    &d.join("t10k-images-idx3-ubyte"),
                    32,
                    32,
                    &[0; 32 * 32 * 10],
                )
                .expect("write");
            },
            "images are (32, 32), expected (28, 28)",
        ),
        (
            "corrupt gzip",
            |d| {
                let p = d.join("train-labels-idx1-ubyte");
                std::fs::remove_file(&p).expect("rm");
                let mut b = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
                b.extend_from_slice(&[0xff; 20]);
                std::fs::write(d.join("train-labels-idx1-ubyte.gz"), b).expect("write");
            },
            "train-labels-idx1-ubyte.gz",
        ),
    ];
    for (name, corrupt, message) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        write_valid_mnist(dir.path());
        corrupt(dir.path());
        let e = error_of(DatasetKind::Mnist, dir.path());
        let text = e.to_string();
        assert!(text.contains(message), "{name}: {text:?} lacks {message:?}");
        assert!(
            text.contains(&dir.path().display().to_string()),
            "{name}: {text:?} does not name the file"
        );
    }
}

#[test]
fn malformed_cifar_files_are_errors() {
    // A file that is not a whole number of 3073-byte records.
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(dir.path(), 3, 3);
    let p = dir.path().join("data_batch_2.bin");
    let b = std::fs::read(&p).expect("read");
    std::fs::write(&p, &b[..b.len() - 7]).expect("write");
    let e = error_of(DatasetKind::Cifar10, dir.path());
    assert!(
        matches!(
            e,
            DataError::Truncated {
                expected: 9219,
                found: 9212,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("data_batch_2.bin"), "{e}");

    // A CIFAR-10 label of 10.
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_cifar10(dir.path(), 3, 3);
    let p = dir.path().join("test_batch.bin");
    let mut b = std::fs::read(&p).expect("read");
    b[3073] = 10;
    std::fs::write(&p, b).expect("write");
    let e = error_of(DatasetKind::Cifar10, dir.path());
    assert!(e.to_string().contains("label 10 of item 1"), "{e}");

    // An empty file.
    let dir = tempfile::tempdir().expect("tempdir");
    common::write_cifar100(dir.path(), 3, 3);
    std::fs::write(dir.path().join("test.bin"), []).expect("write");
    let e = error_of(DatasetKind::Cifar100, dir.path());
    assert!(e.to_string().contains("test.bin"), "{e}");
}

/// The bytes of an IDX image file of `n` images (28 × 28) with the given pixels.
fn idx_image_bytes(n: u32, pixels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x0000_0803u32, n, 28, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(pixels);
    b
}

fn gzip(parts: &[&[u8]]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for p in parts {
        enc.write_all(p).expect("compress");
    }
    enc.finish().expect("compress")
}

/// A valid MNIST directory (see `write_valid_mnist`) without its training images, for a test
/// to write them in its own way; and the pixels they held.
fn mnist_without_training_images() -> (tempfile::TempDir, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    write_valid_mnist(dir.path());
    std::fs::remove_file(dir.path().join("train-images-idx3-ubyte")).expect("rm");
    let (px, _) = common::images(30, 1, 28, 10, 1);
    (dir, px)
}

/// A gzip "bomb": a valid header for 30 images, their pixels, then 256 MiB of zeros that
/// compress to a fraction of a megabyte. Reading stops at the first byte past the 23,536
/// bytes the header declares (16 + 30·784, by hand) and says so, rather than inflating it
/// all (the old reader inflated the whole stream, then reported its full size).
#[test]
fn a_gzip_bomb_stops_at_the_first_byte_past_its_header() {
    let (dir, px) = mnist_without_training_images();
    let zeros = vec![0u8; 1 << 20];
    let mut parts: Vec<&[u8]> = Vec::new();
    let head = idx_image_bytes(30, &px);
    parts.push(&head);
    for _ in 0..256 {
        parts.push(&zeros);
    }
    let bomb = gzip(&parts);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let path = dir.path().join("train-images-idx3-ubyte.gz");
    std::fs::write(&path, bomb).expect("write");
    let e = error_of(DatasetKind::Mnist, dir.path());
    assert!(
        matches!(&e, DataError::Oversized { expected: 23_536, path: p } if *p == path),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("holds more than the 23536 bytes its header declares"),
        "{e}"
    );
}

/// A multi-member gzip file (what `cat a.gz b.gz` or `pigz` make, and `gzip -d` reads whole)
/// is the concatenation of its members' contents.
#[test]
fn a_multi_member_gzip_file_is_read_whole() {
    let (dir, px) = mnist_without_training_images();
    let bytes = idx_image_bytes(30, &px);
    let (a, b) = bytes.split_at(5000);
    let mut file = gzip(&[a]);
    file.extend_from_slice(&gzip(&[b]));
    std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), file).expect("write");
    let d = load(DatasetKind::Mnist, dir.path()).expect("loads");
    let got: Vec<u8> = Vec::try_from(d.train.images.flatten(0, -1)).expect("u8");
    assert_eq!(got, px);
}

/// The files read are recorded with their sizes and a hash of their first bytes, so a run
/// can recognise its data: the same files give the same record, other files another.
#[test]
fn the_data_files_are_identified() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    write_valid_mnist(a.path());
    write_valid_mnist(b.path());
    let (fa, fb) = (
        load(DatasetKind::Mnist, a.path()).expect("loads").files,
        load(DatasetKind::Mnist, b.path()).expect("loads").files,
    );
    assert_eq!(fa, fb);
    assert_eq!(fa.len(), 4);
    assert_eq!(fa[0].name, "train-images-idx3-ubyte");
    assert_eq!(fa[0].bytes, 16 + 30 * 784);
    let (px, _) = common::images(30, 1, 28, 10, 7);
    write::idx_images(&b.path().join("train-images-idx3-ubyte"), 28, 28, &px).expect("write");
    let fb = load(DatasetKind::Mnist, b.path()).expect("loads").files;
    assert_ne!(fa[0].head_hash, fb[0].head_hash);
    assert_eq!(fa[1..], fb[1..]);
}
