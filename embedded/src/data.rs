//! The digits baked into flash: 8×8 grey levels in 0..=16 (see `data/README.md`).

/// Pixels per image.
pub const PIXELS: usize = 64;
/// Digit classes.
pub const CLASSES: usize = 10;
/// Bytes per record: the label, then the pixels.
const RECORD: usize = 1 + PIXELS;

static TRAIN_BYTES: &[u8] = include_bytes!("../data/digits-train.bin");
static TEST_BYTES: &[u8] = include_bytes!("../data/digits-test.bin");

/// Training images (600).
pub const TRAIN_LEN: usize = TRAIN_BYTES.len() / RECORD;
/// Test images (300), never trained on.
pub const TEST_LEN: usize = TEST_BYTES.len() / RECORD;

/// A labelled set of images stored back to back in flash.
#[derive(Clone, Copy)]
pub struct Digits(&'static [u8]);

/// The training set.
pub const TRAIN: Digits = Digits(TRAIN_BYTES);
/// The test set.
pub const TEST: Digits = Digits(TEST_BYTES);

/// One image: its label and its grey levels scaled to [0, 1].
pub struct Example {
    /// The digit, 0–9.
    pub label: usize,
    /// Pixel intensities, row-major.
    pub pixels: [f32; PIXELS],
}

impl Digits {
    /// Number of images.
    pub fn len(self) -> usize {
        self.0.len() / RECORD
    }

    /// Image `i`, or `None` past the end.
    pub fn get(self, i: usize) -> Option<Example> {
        let record = self.0.get(i * RECORD..(i + 1) * RECORD)?;
        let (&label, grey) = record.split_first()?;
        let mut pixels = [0.0; PIXELS];
        for (p, &g) in pixels.iter_mut().zip(grey) {
            *p = f32::from(g) / 16.0;
        }
        Some(Example {
            label: usize::from(label),
            pixels,
        })
    }
}
