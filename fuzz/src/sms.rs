//! Fuzz target bodies for sms (being built for issue 3).
