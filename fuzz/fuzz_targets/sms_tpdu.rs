//! Decode arbitrary bytes as SMS-SUBMIT, SMS-DELIVER and a PDU-mode string; whatever decodes must re-encode canonically.
//! The body is `ip2p_fuzz::sms_targets::sms_tpdu`, shared with `tests/fuzz_corpus.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| ip2p_fuzz::sms_targets::sms_tpdu(data));
