//! The recording [`Real`]: running hd-core's generic rule on [`Recorded`] values writes down the
//! operations it performs, per element, as a straight-line program ([`Graph`]).
//!
//! A [`Recorded`] is a node of the graph under construction. Loading θ, g, a buffer slot, α or a
//! reduced term makes a [`Node::Load`]; every [`Real`] operation appends one node; `sum` marks
//! a reduction output (phase 1); `assign` into a loaded place records a store. The graph is
//! then evaluated on `f32` slices ([`Graph::eval`], the CPU reference) or emitted as CUDA C
//! (`emit`). Either way the operations are those hd-core performed, in its order, so the rule
//! still exists once.
//!
//! **Host constants are arguments.** Every `f32` that a rule passes to `scale`, `shift`,
//! `max_const` or `clamp` (β1, 1/(1−β1^t), δ(t), β, …) is numbered in the order it was met and
//! kept apart from the graph's shape ([`Graph::consts`]). Bias corrections and δ(t) change
//! every step; as arguments, one compiled kernel serves every step with the same
//! [`GraphShape`]: each step re-records (host only, a few hundred nodes), compares the shape, and
//! passes that step's values.

use hd_core::Real;
use std::cell::RefCell;
use std::rc::Rc;

/// Index of a node in its graph.
pub type NodeId = usize;

/// Where a loaded value comes from (and where a store goes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Place {
    /// θ_i.
    Param,
    /// g_i.
    Grad,
    /// Buffer slot k at element i.
    Slot(usize),
    /// The α of the element's scope (its tensor's, for per-tensor scope).
    Alpha,
    /// Reduced term j of phase 1 (0: g·d, 1: ‖g‖², 2: ‖d‖²), in the α program.
    Term(usize),
}

/// One operation; `c` fields index [`Graph::consts`]. Each is one IEEE-754 single-precision
/// operation with one rounding, with [`Real`]'s semantics for `f32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A value read from a [`Place`].
    Load(Place),
    /// a + b.
    Add(NodeId, NodeId),
    /// a − b.
    Sub(NodeId, NodeId),
    /// a · b.
    Mul(NodeId, NodeId),
    /// a / b.
    Div(NodeId, NodeId),
    /// a · k.
    Scale(NodeId, usize),
    /// a + k.
    Shift(NodeId, usize),
    /// √a, correctly rounded.
    Sqrt(NodeId),
    /// `if a > k { a } else { k }`.
    MaxConst(NodeId, usize),
    /// `x = if a > lo { a } else { lo }; if x < hi { x } else { hi }`.
    Clamp(NodeId, usize, usize),
    /// x − a·b, rounded as x − (a·b).
    SubMul(NodeId, NodeId, NodeId),
    /// The per-element value whose sum over the scope is a reduction output.
    Sum(NodeId),
}

/// What a compiled kernel depends on: the graph without its constants' values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GraphShape {
    nodes: Vec<Node>,
    stores: Vec<(Place, NodeId)>,
    sums: Vec<NodeId>,
    consts: usize,
}

/// A recorded straight-line program over one element (or, for the α program, one scope).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Graph {
    /// The operations, in the order hd-core performed them; operands precede their users.
    pub nodes: Vec<Node>,
    /// Values of the host constants, numbered as the nodes use them.
    pub consts: Vec<f32>,
    /// Stores, in order: the value of node `id` is written to `place`. Stores of a place's own
    /// unchanged load are dropped.
    pub stores: Vec<(Place, NodeId)>,
    /// Reduction outputs ([`Node::Sum`] nodes), in the order of [`Place::Term`] indices.
    pub sums: Vec<NodeId>,
}

impl Graph {
    /// The shape a compiled kernel is keyed on: everything but the constants' values.
    pub fn shape(&self) -> GraphShape {
        GraphShape {
            nodes: self.nodes.clone(),
            stores: self.stores.clone(),
            sums: self.sums.clone(),
            consts: self.consts.len(),
        }
    }

    /// Whether the program reads `place`.
    pub fn reads(&self, place: Place) -> bool {
        self.nodes.contains(&Node::Load(place))
    }

    /// The buffer slots the program stores to, and whether it stores θ.
    pub fn stores_to(&self, place: Place) -> bool {
        self.stores.iter().any(|(p, _)| *p == place)
    }

    /// Evaluates the program for one element: `load` gives each loaded place's value, every
    /// store is passed to `store` in order, and each reduction output's value to `sum` (its
    /// index in [`sums`](Graph::sums), and the value). The arithmetic is `f32`'s [`Real`],
    /// so it is hd-core's own, operation for operation.
    pub fn eval(
        &self,
        mut load: impl FnMut(Place) -> f32,
        mut store: impl FnMut(Place, f32),
        mut sum: impl FnMut(usize, f32),
    ) {
        let mut v = vec![0.0f32; self.nodes.len()];
        let k = |c: usize| self.consts.get(c).copied().unwrap_or(f32::NAN);
        for (i, node) in self.nodes.iter().enumerate() {
            let at = |j: NodeId| v.get(j).copied().unwrap_or(f32::NAN);
            let x = match *node {
                Node::Load(p) => load(p),
                Node::Add(a, b) => at(a).add(&at(b)),
                Node::Sub(a, b) => at(a).sub(&at(b)),
                Node::Mul(a, b) => at(a).mul(&at(b)),
                Node::Div(a, b) => at(a).div(&at(b)),
                Node::Scale(a, c) => at(a).scale(k(c)),
                Node::Shift(a, c) => at(a).shift(k(c)),
                Node::Sqrt(a) => Real::sqrt(&at(a)),
                Node::MaxConst(a, c) => at(a).max_const(k(c)),
                Node::Clamp(a, lo, hi) => Real::clamp(&at(a), k(lo), k(hi)),
                Node::SubMul(x, a, b) => at(x).sub_mul(&at(a), &at(b)),
                Node::Sum(a) => at(a),
            };
            if let Some(slot) = v.get_mut(i) {
                *slot = x;
            }
        }
        for (j, id) in self.sums.iter().enumerate() {
            sum(j, v.get(*id).copied().unwrap_or(f32::NAN));
        }
        for (place, id) in &self.stores {
            store(*place, v.get(*id).copied().unwrap_or(f32::NAN));
        }
    }
}

/// A graph being recorded, shared by every [`Recorded`] of one program.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Rc<RefCell<Graph>>);

impl Recorder {
    /// An empty program.
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// A value loaded from `place`, standing for `len` elements (for hd-core's length checks).
    pub fn load(&self, place: Place, len: usize) -> Recorded {
        let id = self.push(Node::Load(place));
        Recorded {
            rec: self.clone(),
            id,
            place: Some(place),
            len,
        }
    }

    /// The recorded program.
    pub fn finish(&self) -> Graph {
        self.0.borrow().clone()
    }

    /// Marks `value` as reduction output number `sums.len()`.
    pub fn output_sum(&self, value: &Recorded) {
        self.0.borrow_mut().sums.push(value.id);
    }

    fn push(&self, node: Node) -> NodeId {
        let mut g = self.0.borrow_mut();
        g.nodes.push(node);
        g.nodes.len() - 1
    }

    fn constant(&self, k: f32) -> usize {
        let mut g = self.0.borrow_mut();
        g.consts.push(k);
        g.consts.len() - 1
    }
}

/// A value of a recorded program: a node, and the place it was loaded from (so that
/// [`assign`](Real::assign) into it is a store, as assigning into a tensor view writes it).
#[derive(Clone, Debug)]
pub struct Recorded {
    rec: Recorder,
    id: NodeId,
    place: Option<Place>,
    len: usize,
}

impl Recorded {
    /// Its node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    fn derived(&self, node: Node, len: usize) -> Recorded {
        Recorded {
            id: self.rec.push(node),
            rec: self.rec.clone(),
            place: None,
            len,
        }
    }

    fn unary(&self, node: Node) -> Recorded {
        self.derived(node, self.len)
    }

    fn binary(&self, rhs: &Recorded, node: Node) -> Recorded {
        self.derived(node, self.len.max(rhs.len))
    }
}

impl Real for Recorded {
    fn add(&self, rhs: &Self) -> Self {
        self.binary(rhs, Node::Add(self.id, rhs.id))
    }
    fn sub(&self, rhs: &Self) -> Self {
        self.binary(rhs, Node::Sub(self.id, rhs.id))
    }
    fn sub_mul(&self, a: &Self, b: &Self) -> Self {
        let len = self.len.max(a.len).max(b.len);
        self.derived(Node::SubMul(self.id, a.id, b.id), len)
    }
    fn mul(&self, rhs: &Self) -> Self {
        self.binary(rhs, Node::Mul(self.id, rhs.id))
    }
    fn div(&self, rhs: &Self) -> Self {
        self.binary(rhs, Node::Div(self.id, rhs.id))
    }
    fn scale(&self, k: f32) -> Self {
        let c = self.rec.constant(k);
        self.unary(Node::Scale(self.id, c))
    }
    fn shift(&self, k: f32) -> Self {
        let c = self.rec.constant(k);
        self.unary(Node::Shift(self.id, c))
    }
    fn sqrt(&self) -> Self {
        self.unary(Node::Sqrt(self.id))
    }
    fn max_const(&self, k: f32) -> Self {
        let c = self.rec.constant(k);
        self.unary(Node::MaxConst(self.id, c))
    }
    fn clamp(&self, lo: f32, hi: f32) -> Self {
        let lo = self.rec.constant(lo);
        let hi = self.rec.constant(hi);
        self.unary(Node::Clamp(self.id, lo, hi))
    }
    fn sum(&self) -> Self {
        // A reduction's value has one element; which output it is, the driver says
        // (`Recorder::output_sum`), in the order of hd-core's `Terms`.
        self.derived(Node::Sum(self.id), 1)
    }
    fn assign(&mut self, value: Self) {
        if let Some(place) = self.place {
            // Storing a place's own load back changes nothing.
            if value.id != self.id || value.place != Some(place) {
                let mut g = self.rec.0.borrow_mut();
                g.stores.retain(|(p, _)| *p != place);
                g.stores.push((place, value.id));
            }
        }
        // Later reads of this place see the new value, as after a tensor's in-place write.
        self.id = value.id;
    }
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SGD with Nesterov momentum, phase 2, recorded: the ops of `Sgd::direction` and the
    /// update, counted by hand from hd-core's sgd.rs (v ← μv + g; d = g + μv; θ ← θ − α d),
    /// with μ twice a numbered constant, and the stores of θ and v.
    #[test]
    fn recording_sgdn_gives_its_update_and_constants() {
        let rule = hd_core::Optimizer::new(hd_core::Config::sgdn(0.5, 0.9)).expect("valid");
        let r = Recorder::new();
        let mut p = r.load(Place::Param, 4);
        let g = r.load(Place::Grad, 4);
        let mut s = vec![r.load(Place::Slot(0), 4)];
        let a = r.load(Place::Alpha, 1);
        rule.apply_to(&rule.constants(1), &a, &mut p, &g, &mut s)
            .expect("lengths");
        let graph = r.finish();
        assert_eq!(graph.consts, vec![0.9, 0.9]);
        assert_eq!(
            graph.nodes[4..],
            [
                Node::Scale(2, 0),
                Node::Add(4, 1),
                Node::Scale(5, 1),
                Node::Add(1, 6),
                Node::SubMul(0, 3, 7),
            ]
        );
        assert_eq!(graph.stores, vec![(Place::Slot(0), 5), (Place::Param, 8)]);
        // Evaluated: θ = 1, g = 2, v = 1, α = 0.5: v' = 0.9 + 2 = 2.9, d = 2 + 0.9·2.9 = 4.61,
        // θ' = 1 − 0.5·4.61 = −1.305 (each in f32).
        let mut out = Vec::new();
        graph.eval(
            |p| match p {
                Place::Param => 1.0,
                Place::Grad => 2.0,
                Place::Slot(_) => 1.0,
                _ => 0.5,
            },
            |p, x| out.push((p, x)),
            |_, _| {},
        );
        let v = 0.9f32 * 1.0 + 2.0;
        let theta = 1.0f32 - 0.5 * (2.0 + 0.9 * v);
        assert_eq!(out, vec![(Place::Slot(0), v), (Place::Param, theta)]);
    }
}
