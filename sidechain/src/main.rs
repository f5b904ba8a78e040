//! The `sidechain` binary: parses arguments and runs the shared node CLI with this chain's rules.

fn main() -> std::process::ExitCode {
    chain::cli::main(sidechain::rules())
}
