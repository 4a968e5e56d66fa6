"""Packets: captured on the loopback (AF_PACKET), derived from syscalls, and pcap/pcapng files."""
