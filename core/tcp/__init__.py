"""TCP (RFC 9293): state machine, stream sockets, RTO, flow and congestion control."""
