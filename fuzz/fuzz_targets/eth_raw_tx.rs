#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::eth_raw_tx(data));
