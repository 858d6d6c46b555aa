//! Small dataset files in the real formats, written by the tests themselves.

use hd_native::data::write;
use std::path::Path;

/// A tiny deterministic generator (64-bit LCG, Knuth's constants): tests need reproducible
/// noise, not quality randomness.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }
}

/// Images whose class is learnable: class c lights up horizontal band c (of `classes`
/// bands) over low noise.
pub fn images(
    n: usize,
    channels: usize,
    side: usize,
    classes: usize,
    seed: u64,
) -> (Vec<u8>, Vec<u8>) {
    let mut rng = Lcg(seed);
    let mut pixels = Vec::with_capacity(n * channels * side * side);
    let mut labels = Vec::with_capacity(n);
    let band = (side / classes.min(side)).max(1);
    for _ in 0..n {
        let c = (rng.next_u32() as usize) % classes;
        labels.push(c as u8);
        let row0 = (c % side.div_ceil(band)) * band;
        for _ in 0..channels {
            for r in 0..side {
                for _ in 0..side {
                    let base = if r >= row0 && r < row0 + band {
                        200
                    } else {
                        20
                    };
                    pixels.push(base + (rng.next_u32() % 40) as u8);
                }
            }
        }
    }
    (pixels, labels)
}

/// MNIST-format files (`train-*`, `t10k-*`), gzipped when `gz`.
pub fn write_mnist(dir: &Path, train: usize, test: usize, gz: bool) {
    let ext = if gz { ".gz" } else { "" };
    for (prefix, n, seed) in [("train", train, 1), ("t10k", test, 2)] {
        let (px, lb) = images(n, 1, 28, 10, seed);
        write::idx_images(
            &dir.join(format!("{prefix}-images-idx3-ubyte{ext}")),
            28,
            28,
            &px,
        )
        .expect("write images");
        write::idx_labels(&dir.join(format!("{prefix}-labels-idx1-ubyte{ext}")), &lb)
            .expect("write labels");
    }
}

/// CIFAR-10 binary files: five training batches of `per_batch` and a test batch of `test`.
pub fn write_cifar10(dir: &Path, per_batch: usize, test: usize) {
    for i in 1..=5 {
        let (px, lb) = images(per_batch, 3, 32, 10, 10 + i);
        let labels: Vec<[u8; 1]> = lb.iter().map(|&l| [l]).collect();
        let refs: Vec<&[u8]> = labels.iter().map(|l| l.as_slice()).collect();
        write::cifar(&dir.join(format!("data_batch_{i}.bin")), &refs, &px).expect("write");
    }
    let (px, lb) = images(test, 3, 32, 10, 3);
    let labels: Vec<[u8; 1]> = lb.iter().map(|&l| [l]).collect();
    let refs: Vec<&[u8]> = labels.iter().map(|l| l.as_slice()).collect();
    write::cifar(&dir.join("test_batch.bin"), &refs, &px).expect("write");
}

/// CIFAR-100 binary files (coarse label = fine / 5, as a stand-in).
pub fn write_cifar100(dir: &Path, train: usize, test: usize) {
    for (name, n, seed) in [("train.bin", train, 4), ("test.bin", test, 5)] {
        let (px, lb) = images(n, 3, 32, 100, seed);
        let labels: Vec<[u8; 2]> = lb.iter().map(|&l| [l / 5, l]).collect();
        let refs: Vec<&[u8]> = labels.iter().map(|l| l.as_slice()).collect();
        write::cifar(&dir.join(name), &refs, &px).expect("write");
    }
}
