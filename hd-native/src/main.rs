//! `hd-native`: train, plot and benchmark hypergradient descent on libtorch.

use clap::Parser;
use hd_native::sweep::SweepError;
use hd_native::train::{panic_message, torch_message, TrainError};
use std::io::Write;
use std::process::ExitCode;

/// One line on stderr; a closed stderr is not worth a crash.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "hd-native: error: {line}");
}

fn main() -> ExitCode {
    // libtorch failures inside a model's forward pass (out of GPU memory, say) surface as tch
    // panics: they are caught below and reported as one line, like every other error, not as
    // a backtrace, so the hook stays silent.
    std::panic::set_hook(Box::new(|_| {}));
    let cli = hd_native::cli::Cli::parse();
    match std::panic::catch_unwind(|| hd_native::cli::run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            say(&hd_native::cli::error_line(&e));
            ExitCode::from(
                e.downcast_ref::<TrainError>()
                    .map(TrainError::exit_code)
                    .or_else(|| e.downcast_ref::<SweepError>().map(SweepError::exit_code))
                    .unwrap_or(1),
            )
        }
        Err(payload) => {
            let message = panic_message(payload.as_ref()).unwrap_or("unexpected failure");
            say(&torch_message(message));
            ExitCode::FAILURE
        }
    }
}
