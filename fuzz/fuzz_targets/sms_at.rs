//! Drive one AT engine with arbitrary modem bytes, host commands and time; check bounds and that
//! every command ends. The body is `ip2p_fuzz::sms_at_targets::sms_at`, shared with
//! `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::sms_at_targets::sms_at(data));
