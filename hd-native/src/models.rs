//! The models of the paper and of the seed study (DESIGN §1), as functions over an [`nn::Path`] (the tch-rs examples'
//! style). Each takes any dataset's input shape and class count ([`InputSpec`]).
//!
//! - [`logreg`]: multinomial logistic regression, one linear layer (paper §4.1).
//! - [`mlp`]: fully connected ReLU network, hidden sizes configurable (paper: 1000, 1000).
//! - [`vgg`]: VGG configuration D with one fc-512 before the classifier (paper §4.3; the
//!   CIFAR-10 VGG of Zagoruyko's torch blog), batch norm on by default.
//! - [`resnet18`], [`resnet101`]: ResNets in the CIFAR form (3×3 stem, no max-pool).
//! - [`wide_resnet`]: WideResNet-d-k (Zagoruyko & Komodakis 2016), pre-activation blocks.
//!
//! Each model starts from the initialisation its reference code gives it, not from tch's
//! defaults (Kaiming-uniform over the inputs, √6 times too wide for a linear layer; batch-norm
//! scales drawn from U(0, 1)): linear layers as PyTorch's `nn.Linear`; convolutions
//! N(0, √(2/n)) over n = k·k·out_channels, as the paper's VGG, torchvision's ResNet and the
//! WideResNet reference code all draw them; batch norm γ = 1, β = 0. What differs between the
//! models (the biases) is in each one's doc.

use crate::data::InputSpec;
use std::fmt;
use tch::nn::{self, ModuleT};
use tch::Tensor;

/// A model architecture and its size options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum Model {
    /// Logistic regression.
    Logreg,
    /// Multilayer perceptron with these hidden widths.
    Mlp {
        /// Width of each hidden layer, input side first.
        hidden: Vec<i64>,
    },
    /// VGG-16 (configuration D) with one fc-512.
    Vgg {
        /// Batch norm after every convolution.
        batch_norm: bool,
    },
    /// ResNet-18, CIFAR form.
    Resnet18,
    /// ResNet-101, CIFAR form.
    Resnet101,
    /// WideResNet of this depth and widening factor.
    Wrn {
        /// Total depth, `6n + 4`.
        depth: i64,
        /// Widening factor k.
        width: i64,
    },
}

/// The models by name, as `--model` takes them (`hd-native train` and `bench`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelName {
    /// Logistic regression.
    Logreg,
    /// Multilayer perceptron (`--hidden`).
    Mlp,
    /// VGG-16 with one fc-512 (`--no-batch-norm` to drop batch norm).
    Vgg,
    /// ResNet-18, CIFAR form.
    Resnet18,
    /// ResNet-101, CIFAR form.
    Resnet101,
    /// WideResNet (`--depth`, `--width`).
    Wrn,
}

impl ModelName {
    /// The model of this name with its default sizes: the paper's MLP (1000, 1000), VGG with
    /// batch norm, WRN-28-10. The one place a name becomes a model.
    pub fn model(self) -> Model {
        match self {
            ModelName::Logreg => Model::Logreg,
            ModelName::Mlp => Model::Mlp {
                hidden: vec![1000, 1000],
            },
            ModelName::Vgg => Model::Vgg { batch_norm: true },
            ModelName::Resnet18 => Model::Resnet18,
            ModelName::Resnet101 => Model::Resnet101,
            ModelName::Wrn => Model::Wrn {
                depth: 28,
                width: 10,
            },
        }
    }
}

impl Model {
    /// The model's name (its architecture without the sizes).
    pub fn name(&self) -> ModelName {
        match self {
            Model::Logreg => ModelName::Logreg,
            Model::Mlp { .. } => ModelName::Mlp,
            Model::Vgg { .. } => ModelName::Vgg,
            Model::Resnet18 => ModelName::Resnet18,
            Model::Resnet101 => ModelName::Resnet101,
            Model::Wrn { .. } => ModelName::Wrn,
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Model::Logreg => f.write_str("LogReg"),
            Model::Mlp { hidden } => {
                let h: Vec<String> = hidden.iter().map(i64::to_string).collect();
                write!(f, "MLP({})", h.join("-"))
            }
            Model::Vgg { batch_norm: true } => f.write_str("VGG-16-BN"),
            Model::Vgg { batch_norm: false } => f.write_str("VGG-16"),
            Model::Resnet18 => f.write_str("ResNet-18"),
            Model::Resnet101 => f.write_str("ResNet-101"),
            Model::Wrn { depth, width } => write!(f, "WRN-{depth}-{width}"),
        }
    }
}

/// A model option that cannot be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelError {
    /// WideResNet depth must be 6n + 4 with n ≥ 1.
    #[error("WideResNet depth must be 6n+4 (10, 16, 22, 28, 34, 40, …), got {0}")]
    WrnDepth(i64),
    /// A width or size must be positive.
    #[error("{what} must be positive, got {value}")]
    NotPositive {
        /// Which option.
        what: &'static str,
        /// The value given.
        value: i64,
    },
    /// A size option given without a model.
    #[error("--hidden, --no-batch-norm, --depth and --width need --model")]
    SizeWithoutModel,
    /// A size option given for a model it does not apply to.
    #[error("--{option} applies to --model {applies_to} only")]
    SizeNotApplicable {
        /// The option (`hidden`).
        option: &'static str,
        /// The model it applies to (`mlp`).
        applies_to: &'static str,
    },
}

/// A model as `train`'s command line and a plan give it: a name and size options, each
/// optional. [`model`](ModelSpec::model) is the one place they become a [`Model`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSpec {
    /// `--model`.
    pub name: Option<ModelName>,
    /// `--hidden` (MLP).
    pub hidden: Option<Vec<i64>>,
    /// `--no-batch-norm` (VGG).
    pub no_batch_norm: bool,
    /// `--depth` (WideResNet).
    pub depth: Option<i64>,
    /// `--width` (WideResNet).
    pub width: Option<i64>,
}

impl ModelSpec {
    /// The model the name and sizes describe (`None` without a name), the sizes not given
    /// taken from [`ModelName::model`]. Sizes are checked when the run resolves
    /// ([`Model::validate`]).
    ///
    /// # Errors
    /// A size option without a model, or for a model it does not apply to.
    pub fn model(&self) -> Result<Option<Model>, ModelError> {
        let sized = |option, applies_to| ModelError::SizeNotApplicable { option, applies_to };
        let Some(name) = self.name else {
            if self.hidden.is_some()
                || self.no_batch_norm
                || self.depth.is_some()
                || self.width.is_some()
            {
                return Err(ModelError::SizeWithoutModel);
            }
            return Ok(None);
        };
        if self.hidden.is_some() && name != ModelName::Mlp {
            return Err(sized("hidden", "mlp"));
        }
        if self.no_batch_norm && name != ModelName::Vgg {
            return Err(sized("no-batch-norm", "vgg"));
        }
        if (self.depth.is_some() || self.width.is_some()) && name != ModelName::Wrn {
            let option = if self.depth.is_some() {
                "depth"
            } else {
                "width"
            };
            return Err(sized(option, "wrn"));
        }
        let mut model = name.model();
        match &mut model {
            Model::Mlp { hidden } => {
                if let Some(h) = &self.hidden {
                    hidden.clone_from(h);
                }
            }
            Model::Vgg { batch_norm } => *batch_norm = !self.no_batch_norm,
            Model::Wrn { depth, width } => {
                *depth = self.depth.unwrap_or(*depth);
                *width = self.width.unwrap_or(*width);
            }
            Model::Logreg | Model::Resnet18 | Model::Resnet101 => {}
        }
        Ok(Some(model))
    }
}

/// A built model: a training-mode-aware module.
pub type Net = Box<dyn ModuleT>;

/// Builds `model` for inputs of shape `spec` under `p`.
///
/// # Errors
/// [`ModelError`] for sizes that cannot be built.
pub fn build(p: &nn::Path, model: &Model, spec: InputSpec) -> Result<Net, ModelError> {
    model.validate()?;
    Ok(match model {
        Model::Logreg => Box::new(logreg(p, spec)),
        Model::Mlp { hidden } => Box::new(mlp(p, spec, hidden)),
        Model::Vgg { batch_norm } => Box::new(vgg(p, spec, *batch_norm)),
        Model::Resnet18 => Box::new(resnet18(p, spec)),
        Model::Resnet101 => Box::new(resnet101(p, spec)),
        Model::Wrn { depth, width } => Box::new(wide_resnet(p, spec, *depth, *width)),
    })
}

impl Model {
    /// Checks the size options.
    ///
    /// # Errors
    /// [`ModelError`] for a width that is not positive or a WideResNet depth not of the form
    /// 6n + 4.
    pub fn validate(&self) -> Result<(), ModelError> {
        match self {
            Model::Mlp { hidden } => hidden
                .iter()
                .try_for_each(|&h| positive("MLP hidden width", h)),
            Model::Wrn { depth, width } => {
                positive("WideResNet width", *width)?;
                if *depth < 10 || (depth - 4) % 6 != 0 {
                    return Err(ModelError::WrnDepth(*depth));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl Model {
    /// The number of trainable parameters, where it follows from the sizes alone (LogReg
    /// and MLP, whose widths are free: `Σ (inputs + 1) · outputs` over the linear layers);
    /// `None` for the convolutional networks. Computed without overflow, so an absurd width
    /// can be refused before anything is allocated.
    pub fn parameter_count(&self, spec: InputSpec) -> Option<u128> {
        let linear = |i: i64, o: i64| -> u128 {
            let (i, o) = (
                u128::try_from(i).unwrap_or(0),
                u128::try_from(o).unwrap_or(0),
            );
            (i + 1) * o
        };
        match self {
            Model::Logreg => Some(linear(inputs(spec), spec.classes)),
            Model::Mlp { hidden } => {
                let mut total = 0u128;
                let mut width = inputs(spec);
                for &h in hidden {
                    total = total.saturating_add(linear(width, h));
                    width = h;
                }
                Some(total.saturating_add(linear(width, spec.classes)))
            }
            _ => None,
        }
    }
}

fn positive(what: &'static str, value: i64) -> Result<(), ModelError> {
    if value > 0 {
        Ok(())
    } else {
        Err(ModelError::NotPositive { what, value })
    }
}

fn inputs(spec: InputSpec) -> i64 {
    spec.channels * spec.size * spec.size
}

/// PyTorch's `nn.Linear` default, which the paper's code (and every reference here) builds its
/// linear layers with: U(−1/√fan_in, 1/√fan_in), for the weight (`kaiming_uniform_` with
/// a = √5 comes to this bound) and the bias alike. tch's own default draws the weight
/// Kaiming-uniform with the ReLU gain, √6 ≈ 2.45 times wider, which makes the first
/// hypergradients about a hundred times larger and SGD-HD diverge on the MLP at the paper's β.
fn torch_linear_uniform(fan_in: i64) -> nn::Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    nn::Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// He et al. (2015)'s normal for ReLU networks, counted over the outputs: N(0, √(2/n)) with
/// n = k·k·out_channels. torchvision's ResNet writes it `kaiming_normal_(w, mode="fan_out",
/// nonlinearity="relu")`; the paper's VGG (from the pytorch-vgg-cifar10 lineage) and the
/// WideResNet reference code (xternalz/WideResNet-pytorch) write
/// `w.normal_(0, math.sqrt(2. / n))`: the same distribution. tch's default is Kaiming-uniform
/// over the inputs: another shape, and another σ wherever in ≠ out channels.
fn he_normal_fan_out(out_channels: i64, kernel: i64) -> nn::Init {
    let n = (kernel * kernel * out_channels) as f64;
    nn::Init::Randn {
        mean: 0.0,
        stdev: (2.0 / n).sqrt(),
    }
}

/// Batch norm with γ = 1 and β = 0: PyTorch's `nn.BatchNorm2d` default since 2018, and what
/// torchvision's ResNet and the WideResNet reference code set explicitly. tch's default draws
/// γ ~ U(0, 1), as PyTorch did before.
fn batch_norm2d(p: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        ws_init: nn::Init::Const(1.0),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::batch_norm2d(p, channels, config)
}

/// A fully connected layer as PyTorch's `nn.Linear` makes it ([`torch_linear_uniform`] for
/// the weight and the bias).
fn linear(p: nn::Path, inputs: i64, outputs: i64) -> nn::Linear {
    linear_with_bias(p, inputs, outputs, torch_linear_uniform(inputs))
}

/// A fully connected layer whose weight is as `nn.Linear`'s and whose bias starts from `bias`.
fn linear_with_bias(p: nn::Path, inputs: i64, outputs: i64, bias: nn::Init) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init: torch_linear_uniform(inputs),
        bs_init: Some(bias),
        bias: true,
    };
    nn::linear(p, inputs, outputs, config)
}

/// Logistic regression: `logits = W x + b` on the flattened image. Initialised as the paper's
/// code's `nn.Linear`: W and b uniform in ±1/√fan_in.
pub fn logreg(p: &nn::Path, spec: InputSpec) -> nn::SequentialT {
    nn::seq_t()
        .add_fn(|x| x.flatten(1, -1))
        .add(linear(p / "fc", inputs(spec), spec.classes))
}

/// Multilayer perceptron: linear layers of the given widths with ReLU between them, each
/// initialised as the paper's code's `nn.Linear`: weight and bias uniform in ±1/√fan_in.
pub fn mlp(p: &nn::Path, spec: InputSpec, hidden: &[i64]) -> nn::SequentialT {
    let mut seq = nn::seq_t().add_fn(|x| x.flatten(1, -1));
    let mut width = inputs(spec);
    for (i, &h) in hidden.iter().enumerate() {
        seq = seq
            .add(linear(p / format!("fc{i}"), width, h))
            .add_fn(Tensor::relu);
        width = h;
    }
    seq.add(linear(p / "out", width, spec.classes))
}

/// A 3×3 convolution (padding 1), weights [`he_normal_fan_out`], bias (if any) 0.
fn conv3x3(p: nn::Path, cin: i64, cout: i64, stride: i64, bias: bool) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        padding: 1,
        bias,
        ws_init: he_normal_fan_out(cout, 3),
        bs_init: nn::Init::Const(0.0),
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, 3, config)
}

/// A 1×1 convolution without bias, weights [`he_normal_fan_out`].
fn conv1x1(p: nn::Path, cin: i64, cout: i64, stride: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        stride,
        bias: false,
        ws_init: he_normal_fan_out(cout, 1),
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, 1, config)
}

/// VGG configuration D: 13 convolutions in five stages of 64, 128, 256, 512, 512 channels,
/// each stage ending in a 2×2 max-pool, then fc-512, ReLU, fc-classes. A pool is skipped
/// once the feature map is 1×1 (28×28 inputs reach 1×1 after four pools).
///
/// Initialised as the paper's reference VGG (from the pytorch-vgg-cifar10 lineage) does it:
/// every convolution's weight N(0, √(2/n)) with n = 3·3·out_channels (its
/// `w.normal_(0, math.sqrt(2. / n))`) and bias 0 (there is one only without batch norm); the
/// linear layers as `nn.Linear` (uniform in ±1/√fan_in); batch norm γ = 1, β = 0 (PyTorch's
/// current default: the VGG the paper trained has no batch norm).
pub fn vgg(p: &nn::Path, spec: InputSpec, batch_norm: bool) -> nn::SequentialT {
    const STAGES: [(i64, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];
    let features = p / "features";
    let mut seq = nn::seq_t();
    let mut cin = spec.channels;
    let mut size = spec.size;
    let mut layer = 0;
    for (cout, convs) in STAGES {
        for _ in 0..convs {
            seq = seq.add(conv3x3(
                &features / format!("conv{layer}"),
                cin,
                cout,
                1,
                !batch_norm,
            ));
            if batch_norm {
                seq = seq.add(batch_norm2d(&features / format!("bn{layer}"), cout));
            }
            seq = seq.add_fn(Tensor::relu);
            cin = cout;
            layer += 1;
        }
        if size >= 2 {
            seq = seq.add_fn(|x| x.max_pool2d_default(2));
            size /= 2;
        }
    }
    let flat = cin * size * size;
    seq.add_fn(|x| x.flatten(1, -1))
        .add(linear(p / "fc", flat, 512))
        .add_fn(Tensor::relu)
        .add(linear(p / "classifier", 512, spec.classes))
}

#[derive(Clone, Copy)]
enum Depth {
    R18,
    R101,
}

/// ResNet basic block (two 3×3 convolutions), He et al. 2016.
fn basic_block(p: nn::Path, cin: i64, cout: i64, stride: i64) -> impl ModuleT {
    let conv1 = conv3x3(&p / "conv1", cin, cout, stride, false);
    let bn1 = batch_norm2d(&p / "bn1", cout);
    let conv2 = conv3x3(&p / "conv2", cout, cout, 1, false);
    let bn2 = batch_norm2d(&p / "bn2", cout);
    let shortcut = projection(&p, cin, cout, stride);
    nn::func_t(move |x, train| {
        let y = x.apply(&conv1).apply_t(&bn1, train).relu();
        let y = y.apply(&conv2).apply_t(&bn2, train);
        (y + shortcut_t(&shortcut, x, train)).relu()
    })
}

/// ResNet bottleneck block (1×1, 3×3, 1×1 with 4× expansion).
fn bottleneck(p: nn::Path, cin: i64, width: i64, stride: i64) -> impl ModuleT {
    let cout = 4 * width;
    let conv1 = conv1x1(&p / "conv1", cin, width, 1);
    let bn1 = batch_norm2d(&p / "bn1", width);
    let conv2 = conv3x3(&p / "conv2", width, width, stride, false);
    let bn2 = batch_norm2d(&p / "bn2", width);
    let conv3 = conv1x1(&p / "conv3", width, cout, 1);
    let bn3 = batch_norm2d(&p / "bn3", cout);
    let shortcut = projection(&p, cin, cout, stride);
    nn::func_t(move |x, train| {
        let y = x.apply(&conv1).apply_t(&bn1, train).relu();
        let y = y.apply(&conv2).apply_t(&bn2, train).relu();
        let y = y.apply(&conv3).apply_t(&bn3, train);
        (y + shortcut_t(&shortcut, x, train)).relu()
    })
}

/// A 1×1 projection (with batch norm) when the block changes shape, else the identity.
fn projection(
    p: &nn::Path,
    cin: i64,
    cout: i64,
    stride: i64,
) -> Option<(nn::Conv2D, nn::BatchNorm)> {
    (stride != 1 || cin != cout).then(|| {
        (
            conv1x1(p / "shortcut", cin, cout, stride),
            batch_norm2d(p / "shortcut_bn", cout),
        )
    })
}

fn shortcut_t(s: &Option<(nn::Conv2D, nn::BatchNorm)>, x: &Tensor, train: bool) -> Tensor {
    match s {
        Some((conv, bn)) => x.apply(conv).apply_t(bn, train),
        None => x.shallow_clone(),
    }
}

/// ResNet-18 in the CIFAR form: 3×3 stem with 64 channels and no max-pool, four stages of
/// 64, 128, 256, 512 (strides 1, 2, 2, 2), global average pool, fc-classes; basic blocks
/// [2, 2, 2, 2].
///
/// Initialised as torchvision's ResNet: every convolution (shortcuts included)
/// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, i.e. N(0, √(2/(k·k·out_channels))),
/// batch norm γ = 1, β = 0 (torchvision's optional zero γ in each block's last batch norm is
/// off, as it is there by default), fc as `nn.Linear` (uniform in ±1/√fan_in).
pub fn resnet18(p: &nn::Path, spec: InputSpec) -> nn::SequentialT {
    resnet(p, spec, Depth::R18)
}

/// ResNet-101 in the CIFAR form: as [`resnet18`] (layout and initialisation), with
/// bottleneck blocks [3, 4, 23, 3] (4× expansion).
pub fn resnet101(p: &nn::Path, spec: InputSpec) -> nn::SequentialT {
    resnet(p, spec, Depth::R101)
}

fn resnet(p: &nn::Path, spec: InputSpec, depth: Depth) -> nn::SequentialT {
    let (blocks, expansion): ([usize; 4], i64) = match depth {
        Depth::R18 => ([2, 2, 2, 2], 1),
        Depth::R101 => ([3, 4, 23, 3], 4),
    };
    let mut seq = nn::seq_t()
        .add(conv3x3(p / "conv1", spec.channels, 64, 1, false))
        .add(batch_norm2d(p / "bn1", 64))
        .add_fn(Tensor::relu);
    let mut cin = 64;
    for (stage, (&n, width)) in blocks.iter().zip([64, 128, 256, 512]).enumerate() {
        for b in 0..n {
            let stride = if stage > 0 && b == 0 { 2 } else { 1 };
            let bp = p / format!("layer{}", stage + 1) / b;
            seq = match depth {
                Depth::R18 => seq.add(basic_block(bp, cin, width, stride)),
                Depth::R101 => seq.add(bottleneck(bp, cin, width, stride)),
            };
            cin = width * expansion;
        }
    }
    seq.add_fn(|x| x.adaptive_avg_pool2d([1, 1]).flatten(1, -1))
        .add(linear(p / "fc", cin, spec.classes))
}

/// WideResNet pre-activation block: BN-ReLU-conv3×3-BN-ReLU-conv3×3 plus the shortcut
/// (a 1×1 convolution of the pre-activated input when the shape changes).
fn wide_block(p: nn::Path, cin: i64, cout: i64, stride: i64) -> impl ModuleT {
    let bn1 = batch_norm2d(&p / "bn1", cin);
    let conv1 = conv3x3(&p / "conv1", cin, cout, stride, false);
    let bn2 = batch_norm2d(&p / "bn2", cout);
    let conv2 = conv3x3(&p / "conv2", cout, cout, 1, false);
    let shortcut =
        (stride != 1 || cin != cout).then(|| conv1x1(&p / "shortcut", cin, cout, stride));
    nn::func_t(move |x, train| {
        let a = x.apply_t(&bn1, train).relu();
        let y = a.apply(&conv1).apply_t(&bn2, train).relu().apply(&conv2);
        match &shortcut {
            Some(conv) => y + a.apply(conv),
            None => y + x,
        }
    })
}

/// WideResNet-d-k: 3×3 stem of 16 channels, three groups of n = (d − 4)/6 pre-activation
/// blocks of 16k, 32k, 64k channels (strides 1, 2, 2), BN-ReLU, global average pool, fc.
///
/// Initialised as the usual PyTorch WideResNet (xternalz/WideResNet-pytorch): every
/// convolution N(0, √(2/n)) with n = k·k·out_channels (its `w.normal_(0, math.sqrt(2. / n))`,
/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")`), batch norm γ = 1,
/// β = 0, and the fc's bias 0 (its weight keeps `nn.Linear`'s uniform in ±1/√fan_in).
pub fn wide_resnet(p: &nn::Path, spec: InputSpec, depth: i64, width: i64) -> nn::SequentialT {
    let n = (depth - 4) / 6;
    let mut seq = nn::seq_t().add(conv3x3(p / "conv1", spec.channels, 16, 1, false));
    let mut cin = 16;
    for (group, base) in [16, 32, 64].into_iter().enumerate() {
        let cout = base * width;
        for b in 0..n {
            let stride = if group > 0 && b == 0 { 2 } else { 1 };
            seq = seq.add(wide_block(
                p / format!("group{}", group + 1) / b,
                cin,
                cout,
                stride,
            ));
            cin = cout;
        }
    }
    let bn = batch_norm2d(p / "bn", cin);
    seq.add_fn_t(move |x, train| {
        x.apply_t(&bn, train)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    })
    .add(linear_with_bias(
        p / "fc",
        cin,
        spec.classes,
        nn::Init::Const(0.0),
    ))
}
