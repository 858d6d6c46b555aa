//! The arithmetic every update rule is written in, so that each rule exists once and runs on
//! any backend: one `f32`, a block of [`LANES`] `f32`s (the fused slice loops), or a whole
//! tensor (hd-native implements [`Real`] for a tch tensor).

/// Element-wise arithmetic over a backend value: a scalar, a block of lanes or a tensor.
///
/// Scalars of the algorithm (α, the hypergradient) are values of the same type, so on a GPU
/// they stay on the device. Host constants (β1, 1/(1−β1^t), …) enter as `f32`.
///
/// Implementations must use IEEE-754 single precision with one rounding per operation
/// (no fused multiply–add), so every backend follows the same trajectory. `Clone` may share
/// storage (a tensor handle): the rules never mutate a clone, they only [`assign`](Real::assign).
pub trait Real: Clone {
    /// `self + rhs`, element-wise.
    fn add(&self, rhs: &Self) -> Self;
    /// `self − rhs`, element-wise.
    fn sub(&self, rhs: &Self) -> Self;
    /// `self − a·b`, element-wise, rounded exactly as `self.sub(&a.mul(b))` (the parameter
    /// update θ − γ d). A backend may do it in one pass (a tensor's `addcmul`) but must not
    /// fuse the two roundings into one.
    #[inline(always)]
    fn sub_mul(&self, a: &Self, b: &Self) -> Self {
        self.sub(&a.mul(b))
    }
    /// `self · rhs`, element-wise (broadcasting a scalar `rhs` where the backend can).
    fn mul(&self, rhs: &Self) -> Self;
    /// `self / rhs`, element-wise.
    fn div(&self, rhs: &Self) -> Self;
    /// `self · k` for a host constant `k`.
    fn scale(&self, k: f32) -> Self;
    /// `self + k` for a host constant `k`.
    fn shift(&self, k: f32) -> Self;
    /// √self, correctly rounded.
    fn sqrt(&self) -> Self;
    /// max(self, k).
    fn max_const(&self, k: f32) -> Self;
    /// min(max(self, lo), hi).
    fn clamp(&self, lo: f32, hi: f32) -> Self;
    /// The sum of all elements as a value of the same type (identity for a scalar; for a
    /// block of lanes, the lanes are kept apart and summed by the caller in a fixed order).
    fn sum(&self) -> Self;
    /// Overwrites `self` in place with `value` (a tensor copies into its own storage).
    fn assign(&mut self, value: Self);
    /// Number of elements, used to check that buffers match their parameters.
    fn len(&self) -> usize;
    /// True when [`len`](Real::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Correctly rounded square root. With `std`, the hardware instruction (which LLVM vectorises);
/// on a hard-float ARM target (a Cortex-M4F), the FPU's `vsqrt.f32`; elsewhere libm's. All are
/// IEEE-754 correctly rounded, so the bits are the same.
#[inline(always)]
pub(crate) fn sqrtf(x: f32) -> f32 {
    #[cfg(feature = "std")]
    {
        extern crate std;
        std::primitive::f32::sqrt(x)
    }
    #[cfg(all(not(feature = "std"), target_arch = "arm", target_abi = "eabihf"))]
    {
        vfp_sqrt(x)
    }
    #[cfg(not(any(feature = "std", all(target_arch = "arm", target_abi = "eabihf"))))]
    {
        libm::sqrtf(x)
    }
}

/// `vsqrt.f32`: 14 cycles where libm's software square root costs 224 bytes of flash.
/// Stable Rust has no `no_std` square root, and its `asm!` only admits the FPU's registers
/// where the (unstable) `vfp2` feature is named; so this is a naked function, whose argument
/// and result are in `s0` by the hard-float ABI: 6 bytes, and at each use one call where an
/// inline `asm!` moving the operand through a core register cost 28 bytes (four square roots in
/// Adam-HDM's step).
///
/// Every hard-float ARM ABI (`eabihf`) implies an FPU, and every ARM FPU has `vsqrt.f32`.
#[cfg(all(not(feature = "std"), target_arch = "arm", target_abi = "eabihf"))]
#[allow(unsafe_code)]
#[unsafe(naked)]
extern "C" fn vfp_sqrt(x: f32) -> f32 {
    // The hard-float procedure call standard passes `x` in s0 and returns the result in s0;
    // the instructions touch no other register, no memory and no stack. A naked function's
    // assembly is assembled apart from the function's target features, hence `.fpu`.
    core::arch::naked_asm!(".fpu vfpv2", "vsqrt.f32 s0, s0", "bx lr")
}

/// [`Real`]'s `sum` and `assign` for a `Copy` value held in registers (one `f32`, one block,
/// whose lanes the caller sums): the value itself, and a plain overwrite.
macro_rules! copy_value {
    () => {
        #[inline(always)]
        fn sum(&self) -> Self {
            *self
        }
        #[inline(always)]
        fn assign(&mut self, value: Self) {
            *self = value;
        }
    };
}

impl Real for f32 {
    #[inline(always)]
    fn add(&self, rhs: &Self) -> Self {
        self + rhs
    }
    #[inline(always)]
    fn sub(&self, rhs: &Self) -> Self {
        self - rhs
    }
    #[inline(always)]
    fn mul(&self, rhs: &Self) -> Self {
        self * rhs
    }
    #[inline(always)]
    fn div(&self, rhs: &Self) -> Self {
        self / rhs
    }
    #[inline(always)]
    fn scale(&self, k: f32) -> Self {
        self * k
    }
    #[inline(always)]
    fn shift(&self, k: f32) -> Self {
        self + k
    }
    #[inline(always)]
    fn sqrt(&self) -> Self {
        sqrtf(*self)
    }
    #[inline(always)]
    fn max_const(&self, k: f32) -> Self {
        if *self > k {
            *self
        } else {
            k
        }
    }
    #[inline(always)]
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        // Comparisons rather than `f32::min`, which is a libm call on some targets.
        let x = self.max_const(lo);
        if x < hi {
            x
        } else {
            hi
        }
    }
    copy_value!();
    #[inline(always)]
    fn len(&self) -> usize {
        1
    }
}

/// Width of the blocks the slice loops process. Fixed on every target, so the hypergradient's
/// summation order, and hence the trajectory, is the same on a microcontroller and a desktop.
pub const LANES: usize = 8;

/// Whether the fused loops work on blocks of [`LANES`] elements, which LLVM turns into SIMD,
/// or on one element at a time. Bare-metal targets (microcontrollers, no SIMD) take the latter:
/// unrolled blocks would only cost flash there. Both paths compute each element with the same
/// operations and sum element j into lane j mod [`LANES`], so they give the same bits; the
/// `scalar-loops` feature selects the scalar path anywhere, which is how it is tested on a host.
pub(crate) const BLOCKS: bool = cfg!(not(any(target_os = "none", feature = "scalar-loops")));

/// A block of [`LANES`] elements processed together; LLVM turns its loops into SIMD.
///
/// Aligned to its size so that blocks kept on the stack move as whole vectors.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(align(32))]
pub(crate) struct Lanes(pub(crate) [f32; LANES]);

impl Lanes {
    #[inline(always)]
    fn map(&self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self.0;
        for o in out.iter_mut() {
            *o = f(*o);
        }
        Lanes(out)
    }
    /// Element-wise `f(self, rhs)`.
    #[inline(always)]
    pub(crate) fn zip_with(&self, rhs: &Self, f: impl Fn(f32, f32) -> f32) -> Self {
        self.zip(rhs, f)
    }
    #[inline(always)]
    fn zip(&self, rhs: &Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut out = self.0;
        for (o, r) in out.iter_mut().zip(rhs.0.iter()) {
            *o = f(*o, *r);
        }
        Lanes(out)
    }
}

/// Loads and stores between slices and blocks, for the fused slice loops.
impl Lanes {
    pub(crate) const ZERO: Lanes = Lanes([0.0; LANES]);

    /// A whole block (`src` has [`LANES`] elements; zeros otherwise, which cannot happen).
    #[inline(always)]
    pub(crate) fn block(src: &[f32]) -> Lanes {
        Lanes(<[f32; LANES]>::try_from(src).unwrap_or([0.0; LANES]))
    }

    /// The whole block of `src` from `start` (zeros past its end, which the callers rule out).
    #[inline(always)]
    pub(crate) fn block_at(src: &[f32], start: usize) -> Lanes {
        src.get(start..start + LANES)
            .map_or(Lanes::ZERO, Lanes::block)
    }

    #[inline(always)]
    pub(crate) fn store_block(&self, dst: &mut [f32]) {
        if let Ok(d) = <&mut [f32; LANES]>::try_from(dst) {
            *d = self.0;
        }
    }

    /// `len` elements of `src` from `start`, placed at lanes `lane0..lane0 + len`, zeros elsewhere.
    #[inline(always)]
    pub(crate) fn load(src: &[f32], start: usize, lane0: usize, len: usize) -> Lanes {
        if lane0 == 0 && len == LANES {
            if let Some(Ok(a)) = src.get(start..start + LANES).map(<[f32; LANES]>::try_from) {
                return Lanes(a);
            }
        }
        let mut out = [0.0; LANES];
        let src = src.iter().skip(start).take(len);
        for (o, s) in out.iter_mut().skip(lane0).zip(src) {
            *o = *s;
        }
        Lanes(out)
    }

    /// The inverse of [`Lanes::load`].
    #[inline(always)]
    pub(crate) fn store(&self, dst: &mut [f32], start: usize, lane0: usize, len: usize) {
        for (d, s) in dst
            .iter_mut()
            .skip(start)
            .take(len)
            .zip(self.0.iter().skip(lane0))
        {
            *d = *s;
        }
    }
}

/// Binary operations of [`Real`] lane by lane, through the `f32` implementation.
macro_rules! lane_wise {
    ($($op:ident),*) => {
        $(
            #[inline(always)]
            fn $op(&self, rhs: &Self) -> Self {
                self.zip(rhs, |a, b| a.$op(&b))
            }
        )*
    };
}

impl Real for Lanes {
    lane_wise!(add, sub, mul, div);
    #[inline(always)]
    fn scale(&self, k: f32) -> Self {
        self.map(|a| a.scale(k))
    }
    #[inline(always)]
    fn shift(&self, k: f32) -> Self {
        self.map(|a| a.shift(k))
    }
    #[inline(always)]
    fn sqrt(&self) -> Self {
        self.map(|a| Real::sqrt(&a))
    }
    #[inline(always)]
    fn max_const(&self, k: f32) -> Self {
        self.map(|a| a.max_const(k))
    }
    #[inline(always)]
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        self.map(|a| Real::clamp(&a, lo, hi))
    }
    copy_value!();
    #[inline(always)]
    fn len(&self) -> usize {
        LANES
    }
}
