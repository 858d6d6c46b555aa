//! Compiling the emitted kernels with NVRTC and launching them on raw device pointers (the
//! `cuda` feature).
//!
//! Both libraries are loaded at run time through `cudarc` (dynamic loading only), so building
//! this module and every CPU test need no CUDA. NVRTC is taken from the path in [`NVRTC_ENV`]
//! when that is set, else looked up by its usual names, else found in the torch wheel whose
//! libtorch the process loaded (`site-packages/nvidia/cu13/lib`, next to `torch/lib`), which
//! is where a tch front end has it.
//!
//! **Front ends.** [`Fused`] knows nothing of any tensor library: a step receives the flat
//! buffers as `CUdeviceptr`s ([`DeviceBuffers`]) and queues its kernels on a cudarc stream
//! the caller chooses. [`default_stream`] gives the one a libtorch front end wants: the
//! device's *primary* context (the CUDA runtime's, in which libtorch's pointers are valid) and
//! its legacy default stream (stream 0), libtorch's current stream unless the caller changed
//! it, so that the step's kernels run after the backward pass that wrote the gradients and
//! before whatever libtorch launches next, with no host synchronisation.
//!
//! **Memory.** The tile table, the group table and the phase-1 partials are cudarc
//! allocations on the caller's stream, made once in [`Fused::new`].
//!
//! **`unsafe`.** Loading the libraries and launching kernels are foreign calls the compiler
//! cannot check; this module is the only one of the crate that makes them, each with the
//! reason it is sound. [`Fused::step`] itself is `unsafe`: the pointers it is given are the
//! caller's promise.

#![allow(unsafe_code)]

use crate::emit::{self, EmitError};
use crate::{tiling, Programs, ProgramsShape, Segment, THREADS, TILE};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg,
};
use cudarc::nvrtc::{CompileOptions, Ptx};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    /// The buffers are not laid out as the kernels expect.
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

/// The legacy default stream (stream 0) of CUDA device `ordinal`'s primary context: the one
/// libtorch, and any library on the CUDA runtime, uses unless told otherwise.
///
/// # Errors
/// [`CudaError::NoDriver`] when the driver library is missing, [`CudaError::Driver`] when the
/// device cannot be used.
pub fn default_stream(ordinal: usize) -> Result<Arc<CudaStream>, CudaError> {
    // SAFETY: only tries to load the library by its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(CudaError::NoDriver);
    }
    let ctx = CudaContext::new(ordinal).map_err(driver)?;
    Ok(ctx.default_stream())
}

/// The flat buffers of one step on the device, as raw `CUdeviceptr`s of contiguous `f32`
/// arrays in the context of the [`Fused`] that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceBuffers {
    /// θ, `[len]`.
    pub params: u64,
    /// g, `[len]`.
    pub grads: u64,
    /// The rule's per-element state, `[max(slots, 1), len]`, slot-major.
    pub buffers: u64,
    /// α, `[alphas]`: one per group.
    pub alpha: u64,
    /// Elements of θ, of g and of each slot of `buffers`.
    pub len: usize,
    /// Elements of `alpha`.
    pub alphas: usize,
}

/// The fused step on one CUDA stream, for one layout of the flat buffers.
#[derive(Debug)]
pub struct Fused {
    stream: Arc<CudaStream>,
    arch: String,
    compiled: Vec<(ProgramsShape, Kernels)>,
    /// `[tiles·3]` i64: first element, end, group.
    tiles: CudaSlice<i64>,
    /// `[groups + 1]` i64: each group's first tile.
    groups: CudaSlice<i64>,
    /// `[tiles·3]` f32: phase 1's per-tile sums.
    partials: CudaSlice<f32>,
    ntiles: usize,
    ngroups: usize,
    /// One past the last element any segment covers: the buffers' least length.
    end: usize,
}

impl Drop for Fused {
    /// Waits for the queued kernels before their modules are unloaded and the tables freed
    /// (the one host synchronisation, when the step goes away).
    fn drop(&mut self) {
        let _ = self.stream.synchronize();
    }
}

impl Fused {
    /// Sets up the fused step on `stream` (its context's device) for `segments` of flat buffers
    /// whose α fall in `groups` groups: loads NVRTC and copies the tile tables to the device.
    ///
    /// # Errors
    /// [`CudaError::NoNvrtc`] when NVRTC is missing, [`CudaError::Driver`] when the device
    /// cannot be used.
    pub fn new(
        stream: Arc<CudaStream>,
        segments: &[Segment],
        groups: usize,
    ) -> Result<Fused, CudaError> {
        load_nvrtc()?;
        let (major, minor) = stream.context().compute_capability().map_err(driver)?;
        let (tiles, starts) = tiling(segments, groups, TILE);
        let ntiles = tiles.len() / 3;
        let end = segments
            .iter()
            .filter(|s| s.group < groups)
            .map(|s| s.offset + s.len)
            .max()
            .unwrap_or(0);
        Ok(Fused {
            arch: format!("compute_{major}{minor}"),
            compiled: Vec::new(),
            tiles: stream.clone_htod(&tiles).map_err(driver)?,
            groups: stream.clone_htod(&starts).map_err(driver)?,
            partials: stream
                .alloc_zeros::<f32>((ntiles * 3).max(1))
                .map_err(driver)?,
            stream,
            ntiles,
            ngroups: groups,
            end,
        })
    }

    /// The stream the kernels are queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Compiles (once per shape) the kernels of `programs`: their index in `compiled`.
    fn compile_once(&mut self, programs: &Programs) -> Result<usize, CudaError> {
        let shape = programs.shape();
        let at = match self.compiled.iter().position(|(s, _)| *s == shape) {
            Some(at) => at,
            None => {
                let ptx = compile(&emit::source(programs)?, Some(&self.arch))?;
                let module = self.stream.context().load_module(ptx).map_err(driver)?;
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
        Ok(at)
    }

    /// Queues one step of `programs` on the stream: phase 1, α, phase 2. Nothing is read
    /// back; the first step of a new shape compiles its kernels first.
    ///
    /// # Errors
    /// [`CudaError::Layout`] when `buffers.len` is shorter than the segments or
    /// `buffers.alphas` fewer than the groups; compilation and driver errors.
    ///
    /// # Safety
    /// Every pointer of `buffers` must be a device allocation valid in this stream's context,
    /// of contiguous `f32`, at least as long as [`DeviceBuffers`] says (`buffers.buffers`:
    /// one row of `len` per slot the rule has, at least one row), with no two of them
    /// overlapping; and the memory must stay allocated, and be written by nothing else, until
    /// the queued kernels have run (work later queued on the same stream, or a
    /// synchronisation, is after them).
    pub unsafe fn step(
        &mut self,
        programs: &Programs,
        buffers: DeviceBuffers,
    ) -> Result<(), CudaError> {
        if buffers.len < self.end {
            return Err(CudaError::Layout(
                "the buffers are shorter than the segments",
            ));
        }
        if buffers.alphas < self.ngroups {
            return Err(CudaError::Layout("fewer α than groups"));
        }
        if self.ntiles == 0 {
            return Ok(());
        }
        let DeviceBuffers {
            params: p,
            grads: g,
            buffers: s,
            alpha: a,
            ..
        } = buffers;
        let n = buffers.len as i64;
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
        let at = self.compile_once(programs)?;
        let Some((_, kernels)) = self.compiled.get(at) else {
            return Err(CudaError::Layout("kernel cache"));
        };
        let (tiles, groups, partials) = (&self.tiles, &self.groups, &self.partials);
        if let (Some(f1), Some(fa), Some(t), Some(al)) = (
            &kernels.terms,
            &kernels.alpha,
            &programs.terms,
            &programs.alpha,
        ) {
            let mut b = stream.launch_builder(f1);
            b.arg(&p).arg(&g).arg(&s).arg(&n).arg(tiles).arg(partials);
            for k in &t.consts {
                b.arg(k);
            }
            // SAFETY: the kernel reads the elements of θ, g and each slot that the tiles name
            // (all below `self.end` ≤ n, checked above; the caller vouches for the buffers) and
            // the tile table, and writes one partial per tile per output: the tables were
            // allocated in `new` for these tiles, on this stream.
            unsafe { b.launch(grid) }.map_err(driver)?;
            let mut b = stream.launch_builder(fa);
            b.arg(partials).arg(groups).arg(&ngroups).arg(&a);
            for k in &al.consts {
                b.arg(k);
            }
            // SAFETY: reads the partials and the group table of `new`, writes `ngroups` α
            // (no more than `buffers.alphas`, checked above).
            unsafe { b.launch(one) }.map_err(driver)?;
        }
        let mut b = stream.launch_builder(&kernels.apply);
        b.arg(&p).arg(&g).arg(&s).arg(&n).arg(tiles).arg(&a);
        for k in &programs.apply.consts {
            b.arg(k);
        }
        // SAFETY: as phase 1, writing θ and the slots element-wise within the tiles.
        unsafe { b.launch(grid) }.map_err(driver)?;
        Ok(())
    }
}
