//! `devnet down`: asks the running launcher to stop (SIGTERM) and waits until it has stopped
//! every process it supervises.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::plan::pid_file;
use crate::process;
use crate::{Error, Result};

use super::{resolve_dir, running_launcher, DirArgs};

/// How long the launcher gets to stop everything.
const DOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `devnet down`.
pub async fn run(args: DirArgs) -> Result<ExitCode> {
    let dir = resolve_dir(&args)?;
    let Some(pid) = running_launcher(&dir) else {
        println!("devnet: no launcher is running in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "devnet: stopping the launcher (pid {pid}) of {}",
        dir.display()
    );
    process::signal(pid, Signal::SIGTERM);
    let start = Instant::now();
    // The launcher removes its pid file once every child is gone, as its last act. (Its own
    // pid may linger as a zombie until its parent reaps it, so the file is the better sign.)
    while pid_file(&dir).exists() && process::is_alive(pid) {
        if start.elapsed() > DOWN_TIMEOUT {
            return Err(Error::Timeout(format!(
                "the launcher (pid {pid}) did not stop within {} s; see its output, or kill it \
                 (its children get SIGTERM when it dies)",
                DOWN_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("devnet: stopped");
    Ok(ExitCode::SUCCESS)
}
