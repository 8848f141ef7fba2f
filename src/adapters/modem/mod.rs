//! The `modem` adapter: the AT engine over a serial port. (Being built for issue 3.)
