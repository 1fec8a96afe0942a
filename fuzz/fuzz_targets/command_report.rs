#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tafel::fuzz_targets::command_report(data));
