//! The documentation check of `cargo xtask test`: every "DESIGN §N" reference names a section
//! that DESIGN.md has, and every relative link of a Markdown file reaches a file (and, with
//! `#anchor`, a heading) that exists. A reader who follows a reference must find what it names.

use crate::env::{output, root, step};
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

/// Files whose text may hold references: the tracked sources and documents.
const CHECKED_EXTENSIONS: [&str; 9] = ["rs", "md", "js", "mjs", "toml", "html", "css", "sh", "txt"];

/// The design document every "DESIGN §N" names.
const DESIGN: &str = "DESIGN.md";

/// This file: its tests hold made-up references on purpose.
const SELF: &str = "xtask/src/docs.rs";

/// One reference that leads nowhere.
#[derive(Debug, PartialEq, Eq)]
pub struct Dangling {
    /// The file holding the reference, relative to the repository root.
    pub file: PathBuf,
    /// Its line, from 1.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for Dangling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.problem)
    }
}

/// `cargo xtask test`'s step: fails listing every dangling reference of the tracked files.
pub fn check() -> Result<()> {
    step("documentation references (DESIGN §N, Markdown links)");
    let root = root();
    let listed = output(
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["ls-files", "-z"]),
    )?;
    let files: Vec<PathBuf> = listed
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .filter(|f| f != Path::new(SELF))
        .filter(|f| {
            f.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| CHECKED_EXTENSIONS.contains(&e))
        })
        .collect();
    // A file's text; an existing file that is not text (a figure) reads as empty.
    let read = |p: &Path| {
        let path = root.join(p);
        path.is_file()
            .then(|| std::fs::read_to_string(&path).unwrap_or_default())
    };
    let design = read(Path::new(DESIGN)).unwrap_or_default();
    let sections = section_numbers(&design);
    let mut dangling = Vec::new();
    for file in &files {
        let Some(text) = read(file) else { continue };
        dangling.extend(design_references(file, &text, &sections));
        if file.extension().is_some_and(|e| e == "md") {
            dangling.extend(markdown_links(file, &text, &|p| read(p)));
        }
    }
    if dangling.is_empty() {
        return Ok(());
    }
    for d in &dangling {
        eprintln!("{d}");
    }
    bail!("{} dangling documentation reference(s)", dangling.len())
}

/// The section numbers of a document's `## N.` and `### N.M` headings ("2", "5.1", …).
pub fn section_numbers(doc: &str) -> BTreeSet<String> {
    doc.lines()
        .filter_map(|l| {
            let rest = l.trim_start_matches('#');
            if rest.len() == l.len() {
                return None;
            }
            let number: String = rest
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            (!number.is_empty()).then(|| number.to_string())
        })
        .collect()
}

/// Every "DESIGN §N" (or "DESIGN.md §N") in `text` whose section `sections` lacks.
pub fn design_references(file: &Path, text: &str, sections: &BTreeSet<String>) -> Vec<Dangling> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("DESIGN") {
            rest = &rest[at + "DESIGN".len()..];
            let after = rest.strip_prefix(".md").unwrap_or(rest);
            let Some(after) = after.trim_start().strip_prefix('§') else {
                continue;
            };
            let number: String = after
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            // "§N" with no number is prose about references, not one.
            if !number.is_empty() && !sections.contains(number) {
                out.push(Dangling {
                    file: file.to_path_buf(),
                    line: i + 1,
                    problem: format!("{DESIGN} has no section §{number}"),
                });
            }
        }
    }
    out
}

/// Every relative link `[text](target)` of Markdown `text` (in `file`) whose target file, or
/// whose `#anchor` in a Markdown target, does not exist. `read` gives a file's text by its path
/// relative to the repository root, or `None` when there is no such file.
pub fn markdown_links(
    file: &Path,
    text: &str,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Vec<Dangling> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut out = Vec::new();
    let mut in_code = false;
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = rest[..end].split_whitespace().next().unwrap_or("");
            rest = &rest[end..];
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (target, None),
            };
            let resolved = if path.is_empty() {
                file.to_path_buf()
            } else {
                normalise(&dir.join(path))
            };
            let problem = match read(&resolved) {
                None if !is_dir(&resolved) => Some(format!("link to {target}: no such file")),
                Some(doc) => anchor
                    .filter(|a| resolved.extension().is_some_and(|e| e == "md") && !a.is_empty())
                    .filter(|a| !anchors(&doc).contains(*a))
                    .map(|a| {
                        format!(
                            "link to {target}: {} has no heading #{a}",
                            resolved.display()
                        )
                    }),
                None => None,
            };
            if let Some(problem) = problem {
                out.push(Dangling {
                    file: file.to_path_buf(),
                    line: i + 1,
                    problem,
                });
            }
        }
    }
    out
}

fn is_dir(relative: &Path) -> bool {
    root().join(relative).is_dir()
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The anchors GitHub gives a Markdown document's headings: lower case, punctuation other than
/// `-` and `_` dropped, spaces as `-`, and `-1`, `-2`, … on repeats.
pub fn anchors(doc: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut in_code = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let base: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut slug = base.clone();
        let mut n = 1;
        while seen.contains(&slug) {
            slug = format!("{base}-{n}");
            n += 1;
        }
        seen.insert(slug);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "# Title\n## 2. The algorithms\ntext\n## 7. Cost model\n### 7.1 Cache\n";

    #[test]
    fn sections_are_read_from_numbered_headings() {
        let s = section_numbers(DOC);
        let expected: BTreeSet<String> = ["2", "7", "7.1"].iter().map(|s| s.to_string()).collect();
        assert_eq!(s, expected);
    }

    #[test]
    fn a_reference_to_a_missing_section_is_reported_with_its_line() {
        let s = section_numbers(DOC);
        let text = "ok (DESIGN §2)\nalso ok: DESIGN.md §7.1\nbad: DESIGN §5\nthe paper's §5.1, DESIGN §N\n";
        let found = design_references(Path::new("a.rs"), text, &s);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 3);
        assert!(found[0].problem.contains("§5"));
    }

    #[test]
    fn github_anchors_drop_punctuation_and_number_repeats() {
        let a =
            anchors("# Web demo\n## 2. The algorithms\n## Web demo\n```\n# not a heading\n```\n");
        let expected: BTreeSet<String> = ["web-demo", "2-the-algorithms", "web-demo-1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(a, expected);
    }

    #[test]
    fn links_to_missing_files_and_headings_are_reported() {
        let files = |p: &Path| match p.to_str() {
            Some("docs/B.md") => Some("# B\n## Speed\n".to_string()),
            Some("docs/A.md") => Some(String::new()),
            _ => None,
        };
        let text = "[b](B.md#speed) [web](https://x.org/a.md) [gone](C.md)\n\
                    [bad anchor](B.md#sped) [up](../docs/B.md)\n```\n[code](nothing.md)\n```\n";
        let found = markdown_links(Path::new("docs/A.md"), text, &files);
        let problems: Vec<(usize, &str)> =
            found.iter().map(|d| (d.line, d.problem.as_str())).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, 1);
        assert!(problems[0].1.contains("C.md: no such file"));
        assert_eq!(problems[1].0, 2);
        assert!(problems[1].1.contains("no heading #sped"));
    }
}
