//! Stopping on SIGINT and SIGTERM: the handlers set a flag that the run reads at every
//! iteration, so a stopped run leaves its directory consistent and resumable.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The signal that asked the run to stop (0: none). Set by the handlers of
/// [`stop_on_signals`], read at every iteration.
static STOP_SIGNAL: AtomicUsize = AtomicUsize::new(0);
/// Whether a stop was asked: a second signal then ends the process at once.
static STOP_ASKED: AtomicBool = AtomicBool::new(false);

/// Makes SIGINT and SIGTERM stop [`run`](super::run) at the next iteration boundary instead of killing the
/// process: the run then returns [`TrainError::Interrupted`](super::TrainError::Interrupted) with its directory consistent and
/// resumable. A second signal exits at once with status 128 + its number (the directory is
/// still resumable: every file is replaced atomically or truncated on resume).
///
/// # Errors
/// The handlers could not be installed.
pub fn stop_on_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        // The order matters: the shutdown checks the flag before this signal sets it.
        signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, &STOP_ASKED)?;
        signal_hook::flag::register_usize(signal, &STOP_SIGNAL, signal as usize)?;
        signal_hook::flag::register(signal, &STOP_ASKED)?;
    }
    Ok(())
}

pub(super) fn stop_requested() -> Option<i32> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        n => i32::try_from(n).ok(),
    }
}
