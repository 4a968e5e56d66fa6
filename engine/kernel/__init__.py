"""What the kernel knows: TCP states (sock_diag, /proc, TCP_INFO), and states inferred where it cannot be asked."""
