//! The slot timer of an authority: at each slot boundary it asks the driver to produce.

use std::time::Duration;

use service::clock::now_ms;

use tokio::sync::watch;

use crate::driver::DriverHandle;

/// Wakes at every slot boundary and hands the slot to the driver, which produces if this
/// node leads it.
pub async fn run(driver: DriverHandle, block_time_ms: u64, mut shutdown: watch::Receiver<bool>) {
    let block_time = block_time_ms.max(1);
    loop {
        let now = now_ms();
        driver.produce(now / block_time);
        let next = (now / block_time + 1) * block_time;
        let wait = Duration::from_millis(next.saturating_sub(now_ms()));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => break,
        }
    }
    tracing::info!("slot timer stopped");
}
