//! The paper's hyperparameters, written down once for every front end.
//!
//! Baydin, Cornish, Martínez Rubio, Schmidt & Wood, *Online Learning Rate Adaptation with
//! Hypergradient Descent* (ICLR 2018), §4 (experiments; DESIGN §2 lists them): minibatch
//! 128; α0 = 0.001; β = 0.001 for SGD-HD and SGDN-HD; β = 1e-7 for Adam-HD on logistic
//! regression and the MLP, 1e-8 on VGG; μ = 0.9; Adam (β1, β2, ε) = (0.9, 0.999, 1e-8) (that is
//! [`Adam::default`](crate::Adam), the one place those three numbers live); coupled L2 1e-4 on
//! logistic regression and the MLP; 20, 100 and 200 epochs. The multiplicative rule's
//! β′ = 0.02 is from the paper's α0-sensitivity study (§4, its Fig. 4), the only place it
//! runs HDM.
//!
//! ```
//! use hd_core::{paper, Optimizer, Variant};
//! let beta = paper::beta(Variant::AdamHd, paper::ModelKind::Mlp);
//! let opt = Optimizer::new(Variant::AdamHd.config(paper::ALPHA0, beta, paper::MU))?;
//! assert_eq!((opt.config().alpha0, beta), (0.001, 1e-7));
//! # Ok::<(), hd_core::Error>(())
//! ```

use crate::Variant;

/// Initial learning rate α0 of every optimizer.
pub const ALPHA0: f32 = 0.001;
/// Additive hypergradient rate β of SGD-HD and SGDN-HD, on every model.
pub const BETA_SGD: f32 = 0.001;
/// Additive hypergradient rate β of Adam-HD on logistic regression and the MLP.
pub const BETA_ADAM: f32 = 1e-7;
/// Additive hypergradient rate β of Adam-HD on VGG (and the other convnets).
pub const BETA_ADAM_CONVNET: f32 = 1e-8;
/// Multiplicative (HDM) rate β′, as in the α0-sensitivity study.
pub const BETA_MULT: f32 = 0.02;
/// Nesterov momentum μ of the SGDN family.
pub const MU: f32 = 0.9;
/// Minibatch size.
pub const BATCH_SIZE: u32 = 128;
/// Coupled L2 weight decay λ on logistic regression and the MLP (none on VGG).
pub const WEIGHT_DECAY_SMALL: f32 = 1e-4;

/// The paper's three kinds of model, which is all its per-model settings depend on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// Logistic regression 784→10 on MNIST.
    LogReg,
    /// The MLP 784→1000→1000→10 on MNIST.
    Mlp,
    /// VGG on CIFAR-10, and the other convnets run with VGG's settings.
    Convnet,
}

/// The hypergradient rate the paper gives `variant` on `model`: β for HD, β′ for HDM, and 0
/// for a base optimizer (which has none; β = 0 is the base rule bit for bit).
pub const fn beta(variant: Variant, model: ModelKind) -> f32 {
    match variant {
        Variant::Sgd | Variant::Sgdn | Variant::Adam => 0.0,
        Variant::SgdHd | Variant::SgdnHd => BETA_SGD,
        Variant::AdamHd => match model {
            ModelKind::LogReg | ModelKind::Mlp => BETA_ADAM,
            ModelKind::Convnet => BETA_ADAM_CONVNET,
        },
        Variant::SgdHdm | Variant::SgdnHdm | Variant::AdamHdm => BETA_MULT,
    }
}

/// Coupled L2 weight decay λ on `model`: 1e-4 on logistic regression and the MLP, 0 on VGG.
pub const fn weight_decay(model: ModelKind) -> f32 {
    match model {
        ModelKind::LogReg | ModelKind::Mlp => WEIGHT_DECAY_SMALL,
        ModelKind::Convnet => 0.0,
    }
}

/// Epochs the paper trains `model` for: 20 (logistic regression), 100 (MLP), 200 (VGG).
pub const fn epochs(model: ModelKind) -> u32 {
    match model {
        ModelKind::LogReg => 20,
        ModelKind::Mlp => 100,
        ModelKind::Convnet => 200,
    }
}

/// Whether `variant`'s step decays as 1/√t on `model`: plain Adam on logistic regression only.
/// The paper writes the decay "for Adam" on logistic regression; the reference code's Adam-HD
/// has none, and its logs' α peak (about 0.00116, then decaying) is of Adam-HD without it.
pub const fn adam_sqrt_decay(variant: Variant, model: ModelKind) -> bool {
    matches!(variant, Variant::Adam) && matches!(model, ModelKind::LogReg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Adam;

    const MODELS: [ModelKind; 3] = [ModelKind::LogReg, ModelKind::Mlp, ModelKind::Convnet];

    /// Typed from DESIGN §2 ("The paper's settings"), which quotes the paper's §4.
    #[test]
    fn common_settings_are_the_papers() {
        assert_eq!((ALPHA0, MU, BATCH_SIZE, BETA_MULT), (0.001, 0.9, 128, 0.02));
        let adam = Adam::default();
        assert_eq!((adam.beta1, adam.beta2, adam.eps), (0.9, 0.999, 1e-8));
        assert!(!adam.sqrt_decay);
    }

    /// DESIGN §2: β = 0.001 for SGD-HD and SGDN-HD; Adam-HD 1e-7 on logistic regression and
    /// the MLP, 1e-8 on VGG; β′ = 0.02 for HDM; nothing for a base optimizer.
    #[test]
    fn beta_per_rule_and_model() {
        let expected = |v: Variant, m: ModelKind| -> f32 {
            match (v.id(), m) {
                ("sgd" | "sgdn" | "adam", _) => 0.0,
                ("sgd-hd" | "sgdn-hd", _) => 0.001,
                ("adam-hd", ModelKind::Convnet) => 1e-8,
                ("adam-hd", _) => 1e-7,
                ("sgd-hdm" | "sgdn-hdm" | "adam-hdm", _) => 0.02,
                _ => f32::NAN,
            }
        };
        for v in Variant::ALL {
            for m in MODELS {
                assert_eq!(beta(v, m), expected(v, m), "{v} on {m:?}");
            }
        }
    }

    /// DESIGN §2: L2 1e-4 on logistic regression and the MLP; 20, 100, 200 epochs; the 1/√t
    /// decay for plain Adam on logistic regression only.
    #[test]
    fn per_model_settings() {
        let got = MODELS.map(|m| (weight_decay(m), epochs(m)));
        assert_eq!(got, [(1e-4, 20), (1e-4, 100), (0.0, 200)]);
        for v in Variant::ALL {
            let decayed = MODELS.map(|m| adam_sqrt_decay(v, m));
            let expected = [v == Variant::Adam, false, false];
            assert_eq!(decayed, expected, "{v}");
        }
    }
}
