//! AT commands (TS 27.005 / 27.007) in PDU mode, sans-IO. (Being built for issue 3.)
