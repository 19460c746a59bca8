//! Raw mail bytes to InboundMessage: MIME parsing, bodies, reply stripping, auto-reply detection. No I/O.
