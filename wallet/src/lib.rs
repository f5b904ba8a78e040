//! The Twinpeg wallet CLI: keys, transfers on either chain, deposits and withdrawals with live status.
