#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::signed_tx(data));
