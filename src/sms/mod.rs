//! SMS, sans-IO: TS 23.040 TPDUs, TS 23.038 alphabets, user-data headers, concatenation.
//!
//! (Being built for issue 3.)

pub mod at;
