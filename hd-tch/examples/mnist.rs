//! Trains a 784–1000–10 MLP on MNIST with Adam-HD: Adam whose learning rate α is itself
//! learned, by gradient descent on the loss.
//! Usage: mnist [DATA_DIR [EPOCHS]], DATA_DIR holding the four uncompressed IDX files.

use hd_tch::tch::nn::{self, Module, ModuleT};
use hd_tch::tch::{vision, Device};
use hd_tch::{Config, HdOptimizer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "data".into());
    let epochs: u32 = args.next().map_or(Ok(10), |s| s.parse())?;
    let data = vision::mnist::load_dir(&dir)?;

    let device = Device::cuda_if_available();
    let vs = nn::VarStore::new(device);
    let root = vs.root();
    let net = nn::seq()
        .add(nn::linear(&root / "fc1", 784, 1000, Default::default()))
        .add_fn(|x| x.relu())
        .add(nn::linear(&root / "fc2", 1000, 10, Default::default()));
    // The paper's Adam-HD: α0 = 0.001, hypergradient learning rate β = 1e-7.
    let mut opt = HdOptimizer::new(&vs, Config::adam(0.001).with_hd(1e-7))?;

    for epoch in 1..=epochs {
        for (x, y) in data.train_iter(128).shuffle().to_device(device) {
            let loss = net.forward(&x).cross_entropy_for_logits(&y);
            opt.backward_step(&loss)?; // zero_grad, backward, step
        }
        opt.check_finite()?;
        let accuracy =
            net.batch_accuracy_for_logits(&data.test_images, &data.test_labels, device, 1024);
        println!(
            "epoch {epoch}: test accuracy {:.2} %, alpha {:.3e}",
            100.0 * accuracy,
            opt.alpha_value()?
        );
    }
    Ok(())
}
