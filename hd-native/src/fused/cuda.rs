//! Compiling the emitted kernels with NVRTC and launching them on libtorch's tensors.
//!
//! Both libraries are loaded at run time through `cudarc` (dynamic loading only), so building
//! hd-native and every CPU test need no CUDA. NVRTC is taken from the path in [`NVRTC_ENV`]
//! when that is set, else looked up by its usual names, else found in the torch wheel whose
//! libtorch the process loaded (`site-packages/nvidia/cu13/lib`, next to `torch/lib`).
//!
//! **Context and stream.** [`Fused`] retains the device's *primary* context, the one the CUDA
//! runtime, and so libtorch, uses; the tensors' device pointers are valid in it. Kernels go to
//! the legacy default stream (stream 0), which is libtorch's current stream unless the caller
//! changed it: the step's kernels then run after the backward pass that wrote the gradients
//! and before whatever libtorch launches next, with no host synchronisation.
//!
//! **Memory.** The tile table, the group table and the phase-1 partials are libtorch tensors
//! on the device, allocated once; the kernels receive raw device pointers only.

#![allow(unsafe_code)]

use super::emit::{self, EmitError};
use super::{Programs, ProgramsShape, Segment, THREADS, TILE};
use cudarc::driver::{CudaContext, CudaFunction, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{CompileOptions, Ptx};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

/// Environment variable: the path of `libnvrtc.so` to load before looking NVRTC up by name.
pub const NVRTC_ENV: &str = "HD_NVRTC";

/// Why the fused path is not available, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CudaError {
    /// NVRTC could not be loaded.
    #[error("NVRTC is not available ({0})")]
    NoNvrtc(String),
    /// The CUDA driver library could not be loaded.
    #[error("the CUDA driver (libcuda) is not available")]
    NoDriver,
    /// NVRTC refused the emitted source.
    #[error("NVRTC could not compile the fused kernels: {0}")]
    Compile(String),
    /// A driver call failed.
    #[error("CUDA driver: {0}")]
    Driver(String),
    /// A recorded program could not be emitted.
    #[error(transparent)]
    Emit(#[from] EmitError),
    /// hd-core refused to record a step.
    #[error("optimizer: {0}")]
    Core(#[from] hd_core::Error),
    /// libtorch failed to allocate the tables.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// The tensors are not laid out as the kernels expect.
    #[error("fused step: {0}")]
    Layout(&'static str),
}

fn driver(e: cudarc::driver::DriverError) -> CudaError {
    CudaError::Driver(e.to_string())
}

/// Loads NVRTC: from the path in [`NVRTC_ENV`] when set, else by its usual names, else from
/// the torch wheel whose libtorch this process loaded.
///
/// # Errors
/// [`CudaError::NoNvrtc`] if the path in [`NVRTC_ENV`] does not load or no NVRTC is found.
pub fn load_nvrtc() -> Result<(), CudaError> {
    if let Some(path) = std::env::var_os(NVRTC_ENV) {
        preload_with_builtins(Path::new(&path))?;
    }
    // SAFETY: only tries to load the library by its usual names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        return Ok(());
    }
    if let Some(path) = beside_libtorch() {
        preload_with_builtins(&path)?;
    }
    // SAFETY: as above.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(CudaError::NoNvrtc(format!(
            "libnvrtc not found; set {NVRTC_ENV} to its path or add its directory to LD_LIBRARY_PATH"
        )))
    }
}

/// Loads NVRTC at `path` and its builtins library from the same directory: NVRTC opens the
/// latter by name when it compiles, and loaded first it is found by its soname whatever
/// `LD_LIBRARY_PATH` says.
fn preload_with_builtins(path: &Path) -> Result<(), CudaError> {
    let dir = path.parent().and_then(|d| std::fs::read_dir(d).ok());
    for entry in dir.into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("libnvrtc-builtins.so")
        {
            preload(&entry.path())?;
        }
    }
    preload(path)
}

/// `nvidia/cu13/lib/libnvrtc.so.13` of the torch wheel whose `torch/lib/libtorch_cpu.so` this
/// process has loaded (found in `/proc/self/maps`), if it exists.
fn beside_libtorch() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let torch = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let site = Path::new(torch).parent()?.parent()?.parent()?;
    let nvrtc = site.join("nvidia/cu13/lib/libnvrtc.so.13");
    nvrtc.exists().then_some(nvrtc)
}

/// Loads the library at `path` for good. cudarc's later lookup by name then finds this copy
/// by its soname.
fn preload(path: &Path) -> Result<(), CudaError> {
    // SAFETY: loading NVRTC or its builtins runs only their initialisers. The handle is leaked
    // so that the library stays loaded.
    let lib = unsafe { libloading::Library::new(path) }
        .map_err(|e| CudaError::NoNvrtc(format!("{}: {e}", path.display())))?;
    std::mem::forget(lib);
    Ok(())
}

/// Compiles `source` to PTX for `arch` (e.g. `compute_90`; NVRTC's default when `None`),
/// with fused multiply–add contraction off.
///
/// # Errors
/// [`CudaError::NoNvrtc`], or [`CudaError::Compile`] with NVRTC's log.
pub fn compile(source: &str, arch: Option<&str>) -> Result<Ptx, CudaError> {
    load_nvrtc()?;
    let mut options = Vec::new();
    if let Some(a) = arch {
        options.push(format!("--gpu-architecture={a}"));
    }
    let opts = CompileOptions {
        fmad: Some(false),
        ftz: Some(false),
        prec_div: Some(true),
        prec_sqrt: Some(true),
        options,
        ..Default::default()
    };
    cudarc::nvrtc::compile_ptx_with_opts(source, opts)
        .map_err(|e| CudaError::Compile(format!("{e:?}")))
}

/// The compiled kernels of one [`ProgramsShape`].
#[derive(Debug)]
struct Kernels {
    terms: Option<CudaFunction>,
    alpha: Option<CudaFunction>,
    apply: CudaFunction,
}

/// The fused step on one CUDA device, for one layout of the flat buffers.
#[derive(Debug)]
pub struct Fused {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    arch: String,
    compiled: Vec<(ProgramsShape, Kernels)>,
    /// `[tiles·3]` i64: first element, end, group.
    tiles: Tensor,
    /// `[groups + 1]` i64: each group's first tile.
    groups: Tensor,
    /// `[tiles·3]` f32: phase 1's per-tile sums.
    partials: Tensor,
    ntiles: usize,
    ngroups: usize,
}

impl Drop for Fused {
    /// Waits for the queued kernels before their modules are unloaded and the tables freed
    /// (the one host synchronisation, when the optimizer goes away).
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
    }
}

/// The tiles of `segments` (at most `tile` elements each; [`TILE`] on the device), grouped:
/// `(tiles, group starts)` as the kernels read them (see [`emit`]).
pub fn tiling(segments: &[Segment], groups: usize, tile: usize) -> (Vec<i64>, Vec<i64>) {
    let tile = tile.max(1);
    let mut tiles = Vec::new();
    let mut starts = Vec::with_capacity(groups + 1);
    for group in 0..groups {
        starts.push((tiles.len() / 3) as i64);
        for s in segments.iter().filter(|s| s.group == group) {
            let mut at = s.offset;
            while at < s.offset + s.len {
                let end = (at + tile).min(s.offset + s.len);
                tiles.extend([at as i64, end as i64, group as i64]);
                at = end;
            }
        }
    }
    starts.push((tiles.len() / 3) as i64);
    (tiles, starts)
}

impl Fused {
    /// Sets up the fused step on CUDA device `ordinal` for `segments` of the flat buffers.
    ///
    /// # Errors
    /// [`CudaError::NoDriver`] or [`CudaError::NoNvrtc`] when a library is missing,
    /// [`CudaError::Driver`] when the device cannot be used; libtorch errors.
    pub fn new(ordinal: usize, segments: &[Segment], groups: usize) -> Result<Fused, CudaError> {
        // SAFETY: only tries to load the library by its usual names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(CudaError::NoDriver);
        }
        load_nvrtc()?;
        let ctx = CudaContext::new(ordinal).map_err(driver)?;
        let (major, minor) = ctx.compute_capability().map_err(driver)?;
        let stream = ctx.default_stream();
        let (tiles, starts) = tiling(segments, groups, TILE);
        let ntiles = tiles.len() / 3;
        let device = Device::Cuda(ordinal);
        Ok(Fused {
            ctx,
            stream,
            arch: format!("compute_{major}{minor}"),
            compiled: Vec::new(),
            tiles: Tensor::f_from_slice(&tiles)?.f_to(device)?,
            groups: Tensor::f_from_slice(&starts)?.f_to(device)?,
            partials: Tensor::f_zeros([(ntiles * 3).max(1) as i64], (Kind::Float, device))?,
            ntiles,
            ngroups: groups,
        })
    }

    /// Compiles (once per shape) the kernels of `programs`.
    fn kernels(&mut self, programs: &Programs) -> Result<&Kernels, CudaError> {
        let shape = programs.shape();
        let at = match self.compiled.iter().position(|(s, _)| *s == shape) {
            Some(at) => at,
            None => {
                let ptx = compile(&emit::source(programs)?, Some(&self.arch))?;
                let module = self.ctx.load_module(ptx).map_err(driver)?;
                let function = |name| module.load_function(name).map_err(driver);
                let fused = programs.terms.is_some();
                let kernels = Kernels {
                    terms: fused.then(|| function(emit::TERMS)).transpose()?,
                    alpha: fused.then(|| function(emit::ALPHA)).transpose()?,
                    apply: function(emit::APPLY)?,
                };
                self.compiled.push((shape, kernels));
                self.compiled.len() - 1
            }
        };
        self.compiled
            .get(at)
            .map(|(_, k)| k)
            .ok_or(CudaError::Layout("kernel cache"))
    }

    /// Queues one step of `programs` on the default stream: phase 1, α, phase 2. Nothing is
    /// read back; the first step of a new shape compiles its kernels first.
    ///
    /// `params` and `grads` are `[n]`, `buffers` `[slots, n]` (or `[1, n]` with no slots),
    /// `alpha` `[groups]`, all contiguous `f32` on this device.
    ///
    /// # Errors
    /// [`CudaError::Layout`] for tensors of another shape; compilation and driver errors.
    pub fn step(
        &mut self,
        programs: &Programs,
        params: &Tensor,
        grads: &Tensor,
        buffers: &Tensor,
        alpha: &Tensor,
    ) -> Result<(), CudaError> {
        let n = params.numel() as i64;
        let contiguous = [params, grads, buffers, alpha]
            .iter()
            .all(|t| t.is_contiguous() && t.kind() == Kind::Float);
        if !contiguous || grads.numel() as i64 != n || buffers.size().last() != Some(&n) {
            return Err(CudaError::Layout("params, grads and buffers do not match"));
        }
        if alpha.numel() < self.ngroups {
            return Err(CudaError::Layout("fewer α than groups"));
        }
        if self.ntiles == 0 {
            return Ok(());
        }
        let ptr = |t: &Tensor| t.data_ptr() as u64;
        let (p, g, s, a) = (ptr(params), ptr(grads), ptr(buffers), ptr(alpha));
        let (tiles, groups, partials) = (ptr(&self.tiles), ptr(&self.groups), ptr(&self.partials));
        let ngroups = self.ngroups as i64;
        let grid = LaunchConfig {
            grid_dim: (self.ntiles as u32, 1, 1),
            block_dim: (THREADS as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let one = LaunchConfig {
            grid_dim: (1, 1, 1),
            ..grid
        };
        let stream = Arc::clone(&self.stream);
        let kernels = self.kernels(programs)?;
        if let (Some(f1), Some(fa), Some(t), Some(al)) = (
            &kernels.terms,
            &kernels.alpha,
            &programs.terms,
            &programs.alpha,
        ) {
            let mut b = stream.launch_builder(f1);
            b.arg(&p).arg(&g).arg(&s).arg(&n).arg(&tiles).arg(&partials);
            for k in &t.consts {
                b.arg(k);
            }
            // SAFETY: the kernel reads n elements of θ, g and each slot, the tile table and
            // writes one partial per tile per output, all within the tensors checked above and
            // allocated in `new` for these tiles; the tensors outlive the queued work because
            // libtorch's caching allocator reuses memory only in stream order.
            unsafe { b.launch(grid) }.map_err(driver)?;
            let mut b = stream.launch_builder(fa);
            b.arg(&partials).arg(&groups).arg(&ngroups).arg(&a);
            for k in &al.consts {
                b.arg(k);
            }
            // SAFETY: reads the partials and group table of `new`, writes `ngroups` α.
            unsafe { b.launch(one) }.map_err(driver)?;
        }
        let mut b = stream.launch_builder(&kernels.apply);
        b.arg(&p).arg(&g).arg(&s).arg(&n).arg(&tiles).arg(&a);
        for k in &programs.apply.consts {
            b.arg(k);
        }
        // SAFETY: as phase 1, writing θ and the slots element-wise within their tensors.
        unsafe { b.launch(grid) }.map_err(driver)?;
        Ok(())
    }
}
