//! [`HdOptimizer`] held to hd-core: the trajectory of the optimizer over tch tensors, to be
//! compared with [`hd_fused::verify::reference`] (hd-core's slice step). The CPU tests run it
//! on the libtorch path; `hd-native bench verify-fused` on the fused kernels of a GPU.
//!
//! Both sides start from [`initial`] and compute their gradients with [`gradient`] of their
//! own current parameters; [`hd_fused::verify::compare`] says whether they agree to
//! [`hd_fused::verify::TOL`].

use crate::{Backend, HdOptimizer, OptimError};
use hd_core::{Config, Optimizer};
use hd_fused::verify::{gradient, initial, Trajectory};
use tch::{nn, Device, Tensor};

/// [`HdOptimizer`] on `device` with `backend`, for `steps` steps of the same
/// gradients: the trajectory, and the backend it actually ran on (with the reason when that is
/// not the fused path on a CUDA device).
///
/// # Errors
/// A libtorch or optimizer error.
pub fn run_optimizer(
    config: Config,
    sizes: &[usize],
    steps: u64,
    device: Device,
    backend: Backend,
) -> Result<(Trajectory, Backend, Option<String>), OptimError> {
    let mut used = Backend::Libtorch;
    let (trajectory, opt) = run_configured(config, sizes, steps, device, |opt| {
        used = opt.set_backend(backend);
    })?;
    Ok((
        trajectory,
        used,
        opt.fused_unavailable().map(str::to_string),
    ))
}

/// [`HdOptimizer`] over tensors of `sizes` from [`initial`] on `device`, set up by
/// `configure` (a backend, a chunk length) before its first step, for `steps` steps of the
/// [`gradient`]s written as autograd would: the trajectory and the optimizer at the end.
///
/// # Errors
/// A libtorch or optimizer error.
pub fn run_configured(
    config: Config,
    sizes: &[usize],
    steps: u64,
    device: Device,
    configure: impl FnOnce(&mut HdOptimizer),
) -> Result<(Trajectory, HdOptimizer), OptimError> {
    let vs = nn::VarStore::new(device);
    let vars = initial(sizes)
        .iter()
        .enumerate()
        .map(|(i, p)| {
            vs.root()
                .f_var_copy(&format!("t{i}"), &Tensor::from_slice(p))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut opt = HdOptimizer::new(&vs, config)?;
    configure(&mut opt);
    let mut alphas = Vec::new();
    for step in 0..steps {
        tch::no_grad(|| -> Result<(), OptimError> {
            for (i, v) in vars.iter().enumerate() {
                let theta = Vec::<f32>::try_from(v)?;
                v.f_grad()?
                    .f_copy_(&Tensor::from_slice(&gradient(i, step, &theta)))?;
            }
            Ok(())
        })?;
        opt.step()?;
        alphas.push(Vec::<f32>::try_from(opt.alphas())?);
    }
    let params = vars
        .iter()
        .map(Vec::<f32>::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    let rule = Optimizer::new(config)?;
    let mut alpha_buffer = Vec::new();
    if let Some(slot) = rule.alpha_slot() {
        let state = opt.state_tensors()?;
        if let Some((_, b)) = state.iter().find(|(n, _)| n == "buffers") {
            let row = Vec::<f32>::try_from(b.f_select(0, slot as i64)?)?;
            let mut at = 0;
            for &n in sizes {
                alpha_buffer.push(row.get(at..at + n).unwrap_or(&[]).to_vec());
                at += n;
            }
        }
    }
    Ok((
        Trajectory {
            params,
            alphas,
            alpha_buffer,
        },
        opt,
    ))
}
