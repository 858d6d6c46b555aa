//! The check at `--submit` that some node of the partition can hold one run: its CPUs,
//! memory and GPUs, from `sinfo`. Without it, an array asking more of a node than any node of
//! the partition has is accepted by sbatch and pends forever (reason `PartitionConfig` or
//! `Resources`) without a word.

use super::slurm::Slurm;
use anyhow::{bail, Context, Result};
use std::process::Command;

/// The `sinfo` format read: partition (the default one marked `*`), CPUs, memory in MB and
/// generic resources of each group of identical nodes (`-e`: no minimum-plus grouping).
const FORMAT: &str = "%P|%c|%m|%G";

/// One group of identical nodes of a partition, as `sinfo -h -e -o FORMAT` lists it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Node {
    /// The partition, without the default's `*`.
    pub partition: String,
    /// Whether it is the default partition.
    pub default: bool,
    /// CPUs per node.
    pub cpus: u64,
    /// Memory per node, in MB.
    pub mem_mb: u64,
    /// GPUs per node by type (`None`: untyped), from `gpu[:TYPE]:N` entries.
    pub gpus: Vec<(Option<String>, u64)>,
}

impl Node {
    /// GPUs of `kind` (any type when `None`).
    fn gpus_of(&self, kind: Option<&str>) -> u64 {
        self.gpus
            .iter()
            .filter(|(t, _)| kind.is_none() || t.as_deref() == kind)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A leading count, with sinfo's `+` (a minimum) and a `K`/`M`/`G` multiplier.
fn count(s: &str) -> Option<u64> {
    let s = s.trim().trim_end_matches('+');
    let (digits, scale) = match s.char_indices().last()? {
        (i, 'K') => (&s[..i], 1 << 10),
        (i, 'M') => (&s[..i], 1 << 20),
        (i, 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The GPUs in a `%G` field: `(null)`, or entries such as `gpu:a100:4(S:0-1)`, `gpu:2`,
/// `shard:8` separated by commas (a socket list in parentheses may hold commas too).
fn gpus(field: &str) -> Vec<(Option<String>, u64)> {
    let mut plain = String::new();
    let mut depth = 0u32;
    for c in field.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(',')
        .filter_map(|entry| {
            let parts: Vec<&str> = entry.trim().split(':').collect();
            match parts.as_slice() {
                ["gpu", n] => Some((None, count(n)?)),
                ["gpu", kind, n] => Some((Some((*kind).to_string()), count(n)?)),
                _ => None,
            }
        })
        .collect()
}

/// The node groups in `sinfo -h -e -o FORMAT`'s output; lines that do not read are skipped.
pub(super) fn parse(text: &str) -> Vec<Node> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [partition, cpus, mem, gres] = fields.as_slice() else {
                return None;
            };
            let default = partition.ends_with('*');
            Some(Node {
                partition: partition.trim_end_matches('*').to_string(),
                default,
                cpus: count(cpus)?,
                mem_mb: count(mem)?,
                gpus: gpus(gres),
            })
        })
        .collect()
}

/// `--mem-per-run` in MB, as Slurm reads `--mem`: a number with an optional `K`, `M`
/// (the default), `G` or `T` suffix; `0` asks for all of a node's memory.
pub(super) fn mem_mb(mem: &str) -> Option<u64> {
    let upper = mem.to_ascii_uppercase();
    let (digits, kib) = match upper.char_indices().last()? {
        (i, 'K') => (&upper[..i], 1),
        (i, 'M') => (&upper[..i], 1 << 10),
        (i, 'G') => (&upper[..i], 1 << 20),
        (i, 'T') => (&upper[..i], 1 << 30),
        _ => (upper.as_str(), 1 << 10),
    };
    let kib = digits.parse::<u64>().ok()?.checked_mul(kib)?;
    Some(kib.div_ceil(1 << 10))
}

/// Whether some node of `nodes` (the partition `slurm` names, or the default one) can hold
/// one run of `slurm`, with `mem` the memory each run asks for; else the one-line refusal,
/// naming the partition and each resource that no node has enough of.
pub(super) fn fits(nodes: &[Node], slurm: &Slurm, mem: &str) -> Result<()> {
    let (name, nodes): (String, Vec<&Node>) = match &slurm.partition {
        Some(p) => (
            p.clone(),
            nodes.iter().filter(|n| &n.partition == p).collect(),
        ),
        None => {
            let default: Vec<&Node> = nodes.iter().filter(|n| n.default).collect();
            let name = default
                .first()
                .map_or_else(|| "(default)".to_string(), |n| n.partition.clone());
            (name, default)
        }
    };
    if nodes.is_empty() {
        bail!(
            "sinfo lists no node in Slurm partition {name}: refused, the array would never start"
        );
    }
    let cpus = u64::from(slurm.cpus_per_run.max(1));
    let want_mb = mem_mb(mem).with_context(|| format!("--mem-per-run {mem:?}: not a size"))?;
    let gpus = u64::from(slurm.gpus_per_run);
    let kind = slurm.gpu_type.as_deref();
    let holds = |n: &Node| {
        n.cpus >= cpus && (want_mb == 0 || n.mem_mb >= want_mb) && n.gpus_of(kind) >= gpus
    };
    if nodes.iter().any(|n| holds(n)) {
        return Ok(());
    }
    let most = |f: &dyn Fn(&Node) -> u64| nodes.iter().map(|n| f(n)).max().unwrap_or(0);
    let mut missing = Vec::new();
    if most(&|n| n.cpus) < cpus {
        missing.push(format!(
            "{cpus} CPUs (--cpus-per-run; its nodes have at most {})",
            most(&|n| n.cpus)
        ));
    }
    if want_mb > 0 && most(&|n| n.mem_mb) < want_mb {
        missing.push(format!(
            "{mem} of memory (--mem-per-run; its nodes have at most {} MB)",
            most(&|n| n.mem_mb)
        ));
    }
    if most(&|n| n.gpus_of(kind)) < gpus {
        let what = kind.map_or("GPUs".to_string(), |k| format!("{k} GPUs"));
        missing.push(format!(
            "{gpus} {what} (--gpus-per-run; its nodes have at most {})",
            most(&|n| n.gpus_of(kind))
        ));
    }
    if missing.is_empty() {
        missing.push(format!(
            "{cpus} CPUs, {mem} of memory and {gpus} GPUs together"
        ));
    }
    bail!(
        "no node of Slurm partition {name} can hold one run: none has {}; refused, the array would pend forever",
        missing.join(", nor ")
    )
}

/// `fits` against what `sinfo` says of the cluster. Where `sinfo` cannot be run or says
/// nothing readable, the check is left to sbatch, with a note.
///
/// # Errors
/// No node of the partition can hold one run.
pub fn check(slurm: &Slurm, mem: &str) -> Result<()> {
    let mut cmd = Command::new("sinfo");
    cmd.args(["-h", "-e", "-o", FORMAT]);
    if let Some(p) = &slurm.partition {
        cmd.arg("-p").arg(p);
    }
    let nodes = match cmd.output() {
        Ok(out) if out.status.success() => parse(&String::from_utf8_lossy(&out.stdout)),
        Ok(out) => {
            eprintln!(
                "hd-native: note: sinfo failed ({}); the nodes were not checked",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(());
        }
        Err(e) => {
            eprintln!("hd-native: note: cannot run sinfo ({e}); the nodes were not checked");
            return Ok(());
        }
    };
    fits(&nodes, slurm, mem)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sinfo -h -e -o '%P|%c|%m|%G'` prints: partitions (the default marked), CPUs,
    /// memory in MB, and GPUs with or without a type and socket list.
    const SINFO: &str = "cpu*|64|256000|(null)\n\
                         gpu|32|512000|gpu:a100:4(S:0-1)\n\
                         gpu|48|384000+|gpu:v100:2(S:0,1),gpu:t4:1\n\
                         small|2|7000|gpu:1\n\
                         garbage line\n";

    fn run(cpus: u32, mem: &str, gpus: u32, kind: Option<&str>, p: Option<&str>) -> Result<()> {
        let slurm = Slurm {
            partition: p.map(str::to_string),
            cpus_per_run: cpus,
            gpus_per_run: gpus,
            gpu_type: kind.map(str::to_string),
            ..Slurm::default()
        };
        fits(&parse(SINFO), &slurm, mem)
    }

    #[test]
    fn sinfo_output_is_read_by_partition() {
        let nodes = parse(SINFO);
        assert_eq!(nodes.len(), 4);
        assert_eq!(
            nodes[0],
            Node {
                partition: "cpu".into(),
                default: true,
                cpus: 64,
                mem_mb: 256_000,
                gpus: Vec::new(),
            }
        );
        assert_eq!(nodes[1].gpus, vec![(Some("a100".into()), 4)]);
        assert_eq!(nodes[2].mem_mb, 384_000);
        assert_eq!(
            nodes[2].gpus,
            vec![(Some("v100".into()), 2), (Some("t4".into()), 1)]
        );
        assert_eq!(nodes[3].gpus, vec![(None, 1)]);
    }

    #[test]
    fn memory_sizes_read_as_slurm_reads_them() {
        assert_eq!(mem_mb("8G"), Some(8192));
        assert_eq!(mem_mb("16000M"), Some(16_000));
        assert_eq!(mem_mb("16000"), Some(16_000));
        assert_eq!(mem_mb("1t"), Some(1 << 20));
        assert_eq!(mem_mb("1500K"), Some(2));
        assert_eq!(mem_mb("0"), Some(0));
        assert_eq!(mem_mb("lots"), None);
    }

    #[test]
    fn a_run_that_no_node_can_hold_is_refused_naming_what_is_missing() {
        assert!(run(4, "8G", 0, None, None).is_ok());
        assert!(run(32, "600G", 4, Some("a100"), Some("gpu")).is_err());
        assert!(run(48, "300G", 2, Some("v100"), Some("gpu")).is_ok());
        assert!(run(2, "0", 1, None, Some("small")).is_ok());
        let e = run(128, "8G", 0, None, None).unwrap_err().to_string();
        assert_eq!(
            e,
            "no node of Slurm partition cpu can hold one run: none has 128 CPUs (--cpus-per-run; \
             its nodes have at most 64); refused, the array would pend forever"
        );
        let e = run(2, "8G", 2, Some("a100"), Some("small"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("no node of Slurm partition small can hold one run: none has 8G of memory (--mem-per-run; its nodes have at most 7000 MB), nor 2 a100 GPUs (--gpus-per-run; its nodes have at most 0)"),
            "{e}"
        );
        // Each resource on some node, but not all on one.
        let e = run(48, "8G", 4, Some("a100"), Some("gpu"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("none has 48 CPUs, 8G of memory and 4 GPUs together"),
            "{e}"
        );
        let e = run(1, "1G", 0, None, Some("nope")).unwrap_err().to_string();
        assert!(
            e.starts_with("sinfo lists no node in Slurm partition nope"),
            "{e}"
        );
    }
}
