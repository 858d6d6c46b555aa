//! The report's one sentence: "Is HD still worth it?", computed from the tables' numbers.

use super::method::{Method, Side};

/// How far HD's best form may fall behind the best learning-rate-free method in the mean
/// count of knob values within 10 % of its best and still count as as robust: half a value.
pub const ROBUST_SLACK: f64 = 0.5;

/// How much higher HD's best validation loss may be than the best learning-rate-free
/// method's (geometric mean of the per-task ratios) and still count as as accurate: 2 %.
pub const LOSS_SLACK: f64 = 0.02;

/// One method's standing over the tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Standing {
    /// The method.
    pub method: Method,
    /// Its knob values (the grid's length).
    pub values: usize,
    /// Per task, its knob values within 10 % of its best validation loss.
    pub within: Vec<usize>,
    /// Per task, its best mean final validation loss (`None`: no value finished).
    pub best_valid: Vec<Option<f64>>,
}

impl Standing {
    /// The mean over tasks of [`within`](Standing::within).
    fn mean_within(&self) -> f64 {
        self.within.iter().sum::<usize>() as f64 / self.within.len().max(1) as f64
    }
}

/// The geometric mean of `a[t] / b[t]` over the tasks where both are known.
fn loss_ratio(a: &[Option<f64>], b: &[Option<f64>]) -> Option<f64> {
    let logs: Vec<f64> = a
        .iter()
        .zip(b)
        .filter_map(|(x, y)| Some((x.as_ref()? / y.as_ref()?).ln()))
        .collect();
    (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
}

/// The task-by-task best over every method: what each method's loss is measured against to
/// break ties.
fn task_best(all: &[Standing]) -> Vec<Option<f64>> {
    let tasks = all.first().map_or(0, |s| s.best_valid.len());
    (0..tasks)
        .map(|t| {
            all.iter()
                .filter_map(|s| s.best_valid.get(t).copied().flatten())
                .reduce(f64::min)
        })
        .collect()
}

/// The best method of `side`: the most knob values within 10 % (mean over tasks), ties broken
/// by the lower best validation loss relative to each task's best.
fn best_of(all: &[Standing], side: Side) -> Option<&Standing> {
    let reference = task_best(all);
    let rel = |s: &Standing| loss_ratio(&s.best_valid, &reference).unwrap_or(f64::INFINITY);
    all.iter()
        .filter(|s| s.method.side() == side)
        .fold(None, |b: Option<&Standing>, s| match b {
            Some(b)
                if b.mean_within() > s.mean_within()
                    || (b.mean_within() == s.mean_within() && rel(b) <= rel(s)) =>
            {
                Some(b)
            }
            _ => Some(s),
        })
}

/// "Is HD still worth it?" in one sentence, from each method's standing over the same tasks:
///
/// - the least sensitive method: the highest mean over tasks of the knob values whose mean
///   final validation loss is within 10 % of its best (every method with that count);
/// - the best learning-rate-free method: the highest such count, ties broken by the best
///   validation loss relative to each task's best;
/// - HD's best form: of the HD forms that pass both tests below against that method, the
///   one with the highest count (ties as above); if none passes, the highest count among all
///   of them. So HD is judged by its form that answers the question best, as the peers are:
///   one HD form as robust and as accurate as the best peer is enough to keep HD;
/// - their ratio of best validation losses: the geometric mean over the tasks where both
///   finished a value.
///
/// The verdict: HD is **still worth it** when its best form is as robust as the best
/// learning-rate-free method (a mean count at least the peer's minus [`ROBUST_SLACK`]) and
/// as accurate (the ratio at most 1 + [`LOSS_SLACK`]); otherwise it is **not worth it over**
/// that method, and the clause says on which count (or both) it falls short. Without a task
/// where both finished, or without any task, the sentence says the runs cannot tell yet.
pub fn sentence(all: &[Standing]) -> String {
    let tasks = all.first().map_or(0, |s| s.within.len());
    if tasks == 0 {
        return "No task has all its runs recorded yet, so the runs cannot tell whether HD is \
                worth it."
            .into();
    }
    let top = all
        .iter()
        .map(Standing::mean_within)
        .fold(f64::NAN, f64::max);
    let least: Vec<&Standing> = all.iter().filter(|s| s.mean_within() == top).collect();
    let Some(first) = least.first() else {
        return "The plan has no method.".into();
    };
    let names: Vec<&str> = least.iter().map(|s| s.method.label()).collect();
    let names = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    };
    let opening = format!(
        "{names} {} the least sensitive to {} knob ({top:.2} of {} knob values within 10 % of \
         the best validation loss, mean over {tasks} task{})",
        if least.len() == 1 { "is" } else { "are" },
        if least.len() == 1 { "its" } else { "their" },
        first.values,
        if tasks == 1 { "" } else { "s" },
    );
    let Some(peer) = best_of(all, Side::LrFree) else {
        return format!(
            "{opening}; the plan lacks an HD method or a learning-rate-free one to weigh them."
        );
    };
    let passes = |s: &Standing| {
        let ratio = loss_ratio(&s.best_valid, &peer.best_valid);
        s.mean_within() >= peer.mean_within() - ROBUST_SLACK
            && ratio.is_some_and(|r| r <= 1.0 + LOSS_SLACK)
    };
    let passing: Vec<Standing> = all.iter().filter(|s| passes(s)).cloned().collect();
    let Some(hd) = best_of(&passing, Side::Hd).or_else(|| best_of(all, Side::Hd)) else {
        return format!(
            "{opening}; the plan lacks an HD method or a learning-rate-free one to weigh them."
        );
    };
    let (h, p) = (hd.mean_within(), peer.mean_within());
    let comparison = format!(
        "{opening}; HD's best form, {}, keeps {h:.2} against {p:.2} for the best \
         learning-rate-free method, {}",
        hd.method.label(),
        peer.method.label()
    );
    let Some(ratio) = loss_ratio(&hd.best_valid, &peer.best_valid) else {
        return format!(
            "{comparison}, and no task has both finished, so the runs cannot tell yet whether \
             HD is worth it."
        );
    };
    let robust = h >= p - ROBUST_SLACK;
    let accurate = ratio <= 1.0 + LOSS_SLACK;
    let verdict = match (robust, accurate) {
        (true, true) => {
            "so HD is still worth it: as robust to its knob (within half a knob value) and as \
             accurate (within 2 %)"
                .into()
        }
        (false, true) => format!(
            "so HD is not worth it over {}: less robust to its knob",
            peer.method.label()
        ),
        (true, false) => format!(
            "so HD is not worth it over {}: less accurate",
            peer.method.label()
        ),
        (false, false) => format!(
            "so HD is not worth it over {}: less robust to its knob and less accurate",
            peer.method.label()
        ),
    };
    format!(
        "{comparison}, with {ratio:.2}× its best validation loss (geometric mean over tasks), \
         {verdict}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(method: Method, within: [usize; 2], best: [f64; 2]) -> Standing {
        Standing {
            method,
            values: 6,
            within: within.to_vec(),
            best_valid: best.map(Some).to_vec(),
        }
    }

    /// Prodigy keeps (6 + 5)/2 = 5.5 values, Adam-HD (5 + 5)/2 = 5.0 ≥ 5.5 − 0.5, and its
    /// losses are 0.98 and 1.02 of Prodigy's: √(0.98 · 1.02) = 0.9998 ≤ 1.02. Worth it.
    #[test]
    fn hd_as_robust_and_as_accurate_is_worth_it() {
        let all = [
            s(Method::Sgd, [1, 2], [0.30, 0.40]),
            s(Method::SgdHd, [3, 3], [0.29, 0.39]),
            s(Method::AdamHd, [5, 5], [0.098, 0.408]),
            s(Method::Prodigy, [6, 5], [0.100, 0.400]),
            s(Method::SfSgd, [4, 4], [0.095, 0.390]),
        ];
        assert_eq!(
            sentence(&all),
            "Prodigy is the least sensitive to its knob (5.50 of 6 knob values within 10 % of \
             the best validation loss, mean over 2 tasks); HD's best form, Adam-HD, keeps 5.00 \
             against 5.50 for the best learning-rate-free method, Prodigy, with 1.00× its best \
             validation loss (geometric mean over tasks), so HD is still worth it: as robust \
             to its knob (within half a knob value) and as accurate (within 2 %)."
        );
    }

    /// SGD-HD keeps 2.5 < 5.5 − 0.5 values and √(1.1 · 1.1) = 1.10 > 1.02 of SF-SGD's loss:
    /// not worth it on both counts. SF-SGD and Prodigy tie at 5.5; SF-SGD's losses are lower.
    #[test]
    fn hd_less_robust_and_less_accurate_is_not_worth_it() {
        let all = [
            s(Method::SgdHd, [2, 3], [0.11, 0.44]),
            s(Method::Prodigy, [5, 6], [0.12, 0.45]),
            s(Method::SfSgd, [6, 5], [0.10, 0.40]),
        ];
        assert_eq!(
            sentence(&all),
            "Prodigy and SF-SGD are the least sensitive to their knob (5.50 of 6 knob values \
             within 10 % of the best validation loss, mean over 2 tasks); HD's best form, \
             SGD-HD, keeps 2.50 against 5.50 for the best learning-rate-free method, SF-SGD, \
             with 1.10× its best validation loss (geometric mean over tasks), so HD is not \
             worth it over SF-SGD: less robust to its knob and less accurate."
        );
    }

    /// SGD-HD keeps more values (5.5) but is 1.2× Prodigy's loss; Adam-HD keeps 5.0 ≥ 5.5 − 0.5
    /// at √(0.95 · 0.97) = 0.96 of it. The form that passes both tests is the one weighed.
    #[test]
    fn the_hd_form_that_passes_is_weighed() {
        let all = [
            s(Method::SgdHd, [6, 5], [0.12, 0.48]),
            s(Method::AdamHd, [5, 5], [0.095, 0.388]),
            s(Method::Prodigy, [6, 5], [0.100, 0.400]),
        ];
        let text = sentence(&all);
        assert!(
            text.contains("HD's best form, Adam-HD, keeps 5.00"),
            "{text}"
        );
        assert!(text.contains("so HD is still worth it"), "{text}");
        // Without Adam-HD, SGD-HD is weighed, and falls short on accuracy.
        let text = sentence(&[all[0].clone(), all[2].clone()]);
        assert!(
            text.contains("HD's best form, SGD-HD, keeps 5.50"),
            "{text}"
        );
        assert!(
            text.ends_with("not worth it over Prodigy: less accurate."),
            "{text}"
        );
    }

    /// As robust (5.0 ≥ 5.5 − 0.5) but 5 % worse: not worth it, for accuracy alone.
    #[test]
    fn the_clause_names_what_falls_short() {
        let all = [
            s(Method::AdamHd, [5, 5], [0.105, 0.42]),
            s(Method::SfAdamw, [6, 5], [0.100, 0.40]),
        ];
        assert!(sentence(&all).ends_with("so HD is not worth it over SF-AdamW: less accurate."));
        let none = [
            s(Method::AdamHd, [5, 5], [0.105, 0.42]),
            Standing {
                best_valid: vec![None, None],
                ..s(Method::SfAdamw, [0, 0], [0.0, 0.0])
            },
        ];
        assert!(sentence(&none).ends_with("cannot tell yet whether HD is worth it."));
        let no_task = [Standing {
            within: vec![],
            best_valid: vec![],
            ..s(Method::AdamHd, [0, 0], [0.0, 0.0])
        }];
        assert!(sentence(&no_task).starts_with("No task has all its runs recorded yet"));
    }
}
