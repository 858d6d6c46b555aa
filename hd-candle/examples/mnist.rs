//! LogReg and the paper's MLP (784-1000-1000-10, ReLU) on MNIST with SGD and SGD-HD, as in
//! Baydin et al. §4 (α0 = 0.001, β = 0.001, batch 128, L2 1e−4), printing α and the test
//! accuracy after each epoch.
//!
//! ```sh
//! cargo xtask data    # MNIST's IDX files into data/mnist
//! cargo run --release -p hd-candle --example mnist -- [DATA_DIR] [TRAIN_LIMIT] [TEST_LIMIT] [EPOCHS]
//! ```
//!
//! DATA_DIR holds `train-images.idx3-ubyte` (or `train-images-idx3-ubyte`, either optionally
//! `.gz`) and the three other files; the limits take the first examples of each set.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{linear, loss, Linear, Optimizer, VarBuilder, VarMap};
use hd_candle::{paper, Config, HdOptimizer, Variant};
use std::error::Error;
use std::io::Read;
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One IDX file's bytes, from `dir/name` with `-` or `.` before `idx`, raw or gzipped.
fn read_idx(dir: &Path, stem: &str, kind: &str) -> Result<Vec<u8>> {
    for sep in [".", "-"] {
        let name = format!("{stem}{sep}{kind}-ubyte");
        let raw = dir.join(&name);
        if raw.is_file() {
            return Ok(std::fs::read(raw)?);
        }
        let gz = dir.join(format!("{name}.gz"));
        if gz.is_file() {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(gz)?).read_to_end(&mut out)?;
            return Ok(out);
        }
    }
    Err(format!("no {stem}.{kind}-ubyte[.gz] in {}", dir.display()).into())
}

/// The body of an IDX file after its header, checking the magic number (unsigned bytes,
/// `dims` dimensions) and that the body holds every element the header counts.
fn idx_body(bytes: &[u8], dims: usize, limit: usize) -> Result<(usize, &[u8])> {
    let word = |i: usize| -> Result<usize> {
        let b: [u8; 4] = bytes
            .get(4 * i..4 * i + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or("truncated IDX header")?;
        Ok(u32::from_be_bytes(b) as usize)
    };
    if word(0)? != 0x0800 + dims {
        return Err("not an IDX file of unsigned bytes with the expected rank".into());
    }
    let n = word(1)?;
    let per: usize = (2..=dims).map(word).product::<Result<usize>>()?;
    let body = bytes.get(4 * (dims + 1)..).ok_or("truncated IDX file")?;
    if body.len() != n * per {
        return Err("the IDX body does not match its header".into());
    }
    let n = n.min(limit);
    Ok((n, body.get(..n * per).ok_or("truncated IDX file")?))
}

/// Images scaled to [0, 1] `[n, 784]` and labels `[n]`.
fn load(dir: &Path, stem: &str, limit: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let images = read_idx(dir, &format!("{stem}-images"), "idx3")?;
    let labels = read_idx(dir, &format!("{stem}-labels"), "idx1")?;
    let (n, pixels) = idx_body(&images, 3, limit)?;
    let (m, classes) = idx_body(&labels, 1, limit)?;
    if n != m || pixels.len() != n * 784 {
        return Err(format!("{stem}: {n} images of 28×28 but {m} labels").into());
    }
    let x = Tensor::from_slice(pixels, (n, 784), dev)?.to_dtype(DType::F32)? / 255.0;
    let y = Tensor::from_slice(classes, n, dev)?.to_dtype(DType::U32)?;
    Ok((x?, y))
}

/// LogReg (one layer) or the MLP (ReLU between layers).
struct Net(Vec<Linear>);

impl Module for Net {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.0.iter().enumerate() {
            h = layer.forward(&h)?;
            if i + 1 < self.0.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }
}

fn net(sizes: &[usize], vb: &VarBuilder) -> Result<Net> {
    let layers = sizes
        .windows(2)
        .enumerate()
        .map(|(i, w)| match w {
            [a, b] => linear(*a, *b, vb.pp(format!("fc{i}"))),
            _ => Err(candle_core::Error::Msg("a layer needs two sizes".into())),
        })
        .collect::<candle_core::Result<_>>()?;
    Ok(Net(layers))
}

/// A reproducible shuffle (Fisher–Yates over a linear congruential generator).
fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    for i in (1..n).rev() {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (s >> 33) as usize % (i + 1));
    }
    order
}

fn accuracy(model: &Net, x: &Tensor, y: &Tensor) -> Result<f32> {
    let predicted = model.forward(x)?.argmax(D::Minus1)?;
    let right = predicted.eq(y)?.to_dtype(DType::F32)?.sum_all()?;
    Ok(right.to_scalar::<f32>()? / y.dims1()?.max(1) as f32)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("{s}: {e}").into())
        })
    };
    let dir = args
        .first()
        .map_or(PathBuf::from("data/mnist"), PathBuf::from);
    let (train_limit, test_limit, epochs) = (arg(1, usize::MAX)?, arg(2, usize::MAX)?, arg(3, 5)?);
    let dev = Device::Cpu;
    let (train_x, train_y) = load(&dir, "train", train_limit, &dev)?;
    let (test_x, test_y) = load(&dir, "t10k", test_limit, &dev)?;
    let n = train_y.dims1()?;
    let batch = paper::BATCH_SIZE as usize;
    println!(
        "MNIST from {}: {n} training, {} test images",
        dir.display(),
        test_y.dims1()?
    );
    for (model_name, sizes) in [("logreg", &[784, 10][..]), ("mlp", &[784, 1000, 1000, 10])] {
        for variant in [Variant::Sgd, Variant::SgdHd] {
            let varmap = VarMap::new();
            let model = net(sizes, &VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
            let config: Config = variant
                .config(paper::ALPHA0, paper::BETA_SGD, 0.0)
                .with_weight_decay(paper::WEIGHT_DECAY_SMALL);
            let mut opt = HdOptimizer::from_varmap(&varmap, config)?;
            for epoch in 1..=epochs {
                let order = shuffled(n, epoch as u64);
                let mut total = 0.0f64;
                for (k, idx) in order.chunks(batch).enumerate() {
                    let idx = Tensor::from_slice(idx, idx.len(), &dev)?;
                    let (x, y) = (
                        train_x.index_select(&idx, 0)?,
                        train_y.index_select(&idx, 0)?,
                    );
                    let l = loss::cross_entropy(&model.forward(&x)?, &y)?;
                    opt.backward_step(&l)?;
                    total += f64::from(l.to_scalar::<f32>()?);
                    if k == 0 && epoch == 1 {
                        println!(
                            "{model_name} {variant}: α after the first step {:.6}",
                            opt.learning_rate()
                        );
                    }
                }
                println!(
                    "{model_name} {variant} epoch {epoch}: loss {:.4}  α {:.6}  test accuracy {:.2}%",
                    total / n.div_ceil(batch).max(1) as f64,
                    opt.learning_rate(),
                    100.0 * accuracy(&model, &test_x, &test_y)?
                );
            }
        }
    }
    Ok(())
}
