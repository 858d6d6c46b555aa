//! The seed's figures from run directories: test loss, test accuracy, training loss and α
//! against epoch, one line per run, as PNG and SVG (plotters).

use crate::run_dir::{self, parse_epoch_row, EpochStats, Summary, LOG_HEADER};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What can stop a plot.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// A run file could not be read or a figure written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A run file is not what `hd-native train` writes.
    #[error("{}: {what}", path.display())]
    BadRun {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// No usable TrueType font was found for the figure text.
    #[error("no TrueType font found for the figures: install fonts-dejavu-core or set HD_FONT=/path/to/font.ttf")]
    NoFont,
    /// plotters failed to draw.
    #[error("drawing {}: {what}", path.display())]
    Draw {
        /// The figure.
        path: PathBuf,
        /// The error.
        what: String,
    },
    /// Nothing to plot.
    #[error("no run directories given")]
    NoRuns,
}

/// One run's epoch figures, as read from its directory.
#[derive(Debug, Clone)]
pub struct RunCurves {
    /// The run's summary.
    pub summary: Summary,
    /// One entry per epoch row of the log, epoch 0 first.
    pub epochs: Vec<EpochStats>,
    /// α at every iteration, against epoch (iteration / iterations per epoch).
    pub alpha: Vec<(f64, f64)>,
}

/// The largest magnitude a figure can have: losses and α are `f32` computations, so anything
/// beyond `f32::MAX` did not come from a run (an edited log); plotters' axis code cannot
/// range over such values (it draws forever), so they are left out.
const ABSURD: f64 = f32::MAX as f64;

/// Whether a figure can hold `x`: finite and within ±[`ABSURD`]. The one filter of `plot` and
/// `report`.
pub(crate) fn drawable(x: f64) -> bool {
    x.is_finite() && x.abs() <= ABSURD
}

impl RunCurves {
    /// Replaces values beyond ±[`ABSURD`] by NaN (which the figures skip, as they skip a
    /// diverged epoch's NaN) and returns how many there were.
    fn drop_absurd(&mut self) -> usize {
        let mut n = 0;
        let mut check = |x: &mut f64| {
            if x.is_finite() && !drawable(*x) {
                *x = f64::NAN;
                n += 1;
            }
        };
        for s in &mut self.epochs {
            check(&mut s.train_loss);
            check(&mut s.test_loss);
            check(&mut s.test_accuracy);
            check(&mut s.alpha);
        }
        for (x, y) in &mut self.alpha {
            check(x);
            check(y);
        }
        n
    }
}

/// Reads `summary.json` and the epoch rows of `log.csv` from a run directory.
///
/// # Errors
/// [`PlotError`] naming the file that is missing or malformed.
pub fn read_run(dir: &Path) -> Result<RunCurves, PlotError> {
    let bad = |e: run_dir::ReadError| PlotError::BadRun {
        path: e.path,
        what: e.what,
    };
    let summary = run_dir::read_summary(dir).map_err(bad)?;
    let log_path = run_dir::log(dir);
    let log = run_dir::read_log(dir).map_err(bad)?;
    let mut lines = log.lines();
    if lines.next() != Some(LOG_HEADER) {
        return Err(PlotError::BadRun {
            path: log_path,
            what: "first line is not the log header".into(),
        });
    }
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let epochs: Vec<EpochStats> = rows.iter().filter_map(|r| parse_epoch_row(r)).collect();
    if epochs.is_empty() {
        return Err(PlotError::BadRun {
            path: log_path,
            what: "no epoch rows".into(),
        });
    }
    // Every epoch has the same number of iterations: the first one's tells how many.
    let field = |r: &Vec<&str>, i: usize| r.get(i).and_then(|f| f.parse::<f64>().ok());
    let per_epoch = rows
        .iter()
        .filter(|r| r.first() == Some(&"1") && r.get(4).is_some_and(|f| !f.is_empty()))
        .find_map(|r| field(r, 1))
        .unwrap_or(1.0)
        .max(1.0);
    let alpha = rows
        .iter()
        .filter_map(|r| Some((field(r, 1)? / per_epoch, field(r, 6)?)))
        .collect();
    Ok(RunCurves {
        summary,
        epochs,
        alpha,
    })
}

/// Where fonts are looked for, after `$HD_FONT`.
const FONT_DIRS: [&str; 3] = [
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "/Library/Fonts",
];
/// Preferred faces, in order; any other `.ttf` found is the last resort.
const FONT_NAMES: [&str; 3] = ["DejaVuSans.ttf", "LiberationSans-Regular.ttf", "Arial.ttf"];

fn find_font() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HD_FONT") {
        return Some(PathBuf::from(p));
    }
    let mut all = Vec::new();
    for dir in FONT_DIRS {
        collect_ttf(Path::new(dir), 0, &mut all);
    }
    FONT_NAMES
        .iter()
        .find_map(|name| {
            all.iter()
                .find(|p| p.file_name().is_some_and(|n| n == *name))
        })
        .or_else(|| all.first())
        .cloned()
}

fn collect_ttf(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() && depth < 4 {
            collect_ttf(&p, depth + 1, out);
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")) {
            out.push(p);
        }
    }
}

pub(crate) fn register_font() -> Result<(), PlotError> {
    let path = find_font().ok_or(PlotError::NoFont)?;
    let bytes = std::fs::read(&path).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    // plotters keeps fonts for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| PlotError::NoFont)
}

/// One figure: a quantity against epoch.
struct Figure {
    file: &'static str,
    y: &'static str,
    value: fn(&EpochStats) -> f64,
    /// Plot every iteration's α instead of one point per epoch.
    per_iteration: bool,
}

impl Figure {
    /// A figure of one point per epoch.
    const fn per_epoch(file: &'static str, y: &'static str, value: fn(&EpochStats) -> f64) -> Self {
        Figure {
            file,
            y,
            value,
            per_iteration: false,
        }
    }
}

const FIGURES: [Figure; 4] = [
    Figure::per_epoch("test-loss", "Test loss", |s| s.test_loss),
    Figure::per_epoch("test-accuracy", "Test accuracy", |s| s.test_accuracy),
    Figure::per_epoch("train-loss", "Training loss", |s| s.train_loss),
    Figure {
        file: "alpha",
        y: "α",
        value: |s| s.alpha,
        per_iteration: true,
    },
];

/// Writes `test-loss`, `test-accuracy`, `train-loss` and `alpha`, each as `.png` and `.svg`,
/// into `out`, and returns the files written.
///
/// # Errors
/// [`PlotError`] for an unreadable run, a missing font, or a figure that cannot be written.
pub fn plot(runs: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>, PlotError> {
    if runs.is_empty() {
        return Err(PlotError::NoRuns);
    }
    let mut runs: Vec<RunCurves> = runs.iter().map(|d| read_run(d)).collect::<Result<_, _>>()?;
    let dropped: usize = runs.iter_mut().map(RunCurves::drop_absurd).sum();
    register_font()?;
    std::fs::create_dir_all(out).map_err(|source| PlotError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    if dropped > 0 {
        let _ = writeln!(
            std::io::stderr(),
            "hd-native: note: {dropped} value(s) beyond ±{ABSURD:e} left out of the figures (no training of ours produces them)"
        );
    }
    let mut titles: Vec<String> = Vec::new();
    for r in &runs {
        if !titles.contains(&r.summary.title) {
            titles.push(r.summary.title.clone());
        }
    }
    let title = titles.join(", ");
    let mut written = Vec::new();
    for fig in &FIGURES {
        let png = out.join(format!("{}.png", fig.file));
        let svg = out.join(format!("{}.svg", fig.file));
        let drawn = |path: &Path, r: Result<(), String>| {
            r.map_err(|what| PlotError::Draw {
                path: path.to_path_buf(),
                what,
            })
        };
        let size = (960, 640);
        let bitmap = BitMapBackend::new(&png, size).into_drawing_area();
        drawn(&png, draw(bitmap, &runs, fig, &title))?;
        drawn(
            &svg,
            draw(
                SVGBackend::new(&svg, size).into_drawing_area(),
                &runs,
                fig,
                &title,
            ),
        )?;
        written.push(png);
        written.push(svg);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    runs: &[RunCurves],
    fig: &Figure,
    title: &str,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let points: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            if fig.per_iteration {
                r.alpha
                    .iter()
                    .copied()
                    .filter(|(x, y)| drawable(*x) && drawable(*y))
                    .collect()
            } else {
                r.epochs
                    .iter()
                    .map(|s| (f64::from(s.epoch), (fig.value)(s)))
                    .filter(|(_, y)| drawable(*y))
                    .collect()
            }
        })
        .collect();
    let xmax = points.iter().flatten().map(|p| p.0).fold(1.0f64, f64::max);
    let (mut ylo, mut yhi) = points
        .iter()
        .flatten()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if !ylo.is_finite() || !yhi.is_finite() {
        (ylo, yhi) = (0.0, 1.0);
    }
    let pad = ((yhi - ylo) * 0.05).max(yhi.abs() * 1e-3).max(1e-12);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..xmax, (ylo - pad)..(yhi + pad))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("Epoch")
        .y_desc(fig.y)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    for (i, (run, pts)) in runs.iter().zip(points).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(e)?
            .label(run.summary.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}
