#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tafel::fuzz_targets::scep_pki_operation(data));
