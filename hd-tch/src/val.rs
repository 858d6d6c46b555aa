//! [`Val`]: a libtorch tensor as hd-core's [`Real`], the value type the libtorch backend runs
//! hd-core's rules on.

use hd_core::Real;
use std::cell::RefCell;
use std::rc::Rc;
use tch::{Kind, Tensor};

/// A libtorch tensor as hd-core's [`Real`]: every operation is one element-wise libtorch op in
/// `f32` (one rounding each, no fused multiply–add), so the rules follow the slice trajectory.
///
/// The result of an operation is held back one level, as the operation over its (computed)
/// operands: the next operation computes it (once, however many clones use it),
/// [`assign`](Real::assign) computes it straight into the destination with libtorch's `out=`
/// kernels (no temporary, no extra copy pass), and [`sum`](Real::sum) of a product is a dot
/// product (no product array). Each element-wise operation, and so each rounding, is the same
/// as computing every operation at once; only the order of a sum's additions is libtorch's.
#[derive(Debug)]
pub struct Val(Repr);

#[derive(Debug)]
enum Repr {
    Ready(Tensor),
    /// Shared by clones, which then compute it once.
    Pending(Rc<Pending>),
}

#[derive(Debug)]
struct Pending {
    op: Op,
    /// The result, once an operation needed it as an operand.
    done: RefCell<Option<Tensor>>,
}

/// One element-wise operation over computed operands.
#[derive(Debug)]
enum Op {
    Add(Tensor, Tensor),
    Sub(Tensor, Tensor),
    Mul(Tensor, Tensor),
    Div(Tensor, Tensor),
    Scale(Tensor, f64),
    Shift(Tensor, f64),
    Sqrt(Tensor),
    MaxConst(Tensor, f64),
    Clamp(Tensor, f64, f64),
    /// θ + (−a)·b, i.e. θ − a·b with the same roundings, as one `addcmul` pass.
    SubMul(Tensor, Tensor, Tensor),
}

impl Op {
    fn eval(&self) -> Tensor {
        match self {
            Op::Add(a, b) => a + b,
            Op::Sub(a, b) => a - b,
            Op::Mul(a, b) => a * b,
            Op::Div(a, b) => a / b,
            Op::Scale(a, k) => a * *k,
            Op::Shift(a, k) => a + *k,
            Op::Sqrt(a) => a.sqrt(),
            Op::MaxConst(a, k) => a.clamp_min(*k),
            Op::Clamp(a, lo, hi) => a.clamp(*lo, *hi),
            Op::SubMul(t, neg_a, b) => t.addcmul(neg_a, b),
        }
    }

    /// Computes the operation into `out` (which may be one of the operands).
    fn eval_into(&self, out: &Tensor) {
        let _ = match self {
            Op::Add(a, b) => a.add_out(out, b),
            Op::Sub(a, b) => a.sub_out(out, b),
            Op::Mul(a, b) => a.mul_out(out, b),
            Op::Div(a, b) => a.div_out(out, b),
            Op::Scale(a, k) => a.mul_scalar_out(out, *k),
            Op::Shift(a, k) => a.add_scalar_out(out, *k),
            Op::Sqrt(a) => a.sqrt_out(out),
            Op::MaxConst(a, k) => a.clamp_min_out(out, *k),
            Op::Clamp(a, lo, hi) => a.clamp_out(out, *lo, *hi),
            Op::SubMul(t, neg_a, b) => t.addcmul_out(out, neg_a, b),
        };
    }

    /// Elements of the result: binary operations broadcast a 0-d operand.
    fn numel(&self) -> usize {
        match self {
            Op::Add(a, b) | Op::Sub(a, b) | Op::Mul(a, b) | Op::Div(a, b) => {
                a.numel().max(b.numel())
            }
            Op::Scale(a, _)
            | Op::Shift(a, _)
            | Op::Sqrt(a)
            | Op::MaxConst(a, _)
            | Op::Clamp(a, _, _) => a.numel(),
            Op::SubMul(t, a, b) => t.numel().max(a.numel()).max(b.numel()),
        }
    }
}

impl Val {
    /// A tensor as a value.
    pub fn new(t: Tensor) -> Val {
        Val(Repr::Ready(t))
    }

    /// The value as a tensor (computing a pending operation, once).
    pub fn tensor(&self) -> Tensor {
        match &self.0 {
            Repr::Ready(t) => t.shallow_clone(),
            Repr::Pending(p) => {
                if let Some(t) = p.done.borrow().as_ref() {
                    return t.shallow_clone();
                }
                let t = p.op.eval();
                *p.done.borrow_mut() = Some(t.shallow_clone());
                t
            }
        }
    }

    fn op(op: Op) -> Val {
        Val(Repr::Pending(Rc::new(Pending {
            op,
            done: RefCell::new(None),
        })))
    }
}

impl Clone for Val {
    /// Shares storage, as [`Real`] allows: the rules never mutate a clone, they only
    /// [`assign`](Real::assign).
    fn clone(&self) -> Self {
        match &self.0 {
            Repr::Ready(t) => Val::new(t.shallow_clone()),
            Repr::Pending(p) => Val(Repr::Pending(Rc::clone(p))),
        }
    }
}

impl Real for Val {
    fn add(&self, rhs: &Self) -> Self {
        Val::op(Op::Add(self.tensor(), rhs.tensor()))
    }
    fn sub(&self, rhs: &Self) -> Self {
        Val::op(Op::Sub(self.tensor(), rhs.tensor()))
    }
    fn sub_mul(&self, a: &Self, b: &Self) -> Self {
        Val::op(Op::SubMul(self.tensor(), a.tensor().neg(), b.tensor()))
    }
    fn mul(&self, rhs: &Self) -> Self {
        Val::op(Op::Mul(self.tensor(), rhs.tensor()))
    }
    fn div(&self, rhs: &Self) -> Self {
        Val::op(Op::Div(self.tensor(), rhs.tensor()))
    }
    fn scale(&self, k: f32) -> Self {
        Val::op(Op::Scale(self.tensor(), f64::from(k)))
    }
    fn shift(&self, k: f32) -> Self {
        Val::op(Op::Shift(self.tensor(), f64::from(k)))
    }
    fn sqrt(&self) -> Self {
        Val::op(Op::Sqrt(self.tensor()))
    }
    fn max_const(&self, k: f32) -> Self {
        Val::op(Op::MaxConst(self.tensor(), f64::from(k)))
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        Val::op(Op::Clamp(self.tensor(), f64::from(lo), f64::from(hi)))
    }
    fn sum(&self) -> Self {
        match &self.0 {
            // Σ a_i b_i over two vectors: one pass, no product array.
            Repr::Pending(p) => match &p.op {
                Op::Mul(a, b) if a.dim() == 1 && a.size() == b.size() => Val::new(a.dot(b)),
                _ => Val::new(self.tensor().sum(Kind::Float)),
            },
            _ => Val::new(self.tensor().sum(Kind::Float)),
        }
    }
    fn assign(&mut self, value: Self) {
        match (&self.0, value.0) {
            // In place, so views of the flat buffers (and the variables aliasing them) see it.
            (Repr::Ready(out), Repr::Pending(p)) => match p.done.borrow().as_ref() {
                Some(t) => {
                    out.shallow_clone().copy_(t);
                }
                None => p.op.eval_into(out),
            },
            (Repr::Ready(out), Repr::Ready(t)) => {
                let same = out.data_ptr() == t.data_ptr() && out.size() == t.size();
                if !same {
                    out.shallow_clone().copy_(&t);
                }
            }
            // Not a place in a buffer: just take the value.
            (Repr::Pending(_), v) => self.0 = v,
        }
    }
    fn len(&self) -> usize {
        match &self.0 {
            Repr::Ready(t) => t.numel(),
            Repr::Pending(p) => p.op.numel(),
        }
    }
}
