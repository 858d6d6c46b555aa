// The chart palette: every optimizer's line readable on white, and the three variants of a
// family told apart by more than colour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contrastOnWhite, styleOf } from '../../src/palette.js';
import { OPTIMIZER_IDS, PEER_IDS } from '../../src/params.js';

test('contrast is computed as WCAG defines it', () => {
  // Known values: black 21:1, white 1:1, #767676 is the classic 4.54:1 grey.
  assert.equal(Math.round(contrastOnWhite('#000000') * 100) / 100, 21);
  assert.equal(contrastOnWhite('#ffffff'), 1);
  assert.equal(Math.round(contrastOnWhite('#767676') * 100) / 100, 4.54);
});

test('every line is at least 3:1 on white', () => {
  for (const id of [...OPTIMIZER_IDS, ...PEER_IDS]) {
    const { stroke } = styleOf(id);
    assert.ok(contrastOnWhite(stroke) >= 3, `${id} ${stroke}: ${contrastOnWhite(stroke).toFixed(2)}:1`);
  }
});

test('base, HD and HDM differ in width or dash, not only in shade', () => {
  const key = (s) => `${s.width}/${s.dash ?? 'solid'}`;
  for (const family of ['sgd', 'sgdn', 'adam']) {
    const styles = [family, `${family}-hd`, `${family}-hdm`].map((id) => key(styleOf(id)));
    assert.equal(new Set(styles).size, 3, styles.join(' '));
  }
});

test('each peer has a line of its own, unlike every optimizer\'s and every other peer\'s', () => {
  const key = (s) => `${s.stroke}/${s.width}/${s.dash ?? 'solid'}`;
  const all = [...OPTIMIZER_IDS, ...PEER_IDS].map((id) => key(styleOf(id)));
  assert.equal(new Set(all).size, all.length, all.join(' '));
  // And not by colour alone: a peer's dash is none of the optimizers'.
  const dashes = new Set(OPTIMIZER_IDS.map((id) => String(styleOf(id).dash ?? 'solid')));
  for (const id of PEER_IDS) assert.ok(!dashes.has(String(styleOf(id).dash ?? 'solid')), id);
});
