//! `hd-native`: train, plot and benchmark hypergradient descent on libtorch.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = hd_native::cli::Cli::parse();
    match hd_native::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hd-native: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
