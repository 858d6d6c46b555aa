//! Every model on every dataset shape: output shapes, parameter counts, bad sizes.

use hd_native::data::{DatasetKind, InputSpec};
use hd_native::models::{build, Model, ModelError};
use tch::nn;
use tch::{Device, Kind, Tensor};

fn all_models() -> Vec<Model> {
    vec![
        Model::Logreg,
        Model::Mlp {
            hidden: vec![1000, 1000],
        },
        Model::Vgg { batch_norm: true },
        Model::Vgg { batch_norm: false },
        Model::Resnet18,
        Model::Resnet101,
        Model::Wrn {
            depth: 28,
            width: 10,
        },
    ]
}

fn parameters(vs: &nn::VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[test]
fn every_model_takes_every_dataset_shape() {
    tch::set_num_threads(2);
    let shapes = [
        DatasetKind::Mnist,
        DatasetKind::FashionMnist,
        DatasetKind::Cifar10,
        DatasetKind::Cifar100,
    ];
    for model in all_models() {
        for (k, dataset) in shapes.into_iter().enumerate() {
            let spec: InputSpec = dataset.spec();
            let vs = nn::VarStore::new(Device::Cpu);
            let net = build(&vs.root(), &model, spec).expect("builds");
            let x = Tensor::randn(
                [2, spec.channels, spec.size, spec.size],
                (Kind::Float, Device::Cpu),
            );
            // Training mode on one shape per model (batch-norm statistics), inference on the rest.
            let train = k == 2;
            let y = tch::no_grad(|| net.forward_t(&x, train));
            assert_eq!(y.size(), [2, spec.classes], "{model} on {dataset}");
            assert!(
                bool::try_from(y.isfinite().all()).expect("bool"),
                "{model} on {dataset}: non-finite output"
            );
        }
    }
}

/// Trainable parameter counts on CIFAR-10 shapes. LogReg and MLP by hand (784·10 + 10;
/// 784·1000 + 1000 + 1000·1000 + 1000 + 1000·10 + 10); ResNet-18 11,173,962, ResNet-101
/// 42,512,970 and WRN-28-10 36,479,194 are the published counts of the usual CIFAR forms
/// (kuangliu/pytorch-cifar; Zagoruyko & Komodakis' "36.5M"); VGG-16-BN with fc-512:
/// 14,710,464 conv weights + 8,448 BN + 262,656 fc-512 + 5,130 classifier = 14,986,698.
#[test]
fn parameter_counts_match_the_published_architectures() {
    let cifar = DatasetKind::Cifar10.spec();
    let mnist = DatasetKind::Mnist.spec();
    let cases = [
        (Model::Logreg, mnist, 7_850),
        (
            Model::Mlp {
                hidden: vec![1000, 1000],
            },
            mnist,
            1_796_010,
        ),
        (Model::Vgg { batch_norm: true }, cifar, 14_986_698),
        (Model::Resnet18, cifar, 11_173_962),
        (Model::Resnet101, cifar, 42_512_970),
        (
            Model::Wrn {
                depth: 28,
                width: 10,
            },
            cifar,
            36_479_194,
        ),
    ];
    for (model, spec, expected) in cases {
        let vs = nn::VarStore::new(Device::Cpu);
        build(&vs.root(), &model, spec).expect("builds");
        assert_eq!(parameters(&vs), expected, "{model}");
    }
}

#[test]
fn bad_sizes_are_errors() {
    let spec = DatasetKind::Cifar10.spec();
    let vs = nn::VarStore::new(Device::Cpu);
    let err = |m: Model| build(&vs.root(), &m, spec).err();
    assert_eq!(
        err(Model::Wrn {
            depth: 27,
            width: 10
        }),
        Some(ModelError::WrnDepth(27))
    );
    assert_eq!(
        err(Model::Wrn { depth: 4, width: 1 }),
        Some(ModelError::WrnDepth(4))
    );
    assert!(matches!(
        err(Model::Wrn {
            depth: 16,
            width: 0
        }),
        Some(ModelError::NotPositive { .. })
    ));
    assert!(matches!(
        err(Model::Mlp {
            hidden: vec![10, 0]
        }),
        Some(ModelError::NotPositive { value: 0, .. })
    ));
}

/// `parameter_count` (used to refuse a model too large for memory before allocating it)
/// agrees with the built model where it answers, and only the free-width models answer.
#[test]
fn parameter_count_before_building_matches_the_built_model() {
    for kind in [DatasetKind::Mnist, DatasetKind::Cifar100] {
        let spec: InputSpec = kind.spec();
        for model in [
            Model::Logreg,
            Model::Mlp {
                hidden: vec![300, 100],
            },
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            build(&vs.root(), &model, spec).expect("builds");
            assert_eq!(
                model.parameter_count(spec),
                Some(parameters(&vs) as u128),
                "{model} on {kind}"
            );
        }
        assert_eq!(Model::Resnet18.parameter_count(spec), None);
    }
    // An absurd width is counted without overflow: (784 + 1)·2^62 + (2^62 + 1)·10.
    let huge = Model::Mlp {
        hidden: vec![1 << 62],
    };
    assert_eq!(
        huge.parameter_count(DatasetKind::Mnist.spec()),
        Some(795 * (1u128 << 62) + 10)
    );
}
