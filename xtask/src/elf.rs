//! What `cargo xtask footprint` reads from the firmware's ELF: its functions with their call
//! edges (from the ARM relocations the firmware is linked with), section sizes and symbols.

use anyhow::{ensure, Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, SectionKind, SymbolKind};
use std::collections::{BTreeMap, BTreeSet};

/// A function in the linked image.
pub struct Function {
    pub name: String,
    pub size: u64,
    /// Addresses of the functions it branches to or takes the address of.
    pub callees: BTreeSet<u64>,
}

/// What `footprint` needs from the ELF: functions with their call edges, and section sizes.
pub struct Image {
    /// Functions by start address (the Thumb bit cleared).
    pub functions: BTreeMap<u64, Function>,
    pub sections: BTreeMap<String, u64>,
    pub symbols: BTreeSet<String>,
}

impl Image {
    pub fn parse(data: &[u8]) -> Result<Image> {
        let file = object::File::parse(data).context("parsing the firmware ELF")?;
        let mut functions = BTreeMap::new();
        let mut symbols = BTreeSet::new();
        for sym in file.symbols() {
            let Ok(name) = sym.name() else { continue };
            symbols.insert(name.to_owned());
            if sym.kind() == SymbolKind::Text && sym.size() > 0 {
                // Thumb function symbols carry bit 0 set; the code starts at the even address.
                let f = functions.entry(sym.address() & !1).or_insert(Function {
                    name: demangle(name),
                    size: sym.size(),
                    callees: BTreeSet::new(),
                });
                // Aliases (`__aeabi_dmul` = `__muldf3`): keep a name a reader recognises.
                if name.starts_with("__aeabi") {
                    f.name = demangle(name);
                }
            }
        }
        let mut sections = BTreeMap::new();
        let mut relocations = 0usize;
        for section in file.sections() {
            let Ok(name) = section.name() else { continue };
            sections.insert(name.to_owned(), section.size());
            if section.kind() != SectionKind::Text {
                continue;
            }
            let bytes = section.data()?;
            for (address, reloc) in section.relocations() {
                relocations += 1;
                let RelocationFlags::Elf { r_type } = reloc.flags() else {
                    continue;
                };
                let Some(at) = address.checked_sub(section.address()) else {
                    continue;
                };
                let Some(target) = branch_target(bytes, at, address, r_type) else {
                    continue;
                };
                // The function whose code holds this relocation (none if it lies in padding
                // or a literal pool past every function's end).
                let Some((_, f)) = functions
                    .range_mut(..=address)
                    .next_back()
                    .filter(|(&start, f)| address < start + f.size)
                else {
                    continue;
                };
                f.callees.insert(target & !1);
            }
        }
        ensure!(
            relocations > 0,
            "the firmware ELF has no relocations: it must be linked with --emit-relocs (embedded/build.rs)"
        );
        Ok(Image {
            functions,
            sections,
            symbols,
        })
    }

    /// The function at `address` and every function reachable from it, through direct calls,
    /// tail calls and taken addresses.
    pub fn reachable(&self, address: u64) -> BTreeSet<u64> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![address];
        while let Some(a) = todo.pop() {
            let Some(f) = self.functions.get(&a) else {
                continue;
            };
            if seen.insert(a) {
                todo.extend(f.callees.iter().copied());
            }
        }
        seen
    }

    pub fn section(&self, name: &str) -> u64 {
        self.sections.get(name).copied().unwrap_or(0)
    }
}

/// ELF relocation types for ARM that mark branches and absolute addresses.
const R_ARM_ABS32: u32 = 2;
const R_ARM_THM_CALL: u32 = 10;
const R_ARM_THM_JUMP24: u32 = 30;
const R_ARM_THM_JUMP19: u32 = 51;

/// Where the relocated instruction or word at byte `at` of a section (virtual address
/// `address`) points, decoded from the linked bytes (ARM relocations keep their addend in the
/// instruction, so the bytes, not the symbol, give the final target).
fn branch_target(bytes: &[u8], at: u64, address: u64, r_type: u32) -> Option<u64> {
    let at = usize::try_from(at).ok()?;
    let word = bytes.get(at..at + 4)?;
    let hw1 = u32::from(u16::from_le_bytes([word[0], word[1]]));
    let hw2 = u32::from(u16::from_le_bytes([word[2], word[3]]));
    // Thumb-2 branch offsets are relative to the instruction's address plus 4.
    let pc = address.wrapping_add(4);
    let s = (hw1 >> 10) & 1;
    let (j1, j2) = ((hw2 >> 13) & 1, (hw2 >> 11) & 1);
    match r_type {
        // BL (T1) and B.W (T4): offset = S:I1:I2:imm10:imm11:0, I = NOT(J XOR S).
        R_ARM_THM_CALL | R_ARM_THM_JUMP24 => {
            let (i1, i2) = (!(j1 ^ s) & 1, !(j2 ^ s) & 1);
            let raw =
                (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3ff) << 12) | ((hw2 & 0x7ff) << 1);
            Some(pc.wrapping_add(sign_extend(raw, 25)) & 0xffff_ffff)
        }
        // B<cond>.W (T3): offset = S:J2:J1:imm6:imm11:0.
        R_ARM_THM_JUMP19 => {
            let raw =
                (s << 20) | (j2 << 19) | (j1 << 18) | ((hw1 & 0x3f) << 12) | ((hw2 & 0x7ff) << 1);
            Some(pc.wrapping_add(sign_extend(raw, 21)) & 0xffff_ffff)
        }
        // A literal-pool word holding a function's address.
        R_ARM_ABS32 => Some(u64::from(u32::from_le_bytes([
            word[0], word[1], word[2], word[3],
        ]))),
        _ => None,
    }
}

/// Sign-extends the low `bits` bits of `raw` to an offset for wrapping u64 address arithmetic.
fn sign_extend(raw: u32, bits: u32) -> u64 {
    let shift = 32 - bits;
    i64::from(((raw << shift) as i32) >> shift) as u64
}

/// The last identifier of a v0-mangled Rust symbol (`_R…8___divdf3` → `__divdf3`): v0 writes
/// identifiers as `<decimal length>[_]<bytes>` (the `_` when the bytes start with `_` or a
/// digit), so the name ends with the first suffix of length k that follows the digits of k.
fn v0_last_identifier(name: &str) -> Option<&str> {
    (1..name.len()).find_map(|k| {
        let (head, ident) = name.split_at_checked(name.len() - k)?;
        let head = head.strip_suffix('_').unwrap_or(head);
        let digits = head.trim_end_matches(|c: char| c.is_ascii_digit());
        (digits.len() < head.len() && head[digits.len()..].parse() == Ok(k)).then_some(ident)
    })
}

/// Legacy Rust symbol demangling (`_ZN` length-prefixed path `E`), dropping the hash: enough
/// to name functions in the report. Other names are returned unchanged.
pub fn demangle(name: &str) -> String {
    if name.starts_with("_R") {
        return v0_last_identifier(name).unwrap_or(name).to_owned();
    }
    let Some(mut rest) = name.strip_prefix("_ZN").and_then(|r| r.strip_suffix('E')) else {
        return name.to_owned();
    };
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(len) = rest[..digits].parse::<usize>() else {
            return name.to_owned();
        };
        let Some(part) = rest.get(digits..digits + len) else {
            return name.to_owned();
        };
        // Legacy mangling prefixes a component that starts with `$` with `_`.
        parts.push(
            part.strip_prefix('_')
                .filter(|p| p.starts_with('$'))
                .unwrap_or(part),
        );
        rest = &rest[digits + len..];
    }
    if parts
        .last()
        .is_some_and(|p| p.len() == 17 && p.starts_with('h'))
    {
        parts.pop();
    }
    parts
        .join("::")
        .replace("$LT$", "<")
        .replace("$GT$", ">")
        .replace("$u20$", " ")
        .replace("$RF$", "&")
        .replace("..", "::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_thumb2_branches() {
        // Forward and backward BL, as llvm-objdump disassembles them from the firmware:
        // `610c: 03 f0 ce fb  bl 0x98ac` and `6170: fc f7 80 f9  bl 0x2474`.
        let forward = [0x03, 0xf0, 0xce, 0xfb];
        assert_eq!(
            branch_target(&forward, 0, 0x610c, R_ARM_THM_CALL),
            Some(0x98ac)
        );
        let backward = [0xfc, 0xf7, 0x80, 0xf9];
        assert_eq!(
            branch_target(&backward, 0, 0x6170, R_ARM_THM_CALL),
            Some(0x2474)
        );
        // `f000 b800` is B.W with every offset bit zero (J1 = J2 = 1 encode I1 = I2 = 0):
        // the target is the instruction's address + 4.
        let tail = [0x00, 0xf0, 0x00, 0xb8];
        assert_eq!(
            branch_target(&tail, 0, 0x100, R_ARM_THM_JUMP24),
            Some(0x104)
        );
        // A literal-pool word is the address itself.
        let word = 0x0000_4321u32.to_le_bytes();
        assert_eq!(branch_target(&word, 0, 0x200, R_ARM_ABS32), Some(0x4321));
        // Out of the section's bytes, or a relocation that is not a branch: nothing.
        assert_eq!(branch_target(&forward, 2, 0x610e, R_ARM_THM_CALL), None);
        assert_eq!(branch_target(&forward, 0, 0x610c, 0), None);
    }
}
