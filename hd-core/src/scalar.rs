//! The few transcendental host constants of a step (Adam's bias corrections 1 − β^t, the
//! transition's δ(t) = t^−p, 1/√t), in f32 only.
//!
//! A microcontroller without a double-precision FPU pays about 2.6 KB of soft-float code for
//! f64, and a general `powf` costs more still; these use a handful of f32 operations in
//! straight-line code. The one trap is the cancellation in 1 − β^t when β^t is close to 1
//! (β2 = 0.999 at small t): it is avoided by never forming β^t there, but computing
//! 1 − β^t = −expm1(t ln β) directly, with ln β from ln(1 + (β − 1)), where β − 1 is exact.
//! A running product β^t kept in the state would avoid the logarithm but drift by about
//! t · 2^−24 relatively and change the state's layout, so it was not chosen.

/// ln 2 split so that k · `LN2_HI` is exact for |k| < 2^9 (`LN2_HI` has 15 significant bits)
/// and `LN2_HI + LN2_LO` is ln 2 to about 2^−45.
const LN2_HI: f32 = f32::from_bits(0x3f31_7200);
const LN2_LO: f32 = f32::from_bits(0x35bf_be8e);

/// ln x for finite x > 0 (−∞ for x below the smallest normal number, where no caller needs
/// more), to within about 2 ulp.
///
/// x = 2^e m with m ∈ [√½, √2); ln m = 2 atanh(s) with s = (m − 1)/(m + 1), |s| < 0.172,
/// whose series to s^9 is exact to f32 (the next term is below 2^−27 relative). m − 1 is exact,
/// so ln x stays accurate as x → 1.
#[inline(always)]
pub(crate) fn ln(x: f32) -> f32 {
    if x.is_nan() || x < f32::MIN_POSITIVE {
        return f32::NEG_INFINITY;
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > core::f32::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let series = 1.0 + z * (1.0 / 3.0 + z * (1.0 / 5.0 + z * (1.0 / 7.0 + z * (1.0 / 9.0))));
    let ef = e as f32;
    ef * LN2_HI + (ef * LN2_LO + 2.0 * s * series)
}

/// e^x for x ≤ 0 as (2^k, q) with e^x = 2^k (1 + q), so that both e^x = 2^k + 2^k q and
/// 1 − e^x = (1 − 2^k) − 2^k q keep their precision (the second is −expm1(x)); (0, 0) below
/// x = −87, where e^x is under 2^−125 and 1 − e^x rounds to 1.
///
/// x = k ln 2 + r with |r| ≤ ½ ln 2 (k ln 2 subtracted in two exact parts), and
/// q = expm1(r) by its Taylor series to r^7 (the next term is below 2^−26 relative).
#[inline(never)]
fn exp_parts(x: f32) -> (f32, f32) {
    if x.is_nan() || x <= -87.0 {
        return (0.0, 0.0);
    }
    // round(x / ln 2) without a libm call: x ≤ 0, so subtracting ½ and truncating rounds.
    let k = (x * core::f32::consts::LOG2_E - 0.5) as i32;
    let kf = k as f32;
    let r = (x - kf * LN2_HI) - kf * LN2_LO;
    let q = r
        * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    (f32::from_bits(((k + 127) as u32) << 23), q)
}

/// 1 − β^t for β ∈ [0, 1) and t ≥ 1, as −expm1(t ln β), within 3 u (u = 2^−24) of the exact
/// value for the usual β over a million steps (see the test below).
#[cfg(test)]
pub(crate) fn one_minus_pow(beta: f32, step: u64) -> f32 {
    one_minus_exp(step, ln(beta))
}

/// 1 − e^(t l) = −expm1(t l) for l = ln β ≤ 0 and t ≥ 1.
///
/// t saturates at 2^32 − 1, where β^t is 0 in f32 for every f32 β < 1 (β ≤ 1 − 2^−24 gives
/// t ln β < −255), so the result is exact there too.
#[inline(always)]
pub(crate) fn one_minus_exp(step: u64, l: f32) -> f32 {
    let t = u32::try_from(step).unwrap_or(u32::MAX) as f32;
    let (scale, q) = exp_parts(t * l);
    (1.0 - scale) - scale * q
}

/// t^−p for t ≥ 1 and p > 1, as e^(−p ln t): relative error about |p ln t| · 2^−24.
#[inline(always)]
pub(crate) fn pow_neg(step: u64, power: f32) -> f32 {
    let (scale, q) = exp_parts(-power * ln(step as f32));
    scale + scale * q
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// Relative error of `got` against `want` in units of u = 2^−24 (f32's unit roundoff:
    /// rounding an exact value to f32 costs at most 1 u).
    fn ulps(got: f32, want: f64) -> f64 {
        ((f64::from(got) - want) / want).abs() / f64::from(f32::EPSILON / 2.0)
    }

    /// The bias correction against f64 over t = 1 … 10^6 for the usual β. In f64,
    /// 1 − β^t = −expm1(t · ln_1p(β − 1)) is exact to about 1e-15. Measured worst cases
    /// (1 − β^t; its inverse): β = 0.9 1.8 u, 1.6 u; 0.99 1.8 u, 2.1 u; 0.999 2.3 u, 2.6 u;
    /// 0.9999 2.6 u, 3.0 u. The f64 route this replaces, rounded to f32, reached 1 u.
    #[test]
    fn bias_correction_matches_f64_over_a_million_steps() {
        for beta in [0.9f32, 0.99, 0.999, 0.9999] {
            let lb = (f64::from(beta) - 1.0).ln_1p();
            let (mut worst, mut worst_inverse) = ((0.0f64, 0u64), (0.0f64, 0u64));
            for t in 1..=1_000_000u64 {
                let want = -(t as f64 * lb).exp_m1();
                let got = one_minus_pow(beta, t);
                let e = ulps(got, want);
                if e > worst.0 {
                    worst = (e, t);
                }
                let e = ulps(1.0 / got, 1.0 / want);
                if e > worst_inverse.0 {
                    worst_inverse = (e, t);
                }
            }
            assert!(
                worst.0 <= 3.0,
                "β = {beta}: 1 − β^t off by {} u at t = {}",
                worst.0,
                worst.1
            );
            assert!(
                worst_inverse.0 <= 3.5,
                "β = {beta}: 1/(1 − β^t) off by {} u at t = {}",
                worst_inverse.0,
                worst_inverse.1
            );
        }
    }

    #[test]
    fn logs_and_powers_at_the_ends() {
        // β = 0: 1 − 0^t = 1 for t ≥ 1; t far beyond 2^32.
        assert_eq!(one_minus_pow(0.0, 1), 1.0);
        assert_eq!(one_minus_pow(0.9, u64::MAX), 1.0);
        assert_eq!(one_minus_pow(1.0 - f32::EPSILON / 2.0, u64::MAX), 1.0);
        // The largest β < 1 at t = 1: 1 − β = 2^−24 exactly.
        assert_eq!(
            one_minus_pow(1.0 - f32::EPSILON / 2.0, 1),
            f32::EPSILON / 2.0
        );
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        for x in [1e-30f32, 0.3, 0.5, 0.7, 0.999_999, 1.5, 2.0, 1e30] {
            assert!(ulps(ln(x), f64::from(x).ln()) <= 2.0, "ln {x}");
        }
        for (t, p) in [
            (1u64, 2.0f32),
            (2, 2.0),
            (10, 1.5),
            (1000, 2.0),
            (1_000_000, 3.0),
        ] {
            let want = (t as f64).powf(-f64::from(p));
            let tol = 2.0 + f64::from(p) * (t as f64).ln();
            assert!(ulps(pow_neg(t, p), want) <= tol, "{t}^-{p}");
        }
    }
}
