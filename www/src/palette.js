// Line colours by family (SGD blue, SGDN green, Adam orange), darker for HD and darker still
// for HDM, and the learning-rate-free peers in colours of their own (Prodigy purple,
// Schedule-Free pink) with long dashes; every one at least 3:1 against white (WCAG's contrast
// for graphics). No DOM, so node's test runner checks it.

const FAMILY = {
  sgd: ['#2f7ab9', '#08519c', '#08306b'],
  sgdn: ['#2f8a48', '#006d2c', '#00441b'],
  adam: ['#c8590c', '#a63603', '#6b2206'],
};

const PEER = {
  prodigy: { stroke: '#6639ba', width: 2, dash: [10, 3, 2, 3] },
  'sf-sgd': { stroke: '#bf3989', width: 2, dash: [10, 3] },
  'sf-adamw': { stroke: '#772057', width: 2, dash: [10, 3, 2, 3, 2, 3] },
};

/** Stroke colour, width and dash of an optimizer id's line: plain dotted, HD thick, HDM
 * dashed, a peer long-dashed in its own colour. */
export function styleOf(id) {
  if (PEER[id]) return { ...PEER[id] };
  const [base, variant = ''] = id.split('-');
  const shades = FAMILY[base] ?? ['#666', '#444', '#000'];
  if (variant === 'hd') return { stroke: shades[1], width: 2.5 };
  if (variant === 'hdm') return { stroke: shades[2], width: 1.75, dash: [6, 4] };
  return { stroke: shades[0], width: 1.5, dash: [2, 2] };
}

/** WCAG relative luminance of a #rrggbb colour. */
function luminance(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** WCAG contrast ratio of a #rrggbb colour against white. */
export function contrastOnWhite(hex) {
  return 1.05 / (luminance(hex) + 0.05);
}
