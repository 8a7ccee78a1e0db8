//! The consensus core: pure Multi-Paxos, no I/O (see DESIGN.md).
