//! Fuzz target bodies for sms_at (being built for issue 3).
