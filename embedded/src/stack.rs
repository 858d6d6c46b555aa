//! Stack high-water marks, measured by painting.
//!
//! With cortex-m-rt's `paint-stack` feature the reset handler fills the whole stack with
//! [`PAINT`] before `main`. [`measure`] repaints the free part below the current stack pointer,
//! runs a closure, then finds the deepest word that no longer holds the paint: everything the
//! closure (and whatever it called) pushed lies between that word and the stack pointer at the
//! call. The figure is exact to a word unless the closure happens to write the paint value
//! itself at its deepest point, which would under-report by that word.

use core::sync::atomic::{AtomicUsize, Ordering};
use cortex_m::register::msp;

/// The value cortex-m-rt paints the stack with.
const PAINT: u32 = cortex_m_rt::STACK_PAINT_VALUE;

extern "C" {
    /// Lowest address the stack may reach (the end of `.bss`/`.uninit`), from cortex-m-rt.
    static _stack_end: u32;
    /// The initial stack pointer (the top of RAM), from cortex-m-rt.
    static _stack_start: u32;
}

// Taking the address of an extern static reads nothing, so it needs no `unsafe`.
fn stack_end() -> usize {
    core::ptr::addr_of!(_stack_end) as usize
}

fn stack_start() -> usize {
    core::ptr::addr_of!(_stack_start) as usize
}

/// The deepest address seen by any [`measure`], which repaints over older marks.
static DEEPEST: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Lowest address whose word no longer holds the paint.
fn deepest_used() -> usize {
    let mut addr = stack_end();
    while addr < stack_start() {
        // SAFETY: `addr` is word-aligned and inside the stack region `[_stack_end,
        // _stack_start)`, which is RAM the linker script reserves for the stack.
        let word = unsafe { core::ptr::read_volatile(addr as *const u32) };
        if word != PAINT {
            break;
        }
        addr += 4;
    }
    addr
}

/// Repaints every free stack word below this function's own frame.
#[inline(never)]
fn repaint() {
    let below = msp::read() as usize;
    let mut addr = stack_end();
    while addr < below {
        // SAFETY: `[_stack_end, sp)` is free stack: nothing lives below the stack pointer, and
        // this leaf loop keeps its state in registers, so it never pushes into the range.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// Runs `f` and returns its result and the peak stack it used, in bytes.
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    repaint();
    let sp = msp::read() as usize;
    let result = f();
    let deepest = deepest_used();
    DEEPEST.fetch_min(deepest, Ordering::Relaxed);
    (result, sp.saturating_sub(deepest))
}

/// Peak stack used since reset, in bytes, and the size of the stack region.
pub fn since_reset() -> (usize, usize) {
    let deepest = deepest_used().min(DEEPEST.load(Ordering::Relaxed));
    (
        stack_start().saturating_sub(deepest),
        stack_start().saturating_sub(stack_end()),
    )
}
