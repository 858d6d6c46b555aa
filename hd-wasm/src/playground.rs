//! The 2-D playground: plain SGD and SGD-HD from the same α0 on a small objective of two
//! variables, one hd-core step at a time, keeping everything the page draws (the path, the two
//! successive gradients, α and the g_t·g_{t−1} that moved it).

use hd_core::{Optimizer, State, Variant};

use crate::{phases, Error};

/// A smooth function of two variables with its gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Objective {
    /// f(x, y) = ½ (x² + 20 y²): a valley 20 times steeper across than along, where a step
    /// small enough for y crawls along x.
    Quadratic,
    /// Rosenbrock's banana valley f(x, y) = (1 − x)² + 100 (y − x²)², minimum at (1, 1).
    Rosenbrock,
}

/// Iterates whose |x| or |y| pass this are marked diverged (the view is a few units wide).
const ESCAPED: f32 = 1e6;

impl Objective {
    /// Every objective, in display order.
    pub const ALL: [Objective; 2] = [Objective::Quadratic, Objective::Rosenbrock];

    /// Its id on the page (`quadratic`, `rosenbrock`).
    pub const fn id(self) -> &'static str {
        match self {
            Objective::Quadratic => "quadratic",
            Objective::Rosenbrock => "rosenbrock",
        }
    }

    /// The objective with this id.
    ///
    /// # Errors
    /// [`Error::Settings`] naming the unknown id.
    pub fn parse(id: &str) -> Result<Objective, Error> {
        Objective::ALL
            .into_iter()
            .find(|o| o.id() == id)
            .ok_or_else(|| {
                Error::Settings(format!(
                    "unknown objective {id:?}; expected quadratic or rosenbrock"
                ))
            })
    }

    /// f(x, y).
    pub fn value(self, [x, y]: [f32; 2]) -> f32 {
        match self {
            Objective::Quadratic => 0.5 * (x * x + 20.0 * y * y),
            Objective::Rosenbrock => {
                let (a, b) = (1.0 - x, y - x * x);
                a * a + 100.0 * b * b
            }
        }
    }

    /// ∇f(x, y): (x, 20 y) for the quadratic; (−2(1 − x) − 400 x (y − x²), 200 (y − x²)) for
    /// Rosenbrock.
    pub fn gradient(self, [x, y]: [f32; 2]) -> [f32; 2] {
        match self {
            Objective::Quadratic => [x, 20.0 * y],
            Objective::Rosenbrock => {
                let b = y - x * x;
                [-2.0 * (1.0 - x) - 400.0 * x * b, 200.0 * b]
            }
        }
    }

    /// Where both optimizers start.
    pub const fn start(self) -> [f32; 2] {
        match self {
            Objective::Quadratic => [-4.5, 1.2],
            Objective::Rosenbrock => [-1.2, 1.0],
        }
    }

    /// Where f is smallest (f = 0 there, for both).
    pub const fn minimum(self) -> [f32; 2] {
        match self {
            Objective::Quadratic => [0.0, 0.0],
            Objective::Rosenbrock => [1.0, 1.0],
        }
    }

    /// The region the page draws: [x_min, x_max, y_min, y_max].
    pub const fn view(self) -> [f32; 4] {
        match self {
            Objective::Quadratic => [-5.0, 5.0, -2.5, 2.5],
            Objective::Rosenbrock => [-2.0, 2.0, -1.0, 3.0],
        }
    }
}

/// One optimizer walking the objective.
#[derive(Debug)]
pub struct Walker {
    variant: Variant,
    optimizer: Optimizer,
    state: State,
    point: [f32; 2],
    buffers: Vec<f32>,
    /// (x, y) after each step, the start first.
    path: Vec<f32>,
    gradient: [f32; 2],
    previous_gradient: [f32; 2],
    previous_alpha: f32,
    dot: f32,
    diverged: bool,
}

impl Walker {
    fn new(variant: Variant, objective: Objective, alpha0: f32, beta: f32) -> Result<Self, Error> {
        let optimizer = Optimizer::new(variant.config(alpha0, beta, 0.0))?;
        let len = optimizer
            .buffer_len(2)
            .ok_or_else(|| Error::Settings("optimizer buffers overflow".into()))?;
        let mut buffers = vec![0.0; len];
        optimizer.init_buffers(&mut buffers)?;
        let point = objective.start();
        Ok(Self {
            variant,
            state: optimizer.init_state(),
            optimizer,
            point,
            buffers,
            path: point.to_vec(),
            gradient: objective.gradient(point),
            previous_gradient: [0.0; 2],
            previous_alpha: alpha0,
            dot: 0.0,
            diverged: false,
        })
    }

    /// One step of hd-core's rule: the phases of [`Optimizer::step`], so that g_t·d_{t−1} can
    /// be kept for the page. For SGD, d_{t−1} is g_{t−1}.
    fn step(&mut self, objective: Objective) -> Result<(), Error> {
        if self.diverged {
            return Ok(());
        }
        let g = objective.gradient(self.point);
        let mut next = self.state;
        let mut point = self.point;
        let result = phases::step(
            &self.optimizer,
            &mut next,
            &mut point,
            &g,
            &mut self.buffers,
        );
        match result {
            Ok(acc) if point.iter().all(|v| v.is_finite() && v.abs() < ESCAPED) => {
                self.previous_alpha = self.state.alpha;
                self.state = next;
                self.previous_gradient = self.gradient;
                self.gradient = g;
                self.dot = acc.terms(false).dot;
                self.point = point;
                self.path.extend_from_slice(&point);
                Ok(())
            }
            Ok(_) | Err(hd_core::Error::NonFinite) => {
                self.diverged = true;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The optimizer.
    pub fn variant(&self) -> Variant {
        self.variant
    }
    /// The current point θ_t.
    pub fn point(&self) -> [f32; 2] {
        self.point
    }
    /// Every point so far, flattened (x0, y0, x1, y1, …), the start first.
    pub fn path(&self) -> &[f32] {
        &self.path
    }
    /// α_t, the rate of the last step.
    pub fn alpha(&self) -> f32 {
        self.state.alpha
    }
    /// α_{t−1}, before the last step's update.
    pub fn previous_alpha(&self) -> f32 {
        self.previous_alpha
    }
    /// g_t, the gradient the last step took.
    pub fn gradient(&self) -> [f32; 2] {
        self.gradient
    }
    /// g_{t−1}, the one before it (zero before the second step).
    pub fn previous_gradient(&self) -> [f32; 2] {
        self.previous_gradient
    }
    /// g_t·d_{t−1} as hd-core summed it in the last step (0 for plain SGD, whose rule has no
    /// d_{t−1}, and at t = 1).
    pub fn dot(&self) -> f32 {
        self.dot
    }
    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.state.step
    }
    /// True once the iterate left the plane (non-finite or beyond 10⁶); it then stays put.
    pub fn diverged(&self) -> bool {
        self.diverged
    }
}

/// Plain SGD and SGD-HD from the same α0 on one objective.
#[derive(Debug)]
pub struct Playground {
    objective: Objective,
    walkers: [Walker; 2],
}

impl Playground {
    /// SGD and SGD-HD (rate β) from α0 at the objective's start.
    ///
    /// # Errors
    /// [`Error::Optimizer`] when hd-core rejects α0 or β (not finite, β negative).
    pub fn new(objective: Objective, alpha0: f32, beta: f32) -> Result<Self, Error> {
        Ok(Self {
            objective,
            walkers: [
                Walker::new(Variant::Sgd, objective, alpha0, beta)?,
                Walker::new(Variant::SgdHd, objective, alpha0, beta)?,
            ],
        })
    }

    /// One step of both walkers.
    ///
    /// # Errors
    /// Only on an internal inconsistency; an escaping walker is marked diverged instead.
    pub fn step(&mut self) -> Result<(), Error> {
        let objective = self.objective;
        for w in &mut self.walkers {
            w.step(objective)?;
        }
        Ok(())
    }

    /// The objective.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// Walker 0 (SGD) or 1 (SGD-HD).
    ///
    /// # Errors
    /// [`Error::Settings`] for any other index.
    pub fn walker(&self, index: usize) -> Result<&Walker, Error> {
        self.walkers
            .get(index)
            .ok_or_else(|| Error::Settings(format!("there is no walker {index}")))
    }

    /// f on a `columns` × `rows` grid over the view, row 0 at the top (largest y), for the
    /// contour picture.
    pub fn grid(&self, columns: usize, rows: usize) -> Vec<f32> {
        let [x0, x1, y0, y1] = self.objective.view();
        let mut out = Vec::with_capacity(columns * rows);
        for r in 0..rows {
            let y = y1 - (y1 - y0) * (r as f32 + 0.5) / rows as f32;
            for c in 0..columns {
                let x = x0 + (x1 - x0) * (c as f32 + 0.5) / columns as f32;
                out.push(self.objective.value([x, y]));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SGD-HD written out from the paper (Baydin et al. 2018, Algorithm "SGD-HD"), in f32 as the
    /// page runs it: α_t = α_{t−1} + β g_t·g_{t−1}, θ_t = θ_{t−1} − α_t g_t, g_0 = 0.
    fn sgd_hd_by_hand(objective: Objective, alpha0: f32, beta: f32, steps: usize) -> Vec<f32> {
        let (mut theta, mut alpha, mut previous) = (objective.start(), alpha0, [0.0f32; 2]);
        let mut path = theta.to_vec();
        for _ in 0..steps {
            let g = objective.gradient(theta);
            alpha += beta * (g[0] * previous[0] + g[1] * previous[1]);
            theta = [theta[0] - alpha * g[0], theta[1] - alpha * g[1]];
            previous = g;
            path.extend_from_slice(&theta);
        }
        path
    }

    #[test]
    fn gradients_match_finite_differences() {
        for objective in Objective::ALL {
            for p in [[0.3f32, -0.7], [-1.1, 1.4], [0.9, 0.2]] {
                let g = objective.gradient(p);
                let h = 1e-3f64;
                for k in 0..2 {
                    let f = |d: f64| {
                        let mut q = [f64::from(p[0]), f64::from(p[1])];
                        q[k] += d;
                        objective.value([q[0] as f32, q[1] as f32]) as f64
                    };
                    let numeric = (f(h) - f(-h)) / (2.0 * h);
                    assert!(
                        (numeric - f64::from(g[k])).abs() < 0.02 * (1.0 + numeric.abs()),
                        "{objective:?} at {p:?}, ∂{k}: {numeric} vs {}",
                        g[k]
                    );
                }
            }
        }
    }

    #[test]
    fn the_paths_are_hd_cores_and_match_the_paper_rule() {
        for (objective, alpha0, beta) in [
            (Objective::Quadratic, 0.01, 1e-4),
            (Objective::Rosenbrock, 5e-4, 1e-7),
        ] {
            let mut p = Playground::new(objective, alpha0, beta).unwrap();
            for _ in 0..40 {
                p.step().unwrap();
            }
            let hd = p.walker(1).unwrap();
            let want = sgd_hd_by_hand(objective, alpha0, beta, 40);
            assert_eq!(hd.path().len(), want.len());
            for (i, (a, b)) in hd.path().iter().zip(&want).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{objective:?} coordinate {i}: {a} vs {b}"
                );
            }
            // Plain SGD is the same rule with β = 0: α stays α0.
            let sgd = p.walker(0).unwrap();
            assert_eq!(sgd.path(), &sgd_hd_by_hand(objective, alpha0, 0.0, 40)[..]);
            assert_eq!(sgd.alpha(), alpha0);
            assert_eq!(hd.steps(), 40);
        }
    }

    #[test]
    fn alpha_grows_along_the_quadratic_valley_and_hd_gets_further() {
        // From a small α0, successive gradients point the same way (g_t·g_{t−1} > 0), so α
        // grows and SGD-HD ends nearer the minimum (0, 0) than SGD.
        let mut p = Playground::new(Objective::Quadratic, 0.005, 1e-4).unwrap();
        for _ in 0..30 {
            p.step().unwrap();
        }
        let (sgd, hd) = (p.walker(0).unwrap(), p.walker(1).unwrap());
        assert!(hd.alpha() > 0.005, "{}", hd.alpha());
        let f = |w: &Walker| Objective::Quadratic.value(w.point());
        assert!(f(hd) < f(sgd), "{} vs {}", f(hd), f(sgd));
        // The live rule's numbers add up: α_t = α_{t−1} + β g_t·g_{t−1}.
        let want = hd.previous_alpha() + 1e-4 * hd.dot();
        assert!((hd.alpha() - want).abs() <= 1e-7);
        let [g, q] = [hd.gradient(), hd.previous_gradient()];
        assert!((hd.dot() - (g[0] * q[0] + g[1] * q[1])).abs() <= 1e-4 * hd.dot().abs());
    }

    #[test]
    fn a_huge_rate_diverges_without_an_error_and_bad_settings_are_refused() {
        let mut p = Playground::new(Objective::Rosenbrock, 0.1, 0.0).unwrap();
        for _ in 0..50 {
            p.step().unwrap();
        }
        assert!(p.walker(0).unwrap().diverged());
        let len = p.walker(0).unwrap().path().len();
        p.step().unwrap();
        assert_eq!(p.walker(0).unwrap().path().len(), len);
        assert!(Playground::new(Objective::Quadratic, f32::NAN, 0.0).is_err());
        assert!(Playground::new(Objective::Quadratic, 0.1, -1.0).is_err());
        assert!(Objective::parse("himmelblau").is_err());
        for o in Objective::ALL {
            assert_eq!(o.value(o.minimum()), 0.0);
            assert_eq!(o.gradient(o.minimum()), [0.0, 0.0]);
        }
        assert_eq!(
            Objective::parse("rosenbrock").unwrap(),
            Objective::Rosenbrock
        );
        assert!(p.walker(2).is_err());
        let grid = p.grid(4, 3);
        assert_eq!(grid.len(), 12);
        assert!(grid.iter().all(|v| v.is_finite() && *v >= 0.0));
    }
}
