//! Unpack arbitrary septets at any fill offset and pack them back; GSM-7 and UCS-2 text round trips.
//! The body is `ip2p_fuzz::sms_targets::sms_gsm7`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::sms_targets::sms_gsm7(data));
