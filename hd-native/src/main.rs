//! `hd-native`: train, plot and benchmark hypergradient descent on libtorch.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // libtorch failures inside a model's forward pass (out of GPU memory, say) surface as tch
    // panics: report them as one line, like every other error, not as a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unexpected failure");
        let first = payload.lines().next().unwrap_or(payload);
        eprintln!("hd-native: error: {first}");
    }));
    let cli = hd_native::cli::Cli::parse();
    match hd_native::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hd-native: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
