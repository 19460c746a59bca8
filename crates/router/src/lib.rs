//! Routing rules as data: Classification to queue, priority, SLA and actions. No I/O.
