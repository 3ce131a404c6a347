package main

import "net"

func sockaddrs() {
	net.ListenTCP("tcp", &net.TCPAddr{Port: 8181})
	net.ListenTCP("tcp4", &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 8182})
	net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(0, 0, 0, 0), Port: 5353})
	net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback, Port: 5354})
}
