//! Which per-element buffers a configuration needs, and the shapes of them that the fused
//! slice loops are compiled for.

use crate::config::{Base, Config};
use crate::hyper::Scope;

/// Which per-element buffers a configuration needs, in order: the base rule's (v, or m and v),
/// then d_{t−1} where it cannot be recomputed, then α for per-parameter scope.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Layout {
    pub(crate) base: usize,
    pub(crate) direction: bool,
    pub(crate) alpha: bool,
    pub(crate) shape: SlotLayout,
}

/// The layouts the fused loops are compiled for, B base slots of K in all: only those that
/// exist can be written (Adam recomputes d_{t−1}, so it never stores it), so the one table of
/// compiled loops, `by_layout!`, matches every layout without a catch-all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SlotLayout {
    B0K0,
    B0K1,
    B0K2,
    B1K1,
    B1K2,
    B1K3,
    B2K2,
    B2K3,
}

impl Layout {
    #[inline(always)]
    pub(crate) fn of(config: &Config) -> Layout {
        let hyper = config.hyper.is_some();
        let alpha = config.hyper.is_some_and(|h| h.scope == Scope::PerParameter);
        // (base slots, d_{t−1} stored, shape without and with per-parameter α)
        let (base, direction, shape) = match config.base {
            Base::Sgd(s) => {
                let velocity = s.slots() == 1;
                let direction = hyper && !s.keeps_direction();
                let shapes = match (velocity, direction) {
                    (false, false) => (SlotLayout::B0K0, SlotLayout::B0K1),
                    (false, true) => (SlotLayout::B0K1, SlotLayout::B0K2),
                    (true, false) => (SlotLayout::B1K1, SlotLayout::B1K2),
                    (true, true) => (SlotLayout::B1K2, SlotLayout::B1K3),
                };
                (usize::from(velocity), direction, shapes)
            }
            Base::Adam(_) => (2, false, (SlotLayout::B2K2, SlotLayout::B2K3)),
        };
        Layout {
            base,
            direction,
            alpha,
            shape: if alpha { shape.1 } else { shape.0 },
        }
    }

    #[inline(always)]
    pub(crate) fn slots(&self) -> usize {
        self.base + usize::from(self.direction) + usize::from(self.alpha)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgd::Sgd;

    /// The shape the loops are dispatched on names the same B base slots of K in all as the
    /// layout the rules index: counted by hand from `Layout`'s doc (v, or m and v; d_{t−1}
    /// unless recomputed; α per parameter), for every base rule and hypergradient scope.
    #[test]
    fn shape_is_the_layouts_slot_count() {
        let heavy_ball = Config {
            base: Base::Sgd(Sgd {
                momentum: 0.9,
                nesterov: false,
            }),
            ..Config::sgd(0.1)
        };
        // (config, B, K without hypergradient, K with global HD, K with per-parameter HD)
        let cases = [
            (Config::sgd(0.1), 0, 0, 1, 2),
            (Config::sgdn(0.1, 0.9), 1, 1, 2, 3),
            (heavy_ball, 1, 1, 1, 2),
            (Config::adam(0.1), 2, 2, 2, 3),
        ];
        let dims = |s: SlotLayout| match s {
            SlotLayout::B0K0 => (0, 0),
            SlotLayout::B0K1 => (0, 1),
            SlotLayout::B0K2 => (0, 2),
            SlotLayout::B1K1 => (1, 1),
            SlotLayout::B1K2 => (1, 2),
            SlotLayout::B1K3 => (1, 3),
            SlotLayout::B2K2 => (2, 2),
            SlotLayout::B2K3 => (2, 3),
        };
        for (config, b, plain, global, per_parameter) in cases {
            for (config, k) in [
                (config, plain),
                (config.with_hd(0.01), global),
                (config.with_hdm(0.01), global),
                (
                    config.with_hd(0.01).with_scope(Scope::PerParameter),
                    per_parameter,
                ),
            ] {
                let layout = Layout::of(&config);
                assert_eq!((layout.base, layout.slots()), (b, k), "{config:?}");
                assert_eq!(dims(layout.shape), (b, k), "{config:?}");
            }
        }
    }
}
