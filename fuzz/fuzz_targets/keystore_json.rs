#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzzing::keystore_json(data));
