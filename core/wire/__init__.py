"""Wire formats: named offsets and accessors over (buffer, offset). No state, no I/O, no objects
per packet. Each module opens with its RFC's header diagram."""
