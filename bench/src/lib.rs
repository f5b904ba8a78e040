//! Twinpeg benchmarks: a load generator and the `make bench` suite measured against this
//! machine's own limits (its signature-recovery rate, measured in the same run).

pub mod ethereum;
pub mod finality;
pub mod loadgen;
pub mod micro;
pub mod node;
pub mod peg;
pub mod reference;
pub mod scaling;
pub mod suite;

/// Runs a binary's `work` on a new tokio runtime: success, or the error (with its causes) on
/// stderr and a failure exit code.
pub fn block_on<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> std::process::ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(work) {
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
