//! How the report looks and what it lets through: each optimizer's colour and panel, figure
//! file names, and the escaping of text from files into Markdown.

use crate::config::Variant;
use hd_core::Family;
use plotters::prelude::RGBColor;
use std::fmt::Write as _;

/// The colour of an optimizer in every figure: a hue per family (SGD blue, SGDN green, Adam
/// red), the HD and HDM variants in neighbouring hues.
pub fn colour(o: Variant) -> RGBColor {
    match o {
        Variant::Sgd => RGBColor(31, 119, 180),
        Variant::SgdHd => RGBColor(23, 190, 207),
        Variant::SgdHdm => RGBColor(148, 103, 189),
        Variant::Sgdn => RGBColor(44, 160, 44),
        Variant::SgdnHd => RGBColor(188, 189, 34),
        Variant::SgdnHdm => RGBColor(140, 86, 75),
        Variant::Adam => RGBColor(214, 39, 40),
        Variant::AdamHd => RGBColor(255, 127, 14),
        Variant::AdamHdm => RGBColor(227, 119, 194),
    }
}

/// The longest figure file stem: with `.png`, far under the 255 bytes a file name may have.
const STEM_LIMIT: usize = 80;

/// The file stem of experiment `exp`'s figure `what`: `exp-what` when `exp` is short and of
/// letters, digits, `.`, `_` and `-` only; else those characters kept (others `_`), cut to fit
/// and followed by a hash of the whole name, so that two names never share a file and a
/// 240-character name still gives a valid file name.
pub(super) fn stem(exp: &str, what: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let room = STEM_LIMIT - what.len() - 1;
    if exp.len() <= room && exp.chars().all(plain) && !exp.starts_with('.') {
        return format!("{exp}-{what}");
    }
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let hash = exp.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let kept: String = exp
        .chars()
        .map(|c| if plain(c) { c } else { '_' })
        .take(room - 17)
        .collect();
    format!("{kept}-{hash:016x}-{what}")
}

/// `s` as Markdown text that is only text: characters that Markdown or HTML would read as
/// markup (`<`, `&`, `|`, backticks, `*`, `[`, …) as numeric character references, control
/// characters (a newline would end a table row) as their escapes (`\n`).
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' | '<' | '>' | '|' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '!' | '~'
            | '\\' | '"' | '\'' | '$' => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// `s` as inline code: a code span when nothing in it can end the span or a table row (HTML
/// in a code span is shown, not run), else [`text`].
pub(super) fn code(s: &str) -> String {
    if s.chars().any(|c| c == '`' || c == '|' || c.is_control()) {
        text(s)
    } else {
        format!("`{s}`")
    }
}

/// Whether a family's α goes in the Adam panel of the α figure: Adam's α, about 0.001, would
/// sit flat under SGD's 0.05 on one axis. Exhaustive, so a new family is placed on purpose.
pub(super) fn in_adam_panel(family: Family) -> bool {
    match family {
        Family::Sgd | Family::Sgdn => false,
        Family::Adam => true,
    }
}
