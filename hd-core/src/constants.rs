//! The host constants of a step t: computed once per step from t and the configuration, used
//! for every element. Their own module, so that the rules (`rule`, the base rules) and the
//! loops that run them (`optimizer`, `slices`) depend on them without depending on each other.

/// Host constants of the step t: computed once, used for every element.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepConstants {
    pub(crate) step: u64,
    /// What the base rule needs ([`Base::constants`](crate::Base)).
    pub(crate) base: BaseConstants,
    /// δ(t) of the convergent transition (1 without one).
    pub(crate) delta: f32,
    /// 1/√t with Adam's step decay, else 1.
    pub(crate) inv_sqrt_step: f32,
}

/// The host constants a base rule needs at step t, whichever the rule: the hook through which
/// the step hands them to [`Base`](crate::Base)'s dispatch. Of the rules today only Adam has
/// any (its bias corrections at t and t − 1); SGD's are the default and unread. A new base
/// rule with constants of its own adds its fields here.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct BaseConstants {
    /// 1/(1−β1^t).
    pub(crate) inv_bc1: f32,
    /// 1/(1−β2^t).
    pub(crate) inv_bc2: f32,
    /// 1/(1−β1^{t−1}), times 1/√(t−1) with `sqrt_decay`: d_{t−1} scaled to the direction
    /// the step t − 1 actually took (see `Adam::previous_direction`).
    pub(crate) inv_bc1_prev: f32,
    /// 1/(1−β2^{t−1}).
    pub(crate) inv_bc2_prev: f32,
    /// t > 1: there is a d_{t−1}.
    pub(crate) has_prev: bool,
}
