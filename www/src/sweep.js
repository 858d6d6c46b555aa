// The α0 sweep: final training loss against α0 for every optimizer, and against their one knob
// for the learning-rate-free peers (Prodigy's d0, Schedule-Free's lr) on the same decades; α
// over time for every α0 of one HD optimizer, or Prodigy's step size d·lr for every d0 (do they
// meet?); the sweep's progress in its own section, and the conclusion in words, as the numbers
// show it. Schedule-Free has no α chart: its lr is constant (no schedule), six flat lines.
import { BETA_FACTORS, SWEEP_ALPHAS, isPeer, knobOf, labelOf } from './params.js';
import { LineChart } from './charts.js';
import { decimate } from './series.js';
import { short, fmt } from './training.js';
import { schedule } from './frames.js';

const $ = (id) => document.getElementById(id);

/** One colour per α0, light (small α0) to dark (large), each ≥ 3:1 on white. */
const ALPHA0_COLOURS = ['#9a6700', '#bc4c00', '#cf222e', '#8250df', '#0550ae', '#1b1f24'];

/** A line's name in the α0 chart: a peer's says which knob its x is. */
const seriesLabel = (id) => (isPeer(id) ? `${labelOf(id)} (${knobOf(id)})` : labelOf(id));

/** Whose step size the α-over-time chart can show: the HD optimizers' α, Prodigy's d·lr. */
const movesAlpha = (id) => id.includes('-hd') || id === 'prodigy';

export class SweepView {
  constructor() {
    this.chart = new LineChart($('chart-sweep'), { x: { label: 'α0 (peers: d0 or lr)', log: true }, y: { label: 'training loss', log: true }, points: true });
    this.betaChart = new LineChart($('chart-sweep-beta'), { x: { label: 'β / its setting', log: true }, y: { label: 'training loss', log: true }, points: true });
    this.betaKey = '';
    this.alphaChart = new LineChart($('chart-sweep-alpha'), { x: { label: 'iteration', max: 1 }, y: { label: 'α', log: true } });
    this.key = '';
    this.alphaKey = '';
    this.select = $('sweep-alpha-run');
    this.select.addEventListener('change', () => this.render(this.sweep, true));
  }

  /** The sweep's final training loss of optimizer `id` at α0 `a`; null if diverged or not yet. */
  static final(sweep, id, a) {
    const run = sweep.runs.find((r) => r.id === id && Math.abs(r.alpha0 - a) <= a * 1e-6);
    if (!run || run.status === 'diverged' || !run.trainLoss || run.trainLoss.length < 2) return null;
    return run.trainLoss[run.trainLoss.length - 1];
  }

  /** The β sweep: final training loss against β's factor, one line per HD optimizer. */
  renderBeta(runs) {
    runs.dirty = false;
    const ids = runs.settings.opt.filter((id) => id.includes('-hd'));
    const key = ids.join();
    if (key !== this.betaKey) {
      this.betaKey = key;
      this.betaChart.setSeries(ids.map((id) => ({ id, label: labelOf(id) })));
    }
    const finals = ids.map((id) => BETA_FACTORS.map((f, k) => {
      const run = runs.runs[ids.indexOf(id) * BETA_FACTORS.length + k];
      if (!run || run.status === 'diverged' || !run.trainLoss || run.trainLoss.length < 2) return null;
      return run.trainLoss[run.trainLoss.length - 1];
    }));
    schedule('sweep-beta', () => this.betaChart.setData(BETA_FACTORS, finals));
    const spread = (ys) => {
      const ok = ys.filter((v) => v !== null);
      return ok.length < 2 ? null : Math.max(...ok) / Math.min(...ok);
    };
    const text = ids.map((id, i) => {
      const s = spread(finals[i]);
      const diverged = finals[i].filter((v) => v === null).length;
      return `${labelOf(id)}: ${BETA_FACTORS.map((f, k) => `${f}× → ${fmt(finals[i][k], 3)}`).join(', ')}${s ? ` (×${s.toFixed(1)} between best and worst${diverged && runs.finished ? `, ${diverged} diverged` : ''})` : ''}`;
    });
    this.betaChart.describe(`Final training loss against β's factor. ${text.join('. ')}.`);
    $('sweep-beta-conclusion').textContent = runs.finished
      ? `β sweep at α0 = ${runs.settings.alpha0}, final training loss: ${text.join('; ')}. Over these four decades of β, compare the spread with the α0 sweep's over five decades of α0.`
      : '';
  }

  progress(sweep, busy) {
    const total = sweep.settings.sweep_epochs * Math.max(1, sweep.iterationsPerEpoch);
    const bar = $('sweep-progress');
    bar.hidden = !busy;
    bar.max = total;
    bar.value = sweep.iteration;
    $('sweep-status').textContent = busy
      ? `${sweep.mode === 'sweep' ? 'Sweeping α0' : 'Sweeping β'}: epoch ${Math.min(sweep.epoch + 1, sweep.settings.sweep_epochs)} of ${sweep.settings.sweep_epochs}, ${sweep.runs.length} runs side by side (${Math.round((100 * sweep.iteration) / total)} %).`
      : sweep.finished ? sweep.summary() : '';
  }

  render(sweep, force = false) {
    if (!sweep || (!sweep.dirty && !force)) return;
    this.sweep = sweep;
    sweep.dirty = false;
    const ids = [...sweep.settings.opt, ...sweep.settings.peers];
    const key = ids.join();
    if (key !== this.key) {
      this.key = key;
      this.chart.setSeries(ids.map((id) => ({ id, label: seriesLabel(id) })));
      const moving = ids.filter(movesAlpha);
      this.select.replaceChildren(...moving.map((id) => new Option(isPeer(id) ? `${labelOf(id)} (d·lr)` : labelOf(id), id)));
      this.select.disabled = moving.length === 0;
    }
    const finals = ids.map((id) => SWEEP_ALPHAS.map((a) => SweepView.final(sweep, id, a)));
    schedule('sweep-final', () => this.chart.setData(SWEEP_ALPHAS, finals));
    ids.forEach((id, i) => {
      const diverged = sweep.runs.filter((r) => r.id === id && r.status === 'diverged').map((r) => r.alpha0.toExponential(0));
      this.chart.setLabel(i, diverged.length ? `${seriesLabel(id)} (diverged at ${knobOf(id)} ${diverged.join(', ')})` : seriesLabel(id));
    });
    this.chart.describe(`Final training loss against α0${sweep.settings.peers.length ? ' (for a peer, against its knob)' : ''}. ${ids.map((id, i) => `${seriesLabel(id)}: ${SWEEP_ALPHAS.map((a, k) => `${a.toExponential(0)} → ${fmt(finals[i][k], 3)}`).join(', ')}`).join('. ')}.`);
    this.renderAlpha(sweep);
    $('sweep-conclusion').textContent = sweep.finished ? this.conclusion(sweep, ids, finals) : '';
  }

  /** α over time of the chosen HD optimizer, one line per α0 (Prodigy's d·lr, one per d0), on
   * a log axis. */
  renderAlpha(sweep) {
    const id = this.select.value;
    if (!id) return;
    const knob = knobOf(id);
    const runs = SWEEP_ALPHAS.map((a) => sweep.runs.find((r) => r.id === id && Math.abs(r.alpha0 - a) <= a * 1e-6));
    const key = `${id}:${this.key}`;
    if (key !== this.alphaKey) {
      this.alphaKey = key;
      this.alphaChart.setSeries(SWEEP_ALPHAS.map((a, k) => ({ id: `a${k}`, label: `${knob} = ${a.toExponential(0)}`, style: { stroke: ALPHA0_COLOURS[k], width: 1.75 } })));
    }
    this.alphaChart.setXMax(sweep.settings.sweep_epochs * Math.max(1, sweep.iterationsPerEpoch));
    // A log axis cannot show α ≤ 0: such points are gaps (the table and CSV keep them).
    schedule('sweep-alpha', () => {
      const d = decimate(runs.map((r) => (r ? r.alpha.map((v) => (v !== null && v > 0 ? v : null)) : [])), 600);
      this.alphaChart.setData(d.xs, d.ys);
    });
    const ends = runs.map((r, k) => `${knob} ${SWEEP_ALPHAS[k].toExponential(0)} → ${r ? short(r.alpha[r.alpha.length - 1], 3) : '—'}`);
    const what = isPeer(id) ? 'step size d·lr' : 'α';
    this.alphaChart.describe(`${labelOf(id)}'s ${what} over time for each ${knob}: ${ends.join(', ')}.`);
  }

  /** The sweep's lesson in words, from its numbers: how much the final loss varies over α0
   * with and without HD, the base optimizer at its best α0 for reference, and, with peers, how
   * much each varies over its knob and every swept method ranked by that spread. */
  conclusion(sweep, ids, finals) {
    const spread = (i) => {
      const ok = finals[i].filter((v) => v !== null);
      return ok.length < 2 ? null : { lo: Math.min(...ok), hi: Math.max(...ok) };
    };
    const best = (i) => {
      let b = null;
      SWEEP_ALPHAS.forEach((a, k) => {
        if (finals[i][k] !== null && (b === null || finals[i][k] < b.v)) b = { a, v: finals[i][k] };
      });
      return b;
    };
    const { opt, peers } = sweep.settings;
    const at = (id) => ids.indexOf(id);
    const parts = opt.map((id) => {
      const s = spread(at(id));
      return s ? `${labelOf(id)} ${fmt(s.lo, 3)}–${fmt(s.hi, 3)} (×${(s.hi / s.lo).toFixed(1)})` : `${labelOf(id)}: too few runs finished`;
    });
    const refs = opt.filter((id) => !id.includes('-hd')).map((id) => {
      const b = best(at(id));
      return b ? `${labelOf(id)} tuned (its best α0, ${b.a.toExponential(0)}) reaches ${fmt(b.v, 3)}` : null;
    }).filter(Boolean);
    const pairs = opt.filter((id) => id.includes('-hd') && opt.includes(id.split('-')[0])).map((id) => {
      const [a, b] = [spread(at(id.split('-')[0])), spread(at(id))];
      if (!a || !b) return null;
      const less = b.hi / b.lo < a.hi / a.lo;
      return `${labelOf(id)} depends ${less ? 'less' : 'no less'} on α0 than ${labelOf(id.split('-')[0])}${less ? ', though not "not at all"' : ''}`;
    }).filter(Boolean);
    const text = `Final training loss across α0 (lowest–highest): ${parts.join('; ')}. ${pairs.join('; ')}${pairs.length ? '. ' : ''}${refs.join('; ')}${refs.length ? '.' : ''}`;
    if (peers.length === 0) return text;
    const peerParts = peers.map((id) => {
      const [s, b, knob] = [spread(at(id)), best(at(id)), knobOf(id)];
      return s ? `${labelOf(id)} across its ${knob} ${fmt(s.lo, 3)}–${fmt(s.hi, 3)} (×${(s.hi / s.lo).toFixed(1)}), at its best ${knob} (${b.a.toExponential(0)}) ${fmt(b.v, 3)}` : `${labelOf(id)}: too few runs finished`;
    });
    const ranked = ids.map((id, i) => ({ id, s: spread(i) })).filter((r) => r.s).sort((a, b) => a.s.hi / a.s.lo - b.s.hi / b.s.lo);
    const ranking = ranked.map((r) => `${labelOf(r.id)} ×${(r.s.hi / r.s.lo).toFixed(1)}`).join(', ');
    return `${text.trimEnd()} The learning-rate-free peers: ${peerParts.join('; ')}. From least to most sensitive to its knob (highest over lowest final loss): ${ranking}.`;
  }
}
